"""MathTask: Math-Verify equivalence (gold first), statuses, voting keys, generator, no signals."""

from __future__ import annotations

import threading

import pytest

from rungs.errors import UserError
from rungs.tasks import get_task
from rungs.tasks.math import MathTask
from rungs.types import Problem, Status
from rungs.verify.pool import VerifierPool


@pytest.fixture(scope="module")
def task() -> MathTask:
    return get_task("math")


def problem(answer: str | None) -> Problem:
    return Problem("q", "some question", answer)


@pytest.mark.parametrize(
    ("gold", "pred"),
    [
        ("\\frac{1}{2}", "0.5"),
        ("0.5", "\\dfrac{1}{2}"),
        ("1/2", "\\frac{2}{4}"),
        ("2x+2", "2(x+1)"),
        ("[1, 2)", "[1,2)"),
        ("\\{1, 2\\}", "\\{2, 1\\}"),
        ("3", "x = 3"),
        ("\\sqrt{2}/2", "\\frac{1}{\\sqrt{2}}"),
        ("$\\frac{3}{4}$", "\\boxed{\\frac34}"),  # gold may come with its own delimiters
        ("3.0", "3.0000001"),  # Math-Verify's 6 decimals, and 6 significant digits
    ],
)
def test_equivalent_forms_accepted(task: MathTask, gold: str, pred: str) -> None:
    verdict = task.verify_answer(problem(gold), pred)
    assert verdict.status is Status.CORRECT and verdict.reward == 1.0


@pytest.mark.parametrize(
    ("gold", "pred"),
    [("\\frac{1}{2}", "\\frac{1}{3}"), ("2x+2", "2x+1"), ("(0, 1)", "(0, 1]"), ("5", "5.001"), ("7", "-7"),
     ("3", "3.00001"), ("1000000", "1000010.0"), ("0.0000001", "0.0000002"),
     ("3", "3.0000001")],  # an integer reference is compared exactly by Math-Verify (README, "How answers are graded")
)
def test_wrong_answers_rejected(task: MathTask, gold: str, pred: str) -> None:
    verdict = task.verify_answer(problem(gold), pred)
    assert verdict.status is Status.WRONG and verdict.reward == 0.0


def test_statuses(task: MathTask) -> None:
    assert task.verify(problem("3"), "I think it is three.").status is Status.NO_ANSWER
    assert task.verify(problem("3"), "so \\boxed{3}").correct
    assert task.verify(problem("3"), "<answer>3</answer>").correct
    assert task.verify(problem("3"), "<answer>}{</answer>").status is Status.UNPARSEABLE
    missing = task.verify(problem(None), "\\boxed{3}")
    assert missing.status is Status.UNLABELLED and "needs a reference answer" in missing.detail


def test_generated_answers_verify(task: MathTask) -> None:
    problems = [p for d in (1, 2.5, 4) for p in task.generate(6, d, seed=3)]
    assert len({p.id for p in problems}) == len(problems)
    for p in problems:
        assert set(task.prompt(p, "compact")) <= set(task.alphabet)
        assert set(p.answer) <= set(task.alphabet)
        assert task.verify(p, f"... so the answer is \\boxed{{{p.answer}}}").correct, p
    assert task.generate(5, 3, seed=1) == task.generate(5, 3, seed=1)
    assert task.generate(5, 3, seed=1) != task.generate(5, 3, seed=2)


def test_prompts(task: MathTask) -> None:
    p = problem("1")
    assert "\\boxed{}" in task.prompt(p) and p.text in task.prompt(p)
    assert task.prompt(p, "compact") == p.text
    with pytest.raises(UserError, match="prompt style"):
        task.prompt(p, "chatty")


def test_answer_keys_merge_obvious_forms_only(task: MathTask) -> None:
    p = problem("1/2")
    keys = {task.answer_key(p, a) for a in ["0.5", "1/2", "\\frac{2}{4}", "\\dfrac12", "x = 0.50", "$1/2$"]}
    assert len(keys) == 1
    assert task.answer_key(p, "2x + 2") == task.answer_key(p, "2x+2")
    assert task.answer_key(p, "1/3") != task.answer_key(p, "0.3")
    assert task.answer_key(p, "   ") is None
    assert task.answer_key(p, "1/0") == "1/0"  # not a number: keyed as text, no exception


def test_verify_off_the_main_thread(task: MathTask) -> None:
    # Math-Verify's default timeouts use signal.alarm and fail outside the main thread.
    out: list = []
    thread = threading.Thread(target=lambda: out.append(task.verify(problem("\\frac{7}{8}"), "\\boxed{0.875}")))
    thread.start()
    thread.join(60)
    assert out and out[0].correct, out


def test_through_the_pool(task: MathTask) -> None:
    problems = task.generate(6, 2, seed=0)
    completions = [f"\\boxed{{{p.answer}}}" for p in problems[:3]] + ["\\boxed{nope}", "no box", "\\boxed{1/0}"]
    with VerifierPool(task, workers=2, timeout_s=10) as pool:
        verdicts = pool.verify(problems, completions)
    assert [v.correct for v in verdicts] == [True, True, True, False, False, False]
    assert verdicts[4].status is Status.NO_ANSWER


@pytest.mark.parametrize("answer", [
    r"\int_0^2 x\,dx", r"\sum_{k=1}^{2} 1", r"\lim_{x\to\infty} (2 + \frac{1}{x})", r"\frac{d}{dx} x^2",
    r"\prod_{k=1}^{1} 2", "1000000!", "10^{10^{10}}", r"\binom{1000000000}{100000000}", "(" * 60 + "2" + ")" * 60,
    "2+" * 600 + "0",
])
def test_unevaluated_operators_and_bombs_are_rejected(answer):
    """An operator whose value is the gold answer is a reward hack, not an answer."""
    verdict = MathTask().verify_answer(Problem("p", "What is 1+1?", "2"), answer)
    assert verdict.status is Status.REJECTED and verdict.reward == 0.0


# Short answers whose parse is a computation that never ends: refused by the structural screen
# (`screen_parsed`) after parsing, before any comparison or evaluation.
SCREENED_BOMBS = [
    r"\binom{10^{9}}{5*10^8}",
    r"\binom{2^{40}}{2^{39}}",
    r"(10^{9})!",
    r"\Gamma(10^{5})",
    r"10^{9999}",
    r"(2^{100})^{100}",
    r"3^{5000}",
]


@pytest.mark.parametrize("answer", SCREENED_BOMBS)
def test_short_bombs_are_refused_by_the_structural_screen(task: MathTask, answer: str) -> None:
    from rungs.tasks.math import parse_answer, screen_answer, screen_parsed

    assert screen_answer(answer) is None  # the text screen lets it through
    reason = screen_parsed(parse_answer(answer))
    assert reason, answer
    verdict = task.verify_answer(problem("2"), answer)
    assert verdict.status is Status.REJECTED and verdict.reward == 0.0
    assert verdict.detail == reason
    assert task.answer_key(problem("2"), answer) is None  # rejected: it never votes (and is never evaluated)


@pytest.mark.parametrize(
    ("gold", "pred"),
    [
        ("252", r"\binom{10}{5}"),
        ("120", "5!"),
        ("24", r"\Gamma(5)"),
        ("1024", "2^{10}"),
        ("2^{1000}", "2^{1000}"),
        ("\\frac18", r"\frac{\frac{\frac{1}{2}}{2}}{2}"),
        # 20 nested fractions: sympy's evalf of the unevaluated parse is exponential in the depth
        ("1", r"\frac{" * 20 + "1048576" + "}{2}" * 20),
    ],
)
def test_legitimate_numbers_pass_the_screen_and_verify(task: MathTask, gold: str, pred: str) -> None:
    from rungs.tasks.math import parse_answer, screen_parsed

    assert screen_parsed(parse_answer(pred)) is None
    verdict = task.verify_answer(problem(gold), pred)
    assert verdict.status is Status.CORRECT, verdict
    assert task.answer_key(problem(gold), pred) == task.answer_key(problem(gold), gold)


def test_deeply_nested_fractions_key_and_verify_by_value(task: MathTask) -> None:
    """`\\frac{...}{2}` 20 deep with a variable: keyed by value, like its flat form."""
    nested = r"\frac{" * 20 + "x" + "}{2}" * 20
    assert task.answer_key(problem("1"), nested) == task.answer_key(problem("1"), r"\frac{x}{1048576}")
    assert task.verify_answer(problem(r"\frac{x}{1048576}"), nested).status is Status.CORRECT
    assert task.verify_answer(problem(r"\frac{x}{1048575}"), nested).status is Status.WRONG


# Answers whose shape looks like a bomb (an exponent that is itself a power, a long integer, a
# literal binomial of four-digit numbers) but whose value is small: judged by magnitude, not shape.
SMALL_VALUES_OF_BOMB_SHAPE = [
    ("e^{-x^2/2}", r"\exp(-\frac{x^2}{2})"),
    ("x^{n^2}", "x^{n^2}"),
    ("256", "2^{2^{3}}"),
    ("65536", "2^{2^{2^{2}}}"),
    ("123456789012345678901234567890123456789", "123456789012345678901234567890123456789"),
    ("499500", r"\binom{1000}{2}"),
    ("2047276", r"\dbinom{2024}{2}"),
    ("2047276", r"{2024 \choose 2}"),
    ("e^{e^{e}}", "e^{e^{e}}"),
]


@pytest.mark.parametrize(("gold", "pred"), SMALL_VALUES_OF_BOMB_SHAPE)
def test_small_values_written_like_bombs_are_graded_not_refused(task: MathTask, gold: str, pred: str) -> None:
    from rungs.integrations import compute_score

    verdict = task.verify_answer(problem(gold), pred)
    assert verdict.status is Status.CORRECT, (gold, pred, verdict.detail)
    assert compute_score("math", f"\\boxed{{{pred}}}", gold, workers=1) == 1.0


def test_a_long_integer_one_digit_off_is_wrong(task: MathTask) -> None:
    gold = "123456789012345678901234567890123456789"
    assert task.verify_answer(problem(gold), gold[:-1] + "8").status is Status.WRONG


# Numbers too large or too small that are not exact rationals (so no digit count shows it), and
# literal binomials the parse itself would compute: refused, quickly, whatever their spelling.
MAGNITUDE_BOMBS = [
    r"\sin(e^{e^{100}})",
    r"\sin(\cosh(e^{100}))",
    r"\sin(2^{\pi^{100}})",
    r"\sin(e^{-e^{100}})",
    r"\dbinom{10000000}{5000000}",
    r"\tbinom{10000000}{5000000}",
    r"{10000000 \choose 5000000}",
    r"\binom{1000000000}{100000000}",
]


@pytest.mark.parametrize("answer", MAGNITUDE_BOMBS)
def test_bombs_are_refused_by_magnitude(task: MathTask, answer: str) -> None:
    verdict = task.verify_answer(problem("2"), answer)
    assert verdict.status is Status.REJECTED and verdict.reward == 0.0, verdict
    assert "too large" in verdict.detail or "too small" in verdict.detail or "binomial" in verdict.detail


def test_binomial_digits_matches_the_exact_count() -> None:
    from math import comb

    from rungs.tasks.math import binomial_digits

    for n, k in [(10, 5), (1000, 2), (2024, 1012), (3000, 1500), (5, 7), (7, 0)]:
        exact = len(str(comb(n, k))) if k <= n else 0
        assert abs(binomial_digits(n, k) - exact) < 1.0 or (exact == 0 and binomial_digits(n, k) == 0)


def test_a_power_tower_in_a_variable_keys_without_computing_it(task: MathTask) -> None:
    """The key evaluates at fixed points; the tower is weighed at each level, not built first."""
    from rungs.tasks.math import semantic_key

    assert semantic_key("x^{x^{x^{x^{x^{x}}}}}") is None  # too large at x = 2.72: no number key
    assert semantic_key("2^{2^{3}}") == semantic_key("256")


# What Math-Verify's parser computes while it parses (so `screen_parsed` comes too late): found in
# the text, in every spelling an outside check tried.
EAGER_BOMBS = [
    "1E999999", "x = 1E999999", r"\{1E999999\}",
    r"\binom{(1000000)}{500000}", r"{{1000000} \choose {500000}}", r"\binom{1000000+0}{500000}",
    r"\binom{2\times 500000}{500000}", r"\dbinom{(1000000)}{500000}", r"\binom{10000000.0}{5000000}",
    r"\binom{-1000000}{500000}", r"\Gamma(1000000)", r"\Gamma\left(1000000\right)",
]


@pytest.mark.parametrize("answer", EAGER_BOMBS)
def test_what_the_parse_would_compute_is_refused_from_the_text(task: MathTask, answer: str) -> None:
    from rungs.tasks.math import eager_bomb

    assert eager_bomb(answer), answer
    verdict = task.verify_answer(problem("2"), answer)
    assert verdict.status is Status.REJECTED and verdict.reward == 0.0


# Competition-sized answers the old limits refused (exponent above 1000, 10^N counted as 2N digits).
@pytest.mark.parametrize(("gold", "pred"), [
    ("x^{2024}", "x^{2024}"), ("2^{2023}", "2^{2023}"), ("10^{600}", "10^{600}"),
    ("10^{-600}", "10^{-600}"), ("1", r"\frac{10^{600}}{10^{600}}"), (r"1.5 \times 10^{600}", r"1.5 \times 10^{600}"),
    ("1500", "1.5E3"), ("24", r"\Gamma(5)"), ("2047276", r"\dbinom {2024} {2}"),
])
def test_large_but_bounded_answers_are_graded(task: MathTask, gold: str, pred: str) -> None:
    assert task.verify_answer(problem(gold), pred).status is Status.CORRECT, (gold, pred)


@pytest.mark.parametrize("answer", ["10^{1001}", "2^{10000}"])
def test_powers_past_a_thousand_digits_are_still_refused(task: MathTask, answer: str) -> None:
    assert task.verify_answer(problem("2"), answer).status is Status.REJECTED


@pytest.mark.parametrize(("gold", "pred", "status"), [
    (r"6.02 \times 10^{23}", "602000000000000000000000", Status.CORRECT),  # a decimal reference: 6 significant digits
    (r"6.02 \times 10^{23}", "603000000000000000000000", Status.WRONG),
    ("3", "3.0000001", Status.WRONG),  # an exact reference stays exact
    ("1000000", "1000000.4", Status.WRONG),
    ("1000", r"1\,000", Status.CORRECT),  # LaTeX's thin space as a thousands separator
    ("1000000", r"1\,000\,000", Status.CORRECT),
    ("23", r"2\,3", Status.WRONG),
])
def test_decimal_references_and_thousands_separators(task: MathTask, gold: str, pred: str, status: Status) -> None:
    from rungs.tasks.math import semantic_key

    assert task.verify_answer(problem(gold), pred).status is status, (gold, pred)
    if status is Status.CORRECT and "," in pred:
        assert semantic_key(pred) == semantic_key(gold)


def test_redundant_braces_are_one_group(task: MathTask) -> None:
    """30 nested braces around a right answer timed out in Math-Verify (time exponential in depth)."""
    from rungs.tasks.math import normalize_latex

    assert task.verify_answer(problem("2"), "{" * 30 + "2" + "}" * 30).status is Status.CORRECT
    assert normalize_latex(r"\frac{{1}}{{2}}") == r"\frac{1}{2}"
    assert normalize_latex(r"\frac{{1}{2}}{3}") == r"\frac{{1}{2}}{3}"  # not a group of one group
    assert normalize_latex(r"\{\{1\}\}") == r"\{\{1\}\}"  # escaped set braces are not groups


@pytest.mark.parametrize("completion, answer", [
    ("Adding them up gives 72.\nAnswer: 72", "72"),            # DAPO-Math-17k's requested last line
    ("so the total is 72\n**Answer:** $72$.", "72"),           # markdown and math mode
    ("The answer: 5 is wrong, retry.\nAnswer: 6", "6"),        # the last Answer: line wins
    ("\\boxed{3}\nAnswer: 4", "3"),                            # a boxed answer keeps priority
    ("My answer: 12", None),                                   # not at the start of a line
    ("x" * 100_000 + "\nAnswer: 9", "9"),                      # only the tail is searched
    ("Answer:", None),
    ("the answer: 5" + " " * 291, None),                       # the 300-character cut is not a line start
    ("Answer: 10 pi", "10 pi"),                                # not GSM8K's "72 clips"
])
def test_a_final_answer_line_is_read_as_dapo_asks(completion, answer):
    assert get_task("math").extract_answer(completion) == answer


def test_verl_math_dapo_rows_score_their_answer_line():
    from rungs.integrations import compute_score

    assert compute_score("math_dapo", "Let me think. 8 * 9 = 72.\nAnswer: 72", "72", workers=1) == 1.0
    assert compute_score("math_dapo", "Answer: 71", "72", workers=1) == 0.0


def test_a_reference_of_broken_latex_is_no_label_but_a_plain_word_is_still_compared():
    task = get_task("math")
    assert task.verify_answer(Problem("a", "q", "north"), "north").status is Status.CORRECT
    assert task.verify_answer(Problem("a", "q", "north"), "south").status is Status.WRONG
    for broken in ("\\frac{", "{", "}}}{{", "x^{2"):
        assert task.verify_answer(Problem("a", "q", broken), "2").status is Status.UNLABELLED, broken
    # a broken reference among good ones does not void the row, right or wrong
    several = Problem("a", "q", "\\frac{", {"answers": ["\\frac{", "3"]})
    assert task.verify_answer(several, "2").status is Status.WRONG
    assert task.verify_answer(several, "3").status is Status.CORRECT


@pytest.mark.parametrize(("gold", "right", "wrong"), [
    (1e-7, ["0.0000001", "10^{-7}", "1e-7", "1 \\times 10^{-7}"], ["e-7", "0.0000002"]),
    (1e20, ["100000000000000000000", "10^{20}", "1E+20"], ["2 \\times 10^{20}", "e+20"]),
    (-2.5e-05, ["-0.000025", "-\\frac{1}{40000}"], ["e-5", "2.5e-05"]),
])
def test_a_float_reference_printed_in_e_notation_is_that_number_not_eulers_e(task, gold, right, wrong):
    """str(1e-7) is '1e-07', which Math-Verify reads as 1*e - 7: a float reference from parquet or
    pandas paid `e-7` and refused 0.0000001. Both sides read E-notation as a power of ten now."""
    from rungs.types import reference_answers

    reference, _ = reference_answers(gold)
    assert "e" in reference.lower()  # it does arrive as E-notation text
    for answer in right:
        assert task.verify_answer(problem(reference), answer).correct, answer
    for answer in wrong:
        assert not task.verify_answer(problem(reference), answer).correct, answer


@pytest.mark.parametrize(("gold", "answer", "correct"), [
    ("The answer is 12.", "12", True), ("Total: 12", "12", True), ("Total: 12", "13", False),
    ("The answer is \\frac{1}{2}.", "0.5", True),
    ("2xyz", "2xyz", True), ("2xyz", "2", False),  # letters that are math, not prose
    ("5 \\text{ square units}", "5", True), ("north", "north", True), ("x = 12", "12", True),
])
def test_a_reference_written_as_a_sentence_is_read_as_trls_accuracy_reward_reads_it(task, gold, answer, correct):
    """TRL's `solution` column may be a sentence; wrapped in $...$ it was a product of letters and
    every right answer scored 0. Math-Verify's own extraction reads it (as TRL does)."""
    assert task.verify_answer(problem(gold), answer).correct is correct


@pytest.mark.parametrize(("gold", "answers"), [("2 hours and 30 minutes", ["30", "2", "150"]),
                                               ("The roots are 2 and 5", ["5", "2, 5"]),
                                               ("The function is x^2 + 1", ["1", "x^2+1"]),
                                               ("(3, 4) is the point", ["4", "(3, 4)"])])
def test_a_sentence_with_several_numbers_is_unlabelled_not_its_last_number(task, gold, answers):
    """Math-Verify's extraction takes the last number of a sentence: that paid `30` for '2 hours and
    30 minutes'. With more than one number the reference says nothing a program can take: unlabelled."""
    for answer in answers:
        assert task.verify_answer(problem(gold), answer).status is Status.UNLABELLED, answer


@pytest.mark.parametrize("gold", ["\\boxed{1e-07}", "$1e-07$", "1e-07"])
def test_e_notation_inside_a_box_or_math_mode_is_a_power_of_ten_too(task, gold):
    for answer in ("\\boxed{1e-07}", "0.0000001", "1 \\times 10^{-7}"):
        assert task.verify_answer(problem(gold), answer).correct, (gold, answer)
    for answer in ("e-7", "\\boxed{e-7}", "2e", "1e-7x"):
        assert not task.verify_answer(problem(gold), answer).correct, (gold, answer)


@pytest.mark.parametrize("gold", ["nan", "NaN", "None", "null", " <NA> "])
def test_a_missing_value_written_as_text_is_no_reference(task, gold):
    """`df.answer.map(str)` or a CSV cell turns a missing label into 'nan' / 'None': unlabelled (None
    to TRL, 'unlabelled' to veRL), never a reference that pays `\\boxed{nan}`."""
    from rungs.integrations import compute_score, trl_reward

    assert trl_reward("math")(["q"], [f"\\boxed{{{gold.strip()}}}"], answer=[gold]) == [None]
    scored = compute_score("math", f"\\boxed{{{gold.strip()}}}", gold, return_dict=True)
    assert scored["score"] == 0.0 and scored["unlabelled"] == 1.0
    assert Problem("q", "x", gold).answer is None


@pytest.mark.parametrize(("gold", "answer", "correct"), [
    ("e^2-2e-1", "e^2 - 2e - 1", True), ("e^2-2e-1", "e^2-0.2", False),  # 2e-1 inside an expression is 2e - 1
    ("\\frac{3e-1}{2}", "\\frac{3e}{2} - \\frac12", True),
    ("so the total is $\\boxed{5}$.", "5", True), ("The answer is $x^2+1$.", "x^2+1", True),  # delimited math
    ("The answer is $x^2+1$.", "1", False),
])
def test_e_notation_only_for_a_whole_number_and_delimited_sentences_read_as_before(task, gold, answer, correct):
    """From a review of the first fix: E-notation rewritten inside expressions read Euler's e as a power
    of ten, and a worked solution with its answer boxed became unlabelled."""
    assert task.verify_answer(problem(gold), answer).correct is correct


@pytest.mark.parametrize(("answer", "correct"), [("x=2", True), ("y = 2", True), ("\\boxed{x = 2}", True),
                                                 ("-x=2", False), ("x+1=2", False), ("2x=2", False)])
def test_an_equation_answers_a_value_only_as_symbol_equals_value(task, answer, correct):
    """Math-Verify compares an equation's right side with a value: `-x = 2` (x = -2) was paid for 2."""
    assert task.verify_answer(problem("2"), answer).correct is correct


def test_the_e_notation_reader_is_linear_in_a_run_of_digits():
    """Hostile answers may be long digit runs: the pattern's two ways to split digits backtracked
    quadratically (16k digits: 2 s). Asserted by the count of steps, not by time: a 64k run is read
    in one pass, the same result as a short one."""
    from rungs.tasks.math import _E_NUMBER, e_notation_latex

    assert e_notation_latex("1" * 64000) == "1" * 64000 and _E_NUMBER.pattern.count("\\d+\\.?\\d*") == 0
    assert e_notation_latex("2" * 20 + "e5") == "2" * 20 + " \\times 10^{5}"


# ---- conditions joined by "and", word answers, numbers with units (an outside check) ------------


@pytest.mark.parametrize(
    ("gold", "pred", "status"),
    [
        (r"(-\infty,1)\cup(2,\infty)", r"x<1 \text{ and } x>2", Status.WRONG),  # the empty set, not the union
        (r"(-\infty,\infty)", r"x>0 \text{ and } x<1", Status.WRONG),
        (r"(0,1)", r"x>0 \text{ and } x<1", Status.CORRECT),
        (r"(0,1)", r"x>0 \land x<1", Status.CORRECT),
        (r"(0,1)", r"x<1 \wedge x>0", Status.CORRECT),
        (r"x>0 \text{ and } x<1", r"x>0 \text{ or } x<1", Status.WRONG),  # Math-Verify's text of both is `x>0, x<1`
        (r"0<x<1", r"x>0 \text{ or } x<1", Status.WRONG),
        (r"x<1 \text{ or } x>2", r"x>2 \text{ and } x<1", Status.WRONG),
        (r"(-\infty,1)\cup(2,\infty)", r"x<1 \text{ or } x>2", Status.CORRECT),
        (r"x=1 \text{ and } y=2", "(1,2)", Status.CORRECT),  # equations are a system's solution, as before
    ],
)
def test_and_between_inequalities_is_an_intersection(task: MathTask, gold: str, pred: str, status: Status) -> None:
    assert task.verify_answer(problem(gold), pred).status is status


def test_and_and_or_together_are_not_read_as_a_union(task: MathTask) -> None:
    assert not task.verify_answer(problem("(0,1)"), r"x>0 \text{ and } x<1 \text{ or } x>2").correct
    keys = {task.answer_key(problem("1"), a) for a in (r"x>0 \text{ and } x<1", r"x>0 \text{ or } x<1")}
    assert len(keys) == 2  # two answers in a vote, as the verifier reads them


@pytest.mark.parametrize(
    ("gold", "pred", "correct"),
    [
        ("BDAC", "ABCD", False),  # an ordering: LaTeX would read both as a*b*c*d
        ("BDAC", "BDAC", True),
        ("BDAC", r"\text{BDAC}", True),
        ("no", "on", False),
        ("no", "No", True),
        ("Yes", r"\text{yes}.", True),
        ("yes", "1", False),
        ("xy", "yx", True),  # a lower-case product of variables stays math
        ("12 dollars", "12", True),  # a number with unit words is that number
        ("12 dollars", r"12\text{ dollars}", True),
        ("1,000 meters", "1000", True),
        ("12 dollars", "13", False),
        ("10 pi", r"10\pi", True),  # pi is a number, not a unit
        ("10 pi", "10", False),
        ("2pi", r"2\pi", True),
        (r"2\pi", "2pi", True),
    ],
)
def test_words_and_units_in_references(task: MathTask, gold: str, pred: str, correct: bool) -> None:
    assert task.verify_answer(problem(gold), pred).correct is correct


def test_rejected_answers_never_vote(task: MathTask) -> None:
    from rungs.integrations import compute_score_vote_batch

    hack = r"\boxed{\int_0^2 x\,dx}"
    assert task.verify_answer(problem("2"), r"\int_0^2 x\,dx").status is Status.REJECTED
    assert task.answer_key(problem("2"), r"\int_0^2 x\,dx") is None
    rewards = compute_score_vote_batch(["math"] * 4, [hack] * 3 + [r"\boxed{2}"], [None] * 4,
                                       [{"index": 0}] * 4, return_dict=False)
    assert rewards == [0.0, 0.0, 0.0, 1.0]
    assert task.answer_key(problem("1"), "BDAC") != task.answer_key(problem("1"), "ABCD")


@pytest.mark.parametrize(
    ("gold", "pred", "status"),
    [
        # the connective is read between the answer's own conditions, not from prose around them
        (r"Squaring and simplifying gives $x^2>1$, so \boxed{x<-1, x>1}.", r"\emptyset", Status.WRONG),
        (r"Squaring and simplifying gives $x^2>1$, so \boxed{x<-1, x>1}.", r"x<-1 \text{ or } x>1", Status.CORRECT),
        (r"We need $x<1$ or $x>2$, and so the answer is \boxed{x<1 \text{ or } x>2}.", r"(-\infty,1)\cup(2,\infty)", Status.CORRECT),
        (r"x<1 \text{ or } x>2", r"x<1 \text{ or } x>2 \text{ (and no other values)}", Status.CORRECT),
        ("(0,1)", r"x>0 \textnormal{ and } x<1", Status.CORRECT),
        # numbers whose words change them are no reference at all
        ("12 thousand", "12", Status.UNLABELLED),
        ("3 and a half", "3", Status.UNLABELLED),
        ("2 thirds", "2", Status.UNLABELLED),
        ("1,5 liters", "15", Status.UNLABELLED),
        ("5 cm", "5", Status.CORRECT),
        ("30 degrees", "30", Status.CORRECT),
        # words: a long answer is screened first; two capitals may be a segment; case matters for codes
        ("Yes", "Yes" + " " * 2000 + "No", Status.REJECTED),
        ("Yes", r"\textnormal{Yes}", Status.CORRECT),
        ("yes", r"\text{Yes}\quad", Status.CORRECT),
        ("AB", "BA", Status.CORRECT),
        ("BDAC", "bdac", Status.WRONG),
        # invisible characters
        ("12", "1\u20632", Status.CORRECT),
        ("12", "12\u00ad", Status.CORRECT),
        # conditions in several $...$ spans or boxes: the words between them are the connective
        (r"x>0 \text{ or } x<1", r"$x>0$ and $x<1$", Status.WRONG),
        (r"x>0 \text{ and } x<1", r"$x>0$ and $x<1$", Status.CORRECT),
        (r"x>0 \text{ or } x<1", r"\boxed{x>0} and \boxed{x<1}", Status.WRONG),
        (r"$x>0$ and $x<1$", r"(-\infty,\infty)", Status.WRONG),
        (r"$x>0$ and $x<1$", "(0,1)", Status.CORRECT),
        # only the word right after the number can change it; later words are units
        ("10 miles per hour", "10", Status.CORRECT),
        ("15 dollars per hour", "15", Status.CORRECT),
        ("3 quarters", "3", Status.UNLABELLED),
        # a number wrapped in text is that number, for the verifier and the vote alike
        ("0.5", r"\text{0.5}", Status.CORRECT),
        ("-2", r"\text{-}2", Status.WRONG),
        ("2", r"$$2.$$", Status.CORRECT),
        ("2", r"2.\,", Status.CORRECT),
        ("2", r"\(2.\)", Status.CORRECT),
    ],
)
def test_outside_review_of_the_word_unit_and_connective_rules(task: MathTask, gold: str, pred: str, status: Status) -> None:
    assert task.verify_answer(problem(gold), pred).status is status


@pytest.mark.parametrize("answer", [r"\text{2}", r"\mathbf{2}", "2.", "x = 2"])
def test_forms_the_verifier_accepts_vote_with_the_plain_number(task: MathTask, answer: str) -> None:
    assert task.verify_answer(problem("2"), answer).correct
    assert task.answer_key(problem("2"), answer) == task.answer_key(problem("2"), "2")


def test_the_vote_key_agrees_with_the_verifier_on_wrapped_numbers(task: MathTask) -> None:
    for wrapped, plain in [(r"\text{0.5}", "0.5"), (r"\mathbf{2}", "2"), ("2.", "2")]:
        assert task.answer_key(problem("1"), wrapped) == task.answer_key(problem("1"), plain)
    assert task.answer_key(problem("1"), r"\text{-}2") != task.answer_key(problem("1"), "-2")  # graded apart too
