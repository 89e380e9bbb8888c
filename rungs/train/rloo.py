"""RLOO advantages (REINFORCE Leave-One-Out; Kool et al. 2019, Ahmadian et al. 2024, "Back to Basics").

Each completion is compared with the mean reward of the *other* G - 1 samples of its prompt:

    A_i = r_i - (sum_j r_j - r_i) / (G - 1)  =  G / (G - 1) * (r_i - mean(r))

an unbiased baseline (it does not depend on r_i). RLOO does not divide by a group std;
`scale_rewards="batch"` divides by the batch's std (TRL's `normalize_advantages`), "group" and
"none" leave the advantages as they are. `zero_std` marks groups with equal rewards, as for GRPO.
"""

from __future__ import annotations

import torch
from torch import Tensor

from rungs.train.grpo_loss import ADVANTAGE_EPS, Advantages


def rloo_advantages(rewards: Tensor, num_generations: int, scale_rewards: str = "group",
                    eps: float = ADVANTAGE_EPS) -> Advantages:
    """Leave-one-out advantages of `rewards` [B], laid out group by group (B = groups * G, G >= 2)."""
    G = num_generations
    if rewards.dim() != 1 or rewards.numel() % G or G < 2:
        raise ValueError(f"rewards must be [num_groups * {G}] with G >= 2, got shape {tuple(rewards.shape)}")
    grouped = rewards.float().view(-1, G)  # [N, G]
    baseline = (grouped.sum(dim=1, keepdim=True) - grouped) / (G - 1)  # [N, G]: mean of the others
    advantages = (grouped - baseline).reshape(-1)  # [B]
    group_std = grouped.std(dim=1).repeat_interleave(G)  # [B]
    std = torch.ones_like(advantages)
    if scale_rewards == "batch":
        std = (advantages.std() if advantages.numel() > 1 else advantages.new_zeros(())).expand_as(advantages)
        advantages = advantages / (std + eps)
    elif scale_rewards not in ("group", "none"):
        raise ValueError(f"scale_rewards must be group, batch or none, got {scale_rewards!r}")
    zero_std = torch.isclose(group_std, torch.zeros_like(group_std))  # [B]
    return Advantages(advantages, std, zero_std)
