"""Accuracy against test-time compute: sample N answers per problem once, then report greedy,
pass@k, maj@k, best-of-k and weighted@k for every k in --n (mean ± std over --seeds), with
tokens and seconds per problem as the cost. Writes a table, results.json and PNG plots.

examples:
  rungs eval --task integration --problems builtin:integration-hard --policy tiny \\
      --strategy greedy,majority,best_of_n --n 1,2,4,8,16
  rungs eval --task countdown --problems builtin:countdown-easy --strategy sample,fire,majority
  rungs eval --task math --problems test.jsonl --policy openai:http://localhost:8000/v1 \\
      --model Qwen/Qwen2.5-7B-Instruct --strategy greedy,majority,weighted --n 1,4,16,64 --seeds 1
  rungs eval --resume --out runs/eval-integration-20250101-120000   # after a crash
"""

from __future__ import annotations

import argparse

HELP = "accuracy against test-time compute: greedy, pass@k, maj@k, best-of-k, weighted@k"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from rungs.config import add_arguments as add_config_arguments
    from rungs.pipelines.evaluate import EvalConfig

    parser.add_argument("--config", metavar="FILE.yaml", help="read settings from a YAML file (flags override it)")
    add_config_arguments(parser, EvalConfig)


def run(args: argparse.Namespace) -> int:
    from rungs.config import from_namespace
    from rungs.pipelines.evaluate import EvalConfig, evaluate

    config = from_namespace(EvalConfig, args, args.config)
    try:
        evaluate(config)
    except KeyboardInterrupt:
        if config.out or config.resume:
            where = f"--out {config.out}" if config.out else ""
            print(f"\nrungs eval: interrupted; finished problems are saved: rerun with --resume {where}".rstrip())
        else:
            print("\nrungs eval: interrupted; finished problems are saved under runs/: rerun with --resume")
        raise
    return 0
