"""bench/rewards.py reuses a finished (arm, seed) cell only under the same settings, and says so."""

from __future__ import annotations

import json

import pytest


@pytest.fixture(scope="module")
def rewards(load_bench):
    return load_bench("rewards")


def tmp_out(args):
    from pathlib import Path

    return Path(args.out)


def _cell(rewards, args, arm="verifier", seed=0):
    row = {"arm": arm, "seed": seed, "curve": [[0, 0.5, None], [1, 0.75, None]], "accuracy_start": 0.5,
           "accuracy_last": 0.75, "accuracy_best": 0.75, "best_step": 1, "train_accuracy_last": None,
           "answer_entropy_last": None, "seconds": 1.0, "settings": rewards._run_settings(args)}
    path = tmp_out(args) / "rewards" / f"{arm}-seed{seed}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(row))


def test_a_cell_of_the_same_settings_is_reused_with_a_line_and_the_title_counts_right(rewards, tmp_path, monkeypatch,
                                                                                      capsys):
    args = rewards.parse_args(["--arms", "verifier", "--seeds", "1", "--steps", "1", "--limit", "1",
                               "--out", str(tmp_path)])
    _cell(rewards, args)
    monkeypatch.setattr(rewards, "run_one", lambda *a: pytest.fail("a finished cell was run again"))
    result = rewards.run_all(args)
    printed = capsys.readouterr().out
    assert f"verifier seed 0: reused {tmp_path / 'rewards' / 'verifier-seed0.json'} (same settings)" in printed
    assert "1 GRPO step, 1 seed" in rewards.print_result(result)
