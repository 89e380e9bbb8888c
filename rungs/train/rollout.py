"""Rollouts: which problems a step draws, how their groups are sampled and scored, DAPO's dynamic sampling.

The first half of a GRPO step, kept apart from the update (train/grpo.py) so that a new reward
or a new algorithm touches one file. One generation round (`Rollouts.generate`):

1. `policy.generate(prompts, n=num_generations)` with a seed derived from (seed, step, attempt);
2. verdicts from the sandboxed `VerifierPool` (a hung or crashed verifier zeroes only its own
   rollout; an unlabelled problem of a task that needs labels is not sent at all: its verdict is
   `Status.UNLABELLED`, which only the `verifier` reward would read);
3. the `reward` (rungs/rewards: one or several, weighted) scores the whole batch, group by group.

`Rollouts.collect` repeats rounds for DAPO's dynamic sampling: `filter` drops groups whose
rewards are all equal, `resample` draws new problems until `prompts_per_step` informative groups
are found or `dynamic_sampling_max_tries` extra rounds are spent.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, Protocol

import torch

from rungs.errors import UserError
from rungs.policies.base import Policy, SamplingParams
from rungs.rewards.base import Reward, RewardBatch
from rungs.rewards.format import format_reward
from rungs.tasks.base import Task
from rungs.train.grpo_config import GRPOConfig
from rungs.types import Completion, Problem, Status, Verdict

# -- problem samplers ---------------------------------------------------------------------------


class ProblemSampler(Protocol):
    """Where a trainer's problems come from. LADDER passes curricula (easiest-first orderings).

    `state_dict` must be small and JSON-serialisable: it is stored in every checkpoint so that a
    resumed run draws exactly the problems an uninterrupted one would have.
    """

    def sample(self, k: int) -> list[Problem]: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class EpochSampler:
    """Every problem once per epoch, in a seeded shuffle per epoch, or in the given order
    (`shuffle=False`: a curriculum ordering, cycled). The state is (epoch, position)."""

    def __init__(self, problems: Sequence[Problem], seed: int = 0, shuffle: bool = True) -> None:
        if not problems:
            raise UserError("no problems to train on; expected at least one problem")
        self.problems = list(problems)
        self.seed = seed
        self.shuffle = shuffle
        self.epoch = 0
        self.position = 0
        self._order = self._make_order()

    def __len__(self) -> int:
        return len(self.problems)

    def _make_order(self) -> list[int]:
        order = list(range(len(self.problems)))
        if self.shuffle:
            random.Random(f"{self.seed}:{self.epoch}").shuffle(order)
        return order

    def sample(self, k: int) -> list[Problem]:
        out = []
        while len(out) < k:
            if self.position >= len(self._order):
                self.epoch += 1
                self.position = 0
                self._order = self._make_order()
            out.append(self.problems[self._order[self.position]])
            self.position += 1
        return out

    @property
    def epochs_done(self) -> float:
        return self.epoch + self.position / len(self.problems)

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "position": self.position, "num_problems": len(self.problems)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("num_problems", len(self.problems)) != len(self.problems):
            raise UserError(f"the checkpoint was trained on {state['num_problems']} problems, "
                            f"but {len(self.problems)} were given; resume with the same problem file")
        self.epoch, self.position = int(state["epoch"]), int(state["position"])
        self._order = self._make_order()


def derive_seed(*parts: Any) -> int:
    """A 63-bit seed from any parts, stable across processes and Python versions."""
    digest = hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


# -- the rollout batch -------------------------------------------------------------------------------


class Batch(NamedTuple):
    """One step's scored samples, flattened group by group (B = groups * G)."""

    problems: list[Problem]  # [B] (each problem repeated G times)
    prompt_ids: list[list[int]]  # [B]
    completions: list[Completion]  # [B]
    verdicts: list[Verdict]  # [B]
    rewards: torch.Tensor  # [B] float: the (combined) reward
    format_rewards: torch.Tensor  # [B] float: LADDER's format term, logged whatever the reward
    reward_metrics: list[tuple[int, dict[str, float]]] = []  # (rows, metrics) of each scoring call
    signals: torch.Tensor | None = None  # [B] the reward without shaping terms (DAPO's filter judges it)

    @property
    def signal(self) -> torch.Tensor:
        """[B] what carries task signal: `signals`, or the rewards when the reward gave none."""
        return self.rewards if self.signals is None else self.signals


def concat(batches: list[Batch]) -> Batch:
    """The batches one after another (groups stay whole)."""
    if len(batches) == 1:
        return batches[0]
    return Batch(
        [p for b in batches for p in b.problems], [x for b in batches for x in b.prompt_ids],
        [c for b in batches for c in b.completions], [v for b in batches for v in b.verdicts],
        torch.cat([b.rewards for b in batches]), torch.cat([b.format_rewards for b in batches]),
        [m for b in batches for m in b.reward_metrics], torch.cat([b.signal for b in batches]))


def select(batch: Batch, rows: list[int]) -> Batch:
    """The rows `rows` of `batch` (reward metrics stay those of the whole batch)."""
    index = torch.tensor(rows, dtype=torch.long)
    return Batch([batch.problems[i] for i in rows], [batch.prompt_ids[i] for i in rows],
                 [batch.completions[i] for i in rows], [batch.verdicts[i] for i in rows],
                 batch.rewards[index], batch.format_rewards[index], batch.reward_metrics, batch.signal[index])


def merged_reward_metrics(batch: Batch) -> dict[str, float]:
    """The reward's metrics over every scoring call of a step, each weighted by its rows; counts of
    compute (`tokens/...`, such as majority vote's extra samples) are summed over the calls."""
    sums: dict[str, float] = {}
    weights: dict[str, int] = {}
    for rows, metrics in batch.reward_metrics:
        for key, value in metrics.items():
            total = key.startswith("tokens/")
            sums[key] = sums.get(key, 0.0) + (value if total else value * rows)
            weights[key] = weights.get(key, 0) + rows
    return {key: sums[key] if key.startswith("tokens/") else sums[key] / max(weights[key], 1) for key in sums}


def zero_std_groups(rewards: torch.Tensor, num_generations: int) -> torch.Tensor:
    """[groups] bool: the group's rewards are (numerically) all equal -- no signal for GRPO."""
    grouped = rewards.float().view(-1, num_generations)  # [N, G]
    std = grouped.std(dim=1)  # [N], unbiased as in TRL
    return torch.isclose(std, torch.zeros_like(std))


# -- sampling and scoring -------------------------------------------------------------------------------


class Rollouts:
    """Samples and scores groups for a trainer (see the module docstring).

    policy, task, config: as the trainer's; pool: a zero-argument callable returning the verifier
    pool (built lazily); reward: the `Reward` that scores each batch.
    """

    def __init__(self, policy: Policy, task: Task, config: GRPOConfig, pool: Callable[[], Any], reward: Reward) -> None:
        self.policy = policy
        self.task = task
        self.config = config
        self._pool = pool
        self.reward = reward

    def sampling(self, step: int, attempt: int) -> SamplingParams:
        """The training rollouts' sampling settings; the seed depends on (seed, step, attempt) only."""
        cfg = self.config
        return SamplingParams(temperature=cfg.temperature, top_k=cfg.top_k, top_p=cfg.top_p,
                              max_new_tokens=cfg.max_completion_length,
                              seed=derive_seed(cfg.seed, "rollout", step, attempt))

    def verify(self, problems: list[Problem], completions: list[Completion]) -> list[Verdict]:
        """Verdicts through the sandboxed pool; unlabelled problems of a task that needs labels are
        not sent (their verdict says so)."""
        if self.task.needs_answer:
            todo = [i for i, p in enumerate(problems) if p.answer is not None]
        else:
            todo = list(range(len(problems)))
        verdicts: list[Verdict] = [Verdict.fail(Status.UNLABELLED, "no reference answer: not verified")] * len(problems)
        if todo:
            checked = self._pool().verify([problems[i] for i in todo], [completions[i].text for i in todo])
            for i, v in zip(todo, checked):
                verdicts[i] = v
        return verdicts

    def score(self, problems: list[Problem], prompt_ids: list[list[int]], completions: list[Completion],
              num_generations: int, seed: int, timings: dict[str, float] | None = None) -> Batch:
        """Verify and reward already-sampled completions (rows group by group)."""
        t0 = time.perf_counter()
        verdicts = self.verify(problems, completions)
        t1 = time.perf_counter()
        out = self.reward.score(RewardBatch(problems, completions, verdicts, prompt_ids, num_generations, seed))
        fmt = torch.tensor([format_reward(c.text) for c in completions], dtype=torch.float32)  # [B]
        if timings is not None:
            timings["time/verify"] = timings.get("time/verify", 0.0) + t1 - t0
            timings["time/reward"] = timings.get("time/reward", 0.0) + time.perf_counter() - t1
        rewards = torch.as_tensor(out.rewards, dtype=torch.float32).reshape(-1)
        signal = None if out.signal is None else torch.as_tensor(out.signal, dtype=torch.float32).reshape(-1)
        return Batch(problems, prompt_ids, completions, verdicts, rewards, fmt, [(len(completions), dict(out.metrics))],
                     signal)

    def generate(self, problems: list[Problem], step: int, attempt: int = 0,
                 timings: dict[str, float] | None = None) -> Batch:
        """Sample `num_generations` completions per problem and score them."""
        G = self.config.num_generations
        prompts = [self.task.prompt(p, self.policy.prompt_style) for p in problems]
        t0 = time.perf_counter()
        self.policy.eval()  # safe: nn.Module/Policy.eval(), inference mode; not Python's eval
        with torch.no_grad():
            groups = self.policy.generate(prompts, n=G, sampling=self.sampling(step, attempt))
        if timings is not None:
            timings["time/generate"] = timings.get("time/generate", 0.0) + time.perf_counter() - t0
        prompt_ids = self.policy.encode_prompts(prompts)
        flat_problems = [p for p in problems for _ in range(G)]
        flat_prompt_ids = [ids for ids in prompt_ids for _ in range(G)]
        completions = [c for group in groups for c in group]
        if len(completions) != len(flat_problems):
            raise RuntimeError(f"policy {self.policy.name!r} returned {len(completions)} completions, "
                               f"expected {len(problems)} x {G}")
        seed = derive_seed(self.config.seed, "reward", step, attempt)
        return self.score(flat_problems, flat_prompt_ids, completions, G, seed, timings)

    def collect(self, sampler: Any, step: int, timings: dict[str, float]) -> tuple[Batch, Batch]:
        """(every generated sample, the samples to learn from) for the step after `step` steps
        done, with `dynamic_sampling` applied. A sampler with `observe` (the solve-rate curriculum)
        is told what each round solved before it draws the next. Groups count as informative by
        their reward *without* shaping terms (`Batch.signal`), as DAPO filters on accuracy."""
        cfg = self.config
        G = cfg.num_generations
        generated = [self._observed(sampler, self.generate(sampler.sample(cfg.prompts_per_step), step, 0, timings))]
        if cfg.dynamic_sampling == "resample":
            for attempt in range(1, cfg.dynamic_sampling_max_tries + 1):
                informative = int((~zero_std_groups(concat(generated).signal, G)).sum())
                if informative >= cfg.prompts_per_step:
                    break
                generated.append(self._observed(
                    sampler, self.generate(sampler.sample(cfg.prompts_per_step), step, attempt, timings)))
        everything = concat(generated)
        if cfg.dynamic_sampling == "off":
            return everything, everything
        zero = zero_std_groups(everything.signal, G)  # [groups]
        groups = [g for g in range(len(zero)) if not zero[g]][: cfg.prompts_per_step]
        return everything, select(everything, [g * G + j for g in groups for j in range(G)])

    @staticmethod
    def _observed(sampler: Any, batch: Batch) -> Batch:
        """Tell a sampler that tracks solve rates (a `SolveRateCurriculum`) what this round solved.

        "Solved" is what the run is rewarded for, not the verifier's truth: the reward without its
        shaping terms is above 0.5 (the verifier reward: right answers; a vote: agreeing with the
        majority; a control: its own coin), so a label-free or control run never sees a label
        through its curriculum."""
        observe = getattr(sampler, "observe", None)
        if observe is not None:
            observe(batch.problems, (batch.signal > 0.5).tolist())
        return batch
