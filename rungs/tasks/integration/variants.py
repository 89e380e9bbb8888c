"""Easier variants of an integral, made symbolically (no model involved).

LADDER's curriculum is a tree of easier problems under each hard one. For integrals a few
mechanical edits reliably make easier problems, and sympy can do them exactly:

    drop_term             3*x**2 + x*exp(x)       -> x*exp(x)
    simplify_coefficient  7*x*cos(x)              -> x*cos(x)
    lower_exponent        x**2*exp(x)             -> x*exp(x)
    unchain               2*x*cos(x**2)           -> cos(x)          (undo the substitution)
    inner_to_x            exp(sin(x))             -> exp(x)
    simplify_argument     sin(3*x + 1)            -> sin(x)
    function_to_argument  x*log(x)                -> x**2            (a function by its argument)
    keep_factor           exp(x)*sin(x)           -> sin(x)

Each candidate is kept only if it still depends on x, is not harder than its parent by the task's
`difficulty_of`, is new (two integrands are the same variant when they agree numerically at a few
points, so 2*(x + 1) and 2*x + 2 are one), and stays integrable in elementary terms. Integrability
is ensured by construction for the families the generator draws from, with a cheap structural
recogniser (`elementary_integrable`: polynomials, rational functions, exp/trig/log of linear
arguments times polynomials, trig monomials, and anything one substitution u = g(x) reduces to
those). With `check_solvable=True` each variant is also handed to `sympy.integrate` in a worker
process under a hard time limit (LADDER drops "variants no solver handles in 5 s"); its result,
when it is elementary, becomes the variant's reference answer.
"""

from __future__ import annotations

import atexit
import random
from collections.abc import Callable, Iterator

import sympy

from rungs.errors import UnsafeExpression, UserError
from rungs.tasks.base import Variant
from rungs.tasks.integration.generator import difficulty_of, is_linear, x
from rungs.tasks.integration.problem import ParsedIntegral, parse_integral
from rungs.types import Problem
from rungs.verify.safe_expr import ExpressionSyntaxError, parse_sympy

TRANSFORMS = (
    "drop_term", "simplify_coefficient", "lower_exponent", "unchain", "inner_to_x",
    "simplify_argument", "function_to_argument", "keep_factor",
)
_FINGERPRINT_POINTS = (0.3183, 0.7071, 1.4142)  # where two integrands are compared
_MAX_CANDIDATES = 200  # bound on the work spent on one huge integrand
_MAX_RATIONAL_DEGREE = 2  # denominators up to this degree count as easily integrable (log, atan)
_ELEMENTARY_LINEAR = (sympy.exp, sympy.sin, sympy.cos, sympy.sinh, sympy.cosh)
_TRIG = (sympy.sin, sympy.cos)


# ---- candidate edits ---------------------------------------------------------------------------


def _is_function(node: sympy.Basic) -> bool:
    """A transcendental function call, or a power that is not a polynomial (sqrt(u), 1/u)."""
    if isinstance(node, sympy.Function):
        return node.args[0].has(x)
    if isinstance(node, sympy.Pow):
        base, expo = node.args
        return base.has(x) and not (expo.is_Integer and expo.is_positive)
    return False


def _inner(node: sympy.Basic) -> sympy.Expr:
    return node.args[0]  # the argument of a function, the base of a power


def _with_node(expr: sympy.Expr, node: sympy.Basic, new: sympy.Expr) -> sympy.Expr:
    return expr.xreplace({node: new})


def _term_edits(term: sympy.Expr) -> Iterator[tuple[str, sympy.Expr]]:
    """Edits of one additive term."""
    coeff, rest = term.as_coeff_Mul()
    if coeff.is_Rational and abs(coeff) != 1 and rest.has(x):
        sign = 1 if coeff > 0 else -1
        yield "simplify_coefficient", sign * rest
        if coeff.is_Integer and abs(coeff) > 3:
            yield "simplify_coefficient", sympy.Integer(int(coeff) // 2) * rest
    factors = [a for a in sympy.Mul.make_args(rest) if a.has(x)]
    if len(factors) >= 2:
        for factor in factors:
            yield "keep_factor", coeff * factor
    for node in sympy.preorder_traversal(term):
        if isinstance(node, sympy.Function) and node.args[0].has(x) and not is_linear(node.args[0]):
            yield "unchain", coeff * node.func(x)


def _node_edits(expr: sympy.Expr) -> Iterator[tuple[str, sympy.Expr]]:
    """Edits of a subexpression of `expr`, at every place it occurs in `expr`."""
    for node in sympy.preorder_traversal(expr):
        if isinstance(node, sympy.Pow) and node.args[0].has(x) and node.args[1].is_Integer:
            n = int(node.args[1])
            if n >= 2 or n <= -2:
                yield "lower_exponent", _with_node(expr, node, node.args[0] ** (n - 1 if n > 0 else n + 1))
        if not _is_function(node):
            continue
        u = _inner(node)
        if u == x:
            if isinstance(node, sympy.Function):
                yield "function_to_argument", _with_node(expr, node, x)
            continue
        if is_linear(u):
            yield "simplify_argument", _with_node(expr, node, node.func(x) if isinstance(node, sympy.Function) else x ** node.args[1])
        elif isinstance(node, sympy.Function):
            yield "inner_to_x", _with_node(expr, node, node.func(x))
        if isinstance(node, sympy.Function):
            yield "function_to_argument", _with_node(expr, node, u)


def candidate_edits(integrand: sympy.Expr) -> Iterator[tuple[str, sympy.Expr]]:
    """Every single edit of `integrand` (in x) as (transform name, new integrand); may repeat.

    Each edit touches one additive term, so lowering x**2 in 3*x**2 leaves cos(x**2) alone.
    """
    terms = sympy.Add.make_args(integrand)
    if len(terms) >= 2:
        for i in range(len(terms)):
            yield "drop_term", sympy.Add(*terms[:i], *terms[i + 1 :])
    for i, term in enumerate(terms):
        others = terms[:i] + terms[i + 1 :]
        for name, new in (*_term_edits(term), *_node_edits(term)):  # edits stay inside one term
            yield name, sympy.Add(*others, new)


# ---- integrability by construction -------------------------------------------------------------


def _rational_ok(term: sympy.Expr) -> bool:
    if not term.is_rational_function(x):
        return False
    _, den = sympy.fraction(sympy.together(term))
    return sympy.degree(den, x) <= _MAX_RATIONAL_DEGREE if den.has(x) else True


def _trig_monomial(factors: list[sympy.Expr]) -> bool:
    """sin(u)**m * cos(u)**n with one linear u and integer m, n >= 0: always elementary."""
    args = set()
    for f in factors:
        base, expo = f.as_base_exp()
        if not (isinstance(base, _TRIG) and expo.is_Integer and expo >= 0):
            return False
        args.add(base.args[0])
    return len(args) == 1 and is_linear(next(iter(args)))


def _term_integrable(term: sympy.Expr, depth: int) -> bool:
    if term.is_polynomial(x) or _rational_ok(term):
        return True
    _, rest = term.as_coeff_Mul()
    factors = [a for a in sympy.Mul.make_args(rest) if a.has(x)]
    poly = [a for a in factors if a.is_polynomial(x)]
    other = [a for a in factors if not a.is_polynomial(x)]
    if len(other) == 1:
        o = other[0]
        if isinstance(o, (*_ELEMENTARY_LINEAR, sympy.log)) and is_linear(o.args[0]):
            return True  # polynomial * exp/sin/cos/log(a*x + b): integration by parts
        if isinstance(o, sympy.Pow) and is_linear(o.args[0]) and o.args[1].is_Rational:
            return True  # polynomial * (a*x + b)**q: substitution u = a*x + b
        if isinstance(o, sympy.atan) and not poly and is_linear(o.args[0]):
            return True
    if not poly and _trig_monomial(other):
        return True
    if len(other) == 2 and not poly:
        kinds = {type(a) for a in other}
        if kinds in ({sympy.exp, sympy.sin}, {sympy.exp, sympy.cos}) and all(is_linear(a.args[0]) for a in other):
            return True  # exp(a*x)*sin(b*x): twice by parts
    if depth >= 2:
        return False
    # One substitution u = g(x): term = h(u) * u' for some h we can integrate.
    y = sympy.Dummy("y")
    inners = {node for node in sympy.preorder_traversal(term) if _is_function(node)}
    inners |= {_inner(node) for node in list(inners)} | {x**2, x**3}
    for u in inners:
        if u == x or not u.has(x) or is_linear(u):
            continue
        du = sympy.diff(u, x)
        if du == 0:
            continue
        reduced = sympy.cancel(term / du).subs(u, y)  # subs, not xreplace: x**4 -> y**2 for u = x**2
        if not reduced.has(x) and elementary_integrable(reduced.xreplace({y: x}), depth + 1):
            return True
    return False


def elementary_integrable(integrand: sympy.Expr, depth: int = 0) -> bool:
    """Whether `integrand` (in x) is in a family with a known elementary antiderivative.

    A sufficient, cheap check (no integration): False means "not recognised", not "impossible".
    """
    return all(_term_integrable(t, depth) for t in sympy.Add.make_args(integrand) if t.has(x))


# ---- identity of variants ----------------------------------------------------------------------


def fingerprint(integrand: sympy.Expr) -> str:
    """A key under which numerically equal integrands coincide (2*(x + 1) and 2*x + 2)."""
    values = []
    for point in _FINGERPRINT_POINTS:
        try:
            value = complex(integrand.subs(x, point).evalf(15))
        except (TypeError, ValueError, ZeroDivisionError):
            value = complex("nan")
        if value != value or abs(value) == float("inf"):
            return "srepr:" + sympy.srepr(sympy.expand(integrand))
        values.append(f"{value.real:.9g},{value.imag:.9g}")
    return "num:" + ";".join(values)


# ---- solving under a time limit ----------------------------------------------------------------

_EXECUTOR = None


def solver_executor():  # -> rungs.verify.pool.ProcessExecutor
    """A shared pool of worker processes for `sympy.integrate` under hard timeouts (lazy)."""
    global _EXECUTOR
    if _EXECUTOR is None:
        from rungs.verify.pool import ProcessExecutor

        _EXECUTOR = ProcessExecutor(None, workers=2, memory_mb=2048)
        atexit.register(_EXECUTOR.close)
    return _EXECUTOR


def solve_reference(text: str) -> str | None:
    """The antiderivative (or value) of a problem by `sympy.integrate`, if it is elementary.

    Runs in a worker process (top-level so it pickles). None when sympy leaves an unevaluated
    integral or answers with something outside the safe grammar (fresnel, Ei, Piecewise, ...).
    """
    parsed = parse_integral(text)
    var = parsed.var
    if parsed.definite:
        result = sympy.integrate(parsed.integrand, (var, parsed.lower, parsed.upper))
    else:
        result = sympy.integrate(parsed.integrand, var)
    if result.has(sympy.Integral):
        return None
    answer = sympy.sstr(result)
    try:
        parse_sympy(answer, variables=() if parsed.definite else (str(var),))
    except (ExpressionSyntaxError, UnsafeExpression):
        return None
    return answer


# ---- the variant maker -------------------------------------------------------------------------


def _parse(problem: Problem) -> ParsedIntegral:
    try:
        return parse_integral(problem.text)
    except UserError as err:
        raise UserError(f"problem {problem.id!r}: {err}") from None


def _round_robin(candidates: list[tuple], rng: random.Random) -> list[tuple]:
    """Shuffle, then interleave the transforms (item[0]) so that n variants use as many kinds as they can."""
    by_kind: dict[str, list[tuple]] = {}
    for item in candidates:
        by_kind.setdefault(item[0], []).append(item)
    kinds = sorted(by_kind)
    rng.shuffle(kinds)
    for items in by_kind.values():
        rng.shuffle(items)
    ordered = []
    while any(by_kind[k] for k in kinds):
        for k in kinds:
            if by_kind[k]:
                ordered.append(by_kind[k].pop())
    return ordered


def easier_variants(
    problem: Problem,
    n: int,
    rng: random.Random,
    *,
    check_solvable: bool = False,
    timeout_s: float = 5.0,
    solve: Callable[[list[str], float], list[str | None]] | None = None,
) -> list[Variant]:
    """Up to `n` easier (or equally hard) variants of an integration problem, deterministic in `rng`.

    `check_solvable`: also run `sympy.integrate` on each variant in a worker process under
    `timeout_s` seconds; drop the ones it cannot do, and store its answer in `Problem.answer`
    (otherwise `answer` is None: the integration verifier needs no reference). `solve` replaces
    that solver (texts, timeout -> answer, None for unsolved), e.g. to share a pool.
    """
    parsed = _parse(problem)
    var = parsed.var
    integrand = parsed.integrand.xreplace({var: x})
    parent_difficulty = difficulty_of(integrand)
    seen = {fingerprint(integrand)}
    admitted: list[tuple[str, sympy.Expr, str, float]] = []  # (transform, expr, key, difficulty)
    for count, (name, candidate) in enumerate(candidate_edits(integrand)):
        if count >= _MAX_CANDIDATES:
            break
        if not candidate.has(x) or candidate.has(sympy.zoo, sympy.nan, sympy.oo, -sympy.oo):
            continue
        key = fingerprint(candidate)
        if key in seen:
            continue
        difficulty = difficulty_of(candidate)
        if difficulty > parent_difficulty or not elementary_integrable(candidate):
            continue
        seen.add(key)
        admitted.append((name, candidate, key, difficulty))
    ordered = _round_robin(admitted, rng)

    def text_of(expr: sympy.Expr) -> str:
        return ParsedIntegral(expr.xreplace({x: var}), var, parsed.lower, parsed.upper).to_text()

    answers: dict[str, str] = {}  # key -> reference answer
    if check_solvable:
        solve = solve or _solve_in_workers
        chosen = []
        for start in range(0, len(ordered), max(n, 1)):
            if len(chosen) >= n:
                break
            batch = ordered[start : start + n]
            for item, answer in zip(batch, solve([text_of(item[1]) for item in batch], timeout_s)):
                if answer is not None and len(chosen) < n:
                    chosen.append(item)
                    answers[item[2]] = answer
        ordered = chosen
    out: list[Variant] = []
    for name, expr, key, difficulty in ordered[:n]:
        k = len(out)
        child = Problem(
            id=f"{problem.id}/v{k}",
            text=text_of(expr),
            answer=answers.get(key),
            meta={"difficulty": difficulty, "source": "variant", "transform": name, "parent_id": problem.id},
        )
        out.append(Variant(child, difficulty, name, problem.id, depth=1, meta={"key": key}))
    return out


def _solve_in_workers(texts: list[str], timeout_s: float) -> list[str | None]:
    results = solver_executor().run(solve_reference, [(t,) for t in texts], timeout_s)
    return [r.value if r.ok else None for r in results]
