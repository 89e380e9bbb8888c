"""Run directories under concurrent and mistaken use (issue 13): one live writer per directory
(an OS lock, tested with real processes), no job writing into another job's directory, resume
refusing changed settings, the completion marker last, and a refused disk write as one line."""

from __future__ import annotations

import errno
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from rungs.cli import main
from rungs.errors import UserError
from rungs.runs import RunDir, disk_errors, fingerprint, job_kind, lock_dir, unlock_dir

ENV = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent), "OMP_NUM_THREADS": "1"}
TRAIN = ["train", "--task", "countdown", "--problems", "builtin:countdown-easy", "--limit", "2", "--max-steps", "2",
         "--prompts-per-step", "1", "--num-generations", "2", "--max-completion-length", "8", "--workers", "1",
         "--no-plot", "--no-progress", "--save-steps", "1", "--no-eval-on-start"]


def _holder(run: Path, job: str = "train") -> subprocess.Popen:
    """Another process that owns `run` (through the jobs' own code path) until it is killed."""
    code = textwrap.dedent(f"""
        import sys, time
        from rungs.runs import RunDir
        RunDir.create({str(run)!r}, {{"job": {job!r}, "task": "countdown", "grpo": {{}}}})
        print("ready", flush=True)
        time.sleep(600)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout.readline().strip() == b"ready"
    return proc


def _cli(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rungs.cli", *argv], env=ENV, capture_output=True, text=True, timeout=300)


def test_a_second_writer_is_refused_while_the_first_lives_and_a_kill_frees_the_directory(tmp_path):
    train, evaluation = tmp_path / "train", tmp_path / "eval"
    holders = {train: _holder(train), evaluation: _holder(evaluation, "eval")}
    eval_argv = ["eval", "--task", "countdown", "--limit", "1", "--no-progress", "--out", str(evaluation)]
    try:
        for run, argv in ((train, [*TRAIN, "--out", str(train)]),  # a second run on the same --out
                          (train, ["train", "--resume", str(train)]),  # resuming a run that is still going
                          (evaluation, eval_argv), (evaluation, [*eval_argv, "--resume"])):
            done = _cli(*argv)
            assert done.returncode == 2, (argv, done.stderr)
            lines = done.stderr.strip().splitlines()
            assert len(lines) == 1 and str(run) in lines[0] and f"pid {holders[run].pid}" in lines[0], lines
        assert not (train / "events.jsonl").exists() and not (evaluation / "samples.jsonl").exists()
    finally:
        for holder in holders.values():
            holder.send_signal(signal.SIGKILL)
            holder.wait(timeout=30)
    again = RunDir.open(train, job="train", lock=True)  # kill -9 left no stale lock
    again.release()


def test_lock_is_reentrant_in_one_process_and_released(tmp_path):
    lock_dir(tmp_path)
    lock_dir(tmp_path)
    unlock_dir(tmp_path)
    unlock_dir(tmp_path)
    code = f"from rungs.runs import lock_dir; lock_dir({str(tmp_path)!r}); print('ok')"
    assert subprocess.run([sys.executable, "-c", code], env=ENV, capture_output=True, text=True).stdout.strip() == "ok"


def _write_config(run: Path, config: dict) -> None:
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump(config))


def _ladder_config(**grpo) -> dict:
    import dataclasses

    from rungs.pipelines.ladder import LadderConfig
    from rungs.train.grpo_config import GRPOConfig

    return {"ladder": dataclasses.asdict(LadderConfig(limit=1)), "grpo": dataclasses.asdict(GRPOConfig(**grpo))}


def test_job_kinds():
    assert job_kind({"job": "train", "grpo": {}}) == "train"
    assert job_kind(_ladder_config()) == "ladder"
    assert job_kind({"ttrl": {}, "grpo": {}}) == "ttrl"
    assert job_kind({"task": "x", "strategy": ["greedy"], "n": [1], "seeds": 1}) == "eval"  # before the key existed
    assert job_kind({"x": 1}) is None


def test_no_job_writes_into_another_kind_of_run_directory(tmp_path, capsys):
    train = tmp_path / "train"
    _write_config(train, {"job": "train", "task": "countdown", "grpo": {}})
    before = (train / "config.yaml").read_text()
    ladder = tmp_path / "ladder"
    _write_config(ladder, _ladder_config())
    ttrl = tmp_path / "ttrl"
    _write_config(ttrl, {"ttrl": {"task": "integration"}, "grpo": {}})
    eval_argv = ["eval", "--task", "countdown", "--limit", "1", "--no-progress", "--no-plot"]
    cases = [
        ([*eval_argv, "--out", str(train)], "holds a `rungs train` run"),
        ([*eval_argv, "--resume", "--out", str(ladder)], "`rungs ladder` run directory"),
        ([*eval_argv, "--resume", "--out", str(ttrl)], "`rungs ttrl` run directory"),
        (["ladder", "--resume", str(train)], "`rungs train` run directory"),
        (["ttrl", "--resume", str(ladder)], "`rungs ladder` run directory"),
        (["train", "--resume", str(ladder)], "`rungs ladder` run directory"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], (argv, err)
    assert (train / "config.yaml").read_text() == before
    assert sorted(p.name for p in train.iterdir() if not p.name.startswith(".")) == ["config.yaml"]


@pytest.mark.parametrize("job", ["ladder", "ttrl"])
def test_ladder_and_ttrl_resume_refuse_changed_settings(tmp_path, capsys, job):
    import argparse

    from rungs.commands.ttrl import add_job_arguments, resolve
    from rungs.pipelines.ladder import LadderConfig
    from rungs.pipelines.ttrl import TTRLConfig

    cls = LadderConfig if job == "ladder" else TTRLConfig
    run = tmp_path / "run"
    saved = _ladder_config(learning_rate=0.01, temperature=1.2, max_steps=5)
    if job == "ttrl":
        import dataclasses

        saved = {"ttrl": dataclasses.asdict(TTRLConfig(limit=1)), "grpo": saved["grpo"]}
    _write_config(run, saved)
    parser = argparse.ArgumentParser()
    add_job_arguments(parser, cls)

    for argv, key in ((["--learning-rate", "0.5", "--temperature", "2.0"], "learning_rate"), (["--limit", "3"], "limit")):
        assert main([job, "--resume", str(run), *argv]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"{key}=" in err[0] and "config.yaml" in err[0], err
    # The run's own values, and the run-length settings, are accepted.
    config, grpo, _ = resolve(parser.parse_args(["--resume", str(run), "--learning-rate", "0.01", "--max-steps", "9"]),
                              job, cls)
    assert (grpo.learning_rate, grpo.temperature, grpo.max_steps, config.limit) == (0.01, 1.2, 9, 1)


def test_ladder_writes_its_completion_marker_after_the_final_weights(tmp_path, monkeypatch):
    from rungs.pipelines.ladder import LadderConfig, run_ladder
    from rungs.policies.tiny import TinyPolicy
    from rungs.tasks import get_task
    from rungs.train.grpo_config import GRPOConfig
    from rungs.verify.pool import VerifierPool

    seen = []
    original = RunDir.write_summary

    def spy(self, summary):
        seen.append((summary.get("completed"), (self.path / "final" / "model.safetensors").exists()))
        original(self, summary)

    monkeypatch.setattr(RunDir, "write_summary", spy)
    task = get_task("integration")
    policy = TinyPolicy.new(alphabets=[task.alphabet], seed=0, d_model=16, n_layers=1, n_heads=2, mlp_hidden=32,
                            max_seq_len=96)
    grpo = GRPOConfig(max_completion_length=8, prompts_per_step=1, num_generations=2, learning_rate=1e-2,
                      logging_steps=1000, save_steps=0, eval_on_start=False, max_steps=1)
    with VerifierPool(task, executor="inline") as pool:
        run_ladder(LadderConfig(problems="builtin:integration-hard", limit=1, eval_problems=None, depth=1, width=1,
                                out=str(tmp_path / "run")), grpo, policy=policy, task=task, pool=pool, echo=False)
    assert seen and all(has_weights for completed, has_weights in seen if completed)
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["completed"] is True


def test_disk_errors_become_one_line():
    for err in (OSError(errno.ENOSPC, "No space left on device", "/runs/x/events.jsonl"),
                OSError(errno.EROFS, "Read-only file system", "/runs/x"),
                RuntimeError("[enforce fail at inline_container.cc:603] . PytorchStreamWriter failed writing file "
                             "data/0: file write failed")):
        with pytest.raises(UserError) as caught, disk_errors("/runs/x", "rungs train --resume /runs/x"):
            raise err
        message = str(caught.value)
        assert "/runs/x" in message and "\n" not in message and "rungs train --resume /runs/x" in message
    with pytest.raises(ValueError), disk_errors("/runs/x"):  # anything else is not ours to rename
        raise ValueError("a bug")


def test_a_read_only_out_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys):
    import pathlib

    out = tmp_path / "ro" / "run"
    real_mkdir = pathlib.Path.mkdir

    def mkdir(self, *args, **kwargs):  # what a read-only file system says (root ignores chmod)
        if str(self).startswith(str(tmp_path / "ro")):
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "mkdir", mkdir)
    assert main([*TRAIN, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(out) in err[0] and "Read-only file system" in err[0], err


def test_a_full_disk_while_checkpointing_is_one_line_and_the_run_resumes(tmp_path, monkeypatch, capsys):
    import torch

    out = tmp_path / "run"
    real_save = torch.save
    calls = {"n": 0}

    def full_disk(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:  # the checkpoint of step 2
            raise RuntimeError("PytorchStreamWriter failed writing file data/0: file write failed")
        return real_save(*args, **kwargs)

    monkeypatch.setattr(torch, "save", full_disk)
    assert main([*TRAIN, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(out) in err[0] and "file write failed" in err[0] and "--resume" in err[0], err
    assert not (out / "summary.json").exists()  # nothing claims the run finished
    monkeypatch.setattr(torch, "save", real_save)  # space is freed
    assert main(["train", "--resume", str(out), "--no-progress", "--no-plot"]) == 0
    run = RunDir.open(out)
    assert [e["step"] for e in run.events() if e["type"] == "train"] == [1, 2]
    assert run.read_summary()["completed"] is True


def test_eval_resume_reads_its_settings_from_the_run_directory(tmp_path, capsys):
    out = tmp_path / "eval"
    argv = ["eval", "--task", "countdown", "--problems", "builtin:countdown-easy", "--policy", "tiny:random",
            "--strategy", "greedy,majority", "--n", "1,2", "--seeds", "1", "--limit", "2", "--max-new-tokens", "8",
            "--temperature", "0.7", "--workers", "1", "--no-progress", "--no-plot", "--out", str(out)]
    assert main(argv) == 0
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["job"] == "eval" and config["temperature"] == 0.7
    results = json.loads((out / "results.json").read_text())
    capsys.readouterr()
    assert main(["eval", "--resume", "--out", str(out), "--no-progress", "--no-plot"]) == 0  # the form its help shows
    assert json.loads((out / "results.json").read_text())["summary"]["metrics"] == results["summary"]["metrics"]
    capsys.readouterr()
    assert main(["eval", "--resume", "--out", str(out), "--temperature", "1.0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "temperature=0.7" in err[0] and "another --out" not in err[0].split(";")[0], err
    assert main(argv) == 2  # a fresh run over it is refused, naming how to resume
    assert f"rungs eval --resume --out {out}" in capsys.readouterr().err
    lines = (out / "samples.jsonl").read_text().splitlines()
    assert len(lines) == 2 + 2  # nothing doubled


def test_lock_holder_is_named_even_when_the_holder_was_killed_mid_run(tmp_path):
    """A killed holder leaves its pid in .lock; the next writer takes the lock regardless."""
    run = tmp_path / "run"
    holder = _holder(run)
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)
    time.sleep(0.05)
    assert (run / ".lock").read_text().strip() == str(holder.pid)
    with pytest.raises(UserError, match="already holds a run"):
        RunDir.create(run, {"job": "train"})
    RunDir.open(run, job="train", lock=True).release()


TINY_RANDOM = ["--policy", "tiny:random", "--policy-option", "d_model=32", "--policy-option", "n_layers=1",
               "--policy-option", "n_heads=2", "--policy-option", "max_seq_len=64"]


def test_a_resumed_ladder_rebuilds_the_policy_from_its_stored_options(tmp_path, capsys):
    # A run made with --policy-option (a LoRA rank, a model size) must resume with the same policy;
    # before policy_options was stored, the resume built the default policy and failed to load.
    run = tmp_path / "run"
    argv = ["ladder", "--task", "countdown", "--problems", "builtin:countdown-easy", "--limit", "2", *TINY_RANDOM,
            "--depth", "1", "--width", "2", "--eval-problems", "none", "--max-steps", "2", "--save-steps", "1",
            "--prompts-per-step", "1", "--num-generations", "2", "--max-completion-length", "8", "--workers", "1",
            "--no-progress", "--out", str(run)]
    assert main(argv) == 0
    stored = yaml.safe_load((run / "config.yaml").read_text())["ladder"]["policy_options"]
    assert stored == {"d_model": 32, "n_layers": 1, "n_heads": 2, "max_seq_len": 64}
    assert main(["ladder", "--resume", str(run), "--max-steps", "3", "--no-progress"]) == 0
    assert [e["step"] for e in RunDir.open(run).events() if e["type"] == "train"] == [1, 2, 3]
    # a smaller budget than the run has done is refused in one line, and the run is left as it was
    config = (run / "config.yaml").read_text()
    assert main(["ladder", "--resume", str(run), "--max-steps", "2", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert "already trained 3 steps, more than max_steps=2" in err and "\n" not in err
    assert [e["step"] for e in RunDir.open(run).events() if e["type"] == "train"] == [1, 2, 3]
    assert (run / "config.yaml").read_text() == config


def test_eval_takes_policy_options_and_stores_them(tmp_path):
    out = tmp_path / "eval"
    assert main(["eval", "--task", "countdown", "--limit", "1", *TINY_RANDOM, "--strategy", "greedy", "--n", "1",
                 "--seeds", "1", "--workers", "1", "--no-plot", "--no-progress", "--out", str(out)]) == 0
    assert yaml.safe_load((out / "config.yaml").read_text())["policy_options"]["d_model"] == 32


@pytest.mark.parametrize("job", ["ladder", "ttrl", "eval"])
def test_credentials_in_policy_options_are_never_written_to_a_run(job):
    from rungs.config import to_dict
    from rungs.pipelines.evaluate import EvalConfig
    from rungs.pipelines.ladder import LadderConfig
    from rungs.pipelines.ttrl import TTRLConfig

    cls = {"ladder": LadderConfig, "ttrl": TTRLConfig, "eval": EvalConfig}[job]
    config = cls(policy_options={"api_key": "sk-secret", "HF_TOKEN": "hf_x", "lora_rank": 8})
    assert to_dict(config)["policy_options"] == {"lora_rank": 8}
    assert config.policy_options["api_key"] == "sk-secret"  # the run itself still gets it
    with pytest.raises(UserError, match="policy_options: expected a mapping"):
        cls(policy_options="lora_rank=8")


def test_a_resumed_ttt_rebuilds_the_policy_from_its_stored_options(tmp_path, monkeypatch):
    # The same fault as ladder's, in `rungs ttt`: --policy-option (an hf model's LoRA rank) was not
    # stored, so --resume built the policy without it.
    import rungs.policies as policies

    run = tmp_path / "run"
    argv = ["ttt", "--task", "arc", "--limit", "1", "--steps", "1", "--infer-augmentations", "1",
            "--train-augmentations", "0", "--batch-size", "1", "--workers", "1", *TINY_RANDOM, "--no-progress",
            "--out", str(run)]
    assert main(argv) == 0
    stored = yaml.safe_load((run / "config.yaml").read_text())["ttt"]["policy_options"]
    assert stored == {"d_model": 32, "n_layers": 1, "n_heads": 2, "max_seq_len": 64}
    built = []
    real = policies.load_policy
    monkeypatch.setattr(policies, "load_policy", lambda spec, **kw: built.append(kw) or real(spec, **kw))
    assert main(["ttt", "--resume", str(run), "--policy-option", "device=cpu", "--no-progress"]) == 0
    assert built and built[-1]["d_model"] == 32 and built[-1]["device"] == "cpu"  # stored, plus the one added


def _job_configs():
    from rungs.pipelines.evaluate import EvalConfig
    from rungs.pipelines.ladder import LadderConfig
    from rungs.pipelines.ttrl import TTRLConfig
    from rungs.pipelines.ttt import TTTConfig

    return {"ladder": LadderConfig, "ttrl": TTRLConfig, "ttt": TTTConfig, "eval": EvalConfig}


@pytest.mark.parametrize("job", ["ladder", "ttrl", "ttt", "eval"])
@pytest.mark.parametrize(("setting", "value", "message"), [
    ("workers", 0, "--workers 0: expected an integer >= 1"),
    ("limit", 0, "--limit 0: expected an integer >= 1"),
    ("limit", -3, "--limit -3: expected an integer >= 1"),
    ("timeout", 0.0, "--timeout 0.0: expected seconds > 0"),
    ("timeout", -1.0, "--timeout -1.0: expected seconds > 0"),
    ("executor", "bogus", "unknown verifier executor 'bogus'"),
])
def test_every_job_checks_the_shared_settings_the_same_way(job, setting, value, message):
    # They were checked in some jobs only: `rungs ttrl --workers 0` ended in a ValueError traceback,
    # and `rungs ladder --limit 0` trained on every problem.
    cls = _job_configs()[job]
    with pytest.raises(UserError, match=re.escape(message)):
        cls(**{setting: value})
    assert getattr(cls(), setting) != value  # the defaults pass


@pytest.mark.parametrize("argv", [
    ["ttrl", "--workers", "0"], ["ladder", "--limit", "0"], ["ttt", "--timeout", "0"], ["eval", "--executor", "x:y"],
    ["train", "--task", "countdown", "--problems", "builtin:countdown-easy", "--eval-limit", "0"],
    ["train", "--task", "countdown", "--problems", "builtin:countdown-easy", "--workers", "0"],
])
def test_a_bad_shared_setting_is_one_line_before_any_work(argv, capsys, tmp_path):
    assert main([*argv, "--out", str(tmp_path / "run")]) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "expected" in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()  # refused before a run directory was made


# -- input files, checkpoints by default, and setup failures (review faults F1-F3) ------------------

TINY_JOB = [*TINY_RANDOM, "--limit", "2", "--prompts-per-step", "1", "--num-generations", "2",
            "--max-completion-length", "8", "--workers", "1", "--no-progress"]
JOB_ARGV = {
    "train": ["train", "--task", "countdown", *TINY_JOB, "--no-plot", "--no-eval-on-start", "--save-steps", "1"],
    "ladder": ["ladder", "--task", "countdown", *TINY_JOB, "--depth", "1", "--width", "2", "--eval-problems", "none",
               "--save-steps", "1"],
}


def _countdown_rows(first: int, count: int) -> str:
    from rungs.data import builtin_path

    return "".join(builtin_path("countdown-easy").read_text().splitlines(keepends=True)[first:first + count])


@pytest.mark.parametrize("job", ["train", "ladder"])
def test_resume_from_another_directory_reads_the_problems_the_run_was_made_from(tmp_path, monkeypatch, capsys, job):
    # config.yaml used to keep `--problems p.jsonl` as typed: a resume elsewhere failed, or read
    # another p.jsonl there without a word.
    here, elsewhere = tmp_path / "here", tmp_path / "elsewhere"
    here.mkdir()
    elsewhere.mkdir()
    (here / "p.jsonl").write_text(_countdown_rows(0, 2))
    (elsewhere / "p.jsonl").write_text(_countdown_rows(5, 2))  # same name, other problems
    run = tmp_path / "run"
    monkeypatch.chdir(here)
    assert main([*JOB_ARGV[job], "--problems", "p.jsonl", "--max-steps", "1", "--out", str(run)]) == 0
    stored = yaml.safe_load((run / "config.yaml").read_text())
    assert (stored if job == "train" else stored["ladder"])["problems"] == str(here / "p.jsonl")
    monkeypatch.chdir(elsewhere)
    assert main([job, "--resume", str(run), "--max-steps", "2", "--no-progress"]) == 0
    ids = {json.loads(line)["id"] for line in _countdown_rows(0, 2).splitlines()}
    rollouts = RunDir.open(run).rollouts()
    assert {r["step"] for r in rollouts} == {1, 2}
    if job == "train":  # ladder trains on variants of them; train on the problems themselves
        assert {r["problem_id"] for r in rollouts} <= ids
    # the same file given again from its own directory is the run's setting, not a change
    monkeypatch.chdir(here)
    assert main([job, "--resume", str(run), "--problems", "p.jsonl", "--max-steps", "2", "--no-progress"]) == 0
    capsys.readouterr()
    monkeypatch.chdir(elsewhere)  # ... but another file of that name is
    assert main([job, "--resume", str(run), "--problems", "p.jsonl", "--max-steps", "2"]) == 2
    assert "problems=" in capsys.readouterr().err


@pytest.mark.parametrize("job", ["train", "ladder", "eval"])
def test_resume_refuses_a_problems_file_that_changed_since_the_run_began(tmp_path, capsys, job):
    import hashlib

    problems = tmp_path / "p.jsonl"
    problems.write_text(_countdown_rows(0, 2))
    run = tmp_path / "run"
    if job == "eval":
        argv = ["eval", "--task", "countdown", *TINY_RANDOM, "--strategy", "greedy", "--n", "1", "--seeds", "1",
                "--max-new-tokens", "8", "--workers", "1", "--no-plot", "--no-progress"]
        resume = ["eval", "--resume", "--out", str(run)]
    else:
        argv, resume = [*JOB_ARGV[job], "--max-steps", "1"], [job, "--resume", str(run), "--max-steps", "2"]
    assert main([*argv, "--problems", str(problems), "--out", str(run)]) == 0
    assert json.loads((run / "inputs.json").read_text()) == {str(problems): hashlib.sha256(problems.read_bytes()).hexdigest()}
    problems.write_text(_countdown_rows(5, 2))
    capsys.readouterr()
    assert main(resume) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(problems) in err[0] and "other contents" in err[0], err
    problems.unlink()
    assert main(resume) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(problems) in err[0] and "no such file" in err[0], err
    assert (run / "config.yaml").exists()  # a refused resume leaves the run as it was


def test_a_run_made_before_input_fingerprints_resumes_with_a_warning_and_is_fingerprinted_from_then(tmp_path, capsys):
    problems = tmp_path / "p.jsonl"
    problems.write_text(_countdown_rows(0, 2))
    run = tmp_path / "run"
    assert main([*JOB_ARGV["train"], "--max-steps", "1", "--problems", str(problems), "--out", str(run)]) == 0
    (run / "inputs.json").unlink()  # as a run made by an older rungs
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--max-steps", "2"]) == 0
    err = capsys.readouterr().err
    assert f"rungs: warning: {run} has no inputs.json" in err and "cannot be checked" in err
    assert json.loads((run / "inputs.json").read_text()) == {str(problems): fingerprint(problems)}


def test_absolute_inputs_leave_names_that_are_not_local_paths_alone(tmp_path, monkeypatch):
    from rungs.runs import absolute_inputs

    monkeypatch.chdir(tmp_path)
    (tmp_path / "p.jsonl").write_text("")
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "random").mkdir()
    given = {"ladder": {"problems": "p.jsonl", "eval_problems": "builtin:integration-dev", "variants": None,
                        "policy": "tiny:ckpt", "task": "p.jsonl"},
             "problems": "missing.jsonl", "eval_problems": "none", "policy": "tiny:random", "grpo": {"beta": 0.0}}
    assert absolute_inputs(given) == {
        "ladder": {"problems": str(tmp_path / "p.jsonl"), "eval_problems": "builtin:integration-dev", "variants": None,
                   "policy": f"tiny:{tmp_path / 'ckpt'}", "task": "p.jsonl"},
        "problems": "missing.jsonl", "eval_problems": "none", "policy": "tiny:random", "grpo": {"beta": 0.0}}
    assert absolute_inputs({"policy": "hf:Qwen/Qwen2.5-0.5B", "problems": "builtin:countdown-easy"}) == \
        {"policy": "hf:Qwen/Qwen2.5-0.5B", "problems": "builtin:countdown-easy"}


def test_the_tiny_models_defaults_checkpoint_so_a_killed_run_loses_little():
    from rungs.train.grpo_config import GRPOConfig, policy_grpo_defaults

    config = GRPOConfig(**policy_grpo_defaults("tiny"))
    assert 0 < config.save_steps <= 20 and config.save_total_limit is not None


def test_a_resume_that_finds_no_checkpoint_says_it_drops_the_logged_steps(tmp_path, capsys):
    import shutil

    run = tmp_path / "run"
    argv = [*JOB_ARGV["train"], "--problems", "builtin:countdown-easy", "--max-steps", "2", "--save-steps", "0"]
    assert main([*argv, "--out", str(run)]) == 0
    shutil.rmtree(run / "checkpoints")  # as after a kill -9 before the first checkpoint
    (run / "summary.json").unlink()
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--no-progress", "--no-plot"]) == 0
    out = capsys.readouterr().out
    assert "no checkpoint found (save_steps=0): restarting from step 0; 2 logged steps are dropped" in out, out
    assert [e["step"] for e in RunDir.open(run).events() if e["type"] == "train"] == [1, 2]


def test_a_job_whose_setup_fails_leaves_no_run_directory_and_its_out_can_be_used(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    # every row unparseable (one bad row among good ones only costs that row: load_task_problems)
    bad.write_text('{"problem": "integrate(import os, x)"}\n{"problem": "integrate(__import__, x)"}\n')
    variants = tmp_path / "variants.jsonl"
    variants.write_text("not json\n")
    ladder = [*JOB_ARGV["ladder"], "--max-steps", "1"]
    evaluate = ["eval", *TINY_RANDOM, "--strategy", "greedy", "--n", "1", "--seeds", "1", "--max-new-tokens", "8",
                "--workers", "1", "--no-plot", "--no-progress"]
    out = tmp_path / "runs" / "out"
    cases = [
        [*ladder, "--problems", "nope.jsonl"],
        [*ladder, "--task", "bogus"],
        [*ladder, "--problems", "builtin:countdown-easy", "--variants", str(variants)],
        [*ladder, "--problems", "builtin:countdown-easy", "--variant-source", "bogus"],
        ["train", "--task", "countdown", "--problems", "builtin:countdown-easy", "--policy", "bogus"],
        [*evaluate, "--task", "integration", "--problems", str(bad)],
        [*evaluate, "--task", "countdown", "--policy-option", "bogus=1"],
    ]
    for argv in cases:
        assert main([*argv, "--out", str(out)]) == 2, argv
        assert not out.exists(), (argv, sorted(p.name for p in out.iterdir()))
    capsys.readouterr()
    # a directory that existed before is kept, emptied of what the failed job wrote
    out.mkdir()
    assert main([*cases[-1], "--out", str(out)]) == 2
    assert out.is_dir() and list(out.iterdir()) == []
    # ... and one that held the user's own files keeps them, and only them, for every kind of failure
    (out / "notes.txt").write_text("mine\n")
    for argv in cases[2:]:
        assert main([*argv, "--out", str(out)]) == 2, argv
        assert sorted(p.name for p in out.iterdir()) == ["notes.txt"], argv
    (out / "notes.txt").unlink()
    assert main([*ladder, "--problems", "builtin:countdown-easy", "--out", str(out)]) == 0
    # a run reopened to resume is never removed, whatever it holds
    import shutil

    for child in out.iterdir():  # left with nothing but its setup: still not this call's to remove
        if child.name not in ("config.yaml", "inputs.json", "variants.jsonl", ".lock"):
            shutil.rmtree(child) if child.is_dir() else child.unlink()
    resumed = RunDir.open(out, job="ladder", lock=True)
    assert not resumed.discard_if_unused() and (out / "config.yaml").exists()
    resumed.release()


def test_train_resume_with_a_smaller_budget_than_the_run_has_done_is_refused(tmp_path, capsys):
    run = tmp_path / "run"
    argv = [*JOB_ARGV["train"], "--problems", "builtin:countdown-easy", "--max-steps", "2", "--save-steps", "1"]
    assert main([*argv, "--out", str(run)]) == 0
    config = (run / "config.yaml").read_text()
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--max-steps", "1", "--no-progress", "--no-plot"]) == 2
    err = capsys.readouterr().err.strip()
    assert "already trained 2 steps, more than max_steps=1" in err and "\n" not in err
    assert (run / "config.yaml").read_text() == config


def test_a_resume_says_which_checkpoint_it_continues_from(tmp_path, capsys):
    run = tmp_path / "run"
    argv = [*JOB_ARGV["train"], "--problems", "builtin:countdown-easy", "--max-steps", "2", "--save-steps", "1"]
    assert main([*argv, "--out", str(run)]) == 0
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--max-steps", "3", "--no-progress", "--no-plot"]) == 0
    assert f"resume: {run}: from the checkpoint of step 2" in capsys.readouterr().out


def test_extending_a_finished_run_withdraws_its_finished_summary_until_it_ends_again(tmp_path, capsys, monkeypatch):
    from rungs.train.grpo import GRPOTrainer

    run = tmp_path / "run"
    argv = [*JOB_ARGV["train"], "--problems", "builtin:countdown-easy", "--max-steps", "2", "--save-steps", "1"]
    assert main([*argv, "--out", str(run)]) == 0
    assert json.loads((run / "summary.json").read_text())["total_steps"] == 2

    def killed(self, *args, **kwargs):  # a kill -9 right after the resume began
        raise KeyboardInterrupt

    monkeypatch.setattr(GRPOTrainer, "step", killed)
    main(["train", "--resume", str(run), "--max-steps", "4", "--no-progress", "--no-plot"])
    assert not (run / "summary.json").exists()  # no stale "finished" for a run that is now 4 steps long
    monkeypatch.undo()
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--max-steps", "4", "--no-progress", "--no-plot"]) == 0
    assert json.loads((run / "summary.json").read_text())["total_steps"] == 4
