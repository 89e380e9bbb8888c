"""Free-form math answers, checked against a reference answer with Math-Verify.

The model ends with `\\boxed{...}` (or `<answer>...</answer>`; without either, a final GSM8K-style
`#### 72` line, see `hash_answer`); the answer is checked the way the open-r1 / TRL recipes do it:
`math_verify.verify(parse(gold), parse(pred))`, gold first (the comparison is asymmetric: gold `3`
accepts `x = 3`). Math-Verify knows equivalent forms: `\\frac{1}{2}` = `0.5`, `2x+2` = `2(x+1)`,
`[1, 2)` as an interval, `\\{1,2\\}` = `1, 2`. Where it is loose or blind, rungs adds to it (see
`answers_match` and `normalize_latex`): numbers must also agree relative to their size (6
significant digits when either is a decimal, 15 when both are exact), not only to 6 decimal places,
so 0.0000002 is not 0.0000001; an inequality answers an interval and an interval an inequality
(`x<3` = `(-\\infty, 3)`); `\\boxed 2` needs no braces; and a currency sign (`\\$12`) is not math
mode.

Why Math-Verify's own timeouts are off: they use `signal.alarm`, which only works on the main
thread of the main interpreter (a reward function called from a trainer's worker thread fails
with "signal only works in main thread"). We pass `parsing_timeout=None` and
`timeout_seconds=None`, which turn the signal machinery off entirely, and rely on the hard
wall-clock limit of `rungs.verify.pool.VerifierPool`, which kills the worker process instead.

Why this is safe on hostile text: the answer is wrapped in `$...$` and parsed with Math-Verify's
LaTeX extraction only, which goes through latex2sympy2's ANTLR grammar to sympy constructors; the
plain-expression extraction (which calls `sympy.parse_expr`) is not used. Sizes are bounded
before sympy computes anything: the text by `screen_answer` (length, nesting, and `eager_bomb`: what
the parse itself would compute, binomials, gamma and E-notation numbers of huge value), the
parse by `screen_parsed` (powers, factorials and binomials of big numbers, tree size and depth),
and numbers are evaluated from the bounded, evaluated tree; the pool's time limit is the backstop.

GSM8K as it ships: a reference answer that is a whole rationale ending in a `#### 72` line means
72 (`reference_text`), and a completion written the same way, with no boxed or tagged answer, answers
what follows its last `####` (`MathTask.extract_answer`).

`generate` makes word-free arithmetic and linear-equation problems with exact answers, scaled by
difficulty: for tests, demos and warming up the tiny model. Real math sets come from files.
"""

from __future__ import annotations

import contextvars
import dataclasses
import functools
import logging
import math
import random
import re
from collections.abc import Hashable
from fractions import Fraction
from typing import Any

from rungs.errors import UserError
from rungs.tasks.base import PROMPT_STYLES, Task
from rungs.types import ANSWERS_META_KEY, Problem, Status, Verdict

INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."
EVALUATE, SOLVE = "Evaluate: ", "Solve for x: "
# Characters of the compact prompts and the answers of generated problems.
ALPHABET = "".join(sorted(set(EVALUATE + SOLVE + "0123456789+-*/()= x")))

MAX_DIFFICULTY = 10.0  # generated problems: expression size and number range stop growing here
_MAX_KEY_CHARS = 2000
_MAX_NUMBER_DIGITS = 200


# ------------------------------------------------------------------------------------------------
# Math-Verify, without signals


class _DropTimeoutDisabledWarning(logging.Filter):
    """Math-Verify warns once that its timeout is disabled; here that is the point."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Timeout is disabled" not in record.getMessage()


@functools.cache
def _math_verify() -> Any:
    import math_verify

    for name in ("math_verify.parser", "math_verify.grader"):
        logging.getLogger(name).addFilter(_DropTimeoutDisabledWarning())
    return math_verify


_ESCAPED_DOLLAR = re.compile(r"\\\$|\\textdollar(?![A-Za-z])|\\text\{\s*\\?\$\s*\}")
_THIN_SPACE_THOUSANDS = re.compile(r"(?<![\d.])\d{1,3}(?:\\,\d{3})+(?!\d)")
_DOUBLE_BRACES = re.compile(r"\{\{([^{}]*)\}\}")
_LOGICAL_OR = re.compile(r"\\(?:lor|vee)(?![A-Za-z])")
# Invisible characters (Unicode's format class Cf: zero-width spaces and joiners, soft hyphens,
# direction marks, invisible operators; and variation selectors): not part of an answer
_INVISIBLE = re.compile("[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b-\u200f\u202a-\u202e"
                        "\u2060-\u2064\u2066-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0]")
_FINAL_FULL_STOP = re.compile(r"(?<=\d)\.(?=(?:\s|\\[,;:! ]|\}|\$|\\\)|\\\])*$)")
_WRAPPED_NUMBER = re.compile(r"\\(?:text|textnormal|textrm|textbf|mathrm|mathbf|mbox)\s*\{\s*(-?\d+(?:\.\d+)?)\s*\}")
_BARE_PI = re.compile(r"(?<![\\A-Za-z])pi(?![A-Za-z])")  # `2pi`, `10 pi`: LaTeX would read p*i
_OTHER_TEXT_CONNECTIVE = re.compile(r"\\(?:textnormal|textrm|mathrm|mbox)\s*\{\s*(and|or)\s*\}", re.IGNORECASE)
_LOGICAL_AND = re.compile(r"\\(?:land|wedge)(?![A-Za-z])")
# Math-Verify reads `x>0 \text{ and } x<1` and `x>0 \text{ or } x<1` alike, as a list of conditions:
# the connective is read from the text (`conditions_joined`).
_CONJUNCTION = re.compile(r"(?<![A-Za-z])and(?![A-Za-z])|\\&|(?<![A-Za-z\\])&&?(?![A-Za-z])", re.IGNORECASE)
_DISJUNCTION = re.compile(r"(?<![A-Za-z])or(?![A-Za-z])", re.IGNORECASE)


def normalize_latex(text: str) -> str:
    """What Math-Verify cannot read, rewritten: currency signs, brace-less boxes, `\\lor`.

    `\\$12` and `\\textdollar 12` are 12 (a currency sign, not the math-mode delimiter); a lone
    unescaped `$` before a number (`$18.90`, as GSM8K-style references write money) is dropped,
    while a `$...$` pair is kept as math mode; `\\boxed 2` becomes `\\boxed{2}`; `x<1 \\lor x>2`
    becomes `x<1 \\text{ or } x>2`, which Math-Verify reads as a list of conditions (`\\land` and
    `\\wedge` become `\\text{ and }`); a bare `pi` is `\\pi` (`2pi`, not 2*p*i); a thin space
    between groups of three digits (`1\\,000\\,000`, LaTeX's thousands separator) is dropped, and a
    group whose only content is another group (`{{2}}`) is one group.
    """
    from rungs.verify.extract import brace_boxes

    text = _ESCAPED_DOLLAR.sub("", text)
    text = _INVISIBLE.sub("", text)
    if text.count("$") == 1:
        text = text.replace("$", "")
    text = _LOGICAL_OR.sub(r"\\text{ or }", text)
    text = _LOGICAL_AND.sub(r"\\text{ and }", text)
    text = _OTHER_TEXT_CONNECTIVE.sub(lambda m: f"\\text{{ {m.group(1).lower()} }}", text)
    text = _BARE_PI.sub(r"\\pi ", text)
    text = _FINAL_FULL_STOP.sub("", text)  # `2.` and `\\boxed{2.}`: a sentence's full stop, not part of 2
    text = _WRAPPED_NUMBER.sub(r"\1", text)  # `\\text{2}`, `\\mathbf{0.5}`: the number
    text = _THIN_SPACE_THOUSANDS.sub(lambda m: m.group(0).replace("\\,", ""), text)
    while True:  # `{{2}}` is `{2}`: redundant groups cost Math-Verify time exponential in their depth
        collapsed = _DOUBLE_BRACES.sub(r"{\1}", text)
        if collapsed == text:
            break
        text = collapsed
    return brace_boxes(text).strip()


# A number in E-notation, as Python and pandas print a float reference (str(1e-7) == "1e-07").
# Math-Verify reads `1e-07` as LaTeX, 1*e - 7 (Euler's e), so it is rewritten as `1 \times 10^{-7}`
# first, for answers and references alike; exponents past E_NOTATION_MAX_EXPONENT are left alone
# (they would be refused as too large anyway, and stay harmless as e - k).
_E_NUMBER = re.compile(r"([+-]?(?:\d+(?:\.\d*)?|\.\d+))[eE]([+-]?\d{1,6})")  # unambiguous: linear time
_WRAPPED = re.compile(r"^(\s*\$?\s*(?:\\boxed\s*\{)?\s*)(.*?)(\s*\}?\s*\$?\s*)$", re.DOTALL)
E_NOTATION_MAX_EXPONENT = 300


def e_notation_latex(text: str) -> str:
    """A text that is one number in E-notation, bare or as `$...$` or `\\boxed{...}`, as a power of
    ten: `1e-07` -> `1 \\times 10^{-7}`, `\\boxed{-2.5E+20}` -> `\\boxed{-2.5 \\times 10^{20}}`. Anything
    else is left as it is: inside an expression `2e-1` is 2e - 1 (Euler's e, `e^2-2e-1`), and so
    are `e-7` and exponents past E_NOTATION_MAX_EXPONENT."""
    wrapped = _WRAPPED.match(text)
    head, body, tail = wrapped.groups() if wrapped else ("", text, "")
    if head.count("{") != tail.count("}"):  # `\boxed{1e-7` or `1e-7}`: not one wrapped number
        head, body, tail = "", text, ""
    match = _E_NUMBER.fullmatch(body)
    if match is None or abs(int(match.group(2))) > E_NOTATION_MAX_EXPONENT:
        return text
    return f"{head}{match.group(1)} \\times 10^{{{int(match.group(2))}}}{tail}"


@functools.lru_cache(maxsize=4096)
def parse_answer(text: str) -> tuple[Any, ...]:
    """Math-Verify's parse of one answer: sympy objects and/or strings; () when nothing parses.

    A bare answer (`\\frac{1}{2}`, `2(x+1)`) is wrapped in `$...$` so that the LaTeX extractor
    reads all of it; text that already carries `$` or `\\boxed` is parsed as it is (after
    `normalize_latex`). Cached: in a GRPO group the same answer comes back many times, and the
    gold answer every time.
    """
    mv = _math_verify()
    text = e_notation_latex(normalize_latex(text.strip()))
    if not text:
        return ()
    wrapped = text if ("$" in text or "\\boxed" in text or "\\fbox" in text) else f"${text}$"
    parsed = tuple(mv.parse(wrapped, extraction_config=[mv.LatexExtractionConfig()], parsing_timeout=None))
    return conditions_joined(parsed, text)


_CONNECTIVE_TEXT = re.compile(r"\\(?:text|textnormal|textrm|mathrm|mbox)\s*\{\s*(and|or|&|\\&)\s*\}", re.IGNORECASE)
_PROSE_GROUP = re.compile(r"\\(?:text|textnormal|textrm|textbf|textit|mathrm|mbox)\s*\{[^{}]*\}")
_MATH_MODE = re.compile(r"\$([^$]*)\$")
_BOX_COMMAND = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])")


def _connective_region(text: str) -> str:
    """The part of `text` whose conditions Math-Verify reads: its one `\\boxed{}`, or from the first
    of several boxes on; else its one `$...$`, or from the first of several spans to the last; else
    all of it. `\\text{...}` remarks are dropped except a bare connective (`\\text{ and }`): prose
    around or beside the answer ("squaring and simplifying", "(and no other values)") is not the
    connective between its conditions, the words between two spans or boxes are."""
    from rungs.verify.extract import last_boxed

    boxes = [m.start() for m in _BOX_COMMAND.finditer(text)]
    boxed = last_boxed(text) if len(boxes) == 1 else None
    if len(boxes) > 1:  # `\\boxed{x>0} and \\boxed{x<1}`: Math-Verify reads every box, so the words between count
        region = text[boxes[0]:]
    elif boxed is not None:
        region = boxed
    else:
        spans = list(_MATH_MODE.finditer(text))
        # several `$...$` spans (`$x>0$ and $x<1$`): from the first to the last, the words between included
        region = (text[spans[0].start():spans[-1].end()] if len(spans) > 1 else spans[0].group(1)) if spans else text
    region = _CONNECTIVE_TEXT.sub(lambda m: f" {m.group(1)} ", region)
    return _PROSE_GROUP.sub(" ", region)


def conditions_joined(parsed: tuple[Any, ...], text: str) -> tuple[Any, ...]:
    """Math-Verify's list of inequalities (`{x > 0, x < 1}`) read with the connective the text wrote.

    Math-Verify parses `x>0 \\text{ and } x<1` and `x>0 \\text{ or } x<1` to the same list, which
    rungs compares as the union of the conditions' sets (`_inequalities_as_set`). Joined by "and"
    (`and`, `\\land`, `\\wedge`, `&`), the list becomes sympy's `And` (the interval (0, 1) here, as
    the chain `0<x<1` parses); written with both "and" and "or", the precedence is not read and the
    list is dropped (the answer is unparseable, never paid as a union). Other parses are unchanged.
    """
    import sympy

    text = _connective_region(text)
    if not _CONJUNCTION.search(text):
        return parsed
    joined: list[Any] = []
    changed = False
    for item in parsed:
        if (isinstance(item, sympy.FiniteSet) and 1 < len(item.args) <= 8
                and all(simple_inequality(e) for e in item.args) and len(item.free_symbols) == 1):
            changed = True
            if _DISJUNCTION.search(text):
                continue
            item = sympy.And(*item.args)
        joined.append(item)
    if not changed:
        return parsed
    # Math-Verify's text of the list (`x>0, x<1`) has lost the connective too: the text stands for it
    joined = [text if isinstance(j, str) else j for j in joined]
    return tuple(joined) if any(not isinstance(j, str) for j in joined) else ()


# Numbers are compared relative to their size. Math-Verify rounds both sides of a decimal to 6
# decimal places, which accepts 0.0000002 for 0.0000001, and compares exact forms after chopping
# values below 1e-15 to zero, which accepts 1/21! for 1/20!. rungs keeps Math-Verify's verdict
# and also requires the two numbers to agree to SIGNIFICANT_DIGITS significant digits when
# either is a decimal (|a - b| <= half a unit in the 6th significant digit of the larger), and to
# 15 when both are exact (1/2^30 is not 1/(2^30 + 1)).
SIGNIFICANT_DIGITS = 6
EXACT_SIGNIFICANT_DIGITS = 15
_relative_numbers: contextvars.ContextVar[bool] = contextvars.ContextVar("rungs_relative_numbers", default=False)


def _numeric_value(expr: Any) -> Any:
    """A 30-digit sympy number for a closed-form number; None for anything else."""
    import sympy

    if not isinstance(expr, sympy.Basic) or isinstance(expr, (sympy.MatrixBase, sympy.Set, sympy.Tuple)):
        return None
    if expr.free_symbols or not _evaluable(expr):
        return None
    try:
        expr = expr.xreplace({u: u.args[0] for u in expr.atoms(sympy.UnevaluatedExpr)})
        value = evaluated(expr).evalf(30)  # evaluated first: see `_number_key`
    except Exception:  # noqa: BLE001 - a value sympy cannot compute is not a number here
        return None
    return value if value.is_number and value.is_finite else None


def numbers_agree(a: Any, b: Any, digits: int) -> bool:
    """|a - b| <= half a unit in the `digits`-th significant digit of max(|a|, |b|) (complex allowed)."""
    from decimal import Decimal

    import sympy

    size = max(abs(a), abs(b))
    if size == 0:
        return True
    exponent = Decimal(str(sympy.Float(size, 30))).adjusted()  # floor(log10(size)), exactly
    return bool(abs(a - b) <= sympy.Rational(1, 2) * sympy.Integer(10) ** (exponent - digits + 1))


def _relative_check(a: Any, b: Any) -> bool | None:
    """Whether two closed-form numbers agree to the significant digits above; None if not both numbers."""
    import sympy

    from_grader = _math_verify_grader()
    pairs = [(a, b)]
    stripped = (from_grader.get_pct_val(a, a), from_grader.get_pct_val(b, b))
    if stripped != (a, b):  # 9\% may stand for 9 or for 0.09: Math-Verify accepts both readings
        pairs.append(stripped)
    decided = None
    for x, y in pairs:
        vx, vy = _numeric_value(x), _numeric_value(y)
        if vx is None or vy is None:
            continue
        approximate = any(isinstance(e, sympy.Basic) and e.has(sympy.Float) for e in (x, y))
        if numbers_agree(vx, vy, SIGNIFICANT_DIGITS if approximate else EXACT_SIGNIFICANT_DIGITS):
            return True
        decided = False
    return decided


@functools.cache
def _math_verify_grader() -> Any:
    """math_verify.grader, with its numeric comparison made relative while rungs compares answers.

    The patch is inert outside `answers_match` (a context variable switches it on), so other
    users of Math-Verify in the same process see its own behaviour.
    """
    import math_verify.grader as grader
    import sympy

    original = grader.sympy_numeric_eq
    if not getattr(original, "_rungs_relative", False):

        def sympy_numeric_eq(a: Any, b: Any, float_rounding: int, numeric_precision: int) -> bool:
            equal = original(a, b, float_rounding, numeric_precision)
            if not _relative_numbers.get():
                return equal
            if equal:
                return _relative_check(a, b) is not False
            # A decimal reference (`6.02 \times 10^{23}`) states 6 significant digits, not 6 decimal
            # places: an exact answer that agrees to them (602000000000000000000000) is right. An
            # exact reference keeps Math-Verify's exact comparison (3.0000001 is wrong for 3).
            if isinstance(a, sympy.Basic) and a.has(sympy.Float):
                return _relative_check(a, b) is True
            return equal

        sympy_numeric_eq._rungs_relative = True  # type: ignore[attr-defined]
        grader.sympy_numeric_eq = sympy_numeric_eq
    return grader


def simple_inequality(expr: Any) -> bool:
    """An inequality (or a chain of them, `0<x<1`) in one variable, at most quadratic: cheap to solve."""
    import sympy
    from sympy.core.relational import Relational

    if isinstance(expr, sympy.And):
        parts = expr.args
    elif isinstance(expr, Relational) and not isinstance(expr, (sympy.Eq, sympy.Ne)):
        parts = (expr,)
    else:
        return False
    symbols = expr.free_symbols
    if len(symbols) != 1 or len(parts) > 8:
        return False
    (symbol,) = symbols
    for part in parts:
        if not isinstance(part, Relational) or isinstance(part, (sympy.Eq, sympy.Ne)):
            return False
        difference = part.lhs - part.rhs
        if not difference.is_polynomial(symbol) or sympy.degree(difference, symbol) > 2:
            return False
    return True


def _inequalities_as_set(item: Any) -> Any:
    """`x<1, x>2` (Math-Verify's parse of `x<1 \\text{ or } x>2`) -> the union of their sets; else item."""
    import sympy

    if simple_inequality(item):  # `0<x<1`, or `x>0 \\text{ and } x<1` (`conditions_joined`)
        try:
            return item.as_set()
        except Exception:  # noqa: BLE001 - sympy cannot solve it: compare as parsed
            return item
    if not isinstance(item, sympy.FiniteSet) or not item.args or len(item.args) > 8:
        return item
    if not all(simple_inequality(e) for e in item.args) or len(item.free_symbols) != 1:
        return item
    try:
        return sympy.Union(*(e.as_set() for e in item.args))
    except Exception:  # noqa: BLE001 - sympy cannot solve it: compare as parsed
        return item


def _for_comparison(item: Any) -> Any:
    """An expression of numbers nested past a few levels, evaluated (`evaluated`); else as parsed.

    Math-Verify's simplify asks sympy for signs of the unevaluated parse, which takes time
    exponential in its nesting (`\\frac` in `\\frac` ... 16 deep: seconds). Shallow parses keep their
    form, which Math-Verify reads (a percentage, say).
    """
    import sympy

    if not isinstance(item, sympy.Expr) or isinstance(item, sympy.MatrixBase) or _depth(item) <= _SHALLOW_DEPTH:
        return item
    try:
        return evaluated(item)
    except (_Refused, RecursionError):
        return item


_SHALLOW_DEPTH = 6


def _depth(expr: Any) -> int:
    """The nesting depth of a sympy tree (iteratively: the tree's size is bounded by the screen)."""
    deepest, stack = 0, [(expr, 1)]
    while stack:
        e, d = stack.pop()
        deepest = max(deepest, d)
        stack.extend((a, d + 1) for a in getattr(e, "args", ()))
    return deepest


def answers_match(gold: tuple[Any, ...], pred: tuple[Any, ...]) -> bool:
    """Math-Verify's equivalence, gold first, with its signal-based timeout off, and with:

    - numbers compared relative to their size (`SIGNIFICANT_DIGITS`);
    - an equation answering a value only when its left side is one symbol (`x = 2` for 2, not
      `-x = 2`, whose right side Math-Verify would compare);
    - inequalities and intervals compared both ways: gold `(-\\infty, 3)` accepts `x<3` (Math-Verify's
      `allow_set_relation_comp`), gold `x<3` accepts `(-\\infty, 3)`, and `x<1 \\text{ or } x>2`
      is the union `(-\\infty, 1) \\cup (2, \\infty)`.
    """
    import sympy

    _math_verify_grader()
    gold_list, pred_list = [_for_comparison(g) for g in gold], [_for_comparison(p) for p in pred]
    if not any(isinstance(g, sympy.Eq) for g in gold_list) and any(
            isinstance(p, sympy.Eq) and not isinstance(p.lhs, sympy.Symbol) for p in pred_list):
        return False  # an equation answers a value only as `x = value`: `-x = 2` and `x + 1 = 2` are not 2
    if any((isinstance(p, sympy.Set) and not isinstance(p, sympy.FiniteSet)) or isinstance(p, sympy.And)
           for p in (*gold_list, *pred_list)):
        gold_list = [_inequalities_as_set(g) for g in gold_list]
        pred_list = [_inequalities_as_set(p) for p in pred_list]
    token = _relative_numbers.set(True)
    try:
        return bool(_math_verify().verify(gold_list, pred_list, timeout_seconds=None, allow_set_relation_comp=True))
    finally:
        _relative_numbers.reset(token)


def _has_math(parsed: tuple[Any, ...]) -> bool:
    return any(not isinstance(p, str) for p in parsed)


# Reward hacks and bombs, refused before Math-Verify runs: an unevaluated operator whose value is
# the answer (\int_0^2 x dx for 2) is not an answer; text past the safe parser's size and nesting
# limits would only end in a timeout. Math-Verify's parse is lazy for powers and factorials
# (`10^{10^{10}}` parses to an unevaluated Pow, which `screen_parsed` weighs by magnitude), so the
# text screen refuses only what the parse itself would compute (`eager_bomb`): a binomial
# (`\binom`, `\dbinom`, `\tbinom`, `{n \choose k}`) of two integer literals whose value has too
# many digits, or of any expression holding a number above 1000 (`\binom{(10^6)}{...}`,
# `\binom{2\times 500000}{...}` are computed while parsing); a gamma of a number above 200; a
# number in E notation past 10^1000 (`1E999999`). A power tower, an exponent that is itself a
# power (`e^{-x^2/2}`, `2^{2^{3}}`) or a long integer is judged by its size after parsing, not
# refused by its shape.
_UNEVALUATED_MARKERS = (r"\int", r"\sum", r"\prod", r"\lim", r"\oint", r"\iint", r"\partial", r"\mathrm{d}", r"\frac{d}{d")
_EAGER_FUNCTIONS = re.compile(r"\\[dt]?binom(?![A-Za-z])|\\choose(?![A-Za-z])|\\Gamma(?![A-Za-z])")
_E_NOTATION = re.compile(r"(?<![A-Za-z\\])(?:\d+\.?\d*|\.\d+)\s*E\s*[+-]?\s*(\d+)")
_MAX_EAGER_BINOMIAL_ARGUMENT = 1000
_MAX_LITERAL_DIGITS = 30


def binomial_digits(n: int, k: int) -> float:
    """Decimal digits of C(n, k) for integers n, k >= 0 (0 when k > n), from log-gamma; no big integers."""
    if k > n:
        return 0.0
    k = min(k, n - k)
    if k == 0:
        return 1.0
    return (math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)) / math.log(10) + 1


_CLOSING = {"{": "}", "(": ")", "[": "]"}


def _group_after(text: str, pos: int) -> tuple[str, int]:
    r"""The balanced `{...}` or `(...)` group starting at `pos` (after spaces and `\left`), as
    (its inside, the index after it); a lone character or ("", pos) when there is none."""
    while pos < len(text) and text[pos].isspace():
        pos += 1
    if text.startswith("\\left", pos):
        pos += len("\\left")
    if pos >= len(text):
        return "", pos
    opening = text[pos]
    if opening not in _CLOSING:
        return text[pos], pos + 1
    depth, i = 0, pos
    while i < len(text):
        if text[i] in _CLOSING:
            depth += 1
        elif text[i] in _CLOSING.values():
            depth -= 1
            if depth == 0:
                return text[pos + 1 : i], i + 1
        i += 1
    return text[pos + 1 :], len(text)


def _enclosing_group(text: str, pos: int) -> str:
    """The inside of the innermost `{...}` around `pos` (the whole text when there is none)."""
    depth, i = 0, pos - 1
    while i >= 0:
        if text[i] == "}":
            depth += 1
        elif text[i] == "{":
            if depth == 0:
                return _group_after(text, i)[0]
            depth -= 1
        i -= 1
    return text


def _literal(text: str) -> int | None:
    text = text.strip()
    return int(text) if text.isdigit() and len(text) <= _MAX_LITERAL_DIGITS else None


def eager_bomb(answer: str) -> str | None:
    """Why Math-Verify's parse of `answer` would itself compute something too large, or None.

    Its LaTeX parser evaluates binomials and gamma of numbers, and E-notation numbers, while it
    builds the tree, before `screen_parsed` can weigh anything: so these are found in the text.
    """
    from rungs.verify.safe_expr import MAX_EAGER_ARGUMENT

    limit = _parse_limits().max_result_digits
    for match in _E_NOTATION.finditer(answer):
        exponent = match.group(1)
        if len(exponent) > _MAX_LITERAL_DIGITS or int(exponent) > limit:
            return f"number too large (E{exponent[:12]} is past 10^{limit})"
    for match in _EAGER_FUNCTIONS.finditer(answer):
        name = match.group(0).lstrip("\\")
        if name == "choose":
            inside = _enclosing_group(answer, match.start())
            n_text, _, k_text = inside.partition("\\choose")
        else:
            n_text, after = _group_after(answer, match.end())
            k_text = _group_after(answer, after)[0] if name != "Gamma" else ""
        numbers = re.findall(r"\d+", n_text + " " + k_text)
        if any(len(d) > _MAX_LITERAL_DIGITS for d in numbers):
            return f"{name} of a number of more than {_MAX_LITERAL_DIGITS} digits is refused"
        largest = max((int(d) for d in numbers), default=0)
        if name == "Gamma":
            bound = MAX_EAGER_ARGUMENT["gamma"]
            if largest > bound:
                return f"Gamma of {largest} is refused (arguments above {bound} are too costly)"
            continue
        n, k = _literal(n_text), _literal(k_text)
        if n is not None and k is not None:
            if binomial_digits(n, k) > limit:
                return f"binomial of {n} and {k} is refused (its value has more than {limit} digits)"
        elif largest > _MAX_EAGER_BINOMIAL_ARGUMENT:
            return (f"binomial of an expression holding {largest} is refused (a binomial of a number above "
                    f"{_MAX_EAGER_BINOMIAL_ARGUMENT} must be two plain integers)")
    return None


def screen_answer(answer: str) -> str | None:
    """Why an answer is refused without parsing it, or None when it may be parsed."""
    from rungs.verify.safe_expr import DEFAULT_LIMITS

    if len(answer) > DEFAULT_LIMITS.max_length:
        return f"answer too long ({len(answer)} characters > {DEFAULT_LIMITS.max_length})"
    depth = deepest = 0
    for ch in answer:
        if ch in "({[":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in ")}]":
            depth -= 1
    if deepest > DEFAULT_LIMITS.max_depth:
        return f"answer nested too deeply ({deepest} levels > {DEFAULT_LIMITS.max_depth})"
    marker = next((m for m in _UNEVALUATED_MARKERS if m in answer), None)
    if marker is not None:
        return f"unevaluated {marker} is not an answer"
    return eager_bomb(answer)


# The parse is screened before any sympy evaluation: `\\binom{10^{9}}{5*10^8}` is short text but a
# computation that never ends, and no text screen can see through every way of writing a big number.
# The screen evaluates the parse's arithmetic bottom-up (`evaluated`), refusing, before computing
# it, any power, factorial, binomial or gamma of numbers too large (the limits of the safe parser
# the integration verifier uses, with exponents up to 10^4 and results up to 1000 digits), and any
# tree past its node or nesting limits. The evaluated tree is also what numbers are computed from:
# sympy's evalf of the unevaluated parse takes time exponential in its depth (nested `\\frac`).
_MAX_PARSE_NODES = 400
_MAX_PARSE_DEPTH = 40
_MAX_EAGER_INTEGER = 1000


def _parse_limits() -> Any:
    from rungs.verify.safe_expr import Limits

    # exponents up to 10^4 (`x^{2024}`, `2^{2023}`: competition answers); a power of numbers is
    # still refused past 1000 digits, and any other number past 10^1000 by `evaluated`'s magnitude check
    return Limits(max_exponent=10_000, max_result_digits=1000)


class _Refused(Exception):
    """The parse is too costly to evaluate (the message says why)."""


def evaluated(expr: Any, subs: dict | None = None) -> Any:
    """`expr` with its arithmetic evaluated bottom-up, within bounds; raises _Refused past them.

    `subs` maps symbols to values put in at the leaves, so that each power is weighed before it is
    computed (`xreplace` would compute `x^{x^{x^{x^{x}}}}` at x = 2.7 while rebuilding it).

    Only sympy expressions are rebuilt (a relation or a set keeps its form; its parts are still
    checked); each rebuilt node is at most one bounded power, product or sum of bounded numbers,
    so the whole costs at most polynomial time in the size of the (bounded) tree.
    """
    import sympy

    from rungs.errors import UnsafeExpression
    from rungs.verify.safe_expr import MAX_EAGER_ARGUMENT, _digits, _power

    limits = _parse_limits()
    count = 0

    def walk(e: Any, depth: int) -> Any:
        nonlocal count
        count += 1
        if count > _MAX_PARSE_NODES:
            raise _Refused(f"answer too large (more than {_MAX_PARSE_NODES} nodes)")
        if depth > _MAX_PARSE_DEPTH:
            raise _Refused(f"answer nested too deeply (more than {_MAX_PARSE_DEPTH} levels)")
        if not isinstance(e, sympy.Basic):
            if isinstance(e, sympy.MatrixBase):
                for item in e:
                    walk(item, depth + 1)
            return e
        if e.is_Rational:
            if _digits(e) > limits.max_result_digits:
                raise _Refused(f"number too large (more than {limits.max_result_digits} digits)")
            return e
        if not e.args:
            if subs and e in subs:
                return subs[e]
            return bounded(e) if e.is_Float else e
        args = [walk(a, depth + 1) for a in e.args]
        name = type(e).__name__
        if isinstance(e, sympy.Pow):
            try:
                return bounded(_power(args[0], args[1], limits))
            except UnsafeExpression as err:
                raise _Refused(str(err)) from None
        if name in _EAGER_INTEGER_FUNCTIONS or name in MAX_EAGER_ARGUMENT:
            bound = MAX_EAGER_ARGUMENT.get(name, _MAX_EAGER_INTEGER)
            for a in args:
                if a.is_number and not (a.is_Rational and abs(a) <= bound):
                    shown = a if a.is_Rational and _digits(a) < 12 else "a number"
                    raise _Refused(f"{name} of {shown} is refused (arguments above {bound} are too costly)")
        if not isinstance(e, sympy.Expr) or isinstance(e, sympy.UnevaluatedExpr):
            return e
        try:
            rebuilt = e.func(*args)
        except Exception:  # noqa: BLE001 - what sympy will not rebuild keeps its parsed form
            return e
        if rebuilt.is_Rational and _digits(rebuilt) > limits.max_result_digits:
            raise _Refused(f"number too large (more than {limits.max_result_digits} digits)")
        return bounded(rebuilt)

    def bounded(value: Any) -> Any:
        # A number that is not an exact rational (`e^{e^{100}}`, `\cosh(e^{100})`, `2^{\pi^{100}}`,
        # `1e5000`) is weighed by its magnitude: 15 digits of it, whose binary exponent is cheap
        # because every argument below it has already passed this check.
        if not isinstance(value, sympy.Expr) or value.is_Rational or not value.is_number:
            return value
        try:
            parts = value.evalf(15).as_real_imag()
        except Exception:  # noqa: BLE001 - what will not evaluate is left to the comparison
            return value
        for part in parts:
            if isinstance(part, sympy.Float) and part != 0:
                _sign, _mantissa, exponent, bits = part._mpf_
                if abs(exponent + bits) > limit_bits:
                    size = "large" if exponent + bits > 0 else "small"
                    raise _Refused(f"number too {size} (about 10^{(exponent + bits) * 0.30103:.3g})")
        return value

    limit_bits = int(limits.max_result_digits / 0.30103)
    return walk(expr, 0)


def screen_parsed(parsed: tuple[Any, ...]) -> str | None:
    """Why a parsed answer is refused before any comparison or evaluation, or None when it may be.

    The structural screen (`evaluated`): node count, nesting, and powers, factorials, binomials
    and gamma of numbers past the limits. Cheap: one bounded walk of the tree.
    """
    try:
        for item in parsed:
            evaluated(item)
    except _Refused as err:
        return str(err)
    except RecursionError:
        return "answer nested too deeply"
    return None


def _broken_latex(text: str) -> bool:
    """Whether `text` cannot be LaTeX: unbalanced braces, or a trailing backslash command or `^`/`_`."""
    depth = 0
    for ch in text.replace("\\{", "").replace("\\}", ""):
        depth += (ch == "{") - (ch == "}")
        if depth < 0:
            return True
    return depth != 0 or bool(re.search(r"(\\[A-Za-z]+|[\\^_])\s*$", text))


def _unevaluated(parsed: tuple[Any, ...]) -> str | None:
    import sympy

    kinds = (sympy.Integral, sympy.Sum, sympy.Product, sympy.Limit, sympy.Derivative)
    for item in parsed:
        if isinstance(item, sympy.Basic):
            found = next((k for k in kinds if item.has(k)), None)
            if found is not None:
                return f"unevaluated {found.__name__} is not an answer"
    return None


# ------------------------------------------------------------------------------------------------
# Voting keys: the verifier's equivalence as a canonical form
#
# Majority voting needs a key per answer such that answers the verifier calls equal share it.
# Math-Verify's equivalence is pairwise, so the key is a canonical form built from the same
# parse (`parse_answer`, after `normalize_latex`): an assignment `x = 3` keys as 3; a number keys
# by its value, rounded where `answers_match` stops telling numbers apart (6 significant digits,
# and never coarser than 6 decimals: 1,000 = 1000 = 1000.0, 0.5 = \frac12, 1/3 = 0.333333, but
# 1000000 != 1000001); an expression with variables by its values at fixed points (2x+2 = 2(x+1));
# inequalities by the set they describe (x<3 = (-\infty, 3)); sets, unions, tuples, intervals and
# matrices element by element. Anything that does not parse keys by its normalised text.

_KEY_POINTS = ("0.5772156649", "1.3247179572", "2.7182818285")  # where variables are evaluated
_MAX_KEY_NODES = 400
_MAX_KEY_DIGITS = 30
_EAGER_INTEGER_FUNCTIONS = ("factorial", "factorial2", "binomial", "subfactorial")


class _NoKey(Exception):
    """The parsed answer has no canonical form here (not finite, too costly to evaluate, ...)."""


def _evaluable(expr: Any) -> bool:
    """Whether evaluating `expr` numerically is cheap: small numbers and powers, whitelisted heads."""
    import sympy

    from rungs.verify.safe_expr import FUNCTIONS, MAX_EAGER_ARGUMENT

    heads = tuple({f for f, _ in FUNCTIONS.values() if isinstance(f, type)})
    stack, count = [expr], 0
    while stack:
        e = stack.pop()
        count += 1
        if count > _MAX_KEY_NODES:
            return False
        if e.is_Symbol or isinstance(e, (sympy.NumberSymbol, sympy.core.numbers.ImaginaryUnit)):
            continue
        if e.is_Rational:
            if max(abs(int(e.p)).bit_length(), int(e.q).bit_length()) > 1400:
                return False
            continue
        if e.is_Number:
            continue
        if isinstance(e, sympy.Pow) and e.exp.is_Number:
            if e.exp.is_Rational and max(abs(int(e.exp.p)), int(e.exp.q)) > 1000 or abs(float(e.exp)) > 1000:
                return False
        elif type(e).__name__ in _EAGER_INTEGER_FUNCTIONS:
            if not all(a.is_Integer and abs(int(a)) <= 1000 for a in e.args):
                return False
            continue
        elif not isinstance(e, (sympy.Add, sympy.Mul, sympy.Pow, sympy.UnevaluatedExpr, *heads)):
            return False
        elif type(e).__name__ in MAX_EAGER_ARGUMENT:  # gamma(10^10) would be computed as a factorial
            bound = MAX_EAGER_ARGUMENT[type(e).__name__]
            if any(a.is_number and (not a.is_Number or abs(a) > bound) for a in e.args):
                return False
        stack.extend(e.args)
    return True


def _real_key(value: Any) -> str:
    """A real number rounded to max(6 significant digits, 6 decimals), as `mantissa e exponent`."""
    from decimal import ROUND_HALF_EVEN, Decimal

    number = Decimal(str(value))
    if number.is_zero():
        return "0"
    exponent = number.adjusted()
    digits = min(_MAX_KEY_DIGITS, max(SIGNIFICANT_DIGITS, exponent + 1 + 6))
    mantissa = int(abs(number).scaleb(digits - 1 - exponent).to_integral_value(ROUND_HALF_EVEN))
    shift = exponent - digits + 1
    while mantissa and mantissa % 10 == 0:
        mantissa, shift = mantissa // 10, shift + 1
    return f"{'-' if number < 0 else ''}{mantissa}e{shift}"


def _number_key(expr: Any, subs: dict | None = None) -> str:
    import sympy

    if expr in (sympy.oo, -sympy.oo):
        return str(expr)
    if not _evaluable(expr):
        raise _NoKey("too costly to evaluate")
    # evalf, not doit(): doit would compute 10^(9*99999999) exactly; evalf keeps 30 digits. Of the
    # evaluated tree (`evaluated`, with the values substituted), not the parse: evalf of nested
    # unevaluated products takes time exponential in their depth.
    expr = expr.xreplace({u: u.args[0] for u in expr.atoms(sympy.UnevaluatedExpr)})
    try:
        expr = evaluated(expr, subs)
    except _Refused as err:
        raise _NoKey(str(err)) from None
    value = expr.evalf(_MAX_KEY_DIGITS)
    if not value.is_number or value.is_finite is False or value.has(sympy.zoo, sympy.nan, sympy.oo):
        raise _NoKey("not a finite number")
    real, imag = value.as_real_imag()
    if not (real.is_Number and imag.is_Number):
        raise _NoKey("not a number")
    return _real_key(real) + ("" if imag == 0 else f"{'+' if imag > 0 else ''}{_real_key(imag)}i")


def _canonical(expr: Any, depth: int = 0) -> str:
    """The canonical form of one Math-Verify parse (see the comment above); raises _NoKey."""
    import sympy
    from sympy.core.relational import Relational

    if depth > 20:
        raise _NoKey("nested too deeply")
    grader = _math_verify_grader()
    if isinstance(expr, sympy.MatrixBase):
        return f"M{expr.shape}[" + ",".join(_canonical(e, depth + 1) for e in expr) + "]"
    if not isinstance(expr, sympy.Basic):
        raise _NoKey(type(expr).__name__)
    if grader.is_assignment_relation(expr):
        return _canonical(grader.take_last_relation(expr).rhs, depth + 1)
    expr = _inequalities_as_set(expr)
    if simple_inequality(expr):
        try:
            expr = expr.as_set()
        except Exception:  # noqa: BLE001 - sympy cannot solve it: keyed as a relation below
            pass
    if isinstance(expr, sympy.Interval):
        return (("(" if expr.left_open else "[") + _canonical(expr.start, depth + 1) + ","
                + _canonical(expr.end, depth + 1) + (")" if expr.right_open else "]"))
    if isinstance(expr, sympy.Union):
        return "U(" + ",".join(sorted(_canonical(a, depth + 1) for a in expr.args)) + ")"
    if isinstance(expr, sympy.FiniteSet):
        return "{" + ",".join(sorted(_canonical(a, depth + 1) for a in expr.args)) + "}"
    if isinstance(expr, sympy.Tuple):
        return "(" + ",".join(_canonical(a, depth + 1) for a in expr.args) + ")"
    if isinstance(expr, Relational):
        return f"{type(expr).__name__}:" + _canonical(expr.lhs - expr.rhs, depth + 1)
    if isinstance(expr, sympy.And):
        return "And(" + ",".join(sorted(_canonical(a, depth + 1) for a in expr.args)) + ")"
    expr = grader.get_pct_val(expr, expr)  # 9\% votes with 9, as the verifier accepts 9 for it
    symbols = sorted(expr.free_symbols, key=lambda s: s.name)
    if not symbols:
        return _number_key(expr)
    if len(symbols) > 8:
        raise _NoKey("too many variables")
    values = []
    for point in range(len(_KEY_POINTS)):
        subs = {s: sympy.Float(_KEY_POINTS[(point + i) % len(_KEY_POINTS)], _MAX_KEY_DIGITS) + i for i, s in enumerate(symbols)}
        values.append(_number_key(expr, subs))
    return "f[" + ",".join(s.name for s in symbols) + "]:" + ";".join(values)


# Answers that are words, compared as words: LaTeX reads `BDAC` as the product a*b*c*d (so `ABCD`
# would match it) and `no` as n*o (so `on` would). A reference of three or more capital letters (an
# ordering, a code; two, `AB`, is as often a segment, equal to `BA`) is compared as written; one of
# `_ANSWER_WORDS` case-folded (`Yes` is `yes`). Any other word stays math (`xy`, `abc` are products).
_ANSWER_WORDS = frozenset({"yes", "no", "true", "false", "odd", "even", "neither", "both", "always", "never"})
_BOXED_WORD = re.compile(r"^\\(?:boxed|fbox)\{(.*)\}$")


def word_answer(text: str, reference: bool = False) -> str | None:
    """The word an answer or reference is, as it is compared: a code of three or more capital
    letters as written (`\\boxed{BDAC}` -> `BDAC`), one of `_ANSWER_WORDS` case-folded
    (`\\text{Yes}.` -> `yes`); None for anything else. An answer (`reference=False`) that is some
    other run of letters is returned as written, so that it compares unequal rather than as math."""
    text = normalize_answer_text(text)
    boxed = _BOXED_WORD.match(text)
    if boxed:
        text = normalize_answer_text(boxed.group(1))
    if not re.fullmatch(r"[A-Za-z]{2,}", text):
        return None
    if text.casefold() in _ANSWER_WORDS:
        return text.casefold()
    if text.isupper() and len(text) >= 3:
        return text
    return None if reference else text


def _rejected(answer: str) -> bool:
    """Whether `MathTask.verify_answer` rejects the answer whatever the reference (`screen_answer`,
    `_unevaluated`, `screen_parsed`): a reward hack or a bomb, which must not vote either."""
    if screen_answer(answer) is not None:
        return True
    try:
        parsed = parse_answer(answer)
    except (RecursionError, ValueError, TypeError, ArithmeticError, AttributeError):
        return False  # unparseable, not rejected: keyed by its text, as before
    return bool(parsed) and (_unevaluated(parsed) or screen_parsed(parsed)) is not None


def semantic_key(answer: str) -> str | None:
    """The canonical form of an answer under the verifier's equivalence; None when it does not parse.

    Parses with Math-Verify, so it belongs in a verifier worker (where `rungs eval` and TTRL's vote
    compute keys); the parse is screened (`screen_parsed`) and evaluation is bounded (`evaluated`,
`_evaluable`), so it does not hang on answers that parse.
    """
    if screen_answer(answer) is not None:
        return None
    try:
        parsed = parse_answer(answer)
        if screen_parsed(parsed) is not None:
            return None
        expr = next((p for p in parsed if not isinstance(p, str)), None)
        return None if expr is None else "=" + _canonical(expr)
    except (_NoKey, RecursionError, ValueError, TypeError, ArithmeticError, AttributeError):
        return None


_SPACING = re.compile(r"\\[,;:! ]|\\q?quad(?![A-Za-z])|\\left|\\right|\\displaystyle")
_TEXT_WRAPPER = re.compile(r"\\(?:text|textnormal|textrm|mathrm|textbf|mathbf|textit|mbox)\{([^{}]*)\}")
_ASSIGNMENT = re.compile(r"^[A-Za-z]=([^=]+)$")
_DECIMAL = re.compile(r"^[+-]?(?:\d+\.?\d*|\.\d+)$")
_SLASH = re.compile(r"^([+-]?)(\d+)/(\d+)$")
_FRAC = re.compile(r"^([+-]?)\\frac(?:\{(\d+)\}|(\d))(?:\{(\d+)\}|(\d))$")


def normalize_answer_text(answer: str) -> str:
    """Whitespace, spacing commands, \\left/\\right, \\dfrac, \\text{}, `x=` and trailing dots removed."""
    text = normalize_latex(answer[:_MAX_KEY_CHARS])
    text = _SPACING.sub("", text)
    text = "".join(text.split()).strip("$")
    text = text.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac").replace("{,}", "")
    text = _TEXT_WRAPPER.sub(r"\1", text)
    text = text.rstrip(".")
    match = _ASSIGNMENT.match(text)
    return match.group(1) if match else text


def _as_fraction(text: str) -> Fraction | None:
    """An exact number written as an integer, a decimal, `p/q` or `\\frac{p}{q}`; else None."""
    if len(text) > _MAX_NUMBER_DIGITS:
        return None
    try:
        if _DECIMAL.match(text):
            return Fraction(text)
        match = _SLASH.match(text)
        if match:
            sign, num, den = match.groups()
        else:
            match = _FRAC.match(text)
            if not match:
                return None
            sign, num, den = match.group(1), match.group(2) or match.group(3), match.group(4) or match.group(5)
        if int(den) == 0:
            return None
        return Fraction(int(num), int(den)) * (-1 if sign == "-" else 1)
    except (ValueError, ZeroDivisionError):
        return None


# ------------------------------------------------------------------------------------------------
# GSM8K's `#### answer` lines

GSM8K_MARKER = "####"


def hash_answer(text: str) -> str | None:
    """The answer on the last `####` line of `text` (GSM8K's format: `...\\n#### 72` -> `72`); None if none.

    The answer is the rest of the line after the last `####`, stripped, with markdown bold
    (`**72**`) and a trailing full stop dropped and a math-mode wrapper (`$72$`) unwrapped; a number
    followed by words (`72 clips`, `$5 dollars`) is that number, as GSM8K's graders read it; None
    when there is no `####` or nothing follows it. A linear scan (`rfind`), safe on hostile text.
    """
    if not isinstance(text, str):
        return None
    pos = text.rfind(GSM8K_MARKER)
    if pos < 0:
        return None
    return _line_answer(text, pos + len(GSM8K_MARKER))


# DAPO-Math-17k's format: the prompt asks for a last line `Answer: $Answer` (veRL's math_dapo scorer)
_ANSWER_LINE = re.compile(r"^[ \t>*#_]*answer[ \t*_]*:", re.IGNORECASE | re.MULTILINE)


def answer_line(text: str) -> str | None:
    """The answer on the last line that starts with `Answer:` (DAPO's `Answer: 72`; markdown
    `**Answer:** 72` too), read as `hash_answer` reads a `####` line; None if there is none. Only
    the last 300 characters are searched, as veRL's math_dapo scorer does."""
    if not isinstance(text, str):
        return None
    tail = text[-300:]
    if len(text) > len(tail) and text[-len(tail) - 1] != "\n":  # the cut is mid-line: that line is not whole
        tail = tail[tail.find("\n") + 1:] if "\n" in tail else ""
    ends = [match.end() for match in _ANSWER_LINE.finditer(tail)]
    return _line_answer(tail, ends[-1], units=False) if ends else None


def _line_answer(text: str, start: int, units: bool = True) -> str | None:
    """The rest of the line from `start`, cleaned as `hash_answer` describes; `units=False` keeps a
    number followed by words whole (`10 pi` stays `10 pi`: a math answer, not GSM8K's `72 clips`)."""
    from rungs.verify.extract import strip_math_delimiters

    end = text.find("\n", start)
    answer = text[start : end if end >= 0 else len(text)].strip().strip("*").strip().rstrip(".").strip()
    number_then_words = _NUMBER_THEN_WORDS.match(answer) if units else None
    if number_then_words:
        return number_then_words.group(1)
    return strip_math_delimiters(answer) or None


# The word right after a number that changes its value (`12 thousand`, `2 thirds`, `3 and a half`,
# `5 dozen`; `3 quarters` may be coins or 3/4): such a reference is not read as its leading number
# (it is unlabelled instead). Later words are units (`10 miles per hour` is 10).
_NUMBER_WORD = re.compile(r"hundreds?|thousands?|millions?|billions?|trillions?|dozens?|scores?|grand|k|"
                          r"hal(?:f|ves)|thirds?|quarters?|(?:four|fif|six|seven|eigh|nin|ten|hundred)ths?|"
                          r"and|point|factorial|inverse|reciprocal|power")  # (math words: `_MATH_WORDS`)
_GROUPED_THOUSANDS = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_MATH_WORDS = frozenset({"pi", "sqrt", "sin", "cos", "tan", "cot", "sec", "csc", "log", "ln", "exp",
                         "arcsin", "arccos", "arctan", "sinh", "cosh", "tanh", "root", "over", "times",
                         "plus", "minus", "squared", "cubed", "percent", "i", "e"})
_NUMBER_THEN_WORDS = re.compile(r"^\\?\$?\s*(-?\d[\d,]*(?:\.\d+)?)\s+[A-Za-z]{2,}[A-Za-z .]*$")


# A reference written as a sentence ("The answer is 12.", "Total: 12"): two words in a row, or a
# word and a colon, outside LaTeX commands and \text{...}, and a digit somewhere.
_TEXT_GROUPS = re.compile(r"\\(?:text|textbf|textit|mathrm|mbox|operatorname)\s*\{[^{}]*\}")
_PROSE = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{2,}\s+[A-Za-z]{2,}(?![A-Za-z])|(?<![\\A-Za-z])[A-Za-z]{3,}\s*:")


_NUMBERS = re.compile(r"\d+(?:[.,]\d+)*")
_LATEX_CONSTRUCT = re.compile(r"\\[A-Za-z]+(?:\s*\{[^{}]*\})*")


@functools.lru_cache(maxsize=1024)
def prose_reference(reference: str) -> tuple[Any, ...] | None:
    """A reference written as a sentence (`_PROSE`): None when it is not one (it is then parsed as
    an answer, `parse_answer`). One that holds a single number (`The answer is 12.`, `Total: 12`)
    is Math-Verify's own reading of it, with its default extraction, as TRL's `accuracy_reward`
    parses a `solution`; one with several (`2 hours and 30 minutes`, `The roots are 2 and 5`) says
    nothing a program can take as the answer: () (the row is unlabelled), never its last number.
    Wrapped in `$...$`, as an answer is, a sentence would be a product of letters. A number followed
    by unit words (`12 dollars`, `5 cm`) is that number, as Math-Verify's default parse reads it;
    not when a word is math (`10 pi`, `3 sqrt 2`: `_MATH_WORDS`)."""
    if "$" in reference or "\\boxed" in reference or "\\fbox" in reference:
        return None  # its math is delimited: parse_answer reads the boxed or $...$ part, as it always did
    bare = _TEXT_GROUPS.sub(" ", reference)
    units = _NUMBER_THEN_WORDS.match(bare.strip().rstrip(".").strip())
    if units and not _MATH_WORDS.intersection(units.group(0).lower().split()):
        number, words = units.group(1), units.group(0)[len(units.group(1)):].lower().split()
        if _NUMBER_WORD.fullmatch(words[0]) or ("," in number and not _GROUPED_THOUSANDS.fullmatch(number.lstrip("-"))):
            return ()  # `12 thousand`, `2 thirds`, `3 and a half`, `1,5 liters`: no number we can take as it
        return parse_answer(number.replace(",", ""))  # `12 dollars` is 12, not 12*a*d*l*l*o*r*s
    if not re.search(r"\d", bare) or not _PROSE.search(bare):
        return None
    if len(_NUMBERS.findall(_LATEX_CONSTRUCT.sub(" 0 ", bare))) != 1:  # \frac{1}{2} is one number
        return ()
    parsed = tuple(_math_verify().parse(normalize_latex(reference), parsing_timeout=None))
    return parsed if _has_math(parsed) else ()


def reference_text(reference: str) -> str:
    """The reference answer to check against: GSM8K's rationale ending in `#### 72` is `72`; any
    other reference is itself."""
    return hash_answer(reference) or reference


# ------------------------------------------------------------------------------------------------
# Problem generator


def _fraction_text(value: Fraction) -> str:
    return str(value)  # "7", "-7/3"


def _expression(rng: random.Random, n_ops: int, max_int: int, ops: str, fractions: bool) -> tuple[str, Fraction, int]:
    """A random expression with `n_ops` operators: (text, exact value, precedence of its top)."""
    if n_ops == 0:
        if fractions and rng.random() < 0.3:
            den = rng.randint(2, max(3, max_int // 3))
            value = Fraction(rng.randint(1, 2 * den - 1), den)
            if value.denominator > 1:
                return f"{value.numerator}/{value.denominator}", value, 2
        value = Fraction(rng.randint(1, max_int))
        return str(value), value, 3
    left_ops = rng.randint(0, n_ops - 1)
    left = _expression(rng, left_ops, max_int, ops, fractions)
    right = _expression(rng, n_ops - 1 - left_ops, max_int, ops, fractions)
    op = rng.choice(ops)
    if op == "/" and right[1] == 0:
        op = "*"
    value = {
        "+": lambda a, b: a + b,
        "-": lambda a, b: a - b,
        "*": lambda a, b: a * b,
        "/": lambda a, b: a / b,
    }[op](left[1], right[1])
    prec = 1 if op in "+-" else 2
    left_text = f"({left[0]})" if left[2] < prec else left[0]
    # a - (b - c), a / (b / c), a / (3/4): same precedence on the right needs parentheses too.
    right_text = f"({right[0]})" if right[2] < prec or (right[2] == prec and op in "-/") else right[0]
    return f"{left_text} {op} {right_text}", value, prec


def _linear_side(coef: int, const: int) -> str:
    if coef == 0:
        return str(const)
    term = {1: "x", -1: "-x"}.get(coef, f"{coef}*x")
    if const == 0:
        return term
    return f"{term} {'+' if const > 0 else '-'} {abs(const)}"


def _linear(rng: random.Random, d: float) -> tuple[str, Fraction]:
    """`a*x + b = c` (and `a*x + b = c*x + e` when hard); the solution is an integer when easy."""
    m = int(4 + 3 * d)

    def nonzero() -> int:
        return rng.choice([k for k in range(-m, m + 1) if k != 0])

    a, b = nonzero(), rng.randint(-m, m)
    if d < 2.5:  # integer solution
        x = Fraction(rng.randint(-m, m))
        return f"{_linear_side(a, b)} = {a * int(x) + b}", x
    if d < 3.5:  # rational solution
        c = rng.randint(-m, m)
        return f"{_linear_side(a, b)} = {c}", Fraction(c - b, a)
    c = nonzero()
    while c == a:
        c = nonzero()
    e = rng.randint(-m, m)
    return f"{_linear_side(a, b)} = {_linear_side(c, e)}", Fraction(e - b, a - c)


# ------------------------------------------------------------------------------------------------
# The task


class MathTask(Task):
    name = "math"
    description = "free-form math answers in \\boxed{}, checked against the reference with Math-Verify"
    needs_answer = True
    alphabet = ALPHABET

    def prompt(self, problem: Problem, style: str = "instruct") -> str:
        if style == "instruct":
            return f"{problem.text}\n\n{INSTRUCTION}"
        if style == "compact":
            return problem.text
        raise UserError(f"unknown prompt style {style!r}: expected one of {', '.join(PROMPT_STYLES)}")

    answer_forms = "<answer>...</answer>, \\boxed{...}, a final #### line or a final Answer: line"

    def extract_answer(self, completion: str) -> str | None:
        """The last <answer>...</answer> or \\boxed{...} (`Task.extract_answer`); failing that, GSM8K's
        final `#### 72` line (`hash_answer`), then DAPO's final `Answer: 72` line (`answer_line`). A
        boxed or tagged answer keeps priority, and a completion whose last wrapper is cut off has no
        answer, whatever `####` or `Answer:` it holds."""
        answer = super().extract_answer(completion)
        if answer is not None or not isinstance(completion, str):
            return answer
        from rungs.verify.extract import after_reasoning, cut_off

        text: str | None = completion
        if self.reasoning_delimiters:
            text = after_reasoning(completion, self.reasoning_delimiters)
        if text is None or cut_off(text):
            return None
        return hash_answer(text) or answer_line(text)

    def verify_answer(self, problem: Problem, answer: str) -> Verdict:
        """Against the reference; where the ground truth listed several (`meta["answers"]`), right if
        any of them matches (the verdict for the first reference otherwise)."""
        accepted = problem.meta.get(ANSWERS_META_KEY) if isinstance(problem.meta, dict) else None
        if isinstance(accepted, list) and len(accepted) > 1:
            first = None
            for gold in accepted:  # stop at the first reference that matches
                verdict = self._verify_one(dataclasses.replace(problem, answer=str(gold)), answer)
                if verdict.correct:
                    return verdict
                if first is None or (first.status is Status.UNLABELLED and verdict.status is not Status.UNLABELLED):
                    first = verdict  # a broken reference among good ones does not void the row
            return first
        return self._verify_one(problem, answer)

    def _verify_one(self, problem: Problem, answer: str) -> Verdict:
        if problem.answer is None or not str(problem.answer).strip():
            return Verdict.fail(Status.UNLABELLED, "math task needs a reference answer", answer)
        reference = reference_text(str(problem.answer))
        word = word_answer(reference, reference=True)
        if word is not None:  # `BDAC`, `yes`: compared as words, not as products of letters
            refused = screen_answer(answer)
            if refused is not None:
                return Verdict.fail(Status.REJECTED, refused, answer)
            said = word_answer(answer)
            if said == word:
                return Verdict(1.0, Status.CORRECT, "", answer)
            if said is None and not _has_math(parse_answer(answer)):
                return Verdict.fail(Status.UNPARSEABLE, "the answer is not a word or a math expression", answer)
            return Verdict.fail(Status.WRONG, f"not the word {reference.strip()!r}", answer)
        prose = prose_reference(reference)
        gold = parse_answer(reference) if prose is None else prose
        if not gold or (all(isinstance(g, str) for g in gold) and _broken_latex(reference)):
            # Nothing parses, or only the raw text of broken LaTeX (`\frac{`, `{`): a broken label, not
            # a wrong answer; the row is unlabelled, as TRL's accuracy_reward skips a gold it cannot
            # parse. A plain word (`north`) also parses as text only, and is still compared as text.
            return Verdict.fail(Status.UNLABELLED, f"the reference answer {reference[:80]!r} does not parse as "
                                "math: the row is unlabelled", answer)
        refused = screen_parsed(gold)
        if refused is not None:
            return Verdict.fail(Status.ERROR, f"reference answer {reference!r} refused: {refused}", answer)
        refused = screen_answer(answer)
        if refused is not None:
            return Verdict.fail(Status.REJECTED, refused, answer)
        pred = parse_answer(answer)
        if not pred:
            return Verdict.fail(Status.UNPARSEABLE, "Math-Verify could not parse the answer", answer)
        refused = _unevaluated(pred) or screen_parsed(pred)
        if refused is not None:
            return Verdict.fail(Status.REJECTED, refused, answer)
        if answers_match(gold, pred):
            return Verdict(1.0, Status.CORRECT, "", answer)
        if _has_math(gold) and not _has_math(pred):
            return Verdict.fail(Status.UNPARSEABLE, "the answer is not a math expression", answer)
        return Verdict.fail(Status.WRONG, "not equivalent to the reference answer", answer)

    def answer_key(self, problem: Problem, answer: str) -> Hashable | None:
        """A voting key under which answers the verifier calls equal fall together (`semantic_key`).

        `1,000` and `1000`, `0.5` and `\\frac12`, `2x+2` and `2(x+1)`, `x<3` and `(-\\infty, 3)` share a
        key. It parses with Math-Verify, so callers run it in a verifier worker (as `rungs eval`
        and TTRL's vote do). An answer that does not parse keys by its normalised text (whitespace,
        `\\left`/`\\right`, spacing commands, `\\dfrac`, `\\text{}` and a leading `x =` dropped; an
        exact number as its reduced fraction).
        """
        text = normalize_answer_text(answer)
        if not text or _rejected(answer):
            return None  # what verify_answer rejects (a bomb, `\\int_0^2 x\\,dx` for 2) never votes
        word = word_answer(answer, reference=True)
        if word is not None:  # `BDAC` and `ABCD` are two answers, as the verifier reads them
            return "word:" + word
        key = semantic_key(answer)  # `\\text{2}` is 2 here as in the verifier (`normalize_latex`)
        if key is not None:
            return key
        number = _as_fraction(text)
        return _fraction_text(number) if number is not None else text

    def generate(self, n: int, difficulty: float, seed: int = 0) -> list[Problem]:
        """Arithmetic (more operators, then *, /, fractions as difficulty grows) and linear equations.

        `difficulty` is clamped to [1, MAX_DIFFICULTY] (an expression's size grows with it: 1e9
        would build a billion-operator expression); ValueError when it is not finite."""
        if not math.isfinite(float(difficulty)):
            raise ValueError(f"difficulty must be a finite number, got {difficulty}")
        rng = random.Random(f"math:{seed}:{difficulty}")
        d = min(max(1.0, float(difficulty)), MAX_DIFFICULTY)
        ops = "+-" + ("*" if d >= 1.5 else "") + ("/" if d >= 2.5 else "")
        problems = []
        for i in range(n):
            if rng.random() < 0.5:
                text, value, _ = _expression(rng, max(1, round(d)), int(5 + 5 * d), ops, fractions=d >= 3)
                kind, text = "evaluate", EVALUATE + text
            else:
                text, value = _linear(rng, d)
                kind, text = "linear", SOLVE + text
            problems.append(
                Problem(
                    id=f"math-d{d:g}-s{seed}-{i}",
                    text=text,
                    answer=_fraction_text(value),
                    meta={"difficulty": d, "kind": kind},
                )
            )
        return problems
