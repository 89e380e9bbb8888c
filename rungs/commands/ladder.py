"""LADDER: build easier variants of hard problems, recursively, and learn from them with GRPO.

examples:
  rungs ladder                                           # tiny model, builtin:integration-train, symbolic variants
  rungs ladder --depth 3 --width 5 --max-steps 300 --eval-steps 50 --out runs/ladder
  rungs ladder --task integration --problems hard.jsonl --policy hf:Qwen/Qwen2.5-1.5B-Instruct \\
      --policy-option lora_rank=16 --variant-source llm --depth 2 --beta 0.001
  rungs ladder --variants runs/ladder/variants.jsonl     # reuse a saved variant tree
  rungs ladder --resume runs/ladder                      # after a crash or kill -9

The final weights land in RUN_DIR/final; test-time RL starts from them with --policy tiny:RUN_DIR/final.
"""

from __future__ import annotations

import argparse

HELP = "LADDER: GRPO over self-made easier variants of hard problems, in a solve-rate curriculum"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from rungs.commands.ttrl import add_job_arguments
    from rungs.pipelines.ladder import LadderConfig

    add_job_arguments(parser, LadderConfig)


def run(args: argparse.Namespace) -> int:
    from rungs.commands.ttrl import resolve
    from rungs.pipelines.ladder import LadderConfig, run_ladder
    from rungs.policies import load_policy

    config, grpo, kwargs = resolve(args, "ladder", LadderConfig)
    policy = load_policy(config.policy, task=config.task, seed=config.policy_seed, **kwargs) if kwargs else None
    run_ladder(config, grpo, resume_dir=args.resume, policy=policy, echo=True, progress=args.progress)
    return 0
