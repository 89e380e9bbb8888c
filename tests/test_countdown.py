"""Countdown: problem parsing, exact verification, voting keys, generator, solver and variants."""

from __future__ import annotations

import random
import re
from collections import Counter
from fractions import Fraction
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rungs.errors import UserError
from rungs.tasks import get_task
from rungs.tasks.countdown import (
    CountdownTask,
    _apply,
    format_problem,
    parse_answer,
    parse_spec,
    render,
    render_steps,
    solve,
)
from rungs.types import Problem, Status

TASK = CountdownTask()


def problem(numbers: list[int], target: int, pid: str = "p") -> Problem:
    return Problem(pid, format_problem(numbers, target))


# ---- problems ------------------------------------------------------------------------------------


def test_registered_under_its_name():
    assert isinstance(get_task("countdown"), CountdownTask)


@pytest.mark.parametrize(
    "text",
    [
        "numbers: 3 7 25 50; target: 72",
        "Numbers: [3, 7, 25, 50]; Target: 72",
        "numbers=3,7,25,50 target=72",
        "Using the numbers [3, 7, 25, 50], create an equation that equals 72. You can use +, -, * and /.",
    ],
)
def test_problem_text_formats(text):
    assert parse_spec(Problem("a", text)) == ([3, 7, 25, 50], 72)


def test_meta_fallback_as_in_tinyzero_rows():
    assert parse_spec(Problem("a", "reach it", meta={"nums": [44, 19, 35], "target": 98})) == ([44, 19, 35], 98)
    assert parse_spec(Problem("a", "reach it", meta={"numbers": "1 2", "target": "3"})) == ([1, 2], 3)


@pytest.mark.parametrize(
    "prob",
    [
        Problem("bad1", "what is 2 + 2?"),
        Problem("bad2", "x", meta={"numbers": [1, 2.5], "target": 3}),
        Problem("bad3", "x", meta={"numbers": [1, 2], "target": "many"}),
        Problem("bad4", "x", meta={"numbers": [], "target": 3}),
    ],
)
def test_bad_problem_is_a_user_error_naming_it(prob):
    with pytest.raises(UserError, match=prob.id):
        TASK.parse_problem(prob)


def test_prompts():
    p = problem([3, 7, 25, 50], 72)
    assert TASK.prompt(p, "compact") == "numbers: 3 7 25 50; target: 72"
    instruct = TASK.prompt(p)
    assert "[3, 7, 25, 50]" in instruct and "72" in instruct and "<answer>" in instruct
    assert "exactly once" in instruct
    assert "at most once" in CountdownTask(reuse="at_most_once").prompt(p)
    with pytest.raises(UserError, match="style"):
        TASK.prompt(p, "chatty")
    with pytest.raises(UserError, match="reuse"):
        CountdownTask(reuse="twice")


def test_problem_key_ignores_order():
    assert TASK.problem_key(problem([3, 7], 10)) == TASK.problem_key(problem([7, 3], 10, pid="other"))
    assert TASK.problem_key(problem([3, 7], 10)) != TASK.problem_key(problem([3, 7], 21))


# ---- verification --------------------------------------------------------------------------------

P72 = problem([3, 7, 25, 50], 72)  # no exact solution with all four: most checks here are refusals
P24 = problem([1, 3, 4, 6], 24)  # 6 / (1 - 3/4) = 24: needs a fractional intermediate


@pytest.mark.parametrize(
    "answer",
    ["6 / (1 - 3/4)", "6/(1-3/4) = 24", "6 \\div (1 - 3 \\div 4)", "  6 / ( 1 - 3 / 4 ) "],
)
def test_correct(answer):
    verdict = TASK.verify_answer(P24, answer)
    assert verdict.status is Status.CORRECT and verdict.reward == 1.0
    assert verdict.answer == answer


def test_correct_in_a_completion_and_latex_times():
    p = problem([4, 6, 10], 34)
    assert TASK.verify(p, "thinking... <answer>4 \\times 6 + 10</answer>").correct
    assert TASK.verify(p, "so \\boxed{4 × 6 + 10}").correct
    assert TASK.verify(p, "I think 4*6+10").status is Status.NO_ANSWER


@pytest.mark.parametrize(
    ("answer", "status", "detail"),
    [
        ("1 + 3 + 4 + 6", Status.WRONG, "evaluates to 14, not 24"),
        ("6 / (1 - 3) / 4", Status.WRONG, "-3/4"),
        ("6 / (4 - 3 - 1)", Status.WRONG, "division by zero"),
        ("6 / (1 - 3/4) = 25", Status.WRONG, "claims 25"),
        ("6 * 4 * 1 * 3 / 3", Status.REJECTED, "uses 3 2 times"),
        ("6 * 4 * 1", Status.REJECTED, "does not use 3"),
        ("6 * 4 * 1 + 3 - 3", Status.REJECTED, "uses 3 2 times"),
        ("6 * 4 + 3 - 3 * 1 + 0", Status.REJECTED, "uses 0"),
        ("6 * 4.0 * 1 + 3 - 3", Status.REJECTED, "not an integer literal"),
        ("6 * 4 * 1e0 * (3/3)", Status.REJECTED, "not an integer literal"),
        ("-(1 - 3) * 4 * 6 / 2", Status.REJECTED, "unary minus"),
        ("6 * 4 ^ 1 * 3 / 3", Status.REJECTED, "'^'"),
        ("6 ** 4 * 1 * 3", Status.REJECTED, "'**'"),  # the operator as written
        ("x * 4 * 1 * 3 * 6", Status.REJECTED, "symbol 'x'"),
        ("sqrt(1) * 4 * 6 * 3 / 3", Status.REJECTED, "function sqrt"),
        ("6(4)(1)(3)/3", Status.UNPARSEABLE, "implicit multiplication"),
        ("6 4 1 3", Status.UNPARSEABLE, "implicit multiplication"),
        ("6 * (4 + 1", Status.UNPARSEABLE, "end of expression"),
        ("6 * 4 = 24 = 24", Status.UNPARSEABLE, "more than one '='"),
        ("6 * 4 * 1 * 3 / 3 = twenty", Status.UNPARSEABLE, "after '='"),
        ("__import__('os')", Status.REJECTED, "not allowed"),
        ("   ", Status.NO_ANSWER, "empty"),
    ],
)
def test_refusals(answer, status, detail):
    verdict = TASK.verify_answer(P24, answer)
    assert verdict.status is status, verdict
    assert verdict.reward == 0.0
    assert detail in verdict.detail


def test_at_most_once_allows_leaving_numbers_out():
    relaxed = CountdownTask(reuse="at_most_once")
    assert relaxed.verify_answer(P72, "50 + 25 - 3").correct
    assert TASK.verify_answer(P72, "50 + 25 - 3").status is Status.REJECTED
    assert relaxed.verify_answer(P72, "50 + 25 - 3 + 7 - 7").status is Status.REJECTED  # 7 twice


def test_negative_given_numbers_are_literals():
    p = problem([-3, 5], 2)
    assert TASK.verify_answer(p, "-3 + 5").correct
    assert TASK.verify_answer(p, "5 + (-3)").correct
    assert TASK.verify_answer(problem([3, 5], 2), "-3 + 5").status is Status.REJECTED


def test_duplicate_given_numbers_may_each_be_used():
    p = problem([4, 4, 10], 11)
    assert TASK.verify_answer(p, "10 + 4 / 4").correct
    assert TASK.verify_answer(p, "10 + 4 / 4 + 4 - 4").status is Status.REJECTED


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789+-*/()=. xe^", max_size=40) | st.text(max_size=40))
def test_any_text_gets_a_verdict_and_never_raises(text):
    verdict = TASK.verify_answer(P24, text)
    assert verdict.reward in (0.0, 1.0)
    if verdict.correct:  # only expressions over exactly 1 3 4 6 may pass
        assert sorted(map(int, re.findall(r"\d+", text.split("=")[0]))) == [1, 3, 4, 6]


# ---- voting keys ---------------------------------------------------------------------------------


def test_answer_key_groups_all_correct_answers():
    p = problem([2, 3, 4], 14)
    a, b = "2 + 3 * 4", "(4 * 3) + 2"
    c = "3 * 4 + 2"
    assert TASK.answer_key(p, a) == TASK.answer_key(p, b) == TASK.answer_key(p, c) == (Fraction(14), (2, 3, 4))
    assert TASK.answer_key(p, "(2 + 3) * 4") != TASK.answer_key(p, a)  # 20: a different answer
    assert TASK.answer_key(p, "4 * 3 + 2 + 0") != TASK.answer_key(p, a)  # same value, other numbers
    assert TASK.answer_key(p, "2 +") is None
    assert TASK.answer_key(p, "2 / (4 - 4)") is None


# ---- generator -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("difficulty", "counts", "level"),
                         [(1, {2}, 1), (2, {3}, 2), (3, {4}, 3), (4, {5, 6}, 4), (6, {6}, 5), (99, {6}, 5), (0.2, {2}, 1)])
def test_generate_counts_and_known_solutions(difficulty, counts, level):
    problems = TASK.generate(12, difficulty, seed=7)
    assert len(problems) == 12
    assert len({TASK.problem_key(p) for p in problems}) == 12
    for p in problems:
        numbers, target = parse_spec(p)
        assert len(numbers) in counts
        assert p.meta["numbers"] == numbers and p.meta["target"] == target
        assert p.meta["difficulty"] == level  # past either end: the level actually generated
        assert 0 < target <= TASK.max_target
        verdict = TASK.verify_answer(p, p.answer)
        assert verdict.correct, (p, verdict)


def test_generate_is_deterministic_per_seed():
    a, b, c = TASK.generate(5, 3, seed=1), TASK.generate(5, 3, seed=1), TASK.generate(5, 3, seed=2)
    assert [p.to_dict() for p in a] == [p.to_dict() for p in b]
    assert [p.text for p in a] != [p.text for p in c]


def test_difficulty_grows_with_numbers_and_target():
    d = TASK.difficulty
    assert d(problem([1, 2], 3)) < d(problem([1, 2, 3], 6)) < d(problem([1, 2, 3, 4], 10))
    assert d(problem([10, 20, 3], 5)) < d(problem([10, 20, 3], 600))
    means = [sum(map(d, TASK.generate(10, k, seed=0))) / 10 for k in (1, 2, 3, 4)]
    assert means == sorted(means)


def test_alphabet_covers_compact_prompts_and_answers():
    alphabet = set(TASK.alphabet)
    for k in (1, 3, 5):
        for p in TASK.generate(5, k, seed=3):
            assert set(TASK.prompt(p, "compact")) <= alphabet
            assert set(p.answer) <= alphabet


# ---- solver --------------------------------------------------------------------------------------


@cache
def reachable(nums: tuple[int, ...]) -> frozenset:
    """All values of expressions using every number once: the plain recursive definition."""
    if len(nums) == 1:
        return frozenset(nums)
    out = set()
    for i in range(len(nums)):
        for j in range(len(nums)):
            if i != j:
                rest = tuple(nums[k] for k in range(len(nums)) if k not in (i, j))
                for op in "+-*/":
                    v = _apply(op, nums[i], nums[j])
                    if v is not None:
                        out |= reachable(tuple(sorted(rest + (v,), key=lambda x: (float(x), str(x)))))
    return frozenset(out)


def test_solver_agrees_with_brute_force():
    rng = random.Random(0)
    for _ in range(25):
        nums = [rng.randint(0, 9) for _ in range(rng.randint(1, 4))]
        values = reachable(tuple(nums))
        for target in range(-3, 30):
            found = solve(nums, target)
            assert (found is not None) == (target in values), (nums, target, found)
            if found is not None:
                assert TASK.verify_answer(problem(nums, target), found).correct


def test_solver_six_numbers():
    nums = [100, 75, 50, 25, 6, 3]
    found = solve(nums, 952)  # the famous 1975 game
    assert found is not None and TASK.verify_answer(problem(nums, 952), found).correct
    assert solve([1, 1, 1, 1, 1, 1], 1000) is None  # at most 2**3 = 8
    assert solve([2, 5, 7], 7, reuse="at_most_once") == "7"  # smallest subsets are tried first
    found = solve([2, 5, 7], 10, reuse="at_most_once")
    assert CountdownTask(reuse="at_most_once").verify_answer(problem([2, 5, 7], 10), found).correct
    assert (solve([2, 5, 7], 7) is not None) == (7 in reachable((2, 5, 7)))


def test_solver_gives_up_within_its_time_limit():
    assert solve([2, 3, 5, 7, 11, 13, 17, 19], 10**9 + 7, time_limit=0.05) is None


# ---- variants ------------------------------------------------------------------------------------


def test_variants_are_easier_solvable_and_distinct():
    parent = TASK.generate(1, 5, seed=11)[0]
    variants = TASK.variants(parent, 10, random.Random(0))
    assert 5 <= len(variants) <= 10
    parent_numbers, _ = parse_spec(parent)
    keys = {TASK.problem_key(v.problem) for v in variants}
    assert len(keys) == len(variants) and TASK.problem_key(parent) not in keys
    assert {v.transform for v in variants} <= {"merge_numbers", "subexpression", "drop_numbers"}
    for v in variants:
        numbers, target = parse_spec(v.problem)
        assert len(numbers) < len(parent_numbers)
        if v.transform != "merge_numbers":
            assert not Counter(numbers) - Counter(parent_numbers)
        assert v.parent_id == parent.id and v.difficulty < TASK.difficulty(parent)
        assert v.difficulty == TASK.difficulty(v.problem)
        assert TASK.verify_answer(v.problem, v.problem.answer).correct


def test_merge_variants_climb_one_number_at_a_time_to_the_same_target():
    parent = Problem("q", "numbers: 3 7 25 50 2; target: 22", answer="(3 + 7) * 2 + 50 / 25")
    merged = [v for v in TASK.variants(parent, 4, random.Random(0)) if v.transform == "merge_numbers"]
    assert [len(parse_spec(v.problem)[0]) for v in merged] == [4, 3]
    before = [3, 7, 25, 50, 2]
    for v in merged:  # each is the one before with two numbers x, y replaced by x op y
        numbers, target = parse_spec(v.problem)
        assert target == 22 and TASK.verify_answer(v.problem, v.problem.answer).correct
        assert any(Counter(before) - Counter([x, y]) + Counter([_apply(op, x, y)]) == Counter(numbers)
                   for i, x in enumerate(before) for j, y in enumerate(before) if i != j for op in "+-*/"
                   if not (op == "/" and y == 0))
        before = numbers


def test_merge_variants_keep_the_numbers_a_solution_leaves_unused():
    task = CountdownTask(reuse="at_most_once")
    parent = Problem("q", "numbers: 3 7 25 50 2 9; target: 22", answer="(3 + 7) * 2 + 50 / 25")
    merged = [v for v in task.variants(parent, 4, random.Random(0)) if v.transform == "merge_numbers"]
    assert [len(parse_spec(v.problem)[0]) for v in merged] == [5, 4]
    for v in merged:
        assert 9 in parse_spec(v.problem)[0] and task.verify_answer(v.problem, v.problem.answer).correct


def test_variants_of_an_unlabelled_problem_use_the_solver():
    parent = Problem("q", "numbers: 100 75 50 25 6 3; target: 952")
    variants = TASK.variants(parent, 6, random.Random(1))
    assert any(v.transform == "subexpression" for v in variants)
    assert all(TASK.verify_answer(v.problem, v.problem.answer).correct for v in variants)
    assert TASK.has_symbolic_variants


def _shape(answer: str) -> str:
    """The answer's operations and brackets with every number replaced by N."""
    return re.sub(r"\d+", "N", render(parse_answer(answer)[0]))


@pytest.mark.parametrize("seed", range(6))
def test_smaller_numbers_keeps_the_solutions_shape_over_smaller_numbers(seed):
    parent = TASK.generate(1, 4, seed=seed)[0]
    variants = TASK.variants(parent, 6, random.Random(seed), transforms=("smaller_numbers", "merge_numbers"))
    shrunk = [v for v in variants if v.transform == "smaller_numbers"]
    assert 1 <= len(shrunk) <= 2 and variants[:len(shrunk)] == shrunk  # made first, before the merges
    parent_numbers, _ = parse_spec(parent)
    for v in shrunk:
        numbers, target = parse_spec(v.problem)
        assert len(numbers) == len(parent_numbers) and target not in numbers and target > 0
        assert max(numbers) <= 12 and sum(numbers) < sum(parent_numbers)
        assert _shape(v.problem.answer) == _shape(parent.answer)  # the same operations and brackets
        assert TASK.verify_answer(v.problem, v.problem.answer).correct
        assert v.difficulty == TASK.difficulty(v.problem)


def test_the_default_transforms_leave_smaller_numbers_out_and_an_unknown_one_is_refused():
    parent = TASK.generate(1, 4, seed=3)[0]
    assert "smaller_numbers" not in {v.transform for v in TASK.variants(parent, 10, random.Random(0))}
    only = TASK.variants(parent, 10, random.Random(0), transforms=("subexpression",))
    assert only and {v.transform for v in only} == {"subexpression"}
    with pytest.raises(UserError, match="unknown transform 'smaller'"):
        TASK.variants(parent, 4, random.Random(0), transforms=("smaller",))


# -- worked chains: one operation per step ------------------------------------------------------
@pytest.mark.parametrize("answer", ["3+7=10;10*5=50;50-25=25", "3 + 7 = 10\n10 * 5 = 50\n50 - 25 = 25",
                                    "3+7=10, 10*5=50, 50-25=25;", "7+3=10;5*10=50;50-25=25"])
def test_a_worked_chain_is_the_expression_it_spells_out(answer):
    p = problem([3, 7, 5, 25], 25)
    verdict = TASK.verify(p, f"<answer>{answer}</answer>")
    assert verdict.correct, verdict
    tree = parse_answer(answer)[0]
    assert TASK.answer_key(p, answer) == TASK.answer_key(p, render(tree)) == (25, (3, 5, 7, 25))


@pytest.mark.parametrize(
    ("answer", "status", "detail"),
    [
        ("3+7=11;11*5=55;55-25=30", Status.WRONG, "step 1: 3 + 7 is 10, not 11"),
        ("3+7=10;10*5=50;50-25=26", Status.WRONG, "step 3: 50 - 25 is 25, not 26"),
        ("3+7=10;10*5=50", Status.REJECTED, "does not use 25"),  # stops short
        ("3+7=10;25-5=20;10+20=30", Status.WRONG, "claims 30"),  # the last step is the answer
        ("3+7=10;10+10=20;20+5=25", Status.REJECTED, "uses 10, which is not"),  # a result is used once, then 10 is a literal
        ("3+7=10;10*5", Status.UNPARSEABLE, "step 2: expected 'expression = value'"),
        ("3+7=10;x*5=50", Status.REJECTED, "step 2: symbol 'x'"),
        ("3+7=10;10(5)=50", Status.UNPARSEABLE, "step 2: implicit multiplication"),
        ("3-3=0;7/0=1", Status.WRONG, "step 2: division by zero"),
        (";".join(["3+7=10"] * 21), Status.REJECTED, "21 steps"),
    ],
)
def test_a_worked_chain_is_checked_step_by_step(answer, status, detail):
    verdict = TASK.verify_answer(problem([3, 7, 5, 25], 25), answer)
    assert verdict.status is status, verdict
    assert detail in verdict.detail


def test_a_chain_result_stands_for_its_expression_before_an_equal_given_number():
    p = problem([10, 3, 7], 100)
    assert TASK.verify_answer(p, "3+7=10;10*10=100").correct  # one 10 is the result, the other the given 10
    assert render(parse_answer("3+7=10;10*10=100")[0]) == "(3 + 7) * 10"


def test_render_steps_round_trips_and_refuses_a_fractional_step():
    for text in ["(3 + 7) * 5 - 25", "50 / (7 - 5) + 3", "25"]:
        tree = parse_answer(text)[0]
        assert render(parse_answer(render_steps(tree))[0]) == render(tree)
    assert render_steps(parse_answer("(50 - 25) * (7 - 3)")[0]) == "50-25=25;7-3=4;25*4=100"
    with pytest.raises(ValueError, match="positive integer"):
        render_steps(parse_answer("7 / 2 * 4")[0])


def test_answers_breaking_the_number_rules_never_vote() -> None:
    from rungs.integrations import compute_score_vote_batch

    task = get_task("countdown")
    p = problem([2, 3, 4], 14)
    assert task.answer_key(p, "2+3*4") is not None
    assert task.answer_key(p, "14") is None  # the target itself, no number used
    assert task.answer_key(p, "3*4+2-4+4") is None  # 4 used three times
    assert task.answer_key(p, "10+4") is None  # 10 not given
    answers = ["<answer>14</answer>"] * 3 + ["<answer>2+3*4</answer>"]
    rewards = compute_score_vote_batch(["countdown"] * 4, answers, ["numbers: 2 3 4; target: 14"] * 4,
                                       [{"index": 0}] * 4, return_dict=False)
    assert rewards == [0.0, 0.0, 0.0, 1.0]  # the bare target cannot win the vote


def test_a_deep_chain_of_steps_has_no_key_rather_than_a_recursion_error() -> None:
    task = get_task("countdown")
    steps, total = ["+".join(["1"] * 199) + "=199"], 199
    for _ in range(19):
        steps.append(f"{total}+" + "+".join(["1"] * 198) + f"={total + 198}")
        total += 198
    assert task.answer_key(problem([3, 7, 25, 50], 72), ";".join(steps)) is None


@pytest.mark.parametrize("target", [6.9, "6.5", True, [6]])
def test_a_target_that_is_not_an_integer_is_refused_not_truncated(target: object) -> None:
    with pytest.raises(UserError, match="target must be an integer"):
        parse_spec(Problem("p", "", None, {"numbers": [1, 2, 3], "target": target}))
    assert parse_spec(Problem("p", "", None, {"numbers": [1, 2, 3], "target": 6.0})) == ([1, 2, 3], 6)


@pytest.mark.parametrize(("text", "meta"), [
    ("Using the numbers [1, 2, 3], create an equation that equals 6.5.", {}),
    ("Using the numbers [1, 2, 3], create an equation that equals 1,000.", {}),  # never the target 1
    ("Using the numbers [1, 2, 3], create an equation that equals 2/3.", {}),
    ("Using the numbers [1, 2, 3], create an equation that equals 1e3.", {}),
    ("", {"numbers": "3, 7.5, 25", "target": 6}),
    ("", {"numbers": [1, 2], "target": "1_000"}),
])
def test_decimals_in_a_spec_are_refused_not_truncated(text, meta):
    with pytest.raises(UserError, match="must be (an integer|integers)"):
        parse_spec(Problem("p", text, None, meta))


def test_integer_specs_still_read():
    assert parse_spec(Problem("p", "Using the numbers [1, 2, 3], create an equation that equals 6.")) == ([1, 2, 3], 6)
    assert parse_spec(Problem("p", "Using the numbers [1, 2, 3], create an equation that equals 6, once each.")) == ([1, 2, 3], 6)
    assert parse_spec(Problem("p", "Using the numbers [1, 2, 3], create an equation that equals 6.\n1. Show steps")) == ([1, 2, 3], 6)
    assert parse_spec(Problem("p", "", None, {"numbers": "3,7,25", "target": " 35 "})) == ([3, 7, 25], 35)
