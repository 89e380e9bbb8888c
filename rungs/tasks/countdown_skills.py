"""The countdown "skills" pretraining distribution: one operation on large numbers, three-number searches,
and a sparse share of the hard set's shapes (4 and 5-6 numbers).

Why it exists (issue 8; Yue et al. 2025, "Does RL really incentivize reasoning capacity beyond the
base model?"): RL sharpens what a model already samples now and then. The first shipped
`tiny-countdown` was supervised on generator levels 1-2 only (2 numbers up to 10, 3 numbers up to
20). On 4-6 numbers it never even wrote an expression that uses each given number once (greedy 0,
pass@64 0 on `builtin:countdown-hard` and on the level 3-4 dev problems), so every RL arm stayed at
0. LADDER's premise is a base with *latent* ability: the parts are known, putting them together is
rare but possible. This distribution builds that base:

    pairs (``single_fraction``)      two numbers up to 10, 20, 50 or 100 and one operation: the
                                     arithmetic of the larger numbers the hard set uses (level 1
                                     alone has only ~270 distinct problems, all up to 10)
    triples (the rest, mostly)       three numbers up to 20 or 50: the level-2 search, also with
                                     the hard set's magnitudes
    fours (``mixed_fraction``)       four numbers up to 50: level 3's shape, kept sparse
    wide (``wide_fraction``)         five or six numbers up to 100: level 4's shape, sparser still

Every problem's target is built by combining *all* its numbers with random operations (every
intermediate a positive integer, `random_combination`, as `CountdownTask.generate` does), so its
answer is a known solution that uses each number once; targets are at most `max_target` and never
one of the numbers. No built-in problem (compared with `CountdownTask.problem_key`: sorted numbers
and target) is ever emitted when `exclude` holds the built-in sets' keys, which `rungs pretrain
--distribution skills` passes.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Hashable, Sequence

from rungs.tasks.countdown import _leaves, format_problem, random_combination, render, render_steps
from rungs.types import Problem
from rungs.verify import safe_expr
from rungs.verify.safe_expr import BinOp

_FRESH_ATTEMPTS = 12  # draws spent looking for a new problem of a kind before repeating one

# kind -> (how many numbers, the largest number): drawn uniformly from the kind's choices
SHAPES: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "pair": ((2,), (10, 20, 50, 100)),
    "triple": ((3,), (20, 20, 50)),
    "four": ((4,), (50,)),
    "wide": ((5, 6), (100,)),
}


def in_prompt_order(tree: safe_expr.Node, numbers: Sequence[int]) -> safe_expr.Node:
    """`tree` with the operands of every + and * swapped so that the one whose first number is printed
    earlier in the prompt comes first: the same value, its numbers closer to the prompt's order.

    A character-level model copies numbers from the prompt far more easily along a monotone
    alignment (the integration skills write answers term by term in the prompt's order for the
    same reason); - and / keep their order, so the alignment is only as monotone as the solution allows.
    """
    first = {}
    for i, n in enumerate(numbers):
        first.setdefault(n, i)

    def walk(node: safe_expr.Node) -> tuple[safe_expr.Node, int]:
        if not isinstance(node, BinOp):
            leaves: list[int] = []
            _leaves(node, leaves)
            return node, first.get(leaves[0], len(numbers)) if leaves else len(numbers)
        left, lpos = walk(node.left)
        right, rpos = walk(node.right)
        if node.op in "+*" and rpos < lpos:
            left, right, lpos, rpos = right, left, rpos, lpos
        return BinOp(node.op, left, right), lpos  # where the rendered expression's first number is printed

    return walk(tree)[0]


ANSWER_FORMATS = ("expression", "steps")


def draw(kind: str, rng: random.Random, max_target: int = 1000, prompt_order: bool = False,
         answer_format: str = "expression") -> Problem | None:
    """One problem of `kind` (a key of SHAPES) with a known solution, or None when the draw failed.
    `answer_format` "steps" writes the solution as a worked chain (`render_steps`: ``3+7=10;10*5=50``)."""
    counts, highs = SHAPES[kind]
    count, high = rng.choice(counts), rng.choice(highs)
    numbers = [rng.randint(1, high) for _ in range(count)]
    made = random_combination(numbers, rng)
    if made is None:
        return None
    tree, target = made
    if target > max_target or target in numbers:
        return None
    if prompt_order:
        tree = in_prompt_order(tree, numbers)
    answer = render_steps(tree) if answer_format == "steps" else render(tree)
    return Problem(id="", text=format_problem(numbers, target), answer=answer,
                   meta={"numbers": numbers, "target": target, "source": "skills", "kind": kind,
                         "difficulty": float(count - 1)})


def skill_problems(n: int, seed: int = 0, *, mixed_fraction: float = 0.1, single_fraction: float = 0.25,
                   wide_fraction: float = 0.03, exclude: set[Hashable] | None = None,
                   key: Callable[[Problem], Hashable] | None = None, max_target: int = 1000,
                   prompt_order: bool = False, answer_format: str = "expression") -> list[Problem]:
    """`n` problems of the countdown skills distribution (see the module docstring), with answers.

    The kinds come in exactly the asked shares, in expectation over the draws; a kind that runs out
    of new problems repeats earlier ones.

    Args:
        n: how many problems.
        seed: draws are deterministic in (n, seed, fractions) and prefix-stable in n.
        mixed_fraction: share of four-number problems (the hard set's level-3 shape).
        single_fraction: share of two-number problems (one operation).
        wide_fraction: share of five- and six-number problems (level 4's shape); the rest are triples.
        exclude: `key(problem)`s never to emit, e.g. every built-in problem's `problem_key`.
        key: a problem's identity; (sorted numbers, target) if None, as `CountdownTask.problem_key`.
        max_target: the largest target, as `CountdownTask.max_target`.
        prompt_order: write each answer with the operands of + and * in the prompt's order
            (`in_prompt_order`); the draws (numbers, targets) are the same either way.
        answer_format: "expression" (``(3 + 7) * 5``) or "steps", the worked chain one operation per
            step (``3+7=10;10*5=50``, `render_steps`), so a model solves one merge at a time; the
            draws are the same either way.

    Raises:
        ValueError: fractions outside [0, 1] or summing above 1, or an unknown answer_format.
    """
    if answer_format not in ANSWER_FORMATS:
        raise ValueError(f"answer_format must be one of {', '.join(ANSWER_FORMATS)}, got {answer_format!r}")
    shares = (mixed_fraction, single_fraction, wide_fraction)
    if not all(0 <= s <= 1 for s in shares) or sum(shares) > 1 + 1e-9:
        raise ValueError(f"fractions must lie in [0, 1] and sum to at most 1, got mixed {mixed_fraction}, "
                         f"single {single_fraction}, wide {wide_fraction}")
    exclude = exclude or set()
    key = key or (lambda p: (tuple(sorted(p.meta["numbers"])), p.meta["target"]))
    rng = random.Random(f"countdown-skills:{seed}")
    problems: list[Problem] = []
    seen: set[Hashable] = set()
    by_kind: dict[str, list[Problem]] = {kind: [] for kind in SHAPES}
    misses = 0
    while len(problems) < n:
        r = rng.random()
        kind = ("four" if r < mixed_fraction else "pair" if r < mixed_fraction + single_fraction
                else "wide" if r < sum(shares) else "triple")
        drawn = None
        for _ in range(_FRESH_ATTEMPTS):
            p = draw(kind, rng, max_target, prompt_order, answer_format)
            if p is None:
                continue
            k = key(p)
            if k in seen or k in exclude:
                continue
            seen.add(k)
            drawn = p
            break
        if drawn is None:
            if not by_kind[kind]:
                misses += 1
                if misses > 100 * (n + 10):
                    raise RuntimeError(f"could only draw {len(problems)} of {n} countdown skill problems")
                continue
            drawn = rng.choice(by_kind[kind])
        else:
            drawn = dataclasses.replace(drawn, id=f"countdown-skills-s{seed}-{len(problems)}")
        by_kind[kind].append(drawn)
        problems.append(drawn)
    return problems
