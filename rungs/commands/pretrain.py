"""Warm-start the embedded tiny model on a task's generated problems (supervised).

Trains on easy problems only (difficulty 1-2 by default), evaluates greedily with the task's
verifier as it goes, writes a checkpoint directory usable as `--policy tiny:DIR`, and ends with
a table of greedy accuracy per difficulty.

    rungs pretrain --task integration --threads 2 --out runs/tiny-integration
    rungs pretrain --task integration --threads 2 --out runs/tiny-integration --resume   # after a kill
    rungs pretrain --task integration --init runs/tiny-integration --eval-only
"""

from __future__ import annotations

import argparse

HELP = "supervised warm start of the tiny model on a task's generated problems"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from rungs.config import add_arguments as add_config_arguments
    from rungs.train.sft import SFTConfig

    parser.add_argument("--config", metavar="FILE.yaml", help="YAML file of settings (flags override it)")
    add_config_arguments(parser, SFTConfig)


def run(args: argparse.Namespace) -> int:
    from rungs.config import from_namespace
    from rungs.tasks import get_task
    from rungs.train.sft import SFTConfig, train_sft

    cfg = from_namespace(SFTConfig, args, getattr(args, "config", None))
    task = get_task(cfg.task)
    try:
        result = train_sft(cfg, task)
    except KeyboardInterrupt:
        from pathlib import Path

        from rungs.errors import Interrupted
        from rungs.train.sft import RESUME_DIR

        if (Path(cfg.out) / RESUME_DIR).is_dir():
            raise Interrupted(f"interrupted; its last checkpoint is kept in {cfg.out}: continue with the same command "
                              "and --resume") from None
        raise
    print()
    print(f"{'difficulty':>10}  {'greedy accuracy':>15}  {'n':>5}")
    for level, row in result.report.items():
        print(f"{level:>10}  {row['accuracy']:>15.1%}  {row['n']:>5}")
    if cfg.eval_only:
        print(f"evaluation of {cfg.init}" + (f": {cfg.out}/eval.json" if cfg.out else " (not saved: give --out DIR to keep eval.json)"))
    else:
        print(f"checkpoint: {cfg.out}  (use it with --policy tiny:{cfg.out}); "
              f"training took {result.train_wall_s:.0f} s on {result.threads} thread{'s' if result.threads != 1 else ''}")
    return 0
