"""The hierarchical vote of augmented ARC predictions (Akyurek et al. 2024, section 5).

Each prediction was made under one augmentation and mapped back to the original task. MARC votes
in two stages: first within each transformation (the predictions made under one symmetry, across
its colour permutations and demo orders), keeping each transformation's most frequent
candidates; then across transformations, ranking a candidate by how many transformations kept
it. Predictions that did not parse carry no vote. Ties go to the larger total count, then to the
candidate seen first (the identity transformation is asked first), so the vote is deterministic.
ARC allows two attempts per test input: `hierarchical_vote` returns the top two.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Sequence
from typing import TypeVar

K = TypeVar("K", bound=Hashable)


def hierarchical_vote(predictions: Sequence[tuple[str, K | None]], top: int = 2, per_transform: int = 3) -> list[K]:
    """The `top` candidates of (transformation, candidate) predictions; None candidates are ignored.

    per_transform: how many candidates each transformation passes to the second stage (the
    paper's top-3). Returns fewer than `top` when fewer distinct candidates were predicted.
    """
    first_seen: dict[K, int] = {}
    by_transform: dict[str, Counter] = {}
    for i, (transform, cand) in enumerate(predictions):
        if cand is None:
            continue
        first_seen.setdefault(cand, i)
        by_transform.setdefault(transform, Counter())[cand] += 1
    kept: Counter = Counter()  # candidate -> transformations that kept it
    total: Counter = Counter()  # candidate -> predictions, all transformations
    for counts in by_transform.values():
        ranked = sorted(counts, key=lambda c: (-counts[c], first_seen[c]))
        for cand in ranked[:per_transform]:
            kept[cand] += 1
        total.update(counts)
    order = sorted(kept, key=lambda c: (-kept[c], -total[c], first_seen[c]))
    return order[:top]


def flat_vote(predictions: Sequence[tuple[str, K | None]], top: int = 2) -> list[K]:
    """One-stage majority over every prediction (the paper's ablation of the hierarchy)."""
    first_seen: dict[K, int] = {}
    counts: Counter = Counter()
    for i, (_, cand) in enumerate(predictions):
        if cand is not None:
            first_seen.setdefault(cand, i)
            counts[cand] += 1
    return sorted(counts, key=lambda c: (-counts[c], first_seen[c]))[:top]
