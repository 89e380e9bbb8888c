"""The `rungs` command line as a newcomer meets it: defaults that follow the policy, help that tells
the truth, and one-line messages that name the flag, file, line and column (issue 9, items 15 and 17)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from rungs.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[1]


def _resolve(argv, section="ladder"):
    from rungs.commands.ttrl import resolve
    from rungs.pipelines.ladder import LadderConfig
    from rungs.pipelines.ttrl import TTRLConfig

    parser, _ = build_parser()
    args = parser.parse_args([section, *argv])
    return resolve(args, section, {"ladder": LadderConfig, "ttrl": TTRLConfig}[section])


@pytest.mark.parametrize("layout", ["flat", "sections"])
@pytest.mark.parametrize("section", ["ladder", "ttrl"])
def test_a_policy_set_only_in_yaml_gets_that_policys_grpo_defaults(tmp_path, layout, section, capsys):
    path = tmp_path / "x.yaml"
    if layout == "flat":
        path.write_text("policy: hf:some/model\n")
    else:
        path.write_text(f"{section}:\n  policy: hf:some/model\n")
    config, grpo, _ = _resolve(["--config", str(path)], section)
    assert config.policy == "hf:some/model"
    assert (grpo.num_generations, grpo.max_completion_length, grpo.temperature) == (8, 256, 1.0)
    # The tiny model (the default policy) gets its own, and the run says so at start.
    config, grpo, _ = _resolve([], section)
    assert (grpo.num_generations, grpo.max_completion_length, grpo.temperature) == (16, 64, 1.2)
    assert "GRPO defaults for policy 'tiny'" in capsys.readouterr().out
    # The line lists only the defaults in force, not a setting given by flag.
    _resolve(["--num-generations", "2"], section)
    line = capsys.readouterr().out
    assert "num_generations" not in line and "max_completion_length=64" in line
    # A flag still wins over both.
    _, grpo, _ = _resolve(["--config", str(path), "--num-generations", "4"], section)
    assert grpo.num_generations == 4


def test_a_tiny_ladder_evaluates_at_step_zero():
    _, grpo, _ = _resolve([])
    assert grpo.eval_on_start  # "accuracy at start" is step 0's, not the first eval_steps'


def test_yaml_with_an_unknown_key_is_refused_with_a_suggestion(tmp_path, capsys):
    path = tmp_path / "x.yaml"
    path.write_text("num_generation: 4\n")
    assert main(["ladder", "--config", str(path)]) == 2
    assert "did you mean 'num_generations'" in capsys.readouterr().err


@pytest.mark.parametrize("section", ["ladder", "ttrl"])
def test_yaml_numbers_in_short_exponent_form_are_read_as_numbers(tmp_path, section):
    # PyYAML (YAML 1.1) reads 3e-4 as the string '3e-4'; TRL users write learning rates that way.
    path = tmp_path / "x.yaml"
    path.write_text("learning_rate: 3e-4\nmax_steps: 200\nbeta: 1E-3\n")
    _, grpo, _ = _resolve(["--config", str(path)], section)
    assert grpo.learning_rate == pytest.approx(3e-4) and isinstance(grpo.learning_rate, float)
    assert grpo.beta == pytest.approx(1e-3) and grpo.max_steps == 200


@pytest.mark.parametrize(("line", "expected"), [
    ("learning_rate: fast", "learning_rate: expected a number or none, got 'fast'"),
    ("learning_rate: [1]", "learning_rate: expected a number or none, got [1]"),
    ("max_steps: 1e3", "max_steps: expected an integer, got '1e3'"),
])
def test_yaml_values_of_the_wrong_kind_name_the_file_and_setting(tmp_path, capsys, line, expected):
    path = tmp_path / "x.yaml"
    path.write_text(line + "\n")
    assert main(["ladder", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: {expected}" in err and "Traceback" not in err


def test_help_shows_the_values_the_tiny_model_runs_with(capsys):
    with pytest.raises(SystemExit):
        main(["ladder", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: 256; with the tiny policy: 64)" in text
    assert "(default: 8; with the tiny policy: 16)" in text


@pytest.mark.parametrize("command", ["pretrain", "demo", "ttrl", "ladder"])
def test_help_that_says_its_own_default_gets_no_placeholder_default(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: )" not in text and not re.search(r"\(default[^()]*\) \(default", text)


def test_type_errors_name_the_flag_and_the_expected_type(capsys):
    with pytest.raises(SystemExit):
        main(["eval", "--n", "a"])
    err = capsys.readouterr().err
    assert "<lambda>" not in err and "argument --n" in err and "comma-separated list of integers" in err
    with pytest.raises(SystemExit):
        main(["eval", "--limit", "x"])
    assert "argument --limit: expected an integer or none, got 'x'" in capsys.readouterr().err


def test_json_errors_name_the_decoders_column(tmp_path, capsys):
    bad = '{"task": "countdown", "limit": 3 "seeds": 1}\n'
    (tmp_path / "c.yaml").write_text(bad)
    assert main(["eval", "--config", str(tmp_path / "c.yaml")]) == 2
    assert "column 34" in capsys.readouterr().err  # where json.loads says the missing comma is
    (tmp_path / "p.json").write_text('[{"problem": "integrate(x, x)" "answer": 1}]')
    assert main(["eval", "--problems", str(tmp_path / "p.json")]) == 2
    assert "column 32" in capsys.readouterr().err


def test_an_unknown_flag_after_a_command_is_one_line_naming_that_commands_help(capsys):
    with pytest.raises(SystemExit) as done:
        main(["report", "--bogus", "x"])
    err = capsys.readouterr().err
    assert done.value.code == 2 and err.count("\n") == 1
    assert err.startswith("rungs report: error: unrecognized arguments: --bogus") and "see rungs report --help" in err
    with pytest.raises(SystemExit):
        main(["train", "--resume", "runs/a", "--out", "runs/b"])  # the longest usage of all
    assert capsys.readouterr().err.count("\n") == 1


def test_train_names_every_missing_required_flag_in_one_line(capsys):
    assert main(["train"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--task" in err and "--problems" in err and "are required" in err
    assert main(["train", "--task", "countdown"]) == 2
    err = capsys.readouterr().err
    assert "--problems" in err and "--task" not in err and "is required" in err


def test_a_mistyped_command_gets_a_did_you_mean(capsys):
    with pytest.raises(SystemExit):
        main(["evl"])
    assert "did you mean 'eval'?" in capsys.readouterr().err


def test_a_directory_given_as_a_file_says_so(tmp_path, capsys):
    assert main(["verify", "--task", "countdown", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err
    assert main(["eval", "--config", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err


def test_a_bad_countdown_problem_names_the_flag_not_an_internal_id(capsys):
    assert main(["verify", "--task", "countdown", "--problem", "blah", "--answer", "1+2"]) == 2
    err = capsys.readouterr().err
    assert "'cli'" not in err and "--problem" in err


def test_pipelines_never_import_commands():
    """Layers import downward only: commands > pipelines (the demo once imported commands.ttrl)."""
    for path in sorted((ROOT / "rungs" / "pipelines").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not node.module.startswith("rungs.commands"), f"{path.name} imports {node.module}"


def test_ttrl_help_lists_only_settings_a_ttrl_run_uses(capsys):
    with pytest.raises(SystemExit):
        main(["ttrl", "--help"])
    text = capsys.readouterr().out
    assert "--steps " in text and "--max-steps" not in text and "--eval-on-start" not in text


def test_eval_resume_of_a_directory_with_no_run_is_refused_and_starts_nothing(tmp_path, capsys):
    out = tmp_path / "never-ran"
    assert main(["eval", "--task", "countdown", "--problems", "builtin:countdown-easy", "--limit", "1", "--n", "1",
                 "--resume", "--out", str(out), "--no-plot", "--workers", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert f"{out} is not an evaluation run directory" in err and "drop --resume" in err and "\n" not in err
    assert not out.exists()
    assert main(["eval", "--task", "countdown", "--problems", "builtin:countdown-easy", "--limit", "1", "--n", "1,2",
                 "--out", str(out), "--no-plot", "--workers", "1"]) == 0
    capsys.readouterr()
    # a real resume; other n with the same max(n) apply, a smaller max(n) is refused in one line
    assert main(["eval", "--resume", "--out", str(out), "--n", "2", "--no-plot", "--workers", "1"]) == 0
    assert main(["eval", "--resume", "--out", str(out), "--n", "1", "--no-plot", "--workers", "1"]) == 2
    assert "drew max(n)=2" in capsys.readouterr().err


def test_rungs_own_warnings_are_one_line(tmp_path):
    """A warning rungs raises for the user reads as one line, without a source path and code line."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "rungs.cli", "generate", "--task", "math", "--problem", "1+1?",
                           "--gold", "2", "--n", "1", "--max-new-tokens", "4"],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    line = next(x for x in done.stderr.splitlines() if "no shipped tiny checkpoint" in x)
    assert line.startswith("rungs generate: warning: no shipped tiny checkpoint for task 'math'")
    assert "registry.py" not in done.stderr and "return registry" not in done.stderr


@pytest.mark.parametrize("argv, message", [
    (["ttrl", "--mode", "vote", "--task", "countdown", "--steps", "3"], "--steps: not used by --mode vote"),
    (["ttrl", "--task", "countdown", "--vote-samples", "3", "--depth", "1"], "--vote-samples: not used by --mode variants"),
    (["train", "--task", "countdown", "--problems", "builtin:countdown-easy", "--eval-limit", "3"],
     "--eval-limit 3: there are no held-out problems to limit"),
    (["train", "--task", "countdown", "--problems", "builtin:countdown-easy", "--eval-steps", "5", "--eval-on-start"],
     "--eval-steps, --eval-on-start: no held-out problems to evaluate"),
])
def test_a_flag_with_nothing_to_act_on_is_refused_not_ignored(tmp_path, capsys, argv, message):
    out = tmp_path / "run"
    assert main([*argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and not out.exists()


def test_a_checkpoint_pretrained_for_another_task_is_named_in_a_warning():
    import warnings

    from rungs.policies import load_policy

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_policy("tiny:countdown-long", task="integration")
        load_policy("tiny:countdown-long", task="countdown")  # its own task: no warning
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1 and "pretrained for task 'countdown', not 'integration'" in messages[0]


def test_an_interrupted_eval_says_once_how_to_resume(tmp_path, capsys, monkeypatch):
    import rungs.pipelines.evaluate as evaluate_module

    def interrupted(config, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(evaluate_module, "evaluate", interrupted)
    out = tmp_path / "e"
    assert main(["eval", "--task", "countdown", "--limit", "1", "--out", str(out)]) == 130
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert text.count("rungs eval: interrupted") == 1 and f"rerun with --resume --out {out}" in text


@pytest.mark.parametrize(("flag", "said"), [("--output-dir", "the --out DIR flag"), ("--bf16", "dtype=bfloat16"),
                                            ("--use_vllm=true", "vllm:MODEL is an inference-only policy")])
def test_a_trl_flag_on_the_command_line_says_what_rungs_does_instead(capsys, flag, said):
    """TRL users type TrainingArguments flags (either spelling, with or without =VALUE): the one-line
    usage error names the flag as TRL's and gives rungs' way, as a YAML file holding the key is told."""
    with pytest.raises(SystemExit) as done:
        main(["train", "--task", "integration", flag, "--bogus"])
    err = capsys.readouterr().err
    assert done.value.code == 2 and err.count("\n") == 1
    assert f"{flag.split('=')[0]} is a TRL / transformers setting" in err and said in err


def test_a_value_that_starts_with_a_minus_is_a_value(capsys):
    """Antiderivatives often start with '-': `--answer -cos(x)` was 'expected one argument'."""
    assert main(["verify", "--task", "integration", "--problem", "integrate(sin(x), x)", "--answer", "-cos(x)"]) == 0
    assert capsys.readouterr().out.startswith("correct")
    assert main(["verify", "--task", "integration", "--problem", "integrate(sin(x), x)", "--answer", "-sin(x)"]) == 0
    assert capsys.readouterr().out.startswith("wrong")
    assert main(["verify", "--task", "integration", "--problem", "integrate(1, x)", "--answer", "-hx"]) == 0  # not -h
    assert "unknown symbol 'hx'" in capsys.readouterr().out
    with pytest.raises(SystemExit) as done:
        main(["verify", "-h"])
    assert done.value.code == 0 and "usage: rungs verify" in capsys.readouterr().out
    assert main(["train", "--task", "integration", "--problems", "builtin:integration-easy", "--learning-rate",
                 "-1e-5"]) == 2
    err = capsys.readouterr().err
    assert "expected one argument" not in err and "learning_rate" in err


def test_review_user_cli_corners_are_one_line_errors(tmp_path, capsys):
    """`sample-problems --out DIR` was a traceback; `serve --task nope` first advised pretraining
    'nope'; `ttrl --task math` without variants sent the user in a circle instead of to --mode vote."""
    assert main(["sample-problems", "--task", "integration", "--n", "2", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err == f"rungs sample-problems: error: {tmp_path}: a directory; expected the path of a file to write\n"
    assert main(["serve", "--task", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rungs serve: error: unknown task 'nope'") and "pretrain" not in err
    math = tmp_path / "m.jsonl"
    assert main(["sample-problems", "--task", "math", "--n", "2", "--out", str(math)]) == 0
    for extra in ([], ["--variant-source", "symbolic"]):
        assert main(["ttrl", "--task", "math", "--problems", str(math), "--steps", "1", "--out", str(tmp_path / "t"),
                     "--no-progress", *extra]) == 2
        assert "--mode vote" in capsys.readouterr().err


def test_an_option_before_the_command_says_where_options_go(capsys):
    from rungs.cli import main

    with pytest.raises(SystemExit) as info:
        main(["--out", "demo", "--limit", "1"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "--out before the command" in err and "rungs demo --out demo --limit 1" in err


@pytest.mark.parametrize(("argv", "hint"), [(["eval", "--limt", "2"], "did you mean --limit?"),
                                            (["pretrain", "--max-steps", "5"], "did you mean --steps?"),
                                            (["ttrl", "--max-steps", "2"], "did you mean --steps?")])
def test_an_unknown_flag_gets_the_nearest_one(capsys, argv, hint):
    from rungs.cli import main

    with pytest.raises(SystemExit):
        main(argv)
    assert hint in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "suggested"), [(["--threads=2", "eval"], "rungs eval --threads=2"),
                                                 (["--out", "x", "demo"], "rungs demo --out x")])
def test_the_suggested_command_puts_the_command_first(capsys, argv, suggested):
    from rungs.cli import main

    with pytest.raises(SystemExit):
        main(argv)
    assert f"`{suggested}`" in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "said"), [(["--threads", "1", "tasks"], "`rungs tasks` has no --threads option"),
                                            (["--limit", "2", "verify"], "`rungs verify` has no --limit option")])
def test_an_option_before_a_command_that_lacks_it_is_not_suggested_there(capsys, argv, said):
    """Moving it after the command would only be refused there (s35 M2)."""
    from rungs.cli import main

    with pytest.raises(SystemExit):
        main(argv)
    err = capsys.readouterr().err
    assert said in err and "e.g. `rungs" not in err


def test_an_unknown_flag_far_from_every_flag_gets_no_hint(capsys):
    """`--threads` is not `--task` (s35 K4): a hint that names an unrelated flag misleads."""
    from rungs.cli import main

    with pytest.raises(SystemExit):
        main(["serve", "--threads", "1"])
    err = capsys.readouterr().err
    assert "unrecognized arguments: --threads 1" in err and "did you mean" not in err


def test_abbreviations_of_rungs_own_flags_still_work(capsys):
    from rungs.cli import main

    with pytest.raises(SystemExit) as info:
        main(["--vers"])
    assert info.value.code == 0 and "rungs" in capsys.readouterr().out
