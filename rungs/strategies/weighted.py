"""Weighted majority (Snell et al. 2024's weighted best-of-N): sum a score per distinct answer.

The default score is the policy's own confidence, exp(mean token log-prob), so it needs no
reward model; any scorer works (`weighted:package.module:function`). With no log-probs from
the policy (some OpenAI-compatible servers) every weight is 1 and this is plain majority.
"""

from __future__ import annotations

from collections.abc import Sequence

from rungs.strategies.base import Choice, Sample, Scorer, Selector, prob_score, resolve_scorer
from rungs.strategies.majority import vote


def weighted(samples: Sequence[Sample], scorer: Scorer | None = None) -> Choice:
    """Votes weighted by `scorer` (exp(mean log-prob) by default); see `majority.vote`."""
    return vote(samples, scorer or prob_score)


class Weighted(Selector):
    """`weighted` (exp mean log-prob) or `weighted:SCORER` (oracle | logprob | prob | module:function)."""

    name = "weighted"

    def __init__(self, scorer: str = "prob") -> None:
        if scorer == "logprob":
            from rungs.errors import UserError

            raise UserError("weighted:logprob would sum negative weights (more votes, less weight); "
                            "use weighted (exp of the mean log-prob) instead")
        self.scorer_name = scorer
        self.scorer = resolve_scorer(scorer)

    @classmethod
    def from_spec(cls, arg: str | None = None) -> Weighted:
        return cls(arg or "prob")

    @property
    def label(self) -> str:
        return "weighted@k" if self.scorer_name == "prob" else f"weighted@k[{self.scorer_name}]"

    def select(self, samples: Sequence[Sample]) -> Choice:
        return vote(samples, self.scorer)
