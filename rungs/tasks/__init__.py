"""Tasks: one file per kind of checkable problem. Look one up with `get_task(name)`."""

from __future__ import annotations

from collections.abc import Sequence

from rungs.registry import Registry
from rungs.tasks.base import Task, Variant

TASKS: Registry[type[Task]] = Registry("task")
TASKS.register("integration", "rungs.tasks.integration:IntegrationTask")
TASKS.register("countdown", "rungs.tasks.countdown:CountdownTask")
TASKS.register("math", "rungs.tasks.math:MathTask")
TASKS.register("arc", "rungs.tasks.arc:ArcTask")


def get_task(name: str, *, reasoning_delimiters: Sequence[str] | None = None, **kwargs) -> Task:
    """Instantiate a task by name; an unknown name is a one-line UserError with a suggestion.

    `reasoning_delimiters` (TRL's name; off by default): see `Task.with_reasoning`.
    """
    task = TASKS.get(name)(**kwargs)
    return task.with_reasoning(reasoning_delimiters) if reasoning_delimiters else task


__all__ = ["TASKS", "Task", "Variant", "get_task"]
