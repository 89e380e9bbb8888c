"""Reprint the result table of any run directory rungs writes, and redraw its plots.

examples:
  rungs report runs/countdown-grpo                 # rungs train
  rungs report runs/ladder-integration-20261130-120000
  rungs report runs/ttrl-integration-20261130-120000
  rungs report runs/eval-integration-20261130-120000
  rungs report runs/demo-integration-20261130-120000
  rungs report runs/countdown-grpo --no-plot --json

The kind of run is read from its files: `job:` in config.yaml where present, else the config's
sections (ladder:, ttrl:, demo:) or an evaluation's samples.jsonl / results.json. Works on a
finished run and on one still going or killed (a torn last line is skipped): the figures come
from what was logged so far, and the title says whether the run finished. A damaged row of a log
(not JSON, not an object, a field missing or of the wrong type) costs that row: it is left out with
one line `FILE:LINE: skipped ...: what was expected` on stderr.

  train / ladder   training reward and accuracy, first -> last; held-out greedy accuracy at each
                   end, labelled with its step ("start" is step 0), and the best one only when it
                   beats both. Plots: reward.png, accuracy.png.
  ttrl             variants mode: accuracy before / after from outcomes.jsonl, problems done;
                   vote mode: the training table and, once finished, accuracy before / after.
                   Plots: ttrl_outcomes.png or ttrl_vote.png.
  eval             the accuracy-vs-compute table, recomputed from samples.jsonl (results.json
                   where the samples are gone). Plots: accuracy_vs_n.png, accuracy_vs_tokens.png.
  demo             the stage table from summary.json; a demo stopped early points at its stages.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rungs.errors import UserError

HELP = "reprint any run's result table (train, ladder, ttrl, eval, demo) and redraw its plots"
KINDS = ("train", "ladder", "ttrl", "eval", "demo", "ttt")


def _plots(path: Path, draw: Callable[[], list[str]]) -> list[str]:
    """The plots `draw` writes into the run directory; [] with one warning line when the directory
    cannot be written (read-only, full): the table is what a report is for."""
    try:
        return draw()
    except OSError as err:
        print(f"rungs report: {path}: plots not redrawn ({err.strerror or err}); the table follows "
              "(--no-plot skips them)", file=sys.stderr)
        return []


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run directory made by rungs train, ladder, ttrl, eval or the demo")
    parser.add_argument("--plot", action=argparse.BooleanOptionalAction, default=True, help="redraw the PNG plots (default: on)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    summary = render_run(args.run_dir, plot=args.plot, echo=not args.json)
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
    return 0


# -- the rows of a run's logs ----------------------------------------------------------------------------

SKIPPED = "skipped (left out of the table)"


def _warn(line: str) -> None:
    """One line on stderr for a damaged row of a run's log."""
    print(f"rungs report: {line}", file=sys.stderr)


def _checked_rows(path: Path, check: Callable[[Any], str | None]) -> list[dict[str, Any]]:
    """The rows of a run's log `path` that `check` accepts: a damaged row costs that row, with one line
    `rungs report: FILE:LINE: skipped ...: what is wrong` on stderr (`rungs.runs.read_checked_jsonl`)."""
    from rungs.runs import read_checked_jsonl

    return [row for _, row in read_checked_jsonl(path, check, SKIPPED, _warn)]


# -- what kind of run ----------------------------------------------------------------------------------


def read_run_config(path: Path) -> dict[str, Any]:
    """config.yaml of a run directory ({} when there is none)."""
    from rungs.config import load_yaml

    return load_yaml(path / "config.yaml") if (path / "config.yaml").is_file() else {}


def run_kind(path: str | Path) -> str:
    """'train', 'ladder', 'ttrl', 'eval', 'demo' or 'ttt': the job that wrote directory `path`.

    Raises UserError when `path` is not a directory or holds no run rungs recognises."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such directory; expected a run directory (rungs train/ladder/ttrl/eval --out, or the demo's)")
    if not path.is_dir():
        raise UserError(f"{path}: is a file; expected a run directory (the folder holding config.yaml)")
    config = read_run_config(path)
    job = config.get("job")
    if isinstance(job, str) and job in KINDS:
        return job
    for section in ("ladder", "ttrl", "demo", "eval", "ttt"):
        if isinstance(config.get(section), dict):
            return section
    if (path / "samples.jsonl").exists() or (path / "results.json").exists():
        return "eval"
    summary = _read_json(path / "summary.json")
    if isinstance(summary, dict) and "stages" in summary:
        return "demo"
    if config and (path / "events.jsonl").exists():
        return "train"
    if (path / "training.json").exists():
        raise UserError(f"{path}: a tiny model checkpoint (rungs pretrain), not a run; its table is in "
                        f"{path / 'training.json'}, and `rungs eval --policy tiny:{path}` measures it")
    if (path / "config.json").exists() or (path / "adapter_config.json").exists():
        from rungs.policies.tiny.policy import WEIGHTS_FILE

        kind = "tiny" if (path / "tokenizer.json").exists() and (path / WEIGHTS_FILE).exists() and not (
            path / "tokenizer_config.json").exists() else "hf"
        raise UserError(f"{path}: a model directory (a saved checkpoint), not a run; `rungs eval --policy "
                        f"{kind}:{path}` measures it")
    raise UserError(f"{path}: not a run directory rungs recognises; expected config.yaml with events.jsonl "
                    "(train, ladder, ttrl), samples.jsonl (eval), outcomes.jsonl (ttt) or a demo's summary.json")


def _read_json(path: Path) -> Any:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def _settings(config: dict[str, Any], kind: str) -> dict[str, Any]:
    """The job's own settings: its section (ladder:, ttrl:, eval:, demo:) or the top level (train)."""
    section = config.get(kind)
    return section if isinstance(section, dict) else config


# -- training runs (train, ladder, ttrl vote) ----------------------------------------------------------


def summary_rows(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """Table rows of a training summary. Each held-out accuracy is labelled with its step ("start"
    only for step 0); 'best' is shown only when it beats both ends (else it says nothing)."""
    window = summary.get("train_window")
    over = f", mean of the first / last {window} steps" if window and window > 1 else ""
    rows = [
        {"metric": f"reward (train{over})", "start": summary.get("reward_first"), "end": summary.get("reward_last")},
        {"metric": f"accuracy (train samples{over})", "start": summary.get("accuracy_first"),
         "end": summary.get("accuracy_last")},
    ]
    if "eval_accuracy_start" in summary:
        first, last = summary.get("eval_step_start"), summary.get("eval_step_end")
        label = "accuracy (eval, greedy)" + ("" if first == 0 else f"; first eval at step {first}, none at step 0")
        row = {"metric": label, "start": summary["eval_accuracy_start"], "end": summary["eval_accuracy_end"]}
        if first == last:
            row["end"] = None  # one evaluation: no end distinct from the start
        best = summary.get("eval_accuracy_best")
        if best is not None and best > max(summary["eval_accuracy_start"], summary["eval_accuracy_end"]):
            row.update({"best": best, "best step": summary.get("eval_step_best")})
        rows.append(row)
    return rows


def _render_training(path: Path, kind: str, config: dict[str, Any], plot: bool, echo: bool) -> dict[str, Any]:
    from rungs.report import plot_run, print_table
    from rungs.runs import RunDir, read_jsonl
    from rungs.train.grpo import summarize

    events = read_jsonl(path / "events.jsonl")
    saved = _read_json(path / "summary.json") or {}
    settings = _settings(config, kind)
    if not events:
        raise UserError(f"{path / 'events.jsonl'}: no events yet; the {kind} run has not trained a step (come back later)")
    max_steps = (config.get("grpo") or {}).get("max_steps")
    if kind == "ttrl":
        max_steps = settings.get("steps_vote", max_steps)
    total = saved.get("total_steps") or (max_steps if isinstance(max_steps, int) and max_steps > 0 else None)
    summary = summarize(events, total_steps=total, run_dir=str(path))
    latest = RunDir(path).latest_checkpoint()
    summary["latest_checkpoint"] = str(latest[1]) if latest else None
    summary["kind"] = kind
    for key in ("variants", "final_policy", "accuracy_before", "accuracy_after", "mode"):
        if key in saved:
            summary[key] = saved[key]
    if plot:
        summary["plots"] = _plots(path, lambda: [str(p) for p in plot_run(path, events)])
    if echo:
        done = "finished" if summary["completed"] else "not finished"
        if summary.get("stopped_early"):
            done = f"finished: stopped early at step {summary['stopped_early_step']}"
        steps = f"step {summary['steps']}" + (f"/{summary['total_steps']}" if summary.get("total_steps") else "")
        title = (f"{path}: {kind}, {settings.get('task', '?')} / {settings.get('policy', '?')}, {steps} ({done}), "
                 f"{summary['train_time_s']:.1f} s of training")
        rows = summary_rows(summary)
        if "accuracy_before" in summary:  # ttrl vote mode, finished
            rows.append({"metric": "accuracy (test set, greedy)", "start": summary["accuracy_before"],
                         "end": summary["accuracy_after"]})
        print_table(rows, ["metric", "start", "end", "best", "best step"], title=title)
        if summary.get("final_policy"):
            print(f"final weights: {summary['final_policy']}")
        if summary.get("plots"):
            print("plots: " + ", ".join(summary["plots"]))
    return summary


# -- ttrl ----------------------------------------------------------------------------------------------


def _render_ttrl(path: Path, config: dict[str, Any], plot: bool, echo: bool) -> dict[str, Any]:
    from rungs.pipelines.ttrl import (
        OUTCOMES_FILE,
        plot_ttrl,
        print_summary,
        read_outcomes,
        summarize_variants,
    )

    settings = _settings(config, "ttrl")
    if settings.get("mode", "variants") == "vote":
        return _render_training(path, "ttrl", config, plot, echo)
    saved = _read_json(path / "summary.json")
    rows = read_outcomes(path / OUTCOMES_FILE, SKIPPED, _warn)
    finished = isinstance(saved, dict) and "accuracy_after" in saved
    if not rows and not finished:
        raise UserError(f"{path / OUTCOMES_FILE}: no problem finished yet; the ttrl run is on its first problem (come back later)")
    summary = dict(saved) if finished else summarize_variants(rows)
    summary.update({"kind": "ttrl", "mode": "variants", "run_dir": str(path), "completed": finished,
                    "problems_done": len(rows)})
    if plot:
        summary["plots"] = _plots(path, lambda: plot_ttrl(path, summary))
    if echo:
        if not finished:
            print(f"(not finished: {len(rows)} problems done so far; continue with rungs ttrl --resume {path})")
        print_summary(summary)
        if summary.get("plots"):
            print("plots: " + ", ".join(summary["plots"]))
    return summary


# -- eval ----------------------------------------------------------------------------------------------


def _unregistered_task(name: str) -> Any:
    """A stand-in for a task registered only in the process that ran an eval, for reading its problems
    the lenient way (`load_task_problems`: a row that is not a problem row is skipped, as the run skipped
    it; every problem row is taken, as the stand-in cannot parse problems). It prompts and checks nothing."""
    from rungs.tasks.base import Task
    from rungs.types import Problem, Verdict

    class Unregistered(Task):
        def prompt(self, problem: Problem, style: str = "instruct") -> str:
            raise UserError(f"task {self.name!r} is not registered here")

        def verify_answer(self, problem: Problem, answer: str) -> Verdict:
            raise UserError(f"task {self.name!r} is not registered here")

        def generate(self, n: int, difficulty: float, seed: int = 0) -> list[Problem]:
            raise UserError(f"task {self.name!r} is not registered here")

    task = Unregistered()
    task.name = name
    return task


def _render_eval(path: Path, config: dict[str, Any], plot: bool, echo: bool) -> dict[str, Any]:
    import dataclasses

    from rungs.pipelines.evaluate import (
        RECORDS_FILE,
        RESULTS_FILE,
        EvalConfig,
        format_summary,
        plot_summary,
        record_problem,
        summarize,
    )
    from rungs.strategies import plan
    from rungs.types import Problem

    results = _read_json(path / RESULTS_FILE) or {}
    names = {f.name for f in dataclasses.fields(EvalConfig)}
    values = _settings(config, "eval") if config else (results.get("config") or {})
    eval_config = EvalConfig(**{k: v for k, v in values.items() if k in names})
    if (path / RECORDS_FILE).exists():
        records = _checked_rows(path / RECORDS_FILE, record_problem)
    else:  # the samples are gone: results.json's copy of them, checked the same way
        stored = results.get("records")
        records = []
        for i, row in enumerate(stored if isinstance(stored, list) else []):
            why = record_problem(row)
            if why:
                print(f"rungs report: {path / RESULTS_FILE}: records[{i}]: {SKIPPED}: {why}", file=sys.stderr)
            else:
                records.append(row)
    if not records:
        raise UserError(f"{path / RECORDS_FILE}: no samples yet; the evaluation has not finished a problem (come back later)")
    if results.get("problems"):
        problems = [Problem.from_dict(p) for p in results["problems"]]
    else:  # killed before results.json: the problems as the run read them (its skipped rows skipped)
        from rungs.data import load_task_problems
        from rungs.tasks import get_task

        try:
            task = get_task(eval_config.task)
        except UserError:  # a task registered only in the process that ran it: rows it could not read skipped
            task = _unregistered_task(str(eval_config.task))
        problems = load_task_problems(eval_config.problems, task, eval_config.limit, warn=lambda line: None)
    summary = summarize(eval_config, plan(eval_config.strategy), problems, records)
    summary.update({"kind": "eval", "run_dir": str(path), "completed": summary.get("complete", False)})
    if plot:
        summary["plots"] = _plots(path, lambda: [str(path / f"{name}.png") for name in plot_summary(path, summary)])
    if echo:
        print(f"{path}: eval ({'finished' if summary['completed'] else 'not finished'})")
        print(format_summary(eval_config, summary))
        if summary.get("plots"):
            print("plots: " + ", ".join(summary["plots"]))
    return summary


# -- demo ----------------------------------------------------------------------------------------------


def _render_demo(path: Path, config: dict[str, Any], plot: bool, echo: bool) -> dict[str, Any]:
    from rungs.pipelines.demo import plot_stages, print_stages, stages_title

    saved = _read_json(path / "summary.json")
    if not (isinstance(saved, dict) and saved.get("stages")):
        stages = [d.name for d in (path / "ladder", path / "ttrl") if (d / "config.yaml").exists()]
        where = "; its stages so far: " + ", ".join(f"rungs report {path / s}" for s in stages) if stages else ""
        raise UserError(f"{path}: the demo has not finished (no summary.json yet){where}")
    summary = {**saved, "kind": "demo", "run_dir": str(path), "completed": True}
    if plot:
        plot_stages(path / "demo.png", saved["stages"], title=stages_title(saved))
    if echo:
        print_stages(summary)
    return summary


def render_run(run_dir: str | Path, plot: bool = True, echo: bool = True) -> dict[str, Any]:
    """Print the result table of any run directory (and redraw its plots); returns its summary.

    The summary is recomputed from the run's logs (events, outcomes or samples), so a run that is
    still going or was killed reports what it has done so far; `completed` says whether it ended."""
    path = Path(run_dir)
    kind = run_kind(path)
    config = read_run_config(path)
    if kind == "eval":
        return _render_eval(path, config, plot, echo)
    if kind == "ttrl":
        return _render_ttrl(path, config, plot, echo)
    if kind == "demo":
        return _render_demo(path, config, plot, echo)
    if kind == "ttt":
        return _render_ttt(path, config, plot, echo)
    return _render_training(path, kind, config, plot, echo)


def _render_ttt(path: Path, config: dict[str, Any], plot: bool, echo: bool) -> dict[str, Any]:
    """A `rungs ttt` run: its table recomputed from outcomes.jsonl (so a killed run reports the
    problems it finished), and ttt.png redrawn."""
    import dataclasses

    from rungs.pipelines.ttt import (
        OUTCOMES_FILE,
        TTTConfig,
        plot_ttt,
        print_summary,
        read_outcomes,
        summarize,
    )

    names = {f.name for f in dataclasses.fields(TTTConfig)}
    ttt_config = TTTConfig(**{k: v for k, v in _settings(config, "ttt").items() if k in names})
    rows = read_outcomes(path / OUTCOMES_FILE, SKIPPED, _warn)
    if not rows:
        raise UserError(f"{path / OUTCOMES_FILE}: no problem finished yet (come back later)")
    saved = _read_json(path / "summary.json")
    summary = {**summarize(rows, ttt_config), "run_dir": str(path), "kind": "ttt",
               "completed": isinstance(saved, dict) and saved.get("problems") == len(rows)}
    if plot:
        summary["plots"] = [str(plot_ttt(path / "ttt.png", rows, summary, ttt_config))]
    if echo:
        print_summary(summary, ttt_config)
        if not summary["completed"]:
            print(f"(not finished: {len(rows)} problems done; `rungs ttt --resume {path}` continues it)")
    return summary
