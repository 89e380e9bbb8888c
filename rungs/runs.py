"""Run directories: resolved config, events, rollouts, atomic checkpoints, and resume.

Layout of a run directory:

    config.yaml        the resolved config of the job
    events.jsonl       one JSON object per step (metrics under TRL's names)
    rollouts.jsonl     one JSON object per verified sample
    checkpoints/       step-N/ directories, each complete before it is renamed into place
    summary.json       the job's final figures
    *.png              plots

Every write is atomic (temporary file, fsync, rename), so a kill -9 at any moment leaves either
the old or the new file, never half of one. JSONL logs are appended line by line; on resume they
are truncated back to the last checkpointed step so that nothing is lost or duplicated.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    umask = os.umask(0)
    os.umask(umask)
    os.fchmod(fd, 0o666 & ~umask)  # mkstemp makes 0600; give the file the mode open() would
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")


# -- run directories ----------------------------------------------------------------------------

CONFIG_FILE = "config.yaml"
EVENTS_FILE = "events.jsonl"
ROLLOUTS_FILE = "rollouts.jsonl"
SUMMARY_FILE = "summary.json"
CHECKPOINTS_DIR = "checkpoints"
CHECKPOINT_PREFIX = "step-"
COMPLETE_MARKER = "COMPLETE"  # written last inside a checkpoint, before the rename
_TMP_PREFIX = ".tmp-"


def read_jsonl(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The JSON objects of a log file; a torn last line (a kill mid-write) ends it (see
    `rungs.data.iter_jsonl`, the one JSONL reader); a missing file is empty."""
    from rungs.data import iter_jsonl

    return [row for _, row in iter_jsonl(path, damaged="stop") if isinstance(row, dict)]


def truncate_jsonl(path: str | os.PathLike[str], max_step: int) -> int:
    """Cut a step-ordered JSONL log just before its first line with step > max_step (or torn).

    Lines are written in step order and everything up to a checkpoint is fsynced before the
    checkpoint is renamed into place, so this keeps exactly the lines of steps <= max_step.
    Idempotent (a kill during resume is repaired by the next resume). Returns the lines kept.
    """
    path = Path(path)
    if not path.exists():
        return 0
    kept = 0
    offset = 0
    with open(path, "rb") as handle:
        for raw in handle:
            if not raw.endswith(b"\n"):
                break
            try:
                row = json.loads(raw)
                step = int(row["step"])
            except (ValueError, KeyError, TypeError):
                break
            if step > max_step:
                break
            kept += 1
            offset += len(raw)
    if offset != path.stat().st_size:
        with open(path, "r+b") as handle:
            handle.truncate(offset)
            handle.flush()
            os.fsync(handle.fileno())
    return kept


def _fsync_tree(root: Path) -> None:
    for dirpath, _dirnames, filenames in os.walk(root):
        for name in filenames:
            fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(Path(dirpath))


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some filesystems refuse fsync on directories
        pass
    finally:
        os.close(fd)


class RunDir:
    """One run directory: its config, append-only logs, atomic checkpoints, and resume.

    Create a new run with `RunDir.create(path, config)`; reopen one with `RunDir.open(path)` and
    call `resume()` to get the step of its latest complete checkpoint (the logs are cut back to
    that step). Log rows are dicts with an integer "step"; they are appended in step order.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._handles: dict[str, Any] = {}

    # -- opening ----------------------------------------------------------------------------------
    @classmethod
    def create(cls, path: str | os.PathLike[str], config: dict[str, Any] | None = None) -> RunDir:
        """A fresh run directory at `path` (which must not hold a run already)."""
        from rungs.errors import UserError

        path = Path(path)
        if (path / CONFIG_FILE).exists() or (path / EVENTS_FILE).exists():
            raise UserError(f"{path}: already holds a run; continue it with --resume {path} or choose another --out")
        if path.exists() and not path.is_dir():
            raise UserError(f"{path}: exists and is not a directory; expected a directory for the run")
        path.mkdir(parents=True, exist_ok=True)
        run = cls(path)
        if config is not None:
            run.write_config(config)
        return run

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> RunDir:
        """An existing run directory (one with a config.yaml)."""
        from rungs.errors import UserError

        path = Path(path)
        if not (path / CONFIG_FILE).exists():
            raise UserError(f"{path}: not a run directory; expected {path / CONFIG_FILE} (made by rungs train --out)")
        return cls(path)

    # -- files ------------------------------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        return self.path / CONFIG_FILE

    @property
    def events_path(self) -> Path:
        return self.path / EVENTS_FILE

    @property
    def rollouts_path(self) -> Path:
        return self.path / ROLLOUTS_FILE

    @property
    def summary_path(self) -> Path:
        return self.path / SUMMARY_FILE

    @property
    def checkpoints_dir(self) -> Path:
        return self.path / CHECKPOINTS_DIR

    def write_config(self, config: dict[str, Any]) -> None:
        import yaml

        atomic_write_text(self.config_path, yaml.safe_dump(config, sort_keys=False))

    def read_config(self) -> dict[str, Any]:
        from rungs.config import load_yaml

        return load_yaml(self.config_path)

    def write_summary(self, summary: dict[str, Any]) -> None:
        atomic_write_json(self.summary_path, summary)

    def read_summary(self) -> dict[str, Any] | None:
        if not self.summary_path.exists():
            return None
        return json.loads(self.summary_path.read_text(encoding="utf-8"))

    # -- logs -------------------------------------------------------------------------------------
    def _append(self, path: Path, rows: list[dict[str, Any]], require_step: bool = True) -> None:
        if not rows:
            return
        for row in rows:
            if require_step and not isinstance(row.get("step"), int):
                raise ValueError(f"log rows need an integer 'step', got {row.get('step')!r}")
        handle = self._handles.get(path.name)
        if handle is None:
            handle = self._handles[path.name] = open(path, "a", encoding="utf-8")  # noqa: SIM115 - kept open
        # One write per batch of rows: a kill leaves at most one torn line, which resume cuts.
        handle.write("".join(json.dumps(row, ensure_ascii=False, default=str) + "\n" for row in rows))
        handle.flush()

    def log_event(self, row: dict[str, Any]) -> None:
        """Append one event (a dict with "step") to events.jsonl."""
        self._append(self.events_path, [row])

    def log_rollouts(self, rows: list[dict[str, Any]]) -> None:
        """Append rollout rows (dicts with "step") to rollouts.jsonl."""
        self._append(self.rollouts_path, rows)

    def append_rows(self, filename: str, rows: list[dict[str, Any]]) -> None:
        """Append rows to another JSONL log of the run (no step needed) and fsync it."""
        self._append(self.path / filename, rows, require_step=False)
        self.sync()

    def rewrite_rows(self, filename: str, rows: list[dict[str, Any]]) -> None:
        """Replace a JSONL log atomically (on resume: drop a torn line or rows to be redone)."""
        handle = self._handles.pop(filename, None)
        if handle is not None:
            handle.close()
        atomic_write_text(self.path / filename, "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in rows))

    def sync(self) -> None:
        """fsync the logs, so that a checkpoint never claims steps the logs could lose."""
        for handle in self._handles.values():
            handle.flush()
            os.fsync(handle.fileno())

    def events(self) -> list[dict[str, Any]]:
        return read_jsonl(self.events_path)

    def rollouts(self) -> list[dict[str, Any]]:
        return read_jsonl(self.rollouts_path)

    def close(self) -> None:
        for handle in self._handles.values():
            handle.close()
        self._handles.clear()

    def __enter__(self) -> RunDir:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- checkpoints ------------------------------------------------------------------------------
    def checkpoint_path(self, step: int) -> Path:
        return self.checkpoints_dir / f"{CHECKPOINT_PREFIX}{step}"

    def save_checkpoint(self, step: int, write: Any) -> Path:
        """Write checkpoint `step` atomically: `write(tmp_dir)` fills a temporary directory, which
        is fsynced, marked complete, and renamed to checkpoints/step-N. Returns the final path."""
        self.sync()
        self.checkpoints_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=self.checkpoints_dir, prefix=f"{_TMP_PREFIX}{CHECKPOINT_PREFIX}{step}-"))
        final = self.checkpoint_path(step)
        try:
            write(tmp)
            (tmp / COMPLETE_MARKER).write_text(f"{step}\n", encoding="utf-8")
            _fsync_tree(tmp)
            if final.exists():  # re-saving a step (e.g. the final save of a step already saved)
                old = final.with_name(f"{_TMP_PREFIX}old-{final.name}")
                os.replace(final, old)
                os.replace(tmp, final)
                _rmtree(old)
            else:
                os.replace(tmp, final)
            _fsync_dir(self.checkpoints_dir)
        except BaseException:
            _rmtree(tmp)
            raise
        return final

    def checkpoints(self) -> list[tuple[int, Path]]:
        """Complete checkpoints as (step, path), oldest first."""
        if not self.checkpoints_dir.is_dir():
            return []
        found = []
        for child in self.checkpoints_dir.iterdir():
            name = child.name
            if not name.startswith(CHECKPOINT_PREFIX) or not name[len(CHECKPOINT_PREFIX):].isdigit():
                continue
            if (child / COMPLETE_MARKER).exists():
                found.append((int(name[len(CHECKPOINT_PREFIX):]), child))
        return sorted(found)

    def latest_checkpoint(self) -> tuple[int, Path] | None:
        found = self.checkpoints()
        return found[-1] if found else None

    def prune_checkpoints(self, keep: int | None) -> None:
        """Delete all but the newest `keep` checkpoints (None keeps all)."""
        if keep is None:
            return
        for _step, path in self.checkpoints()[:-keep] if keep > 0 else self.checkpoints():
            _rmtree(path)

    def clean_temporaries(self) -> None:
        """Remove half-written checkpoints left by a kill."""
        if self.checkpoints_dir.is_dir():
            for child in self.checkpoints_dir.iterdir():
                if child.name.startswith(_TMP_PREFIX):
                    _rmtree(child)

    def resume(self) -> tuple[int, Path | None]:
        """Prepare to continue: (step, checkpoint path) of the latest complete checkpoint, or
        (0, None); the logs are cut back to that step and half-written checkpoints removed."""
        self.close()
        self.clean_temporaries()
        latest = self.latest_checkpoint()
        step, path = latest if latest else (0, None)
        # With no checkpoint the run restarts from scratch, so nothing of the logs is kept.
        truncate_jsonl(self.events_path, step if path else -1)
        truncate_jsonl(self.rollouts_path, step if path else -1)
        return step, path


def _rmtree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
