"""What every resumable job does first: open or create its run directory, load and check problems.

`rungs ladder` and `rungs ttrl` share it (`rungs train` predates it and resolves settings its own
way). A job's config.yaml holds one section per config class ({"ladder": ..., "grpo": ...}), the
layout `--resume` and `--config` read back.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rungs.tasks.base import Task
from rungs.types import Problem


def default_out(prefix: str, task: str) -> str:
    """runs/<prefix>-<task>-<YYYYmmdd-HHMMSS>"""
    return str(Path("runs") / f"{prefix}-{task}-{time.strftime('%Y%m%d-%H%M%S')}")


def open_job(section: str, config: Any, grpo: Any, resume_dir: str | None, task: Task | None = None) -> tuple[Any, Task, list[Problem]]:
    """(run directory, task, problems): the run directory is created (or reopened to resume), the
    task built from `config.task`, and `config.problems` loaded and parsed by the task."""
    from rungs.config import to_dict
    from rungs.data import load_problems
    from rungs.runs import RunDir
    from rungs.tasks import get_task

    if resume_dir is not None:
        run_dir = RunDir.open(resume_dir)
    else:
        run_dir = RunDir.create(config.out or default_out(section, config.task),
                                {section: to_dict(config), "grpo": to_dict(grpo)})
    task = task or get_task(config.task)
    problems = load_problems(config.problems, limit=config.limit)
    for problem in problems:
        task.parse_problem(problem)
    return run_dir, task, problems
