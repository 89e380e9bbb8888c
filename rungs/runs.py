"""Run directories: resolved config, events, rollouts, atomic checkpoints, and resume.

Layout of a run directory:

    config.yaml        the resolved config of the job (input paths made absolute: `absolute_inputs`)
    inputs.json        sha256 of the problem files the run was made from (checked on resume)
    events.jsonl       one JSON object per step (metrics under TRL's names)
    rollouts.jsonl     one JSON object per verified sample
    checkpoints/       step-N/ directories, each complete before it is renamed into place
    summary.json       the job's final figures
    *.png              plots

Every write is atomic (temporary file, fsync, rename), so a kill -9 at any moment leaves either
the old or the new file, never half of one. JSONL logs are appended line by line; on resume they
are truncated back to the last checkpointed step so that nothing is lost or duplicated.

A run directory belongs to one live process: a job takes an OS lock (`flock`) on `.lock` in it
before writing anything and holds it until it ends, so a second writer -- a second job on the same
`--out`, or `--resume` of a run that is still going -- is refused with the holder's pid. The
kernel drops the lock when its process dies, so a kill -9 never leaves a stale lock behind.
A resume may start in any directory: config.yaml stores input files as absolute paths, and
inputs.json their contents' fingerprints, so a resume reads the same problems or is refused
(`check_inputs`) rather than silently training or evaluating on other ones. A job whose setup
fails before its first step removes the run directory it has just made (`discard_if_unused`),
so that the same --out can be used again.
Each run's config.yaml names its job kind (`job_kind`), and no job writes into a directory of
another kind. A full disk or a read-only directory is one line naming the path (`disk_errors`),
and the run resumes once the space is back.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write `data` to the file `path` whole or not at all (a temporary sibling, fsynced, renamed).
    A `UserError` when `path` is a directory (an `--out DIR` where a file was expected)."""
    from rungs.errors import UserError

    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path}: a directory; expected the path of a file to write")
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
LOCK_FILE = ".lock"
# What runs append to (rungs.pipelines' samples.jsonl and outcomes.jsonl among them): a fresh run
# refuses a directory holding one without a config.yaml (`RunDir.create`).
RUN_LOGS = frozenset({EVENTS_FILE, ROLLOUTS_FILE, SUMMARY_FILE, "samples.jsonl", "outcomes.jsonl"})
INPUTS_FILE = "inputs.json"
_TMP_PREFIX = ".tmp-"
_OLD_PREFIX = f"{_TMP_PREFIX}old-"  # a directory moved aside while its re-save moves in
# Sections of a ladder/ttrl config.yaml besides the job's own ({"ladder": ..., "grpo": ...}).
_SHARED_SECTIONS = ("grpo",)


# -- input paths --------------------------------------------------------------------------------

# Settings that name an input file or dataset directory (in any section of a config), and the
# subset whose contents a resumed run must find unchanged (a saved --variants tree is copied into
# the run directory, so a later change to it does not matter).
PATH_SETTINGS = ("problems", "eval_problems", "variants")
FINGERPRINTED_SETTINGS = ("problems", "eval_problems")
# Policy kinds whose argument may be a local directory (tiny:PATH, hf:PATH, vllm:PATH), and the
# tiny arguments that never name one (rungs.policies.tiny.policy.FRESH_ARGS).
_PATH_POLICIES = ("tiny", "hf", "vllm")
_TINY_FRESH = ("random", "new", "scratch")


def absolute_setting(key: str, value: Any) -> Any:
    """`value` of setting `key` with a relative path to an existing local file or directory made
    absolute (problems, eval_problems, variants, and the PATH of policy tiny:PATH / hf:PATH /
    vllm:PATH); anything else (builtin:NAME, a hub model name, none, auto, a path that does not
    exist) is returned unchanged."""
    if not isinstance(value, str) or not value or value.lower() in ("none", "auto"):
        return value
    if key == "policy":
        kind, sep, arg = value.partition(":")
        if not sep or kind not in _PATH_POLICIES or not arg or (kind == "tiny" and arg in _TINY_FRESH):
            return value
        path = Path(arg).expanduser()
        return f"{kind}:{os.path.abspath(path)}" if path.is_dir() else value
    if key in PATH_SETTINGS and not value.startswith("builtin:"):
        path = Path(value).expanduser()
        if path.exists():
            return os.path.abspath(path)
    return value


def absolute_inputs(settings: dict[str, Any]) -> dict[str, Any]:
    """A copy of a config (flat, or in sections such as {"ladder": ..., "grpo": ...}) with its
    input paths made absolute (`absolute_setting`), so that a resume from another directory reads
    the same files."""
    return {key: absolute_inputs(value) if isinstance(value, dict) and key != "policy_options"
            else absolute_setting(key, value) for key, value in settings.items()}


def _input_files(settings: dict[str, Any]) -> list[str]:
    """The existing local files and directories that a config's FINGERPRINTED_SETTINGS name (absolute)."""
    found: list[str] = []
    for key, value in settings.items():
        if isinstance(value, dict) and key != "policy_options":
            found += _input_files(value)
        elif key in FINGERPRINTED_SETTINGS:
            value = absolute_setting(key, value)
            if isinstance(value, str) and os.path.isabs(value) and os.path.exists(value) and value not in found:
                found.append(value)
    return found


def fingerprint(path: str | os.PathLike[str]) -> str:
    """sha256 of a file's bytes, or of a directory's files (relative names and bytes, in name order)."""
    import hashlib

    digest = hashlib.sha256()
    root = Path(path)
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    for file in files:
        if file != root:
            digest.update(str(file.relative_to(root)).encode("utf-8") + b"\0")
        with open(file, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


# -- job kinds ------------------------------------------------------------------------------------

def job_kind(config: dict[str, Any]) -> str | None:
    """The job that wrote a run's config.yaml: its "job" key (train, eval), else its one section
    besides "grpo" (ladder, ttrl); an evaluation config written before the key existed is "eval"."""
    kind = config.get("job")
    if isinstance(kind, str):
        return kind
    sections = [k for k, v in config.items() if isinstance(v, dict) and k not in _SHARED_SECTIONS]
    if len(sections) == 1 and set(config) <= {sections[0], *_SHARED_SECTIONS}:
        return sections[0]
    if {"strategy", "n", "seeds"} <= set(config):
        return "eval"
    return None


def resume_command(job: str | None, path: str | os.PathLike[str]) -> str:
    """How a user continues a run of this kind."""
    if job == "eval":
        return f"rungs eval --resume --out {path}"
    return f"rungs {job or '<job>'} --resume {path}"


def refuse_changed(config_path: str | os.PathLike[str], saved: dict[str, Any], given: dict[str, Any],
                   may_change: tuple[str, ...] = ()) -> dict[str, Any]:
    """`saved` updated with the settings `given` on the command line for a resumed run.

    A setting may differ from the saved one only if it is in `may_change` (run length and
    bookkeeping); any other difference is a UserError naming the file, the key and both values,
    since a run that changes how it samples or learns halfway is not the run it claims to be.
    Paths are compared as absolute paths (`absolute_setting`): `--problems p.jsonl` matches a
    stored /dir/p.jsonl when given in /dir, and no other file of that name.
    """
    from rungs.errors import UserError

    merged = dict(saved)
    for key, value in given.items():
        if key in may_change:
            merged[key] = value
        elif absolute_setting(key, value) != absolute_setting(key, saved.get(key)):
            allowed = f"only {', '.join(may_change)} may change on resume" if may_change else \
                "a resumed run keeps its settings (drop the flag)"
            raise UserError(f"--resume: {config_path} has {key}={saved.get(key)!r}, the command line {value!r}; {allowed}")
    return merged


# Policy options a resumed run may change: where and how fast the same model runs, and credentials
# (never stored, `rungs.config.SECRET_WORDS`). Any other option (dtype, lora_rank, seed, d_model,
# raw_prompts, ...) changes the model or its samples, so the run would no longer be one run.
RESUMABLE_POLICY_OPTIONS = ("device", "device_map", "gen_batch_size", "logprob_batch_size", "chunk_bytes",
                            "gradient_checkpointing", "share_prompt_cache", "threads", "timeout", "max_retries",
                            "concurrency", "gpu_memory_utilization", "tensor_parallel_size")


def merge_policy_options(config_path: str | os.PathLike[str], saved: dict[str, Any],
                         given: dict[str, Any]) -> dict[str, Any]:
    """The `--policy-option`s `given` on a resume, checked against the run's `saved` ones: each must
    equal the saved value unless it is in RESUMABLE_POLICY_OPTIONS or a credential; a UserError
    naming the file, the option and both values otherwise. Returns `given` (to lay over `saved`)."""
    from rungs.config import SECRET_WORDS
    from rungs.errors import UserError

    for key, value in given.items():
        if key in RESUMABLE_POLICY_OPTIONS or any(word in str(key).lower() for word in SECRET_WORDS):
            continue
        if key not in saved or (value != saved[key] and str(value) != str(saved[key])):
            before = f"{key}={saved[key]!r}" if key in saved else f"no policy option {key}"
            raise UserError(f"--resume: {config_path} has {before}, the command line {key}={value!r}; a resumed "
                            f"run keeps its model (only {', '.join(RESUMABLE_POLICY_OPTIONS)} and credentials may change)")
    return given


# -- locks ----------------------------------------------------------------------------------------

_LOCKS: dict[str, list[Any]] = {}  # real path -> [open lock file, holders in this process]
_LOCKS_GUARD = threading.Lock()


def lock_dir(path: str | os.PathLike[str]) -> None:
    """Take the run directory's lock for this process (re-entrant within it), or raise a UserError
    naming the directory and the pid holding it. The lock lives as long as the open file: until
    `unlock_dir` or the process's death, whichever comes first (a kill -9 releases it)."""
    import fcntl

    from rungs.errors import UserError

    key = os.path.realpath(path)
    with _LOCKS_GUARD:
        held = _LOCKS.get(key)
        if held is not None:
            held[1] += 1
            return
        lock_path = Path(path) / LOCK_FILE
        handle = open(lock_path, "a+", encoding="utf-8")  # noqa: SIM115 - held for the job's life
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            if err.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                handle.close()
                raise
            handle.seek(0)
            pid = handle.read().strip() or "unknown"
            handle.close()
            raise UserError(f"{path}: in use by another rungs process (pid {pid}); wait for it to end or "
                            f"stop it, or choose another --out") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        _LOCKS[key] = [handle, 1]


def unlock_dir(path: str | os.PathLike[str]) -> None:
    """Release one hold of `lock_dir` by this process; the last one frees the lock."""
    key = os.path.realpath(path)
    with _LOCKS_GUARD:
        held = _LOCKS.get(key)
        if held is None:
            return
        held[1] -= 1
        if held[1] <= 0:
            del _LOCKS[key]
            held[0].close()  # closing the file releases the flock


# -- disk errors ----------------------------------------------------------------------------------

_DISK_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EFBIG, errno.EIO,
                errno.ENOTDIR, errno.ENAMETOOLONG, errno.ELOOP}  # and paths that cannot be made: under a file, too long
# How a full or read-only disk shows through libraries that do not raise OSError (torch.save's
# "PytorchStreamWriter failed writing file", safetensors' IoError(Os { code: 28, ... })).
_DISK_TEXT = ("no space left", "read-only file system", "file write failed", "failed writing file", "storagefull",
              "disk quota", "code: 28", "code: 30", "unexpected pos")


def disk_error_message(err: BaseException, where: str | os.PathLike[str]) -> str | None:
    """One line naming the path and the cause when `err` is a write that the disk refused; else None."""
    if isinstance(err, OSError) and err.errno in _DISK_ERRNOS:
        path = err.filename or where
        cause = err.strerror or os.strerror(err.errno)
        return f"{path}: {cause} (errno {err.errno})"
    if isinstance(err, (RuntimeError, OSError)) or type(err).__name__ == "SafetensorError":
        text = str(err).lower()
        if any(t in text for t in _DISK_TEXT):
            first = next((line.strip() for line in str(err).splitlines() if line.strip()), type(err).__name__)
            return f"{where}: cannot write ({first[:200]})"
    return None


@contextlib.contextmanager
def disk_errors(where: str | os.PathLike[str], resume: str | None = None) -> Iterator[None]:
    """Turn a refused write inside the block into a one-line UserError (exit 2) that names the path
    and the cause and, when given, how to continue (`resume`) once space is freed."""
    from rungs.errors import UserError

    try:
        yield
    except UserError:
        raise
    except Exception as err:  # noqa: BLE001 - classified below, else re-raised
        message = disk_error_message(err, where)
        if message is None:
            raise
        hint = f"; free space or fix permissions, then continue with `{resume}`" if resume else ""
        raise UserError(message + hint) from None


def read_jsonl(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The JSON objects of a log file; a torn last line (a kill mid-write) and a damaged line in
    the middle (disk damage, a bad copy: a kill tears only the last line) are left out, and the
    lines after a damaged one are still read (see `rungs.data.iter_jsonl`, the one JSONL reader);
    a missing file is empty."""
    from rungs.data import iter_jsonl

    return [row for _, row in iter_jsonl(path, damaged="skip") if isinstance(row, dict)]


def describe_type(hint: Any) -> str:
    """'a string', 'true or false', 'a list of strings', ... : what a row's field should hold."""
    import types
    import typing

    if hint is Any:
        return "any value"
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join("null" if a is type(None) else describe_type(a) for a in args)
    if origin is list or hint is list:
        inner = describe_type(args[0]) if args else "values"
        return "a list" + ("" if not args else f" of {inner.removeprefix('a ').removeprefix('an ')}s"
                           if inner.startswith(("a ", "an ")) else f" of {inner}")
    if origin is dict or hint is dict:
        return "an object"
    names = {str: "a string", bool: "true or false", int: "an integer", float: "a number", type(None): "null"}
    return names.get(hint, getattr(hint, "__name__", str(hint)))


def value_fits(value: Any, hint: Any) -> bool:
    """Whether a JSON value fits a type hint: str, bool, int (not a bool), float (any number, not a
    bool), None, X | Y, list[X], dict[K, V] (keys are JSON's strings), Any."""
    import types
    import typing

    if hint is Any:
        return True
    if hint is type(None) or hint is None:
        return value is None
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(value_fits(value, a) for a in args)
    if origin is list or hint is list:
        return isinstance(value, list) and (not args or all(value_fits(v, args[0]) for v in value))
    if origin is dict or hint is dict:
        return isinstance(value, dict) and (len(args) < 2 or all(value_fits(v, args[1]) for v in value.values()))
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    return isinstance(value, hint) if isinstance(hint, type) else True


def row_problem(row: Any, fields: Mapping[str, Any], optional: Sequence[str] = ()) -> str | None:
    """What is wrong with a row of a log (None when nothing): not a JSON object, a field missing
    (those in `optional` may be), a field whose value does not fit its type hint in `fields`."""
    if not isinstance(row, dict):
        kind = "a list" if isinstance(row, list) else type(row).__name__ if row is not None else "null"
        return f"expected a JSON object, got {kind}"
    for name, hint in fields.items():
        if name not in row:
            if name in optional:
                continue
            return f"no {name!r} field; expected {describe_type(hint)}"
        if not value_fits(row[name], hint):
            got = row[name]
            shown = repr(got) if len(repr(got)) <= 24 else type(got).__name__
            return f"{name!r} is {shown}; expected {describe_type(hint)}"
    return None


def dataclass_row_problem(cls: type, row: Any) -> str | None:
    """`row_problem` against a dataclass's fields (as `dataclasses.asdict` writes it); a field with
    a default may be missing."""
    import dataclasses
    import typing

    hints = typing.get_type_hints(cls)
    fields = dataclasses.fields(cls)
    optional = [f.name for f in fields if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING]
    return row_problem(row, {f.name: hints[f.name] for f in fields}, optional)


def read_checked_jsonl(path: str | os.PathLike[str], check: Callable[[Any], str | None], consequence: str,
                       warn: Callable[[str], None] | None = None,
                       dropped: list[int] | None = None) -> list[tuple[int, dict[str, Any]]]:
    """(line number, row) of each row of a run's JSON-lines log that `check(row)` accepts (returns
    None); a bad row costs that row, not the file: a row `check` refuses, and a damaged line in the
    middle (not JSON), is left out with one line `FILE:LINE: CONSEQUENCE: WHAT IS WRONG` through
    `warn` (stderr by default), and the lines after it are still read. A torn last line (a run
    killed mid-write) is left out without a word; a missing file is empty. The numbers of every line
    left out are appended to `dropped` when given (a resume rewrites the file without them). Reads
    through `rungs.data.iter_jsonl`, the one JSONL reader."""
    from rungs.data import iter_jsonl

    warn = warn or (lambda line: print(line, file=sys.stderr))
    path = Path(path)
    if not path.exists():
        return []
    unreadable: list[int] = []  # not JSON (or nested too deeply), a torn last line included
    refused: list[int] = []
    kept: list[tuple[int, dict[str, Any]]] = []
    for lineno, row in iter_jsonl(path, damaged="skip", dropped=unreadable):
        why = check(row)
        if why:
            warn(f"{path}:{lineno}: {consequence}: {why}")
            refused.append(lineno)
        else:
            kept.append((lineno, row))
    torn = None
    if unreadable:
        with open(path, "rb") as handle:
            handle.seek(0, 2)
            if handle.tell():
                handle.seek(-1, 2)
                torn = max(unreadable) if handle.read(1) != b"\n" else None
    for lineno in unreadable:
        if lineno != torn:
            warn(f"{path}:{lineno}: {consequence}: damaged line (not JSON, or nested too deeply); "
                 "expected one JSON object per line")
    if dropped is not None:
        dropped.extend(sorted(unreadable + refused))
    return kept


def truncate_jsonl(path: str | os.PathLike[str], max_step: int) -> int:
    """Cut a step-ordered JSONL log just before its first line with step > max_step, or its torn
    last line (a kill mid-write).

    Lines are written in step order and everything up to a checkpoint is fsynced before the
    checkpoint is renamed into place, so this keeps exactly the lines of steps <= max_step. A
    whole line in the middle that is not a step record (disk damage or a bad copy, never a kill)
    is dropped with a warning naming its line, and the lines after it are kept: one bad line costs
    that line, not the rest of the run. Idempotent (a kill during resume is repaired by the next
    resume). Returns the lines kept.
    """
    path = Path(path)
    if not path.exists():
        return 0
    kept: list[bytes] = []
    damaged: list[int] = []
    size = 0
    with open(path, "rb") as handle:
        for lineno, raw in enumerate(handle, start=1):
            if not raw.endswith(b"\n"):
                break  # torn by a kill: the last line
            try:
                row = json.loads(raw)
                step = int(row["step"])
            except (ValueError, KeyError, TypeError, RecursionError):
                damaged.append(lineno)
                size += len(raw)
                continue
            if step > max_step:
                break
            kept.append(raw)
            size += len(raw)
    if damaged:
        shown = ", ".join(map(str, damaged[:5])) + (f" and {len(damaged) - 5} more" if len(damaged) > 5 else "")
        print(f"rungs: {path}: line{'s' if len(damaged) > 1 else ''} {shown} damaged (not a step record): "
              "dropped on resume; the lines after kept", file=sys.stderr)
        atomic_write_bytes(path, b"".join(kept))
    elif size != path.stat().st_size:
        with open(path, "r+b") as handle:
            handle.truncate(size)
            handle.flush()
            os.fsync(handle.fileno())
    return len(kept)


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
        self._locked = False
        self.created = False  # this process made the directory (`create`), so it may discard it
        self.fresh = False  # a new run (`create`), not one reopened to resume
        self.preexisting: frozenset[str] = frozenset()  # entries `create` found in a directory that existed

    # -- opening ----------------------------------------------------------------------------------
    @classmethod
    def create(cls, path: str | os.PathLike[str], config: dict[str, Any] | None = None, *, job: str | None = None,
               lock: bool = True) -> RunDir:
        """A fresh run directory at `path` (which must not hold a run already), locked by this
        process (see `lock_dir`) before anything is written into it. `job` (default: read from
        `config`) names the job kind in the refusal when `path` holds another job's run."""
        from rungs.errors import UserError

        path = Path(path)
        job = job or (job_kind(config) if config is not None else None)
        with disk_errors(path):  # a name too long, or a path under a file: one line, not a traceback
            if path.exists() and not path.is_dir():
                raise UserError(f"{path}: exists and is not a directory; expected a directory for the run")
            existed = path.exists()
            path.mkdir(parents=True, exist_ok=True)
        run = cls(path)
        run.created = not existed
        run.preexisting = frozenset(os.listdir(path)) if existed else frozenset()
        if lock:
            run.lock()
        try:
            if (path / CONFIG_FILE).exists() or (path / EVENTS_FILE).exists():
                run.created = False  # not this call's to discard
                kind = job_kind(_read_yaml_quietly(path / CONFIG_FILE))
                if job is not None and kind is not None and kind != job:
                    raise UserError(f"{path}: holds a `rungs {kind}` run; a `rungs {job}` job never writes into another "
                                    f"job's run directory: choose another --out")
                raise UserError(f"{path}: already holds a run; continue it with `{resume_command(kind or job, path)}` "
                                f"or choose another --out")
            stale = sorted(n for n in RUN_LOGS & run.preexisting if _non_empty(path / n))
            if stale:  # a run's logs without its config: a new run would append to them
                raise UserError(f"{path}: holds the logs of an earlier run ({', '.join(stale)}) but no {CONFIG_FILE}; "
                                "a new run would append to them: choose another --out or remove them")
            for name in RUN_LOGS & run.preexisting:  # empty: nothing to keep; the run's own from here on,
                (path / name).unlink()                 # so that what it writes there counts as its progress
            run.preexisting = run.preexisting - RUN_LOGS
            if config is not None:
                with disk_errors(path):
                    run.write_config(config)
        except BaseException:
            run.release()
            raise
        run.fresh = True
        return run

    @classmethod
    def open(cls, path: str | os.PathLike[str], job: str | None = None, *, lock: bool = False) -> RunDir:
        """An existing run directory (one with a config.yaml). With `job`, a directory written by
        another kind of job is refused; with `lock` (a job about to continue the run), this process
        takes its lock (see `lock_dir`) and the run's input files must be unchanged (`check_inputs`)."""
        from rungs.errors import UserError

        path = Path(path)
        if not (path / CONFIG_FILE).exists():
            made_by = f"rungs {job} --out" if job else "a rungs job's --out"
            raise UserError(f"{path}: not a run directory; expected {path / CONFIG_FILE} (made by {made_by})")
        run = cls(path)
        if job is not None:
            kind = job_kind(run.read_config())
            if kind != job:
                raise UserError(f"{path}: a `rungs {kind or 'unknown'}` run directory, not a `rungs {job}` one; "
                                f"a job never writes into another job's run directory")
        if lock:
            run.lock()
            try:
                run.check_inputs()
            except BaseException:
                run.release()
                raise
        return run

    def lock(self) -> None:
        """Own this directory for the life of the job (a UserError if another process does)."""
        with disk_errors(self.path):
            lock_dir(self.path)
        self._locked = True

    def release(self) -> None:
        """Give up this job's lock (the process's death also releases it)."""
        if self._locked:
            self._locked = False
            unlock_dir(self.path)

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

    @property
    def inputs_path(self) -> Path:
        return self.path / INPUTS_FILE

    def write_config(self, config: dict[str, Any]) -> None:
        """Write config.yaml with its input paths made absolute (`absolute_inputs`), so that a resume
        from any directory reads the same files; the first write also records their fingerprints
        (inputs.json, see `check_inputs`)."""
        import yaml

        config = absolute_inputs(config)
        if not self.inputs_path.exists():
            atomic_write_json(self.inputs_path, {path: fingerprint(path) for path in _input_files(config)})
        atomic_write_text(self.config_path, yaml.safe_dump(config, sort_keys=False))

    def check_inputs(self) -> None:
        """Refuse (UserError, one line) to continue a run whose problem files are missing or hold
        other contents than when the run was made (inputs.json). A run made before rungs recorded
        fingerprints has none: it is resumed with a one-line warning on stderr, since its files
        cannot be checked (its fingerprints are recorded from here on, by `write_config`)."""
        from rungs.errors import UserError

        if not self.inputs_path.exists():
            print(f"rungs: warning: {self.path} has no {INPUTS_FILE} (made before rungs recorded input fingerprints): "
                  "its problem files cannot be checked; resume it only if they are unchanged", file=sys.stderr)
            return
        try:
            recorded = json.loads(self.inputs_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            raise UserError(f"{self.inputs_path}: unreadable; expected the JSON fingerprints of the run's input files") from None
        for path, digest in (recorded.items() if isinstance(recorded, dict) else ()):
            if not os.path.exists(path):
                raise UserError(f"{path}: no such file or directory; the run in {self.path} was made from it "
                                f"(restore it to resume, or start a new run with another --out)")
            if fingerprint(path) != digest:
                raise UserError(f"{path}: changed since the run in {self.path} was made from other contents "
                                f"(sha256 differs); restore the file to resume, or start a new run with another --out")

    def discard_if_unused(self) -> bool:
        """After a job failed: remove what `create` made in this call, if no step was recorded yet
        (no events, rollouts, samples or checkpoint), so that the same --out can be used again. A
        directory this call made goes entirely; in one that existed before, what the run wrote
        goes (config.yaml, inputs.json, the lock file, a saved variant tree) and the files that
        were there stay. A resumed run is never touched. True if discarded."""
        if not self.fresh or self._progress():
            return False
        self.close()
        self.release()
        if self.created:
            _rmtree(self.path)
        else:
            for name in (CONFIG_FILE, INPUTS_FILE, LOCK_FILE, "variants.jsonl", *RUN_LOGS):
                if name not in self.preexisting:  # the run's own (empty: no progress) logs go too
                    with contextlib.suppress(OSError):
                        (self.path / name).unlink()
        self.fresh = False
        return True

    def _progress(self) -> bool:
        """True when the run has recorded work: a checkpoint, or a non-empty log other than the
        saved variant tree (events, rollouts, samples, outcomes), a summary, or a weights directory."""
        if self.checkpoints():
            return True
        setup = {CONFIG_FILE, INPUTS_FILE, LOCK_FILE, "variants.jsonl"}
        for child in self.path.iterdir():
            if child.name in setup or child.name in self.preexisting or child.name.startswith(_TMP_PREFIX):
                continue  # the run's own setup, or the user's files that were there before it
            if (child.is_dir() and any(child.iterdir())) or (child.is_file() and child.stat().st_size > 0):
                return True
        return False

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
        return write_dir_atomically(self.checkpoint_path(step), write, marker=f"{step}\n")

    def save_dir(self, name: str, write: Any) -> Path:
        """Write the directory `name` of the run (e.g. ladder's final/ weights) as a whole:
        `write(tmp_dir)` fills a temporary directory that is fsynced and renamed into place, so
        a kill leaves either the old directory or the new one, never half of one."""
        return write_dir_atomically(self.path / name, write)

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
        """Remove half-written checkpoints (and other directories written whole) left by a kill;
        see `clean_directory`."""
        for parent in (self.checkpoints_dir, self.path):
            clean_directory(parent)

    def check_budget(self, max_steps: int) -> None:
        """UserError when a resume asks for fewer steps (`max_steps` > 0) than the run's latest
        checkpoint has already trained: training cannot be undone, and continuing would end at
        once with a summary of steps it never asked for."""
        from rungs.errors import UserError

        latest = self.latest_checkpoint()
        if latest and max_steps > 0 and latest[0] > max_steps:
            raise UserError(f"resume: {self.path}: the run has already trained {latest[0]} steps, more than "
                            f"max_steps={max_steps}; give --max-steps {latest[0]} or more "
                            "(training cannot be undone; start a new run for a smaller budget)")

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


def clean_directory(parent: Path, files: bool = False) -> None:
    """Tidy what a kill left in `parent`: where the old directory cannot be swapped with its re-save
    in one step (`write_dir_atomically` without renameat2), a kill between moving the old one aside
    and moving the new one in left no directory under its name, so the old one is put back first; then every half-written directory (`.tmp-*`) is removed, and with
    `files` every half-written file (`atomic_write_bytes`' `.NAME.*.tmp`) too."""
    if not parent.is_dir():
        return
    for child in list(parent.iterdir()):
        name = child.name[len(_OLD_PREFIX):]
        if child.name.startswith(_OLD_PREFIX) and child.is_dir() and name and not (parent / name).exists():
            os.replace(child, parent / name)
    for child in parent.iterdir():
        if child.name.startswith(_TMP_PREFIX) and child.is_dir():
            _rmtree(child)
        elif files and child.name.startswith(".") and child.name.endswith(".tmp") and child.is_file():
            child.unlink(missing_ok=True)


def _process_umask() -> int:
    mask = os.umask(0o022)  # read it (os has no getter), then put it back
    os.umask(mask)
    return mask


_UMASK = _process_umask()  # read once at import, before any thread writes files


def _non_empty(path: Path) -> bool:
    try:
        return path.stat().st_size > 0
    except OSError:
        return False


def write_dir_atomically(final: Path, write: Any, marker: str | None = None) -> Path:
    """Fill a temporary sibling of `final` with `write(tmp)` (plus the COMPLETE marker when given),
    fsync it, and rename it to `final`. An older `final` is swapped out in one atomic exchange
    (Linux), so a reader or a kill never finds `final` missing; elsewhere it is moved aside first,
    and `clean_directory` puts it back after a kill in between. Returns `final`."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f"{_TMP_PREFIX}{final.name}-"))
    try:
        os.chmod(tmp, 0o777 & ~_UMASK)  # as mkdir makes it: mkdtemp's 0700 would hide checkpoints from other users
        write(tmp)
        if marker is not None:
            (tmp / COMPLETE_MARKER).write_text(marker, encoding="utf-8")
        _fsync_tree(tmp)
        if final.exists():  # re-saving (e.g. the final save of a step already saved)
            if _exchange(tmp, final):  # one atomic swap: `final` is never missing, even under a kill
                _rmtree(tmp)  # now the old directory
            else:  # no renameat2 here: two renames, and a kill between them is repaired by clean_directory
                old = final.with_name(f"{_OLD_PREFIX}{final.name}")
                _rmtree(old)
                os.replace(final, old)
                os.replace(tmp, final)
                _rmtree(old)
        else:
            os.replace(tmp, final)
        _fsync_dir(final.parent)
    except BaseException:
        _rmtree(tmp)
        raise
    return final


_RENAME_EXCHANGE = 2  # linux/fs.h
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths in one atomic step (Linux renameat2 with RENAME_EXCHANGE, glibc
    2.28+). False where the platform, libc or file system cannot (then nothing was changed)."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError, TypeError):  # an old glibc, a libc without it
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    renameat2.restype = ctypes.c_int
    return renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0


def _read_yaml_quietly(path: Path) -> dict[str, Any]:
    """A config.yaml as a dict, or {} when it is missing or unreadable (only to name a run's kind)."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}


def _rmtree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
