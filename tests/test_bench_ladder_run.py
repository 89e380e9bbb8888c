"""bench/ladder_run.py prints and plots a `rungs ladder` run's curve under the settings the run recorded."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml


@pytest.fixture(scope="module")
def ladder_run(load_bench):
    return load_bench("ladder_run")


def _write_run(run: Path, steps: int = 40, eval_steps: int = 10, evals: bool = True, **ladder) -> Path:
    """A run directory as `rungs ladder` leaves it: config.yaml ({ladder, grpo}) and events.jsonl."""
    run.mkdir(parents=True)
    settings = {"task": "countdown", "problems": "builtin:countdown-train", "policy": "tiny:countdown-long",
                "eval_problems": str(run.parent / "my-dev.jsonl"), "curriculum": "mixed", **ladder}
    (run / "config.yaml").write_text(yaml.safe_dump({"ladder": settings, "grpo": {"max_steps": steps,
                                                                                  "eval_steps": eval_steps}}))
    events = [{"step": s, "type": "train", "accuracy": s / 100} for s in range(1, steps + 1)]
    if evals:
        events += [{"step": s, "type": "eval", "eval_accuracy": s / 200} for s in range(0, steps + 1, eval_steps)]
    (run / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in sorted(events, key=lambda e: e["step"])))
    return run


def test_the_table_and_plot_name_the_runs_task_eval_set_and_budget(ladder_run, tmp_path, capsys):
    run = _write_run(tmp_path / "run")
    assert ladder_run.main(["--run", str(run)]) == 0
    out = capsys.readouterr().out
    assert f"rungs ladder --task countdown --max-steps 40: {run}" in out  # not --steps' default 200
    assert "held-out greedy (my-dev.jsonl)" in out and "integration-dev" not in out
    assert "training accuracy (mean of the last 10 steps)" in out
    assert "0.055" in out  # step 10: the mean of training accuracy over steps 1-10
    # with --run and no --out, the plot goes with the run (not over the committed bench/results figure)
    assert (run / "ladder_run.png").read_bytes()[:4] == b"\x89PNG"
    assert ladder_run.main(["--run", str(run), "--out", str(tmp_path / "plots")]) == 0
    assert (tmp_path / "plots" / "ladder_run.png").read_bytes()[:4] == b"\x89PNG"


def test_a_run_without_held_out_evaluation_is_a_one_line_error(ladder_run, tmp_path):
    run = _write_run(tmp_path / "run", evals=False)
    with pytest.raises(SystemExit, match=f"ladder_run: {run}: no eval_accuracy event in events.jsonl yet "
                                         r"\(40 training steps logged\)") as raised:
        ladder_run.main(["--run", str(run)])
    assert "\n" not in str(raised.value)
    quiet = _write_run(tmp_path / "quiet", evals=False, eval_problems=None)
    with pytest.raises(SystemExit, match="the run has no held-out set"):
        ladder_run.main(["--run", str(quiet)])
    with pytest.raises(SystemExit, match=f"ladder_run: {tmp_path}: no config.yaml"):
        ladder_run.main(["--run", str(tmp_path)])


def test_a_new_run_goes_to_out_ladder_steps_and_its_plot_beside_it(ladder_run, tmp_path, monkeypatch, capsys):
    commands = []

    def fake_run(cmd, check):  # `rungs ladder ... --out RUN`, made here without training
        commands.append(cmd)
        _write_run(Path(cmd[cmd.index("--out") + 1]), steps=int(cmd[cmd.index("--max-steps") + 1]), eval_steps=25)
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(ladder_run.subprocess, "run", fake_run)
    assert ladder_run.main(["--steps", "50", "--out", str(tmp_path / "results")]) == 0
    (cmd,) = commands
    assert cmd[cmd.index("--out") + 1] == str(tmp_path / "results" / "ladder-50")
    assert "rungs ladder --task countdown --max-steps 50" in capsys.readouterr().out
    assert (tmp_path / "results" / "ladder_run.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("name", ["plot.png", "a-file"])
def test_out_must_be_a_folder(ladder_run, tmp_path, name):
    (tmp_path / "a-file").write_text("")
    with pytest.raises(SystemExit, match=f"ladder_run: --out {tmp_path / name}: expected a folder"):
        ladder_run.main(["--run", str(tmp_path), "--out", str(tmp_path / name)])


def test_a_rerun_into_the_same_out_resumes_a_started_run_and_replots_a_finished_one(ladder_run, tmp_path, monkeypatch,
                                                                                      capsys):
    """C2: no traceback from `rungs ladder` refusing an --out that holds a run."""
    commands = []

    def fake_run(cmd, check):
        commands.append(cmd[3:])
        run = Path(cmd[cmd.index("--resume") + 1])
        (run / "summary.json").write_text(json.dumps({"total_steps": 50}))
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(ladder_run.subprocess, "run", fake_run)
    run = _write_run(tmp_path / "ladder-50", steps=20, eval_steps=10)  # killed at step 20
    assert ladder_run.main(["--steps", "50", "--out", str(tmp_path)]) == 0
    assert commands == [["ladder", "--resume", str(run), "--max-steps", "50", "--no-progress"]]
    assert ladder_run.main(["--steps", "50", "--out", str(tmp_path)]) == 0  # finished now: only replotted
    assert len(commands) == 1
    assert "holds a finished run; plotting it" in capsys.readouterr().out


def test_a_failed_rungs_ladder_is_one_line(ladder_run, tmp_path, monkeypatch):
    monkeypatch.setattr(ladder_run.subprocess, "run", lambda cmd, check: subprocess.CompletedProcess(cmd, 2))
    with pytest.raises(SystemExit, match=r"ladder_run: `rungs ladder` into .*ladder-5 failed \(exit status 2") as raised:
        ladder_run.main(["--steps", "5", "--out", str(tmp_path)])
    assert "\n" not in str(raised.value)
    with pytest.raises(SystemExit) as raised:
        ladder_run.main(["--steps", "0"])
    assert raised.value.code == 2


def test_a_run_shorter_than_one_interval_names_its_own_window(ladder_run, tmp_path, capsys):
    run = _write_run(tmp_path / "run", steps=1, eval_steps=25)
    assert ladder_run.main(["--run", str(run)]) == 0
    assert "training accuracy (mean of the last 1 step)" in capsys.readouterr().out
