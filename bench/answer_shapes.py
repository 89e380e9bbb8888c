"""What each arm's greedy answers look like: verdict shares, turnover against base, and brackets.

Why: on countdown every trained arm of bench/learning.py ends below base greedily while its sampled
pass@1 rises (bench/arm_samples.py). A mean hides two things this script measures: which problems
the greedy decoder solves (a trained arm can keep few of the base's solved problems and gain others),
and what its answers look like (the verdict each gets; for countdown, how many use brackets: 78% of
builtin:countdown-hard's reference solutions do, about 10% of a LADDER tree's variant solutions do).

It reads a finished bench/learning.py run (OUT/learning.json and each arm's kept weights, found as
bench/arm_samples.py finds them), decodes every arm greedily on the run's own sets (the tuning pool
for a `--tune` run, else the test set and the fresh draw), and writes OUT/answer_shapes.json and
OUT/answer_shapes.png.

    python bench/answer_shapes.py bench/results-dev/countdown-200-roots20-long-descend-band0.25 --task countdown
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/learning.py, bench/arm_samples.py
import bench_cli  # noqa: E402

STATUSES = ("correct", "wrong", "rejected", "unparseable")


def answer_shape(texts: list[str], statuses: list[str], countdown: bool) -> dict[str, Any]:
    """Shares (0-1) of `len(texts)` greedy answers per verdict status, and for countdown the share
    whose text uses a bracket. Statuses outside STATUSES are counted under "other"."""
    n = max(1, len(texts))
    counts = Counter(s if s in STATUSES else "other" for s in statuses)
    shape: dict[str, Any] = {s: counts.get(s, 0) / n for s in (*STATUSES, "other")}
    if countdown:
        shape["bracketed"] = sum("(" in t for t in texts) / n
    return shape


def turnover(base_solved: set[str], solved: set[str]) -> dict[str, int]:
    """Of the problems base solves greedily: how many the arm keeps and loses; and how many it gains."""
    return {"kept": len(base_solved & solved), "lost": len(base_solved - solved), "gained": len(solved - base_solved)}


def run_settings(out: Path, script: str = "answer_shapes") -> dict[str, Any]:
    """The settings a finished bench/learning.py run recorded in OUT/learning.json; SystemExit (one
    line, starting with `script`, the calling script's name) when there is none."""
    stored = out / "learning.json"
    if not stored.is_file():
        raise SystemExit(f"{script}: {stored}: not found (expected a finished bench/learning.py run)")
    return json.loads(stored.read_text())["settings"]


def run_sets(settings: dict[str, Any], suite: str) -> dict[str, list[Any]]:
    """The problem sets the run was scored on: the tuning pool for a --tune run, else test and fresh."""
    import learning

    from rungs.data import load_problems

    if settings.get("tune"):
        return {"dev": learning.dev_problems(suite)}
    _, test_name, _ = learning.SUITES[suite]
    return {"test": load_problems(f"builtin:{test_name}", limit=settings.get("limit")),
            "fresh": learning.fresh_problems(suite, settings.get("fresh", 40))}


def measure(out: Path, suite: str) -> dict[str, Any]:
    """{"suite", "base", "rows": [{arm, seed, set, problems, correct, wrong, ..., kept, lost, gained}]}."""
    import learning
    import torch
    from arm_samples import arm_policies

    from rungs.pipelines.ttrl import greedy_verdicts
    from rungs.policies import load_policy
    from rungs.tasks import get_task
    from rungs.verify.pool import VerifierPool

    settings = run_settings(out)
    base = settings.get("base", "tiny")
    policies = arm_policies(out, suite, base, settings["seeds"], script="answer_shapes")  # refuses a folder without weights
    sets = run_sets(settings, suite)
    task_name = learning.SUITES[suite][0]
    torch.set_num_threads(1)
    task = get_task(task_name)
    rows: list[dict[str, Any]] = []
    base_solved: dict[str, set[str]] = {}
    with VerifierPool(task, workers=1) as pool:
        for arm, seed, spec in policies:
            policy = load_policy(spec, task=task_name, seed=0)
            for name, problems in sets.items():
                verdicts = greedy_verdicts(policy, task, pool, problems, 96)
                solved = {p.id for p, (_, v) in zip(problems, verdicts) if v.correct}
                if arm == "base":
                    base_solved[name] = solved
                rows.append({"arm": arm, "seed": seed, "set": name, "problems": len(problems),
                             **answer_shape([c.text for c, _ in verdicts], [str(v.status) for _, v in verdicts],
                                            countdown=task_name == "countdown"),
                             **turnover(base_solved[name], solved)})
                print(f"answer_shapes: {arm} seed {seed} {name}: correct {rows[-1]['correct']:.3f}", file=sys.stderr,
                      flush=True)
    return {"suite": suite, "base": base, "sets": list(sets), "rows": rows}


def summarise(result: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per (set, arm): mean over seeds of each share and of the turnover counts."""
    from arm_samples import ARMS, arm_rows

    from rungs.metrics import mean_std

    table = []
    for set_name in result["sets"]:
        for arm, label in ARMS:
            rows = arm_rows(result, arm, set_name)
            if not rows:
                continue
            cells: dict[str, Any] = {"set": set_name, "arm": label, "seeds": len(rows)}
            for key in (*STATUSES, "bracketed"):
                if key in rows[0]:
                    mean, std = mean_std([r[key] for r in rows])
                    cells[key] = f"{mean:.3f}" if len(rows) == 1 else f"{mean:.3f} ± {std:.3f}"
            if arm != "base":
                kept, lost, gained = (sum(r[k] for r in rows) / len(rows) for k in ("kept", "lost", "gained"))
                cells["base's solved: kept / lost; gained"] = f"{kept:.1f} / {lost:.1f}; {gained:.1f}"
            table.append(cells)
    return table


def plot(result: dict[str, Any], path: Path) -> None:
    """Bars per arm (mean over seeds): the share of greedy answers per verdict, and bracketed ones."""
    from arm_samples import ARMS, arm_rows
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from rungs.report import save_png

    keys = [k for k in (*STATUSES, "bracketed") if k in result["rows"][0]]
    fig = Figure(figsize=(4 + 3 * len(result["sets"]), 4), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(result["sets"]), sharey=True, squeeze=False)[0]
    for ax, set_name in zip(axes, result["sets"]):
        arms = [(label, rows) for arm, label in ARMS if (rows := arm_rows(result, arm, set_name))]
        width = 0.8 / max(1, len(arms))
        for i, (label, rows) in enumerate(arms):
            ax.bar([k + i * width for k in range(len(keys))], [sum(r[key] for r in rows) / len(rows) for key in keys],
                   width, label=f"{label} ({len(rows)} seed{'s' if len(rows) > 1 else ''})")
        ax.set_xticks([k + width * (len(arms) - 1) / 2 for k in range(len(keys))], keys)
        ax.set_title(set_name)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("share of greedy answers")
    axes[0].legend(fontsize=8)
    fig.suptitle(f"{result['suite']}: what each arm's greedy answers are (mean over seeds; base {result['base']})",
                 fontsize=10)
    save_png(fig, path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", help="a finished bench/learning.py --out directory")
    ap.add_argument("--task", default="countdown",
                    help="the suite in that directory (integration, countdown, integration-harder; default: countdown)")
    args = ap.parse_args(argv)
    import learning
    from arm_samples import save_result

    from rungs.report import print_table

    if args.task not in learning.SUITES:
        raise SystemExit(f"answer_shapes: --task {args.task!r}: expected one of {', '.join(learning.SUITES)}")
    out = Path(args.out)
    result = measure(out, args.task)
    table = summarise(result)
    print_table(table, list(dict.fromkeys(k for row in table for k in row)),
                title=f"{args.task}: greedy answers of each arm, shares of {', '.join(result['sets'])} "
                      f"(base {result['base']})")
    save_result(result, out / "answer_shapes", plot)
    return 0


if __name__ == "__main__":
    bench_cli.run(main, "answer_shapes")
