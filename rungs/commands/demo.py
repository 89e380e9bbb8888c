"""The main job on the embedded default: base -> LADDER -> test-time RL on hard integrals, one table.

`rungs` with no arguments runs it, and so does `rungs ttrl` with no arguments. On 2 CPU cores it
takes a few minutes; see rungs/pipelines/demo.py for what each stage does.
"""

from __future__ import annotations

import argparse

HELP = "the main job: base -> LADDER -> TTRL with the embedded tiny model (what `rungs` runs)"
DEFAULT_ARGV = ["demo"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from rungs.config import add_arguments as add_config_arguments
    from rungs.pipelines.demo import DemoConfig

    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True, help="show progress bars (the result table is always printed)")
    parser.add_argument("--policy-option", action="append", default=[], metavar="KEY=VALUE",
                        help="a setting of both policies, repeatable: device=cuda, dtype=bfloat16")
    parser.add_argument("--config", metavar="FILE.yaml", help="settings from a YAML file (DemoConfig's fields); flags override it")
    add_config_arguments(parser, DemoConfig, skip=("policy_options",))


def run(args: argparse.Namespace) -> int:
    from rungs.commands._policy_args import parse_policy_options
    from rungs.config import from_namespace
    from rungs.pipelines.demo import DemoConfig, run_demo
    from rungs.pipelines.job import refuse_job_policy_options

    config = from_namespace(DemoConfig, args, args.config)
    config.policy_options = {**config.policy_options, **parse_policy_options(args.policy_option)}
    refuse_job_policy_options(config.policy_options, "--seed")
    run_demo(config, echo=True, progress=args.progress)
    return 0
