"""The `rungs` console script: one subcommand per job.

Each subcommand is a module in `rungs/commands/` exposing `HELP` (one line), `add_arguments(parser)`
and `run(args) -> int`. Modules are discovered, so adding a job never edits this file, and each
keeps its heavy imports (torch, transformers) inside `run` so that `rungs --help` stays fast.
A `UserError` anywhere becomes one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

from rungs.errors import UserError


def _command_modules() -> dict[str, object]:
    import rungs.commands as pkg

    modules = {}
    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"rungs.commands.{info.name}")
        modules[getattr(module, "NAME", info.name.replace("_", "-"))] = module
    return modules


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, object]]:
    from rungs import __version__

    parser = argparse.ArgumentParser(
        prog="rungs",
        description="Make a language model better at verifiable problems with no labels.",
    )
    parser.add_argument("--version", action="version", version=f"rungs {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    modules = _command_modules()
    for name, module in sorted(modules.items()):
        p = sub.add_parser(name, help=module.HELP, description=getattr(module, "__doc__", None) or module.HELP,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(p)
    return parser, modules


def main(argv: Sequence[str] | None = None) -> int:
    parser, modules = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        argv = getattr(modules.get("demo"), "DEFAULT_ARGV", None) or ["--help"]
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return int(modules[args.command].run(args) or 0)
    except UserError as err:
        print(f"rungs {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"rungs {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
