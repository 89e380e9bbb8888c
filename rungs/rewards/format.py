"""`format`: LADDER's format term (Simonds & Yoshiyama 2025: "correctness + a small format term").

1 when the completion holds exactly one well-formed, non-empty <answer>...</answer>; weighted by
`format_reward_weight` (0.1) unless `reward_weights` says otherwise. The stricter sibling of the
`format_only` control (rewards/controls.py), which accepts any extractable answer.
"""

from __future__ import annotations

import torch

from rungs.rewards.base import Reward, RewardBatch, RewardOutput
from rungs.verify.extract import ANSWER_CLOSE, ANSWER_OPEN


def format_reward(text: str) -> float:
    """1.0 when the completion holds exactly one well-formed, non-empty <answer>...</answer>."""
    if text.count(ANSWER_OPEN) != 1 or text.count(ANSWER_CLOSE) != 1:
        return 0.0
    start, end = text.index(ANSWER_OPEN), text.index(ANSWER_CLOSE)
    return 1.0 if start < end and text[start + len(ANSWER_OPEN):end].strip() else 0.0


class FormatReward(Reward):
    """LADDER's format term: `format_reward` of each completion."""

    name = "format"
    shaping = True  # LADDER's format term: DAPO's zero-variance filter ignores it (see Reward)

    def score(self, batch: RewardBatch) -> RewardOutput:
        return RewardOutput(torch.tensor([format_reward(c.text) for c in batch.completions], dtype=torch.float32))

