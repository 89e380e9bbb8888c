"""The veRL example writes parquet that rungs' compute_score scores correctly."""

from __future__ import annotations

import subprocess
import sys

import pyarrow.parquet as pq

from rungs.data import load_problems
from rungs.integrations import compute_score


def test_verl_example_round_trip(tmp_path, repo_root):
    out = tmp_path / "train.parquet"
    subprocess.run([sys.executable, str(repo_root / "examples" / "verl_reward.py"), "--problems",
                    "builtin:integration-hard", "--out", str(out)], check=True, capture_output=True)
    rows = pq.read_table(out).to_pylist()
    problems = load_problems("builtin:integration-hard")
    assert len(rows) == len(problems) and rows[0]["data_source"] == "integration"
    truth = rows[0]["reward_model"]["ground_truth"]
    assert compute_score("integration", f"<answer>{problems[0].answer}</answer>", truth, rows[0]["extra_info"]) == 1.0
    assert compute_score("integration", "<answer>x**2</answer>", truth, rows[0]["extra_info"]) == 0.0
