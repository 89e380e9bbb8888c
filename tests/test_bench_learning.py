"""bench/learning.py's tuning pool never holds a test problem, and its overrides parse as the flags mean."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "learning.py"


@pytest.fixture(scope="module")
def learning():
    spec = importlib.util.spec_from_file_location("bench_learning", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("suite", ["integration", "countdown"])
def test_the_tuning_pool_is_disjoint_from_the_test_sets(learning, suite):
    from rungs.data import load_problems
    from rungs.tasks import get_task

    task_name, test_name, _ = learning.SUITES[suite]
    task = get_task(task_name)
    dev = learning.dev_problems(suite, n=10)
    tests = load_problems(f"builtin:{test_name}") + learning.fresh_problems(suite, 10)
    dev_keys = {task.problem_key(p) for p in dev}
    assert len(dev_keys) == len(dev) >= 20  # builtin dev levels 3-4 plus the draw, no duplicates
    assert not dev_keys & {task.problem_key(p) for p in tests}
    assert all(p.answer is None for p in dev if p.meta.get("set") != f"{task_name}-dev")  # the draw is label-free


def test_overrides_keep_yaml_words_as_strings(learning):
    assert learning.parse_value("off") == "off"  # YAML 1.1 would read False: dynamic_sampling=off
    assert learning.parse_value("true") is True
    assert learning.parse_value("0.5") == 0.5
    assert learning.parse_value("band_rate") == "band_rate"
