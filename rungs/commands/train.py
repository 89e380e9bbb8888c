"""Plain GRPO on a problem set: sample groups, verify, update; resumable after any kill.

examples:
  rungs train --task countdown --problems builtin:countdown-easy --policy tiny --max-steps 200 \\
      --eval-problems builtin:countdown-easy --eval-limit 64 --out runs/countdown-grpo
  rungs train --task integration --problems train.jsonl --policy hf:Qwen/Qwen2.5-0.5B-Instruct \\
      --policy-option lora_rank=16 --beta 0.001 --loss-type dapo --epsilon-high 0.28 \\
      --dynamic-sampling filter --learning-rate 1e-5
  rungs train --task integration --problems builtin:integration-dev --reward verifier,format --reward-weights 1,0.1
  rungs train --task math --problems unlabelled.jsonl --policy hf:Qwen/Qwen2.5-Math-1.5B --reward self_certainty \\
      --eval-problems held_out.jsonl --eval-vote-samples 8 --metric-for-best-model eval_vote_agreement \\
      --eval-steps 10 --early-stopping-patience 3                # label-free; keeps RUN_DIR/best
  rungs train --task integration --problems builtin:integration-dev --reward random     # a control arm
  rungs train --resume runs/countdown-grpo                      # after a crash or kill -9
  rungs train --resume runs/countdown-grpo --max-steps 400      # train an ended run further

The run directory holds config.yaml (every setting, resolved), events.jsonl (one line of
metrics per step, under TRL's names), rollouts.jsonl (every sample, its reward and status),
checkpoints/step-N (written whole, then renamed into place), summary.json and PNG plots.
`--resume DIR` reads the settings from DIR/config.yaml; flags that contradict it are refused,
except the run-length and bookkeeping flags (max_steps, num_train_epochs, logging_steps,
eval_steps, save_steps, save_total_limit). `rungs report DIR` reprints the table and redraws
the plots of any run, finished or not.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path
from typing import Any

from rungs.commands._policy_args import parse_policy_options
from rungs.config import help_field
from rungs.errors import Interrupted, UserError
from rungs.pipelines.job import JobConfig, check_eval_limit

HELP = "train a policy with GRPO on a problem set (resumable: --resume DIR)"


@dataclasses.dataclass
class TrainJobConfig(JobConfig):
    """The job settings of `rungs train` (kept apart from GRPOConfig, which is the algorithm's):
    `JobConfig`'s, with held-out problems and a model name. A run's config.yaml holds them at top
    level and GRPOConfig's under `grpo:`; `--out` is a flag of its own (exclusive with --resume)."""

    task: str | None = help_field(None, "task name (see `rungs tasks`); required")
    problems: str | None = help_field(None, "training problems: .jsonl/.json/.parquet, a dataset directory, or builtin:NAME; required")
    eval_problems: str | None = help_field(None, "held-out problems for greedy accuracy")
    eval_limit: int | None = help_field(None, "use only the first K eval problems")
    model: str | None = help_field(None, "model name, for policies that take one")

    def __post_init__(self) -> None:
        super().__post_init__()
        check_eval_limit(self.eval_limit, self.eval_problems)


# The settings a run's config.yaml holds at top level (`out` is the run directory itself).
JOB_KEYS = tuple(f.name for f in dataclasses.fields(TrainJobConfig) if f.name != "out")
JOB_DEFAULTS: dict[str, Any] = {f.name: f.default if f.default is not dataclasses.MISSING else f.default_factory()
                                for f in dataclasses.fields(TrainJobConfig) if f.name in JOB_KEYS}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from rungs.config import add_arguments as add_config_arguments
    from rungs.train.grpo_config import GRPOConfig

    add_config_arguments(parser, TrainJobConfig, skip=("policy_options", "out"))  # --policy-option, --out below
    job = parser.add_argument_group("job")
    job.add_argument("--policy-option", dest="policy_option", action="append", default=argparse.SUPPRESS, metavar="KEY=VALUE",
                     help="a policy setting, repeatable: lora_rank=16, dtype=bfloat16, device=cuda")
    job.add_argument("--config", metavar="FILE.yaml", help="settings from a YAML file (job keys and GRPOConfig fields, "
                     "the latter at top level or under 'grpo:'); flags override it")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--out", help="run directory (default: runs/train-<task>-<timestamp>)")
    where.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its latest checkpoint")
    parser.add_argument("--plot", action=argparse.BooleanOptionalAction, default=True, help="write PNG plots (default: on)")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True, help="show a progress bar")
    add_config_arguments(parser, GRPOConfig)


def _given(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    """(job settings, GRPOConfig settings) given on the command line."""
    from rungs.train.grpo_config import GRPOConfig

    ns = vars(args)
    job = {k: ns[k] for k in JOB_KEYS if k in ns}
    if ns.get("policy_option"):
        job["policy_options"] = parse_policy_options(ns["policy_option"])
    names = {f.name for f in dataclasses.fields(GRPOConfig)}
    return job, {k: v for k, v in ns.items() if k in names}


def _from_yaml(path: str) -> tuple[dict[str, Any], dict[str, Any]]:
    import typing

    from rungs.config import check_policy_options, coerce_setting, load_yaml, unknown_setting_hint
    from rungs.train.grpo_config import GRPOConfig

    data = load_yaml(path)
    types = typing.get_type_hints(TrainJobConfig)
    names = {f.name for f in dataclasses.fields(GRPOConfig)}
    grpo = data.pop("grpo", None) or {}
    if not isinstance(grpo, dict):
        raise UserError(f"{path}: section 'grpo' must be a mapping of settings")
    for key in grpo:
        if key in JOB_KEYS:  # e.g. grpo: {task: ...}
            raise UserError(f"{path}: setting {key!r} under 'grpo' is a job setting; put it at top level")
    grpo = dict(grpo)
    data.pop("job", None)
    job = {}
    for key, value in data.items():
        if key == "policy_options":
            check_policy_options(value or {}, "lora_rank: 16", path)
            job[key] = value
        elif key in JOB_KEYS:
            job[key] = coerce_setting(key, value, types[key], path)
        elif key in names:
            grpo[key] = value
        else:
            raise UserError(f"{path}: unknown setting {key!r}{unknown_setting_hint(key, [*JOB_KEYS, *names], GRPOConfig.UNKNOWN_SETTING_HINTS)}")
    return job, grpo


# GRPOConfig settings that only act on an evaluation (the metric one is checked by the trainer)
EVAL_SETTINGS = ("eval_steps", "eval_on_start", "eval_vote_samples")


def resolve(args: argparse.Namespace) -> tuple[dict[str, Any], Any, Path, bool]:
    """(job settings, GRPOConfig, run directory, resuming?) from flags, --config and --resume."""
    from rungs.config import from_dict
    from rungs.train.grpo_config import RESUME_OVERRIDABLE, GRPOConfig

    job_flags, grpo_flags = _given(args)
    if args.resume:
        from rungs.runs import RunDir, merge_policy_options, refuse_changed

        if args.config:
            raise UserError("--resume reads its settings from the run directory; drop --config")
        run = RunDir.open(args.resume, job="train")
        saved = run.read_config()
        given_options = job_flags.pop("policy_options", {})  # may add a device or a credential, nothing else
        job = refuse_changed(run.config_path, {k: saved.get(k, v) for k, v in JOB_DEFAULTS.items()}, job_flags)
        stored_options = job.get("policy_options") or {}
        job["policy_options"] = {**stored_options, **merge_policy_options(run.config_path, stored_options, given_options)}
        grpo = refuse_changed(run.config_path, dict(saved.get("grpo") or {}), grpo_flags, RESUME_OVERRIDABLE)
        return job, from_dict(GRPOConfig, grpo, source=str(run.config_path)), Path(args.resume), True

    job, grpo = (_from_yaml(args.config) if args.config else ({}, {}))
    job = {**JOB_DEFAULTS, **job, **job_flags}
    grpo.update(grpo_flags)
    missing = [what for key, what in (("task", "--task NAME (see `rungs tasks`)"),
                                      ("problems", "--problems (a .jsonl/.json/.parquet file, a dataset directory, "
                                                   "or builtin:NAME)")) if not job[key]]
    if missing:  # every missing flag at once, not one per attempt
        raise UserError(f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} required")
    config = from_dict(GRPOConfig, grpo, source=args.config or "command line")
    check_job(job)
    idle = [name for name in EVAL_SETTINGS if grpo.get(name)] if not job["eval_problems"] else []
    if idle:  # asked for (flag or YAML) with nothing to evaluate: refused rather than ignored
        flags = ", ".join("--" + name.replace("_", "-") for name in idle)
        raise UserError(f"{flags}: no held-out problems to evaluate; give --eval-problems FILE or builtin:NAME")
    out = Path(args.out) if args.out else Path("runs") / f"train-{job['task']}-{time.strftime('%Y%m%d-%H%M%S')}"
    return job, config, out, False


def check_job(job: dict[str, Any]) -> None:
    """The job settings, checked as every job's are (`TrainJobConfig`, so `JobConfig` and
    `rungs.pipelines.job.check_job_settings`); their types were already checked where they were
    read (flags, or `coerce_setting` for YAML). UserError otherwise."""
    TrainJobConfig(**job)


def run(args: argparse.Namespace) -> int:
    from rungs.pipelines.job import job_scope
    from rungs.runs import RunDir

    job, config, out, resuming = resolve(args)
    # Refuse an occupied --out (or a run still going) early; the lock is this process's from here.
    run_dir = RunDir.open(out, job="train", lock=True) if resuming else RunDir.create(out, job="train")
    if resuming:
        try:
            run_dir.check_budget(config.max_steps)
        except BaseException:
            run_dir.release()
            raise
    with job_scope(run_dir, "train"):
        _train(args, job, config, out, resuming, run_dir)
        from rungs.commands.report import render_run

        render_run(out, plot=args.plot)
    return 0


def _train(args: argparse.Namespace, job: dict[str, Any], config: Any, out: Path, resuming: bool, run_dir: Any) -> None:
    from rungs.config import storable_policy_options, to_dict
    from rungs.data import load_task_problems
    from rungs.policies import load_policy
    from rungs.registry import split_spec
    from rungs.rewards import check_reward_labels
    from rungs.train.grpo import GRPOTrainer
    from rungs.verify.pool import VerifierPool

    task = TrainJobConfig(**job).build_task()
    problems = load_task_problems(job["problems"], task, job["limit"])
    eval_problems = load_task_problems(job["eval_problems"], task, job["eval_limit"]) if job["eval_problems"] else []
    warning = check_reward_labels(config.reward_funcs, task, problems, str(job["problems"]))
    if warning:
        print(f"rungs train: {warning}", file=sys.stderr)
    kwargs: dict[str, Any] = {"task": job["task"], **(job["policy_options"] or {})}
    if job["model"] is not None:
        kwargs["model"] = job["model"]
    if split_spec(job["policy"])[0] == "hf":  # a LoRA adapter's initial weights follow --seed
        kwargs.setdefault("seed", config.seed)
    policy = load_policy(job["policy"], **kwargs)
    pool = VerifierPool(task, workers=job["workers"], timeout_s=float(job["timeout"]), executor=str(job["executor"]))
    try:
        trainer = GRPOTrainer(policy, task, config, pool, run_dir=run_dir, problems=problems,
                              eval_problems=eval_problems, progress=args.progress)
        # The resolved settings (learning_rate filled in from the policy) are what a resume reads.
        run_dir.write_config({"job": "train", **job, "policy_options": storable_policy_options(job["policy_options"] or {}),
                              "grpo": to_dict(trainer.config)})
        print(f"rungs train: {len(problems)} problem{'s' if len(problems) != 1 else ''}, {trainer.total_steps} "
              f"step{'s' if trainer.total_steps != 1 else ''} of "
              f"{config.prompts_per_step} x {config.num_generations} samples; run directory {out}")
        try:
            trainer.train(resume_from_checkpoint=True if resuming else None)
        except KeyboardInterrupt:
            raise Interrupted(f"interrupted; continue with: rungs train --resume {out}") from None
    finally:
        pool.close()
        policy.close()
