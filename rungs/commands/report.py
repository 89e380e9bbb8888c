"""Reprint the summary table of a training run and redraw its plots from events.jsonl.

examples:
  rungs report runs/countdown-grpo
  rungs report runs/countdown-grpo --no-plot --json

Works on a finished run and on one still going or killed (a torn last line is skipped): the
figures come from the events logged so far. Plots written into the run directory:
reward.png (training reward and accuracy per step, with a moving average) and accuracy.png
(greedy accuracy on the eval problems, when the run had them).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

HELP = "reprint a run's summary table and redraw its plots"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run directory (made by rungs train)")
    parser.add_argument("--plot", action=argparse.BooleanOptionalAction, default=True, help="redraw the PNG plots (default: on)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    summary = render_run(args.run_dir, plot=args.plot, echo=not args.json)
    if args.json:
        print(json.dumps(summary, indent=2))
    return 0


def summary_rows(summary: dict[str, Any]) -> list[dict[str, Any]]:
    rows = [
        {"metric": "reward (train)", "start": summary.get("reward_first"), "end": summary.get("reward_last")},
        {"metric": "accuracy (train samples)", "start": summary.get("accuracy_first"), "end": summary.get("accuracy_last")},
    ]
    if "eval_accuracy_start" in summary:
        rows.append({"metric": "accuracy (eval, greedy)", "start": summary["eval_accuracy_start"],
                     "end": summary["eval_accuracy_end"], "best": summary["eval_accuracy_best"],
                     "best step": summary["eval_step_best"]})
    return rows


def render_run(run_dir: str | Path, plot: bool = True, echo: bool = True) -> dict[str, Any]:
    """Print a run's summary table (and write plots); the summary comes from its events."""
    from rungs.report import plot_run, print_table
    from rungs.runs import RunDir
    from rungs.train.grpo import summarize

    run = RunDir.open(run_dir)
    events = run.events()
    if not events:
        from rungs.errors import UserError

        raise UserError(f"{run.events_path}: no events yet; expected a run that has trained at least one step")
    config = run.read_config()
    saved = run.read_summary() or {}
    max_steps = (config.get("grpo") or {}).get("max_steps")
    total = saved.get("total_steps") or (max_steps if isinstance(max_steps, int) and max_steps > 0 else None)
    summary = summarize(events, total_steps=total, run_dir=str(run.path))
    latest = run.latest_checkpoint()
    summary["latest_checkpoint"] = str(latest[1]) if latest else None
    if plot:
        summary["plots"] = [str(p) for p in plot_run(run.path, events)]
    if echo:
        done = "finished" if summary["completed"] else "not finished"
        title = (f"{run.path}: {config.get('task', '?')} / {config.get('policy', '?')}, step {summary['steps']}"
                 f"{'/' + str(summary['total_steps']) if summary.get('total_steps') else ''} ({done}), "
                 f"{summary['train_time_s']:.1f} s of training")
        print_table(summary_rows(summary), ["metric", "start", "end", "best", "best step"], title=title)
        if summary.get("plots"):
            print("plots: " + ", ".join(summary["plots"]))
    return summary
