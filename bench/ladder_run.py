"""The curve of `rungs ladder --max-steps 200`, as a new user runs it: training and held-out accuracy.

Issue 8 began with this run taking the tiny model's training accuracy from 0.375 to 0 by step
12. The measured cause was the easiest-first window, not a worse model (see
rungs/train/curriculum.py); this script reruns the same command with today's defaults (solve-rate
curriculum, the skills base) plus held-out evaluation every 25 steps, prints the curve and plots it.
The table and the plot name what the run itself recorded in its config.yaml (its task, held-out
set, budget, evaluation interval, policy and curriculum), not this command's flags.

    python bench/ladder_run.py                    # runs it into bench/results/ladder-200 (about 15 minutes
                                                  # on 2 cores), plot bench/results/ladder_run.png
    python bench/ladder_run.py --steps 400 --out bench/results-x   # bench/results-x/ladder-400, its plot beside it
    python bench/ladder_run.py --run runs/x       # only plot an existing run directory (plot: runs/x/ladder_run.png)

Run again with the same --out and --steps, it continues a killed run (`rungs ladder --resume`) and
only replots a finished one.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))
import bench_cli  # noqa: E402


def run_settings(run: Path) -> dict[str, Any]:
    """What a `rungs ladder` run recorded in its config.yaml: task, eval_problems (None: no held-out
    set), max_steps, eval_steps, policy and curriculum. Raises SystemExit (one line naming the
    run) when it is not such a run."""
    import yaml

    config_path = run / "config.yaml"
    if not config_path.is_file():
        raise SystemExit(f"ladder_run: {run}: no config.yaml (expected a `rungs ladder` run directory)")
    config = yaml.safe_load(config_path.read_text()) or {}
    if not isinstance(config.get("ladder"), dict):
        raise SystemExit(f"ladder_run: {config_path}: no `ladder` section (expected a `rungs ladder` run directory)")
    ladder, grpo = config["ladder"], config.get("grpo") or {}
    return {"task": ladder.get("task", "integration"), "eval_problems": ladder.get("eval_problems"),
            "max_steps": grpo.get("max_steps"), "eval_steps": grpo.get("eval_steps") or 0,
            "policy": ladder.get("policy", "tiny"), "curriculum": ladder.get("curriculum", "solve_rate")}


def set_label(spec: str | None) -> str:
    """A held-out set as the table and plot name it: builtin:NAME as it is, a file by its name."""
    if not spec:
        return "none"
    return spec if spec.startswith("builtin:") else Path(spec).name


def curve(run: Path, settings: dict[str, Any]) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
    """(training accuracy per step, held-out greedy accuracy per evaluation) from RUN/events.jsonl.
    Raises SystemExit (one line naming the run) when it holds no held-out evaluation: the curve
    this script prints is the held-out one, with training accuracy beside it."""
    from rungs.runs import read_jsonl

    events_path = run / "events.jsonl"
    events = list(read_jsonl(events_path)) if events_path.is_file() else []
    train = [(e["step"], e["accuracy"]) for e in events if "accuracy" in e and "eval_accuracy" not in e]
    held = [(e["step"], e["eval_accuracy"]) for e in events if "eval_accuracy" in e]
    if not held:
        why = ("the run has no held-out set (eval_problems: none) and so no eval_accuracy events"
               if not settings["eval_problems"] else
               f"no eval_accuracy event in {events_path.name} yet ({len(train)} training steps logged)")
        raise SystemExit(f"ladder_run: {run}: {why} (expected a `rungs ladder` run with held-out evaluation, "
                         "--eval-steps N or --eval-on-start)")
    return train, held


def make_run(run: Path, steps: int) -> None:
    """`rungs ladder --max-steps STEPS` into RUN; a run already there is continued (--resume), or,
    finished, left as it is. Raises SystemExit (one line) when `rungs ladder` fails (it has said why)."""
    summary = run / "summary.json"
    if summary.is_file() and int(json.loads(summary.read_text()).get("total_steps", 0)) >= steps:
        print(f"ladder_run: {run} holds a finished run; plotting it (remove it to run again)", flush=True)
        return
    if (run / "config.yaml").is_file():
        print(f"ladder_run: {run} holds a started run; continuing it (rungs ladder --resume)", flush=True)
        cmd = ["--resume", str(run), "--max-steps", str(steps), "--no-progress"]
    else:
        cmd = ["--max-steps", str(steps), "--eval-steps", "25", "--eval-on-start", "--no-progress", "--out", str(run)]
    done = subprocess.run([sys.executable, "-m", "rungs.cli", "ladder", *cmd], check=False)
    if done.returncode != 0:
        raise SystemExit(f"ladder_run: `rungs ladder` into {run} failed (exit status {done.returncode}; its message is above)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", default=None, help="an existing `rungs ladder` run directory to plot (nothing is run)")
    ap.add_argument("--steps", type=bench_cli.positive, default=200,
                    help="--max-steps of the run this script makes (not with --run; default 200)")
    ap.add_argument("--out", default=None, metavar="DIR",
                    help="results folder, as in the other bench scripts: the run this script makes goes to "
                         "DIR/ladder-STEPS and the plot to DIR/ladder_run.png (default: bench/results; with --run, "
                         "the plot goes into the run directory unless --out is given)")
    args = ap.parse_args(argv)
    if args.out and (Path(args.out).suffix.lower() == ".png" or Path(args.out).is_file()):
        raise SystemExit(f"ladder_run: --out {args.out}: expected a folder (the plot is written there as ladder_run.png)")
    if args.run:
        run = Path(args.run)
        out = Path(args.out) if args.out else run
    else:
        out = Path(args.out or HERE / "results")
        run = out / f"ladder-{args.steps}"
        make_run(run, args.steps)
    settings = run_settings(run)
    train, held = curve(run, settings)

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from rungs.report import print_table, save_png

    held_name = set_label(settings["eval_problems"])
    every = settings["eval_steps"]  # 0: evaluated at the start and the end only
    window = min(every, settings["max_steps"] or every)  # a run shorter than one interval: its own length
    train_column = (f"training accuracy (mean of the last {window} step{'' if window == 1 else 's'})" if every
                    else "training accuracy (mean since the previous evaluation)")
    command = f"rungs ladder --task {settings['task']} --max-steps {settings['max_steps']}"
    rows = []
    for i, (step, acc) in enumerate(held):
        since = step - every if every else (held[i - 1][0] if i else step)
        window = [a for s, a in train if since < s <= step]
        rows.append({"step": step, f"held-out greedy ({held_name})": f"{acc:.3f}",
                     train_column: f"{statistics.fmean(window):.3f}" if window else "-"})
    print_table(rows, list(rows[0]), title=f"{command}: {run}")

    fig = Figure(figsize=(7, 4), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    steps = [s for s, _ in train]
    smooth = [statistics.fmean(a for _, a in train[max(0, i - 9):i + 1]) for i in range(len(train))]
    ax.plot(steps, [a for _, a in train], color="#4c72b0", alpha=0.25, label="training accuracy (own samples)")
    ax.plot(steps, smooth, color="#4c72b0", label="training accuracy, 10-step mean")
    ax.plot([s for s, _ in held], [a for _, a in held], "o-", color="#dd8452", label=f"held-out greedy, {held_name}")
    ax.set_ylim(0, 1)
    ax.set_xlabel("GRPO step")
    ax.set_ylabel("accuracy")
    ax.set_title(f"{command} (policy {settings['policy']}, {settings['curriculum']} curriculum)", fontsize=10)
    ax.legend()
    ax.grid(True, alpha=0.3)
    path = out / "ladder_run.png"
    save_png(fig, path)
    print(f"plot: {path}")
    return 0


if __name__ == "__main__":
    bench_cli.run(main, "ladder_run")
