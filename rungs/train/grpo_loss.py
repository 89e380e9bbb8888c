"""The GRPO objective as pure tensor functions: advantages, the clipped surrogate with KL, metrics.

Nothing here knows about policies, tasks or optimizers, so every formula can be checked against
numbers worked out by hand (tests/test_grpo_loss.py) and reused by other trainers. The formulas
and the metric names are TRL's (trl.GRPOTrainer._compute_loss), so curves compare one to one:

    A_i   = (r_i - mean(r_group)) / (std(r_group) + 1e-4)        scale_rewards = "group"
            (r_i - mean(r_group)) / (std(r_batch) + 1e-4)        scale_rewards = "batch"
            (r_i - mean(r_group))                                scale_rewards = "none" (Dr. GRPO)
    rho   = exp(logp_new - logp_old)                             per token
    loss  = -min(rho * A, clip(rho, 1 - eps_low, 1 + eps_high) * A) + beta * KL
    KL    = exp(ref - new) - (ref - new) - 1                     k3 estimator, per token

aggregated by `loss_type`: "grpo" (mean over each sequence's tokens, then over sequences),
"dapo" (mean over every token of the mini-batch), "bnpo" (mean over the tokens of each micro-batch,
then over micro-batches: TRL's local token mean), "dr_grpo" (sum / (sequences * max_completion_length)).
std is the unbiased (Bessel-corrected) standard deviation, as in TRL.

GSPO (Zheng et al. 2025), as TRL 1.16 spells it (`importance_sampling_level="sequence"`): the
ratio is one per sequence, the exponential of the mean per-token log-ratio over its tokens,

    rho_seq = exp( sum_t mask * (logp_new - logp_old) / max(1, sum_t mask) )

broadcast over the sequence's tokens and clipped like the token ratio (gradient flows through it);
the clip metrics then count sequences, not tokens. TRL recommends loss_type "grpo" with it.

The trainer accumulates gradients over micro-batches; passing the mini-batch's `num_sequences`
and `num_tokens` makes the sum of micro-batch losses equal the loss of the whole mini-batch.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

ADVANTAGE_EPS = 1e-4  # TRL's constant in the std normalisation


class Advantages(NamedTuple):
    """Per-completion advantages and the group statistics behind them (all [B], B = groups * G)."""

    advantages: Tensor  # [B] float
    std: Tensor  # [B] float: the std each advantage was (or, for "none", would be) divided by
    zero_std: Tensor  # [B] bool: the completion's group has (numerically) equal rewards


class GRPOLossOutput(NamedTuple):
    """The scalar loss to backpropagate, metrics under TRL's names, and the tokens they average."""

    loss: Tensor  # [] float, differentiable
    metrics: dict[str, float]  # token means: kl, entropy, clip_ratio, clip_ratio/low_mean, clip_ratio/high_mean
    num_tokens: int  # active tokens the metrics averaged over (to weight micro-batches)


def group_advantages(rewards: Tensor, num_generations: int, scale_rewards: str = "group",
                     eps: float = ADVANTAGE_EPS) -> Advantages:
    """Advantages of `rewards` [B], laid out group by group (B = num_groups * num_generations)."""
    if rewards.dim() != 1 or rewards.numel() % num_generations:
        raise ValueError(f"rewards must be [num_groups * {num_generations}], got shape {tuple(rewards.shape)}")
    rewards = rewards.float()
    grouped = rewards.view(-1, num_generations)  # [N, G]
    mean = grouped.mean(dim=1).repeat_interleave(num_generations)  # [B]
    group_std = grouped.std(dim=1).repeat_interleave(num_generations)  # [B], unbiased
    if scale_rewards in ("group", "none"):
        std = group_std
    elif scale_rewards == "batch":
        std = (rewards.std() if rewards.numel() > 1 else rewards.new_zeros(())).expand_as(rewards)
    else:
        raise ValueError(f"scale_rewards must be group, batch or none, got {scale_rewards!r}")
    advantages = rewards - mean  # [B]
    if scale_rewards != "none":
        advantages = advantages / (std + eps)
    zero_std = torch.isclose(group_std, torch.zeros_like(group_std))  # [B]
    return Advantages(advantages, std, zero_std)


def completion_mask(mask: Tensor, truncated: Tensor | None, mask_truncated_completions: bool) -> Tensor:
    """The loss mask [B, T]: the token mask, with truncated rows ([B] bool) zeroed when asked (DAPO)."""
    if not mask_truncated_completions or truncated is None:
        return mask
    return mask & ~truncated.to(mask.device).bool().unsqueeze(1)  # [B, T]


def grpo_loss(
    logps: Tensor,
    old_logps: Tensor,
    advantages: Tensor,
    mask: Tensor,
    ref_logps: Tensor | None = None,
    *,
    epsilon_low: float = 0.2,
    epsilon_high: float = 0.2,
    beta: float = 0.0,
    loss_type: str = "dapo",
    max_completion_length: int | None = None,
    num_sequences: int | None = None,
    num_tokens: int | None = None,
    entropy: Tensor | None = None,
    importance_sampling_level: str = "token",
    num_micro_batches: int = 1,
) -> GRPOLossOutput:
    """The clipped GRPO surrogate (plus beta * k3 KL) of one (micro-)batch.

    logps      [B, T] log-probs of the completion tokens under the current weights (with grad)
    old_logps  [B, T] the same under the weights that sampled them (no grad); pass
                      logps.detach() when on-policy: then rho == 1 but the gradient still flows
    advantages [B]    one advantage per completion (broadcast over its tokens)
    mask       [B, T] bool, True on the tokens that count in the loss
    ref_logps  [B, T] reference log-probs; required when beta > 0
    entropy    [B, T] optional per-token entropy, only for the `entropy` metric
    num_sequences / num_tokens: normalisers of the whole mini-batch when this is one of several
                      micro-batches whose gradients are accumulated (defaults: this batch's own).
    importance_sampling_level: "token" (GRPO) | "sequence" (GSPO; see the module docstring)
    num_micro_batches: micro-batches accumulated into this mini-batch ("bnpo" divides by it)
    """
    if logps.shape != old_logps.shape or logps.shape != mask.shape:
        raise ValueError(f"logps {tuple(logps.shape)}, old_logps {tuple(old_logps.shape)} and mask "
                         f"{tuple(mask.shape)} must have the same [B, T] shape")
    maskf = mask.to(logps.dtype)  # [B, T]
    adv = advantages.to(logps.dtype).unsqueeze(1)  # [B, 1]
    log_ratio = logps - old_logps.detach()  # [B, T]
    if importance_sampling_level == "token":
        ratio = torch.exp(log_ratio)  # [B, T]
    elif importance_sampling_level == "sequence":
        seq = (log_ratio * maskf).sum(-1) / maskf.sum(-1).clamp(min=1.0)  # [B]
        ratio = torch.exp(seq).unsqueeze(1).expand_as(log_ratio)  # [B, T], one value per row
    else:
        raise ValueError(f"importance_sampling_level must be token or sequence, got {importance_sampling_level!r}")
    clipped = torch.clamp(ratio, 1.0 - epsilon_low, 1.0 + epsilon_high)  # [B, T]
    per_token = -torch.min(ratio * adv, clipped * adv)  # [B, T]
    kl = None
    if beta != 0.0:
        if ref_logps is None:
            raise ValueError("ref_logps is required when beta > 0")
        delta = ref_logps.detach() - logps  # [B, T]
        kl = torch.exp(delta) - delta - 1.0  # [B, T], k3 >= 0
        per_token = per_token + beta * kl

    batch = logps.shape[0]
    seqs = batch if num_sequences is None else num_sequences
    active = int(mask.sum().item())
    tokens = active if num_tokens is None else num_tokens
    if loss_type == "grpo":
        per_seq = (per_token * maskf).sum(-1) / maskf.sum(-1).clamp(min=1.0)  # [B]
        loss = per_seq.sum() / max(seqs, 1)
    elif loss_type == "dapo":
        loss = (per_token * maskf).sum() / max(tokens, 1)
    elif loss_type == "bnpo":
        loss = (per_token * maskf).sum() / maskf.sum().clamp(min=1.0) / max(num_micro_batches, 1)
    elif loss_type == "dr_grpo":
        if not max_completion_length:
            raise ValueError("loss_type 'dr_grpo' needs max_completion_length")
        loss = (per_token * maskf).sum() / (max(seqs, 1) * max_completion_length)
    else:
        raise ValueError(f"loss_type must be grpo, bnpo, dapo or dr_grpo, got {loss_type!r}")

    with torch.no_grad():
        low = (ratio < 1.0 - epsilon_low) & (adv < 0)  # [B, T]
        high = (ratio > 1.0 + epsilon_high) & (adv > 0)  # [B, T]
        # GSPO: one ratio per sequence, so the clip metrics count sequences (as TRL's do).
        clip_mask = mask if importance_sampling_level == "token" else (mask & (mask.cumsum(-1) == 1))
        metrics = {
            "clip_ratio/low_mean": masked_mean(low.float(), clip_mask),
            "clip_ratio/high_mean": masked_mean(high.float(), clip_mask),
            "clip_ratio": masked_mean((low | high).float(), clip_mask),
        }
        if kl is not None:
            metrics["kl"] = masked_mean(kl, mask)
        if entropy is not None:
            metrics["entropy"] = masked_mean(entropy.float(), mask)
    return GRPOLossOutput(loss, metrics, active)


def masked_mean(values: Tensor, mask: Tensor) -> float:
    """Mean of `values` [B, T] over the True entries of `mask` [B, T] (0.0 when there are none)."""
    count = mask.sum()
    if count == 0:
        return 0.0
    return float((values * mask.to(values.dtype)).sum() / count)


def reward_metrics(rewards: Tensor, zero_std: Tensor) -> dict[str, float]:
    """TRL's reward metrics of one generation batch: reward, reward_std, frac_reward_zero_std."""
    rewards = rewards.float()
    return {
        "reward": float(rewards.mean()),
        "reward_std": float(rewards.std()) if rewards.numel() > 1 else 0.0,
        "frac_reward_zero_std": float(zero_std.float().mean()),
    }


def length_metrics(lengths: Tensor, truncated: Tensor) -> dict[str, float]:
    """TRL's completion metrics: completions/mean_length (tokens), completions/clipped_ratio (truncated)."""
    return {
        "completions/mean_length": float(lengths.float().mean()),
        "completions/min_length": float(lengths.min()),
        "completions/max_length": float(lengths.max()),
        "completions/clipped_ratio": float(truncated.float().mean()),
    }
