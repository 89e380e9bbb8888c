"""`verifier`: the task's own verifier (run by the trainer's rollout in the sandboxed pool).

The reward of RLVR (LADDER, Simonds & Yoshiyama 2025; DeepSeek-R1): the verdict's reward in
[0, 1]. The rollout already verified every completion through the `VerifierPool` (one code path
for evaluation and reward, as in nanochat), so this reads the verdicts; rows whose verification
timed out, crashed or errored are `void`: they get no reward at all from the combination.
"""

from __future__ import annotations

import torch

from rungs.rewards.base import Reward, RewardBatch, RewardOutput
from rungs.types import Status

# Verdicts that say the verifier failed, not the model: such a rollout gets no reward at all.
VERIFIER_FAILURES = (Status.TIMEOUT, Status.CRASH, Status.ERROR)


class VerifierReward(Reward):
    """1 for a verified-correct completion (the verdict's reward), 0 otherwise; failures are void."""

    name = "verifier"

    def score(self, batch: RewardBatch) -> RewardOutput:
        rewards = torch.tensor([v.reward for v in batch.verdicts], dtype=torch.float32)  # [B]
        # a failed check, or no reference to check against: no reward at all for that row
        void = torch.tensor([v.status in VERIFIER_FAILURES or v.status is Status.UNLABELLED for v in batch.verdicts],
                            dtype=torch.bool)  # [B]
        return RewardOutput(rewards, {}, void)
