"""What a LADDER run trained on, read from its own rollouts: the climb rung by rung, and the roots.

A solve-rate curriculum can look like it climbs (training accuracy rising) while it only drills a
few problems, or while the rung next to the roots stays out of reach. This reads a `rungs ladder`
run directory (its `variants.jsonl` and `rollouts.jsonl`) and prints, per transform and rung (the
variant's difficulty rounded down; for countdown the number of numbers minus one; roots by the
task's difficulty), the share of right samples in each third of training with the sample count,
and then how many distinct problems were drawn, how many groups the most drawn one got, and how
many root problems were ever answered right.

    python bench/ladder_rollouts.py RUN_DIR [RUN_DIR ...] [--out FILE.json]

Issue 8 used it on the countdown runs of `bench/learning.py --task countdown --tune`: 3-number
variants rose from 0.19 to 0.44 right within 400 steps, the 4-number rung stayed at 0, and only
1-2 of the 200 roots were ever solved (one of them drawn 35 times).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

THIRDS = ("first third", "second third", "last third")


def rung_order(label: str) -> tuple[int, str]:
    """Sort key of a "transform, rung N" label: by rung, then by name (a label with no rung last)."""
    rung = label.rpartition(" rung ")[2]
    return (int(rung) if rung.isdigit() else 10**6, label)


def summarise(run_dir: Path) -> dict[str, Any]:
    """{"rungs": {label: [[right, samples] per third]}, "distinct_problems", "most_drawn_groups",
    "roots_drawn", "roots_ever_solved"}; the task and roots come from the run's config.yaml."""
    import yaml

    from rungs.data import load_problems
    from rungs.runs import read_jsonl
    from rungs.tasks import get_task

    config = yaml.safe_load((run_dir / "config.yaml").read_text())["ladder"]
    task = get_task(config["task"])
    roots = {p.id: p for p in load_problems(config["problems"])}
    variants = {row["id"]: row for row in read_jsonl(run_dir / "variants.jsonl")}
    # training rollouts only: a run with --eval-problems also logs its held-out greedy evaluations
    # (split "eval"), which are not what it trained on (logs from before the split field: all training)
    rollouts = [r for r in read_jsonl(run_dir / "rollouts.jsonl") if r.get("split", "train") == "train"]
    if not rollouts:
        raise SystemExit(f"{run_dir / 'rollouts.jsonl'}: no training rollouts to read")
    steps = max(r["step"] for r in rollouts)
    tally: dict[str, list[list[int]]] = defaultdict(lambda: [[0, 0] for _ in THIRDS])
    drawn: Counter[str] = Counter()
    root_right: Counter[str] = Counter()
    root_label: dict[str, str] = {}
    for r in rollouts:
        pid = r["problem_id"]
        drawn[pid] += 1
        right = r.get("verdict_reward") == 1.0
        if pid in variants:
            v = variants[pid]
            label = f"{v['transform']}, rung {int(v['difficulty'])}"
        else:
            if pid not in root_label:
                root_label[pid] = f"root, rung {int(task.difficulty(roots[pid]))}" if pid in roots else "root"
            label = root_label[pid]
            root_right[pid] += right
        third = min(2, 3 * (r["step"] - 1) // steps)
        tally[label][third][0] += right
        tally[label][third][1] += 1
    group = max(1, min(Counter((r["step"], r["problem_id"]) for r in rollouts).values()))
    return {"run": str(run_dir), "steps": steps, "rungs": {k: tally[k] for k in sorted(tally, key=rung_order)},
            "distinct_problems": len(drawn), "most_drawn_groups": drawn.most_common(1)[0][1] // group,
            "roots_drawn": len(root_label), "roots_ever_solved": sum(v > 0 for v in root_right.values())}


def main(argv: list[str] | None = None) -> int:
    from rungs.report import print_table

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", help="`rungs ladder` run directories")
    ap.add_argument("--out", default=None, help="write the summaries as JSON here")
    ap.add_argument("--plot", default=None, help="plot the share right per rung and third, all runs pooled, as PNG here "
                                                 "(default: next to --out)")
    args = ap.parse_args(argv)
    results = []
    for run in args.runs:
        run_dir = Path(run)
        missing = [f for f in ("config.yaml", "variants.jsonl", "rollouts.jsonl") if not (run_dir / f).is_file()]
        if missing:
            raise SystemExit(f"{run_dir}: not a `rungs ladder` run directory (no {', '.join(missing)})")
        s = summarise(run_dir)
        results.append(s)
        print_table([{"transform, rung": label, **{t: f"{a / b:.3f} ({b})" if b else "-" for t, (a, b) in zip(THIRDS, cells)}}
                     for label, cells in s["rungs"].items()], ["transform, rung", *THIRDS],
                    title=f"{run_dir}: share of right samples (samples) per third of {s['steps']} steps")
        print(f"distinct problems drawn {s['distinct_problems']}, most drawn {s['most_drawn_groups']} groups, "
              f"roots ever solved {s['roots_ever_solved']} of {s['roots_drawn']} drawn\n")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(results, indent=2))
    plot = args.plot or (str(Path(args.out).with_suffix(".png")) if args.out else None)
    if plot:
        plot_rungs(plot, results)
        print(f"plot: {plot}")
    return 0


def plot_rungs(path: str, results: list[dict[str, Any]]) -> None:
    """Share of right samples per rung (variants of all transforms pooled; roots apart) by third."""
    from rungs.report import plot_lines

    pooled: dict[str, list[list[int]]] = {}
    for s in results:
        for label, cells in s["rungs"].items():
            transform, _, rung = label.rpartition(", ")
            key = f"roots, {rung}" if transform == "root" else f"variants, {rung}"
            into = pooled.setdefault(key, [[0, 0] for _ in THIRDS])
            for third, (right, samples) in enumerate(cells):
                into[third][0] += right
                into[third][1] += samples
    series = {f"{key} ({sum(b for _, b in cells):,} samples)": ([1, 2, 3], [a / b if b else 0.0 for a, b in cells], None)
              for key, cells in sorted(pooled.items(), key=lambda kv: rung_order(kv[0]))}
    plot_lines(path, series, "third of training", "share of right samples", ylim=(0, 1),
               title=f"LADDER training: share right per rung, by third ({len(results)} runs pooled)")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import bench_cli

    bench_cli.run(main, "ladder_rollouts")
