"""Rewards from the policy's own distribution: `self_certainty` (INTUITOR) and `neg_entropy` (EM-RL / RENT).

- `self_certainty` (Zhao et al. 2025, "Learning to Reason without External Rewards", INTUITOR):
  per completion, the mean over its tokens of KL(U || p_i), the divergence of the uniform
  distribution from the next-token distribution p_i:
      r = -1/T sum_i 1/|V| sum_v log(|V| p_i(v))
  larger when the model is more certain; 0 for a uniform model.
- `neg_entropy` (Agarwal et al. 2025, "The Unreasonable Effectiveness of Entropy Minimization";
  RENT, Prabhudesai et al. 2025): minus the mean token entropy of the completion,
      r = -1/T sum_i H(p_i),  H(p) = -sum_v p(v) log p(v)   (nats)
  `neg_entropy:answer` is RENT's variant: the mean over the tokens of the final answer only (from
  the last <answer> or \\boxed{ to the end of the answer); a completion with no answer falls back
  to all of its tokens.

Both are computed by the policy (`Policy.token_stats`: the full-vocabulary distribution, without
grad) at the temperature-1 logits, on the completions as sampled; they use no label, so they work
on any task, `math` with no answers included. An empty completion scores 0.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from rungs.errors import UserError
from rungs.policies.base import Policy
from rungs.rewards.base import Reward, RewardBatch, RewardContext, RewardOutput
from rungs.verify.extract import ANSWER_CLOSE, ANSWER_OPEN, BOXED_MARKERS


def policy_token_stats(context: RewardContext, name: str, batch: RewardBatch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(mask [B, T] bool, entropy [B, T], self-certainty [B, T]) of the batch's completions, scored
    `context.micro_batch_size` completions at a time, on the CPU."""
    policy = context.need_policy(name)
    ids = [c.token_ids for c in batch.completions]
    if any(len(c.token_ids) == 0 and c.text for c in batch.completions):
        raise UserError(f"reward {name!r} needs the completions' token ids; policy {policy.name!r} gives none")
    T = max([len(x) for x in ids] + [1])
    B = len(ids)
    mask = torch.zeros(B, T, dtype=torch.bool)
    entropy = torch.zeros(B, T)
    certainty = torch.zeros(B, T)
    step = max(1, context.micro_batch_size)
    policy.eval()  # safe: nn.Module/Policy.eval(), inference mode; not Python's eval
    with torch.no_grad():
        for s in range(0, B, step):
            stats = policy.token_stats(batch.prompt_ids[s:s + step], ids[s:s + step])
            t = stats.mask.shape[1]
            mask[s:s + step, :t] = stats.mask.bool().cpu()
            entropy[s:s + step, :t] = stats.entropy.float().cpu()
            certainty[s:s + step, :t] = stats.self_certainty.float().cpu()
    return mask, entropy, certainty


def masked_row_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of `values` [B, T] over each row's True `mask` entries; 0 for an empty row. -> [B]"""
    m = mask.float()
    return (values * m).sum(-1) / m.sum(-1).clamp(min=1.0)


def answer_char_span(text: str) -> tuple[int, int] | None:
    """(start, end) character offsets of the final answer: from the last <answer> (or \\boxed{)
    to its closing tag (or the end of the text); None when the text has no answer marker."""
    start = text.rfind(ANSWER_OPEN)
    marker = ANSWER_OPEN
    for m in BOXED_MARKERS:
        pos = text.rfind(m)
        if pos > start:
            start, marker = pos, m
    if start < 0:
        return None
    end = text.find(ANSWER_CLOSE, start) if marker == ANSWER_OPEN else -1
    return start, (end + len(ANSWER_CLOSE) if end >= 0 else len(text))


def answer_token_mask(policy: Policy, token_ids: Sequence[int], text: str) -> list[bool] | None:
    """True on the tokens that overlap the final answer's characters (by decoding prefixes, a binary
    search each side); None when the text has no answer."""
    span = answer_char_span(text)
    if span is None:
        return None
    ids = list(token_ids)

    def first_prefix_longer_than(chars: int) -> int:
        lo, hi = 0, len(ids)
        while lo < hi:  # smallest j with len(decode(ids[:j])) > chars
            mid = (lo + hi) // 2
            if len(policy.decode(ids[:mid])) > chars:
                hi = mid
            else:
                lo = mid + 1
        return lo

    first = max(0, first_prefix_longer_than(span[0]) - 1)  # the token holding the answer's first char
    last = first_prefix_longer_than(span[1] - 1)  # the token holding its last char (1-based)
    return [first <= j < max(last, first + 1) for j in range(len(ids))]


class SelfCertaintyReward(Reward):
    """INTUITOR's self-certainty: mean over the completion's tokens of KL(U || p_i)."""

    name = "self_certainty"

    def score(self, batch: RewardBatch) -> RewardOutput:
        mask, _entropy, certainty = policy_token_stats(self.context, self.name, batch)
        return RewardOutput(masked_row_mean(certainty, mask))


class NegEntropyReward(Reward):
    """Minus the mean token entropy of the completion (`neg_entropy:answer`: of its answer, RENT)."""

    name = "neg_entropy"

    def __init__(self, context: RewardContext, answer_only: bool = False) -> None:
        super().__init__(context)
        self.answer_only = answer_only

    @classmethod
    def from_spec(cls, context: RewardContext, arg: str | None = None) -> NegEntropyReward:
        if arg not in (None, "", "answer", "all"):
            raise UserError(f"reward neg_entropy:{arg}: expected neg_entropy (all tokens) or neg_entropy:answer (RENT)")
        return cls(context, answer_only=arg == "answer")

    def score(self, batch: RewardBatch) -> RewardOutput:
        mask, entropy, _certainty = policy_token_stats(self.context, self.name, batch)
        metrics: dict[str, float] = {}
        if self.answer_only:
            policy = self.context.need_policy(self.name)
            found = 0
            for i, c in enumerate(batch.completions):
                answer = answer_token_mask(policy, c.token_ids, c.text)
                if answer is not None and any(answer):
                    found += 1
                    row = torch.zeros(mask.shape[1], dtype=torch.bool)
                    row[:len(answer)] = torch.tensor(answer, dtype=torch.bool)
                    mask[i] &= row
            metrics["rewards/neg_entropy/answer_found"] = found / max(len(batch), 1)
        return RewardOutput(-masked_row_mean(entropy, mask), metrics)
