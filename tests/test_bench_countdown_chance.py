"""bench/countdown_chance.py: the chance policies write valid countdown answers (every number once),
the integer one keeps intermediates positive integers, counts are reproducible, and the comparison
reads per-problem rates the right way round."""

from __future__ import annotations

import random

import pytest


@pytest.fixture(scope="module")
def chance(load_bench):
    return load_bench("countdown_chance")


def test_random_expressions_use_every_number_once(chance):
    from rungs.tasks import get_task
    from rungs.tasks.countdown import _evaluate, render
    from rungs.types import Problem

    task = get_task("countdown")
    rng = random.Random(0)
    for _ in range(200):
        numbers = [rng.randint(1, 100) for _ in range(rng.randint(2, 6))]
        for draw in (chance.random_any, chance.random_integer, chance.random_generator):
            tree = draw(list(numbers), rng)
            value = _evaluate(tree)
            if draw is not chance.random_any:
                assert value.denominator == 1 and value > 0
            if value.denominator != 1 or not 0 < value <= 1000:  # not a countdown target
                continue
            problem = Problem(id="p", text=f"numbers: {' '.join(map(str, numbers))}; target: {int(value)}", answer=None)
            assert task.verify_answer(problem, render(tree)).correct, (numbers, render(tree))


def test_counts_are_reproducible_and_find_a_reachable_target(chance):
    from rungs.types import Problem

    easy = Problem(id="e", text="numbers: 2 3; target: 5", answer=None)  # 2+3 is one of few combinations
    never = Problem(id="n", text="numbers: 2 3; target: 997", answer=None)
    first = chance.chance_counts("chance-integer", [easy, never], 64, seed=0)
    assert first == chance.chance_counts("chance-integer", [easy, never], 64, seed=0)
    assert first[0] > 0 and first[1] == 0
    assert chance.chance_counts("chance-any", [never], 64, seed=1) == [0]
    ones = Problem(id="o", text="numbers: 7 1; target: 7", answer=None)  # only 7*1 or 7/1
    assert chance.chance_counts("chance-integer", [ones], 64, seed=0)[0] > 0
    assert chance.chance_counts("generator", [ones], 64, seed=0) == [0]  # the generator avoids x1 and /1


def test_compare_names_what_the_model_solves(chance):
    got = chance.compare([0.5, 0.0, 0.25, 0.0], [0.1, 0.2, 0.0, 0.0])
    assert got["model_solved"] == 2 and got["of_them_chance_solves"] == 0.5
    assert chance.compare([0.0, 0.0], [0.1, 0.2]) == {"spearman_rho": None, "model_solved": 0, "of_them_chance_solves": None}
    assert chance.pass_curve([64, 0], 64)[1] == 0.5
