"""bench/bench_cli.py: what every bench script shares at its edges."""

from __future__ import annotations

import argparse

import pytest


@pytest.fixture(scope="module")
def bench_cli(load_bench):
    return load_bench("bench_cli")


def test_a_user_error_ends_in_one_line_and_status_2(bench_cli, capsys):
    from rungs.errors import UserError

    def main():
        raise UserError("unknown task 'foo'")

    with pytest.raises(SystemExit) as raised:
        bench_cli.run(main, "rewards")
    assert raised.value.code == 2
    assert capsys.readouterr().err == "rewards: error: unknown task 'foo'\n"


def test_a_main_that_returns_its_result_exits_0(bench_cli):
    with pytest.raises(SystemExit) as raised:
        bench_cli.run(lambda: {"arms": {}}, "arc")
    assert raised.value.code == 0


def test_counts_and_names(bench_cli):
    assert bench_cli.positive("3") == 3
    for bad in ("0", "-1", "x"):
        with pytest.raises(argparse.ArgumentTypeError, match="expected an integer >= 1"):
            bench_cli.positive(bad)
    assert bench_cli.int_at_least(1, zero_means="all")("0") == 0
    assert bench_cli.names_list(("a", "b"))("b,a") == ["b", "a"]
    with pytest.raises(argparse.ArgumentTypeError, match=r"unknown: c"):
        bench_cli.names_list(("a", "b"))("a,c")


def test_a_result_files_folder_is_made_before_the_measurement(bench_cli, tmp_path):
    path = bench_cli.writable_parent(tmp_path / "new" / "deeper" / "v.json", "--json")
    assert path.parent.is_dir() and not path.exists()
    with pytest.raises(SystemExit, match="is a folder"):
        bench_cli.writable_parent(tmp_path / "new", "--json")


# -- children end with their parent, however it ends (C1) -------------------------------------------
def _alive(pid):
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"  # a zombie has ended
    except OSError:
        return True


def _start_job(tmp_path):
    """A parent (its own process group, like a shell job) holding a ChildGroup whose child started a
    grandchild; returns (parent Popen, [child pid, grandchild pid])."""
    import subprocess
    import sys
    import time
    from pathlib import Path

    bench = Path(__file__).resolve().parent.parent / "bench"
    pids = tmp_path / "pids"
    child = (f"import os, subprocess, sys, time; grand = subprocess.Popen([sys.executable, '-c', 'import time; "
             f"time.sleep(60)']); open({str(pids)!r}, 'a').write(f'{{os.getpid()}} {{grand.pid}}\\n'); time.sleep(60)")
    parent = (f"import sys; sys.path.insert(0, {str(bench)!r}); import bench_cli\n"
              f"with bench_cli.ChildGroup('job', grace_s=5) as group:\n"
              f"    group.popen([sys.executable, '-c', {child!r}]).wait()\n")
    proc = subprocess.Popen([sys.executable, "-c", parent], stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 30
    while not (pids.exists() and pids.read_text().endswith("\n")) and time.monotonic() < deadline:
        time.sleep(0.05)
    return proc, [int(pid) for pid in pids.read_text().split()]


def _wait_ended(pids, timeout=10.0):
    import time

    deadline = time.monotonic() + timeout
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return [pid for pid in pids if _alive(pid)]


def _cleanup(pids):
    import os
    import signal

    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.mark.parametrize("name", ["SIGHUP", "SIGTERM", "SIGQUIT"])
def test_a_hangup_or_stop_to_the_jobs_group_ends_the_children_and_what_they_started(tmp_path, name):
    """A closed terminal or dropped ssh: the shell sends SIGHUP to the job's process group, which the
    children (in their own groups) are not in; the parent forwards it to theirs."""
    import os
    import signal
    import sys

    if not hasattr(signal, name) or sys.platform == "win32":
        pytest.skip(f"no {name} here")
    sig = getattr(signal, name)
    proc, started = _start_job(tmp_path)
    try:
        os.killpg(proc.pid, sig)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 128 + sig
        assert f"{name}: stopped its running jobs" in err and "Traceback" not in err
        assert _wait_ended(started) == []
    finally:
        _cleanup(started)


def test_a_killed_parent_takes_its_children_and_what_they_started_with_it(tmp_path):
    """SIGKILL (`kill -9 -PGID`, the OOM killer) runs nothing in the parent: on Linux the kernel sends
    each child's guard SIGTERM (PR_SET_PDEATHSIG), which ends the child's whole group, grandchildren
    that arm nothing of their own included."""
    import os
    import signal
    import sys

    if not sys.platform.startswith("linux"):
        pytest.skip("PR_SET_PDEATHSIG is Linux's")
    proc, started = _start_job(tmp_path)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        assert _wait_ended(started) == []  # the child and its grandchild, which armed nothing of its own
    finally:
        _cleanup(started)


def test_a_given_preexec_fn_still_runs(bench_cli, tmp_path):
    import subprocess
    import sys

    mark = tmp_path / "ran"
    with bench_cli.ChildGroup("job") as group:
        proc = group.popen([sys.executable, "-c", "pass"], preexec_fn=lambda: mark.write_text("yes"),
                           stdout=subprocess.DEVNULL)
        assert proc.wait(timeout=30) == 0
    assert mark.read_text() == "yes"


def test_a_guarded_child_exits_as_it_would_without_its_guard(bench_cli, tmp_path):
    """The returned Popen's status is the child's: its exit code, or minus the signal that ended it;
    and what the caller passed (a pipe, the environment, the folder) reaches the child."""
    import os
    import signal
    import subprocess
    import sys

    with bench_cli.ChildGroup("job") as group:
        code = group.popen([sys.executable, "-c", "import sys; sys.exit(3)"])
        killed = group.popen([sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGTERM)"])
        talk = group.popen([sys.executable, "-c", "import os; print(os.environ['MARK'], os.getcwd())"],
                           stdout=subprocess.PIPE, text=True, env={**os.environ, "MARK": "passed"}, cwd=tmp_path)
        assert code.wait(timeout=30) == 3
        assert killed.wait(timeout=30) == -signal.SIGTERM
        out, _ = talk.communicate(timeout=30)
        assert out.split() == ["passed", str(tmp_path)]
        if sys.platform.startswith("linux"):  # the guard starts it: a missing program is a status, as in a shell
            missing = group.popen([str(tmp_path / "no-such-program")], stderr=subprocess.PIPE, text=True)
            _, err = missing.communicate(timeout=30)
            assert missing.returncode == 127 and "no-such-program: No such file or directory" in err
