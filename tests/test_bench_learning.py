"""bench/learning.py's tuning pool never holds a test problem, and its overrides parse as the flags mean."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def learning(load_bench):
    return load_bench("learning")


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


def test_the_unsolved_cut_keeps_exactly_the_problems_no_sample_solves(learning, tmp_path, monkeypatch):
    """--unsolved K: a problem stays only if none of the base's K samples is verified right; the
    cut is cached, so a second call (another seed's process) reads the same ids."""
    import json

    import rungs.policies as policies
    from rungs.data import load_problems
    from rungs.policies.base import Completion
    from rungs.types import Status, Verdict

    problems = load_problems("builtin:integration-hard", limit=6)
    solvable = {problems[1].id, problems[4].id}  # the scripted base answers these right once in K

    class Base:
        prompt_style = "instruct"

        def generate(self, prompts, n, sampling):
            return [[Completion(text=f"{i}", token_ids=[1], logprobs=[0.0], finish_reason="stop") for i in range(n)]
                    for _ in prompts]

    class Pool:
        def verify(self, batch, texts):
            return [Verdict(1.0, Status.CORRECT) if p.id in solvable and t == "2" else Verdict.fail(Status.WRONG)
                    for p, t in zip(batch, texts)]

    monkeypatch.setattr(policies, "load_policy", lambda *a, **k: Base())
    sets = {"train": problems[:4], "test": problems[4:], "fresh": []}
    cut = learning.never_solved("integration", tmp_path, sets, 4, 1.2, Pool())
    assert [p.id for p in cut["train"]] == [problems[0].id, problems[2].id, problems[3].id]
    assert [p.id for p in cut["test"]] == [problems[5].id] and cut["fresh"] == []
    rows = [json.loads(line) for line in (tmp_path / "train-unsolved-4.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == [p.id for p in cut["train"]]
    monkeypatch.setattr(policies, "load_policy", lambda *a, **k: pytest.fail("the cached cut is not recomputed"))
    assert learning.never_solved("integration", tmp_path, sets, 4, 1.2, Pool()) == cut


def test_controls_rerun_a_finished_core_seed_for_its_missing_arms_only(learning, tmp_path):
    """--controls on an out dir of --core-only seeds: a seed file without the control arms is not
    finished (its child reuses the cached arms), in any suite; one with them is."""
    import json

    made = learning.seed_settings(learning.parse_args([]))
    core = tmp_path / "seed-0.json"
    core.write_text(json.dumps({"seed": 0, "base": 0.0, "grpo_direct": 0.1, "ladder": 0.2, "settings": made}))
    with_controls = learning.parse_args(["--core-only", "--controls"])
    assert learning.seed_finished(learning.parse_args(["--core-only"]), core, "integration")
    assert not learning.seed_finished(with_controls, core, "integration")
    assert not learning.seed_finished(with_controls, core, "countdown")  # countdown runs the controls too
    assert not learning.seed_finished(with_controls, tmp_path / "seed-1.json", "integration")
    core.write_text(json.dumps({"seed": 0, "ladder": 0.2, "random_reward": 0.0, "format_only": 0.05, "settings": made}))
    assert learning.seed_finished(with_controls, core, "integration")
    assert learning.seed_finished(with_controls, core, "countdown")


def test_base_names_the_checkpoint_every_arm_starts_from(learning, tmp_path, monkeypatch):
    """--base tiny:DIR: the unsolved cut samples that checkpoint, and the plots' titles name it."""
    import rungs.policies as policies
    from rungs.data import load_problems

    specs = []

    class Base:
        prompt_style = "instruct"

        def generate(self, prompts, n, sampling):
            return [[] for _ in prompts]

    monkeypatch.setattr(policies, "load_policy", lambda spec, **k: specs.append(spec) or Base())
    sets = {"train": load_problems("builtin:countdown-hard", limit=2), "test": [], "fresh": []}
    class Pool:
        def verify(self, batch, texts):
            return []

    cut = learning.never_solved("countdown", tmp_path, sets, 2, 1.0, Pool(), "tiny:runs/candidate")
    assert specs == ["tiny:runs/candidate"] and len(cut["train"]) == 2
    args = learning.parse_args(["--base", "tiny:runs/candidate"])
    assert args.base == "tiny:runs/candidate" and learning.parse_args([]).base == "tiny"
    assert learning.base_label({"settings": vars(args)}) == "tiny:runs/candidate"
    assert learning.base_label({"settings": {}}) == "tiny"  # results written before --base existed


def test_aggregate_keeps_each_seeds_fresh_draw_score(learning, tmp_path):
    """learning.json holds every seed's fresh-draw score beside the mean ± std, so a later run can
    reuse a finished arm seed by seed; an unfinished seed (.partial.json) is not counted."""
    import json

    args = learning.parse_args(["--task", "countdown", "--out", str(tmp_path)])
    (tmp_path / "countdown").mkdir()
    for seed, (hard, fresh) in enumerate([(0.1, 0.2), (0.3, 0.0)]):
        (tmp_path / "countdown" / f"seed-{seed}.json").write_text(
            json.dumps({"seed": seed, "ladder": hard, "fresh/ladder": fresh, "settings": learning.seed_settings(args)}))
    (tmp_path / "countdown" / "seed-2.partial.json").write_text(json.dumps({"ladder": 0.9, "fresh/ladder": 0.9}))
    block = learning.aggregate(args)["countdown"]
    assert block["seeds"] == 2 and block["per_seed"]["ladder"] == [0.1, 0.3]
    assert block["fresh_per_seed"]["ladder"] == [0.2, 0.0]
    assert block["fresh"]["ladder"][0] == pytest.approx(0.1)


def test_a_training_pool_drops_every_test_dev_and_fresh_problem(learning, tmp_path):
    import dataclasses

    from rungs.data import load_problems, write_jsonl
    from rungs.tasks import get_task

    task = get_task("countdown")
    own = task.generate(30, 3.0, seed=777)
    leaked = [load_problems("builtin:countdown-hard")[0], learning.dev_problems("countdown")[-1],
              learning.fresh_problems("countdown", 40)[5]]
    # the same problem under another id still counts as a leak, and as a repeat
    leaked.append(dataclasses.replace(leaked[0], id="renamed"))
    write_jsonl(tmp_path / "pool.jsonl", (p.to_dict() for p in [*own[:10], *leaked, dataclasses.replace(own[0], id="again"), *own[10:]]))
    (tmp_path / "countdown").mkdir()
    kept, path = learning.training_pool("countdown", tmp_path / "countdown", str(tmp_path / "pool.jsonl"), 40)
    own_keys = list(dict.fromkeys(task.problem_key(p) for p in own))
    assert [task.problem_key(p) for p in kept] == own_keys
    assert [p.id for p in load_problems(path)] == [p.id for p in kept]

    write_jsonl(tmp_path / "leaks.jsonl", (p.to_dict() for p in leaked))
    with pytest.raises(SystemExit, match="leaks.jsonl: no problem left"):
        learning.training_pool("countdown", tmp_path / "countdown", str(tmp_path / "leaks.jsonl"), 40)


def _shipped_folder(learning, out, suites=("countdown",)):
    """A results folder as a fresh clone has it: learning.json (made from seed files that are then
    removed, as .gitignore leaves them out of the repository). Returns the stored bytes."""
    import json
    import shutil

    args = learning.parse_args(["--task", suites[0], "--seeds", "2", "--steps", "7", "--out", str(out)])
    for suite in suites:
        (out / suite).mkdir(parents=True)
        for seed, (hard, fresh) in enumerate([(0.1, 0.2), (0.3, 0.0)]):
            (out / suite / f"seed-{seed}.json").write_text(json.dumps(
                {"seed": seed, "base": 0.05, "ladder": hard, "fresh/ladder": fresh, "curve/ladder": [0.1, 0.2, 0.3],
                 "settings": learning.seed_settings(args)}))
    learning.aggregate(args)
    for suite in suites:
        shutil.rmtree(out / suite)
    return (out / "learning.json").read_bytes()


def test_report_without_seed_files_reprints_the_stored_summary_and_leaves_it_as_it_is(learning, tmp_path, capsys):
    stored = _shipped_folder(learning, tmp_path)
    assert learning.main(["--report", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "learning.json").read_bytes() == stored
    printed = capsys.readouterr().out
    assert "countdown, greedy accuracy, mean ± std over 2 seeds" in printed and "0.200 ± 0.141" in printed
    assert not (tmp_path / "learning.png").exists()  # a reprint of a stored summary writes nothing


def test_report_on_a_folder_with_neither_seed_files_nor_a_summary_is_a_one_line_error(learning, tmp_path):
    with pytest.raises(SystemExit, match=f"learning: {tmp_path}: no seed files .* and no learning.json") as raised:
        learning.main(["--report", "--out", str(tmp_path)])
    assert "\n" not in str(raised.value) and not (tmp_path / "learning.json").exists()
    (tmp_path / "learning.json").write_text('{"settings": {}}')  # what the old --report left behind: no figures
    with pytest.raises(SystemExit, match="learning.json: holds no suite's results"):
        learning.main(["--report", "--out", str(tmp_path)])


def test_report_keeps_the_stored_block_of_a_suite_whose_seed_files_are_absent(learning, tmp_path):
    """Seed files of one suite only (say, countdown rerun on a fresh clone): it is rebuilt from them,
    and the other suite's stored figures stay, under the settings the seeds were run with."""
    import json

    _shipped_folder(learning, tmp_path, suites=("integration", "countdown"))
    before = json.loads((tmp_path / "learning.json").read_text())
    (tmp_path / "countdown").mkdir()
    (tmp_path / "countdown" / "seed-0.json").write_text(json.dumps({"seed": 0, "ladder": 0.5}))
    result = learning.aggregate(learning.parse_args(["--report", "--steps", "99", "--out", str(tmp_path)]))
    assert result["integration"] == before["integration"]
    assert result["countdown"]["per_seed"]["ladder"] == [0.5]
    assert result["settings"]["steps"] == 7 and result["grpo"]["max_steps"] == 7
    assert json.loads((tmp_path / "learning.json").read_text()) == json.loads(json.dumps(result))


# -- a seed is reused only under the settings it was made with (W1, W2) ------------------------------
def _seed(learning, out, suite, seed, flags, name="seed-{}.json", **figures):
    import json

    made = learning.seed_settings(learning.parse_args([*flags, "--out", str(out)]))
    path = out / suite / name.format(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"seed": seed, **figures, "settings": made}))
    return path


def test_a_seed_made_with_other_settings_is_recomputed_with_a_notice(learning, tmp_path, monkeypatch, capsys):
    import json

    quick = ["--task", "integration", "--steps", "1", "--limit", "1"]
    now = ["--task", "integration", "--steps", "2", "--limit", "3", "--seeds", "3", "--out", str(tmp_path)]
    _seed(learning, tmp_path, "integration", 0, quick, base=1.0)  # finished under other settings
    (tmp_path / "integration" / "ladder-seed0" / "final").mkdir(parents=True)  # its weights
    _seed(learning, tmp_path, "integration", 1, quick, name="seed-{}.partial.json", base=0.667)  # killed part-way
    same = _seed(learning, tmp_path, "integration", 2, now[:-2], base=0.5)  # finished under these settings
    jobs = []
    monkeypatch.setattr(learning, "run_processes", lambda j, parallel: jobs.extend(j))
    monkeypatch.setattr(learning.sys, "argv", ["learning.py", *now])
    args = learning.parse_args(now)
    learning.run_all(args)
    assert [label for label, _, _ in jobs] == ["integration seed 0", "integration seed 1"]
    err = capsys.readouterr().err
    assert "integration seed 0 was made with other settings (seed-0.json: limit 1 -> 3, steps 1 -> 2)" in err
    assert "integration seed 1 was made with other settings (seed-1.partial.json:" in err
    assert not (tmp_path / "integration" / "seed-0.json").exists()
    assert not (tmp_path / "integration" / "seed-1.partial.json").exists()
    assert not (tmp_path / "integration" / "ladder-seed0").exists()  # no weight of the old settings is reused
    assert same.exists() and learning.seed_finished(args, same, "integration")
    # ... and nothing is deleted: both seeds' files and runs are moved aside, the notice says where
    stale = sorted((tmp_path / "integration" / "stale").iterdir())
    assert len(stale) == 2 and {p.name for d in stale for p in d.iterdir()} == {"seed-0.json", "ladder-seed0",
                                                                                 "seed-1.partial.json"}
    kept = next(d for d in stale if (d / "seed-0.json").exists())
    assert json.loads((kept / "seed-0.json").read_text())["base"] == 1.0 and (kept / "ladder-seed0" / "final").is_dir()
    assert f"moved its files and runs to {kept}; recomputing it" in err


def test_a_seed_file_without_recorded_settings_is_not_finished(learning, tmp_path):
    import json

    path = tmp_path / "seed-0.json"
    path.write_text(json.dumps({"seed": 0, "base": 1.0}))
    args = learning.parse_args(["--out", str(tmp_path)])
    assert not learning.seed_finished(args, path, "integration")


def test_a_seed_without_recorded_settings_is_moved_aside_not_deleted(learning, tmp_path, capsys):
    """A seed file written before seed files recorded settings, with hours of runs beside it: its
    figures and weights (grpo_direct-seedN/final, read by bench/arm_samples.py) are kept under
    OUT/SUITE/stale/<UTC time>/, named in the one-line notice."""
    import json

    suite = tmp_path / "countdown"
    (suite / "grpo_direct-seed0" / "final").mkdir(parents=True)
    (suite / "grpo_direct-seed0" / "final" / "model.pt").write_text("weights")
    (suite / "ladder-seed0" / "final").mkdir(parents=True)
    (suite / "seed-0.json").write_text(json.dumps({"seed": 0, "ladder": 0.4}))
    args = learning.parse_args(["--task", "countdown", "--out", str(tmp_path)])
    assert learning.reset_stale_seed(args, "countdown", 0)
    (moved,) = (suite / "stale").iterdir()
    assert moved.name.endswith("Z") and moved.name[:8].isdigit()  # a UTC timestamp
    assert (moved / "grpo_direct-seed0" / "final" / "model.pt").read_text() == "weights"
    assert (moved / "ladder-seed0" / "final").is_dir()
    assert json.loads((moved / "seed-0.json").read_text()) == {"seed": 0, "ladder": 0.4}
    assert not (suite / "seed-0.json").exists() and not (suite / "grpo_direct-seed0").exists()
    (line,) = capsys.readouterr().err.splitlines()
    assert "no recorded settings" in line and f"moved its files and runs to {moved}" in line
    assert not learning.reset_stale_seed(args, "countdown", 0)  # nothing stale left
    # a second reset in the same second never mixes with (or overwrites) the first one's folder
    (suite / "seed-0.json").write_text(json.dumps({"seed": 0, "ladder": 0.5}))
    assert learning.reset_stale_seed(args, "countdown", 0)
    assert len(list((suite / "stale").iterdir())) == 2
    assert json.loads((moved / "seed-0.json").read_text()) == {"seed": 0, "ladder": 0.4}


def _fake_seed_run(learning, monkeypatch):
    """run_seed with training, the pool and the policy faked; returns the (depth, variants) each LADDER run got."""
    import json
    from pathlib import Path

    import rungs.pipelines.ladder as ladder_module
    import rungs.policies as policies
    import rungs.train.grpo as grpo_module
    import rungs.verify.pool as pool_module

    used = []

    def run_ladder(config, grpo, **kw):
        used.append((config.depth, config.variants))
        run = Path(config.out)
        run.mkdir(parents=True, exist_ok=True)
        tree = Path(config.variants).read_text() if config.variants else json.dumps({"depth": config.depth}) + "\n"
        (run / "variants.jsonl").write_text(tree)
        (run / "events.jsonl").write_text("")
        (run / "summary.json").write_text("{}")
        (run / "final").mkdir(exist_ok=True)

    class Trainer:
        def __init__(self, *a, **k):
            self.history = []

        def train(self):
            pass

    class Pool:
        def __init__(self, *a, **k):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *a):
            pass

    class Policy:
        def save(self, path):
            Path(path).mkdir(parents=True, exist_ok=True)

    monkeypatch.setattr(ladder_module, "run_ladder", run_ladder)
    monkeypatch.setattr(policies, "load_policy", lambda *a, **k: Policy())
    monkeypatch.setattr(grpo_module, "GRPOTrainer", Trainer)
    monkeypatch.setattr(pool_module, "VerifierPool", Pool)
    monkeypatch.setattr(learning, "greedy_accuracy", lambda *a, **k: 0.0)
    return used


def test_a_seeds_own_variant_tree_of_other_settings_is_not_reused(learning, tmp_path, monkeypatch, capsys):
    """Settings A build the shared tree; B, a seed's own (variants-seedN.jsonl); C must build a new
    one, not be handed B's: the stale seed's own tree is moved aside with its files."""
    used = _fake_seed_run(learning, monkeypatch)

    def run(depth, reset=True):
        args = learning.parse_args(["--task", "countdown", "--core-only", "--seeds", "1", "--fresh", "0",
                                    "--depth", str(depth), "--out", str(tmp_path)])
        if reset:
            learning.reset_stale_seed(args, "countdown", 0)  # what run_all does first
        learning.run_seed(args, "countdown", 0)

    for depth in (2, 3, 4):
        run(depth)
    assert used == [(2, None), (3, None), (4, None)]  # every settings' LADDER built its own tree
    suite = tmp_path / "countdown"
    assert (suite / "variants-seed0.jsonl").read_text().strip() == '{"depth": 4}'
    assert [(d / "variants-seed0.jsonl").read_text().strip() for d in (suite / "stale").iterdir()
            if (d / "variants-seed0.jsonl").exists()] == ['{"depth": 3}']  # moved aside, not deleted

    # without a reset (its seed files already gone): a seed's own tree of other settings is still not reused
    import shutil

    for name in ("seed-0.json", "seed-0.partial.json"):
        (suite / name).unlink()
    shutil.rmtree(suite / "ladder-seed0")
    used.clear()
    capsys.readouterr()
    run(5, reset=False)
    assert used == [(5, None)]
    assert "variants-seed0.jsonl was built under other settings" in capsys.readouterr().err


def test_aggregate_averages_only_the_seeds_asked_for_under_these_settings(learning, tmp_path, capsys):
    flags = ["--task", "countdown", "--steps", "2", "--limit", "3"]
    _seed(learning, tmp_path, "countdown", 0, flags, base=0.5)
    _seed(learning, tmp_path, "countdown", 1, ["--task", "countdown", "--steps", "1", "--limit", "1"], base=1.0)
    _seed(learning, tmp_path, "countdown", 2, flags, base=0.9)  # beyond --seeds 2
    result = learning.aggregate(learning.parse_args([*flags, "--seeds", "2", "--out", str(tmp_path)]))
    assert result["countdown"]["per_seed"]["base"] == [0.5] and result["countdown"]["seeds"] == 1
    assert "seed-1.json: made with other settings (limit 1 -> 3, steps 1 -> 2); left out" in capsys.readouterr().err


def test_the_label_says_when_limit_scored_only_part_of_the_set(learning):
    args = learning.parse_args(["--limit", "1"])
    label = learning.test_label({"settings": vars(args)}, "integration")
    assert label == "builtin:integration-hard, only the first 1 problem (--limit)"
    assert learning.test_label({"settings": vars(learning.parse_args([]))}, "integration") == "builtin:integration-hard"


@pytest.mark.parametrize("flags", [["--seeds", "0"], ["--limit", "0"], ["--limit", "-2"], ["--steps", "-1"],
                                   ["--parallel", "0"], ["--depth", "0"]])
def test_bad_counts_are_one_argparse_line(learning, flags, capsys):
    with pytest.raises(SystemExit) as raised:
        learning.parse_args(flags)
    assert raised.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"argument {flags[0]}: {flags[1]!r}: expected an integer >= 1" in err


def test_a_stopped_parent_ends_its_running_children(tmp_path):
    """SIGTERM to learning.py while seeds run: every child (and what it started) ends too (C1)."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    bench = Path(__file__).resolve().parent.parent / "bench"
    pids = tmp_path / "pids"
    child = (f"import os, subprocess, sys, time; grand = subprocess.Popen([sys.executable, '-c', 'import time; "
             f"time.sleep(60)']); open({str(pids)!r}, 'a').write(f'{{os.getpid()}} {{grand.pid}}\\n'); time.sleep(60)")
    parent = (f"import sys; sys.path.insert(0, {str(bench)!r}); import learning; from pathlib import Path; "
              f"learning.run_processes([('seed', [sys.executable, '-c', {child!r}], Path({str(tmp_path / 'seed.log')!r}))], "
              f"1, poll_s=0.05)")
    proc = subprocess.Popen([sys.executable, "-c", parent], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not (pids.exists() and pids.read_text().endswith("\n")) and time.monotonic() < deadline:
        time.sleep(0.05)
    started = [int(pid) for pid in pids.read_text().split()]
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 128 + signal.SIGTERM
    assert "SIGTERM: stopped its running jobs" in err and "Traceback" not in err

    def alive(pid):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True

    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in started) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(pid) for pid in started)


def test_one_seed_is_one_seed(learning, capsys):
    block = {"seeds": 1, "summary": {"base": (1.0, 0.0)}, "fresh": {}}
    learning.print_report({"settings": {}, "countdown": block})
    assert "mean ± std over 1 seed\n" in capsys.readouterr().out


# -- bench leftovers: a one-step run's curve, a rerun's log -----------------------------------------
def _plotted_curves(learning, tmp_path, monkeypatch, curves):
    """plot() on one countdown block with these training curves; returns learning_curves.png's axes."""
    import rungs.report

    figures = {}
    monkeypatch.setattr(rungs.report, "save_png", lambda fig, path: figures.__setitem__(path.name, fig))
    block = {"seeds": 1, "summary": {"base": (0.1, 0.0), "ladder": (0.2, 0.0)}, "fresh": {}, "curves": curves}
    learning.plot({"settings": {}, "countdown": block}, tmp_path)
    (ax,) = figures["learning_curves.png"].axes
    return ax


def test_a_one_step_run_still_draws_its_training_curve(learning, tmp_path, monkeypatch):
    """A curve of one point is a line of length zero: it is drawn as a marker, not left blank."""
    ax = _plotted_curves(learning, tmp_path, monkeypatch, {"grpo_direct": [[0.25]], "ladder": [[0.5], [0.75]]})
    lines = {line.get_label(): line for line in ax.lines}
    assert set(lines) == {"grpo_direct", "ladder"}
    for label, value in (("grpo_direct", 0.25), ("ladder", 0.625)):
        assert list(lines[label].get_xdata()) == [1] and list(lines[label].get_ydata()) == [value]
        assert lines[label].get_marker() not in (None, "None", "", " ")  # visible with one point
    assert "nothing to draw" not in ax.get_title()
    long = _plotted_curves(learning, tmp_path, monkeypatch, {"ladder": [[0.5] * 40]})
    assert long.lines[0].get_marker() in (None, "None", "", " ")  # a long curve is a plain line, as before


def test_a_run_without_training_curves_says_there_is_nothing_to_draw(learning, tmp_path, monkeypatch):
    ax = _plotted_curves(learning, tmp_path, monkeypatch, {"ladder": [[]]})
    assert not ax.lines and "nothing to draw" in ax.get_title() and ax.get_legend() is None


def test_a_rerun_appends_to_the_seed_log_below_a_separator(learning, tmp_path):
    """A resumed seed's log keeps the earlier run's output above the new one's; nothing is lost."""
    import sys

    log = tmp_path / "integration" / "seed-0.log"
    for word in ("first", "second"):
        learning.run_processes([("integration seed 0", [sys.executable, "-c", f"print({word!r})"], log)], 1, poll_s=0.05)
    text = log.read_text()
    assert text.startswith("first\n") and text.endswith("second\n")
    assert text.count("----- integration seed 0: started again ") == 1
    assert text.index("first") < text.index("started again") < text.index("second")


def test_a_seed_made_with_other_settings_takes_its_log_aside_with_it(learning, tmp_path, capsys):
    """The recomputed seed starts a fresh log; the old settings' log is kept with the old seed files."""
    suite = tmp_path / "countdown"
    _seed(learning, tmp_path, "countdown", 0, ["--task", "countdown", "--steps", "1"], base=1.0)
    (suite / "seed-0.log").write_text("old settings' output\n")
    args = learning.parse_args(["--task", "countdown", "--steps", "2", "--out", str(tmp_path)])
    assert learning.reset_stale_seed(args, "countdown", 0)
    (moved,) = (suite / "stale").iterdir()
    assert (moved / "seed-0.log").read_text() == "old settings' output\n"
    assert not (suite / "seed-0.log").exists()
    # a seed process (--only) never moves a log: the parent opened it for that very process's output
    _seed(learning, tmp_path, "countdown", 1, ["--task", "countdown", "--steps", "1"], base=1.0)
    (suite / "seed-1.log").write_text("being written\n")
    child = learning.parse_args(["--task", "countdown", "--steps", "2", "--out", str(tmp_path), "--only", "countdown:1"])
    assert learning.reset_stale_seed(child, "countdown", 1)
    assert (suite / "seed-1.log").read_text() == "being written\n"
