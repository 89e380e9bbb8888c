"""Majority voting (self-consistency, Wang et al. 2022), and the vote it shares with weighted voting.

Answers are grouped by the task's answer key, so equal answers written differently are one
answer (for integration, two antiderivatives that differ by a constant). A sample whose key is
None (no answer, unparseable) does not vote. The answer with the largest total weight wins;
among tied answers the expected correctness is reported (`Choice.correct`), and an answer's
correctness is the fraction of its voters the verifier passed (they agree for a sound key).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from rungs.strategies.base import NO_CHOICE, Choice, Sample, Scorer, Selector, no_arg


def vote(samples: Sequence[Sample], weight: Scorer | None = None) -> Choice:
    """Sum `weight(sample)` (1 when None) per distinct answer key; the heaviest answer wins."""
    totals: dict[str, float] = {}
    voters: dict[str, list[int]] = {}
    for i, s in enumerate(samples):
        if s.key is None:
            continue
        w = 1.0 if weight is None else float(weight(s))
        if not math.isfinite(w):
            w = 0.0
        totals[s.key] = totals.get(s.key, 0.0) + w
        voters.setdefault(s.key, []).append(i)
    if not totals:
        return NO_CHOICE
    best = max(totals.values())
    # Float sums of the same weights in another order may differ in the last bit: call those ties.
    winners = [k for k, t in totals.items() if math.isclose(t, best, rel_tol=1e-9, abs_tol=1e-12)]
    correct = sum(sum(samples[i].correct for i in voters[k]) / len(voters[k]) for k in winners) / len(winners)
    return Choice(voters[winners[0]][0], correct)


def majority(samples: Sequence[Sample]) -> Choice:
    """The most frequent answer (one vote per sample with an answer)."""
    return vote(samples)


class Majority(Selector):
    """`majority`: self-consistency; reported as maj@k."""

    name = "majority"

    @classmethod
    def from_spec(cls, arg: str | None = None) -> Majority:
        no_arg(cls.name, arg)
        return cls()

    @property
    def label(self) -> str:
        return "maj@k"

    def select(self, samples: Sequence[Sample]) -> Choice:
        return vote(samples)
