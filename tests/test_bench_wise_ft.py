"""bench/wise_ft.py: every kept arm merged with the run's base at each alpha, scored greedily."""

from __future__ import annotations

import json

import pytest
import torch


@pytest.fixture(scope="module")
def bench_wise_ft(load_bench):
    return load_bench("wise_ft")


def _run(tmp_path, seeds=1):
    """A finished run whose base is a random model with countdown-long's shape and whose LADDER arm is
    countdown-long itself (it solves hard problem 3 of the first 3 greedily; the random base none)."""
    from rungs.policies import load_policy

    base = load_policy("tiny:countdown-long", task="countdown", seed=0)
    torch.manual_seed(0)
    with torch.no_grad():
        for p in base.model.parameters():
            p.normal_(0.0, 0.02)
    base.save(tmp_path / "base")
    load_policy("tiny:countdown-long", task="countdown", seed=0).save(tmp_path / "countdown" / "ladder-seed0" / "final")
    (tmp_path / "learning.json").write_text(json.dumps({"settings": {
        "base": f"tiny:{tmp_path / 'base'}", "seeds": seeds, "limit": 3, "fresh": 1}}))


def test_alpha_zero_is_the_base_and_alpha_one_the_trained_arm_with_turnover(bench_wise_ft, tmp_path):
    _run(tmp_path)
    result = bench_wise_ft.measure(tmp_path, "countdown", [0.0, 1.0], "auto")
    assert result["sets"] == ["test", "fresh"] and result["base_accuracy"]["test"] == 0.0
    rows = {(r["alpha"], r["set"]): r for r in result["rows"]}
    assert {r["arm"] for r in result["rows"]} == {"ladder"}
    assert rows[0.0, "test"]["accuracy"] == 0.0
    assert rows[1.0, "test"]["accuracy"] == pytest.approx(1 / 3)
    assert (rows[1.0, "test"]["kept"], rows[1.0, "test"]["gained"], rows[1.0, "test"]["base_solved"]) == (0, 1, 0)
    table = bench_wise_ft.summarise(result)
    assert [(r["set"], r["alpha"], r["accuracy"]) for r in table][:2] == [("test", "0", "0.000 ± 0.000"),
                                                                         ("test", "1", "0.333 ± 0.000")]
    bench_wise_ft.plot(result, tmp_path / "wise_ft.png")
    assert (tmp_path / "wise_ft.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_dev_run_can_be_scored_on_the_test_set_once_alpha_is_fixed(bench_wise_ft, tmp_path):
    _run(tmp_path)
    settings = json.loads((tmp_path / "learning.json").read_text())["settings"]
    assert list(bench_wise_ft.scored_sets({**settings, "tune": True}, "countdown", "auto")) == ["dev"]
    assert list(bench_wise_ft.scored_sets({**settings, "tune": True}, "countdown", "test")) == ["test", "fresh"]
    assert list(bench_wise_ft.scored_sets(settings, "countdown", "dev")) == ["dev"]


def test_a_folder_without_weights_and_bad_alphas_are_one_line_errors(bench_wise_ft, tmp_path):
    (tmp_path / "learning.json").write_text(json.dumps({"settings": {"base": "tiny:countdown", "seeds": 2}}))
    with pytest.raises(SystemExit, match=r"wise_ft: .*countdown: no trained arm's weights") as raised:
        bench_wise_ft.main([str(tmp_path), "--task", "countdown"])
    assert "\n" not in str(raised.value) and not (tmp_path / "wise_ft.json").exists()
    for alphas in ("0,x", "nan", "0,1e39"):
        with pytest.raises(SystemExit, match=f"--alphas '{alphas}': expected comma-separated numbers"):
            bench_wise_ft.main([str(tmp_path), "--alphas", alphas])
    with pytest.raises(SystemExit, match="--task 'nope'"):
        bench_wise_ft.main([str(tmp_path), "--task", "nope"])


def test_a_run_whose_base_moved_is_a_one_line_error_and_base_overrides_it(bench_wise_ft, tmp_path):
    _run(tmp_path)
    (tmp_path / "base").rename(tmp_path / "moved")
    with pytest.raises(SystemExit, match="the run's base .*: tiny checkpoint .*--base") as raised:
        bench_wise_ft.measure(tmp_path, "countdown", [1.0], "auto")
    assert "\n" not in str(raised.value)
    result = bench_wise_ft.measure(tmp_path, "countdown", [1.0], "auto", base=f"tiny:{tmp_path / 'moved'}")
    assert result["base"] == f"tiny:{tmp_path / 'moved'}" and len(result["rows"]) == 2


def test_the_difference_from_base_has_a_paired_bootstrap_interval_over_problems(bench_wise_ft, tmp_path):
    _run(tmp_path)
    result = bench_wise_ft.measure(tmp_path, "countdown", [0.0, 1.0], "auto")
    mean, low, high = bench_wise_ft.paired_difference(result, "test", "ladder", 1.0)
    assert mean == pytest.approx(1 / 3) and 0.0 <= low <= mean <= high <= 1.0 and high > low
    assert bench_wise_ft.paired_difference(result, "test", "ladder", 0.0) == (0.0, 0.0, 0.0)
    assert bench_wise_ft.paired_difference(result, "test", "ladder", 1.0, against=("ladder", 0.0))[0] == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="no rows for grpo_direct"):
        bench_wise_ft.paired_difference(result, "test", "grpo_direct", 1.0)
    row = next(r for r in bench_wise_ft.summarise(result) if r["set"] == "test" and r["alpha"] == "1")
    assert row["vs base (95% CI)"].startswith("+0.333 [")


def test_a_missing_run_is_named_under_this_scripts_name(bench_wise_ft, tmp_path):
    with pytest.raises(SystemExit, match=f"^wise_ft: {tmp_path / 'learning.json'}: not found"):
        bench_wise_ft.main([str(tmp_path), "--task", "countdown"])
