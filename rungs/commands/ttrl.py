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

HELP = "test-time RL: per-problem variant GRPO with rollback, or majority-vote TTRL"

# GRPO defaults for the embedded model, chosen on builtin:integration-dev: its answers are short,
# and it is so confident (entropy ~0.2) that groups of 8 at temperature 1 were all right or all
# wrong; larger, hotter groups and DAPO's resampling of zero-variance groups keep some signal.
TINY_GRPO_DEFAULTS: dict[str, Any] = {
    "max_completion_length": 64, "prompts_per_step": 4, "num_generations": 16, "temperature": 1.2,
    "dynamic_sampling": "resample", "dynamic_sampling_max_tries": 3,
    "logging_steps": 1000, "save_steps": 0, "eval_on_start": False,
}


def add_job_arguments(parser: argparse.ArgumentParser, job_cls: type) -> None:
    from rungs.config import add_arguments as add_config_arguments
    from rungs.train.grpo_config import GRPOConfig

    parser.add_argument("--config", metavar="FILE.yaml", help="settings from YAML (sections as in a run's config.yaml); flags override it")
    parser.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR (its config.yaml is used)")
    parser.add_argument("--model", default=None, help="model name, for policies that take one")
    parser.add_argument("--policy-option", action="append", default=[], metavar="KEY=VALUE",
                        help="a policy setting, repeatable: lora_rank=16, dtype=bfloat16, device=cuda")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True, help="show progress bars")
    add_config_arguments(parser, job_cls)
    add_config_arguments(parser, GRPOConfig)


def resolve(args: argparse.Namespace, section: str, job_cls: type) -> tuple[Any, Any, dict[str, Any]]:
    """(job config, GRPO config, policy kwargs) from flags, YAML or a run directory being resumed."""
    from pathlib import Path

    from rungs.commands._policy_args import policy_kwargs
    from rungs.config import from_sections
    from rungs.errors import UserError
    from rungs.train.grpo_config import GRPOConfig

    yaml_path = args.config
    if args.resume:
        yaml_path = str(Path(args.resume) / "config.yaml")
        if not Path(yaml_path).exists():
            raise UserError(f"{args.resume}: not a run directory (no config.yaml)")
    defaults = {"grpo": TINY_GRPO_DEFAULTS} if str(getattr(args, "policy", "tiny")).startswith("tiny") else {}
    configs = from_sections(args, {section: job_cls, "grpo": GRPOConfig}, yaml_path, defaults=defaults)
    return configs[section], configs["grpo"], policy_kwargs(args)


def run(args: argparse.Namespace) -> int:
    from rungs.pipelines.ttrl import TTRLConfig, run_ttrl
    from rungs.policies import load_policy

    given = set(vars(args)) - {"command", "config", "resume", "model", "policy_option", "progress"}
    if not given and not (args.config or args.resume or args.model or args.policy_option):
        from rungs.commands import demo  # `rungs ttrl` with no arguments is the demo

        return demo.run(argparse.Namespace(progress=args.progress))

    config, grpo, kwargs = resolve(args, "ttrl", TTRLConfig)
    policy = load_policy(config.policy, task=config.task, seed=config.policy_seed, **kwargs) if kwargs else None
    run_ttrl(config, grpo, resume_dir=args.resume, policy=policy, echo=args.progress)
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from rungs.pipelines.ttrl import TTRLConfig

    add_job_arguments(parser, TTRLConfig)
