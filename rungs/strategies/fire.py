"""FIRE sampling (Chen et al. 2024): the first token at a very high temperature, the rest normally.

The first token decides much of a completion's direction, so sampling it hot (temperature 30,
restricted to the top 16 tokens so that it stays plausible) diversifies the N samples cheaply;
the gain shows in pass@k and in voting over them. This is a sampling-side strategy: its samples
are then scored with every requested selector ("fire pass@k", "fire maj@k", ...). It only
changes `SamplingParams`, so it works with every policy that honours `first_token_temperature`
/ `first_token_top_k` (tiny and hf do; an OpenAI-compatible server cannot be asked for it).
"""

from __future__ import annotations

from rungs.errors import UserError
from rungs.policies.base import SamplingParams
from rungs.strategies.base import Sampler, spec_args


class Fire(Sampler):
    """`fire`, `fire:TEMPERATURE` or `fire:TEMPERATURE:TOP_K` (default 30 and 16)."""

    name = "fire"

    def __init__(self, first_token_temperature: float = 30.0, first_token_top_k: int = 16) -> None:
        if first_token_temperature <= 0 or first_token_top_k < 0:
            raise UserError(f"fire: first-token temperature must be > 0 and top-k >= 0, "
                            f"got {first_token_temperature} and {first_token_top_k}")
        self.first_token_temperature = float(first_token_temperature)
        self.first_token_top_k = int(first_token_top_k)

    @classmethod
    def from_spec(cls, arg: str | None = None) -> Fire:
        if not arg:
            return cls()
        temperature, top_k = spec_args(arg, float, int, 16,
                                       f"fire:{arg}: expected fire:TEMPERATURE or fire:TEMPERATURE:TOP_K, e.g. fire:30:16")
        return cls(temperature, top_k)

    @property
    def label(self) -> str:
        if (self.first_token_temperature, self.first_token_top_k) == (30.0, 16):
            return "fire"
        return f"fire({self.first_token_temperature:g},{self.first_token_top_k})"

    @property
    def prefix(self) -> str:  # type: ignore[override]
        return self.label

    def params(self, base: SamplingParams) -> SamplingParams:
        return base.with_(first_token_temperature=self.first_token_temperature,
                          first_token_top_k=self.first_token_top_k or None)
