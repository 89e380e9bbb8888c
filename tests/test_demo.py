"""The main job: base -> LADDER -> TTRL on the shipped tiny model, and the commands that run it."""

from __future__ import annotations

import json

import pytest

from rungs.cli import main
from rungs.pipelines.demo import DemoConfig, run_demo


def test_demo_prints_one_table_and_writes_summary_and_plots(tmp_path, capsys):
    config = DemoConfig(limit=2, ladder="tiny", ttrl_steps=1, check_every=1, out=str(tmp_path / "demo"), workers=2)
    summary = run_demo(config, echo=True)
    out = capsys.readouterr().out
    assert [s["stage"].split(" ")[0] for s in summary["stages"]] == ["base", "LADDER", "after"]
    assert "evaluated here" in summary["stages"][1]["stage"]  # a given policy is evaluated, not trained
    assert "(up to 1 step per problem," in summary["stages"][2]["stage"]  # s35 K1: "1 steps"
    assert all(0.0 <= s["accuracy"] <= 1.0 for s in summary["stages"])
    assert "rungs demo" in out and "after TTRL from the LADDER policy" in out and str(tmp_path / "demo") in out
    saved = json.loads((tmp_path / "demo" / "summary.json").read_text())
    assert saved["problems"] == 2
    assert (tmp_path / "demo" / "demo.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "demo" / "ttrl" / "outcomes.jsonl").exists()
    # `rungs report` reads the demo's directory (which it prints as "run directory") and its ttrl stage.
    capsys.readouterr()
    assert main(["report", str(tmp_path / "demo"), "--no-plot"]) == 0
    assert main(["report", str(tmp_path / "demo" / "ttrl"), "--no-plot"]) == 0
    out = capsys.readouterr().out
    assert "after TTRL" in out and "greedy accuracy after TTRL" in out and "not finished" not in out


def test_ttrl_without_arguments_is_the_demo(monkeypatch):
    import rungs.pipelines.demo as demo_pipeline

    calls = []
    monkeypatch.setattr(demo_pipeline, "run_demo", lambda config, **kwargs: calls.append(config) or {})
    assert main(["ttrl"]) == 0
    assert calls == [DemoConfig()]  # the demo's own defaults, through its real command
    # with any argument it is test-time RL itself, not the demo
    calls.clear()
    assert main(["ttrl", "--mode", "nonsense"]) == 2
    assert calls == []


def test_rungs_without_arguments_is_the_demo(monkeypatch):
    from rungs.commands import demo

    calls = []
    monkeypatch.setattr(demo, "run", lambda args: calls.append(args) or 0)
    assert main([]) == 0 and len(calls) == 1


def test_a_demo_whose_policy_will_not_load_leaves_no_run_directory(tmp_path, capsys):
    from rungs.cli import main

    out = tmp_path / "demo"
    assert main(["demo", "--base", "tiny:/no/such/checkpoint", "--limit", "1", "--out", str(out)]) == 2
    assert "/no/such/checkpoint" in capsys.readouterr().err
    assert not out.exists()


def test_a_demo_on_a_missing_problems_file_leaves_no_run_directory(tmp_path, capsys):
    from rungs.cli import main

    out = tmp_path / "demo"
    assert main(["demo", "--problems", str(tmp_path / "missing.jsonl"), "--out", str(out)]) == 2
    assert "missing.jsonl" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize(("argv", "expected"), [
    (["--workers", "0"], "--workers 0: expected an integer >= 1"),
    (["--ttrl-steps", "0"], "--ttrl-steps 0: expected an integer >= 1"),
    (["--check-every", "-1"], "--check-every -1: expected an integer >= 0"),
    (["--timeout", "0"], "--timeout 0.0: expected seconds > 0"),
    (["--task", "countdown"], "the demo runs on integration only"),
    (["--policy-option", "lora_rank"], "--policy-option 'lora_rank': expected KEY=VALUE"),
])
def test_bad_demo_settings_are_one_line_errors_before_any_stage(tmp_path, capsys, argv, expected):
    out = tmp_path / "demo"
    assert main(["demo", *argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert expected in err and len(err.splitlines()) == 1 and "Traceback" not in err
    assert not out.exists()


def test_demo_settings_from_yaml_and_flags(tmp_path, monkeypatch):
    import rungs.pipelines.demo as demo_pipeline

    calls = []
    monkeypatch.setattr(demo_pipeline, "run_demo", lambda config, **kwargs: calls.append(config) or {})
    path = tmp_path / "demo.yaml"
    path.write_text("limit: 3\nttrl_steps: 2\npolicy: tiny\n")
    assert main(["demo", "--config", str(path), "--base", "tiny:/some/ckpt", "--policy-option", "device=cpu"]) == 0
    (config,) = calls
    assert (config.limit, config.ttrl_steps, config.policy) == (3, 2, "tiny:/some/ckpt")  # --base is --policy
    assert config.policy_options == {"device": "cpu"}
    path.write_text("ttrl_step: 2\n")
    assert main(["demo", "--config", str(path)]) == 2
