"""VerifierPool: hard timeouts, crashes, memory caps and errors cost one item, never the pool."""

from __future__ import annotations

import os
import sys
import time

import psutil
import pytest

from rungs.tasks.base import Task
from rungs.types import Problem, Status, Verdict
from rungs.verify.pool import InlineExecutor, ProcessExecutor, Result, VerifierPool, verify_one

TIMEOUT_S = 1.0


class ToyTask(Task):
    """A task whose verifier misbehaves on command: the answer says how."""

    name = "toy"

    def prompt(self, problem: Problem, style: str = "instruct") -> str:
        return problem.text

    def verify_answer(self, problem: Problem, answer: str) -> Verdict:
        if answer == "hang":
            while True:
                time.sleep(0.05)
        if answer == "oom":
            hog = bytearray(10 * 2**30)  # 10 GB, far past the cap
            return Verdict(1.0 if hog else 0.0, Status.CORRECT)
        if answer == "die":
            os._exit(3)
        if answer == "raise":
            raise ValueError("bad answer\nsecond line")
        if answer == "ok":
            return Verdict(1.0, Status.CORRECT, answer=answer)
        return Verdict.fail(Status.WRONG, answer=answer)

    def generate(self, n: int, difficulty: float, seed: int = 0) -> list[Problem]:
        return [Problem(f"toy{i}", "say ok", "ok") for i in range(n)]


def square(x: int) -> int:
    return x * x


def sleep_then(x: float) -> float:
    time.sleep(x)
    return x


def getpid(_: object) -> int:
    return os.getpid()


PROBLEM = Problem("p", "say ok", "ok")
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS and /proc are Linux")


def assert_all_gone(pids: set[int]) -> None:
    """None of `pids` is still running (reaped, or at worst a zombie of the fork server)."""
    for pid in pids:
        if psutil.pid_exists(pid):
            assert psutil.Process(pid).status() == psutil.STATUS_ZOMBIE, f"worker {pid} still running"
    children = {p.pid for p in psutil.Process().children(recursive=True)}
    assert not (children & pids)


@pytest.fixture(scope="module")
def pool():
    with VerifierPool(ToyTask(), workers=2, timeout_s=TIMEOUT_S) as p:
        yield p


@linux_only
def test_mixed_batch_statuses_in_order(pool: VerifierPool) -> None:
    answers = ["ok", "hang", "oom", "die", "raise", "nope", "ok"]
    start = time.monotonic()
    verdicts = pool.verify_answers([PROBLEM] * len(answers), answers)
    elapsed = time.monotonic() - start
    assert [v.status for v in verdicts] == [
        Status.CORRECT,
        Status.TIMEOUT,
        Status.CRASH,
        Status.CRASH,
        Status.ERROR,
        Status.WRONG,
        Status.CORRECT,
    ]
    assert [v.reward for v in verdicts] == [1.0, 0, 0, 0, 0, 0, 1.0]
    assert "ValueError: bad answer" == verdicts[4].detail  # one line, never raised
    assert "memory" in verdicts[2].detail
    assert "exit code 3" in verdicts[3].detail
    assert all(v.answer == a for v, a in zip(verdicts, answers))  # failures keep the answer
    # The hang cost one timeout, not the batch: a single limit (plus restarts), never one per item.
    assert elapsed < 2 * TIMEOUT_S + 5


@linux_only
def test_pool_works_after_kills_and_verify_extracts(pool: VerifierPool) -> None:
    for _ in range(3):
        assert pool.verify_answers([PROBLEM], ["die"])[0].status is Status.CRASH
    texts = ["so \\boxed{ok}", "<answer>nope</answer>", "no answer here", "\\boxed{hang}"]
    verdicts = pool.verify([PROBLEM] * 4, texts)
    assert [v.status for v in verdicts] == [Status.CORRECT, Status.WRONG, Status.NO_ANSWER, Status.TIMEOUT]


def pid_after(x: float) -> int:
    time.sleep(x)
    return os.getpid()


def test_slow_item_does_not_block_others() -> None:
    # Two workers: the slow item occupies one; the other takes every fast item as soon as it is free.
    with VerifierPool(ToyTask(), workers=2, timeout_s=10.0) as p:
        p.map(square, [1, 2])  # both workers up
        results = p.map(pid_after, [1.5] + [0.0] * 20)
    assert all(r.ok for r in results)
    slow_pid, fast_pids = results[0].value, {r.value for r in results[1:]}
    assert slow_pid not in fast_pids


def test_map_results() -> None:
    with VerifierPool(ToyTask(), workers=2, timeout_s=0.5) as p:
        results = p.map(square, range(10))
        assert [r.value for r in results] == [x * x for x in range(10)]
        assert all(isinstance(r, Result) and r.ok for r in results)
        mixed = p.map(sleep_then, [0.0, 30.0], timeout_s=0.5)
        assert mixed[0].ok and mixed[1].status == "timeout"
        bad = p.map(square, ["a"])
        assert bad[0].status == "error" and "TypeError" in bad[0].detail


def test_unpicklable_call_is_an_error_not_a_crash() -> None:
    with VerifierPool(ToyTask(), workers=1) as p:
        results = p.map(square, [lambda: 1, 3])  # a lambda cannot be sent; 3 still runs
    assert results[0].status == "error" and "could not send" in results[0].detail
    assert results[1].value == 9


@linux_only
def test_no_leaks_over_many_items_and_kills() -> None:
    fds = psutil.Process().num_fds()
    seen: set[int] = set()
    with VerifierPool(ToyTask(), workers=2, timeout_s=TIMEOUT_S) as p:
        for _ in range(3):
            answers = ["ok"] * 300 + ["die"] * 4 + ["raise"] * 10
            verdicts = p.verify_answers([PROBLEM] * len(answers), answers)
            assert sum(v.correct for v in verdicts) == 300
            assert sum(v.status is Status.CRASH for v in verdicts) == 4
            seen.update(r.value for r in p.map(getpid, range(4)))
        seen.update(p.executor.pids())
        assert p.executor.stats["crashes"] == 12
    assert_all_gone(seen)
    assert psutil.Process().num_fds() <= fds + 2  # the fork server's pipes may be new


def test_close_reaps_children_and_refuses_more_work() -> None:
    p = VerifierPool(ToyTask(), workers=2, timeout_s=TIMEOUT_S)
    pids = {r.value for r in p.map(getpid, range(4))}
    assert len(pids) >= 1 and os.getpid() not in pids
    p.close()
    assert_all_gone(pids)
    with pytest.raises(RuntimeError):
        p.verify([PROBLEM], ["\\boxed{ok}"])
    p.close()  # idempotent


def test_verify_one_and_inline_executor() -> None:
    assert verify_one(ToyTask(), PROBLEM, "\\boxed{ok}").correct
    with VerifierPool(ToyTask(), executor="inline") as p:
        verdicts = p.verify_answers([PROBLEM] * 3, ["ok", "raise", "nope"])
    assert [v.status for v in verdicts] == [Status.CORRECT, Status.ERROR, Status.WRONG]
    assert InlineExecutor().run(square, [(3,)], None)[0].value == 9


def test_unpicklable_task_is_a_clear_error() -> None:
    task = ToyTask()
    task.hook = lambda: None  # type: ignore[attr-defined]
    with pytest.raises(TypeError, match="cannot be sent to worker processes"):
        ProcessExecutor(task)


def test_length_mismatch() -> None:
    with VerifierPool(ToyTask(), executor="inline") as p, pytest.raises(ValueError, match="2 problems but 1"):
        p.verify([PROBLEM, PROBLEM], ["x"])


def _refuse_to_unpickle() -> ToyTask:
    raise ValueError("cannot rebuild this task here")


class UnbuildableTask(ToyTask):
    def __reduce__(self):
        return (_refuse_to_unpickle, ())


def test_worker_start_failure_is_a_clear_error() -> None:
    with VerifierPool(UnbuildableTask(), workers=1) as p, pytest.raises(RuntimeError, match="cannot rebuild this task"):
        p.verify([PROBLEM], ["\\boxed{ok}"])


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_copy_refuses_work_and_spares_the_parents_workers() -> None:
    with VerifierPool(ToyTask(), workers=1) as p:
        p.map(square, [1])
        pid = os.fork()
        if pid == 0:  # the child: a copy of the pool object whose workers are not its own
            code = 1
            try:
                p.map(square, [2])
            except RuntimeError:
                code = 7
            p.close()
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 7
        assert p.map(square, [3])[0].value == 9


UNGUARDED = """\
from rungs.integrations import compute_score
print("top level ran")
print("score", compute_score("countdown", "<answer>(3 + 4) * 5</answer>", "numbers: 3 4 5; target: 35"))
"""


@pytest.mark.parametrize("how", ["file", "stdin"])
def test_a_script_without_a_main_guard_runs_once_and_scores(tmp_path, how):
    """The README's snippets call rungs at a script's top level, with no `if __name__ == "__main__":`
    guard; the workers must not re-run such a script (nor fail looking for `<stdin>`)."""
    import subprocess

    script = tmp_path / "snippet.py"
    script.write_text(UNGUARDED)
    argv, stdin = ([sys.executable, str(script)], None) if how == "file" else ([sys.executable, "-"], UNGUARDED)
    done = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines() == ["top level ran", "score 1.0"]


def test_python_dash_m_modules_are_not_run_again_by_the_workers(tmp_path):
    """`python -m pkg.mod`: an unguarded module runs once and scores; a guarded one (rungs.cli) is
    imported once by the fork server, so no worker runs it again (runpy's RuntimeWarning)."""
    import subprocess

    (tmp_path / "snippets").mkdir()
    (tmp_path / "snippets" / "__init__.py").write_text("")
    (tmp_path / "snippets" / "score.py").write_text(UNGUARDED)
    done = subprocess.run([sys.executable, "-m", "snippets.score"], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines() == ["top level ran", "score 1.0"]
    done = subprocess.run([sys.executable, "-m", "rungs.cli", "verify", "--task", "countdown", "--problem",
                           "numbers: 1 3 4 6; target: 24", "--answer", "6/(1-3/4)"],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0 and done.stdout.startswith("correct")
    assert "RuntimeWarning" not in done.stderr, done.stderr[-2000:]


def test_a_guarded_script_keeps_its_own_functions_for_the_workers(tmp_path):
    import subprocess

    script = tmp_path / "guarded.py"
    script.write_text(
        "from rungs.tasks import get_task\nfrom rungs.verify.pool import VerifierPool\n"
        "print('top level ran')\n"
        "def double(x):\n    return 2 * x\n"
        "if __name__ == '__main__':\n"
        "    with VerifierPool(get_task('countdown'), workers=2) as pool:\n"
        "        print([r.value for r in pool.map(double, [1, 2, 3])])\n")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    # the fork server imports a guarded script once (so `double` exists in the workers)
    assert done.stdout.splitlines() == ["top level ran", "top level ran", "[2, 4, 6]"]


@pytest.mark.parametrize("source, guarded", [
    ("if __name__ == '__main__':\n    main()\n", True),
    ("if '__main__' == __name__:\n    main()\n", True),
    ("import x\nmain()\n", False),
    ("def f():\n    if __name__ == '__main__':\n        main()\n", False),  # not at the top level
    ("if __name__ != '__main__':\n    main()\n", False),
    ("if __name__ == '__main__'\n", False),  # a syntax error
])
def test_has_main_guard_reads_the_script_without_running_it(tmp_path, source, guarded):
    from rungs.verify.pool import has_main_guard

    path = tmp_path / "s.py"
    path.write_text(source)
    assert has_main_guard(str(path)) is guarded
    assert has_main_guard(str(tmp_path / "missing.py")) is False
