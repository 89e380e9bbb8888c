"""The "skills" pretraining distribution: every elementary rule alone, sums term by term, and a few mixed sums.

Why it exists (issue 8; Yue et al. 2025, "Does RL really incentivize reasoning capacity beyond the
base model?"): RL sharpens what a model already samples now and then. The first shipped base was
supervised on generator levels 1-2 only, so the hard set's skills (a scaled argument, 1/(a*x + b),
the chain rule) had no probability mass and every RL arm stayed at 0. LADDER's premise is a base
with *latent* ability: each rule it needs is known on its own, and composing rules in one answer
is rare but possible. This distribution builds that base:

    single terms (``single_fraction``)   every rule the hard set draws on, one term at a time:
                                         c*x**n (n = -4..7, n != -1), c/x, c*h(a*x + b) for
                                         h in exp/sin/cos, c/(a*x + b), and the chain-rule terms
                                         g'(x)*f(g(x)) of generator level 4
    same-kind sums (the rest, mostly)    2-3 terms of one family (polynomials; two scaled
                                         exp/sin/cos terms; two chain terms): the habit of
                                         integrating a sum term by term
    mixed sums (``mixed_fraction``)      a monomial plus a function of a linear argument, or a
                                         chain term plus a simpler term: the hard set's shape,
                                         kept sparse so that the hard set stays hard

The probe that motivated the mixed share: a base trained on single terms plus same-kind sums only
learned that "a sum is all one kind" (``6*x**3 + 9*exp(4*x)`` answered with two logs) and
sampled 1 of 72 multi-term hard problems in 64 tries.

Targets are written term by term in the order the prompt prints the integrand's terms
(``integrate(6*x**3 + 9*exp(4*x), x)`` -> ``3*x**4/2 + 9*exp(4*x)/4``), so a character-level model
sees a monotone alignment between integrand and answer. Any equivalent answer still verifies: the
checker is numeric.

    >>> [p.text for p in skill_problems(3, seed=0)]  # doctest: +SKIP
"""

from __future__ import annotations

import random
from collections.abc import Callable

import sympy

from rungs.tasks.integration.generator import (
    Term,
    _antiderivative_linear,
    _chain,
    _coef,
    _from_antiderivative,
    _linear_arg,
    x,
)
from rungs.types import Problem

MAX_PROMPT_CHARS = 90  # the hard set's longest prompts are ~80 characters
MAX_ANSWER_CHARS = 80
_FRESH_ATTEMPTS = 12  # draws spent looking for a new problem of a kind before repeating one
_LINEAR_FUNCS = (sympy.exp, sympy.sin, sympy.cos)
_POWERS = (-4, -3, -2, 1, 2, 3, 4, 5, 6, 7)


# ---- single terms -------------------------------------------------------------------------------
def power_term(rng: random.Random) -> Term:
    """c*x**n with n in -4..7 (n != -1), or c/x: the power rule, negative exponents included."""
    if rng.random() < 0.12:
        return _from_antiderivative(sympy.log(x), _coef(rng))  # c/x -> c*log(x)
    n = rng.choice(_POWERS)
    return _from_antiderivative(x ** (n + 1), _coef(rng))


def linear_function_term(rng: random.Random) -> Term:
    """c*h(a*x + b), h in exp/sin/cos, or c/(a*x + b): a function of a linear argument."""
    if rng.random() < 0.2:  # c/(a*x + b) -> c*log(a*x + b)/a, a > 0 so the logarithm's argument reads as written
        a, b, c = rng.randint(2, 5), rng.randint(1, 3), _coef(rng)
        return c / (a * x + b), c * sympy.log(a * x + b) / a
    h = rng.choice(_LINEAR_FUNCS)
    u = x if rng.random() < 0.15 else _linear_arg(rng, with_shift=0.3)
    return _from_antiderivative(_antiderivative_linear(h, u), _coef(rng))


def chain_term(rng: random.Random) -> Term:
    """g'(x)*f(g(x)) with a non-linear g: the chain-rule terms of generator level 4."""
    return _chain(rng)


FAMILIES: dict[str, Callable[[random.Random], Term]] = {
    "power": power_term, "linear_function": linear_function_term, "chain": chain_term,
}


# ---- sums ---------------------------------------------------------------------------------------
def _single(rng: random.Random) -> list[Term]:
    family = rng.choices(list(FAMILIES), weights=(0.3, 0.35, 0.35))[0]
    return [FAMILIES[family](rng)]


def _same_kind_sum(rng: random.Random) -> list[Term]:
    family = rng.choices(list(FAMILIES), weights=(0.6, 0.3, 0.1))[0]
    k = 2 if family == "chain" or rng.random() < 0.7 else 3
    return [FAMILIES[family](rng) for _ in range(k)]


def _mixed_sum(rng: random.Random) -> list[Term]:
    """The hard set's shapes: monomial(s) + a linear-argument function; a chain term + a simpler one."""
    if rng.random() < 0.5:
        terms = [power_term(rng) for _ in range(rng.randint(1, 2))]
        terms.append(linear_function_term(rng))
    else:
        terms = [chain_term(rng), rng.choice([power_term, linear_function_term])(rng)]
    rng.shuffle(terms)
    return terms


def term_by_term_answer(terms: list[Term]) -> str | None:
    """The antiderivative written term by term in the printed order of the integrand's terms.

    None when the terms merged or reordered beyond recognition (two monomials of one power), so
    the caller can draw again.
    """
    f = sympy.Add(*(t[0] for t in terms))
    by_integrand = {}
    for fi, Fi in terms:
        if fi in by_integrand or fi == 0:
            return None
        by_integrand[fi] = Fi
    ordered = f.as_ordered_terms()
    if len(ordered) != len(terms) or any(t not in by_integrand for t in ordered):
        return None
    parts = [str(by_integrand[t]) for t in ordered]
    text = parts[0]
    for part in parts[1:]:
        text += f" - {part[1:]}" if part.startswith("-") else f" + {part}"
    return text


def skill_problems(n: int, seed: int = 0, *, mixed_fraction: float = 0.02, single_fraction: float = 0.4,
                   exclude: set[str] | None = None, key: Callable[[str], str] | None = None) -> list[Problem]:
    """`n` problems of the skills distribution (see the module docstring), with answers.

    The kinds come in exactly the asked shares: a kind that runs out of new problems (single
    terms are a few thousand) repeats earlier ones, as `rungs pretrain` repeats small levels.

    Args:
        n: how many problems.
        seed: draws are deterministic in (n, seed, fractions).
        mixed_fraction: share of mixed-kind sums (the hard set's shape); 0 <= mixed_fraction <= 1.
        single_fraction: share of single terms; the rest (1 - single - mixed) are same-kind sums.
        exclude: canonical problem texts (`key(text)`) never to emit, e.g. every built-in test and
            dev problem, so that no evaluated problem is a training problem.
        key: maps a prompt text to its canonical form (IntegrationTask.problem_key); identity if None.

    Raises:
        ValueError: fractions outside [0, 1] or summing above 1.
    """
    if not (0 <= mixed_fraction <= 1 and 0 <= single_fraction <= 1 and mixed_fraction + single_fraction <= 1):
        raise ValueError(f"fractions must lie in [0, 1] and sum to at most 1, got mixed {mixed_fraction}, single {single_fraction}")
    exclude = exclude or set()
    key = key or (lambda text: text)
    makers = {"mixed": _mixed_sum, "single": _single, "same_kind": _same_kind_sum}
    problems: list[Problem] = []
    seen: set[str] = set()
    by_kind: dict[str, list[Problem]] = {kind: [] for kind in makers}
    rng = random.Random(f"integration-skills:{seed}")
    misses = 0
    while len(problems) < n:
        r = rng.random()
        kind = "mixed" if r < mixed_fraction else "single" if r < mixed_fraction + single_fraction else "same_kind"
        drawn = None
        for _ in range(_FRESH_ATTEMPTS):
            terms = makers[kind](rng)
            f = sympy.Add(*(t[0] for t in terms))
            if f == 0 or not f.has(x) or f.has(sympy.Float, sympy.zoo, sympy.nan, sympy.oo):
                continue
            answer = term_by_term_answer(terms)
            text = f"integrate({f}, x)"
            if answer is None or len(text) > MAX_PROMPT_CHARS or len(answer) > MAX_ANSWER_CHARS:
                continue
            k = key(text)
            if k in seen or k in exclude:
                continue
            seen.add(k)
            drawn = Problem(id=f"int-skills-s{seed}-{len(problems)}", text=text, answer=answer,
                            meta={"source": "skills", "kind": kind, "terms": len(terms)})
            break
        if drawn is None:  # the kind has run out of new problems: repeat one, so the mix stays as asked
            if not by_kind[kind]:  # none of this kind at all (all excluded): the others fill in
                misses += 1
                if misses > 100 * (n + 10):
                    raise RuntimeError(f"could only draw {len(problems)} of {n} skill problems")
                continue
            drawn = rng.choice(by_kind[kind])
        by_kind[kind].append(drawn)
        problems.append(drawn)
    return problems


def composite_problems(n: int, seed: int = 0, *, exclude: set[str] | None = None,
                       key: Callable[[str], str] | None = None) -> list[Problem]:
    """`n` distinct sums of 3-4 terms from all three families: a chain-rule term, a function of a
    linear argument, and one or two powers, in shuffled order (`builtin:integration-harder`).

    Harder than the hard set (2-3 terms, at most two families) in the one way the skills base is
    weak: composing rules it knows alone. Each problem's easier variants (drop a term, ...) lead
    back to hard-set-like problems, so this is where direct GRPO on the problems should starve
    while LADDER's variants still give signal.
    """
    exclude = exclude or set()
    key = key or (lambda text: text)
    rng = random.Random(f"integration-composite:{seed}")
    problems: list[Problem] = []
    seen: set[str] = set()
    attempts = 0
    while len(problems) < n:
        attempts += 1
        if attempts > 100 * (n + 10):
            raise RuntimeError(f"could only draw {len(problems)} of {n} composite problems")
        terms = [chain_term(rng), linear_function_term(rng)] + [power_term(rng) for _ in range(rng.randint(1, 2))]
        rng.shuffle(terms)
        f = sympy.Add(*(t[0] for t in terms))
        answer = term_by_term_answer(terms)
        text = f"integrate({f}, x)"
        if answer is None or len(text) > 130 or len(answer) > 110 or f.has(sympy.Float):
            continue
        k = key(text)
        if k in seen or k in exclude:
            continue
        seen.add(k)
        problems.append(Problem(id=f"int-composite-s{seed}-{len(problems)}", text=text, answer=answer,
                                meta={"source": "composite", "terms": len(terms), "difficulty": 7.0}))
    return problems
