"""bench/arm_samples.py finds each arm's weights in a bench/learning.py run and scores them on the run's
own test set and fresh draw, with a greedy column that equals bench/learning.py's."""

from __future__ import annotations

import importlib
import importlib.util
import json

import pytest


@pytest.fixture(scope="module")
def arm_samples(load_bench):
    return load_bench("arm_samples")


def test_each_arms_weights_are_found_and_a_missing_seed_is_skipped(arm_samples, tmp_path):
    for run in ("ladder-seed0", "grpo_direct-seed1"):
        (tmp_path / "countdown" / run / "final").mkdir(parents=True)
        (tmp_path / "countdown" / run / "final" / "model.safetensors").write_bytes(b"")
    (tmp_path / "countdown" / "ladder-seed1").mkdir()  # started, never finished: no final weights
    found = arm_samples.arm_policies(tmp_path, "countdown", "tiny:countdown-long", seeds=2)
    assert [(arm, seed) for arm, seed, _ in found] == [("base", 0), ("grpo_direct", 1), ("ladder", 0)]
    assert found[0][2] == "tiny:countdown-long"
    assert found[2][2] == f"tiny:{tmp_path / 'countdown' / 'ladder-seed0' / 'final'}"


def test_the_greedy_column_is_learnings_greedy_accuracy_on_the_same_sets(arm_samples, tmp_path):
    from rungs.data import load_problems
    from rungs.policies import load_policy
    from rungs.tasks import get_task
    from rungs.verify.pool import VerifierPool

    learning = importlib.import_module("learning")
    trained = tmp_path / "countdown" / "ladder-seed0" / "final"  # a trained model: it solves hard problem 3 greedily
    load_policy("tiny:countdown-long", task="countdown", seed=3).save(trained)
    settings = {"base": "tiny:random", "seeds": 1, "limit": 3, "fresh": 1}
    (tmp_path / "learning.json").write_text(json.dumps({"settings": settings}))

    result = arm_samples.measure_arms(tmp_path, "countdown", n=2, temperature=1.0, workers=1)

    assert {(r["arm"], r["set"]) for r in result["rows"]} == {("base", "test"), ("base", "fresh"),
                                                              ("ladder", "test"), ("ladder", "fresh")}
    assert [r["problems"] for r in result["rows"]] == [3, 2, 3, 2]  # limit 3; 1 fresh problem at each of levels 3, 4
    task = get_task("countdown")
    sets = {"test": load_problems("builtin:countdown-hard", limit=3), "fresh": learning.fresh_problems("countdown", 1)}
    with VerifierPool(task, workers=1) as pool:
        for row in result["rows"]:
            spec = "tiny:random" if row["arm"] == "base" else f"tiny:{trained}"
            policy = load_policy(spec, task="countdown", seed=0)
            assert row["greedy"] == learning.greedy_accuracy(policy, task, pool, sets[row["set"]])
    assert [r["greedy"] for r in result["rows"] if r["set"] == "test"] == [0.0, pytest.approx(1 / 3)]
    table = arm_samples.summarise(result)
    assert [(r["set"], r["arm"], r["seeds"]) for r in table] == [
        ("test", "base", 1), ("test", "LADDER", 1), ("fresh", "base", 1), ("fresh", "LADDER", 1)]
    arm_samples.plot(result, tmp_path / "arm_samples.png")
    assert (tmp_path / "arm_samples.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_tuning_run_is_sampled_on_its_dev_pool_only(arm_samples, tmp_path, monkeypatch):
    """A --tune run was chosen on the dev pool: sampling it must not read the test set or the fresh draw."""
    from rungs.policies import load_policy

    learning = importlib.import_module("learning")
    dev = learning.dev_problems("countdown")[:3]
    monkeypatch.setattr(learning, "dev_problems", lambda suite, n=40: dev)
    monkeypatch.setattr(learning, "fresh_problems", lambda *a, **k: pytest.fail("read the fresh draw"))
    load_policy("tiny:countdown-long", task="countdown", seed=3).save(tmp_path / "countdown" / "ladder-seed0" / "final")
    (tmp_path / "learning.json").write_text(json.dumps({"settings": {"base": "tiny:random", "seeds": 1, "tune": True}}))
    result = arm_samples.measure_arms(tmp_path, "countdown", n=1, temperature=1.0, workers=1)
    assert [(r["arm"], r["set"], r["problems"]) for r in result["rows"]] == [("base", "dev", 3), ("ladder", "dev", 3)]
    assert [r["set"] for r in arm_samples.summarise(result)] == ["dev", "dev"]
    arm_samples.plot(result, tmp_path / "arm_samples.png")
    assert (tmp_path / "arm_samples.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_summarise_gives_mean_and_std_over_seeds(arm_samples):
    rows = [{"arm": "ladder", "seed": s, "set": "test", "greedy": g, "pass@k": {1: p, 4: q}}
            for s, (g, p, q) in enumerate([(0.1, 0.2, 0.5), (0.3, 0.4, 0.7)])]
    table = arm_samples.summarise({"n": 4, "rows": rows})
    assert table == [{"set": "test", "arm": "LADDER", "seeds": 2, "greedy": "0.200 ± 0.141",
                      "pass@1": "0.300 ± 0.141", "pass@4": "0.600 ± 0.141"}]


def test_a_folder_without_the_trained_arms_weights_is_refused_and_nothing_is_written(arm_samples, tmp_path, capsys):
    """A fresh clone holds learning.json and the committed figures, not the seed folders: sampling the
    base alone would overwrite the committed arm_samples figures with base-only ones."""
    (tmp_path / "learning.json").write_text(json.dumps({"settings": {"base": "tiny:random", "seeds": 3, "limit": 3,
                                                                     "fresh": 1}}))
    (tmp_path / "countdown" / "ladder-seed0").mkdir(parents=True)  # a seed folder without its final weights
    for name in ("arm_samples.json", "arm_samples.png"):
        (tmp_path / name).write_text("committed")
    with pytest.raises(SystemExit, match=f"arm_samples: {tmp_path / 'countdown'}: no trained arm's weights "
                                         r"\(expected ARM-seedN/final/model.safetensors for ARM in grpo_direct, "
                                         r"ladder, N < 3") as raised:
        arm_samples.main([str(tmp_path), "--task", "countdown", "--n", "1"])
    assert "\n" not in str(raised.value) and capsys.readouterr().err == ""  # the one line only
    assert all((tmp_path / name).read_text() == "committed" for name in ("arm_samples.json", "arm_samples.png"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["arm_samples.json", "arm_samples.png", "countdown",
                                                          "learning.json"]


def test_the_default_task_on_a_run_of_another_suite_names_the_suite_it_holds(load_bench, tmp_path, capsys):
    """M6: --task defaults to countdown; on an integration run the error says so and names integration."""
    arm_samples = load_bench("arm_samples")
    (tmp_path / "integration" / "ladder-seed0" / "final").mkdir(parents=True)
    with pytest.raises(SystemExit) as raised:
        arm_samples.trained_finals(tmp_path, "countdown", 1)
    assert str(raised.value) == (f"arm_samples: {tmp_path}: no countdown/ folder (--task countdown); it holds "
                                 "integration/: give --task integration")
    with pytest.raises(SystemExit):
        arm_samples.main(["--help"])
    assert "default: countdown" in capsys.readouterr().out


def test_n_1_shows_one_pass_at_1_column(load_bench):
    arm_samples = load_bench("arm_samples")
    rows = [{"arm": "ladder", "seed": 0, "set": "test", "greedy": 0.5, "pass@k": {1: 0.25}}]
    (cells,) = arm_samples.summarise({"n": 1, "sets": ["test"], "rows": rows})
    assert [key for key in cells if key.startswith("pass@")] == ["pass@1"]
