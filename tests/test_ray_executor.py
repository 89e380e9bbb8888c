"""RayExecutor: the verifier pool's contract on Ray actors (a local 2-CPU Ray started here).

The same misbehaving toy verifier as test_pool.py: a hang is killed at the limit (`timeout`), an
allocation past the cap and a dead worker are `crash`es, an exception is an `error`, each costing
only its own item, with results in order. Skipped when Ray is not installed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

ray = pytest.importorskip("ray")

from rungs.errors import UserError  # noqa: E402
from rungs.types import Status  # noqa: E402
from rungs.verify.pool import RayExecutor, VerifierPool, parse_executor  # noqa: E402
from tests.test_pool import PROBLEM, ToyTask, linux_only, square  # noqa: E402

TIMEOUT_S = 2.0


@pytest.fixture(scope="module")
def local_ray(repo_root):
    """One local Ray for the module: 2 CPUs, workers that can import tests/ (the toy task)."""
    started = not ray.is_initialized()
    if started:
        path = os.pathsep.join(p for p in (str(repo_root), os.environ.get("PYTHONPATH", "")) if p)
        try:
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False,
                     runtime_env={"env_vars": {"PYTHONPATH": path, "OMP_NUM_THREADS": "1"}})
        except Exception as err:  # Ray's own 30 s start-up limit, on an overloaded machine
            ray.shutdown()
            pytest.skip(f"a local Ray could not start here: {str(err).splitlines()[0]}")
    yield ray
    if started:
        ray.shutdown()


@pytest.fixture(scope="module")
def ray_pool(local_ray):
    with VerifierPool(ToyTask(), workers=2, timeout_s=TIMEOUT_S, executor="ray") as pool:
        yield pool


@linux_only
def test_mixed_batch_statuses_in_order(ray_pool) -> None:
    assert isinstance(ray_pool.executor, RayExecutor)
    answers = ["ok", "hang", "oom", "die", "raise", "nope", "ok"]
    verdicts = ray_pool.verify_answers([PROBLEM] * len(answers), answers)
    assert [v.status for v in verdicts] == [Status.CORRECT, Status.TIMEOUT, Status.CRASH, Status.CRASH,
                                            Status.ERROR, Status.WRONG, Status.CORRECT]
    assert [v.reward for v in verdicts] == [1.0, 0, 0, 0, 0, 0, 1.0]
    assert verdicts[4].detail == "ValueError: bad answer"
    assert "memory" in verdicts[2].detail and "died" in verdicts[3].detail
    assert all(v.answer == a for v, a in zip(verdicts, answers))
    # the pool keeps working after kills, and the actors were replaced rather than the pool lost
    assert [v.status for v in ray_pool.verify([PROBLEM] * 2, ["\\boxed{ok}", "no answer"])] == [Status.CORRECT, Status.NO_ANSWER]
    assert ray_pool.executor.stats["timeouts"] == 1 and ray_pool.executor.stats["restarts"] >= 3


def test_map_in_order(ray_pool) -> None:
    results = ray_pool.map(square, range(12))
    assert [r.value for r in results] == [x * x for x in range(12)]
    assert ray_pool.map(square, ["a"])[0].status == "error"


def test_executor_specs() -> None:
    assert parse_executor("ray") == ("ray", None)
    assert parse_executor("ray:10.0.0.5:6379") == ("ray", "10.0.0.5:6379")
    assert parse_executor("process") == ("process", None)
    with pytest.raises(UserError, match="expected one of process, inline, ray"):
        parse_executor("dask")


def test_address_that_does_not_answer_is_one_line_and_quick(repo_root) -> None:
    # A fresh process (this one has a Ray running): a closed local port must fail in seconds.
    code = ("from rungs.verify.pool import VerifierPool\nfrom rungs.tasks import get_task\n"
            "VerifierPool(get_task('countdown'), executor='ray:127.0.0.1:9')\n")
    env = {**os.environ, "PYTHONPATH": str(repo_root), "RAY_ADDRESS": ""}
    start = time.monotonic()
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode != 0 and time.monotonic() - start < 60
    assert "ray:127.0.0.1:9: no Ray cluster answers there" in run.stderr
    cli = subprocess.run([sys.executable, "-m", "rungs.cli", "verify", "--task", "countdown", "--executor", "ray:127.0.0.1:9",
                          "--problem", "numbers: 3 4; target: 7", "--answer", "3+4"], capture_output=True, text=True,
                         env=env, timeout=120, cwd=repo_root)
    assert cli.returncode == 2, cli.stderr
    assert cli.stderr.strip().count("\n") == 0 and "no Ray cluster answers" in cli.stderr
