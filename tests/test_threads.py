"""Threads sized to the free cores (issue 9, item 11): torch intra-op threads, verifier workers and
the OpenMP wait policy follow the cores other work leaves free; --threads overrides; 0 is the old way."""

from __future__ import annotations

import pytest
import torch

from rungs import threads


@pytest.fixture(autouse=True)
def _restore(monkeypatch):
    before = torch.get_num_threads()
    monkeypatch.setattr(threads, "_chosen", None)
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize(("busy", "free"), [(0.0, 4), (1.0, 3), (1.4, 3), (2.6, 1), (9.0, 1)])
def test_free_cores_are_the_usable_ones_not_busy_with_other_work(monkeypatch, busy, free):
    monkeypatch.setattr(threads, "usable_cores", lambda: 4)
    monkeypatch.setattr(threads, "busy_cores", lambda sample_s=0.2: busy)
    assert threads.free_cores() == free


def test_a_job_beside_a_hog_uses_the_free_core_only(monkeypatch):
    monkeypatch.setattr(threads, "usable_cores", lambda: 2)
    monkeypatch.setattr(threads, "busy_cores", lambda sample_s=0.2: 1.0)  # another CPU-bound process
    assert threads.configure_threads(None) == 1
    assert torch.get_num_threads() == 1 and threads.default_workers() == 1
    import os

    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"  # idle OpenMP threads sleep, not spin


def test_threads_flag_overrides_and_zero_keeps_the_old_behaviour(monkeypatch):
    import os

    assert threads.configure_threads(3) == 3 and torch.get_num_threads() == 3 and threads.default_workers() == 3
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    threads.configure_threads(0)
    assert threads.default_workers() == (os.cpu_count() or 1) and "OMP_WAIT_POLICY" not in os.environ
    with pytest.raises(ValueError):
        threads.configure_threads(-1)


def test_the_verifier_pool_defaults_to_the_chosen_workers(monkeypatch):
    from rungs.verify.pool import ProcessExecutor

    threads.configure_threads(1)
    executor = ProcessExecutor(workers=None, start_method="fork")
    try:
        assert executor.workers == 1
    finally:
        executor.close()


def test_busy_cores_reads_the_machine():
    assert threads.busy_cores(sample_s=0.05) >= 0.0
    assert 1 <= threads.free_cores(sample_s=0.05) <= threads.usable_cores()


def test_threads_flag_is_checked(capsys):
    from rungs.cli import main

    with pytest.raises(SystemExit):
        main(["eval", "--threads", "many"])
    assert "argument --threads: expected an integer >= 0" in capsys.readouterr().err
