"""Print the tree of easier variants a task's symbolic mutators make from one problem.

examples:
  rungs variants --task integration --problem "integrate(x**2*exp(3*x) + 2*x*cos(x**2), x)"
  rungs variants --task countdown --problem "numbers: 3 7 25 50; target: 72" --depth 3 --width 3
  rungs variants --task integration --problem "integrate(x*log(x), x)" --json > tree.jsonl

Each line shows the variant's difficulty (the task's own estimate), the edit that made it, and
its text, indented under its parent. --json prints one JSON row per variant instead (id,
problem, answer, difficulty, transform, parent_id, depth, root_id, meta), the format LADDER
reads back with --variants FILE; --out FILE writes those rows to a file.
"""

from __future__ import annotations

import argparse
import json

from rungs.errors import UserError

HELP = "print the tree of easier variants of one problem"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", required=True, help="task name (see `rungs tasks`)")
    parser.add_argument("--problem", required=True, help="the problem text, as in a problems file")
    parser.add_argument("--depth", type=int, default=2, help="levels of variants under the problem (default: 2)")
    parser.add_argument("--width", type=int, default=5, help="variants per node at most (default: 5)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--json", action="store_true", help="print one JSON row per variant")
    parser.add_argument("--out", default=None, help="also write the tree as JSONL to this file")


def run(args: argparse.Namespace) -> int:
    from rungs.tasks import get_task
    from rungs.types import Problem
    from rungs.variants.tree import render_tree, save_tree, variant_row, variant_tree

    if args.depth < 1:
        raise UserError(f"--depth must be >= 1, got {args.depth}")
    if args.width < 1:
        raise UserError(f"--width must be >= 1, got {args.width}")
    task = get_task(args.task)
    if not task.has_symbolic_variants:
        raise UserError(
            f"task {task.name!r} has no symbolic variant maker; "
            "its variants must be written by a language model (rungs.variants.llm)"
        )
    root = Problem(id="root", text=args.problem)
    task.parse_problem(root)
    tree = variant_tree(task, root, depth=args.depth, width=args.width, seed=args.seed)
    if args.out:
        save_tree(args.out, tree)
    if args.json:
        for variant in tree:
            print(json.dumps(variant_row(variant), ensure_ascii=False))
    else:
        print(render_tree(tree, root=root))
        print(f"{len(tree)} variants, depth {max((v.depth for v in tree), default=0)}"
              + (f"; written to {args.out}" if args.out else ""))
    return 0
