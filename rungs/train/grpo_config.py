"""GRPOConfig: every GRPO setting, under the names TRL users already know.

Field names follow `trl.GRPOConfig` (num_generations, beta, epsilon, epsilon_high, loss_type,
scale_rewards, num_iterations, mask_truncated_completions, ...) so a TRL recipe ports by copying
its numbers. Where rungs differs, the help text says so:

- A *step* is one generation round: `prompts_per_step` prompts x `num_generations` samples are
  generated, scored, and then used for `num_iterations` x `steps_per_generation` optimizer
  updates. (TRL counts optimizer updates as steps; with the defaults, 1 and 1, the two agree.)
- `per_device_train_batch_size` only sets micro-batching: the number of *completions* in one
  forward/backward pass; gradients are accumulated until a mini-batch (the generation batch split
  into `steps_per_generation` parts) is complete. None means one pass per mini-batch. It does not
  set the batch, as it does in TRL: a step always has `prompts_per_step` x `num_generations`
  completions. (So TRL's `gradient_accumulation_steps` has no field: it is the mini-batch divided
  by `per_device_train_batch_size`.)
- `learning_rate` None means the policy's own default (`policy.default_learning_rate`: the tiny
  model trains at 1e-4-ish rates, 7B models at TRL's 1e-6).
- `eval_on_start` defaults to True and `eval_steps` 0 means "at the end only", so every run
  has an accuracy curve with at least a before and an after point.
- `dynamic_sampling` (DAPO) and `format_reward_weight` (LADDER's format term) are rungs' own.
- `reward_funcs` names rewards of `rungs.rewards.REWARDS` (TRL takes functions; here, specs such
  as "majority_vote:16"); `reward_weights` None means 1 each, `format_reward_weight` for format.
- `advantage_estimator` is veRL's name (grpo | rloo | psr | nsr); `metric_for_best_model`,
  `greater_is_better` and `early_stopping_patience` are transformers' names.

The same class gives `rungs train` its flags and reads/writes the `grpo:` section of YAML files
(see rungs/config.py). Validation raises `UserError` naming the field and the values expected.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from rungs.config import check_finite_fields, did_you_mean, help_field
from rungs.errors import UserError

LOSS_TYPES = ("grpo", "bnpo", "dapo", "dr_grpo")
IMPORTANCE_SAMPLING_LEVELS = ("token", "sequence")
SCALE_REWARDS = ("group", "batch", "none")
DYNAMIC_SAMPLING = ("off", "filter", "resample")
LR_SCHEDULERS = ("constant", "linear", "cosine")
# GRPO defaults for the embedded tiny model, chosen on builtin:integration-dev: its answers are
# short, and it is so confident (entropy ~0.2) that groups of 8 at temperature 1 were all right or
# all wrong; larger, hotter groups and DAPO's resampling of zero-variance groups keep some signal.
# `rungs ladder` and `rungs ttrl` apply them when the *resolved* policy (flag, YAML or default) is
# the tiny model; any other policy gets GRPOConfig's own defaults (TRL's numbers).
TINY_GRPO_DEFAULTS: dict[str, Any] = {
    "max_completion_length": 64, "prompts_per_step": 4, "num_generations": 16, "temperature": 1.2,
    "dynamic_sampling": "resample", "dynamic_sampling_max_tries": 3,
    # A killed run resumes and loses nothing: a checkpoint every 10 steps (a few seconds of the
    # tiny model's training), and only the newest 2 kept (a checkpoint is ~20 MB with its optimiser).
    "save_steps": 10, "save_total_limit": 2,
}
# Common TRL GRPOConfig / transformers TrainingArguments settings (and TRL ModelConfig's model and
# LoRA ones) that rungs does not take, each with what rungs does instead: a YAML file holding one
# is refused with this, not a did-you-mean (GRPOConfig.UNKNOWN_SETTING_HINTS, read by rungs/config.py).
TRL_SETTINGS: dict[str, str] = {
    "output_dir": "in rungs the run directory is the --out DIR flag",
    "model_name_or_path": "in rungs the model is the policy: policy: hf:NAME (or --policy hf:NAME)",
    "bf16": "in rungs the precision is an hf policy option: policy_options: {dtype: bfloat16} (or --policy-option "
            "dtype=bfloat16); the default, auto, is bfloat16 on a GPU that has it, float32 on CPU",
    "fp16": "in rungs the precision is an hf policy option: policy_options: {dtype: float16} (or --policy-option "
            "dtype=float16); the default, auto, is bfloat16 on a GPU that has it, float32 on CPU",
    "gradient_accumulation_steps": "rungs accumulates by itself: each optimizer update takes a mini-batch of "
            "prompts_per_step * num_generations / steps_per_generation completions, run in passes of "
            "per_device_train_batch_size completions; for N accumulation steps set per_device_train_batch_size "
            "to the mini-batch / N",
    "gradient_checkpointing": "in rungs it is an hf policy option: policy_options: {gradient_checkpointing: true}",
    "torch_dtype": "in rungs the precision is an hf policy option: policy_options: {dtype: bfloat16} (or --policy-option "
            "dtype=bfloat16)",
    "use_peft": "in rungs LoRA is an hf policy option: policy_options: {lora_rank: 16} (0, the default, trains "
            "every weight)",
    "lora_r": "in rungs the LoRA rank is an hf policy option: policy_options: {lora_rank: 16}",
    "generation_batch_size": "in rungs the completions per step are prompts_per_step * num_generations",
    "max_prompt_length": "not used by rungs (prompts are not truncated: the hf policy encodes the whole prompt, the "
            "tiny model keeps the end of one longer than its context); completions are capped by max_completion_length",
    "report_to": "not used by rungs (every step's metrics go to RUN_DIR/events.jsonl under TRL's names; "
            "`rungs report RUN_DIR` prints and plots them)",
    "logging_dir": "not used by rungs (logs are written in the run directory, --out DIR: events.jsonl, rollouts.jsonl)",
    "use_vllm": "not used by rungs (training samples with the trainable policy itself, an hf policy with "
            "transformers' generate; vllm:MODEL is an inference-only policy, for rungs eval or serve)",
    "push_to_hub": "not used by rungs (nothing is uploaded; checkpoints are written to "
            "RUN_DIR/checkpoints/step-N/policy, an hf policy's with save_pretrained, to push yourself)",
}
# Settings that `--resume` may change without invalidating the run (all others must match).
RESUME_OVERRIDABLE = ("max_steps", "num_train_epochs", "logging_steps", "eval_steps", "save_steps", "save_total_limit")


def is_tiny_policy(spec: str | None) -> bool:
    """True for the embedded model's specs: 'tiny', 'tiny:NAME' or 'tiny:PATH' (None counts as the default, tiny)."""
    return spec is None or spec == "tiny" or str(spec).startswith("tiny:")


def policy_grpo_defaults(spec: str | None) -> dict[str, Any]:
    """The GRPO defaults a job uses for policy `spec` on top of GRPOConfig's: TINY_GRPO_DEFAULTS
    for the embedded model, none for any other (hf:, vllm:, ...). A copy; callers may change it."""
    return dict(TINY_GRPO_DEFAULTS) if is_tiny_policy(spec) else {}


# What an evaluation logs (GRPOTrainer.evaluate), and with eval_vote_samples >= 2 also the vote
# metrics (eval_maj_accuracy only where correctness is known): the names metric_for_best_model takes.
EVAL_METRICS = ("eval_accuracy", "eval_reward", "eval_mean_length", "eval_format", "eval_runtime")
VOTE_EVAL_METRICS = ("eval_vote_agreement", "eval_answer_entropy", "eval_maj_accuracy")


@dataclass
class GRPOConfig:
    """Settings of one GRPO run. See the module docstring for where rungs departs from TRL."""

    UNKNOWN_SETTING_HINTS = TRL_SETTINGS  # not a field: what an unknown TRL key is told instead

    # -- optimisation ---------------------------------------------------------------------------
    learning_rate: float | None = help_field(
        None, "AdamW learning rate; None = the policy's default (tiny: 1e-4 range; HF models: TRL's 1e-6)")
    lr_scheduler_type: str = help_field(
        "constant", "learning-rate schedule after warm-up: constant | linear (TRL's default) | cosine")
    warmup_steps: int = help_field(0, "linear warm-up, in steps (overrides warmup_ratio when > 0); the rate is constant within a step")
    warmup_ratio: float = help_field(0.0, "linear warm-up as a fraction of max_steps")
    weight_decay: float = help_field(0.0, "AdamW weight decay")
    adam_beta1: float = help_field(0.9, "AdamW beta1")
    adam_beta2: float = help_field(0.999, "AdamW beta2")
    adam_epsilon: float = help_field(1e-8, "AdamW epsilon")
    max_grad_norm: float = help_field(1.0, "clip the gradient to this global norm (0 = no clipping)")
    max_steps: int = help_field(-1, "number of steps (generation rounds); -1 = num_train_epochs passes over the problems")
    num_train_epochs: float = help_field(1.0, "passes over the problem set when max_steps is -1")
    seed: int = help_field(42, "seed for problem order, sampling and initialisation; a run is reproducible from it")

    # -- batch shape ----------------------------------------------------------------------------
    prompts_per_step: int = help_field(8, "distinct problems per step; the generation batch is prompts_per_step * num_generations")
    num_generations: int = help_field(8, "G: completions sampled per problem (the group for advantages)")
    per_device_train_batch_size: int | None = help_field(
        None, "micro-batching only: completions per forward/backward pass (also of rewards that score with the "
        "policy), their gradients accumulated over a mini-batch (the step's completions / steps_per_generation) into "
        "one optimizer update; None = a whole mini-batch per pass. Unlike TRL's, it does not set the batch: a step "
        "has prompts_per_step x num_generations completions")
    steps_per_generation: int = help_field(1, "optimizer updates per pass over the generation batch (it is split into this many mini-batches)")
    num_iterations: int = help_field(1, "mu: passes over each generation batch; > 1 uses stored old log-probs and clipping")

    # -- generation -----------------------------------------------------------------------------
    max_completion_length: int = help_field(256, "maximum tokens of a completion (also the Dr. GRPO normaliser)")
    temperature: float = help_field(1.0, "sampling temperature of training rollouts")
    top_p: float = help_field(1.0, "nucleus sampling threshold in (0, 1]")
    top_k: int = help_field(0, "top-k sampling (0 = off)")

    # -- the objective --------------------------------------------------------------------------
    beta: float = help_field(0.0, "KL coefficient (k3 estimator) against the starting weights; 0 keeps no reference; LADDER uses 0.001")
    epsilon: float = help_field(0.2, "lower clipping range: the ratio is clipped below at 1 - epsilon")
    epsilon_high: float | None = help_field(None, "upper clipping range (1 + epsilon_high); None = epsilon; DAPO uses 0.28")
    loss_type: str = help_field(
        "dapo", "loss aggregation: grpo (mean per sequence, then over sequences) | dapo (mean over all tokens) | "
        "bnpo (token mean per micro-batch) | dr_grpo (sum / (sequences * max_completion_length))")
    scale_rewards: str = help_field("group", "advantage scaling: group (divide by the group's std) | batch (the batch's std) | none (Dr. GRPO)")
    mask_truncated_completions: bool = help_field(False, "leave completions that hit max_completion_length out of the loss (DAPO)")
    dynamic_sampling: str = help_field(
        "off", "groups whose rewards are all equal carry no signal: off | filter (drop them) | resample (DAPO: draw new problems)")
    dynamic_sampling_max_tries: int = help_field(3, "with dynamic_sampling=resample, the most extra generation rounds per step")
    format_reward_weight: float = help_field(
        0.1, "weight of the format term added to the verifier's reward: 1 when the completion holds exactly one <answer>...</answer>")

    # -- rewards and algorithm variants -----------------------------------------------------------------
    reward_funcs: list[str] = help_field(
        ["verifier", "format"], "rewards, comma-separated (rungs.rewards.REWARDS): verifier, format, majority_vote[:N], "
        "self_certainty, neg_entropy[:answer], random[:P], format_only, admissible", aliases=("--reward",))
    reward_weights: list[float] | None = help_field(
        None, "one weight per reward, comma-separated; None = 1 each, format_reward_weight for format")
    importance_sampling_level: str = help_field(
        "token", "token (GRPO: one ratio per token) | sequence (GSPO: exp of the mean log-ratio per sequence)")
    advantage_estimator: str = help_field(
        "grpo", "grpo (group-normalised) | rloo (leave-one-out baseline) | psr / nsr (GRPO's positive / negative advantages only)"
    )

    # -- model selection and early stopping -------------------------------------------------------------------
    eval_vote_samples: int = help_field(
        0, "at each evaluation also sample this many answers per eval problem and log label-free signals: "
        "eval_vote_agreement (share of the majority answer), eval_answer_entropy (nats); 0 = off")
    metric_for_best_model: str | None = help_field(
        None, "an eval metric (eval_accuracy, or label-free: eval_vote_agreement) whose best value keeps RUN_DIR/best")
    greater_is_better: bool = help_field(True, "whether a larger metric_for_best_model is better")
    early_stopping_patience: int = help_field(
        0, "stop after this many evaluations without improvement of metric_for_best_model; 0 = never")

    # -- bookkeeping ----------------------------------------------------------------------------
    logging_steps: int = help_field(10, "print a metrics line every this many steps (events.jsonl gets every step)")
    eval_steps: int = help_field(0, "evaluate (greedy accuracy on the eval problems) every this many steps; 0 = at the end only")
    eval_on_start: bool = help_field(True, "evaluate once before the first step")
    save_steps: int = help_field(50, "write a checkpoint every this many steps (and at the end); 0 = at the end only")
    save_total_limit: int | None = help_field(None, "keep at most this many checkpoints (the oldest are deleted); None = keep all")

    def __post_init__(self) -> None:
        def bad(name: str, expected: str) -> UserError:
            return UserError(f"GRPOConfig.{name} = {getattr(self, name)!r}: expected {expected}")

        check_finite_fields(self)  # no setting here means anything at inf or NaN (0 turns clipping off)

        for name, choices in (("loss_type", LOSS_TYPES), ("scale_rewards", SCALE_REWARDS),
                              ("importance_sampling_level", IMPORTANCE_SAMPLING_LEVELS),
                              ("dynamic_sampling", DYNAMIC_SAMPLING), ("lr_scheduler_type", LR_SCHEDULERS)):
            if getattr(self, name) not in choices:
                raise bad(name, "one of " + ", ".join(choices) + did_you_mean(getattr(self, name), choices))
        if self.learning_rate is not None and not self.learning_rate > 0:
            raise bad("learning_rate", "a positive number (or None for the policy's default)")
        for name in ("prompts_per_step", "steps_per_generation", "num_iterations", "max_completion_length",
                     "dynamic_sampling_max_tries", "logging_steps"):
            if getattr(self, name) < 1:
                raise bad(name, "an integer >= 1")
        if self.num_generations < 2:
            raise bad("num_generations", "an integer >= 2 (advantages compare samples within a group)")
        for name in ("warmup_steps", "eval_steps", "save_steps"):
            if getattr(self, name) < 0:
                raise bad(name, "an integer >= 0")
        if self.max_steps == 0 or self.max_steps < -1:
            raise bad("max_steps", "a positive integer, or -1 to use num_train_epochs")
        if self.max_steps == -1 and not self.num_train_epochs > 0:
            raise bad("num_train_epochs", "a positive number when max_steps is -1")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise bad("warmup_ratio", "a fraction in [0, 1)")
        for name in ("weight_decay", "max_grad_norm", "beta", "format_reward_weight", "temperature"):
            if not getattr(self, name) >= 0:
                raise bad(name, "a number >= 0")
        for name in ("adam_beta1", "adam_beta2"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise bad(name, "a number in [0, 1)")
        if not self.adam_epsilon > 0:
            raise bad("adam_epsilon", "a positive number")
        if not 0 < self.top_p <= 1:
            raise bad("top_p", "a number in (0, 1]")
        if self.top_k < 0:
            raise bad("top_k", "an integer >= 0 (0 = off)")
        if not 0 <= self.epsilon < 1:
            raise bad("epsilon", "a number in [0, 1)")
        if self.epsilon_high is not None and not self.epsilon_high >= 0:
            raise bad("epsilon_high", "a number >= 0, or None to use epsilon")
        self._check_rewards(bad)
        if self.eval_vote_samples < 0 or self.eval_vote_samples == 1:
            raise bad("eval_vote_samples", "0 (off) or an integer >= 2")
        if self.early_stopping_patience < 0:
            raise bad("early_stopping_patience", "an integer >= 0 (0 = never stop early)")
        if self.metric_for_best_model is not None and self.metric_for_best_model not in EVAL_METRICS + VOTE_EVAL_METRICS:
            import difflib

            close = difflib.get_close_matches(self.metric_for_best_model, EVAL_METRICS + VOTE_EVAL_METRICS, n=1)
            raise bad("metric_for_best_model", f"one of {', '.join(EVAL_METRICS + VOTE_EVAL_METRICS)}"
                      + (f" (did you mean {close[0]!r}?)" if close else ""))
        if self.metric_for_best_model in VOTE_EVAL_METRICS and not self.eval_vote_samples:
            raise bad("metric_for_best_model", f"eval_vote_samples >= 2 for {self.metric_for_best_model}, or a metric "
                      f"logged without votes: {', '.join(EVAL_METRICS)}")
        if self.early_stopping_patience and not self.metric_for_best_model:
            raise bad("early_stopping_patience", "0 unless metric_for_best_model names the metric to watch")
        if self.save_total_limit is not None and self.save_total_limit < 1:
            raise bad("save_total_limit", "an integer >= 1, or None to keep every checkpoint")
        batch = self.generation_batch_size
        if batch % self.steps_per_generation:
            raise bad("steps_per_generation", f"a divisor of the generation batch prompts_per_step * num_generations = {batch}")
        if self.per_device_train_batch_size is not None:
            if self.per_device_train_batch_size < 1 or self.mini_batch_size % self.per_device_train_batch_size:
                raise bad("per_device_train_batch_size",
                          f"a divisor of the mini-batch size {self.mini_batch_size} (= {batch} completions / steps_per_generation), or None")

    def _check_rewards(self, bad: Any) -> None:
        from rungs.rewards import parse_reward_funcs
        from rungs.rewards.base import parse_weights
        from rungs.train.advantages import ADVANTAGES

        if isinstance(self.reward_funcs, str):  # YAML may give "verifier,format"
            self.reward_funcs = [s.strip() for s in self.reward_funcs.split(",") if s.strip()]
        self.reward_funcs = parse_reward_funcs(self.reward_funcs)
        if self.reward_weights is not None:
            self.reward_weights = parse_weights(self.reward_weights)
            if len(self.reward_weights) != len(self.reward_funcs) or not all(math.isfinite(w) for w in self.reward_weights):
                raise bad("reward_weights", f"{len(self.reward_funcs)} finite numbers, one per reward in "
                          f"{','.join(self.reward_funcs)} (or None)")
        if self.advantage_estimator not in ADVANTAGES:
            raise bad("advantage_estimator", "one of " + ", ".join(ADVANTAGES.names())
                      + did_you_mean(self.advantage_estimator, ADVANTAGES.names()))

    # -- derived quantities ---------------------------------------------------------------------
    @property
    def epsilon_low(self) -> float:
        return self.epsilon

    @property
    def epsilon_upper(self) -> float:
        """The upper clipping range actually used (epsilon_high, or epsilon when it is None)."""
        return self.epsilon if self.epsilon_high is None else self.epsilon_high

    @property
    def generation_batch_size(self) -> int:
        """Completions generated per step."""
        return self.prompts_per_step * self.num_generations

    @property
    def mini_batch_size(self) -> int:
        """Completions per optimizer update."""
        return self.generation_batch_size // self.steps_per_generation

    @property
    def micro_batch_size(self) -> int:
        """Completions per forward/backward pass."""
        return self.per_device_train_batch_size or self.mini_batch_size

    def total_steps(self, num_problems: int) -> int:
        """max_steps, or the steps that num_train_epochs passes over `num_problems` problems take."""
        if self.max_steps > 0:
            return self.max_steps
        return max(1, math.ceil(self.num_train_epochs * num_problems / self.prompts_per_step))

    def warmup_for(self, total_steps: int) -> int:
        """Warm-up length in steps for a run of `total_steps` steps."""
        if self.warmup_steps > 0:
            return self.warmup_steps
        return math.ceil(self.warmup_ratio * total_steps)
