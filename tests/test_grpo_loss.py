"""The GRPO objective against numbers worked out by hand (not by calling the code under test)."""

from __future__ import annotations

import math

import pytest
import torch

from rungs.errors import UserError
from rungs.train.grpo_config import GRPOConfig
from rungs.train.grpo_loss import completion_mask, group_advantages, grpo_loss, length_metrics, reward_metrics

LN = math.log


# -- advantages -----------------------------------------------------------------------------------

def test_group_advantages_by_hand():
    # Two groups of G=2: [1, 0] (informative) and [0, 0] (all equal).
    rewards = torch.tensor([1.0, 0.0, 0.0, 0.0])
    # group: mean .5, unbiased std sqrt((.25 + .25) / 1) = sqrt(.5)
    s = math.sqrt(0.5)
    adv = group_advantages(rewards, 2, "group")
    assert adv.advantages.tolist() == pytest.approx([0.5 / (s + 1e-4), -0.5 / (s + 1e-4), 0.0, 0.0])
    assert adv.zero_std.tolist() == [False, False, True, True]
    # batch: same group means; std of [1, 0, 0, 0] = sqrt(((.75)^2 + 3 * (.25)^2) / 3) = .5
    adv = group_advantages(rewards, 2, "batch")
    assert adv.advantages.tolist() == pytest.approx([0.5 / 0.5001, -0.5 / 0.5001, 0.0, 0.0])
    assert adv.zero_std.tolist() == [False, False, True, True]  # still a per-group property
    # none (Dr. GRPO): just centred
    adv = group_advantages(rewards, 2, "none")
    assert adv.advantages.tolist() == pytest.approx([0.5, -0.5, 0.0, 0.0])


def test_group_advantages_three_samples():
    # G=3, rewards [2, 1, 0]: mean 1, unbiased std 1 -> A = [1, 0, -1] / (1 + 1e-4)
    adv = group_advantages(torch.tensor([2.0, 1.0, 0.0]), 3, "group").advantages
    assert adv.tolist() == pytest.approx([1 / 1.0001, 0.0, -1 / 1.0001])
    with pytest.raises(ValueError):
        group_advantages(torch.tensor([1.0, 0.0, 1.0]), 2)


# -- the surrogate ----------------------------------------------------------------------------------
# Row 0 (A = +1): ratios [1, 1.5, 0.5]; row 1 (A = -1): ratios [0.5, 1.5, <masked: 10>].
# eps_low = 0.2, eps_high = 0.28, so clip(r) is in [0.8, 1.28]. Per-token -min(r*A, clip(r)*A):
#   row 0: r=1 -> -1; r=1.5 -> -min(1.5, 1.28) = -1.28 (high-clipped); r=0.5 -> -min(0.5, 0.8) = -0.5
#   row 1: r=0.5 -> -min(-0.5, -0.8) = 0.8 (low-clipped); r=1.5 -> -min(-1.5, -1.28) = 1.5
ROW0 = [-1.0, -1.28, -0.5]
ROW1 = [0.8, 1.5]


def _example():
    old = torch.zeros(2, 3)
    new = torch.tensor([[0.0, LN(1.5), LN(0.5)], [LN(0.5), LN(1.5), LN(10.0)]], requires_grad=True)
    mask = torch.tensor([[True, True, True], [True, True, False]])
    adv = torch.tensor([1.0, -1.0])
    return new, old, adv, mask


def _loss(loss_type, **kw):
    new, old, adv, mask = _example()
    return grpo_loss(new, old, adv, mask, epsilon_low=0.2, epsilon_high=0.28, loss_type=loss_type,
                     max_completion_length=4, **kw)


def test_loss_types_by_hand():
    seq_means = [sum(ROW0) / 3, sum(ROW1) / 2]  # -0.92667, 1.15
    assert _loss("grpo").loss.item() == pytest.approx(sum(seq_means) / 2)  # 0.111667
    assert _loss("dapo").loss.item() == pytest.approx((sum(ROW0) + sum(ROW1)) / 5)  # -0.096
    assert _loss("dr_grpo").loss.item() == pytest.approx((sum(ROW0) + sum(ROW1)) / (2 * 4))  # -0.06
    with pytest.raises(ValueError):
        _loss("ppo")


def test_clip_metrics_by_hand():
    m = _loss("dapo").metrics
    assert m["clip_ratio/high_mean"] == pytest.approx(1 / 5)  # row 0, r=1.5, A>0
    assert m["clip_ratio/low_mean"] == pytest.approx(1 / 5)  # row 1, r=0.5, A<0
    assert m["clip_ratio"] == pytest.approx(2 / 5)
    assert "kl" not in m  # beta = 0: no reference, no KL


def test_clipped_tokens_get_no_gradient():
    new, old, adv, mask = _example()
    out = grpo_loss(new, old, adv, mask, epsilon_low=0.2, epsilon_high=0.28, loss_type="dapo")
    out.loss.backward()
    g = new.grad
    # d/dlogp of -r*A/N = -A*r/N where the unclipped branch is the min; 0 where the clip is active.
    assert g[0].tolist() == pytest.approx([-1.0 / 5, 0.0, -0.5 / 5])
    assert g[1].tolist() == pytest.approx([0.0, 1.5 / 5, 0.0])  # r=0.5 low-clipped; token 3 masked


def test_kl_k3_by_hand():
    new, old, adv, mask = _example()
    # ref - new: row 0 [0, ln 2, -ln 2], row 1 [ln 2, 0, 5 (masked)]
    d = torch.tensor([[0.0, LN(2), -LN(2)], [LN(2), 0.0, 5.0]])
    ref = new.detach() + d
    # k3 = e^d - d - 1: 0, 1 - ln2, 0.5 + ln2 - 1, 1 - ln2, 0
    kl = [0.0, 1 - LN(2), LN(2) - 0.5, 1 - LN(2), 0.0]
    out = grpo_loss(new, old, adv, mask, ref, epsilon_low=0.2, epsilon_high=0.28, beta=0.1, loss_type="dapo")
    assert out.metrics["kl"] == pytest.approx(sum(kl) / 5)
    assert out.loss.item() == pytest.approx((sum(ROW0) + sum(ROW1) + 0.1 * sum(kl)) / 5)
    with pytest.raises(ValueError):
        grpo_loss(new, old, adv, mask, None, beta=0.1)


def test_on_policy_gradient_is_the_policy_gradient():
    # old = new.detach(): rho == 1 everywhere, and the gradient is -A / N per token (dapo).
    new = torch.tensor([[-1.0, -2.0], [-0.5, -0.1]], requires_grad=True)
    mask = torch.tensor([[True, True], [True, False]])
    adv = torch.tensor([2.0, -1.0])
    out = grpo_loss(new, new.detach(), adv, mask, loss_type="dapo")
    assert out.loss.item() == pytest.approx(-(2 + 2 - 1) / 3)
    out.loss.backward()
    assert new.grad.flatten().tolist() == pytest.approx([-2 / 3, -2 / 3, 1 / 3, 0.0])
    assert out.metrics["clip_ratio"] == 0.0


def test_zero_variance_group_carries_no_signal():
    adv = group_advantages(torch.tensor([1.0, 1.0, 0.0, 0.0]), 2).advantages
    assert adv.tolist() == [0.0, 0.0, 0.0, 0.0]
    new = torch.randn(4, 3, requires_grad=True)
    out = grpo_loss(new, new.detach() + 0.3, adv, torch.ones(4, 3, dtype=torch.bool), loss_type="grpo")
    out.loss.backward()
    assert out.loss.item() == 0.0
    assert torch.count_nonzero(new.grad) == 0


def test_truncated_completions_masked():
    new, old, adv, mask = _example()
    loss_mask = completion_mask(mask, torch.tensor([False, True]), True)
    assert loss_mask.tolist() == [[True, True, True], [False, False, False]]
    assert completion_mask(mask, torch.tensor([False, True]), False).tolist() == mask.tolist()
    out = grpo_loss(new, old, adv, loss_mask, epsilon_low=0.2, epsilon_high=0.28, loss_type="dapo")
    assert out.loss.item() == pytest.approx(sum(ROW0) / 3)
    assert out.num_tokens == 3
    # grpo keeps the masked row in the sequence count (as TRL does): (mean(row 0) + 0) / 2
    out = grpo_loss(new, old, adv, loss_mask, epsilon_low=0.2, epsilon_high=0.28, loss_type="grpo")
    assert out.loss.item() == pytest.approx(sum(ROW0) / 3 / 2)


@pytest.mark.parametrize("loss_type", ["grpo", "dapo", "dr_grpo"])
def test_micro_batches_add_up_to_the_batch(loss_type):
    torch.manual_seed(0)
    new = torch.randn(4, 5)
    old = new + 0.3 * torch.randn(4, 5)
    mask = torch.rand(4, 5) > 0.3
    adv = torch.randn(4)
    kw = dict(epsilon_low=0.2, epsilon_high=0.28, loss_type=loss_type, max_completion_length=5)
    whole = grpo_loss(new, old, adv, mask, **kw).loss
    n_tokens = int(mask.sum())
    parts = sum(grpo_loss(new[r], old[r], adv[r], mask[r], num_sequences=4, num_tokens=n_tokens, **kw).loss
                for r in (slice(0, 1), slice(1, 4)))
    assert parts.item() == pytest.approx(whole.item(), abs=1e-6)


def test_batch_metrics():
    rewards = torch.tensor([1.0, 0.0, 1.0, 1.0])
    zero = group_advantages(rewards, 2).zero_std
    m = reward_metrics(rewards, zero)
    assert m["reward"] == 0.75
    assert m["reward_std"] == pytest.approx(0.5)  # unbiased std of [1, 0, 1, 1]
    assert m["frac_reward_zero_std"] == 0.5
    m = length_metrics(torch.tensor([3, 5]), torch.tensor([False, True]))
    assert m["completions/mean_length"] == 4.0 and m["completions/clipped_ratio"] == 0.5


# -- config validation --------------------------------------------------------------------------------

@pytest.mark.parametrize("field,value", [
    ("loss_type", "ppo"), ("scale_rewards", "yes"), ("dynamic_sampling", "on"), ("num_generations", 1),
    ("epsilon", 1.5), ("top_p", 0.0), ("max_steps", 0), ("learning_rate", -1.0), ("steps_per_generation", 3),
])
def test_config_validation_names_the_field(field, value):
    with pytest.raises(UserError, match=f"GRPOConfig.{field}"):
        GRPOConfig(**{field: value})


def test_config_derived_sizes():
    cfg = GRPOConfig(prompts_per_step=4, num_generations=4, steps_per_generation=2, per_device_train_batch_size=4)
    assert (cfg.generation_batch_size, cfg.mini_batch_size, cfg.micro_batch_size) == (16, 8, 4)
    assert cfg.epsilon_upper == 0.2 and GRPOConfig(epsilon_high=0.28).epsilon_upper == 0.28
    assert GRPOConfig(prompts_per_step=3, num_train_epochs=2).total_steps(10) == 7
    with pytest.raises(UserError, match="per_device_train_batch_size"):
        GRPOConfig(prompts_per_step=4, num_generations=4, per_device_train_batch_size=3)


def test_per_device_train_batch_size_help_says_it_only_micro_batches():
    """Its help says what it does in rungs (the passes gradients are accumulated over), and that the
    completions per step come from prompts_per_step x num_generations, not from it as in TRL."""
    import dataclasses

    help_text = {f.name: f.metadata["help"] for f in dataclasses.fields(GRPOConfig)}["per_device_train_batch_size"]
    assert "TRL's meaning" not in help_text
    assert help_text.startswith("micro-batching only: completions per forward/backward pass")
    assert "accumulated" in help_text and "a step has prompts_per_step x num_generations completions" in help_text
