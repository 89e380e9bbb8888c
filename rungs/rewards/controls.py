"""The controls of Shao et al. 2025 ("Spurious Rewards: Rethinking Training Signals in RLVR").

- `random`: Bernoulli(p) rewards (default p = 0.5), independent of the text. On Qwen2.5-Math a
  random reward alone lifts MATH-500 (clipping bias amplifies a prior the model already has); on
  Llama and OLMo it does not. A lift from a label-free signal means little without this arm
  beside it. Seeded by the batch seed, so a resumed run draws the same rewards. `random:P` sets p.
- `format_only`: 1 when the task can extract an answer from the completion (<answer> or
  \\boxed{}), else 0: rewards the form of an answer and nothing of its content.
"""

from __future__ import annotations

import torch

from rungs.errors import UserError
from rungs.rewards.base import Reward, RewardBatch, RewardContext, RewardOutput


class RandomReward(Reward):
    """1 with probability p (default 0.5), independently per rollout; independent of the text."""

    name = "random"

    def __init__(self, context: RewardContext, p: float = 0.5) -> None:
        super().__init__(context)
        self.p = p

    @classmethod
    def from_spec(cls, context: RewardContext, arg: str | None = None) -> RandomReward:
        if not arg:
            return cls(context)
        try:
            p = float(arg)
        except ValueError:
            p = -1.0
        if not 0.0 <= p <= 1.0:
            raise UserError(f"reward random:{arg}: expected random or random:P with P a probability in [0, 1]")
        return cls(context, p)

    def score(self, batch: RewardBatch) -> RewardOutput:
        gen = torch.Generator().manual_seed(int(batch.seed) & (2**63 - 1))
        draws = torch.rand(len(batch), generator=gen)  # [B]
        return RewardOutput((draws < self.p).float())


class FormatOnlyReward(Reward):
    """Shao et al. 2025's format-only control: 1 if the task can extract an answer, else 0."""

    name = "format_only"

    def score(self, batch: RewardBatch) -> RewardOutput:
        task = self.context.task
        values = [1.0 if task.extract_answer(c.text) is not None else 0.0 for c in batch.completions]  # linear scans
        return RewardOutput(torch.tensor(values, dtype=torch.float32))
