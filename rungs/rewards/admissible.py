"""`admissible`: partial credit for an answer the verifier could check, right or wrong.

Why: on a small model most samples of a hard problem break the problem's own rules, and a reward
paid only for right answers is then almost always 0 and says nothing about the rule broken. Half
of the embedded countdown model's greedy answers on the dev pool use a number that was not given,
or one twice (bench/answer_shapes.py: `rejected`). This pays 1 when the verdict is `correct` or
`wrong`: the answer parsed in the task's grammar and obeyed the problem's constraints (countdown:
each number used as allowed; integration: no unevaluated integral, no stray symbol), whatever its
value. It is TinyZero's partial credit for countdown (its `format_score`, 0.1 for any extracted
equation), made stricter: TinyZero pays it for an equation with the wrong numbers too.

Weight it below the verifier: `--reward verifier,format,admissible --reward-weights 1,0.1,0.2`.
Verifications that failed (timeout, crash, error) are void, as for `verifier`. It is not a
shaping term: DAPO's filter keeps a group whose answers differ only in admissibility, since that
variance is the signal this reward exists to give.
"""

from __future__ import annotations

import torch

from rungs.rewards.base import Reward, RewardBatch, RewardOutput
from rungs.rewards.verifier import VERIFIER_FAILURES
from rungs.types import Status

ADMISSIBLE = (Status.CORRECT, Status.WRONG)


class AdmissibleReward(Reward):
    """1 for a completion whose answer the verifier could check (verdict correct or wrong), else 0."""

    name = "admissible"

    def score(self, batch: RewardBatch) -> RewardOutput:
        values = torch.tensor([v.status in ADMISSIBLE for v in batch.verdicts], dtype=torch.float32)  # [B]
        void = torch.tensor([v.status in VERIFIER_FAILURES or v.status is Status.UNLABELLED  # as the verifier reward
                             for v in batch.verdicts], dtype=torch.bool)  # [B]
        return RewardOutput(values, {"admissible/share": float(values.mean()) if len(values) else 0.0}, void)
