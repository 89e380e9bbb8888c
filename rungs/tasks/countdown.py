"""Countdown (as in TinyZero): reach a target with + - * / over the given numbers, each used once.

Why this task: its answers are checked exactly and cheaply (no sympy, no numerics), problems of
any difficulty can be generated with a known solution, and easier variants fall out of the
solution's own subexpressions, so it is the quickest task on which to watch a curriculum work.

Problem text (compact and parseable): ``numbers: 3 7 25 50; target: 72``. Rows from TinyZero's
dataset (``nums`` + ``target`` columns, problem text in its own words) work too: when the text
is not in this format, ``meta["numbers"]`` / ``meta["nums"]`` and ``meta["target"]`` are used,
and TinyZero's wording "Using the numbers [44, 19, 35], create an equation that equals 98" is
recognised as well.

Answer grammar, checked on the AST of `rungs.verify.safe_expr.parse` (model text is never
evaluated as Python): integer literals, binary + - * /, parentheses. Refused:
- unary minus (the rules have no negation: a number is used as given), except that ``-5`` is
  the literal -5 when -5 is one of the given numbers;
- decimal or exponent literals (``2.5``, ``1e3``), names, function calls, powers (``^``, ``**``),
  and implicit multiplication (``2(3+4)``, ``25 50``);
- a multiset of numbers other than the given one (``reuse="exactly_once"``, the default) or not
  contained in it (``reuse="at_most_once"``).
Values are exact fractions, so intermediate results may be fractional (TinyZero allows that too,
its checker being Python arithmetic); division by zero is a WRONG answer. A trailing ``= 72``
(the target) is accepted, as are ``\\times``, ``\\cdot``, ``\\div``, ``×``, ``÷`` and U+2212 minus.

Reward is 1 for a correct answer and 0 otherwise: no partial credit (a format bonus, if wanted, is
the trainer's business).

Voting key: the answer's exact value plus the sorted multiset of numbers it uses. Every correct
answer has the same key (target, given numbers), whatever the order or bracketing, which is what
majority voting over expressions needs; wrong answers group by what they compute.
"""

from __future__ import annotations

import math
import random
import re
import time
from collections import Counter
from collections.abc import Hashable, Sequence
from fractions import Fraction

from rungs.errors import UnsafeExpression, UserError
from rungs.tasks.base import PROMPT_STYLES, Task, Variant
from rungs.tasks.levels import pick_level
from rungs.types import Problem, Status, Verdict
from rungs.verify import safe_expr
from rungs.verify.safe_expr import BinOp, Call, ExpressionSyntaxError, Name, Neg, Num

REUSE_MODES = ("exactly_once", "at_most_once")
# the symbolic variant maker's transforms, in the order each node's children are made; the default
# leaves out smaller_numbers so that every tree (and figure) recorded before it stays reproducible
VARIANT_TRANSFORMS = ("smaller_numbers", "merge_numbers", "subexpression", "drop_numbers")
DEFAULT_VARIANT_TRANSFORMS = ("merge_numbers", "subexpression", "drop_numbers")
OPS = ("+", "-", "*", "/")
_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2}
Value = int | Fraction

# ---- problem text ----------------------------------------------------------------------------

_INT = r"[-+]?\d+"
_DECIMAL = re.compile(r"\d\.\d")  # a digit, a decimal point, a digit: not an integer
_NOT_WHOLE_AFTER = re.compile(r"[.,/eE^]\d")  # what, right after a number's digits, makes it another number
_COMPACT = re.compile(
    rf"^\s*numbers?\s*[:=]\s*\[?\s*(?P<nums>{_INT}(?:\s*[,\s]\s*{_INT})*)\s*\]?\s*[;,]?\s*"
    rf"target\s*[:=]\s*(?P<target>{_INT})\s*\.?\s*$",
    re.IGNORECASE,
)
# TinyZero's prompt: "Using the numbers [44, 19, 35], create an equation that equals 98."
_TINYZERO = re.compile(
    rf"numbers\s*\[\s*(?P<nums>{_INT}(?:\s*,\s*{_INT})*)\s*\].{{0,200}}?equals\s+(?P<target>{_INT})",
    re.IGNORECASE | re.DOTALL,
)
MAX_NUMBERS = 20  # a problem with more numbers is not a countdown problem worth checking
MAX_DIGITS = 30  # per given number or target, as for answer literals


def format_problem(numbers: Sequence[int], target: int) -> str:
    """The compact problem text: ``numbers: 3 7 25 50; target: 72``."""
    return f"numbers: {' '.join(str(n) for n in numbers)}; target: {target}"


def _ints(values: object, where: str) -> list[int]:
    if isinstance(values, str):
        if _DECIMAL.search(values):
            raise UserError(f"{where}: numbers must be integers, got {values!r}")
        values = re.findall(_INT, values)
    if not isinstance(values, (list, tuple)) or not values:
        raise UserError(f"{where}: expected a non-empty list of integers for the numbers, got {values!r}")
    return [_int(v, where, "numbers must be integers") for v in values]


def _int(value: object, where: str, what: str) -> int:
    """One integer of a problem's spec: an int, a whole float (`6.0`) or digits; else a UserError
    `where: what, got value` (`6.9` is refused, never truncated to 6)."""
    if isinstance(value, bool) or not isinstance(value, (int, str, float)):
        raise UserError(f"{where}: {what}, got {value!r}")
    if isinstance(value, float) and not value.is_integer():
        raise UserError(f"{where}: {what}, got {value!r}")
    if isinstance(value, str) and not re.fullmatch(rf"\s*{_INT}\s*", value):  # not `1_000`, `6.5`, `0x10`
        raise UserError(f"{where}: {what}, got {value!r}")
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        raise UserError(f"{where}: {what}, got {value!r}") from None


def parse_spec(problem: Problem) -> tuple[list[int], int]:
    """(numbers, target) of a countdown problem; a UserError names the problem if there are none."""
    where = f"problem {problem.id!r}"
    text = problem.text or ""
    match = _COMPACT.match(text) or _TINYZERO.search(text[:2000])
    if match is not None:
        if _NOT_WHOLE_AFTER.match(text, match.end("target")):  # `equals 6.5`, `1,000`, `2/3`, `1e3`: not 6, 1, 2, 1
            raise UserError(f"{where}: target must be an integer written in digits, got "
                            f"{text[match.start('target'):match.end('target') + 12]!r}")
        numbers = [int(n) for n in re.findall(_INT, match.group("nums"))]
        target = int(match.group("target"))
    else:
        meta = problem.meta or {}
        raw = meta.get("numbers", meta.get("nums"))
        if raw is None or meta.get("target") is None:
            raise UserError(
                f"{where}: not a countdown problem: expected text like 'numbers: 3 7 25 50; target: 72' "
                f"or meta with 'numbers' (or 'nums') and 'target', got {text[:60]!r}"
            )
        numbers = _ints(raw, where)
        target = _int(meta["target"], where, "target must be an integer")
    if not 1 <= len(numbers) <= MAX_NUMBERS:
        raise UserError(f"{where}: expected 1 to {MAX_NUMBERS} numbers, got {len(numbers)}")
    if any(len(str(abs(v))) > MAX_DIGITS for v in (*numbers, target)):
        raise UserError(f"{where}: numbers and target must have at most {MAX_DIGITS} digits")
    return numbers, target


# ---- expressions -----------------------------------------------------------------------------

_NORMALISE = (
    ("\\left(", "("), ("\\right)", ")"), ("\\times", "*"), ("\\cdot", "*"), ("\\div", "/"),
    ("×", "*"), ("÷", "/"), ("\u2212", "-"),
)


class _Refused(Exception):
    """An answer outside the countdown grammar: (status, detail)."""

    def __init__(self, status: Status, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


def _split_claim(answer: str) -> tuple[str, str | None]:
    """'(3+7)*5 = 50' -> ('(3+7)*5', '50'); more than one '=' is refused."""
    for old, new in _NORMALISE:
        answer = answer.replace(old, new)
    if answer.count("=") > 1:
        raise _Refused(Status.UNPARSEABLE, "more than one '=' in the answer")
    lhs, sep, rhs = answer.partition("=")
    if not sep:
        return answer, None
    rhs = rhs.strip()
    if not re.fullmatch(r"[-+]?\d{1,30}", rhs):
        raise _Refused(Status.UNPARSEABLE, f"after '=' expected the target number, got {rhs[:40]!r}")
    return lhs, rhs


def _check_juxtaposition(text: str) -> None:
    """Refuse implicit multiplication, which the shared parser accepts: '2(3+4)', '25 50', '(1)(2)'."""
    tokens = safe_expr.tokenize(text)
    for (k1, v1), (k2, v2) in zip(tokens, tokens[1:]):
        if k1 == "name" and v2 == "(":
            continue  # a function call: refused later, with a clearer message
        if (k1 in ("num", "name") or v1 == ")") and (k2 in ("num", "name") or v2 == "("):
            raise _Refused(Status.UNPARSEABLE, f"implicit multiplication between {v1!r} and {v2!r}; write * explicitly")


def _leaves(node: safe_expr.Node, out: list[int]) -> None:
    """Collect the integer literals of a countdown expression; refuse anything else."""
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, Num):
            if not n.text.isdigit():
                raise _Refused(Status.REJECTED, f"{n.text} is not an integer literal; use the given numbers as written")
            out.append(int(n.text))
        elif isinstance(n, Neg):
            if isinstance(n.operand, Num) and n.operand.text.isdigit():
                out.append(-int(n.operand.text))  # a negative literal; checked against the numbers
            else:
                raise _Refused(Status.REJECTED, "unary minus is not allowed; combine the numbers with + - * /")
        elif isinstance(n, BinOp):
            if n.op not in OPS:
                raise _Refused(Status.REJECTED, f"operator {n.written or n.op!r} is not allowed; only + - * /")
            stack += [n.right, n.left]
        elif isinstance(n, Name):
            raise _Refused(Status.REJECTED, f"symbol {n.name!r} is not allowed; only the given numbers")
        elif isinstance(n, Call):
            raise _Refused(Status.REJECTED, f"function {n.func}() is not allowed; only + - * /")
        else:  # pragma: no cover - the parser makes no other nodes
            raise _Refused(Status.REJECTED, f"unexpected node {type(n).__name__}")


def _evaluate(node: safe_expr.Node) -> Fraction:
    """Exact value; ZeroDivisionError on division by zero. Only called on checked trees."""
    if isinstance(node, Num):
        return Fraction(int(node.text))
    if isinstance(node, Neg):
        return -_evaluate(node.operand)
    assert isinstance(node, BinOp)
    left, right = _evaluate(node.left), _evaluate(node.right)
    if node.op == "+":
        return left + right
    if node.op == "-":
        return left - right
    if node.op == "*":
        return left * right
    return left / right  # Fraction raises ZeroDivisionError


def _parse_expression(text: str) -> tuple[safe_expr.Node, list[int]]:
    """(AST, integer literals used) of one countdown expression; raises `_Refused`."""
    try:
        _check_juxtaposition(text)
        tree = safe_expr.parse(text)
    except ExpressionSyntaxError as err:
        raise _Refused(Status.UNPARSEABLE, str(err)) from None
    except UnsafeExpression as err:
        raise _Refused(Status.REJECTED, str(err)) from None
    used: list[int] = []
    _leaves(tree, used)
    return tree, used


def parse_answer(answer: str) -> tuple[safe_expr.Node, list[int], int | None]:
    """(AST, integer literals used, claimed right-hand side or None); raises `_Refused`.

    An answer is one expression (``(3 + 7) * 5``, optionally ``= 50``) or a worked chain of steps
    (``3+7=10; 10*5=50``, see `parse_steps`), which becomes the one expression it spells out.
    """
    if not isinstance(answer, str) or not answer.strip():
        raise _Refused(Status.NO_ANSWER, "empty answer")
    steps = [part for part in _STEP_SEPARATOR.split(answer) if part.strip()]
    if len(steps) > 1:
        return parse_steps(steps)
    lhs, rhs = _split_claim(answer)
    tree, used = _parse_expression(lhs)
    return tree, used, (int(rhs) if rhs is not None else None)


_STEP_SEPARATOR = re.compile(r"[;,\n]")
MAX_STEPS = MAX_NUMBERS  # n numbers need n - 1 steps; more is not a solution worth checking


def parse_steps(steps: Sequence[str]) -> tuple[safe_expr.Node, list[int], int]:
    """A worked solution, one step per item (``["3+7=10", "10*5=50"]``), as (the one expression it
    spells out, the given numbers it uses, its last step's result); raises `_Refused`.

    Each step is ``expression = value``: its expression combines given numbers and results of earlier
    steps, and the value must be what the expression evaluates to exactly (else WRONG, naming the
    step). A literal equal to an earlier, not yet used result stands for that result (the most recent
    one first, each result used once) and is replaced by the expression that made it, so ``3+7=10;
    10*5=50`` is ``(3 + 7) * 5`` and is then checked as any expression is (each given number once,
    the value the target). This is the chain the countdown TV game's contestants show, and the one a
    model that solves one step at a time writes: step k's problem is the parent's with two numbers
    merged, which is what LADDER's ``merge_numbers`` variants train.
    """
    if len(steps) > MAX_STEPS:
        raise _Refused(Status.REJECTED, f"{len(steps)} steps; at most {MAX_STEPS} are checked")
    results: list[tuple[int, safe_expr.Node]] = []  # (value, expression over given numbers), unused so far
    tree: safe_expr.Node | None = None
    claim = 0
    for i, step in enumerate(steps, 1):
        try:
            lhs, rhs = _split_claim(step)
            if rhs is None:
                raise _Refused(Status.UNPARSEABLE, f"expected 'expression = value', got {step.strip()[:40]!r}")
            written, _ = _parse_expression(lhs)
        except _Refused as err:
            raise _Refused(err.status, f"step {i}: {err.detail}") from None
        try:
            value = _evaluate(written)
        except ZeroDivisionError:
            raise _Refused(Status.WRONG, f"step {i}: division by zero") from None
        claim = int(rhs)
        if value != claim:
            raise _Refused(Status.WRONG, f"step {i}: {render(written)} is {_fmt_value(value)}, not {claim}")
        tree = _substitute_results(written, results)
        results.append((claim, tree))
    assert tree is not None
    used: list[int] = []
    _leaves(tree, used)
    return tree, used, claim


def _substitute_results(node: safe_expr.Node, results: list[tuple[int, safe_expr.Node]]) -> safe_expr.Node:
    """`node` with each literal that equals an unused earlier result replaced by that result's
    expression (the most recent first); the results used are removed from `results`."""
    if isinstance(node, Num):
        value = int(node.text)
        for j in range(len(results) - 1, -1, -1):
            if results[j][0] == value:
                return results.pop(j)[1]
        return node
    if isinstance(node, Neg):
        return Neg(_substitute_results(node.operand, results))
    assert isinstance(node, BinOp)
    left = _substitute_results(node.left, results)
    return BinOp(node.op, left, _substitute_results(node.right, results))


def _fmt_value(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"


def _multiset_problem(used: list[int], numbers: list[int], reuse: str) -> str | None:
    """Why `used` is not an allowed multiset of `numbers`, or None when it is."""
    have, given = Counter(used), Counter(numbers)
    for n, k in sorted(have.items()):
        if n not in given:
            return f"uses {n}, which is not one of the given numbers {sorted(numbers)}"
        if k > given[n]:
            return f"uses {n} {k} times but it is given {given[n]} time(s)"
    if reuse == "exactly_once":
        missing = sorted((given - have).elements())
        if missing:
            return f"does not use {', '.join(map(str, missing))}; each given number must be used exactly once"
    return None


# ---- rendering and random construction -------------------------------------------------------


def render(node: safe_expr.Node) -> str:
    """An AST as text with only the parentheses its structure needs."""
    if isinstance(node, Num):
        return node.text
    if isinstance(node, Neg):
        inner = render(node.operand)
        return f"-{inner}" if isinstance(node.operand, Num) else f"-({inner})"
    assert isinstance(node, BinOp)
    prec = _PRECEDENCE[node.op]
    left, right = render(node.left), render(node.right)
    if isinstance(node.left, BinOp) and _PRECEDENCE[node.left.op] < prec:
        left = f"({left})"
    if isinstance(node.right, BinOp):
        rprec = _PRECEDENCE[node.right.op]
        if rprec < prec or (rprec == prec and not (node.op in "+*" and node.right.op == node.op)):
            right = f"({right})"
    elif isinstance(node.right, Neg):
        right = f"({right})"
    return f"{left} {node.op} {right}"


def render_steps(node: safe_expr.Node) -> str:
    """An expression as the worked chain of steps `parse_steps` reads back, one operation per step,
    left operand's steps first: ``(3 + 7) * 5`` -> ``3+7=10;10*5=50``; a bare number stays itself.

    Raises ValueError when an operation's value is not a positive integer (a later step could not
    name it as one number); `random_combination`'s solutions never have one.
    """
    steps: list[str] = []

    def walk(n: safe_expr.Node) -> str:
        if not isinstance(n, BinOp):
            return render(n)
        left, right = walk(n.left), walk(n.right)
        value = _evaluate(n)
        if value.denominator != 1 or value <= 0:
            raise ValueError(f"{render(n)} is {_fmt_value(value)}: a step's value must be a positive integer")
        steps.append(f"{left}{n.op}{right}={value.numerator}")
        return str(value.numerator)

    last = walk(node)
    return ";".join(steps) if steps else last


def _leaf(n: int) -> safe_expr.Node:
    return Num(str(n)) if n >= 0 else Neg(Num(str(-n)))


def _apply(op: str, a: Value, b: Value) -> Value | None:
    """a op b as an int when integral, a Fraction otherwise; None for division by zero."""
    if op == "+":
        r = a + b
    elif op == "-":
        r = a - b
    elif op == "*":
        r = a * b
    else:
        if b == 0:
            return None
        if isinstance(a, int) and isinstance(b, int):
            return a // b if a % b == 0 else Fraction(a, b)
        r = Fraction(a) / b
    if isinstance(r, Fraction) and r.denominator == 1:
        return r.numerator
    return r


def random_combination(numbers: Sequence[int], rng: random.Random) -> tuple[safe_expr.Node, int] | None:
    """Combine all `numbers` with random operations, keeping every intermediate a positive integer.

    Returns (expression, value) or None when a random attempt got stuck (callers retry). Division
    only when exact; subtraction only when positive; multiplying or dividing by 1 is avoided when
    another operation works, so targets are not trivially the product of the rest.
    """
    pool: list[tuple[safe_expr.Node, int]] = [(_leaf(n), n) for n in numbers]
    while len(pool) > 1:
        i, j = rng.sample(range(len(pool)), 2)
        (ea, a), (eb, b) = pool[i], pool[j]
        if a < b:
            (ea, a), (eb, b) = (eb, b), (ea, a)
        choices = ["+"]
        if a > b:
            choices.append("-")
        if b != 1:
            choices.append("*")
            if b != 0 and a % b == 0:
                choices.append("/")
        op = rng.choice(choices)
        value = _apply(op, a, b)
        if not isinstance(value, int) or value <= 0:
            return None
        pool = [p for k, p in enumerate(pool) if k not in (i, j)]
        pool.append((BinOp(op, ea, eb), value))
    return pool[0]


# ---- solver ----------------------------------------------------------------------------------


_TABLE_SIZE = 4  # subsets up to this size get a full value -> expression table


def _merge_one_pair(tree: safe_expr.Node, rng: random.Random) -> safe_expr.Node | None:
    """`tree` with one operation on two given numbers replaced by its value (a positive integer).

    The pair is drawn at random among the operations whose operands are both numbers; None when
    no such operation has a positive integer value. The tree's value is unchanged.
    """
    pairs: list[tuple[BinOp, int]] = []
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, BinOp):
            if isinstance(node.left, Num) and isinstance(node.right, Num):
                value = _evaluate(node)
                if value.denominator == 1 and value > 0:
                    pairs.append((node, value.numerator))
            else:
                stack += [node.left, node.right]
    if not pairs:
        return None
    chosen, merged_value = rng.choice(pairs)

    def rebuild(node: safe_expr.Node) -> safe_expr.Node:
        if node is chosen:
            return Num(str(merged_value))
        if isinstance(node, BinOp):
            return BinOp(node.op, rebuild(node.left), rebuild(node.right))
        return node

    return rebuild(tree)


def _smaller_numbers(tree: safe_expr.Node, rng: random.Random, tries: int = 100) -> tuple[safe_expr.Node, int] | None:
    """`tree`'s shape (its operations and brackets) over smaller numbers, and its value.

    Each number n is redrawn from 1..max(1, min(n - 1, 12)) (so 1 stays 1, every other number
    shrinks), retried up to `tries` times until every operation's value, the whole tree's included,
    is a positive integer (a division exact); None when no draw works or nothing changed.
    """

    def rebuild(node: safe_expr.Node) -> tuple[safe_expr.Node, int] | None:
        if isinstance(node, Num):
            value = rng.randint(1, max(1, min(int(node.text) - 1, 12)))
            return Num(str(value)), value
        if not isinstance(node, BinOp):
            return None  # a negative literal (at_most_once with a negative number): not shrunk
        left, right = rebuild(node.left), rebuild(node.right)
        if left is None or right is None:
            return None
        value = _apply(node.op, left[1], right[1])  # None for division by zero, a Fraction if inexact
        if not isinstance(value, int) or value <= 0:
            return None
        return BinOp(node.op, left[0], right[0]), value

    original = render(tree)
    for _ in range(tries):
        made = rebuild(tree)
        if made is not None and render(made[0]) != original:
            return made
    return None


class _OutOfTime(Exception):
    pass


def solve(
    numbers: Sequence[int],
    target: int,
    reuse: str = "exactly_once",
    time_limit: float = 5.0,
) -> str | None:
    """An expression over `numbers` equal to `target`, or None if there is none (or time ran out).

    Exact (fractional intermediates allowed, as the verifier allows them). Sets of up to
    `_TABLE_SIZE` numbers get a full table value -> expression; larger sets are searched top-down
    by splitting them in two and looking up the value the larger half would need, with memoised
    (subset, value) results. Six numbers take milliseconds to about a second.
    """
    nums = list(numbers)
    n = len(nums)
    if n == 0:
        return None
    deadline = time.monotonic() + time_limit
    tables: dict[int, dict[Value, safe_expr.Node]] = {}
    memo: dict[tuple[int, Value], safe_expr.Node | None] = {}
    ticks = [0]

    def tick() -> None:
        ticks[0] += 1
        if ticks[0] % 4096 == 0 and time.monotonic() > deadline:
            raise _OutOfTime

    def splits(mask: int):
        # unordered {A, B} with A the smaller side (ties broken by value); all op orders are tried
        sub = (mask - 1) & mask
        while sub:
            other = mask ^ sub
            ca, cb = sub.bit_count(), other.bit_count()
            if ca < cb or (ca == cb and sub < other):
                yield sub, other
            sub = (sub - 1) & mask

    def table(mask: int) -> dict[Value, safe_expr.Node]:
        if mask in tables:
            return tables[mask]
        if mask & (mask - 1) == 0:
            k = mask.bit_length() - 1
            result = {nums[k]: _leaf(nums[k])}
        else:
            result = {}
            for a_mask, b_mask in splits(mask):
                tb = table(b_mask)
                for a, ea in table(a_mask).items():
                    for b, eb in tb.items():
                        tick()
                        for op, x, y, ex, ey in (
                            ("+", a, b, ea, eb), ("*", a, b, ea, eb), ("-", a, b, ea, eb),
                            ("-", b, a, eb, ea), ("/", a, b, ea, eb), ("/", b, a, eb, ea),
                        ):
                            v = _apply(op, x, y)
                            if v is not None and v not in result:
                                result[v] = BinOp(op, ex, ey)
        tables[mask] = result
        return result

    def reach(mask: int, t: Value) -> safe_expr.Node | None:
        if mask.bit_count() <= _TABLE_SIZE:
            return table(mask).get(t)
        key = (mask, t)
        if key in memo:
            return memo[key]
        memo[key] = None
        found = None
        for a_mask, b_mask in splits(mask):
            for a, ea in table(a_mask).items():
                tick()
                # t = a + b | a - b | b - a | a * b | a / b | b / a, solved for b
                needs = [("+", t - a, False), ("-", a - t, True), ("-", t + a, False)]
                if a != 0:
                    needs.append(("*", _apply("/", t, a), False))
                    needs.append(("/", _apply("*", t, a), False))
                if t != 0 and a != 0:
                    needs.append(("/", _apply("/", a, t), True))
                for op, b, a_first in needs:
                    if b is None:
                        continue
                    eb = reach(b_mask, b)
                    if eb is not None:
                        found = BinOp(op, ea, eb) if a_first or op in "+*" else BinOp(op, eb, ea)
                        break
                if found is not None:
                    break
            if found is not None:
                break
        memo[key] = found
        return found

    full = (1 << n) - 1
    masks = [full] if reuse == "exactly_once" else sorted(range(1, full + 1), key=lambda m: m.bit_count())
    try:
        for mask in masks:
            tree = reach(mask, target)
            if tree is not None:
                return render(tree)
    except _OutOfTime:
        return None
    return None


# ---- the task --------------------------------------------------------------------------------


TOP_LEVEL = 5  # difficulty 5 and above: six numbers up to 100, the largest problems generated


def _numbers_for(difficulty: float, rng: random.Random) -> tuple[int, int]:
    """(how many numbers, largest number) for a difficulty."""
    d = max(1, int(round(difficulty)))
    if d <= 3:
        return d + 1, (10, 20, 50)[d - 1]
    return (rng.choice((5, 6)) if d == 4 else 6), 100


class CountdownTask(Task):
    name = "countdown"
    description = "reach a target number with + - * / over given numbers, each used once (TinyZero)"
    needs_answer = False
    alphabet = "0123456789 +-*/()=:;numberstag"

    def __init__(self, reuse: str = "exactly_once", max_target: int = 1000) -> None:
        if reuse not in REUSE_MODES:
            raise UserError(f"countdown: reuse must be one of {', '.join(REUSE_MODES)}, got {reuse!r}")
        self.reuse = reuse
        self.max_target = max_target

    # -- prompts -------------------------------------------------------------------------------
    def prompt(self, problem: Problem, style: str = "instruct") -> str:
        if style not in PROMPT_STYLES:
            raise UserError(f"countdown: unknown prompt style {style!r}: expected one of {', '.join(PROMPT_STYLES)}")
        numbers, target = parse_spec(problem)
        if style == "compact":
            return format_problem(numbers, target)
        rule = "exactly once" if self.reuse == "exactly_once" else "at most once"
        return (
            f"Using the numbers {numbers}, write an arithmetic expression that equals {target}. "
            f"Use each number {rule}, with + - * / and parentheses only. "
            "Show your reasoning, then put the expression alone inside <answer>...</answer>, "
            "for example <answer>(1 + 2) / 3</answer>."
        )

    def parse_problem(self, problem: Problem) -> None:
        parse_spec(problem)

    def problem_key(self, problem: Problem) -> Hashable:
        """The same numbers (in any order) and target are the same problem."""
        numbers, target = parse_spec(problem)
        return (tuple(sorted(numbers)), target)

    # -- verification ----------------------------------------------------------------------------
    def verify_answer(self, problem: Problem, answer: str) -> Verdict:
        numbers, target = parse_spec(problem)
        try:
            tree, used, claim = parse_answer(answer)
        except _Refused as err:
            return Verdict.fail(err.status, err.detail, answer)
        why = _multiset_problem(used, numbers, self.reuse)
        if why is not None:
            return Verdict.fail(Status.REJECTED, why, answer)
        try:
            value = _evaluate(tree)
        except ZeroDivisionError:
            return Verdict.fail(Status.WRONG, "division by zero", answer)
        if claim is not None and claim != target:
            return Verdict.fail(Status.WRONG, f"the answer claims {claim}, but the target is {target}", answer)
        if value != target:
            return Verdict.fail(Status.WRONG, f"evaluates to {_fmt_value(value)}, not {target}", answer)
        return Verdict(1.0, Status.CORRECT, f"{render(tree)} = {target}", answer)

    def answer_key(self, problem: Problem, answer: str) -> Hashable | None:
        """(exact value, sorted numbers used); None when the answer does not parse, divides by 0, or
        breaks the number rules that `verify_answer` rejects it for (a number not given, or used
        twice): such an answer (`72` for target 72) never votes, so a majority of them cannot be
        paid as TTRL's label. Also None for a problem without a countdown spec."""
        try:
            numbers, _ = parse_spec(problem)
            tree, used, _ = parse_answer(answer)
            if _multiset_problem(used, numbers, self.reuse) is not None:
                return None
            value = _evaluate(tree)
        except (_Refused, ZeroDivisionError, RecursionError, UserError):
            return None
        return (value, tuple(sorted(used)))

    # -- problems ---------------------------------------------------------------------------------
    def _make(self, pid: str, numbers: list[int], tree: safe_expr.Node, target: int, meta: dict) -> Problem:
        return Problem(
            id=pid,
            text=format_problem(numbers, target),
            answer=render(tree),
            meta={"numbers": list(numbers), "target": target, **meta},
        )

    def generate(self, n: int, difficulty: float, seed: int = 0) -> list[Problem]:
        """`n` solvable problems; level 1 -> 2 numbers, 2 -> 3, 3 -> 4, 4 -> 5-6, 5+ -> 6.

        A fractional difficulty mixes the two levels around it (`rungs.tasks.levels.pick_level`:
        3.25 is a quarter level 4, the rest level 3), drawn per problem from a stream of its own,
        so integer difficulties give the problems they always gave; `meta["difficulty"]` is the
        problem's level. Each target is built by combining the numbers with random operations
        (every intermediate a positive integer), so `Problem.answer` is a known solution.
        Deterministic per seed. ValueError for a difficulty that is not finite.
        """
        rng = random.Random(f"countdown:{seed}:{difficulty}")
        level_rng = random.Random(f"countdown-level:{seed}:{difficulty}")
        problems: list[Problem] = []
        seen: set[tuple[tuple[int, ...], int]] = set()
        attempts = 0
        level: int | None = None
        while len(problems) < n:
            attempts += 1
            if attempts > 1000 * max(n, 1):
                raise RuntimeError(f"countdown: could not generate {n} distinct problems of difficulty {difficulty:g}: "
                                   f"found {len(problems)} in {attempts - 1} tries, about all there are; expected at "
                                   f"most {len(problems)}, or a higher difficulty")
            if level is None:
                level = pick_level(difficulty, level_rng, 1, TOP_LEVEL)
            count, high = _numbers_for(level, rng)
            numbers = [rng.randint(1, high) for _ in range(count)]
            made = random_combination(numbers, rng)
            if made is None:
                continue
            tree, target = made
            key = (tuple(sorted(numbers)), target)
            # targets equal to a given number or beyond max_target make dull or silly problems
            if target > self.max_target or (count > 1 and target in numbers) or key in seen:
                continue
            seen.add(key)
            problems.append(self._make(f"countdown-s{seed}-{len(problems)}", numbers, tree, target,
                                       {"difficulty": float(level)}))
            level = None
        return problems

    def skill_problems(self, n: int, seed: int = 0, *, mixed_fraction: float = 0.1, single_fraction: float = 0.25,
                       wide_fraction: float = 0.03, exclude: set[Hashable] | None = None,
                       prompt_order: bool = False, answer_format: str = "expression") -> list[Problem]:
        """The skills pretraining distribution (countdown_skills.py): pairs of large numbers, triples,
        sparse four- and five-to-six-number problems. `exclude` holds `problem_key`s never to emit;
        `answer_format` "steps" writes each solution as a worked chain (`render_steps`)."""
        from rungs.tasks.countdown_skills import skill_problems

        return skill_problems(n, seed, mixed_fraction=mixed_fraction, single_fraction=single_fraction,
                              wide_fraction=wide_fraction, exclude=exclude, key=self.problem_key,
                              max_target=self.max_target, prompt_order=prompt_order, answer_format=answer_format)

    def difficulty(self, problem: Problem) -> float:
        """Numbers minus one (2 numbers = 1, 6 numbers = 5), plus up to 0.5 for a large target."""
        numbers, target = parse_spec(problem)
        return float(len(numbers) - 1) + 0.5 * min(1.0, math.log10(1 + abs(target)) / 3)

    # -- variants ---------------------------------------------------------------------------------
    def _solution_tree(self, problem: Problem, numbers: list[int], target: int) -> safe_expr.Node | None:
        """The known solution (Problem.answer, if it checks) or a solver's, as an AST."""
        for candidate in (problem.answer, None):
            if candidate is None:
                if len(numbers) > 6:
                    return None
                candidate = solve(numbers, target, self.reuse, time_limit=2.0)
                if candidate is None:
                    return None
            if self.verify_answer(problem, candidate).correct:
                return parse_answer(candidate)[0]
        return None

    variant_transforms = VARIANT_TRANSFORMS

    def variants(self, problem: Problem, n: int, rng: random.Random,
                 transforms: Sequence[str] = DEFAULT_VARIANT_TRANSFORMS) -> list[Variant]:
        """Easier problems, made by the chosen `transforms` in this order while there is room for `n`:

        - ``smaller_numbers`` (not in the default set): the known solution's shape, its operations
          and brackets, over smaller numbers (each n redrawn from 1..min(n - 1, 12), every step a
          positive integer), up to two of them. The same number of numbers, easier arithmetic.
          Why: the other transforms remove numbers, and the fewer numbers a problem has, the less
          its solution needs brackets: measured (issue 8, `bench/answer_shapes.py`), 9-10% of a
          default tree's known solutions are bracketed against 78% of countdown-hard's, 1-2% of
          LADDER's rewarded samples were, and its greedy answers went from 64% bracketed to 11%.
          With it (dev, 3 seeds) greedy answers stay 25% bracketed, but accuracy does not move
          (0.042 against 0.033 and base 0.067; bench/results-dev/README.md): an option, not a fix.
          (Later runs withdrew the premise: GRPO on the hard problems, with no variants, flattens
          its answers as much, 2.5-26% bracketed, and stays the better arm; README, "Does it learn?");
        - ``merge_numbers``: the same target with one, then two, pairs of numbers replaced by what
          the known solution makes of them (``3 7 25 50 -> 10 25 50`` when it adds 3 and 7). The
          rung next to the root: its solution is the root's minus one step, so a tree of these
          climbs one number at a time (measured, issue 8: without them 4- and 5-number variants
          were 5% of the pool, the rest 2-3 numbers the policy already solved, and the roots,
          5-6 numbers, were never reached);
        - ``subexpression``: subexpressions of the known solution (their numbers and value);
        - ``drop_numbers``: random subsets of the numbers with a freshly built reachable target.
        """
        numbers, target = parse_spec(problem)
        out: list[Variant] = []
        seen = {(tuple(sorted(numbers)), target)}

        def add(nums: list[int], tree: safe_expr.Node, value: int, transform: str) -> None:
            key = (tuple(sorted(nums)), value)
            if key in seen or len(out) >= n:
                return
            seen.add(key)
            child = self._make(f"{problem.id}/v{len(out)}", nums, tree, value, {})
            diff = self.difficulty(child)
            child.meta["difficulty"] = diff
            out.append(Variant(child, diff, transform, problem.id, meta={"parent_target": target}))

        unknown = [t for t in transforms if t not in VARIANT_TRANSFORMS]
        if unknown:
            raise UserError(f"countdown variants: unknown transform {unknown[0]!r}: expected some of "
                            f"{', '.join(VARIANT_TRANSFORMS)}")
        solution = self._solution_tree(problem, numbers, target)
        if solution is not None and "smaller_numbers" in transforms:
            for _ in range(10):  # up to two, each a fresh draw (a target among its numbers is redrawn)
                if len(out) >= min(n, 2):
                    break
                made = _smaller_numbers(solution, rng)
                if made is None:
                    continue
                shrunk: list[int] = []
                _leaves(made[0], shrunk)
                if made[1] not in shrunk and made[1] <= self.max_target:
                    add(shrunk, made[0], made[1], "smaller_numbers")
        if solution is not None and "merge_numbers" in transforms:
            in_solution: list[int] = []
            _leaves(solution, in_solution)
            unused = list((Counter(numbers) - Counter(in_solution)).elements())  # at_most_once may leave some
            merged: safe_expr.Node | None = solution
            for _ in range(min(2, len(numbers) - 2)):
                merged = _merge_one_pair(merged, rng)
                if merged is None:
                    break
                kept: list[int] = []
                _leaves(merged, kept)
                if target not in kept + unused:
                    add(kept + unused, merged, target, "merge_numbers")
        if solution is not None and "subexpression" in transforms:
            subtrees: list[tuple[safe_expr.Node, list[int]]] = []
            stack = [solution]
            while stack:
                node = stack.pop()
                if isinstance(node, BinOp):
                    used: list[int] = []
                    _leaves(node, used)
                    if len(used) < len(numbers):
                        subtrees.append((node, used))
                    stack += [node.left, node.right]
            rng.shuffle(subtrees)
            for node, used in subtrees:
                value = _evaluate(node)
                if value.denominator == 1 and value > 0 and value.numerator not in used:
                    add(used, node, value.numerator, "subexpression")
        # fresh reachable targets over random subsets of 2..len-1 numbers
        attempts = 0
        while "drop_numbers" in transforms and len(out) < n and len(numbers) > 2 and attempts < 20 * n:
            attempts += 1
            size = rng.randint(2, len(numbers) - 1)
            subset = rng.sample(numbers, size)
            made = random_combination(subset, rng)
            if made is not None and made[1] <= self.max_target and made[1] not in subset:
                add(subset, made[0], made[1], "drop_numbers")
        return out
