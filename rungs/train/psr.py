"""Positive- and negative-sample reinforcement: GRPO's advantages split by sign.

Zhu et al. 2025 ("The Surprising Effectiveness of Negative Reinforcement in LLM Reasoning",
arXiv 2506.01347) decompose the RLVR gradient into PSR, which raises the likelihood of the
completions that beat their group, and NSR, which lowers the likelihood of those that fall short.
PSR alone sharpens the policy: pass@1 (the greedy mode) rises while pass@k at large k falls; NSR
alone keeps the diversity. Here each is GRPO's group-normalised advantage with the other sign
set to zero:

    psr  A_i = max(0, (r_i - mean(group)) / std)      nothing is pushed down
    nsr  A_i = min(0, (r_i - mean(group)) / std)      nothing is pulled up

Why rungs has them: on a small model whose greedy answer is what is scored, the negative half of
GRPO's update moves probability off a wrong greedy answer to wherever the model's prior puts it,
which can cost the problems it already answered right; PSR is the update that only sharpens.
`scale_rewards` means what it means for GRPO; `zero_std` marks groups with equal rewards.
"""

from __future__ import annotations

from torch import Tensor

from rungs.train.grpo_loss import ADVANTAGE_EPS, Advantages, group_advantages


def psr_advantages(rewards: Tensor, num_generations: int, scale_rewards: str = "group",
                   eps: float = ADVANTAGE_EPS) -> Advantages:
    """GRPO advantages of `rewards` [B] (laid out group by group) with the negative ones set to 0."""
    out = group_advantages(rewards, num_generations, scale_rewards, eps)
    return Advantages(out.advantages.clamp(min=0.0), out.std, out.zero_std)


def nsr_advantages(rewards: Tensor, num_generations: int, scale_rewards: str = "group",
                   eps: float = ADVANTAGE_EPS) -> Advantages:
    """GRPO advantages of `rewards` [B] (laid out group by group) with the positive ones set to 0."""
    out = group_advantages(rewards, num_generations, scale_rewards, eps)
    return Advantages(out.advantages.clamp(max=0.0), out.std, out.zero_std)
