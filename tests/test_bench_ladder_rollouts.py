"""bench/ladder_rollouts.py reads what a LADDER run trained on: tallies per rung and third, roots solved."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml


def _write_run(run_dir: Path, rollouts: list[dict]) -> None:
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text(yaml.safe_dump({"ladder": {"task": "countdown", "problems": str(run_dir / "roots.jsonl")}}))
    (run_dir / "roots.jsonl").write_text(json.dumps({"id": "r0", "problem": "numbers: 4 5 25 50; target: 22"}) + "\n")
    variant = {"id": "r0/v0", "problem": "numbers: 20 25 50; target: 22", "answer": "20 + 50 / 25",
               "difficulty": 2.2, "transform": "merge_numbers", "parent_id": "r0", "depth": 1, "root_id": "r0", "meta": {}}
    (run_dir / "variants.jsonl").write_text(json.dumps(variant) + "\n")
    (run_dir / "rollouts.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rollouts))


def test_tallies_per_rung_and_third_and_counts_the_roots_solved(tmp_path, load_bench):
    module = load_bench("ladder_rollouts")
    rows = []
    for step in range(1, 7):  # 6 steps: thirds are steps 1-2, 3-4, 5-6; groups of 2 samples
        for sample in range(2):
            rows.append({"step": step, "problem_id": "r0/v0", "sample": sample, "verdict_reward": float(step >= 3 and sample == 0)})
        if step == 6:
            rows += [{"step": 6, "problem_id": "r0", "sample": s, "verdict_reward": float(s == 1)} for s in range(2)]
    _write_run(tmp_path / "run", rows)
    s = module.summarise(tmp_path / "run")
    assert s["rungs"]["merge_numbers, rung 2"] == [[0, 4], [2, 4], [2, 4]]
    assert s["rungs"]["root, rung 3"] == [[0, 0], [0, 0], [1, 2]]
    assert s["distinct_problems"] == 2 and s["most_drawn_groups"] == 6
    assert s["roots_drawn"] == 1 and s["roots_ever_solved"] == 1


def test_held_out_evaluation_rollouts_are_not_counted_as_training(tmp_path, load_bench):
    module = load_bench("ladder_rollouts")
    rows = [{"step": 1, "split": "train", "problem_id": "r0/v0", "sample": s, "verdict_reward": 0.0} for s in range(2)]
    rows += [{"step": step, "split": "eval", "problem_id": f"dev{i}", "sample": 0, "verdict_reward": 1.0}
             for step in (0, 1) for i in range(5)]  # greedy on a dev set at steps 0 and 1
    _write_run(tmp_path / "run", rows)
    s = module.summarise(tmp_path / "run")
    assert s["distinct_problems"] == 1 and s["roots_drawn"] == 0 and s["roots_ever_solved"] == 0
    assert list(s["rungs"]) == ["merge_numbers, rung 2"]


def test_a_directory_that_is_not_a_ladder_run_is_named(tmp_path, capsys, load_bench):
    module = load_bench("ladder_rollouts")
    with pytest.raises(SystemExit, match="no config.yaml"):
        module.main([str(tmp_path)])
