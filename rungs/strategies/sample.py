"""Plain sampling: N samples at the configured temperature, scored as pass@k.

pass@k (any of k samples correct) is what a verifier-in-the-loop would get, and the ceiling of
every selector; `rungs.metrics.pass_at_k` computes it without subsampling (Chen et al. 2021).
"""

from __future__ import annotations

from rungs.strategies.base import Sampler, no_arg


class Sampling(Sampler):
    """`sample`: draw N samples with the configured sampling parameters; reported as pass@k."""

    name = "sample"
    prefix = ""

    @classmethod
    def from_spec(cls, arg: str | None = None) -> Sampling:
        no_arg(cls.name, arg)
        return cls()

    @property
    def label(self) -> str:
        return "pass@k"
