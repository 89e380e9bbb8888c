"""Run directories: config, append-only logs, atomic checkpoints, and resume truncation."""

from __future__ import annotations

import json

import pytest

from rungs.errors import UserError
from rungs.runs import RunDir, read_jsonl, truncate_jsonl


def _steps(rows):
    return [r["step"] for r in rows]


def test_create_open_and_config(tmp_path):
    run = RunDir.create(tmp_path / "run", {"task": "countdown", "grpo": {"beta": 0.001}})
    assert run.read_config() == {"task": "countdown", "grpo": {"beta": 0.001}}
    with pytest.raises(UserError, match="already holds a run"):
        RunDir.create(tmp_path / "run", {})
    with pytest.raises(UserError, match="not a run directory"):
        RunDir.open(tmp_path / "elsewhere")
    assert RunDir.open(tmp_path / "run").read_config()["task"] == "countdown"


def test_logs_append_and_read(tmp_path):
    with RunDir.create(tmp_path / "run", {}) as run:
        run.log_event({"step": 1, "reward": 0.5})
        run.log_rollouts([{"step": 1, "completion": "a"}, {"step": 1, "completion": "b"}])
        with pytest.raises(ValueError):
            run.log_event({"reward": 1.0})  # no step
    assert run.events() == [{"step": 1, "reward": 0.5}]
    assert [r["completion"] for r in run.rollouts()] == ["a", "b"]


def test_truncate_keeps_steps_up_to_and_drops_torn_line(tmp_path):
    path = tmp_path / "log.jsonl"
    rows = [{"step": s, "i": i} for i, s in enumerate([0, 1, 1, 2, 3])]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"step": 3, "torn', encoding="utf-8")
    assert _steps(read_jsonl(path)) == [0, 1, 1, 2, 3]  # the torn line is skipped when reading
    assert truncate_jsonl(path, 1) == 3
    assert _steps(read_jsonl(path)) == [0, 1, 1]
    assert path.read_text(encoding="utf-8").endswith("\n")
    assert truncate_jsonl(path, 1) == 3  # idempotent
    assert truncate_jsonl(path, -1) == 0 and path.read_text() == ""


def test_checkpoint_is_atomic(tmp_path):
    run = RunDir.create(tmp_path / "run", {})

    def write(d):
        (d / "weights.bin").write_bytes(b"w" * 10)

    def fail(d):
        (d / "weights.bin").write_bytes(b"half")
        raise RuntimeError("killed mid-write")

    path = run.save_checkpoint(2, write)
    assert path.name == "step-2" and (path / "weights.bin").read_bytes() == b"w" * 10
    with pytest.raises(RuntimeError):
        run.save_checkpoint(4, fail)
    assert [s for s, _ in run.checkpoints()] == [2]
    assert not any(p.name.startswith(".tmp") for p in run.checkpoints_dir.iterdir())
    # A kill leaves a temporary directory (never renamed) and maybe an unmarked one: both ignored.
    (run.checkpoints_dir / ".tmp-step-6-abc").mkdir()
    (run.checkpoints_dir / "step-8").mkdir()  # no COMPLETE marker
    assert run.latest_checkpoint()[0] == 2
    run.save_checkpoint(2, lambda d: (d / "weights.bin").write_bytes(b"new"))  # re-saving a step replaces it
    assert (run.checkpoint_path(2) / "weights.bin").read_bytes() == b"new"


def test_a_resave_killed_between_its_two_renames_gets_its_old_directory_back(tmp_path):
    """Without an atomic swap (no renameat2), re-saving final/ moves the old one aside, then the new
    one in: a SIGKILL between the two left
    no final/ at all. The next resume (clean_temporaries) puts the old one back; a save that did
    finish is never replaced by the directory it moved aside."""
    import subprocess
    import sys

    run = RunDir.create(tmp_path / "run", {})
    run.save_dir("final", lambda d: (d / "w.bin").write_bytes(b"old"))
    child = f"""
import os, sys
import rungs.runs as runs
calls = []
def replace(src, dst):
    calls.append(src)
    if len(calls) == 2:  # the old final/ is aside, the new one not yet in: die as SIGKILL would
        os._exit(9)
    os.rename(src, dst)
runs.os.replace = replace
runs._exchange = lambda a, b: False  # a platform without renameat2: two renames
runs.RunDir.open({str(tmp_path / "run")!r}).save_dir("final", lambda d: (d / "w.bin").write_bytes(b"new"))
"""
    assert subprocess.run([sys.executable, "-c", child]).returncode == 9
    assert not (run.path / "final").exists()  # the window the fix closes on the next resume
    RunDir.open(run.path).resume()
    assert (run.path / "final" / "w.bin").read_bytes() == b"old"
    assert not any(p.name.startswith(".tmp") for p in run.path.iterdir())
    run.save_dir("final", lambda d: (d / "w.bin").write_bytes(b"new"))
    (run.path / ".tmp-old-final").mkdir()  # a leftover beside a finished save: removed, not restored
    (run.path / ".tmp-old-final" / "w.bin").write_bytes(b"old")
    RunDir.open(run.path).resume()
    assert (run.path / "final" / "w.bin").read_bytes() == b"new" and not (run.path / ".tmp-old-final").exists()


def test_a_resave_swaps_final_in_one_step(tmp_path):
    """Where renameat2 exists (Linux), the old final/ and its re-save trade places atomically: a kill
    right after the swap leaves the new final/, and the old one waits as a temporary the next resume
    removes; final/ is never missing."""
    import subprocess
    import sys

    from rungs.runs import _exchange

    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    (a / "x").write_text("a"), (b / "x").write_text("b")
    if not _exchange(a, b):
        pytest.skip("no renameat2 RENAME_EXCHANGE on this platform or file system")
    assert (a / "x").read_text() == "b" and (b / "x").read_text() == "a"
    assert not _exchange(a, tmp_path / "missing") and (a / "x").read_text() == "b"  # failure changes nothing
    run = RunDir.create(tmp_path / "run", {})
    run.save_dir("final", lambda d: (d / "w.bin").write_bytes(b"old"))
    child = f"""
import os
import rungs.runs as runs
def rename(src, dst):
    raise AssertionError("a re-save must not move final/ aside")
runs.os.replace = rename
runs._rmtree = lambda path: os._exit(9)  # killed just after the swap, before the old one is removed
runs.RunDir.open({str(tmp_path / "run")!r}).save_dir("final", lambda d: (d / "w.bin").write_bytes(b"new"))
"""
    assert subprocess.run([sys.executable, "-c", child]).returncode == 9
    assert (run.path / "final" / "w.bin").read_bytes() == b"new"
    RunDir.open(run.path).resume()
    assert (run.path / "final" / "w.bin").read_bytes() == b"new"
    assert not any(p.name.startswith(".tmp") for p in run.path.iterdir())


def test_prune_keeps_the_newest(tmp_path):
    run = RunDir.create(tmp_path / "run", {})
    for step in (1, 2, 3, 4):
        run.save_checkpoint(step, lambda d: None)
    run.prune_checkpoints(2)
    assert [s for s, _ in run.checkpoints()] == [3, 4]
    run.prune_checkpoints(None)
    assert [s for s, _ in run.checkpoints()] == [3, 4]


def test_resume_cuts_logs_back_to_the_checkpoint(tmp_path):
    run = RunDir.create(tmp_path / "run", {"x": 1})
    for step in (1, 2, 3):
        run.log_event({"step": step})
        run.log_rollouts([{"step": step, "k": 0}, {"step": step, "k": 1}])
        if step == 2:
            run.save_checkpoint(2, lambda d: None)
    run.close()
    with open(run.events_path, "a", encoding="utf-8") as handle:
        handle.write('{"step": 4, "reward"')  # killed mid-line
    (run.checkpoints_dir / ".tmp-step-4-xyz").mkdir()  # killed mid-checkpoint

    again = RunDir.open(tmp_path / "run")
    step, path = again.resume()
    assert step == 2 and path == again.checkpoint_path(2)
    assert _steps(again.events()) == [1, 2]
    assert _steps(again.rollouts()) == [1, 1, 2, 2]
    assert not (again.checkpoints_dir / ".tmp-step-4-xyz").exists()
    again.log_event({"step": 3})  # continues cleanly after the cut
    assert _steps(again.events()) == [1, 2, 3]
    again.close()


def test_resume_without_checkpoint_starts_over(tmp_path):
    run = RunDir.create(tmp_path / "run", {})
    run.log_event({"step": 0, "type": "eval"})
    run.log_event({"step": 1})
    run.close()
    assert RunDir.open(tmp_path / "run").resume() == (0, None)
    assert run.events() == []


def test_a_ctrl_c_inside_a_job_says_how_to_resume_it_and_the_demo_says_it_starts_over(tmp_path):
    from rungs.errors import Interrupted
    from rungs.pipelines.demo import _demo_interrupts
    from rungs.pipelines.job import job_scope
    from rungs.runs import RunDir

    run_dir = RunDir.create(tmp_path / "ladder-run", {})
    with pytest.raises(Interrupted, match=f"interrupted; continue with: rungs ladder --resume {tmp_path / 'ladder-run'}$"):
        with job_scope(run_dir, "ladder"):
            raise KeyboardInterrupt
    assert (tmp_path / "ladder-run").is_dir()  # kept, to be resumed
    with pytest.raises(Interrupted, match="^already said$"):  # a message from deeper down is kept
        with job_scope(RunDir.create(tmp_path / "ttrl-run", {}), "ttrl"):
            raise Interrupted("already said")
    with pytest.raises(Interrupted, match="the demo does not resume .*run `rungs demo` again"):
        with _demo_interrupts(tmp_path / "demo"), job_scope(RunDir.create(tmp_path / "demo" / "ttrl", {}), "ttrl"):
            raise KeyboardInterrupt


def test_a_damaged_line_in_the_middle_costs_that_line_not_the_rest_of_the_log(tmp_path, capsys):
    """A kill tears only the last line; a bad whole line in the middle is disk damage or a bad copy."""
    path = tmp_path / "events.jsonl"
    rows = [json.dumps({"step": s}) for s in range(6)]
    rows[2] = '{"step": 2, "rew'  # garbled, but a whole line
    path.write_text("\n".join(rows) + "\n" + '{"step": 6, "to', encoding="utf-8")
    assert _steps(read_jsonl(path)) == [0, 1, 3, 4, 5]  # a report reads past it
    assert truncate_jsonl(path, 4) == 4
    assert _steps(read_jsonl(path)) == [0, 1, 3, 4]
    assert f"{path}: line 3 damaged" in capsys.readouterr().err
    assert truncate_jsonl(path, 4) == 4 and not capsys.readouterr().err  # idempotent, and nothing more to say
