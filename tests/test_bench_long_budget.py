"""bench/long_budget.py builds the commands its flags ask for, and resumes a finished run to a longer budget."""

from __future__ import annotations

import importlib.util
import json

import pytest


@pytest.fixture(scope="module")
def long_budget(load_bench):
    return load_bench("long_budget")


def test_the_ladder_settings_reach_both_commands(long_budget, tmp_path):
    args = long_budget.parse_args(["--train-limit", "50", "--depth", "3", "--width", "5", "--ladder", "cooldown=10",
                                   "--steps", "600", "--eval-steps", "50", "--out", str(tmp_path)])
    ladder = long_budget.command("ladder", 1, args, tmp_path / "ladder-seed1")
    grpo = long_budget.command("grpo", 1, args, tmp_path / "grpo-seed1")

    def flag(cmd, name):
        return cmd[cmd.index(name) + 1]

    assert (flag(ladder, "--depth"), flag(ladder, "--width"), flag(ladder, "--cooldown")) == ("3", "5", "10")
    for cmd in (ladder, grpo):  # the same problems, budget, selection and seed
        assert (flag(cmd, "--limit"), flag(cmd, "--max-steps"), flag(cmd, "--eval-steps"), flag(cmd, "--seed")) == \
            ("50", "600", "50", "1")
        assert flag(cmd, "--eval-problems") == "builtin:integration-dev"
        assert flag(cmd, "--metric-for-best-model") == "eval_accuracy"
    assert "--cooldown" not in grpo and "--depth" not in grpo


def test_a_finished_run_shorter_than_the_budget_is_resumed_to_it(long_budget, tmp_path, monkeypatch):
    from rungs.cli import build_parser

    jobs = []
    monkeypatch.setattr(importlib.import_module("learning"), "run_processes", lambda batch, *a, **k: jobs.extend(batch))
    for arm, seed, steps in (("ladder", 0, 600), ("grpo", 0, 1000), ("grpo", 1, 600)):
        run = tmp_path / f"{arm}-seed{seed}"
        run.mkdir()
        (run / "config.yaml").write_text("ladder: {}\n")
        (run / "summary.json").write_text(json.dumps({"total_steps": steps}))
    args = long_budget.parse_args(["--seeds", "2", "--steps", "1000", "--out", str(tmp_path)])
    long_budget.run_stage(args, tmp_path, "train")
    # the 1000-step GRPO run is done; ladder seed 1 has not started (no --resume)
    assert [name for name, _, _ in jobs] == ["ladder seed 0", "ladder seed 1", "grpo seed 1"]
    parser, _ = build_parser()
    for name, cmd, _ in jobs:
        parsed = parser.parse_args(cmd[cmd.index("rungs.cli") + 1:])  # what `rungs ladder` / `rungs train` accept
        assert parsed.max_steps == 1000
        resumed = name != "ladder seed 1"
        assert (parsed.resume is not None) == resumed and (getattr(parsed, "out", None) is None) == resumed


def test_arms_runs_only_the_named_arm_and_refuses_an_unknown_one(long_budget, tmp_path, monkeypatch, capsys):
    jobs = []
    monkeypatch.setattr(importlib.import_module("learning"), "run_processes", lambda batch, *a, **k: jobs.extend(batch))
    args = long_budget.parse_args(["--seeds", "2", "--arms", "ladder", "--out", str(tmp_path)])
    long_budget.run_stage(args, tmp_path, "train")
    assert [name for name, _, _ in jobs] == ["ladder seed 0", "ladder seed 1"]
    assert long_budget.parse_args(["--arms", "grpo,ladder"]).arms == ["ladder", "grpo"]
    with pytest.raises(SystemExit):
        long_budget.parse_args(["--arms", "ladder,grpo_direct"])
    assert "'ladder,grpo_direct': expected a comma-separated list of ladder, grpo" in capsys.readouterr().err
