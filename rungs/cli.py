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
from pathlib import Path
from typing import NoReturn

from rungs.errors import Interrupted, UserError

# Jobs that run torch and the verifier pool: they get --threads, and size both to the free cores.
THREADED = ("demo", "eval", "ladder", "train", "ttrl")


def _command_modules() -> dict[str, object]:
    import rungs.commands as pkg

    modules = {}
    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"rungs.commands.{info.name}")
        modules[getattr(module, "NAME", info.name.replace("_", "-"))] = module
    return modules


class OneLineErrorParser(argparse.ArgumentParser):
    """argparse whose usage errors are one line, the message and where the usage is, instead of
    the whole usage first (forty lines for `rungs train`)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")

    def _parse_optional(self, arg_string: str) -> object:
        """A word that starts with one '-' and is no option of this parser is a value, not an
        unknown option: `--answer -cos(x)`, `--learning-rate -1e-5` (argparse reads only plain
        negative numbers as values). rungs' options are all `--long` but `-h`."""
        if (len(arg_string) > 1 and arg_string[0] == "-" and arg_string[1] != "-"
                and arg_string.split("=", 1)[0] not in self._option_string_actions):
            return None  # not -h itself: `-hmm` would otherwise match -h as a prefix
        return super()._parse_optional(arg_string)  # type: ignore[misc]


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, object]]:
    """The `rungs` parser (one subparser per command module, kept in `parser.commands`) and the modules."""
    from rungs import __version__

    parser = OneLineErrorParser(
        prog="rungs",
        description="Make a language model better at verifiable problems with no labels.",
    )
    parser.add_argument("--version", action="version", version=f"rungs {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineErrorParser)
    modules = _command_modules()
    for name, module in sorted(modules.items()):
        p = sub.add_parser(name, help=module.HELP, description=getattr(module, "__doc__", None) or module.HELP,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(p)
        if name in THREADED:
            p.add_argument("--threads", type=_threads, default=argparse.SUPPRESS, metavar="N",
                           help="torch threads and default verifier workers (default: the cores free at start; "
                                "0 = one per core, as before)")
    parser.commands = dict(sub.choices)  # type: ignore[attr-defined]
    return parser, modules


def _threads(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0 (0 = one per core), got {text!r}")
    return value


def _check_command(parser: argparse.ArgumentParser, argv: list[str], names: Sequence[str]) -> None:
    """An unknown command is a usage error with a did-you-mean (`rungs evl` -> eval); so is a
    command's option before any command (`rungs --out DIR`: argparse would take DIR for the
    command, or `rungs --out demo` for `rungs demo` with a dangling --out)."""
    import difflib

    first = argv[0] if argv else ""
    own = first in ("-h", "--", "--version") or (len(first) > 2 and ("--help".startswith(first) or "--version".startswith(first)))
    if first.startswith("-") and not own:  # rungs' own flags (and argparse's abbreviations of them) are fine
        flag = first.split("=", 1)[0]
        # the command word, unless it is a flag's value (`--out demo`: a flag without `=` before it)
        at = next((i for i, a in enumerate(argv) if a in names
                   and not (argv[i - 1].startswith("-") and "=" not in argv[i - 1])), None)
        command = "demo" if at is None else argv[at]
        rest = argv if at is None else argv[:at] + argv[at + 1:]
        sub = getattr(parser, "commands", {}).get(command)
        if sub is not None and not _takes(sub, flag):  # moving it would only be refused there
            parser.error(f"{flag} before the command: options follow it, but `rungs {command}` has no {flag} option")
        parser.error(f"{flag} before the command: options follow it, e.g. `rungs {command} {' '.join(rest)}` "
                     f"(plain `rungs` runs the demo with its defaults)")
    word = next((a for a in argv if not a.startswith("-")), None)
    if word is None or word in names or argv.index(word) != 0:
        return
    close = difflib.get_close_matches(word, names, n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else f"; expected one of {', '.join(sorted(names))}"
    parser.error(f"unknown command {word!r}{hint}")


def _takes(parser: argparse.ArgumentParser, flag: str) -> bool:
    """Whether `parser` accepts the option `flag`: one of its option strings, or (argparse
    abbreviates) the start of one."""
    options = parser._option_string_actions
    return flag in options or (parser.allow_abbrev and flag.startswith("--") and any(o.startswith(flag) for o in options))


def _foreign_flag_hint(extra: Sequence[str]) -> str:
    """For the first unrecognized flag that is a TRL / transformers setting rungs does not take
    (`--output-dir`, `--bf16`, `--use_vllm`: HfArgumentParser accepts both spellings), what rungs
    does instead (the same hints a YAML file holding that key gets); else ""."""
    from rungs.train.grpo_config import TRL_SETTINGS

    for token in extra:
        if token.startswith("--"):
            key = token[2:].split("=", 1)[0].replace("-", "_")
            if key in TRL_SETTINGS:
                return f"; --{token[2:].split('=', 1)[0]} is a TRL / transformers setting: {TRL_SETTINGS[key]}"
    return ""


def _nearest_flag_hint(parser: argparse.ArgumentParser, extra: Sequence[str]) -> str:
    """`; did you mean --limit?` for the first unrecognized flag close to one `parser` takes
    (`--limt`, `--max-steps` where the command counts `--steps`); else "". Names are compared
    without their `--`, which would make any two flags look alike (`--threads` and `--task`)."""
    import difflib

    known = {s[2:]: s for action in parser._actions for s in action.option_strings if s.startswith("--")}
    for token in extra:
        if token.startswith("--"):
            flag = token.split("=", 1)[0]
            shorter = [k for k in known.values() if flag.endswith("-" + k[2:])]  # --max-steps -> --steps
            close = shorter[:1] or [known[k] for k in difflib.get_close_matches(flag[2:], known, n=1, cutoff=0.6)]
            if close:
                return f"; did you mean {close[0]}?"
    return ""


def main(argv: Sequence[str] | None = None) -> int:
    parser, modules = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        argv = getattr(modules.get("demo"), "DEFAULT_ARGV", None) or ["--help"]
    _check_command(parser, argv, list(modules))
    args, extra = parser.parse_known_args(argv)
    if extra:  # reported by the subcommand's parser, so that its usage is shown
        where = parser.commands.get(args.command, parser) if args.command else parser  # type: ignore[attr-defined]
        where.error(f"unrecognized arguments: {' '.join(extra)}{_foreign_flag_hint(extra) or _nearest_flag_hint(where, extra)}")
    if args.command is None:
        parser.print_help()
        return 0
    import warnings

    plain = warnings.formatwarning

    def one_line(message, category, filename, lineno, line=None):  # type: ignore[no-untyped-def]
        # rungs' own warnings are for the user: one line, no source path or code line
        if str(filename).startswith(str(Path(__file__).resolve().parent)) and issubclass(category, UserWarning):
            return f"rungs {args.command}: warning: {message}\n"
        return plain(message, category, filename, lineno, line)

    warnings.formatwarning = one_line
    if getattr(args, "progress", True) is False:  # --no-progress: transformers' and the hub's bars too
        import os

        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        if args.command in THREADED:  # before the job imports torch: see rungs/threads.py
            from rungs.threads import configure_threads

            threads = vars(args).pop("threads", None)
            configure_threads(threads)
        return int(modules[args.command].run(args) or 0)
    except UserError as err:
        print(f"rungs {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as interrupt:
        said = str(interrupt) if isinstance(interrupt, Interrupted) else ""
        print(f"rungs {args.command}: {said or 'interrupted'}", file=sys.stderr)
        return 130
    finally:
        warnings.formatwarning = plain


if __name__ == "__main__":
    sys.exit(main())
