"""The curve of `rungs ladder --max-steps 200`, as a new user runs it: training and held-out accuracy.

Issue 8 began with this run taking the tiny model's training accuracy from 0.375 to 0 by step
12. The measured cause was the easiest-first window, not a worse model (see
rungs/train/curriculum.py); this script reruns the same command with today's defaults (solve-rate
curriculum, the skills base) plus held-out evaluation every 25 steps, prints the curve and plots it.

    python bench/ladder_run.py                    # runs it (about 15 minutes on 2 cores)
    python bench/ladder_run.py --run runs/x       # only plot an existing run directory
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", default=None, help="an existing `rungs ladder` run directory to plot")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--out", default=str(HERE / "results"))
    args = ap.parse_args(argv)
    run = Path(args.run) if args.run else Path(args.out) / "ladder-200"
    if not args.run:
        subprocess.run([sys.executable, "-m", "rungs.cli", "ladder", "--max-steps", str(args.steps), "--eval-steps", "25",
                        "--eval-on-start", "--no-progress", "--out", str(run)], check=True)

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from rungs.report import print_table, save_png
    from rungs.runs import read_jsonl

    events = read_jsonl(run / "events.jsonl")
    train = [(e["step"], e["accuracy"]) for e in events if "accuracy" in e and "eval_accuracy" not in e]
    held = [(e["step"], e["eval_accuracy"]) for e in events if "eval_accuracy" in e]
    rows = []
    for step, acc in held:
        window = [a for s, a in train if step - 25 < s <= step]
        rows.append({"step": step, "held-out greedy (builtin:integration-dev)": f"{acc:.3f}",
                     "training accuracy (mean of the last 25 steps)": f"{statistics.fmean(window):.3f}" if window else "-"})
    print_table(rows, list(rows[0]), title=f"rungs ladder --max-steps {args.steps}: {run}")

    fig = Figure(figsize=(7, 4), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    steps = [s for s, _ in train]
    smooth = [statistics.fmean(a for _, a in train[max(0, i - 9):i + 1]) for i in range(len(train))]
    ax.plot(steps, [a for _, a in train], color="#4c72b0", alpha=0.25, label="training accuracy (own samples)")
    ax.plot(steps, smooth, color="#4c72b0", label="training accuracy, 10-step mean")
    ax.plot([s for s, _ in held], [a for _, a in held], "o-", color="#dd8452", label="held-out greedy, integration-dev")
    ax.set_ylim(0, 1)
    ax.set_xlabel("GRPO step")
    ax.set_ylabel("accuracy")
    ax.set_title(f"rungs ladder --max-steps {args.steps} (tiny skills base, solve-rate curriculum)")
    ax.legend()
    ax.grid(True, alpha=0.3)
    out = Path(args.out) / "ladder_run.png"
    save_png(fig, out)
    print(f"plot: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
