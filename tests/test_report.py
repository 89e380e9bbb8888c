"""`rungs report` reads every run directory rungs writes: train, ladder, ttrl, eval (old and new
config.yaml), demo; finished or not (issue 9, item 13)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from rungs.cli import main
from rungs.commands.report import render_run, run_kind
from rungs.errors import UserError


def _write(path: Path, config: dict | None = None, events: list | None = None, summary: dict | None = None,
           **jsonl: list) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    if config is not None:
        (path / "config.yaml").write_text(yaml.safe_dump(config))
    if events is not None:
        jsonl["events"] = events
    for name, rows in jsonl.items():
        (path / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    if summary is not None:
        (path / "summary.json").write_text(json.dumps(summary))
    return path


def _train_events(steps, accuracy=0.25):
    return [{"type": "train", "step": s, "reward": 0.1 * s, "accuracy": 0.05 * s, "time/step": 1.0} for s in steps]


def test_ladder_with_constant_accuracy_names_task_and_policy_and_no_best_step(tmp_path, capsys):
    events = [{"type": "eval", "step": 0, "eval_accuracy": 0.25}, *_train_events([1, 2]),
              {"type": "eval", "step": 2, "eval_accuracy": 0.25}]
    run = _write(tmp_path / "ladder", {"ladder": {"task": "integration", "policy": "tiny"}, "grpo": {"max_steps": 2}},
                 events, {"total_steps": 2, "variants": 7, "final_policy": "x/final"})
    summary = render_run(run, plot=False)
    out = capsys.readouterr().out
    assert run_kind(run) == "ladder" and summary["completed"]
    assert "? / ?" not in out and "integration / tiny" in out and "step 2/2 (finished)" in out
    eval_row = next(line for line in out.splitlines() if line.startswith("accuracy (eval"))
    assert eval_row.split()[-4:] == ["0.250", "0.250", "-", "-"]  # start and end; no best, no best step


def test_first_eval_after_step_zero_is_not_called_the_start(tmp_path, capsys):
    events = [*_train_events([1, 2]), {"type": "eval", "step": 2, "eval_accuracy": 0.5}]
    run = _write(tmp_path / "l", {"ladder": {"task": "integration", "policy": "tiny"}, "grpo": {"max_steps": 2}}, events)
    render_run(run, plot=False)
    assert "first eval at step 2, none at step 0" in capsys.readouterr().out


def test_train_rows_say_they_are_window_means(tmp_path, capsys):
    """The train rows' start / end are means over a window of steps; the table says how many."""
    run = _write(tmp_path / "l", {"ladder": {"task": "integration", "policy": "tiny"}, "grpo": {"max_steps": 20}},
                 _train_events(range(1, 21)))
    summary = render_run(run, plot=False)
    out = capsys.readouterr().out
    assert summary["train_window"] == 4
    row = next(line for line in out.splitlines() if line.startswith("reward (train"))
    assert "mean of the first / last 4 steps" in row
    assert [float(x) for x in row.split()[-4:-2]] == pytest.approx([0.25, 1.85])  # steps 1-4 and 17-20


def _outcome(i, before, after):
    return {"id": f"p{i}", "problem": "x", "solved_before": before, "solved_after": after, "ever_solved": after,
            "steps": 0 if before else 3, "variants": 4, "tokens": 10, "seconds": 1.0, "answer_before": None,
            "answer_after": None}


def test_a_finished_ttrl_run_reports_as_finished(tmp_path, capsys):
    from rungs.pipelines.ttrl import summarize_variants

    rows = [_outcome(0, True, True), _outcome(1, False, True), _outcome(2, False, False)]
    config = {"ttrl": {"task": "integration", "policy": "tiny", "mode": "variants"}, "grpo": {"max_steps": -1}}
    run = _write(tmp_path / "t", config, [], {**summarize_variants(rows), "run_dir": str(tmp_path / "t")}, outcomes=rows)
    summary = render_run(run, plot=True)
    out = capsys.readouterr().out
    assert summary["completed"] and summary["accuracy_after"] == pytest.approx(2 / 3)
    assert "not finished" not in out and "step 0" not in out and "greedy accuracy after TTRL" in out
    assert (run / "ttrl_outcomes.png").exists()
    # The same run killed after two problems: reported so far, and said to be unfinished.
    (run / "summary.json").unlink()
    (run / "outcomes.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:2]))
    summary = render_run(run, plot=False)
    assert not summary["completed"] and summary["problems_done"] == 2
    assert "not finished: 2 problems done" in capsys.readouterr().out


@pytest.mark.parametrize("layout", ["old", "new"])
def test_eval_runs_are_read_old_and_new(tmp_path, capsys, layout):
    from test_evaluate import AddTask, FakePolicy

    from rungs.config import to_dict
    from rungs.pipelines.evaluate import EvalConfig, evaluate
    from rungs.verify.pool import VerifierPool

    problems = tmp_path / "add.jsonl"
    problems.write_text("".join(json.dumps(p.to_dict()) + "\n" for p in AddTask().generate(4, 1, seed=3)))
    config = EvalConfig(task="add", problems=str(problems), policy="fake", n=[1, 2], seeds=1, out=str(tmp_path / "e"),
                        strategy=["greedy", "majority"], progress=False, plot=False)
    with VerifierPool(AddTask(), executor="inline") as pool:
        result = evaluate(config, policy=FakePolicy(), task=AddTask(), pool=pool, echo=False)
    run = tmp_path / "e"
    if layout == "new":  # the run-directory schema: the job's kind in config.yaml
        (run / "config.yaml").write_text(yaml.safe_dump({"job": "eval", **to_dict(config)}))
    summary = render_run(run, plot=True)
    out = capsys.readouterr().out
    assert run_kind(run) == "eval" and "no events" not in out and "maj@k" in out
    assert summary["metrics"] == result.summary["metrics"] and (run / "accuracy_vs_n.png").exists()
    (run / "results.json").unlink()  # killed before the end: recomputed from samples.jsonl
    assert render_run(run, plot=False)["metrics"] == result.summary["metrics"]


def test_demo_directory_is_read(tmp_path, capsys):
    stages = [{"stage": "base (supervised on easy integrals)", "accuracy": 0.0, "seconds": 1.0},
              {"stage": "LADDER checkpoint (shipped, evaluated here)", "accuracy": 0.0, "seconds": 1.0},
              {"stage": "after TTRL", "accuracy": 1 / 12, "seconds": 9.0}]
    summary = {"problems": 12, "source": "builtin:integration-hard", "stages": stages, "ever_solved_during_ttrl": 0.1,
               "run_dir": str(tmp_path / "d"), "plots": []}
    for name, config in (("d", {"job": "demo", "demo": {"limit": 12}}), ("old", None)):  # old demos had no config.yaml
        run = _write(tmp_path / name, config, summary=summary)
        assert run_kind(run) == "demo"
        render_run(run, plot=True)
        out = capsys.readouterr().out
        assert "after TTRL" in out and "1/12" in out and (run / "demo.png").exists()


def test_unfinished_demo_points_at_its_stages(tmp_path):
    run = _write(tmp_path / "d", {"job": "demo", "demo": {}})
    _write(run / "ttrl", {"ttrl": {"mode": "variants"}})
    with pytest.raises(UserError, match="has not finished.*rungs report .*ttrl"):
        render_run(run)


def test_what_is_not_a_run_directory_says_why(tmp_path, capsys):
    (tmp_path / "f.txt").write_text("x")
    (tmp_path / "empty").mkdir()
    assert main(["report", str(tmp_path / "f.txt")]) == 2
    assert "is a file" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "nope")]) == 2
    assert "no such directory" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "empty")]) == 2
    assert "not a run directory" in capsys.readouterr().err


def test_a_ttt_run_is_read_finished_or_not_and_a_model_directory_is_named(tmp_path, capsys):
    import shutil

    out = tmp_path / "ttt"
    assert main(["ttt", "--task", "arc", "--only-fitting", "--limit", "2", "--steps", "1", "--batch-size", "2",
                 "--train-augmentations", "1", "--infer-augmentations", "1", "--workers", "1", "--out", str(out)]) == 0
    capsys.readouterr()
    summary = render_run(out, plot=False)
    printed = capsys.readouterr().out
    assert run_kind(out) == "ttt" and summary["completed"] and summary["problems"] == 2
    assert "pass@2" in printed and "not finished" not in printed
    # killed after one problem: the table is of that one, and says how to continue
    lines = (out / "outcomes.jsonl").read_text().splitlines()
    (out / "outcomes.jsonl").write_text(lines[0] + "\n")
    summary = render_run(out, plot=False)
    assert summary["problems"] == 1 and not summary["completed"]
    assert f"rungs ttt --resume {out}" in capsys.readouterr().out
    model = tmp_path / "model"
    shutil.copytree(Path(__file__).resolve().parents[1] / "rungs" / "checkpoints" / "tiny-countdown-long", model)
    assert main(["report", str(model)]) == 2
    err = capsys.readouterr().err
    assert "a tiny model checkpoint (rungs pretrain), not a run" in err and f"--policy tiny:{model}`" in err
    (model / "training.json").unlink()  # a tiny run's final/: tiny; with a transformers tokenizer config: hf
    assert main(["report", str(model)]) == 2
    assert f"a model directory (a saved checkpoint), not a run; `rungs eval --policy tiny:{model}`" in capsys.readouterr().err
    (model / "tokenizer_config.json").write_text("{}")
    assert main(["report", str(model)]) == 2
    assert f"`rungs eval --policy hf:{model}`" in capsys.readouterr().err


def test_mean_std_cells_read_alike_when_the_seeds_agree():
    from rungs.report import fmt_mean_std

    assert fmt_mean_std(0.6, 0.0) == "0.600 ± 0.000"
    assert fmt_mean_std(0.4667, 0.0289) == "0.467 ± 0.029"
    assert fmt_mean_std(0.6, None) == "0.600" and fmt_mean_std(0.6, float("nan")) == "0.600"
    assert fmt_mean_std(None, 0.1) == "-"


def test_a_run_directory_that_cannot_be_written_still_gets_its_table(tmp_path, capsys, monkeypatch):
    """A read-only (or full) run directory: the plots are skipped with one line, the table printed."""
    import errno

    import rungs.report

    run = _write(tmp_path / "ro", {"ladder": {"task": "integration", "policy": "tiny"}, "grpo": {"max_steps": 2}},
                 _train_events([1, 2]))

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(rungs.report, "plot_run", read_only)
    summary = render_run(run, plot=True)
    captured = capsys.readouterr()
    assert summary["plots"] == [] and "step 2/2" in captured.out
    assert "plots not redrawn (Read-only file system)" in captured.err and captured.err.count("\n") == 1


def test_a_run_ended_by_early_stopping_reports_finished_not_unfinished(tmp_path, capsys):
    """`--early-stopping-patience` ends a run before max_steps: the report says it finished early, and
    where, rather than "(not finished)"; a run whose logs merely stop short stays unfinished."""
    events = [{"type": "eval", "step": 0, "eval_accuracy": 0.25}, *_train_events([1, 2, 3, 4]),
              {"type": "early_stop", "step": 4, "best_step": 1.0, "best_value": 0.3}]
    config = {"train": {"task": "integration", "policy": "tiny"}, "grpo": {"max_steps": 50}}
    summary = render_run(_write(tmp_path / "early", config, events), plot=False)
    out = capsys.readouterr().out
    assert summary["completed"] and summary["stopped_early"] and summary["stopped_early_step"] == 4
    assert "step 4/50 (finished: stopped early at step 4)" in out and "not finished" not in out
    summary = render_run(_write(tmp_path / "cut", config, events[:-1]), plot=False)
    assert not summary["completed"] and not summary["stopped_early"]
    assert "step 4/50 (not finished)" in capsys.readouterr().out
