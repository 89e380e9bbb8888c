"""`rungs pretrain`: the CLI end to end on a toy task, its checkpoint, and its input errors."""

from __future__ import annotations

import json
import random

import pytest

from rungs.cli import main
from rungs.policies import load_policy
from rungs.tasks import TASKS
from rungs.tasks.base import Task
from rungs.train.sft import SFTConfig, difficulty_levels, generate_problems
from rungs.types import Problem, Status, Verdict


class ReverseTask(Task):
    """Toy task: reverse a digit string of `difficulty` + 1 digits."""

    name = "toy-reverse"
    description = "reverse a digit string"
    needs_answer = True
    alphabet = "0123456789"

    def prompt(self, problem: Problem, style: str = "instruct") -> str:
        return problem.text

    def verify_answer(self, problem: Problem, answer: str) -> Verdict:
        ok = answer.strip() == problem.text[::-1]
        return Verdict(1.0, Status.CORRECT) if ok else Verdict.fail(Status.WRONG)

    def generate(self, n: int, difficulty: float, seed: int = 0) -> list[Problem]:
        rng = random.Random(seed)
        out = []
        for i in range(n):
            text = "".join(rng.choice("0123456789") for _ in range(int(difficulty) + 1))
            out.append(Problem(f"rev-{seed}-{i}", text, text[::-1], {"difficulty": difficulty}))
        return out


if "toy-reverse" not in TASKS:
    TASKS.register("toy-reverse", ReverseTask)

SMALL_ARGS = ["--d-model", "32", "--n-layers", "1", "--n-heads", "2", "--max-seq-len", "32", "--no-progress"]


def test_pretrain_cli_trains_checkpoints_and_evaluates(tmp_path, capsys, monkeypatch):
    out = tmp_path / "ckpt"
    rc = main(["pretrain", "--task", "toy-reverse", "--steps", "30", "--batch-size", "16", "--lr", "3e-3",
               "--train-problems", "200", "--eval-every", "15", "--eval-problems", "8", "--report-difficulties", "1,2",
               "--report-problems", "8", "--verifier", "inline", "--max-new-tokens", "12", "--out", str(out),
               *SMALL_ARGS])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "greedy accuracy" in printed and f"tiny:{out}" in printed
    assert {"model.safetensors", "config.json", "tokenizer.json", "training.json", "events.jsonl"} <= {
        p.name for p in out.iterdir()}
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    assert [e["step"] for e in events] == list(range(1, 31))
    assert events[-1]["loss"] < events[0]["loss"]
    assert sum("accuracy" in e for e in events) == 2  # steps 15 and 30
    summary = json.loads((out / "training.json").read_text())
    assert set(summary["report"]) == {"1", "2"} and summary["config"]["steps"] == 30
    assert all(0 <= row["accuracy"] <= 1 and row["n"] == 8 for row in summary["report"].values())

    # The checkpoint loads as a policy and evaluates on its own (through the sandboxed pool).
    policy = load_policy(f"tiny:{out}")
    assert policy.model.cfg.d_model == 32
    rc = main(["pretrain", "--task", "toy-reverse", "--init", str(out), "--eval-only", "--report-difficulties", "1",
               "--report-problems", "4", "--verify-workers", "1", "--out", str(tmp_path / "eval"), "--no-progress"])
    assert rc == 0
    report = json.loads((tmp_path / "eval" / "eval.json").read_text())["report"]
    assert report["1"]["n"] == 4 and sum(report["1"]["statuses"].values()) == 4

    # Without --out an evaluation only prints: it writes no runs/tiny-TASK that would then block
    # the next `rungs pretrain` (whose default --out that is).
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    rc = main(["pretrain", "--task", "toy-reverse", "--init", str(out), "--eval-only", "--report-difficulties", "1",
               "--report-problems", "2", "--verify-workers", "1", "--no-progress"])
    assert rc == 0 and "not saved" in capsys.readouterr().out
    assert not (tmp_path / "runs").exists()


def test_pretrain_says_one_thread_in_the_singular(tmp_path, capsys, monkeypatch):
    """s35 K1: `training took 0 s on 1 threads`."""
    from types import SimpleNamespace

    import rungs.train.sft

    done = SimpleNamespace(report={}, train_wall_s=0.0, threads=1)
    monkeypatch.setattr(rungs.train.sft, "train_sft", lambda cfg, task: done)
    assert main(["pretrain", "--task", "toy-reverse", "--out", str(tmp_path / "ckpt"), *SMALL_ARGS]) == 0
    assert capsys.readouterr().out.rstrip().endswith("training took 0 s on 1 thread")


def test_pretrain_reads_a_yaml_config(tmp_path):
    config = tmp_path / "sft.yaml"
    config.write_text("task: toy-reverse\nsteps: 3\nbatch_size: 4\ntrain_problems: 20\neval_problems: 0\n"
                      "report_problems: 0\nverifier: inline\n")
    out = tmp_path / "out"
    assert main(["pretrain", "--config", str(config), "--out", str(out), *SMALL_ARGS]) == 0
    assert json.loads((out / "training.json").read_text())["config"]["batch_size"] == 4


@pytest.mark.parametrize("argv, message", [
    (["--steps", "-1"], "steps: expected an integer >= 0"),
    (["--difficulty-min", "3", "--difficulty-max", "2"], "difficulty_max"),
    (["--eval-only"], "needs --init"),
    (["--verifier", "ray"], "'process' or 'inline'"),
    (["--init", "no-such-checkpoint", "--eval-only"], "no-such-checkpoint"),
])
def test_pretrain_bad_input_is_one_line_error(argv, message, capsys, tmp_path):
    rc = main(["pretrain", "--task", "toy-reverse", "--out", str(tmp_path), *argv])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and message in err and "\n" not in err


def test_unknown_task_is_a_user_error(capsys, tmp_path):
    assert main(["pretrain", "--task", "toy-revers", "--out", str(tmp_path)]) == 2
    assert "did you mean 'toy-reverse'" in capsys.readouterr().err


def test_difficulty_levels_and_problem_mix():
    assert difficulty_levels(1, 2) == [1.0, 2.0]
    assert difficulty_levels(1.5, 1.7) == [1.5, 1.7]
    problems = generate_problems(ReverseTask(), 40, 1, 3, seed=0)
    lengths = {len(p.text) for p in problems}
    assert lengths == {2, 3, 4}
    assert len({p.text for p in problems}) == len(problems)
    assert SFTConfig(task="x").out == "runs/tiny-x"


def test_pretrain_never_writes_over_a_directory_that_holds_something(tmp_path, capsys):
    out = tmp_path / "ckpt"
    out.mkdir()
    (out / "model.safetensors").write_text("someone else's weights")
    rc = main(["pretrain", "--task", "toy-reverse", "--steps", "2", "--train-problems", "20", "--verifier", "inline",
               "--report-problems", "0", "--out", str(out), *SMALL_ARGS])
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"rungs pretrain: error: {out}: already exists and is not an empty directory; pretraining writes a "
                   "new checkpoint there and never over another: choose another --out (or remove it; or --resume a "
                   "killed pretraining there)")
    assert (out / "model.safetensors").read_text() == "someone else's weights"


def test_a_pretraining_run_that_fails_before_its_first_checkpoint_leaves_no_directory(tmp_path, monkeypatch):
    import rungs.train.sft as sft

    def fail_midway(cfg, task, policy, pool, prompts, targets, eval_set, out, resume_dir=None):
        out.mkdir(parents=True, exist_ok=True)
        (out / "events.jsonl").write_text('{"step": 1}\n')
        raise RuntimeError("the disk went away")

    monkeypatch.setattr(sft, "_train_loop", fail_midway)
    out = tmp_path / "ckpt"
    with pytest.raises(RuntimeError, match="the disk went away"):
        main(["pretrain", "--task", "toy-reverse", "--steps", "2", "--train-problems", "20", "--verifier", "inline",
              "--report-problems", "0", "--out", str(out), *SMALL_ARGS])
    assert not out.exists()  # the same --out works again


RESUME_ARGS = ["pretrain", "--task", "toy-reverse", "--steps", "10", "--batch-size", "8", "--lr", "3e-3",
               "--train-problems", "60", "--eval-every", "3", "--eval-problems", "4", "--report-problems", "0",
               "--verifier", "inline", "--max-new-tokens", "6", "--threads", "1", *SMALL_ARGS]


def test_a_killed_pretraining_resumes_to_the_uninterrupted_result(tmp_path, capsys):
    """SIGKILL at step 8 (checkpoints at 3 and 6), then --resume: the same weights, bit for bit, and
    the same log as a run never killed; resume/ is gone once the run finishes."""
    import subprocess
    import sys
    from pathlib import Path

    whole, killed = tmp_path / "whole", tmp_path / "killed"
    assert main([*RESUME_ARGS, "--out", str(whole)]) == 0
    child = f"""
import os, sys
sys.path.insert(0, {str(Path(__file__).parent)!r})
import test_pretrain
import rungs.train.sft as sft
real, calls = sft.sft_loss, []
def sft_loss(*args, **kwargs):
    calls.append(1)
    if len(calls) == 8:
        os._exit(9)
    return real(*args, **kwargs)
sft.sft_loss = sft_loss
from rungs.cli import main
main({[*RESUME_ARGS, "--out", str(killed)]!r})
"""
    assert subprocess.run([sys.executable, "-c", child], capture_output=True).returncode == 9
    assert (killed / "resume").is_dir() and not (killed / "training.json").exists()
    assert [json.loads(line)["step"] for line in (killed / "events.jsonl").read_text().splitlines()] == list(range(1, 8))
    capsys.readouterr()
    assert main([*RESUME_ARGS, "--out", str(killed), "--resume", "--verify-workers", "1"]) == 0
    assert f"resume: {killed}: from the checkpoint of step 6" in capsys.readouterr().out
    assert (killed / "model.safetensors").read_bytes() == (whole / "model.safetensors").read_bytes()
    logs = [[{k: e[k] for k in ("step", "loss", "lr")} for e in map(json.loads, (d / "events.jsonl").read_text().splitlines())]
            for d in (whole, killed)]
    assert logs[0] == logs[1] and len(logs[0]) == 10
    assert not (whole / "resume").exists() and not (killed / "resume").exists()
    assert json.loads((killed / "training.json").read_text())["final_loss"] == logs[0][-1]["loss"]


def test_resume_refuses_what_it_cannot_continue(tmp_path, capsys):
    """A finished run, a missing directory, one killed before its first checkpoint, and changed
    settings: each a one-line error saying what was expected."""
    out = tmp_path / "run"
    assert main([*RESUME_ARGS, "--out", str(out), "--steps", "2", "--eval-every", "0"]) == 0
    capsys.readouterr()
    (tmp_path / "file").write_text("x")
    cases = [(out, [], "this pretraining has finished"), (tmp_path / "none", [], "no such directory"),
             (tmp_path / "file", [], "a file; expected the --out directory"),
             (tmp_path, [], "no resume/ checkpoint, and files a pretraining killed before its first checkpoint")]
    for hidden in (".tmp-old-data", ".tmp-cache"):  # someone else's directory is refused untouched
        (tmp_path / hidden).mkdir()
    (tmp_path / ".notes.tmp").write_text("mine")
    for where, extra, message in cases:
        assert main([*RESUME_ARGS, "--out", str(where), "--resume", *extra]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
    hidden = tmp_path / "hidden"  # only hidden entries: not a pretraining's either, and left as it is
    hidden.mkdir()
    (hidden / ".x.tmp").write_text("mine")
    assert main([*RESUME_ARGS, "--out", str(hidden), "--resume"]) == 2
    assert "no resume/ checkpoint" in capsys.readouterr().err and (hidden / ".x.tmp").exists()
    assert (tmp_path / ".tmp-old-data").is_dir() and (tmp_path / ".tmp-cache").is_dir()
    assert (tmp_path / ".notes.tmp").read_text() == "mine" and not (tmp_path / "data").exists()
    (out / "resume").mkdir()
    (out / "resume" / "config.json").write_text(json.dumps({**json.loads((out / "training.json").read_text())["config"],
                                                           "resume": False}))
    assert main([*RESUME_ARGS, "--out", str(out), "--resume", "--steps", "2", "--lr", "1e-3", "--eval-every", "1"]) == 2
    err = capsys.readouterr().err
    assert "settings differ from the run's (lr: 0.003 -> 0.001)" in err and err.count("\n") == 1


def test_resume_recovers_every_corner_a_kill_leaves(tmp_path, capsys):
    """From an outside kill test: a kill between the two renames of OUT/resume (the old one moved
    aside), half-written temporaries, a run killed before its first checkpoint (one command, not
    two), a directory spelled another way, an --init that is gone, and a --stop-at-step run continued."""
    import shutil

    whole = tmp_path / "whole"
    assert main([*RESUME_ARGS, "--out", str(whole)]) == 0
    # killed inside the re-save of resume/ at step 6: the step-3 state waits as .tmp-old-resume
    moved = tmp_path / "moved"
    assert main([*RESUME_ARGS, "--out", str(moved), "--stop-at-step", "3"]) == 0
    (moved / "training.json").unlink()
    (moved / "resume").rename(moved / ".tmp-old-resume")
    (moved / ".tmp-resume-abc").mkdir()
    (moved / ".model.safetensors.xyz.tmp").write_bytes(b"half")
    capsys.readouterr()
    assert main([*RESUME_ARGS, "--out", f"{moved}/", "--resume"]) == 0  # a trailing slash is the same directory
    assert "from the checkpoint of step 3" in capsys.readouterr().out
    assert (moved / "model.safetensors").read_bytes() == (whole / "model.safetensors").read_bytes()
    assert sorted(p.name for p in moved.iterdir() if p.name.startswith(".")) == []
    # killed before the first checkpoint: only events.jsonl, and --resume starts again at once
    early = tmp_path / "early"
    early.mkdir()
    (early / "events.jsonl").write_text('{"step": 1, "loss": 3.0}\n')
    assert main([*RESUME_ARGS, "--out", str(early), "--resume"]) == 0
    assert "killed before its first checkpoint; starting from step 0" in capsys.readouterr().out
    assert (early / "model.safetensors").read_bytes() == (whole / "model.safetensors").read_bytes()
    # an --init checkpoint that has gone since: the resume takes the run's own weights
    init = tmp_path / "init"
    shutil.copytree(whole, init)
    started, ref = tmp_path / "from-init", tmp_path / "from-init-ref"
    assert main([*RESUME_ARGS, "--init", str(init), "--out", str(ref)]) == 0
    assert main([*RESUME_ARGS, "--init", str(init), "--out", str(started), "--stop-at-step", "6"]) == 0
    assert (started / "resume").is_dir()  # ended by --stop-at-step before --steps: kept, to be continued
    shutil.rmtree(init)
    assert main([*RESUME_ARGS, "--init", str(init), "--out", str(started), "--resume"]) == 0
    assert (started / "model.safetensors").read_bytes() == (ref / "model.safetensors").read_bytes()
    assert not (started / "resume").exists()
