"""bench/arc.py resumes the runs in --runs only under the settings they were made with, and refuses bad flags in one line."""

from __future__ import annotations

import pytest
import yaml


@pytest.fixture(scope="module")
def arc(load_bench):
    return load_bench("arc")


def _stored_run(arc, runs, arm, flags):
    """RUNS/ARM/config.yaml as `rungs ttt` writes it for the arm under these flags."""
    import dataclasses

    config = arc.arm_config(arc.parse_args(flags), arm, runs)
    (runs / arm).mkdir(parents=True)
    (runs / arm / "config.yaml").write_text(yaml.safe_dump({"ttt": dataclasses.asdict(config)}))


def test_a_resume_under_other_settings_is_refused_before_anything_runs(arc, tmp_path, monkeypatch):
    _stored_run(arc, tmp_path, "ttt_plain", ["--steps", "1", "--limit", "1"])
    monkeypatch.setattr("rungs.policies.load_policy", lambda *a, **k: pytest.fail("the model was loaded"))
    with pytest.raises(SystemExit) as raised:
        arc.main(["--steps", "2", "--limit", "2", "--arms", "base,ttt_plain", "--runs", str(tmp_path),
                  "--out", str(tmp_path / "out")])
    message = str(raised.value)
    assert message == (f"arc: {tmp_path / 'ttt_plain'} was made with steps=1, this command's --steps gives 2; "
                       "give the same settings to resume it, or another --runs")
    # the same settings (a longer --limit only adds problems): resumed
    arc.check_resume(arc.arm_config(arc.parse_args(["--steps", "1", "--limit", "3"]), "ttt_plain", tmp_path),
                     tmp_path / "ttt_plain")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("flags", "said"), [(["--arms", "foo"], "argument --arms: 'foo': expected a comma-separated list"),
                                             (["--steps", "-2"], "argument --steps: '-2': expected an integer >= 1"),
                                             (["--limit", "-1"], "argument --limit: '-1': expected an integer >= 1 (or 0")])
def test_bad_flags_are_one_argparse_line(arc, flags, said, capsys):
    with pytest.raises(SystemExit) as raised:
        arc.parse_args(flags)
    assert raised.value.code == 2 and said in capsys.readouterr().err
