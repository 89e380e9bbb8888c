"""Best-of-N: score every sample, return the best one.

With the task's verifier as the scorer (`oracle`, the default) best-of-k is the ceiling any
selector could reach from k samples -- it equals pass@k when rewards are 0/1. With a real
scorer (a reward model, or the policy's own confidence `logprob`) it is the practical
best-of-N of Snell et al. (2024). Pure: no model or verifier is called here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from rungs.strategies.base import NO_CHOICE, Choice, Sample, Scorer, Selector, oracle_score, resolve_scorer


def best_of_n(samples: Sequence[Sample], scorer: Scorer | None = None) -> Choice:
    """The highest-scoring sample (oracle scorer by default); ties are broken uniformly at random
    in `Choice.correct` and by first position in `Choice.index`."""
    if not samples:
        return NO_CHOICE
    scorer = scorer or oracle_score
    scores = [scorer(s) for s in samples]
    scores = [x if isinstance(x, (int, float)) and math.isfinite(x) else -math.inf for x in scores]
    best = max(scores)
    winners = [i for i, x in enumerate(scores) if x == best]
    return Choice(winners[0], sum(samples[i].correct for i in winners) / len(winners))


class BestOfN(Selector):
    """`best_of_n` (oracle) or `best_of_n:SCORER` with SCORER = logprob | prob | package.module:function."""

    name = "best_of_n"

    def __init__(self, scorer: str = "oracle") -> None:
        self.scorer_name = scorer
        self.scorer = resolve_scorer(scorer)

    @classmethod
    def from_spec(cls, arg: str | None = None) -> BestOfN:
        return cls(arg or "oracle")

    @property
    def label(self) -> str:
        return "best-of-k" if self.scorer_name == "oracle" else f"best-of-k[{self.scorer_name}]"

    def select(self, samples: Sequence[Sample]) -> Choice:
        return best_of_n(samples, self.scorer)
