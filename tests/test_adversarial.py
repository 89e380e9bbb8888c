"""Every hostile completion in tests/adversarial_corpus.py scores 0, runs no code, and returns in time.

The same holds for the task's `answer_key` (majority voting computes it on hostile text too).

For each task, the whole corpus goes through a real `VerifierPool` (2 workers, 2 s limit), the
code path that scores rollouts in training. The per-item bound (limit + 1 s) is checked on batches
of exactly as many items as there are workers, so each item of a batch has a worker to itself and
the batch's wall time is its slowest item's; after a batch that killed a worker, the replacement
is warmed up untimed so that its start-up is not charged to the next item.
"""

from __future__ import annotations

import collections
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from adversarial_corpus import CORPUS, completions  # noqa: E402

from rungs.types import Problem, Status  # noqa: E402

TIMEOUT_S = 2.0
WORKERS = 2
SLACK_S = 1.0

# A sensible problem per task, and an answer the task must accept (so "all zero" is not vacuous).
CASES = {
    "countdown": (Problem("adv-countdown", "numbers: 1 3 4 6; target: 24"), "<answer>6 / (1 - 3/4)</answer>"),
    "integration": (Problem("adv-integration", "integrate(3*x**2, x)", answer="x**3"), "<answer>x**3</answer>"),
    "math": (Problem("adv-math", "What is 1 + 1?", answer="2"), "<answer>2</answer>"),
}


def load_task(name: str):
    """The task, or a skip while its module has not been written yet."""
    from rungs.tasks import TASKS

    try:
        return TASKS.get(name)()
    except ModuleNotFoundError as err:
        if err.name and err.name.startswith("rungs.tasks"):
            pytest.skip(f"task {name!r} is not implemented yet ({err.name})")
        raise


def test_corpus_is_large_and_varied():
    assert len(CORPUS) >= 200
    assert len(set(CORPUS)) == len(CORPUS)
    assert sum("@MARKER@" in s for s in CORPUS) >= 30
    assert max(map(len, CORPUS)) >= 1_000_000
    kinds = collections.Counter(label.split(":")[0] for label, _ in completions("/m"))
    assert kinds["answer"] == len(CORPUS) and kinds["raw"] > 50 and kinds["boxed"] > 50


@pytest.mark.parametrize("task_name", sorted(CASES))
def test_hostile_completions_score_zero_run_nothing_and_return_in_time(task_name, tmp_path):
    from rungs.verify.pool import VerifierPool

    task = load_task(task_name)
    problem, good = CASES[task_name]
    marker = tmp_path / "MARKER"
    items = completions(str(marker))
    failures: list[str] = []
    statuses: collections.Counter[str] = collections.Counter()
    slowest = 0.0
    with VerifierPool(task, workers=WORKERS, timeout_s=TIMEOUT_S) as pool:
        # Start the workers, and check that a right answer does score (the test is not vacuous).
        warm = pool.verify([problem] * WORKERS, [good] * WORKERS)
        assert all(v.reward == 1.0 for v in warm), warm
        for start in range(0, len(items), WORKERS):
            batch = items[start : start + WORKERS]
            began = time.monotonic()
            verdicts = pool.verify([problem] * len(batch), [text for _, text in batch])
            elapsed = time.monotonic() - began
            slowest = max(slowest, elapsed)
            if elapsed > TIMEOUT_S + SLACK_S:
                failures.append(f"{[name for name, _ in batch]}: took {elapsed:.2f} s (limit {TIMEOUT_S + SLACK_S:g} s)")
            for (name, _), verdict in zip(batch, verdicts):
                statuses[verdict.status.value] += 1
                if verdict.reward != 0.0:
                    failures.append(f"{name}: reward {verdict.reward} ({verdict.status}: {verdict.detail[:120]})")
            # Voting groups answers by `answer_key`, also in the pool: it must not raise or hang either.
            answers = [(name, task.extract_answer(text)) for name, text in batch]
            answers = [(name, a) for name, a in answers if a is not None]
            began = time.monotonic()
            keys = pool.executor.run(type(task).answer_key, [(problem, a) for _, a in answers], TIMEOUT_S,
                                     with_state=True)
            elapsed = time.monotonic() - began
            if elapsed > TIMEOUT_S + SLACK_S:
                failures.append(f"answer_key of {[name for name, _ in answers]}: took {elapsed:.2f} s")
            for (name, _), result in zip(answers, keys):
                if not result.ok:
                    failures.append(f"answer_key of {name}: {result.status} ({result.detail[:120]})")
            if any(v.status in (Status.TIMEOUT, Status.CRASH) for v in verdicts) or not all(r.ok for r in keys):
                pool.verify([problem] * WORKERS, [good] * WORKERS)  # untimed: start the replacements
            assert not marker.exists(), f"code ran: {[name for name, _ in batch]} created the marker file"
    print(f"{task_name}: {len(items)} hostile completions, statuses {dict(statuses)}, slowest batch {slowest:.2f} s")
    assert not failures, f"{len(failures)} problem(s):\n" + "\n".join(failures)
    assert not marker.exists()
