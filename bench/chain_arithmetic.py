"""Does a countdown model compute? The arithmetic of the steps it writes, checked one by one.

A worked chain (`46-31=15;21*15=315;...`, `rungs pretrain --answer-format steps`) states every
intermediate value, so each step `a op b = c` can be checked on its own: is `c` really `a op b`?
This samples a policy on the countdown dev problems of levels 3-4 (the set every countdown base was
chosen on) and prints, per operation and by the size of the true result, the share of steps whose
stated value is right, as a table, JSON and a bar plot. A model that solves countdown must get
these right; `bench/precondition.py` says how often whole answers are right.

    python bench/chain_arithmetic.py --policy tiny:DIR                 # 8 samples per problem, T = 1
    python bench/chain_arithmetic.py --policy tiny:DIR --out FILE.json
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from fractions import Fraction
from pathlib import Path
from typing import Any

# `a op b = c` with non-negative integers, as `render_steps` writes a step (no spaces)
STEP = re.compile(r"(?<![\d.])(\d{1,6})([-+*/])(\d{1,6})=(-?\d{1,7})(?![\d.])")
SMALL_RESULT = 100  # results up to this are "small": the size below which the pretraining pool's pairs mostly lie


def step_checks(texts: list[str]) -> dict[str, list[int]]:
    """{"op size": [right, total]} over every `a op b = c` step in `texts` (size: the true result
    up to SMALL_RESULT or above it; division by zero counts as wrong)."""
    counts: dict[str, list[int]] = {}
    for text in texts:
        for a, op, b, c in STEP.findall(text):
            x, y, stated = int(a), int(b), int(c)
            if op == "/" and y == 0:
                true = None
            else:
                true = {"+": x + y, "-": x - y, "*": x * y, "/": Fraction(x, y) if y else None}[op]
            size = "small" if true is not None and abs(true) <= SMALL_RESULT else "large"
            cell = counts.setdefault(f"{op} {size}", [0, 0])
            cell[0] += int(true is not None and true == stated)
            cell[1] += 1
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--policy", required=True, help="tiny:DIR (a worked-chain countdown model)")
    parser.add_argument("--problems", default="builtin:countdown-dev")
    parser.add_argument("--levels", default="3,4", help="difficulty levels kept (default 3,4)")
    parser.add_argument("--n", type=int, default=8, help="samples per problem")
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="write the counts as JSON here (and a .png beside it)")
    args = parser.parse_args(argv)

    from rungs.data import load_task_problems
    from rungs.policies import load_policy
    from rungs.policies.base import SamplingParams
    from rungs.report import print_table
    from rungs.tasks import get_task

    if args.out:  # before the measurement, so that a bad path does not cost it
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    task = get_task("countdown")
    levels = {int(x) for x in args.levels.split(",")}
    problems = [p for p in load_task_problems(args.problems, task) if int(p.meta.get("difficulty", 0)) in levels]
    if not problems:
        print(f"{args.problems}: no problem of levels {sorted(levels)}", file=sys.stderr)
        return 2
    policy = load_policy(args.policy, task="countdown", seed=args.seed)
    prompts = [task.prompt(p, style=getattr(policy, "prompt_style", "instruct")) for p in problems]
    sampling = SamplingParams(temperature=args.temperature, max_new_tokens=128, seed=args.seed)
    texts = [c.text for group in policy.generate(prompts, n=args.n, sampling=sampling) for c in group]
    counts = step_checks(texts)
    right, total = sum(v[0] for v in counts.values()), sum(v[1] for v in counts.values())
    if not total:
        print(f"{args.policy}: no worked-chain step (`a op b = c`) in {len(texts)} samples: is it a model trained with "
              "`rungs pretrain --answer-format steps`?", file=sys.stderr)
    rows: list[dict[str, Any]] = [{"step": k, "right": v[0], "steps": v[1], "share right": v[0] / v[1]}
                                  for k, v in sorted(counts.items())]
    rows.append({"step": "all", "right": right, "steps": total, "share right": right / total if total else "-"})
    print_table(rows, ["step", "right", "steps", "share right"],
                title=f"chain arithmetic: {args.policy}, {len(problems)} problems (levels {args.levels}) x {args.n} "
                      f"samples at T={args.temperature}; 'small': true result <= {SMALL_RESULT}")
    if args.out:
        result = {"policy": args.policy, "problems": args.problems, "levels": sorted(levels), "n": args.n,
                  "temperature": args.temperature, "seed": args.seed, "counts": counts,
                  "share_right": right / total if total else None, "steps": total}
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 3.5))
        ax.bar([r["step"] for r in rows], [r["share right"] if total else 0.0 for r in rows])
        ax.set_ylim(0, 1)
        ax.set_ylabel("share of steps with the right value")
        ax.set_title(f"Arithmetic of a worked-chain countdown model's steps\n({args.policy}, dev levels {args.levels}, "
                     f"T={args.temperature}, {total} steps)", fontsize=9)
        fig.tight_layout()
        fig.savefig(Path(args.out).with_suffix(".png"), dpi=120)
        print(f"wrote {args.out} and {Path(args.out).with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import bench_cli

    bench_cli.run(main, "chain_arithmetic")
