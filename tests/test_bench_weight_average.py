"""bench/weight_average.py: each run's latest snapshots averaged uniformly, scored greedily."""

from __future__ import annotations

import json

import pytest
import torch


@pytest.fixture(scope="module")
def bench_weight_average(load_bench):
    return load_bench("weight_average")


def _save(policy, path, value=None):
    if value is not None:
        with torch.no_grad():
            for p in policy.model.parameters():
                p.fill_(value)
    policy.save(path)
    return path


def test_the_average_is_the_uniform_mean_of_every_tensor_with_the_last_sources_files(bench_weight_average, tmp_path):
    from safetensors.torch import load_file

    from rungs.policies import load_policy

    policy = load_policy("tiny:countdown-long", task="countdown", seed=0)
    sources = [_save(policy, tmp_path / f"s{i}", v) for i, v in enumerate((1.0, 2.0, 6.0))]
    (sources[-1] / "marker.txt").write_text("last")
    out = bench_weight_average.average_checkpoints(sources, tmp_path / "avg")
    tensors = load_file(str(out / "model.safetensors"))
    assert tensors and all(torch.allclose(t, torch.full_like(t, 3.0)) for t in tensors.values())
    assert (out / "marker.txt").read_text() == "last"  # config and tokenizer come from the latest
    assert load_policy(f"tiny:{out}", task="countdown", seed=0) is not None
    # one checkpoint averaged is itself
    alone = load_file(str(bench_weight_average.average_checkpoints(sources[:1], tmp_path / "one") / "model.safetensors"))
    assert all(torch.equal(t, torch.ones_like(t)) for t in alone.values())


def test_checkpoints_of_another_shape_are_refused_with_the_file_named(bench_weight_average, tmp_path):
    from safetensors.torch import save_file

    a, b = tmp_path / "a", tmp_path / "b"
    for path, shape in ((a, (2, 2)), (b, (3, 2))):
        path.mkdir()
        save_file({"w": torch.zeros(shape)}, str(path / "model.safetensors"))
    with pytest.raises(ValueError, match=r"a/model.safetensors: tensor names or shapes differ"):
        bench_weight_average.average_checkpoints([a, b], tmp_path / "out")
    with pytest.raises(ValueError, match="no checkpoints"):
        bench_weight_average.average_checkpoints([], tmp_path / "out")


def test_snapshots_are_ordered_by_step_number_and_incomplete_ones_skipped(bench_weight_average, tmp_path):
    run = tmp_path / "run"
    for step in (100, 50, 400, 350):
        (run / "checkpoints" / f"step-{step}" / "policy").mkdir(parents=True)
        (run / "checkpoints" / f"step-{step}" / "policy" / "model.safetensors").write_bytes(b"x")
    (run / "checkpoints" / "step-450" / "policy").mkdir(parents=True)  # no weights: a save cut short
    (run / "checkpoints" / "step-x").mkdir()
    assert [step for step, _ in bench_weight_average.snapshots(run)] == [50, 100, 350, 400]
    assert bench_weight_average.snapshots(tmp_path / "none") == []


def _result(values):
    rows = [{"arm": "ladder", "seed": seed, "k": k, "set": "dev", "accuracy": acc}
            for k, accs in values.items() for seed, acc in enumerate(accs)]
    return {"windows": sorted(values), "rows": rows}


def test_the_rule_reads_the_test_set_only_when_the_best_window_beats_the_final_by_its_std(bench_weight_average):
    decide = bench_weight_average.decision
    # final 0.30 ± 0.02; k = 4 is +0.03: passes
    passed = decide(_result({1: [0.28, 0.30, 0.32], 2: [0.30, 0.31, 0.32], 4: [0.31, 0.33, 0.35]}))
    assert passed["best_k"] == 4 and passed["passes"] and passed["gain"] == pytest.approx(0.03)
    # +0.01 under the std of 0.02: no test look
    failed = decide(_result({1: [0.28, 0.30, 0.32], 2: [0.29, 0.31, 0.33]}))
    assert failed["best_k"] == 2 and not failed["passes"]
    # the final weights best: never passes, even with a zero std
    assert not decide(_result({1: [0.3, 0.3, 0.3], 2: [0.3, 0.3, 0.3]}))["passes"]
    assert decide(_result({2: [0.3]})) is None


def test_k_one_is_the_final_weights_and_a_soup_averages_the_seeds(bench_weight_average, tmp_path):
    """A run with two seeds of LADDER snapshots: k = 1 scores each seed's last snapshot as it is;
    the soup is one row over both seeds."""
    from rungs.policies import load_policy

    solver = load_policy("tiny:countdown-long", task="countdown", seed=0)
    for seed in (0, 1):
        for step in (50, 100):
            solver.save(tmp_path / "countdown" / f"ladder-seed{seed}" / "checkpoints" / f"step-{step}" / "policy")
    (tmp_path / "learning.json").write_text(json.dumps({"settings": {
        "base": "tiny:countdown-long", "seeds": 2, "limit": 3, "fresh": 1}}))
    result = bench_weight_average.measure(tmp_path, "countdown", [1, 2, 4], "auto", soup=True)
    test = [r for r in result["rows"] if r["set"] == "test"]
    assert {(r["seed"], r["k"]) for r in test} == {(0, 1), (0, 2), (1, 1), (1, 2), ("soup", 1)}  # k = 4: too few
    # identical snapshots: every average is the model itself, so every row scores as base does
    assert {r["accuracy"] for r in test} == {result["base_accuracy"]["test"]}
    assert [r["steps"] for r in test if r["seed"] == 0] == [[100], [50, 100]]
    table = bench_weight_average.summarise(result)
    assert [row["weights"] for row in table if row["set"] == "test"] == ["final", "latest 2 averaged", "soup of 2 seeds' finals"]


def test_a_run_without_snapshots_is_one_line_and_writes_nothing(bench_weight_average, tmp_path):
    (tmp_path / "learning.json").write_text(json.dumps({"settings": {"seeds": 1}}))
    with pytest.raises(SystemExit, match="no snapshots .*--snapshots N"):
        bench_weight_average.measure(tmp_path, "countdown", [1], "auto", soup=False)
    assert not (tmp_path / "weight_average.json").exists()


def test_windows_must_be_positive_integers(bench_weight_average):
    import argparse

    assert bench_weight_average.windows_list("4,1,2,2") == [1, 2, 4]
    for bad in ("0,1", "a", "", "1.5"):
        with pytest.raises(argparse.ArgumentTypeError, match="positive integers"):
            bench_weight_average.windows_list(bad)


def test_learning_snapshots_keep_both_trained_arms_weights_every_n_steps(load_bench, tmp_path):
    """bench/learning.py --snapshots N: GRPO and LADDER keep RUN/checkpoints/step-K/policy every N
    steps, and the last is the final weights the script scored."""
    from safetensors.torch import load_file

    learning = load_bench("learning")
    args = learning.parse_args(["--task", "countdown", "--core-only", "--steps", "2", "--snapshots", "1",
                                "--limit", "2", "--fresh", "0", "--train-limit", "2", "--depth", "1", "--width", "1",
                                "--grpo", "num_generations=2", "--grpo", "per_device_train_batch_size=2",
                                "--out", str(tmp_path), "--workers", "1"])
    learning.run_seed(args, "countdown", 0)
    for arm in ("grpo_direct", "ladder"):
        run = tmp_path / "countdown" / f"{arm}-seed0"
        kept = load_bench("weight_average").snapshots(run)
        assert [step for step, _ in kept] == [1, 2], arm
        last, final = (load_file(str(d / "model.safetensors")) for d in (kept[-1][1], run / "final"))
        assert all(torch.equal(last[name], final[name]) for name in final), arm
