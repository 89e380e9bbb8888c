"""The integration "skills" pretraining distribution: its answers, its mix, and its disjointness
from every built-in set (no evaluated or RL-trained problem is a supervised example)."""

from __future__ import annotations

from pathlib import Path

import pytest
import sympy
from _pretraining_pool import assert_excluded_problems_are_never_drawn, assert_pool_has_no_builtin_problem

from rungs.tasks import get_task
from rungs.tasks.integration.generator import x
from rungs.tasks.integration.skills import skill_problems, term_by_term_answer
from rungs.types import Problem

TASK = get_task("integration")
SHIPPED = Path(__file__).resolve().parent.parent / "rungs" / "checkpoints" / "tiny-integration" / "training.json"


def test_every_answer_is_an_antiderivative_of_its_problem():
    problems = skill_problems(120, seed=3)
    assert len({p.text for p in problems}) == 120
    for p in problems:
        assert TASK.verify(p, f"<answer>{p.answer}</answer>").correct, (p.text, p.answer)


def test_the_mix_holds_single_rules_same_kind_sums_and_a_few_mixed_sums():
    problems = skill_problems(400, seed=1, mixed_fraction=0.1, single_fraction=0.5)
    kinds = {k: sum(p.meta["kind"] == k for p in problems) for k in ("single", "same_kind", "mixed")}
    assert all(kinds.values())
    assert kinds["mixed"] < kinds["same_kind"]
    texts = " ".join(p.text for p in problems)
    for needle in ("exp(", "sin(", "cos(", "/x", "**2)", "/(", "x**-" if "x**-" in texts else "/x**"):
        assert needle in texts  # powers incl. negative exponents, linear arguments, chain terms
    with pytest.raises(ValueError):
        skill_problems(1, mixed_fraction=0.7, single_fraction=0.5)


def test_answers_follow_the_printed_order_of_the_terms():
    terms = [(9 * sympy.exp(4 * x), 9 * sympy.exp(4 * x) / 4), (6 * x**3, 3 * x**4 / 2)]
    f = sympy.Add(*(t[0] for t in terms))
    assert str(f) == "6*x**3 + 9*exp(4*x)"
    assert term_by_term_answer(terms) == "3*x**4/2 + 9*exp(4*x)/4"
    assert term_by_term_answer([(x**2, x**3 / 3), (x**2, x**3 / 3)]) is None  # merged terms: draw again


def test_excluded_problems_are_never_drawn():
    assert_excluded_problems_are_never_drawn(TASK, skill_problems(60, seed=7), 60, seed=7)


def test_no_builtin_problem_is_in_the_pretraining_pool():
    """The shipped checkpoint's pool (its recorded settings), regenerated, against every built-in set
    in canonical form. The generator is prefix-stable, so the first 3,000 draws are the pool's."""
    assert_pool_has_no_builtin_problem(TASK, SHIPPED, Problem("h", "integrate(6*x**3 + 9*exp(4*x), x)"),
                                       max_train_problems=3000)


def test_composites_mix_all_three_families_and_verify():
    from rungs.tasks.integration.skills import composite_problems

    problems = composite_problems(30, seed=4)
    assert len({p.text for p in problems}) == 30
    for p in problems:
        assert p.meta["terms"] in (3, 4)
        assert TASK.verify(p, f"<answer>{p.answer}</answer>").correct, (p.text, p.answer)


def test_the_harder_builtin_sets_are_composites_outside_every_other_set():
    from rungs.data import load_problems

    harder = load_problems("builtin:integration-harder")
    train = load_problems("builtin:integration-harder-train")
    assert (len(harder), len(train)) == (80, 200)
    keys = {TASK.problem_key(p) for p in harder}
    assert not keys & {TASK.problem_key(p) for p in train}
    assert not keys & {TASK.problem_key(p) for p in load_problems("builtin:integration-hard")}
    assert all(p.meta["terms"] in (3, 4) for p in harder + train)
