"""The countdown "skills" pretraining distribution: its answers, its mix, its wiring into `rungs pretrain`,
and its disjointness from every built-in countdown set (no evaluated or RL-trained problem is a
supervised example)."""

from __future__ import annotations

from pathlib import Path

import pytest
from _pretraining_pool import assert_excluded_problems_are_never_drawn, assert_pool_has_no_builtin_problem

from rungs.errors import UserError
from rungs.tasks import get_task
from rungs.tasks.countdown import parse_answer, render
from rungs.tasks.countdown_skills import in_prompt_order, skill_problems
from rungs.train.sft import SFTConfig, builtin_keys, pretraining_problems
from rungs.types import Problem

TASK = get_task("countdown")
CHECKPOINTS = Path(__file__).resolve().parent.parent / "rungs" / "checkpoints"


def test_every_answer_solves_its_problem_with_all_its_numbers():
    problems = skill_problems(300, seed=3, mixed_fraction=0.2, wide_fraction=0.1)
    assert len({TASK.problem_key(p) for p in problems}) == 300
    for p in problems:
        assert TASK.verify(p, f"<answer>{p.answer}</answer>").correct, (p.text, p.answer)
        assert p.meta["target"] <= TASK.max_target and p.meta["target"] not in p.meta["numbers"]


def test_the_mix_holds_pairs_triples_and_sparse_four_to_six_number_problems():
    problems = skill_problems(1000, seed=1, mixed_fraction=0.1, single_fraction=0.25, wide_fraction=0.05)
    sizes = {k: sum(len(p.meta["numbers"]) == k for p in problems) for k in (2, 3, 4, 5, 6)}
    assert all(sizes.values())
    assert sizes[3] > sizes[2] > sizes[4] > sizes[5] + sizes[6]
    assert max(max(p.meta["numbers"]) for p in problems if len(p.meta["numbers"]) == 2) > 20  # larger pairs than level 1
    assert [p.text for p in skill_problems(50, seed=1, mixed_fraction=0.1, single_fraction=0.25,
                                           wide_fraction=0.05)] == [p.text for p in problems[:50]]  # prefix-stable
    with pytest.raises(ValueError):
        skill_problems(1, mixed_fraction=0.5, single_fraction=0.4, wide_fraction=0.2)


def test_answers_follow_the_prompts_order_where_plus_and_times_allow():
    tree = parse_answer("8 * (37 - 17) + 20")[0]
    assert render(in_prompt_order(tree, [20, 17, 37, 8])) == "20 + (37 - 17) * 8"  # - keeps its order
    assert render(in_prompt_order(tree, [8, 37, 17, 20])) == "8 * (37 - 17) + 20"  # already in order
    plain, ordered = skill_problems(40, seed=2), skill_problems(40, seed=2, prompt_order=True)
    assert [p.text for p in plain] == [p.text for p in ordered]  # the same draws, answers reordered
    assert any(a.answer != b.answer for a, b in zip(plain, ordered))
    problem = Problem("p", "numbers: 20 17 37 8; target: 180")
    assert TASK.verify(problem, "<answer>20 + (37 - 17) * 8</answer>").correct


def test_excluded_problems_are_never_drawn():
    assert_excluded_problems_are_never_drawn(TASK, skill_problems(80, seed=7), 80, seed=7)


def test_pretrain_wires_the_wide_share_and_refuses_it_where_a_task_has_none():
    cfg = SFTConfig(task="countdown", distribution="skills", mixed_fraction=0.0, single_fraction=0.0,
                    wide_fraction=1.0, train_problems=20, eval_problems=5)
    pool, evals = pretraining_problems(cfg, TASK)
    assert all(len(p.meta["numbers"]) in (5, 6) for p in pool + evals)
    ordered = SFTConfig(task="countdown", distribution="skills", prompt_order=True, train_problems=20, eval_problems=0)
    expected = skill_problems(20, seed=0, mixed_fraction=0.02, single_fraction=0.4, wide_fraction=0.0, prompt_order=True,
                              exclude=builtin_keys(TASK))
    assert pretraining_problems(ordered, TASK)[0] == expected  # --wide-fraction 0 means none
    with pytest.raises(UserError, match="wide"):
        pretraining_problems(SFTConfig(task="integration", distribution="skills", wide_fraction=0.1,
                                       train_problems=5, eval_problems=0), get_task("integration"))
    with pytest.raises(UserError, match="wide_fraction"):
        SFTConfig(task="countdown", distribution="skills", mixed_fraction=0.5, single_fraction=0.4, wide_fraction=0.2)


@pytest.mark.parametrize("checkpoint", ["tiny-countdown", "tiny-countdown-long"])
def test_no_builtin_problem_is_in_the_pretraining_pool(checkpoint):
    """Each shipped countdown checkpoint's pool (its recorded settings), regenerated, against every
    built-in countdown set (easy, hard, dev, train) by `problem_key`: sorted numbers and target, so a
    built-in problem is caught in any order of its numbers."""
    assert_pool_has_no_builtin_problem(TASK, CHECKPOINTS / checkpoint / "training.json",
                                       Problem("h", "numbers: 47 22 31 40; target: 899"))


def test_steps_answers_are_the_same_solutions_as_worked_chains():
    plain = skill_problems(200, seed=4, mixed_fraction=0.2, wide_fraction=0.1, prompt_order=True)
    steps = skill_problems(200, seed=4, mixed_fraction=0.2, wide_fraction=0.1, prompt_order=True, answer_format="steps")
    assert [p.text for p in plain] == [p.text for p in steps]  # the same draws
    for a, b in zip(plain, steps):
        assert b.answer.count(";") == len(b.meta["numbers"]) - 2  # one step per operation
        assert TASK.answer_key(b, b.answer) == TASK.answer_key(a, a.answer)  # the same value from the same numbers
        assert TASK.verify(b, f"<answer>{b.answer}</answer>").correct
    with pytest.raises(ValueError, match="answer_format"):
        skill_problems(1, answer_format="chain")
    cfg = SFTConfig(task="countdown", distribution="skills", answer_format="steps", train_problems=10, eval_problems=0)
    assert all("=" in p.answer for p in pretraining_problems(cfg, TASK)[0])
    with pytest.raises(UserError, match="answer_format"):
        SFTConfig(task="countdown", answer_format="chain")
    with pytest.raises(UserError, match="answer-format"):
        pretraining_problems(SFTConfig(task="integration", distribution="skills", answer_format="steps",
                                       train_problems=5, eval_problems=0), get_task("integration"))
