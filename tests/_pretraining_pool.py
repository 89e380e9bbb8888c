"""The shared checks of tests/test_skills.py and tests/test_countdown_skills.py: a shipped checkpoint's
pretraining pool, regenerated from its recorded settings, holds no built-in problem of its task,
and a skills generator never emits a problem it is told to exclude."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rungs.train.sft import SFTConfig, builtin_keys, pretraining_problems
from rungs.types import Problem


def assert_pool_has_no_builtin_problem(task: Any, training_json: Path, known_builtin: Problem,
                                       max_train_problems: int | None = None) -> None:
    """Regenerate the pool of the checkpoint whose `training.json` is given (skip unless it was the
    skills distribution) and assert that neither its training nor its evaluation problems meet any
    built-in set in `task.problem_key` form; `known_builtin` (a built-in problem, written as the
    pool would write it) shows that the check can fail. `max_train_problems` caps the regenerated
    pool (the generators are prefix-stable, so a prefix is the pool's own first draws)."""
    config = json.loads(training_json.read_text())["config"]
    if config.get("distribution") != "skills":
        pytest.skip(f"the shipped checkpoint of {training_json.parent.name} was not trained on the skills distribution")
    if max_train_problems is not None:
        config = {**config, "train_problems": min(max_train_problems, config["train_problems"]), "eval_problems": 50}
    pool, evals = pretraining_problems(SFTConfig(**config), task)
    keys = builtin_keys(task)
    assert len(keys) > 400  # easy, hard, dev and train sets of the task
    assert not {task.problem_key(p) for p in pool} & keys
    assert not {task.problem_key(p) for p in evals} & keys
    assert not {p.text for p in evals} & {p.text for p in pool}
    assert task.problem_key(known_builtin) in keys  # the check itself can fail


def assert_excluded_problems_are_never_drawn(task: Any, draws: list[Problem], n: int, seed: int) -> None:
    """`task.skill_problems(n, seed, exclude=...)` emits none of every other problem of `draws`
    (an earlier draw of the same n and seed, so the excluded keys would otherwise come back)."""
    excluded = {task.problem_key(p) for p in draws[::2]}
    again = task.skill_problems(n, seed=seed, exclude=excluded)
    assert not excluded & {task.problem_key(p) for p in again}
