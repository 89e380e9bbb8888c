"""Test-time RL: keep learning on each test problem (LADDER's TTRL) or on majority-vote pseudo-labels.

examples:
  rungs ttrl                                             # the demo: tiny model, builtin:integration-hard
  rungs ttrl --mode variants --problems builtin:integration-hard --steps 20 --policy tiny:runs/ladder-x/final
  rungs ttrl --mode vote --task math --problems test.jsonl --policy hf:Qwen/Qwen2.5-Math-1.5B \\
      --policy-option lora_rank=16 --vote-samples 64 --num-generations 32 --learning-rate 1e-6
  rungs ttrl --mode vote --reward self_certainty --task math --problems test.jsonl   # INTUITOR on the test set
  rungs ttrl --mode vote --eval-vote-samples 8 --metric-for-best-model eval_vote_agreement --eval-steps 5
  rungs ttrl --resume runs/ttrl-integration-20261121-120000

variants mode answers each problem greedily, trains on its variant tree for up to --steps GRPO
steps (stopping once the label-free verifier accepts the greedy answer), then rolls the weights
back. A problem counts as solved only by its final greedy answer; "ever solved during training"
is reported separately. vote mode trains on the whole unlabelled set with majority-vote rewards
(`--reward majority_vote:N`, N = --vote-samples); another label-free --reward (self_certainty,
neg_entropy, random, format_only) replaces it when named. With --metric-for-best-model (say the
label-free eval_vote_agreement) the best weights are kept in RUN_DIR/best and both the last and
the best are reported.
"""

from __future__ import annotations

import argparse
from typing import Any

# The tiny model's GRPO defaults live with GRPOConfig (rungs/train/grpo_config.py); re-exported here.
from rungs.train.grpo_config import TINY_GRPO_DEFAULTS

HELP = "test-time RL: per-problem variant GRPO with rollback, or majority-vote TTRL"


# GRPO settings test-time RL replaces with its own (--steps, --steps-vote; it never runs held-out evals):
# not offered as flags, so that help lists only settings a ttrl run uses.
TTRL_REPLACED = ("max_steps", "num_train_epochs", "eval_steps", "eval_on_start")


def add_job_arguments(parser: argparse.ArgumentParser, job_cls: type, grpo_skip: tuple[str, ...] = ()) -> None:
    from rungs.config import add_arguments as add_config_arguments
    from rungs.train.grpo_config import GRPOConfig

    parser.add_argument("--config", metavar="FILE.yaml", help="settings from YAML: sections as in a run's config.yaml "
                        "(ladder:/ttrl: and grpo:), or the same keys at top level; flags override it")
    parser.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR (its config.yaml is used)")
    parser.add_argument("--model", default=None, help="model name, for policies that take one")
    parser.add_argument("--policy-option", action="append", default=[], metavar="KEY=VALUE",
                        help="a policy setting, repeatable: lora_rank=16, dtype=bfloat16, device=cuda")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True, help="show progress bars")
    add_config_arguments(parser, job_cls, skip=("policy_options",))  # --policy-option / --model above
    # Help shows the values a run uses: GRPOConfig's, and the tiny model's where they differ.
    add_config_arguments(parser, GRPOConfig, skip=grpo_skip, policy_defaults=("the tiny policy", TINY_GRPO_DEFAULTS))


def resolve(args: argparse.Namespace, section: str, job_cls: type) -> tuple[Any, Any, dict[str, Any]]:
    """(job config, GRPO config, policy kwargs) from flags, YAML or a run directory being resumed.

    The policy-specific GRPO defaults (TINY_GRPO_DEFAULTS) follow the *resolved* policy: the
    --policy flag, else the YAML's, else the job's default; a resumed run's config.yaml holds every
    setting already. A new run prints the defaults it applied, so the help and the run agree.
    """
    import dataclasses
    from pathlib import Path

    from rungs.commands._policy_args import policy_kwargs
    from rungs.config import from_sections, section_values
    from rungs.errors import UserError
    from rungs.pipelines.job import refuse_job_policy_options
    from rungs.runs import merge_policy_options
    from rungs.train.grpo_config import GRPOConfig, policy_grpo_defaults

    yaml_path = args.config
    if args.resume:
        if args.config:
            raise UserError("--resume reads its settings from the run directory; drop --config")
        yaml_path = str(Path(args.resume) / "config.yaml")
        if not Path(yaml_path).exists():
            raise UserError(f"{args.resume}: not a run directory (no config.yaml)")
        _refuse_changed_settings(args, section, {section: job_cls, "grpo": GRPOConfig}, Path(args.resume))
    sections = {section: job_cls, "grpo": GRPOConfig}
    policy = getattr(args, "policy", None)
    if policy is None and yaml_path:
        policy = section_values(yaml_path, sections).get(section, {}).get("policy")
    if policy is None:
        policy = next(f.default for f in dataclasses.fields(job_cls) if f.name == "policy")
    tuned = {} if args.resume else policy_grpo_defaults(policy)
    configs = from_sections(args, sections, yaml_path, defaults={"grpo": tuned})
    applied = {k: v for k, v in tuned.items() if getattr(configs["grpo"], k) == v}  # not overridden
    if applied:
        print(f"rungs {section}: GRPO defaults for policy {policy!r} (flags and --config override them): "
              + ", ".join(f"{k}={v}" for k, v in applied.items()))
    # Policy settings: the run's (or the YAML's) policy_options, updated by --model / --policy-option;
    # stored in the config, so that a resumed run rebuilds the same policy (a LoRA adapter, say).
    job = configs[section]
    given = policy_kwargs(args)
    if args.resume:  # only what cannot change the model may change (a device, a credential)
        given = merge_policy_options(Path(yaml_path), job.policy_options, given)
    job.policy_options = {**job.policy_options, **given}
    refuse_job_policy_options(job.policy_options)
    return job, configs["grpo"], dict(job.policy_options)


def _refuse_changed_settings(args: argparse.Namespace, section: str, sections: dict[str, type], run_path: Any) -> None:
    """--resume of a ladder/ttrl/ttt run: the directory must be one of this job's runs, and a flag may
    differ from its config.yaml only for the run-length settings (as `rungs train --resume`)."""
    import dataclasses

    from rungs.config import load_yaml
    from rungs.runs import RunDir, refuse_changed
    from rungs.train.grpo_config import RESUME_OVERRIDABLE

    run = RunDir.open(run_path, job=section)
    saved = load_yaml(run.config_path)
    for name, cls in sections.items():
        fields = {f.name: f for f in dataclasses.fields(cls)}
        stored = {**{k: f.default for k, f in fields.items() if f.default is not dataclasses.MISSING},
                  **(saved.get(name) or {})}
        given = {k: v for k, v in vars(args).items() if k in fields}
        refuse_changed(run.config_path, stored, given, RESUME_OVERRIDABLE if name == "grpo" else ())


# TTRLConfig's settings that only one mode reads: a flag for the other mode is refused, not ignored
VARIANTS_ONLY = ("steps", "check_every", "depth", "width", "include_problem", "skip_solved", "variant_source")
VOTE_ONLY = ("vote_samples", "steps_vote")


def run(args: argparse.Namespace) -> int:
    from rungs.errors import UserError
    from rungs.pipelines.ttrl import TTRLConfig, run_ttrl
    from rungs.policies import load_policy

    given = set(vars(args)) - {"command", "config", "resume", "model", "policy_option", "progress"}
    if not given and not (args.config or args.resume or args.model or args.policy_option):
        from rungs.commands import demo  # `rungs ttrl` with no arguments is the demo

        return demo.run(argparse.Namespace(progress=args.progress, config=None, policy_option=[]))

    config, grpo, kwargs = resolve(args, "ttrl", TTRLConfig)
    other = VOTE_ONLY if config.mode == "variants" else VARIANTS_ONLY
    stray = [name for name in other if name in vars(args)]
    if stray:
        flags = ", ".join("--" + name.replace("_", "-") for name in stray)
        raise UserError(f"{flags}: not used by --mode {config.mode} (the variants mode takes --steps, "
                        "--check-every, --depth, --width, ...; the vote mode --steps-vote and --vote-samples)")
    policy = load_policy(config.policy, task=config.task, seed=config.policy_seed, **kwargs) if kwargs else None
    run_ttrl(config, grpo, resume_dir=args.resume, policy=policy, echo=True, progress=args.progress)
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from rungs.pipelines.ttrl import TTRLConfig

    add_job_arguments(parser, TTRLConfig, grpo_skip=TTRL_REPLACED)
