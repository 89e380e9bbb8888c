"""bench/answer_shapes.py: each arm's greedy answers as verdict shares, bracket use, and turnover against base."""

from __future__ import annotations

import json

import pytest


@pytest.fixture(scope="module")
def answer_shapes(load_bench):
    return load_bench("answer_shapes")


def test_shares_count_each_status_and_bracketed_answers(answer_shapes):
    texts = ["<answer>(3 + 7) * 5</answer>", "<answer>3 + 7 + 5</answer>", "no answer", "<answer>3 - (7 - 5)</answer>"]
    statuses = ["correct", "wrong", "unparseable", "timeout"]
    shape = answer_shapes.answer_shape(texts, statuses, countdown=True)
    assert shape == {"correct": 0.25, "wrong": 0.25, "rejected": 0.0, "unparseable": 0.25, "other": 0.25,
                     "bracketed": 0.5}
    assert "bracketed" not in answer_shapes.answer_shape(texts, statuses, countdown=False)


def test_turnover_counts_kept_lost_and_gained_against_base(answer_shapes):
    assert answer_shapes.turnover({"a", "b", "c"}, {"b", "d", "e"}) == {"kept": 1, "lost": 2, "gained": 2}


def test_a_run_is_measured_on_its_own_sets_with_turnover_against_base(answer_shapes, tmp_path):
    from rungs.policies import load_policy

    trained = tmp_path / "countdown" / "ladder-seed0" / "final"  # it solves hard problem 3 greedily; tiny:random none
    load_policy("tiny:countdown-long", task="countdown", seed=3).save(trained)
    (tmp_path / "learning.json").write_text(json.dumps({"settings": {"base": "tiny:random", "seeds": 1, "limit": 3,
                                                                     "fresh": 1}}))
    result = answer_shapes.measure(tmp_path, "countdown")

    assert result["sets"] == ["test", "fresh"]
    test_rows = {r["arm"]: r for r in result["rows"] if r["set"] == "test"}
    assert test_rows["base"]["correct"] == 0.0 and test_rows["ladder"]["correct"] == pytest.approx(1 / 3)
    assert (test_rows["ladder"]["kept"], test_rows["ladder"]["lost"], test_rows["ladder"]["gained"]) == (0, 0, 1)
    for row in result["rows"]:
        assert sum(row[k] for k in (*answer_shapes.STATUSES, "other")) == pytest.approx(1.0)
        assert 0.0 <= row["bracketed"] <= 1.0
    table = answer_shapes.summarise(result)
    assert [(r["set"], r["arm"]) for r in table] == [("test", "base"), ("test", "LADDER"), ("fresh", "base"),
                                                     ("fresh", "LADDER")]
    assert table[1]["base's solved: kept / lost; gained"] == "0.0 / 0.0; 1.0"
    answer_shapes.plot(result, tmp_path / "answer_shapes.png")
    assert (tmp_path / "answer_shapes.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_directory_without_a_finished_run_is_a_one_line_error(answer_shapes, tmp_path):
    with pytest.raises(SystemExit, match="learning.json: not found"):
        answer_shapes.run_settings(tmp_path)


def test_a_folder_without_the_trained_arms_weights_is_refused_and_nothing_is_written(answer_shapes, tmp_path):
    """A fresh clone holds learning.json and the committed figures, not the seed folders: a base-only
    measurement would overwrite the committed answer_shapes figures."""
    (tmp_path / "learning.json").write_text(json.dumps({"settings": {"base": "tiny:random", "seeds": 2, "limit": 3,
                                                                     "fresh": 1}}))
    (tmp_path / "answer_shapes.json").write_text("committed")
    with pytest.raises(SystemExit, match=f"answer_shapes: {tmp_path / 'countdown'}: no trained arm's weights "
                                         r"\(expected ARM-seedN/final/model.safetensors") as raised:
        answer_shapes.main([str(tmp_path), "--task", "countdown"])
    assert "\n" not in str(raised.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["answer_shapes.json", "learning.json"]
    assert (tmp_path / "answer_shapes.json").read_text() == "committed"


def test_a_skipped_seed_is_reported_under_this_scripts_own_name(answer_shapes, tmp_path, monkeypatch, capsys):
    final = tmp_path / "countdown" / "ladder-seed0" / "final"
    final.mkdir(parents=True)
    (final / "model.safetensors").write_bytes(b"")
    (tmp_path / "learning.json").write_text(json.dumps({"settings": {"base": "tiny:random", "seeds": 2}}))

    class Stop(Exception):
        pass

    def stop(*args, **kwargs):
        raise Stop

    monkeypatch.setattr(answer_shapes, "run_sets", stop)  # the weights are looked up first; stop there
    with pytest.raises(Stop):
        answer_shapes.measure(tmp_path, "countdown")
    err = capsys.readouterr().err
    assert f"answer_shapes: {tmp_path / 'countdown' / 'ladder-seed1' / 'final'}: no weights, skipped" in err
    assert "arm_samples" not in err
