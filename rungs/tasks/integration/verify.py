"""Checking integration answers: numerically, strictly enough to be exact, and fast.

Why numeric and not `simplify(diff(F, x) - f) == 0`: simplify is slow (tens of milliseconds to many
seconds per answer, with no upper bound), and it answers "not zero" for right answers whose
difference it cannot simplify (sums of logs of products, inverse-trig identities, nested
radicals). Instead we compare F'(x_i) with f(x_i) at random points, in mpmath, with a tight
relative tolerance (1e-6). A wrong answer would have to agree with the integrand to 6 digits at 8
random points to pass, which a closed form that is not an antiderivative does not do; a right
answer in any form passes, because the check never has to prove an identity.

The details that make it hold:
- Points: drawn once per problem from several scales ([-10, 10], [-2, 2], [-0.5, 0.5], ...),
  seeded from the problem text, so verdicts are reproducible and every answer to a problem is
  checked at the same points (which makes `answer_key` a fingerprint). Points where the integrand
  is non-finite, huge, or not real are resampled: the check runs on the integrand's real domain.
  Only an integrand that is complex almost everywhere is compared in the complex plane, with
  principal branches. Comparing derivatives (not values of F) makes answers that differ by a
  constant the same, including log(x) vs log(-x) vs log(Abs(x)) (they differ by i*pi). An answer
  right on only part of that domain is wrong: acosh(x) for 1/sqrt(x**2 - 1) has derivative -f
  for x < -1 (log(x + sqrt(x**2 - 1)) is right on both sides), as in LADDER's own check.
- Derivative: F'(x_i) is a central difference (F(x+h) - F(x-h)) / 2h with h = 1e-13 at 40 digits,
  which is exact to ~25 digits for any F smooth near x_i. sympy.diff would be exact too, but on
  the real symbols the safe parser builds it spends most of its time in the assumption system
  (about 6 ms an answer, more than everything else together); the difference quotient needs no
  new tree, only 2 evaluations of F per point.
- Evaluation: a small interpreter walks the sympy tree (built by the whitelisted parser) with
  mpmath, for all points at once. Every intermediate value is checked: one past 2**4000 counts
  as non-finite instead of being computed (mpmath would otherwise try exp(exp(exp(10))) and
  hang). No code is generated or exec'd (lambdify would exec printed code; this needs no exec).
- Cancellation: a point that disagrees is re-evaluated at 80 digits before it counts against
  the answer, so terms like x*exp(x)*(sinh(x) - cosh(x)) cannot fail a right answer.
- Tolerance: |F'(x) - f(x)| <= rtol*|f(x)| + atol, atol = 1e-10 * median|f| (the absolute floor is
  relative to the integrand's own size, so f = 1e-8*x is checked as strictly as f = x).

`method="quadrature"` is LADDER's protocol instead (5 random intervals of length 0.1 in [-10, 10],
F(b) - F(a) against adaptive quadrature of f, relative difference <= 1e-2); `"both"` requires
both. Definite integrals compare the answer's value with mpmath.quad of the integrand.

Everything here is a pure function of its arguments plus per-process caches (lru_cache), so it
runs the same in the VerifierPool's forked or spawned workers. One verification at a time per
process, as the pool runs them: mpmath's quad raises its context's precision while it works, and
the contexts are shared within a process.
"""

from __future__ import annotations

import functools
import hashlib
import math
import random
import re
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import sympy
from mpmath.ctx_mp import MPContext

from rungs.errors import UnsafeExpression, UserError
from rungs.tasks.integration.problem import (
    ParsedIntegral,
    latex_to_sympy,
    looks_like_latex,
    parse_integral,
    parse_with_constants,
    strip_latex_layout,
)
from rungs.types import Status, Verdict
from rungs.verify.safe_expr import DEFAULT_LIMITS, ExpressionSyntaxError

METHODS = ("derivative", "quadrature", "both")

MAX_MAG_BITS = 4000  # |value| past 2**4000 (~1e1204) is "non-finite": never computed
_EXP_LIMIT = 2700.0  # exp(z) with Re z past this would pass MAX_MAG_BITS (2700 / ln 2 ~ 3895 bits)
_HUGE_BITS = 200  # an integrand value past 2**200 (~1e60) is resampled (cancellation risk)
_DPS, _QUAD_DPS = 30, 20  # digits for integrand samples and for LADDER's quadrature
_DIFF_DPS, _DIFF_STEP = 40, 1e-13  # central differences: digits, step (relative to max(1, |x|))
_RECHECK_DPS, _RECHECK_STEP = 80, 1e-30  # the same for a point that disagreed
_POOL_SIZE = 16  # valid points kept per problem (the first n_points are used, the rest are spares)
_MAX_CANDIDATES = 128  # points tried per problem before giving up on finding enough
_SCALES = (10.0, 2.0, 10.0, 0.5, 10.0, 2.0, 0.1, 10.0)  # half-widths of the uniform draws, cycled
_REAL_REL = 1e-20  # |Im f| below this fraction of |f| is rounding noise: f is real there
_KEY_DIGITS = 8
_QUAD_ATTEMPTS = 200  # intervals tried; enough for an integrand real only on [-1, 1]
_KEY_POINTS = 8

# ---- mpmath evaluation of sympy trees -----------------------------------------------------------


class Unsupported(ValueError):
    """A node the evaluator has no rule for (the safe parser never builds one)."""


@functools.cache
def _context(dps: int) -> MPContext:
    """A private mpmath context per precision (only mpmath's quad changes it, and restores it)."""
    ctx = MPContext()
    ctx.dps = dps
    return ctx


def _finite(ctx: MPContext, value: Any) -> Any:
    """`value` if it is a finite number of sane size, else None."""
    try:
        if ctx.isnan(value) or ctx.isinf(value) or ctx.mag(value) > MAX_MAG_BITS:
            return None
    except (TypeError, ValueError):
        return None
    return value


class _Ops:
    """mpmath implementations of the sympy heads, with overflow guards, for one context.

    Each growing function refuses arguments where its value would pass MAX_MAG_BITS (or take
    mpmath unbounded time), e.g. exp(z) for Re z > 2700 or sin(z) for |Im z| > 2700.
    The special functions sympy returns for non-elementary integrals (gamma, fresnels, Si, Shi,
    Ei, erfi, ...) are here too; the safe parser decides whether an answer may use them.
    """

    def __init__(self, ctx: MPContext) -> None:
        self.ctx = ctx
        c = ctx
        re_limit, im_limit = (lambda z: c.re(z)), (lambda z: c.im(z))
        size = abs
        # head -> (mpmath function, part of the argument that is bounded, bound)
        table: dict[type, tuple[Callable[..., Any], Callable[[Any], Any] | None, float]] = {
            sympy.sinh: (c.sinh, re_limit, _EXP_LIMIT), sympy.cosh: (c.cosh, re_limit, _EXP_LIMIT),
            sympy.tanh: (c.tanh, re_limit, _EXP_LIMIT), sympy.coth: (c.coth, re_limit, _EXP_LIMIT),
            sympy.sech: (c.sech, re_limit, _EXP_LIMIT), sympy.csch: (c.csch, re_limit, _EXP_LIMIT),
            sympy.sin: (c.sin, im_limit, _EXP_LIMIT), sympy.cos: (c.cos, im_limit, _EXP_LIMIT),
            sympy.tan: (c.tan, im_limit, _EXP_LIMIT), sympy.cot: (c.cot, im_limit, _EXP_LIMIT),
            sympy.sec: (c.sec, im_limit, _EXP_LIMIT), sympy.csc: (c.csc, im_limit, _EXP_LIMIT),
            sympy.erf: (c.erf, im_limit, 50.0), sympy.erfc: (c.erfc, im_limit, 50.0),
            sympy.erfi: (c.erfi, re_limit, 50.0), sympy.fresnels: (c.fresnels, im_limit, 50.0),
            sympy.fresnelc: (c.fresnelc, im_limit, 50.0), sympy.gamma: (c.gamma, size, 1e4),
            sympy.Si: (c.si, im_limit, _EXP_LIMIT), sympy.Ci: (c.ci, im_limit, _EXP_LIMIT),
            sympy.Shi: (c.shi, re_limit, _EXP_LIMIT), sympy.Chi: (c.chi, re_limit, _EXP_LIMIT),
            sympy.Ei: (c.ei, re_limit, _EXP_LIMIT), sympy.li: (c.li, None, 0.0),
            sympy.asin: (c.asin, None, 0.0), sympy.acos: (c.acos, None, 0.0), sympy.atan: (c.atan, None, 0.0),
            sympy.acot: (c.acot, None, 0.0), sympy.asec: (c.asec, None, 0.0), sympy.acsc: (c.acsc, None, 0.0),
            sympy.asinh: (c.asinh, None, 0.0), sympy.acosh: (c.acosh, None, 0.0),
            sympy.atanh: (c.atanh, None, 0.0), sympy.acoth: (c.acoth, None, 0.0),
            sympy.asech: (c.asech, None, 0.0), sympy.acsch: (c.acsch, None, 0.0),
            sympy.log: (c.log, None, 0.0), sympy.Abs: (abs, None, 0.0), sympy.sign: (c.sign, None, 0.0),
            sympy.re: (c.re, None, 0.0), sympy.im: (c.im, None, 0.0), sympy.arg: (c.arg, None, 0.0),
            sympy.conjugate: (c.conj, None, 0.0), sympy.atan2: (c.atan2, None, 0.0),
        }
        self.functions: dict[type, Callable[..., Any]] = {
            head: fn if part is None else self._bounded(fn, part, c.mpf(bound)) for head, (fn, part, bound) in table.items()
        }
        self.functions[sympy.exp] = self.exp
        self._exp_limit = c.mpf(_EXP_LIMIT)  # compared as mpf: comparing with a float converts it each time

    @staticmethod
    def _bounded(fn: Callable[[Any], Any], part: Callable[[Any], Any], bound: Any) -> Callable[[Any], Any]:
        def guarded(z: Any) -> Any:
            if abs(part(z)) > bound:
                raise OverflowError
            return fn(z)

        return guarded

    def exp(self, z: Any) -> Any:
        re_z = self.ctx.re(z)
        if re_z > self._exp_limit:
            raise OverflowError
        if re_z < -self._exp_limit:
            return self.ctx.zero  # underflow: far below any tolerance we use
        return self.ctx.exp(z)

    def int_power(self, base: Any, k: int) -> Any:
        if base == 0:
            if k < 0:
                raise ZeroDivisionError
            return self.ctx.one if k == 0 else self.ctx.zero
        if self.ctx.mag(base) * abs(k) > MAX_MAG_BITS:
            raise OverflowError
        return base**k

    def power(self, base: Any, exponent: Any) -> Any:
        """Principal base**exponent (complex for a negative base), refusing overflow first."""
        ctx = self.ctx
        if base == 0:
            if ctx.re(exponent) > 0:
                return ctx.zero
            raise ZeroDivisionError
        if ctx.re(exponent * ctx.log(base)) > self._exp_limit:
            raise OverflowError
        return ctx.power(base, exponent)

    def constant(self, node: sympy.Expr) -> Any:
        ctx = self.ctx
        if node.is_Rational:
            return ctx.mpf(int(node.p)) / int(node.q)
        if node is sympy.I:
            return ctx.mpc(0, 1)
        if node is sympy.pi:
            return +ctx.pi
        if node is sympy.E:
            return +ctx.e
        if node.is_Float:
            return ctx.make_mpf(node._mpf_)
        if node.is_number and (node.is_Number or node.is_NumberSymbol):  # other real constants
            return ctx.make_mpf(sympy.Float(node.evalf(ctx.dps + 10), ctx.dps + 10)._mpf_)
        raise Unsupported(f"cannot evaluate {type(node).__name__}")


@functools.cache
def _ops(dps: int) -> _Ops:
    return _Ops(_context(dps))


def evaluate(expr: sympy.Expr, var: sympy.Symbol, points: Sequence[Any], dps: int = _DPS) -> list[Any]:
    """expr at each point, in mpmath at `dps` digits: a list of mpf/mpc values, None where not finite.

    Raises Unsupported for a node with no rule. Complex-safe: log(-2), sqrt(-1), asin(3) are
    their principal complex values, as in sympy.
    """
    ops = _ops(dps)
    ctx = ops.ctx
    n = len(points)
    xs = [ctx.mpf(p) if isinstance(p, (int, float)) else p for p in points]
    memo: dict[sympy.Basic, list[Any]] = {}

    def apply(fn: Callable[..., Any], columns: Sequence[list[Any]]) -> list[Any]:
        """fn over the points; None where an argument is None or fn fails or is not finite."""
        out = []
        for args in zip(*columns):
            value = None
            if None not in args:
                try:
                    value = _finite(ctx, fn(*args))
                except (ArithmeticError, ValueError, TypeError):  # 1/0, atan2 of complex, guards
                    pass
            out.append(value)
        return out

    def arithmetic(fn: Callable[..., Any], columns: Sequence[list[Any]]) -> list[Any]:
        """Sums and products: no finiteness check (finite operands give finite results, as mpmath
        exponents are unbounded integers; only functions and powers make inf, nan or huge values)."""
        out = []
        for args in zip(*columns):
            try:
                out.append(fn(*args))
            except (ArithmeticError, ValueError, TypeError):  # TypeError: a None operand
                out.append(None)
        return out

    def walk(node: sympy.Basic) -> list[Any]:
        hit = memo.get(node)
        if hit is not None:
            return hit
        if node.is_Symbol:
            if node != var:
                raise Unsupported(f"free symbol {node}")
            out = xs
        elif node.is_Atom:
            out = [ops.constant(node)] * n
        elif node.is_Add:
            out = arithmetic(_sum, [walk(a) for a in node.args])
        elif node.is_Mul:
            out = arithmetic(_product, [walk(a) for a in node.args])
        elif node.is_Pow:
            base, exponent = node.args
            if exponent.is_Integer:
                out = apply(lambda b, k=int(exponent): ops.int_power(b, k), [walk(base)])
            elif exponent == sympy.S.Half:
                out = apply(ctx.sqrt, [walk(base)])
            else:
                out = apply(ops.power, [walk(base), walk(exponent)])
        else:
            fn = ops.functions.get(type(node))
            if fn is None:
                raise Unsupported(f"cannot evaluate {type(node).__name__}")
            out = apply(fn, [walk(a) for a in node.args])
        memo[node] = out
        return out

    return [None if v is None else _finite(ctx, v) for v in walk(expr)]


def _sum(*terms: Any) -> Any:
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    return total


def _product(*factors: Any) -> Any:
    total = factors[0]
    for factor in factors[1:]:
        total = total * factor
    return total


def evaluate_at(expr: sympy.Expr, var: sympy.Symbol, point: Any, dps: int = _DPS) -> Any:
    return evaluate(expr, var, [point], dps)[0]


def _complex(value: Any) -> complex:
    """An mpmath value as a Python complex (inf where it is beyond double range)."""
    try:
        return complex(value)
    except OverflowError:
        return complex(math.inf)


def derivative_values(
    expr: sympy.Expr, var: sympy.Symbol, points: Sequence[float], dps: int = _DIFF_DPS, step: float = _DIFF_STEP
) -> list[complex | None]:
    """d expr / d var at each point by a central difference at `dps` digits; None where not finite.

    The error is ~ step**2 * |F'''| (truncation) + 10**-dps * |F| / step (rounding): about 1e-26
    relative with the defaults, for any expression smooth within ~1e-8 of the point.
    """
    ctx = _context(dps)
    steps, shifted = [], []
    for p in points:
        x0, h = ctx.mpf(p), ctx.mpf(step) * max(1.0, abs(p))
        steps.append(h)
        shifted += [x0 + h, x0 - h]
    values = evaluate(expr, var, shifted, dps)
    out: list[complex | None] = []
    for i, h in enumerate(steps):
        up, down = values[2 * i], values[2 * i + 1]
        out.append(None if up is None or down is None else _complex((up - down) / (2 * h)))
    return out


def _close(got: complex, want: complex, rtol: float, atol: float) -> bool:
    return abs(got - want) <= rtol * abs(want) + atol


def _show(value: complex, digits: int = 8) -> str:
    if value.imag == 0:
        return f"{value.real:.{digits}g}"
    return f"({value.real:.{digits}g}{value.imag:+.{digits}g}j)"


def _round_key(value: complex, floor: float) -> tuple[int, int, int]:
    """(decimal exponent, real digits, imaginary digits) of a value at 8 significant digits."""
    size = abs(value)
    if size <= floor:
        return (0, 0, 0)
    if not math.isfinite(size):
        return (9999, 0, 0)
    exponent = math.floor(math.log10(size))
    quantum = 10.0 ** (exponent - _KEY_DIGITS + 1)
    return (exponent, round(value.real / quantum), round(value.imag / quantum))


# ---- sample points, once per problem -------------------------------------------------------------


def _seed(*parts: str) -> int:
    return int.from_bytes(hashlib.sha256("\x1f".join(parts).encode()).digest()[:8], "big")


@dataclass(frozen=True)
class Samples:
    """Where a problem's integrand is checked: points, and f there (at 30 digits, kept as complex)."""

    points: tuple[float, ...]
    values: tuple[complex, ...]
    complex_mode: bool  # True when the integrand is real at too few points: compared in C
    scale: float  # median |f| at the points; sets the absolute tolerance
    tried: int  # candidate points drawn

    @property
    def zero_integrand(self) -> bool:
        return self.scale == 0.0


@functools.lru_cache(maxsize=2048)
def problem_samples(problem_text: str, min_points: int = 5) -> Samples:
    """The integrand at up to 16 points of its real domain (see the module docstring)."""
    parsed = parse_integral(problem_text)
    ctx = _context(_DPS)
    rng = random.Random(_seed("points", problem_text))
    real: list[tuple[float, complex]] = []
    finite: list[tuple[float, complex]] = []
    tried = 0
    while len(real) < _POOL_SIZE and tried < _MAX_CANDIDATES:
        batch = [rng.uniform(-s, s) for s in _SCALES for _ in range(2)]
        tried += len(batch)
        for point, value in zip(batch, evaluate(parsed.integrand, parsed.var, batch)):
            if value is None or ctx.mag(value) > _HUGE_BITS:
                continue
            finite.append((point, _complex(value)))
            if abs(ctx.im(value)) <= _REAL_REL * abs(value):
                real.append((point, complex(float(ctx.re(value)))))
    complex_mode = len(real) < min_points
    chosen = (finite if complex_mode else real)[:_POOL_SIZE]
    magnitudes = sorted(abs(v) for _, v in chosen)
    scale = magnitudes[len(magnitudes) // 2] if magnitudes else 0.0
    if scale < 1e-25:  # zero (up to rounding) at the median point
        scale = 0.0 if all(m < 1e-25 for m in magnitudes) else max(magnitudes)
    return Samples(tuple(p for p, _ in chosen), tuple(v for _, v in chosen), complex_mode, scale, tried)


def _atol(samples: Samples, atol_rel: float) -> float:
    return atol_rel * samples.scale + 1e-25


# ---- answers -------------------------------------------------------------------------------------

_CONSTANT_NAME = "C"
_TRAILING_JUNK = re.compile(r"(?:\s|[.,;]|\\[,;:! ]|\\quad|\\qquad)+$")
_CONSTANT_SUFFIX = re.compile(
    r"\s*\+\s*(?:C|c|K|const(?:ant)?|C_\{?\d+\}?|\\(?:text|mathrm|rm)\s*\{\s*(?:C|c|const(?:ant)?)\s*\})\s*$"
)


def normalize_answer(text: str) -> str:
    """Strip what is not part of the antiderivative: "F(x) =", "+ C", a trailing period, \\left."""
    s = strip_latex_layout(text.strip())
    for _ in range(4):
        before = s
        s = _TRAILING_JUNK.sub("", s).strip()
        if len(s) >= 2 and s.startswith("$") and s.endswith("$"):
            s = s.strip("$").strip()
        if "=" in s:  # "F(x) = ...", "y = ...", "\int f dx = ..."
            s = s.rsplit("=", 1)[1].strip()
        s = _CONSTANT_SUFFIX.sub("", s)
        if s == before:
            break
    return s


def parse_answer(text: str, var_name: str, definite: bool = False) -> sympy.Expr:
    """Answer text -> sympy expression in `var_name`, with a constant of integration C set to 0.

    C is allowed only as an added constant (`C + x^3/3`, `x^3/3 + 2C`: its derivative in C is a
    nonzero number), never inside a term (`C x`, `e^C x^3/3`, `C^2 x`), which setting it to 0 would
    turn into another answer; a definite integral's value (`definite`) holds no C at all (a trailing
    `+ C` is dropped as layout, `normalize_answer`).

    Raises ExpressionSyntaxError (unparseable) or UnsafeExpression (refused).
    """
    if len(text) > DEFAULT_LIMITS.max_length:  # before any regex sees it
        raise UnsafeExpression(f"answer too long ({len(text)} characters > {DEFAULT_LIMITS.max_length})")
    s = normalize_answer(text)
    if not s:
        raise ExpressionSyntaxError("empty answer")
    names = (var_name, _CONSTANT_NAME) if var_name != _CONSTANT_NAME else (var_name,)
    expr = latex_to_sympy(s, names) if looks_like_latex(s) else parse_with_constants(s, names)
    const = sympy.Symbol(_CONSTANT_NAME, real=True)
    if var_name != _CONSTANT_NAME and const in expr.free_symbols:
        if definite:
            raise UnsafeExpression("a definite integral's value has no constant of integration C")
        if sympy.diff(expr, const).free_symbols:
            raise UnsafeExpression("the constant of integration C may only be added (F(x) + C), not inside a term")
        expr = expr.xreplace({const: sympy.Integer(0)})
    if expr.has(sympy.zoo, sympy.oo, -sympy.oo, sympy.nan):
        raise UnsafeExpression("the answer is not finite (contains oo, zoo or nan)")
    return expr


# ---- the checks ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Checker:
    """Verification settings; a plain frozen dataclass, so it pickles into pool workers.

    `method`: "derivative" (default), "quadrature" (LADDER's protocol) or "both".
    `rtol`: relative tolerance of the derivative check and of definite values; `atol_rel`: the
    absolute floor, as a fraction of the integrand's median size.
    `n_points` points must agree for a pass; fewer (but at least `min_points`) are accepted only
    when the answer cannot be evaluated at the others (singular there).
    """

    method: str = "derivative"
    rtol: float = 1e-6
    atol_rel: float = 1e-10
    n_points: int = 8
    min_points: int = 5
    quad_intervals: int = 5
    quad_width: float = 0.1
    quad_rtol: float = 1e-2

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise UserError(f"unknown integration check method {self.method!r}: expected one of {', '.join(METHODS)}")
        if not 0 < self.rtol < 1:
            raise UserError(f"rtol must be in (0, 1), got {self.rtol}")
        if not 1 <= self.min_points <= self.n_points <= _POOL_SIZE:
            raise UserError(f"need 1 <= min_points <= n_points <= {_POOL_SIZE}, got {self.min_points}, {self.n_points}")

    # -- entry points ------------------------------------------------------------------------------
    def verify(self, problem_text: str, answer: str) -> Verdict:
        """The verdict on one extracted answer. Never raises: a verifier bug is an ERROR verdict."""
        try:
            return self._verify(problem_text, answer)
        except Exception as err:  # noqa: BLE001 - scored 0 with the reason, as the pool would
            first = (str(err).strip().splitlines() or [""])[0]
            return Verdict.fail(Status.ERROR, f"verifier error: {type(err).__name__}: {first}"[:300], answer)

    def answer_key(self, problem_text: str, answer: str) -> Hashable | None:
        """Equal for answers that differ by a constant: F' at fixed points, to 8 significant digits."""
        try:
            return self._answer_key(problem_text, answer)
        except Exception:  # noqa: BLE001 - an answer we cannot key is not grouped with any other
            return None

    def _verify(self, problem_text: str, answer: str) -> Verdict:
        try:
            parsed = parse_integral(problem_text)
        except UserError as err:
            return Verdict.fail(Status.ERROR, f"bad problem: {err}", answer)
        try:
            expr = parse_answer(answer, str(parsed.var), parsed.definite)
        except ExpressionSyntaxError as err:
            return Verdict.fail(Status.UNPARSEABLE, str(err), answer)
        except UnsafeExpression as err:
            return Verdict.fail(Status.REJECTED, str(err), answer)
        if parsed.definite:
            return self._verify_definite(problem_text, parsed, expr, answer)
        return self._verify_indefinite(problem_text, parsed, expr, answer)

    def _answer_key(self, problem_text: str, answer: str) -> Hashable | None:
        try:
            parsed = parse_integral(problem_text)
            expr = parse_answer(answer, str(parsed.var), parsed.definite)
        except (UserError, ExpressionSyntaxError, UnsafeExpression):
            return None
        try:
            if parsed.definite:
                if parsed.var in expr.free_symbols:
                    return None
                value = evaluate_at(expr, parsed.var, 0)
                return None if value is None else ("value", _round_key(_complex(value), 1e-20))
            samples = problem_samples(problem_text, self.min_points)
            values = derivative_values(expr, parsed.var, samples.points[:_KEY_POINTS])
        except Unsupported:
            return None
        if all(v is None for v in values):
            return None
        floor = _atol(samples, self.atol_rel)
        return ("derivative", *(None if v is None else _round_key(v, floor) for v in values))

    # -- indefinite ----------------------------------------------------------------------------------
    def _verify_indefinite(self, problem_text: str, parsed: ParsedIntegral, expr: sympy.Expr, answer: str) -> Verdict:
        samples = problem_samples(problem_text, self.min_points)
        if len(samples.points) < self.min_points:
            return Verdict.fail(Status.ERROR, f"could not evaluate the integrand at enough points "
                                f"({len(samples.points)} finite of {samples.tried} tried)", answer)
        var = parsed.var
        if var not in expr.free_symbols and not samples.zero_integrand:
            return Verdict.fail(Status.REJECTED, f"the answer does not depend on {var}", answer)
        if self.method in ("derivative", "both"):
            verdict = self._check_derivative(samples, parsed, expr, answer)
            if not verdict.correct or self.method == "derivative":
                return verdict
        return self._check_quadrature(problem_text, samples, parsed, expr, answer)

    def _check_derivative(self, samples: Samples, parsed: ParsedIntegral, expr: sympy.Expr, answer: str) -> Verdict:
        var = parsed.var
        atol = _atol(samples, self.atol_rel)
        agreed = 0
        pairs = list(zip(samples.points, samples.values))
        # Two points first: most wrong answers fail there, and then the rest is not evaluated.
        first = min(2, self.n_points)
        for batch in (pairs[:first], pairs[first : self.n_points], pairs[self.n_points :]):
            if agreed >= self.n_points or not batch:
                break
            try:
                values = derivative_values(expr, var, [p for p, _ in batch])
            except Unsupported as err:
                return Verdict.fail(Status.REJECTED, f"cannot evaluate the answer: {err}", answer)
            for (point, want), got in zip(batch, values):
                if got is None:
                    continue  # the answer is singular here though f is not: use a spare point
                if not _close(got, want, self.rtol, atol) and not self._recheck(parsed, expr, point, atol):
                    return Verdict.fail(
                        Status.WRONG,
                        f"d/d{var} of the answer is {_show(got)} but the integrand is {_show(want)} at {var} = {point:.6g}",
                        answer,
                    )
                agreed += 1
                if agreed >= self.n_points:
                    break
        if agreed < self.min_points:
            if agreed == 0:
                return Verdict.fail(Status.REJECTED, "the answer is not finite at any sample point", answer)
            return Verdict.fail(Status.WRONG, f"could not evaluate at enough points (the answer is differentiable "
                                f"at {agreed}, {self.min_points} needed)", answer)
        where = "complex plane" if samples.complex_mode else "real domain of the integrand"
        return Verdict(1.0, Status.CORRECT, f"d/d{var}(answer) = integrand at {agreed} random points ({where})", answer)

    def _recheck(self, parsed: ParsedIntegral, expr: sympy.Expr, point: float, atol: float) -> bool:
        """Does the point agree at 80 digits? (Fewer can lose to cancellation of huge terms.)"""
        got = derivative_values(expr, parsed.var, [point], _RECHECK_DPS, _RECHECK_STEP)[0]
        want = evaluate_at(parsed.integrand, parsed.var, point, _RECHECK_DPS)
        if got is None or want is None:
            return False
        return _close(got, _complex(want), self.rtol, atol)

    def _check_quadrature(self, problem_text: str, samples: Samples, parsed: ParsedIntegral,
                          expr: sympy.Expr, answer: str) -> Verdict:
        """LADDER: F(b) - F(a) against quadrature of f on random intervals of length 0.1 in [-10, 10]."""
        var, f = parsed.var, parsed.integrand
        ctx = _context(_QUAD_DPS)
        rng = random.Random(_seed("quadrature", problem_text))
        half = self.quad_width / 2
        passed = 0

        def integrand(t: Any) -> Any:
            v = evaluate_at(f, var, t, _QUAD_DPS)
            return ctx.nan if v is None else v

        for _ in range(_QUAD_ATTEMPTS):  # bounded resampling
            c = rng.uniform(-10, 10)
            a, b = c - half, c + half
            fs = evaluate(f, var, [a, c, b], _QUAD_DPS)
            if any(v is None or ctx.mag(v) > _HUGE_BITS for v in fs):
                continue  # near a singularity of f
            if not samples.complex_mode and any(abs(ctx.im(v)) > _REAL_REL * abs(v) for v in fs):
                continue  # outside the integrand's real domain
            try:
                ends = evaluate(expr, var, [a, b], _QUAD_DPS)
            except Unsupported as err:
                return Verdict.fail(Status.REJECTED, f"cannot evaluate the answer: {err}", answer)
            if ends[0] is None or ends[1] is None:
                continue
            try:
                area, err = ctx.quad(integrand, [ctx.mpf(a), ctx.mpf(b)], error=True)
            except (ArithmeticError, ValueError):
                continue
            if _finite(ctx, area) is None or err > 1e-6 * max(abs(area), 1e-12):
                continue  # quadrature did not converge: a singularity inside
            delta, exact = _complex(ends[1] - ends[0]), _complex(area)
            if abs(delta - exact) > self.quad_rtol * max(abs(exact), 1e-12):
                return Verdict.fail(
                    Status.WRONG, f"F({b:.4g}) - F({a:.4g}) = {_show(delta, 6)} but the integral is {_show(exact, 6)}", answer
                )
            passed += 1
            if passed >= self.quad_intervals:
                return Verdict(1.0, Status.CORRECT, f"F(b) - F(a) matches quadrature on {passed} intervals", answer)
        return Verdict.fail(Status.WRONG, f"could not evaluate at enough points ({passed} of {self.quad_intervals} intervals)", answer)

    # -- definite ------------------------------------------------------------------------------------
    def _verify_definite(self, problem_text: str, parsed: ParsedIntegral, expr: sympy.Expr, answer: str) -> Verdict:
        if parsed.var in expr.free_symbols:
            return Verdict.fail(Status.REJECTED, f"a definite integral is a number; the answer depends on {parsed.var}", answer)
        try:
            value = evaluate_at(expr, parsed.var, 0)
        except Unsupported as err:
            return Verdict.fail(Status.REJECTED, f"cannot evaluate the answer: {err}", answer)
        if value is None:
            return Verdict.fail(Status.REJECTED, "the answer is not a finite number", answer)
        reference, why = definite_reference(problem_text)
        if reference is None:
            return Verdict.fail(Status.UNLABELLED, f"no reference value: {why}", answer)  # not the answer's fault
        got = _complex(value)
        if _close(got, reference, self.rtol, 1e-9):
            return Verdict(1.0, Status.CORRECT, f"value matches the integral ({_show(reference, 10)})", answer)
        return Verdict.fail(Status.WRONG, f"the answer is {_show(got, 10)} but the integral is {_show(reference, 10)}", answer)


def _kinks(f: sympy.Expr, var: sympy.Symbol, a: Any, b: Any) -> list[Any]:
    """Points in (a, b) where f has a kink or an interior singularity that quadrature should not
    straddle: the zeros of the arguments of Abs/sign, of the bases of fractional powers and of
    denominators (`_poles`), found as sign changes on a grid and refined by bisection."""
    inner = {n.args[0] for n in f.atoms(sympy.Abs, sympy.sign)}
    inner |= {n.base for n in f.atoms(sympy.Pow) if not n.exp.is_Integer and n.base.has(var)}
    return sorted(set(_sign_changes(inner, var, a, b)) | set(_poles(f, var, a, b)))


def _poles(f: sympy.Expr, var: sympy.Symbol, a: Any, b: Any) -> list[Any]:
    """Points in (a, b) where a denominator of f changes sign (the base of a power <= -1:
    x/(x^2 - 1) at -1 and 1; the cosine under tan and sec, the sine under cot and csc): poles, where
    f is not integrable on either side. (|x|^(-1/2) is integrable, and its base does not change sign.)"""
    bases = {n.base for n in f.atoms(sympy.Pow) if n.exp.is_number and n.exp <= -1 and n.base.has(var)}
    bases |= {sympy.cos(n.args[0]) for n in f.atoms(sympy.tan, sympy.sec) if n.has(var)}  # tan = sin / cos
    bases |= {sympy.sin(n.args[0]) for n in f.atoms(sympy.cot, sympy.csc) if n.has(var)}
    return _sign_changes(bases, var, a, b, margin=True)


def _sign_changes(exprs: set[sympy.Expr], var: sympy.Symbol, a: Any, b: Any, margin: bool = False) -> list[Any]:
    """The points in (a, b) where any of `exprs` changes sign on a 128-point grid, bisected to the
    working precision, sorted; with `margin`, none within 10^-15 (relative) of a or b. Without it a
    zero at a bound gives a point just inside, which quadrature of x^(-3/4) on [0, 1] needs."""
    ctx = _context(_DPS)
    grid = [a + (b - a) * k / 128 for k in range(129)]
    roots = []
    for g in exprs:
        values = [None if v is None else ctx.re(v) for v in evaluate(g, var, grid)]
        for lo, hi, g_lo, g_hi in zip(grid, grid[1:], values, values[1:]):
            if g_lo is None or g_hi is None or g_lo * g_hi > 0:
                continue
            for _ in range(100):  # bisection to the working precision
                mid = (lo + hi) / 2
                g_mid = evaluate_at(g, var, mid)
                if g_mid is None:
                    break
                if ctx.re(g_mid) * g_lo > 0:
                    lo = mid
                else:
                    hi = mid
            roots.append((lo + hi) / 2)
    merged: list[Any] = []  # one point per root: two expressions (x and |x|) find the same one
    # `margin`: a root found at a bound (the grid's end point is a zero) is no interior point
    edge = ctx.mpf(10) ** (-_DPS // 2) * max(1, abs(a), abs(b)) if margin else 0
    for r in sorted(r for r in set(roots) if a + edge < r < b - edge):
        if not merged or r - merged[-1] > ctx.mpf(10) ** (-_DPS // 2) * max(1, abs(r)):
            merged.append(r)
    return merged


# A divergent integral can still "converge" under tanh-sinh quadrature: the nodes nearest the
# singularity (or the far tail) give a huge value with a small error estimate, and that value
# depends on how close the nodes go, i.e. on the working precision (1/x^2 on [0, 1]: 2e34 at 30
# digits, 3e49 at 45). A convergent one does not. So the value is computed again at a higher
# precision (a lower one fails the same error test on slow integrable singularities such as
# x^(-3/4)) and kept only when the two agree. When the check itself does not converge, a value of
# ordinary size is kept and a huge one (> _CROSSCHECK_HUGE) is not.
_CROSSCHECK_DPS = 45
_CROSSCHECK_RTOL = 1e-8
_CROSSCHECK_HUGE = 1e15


@functools.lru_cache(maxsize=1024)
def definite_reference(problem_text: str) -> tuple[complex | None, str]:
    """(the definite integral by mpmath.quad at 30 digits, "") or (None, why it could not be computed).

    The value must also agree, to a relative 1e-8, with the same quadrature at 45 digits: a
    divergent integral (`1/x**2` on [0, 1], `sin(x)` on [0, oo)) gets a precision-dependent value,
    and is reported as divergent instead of paying whoever states that number."""
    parsed = parse_integral(problem_text)
    value, why, nodes = _quadrature(parsed, _DPS)
    if value is None:
        return None, why
    if _continuous_on_a_finite_interval(parsed):
        return value, ""  # nothing can diverge: the checks below would only cost time
    divergent = _divergent_piece(parsed, nodes)
    if divergent:
        return None, divergent
    check, _, _ = _quadrature(parsed, _CROSSCHECK_DPS, nodes)
    if check is None:
        check, _, _ = _quadrature(parsed, _CROSSCHECK_DPS)
    if check is None and abs(value) <= _CROSSCHECK_HUGE:
        return value, ""
    if check is None or _precisions_disagree(value, check):
        return None, f"divergent {_precision_note(value, check)}"
    return value, ""


def _precisions_disagree(low: complex, high: complex) -> bool:
    """Whether the values at _DPS and _CROSSCHECK_DPS digits differ by more than _CROSSCHECK_RTOL."""
    return abs(high - low) > _CROSSCHECK_RTOL * max(1.0, abs(low))


def _precision_note(low: complex, high: complex | None) -> str:
    """"(the quadrature depends on the working precision: ...)", with both values (or "no value")."""
    shown = "no value" if high is None else _show(high, 4)
    return (f"(the quadrature depends on the working precision: {_show(low, 4)} at {_DPS} digits, {shown} at "
            f"{_CROSSCHECK_DPS})")


# Functions continuous on the whole real line (with polynomials, sums, products and non-negative
# powers): an integrand built from these alone over finite bounds cannot diverge.
_EVERYWHERE_CONTINUOUS = (sympy.sin, sympy.cos, sympy.exp, sympy.Abs, sympy.atan, sympy.sinh, sympy.cosh, sympy.tanh,
                          sympy.asinh, sympy.sign)


def _continuous_on_a_finite_interval(parsed: Any) -> bool:
    """Whether the integral cannot diverge: finite bounds, and an integrand with no negative power
    (no denominator) and no function outside _EVERYWHERE_CONTINUOUS (`sign` jumps, but is bounded).
    Conservative: `log`, `tan`, `1/(x^2 + 1)` and the like are not judged here."""
    if any(bound.has(sympy.oo, -sympy.oo, sympy.zoo) for bound in (parsed.lower, parsed.upper)):
        return False
    f = parsed.integrand
    if any(p.exp.is_negative is not False for p in f.atoms(sympy.Pow) if p.base.has(parsed.var)):
        return False
    return all(isinstance(g, _EVERYWHERE_CONTINUOUS) for g in f.atoms(sympy.Function))


# Where to look for poles when a bound is infinite: this window around the finite part.
_POLE_WINDOW = 1000


def _divergent_piece(parsed: Any, nodes: list[Any]) -> str:
    """Why the integral diverges on one of the pieces of [min(nodes), max(nodes)] split at its
    interior poles (`_poles`), or "" (also when there is no pole: kinks alone cannot hide a
    divergence, and checking their pieces was slow). A pole inside can diverge on both sides and
    cancel in the sum (x/(x^2 - 1) on [-2, 2], 1/x on (-oo, oo): 0, the principal value), so each
    piece is checked alone: divergent when its quadrature fails at both precisions, or gives
    values that depend on the precision. With an infinite bound poles are looked for within
    _POLE_WINDOW of the finite part."""
    ctx = _context(_DPS)
    a, b = min(nodes), max(nodes)
    lo = a if not ctx.isinf(a) else (min(-_POLE_WINDOW, b - _POLE_WINDOW) if not ctx.isinf(b) else -_POLE_WINDOW)
    hi = b if not ctx.isinf(b) else (max(_POLE_WINDOW, a + _POLE_WINDOW) if not ctx.isinf(a) else _POLE_WINDOW)
    poles = _poles(parsed.integrand, parsed.var, ctx.mpf(lo), ctx.mpf(hi))
    if not poles:
        return ""
    edges = [a, *poles, b]
    for left, right in zip(edges, edges[1:]):
        low, _, _ = _quadrature(parsed, _DPS, [left, right])
        high, _, _ = _quadrature(parsed, _CROSSCHECK_DPS, [left, right])
        where = f"[{_show(_complex(left), 4)}, {_show(_complex(right), 4)}]"
        if low is None and high is None:
            return f"divergent: a pole on the edge of {where}, whose quadrature does not converge"
        if low is not None and high is not None and _precisions_disagree(low, high):
            return f"divergent on {where} {_precision_note(low, high)}"
    return ""


def _quadrature(parsed: Any, dps: int, only: list[Any] | None = None) -> tuple[complex | None, str, list[Any] | None]:
    """(value, "", the node set that converged) or (None, why, None): mpmath.quad at `dps` digits
    over [a, b] whole, split, and split at kinks; `only` (node positions as floats or mpf) tries
    that node set alone."""
    ctx = _context(dps)
    var, f = parsed.var, parsed.integrand

    def integrand(t: Any) -> Any:
        v = evaluate_at(f, var, t)
        return ctx.nan if v is None else v

    def bound(b: sympy.Expr) -> Any:
        if b == sympy.oo:
            return ctx.inf
        if b == -sympy.oo:
            return ctx.ninf
        return ctx.re(evaluate_at(b, var, 0))  # finite and real: checked by parse_integral

    a, b = bound(parsed.lower), bound(parsed.upper)
    sign = 1
    if a > b:
        a, b, sign = b, a, -1
    if a == b:
        return 0j, "", [a, b]
    if only is not None:
        attempts = [[ctx.convert(x) for x in only]]
    else:
        if ctx.isinf(a) and ctx.isinf(b):
            splits = [a, -100, -10, -1, 0, 1, 10, 100, b]
        elif ctx.isinf(b):
            splits = [a, a + 1, a + 10, a + 100, b]
        elif ctx.isinf(a):
            splits = [a, b - 100, b - 10, b - 1, b]
        else:
            splits = [a + (b - a) * k / 8 for k in range(9)]
        attempts = [[a, b], splits]  # once whole, once split (helps with peaks and slow decay)
        if not (ctx.isinf(a) or ctx.isinf(b)):
            kinks = _kinks(f, var, a, b)
            if kinks:  # |x - 1/3|: split exactly at the kink, where tanh-sinh converges again
                attempts.insert(0, [a, *kinks, b])
    why = "quadrature did not converge"
    for nodes in attempts:
        try:
            value, err = ctx.quad(integrand, nodes, error=True)
        except (ArithmeticError, ValueError) as exc:
            why = f"quadrature failed ({type(exc).__name__})"
            continue
        if _finite(ctx, value) is None:
            why = "the integrand is not finite on the interval (divergent?)"
            continue
        if err <= 1e-10 * max(1, abs(value)):
            return sign * _complex(value), "", nodes
        why = f"quadrature did not converge (error estimate {_show(_complex(err), 3)}; divergent, or singular inside?)"
    return None, why, None
