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

--resume reads the settings from the run directory's config.yaml; a flag that would change how
samples are drawn (task, problems, policy, sampling, seed, batch size, limit, max(n)) is refused,
others (strategies, other n with the same max(n), more seeds, workers, plots) apply; a directory
with no evaluation in it is refused (drop --resume to start one).
"""

from __future__ import annotations

import argparse

from rungs.errors import Interrupted

HELP = "accuracy against test-time compute: greedy, pass@k, maj@k, best-of-k, weighted@k"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from rungs.config import add_arguments as add_config_arguments
    from rungs.pipelines.evaluate import EvalConfig

    parser.add_argument("--config", metavar="FILE.yaml", help="read settings from a YAML file (flags override it)")
    parser.add_argument("--policy-option", action="append", default=[], metavar="KEY=VALUE",
                        help="a policy setting, repeatable: dtype=bfloat16, device=cuda, api_key=...")
    add_config_arguments(parser, EvalConfig, skip=("policy_options",))


def run(args: argparse.Namespace) -> int:
    import dataclasses

    from rungs.commands._policy_args import parse_policy_options
    from rungs.config import check_policy_options, from_namespace, yaml_settings
    from rungs.pipelines.evaluate import EvalConfig, evaluate, resume_config

    if args.policy_option:  # on top of the YAML's policy_options, if any
        stored = yaml_settings(EvalConfig, args.config).get("policy_options") if args.config else None
        if stored is not None:
            check_policy_options(stored, EvalConfig.POLICY_OPTIONS_EXAMPLE, args.config)
        args.policy_options = {**(stored or {}), **parse_policy_options(args.policy_option)}

    if getattr(args, "resume", False):  # the settings live in the run directory; flags only add to them
        names = {f.name for f in dataclasses.fields(EvalConfig)}
        given = yaml_settings(EvalConfig, args.config) if args.config else {}
        given.update({k: v for k, v in vars(args).items() if k in names})
        config = resume_config(given, source=args.config or "command line")
    else:
        config = from_namespace(EvalConfig, args, args.config)
    try:
        evaluate(config)
    except KeyboardInterrupt:
        if config.out or config.resume:
            where = f"--out {config.out}" if config.out else ""
            raise Interrupted(f"interrupted; finished problems are saved: rerun with --resume {where}".rstrip()) from None
        raise Interrupted("interrupted; finished problems are saved under runs/: rerun with --resume") from None
    return 0
