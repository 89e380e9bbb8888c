"""Test-time training on ARC (MARC: Akyurek et al. 2024): per-problem fine-tuning on leave-one-out
tasks of the demonstrations under invertible augmentations, augmented inference, hierarchical
voting, pass@2; the weights are rolled back after each problem.

examples:
  rungs ttt --task arc                                     # tiny-arc checkpoint, builtin:arc1-evaluation
  rungs ttt --task arc --only-fitting --limit 20 --steps 16
  rungs ttt --task arc --steps 0                           # no TTT: augmented inference + voting only
  rungs ttt --task arc --steps 0 --infer-augmentations 1   # plain greedy
  rungs ttt --task arc --policy hf:Qwen/Qwen2.5-0.5B-Instruct --policy-option lora_rank=16 \\
      --learning-rate 1e-4 --steps 32
  rungs ttt --resume runs/ttt-arc-20261130-120000

The no-TTT baseline is also `rungs eval --task arc --problems builtin:arc1-evaluation --strategy greedy`.
"""

from __future__ import annotations

import argparse

HELP = "test-time training on ARC: leave-one-out fine-tuning, augmented voting, pass@2, rollback"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from rungs.config import add_arguments as add_config_arguments
    from rungs.pipelines.ttt import TTTConfig

    parser.add_argument("--config", metavar="FILE.yaml", help="settings from YAML (a 'ttt' section, as in a run's config.yaml); flags override it")
    parser.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR (its config.yaml is used)")
    parser.add_argument("--model", default=None, help="model name, for policies that take one")
    parser.add_argument("--policy-option", action="append", default=[], metavar="KEY=VALUE",
                        help="a policy setting, repeatable: lora_rank=16, dtype=bfloat16, device=cuda")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True, help="show a progress bar")
    add_config_arguments(parser, TTTConfig, skip=("policy_options",))  # --policy-option / --model above


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rungs.commands._policy_args import policy_kwargs
    from rungs.config import from_sections, section_values
    from rungs.errors import UserError
    from rungs.pipelines.job import refuse_job_policy_options
    from rungs.pipelines.ttt import TTTConfig, run_ttt
    from rungs.runs import merge_policy_options

    yaml_path = args.config
    if args.resume:
        yaml_path = str(Path(args.resume) / "config.yaml")
        if not Path(yaml_path).exists():
            raise UserError(f"{args.resume}: not a run directory (no config.yaml)")
        from rungs.commands.ttrl import _refuse_changed_settings

        _refuse_changed_settings(args, "ttt", {"ttt": TTTConfig}, Path(args.resume))  # a resumed run keeps its settings
    config = from_sections(args, {"ttt": TTTConfig}, yaml_path)["ttt"]
    if args.resume and "demo_loss" not in section_values(yaml_path, {"ttt": TTTConfig})["ttt"]:
        config.demo_loss = False  # a run from before the demonstration loss trained the answer alone: keep it so
    # The run's (or the YAML's) policy_options, updated by --model / --policy-option; kept in
    # config.yaml, so that --resume rebuilds the same policy (an hf model's LoRA adapter, say).
    given = policy_kwargs(args)
    if args.resume:  # only what cannot change the model may change (a device, a credential)
        given = merge_policy_options(Path(yaml_path), config.policy_options, given)
    config.policy_options = {**config.policy_options, **given}
    refuse_job_policy_options(config.policy_options)
    summary = run_ttt(config, resume_dir=args.resume, echo=args.progress)
    if not args.progress:  # the table is printed either way; --no-progress only hides the bar
        from rungs.pipelines.ttt import print_summary

        print_summary(summary, config)
    return 0

