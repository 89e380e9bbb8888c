"""Write random problems of a task at a chosen difficulty, each with its known answer, as JSONL.

examples:
  rungs sample-problems --task integration --n 100 --difficulty 3 > int3.jsonl
  rungs sample-problems --task countdown --n 1000 --difficulty 2.5 --seed 7 --out cd.jsonl

Difficulty runs from 1 (easiest) up to the task's top level (6 for integration); a fractional
value mixes the two neighbouring levels. One row per problem: id, problem, answer, meta — the
format every `--problems` flag reads. The same (task, n, difficulty, seed) gives the same file.
"""

from __future__ import annotations

import argparse
import json
import math
import sys

from rungs.config import finite_float_arg
from rungs.errors import UserError

NAME = "sample-problems"
HELP = "write generated problems with known answers as JSONL"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", required=True, help="task name (see `rungs tasks`)")
    parser.add_argument("--n", type=int, default=100, help="number of problems (default: 100)")
    parser.add_argument("--difficulty", type=finite_float_arg, default=1.0, help="1 = easiest; fractional values mix levels (default: 1)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--out", default=None, help="write to this file instead of stdout")


def _span(low: float, high: float) -> str:
    """`5` for one level, `3-4` for several."""
    return f"level {low:g}" if low == high else f"levels {low:g}-{high:g}"


def run(args: argparse.Namespace) -> int:
    from rungs.data import write_jsonl
    from rungs.tasks import get_task

    if args.n < 1:
        raise UserError(f"--n must be >= 1, got {args.n}")
    if not math.isfinite(args.difficulty) or args.difficulty < 0:
        raise UserError(f"--difficulty must be a finite number >= 0 (1 = easiest), got {args.difficulty}")
    task = get_task(args.task)
    try:
        problems = task.generate(args.n, args.difficulty, seed=args.seed)
    except (ValueError, RuntimeError) as err:  # a difficulty the task cannot make, or a level too small for n
        raise UserError(f"task {task.name!r} cannot generate problems at difficulty {args.difficulty:g}: {err}") from None
    rows = [p.to_dict() for p in problems]
    levels = [float(p.meta["difficulty"]) for p in problems if isinstance(p.meta.get("difficulty"), (int, float))]
    if levels and not min(levels) - 1 < args.difficulty < max(levels) + 1:  # the generator clamped it
        print(f"rungs sample-problems: warning: --difficulty {args.difficulty:g} is outside {task.name}'s levels; "
              f"the problems are at {_span(min(levels), max(levels))}", file=sys.stderr)
    distinct = len({p.text for p in problems})
    if distinct < len(problems):  # a level with few problems (integration's level 1 has 144) repeats them
        print(f"rungs sample-problems: warning: only {distinct} distinct {task.name} problems among the {len(problems)} "
              f"at difficulty {args.difficulty:g}; the rest repeat (ask for fewer, or a higher --difficulty)", file=sys.stderr)
    if args.out:
        write_jsonl(args.out, rows)
        print(f"wrote {len(rows)} {task.name} problems (difficulty {args.difficulty:g}, seed {args.seed}) to {args.out}",
              file=sys.stderr)
    else:
        for row in rows:
            print(json.dumps(row, ensure_ascii=False))
    return 0
