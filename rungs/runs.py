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
