"""The GRPO trainer: sample a group per problem, verify, compute advantages, update. Resumable.

Why it is one readable loop rather than a subclass of a framework trainer: every policy rungs
supports (the embedded tiny model, HF models with or without LoRA) is reached through the small
`Policy` interface, rewards come from sandboxed verifiers, and a run must survive kill -9 at any
moment and continue bit for bit. One step, top to bottom (`GRPOTrainer.step`):

1. draw `prompts_per_step` problems from the sampler (seeded; its state is checkpointed, so a
   curriculum passed in as an ordering resumes where it stopped);
2. `policy.generate(prompts, n=num_generations)` with a seed derived from (seed, step);
3. verdicts from the `VerifierPool` (a hung or crashed verifier zeroes only its own rollout),
   plus `format_reward_weight` * (exactly one <answer>...</answer>);
4. group advantages; `dynamic_sampling` filters (or, DAPO-style, resamples) groups whose rewards
   are all equal;
5. `num_iterations` passes of `steps_per_generation` AdamW updates, each accumulated over
   micro-batches of `per_device_train_batch_size` completions, with `grpo_loss`. When the data
   is exactly on-policy (mu = 1, one update per batch) the old log-probs are the current ones
   detached (rho == 1, the gradient is the policy gradient); otherwise they are computed once,
   without grad, before the first update;
6. one line of metrics (TRL's names) to events.jsonl, the rollouts to rollouts.jsonl, periodic
   greedy evaluation, and an atomic checkpoint every `save_steps`.

    trainer = GRPOTrainer(policy, task, GRPOConfig(max_steps=100), pool, run_dir=RunDir.create("runs/x"),
                          problems=problems, eval_problems=held_out)
    summary = trainer.train()                       # or trainer.train(resume_from_checkpoint=True)
    trainer.train_steps(10)                         # test-time RL: K more steps, then roll back

Bench hooks: every event carries time/generate, time/verify, time/update (seconds) and
tokens/generated, and `callbacks` (objects with any of on_step_end, on_evaluate, on_save,
on_train_end) see each step as it happens.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import random
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import torch

from rungs.errors import UserError
from rungs.policies.base import Policy, SamplingParams
from rungs.runs import RunDir
from rungs.tasks.base import Task
from rungs.train.grpo_config import GRPOConfig
from rungs.train.grpo_loss import completion_mask, group_advantages, grpo_loss, length_metrics, reward_metrics
from rungs.types import Completion, Problem, Status, Verdict
from rungs.verify.extract import ANSWER_CLOSE, ANSWER_OPEN

DEFAULT_LEARNING_RATE = 1e-6  # TRL's default, used when the policy does not name its own
STATE_FILE = "trainer_state.json"
TENSOR_STATE_FILE = "trainer_state.pt"
POLICY_DIR = "policy"
# Verdicts that say the verifier failed, not the model: such a rollout gets no reward at all.
VERIFIER_FAILURES = (Status.TIMEOUT, Status.CRASH, Status.ERROR)


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


# -- small helpers ---------------------------------------------------------------------------

def derive_seed(*parts: Any) -> int:
    """A 63-bit seed from any parts, stable across processes and Python versions."""
    digest = hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


def format_reward(text: str) -> float:
    """1.0 when the completion holds exactly one well-formed, non-empty <answer>...</answer>."""
    if text.count(ANSWER_OPEN) != 1 or text.count(ANSWER_CLOSE) != 1:
        return 0.0
    start, end = text.index(ANSWER_OPEN), text.index(ANSWER_CLOSE)
    return 1.0 if start < end and text[start + len(ANSWER_OPEN):end].strip() else 0.0


def lr_factor(step: int, total_steps: int, warmup: int, schedule: str) -> float:
    """Multiplier of the base learning rate at (0-based) `step`: linear warm-up, then the schedule."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    span = max(1, total_steps - warmup)
    progress = min(1.0, max(0.0, (step - warmup) / span))
    if schedule == "linear":
        return max(0.0, 1.0 - progress)
    return 0.5 * (1.0 + math.cos(math.pi * progress))  # cosine


def resolve_learning_rate(config: GRPOConfig, policy: Policy) -> float:
    if config.learning_rate is not None:
        return config.learning_rate
    return float(getattr(policy, "default_learning_rate", None) or DEFAULT_LEARNING_RATE)


class Batch(NamedTuple):
    """One step's verified samples, flattened group by group (B = groups * G)."""

    problems: list[Problem]  # [B] (each problem repeated G times)
    prompt_ids: list[list[int]]  # [B]
    completions: list[Completion]  # [B]
    verdicts: list[Verdict]  # [B]
    rewards: torch.Tensor  # [B] float: verifier reward + format term
    format_rewards: torch.Tensor  # [B] float


class StepResult(NamedTuple):
    step: int
    metrics: dict[str, float]


def _concat(batches: list[Batch]) -> Batch:
    if len(batches) == 1:
        return batches[0]
    return Batch(
        [p for b in batches for p in b.problems], [x for b in batches for x in b.prompt_ids],
        [c for b in batches for c in b.completions], [v for b in batches for v in b.verdicts],
        torch.cat([b.rewards for b in batches]), torch.cat([b.format_rewards for b in batches]))


def _select(batch: Batch, rows: list[int]) -> Batch:
    index = torch.tensor(rows, dtype=torch.long)
    return Batch([batch.problems[i] for i in rows], [batch.prompt_ids[i] for i in rows],
                 [batch.completions[i] for i in rows], [batch.verdicts[i] for i in rows],
                 batch.rewards[index], batch.format_rewards[index])


# -- the trainer ---------------------------------------------------------------------------------

class GRPOTrainer:
    """Group Relative Policy Optimization on a task's verifiable problems (see the module doc).

    policy:        a trainable `Policy` (weights are updated in place)
    task:          the `Task` whose prompt format and verifier define the reward
    config:        `GRPOConfig`
    pool:          a `VerifierPool` (anything with `verify(problems, completions) -> list[Verdict]`);
                   None builds one for `task` and closes it at the end of `train`
    run_dir:       a `RunDir` for events, rollouts and checkpoints; None keeps everything in memory
    problems:      the training problems, or a `ProblemSampler` (curricula); the default
                   sampler shuffles once per epoch from `config.seed`
    eval_problems: problems for greedy accuracy (eval_on_start, every eval_steps, and at the end)
    callbacks:     objects with any of on_step_end(trainer, step, metrics),
                   on_evaluate(trainer, step, metrics), on_save(trainer, step, path),
                   on_train_end(trainer, summary)
    """

    def __init__(
        self,
        policy: Policy,
        task: Task,
        config: GRPOConfig,
        pool: Any = None,
        run_dir: RunDir | None = None,
        problems: Sequence[Problem] | ProblemSampler = (),
        eval_problems: Sequence[Problem] | None = None,
        callbacks: Iterable[Any] = (),
        progress: bool = True,
    ) -> None:
        if not policy.trainable:
            raise UserError(f"policy {policy.name!r} cannot be trained (it gives no log-probs); "
                            "use a local policy: tiny or hf:MODEL")
        self.policy = policy
        self.task = task
        self.config = dataclasses.replace(config, learning_rate=resolve_learning_rate(config, policy))
        self.run_dir = run_dir
        if isinstance(problems, Sequence):
            self.sampler: Any = EpochSampler(problems, seed=self.config.seed)
        else:
            self.sampler = problems
        self.eval_problems = list(eval_problems or [])
        self.callbacks = list(callbacks)
        self.progress = progress
        self._pool = pool
        self._own_pool = pool is None
        self.step_count = 0  # steps completed
        self.history: list[dict[str, Any]] = []  # every event, as written to events.jsonl
        self._optimizer: torch.optim.Optimizer | None = None
        self._scheduler: torch.optim.lr_scheduler.LambdaLR | None = None
        self._total_steps = self._compute_total_steps()
        self._reference_set = False

    # -- setup -------------------------------------------------------------------------------------
    def _compute_total_steps(self) -> int:
        if self.config.max_steps > 0:
            return self.config.max_steps
        try:
            count = len(self.sampler)
        except TypeError:
            raise UserError("GRPOConfig.max_steps = -1 needs a problem list of known length; "
                            "set max_steps when passing a custom sampler") from None
        return self.config.total_steps(count)

    @property
    def total_steps(self) -> int:
        return self._total_steps

    @property
    def pool(self) -> Any:
        if self._pool is None:
            from rungs.verify.pool import VerifierPool

            self._pool = VerifierPool(self.task)
        return self._pool

    def _params(self) -> list[torch.nn.Parameter]:
        params = [p for p in self.policy.parameters() if p.requires_grad]
        if not params:
            raise UserError(f"policy {self.policy.name!r} has no trainable parameters")
        return params

    def _setup(self, checkpoint: Path | None = None) -> None:
        """Reference, optimizer and schedule; from `checkpoint` when resuming."""
        cfg = self.config
        if checkpoint is not None:
            initial = self.policy.snapshot() if cfg.beta > 0 else None
            self.policy.load(str(checkpoint / POLICY_DIR))  # may rebuild the modules: optimizer comes after
            if initial is not None:
                # The KL reference is the weights the run *started* from, not the checkpoint's.
                trained = self.policy.snapshot()
                self.policy.restore(initial)
                self.policy.set_reference()
                self.policy.restore(trained)
                self._reference_set = True
        if cfg.beta > 0 and not self._reference_set:
            self.policy.set_reference()
            self._reference_set = True
        self._optimizer = torch.optim.AdamW(
            self._params(), lr=cfg.learning_rate, betas=(cfg.adam_beta1, cfg.adam_beta2),
            eps=cfg.adam_epsilon, weight_decay=cfg.weight_decay)
        warmup = cfg.warmup_for(self._total_steps)
        self._scheduler = torch.optim.lr_scheduler.LambdaLR(
            self._optimizer, lambda s: lr_factor(s, self._total_steps, warmup, cfg.lr_scheduler_type))
        if checkpoint is not None:
            self._load_state(checkpoint)

    # -- checkpoints -------------------------------------------------------------------------------
    def _write_checkpoint(self, directory: Path) -> None:
        self.policy.save(str(directory / POLICY_DIR))
        rng = {"torch": torch.get_rng_state(), "python": random.getstate()}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        torch.save({"optimizer": self._optimizer.state_dict(), "scheduler": self._scheduler.state_dict(), "rng": rng},
                   directory / TENSOR_STATE_FILE)
        state = {"step": self.step_count, "total_steps": self._total_steps,
                 "sampler": self.sampler.state_dict(), "learning_rate": self.config.learning_rate}
        (directory / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")

    def _load_state(self, directory: Path) -> None:
        state = json.loads((directory / STATE_FILE).read_text(encoding="utf-8"))
        tensors = torch.load(directory / TENSOR_STATE_FILE, map_location="cpu", weights_only=False)
        self._optimizer.load_state_dict(tensors["optimizer"])
        self._scheduler.load_state_dict(tensors["scheduler"])
        torch.set_rng_state(tensors["rng"]["torch"])
        random.setstate(tensors["rng"]["python"])
        if "cuda" in tensors["rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(tensors["rng"]["cuda"])
        self.sampler.load_state_dict(state["sampler"])
        self.step_count = int(state["step"])

    def save_checkpoint(self) -> Path | None:
        """Write checkpoints/step-N atomically (a no-op without a run directory)."""
        if self.run_dir is None:
            return None
        path = self.run_dir.save_checkpoint(self.step_count, self._write_checkpoint)
        self.run_dir.prune_checkpoints(self.config.save_total_limit)
        self._callback("on_save", self.step_count, path)
        return path

    # -- rollouts ----------------------------------------------------------------------------------
    def _sampling(self, attempt: int) -> SamplingParams:
        cfg = self.config
        return SamplingParams(temperature=cfg.temperature, top_k=cfg.top_k, top_p=cfg.top_p,
                              max_new_tokens=cfg.max_completion_length,
                              seed=derive_seed(cfg.seed, "rollout", self.step_count, attempt))

    def _score(self, problems: list[Problem], completions: list[Completion]) -> tuple[list[Verdict], torch.Tensor, torch.Tensor]:
        verdicts = self.pool.verify(problems, [c.text for c in completions])
        fmt = torch.tensor([format_reward(c.text) for c in completions], dtype=torch.float32)  # [B]
        base = torch.tensor([v.reward for v in verdicts], dtype=torch.float32)  # [B]
        ok = torch.tensor([v.status not in VERIFIER_FAILURES for v in verdicts])  # [B] bool
        rewards = torch.where(ok, base + self.config.format_reward_weight * fmt, torch.zeros_like(base))
        return verdicts, rewards, fmt

    def generate_batch(self, problems: list[Problem], attempt: int = 0, timings: dict[str, float] | None = None) -> Batch:
        """Sample `num_generations` completions per problem and score them."""
        G = self.config.num_generations
        prompts = [self.task.prompt(p, self.policy.prompt_style) for p in problems]
        t0 = time.perf_counter()
        self.policy.eval()  # safe: nn.Module/Policy.eval(), inference mode; not Python's eval
        with torch.no_grad():
            groups = self.policy.generate(prompts, n=G, sampling=self._sampling(attempt))
        t1 = time.perf_counter()
        prompt_ids = self.policy.encode_prompts(prompts)
        flat_problems = [p for p in problems for _ in range(G)]
        flat_prompt_ids = [ids for ids in prompt_ids for _ in range(G)]
        completions = [c for group in groups for c in group]
        if len(completions) != len(flat_problems):
            raise RuntimeError(f"policy {self.policy.name!r} returned {len(completions)} completions, "
                               f"expected {len(problems)} x {G}")
        verdicts, rewards, fmt = self._score(flat_problems, completions)
        if timings is not None:
            timings["time/generate"] = timings.get("time/generate", 0.0) + t1 - t0
            timings["time/verify"] = timings.get("time/verify", 0.0) + time.perf_counter() - t1
        return Batch(flat_problems, flat_prompt_ids, completions, verdicts, rewards, fmt)

    def _collect(self, timings: dict[str, float]) -> tuple[Batch, Batch, torch.Tensor]:
        """(every generated sample, the samples to learn from, their advantages [B'])."""
        cfg = self.config
        G = cfg.num_generations
        generated = [self._observed(self.generate_batch(self.sampler.sample(cfg.prompts_per_step), 0, timings))]
        if cfg.dynamic_sampling == "resample":
            for attempt in range(1, cfg.dynamic_sampling_max_tries + 1):
                informative = sum(int(not z) for z in self._zero_std(_concat(generated)).view(-1, G)[:, 0])
                if informative >= cfg.prompts_per_step:
                    break
                generated.append(self._observed(
                    self.generate_batch(self.sampler.sample(cfg.prompts_per_step), attempt, timings)))
        everything = _concat(generated)
        if cfg.dynamic_sampling == "off":
            keep = everything
        else:
            zero = self._zero_std(everything).view(-1, G)[:, 0]  # [groups]
            groups = [g for g in range(len(zero)) if not zero[g]][: cfg.prompts_per_step]
            keep = _select(everything, [g * G + j for g in groups for j in range(G)])
        if not keep.completions:
            return everything, keep, torch.zeros(0)
        adv = group_advantages(keep.rewards, G, cfg.scale_rewards).advantages  # [B']
        return everything, keep, adv

    def _observed(self, batch: Batch) -> Batch:
        """Tell a sampler that tracks solve rates (a `SolveRateCurriculum`) what this batch solved."""
        observe = getattr(self.sampler, "observe", None)
        if observe is not None:
            observe(batch.problems, [v.correct for v in batch.verdicts])
        return batch

    def _zero_std(self, batch: Batch) -> torch.Tensor:
        """[B] bool: the completion's group has equal *verifier* rewards (DAPO filters on accuracy).

        The format term is left out on purpose: in a group where every answer is wrong and one is
        malformed, it is the only variance, and group scaling blows its 0.1 up to advantages of
        order one, so counting such groups as informative trained the model on format noise.
        """
        verifier = torch.tensor([v.reward for v in batch.verdicts], dtype=torch.float32)  # [B]
        return group_advantages(verifier, self.config.num_generations, "group").zero_std

    # -- the update ----------------------------------------------------------------------------------
    def _micro_batches(self, rows: int) -> list[list[list[int]]]:
        """Row indices per mini-batch, split into micro-batches: [mini][micro][rows]."""
        cfg = self.config
        minis = [chunk.tolist() for chunk in torch.arange(rows).tensor_split(min(cfg.steps_per_generation, rows))]
        size = cfg.micro_batch_size
        return [[mini[i:i + size] for i in range(0, len(mini), size)] for mini in minis if mini]

    def _update(self, batch: Batch, advantages: torch.Tensor) -> dict[str, float]:
        """num_iterations x mini-batches of AdamW updates on `batch`. Returns averaged metrics."""
        cfg = self.config
        device = self.policy.device
        prompt_ids = batch.prompt_ids
        completion_ids = [c.token_ids for c in batch.completions]
        truncated = torch.tensor([c.truncated for c in batch.completions])  # [B] bool
        advantages = advantages.to(device)
        plan = self._micro_batches(len(completion_ids))
        on_policy = cfg.num_iterations == 1 and len(plan) == 1
        self.policy.train()

        def score(rows: list[int], **kw: Any) -> Any:
            return self.policy.logprobs([prompt_ids[i] for i in rows], [completion_ids[i] for i in rows], **kw)

        # Old and reference log-probs, once per step, without grad: [mini][micro] -> [b, T]
        old: dict[tuple[int, int], torch.Tensor] = {}
        ref: dict[tuple[int, int], torch.Tensor] = {}
        with torch.no_grad():
            for m, mini in enumerate(plan):
                for u, rows in enumerate(mini):
                    if not on_policy:
                        old[m, u] = score(rows).logprobs.detach()
                    if cfg.beta > 0:
                        ref[m, u] = self.policy.reference_logprobs(
                            [prompt_ids[i] for i in rows], [completion_ids[i] for i in rows]).detach()

        sums: dict[str, float] = {}
        tokens_total = 0
        losses: list[float] = []
        grad_norms: list[float] = []
        sampler_diffs: list[torch.Tensor] = []
        params = self._params()
        for iteration in range(cfg.num_iterations):
            for m, mini in enumerate(plan):
                rows_all = [i for rows in mini for i in rows]
                # Tokens of the whole mini-batch, for the dapo normaliser across micro-batches.
                counted = [i for i in rows_all if not (cfg.mask_truncated_completions and truncated[i])]
                n_tokens = sum(len(completion_ids[i]) for i in counted)
                self._optimizer.zero_grad(set_to_none=True)
                step_loss = 0.0
                for u, rows in enumerate(mini):
                    lp = score(rows, with_entropy=True)
                    logps = lp.logprobs  # [b, T]
                    mask = completion_mask(lp.mask.bool(), truncated[rows], cfg.mask_truncated_completions)  # [b, T]
                    old_lp = logps.detach() if on_policy else old[m, u]
                    if iteration == 0 and m == 0:  # nothing updated yet: compare with the sampler
                        sampler_diffs.extend(self._sampler_diff(rows, batch.completions, old_lp, lp.mask))
                    out = grpo_loss(
                        logps, old_lp, advantages[rows], mask, ref.get((m, u)),
                        epsilon_low=cfg.epsilon_low, epsilon_high=cfg.epsilon_upper, beta=cfg.beta,
                        loss_type=cfg.loss_type, max_completion_length=cfg.max_completion_length,
                        num_sequences=len(rows_all), num_tokens=n_tokens, entropy=lp.entropy)
                    out.loss.backward()
                    step_loss += float(out.loss.detach())
                    for key, value in out.metrics.items():
                        sums[key] = sums.get(key, 0.0) + value * out.num_tokens
                    tokens_total += out.num_tokens
                max_norm = cfg.max_grad_norm if cfg.max_grad_norm > 0 else float("inf")
                grad_norms.append(float(torch.nn.utils.clip_grad_norm_(params, max_norm)))
                self._optimizer.step()
                losses.append(step_loss)
        self._optimizer.zero_grad(set_to_none=True)
        metrics = {key: value / max(tokens_total, 1) for key, value in sums.items()}
        metrics["loss"] = sum(losses) / len(losses)
        metrics["grad_norm"] = sum(grad_norms) / len(grad_norms)
        metrics["num_updates"] = float(len(losses))
        if sampler_diffs:
            diffs = torch.cat(sampler_diffs)
            metrics["sampling/sampling_logp_difference/mean"] = float(diffs.mean())
            metrics["sampling/sampling_logp_difference/max"] = float(diffs.max())
        return metrics

    @staticmethod
    def _sampler_diff(rows: list[int], completions: list[Completion], logps: torch.Tensor, mask: torch.Tensor) -> list[torch.Tensor]:
        """|trainer log-prob - sampler log-prob| per token, where the sampler returned log-probs."""
        out = []
        for j, i in enumerate(rows):
            given = completions[i].logprobs
            n = int(mask[j].sum())
            if given and len(given) == n and n > 0:
                out.append((logps[j, :n].detach().float().cpu() - torch.tensor(given, dtype=torch.float32)).abs())
        return out

    # -- one step --------------------------------------------------------------------------------------
    def step(self) -> StepResult:
        """Run one GRPO step (generation round + updates) and log it. Does not checkpoint."""
        if self._optimizer is None:
            self._setup()
        cfg = self.config
        t_start = time.perf_counter()
        timings: dict[str, float] = {}
        everything, keep, advantages = self._collect(timings)
        step = self.step_count + 1
        lr = self._optimizer.param_groups[0]["lr"]
        zero_std = self._zero_std(everything)
        lengths = torch.tensor([c.num_tokens for c in everything.completions])
        truncated = torch.tensor([c.truncated for c in everything.completions])
        metrics: dict[str, float] = {}
        metrics.update(reward_metrics(everything.rewards, zero_std))
        metrics["accuracy"] = sum(v.correct for v in everything.verdicts) / len(everything.verdicts)
        metrics["rewards/format/mean"] = float(everything.format_rewards.mean())
        metrics.update(length_metrics(lengths, truncated))
        metrics["verifier/failures"] = float(sum(v.status in VERIFIER_FAILURES for v in everything.verdicts))
        metrics["num_groups"] = float(len(everything.completions) // cfg.num_generations)
        metrics["num_groups_used"] = float(len(keep.completions) // cfg.num_generations)
        if hasattr(self._pool, "pop_metrics"):  # a rewarder with metrics of its own (TTRL's vote)
            metrics.update(self._pool.pop_metrics())
        t_update = time.perf_counter()
        if keep.completions:
            metrics.update(self._update(keep, advantages))
        else:
            metrics["num_updates"] = 0.0  # every group was uninformative: nothing to learn from
        with warnings.catch_warnings():
            # A step whose groups all carried no signal made no update; the schedule still advances.
            warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler.step\(\)` before")
            self._scheduler.step()
        metrics["learning_rate"] = lr
        metrics["tokens/generated"] = float(lengths.sum())
        metrics["time/update"] = time.perf_counter() - t_update
        metrics.update(timings)
        metrics["time/step"] = time.perf_counter() - t_start
        if hasattr(self.sampler, "epochs_done"):
            metrics["epoch"] = float(self.sampler.epochs_done)
        self.step_count = step
        used = {id(c) for c in keep.completions}
        self._log(step, "train", metrics, self._rollout_rows(step, "train", everything, used))
        self._callback("on_step_end", step, metrics)
        return StepResult(step, metrics)

    def _rollout_rows(self, step: int, split: str, batch: Batch, used: set[int] | None = None) -> list[dict[str, Any]]:
        G = self.config.num_generations if split == "train" else 1
        rows = []
        for i, (p, c, v) in enumerate(zip(batch.problems, batch.completions, batch.verdicts)):
            row = {"step": step, "split": split, "problem_id": p.id, "sample": i % G, "completion": c.text,
                   "reward": float(batch.rewards[i]), "verdict_reward": v.reward,
                   "format_reward": float(batch.format_rewards[i]), "status": v.status.value, "answer": v.answer,
                   "finish_reason": c.finish_reason, "num_tokens": c.num_tokens}
            if v.status in VERIFIER_FAILURES:
                row["detail"] = v.detail
            if used is not None:
                row["used"] = id(c) in used
            rows.append(row)
        return rows

    def _log(self, step: int, kind: str, metrics: dict[str, float], rollouts: list[dict[str, Any]]) -> None:
        event = {"step": step, "type": kind, **metrics}
        self.history.append(event)
        if self.run_dir is not None:
            self.run_dir.log_event(event)
            self.run_dir.log_rollouts(rollouts)

    def _callback(self, name: str, *args: Any) -> None:
        for cb in self.callbacks:
            fn: Callable[..., Any] | None = getattr(cb, name, None)
            if fn is not None:
                fn(self, *args)

    # -- evaluation -----------------------------------------------------------------------------------
    def evaluate(self, problems: Sequence[Problem] | None = None) -> dict[str, float]:
        """Greedy accuracy on `problems` (default: the eval problems), logged as an eval event."""
        problems = list(self.eval_problems if problems is None else problems)
        if not problems:
            return {}
        t0 = time.perf_counter()
        cfg = self.config
        prompts = [self.task.prompt(p, self.policy.prompt_style) for p in problems]
        greedy = SamplingParams(temperature=0.0, max_new_tokens=cfg.max_completion_length, seed=cfg.seed)
        completions: list[Completion] = []
        self.policy.eval()  # safe: nn.Module/Policy.eval(), inference mode; not Python's eval
        chunk = max(cfg.generation_batch_size, 1)
        with torch.no_grad():
            for i in range(0, len(prompts), chunk):
                completions.extend(group[0] for group in self.policy.generate(prompts[i:i + chunk], n=1, sampling=greedy))
        verdicts, rewards, fmt = self._score(problems, completions)
        metrics = {
            "eval_accuracy": sum(v.correct for v in verdicts) / len(verdicts),
            "eval_reward": float(rewards.mean()),
            "eval_mean_length": sum(c.num_tokens for c in completions) / len(completions),
            "eval_format": float(fmt.mean()),
            "eval_runtime": time.perf_counter() - t0,
        }
        batch = Batch(problems, [], completions, verdicts, rewards, fmt)
        self._log(self.step_count, "eval", metrics, self._rollout_rows(self.step_count, "eval", batch))
        self._callback("on_evaluate", self.step_count, metrics)
        return metrics

    # -- the loop ------------------------------------------------------------------------------------
    def train(self, resume_from_checkpoint: bool | str | Path | None = None, *, write_summary: bool = True) -> dict[str, Any]:
        """Train until `total_steps`; resume from the run directory's latest checkpoint (True) or a
        given checkpoint directory. Returns the summary, also written to summary.json unless
        `write_summary` is False (a job that writes more after training, such as ladder's final
        weights, writes summary.json itself, last, so that "completed" never precedes them)."""
        checkpoint = self._resume_point(resume_from_checkpoint)
        if checkpoint is not None or self._optimizer is None:  # train() after train_steps() continues
            self._setup(checkpoint)
        cfg = self.config
        try:
            if self.step_count == 0 and cfg.eval_on_start and self.eval_problems:
                self.evaluate()
            self._run(self._total_steps - self.step_count, final=True)
            summary = self.summary()
            if self.run_dir is not None and write_summary:
                self.run_dir.write_summary(summary)
            self._callback("on_train_end", summary)
            return summary
        finally:
            if self.run_dir is not None:
                self.run_dir.close()
            if self._own_pool and self._pool is not None:
                self._pool.close()
                self._pool = None

    def train_steps(self, k: int) -> list[StepResult]:
        """Run `k` more steps from the current weights (test-time RL: snapshot, train_steps, restore).

        Evaluates and checkpoints on the configured schedule when a run directory is set, but
        never writes a summary; the learning-rate schedule continues from the current step.
        """
        if self._optimizer is None:
            self._setup()
        return self._run(k, final=False)

    def _run(self, k: int, final: bool) -> list[StepResult]:
        cfg = self.config
        results = []
        bar = None
        if self.progress and k > 0:
            from tqdm.auto import tqdm

            bar = tqdm(total=self.step_count + k, initial=self.step_count, desc="grpo", unit="step", dynamic_ncols=True)
        last_eval: dict[str, float] = {}
        try:
            for _ in range(k):
                result = self.step()
                results.append(result)
                step, m = result
                last_step = final and step >= self._total_steps
                if self.eval_problems and ((cfg.eval_steps and step % cfg.eval_steps == 0) or last_step):
                    last_eval = self.evaluate()
                if self.run_dir is not None and ((cfg.save_steps and step % cfg.save_steps == 0) or last_step):
                    self.save_checkpoint()
                if bar is not None:
                    postfix = {"reward": f"{m['reward']:.3f}", "acc": f"{m['accuracy']:.2f}"}
                    if last_eval:
                        postfix["eval_acc"] = f"{last_eval['eval_accuracy']:.2f}"
                    bar.set_postfix(postfix, refresh=False)
                    bar.update(1)
                # A metrics line every logging_steps, with or without a bar (a job's trainer: one with a run directory).
                if step % cfg.logging_steps == 0 and (bar is not None or self.run_dir is not None):
                    (bar.write if bar is not None else print)(format_metrics(step, m))
        finally:
            if bar is not None:
                bar.close()
        return results

    def _resume_point(self, resume: bool | str | Path | None) -> Path | None:
        if not resume:
            return None
        if resume is True:
            if self.run_dir is None:
                raise UserError("resume_from_checkpoint=True needs a run directory")
            _step, path = self.run_dir.resume()
            self.history = self.run_dir.events()
            return path
        path = Path(resume)
        if not (path / STATE_FILE).exists():
            raise UserError(f"{path}: not a GRPO checkpoint; expected {path / STATE_FILE}")
        return path

    def summary(self) -> dict[str, Any]:
        return summarize(self.history, total_steps=self._total_steps,
                         run_dir=str(self.run_dir.path) if self.run_dir is not None else None)


def format_metrics(step: int, m: dict[str, float]) -> str:
    parts = [f"step {step}", f"reward {m.get('reward', 0):.3f}", f"acc {m.get('accuracy', 0):.2f}",
             f"loss {m.get('loss', 0):+.4f}", f"len {m.get('completions/mean_length', 0):.1f}",
             f"zero_std {m.get('frac_reward_zero_std', 0):.2f}"]
    if "kl" in m:
        parts.append(f"kl {m['kl']:.4f}")
    return "  ".join(parts)


def summarize(events: list[dict[str, Any]], total_steps: int | None = None, run_dir: str | None = None) -> dict[str, Any]:
    """The figures of a run from its events: first/last reward, eval accuracy start/end/best."""
    train = [e for e in events if e.get("type") == "train"]
    evals = [e for e in events if e.get("type") == "eval"]
    window = max(1, min(10, len(train) // 5 or 1))

    def mean(rows: list[dict[str, Any]], key: str) -> float | None:
        values = [r[key] for r in rows if isinstance(r.get(key), (int, float))]
        return sum(values) / len(values) if values else None

    out: dict[str, Any] = {
        "steps": train[-1]["step"] if train else 0,
        "total_steps": total_steps,
        "completed": bool(train) and total_steps is not None and train[-1]["step"] >= total_steps,
        "reward_first": mean(train[:window], "reward"),
        "reward_last": mean(train[-window:], "reward"),
        "accuracy_first": mean(train[:window], "accuracy"),
        "accuracy_last": mean(train[-window:], "accuracy"),
        "train_time_s": sum(float(e.get("time/step", 0.0)) for e in train),
    }
    if evals:
        best = max(evals, key=lambda e: (e["eval_accuracy"], -e["step"]))
        out.update({
            "eval_accuracy_start": evals[0]["eval_accuracy"], "eval_step_start": evals[0]["step"],
            "eval_accuracy_end": evals[-1]["eval_accuracy"], "eval_step_end": evals[-1]["step"],
            "eval_accuracy_best": best["eval_accuracy"], "eval_step_best": best["step"],
        })
    if run_dir is not None:
        out["run_dir"] = run_dir
    return out
