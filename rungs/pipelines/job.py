"""What every resumable job does first: open or create its run directory, load and check problems.

`rungs ladder` and `rungs ttrl` share it (`rungs train` predates it and resolves settings its own
way). A job's config.yaml holds one section per config class ({"ladder": ..., "grpo": ...}), the
layout `--resume` and `--config` read back.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rungs.tasks.base import Task
from rungs.types import Problem


def default_out(prefix: str, task: str) -> str:
    """runs/<prefix>-<task>-<YYYYmmdd-HHMMSS>"""
    return str(Path("runs") / f"{prefix}-{task}-{time.strftime('%Y%m%d-%H%M%S')}")


def open_job(section: str, config: Any, grpo: Any, resume_dir: str | None, task: Task | None = None) -> tuple[Any, Task, list[Problem]]:
    """(run directory, task, problems): the run directory is created (or reopened to resume, which
    must be a run of the same job) and locked by this process, the task built from `config.task`,
    and `config.problems` loaded and parsed by the task. The caller owns the run directory from
    here: run the job inside `job_scope(run_dir, section)`, which releases it."""
    from rungs.config import to_dict
    from rungs.data import load_problems
    from rungs.runs import RunDir, disk_errors, resume_command
    from rungs.tasks import get_task

    settings = {section: to_dict(config), "grpo": to_dict(grpo)}
    if resume_dir is not None:
        run_dir = RunDir.open(resume_dir, job=section, lock=True)
        try:
            with disk_errors(run_dir.path, resume_command(section, run_dir.path)):
                run_dir.write_config(settings)  # the run-length settings a resume may change
        except BaseException:
            run_dir.release()
            raise
    else:
        run_dir = RunDir.create(config.out or default_out(section, config.task), settings)
    try:
        task = task or get_task(config.task)
        problems = load_problems(config.problems, limit=config.limit)
        for problem in problems:
            task.parse_problem(problem)
    except BaseException:
        run_dir.release()
        raise
    return run_dir, task, problems


@contextlib.contextmanager
def job_scope(run_dir: Any, job: str) -> Iterator[None]:
    """The life of a job in its run directory: a disk that refuses a write becomes one line naming
    the path and how to resume, and the directory's lock is released however the job ends."""
    from rungs.runs import disk_errors, resume_command

    try:
        with disk_errors(run_dir.path, resume_command(job, run_dir.path)):
            yield
    finally:
        run_dir.release()
