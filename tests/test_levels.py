"""Fractional difficulty mixes the two integer levels around it, for every generating task
(`rungs sample-problems --difficulty 3.5` used to give countdown only level 4 and ARC level 4:
Python's round), while integer difficulties keep the problems they always gave."""

from __future__ import annotations

import collections
import random

import pytest

from rungs.cli import main
from rungs.tasks.levels import pick_level


def test_pick_level_mixes_clamps_and_always_draws_once():
    rng = random.Random(0)
    counts = collections.Counter(pick_level(3.25, rng) for _ in range(4000))
    assert set(counts) == {3, 4} and 0.2 < counts[4] / 4000 < 0.3
    assert pick_level(100, random.Random(1), 1, 5) == 5 and pick_level(-3, random.Random(1), 1, 5) == 1
    assert pick_level(4.0, random.Random(1)) == 4
    a, b = random.Random(2), random.Random(2)
    pick_level(2.0, a)
    b.random()
    assert a.random() == b.random()  # exactly one draw, whatever the value
    with pytest.raises(ValueError, match="finite"):
        pick_level(float("nan"), random.Random(0))


def test_countdown_fractional_difficulty_mixes_number_counts():
    from rungs.tasks.countdown import CountdownTask

    problems = CountdownTask().generate(300, 3.5, seed=11)
    sizes = collections.Counter(len(p.meta["numbers"]) for p in problems)
    assert sizes[4] > 60 and sizes[5] + sizes[6] > 60  # level 3 (4 numbers) and level 4 (5-6)
    assert {p.meta["difficulty"] for p in problems} == {3.0, 4.0}
    assert all(p.meta["difficulty"] == (3.0 if len(p.meta["numbers"]) == 4 else 4.0) for p in problems)
    # an integer difficulty is one level, recorded as such
    assert {len(p.meta["numbers"]) for p in CountdownTask().generate(40, 2, seed=11)} == {3}


def test_arc_fractional_difficulty_mixes_length_levels_and_keeps_integer_levels():
    from rungs.tasks.arc import ArcTask

    task = ArcTask()
    mixed = task.generate(12, 2.5, seed=3)
    levels = collections.Counter(p.meta["difficulty"] for p in mixed)
    assert set(levels) == {2.0, 3.0}
    assert all(task.difficulty(p) == p.meta["difficulty"] for p in mixed)
    assert len({p.id for p in mixed}) == 12
    # the level-2 share of a mixed set is the start of the level-2 set itself
    level2 = [p.text for p in mixed if p.meta["difficulty"] == 2.0]
    assert level2 == [p.text for p in task.generate(len(level2), 2, seed=3)]


def test_sample_problems_beyond_a_tasks_levels_is_a_one_line_error(capsys):
    assert main(["sample-problems", "--task", "arc", "--n", "2", "--difficulty", "100"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "difficulty 100" in err and "lower difficulty" in err and "Traceback" not in err


def test_math_difficulty_is_capped_so_a_huge_value_cannot_build_a_huge_expression():
    from rungs.tasks.math import MAX_DIFFICULTY, MathTask

    task = MathTask()
    (problem,) = task.generate(1, 1e9, seed=0)
    assert problem.meta["difficulty"] == MAX_DIFFICULTY and len(problem.text) < 5000
    with pytest.raises(ValueError, match="finite"):
        task.generate(1, float("inf"))
