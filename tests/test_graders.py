"""Grader faults of issue 9, each tested as a kind: the issue's verdicts plus more of the same kind.

Every row is (gold or problem, answer or completion, expected reward). The rows were replayed
from bug reports filed against Math-Verify, TRL, veRL, TinyZero and lm-evaluation-harness.
"""

from __future__ import annotations

import pytest

from rungs.tasks import get_task
from rungs.types import Problem, Status


@pytest.fixture(scope="module")
def math_task():
    return get_task("math")


@pytest.fixture(scope="module")
def countdown_task():
    return get_task("countdown")


@pytest.fixture(scope="module")
def integration_task():
    return get_task("integration")


def _math(task, gold: str, answer: str, *, completion: bool = False) -> float:
    problem = Problem("q", "a question", gold)
    verdict = task.verify(problem, answer) if completion else task.verify_answer(problem, answer)
    return verdict.reward


# -- 1. numbers are compared relative to their size ------------------------------------------------

@pytest.mark.parametrize(
    ("gold", "answer", "expected"),
    [
        # the rows
        (r"\frac{1}{20!}", r"\frac{1}{21!}", 0.0),
        ("0.0000001", "0.0000002", 0.0),
        (r"\frac{1}{2^{30}}", "0.000000001", 0.0),
        ("0.5", r"\frac12", 1.0),
        ("2.50", "2.5", 1.0),
        ("10^{-7}", "0.0000001", 1.0),
        # more of the kind: tiny values that Math-Verify's 6 decimals would merge
        (r"3\times10^{-8}", r"3.1\times10^{-8}", 0.0),
        (r"10^{-10}", r"2\cdot10^{-10}", 0.0),
        ("0", "0.0000001", 0.0),
        ("0.00012345", "0.00012346", 0.0),
        (r"\frac{1}{1024^3}", "0.000000001", 0.0),
        (r"10^{-20}", "0", 0.0),
        (r"\frac{\pi}{10^8}", r"\frac{\pi}{10^8+1}", 0.0),  # exact forms: 15 significant digits
        (r"\{10^{-7}, 1\}", r"\{2\cdot10^{-7}, 1\}", 0.0),  # inside sets and intervals too
        (r"[0, 10^{-7}]", r"[0, 2\cdot 10^{-7}]", 0.0),
        ("1000000", "1000000.4", 0.0),
        # ...while equal numbers in other forms, and 6-significant-digit decimals, stay accepted
        ("1/3", "0.333333", 1.0),
        (r"\frac{2}{3}", "0.666667", 1.0),
        (r"\frac{\sqrt2}{2}", "0.707107", 1.0),
        (r"\frac{1}{8.1}", "0.123457", 1.0),
        (r"1.5\times10^{-8}", "0.000000015", 1.0),
        (r"-10^{-7}", "-0.0000001", 1.0),
        ("0", "0.0", 1.0),
        ("1000000", "1000000.0", 1.0),
        (r"2.5\times10^{6}", "2500000", 1.0),
        (r"9\%", "0.09", 1.0),
        (r"50\%", "50", 1.0),
        (r"\frac{1}{20!}", r"\frac{1}{20!}", 1.0),
    ],
)
def test_numbers_are_compared_relative_to_their_size(math_task, gold, answer, expected):
    assert _math(math_task, gold, answer) == expected


def test_the_relative_comparison_does_not_leak_into_other_math_verify_users(math_task):
    import math_verify

    _math(math_task, "0.0000001", "0.0000002")  # installs rungs' comparison
    gold, pred = math_verify.parse("$0.0000001$"), math_verify.parse("$0.0000002$")
    assert math_verify.verify(gold, pred, timeout_seconds=None)  # Math-Verify's own verdict, unchanged


# -- 2. inequalities and intervals, both directions ------------------------------------------------

@pytest.mark.parametrize(
    ("gold", "answer", "expected"),
    [
        (r"(-\infty, 3)", "x<3", 1.0),
        ("(0, 12.5)", "0 < x < 12.5", 1.0),
        ("x<3", r"(-\infty, 3)", 1.0),
        ("0<x<12.5", "(0, 12.5)", 1.0),
        (r"(-\infty,3]", r"x\le 3", 1.0),
        (r"[2,\infty)", r"x\geq 2", 1.0),
        (r"(-\infty,3)", "3 > x", 1.0),
        (r"[0, 12.5)", r"0 \le x < 12.5", 1.0),
        (r"x \le 3", r"(-\infty, 3]", 1.0),
        (r"(-\infty,1)\cup(2,\infty)", r"x<1 \text{ or } x>2", 1.0),
        (r"x<1 \text{ or } x>2", r"(-\infty,1)\cup(2,\infty)", 1.0),
        (r"(-\infty,1)\cup(2,\infty)", r"x<1 \lor x>2", 1.0),
        (r"(-\infty,3)", r"x\le 3", 0.0),
        (r"(-\infty,3)", "x>3", 0.0),
        ("(0,12.5)", "0<x<12", 0.0),
        (r"[2,\infty)", "x>2", 0.0),
        ("x<3", r"(-\infty, 3]", 0.0),
        (r"(-\infty,1)\cup(2,\infty)", "x<1", 0.0),
        (r"(-\infty,1)\cup(2,\infty)", r"x<1 \text{ or } x>3", 0.0),
    ],
)
def test_inequalities_and_intervals_both_ways(math_task, gold, answer, expected):
    assert _math(math_task, gold, answer) == expected


# -- 3. \boxed without braces; 4. currency signs ----------------------------------------------------

@pytest.mark.parametrize(
    ("gold", "completion", "expected"),
    [
        ("2", r"... so our answer is $\boxed 2$.", 1.0),
        ("12", r"so it is \boxed 12.", 1.0),
        ("0.5", r"we get $\boxed \frac12$", 1.0),
        ("3", r"\(\boxed 3\)", 1.0),
        ("3", r"\fbox 3", 1.0),
        ("3", r"\boxed 4", 0.0),
        ("12", r"The total is \boxed{\$12}.", 1.0),
        ("12", r"<answer>$\$12$</answer>", 1.0),
        ("1000", r"\boxed{\$1,000}", 1.0),
        ("12", r"\boxed{\$13}", 0.0),
        ("12", r"\boxed{12\$}", 1.0),
    ],
)
def test_boxes_without_braces_and_currency_in_completions(math_task, gold, completion, expected):
    assert _math(math_task, gold, completion, completion=True) == expected


@pytest.mark.parametrize(
    ("gold", "answer", "expected"),
    [
        (r"\boxed 2", "2", 1.0),
        (r"\boxed{\frac12}", "0.5", 1.0),
        (r"\boxed 3", "4", 0.0),
        (r"\$18.90", "18.90", 1.0),
        (r"\$18.90", "18.9", 1.0),
        ("$18.90", r"\$18.90", 1.0),
        (r"\textdollar 5", "5", 1.0),
        (r"\$5", "6", 0.0),
    ],
)
def test_boxes_without_braces_and_currency_in_references(math_task, gold, answer, expected):
    assert _math(math_task, gold, answer) == expected


def test_escaped_dollars_do_not_confuse_math_mode_stripping():
    from rungs.verify.extract import extract_answer, strip_math_delimiters

    assert strip_math_delimiters(r"$\$12$") == r"\$12"
    assert strip_math_delimiters(r"$12\$") == r"$12\$"  # the last $ is a currency sign
    assert strip_math_delimiters("$x^2$") == "x^2"
    assert extract_answer(r"<answer>\$5</answer>") == r"\$5"


# -- 5. a truncated final answer does not resurrect an earlier one ----------------------------------

@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("so <answer>12</answer>. Wait, actually it is <answer>1", None),
        ("<answer>2*4+3</answer> hmm, let me redo it: <answer>(2+", None),
        (r"\boxed{12} wait, \boxed{1", None),
        (r"<answer>12</answer> then \boxed{1", None),
        (r"\boxed{12} then <answer>1", None),
        (r"<answer>\boxed{12</answer>", None),
        (r"the answer is \boxed", None),
        ("<answer>12</answer> done", "12"),
        (r"<answer>12</answer> and \boxed{13}", "12"),  # both closed: the tag still wins
        (r"\boxed{12} then \boxed{13}", "13"),
        (r"\boxedx{3} \boxed{4}", "4"),
    ],
)
def test_one_truncation_rule_for_every_wrapper(text, expected):
    from rungs.verify.extract import extract_answer

    assert extract_answer(text) == expected


def test_truncated_final_answers_score_zero_in_every_task(math_task, countdown_task, integration_task):
    assert _math(math_task, "12", "so <answer>12</answer>. Wait, actually it is <answer>1", completion=True) == 0.0
    assert _math(math_task, "12", r"so \boxed{12}. Wait, actually it is \boxed{1", completion=True) == 0.0
    countdown = Problem("c", "numbers: 2 3 4; target: 11")
    verdict = countdown_task.verify(countdown, "<answer>2*4+3</answer> hmm, let me redo it: <answer>(2+")
    assert verdict.reward == 0.0 and verdict.status is Status.NO_ANSWER and "cut off" in verdict.detail
    assert countdown_task.verify(countdown, r"<answer>2*4+3</answer> or \boxed{(2+").reward == 0.0
    assert countdown_task.verify(countdown, "<answer>2*4+3</answer>").reward == 1.0
    integral = Problem("i", "integrate(2*x, x)")
    assert integration_task.verify(integral, "<answer>x**2</answer> no wait <answer>x**2 +").reward == 0.0
    assert integration_task.verify(integral, r"\boxed{x^2} or rather \boxed{x^2 +").reward == 0.0
    assert integration_task.verify(integral, "<answer>x**2</answer>").reward == 1.0


# -- 8. implicit products in integration answers ---------------------------------------------------

@pytest.mark.parametrize(
    ("problem", "answer", "expected"),
    [
        ("integrate(2*x - 1, x)", "x(x-1)", 1.0),
        (r"\int x e^{x} dx", r"\boxed{xe^x - e^x + C}", 1.0),
        ("integrate(2*x - 1, x)", r"x\left(x-1\right)", 1.0),
        ("integrate(sin(x) + x*cos(x), x)", "xsin(x)", 1.0),
        ("integrate(cos(x) - x*sin(x), x)", "xcos(x)", 1.0),
        ("integrate(2, x)", "2x", 1.0),
        ("integrate(x**2*exp(x) + 2*x*exp(x), x)", "x^2e^{x}", 1.0),
        ("integrate(x**2*exp(x) + 2*x*exp(x), x)", "x^2e^x", 1.0),
        ("integrate(log(x) + 1, x)", "xln(x)", 1.0),
        ("integrate(log(x) + 1, x)", "xln|x|", 1.0),
        ("integrate(exp(x)*(x + 1), x)", "xexp(x)", 1.0),
        ("integrate(exp(x)*(x + 1), x)", "e^x(x)", 1.0),
        ("integrate(2*t + 1, t)", "t(t+1)", 1.0),
        ("integrate(pi, x)", "pi(x)", 1.0),
        ("integrate(2*x - 1, x)", r"\frac{2x(x-1)}{2}", 1.0),
        # products that are wrong, and names that are still not products
        ("integrate(2*x - 1, x)", "x(x-2)", 0.0),
        ("integrate(x*exp(x), x)", "xe^x + e^x", 0.0),
        ("integrate(2*x - 1, x)", "y(x-1)", 0.0),
        ("integrate(2*x - 1, x)", "f(x)", 0.0),
        ("integrate(x, x)", "polylog(2, x)", 0.0),
        ("integrate(x, x)", "xintegrate(x, x)", 0.0),
    ],
)
def test_implicit_products_in_integration_answers(integration_task, problem, answer, expected):
    assert integration_task.verify(Problem("i", problem), f"<answer>{answer}</answer>").reward == expected


def test_glued_names_split_only_into_known_pieces():
    from rungs.errors import UnsafeExpression
    from rungs.verify.safe_expr import parse_sympy, split_name

    assert split_name("xsin", ("x",)) == ["x", "sin"]
    assert split_name("xe", ("x",)) == ["x", "e"]
    assert split_name("xexp", ("x",)) == ["x", "exp"]
    assert split_name("polylog", ("x",)) == ["polylog"]  # p, o, l, y are not variables
    assert split_name("xy", ("x",)) == ["xy"]
    assert split_name("x2", ("x",)) == ["x2"]
    assert split_name("x" * 1000, ("x",)) == ["x"] * 1000  # linear, and the node limit still holds
    with pytest.raises(UnsafeExpression, match="nodes"):
        parse_sympy("x" * 900)
    with pytest.raises(UnsafeExpression, match="unevaluated"):
        parse_sympy("xintegrate(x, x)")
    with pytest.raises(UnsafeExpression, match="unknown function 'system'"):
        parse_sympy("system(x)")


# -- 6. TRL's reasoning_accuracy_reward semantics, as an option -------------------------------------

REASONING_ROWS = [
    # (completion, reward with reasoning_delimiters=["</think>"], reward with the default (off))
    (r"<think> Reasoning content </think> The final answer is \boxed{\frac{1}{3}}", 1.0, 1.0),
    (r"<think> Reasoning content </think> The final answer is \boxed{\frac{1}{2}}", 0.0, 0.0),
    (r"<think> Reasoning content with partial answers \boxed{\frac{1}{3}} but no final answer", 0.0, 1.0),
    (r"<think> it is \boxed{\frac{1}{3}} </think> so I am done", 0.0, 1.0),
    (r"<think>a</think> more <think>b</think> so \boxed{\frac{1}{3}}", 1.0, 1.0),
    (r"no reasoning block at all: \boxed{\frac{1}{3}}", 0.0, 1.0),
]


@pytest.mark.parametrize(("completion", "with_think", "default"), REASONING_ROWS)
def test_reasoning_option_matches_trl(math_task, completion, with_think, default):
    gold = r"\frac{1}{3}"
    thinking = math_task.with_reasoning(["</think>"])
    assert math_task.reasoning_delimiters is None  # off by default; the copy does not change the task
    assert thinking.verify(Problem("q", "?", gold), completion).reward == with_think
    assert math_task.verify(Problem("q", "?", gold), completion).reward == default
    assert get_task("math", reasoning_delimiters=["</think>"]).verify(Problem("q", "?", gold), completion).reward == with_think
    trl_rewards = pytest.importorskip("trl.rewards")
    trl_score = trl_rewards.reasoning_accuracy_reward([[{"role": "assistant", "content": completion}]], [gold],
                                                      reasoning_delimiters=["</think>"])
    assert trl_score == [with_think]


def test_reasoning_option_in_every_task_and_adapter(countdown_task):
    import pickle

    from rungs.integrations import TaskReward, compute_score

    countdown = countdown_task.with_reasoning("</think>")
    problem = Problem("c", "numbers: 2 3 4; target: 11")
    unfinished = countdown.verify(problem, "<think>maybe <answer>2*4+3</answer>")
    assert unfinished.reward == 0.0 and unfinished.status is Status.NO_ANSWER and "</think>" in unfinished.detail
    assert countdown.verify(problem, "<think>hm</think><answer>2*4+3</answer>").reward == 1.0
    assert pickle.loads(pickle.dumps(countdown)).reasoning_delimiters == ("</think>",)
    reward = TaskReward("math", reasoning_delimiters=["</think>"], workers=1)
    assert reward.task.reasoning_delimiters == ("</think>",)
    assert TaskReward("math").task.reasoning_delimiters is None
    unclosed = r"<think> so \boxed{12}"
    assert compute_score("math", unclosed, "12", workers=1) == 1.0
    assert compute_score("math", unclosed, "12", workers=1, reasoning_delimiters=["</think>"]) == 0.0
    assert compute_score("math", r"<think>x</think> \boxed{12}", "12", workers=1, reasoning_delimiters=["</think>"]) == 1.0


# -- 9. voting groups the answers the verifier calls equal -------------------------------------------

def _samples(task, problem, completions):
    from rungs.strategies.base import Sample, key_str
    from rungs.types import Completion

    out = []
    for text in completions:
        answer = task.extract_answer(text)
        key = None if answer is None else task.answer_key(problem, answer)
        out.append(Sample.from_completion(Completion(text), task.verify(problem, text), key_str(key)))
    return out


def test_majority_vote_merges_forms_the_verifier_accepts(math_task):
    from rungs.strategies.majority import Majority

    problem = Problem("q", "How many?", "1000")
    samples = _samples(math_task, problem, [r"\boxed{1,000}"] * 3 + [r"\boxed{1000}"] * 2 + [r"\boxed{999}"] * 4)
    choice = Majority().select(samples)
    assert choice.correct == 1.0 and samples[choice.index].correct


@pytest.mark.parametrize(
    "group",
    [
        ["1,000", "1000", "1000.0", r"\$1,000", "x = 1000", "10^3"],
        ["0.5", r"\frac12", "1/2", r"\dfrac{2}{4}", "x = 0.50", "$1/2$"],
        ["1/3", "0.333333", r"\frac{1}{3}"],
        ["2x+2", "2(x+1)", "2 + 2x"],
        ["x<3", r"(-\infty, 3)", "3 > x"],
        [r"(-\infty,1)\cup(2,\infty)", r"x<1 \text{ or } x>2"],
        [r"\{1,2\}", r"\{2, 1\}"],
        [r"\frac{\sqrt{2}}{2}", r"\frac{1}{\sqrt2}", "0.707107"],
        ["0.0000001", "10^{-7}"],
    ],
)
def test_math_keys_follow_the_verifier(math_task, group):
    problem = Problem("q", "?", group[0])
    keys = {math_task.answer_key(problem, a) for a in group}
    assert len(keys) == 1, keys
    assert all(math_task.verify_answer(Problem("q", "?", group[0]), a).correct for a in group)


@pytest.mark.parametrize(
    ("a", "b"),
    [("1000", "999"), ("1000000", "1000001"), ("0.0000001", "0.0000002"), (r"\frac{1}{20!}", r"\frac{1}{21!}"),
     ("1/3", "0.3"), ("x<3", r"(-\infty, 3]"), ("(1,2)", "[1,2]"), ("2x+2", "2x+3"), ("x", "y")],
)
def test_math_keys_keep_different_answers_apart(math_task, a, b):
    problem = Problem("q", "?", a)
    assert math_task.answer_key(problem, a) != math_task.answer_key(problem, b)
    assert not math_task.verify_answer(problem, b).correct


def test_keys_follow_the_verifier_in_the_other_tasks(countdown_task, integration_task):
    from rungs.strategies.majority import Majority

    countdown = Problem("c", "numbers: 2 3 4; target: 11")
    samples = _samples(countdown_task, countdown, ["<answer>2*4+3</answer>", "<answer>3 + 4*2</answer>", "<answer>(4*2)+3 = 11</answer>",
                                                   "<answer>2+3+4</answer>", "<answer>4+3+2</answer>"])
    assert len({s.key for s in samples[:3]}) == 1 and Majority().select(samples).correct == 1.0
    integral = Problem("i", "integrate(2*x - 1, x)")
    samples = _samples(integration_task, integral, ["<answer>x(x-1)</answer>", r"<answer>x\left(x-1\right) + C</answer>",
                                                    "<answer>x**2 - x + 5</answer>", "<answer>x**2</answer>", "<answer>x^2</answer>"])
    assert len({s.key for s in samples[:3]}) == 1 and None not in {s.key for s in samples}
    assert Majority().select(samples).correct == 1.0
