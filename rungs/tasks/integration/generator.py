"""Random integration problems with known answers, and the task's own difficulty measure.

Why build the answer first: picking an antiderivative F from a small grammar and differentiating
it gives an integrand f whose reference answer is exact and free, with no call to
`sympy.integrate` (slow, and sometimes returns something uglier than the obvious answer). The
coefficient of each term is chosen after differentiating, so that integrands carry small integer
coefficients and the fractions end up in the answer (integrate(x**2) = x**3/3), as in a textbook.

The difficulty knob, 1 (easiest) to 6, adds one kind of step per level:

    1  c*x**n                                      power rule
    2  two monomials, or c*exp(x) / sin(x) / cos(x)
    3  a polynomial plus a function of a linear argument (5*cos(3*x), exp(2*x + 1), 1/x)
    4  chain rule: 2*x*cos(x**2), x/(x**2 + 1), sin(x)**2*cos(x), x*(x**2 + 3)**2
    5  integration by parts (x*exp(2*x), x*log(x), exp(x)*sin(x)) or nested compositions
       (exp(x)*cos(exp(x))), usually plus a simpler term
    6  sums of two or three level-4/5 terms

A fractional difficulty mixes the two neighbouring levels (3.25 = level 3 with probability 0.75,
level 4 with 0.25). Integrand text grows with the level (compact prompt under ~60 characters up to
level 2, under 120 at level 6) so that a character-level model sees the same monotone ladder.
Level 1 has only 144 distinct problems; a large batch repeats them rather than fail.

`difficulty_of` scores an integrand by weighted structural features (operation count, additive
terms, transcendental functions, nesting, products that need integration by parts), calibrated on
generated problems so that level d scores about d on average.

    >>> [(p.text, p.answer) for p in generate_problems(2, difficulty=1, seed=0)]
    [('integrate(11*x, x)', '11*x**2/2'), ('integrate(6*x**4, x)', '6*x**5/5')]
"""

from __future__ import annotations

import functools
import math
import random
from collections.abc import Callable

import sympy

from rungs.tasks.levels import pick_level
from rungs.types import Problem

x = sympy.Symbol("x", real=True)  # real, like the symbols the safe parser builds

MIN_LEVEL, MAX_LEVEL = 1, 6
# Longest compact prompt `integrate(f, x)` accepted at each level; longer draws are resampled.
MAX_PROMPT_CHARS = {1: 40, 2: 60, 3: 75, 4: 90, 5: 105, 6: 120}
_MAX_ATTEMPTS = 200  # resamples per problem before giving up on length/degeneracy
_UNIQUE_ATTEMPTS = 30  # resamples per problem spent looking for one not yet in the batch
_CHECK_POINTS = (0.37, 0.81, 1.29, 2.13)  # where diff(F) == f is checked numerically

Term = tuple[sympy.Expr, sympy.Expr]  # (integrand term f, its antiderivative F)


# ---- term builders --------------------------------------------------------------------------------


def _coef(rng: random.Random, top: int = 9, neg: float = 0.25) -> int:
    """A small non-zero integer, negative with probability `neg`."""
    c = rng.randint(1, top)
    return -c if rng.random() < neg else c


@functools.lru_cache(maxsize=4096)
def _derivative_parts(G: sympy.Expr) -> tuple[sympy.Expr, sympy.Expr]:
    """G' as (content, primitive part): 2*x*cos(x**2) -> (2, x*cos(x**2)). Cached: draws repeat."""
    return sympy.diff(G, x).as_content_primitive()


def _from_antiderivative(G: sympy.Expr, c: int) -> Term:
    """Term whose integrand is c * (primitive part of G'), so f has integer coefficients."""
    content, primitive = _derivative_parts(G)
    return c * primitive, c * G / content


def _monomial(rng: random.Random, powers: range, c: int | None = None) -> Term:
    return _from_antiderivative(x ** rng.choice(list(powers)), c if c is not None else _coef(rng))


_LINEAR_FUNCS = (sympy.exp, sympy.sin, sympy.cos)


def _antiderivative_linear(h: Callable, u: sympy.Expr, k: int = 1) -> sympy.Expr:
    """The k-th antiderivative of h(u), u = a*x + b: exp(u)/a**k, or a trig function shifted by k*pi/2."""
    a = sympy.diff(u, x)
    if h is sympy.exp:
        return sympy.exp(u) / a**k
    return h(u - k * sympy.pi / 2) / a**k  # sympy folds sin(u - pi/2) into -cos(u)


def _linear_arg(rng: random.Random, with_shift: float = 0.0) -> sympy.Expr:
    a = rng.choice([2, 3, 4, 5, -2, -3])
    b = rng.randint(1, 3) if rng.random() < with_shift else 0
    return a * x + b


def _by_parts(rng: random.Random) -> Term:
    """A product that needs integration by parts, with its antiderivative in closed form."""
    kind = rng.choice(["poly*lin", "poly*lin", "log", "exp*trig"])
    c = _coef(rng, top=5)
    if kind == "poly*lin":
        # tabular integration: int p*h = sum_k (-1)**k * p^(k) * H_{k+1}, H_k the k-th antiderivative
        h = rng.choice(_LINEAR_FUNCS)
        u = rng.choice([1, 1, 2, 3, -1, -2]) * x
        p = rng.choice([x, x, x**2, x + rng.randint(1, 3)])
        derivatives = [p]
        while (dp := sympy.diff(derivatives[-1], x)) != 0:
            derivatives.append(dp)
        F = sympy.Add(*((-1) ** k * dp * _antiderivative_linear(h, u, k + 1) for k, dp in enumerate(derivatives)))
        return c * p * h(u), c * F
    if kind == "log":
        n = rng.choice([0, 1, 1, 2])
        f = c * x**n * sympy.log(x)
        return f, c * (x ** (n + 1) * sympy.log(x) / (n + 1) - x ** (n + 1) / (n + 1) ** 2)
    a, b = rng.choice([1, 1, 2, -1]), rng.choice([1, 2, 3])
    trig = rng.choice([sympy.sin, sympy.cos])
    f = c * sympy.exp(a * x) * trig(b * x)
    if trig is sympy.sin:
        F = sympy.exp(a * x) * (a * sympy.sin(b * x) - b * sympy.cos(b * x)) / (a**2 + b**2)
    else:
        F = sympy.exp(a * x) * (a * sympy.cos(b * x) + b * sympy.sin(b * x)) / (a**2 + b**2)
    return f, c * F


def _chain(rng: random.Random) -> Term:
    """h(u(x)) with a non-linear inner function: needs the chain rule (substitution)."""
    kind = rng.choice(["trig_exp", "trig_exp", "log", "sqrt", "power", "trig_power", "atan"])
    b = rng.randint(1, 4)
    if kind == "trig_exp":
        u = rng.choice([x**2, x**3, x**2 + b, rng.randint(2, 3) * x**2])
        G = rng.choice([sympy.sin, sympy.cos, sympy.exp])(u)
    elif kind == "log":
        G = sympy.log(rng.choice([x**2 + b, rng.randint(2, 3) * x**2 + b, x**3 + b, x**2 + x + b]))
    elif kind == "sqrt":
        G = sympy.sqrt(rng.choice([x**2 + b, x**3 + b, 2 * x**2 + b]))
    elif kind == "power":
        G = rng.choice([x**2 + b, x**3 + b, 2 * x**2 + b]) ** rng.randint(2, 4)
    elif kind == "trig_power":
        G = rng.choice([sympy.sin, sympy.cos])(x) ** rng.randint(2, 4)
    else:
        G = sympy.atan(rng.choice([x**2, x**3]))
    return _from_antiderivative(G, _coef(rng, top=5))


def _nested(rng: random.Random) -> Term:
    """A composition of two transcendental functions: exp(x)*cos(exp(x)), cos(x)*exp(sin(x)), ..."""
    inner = rng.choice([sympy.exp(x), sympy.sin(x), sympy.cos(x), sympy.exp(2 * x), sympy.log(x)])
    outer = rng.choice([sympy.sin, sympy.cos, sympy.exp, lambda u: sympy.log(u + rng.randint(1, 3))])
    G = outer(inner)
    if G.has(sympy.log(x)) and G.func is sympy.exp:  # exp(log(x)) == x: not nested at all
        G = sympy.sin(inner)
    return _from_antiderivative(G, _coef(rng, top=5))


def _simple_function(rng: random.Random, linear: bool) -> Term:
    h = rng.choice(_LINEAR_FUNCS)
    if not linear:
        return _from_antiderivative(_antiderivative_linear(h, x), _coef(rng))
    if rng.random() < 0.2:
        return _from_antiderivative(sympy.log(x), _coef(rng))  # c/x
    return _from_antiderivative(_antiderivative_linear(h, _linear_arg(rng, with_shift=0.3)), _coef(rng))


def _polynomial(rng: random.Random, max_terms: int, top_power: int) -> list[Term]:
    powers = rng.sample(range(1, top_power + 1), rng.randint(1, max_terms))
    return [_from_antiderivative(x**m, _coef(rng)) for m in powers]


def _level1(rng: random.Random) -> list[Term]:
    return [_from_antiderivative(x ** rng.randint(2, 7), _coef(rng, top=12))]


def _level2(rng: random.Random) -> list[Term]:
    if rng.random() < 0.5:
        return [_from_antiderivative(x**m, _coef(rng)) for m in rng.sample(range(1, 6), 2)]
    return [_simple_function(rng, linear=False)]


def _level3(rng: random.Random) -> list[Term]:
    return [*_polynomial(rng, 2, 4), _simple_function(rng, linear=True)]


def _level4(rng: random.Random) -> list[Term]:
    terms = [_chain(rng)]
    if rng.random() < 0.75:
        terms.append(rng.choice([_monomial(rng, range(1, 5)), _simple_function(rng, linear=True)]))
    return terms


def _level5(rng: random.Random) -> list[Term]:
    terms = [_by_parts(rng) if rng.random() < 0.6 else _nested(rng)]
    extra = rng.random()
    if extra < 0.45:
        terms.extend(_polynomial(rng, 2, 4))
    elif extra < 0.9:
        terms.append(_simple_function(rng, linear=True))
    return terms


def _level6(rng: random.Random) -> list[Term]:
    hard = [_by_parts, _nested, _chain]
    terms = [rng.choice(hard[:2])(rng), rng.choice(hard)(rng)]
    if rng.random() < 0.6:
        terms.append(rng.choice([_monomial(rng, range(1, 5)), _simple_function(rng, linear=True), _chain(rng)]))
    return terms


LEVELS: dict[int, Callable[[random.Random], list[Term]]] = {
    1: _level1, 2: _level2, 3: _level3, 4: _level4, 5: _level5, 6: _level6,
}


# ---- checks -------------------------------------------------------------------------------------


def consistent(f: sympy.Expr, F: sympy.Expr) -> bool:
    """diff(F) == f at a few points (a check of the closed forms; cheaper than simplify)."""
    residual = sympy.diff(F, x) - f
    checked = 0
    for point in _CHECK_POINTS:
        try:
            a, b = complex(residual.subs(x, point).evalf(20)), complex(f.subs(x, point).evalf(20))
        except (TypeError, ValueError, ZeroDivisionError):
            continue
        if not (math.isfinite(a.real) and math.isfinite(b.real)):
            continue
        if abs(a) > 1e-9 * max(1.0, abs(b)):
            return False
        checked += 1
    return checked >= 2


def _acceptable(f: sympy.Expr, text: str, level: int) -> bool:
    """Not degenerate (zero, constant, non-finite) and short enough for the level.

    F needs no check: it is exact by construction (f is computed from F with sympy.diff, or F is a
    closed form that the tests check numerically with `consistent`).
    """
    if f == 0 or not f.has(x) or f.has(sympy.Float, sympy.zoo, sympy.nan, sympy.oo):
        return False
    return len(text) <= MAX_PROMPT_CHARS[level]


# ---- public API ---------------------------------------------------------------------------------


def generate_problems(n: int, difficulty: float, seed: int = 0) -> list[Problem]:
    """`n` integration problems of roughly `difficulty` (1..6), each with its exact antiderivative.

    Deterministic in (n, difficulty, seed), and prefix-stable: the first k problems of a batch of n
    are the batch of k. Problems within a batch are distinct whenever the level has room for it.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if not math.isfinite(float(difficulty)):
        raise ValueError(f"difficulty must be a finite number, got {difficulty}")
    problems: list[Problem] = []
    seen: set[str] = set()
    exhausted: set[int] = set()  # levels that ran out of fresh problems in this batch
    for i in range(n):
        rng = random.Random(f"integration:{difficulty}:{seed}:{i}")
        level = pick_level(difficulty, rng, MIN_LEVEL, MAX_LEVEL)
        chosen: tuple[str, sympy.Expr] | None = None  # (prompt text, F)
        fallback: tuple[str, sympy.Expr] | None = None  # an acceptable repeat of an earlier problem
        repeats = 0
        for _ in range(_MAX_ATTEMPTS):
            terms = LEVELS[level](rng)
            f = sympy.Add(*(t[0] for t in terms))
            text = f"integrate({f}, x)"  # printed once: printing is half the cost of a draw
            if text in seen:
                repeats += 1
                fallback = fallback or (text, sympy.Add(*(t[1] for t in terms)))
                if repeats >= (1 if level in exhausted else _UNIQUE_ATTEMPTS):
                    exhausted.add(level)  # out of fresh problems: repeat one rather than fail
                    break
                continue
            if _acceptable(f, text, level):
                chosen = (text, sympy.Add(*(t[1] for t in terms)))
                break
        chosen = chosen or fallback
        if chosen is None:
            raise RuntimeError(f"could not draw an acceptable level-{level} integrand")
        text, F = chosen
        seen.add(text)
        problems.append(
            Problem(
                id=f"int-d{difficulty}-s{seed}-{i}",
                text=text,
                answer=str(F),
                meta={"difficulty": float(level), "level": level, "source": "generator"},
            )
        )
    return problems


# ---- difficulty measure -------------------------------------------------------------------------


def _is_transcendental(e: sympy.Basic) -> bool:
    """exp/log/trig calls, and powers that are not polynomial (roots, x**-2, 1/(x**2+1), x**x)."""
    if isinstance(e, sympy.Function):
        return True
    if isinstance(e, sympy.Pow):
        base, expo = e.args
        if not expo.is_Integer or expo.is_negative:
            return base.has(x)
    return False


def _nesting(e: sympy.Basic) -> int:
    """Depth of transcendental functions inside one another (sin(x) = 1, exp(sin(x)) = 2)."""
    inner = max((_nesting(a) for a in e.args), default=0)
    return inner + 1 if _is_transcendental(e) else inner


def is_linear(arg: sympy.Expr) -> bool:
    """a*x + b (or a constant)."""
    return bool(arg.is_polynomial(x) and sympy.degree(arg, x) <= 1)


def _chain_count(e: sympy.Basic) -> int:
    """Functions of a non-linear argument of x, and powers of non-linear sums (x*(x**2 + 1)**3):
    each wants the chain rule (a substitution) rather than expanding."""
    count = 0
    for node in sympy.preorder_traversal(e):
        if _is_transcendental(node) and node.args[0].has(x) and not is_linear(node.args[0]):
            count += 1
        elif node.is_Pow and node.args[0].is_Add and node.args[0].has(x) and not is_linear(node.args[0]):
            count += 1
    return count


def _split_term(term: sympy.Expr) -> tuple[list[sympy.Expr], list[sympy.Expr]]:
    """The x-dependent factors of a term: (polynomial ones, ones with a transcendental part)."""
    factors = [a for a in sympy.Mul.make_args(term) if a.has(x)]
    trans = [a for a in factors if any(_is_transcendental(n) for n in sympy.preorder_traversal(a))]
    return [a for a in factors if a not in trans], trans


def _linear_call(e: sympy.Expr) -> bool:
    return isinstance(e, sympy.Function) and is_linear(e.args[0])


def _needs_parts(term: sympy.Expr) -> bool:
    """Whether a term needs integration by parts: polynomial * exp/trig/log of a linear argument,
    exp * trig, or a lone log / inverse trig of a linear argument."""
    poly, trans = _split_term(term)
    if not poly and len(trans) == 1:
        t = trans[0]
        return _linear_call(t) and not isinstance(t, (sympy.exp, sympy.sin, sympy.cos, sympy.sinh, sympy.cosh))
    if poly and trans:
        return all(_linear_call(t) for t in trans)
    if len(trans) == 2 and all(_linear_call(t) for t in trans):
        return len({t.func for t in trans} & {sympy.exp}) == 1 and len({t.func for t in trans} & {sympy.sin, sympy.cos}) == 1
    return False


def _needs_substitution(term: sympy.Expr) -> bool:
    """A product of several transcendental factors that is not a by-parts product (sin(x)*cos(x),
    exp(x)/(exp(x) + 1)): integrable by a substitution u = g(x)."""
    poly, trans = _split_term(term)
    return len(trans) >= 2 and not _needs_parts(term)


def _with_real_x(expr: sympy.Expr) -> sympy.Expr:
    """Map the variable to the real x used here (callers may integrate in t, or use a plain Symbol('x'))."""
    symbols = expr.free_symbols
    if len(symbols) == 1 and x not in symbols:
        return expr.xreplace({symbols.pop(): x})
    return expr.xreplace({s: x for s in symbols if s.name == "x" and s != x})


def difficulty_features(integrand: sympy.Expr) -> dict[str, float]:
    """The structural features `difficulty_of` weighs (exposed for inspection and tests)."""
    integrand = _with_real_x(integrand)
    terms = [t for t in sympy.Add.make_args(integrand) if t.has(x)]
    funcs = [n for n in sympy.preorder_traversal(integrand) if _is_transcendental(n)]
    nesting = _nesting(integrand)
    return {
        "ops": float(sympy.count_ops(integrand)),  # operations as sympy counts them
        "extra_terms": float(max(len(terms) - 1, 0)),  # additive terms beyond the first
        "transcendental": float(bool(funcs)),  # any exp/log/trig/root/1/u at all
        "functions": float(len(funcs)),
        "scaled_args": float(sum(1 for n in funcs if n.args[0] != x and is_linear(n.args[0]))),  # sin(3*x)
        "chain": float(_chain_count(integrand) + sum(_needs_substitution(t) for t in terms)),  # substitutions
        "parts": float(sum(_needs_parts(t) for t in terms)),  # integrations by parts
        "extra_nesting": float(max(nesting - 1, 0)),  # exp(sin(x)) = 1
    }


# Weights: non-negative least squares on 1800 generated problems (150 per level for seeds 10 and 11,
# fitting the per-level means), then rounded, with small weights kept on extra terms, scaled
# arguments and nesting so that each easier edit lowers the score. Level means come out 1.1, 1.8,
# 3.4, 3.8, 4.9, 6.5. Features with no weight are still reported by `difficulty_features`.
_WEIGHTS = {"ops": 0.05, "extra_terms": 0.1, "transcendental": 1.8, "scaled_args": 0.2, "chain": 0.7,
            "parts": 1.3, "extra_nesting": 0.3}
_INTERCEPT = 1.0


def difficulty_of(integrand: sympy.Expr) -> float:
    """The task's difficulty estimate of an integrand: about d for level-d generated problems.

    A non-negative weighted sum of structural features, so removing a term, a factor or a layer of
    composition never raises it. Floors at 1 for anything with x in it, 0 for a constant.
    """
    integrand = _with_real_x(integrand)
    if not integrand.has(x):
        return 0.0
    feats = difficulty_features(integrand)
    score = _INTERCEPT + sum(w * feats[k] for k, w in _WEIGHTS.items())
    return round(max(1.0, score), 3)
