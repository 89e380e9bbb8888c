"""Advantage estimators by name (`GRPOConfig.advantage_estimator`, veRL's `algorithm.adv_estimator`).

An estimator maps the rewards of one step, laid out group by group, to one advantage per
completion: `fn(rewards [B], num_generations, scale_rewards) -> Advantages`. A new one is a small
file and a line here (rloo.py is the example).

    grpo  (r_i - mean(group)) / (std + 1e-4)      Shao et al. 2024; see grpo_loss.group_advantages
    rloo  r_i - mean of the other G-1 rewards     Ahmadian et al. 2024; see rloo.py
    psr   max(0, grpo advantage)                  Zhu et al. 2025, positive samples only; see psr.py
    nsr   min(0, grpo advantage)                  Zhu et al. 2025, negative samples only; see psr.py
"""

from __future__ import annotations

from typing import Any

from rungs.registry import Registry

ADVANTAGES: Registry[Any] = Registry("advantage estimator")
ADVANTAGES.register("grpo", "rungs.train.grpo_loss:group_advantages")
ADVANTAGES.register("rloo", "rungs.train.rloo:rloo_advantages")
ADVANTAGES.register("psr", "rungs.train.psr:psr_advantages")
ADVANTAGES.register("nsr", "rungs.train.psr:nsr_advantages")
