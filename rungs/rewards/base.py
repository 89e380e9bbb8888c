"""The reward interface: a batch of rollouts, grouped by prompt, in; one reward per rollout out.

Why a batch and not one completion at a time: the label-free signals researchers compare are
often group-level (TTRL's majority vote needs every sample of a prompt at once) or need the
policy's own distribution (self-certainty, entropy), which is cheapest scored in one pass. So a
`Reward` sees a whole `RewardBatch` (B = groups * G rollouts, laid out group by group, as the
trainer samples them) and returns a `RewardOutput`: rewards [B] plus named metrics.

Several rewards combine as TRL combines `reward_funcs` with `reward_weights`:

    total_i = sum_k  w_k * r_k,i

and each reward's unweighted mean and std are logged as `rewards/<name>/mean` and `/std`
(TRL's names). A reward that raises scores 0 for the whole batch, and the failure is logged
(`rewards/<name>/failed` = 1 and a warning), as `verifiers` does: the run never dies of it.
A reward may mark rows `void` (the verifier timed out or crashed on them): such a rollout gets
no reward at all from the combination, format term included -- the trainer's behaviour since
its first version.
"""

from __future__ import annotations

import abc
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import torch

from rungs.errors import UserError
from rungs.policies.base import Policy, SamplingParams
from rungs.tasks.base import Task
from rungs.types import Completion, Problem, Verdict

log = logging.getLogger("rungs.rewards")


@dataclass
class RewardContext:
    """What a reward may need besides the rollouts, given once when it is built.

    task:     the task (answer extraction, answer equivalence for votes)
    policy:   the policy being trained (self-certainty, entropy, extra vote samples); may be None
              for rewards that do not need it
    pool:     a zero-argument callable returning the sandboxed `VerifierPool` (built lazily)
    sampling: the training rollouts' sampling settings (extra vote samples are drawn alike)
    micro_batch_size: completions per forward pass when a reward scores with the policy
    """

    task: Task
    policy: Policy | None = None
    pool: Any = None
    sampling: SamplingParams | None = None
    micro_batch_size: int = 64

    def get_pool(self) -> Any:
        if self.pool is None:
            raise RuntimeError("this reward needs a verifier pool, but none was given")
        return self.pool() if callable(self.pool) and not hasattr(self.pool, "verify") else self.pool

    def need_policy(self, reward: str) -> Policy:
        if self.policy is None:
            raise UserError(f"reward {reward!r} needs the policy being trained, but none was given")
        return self.policy


@dataclass
class RewardBatch:
    """One step's rollouts, group by group (B = groups * num_generations).

    problems, completions, verdicts, prompt_ids: [B] each (a problem repeated G times).
    verdicts: the task verifier's judgement of each completion; for an unlabelled problem of a
              task that needs labels, a `Status.UNLABELLED` verdict that no reward should trust.
    seed:     a seed for this batch, derived by the trainer from (run seed, step): rewards that
              draw random numbers (the random control, extra vote samples) use it, so a resumed
              run draws the same.
    """

    problems: list[Problem]
    completions: list[Completion]
    verdicts: list[Verdict]
    prompt_ids: list[list[int]]
    num_generations: int
    seed: int = 0

    def __len__(self) -> int:
        return len(self.completions)

    def groups(self) -> list[list[int]]:
        """Row indices of each group of rollouts of one prompt: [[0..G-1], [G..2G-1], ...]."""
        G = self.num_generations
        return [list(range(s, min(s + G, len(self)))) for s in range(0, len(self), G)]


class RewardOutput(NamedTuple):
    """rewards [B] float32; metrics by name (logged as they are); void [B] bool or None: rows
    that must get no reward at all from a combination (a failed verification); signal [B] or None:
    the reward without its shaping terms (what DAPO's zero-variance filter judges; None = rewards)."""

    rewards: torch.Tensor
    metrics: dict[str, float] = {}
    void: torch.Tensor | None = None
    signal: torch.Tensor | None = None


class Reward(abc.ABC):
    """A reward: scores a `RewardBatch`. Subclasses name the paper they follow in their docstring.

    `shaping = True` marks a shaping term (LADDER's format term): its variance alone is no task
    signal, so DAPO's zero-variance filter leaves it out (a group whose answers are all wrong and
    one malformed has format variance only; group scaling would blow its 0.1 up to order one).

    `from_spec(context, arg)` builds one from a spec 'name' or 'name:arg' (see `build_reward`).
    """

    name: ClassVar[str] = ""
    shaping: ClassVar[bool] = False

    def __init__(self, context: RewardContext) -> None:
        self.context = context

    @classmethod
    def from_spec(cls, context: RewardContext, arg: str | None = None) -> Reward:
        if arg:
            raise UserError(f"reward {cls.name!r} takes no argument, got {cls.name}:{arg}")
        return cls(context)

    @abc.abstractmethod
    def score(self, batch: RewardBatch) -> RewardOutput:
        """Rewards [B] for the rollouts of `batch`, and any metrics of its own."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release anything the reward holds."""


def per_reward_metrics(name: str, rewards: torch.Tensor) -> dict[str, float]:
    """TRL's per-reward metrics: rewards/<name>/mean and rewards/<name>/std (unbiased), unweighted."""
    rewards = rewards.float()
    std = float(rewards.std()) if rewards.numel() > 1 else 0.0
    return {f"rewards/{name}/mean": float(rewards.mean()) if rewards.numel() else 0.0, f"rewards/{name}/std": std}


class CombinedReward(Reward):
    """Weighted sum of rewards (TRL's reward_funcs / reward_weights); see the module docstring."""

    name = "combined"

    def __init__(self, rewards: Sequence[Reward], weights: Sequence[float], names: Sequence[str] | None = None) -> None:
        if not rewards:
            raise UserError("no rewards given; expected at least one, e.g. verifier")
        if len(weights) != len(rewards):
            raise UserError(f"{len(rewards)} rewards but {len(weights)} reward weights; give one weight per reward")
        for w in weights:
            if not math.isfinite(w):
                raise UserError(f"reward weight {w!r}: expected a finite number")
        self.rewards = list(rewards)
        self.weights = [float(w) for w in weights]
        self.names = list(names) if names is not None else [r.name for r in rewards]
        if len(set(self.names)) != len(self.names):
            raise UserError(f"reward given twice in {','.join(self.names)}; give each reward once")
        self.context = rewards[0].context

    def score(self, batch: RewardBatch) -> RewardOutput:
        B = len(batch)
        total = torch.zeros(B, dtype=torch.float32)
        signal = torch.zeros(B, dtype=torch.float32)  # the same sum without shaping terms
        void = torch.zeros(B, dtype=torch.bool)
        metrics: dict[str, float] = {}
        for name, reward, weight in zip(self.names, self.rewards, self.weights):
            try:
                out = reward.score(batch)
                values = torch.as_tensor(out.rewards, dtype=torch.float32).reshape(-1)
                if values.numel() != B:
                    raise ValueError(f"returned {values.numel()} rewards for {B} rollouts")
                values = torch.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
            except Exception as err:  # noqa: BLE001 - a broken reward scores 0 and is logged, never kills the run
                log.warning("reward %r failed and scores 0 for this batch: %s: %s", name, type(err).__name__, err)
                metrics[f"rewards/{name}/failed"] = 1.0
                values, out = torch.zeros(B), RewardOutput(torch.zeros(B))
            metrics.update(per_reward_metrics(name, values))
            metrics.update(out.metrics)
            if out.void is not None:
                void |= torch.as_tensor(out.void, dtype=torch.bool).reshape(-1)
            total += weight * values
            if not reward.shaping:
                signal += weight * values
        total = torch.where(void, torch.zeros_like(total), total)
        signal = torch.where(void, torch.zeros_like(signal), signal)
        return RewardOutput(total, metrics, void, signal)

    def close(self) -> None:
        for r in self.rewards:
            r.close()


def parse_weights(text: str | Sequence[float] | None) -> list[float] | None:
    """'1,0.1' or [1, 0.1] -> [1.0, 0.1]; None stays None. Bad text is a UserError naming it."""
    if text is None:
        return None
    items = text.split(",") if isinstance(text, str) else list(text)
    try:
        return [float(x) for x in items if not (isinstance(x, str) and not x.strip())]
    except (TypeError, ValueError):
        raise UserError(f"reward weights {text!r}: expected numbers separated by commas, e.g. 1,0.1") from None
