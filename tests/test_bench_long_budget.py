"""bench/long_budget.py builds the commands its flags ask for, and resumes a finished run to a longer budget."""

from __future__ import annotations

import importlib.util
import json

import pytest


@pytest.fixture(scope="module")
def long_budget(load_bench):
    return load_bench("long_budget")


def test_the_ladder_settings_reach_both_commands(long_budget, tmp_path):
    args = long_budget.parse_args(["--train-limit", "50", "--depth", "3", "--width", "5", "--ladder", "cooldown=10",
                                   "--steps", "600", "--eval-steps", "50", "--out", str(tmp_path)])
    ladder = long_budget.command("ladder", 1, args, tmp_path / "ladder-seed1")
    grpo = long_budget.command("grpo", 1, args, tmp_path / "grpo-seed1")

    def flag(cmd, name):
        return cmd[cmd.index(name) + 1]

    assert (flag(ladder, "--depth"), flag(ladder, "--width"), flag(ladder, "--cooldown")) == ("3", "5", "10")
    for cmd in (ladder, grpo):  # the same problems, budget, selection and seed
        assert (flag(cmd, "--limit"), flag(cmd, "--max-steps"), flag(cmd, "--eval-steps"), flag(cmd, "--seed")) == \
            ("50", "600", "50", "1")
        assert flag(cmd, "--eval-problems") == "builtin:integration-dev"
        assert flag(cmd, "--metric-for-best-model") == "eval_accuracy"
    assert "--cooldown" not in grpo and "--depth" not in grpo


def test_countdown_runs_train_and_select_on_countdown_from_the_given_base(long_budget, tmp_path):
    from rungs.cli import build_parser

    args = long_budget.parse_args(["--task", "countdown", "--base", "tiny:countdown-long-plus1500", "--dev", "tuning",
                                   "--out", str(tmp_path)])
    parser, _ = build_parser()
    for arm in ("ladder", "grpo"):
        cmd = long_budget.command(arm, 0, args, tmp_path / f"{arm}-seed0")
        parsed = parser.parse_args(cmd[cmd.index("rungs.cli") + 1:])
        assert (parsed.task, parsed.policy, parsed.problems) == ("countdown", "tiny:countdown-long-plus1500",
                                                                 "builtin:countdown-train")
        assert parsed.eval_problems == str(tmp_path / "dev-pool.jsonl")
    pool = [json.loads(line) for line in (tmp_path / "dev-pool.jsonl").read_text().splitlines()]
    assert pool and all("numbers" in row["meta"] for row in pool)  # the countdown tuning pool, not integration's
    assert long_budget.ttrl_command("ladder", 0, tmp_path, "countdown")[4:6] == ["--task", "countdown"]


def test_a_dev_only_run_reads_no_test_set_and_its_settings_come_back_from_the_runs(long_budget, tmp_path, monkeypatch,
                                                                                    capsys):
    import learning

    for arm in ("ladder", "grpo"):
        run = _run(tmp_path, arm, 0, 100, dev="builtin:countdown-dev", task="countdown", policy="tiny:countdown-long")
        (run / "events.jsonl").write_text(json.dumps({"step": 0, "eval_accuracy": 0.1}) + "\n"
                                          + json.dumps({"step": 50, "num_groups": 4}) + "\n")
    monkeypatch.setattr("rungs.policies.load_policy", lambda *a, **k: object())
    monkeypatch.setattr(learning, "greedy_accuracy", lambda *a, **k: pytest.fail("a test set was read"))
    monkeypatch.setattr(learning, "fresh_problems", lambda *a, **k: pytest.fail("the fresh draw was drawn"))
    (tmp_path / long_budget.DEV_ONLY_MARK).write_text("")  # as `--dev-only` leaves it
    # a cached score of an earlier scoring with the test sets is not shown either
    (tmp_path / "grpo-seed0" / "scores.json").write_text(json.dumps({"seed": 0, "steps": 100, "best_step": 50, "dev": 0.5,
                                                                    "dev_curve": [[0, 0.1]], "samples_to_best": 64,
                                                                    "hard": 0.9, "fresh": 0.9}))
    args = long_budget.report_args(long_budget.parse_args(["--report", "--out", str(tmp_path)]))
    assert (args.task, args.base, args.dev, args.dev_only) == ("countdown", "tiny:countdown-long", "builtin", True)
    args.seeds = 1
    result = long_budget.score(args)
    assert "hard" not in result["arms"]["grpo"] and "hard" not in result["arms"]["grpo"]["per_seed"][0]
    assert set(result["arms"]["ladder"]) >= {"dev", "best_step"} and "hard" not in result["arms"]["ladder"]
    long_budget.report(result, tmp_path, draw=False)
    printed = capsys.readouterr().out
    assert "countdown" in printed and "not read (--dev-only)" in printed
    with pytest.raises(SystemExit, match="--dev-only reads no test set"):
        long_budget.main(["--dev-only", "--ttrl", "--out", str(tmp_path)])


def test_a_finished_run_shorter_than_the_budget_is_resumed_to_it(long_budget, tmp_path, monkeypatch):
    from rungs.cli import build_parser

    jobs = []
    monkeypatch.setattr(importlib.import_module("learning"), "run_processes", lambda batch, *a, **k: jobs.extend(batch))
    for arm, seed, steps in (("ladder", 0, 600), ("grpo", 0, 1000), ("grpo", 1, 600)):
        run = tmp_path / f"{arm}-seed{seed}"
        run.mkdir()
        (run / "config.yaml").write_text("ladder: {}\n")
        (run / "summary.json").write_text(json.dumps({"total_steps": steps}))
    args = long_budget.parse_args(["--seeds", "2", "--steps", "1000", "--out", str(tmp_path)])
    long_budget.run_stage(args, tmp_path, "train")
    # the 1000-step GRPO run is done; ladder seed 1 has not started (no --resume)
    assert [name for name, _, _ in jobs] == ["ladder seed 0", "ladder seed 1", "grpo seed 1"]
    parser, _ = build_parser()
    for name, cmd, _ in jobs:
        parsed = parser.parse_args(cmd[cmd.index("rungs.cli") + 1:])  # what `rungs ladder` / `rungs train` accept
        assert parsed.max_steps == 1000
        resumed = name != "ladder seed 1"
        assert (parsed.resume is not None) == resumed and (getattr(parsed, "out", None) is None) == resumed


def test_arms_runs_only_the_named_arm_and_refuses_an_unknown_one(long_budget, tmp_path, monkeypatch, capsys):
    jobs = []
    monkeypatch.setattr(importlib.import_module("learning"), "run_processes", lambda batch, *a, **k: jobs.extend(batch))
    args = long_budget.parse_args(["--seeds", "2", "--arms", "ladder", "--out", str(tmp_path)])
    long_budget.run_stage(args, tmp_path, "train")
    assert [name for name, _, _ in jobs] == ["ladder seed 0", "ladder seed 1"]
    assert long_budget.parse_args(["--arms", "grpo,ladder"]).arms == ["ladder", "grpo"]
    with pytest.raises(SystemExit):
        long_budget.parse_args(["--arms", "ladder,grpo_direct"])
    assert "'ladder,grpo_direct': expected a comma-separated list of ladder, grpo" in capsys.readouterr().err


def _stored_summary(settings: dict, arms=("ladder", "grpo")) -> dict:
    """A long_budget.json as bench/long_budget.py writes it (two seeds per arm)."""
    rows = [{"seed": s, "steps": settings["steps"], "best_step": 50 * (s + 1), "dev": 0.4, "dev_curve": [[0, 0.3], [50, 0.4]],
             "samples_to_best": 1000, "hard": 0.4 + s / 10, "fresh": 0.3} for s in range(2)]
    block = {"per_seed": rows, "dev": [0.4, 0.0], "hard": [0.45, 0.07], "fresh": [0.3, 0.0], "best_step": [50, 100],
             "samples_to_best": [1000.0, 0.0]}
    return {"settings": settings, "fresh_seed": 20261130, "arms": {arm: block for arm in arms}}


def _run(out, arm, seed, steps, limit=50, dev="builtin:integration-dev", summary=True, task="integration",
         policy="tiny"):
    """A training run's folder as `rungs ladder` / `rungs train` leave it (config.yaml, summary.json)."""
    import yaml

    run = out / f"{arm}-seed{seed}"
    run.mkdir(parents=True)
    job = {"task": task, "policy": policy, "problems": f"builtin:{task}-train", "limit": limit, "eval_problems": dev}
    grpo = {"max_steps": steps, "eval_steps": 50, "seed": seed}
    if arm == "ladder":
        config = {"ladder": {**job, "depth": 3, "width": 5, "curriculum": "solve_rate", "cooldown": 10, "explore": "random",
                             "band_fraction": 0.25, "out": str(run)}, "grpo": grpo}
    else:
        config = {**job, "grpo": grpo}
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    if summary:
        (run / "summary.json").write_text(json.dumps({"total_steps": steps, "eval_step_best": 50,
                                                      "eval_accuracy_best": 0.5}))
    return run


def test_report_without_runs_reprints_the_stored_summary_under_its_own_settings(long_budget, tmp_path, capsys):
    settings = {"steps": 600, "eval_steps": 50, "seeds": 2, "train_limit": 50, "depth": 3, "width": 5,
                "ladder": ["cooldown=10"], "dev": "tuning"}
    (tmp_path / "long_budget.json").write_text(json.dumps(_stored_summary(settings), indent=2))
    stored = (tmp_path / "long_budget.json").read_bytes()
    assert long_budget.main(["--report", "--steps", "400", "--seeds", "3", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "long_budget.json").read_bytes() == stored
    printed = capsys.readouterr().out
    assert "up to 600 steps" in printed and "over 2 seeds" in printed  # the run's, not this command's flags
    assert "0.450 ± 0.070" in printed
    assert not (tmp_path / "long_budget.png").exists()  # a reprint of a stored summary writes nothing


def test_report_on_a_folder_with_neither_runs_nor_a_summary_is_a_one_line_error(long_budget, tmp_path):
    with pytest.raises(SystemExit, match=f"long_budget: {tmp_path}: no runs .* and no long_budget.json") as raised:
        long_budget.main(["--report", "--out", str(tmp_path)])
    assert "\n" not in str(raised.value) and not (tmp_path / "long_budget.json").exists()


def test_report_takes_its_settings_from_the_runs_not_from_its_flags(long_budget, tmp_path):
    """Without a stored summary, the runs' config.yaml says what they did; a stored summary's
    settings come first, but seeds and steps grow to what the runs have since reached."""
    for seed in range(3):
        _run(tmp_path, "ladder", seed, 600, dev=str(tmp_path / "dev-pool.jsonl"))
    _run(tmp_path, "grpo", 0, 800, summary=False)
    args = long_budget.report_args(long_budget.parse_args(["--report", "--arms", "ladder", "--out", str(tmp_path)]))
    assert {key: getattr(args, key) for key in long_budget.SETTINGS} == {
        "task": "integration", "base": "tiny", "steps": 800, "eval_steps": 50, "seeds": 3, "train_limit": 50,
        "depth": 3, "width": 5, "ladder": ["band_fraction=0.25", "cooldown=10"], "dev": "tuning", "dev_only": False}
    assert args.arms == ["ladder", "grpo"]
    stored = {"steps": 600, "eval_steps": 50, "seeds": 2, "train_limit": 50, "depth": 3, "width": 5,
              "ladder": ["cooldown=10", "band_fraction=0.25"]}  # written before --dev existed
    (tmp_path / "long_budget.json").write_text(json.dumps(_stored_summary(stored)))
    args = long_budget.report_args(long_budget.parse_args(["--report", "--depth", "2", "--out", str(tmp_path)]))
    assert (args.steps, args.seeds, args.depth, args.ladder, args.dev) == (800, 3, 3, stored["ladder"], "tuning")


def test_an_arm_without_finished_runs_keeps_its_stored_figures(long_budget, tmp_path, capsys):
    """--report where only LADDER's runs are present: LADDER is scored from them (here: its cached
    scores), GRPO's stored figures stay instead of being dropped from long_budget.json."""
    stored = _stored_summary({"steps": 600, "eval_steps": 50, "seeds": 2})
    (tmp_path / "long_budget.json").write_text(json.dumps(stored))
    for seed in range(2):
        run = _run(tmp_path, "ladder", seed, 600)
        (run / "scores.json").write_text(json.dumps({**stored["arms"]["ladder"]["per_seed"][seed], "hard": 0.9}))
    result = long_budget.score(long_budget.report_args(long_budget.parse_args(["--report", "--out", str(tmp_path)])))
    written = json.loads((tmp_path / "long_budget.json").read_text())
    assert written["arms"]["grpo"] == stored["arms"]["grpo"]
    assert [r["hard"] for r in written["arms"]["ladder"]["per_seed"]] == [0.9, 0.9]
    assert written["settings"]["steps"] == 600 and list(result["arms"]) == ["ladder", "grpo"]
    assert "GRPO on the hard training problems, no variants: kept as stored" in capsys.readouterr().out


def test_dev_only_marks_the_folder_and_a_run_without_it_unmarks_it(long_budget, tmp_path, monkeypatch):
    monkeypatch.setattr(importlib.import_module("learning"), "run_processes", lambda *a, **k: None)
    long_budget.run_all(long_budget.parse_args(["--dev-only", "--out", str(tmp_path)]))
    assert (tmp_path / long_budget.DEV_ONLY_MARK).exists()
    long_budget.run_all(long_budget.parse_args(["--out", str(tmp_path)]))
    assert not (tmp_path / long_budget.DEV_ONLY_MARK).exists()


# -- a reused run must have been made with these flags' settings (W3) --------------------------------
def test_a_run_made_with_other_settings_is_refused_in_one_line(long_budget, tmp_path, monkeypatch, capsys):
    jobs = []
    monkeypatch.setattr(importlib.import_module("learning"), "run_processes", lambda batch, *a, **k: jobs.extend(batch))
    for arm in ("ladder", "grpo"):  # limit 50, depth 3, width 5, cooldown=10, band_fraction=0.25, eval_steps 50
        _run(tmp_path, arm, 0, 100)
    same = ["--seeds", "1", "--steps", "100", "--eval-steps", "50", "--train-limit", "50", "--depth", "3", "--width", "5",
            "--ladder", "cooldown=10", "--ladder", "band_fraction=0.25", "--out", str(tmp_path)]
    long_budget.run_all(long_budget.parse_args(same))  # the same settings: reused, nothing to run
    assert jobs == []
    assert f"ladder seed 0: reused the finished run in {tmp_path / 'ladder-seed0'}" in capsys.readouterr().out
    other = [*same[:same.index("--train-limit")], "--train-limit", "3", "--depth", "2", "--width", "2",
             *same[same.index("--ladder"):]]
    with pytest.raises(SystemExit) as raised:
        long_budget.run_all(long_budget.parse_args(other))
    message = str(raised.value)
    assert f"long_budget: {tmp_path / 'ladder-seed0'} was made with train_limit 50, depth 3, width 5" in message
    assert "these flags ask for train_limit 3, depth 2, width 2" in message and "\n" not in message
    with pytest.raises(SystemExit, match="grpo-seed0 was made with train_limit 50"):
        long_budget.run_all(long_budget.parse_args([*other, "--arms", "grpo"]))
    with pytest.raises(SystemExit, match=r"ladder \{'band_fraction': 0.25, 'cooldown': 10\}, but these flags ask for ladder \{\}"):
        long_budget.run_all(long_budget.parse_args([*same[:same.index("--ladder")], "--out", str(tmp_path)]))
    assert jobs == []


def test_a_run_made_from_a_relative_base_dir_is_reused_with_the_same_flags(long_budget, tmp_path, monkeypatch, capsys):
    """--base tiny:DIR relative: `rungs ladder/train` store it absolute (rungs.runs.absolute_inputs), and
    a rerun with the very flags that made the run reuses (or resumes) it, as `--resume` would."""
    jobs = []
    monkeypatch.setattr(importlib.import_module("learning"), "run_processes", lambda batch, *a, **k: jobs.extend(batch))
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "other").mkdir()
    for arm in ("ladder", "grpo"):
        _run(tmp_path / "out", arm, 0, 100, policy=f"tiny:{tmp_path / 'ckpt'}")
    monkeypatch.chdir(tmp_path)
    flags = ["--seeds", "1", "--steps", "100", "--eval-steps", "50", "--train-limit", "50", "--depth", "3", "--width", "5",
             "--ladder", "cooldown=10", "--ladder", "band_fraction=0.25", "--out", "out"]
    for base in ("tiny:ckpt", "tiny:./ckpt", f"tiny:{tmp_path / 'ckpt'}"):
        long_budget.run_all(long_budget.parse_args([*flags, "--base", base]))
    assert jobs == [] and capsys.readouterr().out.count("reused the finished run") == 6
    with pytest.raises(SystemExit, match=r"was made with base 'tiny:.*/ckpt', but these flags ask for base 'tiny:.*/other'"):
        long_budget.run_all(long_budget.parse_args([*flags, "--base", "tiny:other"]))


def test_a_list_valued_ladder_setting_compares_equal_when_equal(long_budget, tmp_path, monkeypatch, capsys):
    """--ladder variant_transforms=a,b against the list a real run's config.yaml records (every
    LadderConfig setting, default_factory ones such as variant_transforms: [] included)."""
    import dataclasses

    import yaml

    from rungs.pipelines.ladder import LadderConfig

    jobs = []
    monkeypatch.setattr(importlib.import_module("learning"), "run_processes", lambda batch, *a, **k: jobs.extend(batch))

    def made(transforms):
        run = tmp_path / "ladder-seed0"
        if not run.exists():
            _run(tmp_path, "ladder", 0, 100, task="countdown", dev="builtin:countdown-dev")
        config = yaml.safe_load((run / "config.yaml").read_text())
        config["ladder"] = {**dataclasses.asdict(LadderConfig()), **config["ladder"], "variant_transforms": transforms}
        (run / "config.yaml").write_text(yaml.safe_dump(config))

    flags = ["--task", "countdown", "--arms", "ladder", "--seeds", "1", "--steps", "100", "--eval-steps", "50",
             "--train-limit", "50", "--depth", "3", "--width", "5", "--ladder", "cooldown=10",
             "--ladder", "band_fraction=0.25", "--out", str(tmp_path)]
    made(["smaller_numbers", "drop_numbers"])
    assert "variant_transforms=smaller_numbers,drop_numbers" in long_budget.runs_settings(tmp_path)["ladder"]
    for value in ("smaller_numbers,drop_numbers", "[smaller_numbers, drop_numbers]", "smaller_numbers, drop_numbers"):
        long_budget.run_all(long_budget.parse_args([*flags, "--ladder", f"variant_transforms={value}"]))
    with pytest.raises(SystemExit, match=r"made with ladder \{'variant_transforms': \['smaller_numbers', 'drop_numbers'\].*"
                                         r"but these flags ask for ladder \{.*'variant_transforms': \['drop_numbers'\]\}"):
        long_budget.run_all(long_budget.parse_args([*flags, "--ladder", "variant_transforms=drop_numbers"]))
    made([])  # the default (a default_factory's []), given or not
    long_budget.run_all(long_budget.parse_args(flags))
    long_budget.run_all(long_budget.parse_args([*flags, "--ladder", "variant_transforms=[]"]))
    assert jobs == [] and capsys.readouterr().out.count("reused the finished run") == 5
    # tuples and lists, flags and a stored config: one normal form
    assert long_budget.ladder_extra({"variant_transforms": ("a", "b")}, "x") == \
        long_budget.ladder_extra({"variant_transforms": "a,b"}, "x") == {"variant_transforms": ["a", "b"]}
    assert long_budget.ladder_extra({"variant_transforms": (), "reasoning_delimiters": [], "policy_options": {},
                                     "mastered_at": 1}, "x") == {}


def test_long_budget_json_records_the_steps_the_runs_reached(long_budget, tmp_path, monkeypatch):
    import learning

    for arm in ("ladder", "grpo"):
        run = _run(tmp_path, arm, 0, 100, dev="builtin:integration-dev")
        (run / "scores.json").write_text(json.dumps({"seed": 0, "steps": 100, "best_step": 50, "dev": 0.5,
                                                    "dev_curve": [[0, 0.1]], "samples_to_best": 64}))
    (tmp_path / long_budget.DEV_ONLY_MARK).write_text("")
    monkeypatch.setattr(learning, "greedy_accuracy", lambda *a, **k: pytest.fail("a test set was read"))
    args = long_budget.parse_args(["--seeds", "1", "--steps", "40", "--dev-only", "--out", str(tmp_path)])
    assert long_budget.score(args)["settings"]["steps"] == 100


@pytest.mark.parametrize("flags", [["--seeds", "0"], ["--steps", "0"], ["--parallel", "0"], ["--train-limit", "-1"]])
def test_long_budget_bad_counts_are_one_argparse_line(long_budget, flags, capsys):
    with pytest.raises(SystemExit) as raised:
        long_budget.parse_args(flags)
    assert raised.value.code == 2 and f"argument {flags[0]}: {flags[1]!r}: expected an integer" in capsys.readouterr().err
