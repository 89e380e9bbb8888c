"""Greedy decoding: one sample at temperature 0 -- the baseline every other strategy must beat."""

from __future__ import annotations

from rungs.policies.base import SamplingParams
from rungs.strategies.base import Sampler, no_arg


class Greedy(Sampler):
    """`greedy`: temperature 0, one sample per problem whatever n is."""

    name = "greedy"
    fixed_n = 1
    prefix = "greedy"

    @classmethod
    def from_spec(cls, arg: str | None = None) -> Greedy:
        no_arg(cls.name, arg)
        return cls()

    def params(self, base: SamplingParams) -> SamplingParams:
        # FIRE's hot first token would make "greedy" random; greedy means greedy throughout.
        return base.with_(temperature=0.0, top_k=0, top_p=1.0, first_token_temperature=None, first_token_top_k=None)
