"""`rungs report` on a run whose log has a damaged row (valid JSON, wrong shape): the row is left out
with one line naming FILE:LINE and what was expected; the rest is reported (a bad row costs that row)."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest
import yaml

from rungs.cli import main
from rungs.commands.report import render_run
from rungs.pipelines.evaluate import record_problem
from rungs.runs import describe_type, row_problem, value_fits


def _ttt_row(pid: str, solved: bool = True) -> dict:
    from rungs.pipelines.ttt import Outcome

    return asdict(Outcome(pid, pid, solved, solved, solved, ["01"], ["correct" if solved else "wrong"], 2, 2, 0, 4, 0,
                          1, 0.5, 0.25, 10, 100, 1.0, 0.5))


DAMAGED_TTT = [
    pytest.param(lambda row: {k: v for k, v in row.items() if k != "solved"}, "no 'solved' field", id="missing-key"),
    pytest.param(lambda row: {**row, "solved": "yes"}, "'solved' is 'yes'; expected true or false", id="string-for-bool"),
    pytest.param(lambda row: {**row, "id": [1]}, "'id' is [1]; expected a string", id="list-id"),
    pytest.param(lambda row: {**row, "steps": 1.5}, "'steps' is 1.5; expected an integer", id="float-for-int"),
    pytest.param(lambda row: {**row, "loss_first": "low"}, "expected a number or null", id="string-for-number"),
    pytest.param(lambda row: [row], "expected a JSON object, got a list", id="json-list"),
    pytest.param(lambda row: 7, "expected a JSON object, got int", id="json-number"),
]


@pytest.mark.parametrize("damage, why", DAMAGED_TTT)
def test_report_of_a_ttt_run_skips_a_damaged_outcome_row_with_one_line(tmp_path, capsys, damage, why):
    run = tmp_path / "ttt"
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump({"job": "ttt", "ttt": {"task": "arc", "steps": 1}}))
    rows = [_ttt_row("a"), damage(_ttt_row("b")), _ttt_row("c", solved=False)]
    (run / "outcomes.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["report", str(run), "--no-plot"]) == 0
    captured = capsys.readouterr()
    assert "pass@2" in captured.out and "Traceback" not in captured.err
    warnings = [line for line in captured.err.splitlines() if "outcomes.jsonl" in line]
    assert len(warnings) == 1 and f"{run / 'outcomes.jsonl'}:2: skipped" in warnings[0] and why in warnings[0]
    summary = render_run(run, plot=False, echo=False)
    assert summary["problems"] == 2 and summary["pass@2"] == 0.5


def test_report_of_a_ttrl_run_skips_a_damaged_outcome_row(tmp_path, capsys):
    rows = [{"id": f"p{i}", "problem": "x", "solved_before": False, "solved_after": True, "ever_solved": True,
             "steps": 3, "variants": 4, "tokens": 10, "seconds": 1.0, "answer_before": None, "answer_after": "1"}
            for i in range(3)]
    rows[1]["solved_after"] = "yes"
    run = tmp_path / "ttrl"
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump({"ttrl": {"task": "integration", "mode": "variants"}}))
    (run / "outcomes.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    summary = render_run(run, plot=False, echo=False)
    assert summary["problems_done"] == 2 and summary["accuracy_after"] == 1.0
    assert f"{run / 'outcomes.jsonl'}:2: skipped" in capsys.readouterr().err


def _eval_run(tmp_path):
    from test_evaluate import AddTask, FakePolicy

    from rungs.pipelines.evaluate import EvalConfig, evaluate
    from rungs.verify.pool import VerifierPool

    problems = tmp_path / "add.jsonl"
    problems.write_text("".join(json.dumps(p.to_dict()) + "\n" for p in AddTask().generate(4, 1, seed=3)))
    config = EvalConfig(task="add", problems=str(problems), policy="fake", n=[1, 2], seeds=1, out=str(tmp_path / "e"),
                        strategy=["greedy", "majority"], progress=False, plot=False)
    with VerifierPool(AddTask(), executor="inline") as pool:
        evaluate(config, policy=FakePolicy(), task=AddTask(), pool=pool, echo=False)
    return tmp_path / "e"


def _sample0(row, **change):
    sample = {**row["samples"][0], **change}
    return {**row, "samples": [sample, *row["samples"][1:]]}


DAMAGED_EVAL = [
    pytest.param(lambda row: {k: v for k, v in row.items() if k != "samples"}, "no 'samples' field", id="missing-key"),
    pytest.param(lambda row: {**row, "seed": "0"}, "'seed' is '0'; expected an integer", id="string-seed"),
    pytest.param(lambda row: {**row, "problem_id": [1]}, "'problem_id' is [1]; expected a string", id="list-id"),
    pytest.param(lambda row: {**row, "wall_s": "slow"}, "'wall_s' is 'slow'; expected a number", id="string-wall"),
    pytest.param(lambda row: {**row, "samples": {}}, "'samples' is {}; expected a list", id="object-samples"),
    pytest.param(lambda row: _sample0(row, verdict={**row["samples"][0]["verdict"], "status": "yes"}),
                 "samples[0]: verdict: verdict status 'yes'", id="unknown-status"),
    pytest.param(lambda row: _sample0(row, verdict={**row["samples"][0]["verdict"], "reward": "yes"}),
                 "samples[0]: verdict: 'reward' is 'yes'; expected a number", id="string-reward"),
    pytest.param(lambda row: _sample0(row, correct="yes", verdict=None), "samples[0]: 'verdict' is None", id="null-verdict"),
    pytest.param(lambda row: _sample0(row, mean_logprob="high"), "samples[0]: 'mean_logprob' is 'high'", id="string-logprob"),
    pytest.param(lambda row: {**row, "samples": [3]}, "samples[0]: expected a JSON object, got int", id="number-sample"),
    pytest.param(lambda row: [row], "expected a JSON object, got a list", id="json-list"),
    pytest.param(lambda row: 7, "expected a JSON object, got int", id="json-number"),
]


@pytest.mark.parametrize("damage, why", DAMAGED_EVAL)
def test_report_of_an_eval_run_skips_a_damaged_sample_row_with_one_line(tmp_path, capsys, damage, why):
    run = _eval_run(tmp_path)
    samples = run / "samples.jsonl"
    lines = samples.read_text().splitlines()
    lines[1] = json.dumps(damage(json.loads(lines[1])))
    samples.write_text("\n".join(lines) + "\n")
    (run / "results.json").unlink()  # killed before the end: the table comes from samples.jsonl
    capsys.readouterr()
    assert main(["report", str(run), "--no-plot"]) == 0
    captured = capsys.readouterr()
    assert "maj@k" in captured.out and "Traceback" not in captured.err
    warnings = [line for line in captured.err.splitlines() if "samples.jsonl" in line]
    assert len(warnings) == 1 and f"{samples}:2: skipped" in warnings[0] and why in warnings[0]
    assert not render_run(run, plot=False, echo=False)["completed"]  # that problem's record is missing


@pytest.mark.parametrize("damage, why", DAMAGED_EVAL)
def test_eval_resume_recomputes_a_damaged_record(tmp_path, capsys, damage, why):
    """`rungs eval --resume` over the same damage: that record is recomputed (one line naming
    FILE:LINE), the others kept, and the run ends with every record whole."""
    from test_evaluate import AddTask, FakePolicy

    from rungs.pipelines.evaluate import EvalConfig, evaluate, read_records
    from rungs.verify.pool import VerifierPool

    run = _eval_run(tmp_path)
    samples = run / "samples.jsonl"
    whole = samples.read_text().splitlines()
    lines = list(whole)
    lines[1] = json.dumps(damage(json.loads(lines[1])))
    samples.write_text("\n".join(lines) + "\n")
    capsys.readouterr()
    config = EvalConfig(task="add", problems=str(tmp_path / "add.jsonl"), policy="fake", n=[1, 2], seeds=1,
                        out=str(run), strategy=["greedy", "majority"], progress=False, plot=False, resume=True)
    with VerifierPool(AddTask(), executor="inline") as pool:
        evaluate(config, policy=FakePolicy(), task=AddTask(), pool=pool, echo=False)
    err = capsys.readouterr().err
    assert f"{samples}:2: recomputed" in err and why in err and "Traceback" not in err
    records = read_records(samples)
    assert len(records) == len(whole)
    key = lambda r: (r["sampler"], r["seed"], r["problem_id"])  # noqa: E731
    assert sorted(map(key, records)) == sorted(key(json.loads(line)) for line in whole)


def test_report_reads_the_records_of_results_json_the_same_way(tmp_path, capsys):
    run = _eval_run(tmp_path)
    results = json.loads((run / "results.json").read_text())
    results["records"][1]["seed"] = "zero"
    (run / "results.json").write_text(json.dumps(results))
    (run / "samples.jsonl").unlink()
    summary = render_run(run, plot=False, echo=False)
    assert summary["kind"] == "eval"
    assert "results.json: records[1]: skipped" in capsys.readouterr().err


def test_row_checks_name_what_was_expected():
    assert describe_type(list[str]) == "a list of strings" and describe_type(float | None) == "a number or null"
    assert value_fits(1, float) and not value_fits(True, int) and not value_fits(True, float) and value_fits(None, str | None)
    assert row_problem({"a": 1}, {"a": int, "b": str}, optional=("b",)) is None
    assert row_problem({"a": 1}, {"a": int, "b": str}) == "no 'b' field; expected a string"
    assert record_problem({"sampler": "greedy", "seed": 0, "problem_id": "p", "samples": []}) is None
    assert record_problem(None) == "expected a JSON object, got null"


def test_ttrl_resume_solves_a_damaged_outcome_again(tmp_path, capsys):
    """`rungs ttrl --resume` over an outcomes.jsonl whose first row is valid JSON of the wrong shape:
    that problem is solved again (one line naming FILE:LINE), the other kept, and `rungs report`
    reads the repaired file without a word."""
    from rungs.pipelines.ttrl import read_outcomes

    problems = tmp_path / "p.jsonl"
    problems.write_text('{"id": "a", "prompt": "numbers: 2 3 4; target: 14"}\n{"id": "b", "prompt": "numbers: 2 5; target: 7"}\n')
    run = tmp_path / "run"
    argv = ["ttrl", "--task", "countdown", "--problems", str(problems), "--steps", "1", "--depth", "1", "--width", "2",
            "--no-progress"]
    assert main([*argv, "--out", str(run)]) == 0
    outcomes = run / "outcomes.jsonl"
    rows = [json.loads(line) for line in outcomes.read_text().splitlines()]
    kept = rows[1]
    outcomes.write_text(json.dumps({**rows[0], "steps": "one"}) + "\n" + json.dumps(kept) + "\n")
    (run / "summary.json").unlink()  # killed before the end
    capsys.readouterr()
    assert main(["ttrl", "--resume", str(run), "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert f"{outcomes}:1: solved again: 'steps' is 'one'; expected an integer" in err and "Traceback" not in err
    again = read_outcomes(outcomes, "unexpected", warn=pytest.fail)
    assert sorted(r["id"] for r in again) == ["a", "b"] and kept in again
    assert main(["report", str(run), "--no-plot"]) == 0
    assert "outcomes.jsonl" not in capsys.readouterr().err
