"""The GRPO trainer: advantages, loss, update, evaluation and checkpoints. Resumable.

Why it is one readable loop rather than a subclass of a framework trainer: every policy rungs
supports (the embedded tiny model, HF models with or without LoRA) is reached through the small
`Policy` interface, rewards are components (rungs/rewards), and a run must survive kill -9 at any
moment and continue bit for bit. Sampling and scoring live in train/rollout.py; this file is the
update. One step, top to bottom (`GRPOTrainer.step`):

1. draw `prompts_per_step` problems from the sampler (seeded; its state is checkpointed, so a
   curriculum passed in as an ordering resumes where it stopped);
2. `policy.generate(prompts, n=num_generations)` with a seed derived from (seed, step);
3. verdicts from the `VerifierPool` (a hung or crashed verifier zeroes only its own rollout),
   then the `reward` (default: verifier + `format_reward_weight` * format; any weighted list of
   `reward_funcs`); `dynamic_sampling` filters (or, DAPO-style, resamples) groups whose rewards
   are all equal (steps 1-3: `Rollouts.collect`);
4. advantages by `advantage_estimator` (grpo: group-normalised; rloo: leave-one-out; psr/nsr: one sign of grpo's);
5. `num_iterations` passes of `steps_per_generation` AdamW updates, each accumulated over
   micro-batches of `per_device_train_batch_size` completions, with `grpo_loss`. When the data
   is exactly on-policy (mu = 1, one update per batch) the old log-probs are the current ones
   detached (rho == 1, the gradient is the policy gradient); otherwise they are computed once,
   without grad, before the first update; `importance_sampling_level="sequence"` is GSPO;
6. one line of metrics (TRL's names) to events.jsonl, the rollouts to rollouts.jsonl, periodic
   greedy evaluation (with `eval_vote_samples`, label-free vote agreement too), an atomic
   checkpoint every `save_steps`, RUN_DIR/best by `metric_for_best_model`, and an early stop
   after `early_stopping_patience` evaluations without improvement.

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
import json
import math
import random
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import torch

from rungs.errors import UserError
from rungs.policies.base import Policy, SamplingParams
from rungs.rewards import build_reward
from rungs.rewards.base import Reward, RewardContext
from rungs.rewards.format import format_reward
from rungs.rewards.verifier import VERIFIER_FAILURES
from rungs.runs import RunDir
from rungs.tasks.base import Task
from rungs.train.advantages import ADVANTAGES
from rungs.train.grpo_config import GRPOConfig
from rungs.train.grpo_loss import completion_mask, grpo_loss, length_metrics, reward_metrics
from rungs.train.rollout import (
    Batch,
    EpochSampler,
    ProblemSampler,
    Rollouts,
    derive_seed,
    merged_reward_metrics,
    zero_std_groups,
)
from rungs.types import Completion, Problem, Status, Verdict

DEFAULT_LEARNING_RATE = 1e-6  # TRL's default, used when the policy does not name its own
STATE_FILE = "trainer_state.json"
TENSOR_STATE_FILE = "trainer_state.pt"
POLICY_DIR = "policy"
BEST_DIR = "best"  # RUN_DIR/best: the policy at the best metric_for_best_model
# Re-exported: these lived here before the trainer was split (train/rollout.py, rungs/rewards).
__all__ = ["VERIFIER_FAILURES", "Batch", "EpochSampler", "GRPOTrainer", "ProblemSampler", "derive_seed",
           "format_reward", "lr_factor", "summarize"]


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


class StepResult(NamedTuple):
    step: int
    metrics: dict[str, float]


# -- the trainer ---------------------------------------------------------------------------------

class GRPOTrainer:
    """Group Relative Policy Optimization on a task's verifiable problems (see the module doc).

    policy:        a trainable `Policy` (weights are updated in place)
    task:          the `Task` whose prompt format and verifier define the reward
    config:        `GRPOConfig`
    pool:          a `VerifierPool` (anything with `verify(problems, completions) -> list[Verdict]`);
                   None builds one for `task` and closes it at the end of `train`
    reward:        a `rungs.rewards.Reward` scoring each batch; None builds `config.reward_funcs`
                   weighted by `config.reward_weights` (default: verifier + 0.1 * format)
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
        reward: Reward | None = None,
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
        if config.metric_for_best_model and not self.eval_problems:
            raise UserError(f"metric_for_best_model = {config.metric_for_best_model!r} needs held-out problems to "
                            "evaluate on (--eval-problems); without them no best model can be kept")
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
        self._own_reward = reward is None
        self.reward = reward if reward is not None else self._build_reward()
        self.rollouts = Rollouts(policy, task, self.config, lambda: self.pool, self.reward)
        self.best: dict[str, Any] | None = None  # {"step", "metric", "value"} of the best evaluation so far
        self._bad_evals = 0  # evaluations since the best one (early stopping)
        self.stopped_early = False

    def _build_reward(self) -> Reward:
        cfg = self.config
        sampling = SamplingParams(temperature=cfg.temperature, top_k=cfg.top_k, top_p=cfg.top_p,
                                  max_new_tokens=cfg.max_completion_length, seed=cfg.seed)
        context = RewardContext(self.task, self.policy, lambda: self.pool, sampling, cfg.micro_batch_size)
        return build_reward(cfg.reward_funcs, cfg.reward_weights, context, cfg.format_reward_weight)

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
        if self.config.metric_for_best_model:
            state.update(best=self.best, bad_evals=self._bad_evals, stopped_early=self.stopped_early)
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
        self.best = state.get("best")
        self._bad_evals = int(state.get("bad_evals", 0))
        self.stopped_early = bool(state.get("stopped_early", False))

    def save_checkpoint(self) -> Path | None:
        """Write checkpoints/step-N atomically (a no-op without a run directory)."""
        if self.run_dir is None:
            return None
        path = self.run_dir.save_checkpoint(self.step_count, self._write_checkpoint)
        self.run_dir.prune_checkpoints(self.config.save_total_limit)
        self._callback("on_save", self.step_count, path)
        return path

    # -- rollouts (train/rollout.py) ----------------------------------------------------------------
    def _sampling(self, attempt: int) -> SamplingParams:
        return self.rollouts.sampling(self.step_count, attempt)

    def _score(self, problems: list[Problem], completions: list[Completion]) -> tuple[list[Verdict], torch.Tensor, torch.Tensor]:
        """(verdicts, verifier reward + format term, format term) -- the evaluation's reward, which
        is the verifier's whatever the training reward is (failed verifications score 0)."""
        verdicts = self.rollouts.verify(problems, completions)
        fmt = torch.tensor([format_reward(c.text) for c in completions], dtype=torch.float32)  # [B]
        base = torch.tensor([v.reward for v in verdicts], dtype=torch.float32)  # [B]
        ok = torch.tensor([v.status not in VERIFIER_FAILURES and v.status is not Status.UNLABELLED
                           for v in verdicts])  # [B] bool: a failed check or no usable reference scores 0
        rewards = torch.where(ok, base + self.config.format_reward_weight * fmt, torch.zeros_like(base))
        return verdicts, rewards, fmt

    def generate_batch(self, problems: list[Problem], attempt: int = 0, timings: dict[str, float] | None = None) -> Batch:
        """Sample `num_generations` completions per problem and score them with the reward."""
        return self.rollouts.generate(problems, self.step_count, attempt, timings)

    def _collect(self, timings: dict[str, float]) -> tuple[Batch, Batch, torch.Tensor]:
        """(every generated sample, the samples to learn from, their advantages [B'])."""
        cfg = self.config
        everything, keep = self.rollouts.collect(self.sampler, self.step_count, timings)
        if not keep.completions:
            return everything, keep, torch.zeros(0)
        estimator = ADVANTAGES.get(cfg.advantage_estimator)
        adv = estimator(keep.rewards, cfg.num_generations, cfg.scale_rewards).advantages  # [B']
        return everything, keep, adv

    def _zero_std(self, batch: Batch) -> torch.Tensor:
        """[B] bool: the row's group has equal rewards without shaping terms (DAPO filters on accuracy)."""
        return zero_std_groups(batch.signal, self.config.num_generations).repeat_interleave(self.config.num_generations)

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
                        num_sequences=len(rows_all), num_tokens=n_tokens, entropy=lp.entropy,
                        importance_sampling_level=cfg.importance_sampling_level, num_micro_batches=len(mini))
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
        labelled = [v for v in everything.verdicts if v.status is not Status.UNLABELLED]
        if labelled:  # rows with no reference to check have no accuracy (a label-free run logs none)
            metrics["accuracy"] = sum(v.correct for v in labelled) / len(labelled)
        metrics["verifier/unlabelled"] = float(len(everything.verdicts) - len(labelled))
        metrics.update(merged_reward_metrics(everything))  # rewards/<name>/mean, /std and each reward's own
        metrics.setdefault("rewards/format/mean", float(everything.format_rewards.mean()))
        metrics.update(answer_metrics(self.task, everything.completions, cfg.num_generations))
        metrics.update(length_metrics(lengths, truncated))
        metrics["verifier/failures"] = float(sum(v.status in VERIFIER_FAILURES for v in everything.verdicts))
        metrics["num_groups"] = float(len(everything.completions) // cfg.num_generations)
        metrics["num_groups_used"] = float(len(keep.completions) // cfg.num_generations)
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
            if v.status in VERIFIER_FAILURES or v.status is Status.UNLABELLED:  # why it scored nothing
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
        }
        if cfg.eval_vote_samples:
            metrics.update(self._vote_metrics(problems))
        metrics["eval_runtime"] = time.perf_counter() - t0
        batch = Batch(problems, [], completions, verdicts, rewards, fmt)
        self._log(self.step_count, "eval", metrics, self._rollout_rows(self.step_count, "eval", batch))
        self._track_best(metrics)
        self._callback("on_evaluate", self.step_count, metrics)
        return metrics

    def _vote_metrics(self, problems: list[Problem]) -> dict[str, float]:
        """Label-free signals of `eval_vote_samples` samples per problem (training temperature):
        eval_vote_agreement (mean share of the majority answer, by the task's answer equivalence),
        eval_answer_entropy (mean entropy of the answer distribution, nats; no answer counts as
        one more answer) and, where correctness is known, eval_maj_accuracy (maj@N)."""
        from collections import Counter

        cfg = self.config
        n = cfg.eval_vote_samples
        sampling = SamplingParams(temperature=cfg.temperature, top_k=cfg.top_k, top_p=cfg.top_p,
                                  max_new_tokens=cfg.max_completion_length,
                                  seed=derive_seed(cfg.seed, "eval_vote", self.step_count))
        prompts = [self.task.prompt(p, self.policy.prompt_style) for p in problems]
        self.policy.eval()  # safe: nn.Module/Policy.eval(), inference mode; not Python's eval
        with torch.no_grad():
            groups = self.policy.generate(prompts, n=n, sampling=sampling)
        flat = [c for g in groups for c in g]
        flat_problems = [p for p in problems for _ in range(n)]
        keys = self.pool.answer_keys(flat_problems, [self.task.extract_answer(c.text) for c in flat])
        known = [not self.task.needs_answer or p.answer is not None for p in problems]
        verdicts = self.rollouts.verify(flat_problems, flat) if any(known) else []
        if verdicts:  # a reference the task cannot read (an unlabelled verdict) is no label either
            known = [k and all(v.status is not Status.UNLABELLED for v in verdicts[g * n:(g + 1) * n])
                     for g, k in enumerate(known)]
        agreement, entropy, maj = [], [], []
        for g in range(len(problems)):
            group = keys[g * n:(g + 1) * n]
            counts = Counter(k if k is not None else "\0none" for k in group)
            voted = Counter(k for k in group if k is not None)
            top = voted.most_common(1)[0] if voted else None
            agreement.append(top[1] / n if top else 0.0)
            entropy.append(-sum(c / n * math.log(c / n) for c in counts.values()))
            if known[g] and top is not None:
                winner = next(i for i, k in enumerate(group) if k == top[0])
                maj.append(float(verdicts[g * n + winner].correct))
            elif known[g]:
                maj.append(0.0)
        out = {"eval_vote_agreement": sum(agreement) / len(agreement), "eval_answer_entropy": sum(entropy) / len(entropy)}
        if maj:
            out["eval_maj_accuracy"] = sum(maj) / len(maj)
        return out

    # -- model selection and early stopping -------------------------------------------------------------
    def _track_best(self, metrics: dict[str, float]) -> None:
        """After an evaluation: keep RUN_DIR/best when `metric_for_best_model` improved; count
        evaluations without improvement for `early_stopping_patience`."""
        cfg = self.config
        name = cfg.metric_for_best_model
        if not name:
            return
        if name not in metrics:
            raise UserError(f"GRPOConfig.metric_for_best_model = {name!r}: the evaluation logged no such metric; "
                            f"expected one of {', '.join(sorted(metrics))} (eval_vote_agreement needs eval_vote_samples >= 2)")
        value = float(metrics[name])
        better = self.best is None or (value > self.best["value"] if cfg.greater_is_better else value < self.best["value"])
        if better:
            self.best = {"step": self.step_count, "metric": name, "value": value,
                         **{k: v for k, v in metrics.items() if k.startswith("eval_") and k != "eval_runtime"}}
            self._bad_evals = 0
            if self.run_dir is not None:
                best_dir = self.run_dir.path / BEST_DIR
                tmp = self.run_dir.path / (BEST_DIR + ".tmp")
                import shutil

                old = self.run_dir.path / (BEST_DIR + ".old")
                for stale in (tmp, old):
                    shutil.rmtree(stale, ignore_errors=True)
                self.policy.save(str(tmp))
                (tmp / "best.json").write_text(json.dumps(self.best, indent=2) + "\n", encoding="utf-8")
                if best_dir.exists():
                    best_dir.rename(old)  # a kill from here on leaves best.old, never a half-written best
                tmp.rename(best_dir)
                shutil.rmtree(old, ignore_errors=True)
        else:
            self._bad_evals += 1
            if cfg.early_stopping_patience and self._bad_evals >= cfg.early_stopping_patience:
                self.stopped_early = True

    # -- the loop ------------------------------------------------------------------------------------
    def train(self, resume_from_checkpoint: bool | str | Path | None = None, *, write_summary: bool = True) -> dict[str, Any]:
        """Train until `total_steps`; resume from the run directory's latest checkpoint (True) or a
        given checkpoint directory. Returns the summary, also written to summary.json unless
        `write_summary` is False (a job that writes more after training, such as ladder's final
        weights, writes summary.json itself, last, so that "completed" never precedes them)."""
        checkpoint = self._resume_point(resume_from_checkpoint)
        if checkpoint is not None or self._optimizer is None:  # train() after train_steps() continues
            self._setup(checkpoint)
        if self.step_count > self._total_steps:  # a resume with a smaller budget than the run has done
            raise UserError(f"resume: {checkpoint}: the run has already trained {self.step_count} steps, more than "
                            f"max_steps={self._total_steps}; give --max-steps {self.step_count} or more "
                            "(training cannot be undone; start a new run for a smaller budget)")
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
            if self._own_reward:
                self.reward.close()
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
                if self.stopped_early and final:
                    break  # resumed after an early stop: nothing more to do
                result = self.step()
                results.append(result)
                step, m = result
                last_step = final and step >= self._total_steps
                if self.eval_problems and ((cfg.eval_steps and step % cfg.eval_steps == 0) or last_step):
                    last_eval = self.evaluate()
                stop = self.stopped_early and not last_step
                if self.run_dir is not None and ((cfg.save_steps and step % cfg.save_steps == 0) or last_step or stop):
                    self.save_checkpoint()
                if bar is not None:
                    postfix = {"reward": f"{m['reward']:.3f}", "acc": f"{m.get('accuracy', float('nan')):.2f}"}
                    if last_eval:
                        postfix["eval_acc"] = f"{last_eval['eval_accuracy']:.2f}"
                    bar.set_postfix(postfix, refresh=False)
                    bar.update(1)
                # A metrics line every logging_steps, with or without a bar (a job's trainer: one with a run directory).
                if step % cfg.logging_steps == 0 and (bar is not None or self.run_dir is not None):
                    (bar.write if bar is not None else print)(format_metrics(step, m))
                if stop:
                    message = (f"early stop at step {step}: {cfg.metric_for_best_model} has not improved for "
                               f"{cfg.early_stopping_patience} evaluations (best {self.best['value']:.4g} at step {self.best['step']})")
                    if bar is not None:
                        bar.write(message)
                    self._log(step, "early_stop", {"best_step": float(self.best["step"]), "best_value": self.best["value"]}, [])
                    break
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
            logged = {row["step"] for row in self.run_dir.events() if row.get("step", 0) > 0}
            _step, path = self.run_dir.resume()
            self.history = self.run_dir.events()
            if self.config.max_steps > _step and self.run_dir.summary_path.exists():
                # it trains further: until it ends again it is not finished, whatever it said before
                self.run_dir.summary_path.unlink()
            if path is None and logged:  # the logs were cut back to nothing: say so, never silently
                print(f"resume: {self.run_dir.path}: no checkpoint found (save_steps={self.config.save_steps}): "
                      f"restarting from step 0; {len(logged)} logged step{'s are' if len(logged) != 1 else ' is'} "
                      "dropped", flush=True)
            elif path is not None:
                print(f"resume: {self.run_dir.path}: from the checkpoint of step {_step}", flush=True)
            return path
        path = Path(resume)
        if not (path / STATE_FILE).exists():
            raise UserError(f"{path}: not a GRPO checkpoint; expected {path / STATE_FILE}")
        return path

    def summary(self) -> dict[str, Any]:
        out = summarize(self.history, total_steps=self._total_steps,
                        run_dir=str(self.run_dir.path) if self.run_dir is not None else None)
        if self.best is not None:
            out["best"] = dict(self.best)  # the step, metric and eval metrics of RUN_DIR/best
            if self.run_dir is not None:
                out["best"]["path"] = str(self.run_dir.path / BEST_DIR)
        out["stopped_early"] = self.stopped_early
        return out


def answer_metrics(task: Task, completions: Sequence[Completion], num_generations: int) -> dict[str, float]:
    """What a collapsing label-free run shows first: answers/entropy (nats; mean over groups of the
    entropy of the group's distinct answers, by whitespace-stripped text), answers/distinct (mean
    distinct answers per group / G) and answers/extracted (fraction with an extractable answer)."""
    G = num_generations
    answers = [task.extract_answer(c.text) for c in completions]  # linear scans of hostile text, safe
    entropies, distinct = [], []
    for start in range(0, len(answers), G):
        keys = ["".join(a.split()) for a in answers[start:start + G] if a is not None]
        counts: dict[str, int] = {}
        for k in keys:
            counts[k] = counts.get(k, 0) + 1
        n = len(keys)
        entropies.append(-sum(c / n * math.log(c / n) for c in counts.values()) if n else 0.0)
        distinct.append(len(counts) / G)
    return {"answers/entropy": sum(entropies) / max(len(entropies), 1),
            "answers/distinct": sum(distinct) / max(len(distinct), 1),
            "answers/extracted": sum(a is not None for a in answers) / max(len(answers), 1)}


def format_metrics(step: int, m: dict[str, float]) -> str:
    parts = [f"step {step}", f"reward {m.get('reward', 0):.3f}", f"acc {m.get('accuracy', float('nan')):.2f}",
             f"loss {m.get('loss', 0):+.4f}", f"len {m.get('completions/mean_length', 0):.1f}",
             f"zero_std {m.get('frac_reward_zero_std', 0):.2f}"]
    if "kl" in m:
        parts.append(f"kl {m['kl']:.4f}")
    return "  ".join(parts)


def summarize(events: list[dict[str, Any]], total_steps: int | None = None, run_dir: str | None = None) -> dict[str, Any]:
    """The figures of a run from its events: first/last reward, eval accuracy start/end/best.

    "completed" is true when the last train step reached `total_steps` or an `early_stop` event
    ended the run there (`stopped_early`, `stopped_early_step`)."""
    train = [e for e in events if e.get("type") == "train"]
    evals = [e for e in events if e.get("type") == "eval"]
    window = max(1, min(10, len(train) // 5 or 1))
    stops = [e for e in events if e.get("type") == "early_stop"]
    stopped_at = stops[-1]["step"] if stops and train and stops[-1]["step"] >= train[-1]["step"] else None

    def mean(rows: list[dict[str, Any]], key: str) -> float | None:
        values = [r[key] for r in rows if isinstance(r.get(key), (int, float))]
        return sum(values) / len(values) if values else None

    out: dict[str, Any] = {
        "steps": train[-1]["step"] if train else 0,
        "total_steps": total_steps,
        # an early stop ends a run as surely as max_steps does (a resume trains no further)
        "completed": bool(train) and (stopped_at is not None
                                      or (total_steps is not None and train[-1]["step"] >= total_steps)),
        "stopped_early": stopped_at is not None,
        "reward_first": mean(train[:window], "reward"),
        "reward_last": mean(train[-window:], "reward"),
        "accuracy_first": mean(train[:window], "accuracy"),
        "accuracy_last": mean(train[-window:], "accuracy"),
        "train_time_s": sum(float(e.get("time/step", 0.0)) for e in train),
        "train_window": window,  # *_first / *_last: means over the first / last `window` logged steps
    }
    if stopped_at is not None:
        out["stopped_early_step"] = stopped_at
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
