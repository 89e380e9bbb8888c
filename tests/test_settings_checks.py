"""Settings a user gets wrong are one-line errors that name the file, setting and value, never a
traceback or a job run on the wrong values: YAML keys and value types for every command that reads
--config, the tiny and hf policies' options and devices, and NaN/inf sampling settings."""

from __future__ import annotations

import math

import pytest

from rungs.cli import main
from rungs.errors import UserError

GENERATE = ["generate", "--task", "integration", "--problem", "integrate(3*x**2, x)", "--n", "1"]


def _fails(argv, capsys) -> str:
    """The one line `main(argv)` prints for a UserError (exit code 2, no traceback)."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err


# -- F4: every command that reads YAML refuses an unknown key ------------------------------------
@pytest.mark.parametrize("command", [["eval"], ["pretrain"], ["eval", "--resume"], ["train"], ["ladder"]])
def test_an_unknown_yaml_key_is_refused_by_every_command(tmp_path, capsys, command):
    path = tmp_path / "ee.yaml"
    path.write_text("problemz: x\n")
    err = _fails([*command, "--config", str(path), "--out", str(tmp_path / "run")], capsys)
    assert f"{path}: unknown setting 'problemz'" in err and "did you mean" in err


@pytest.mark.parametrize(("key", "value", "expected"), [
    ("output_dir", "out", "in rungs the run directory is the --out DIR flag"),
    ("model_name_or_path", "Qwen/Qwen2.5-0.5B", "policy: hf:NAME"),
    ("bf16", "true", "policy_options: {dtype: bfloat16}"),
    ("fp16", "true", "policy_options: {dtype: float16}"),
    ("gradient_accumulation_steps", "4", "per_device_train_batch_size"),
    ("report_to", "wandb", "not used by rungs (every step's metrics go to RUN_DIR/events.jsonl"),
    ("use_vllm", "true", "not used by rungs (training samples with the trainable policy itself"),
    ("logging_dir", "logs", "not used by rungs"),
    ("push_to_hub", "true", "not used by rungs"),
    ("max_prompt_length", "512", "not used by rungs (prompts are not truncated"),
])
def test_a_trl_yaml_key_names_the_rungs_equivalent(tmp_path, capsys, key, value, expected):
    """A TRL GRPOConfig / TrainingArguments key that rungs does not take says what rungs does
    instead, in one line naming the file and the key, and never with a misleading did-you-mean
    (max_prompt_length is not max_completion_length)."""
    path = tmp_path / "trl.yaml"
    for text in (f"{key}: {value}\n", f"grpo:\n  {key}: {value}\n"):  # at top level, and under grpo:
        path.write_text(text)
        err = _fails(["train", "--task", "math", "--problems", "p.jsonl", "--config", str(path)], capsys)
        assert f"{path}: unknown setting {key!r}" in err and expected in err and "did you mean" not in err
    path.write_text(f"{key}: {value}\n")  # a job with sections (ladder: and grpo:)
    err = _fails(["ladder", "--config", str(path), "--out", str(tmp_path / "run")], capsys)
    assert f"{path}: unknown setting {key!r}" in err and expected in err and "did you mean" not in err


def test_a_run_directorys_job_key_is_not_a_setting(tmp_path):
    import argparse

    from rungs.commands import eval as eval_cmd
    from rungs.config import from_namespace
    from rungs.pipelines.evaluate import EvalConfig

    path = tmp_path / "config.yaml"
    path.write_text("job: eval\ntask: countdown\n")
    parser = argparse.ArgumentParser()
    eval_cmd.add_arguments(parser)
    args = parser.parse_args(["--config", str(path)])
    assert from_namespace(EvalConfig, args, args.config).task == "countdown"


# -- F5: a YAML value of the wrong kind for a str, bool, int or list setting -----------------------
@pytest.mark.parametrize(("command", "text", "expected"), [
    ("eval", "task: 5\n", "task: expected a string, got 5"),
    ("eval", "policy: [tiny]\n", "policy: expected a string, got ['tiny']"),
    ("eval", "policy: yes\n", "policy: expected a string, got True"),
    ("train", "task: [integration]\nproblems: p.jsonl\n", "task: expected a string or none, got ['integration']"),
    ("eval", 'plot: "maybe"\n', "plot: expected true or false"),
    ("eval", "plot: 2\n", "plot: expected true or false"),
    ("eval", "seeds: true\n", "seeds: expected an integer, got True"),
    ("eval", "temperature: false\n", "temperature: expected a number, got False"),
    ("eval", "n: [1, true]\n", "n: expected an integer, got True"),
    ("eval", "strategy: {greedy: 1}\n", "strategy: expected a list"),
    ("eval", "task:\n", "task: expected a string, got None"),
    ("ladder", 'climb: "sometimes"\n', "climb: expected true or false"),
    ("ladder", "ladder:\n  include_roots: [no]\n", "include_roots: expected true or false"),
    ("ladder", "grpo:\n  reward_funcs: 5\n", "reward_funcs: expected a list"),
    ("train", "limit: true\n", "limit: expected an integer or none, got True"),
])
def test_yaml_values_of_the_wrong_type_name_the_file_and_setting(tmp_path, capsys, command, text, expected):
    path = tmp_path / "e.yaml"
    path.write_text(text)
    err = _fails([command, "--config", str(path), "--out", str(tmp_path / "run")], capsys)
    assert f"{path}: {expected}" in err


@pytest.mark.parametrize(("text", "expected"), [
    ('plot: "no"', {"plot": False}), ("plot: 'Off'", {"plot": False}), ("plot: 'yes'", {"plot": True}),
    ("plot: 0", {"plot": False}), ("progress: 'TRUE'", {"progress": True}),
    ("n: '1,4'", {"n": [1, 4]}), ("n: 4", {"n": [4]}), ("strategy: greedy,majority", {"strategy": ["greedy", "majority"]}),
    ("limit: null", {"limit": None}), ("limit: '7'", {"limit": 7}), ("temperature: 1e-1", {"temperature": 0.1}),
])
def test_yaml_values_are_read_as_their_settings_type(tmp_path, text, expected):
    from rungs.config import from_dict, load_yaml
    from rungs.pipelines.evaluate import EvalConfig

    path = tmp_path / "e.yaml"
    path.write_text(text + "\n")
    config = from_dict(EvalConfig, load_yaml(path), source=str(path))
    assert {k: getattr(config, k) for k in expected} == expected


@pytest.mark.parametrize(("text", "name"), [('climb: "false"', "climb"), ("include_roots: 'no'", "include_roots"),
                                            ("ladder:\n  hard_bias: 'off'", "hard_bias")])
def test_ladder_bools_written_as_words_mean_what_they_say(tmp_path, text, name):
    from rungs.cli import build_parser
    from rungs.commands.ttrl import resolve
    from rungs.pipelines.ladder import LadderConfig

    path = tmp_path / "c.yaml"
    path.write_text(text + "\n")
    parser, _ = build_parser()
    config, _, _ = resolve(parser.parse_args(["ladder", "--config", str(path)]), "ladder", LadderConfig)
    assert getattr(config, name) is False


# -- F13: policy_options not a mapping, a setting under the wrong section --------------------------
@pytest.mark.parametrize("command", ["ladder", "ttrl", "eval", "train"])
def test_policy_options_that_are_not_a_mapping_name_the_file(tmp_path, capsys, command):
    path = tmp_path / "c6.yaml"
    path.write_text("policy_options: [1, 2]\n")
    err = _fails([command, "--config", str(path), "--policy-option", "seed=1", "--out", str(tmp_path / "run")], capsys)
    assert f"{path}: policy_options: expected a mapping of policy settings such as" in err


@pytest.mark.parametrize(("command", "text", "expected"), [
    ("ladder", "ladder:\n  max_steps: 3\n", "setting 'max_steps' under 'ladder' is a grpo setting; put it under 'grpo:'"),
    ("ladder", "grpo:\n  depth: 3\n", "setting 'depth' under 'grpo' is a ladder setting; put it under 'ladder:'"),
    ("ttrl", "ttrl:\n  temperature: 0.5\n", "setting 'temperature' under 'ttrl' is a grpo setting; put it under 'grpo:'"),
    ("train", "grpo:\n  task: integration\n", "setting 'task' under 'grpo' is a job setting; put it at top level"),
    ("train", "grpo: [1, 2]\n", "section 'grpo' must be a mapping of settings"),
])
def test_a_setting_under_the_wrong_section_says_where_it_belongs(tmp_path, capsys, command, text, expected):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    assert f"{path}: {expected}" in _fails([command, "--config", str(path)], capsys)


# -- F6: bad policy options and devices -----------------------------------------------------------
@pytest.mark.parametrize(("policy", "option", "expected"), [
    ("tiny:random", "d_model=abc", "tiny policy: d_model='abc': expected an integer"),
    ("tiny:random", "n_layers=2.5", "tiny policy: n_layers=2.5: expected an integer"),
    ("tiny:random", "dropout=x", "tiny policy: dropout='x': expected a finite number"),
    ("tiny:random", "dropout=2", "expected 0 <= dropout < 1"),
    ("tiny:random", "seed=x", "tiny policy: seed='x': expected an integer"),
    ("tiny", "device=bogus", "tiny policy: device 'bogus' is not a device name"),
    ("tiny", "device=meta", "tiny policy: device 'meta': expected cpu, cuda, cuda:N or mps"),
    ("tiny:random", "device=cuda", "tiny policy: device 'cuda' asked for, but torch sees no CUDA GPU"),
    ("tiny", "device=cuda:0", "tiny policy: device 'cuda:0' asked for, but torch sees no CUDA GPU"),
])
def test_bad_tiny_policy_options_are_one_line_errors(capsys, monkeypatch, policy, option, expected):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert expected in _fails([*GENERATE, "--policy", policy, "--policy-option", option], capsys)


@pytest.mark.parametrize("policy", ["tiny", "tiny:random"])
def test_an_unknown_tiny_option_is_called_unknown_and_the_known_ones_listed(capsys, policy):
    err = _fails([*GENERATE, "--policy", policy, "--policy-option", "bogus=1"], capsys)
    assert "unknown setting 'bogus'" in err and "device, seed" in err and "d_model" in err
    assert "apply only" not in err
    # a real fresh-model setting on a checkpoint still says where it applies
    err = _fails([*GENERATE, "--policy", "tiny", "--policy-option", "d_model=64"], capsys)
    assert "apply only to a fresh model" in err


@pytest.mark.parametrize(("device", "expected"), [
    ("bogus", "is not a device name"), (5, "expected cpu, cuda"), ("cuda", "torch sees no CUDA GPU"),
    ("cuda:1", "torch sees no CUDA GPU"), ("xpu", "expected cpu, cuda"),
])
def test_the_hf_policy_checks_its_device_the_same_way(monkeypatch, device, expected):
    import torch

    from rungs.policies.hf import _pick_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(UserError, match=f"hf policy: device .*{expected}"):
        _pick_device(device)
    assert _pick_device("cpu").type == "cpu"


# -- F10: NaN and infinite settings -----------------------------------------------------------------
def _refused_flag(argv, capsys) -> str:
    """The error line argparse prints for a flag whose value is refused (exit code 2, no traceback)."""
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err.strip().splitlines()[-1]


@pytest.mark.parametrize(("flag", "value", "expected"), [
    ("--temperature", "nan", "argument --temperature: expected a finite number, got 'nan'"),
    ("--temperature", "inf", "argument --temperature: expected a finite number, got 'inf'"),
    ("--top-p", "nan", "argument --top-p: expected a finite number, got 'nan'"),
    ("--timeout", "inf", "argument --timeout: expected a finite number, got 'inf'"),
])
def test_eval_refuses_nan_and_infinite_flags(tmp_path, capsys, flag, value, expected):
    assert expected in _refused_flag(["eval", flag, value, "--out", str(tmp_path / "run")], capsys)


OUT_OF_RANGE_SAMPLING = [
    ("--temperature", "-1", "--temperature: expected a finite number >= 0, got -1"),
    ("--top-k", "-1", "--top-k: expected an integer >= 0"),
    ("--top-p", "0", "--top-p: expected a number in (0, 1]"),
    ("--max-new-tokens", "0", "--max-new-tokens: expected an integer in [1, 16777216] (tokens per completion), got 0"),
    # a huge budget is refused before a policy allocates for it or samples for hours
    ("--max-new-tokens", str(10**12), "--max-new-tokens: expected an integer in [1, 16777216] (tokens per completion), "
                                      "got 1000000000000"),
]


@pytest.mark.parametrize(("flag", "value", "expected"), OUT_OF_RANGE_SAMPLING)
def test_eval_refuses_out_of_range_sampling_settings(tmp_path, capsys, flag, value, expected):
    assert expected in _fails(["eval", flag, value, "--out", str(tmp_path / "run")], capsys)


@pytest.mark.parametrize(("flag", "value", "expected"), [*OUT_OF_RANGE_SAMPLING, ("--top-k", "-5", "got -5")])
def test_generate_refuses_the_sampling_settings_eval_refuses(capsys, flag, value, expected):
    """The same check as eval's (s35 M6: `generate --top-k -5` ran)."""
    assert expected in _fails([*GENERATE, flag, value], capsys)


def test_generate_seed_help_says_the_default_it_uses():
    """No --seed is seed 0, as in the other commands: the help said "default: none" (s35 M1)."""
    from rungs.cli import build_parser

    generate = build_parser()[0].commands["generate"]
    assert generate.parse_args(GENERATE[1:]).seed == 0
    assert "(default: 0)" in next(a.help for a in generate._actions if a.dest == "seed")


# Every command's float flags, whether declared by a config class or by hand (a verifier without a
# time limit, `--timeout inf`, is what the security rules forbid; NaN slips past `x < 0` checks).
@pytest.mark.parametrize("argv", [
    ["ladder", "--learning-rate", "nan"], ["ladder", "--band-fraction", "inf"], ["ladder", "--timeout", "inf"],
    ["ttrl", "--timeout", "inf"], ["ttt", "--learning-rate", "nan"], ["train", "--timeout", "inf"],
    ["train", "--learning-rate", "nan"], ["pretrain", "--lr", "inf"], ["verify", "--timeout", "nan"],
    ["generate", "--temperature", "inf"], ["sample-problems", "--difficulty", "nan"],
    ["serve", "--idle-timeout", "inf"], ["eval", "--temperature", "nan"],
])
def test_every_float_flag_refuses_nan_and_infinity(tmp_path, capsys, argv):
    line = _refused_flag(argv, capsys)
    assert f"argument {argv[1]}" in line and "expected" in line and repr(argv[2]) in line, line


@pytest.mark.parametrize(("command", "text", "setting"), [
    ("ladder", "ladder:\n  band_fraction: .nan\n", "band_fraction"),
    ("ladder", "grpo:\n  learning_rate: .inf\n", "learning_rate"),
    ("ladder", "ladder:\n  timeout: .inf\n", "timeout"),
    ("pretrain", "lr: .nan\n", "lr"),
])
def test_yaml_nan_and_infinity_are_refused_naming_the_file(tmp_path, capsys, command, text, setting):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    err = _fails([command, "--config", str(path), "--out", str(tmp_path / "run")], capsys)
    assert str(path) in err and setting in err and "finite" in err, err


@pytest.mark.parametrize(("build", "message"), [
    (lambda: __import__("rungs.pipelines.ladder", fromlist=["x"]).LadderConfig(band_fraction=math.nan),
     "LadderConfig.band_fraction = nan: expected a finite number"),
    (lambda: __import__("rungs.pipelines.ladder", fromlist=["x"]).LadderConfig(timeout=math.inf),
     "LadderConfig.timeout = inf: expected a finite number"),
    (lambda: __import__("rungs.pipelines.ttt", fromlist=["x"]).TTTConfig(learning_rate=math.nan),
     "TTTConfig.learning_rate = nan: expected a finite number"),
    (lambda: __import__("rungs.train.sft", fromlist=["x"]).SFTConfig(mixed_fraction=math.nan),
     "SFTConfig.mixed_fraction = nan: expected a finite number"),
    (lambda: __import__("rungs.train.sft", fromlist=["x"]).SFTConfig(report_difficulties=[1.0, math.inf]),
     "SFTConfig.report_difficulties = [1.0, inf]: expected a finite number"),
])
def test_configs_built_in_python_refuse_nan_and_infinity(build, message):
    with pytest.raises(UserError) as exc:
        build()
    assert str(exc.value) == message


def test_a_job_timeout_must_be_finite():
    from rungs.pipelines.job import check_job_settings

    with pytest.raises(UserError, match="--timeout inf: expected seconds > 0"):
        check_job_settings(None, None, math.inf, "process")
    check_job_settings(None, None, 0.5, "process")  # a finite one passes


@pytest.mark.parametrize("name", ["temperature", "beta", "max_grad_norm", "epsilon_high", "format_reward_weight",
                                  "num_train_epochs", "adam_epsilon", "weight_decay", "learning_rate"])
@pytest.mark.parametrize("value", [math.inf, math.nan])
def test_grpo_config_refuses_non_finite_numbers(name, value):
    from rungs.train.grpo_config import GRPOConfig

    with pytest.raises(UserError, match=f"GRPOConfig.{name} = .*: expected a"):
        GRPOConfig(**{name: value})


def test_train_refuses_an_infinite_temperature_from_the_command_line(tmp_path, capsys):
    line = _refused_flag(["train", "--task", "integration", "--problems", "builtin:integration-easy", "--temperature",
                          "inf", "--out", str(tmp_path / "run")], capsys)
    assert "argument --temperature: expected a finite number, got 'inf'" in line


@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_sampling_params_refuse_non_finite_temperatures(value):
    from rungs.policies.base import SamplingParams

    with pytest.raises(ValueError, match="finite"):
        SamplingParams(temperature=value)
    with pytest.raises(ValueError, match="finite"):
        SamplingParams(first_token_temperature=value)


def test_train_job_settings_are_one_dataclass_for_flags_yaml_and_python(tmp_path, capsys):
    """`rungs train`'s job settings are TrainJobConfig's fields: every field is a flag (but the run
    directory, --out), YAML reads the same keys with their declared types, and the config checks
    itself when built in Python (a JobConfig like every other job's)."""
    import argparse
    import dataclasses

    from rungs.commands import train

    parser = argparse.ArgumentParser()
    train.add_arguments(parser)
    dests = {a.dest for a in parser._actions}
    fields = {f.name for f in dataclasses.fields(train.TrainJobConfig)}
    assert fields - {"out", "policy_options"} <= dests and "policy_option" in dests
    assert set(train.JOB_KEYS) == fields - {"out"}
    path = tmp_path / "t.yaml"
    path.write_text("task: countdown\nproblems: builtin:countdown-easy\neval_problems: builtin:countdown-dev\neval_limit: '3'\ntimeout: 2\n")
    job, _config, _out, _resuming = train.resolve(parser.parse_args(["--config", str(path), "--eval-limit", "4"]))
    assert (job["task"], job["eval_limit"], job["timeout"]) == ("countdown", 4, 2.0)  # the flag wins over YAML
    path.write_text("task: countdown\nproblems: builtin:countdown-easy\neval_problems: builtin:countdown-dev\neval_limit: 0\n")
    with pytest.raises(UserError, match=r"--eval-limit 0: expected an integer >= 1"):
        train.resolve(parser.parse_args(["--config", str(path)]))
    with pytest.raises(UserError, match=r"--eval-limit -2: expected an integer >= 1"):
        train.TrainJobConfig(task="countdown", problems="p.jsonl", eval_limit=-2)


@pytest.mark.parametrize("argv, message", [
    (["ladder", "--loss-type", "grp"], "GRPOConfig.loss_type = 'grp': expected one of grpo, bnpo, dapo, dr_grpo; did you mean 'grpo'?"),
    (["ladder", "--curriculum", "solve-rate"], "did you mean 'solve_rate'?"),
    (["ttrl", "--mode", "vot"], "--mode 'vot': expected one of variants, vote; did you mean 'vote'?"),
])
def test_a_mistyped_choice_gets_the_nearest_one_suggested(argv, message, capsys):
    from rungs.cli import main

    assert main([*argv, "--task", "integration", "--max-steps" if argv[0] == "ladder" else "--steps", "1"]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


# ---- from an outside check of run integrity -------------------------------------------------------


def _problems(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"id": "a", "prompt": "numbers: 2 3 4; target: 14", "answer": "2+3*4"}\n'
                    '{"id": "b", "prompt": "numbers: 2 5; target: 7", "answer": "2+5"}\n')
    return str(path)


def test_eval_resume_refuses_another_reasoning_delimiter(tmp_path, capsys):
    out = str(tmp_path / "e")
    assert main(["eval", "--task", "countdown", "--problems", _problems(tmp_path), "--n", "2", "--seeds", "1",
                 "--no-progress", "--no-plot", "--out", out]) == 0
    message = _fails(["eval", "--resume", "--out", out, "--reasoning-delimiters", "</think>"], capsys)
    assert "reasoning_delimiters" in message and "drawn or scored" in message


def test_a_resume_keeps_the_policy_options_that_make_the_model(tmp_path, capsys):
    out = str(tmp_path / "t")
    assert main(["train", "--task", "countdown", "--problems", _problems(tmp_path), "--policy", "tiny:random",
                 "--policy-option", "d_model=32", "--max-steps", "1", "--save-steps", "1", "--num-generations", "2",
                 "--prompts-per-step", "1", "--eval-problems", "none", "--no-progress", "--out", out]) == 0
    message = _fails(["train", "--resume", out, "--max-steps", "2", "--policy-option", "d_model=64"], capsys)
    assert "d_model=32" in message and "d_model=64" in message and "keeps its model" in message
    message = _fails(["train", "--resume", out, "--max-steps", "2", "--policy-option", "seed=7"], capsys)
    assert "no policy option seed" in message
    assert main(["train", "--resume", out, "--max-steps", "2", "--policy-option", "device=cpu", "--no-progress"]) == 0


@pytest.mark.parametrize("command", [["ladder", "--limit", "1", "--max-steps", "1"], ["ttrl", "--limit", "1", "--steps", "1"]])
def test_a_policy_seed_option_points_to_policy_seed(tmp_path, capsys, command):
    message = _fails([*command, "--policy-option", "seed=5", "--out", str(tmp_path / "r")], capsys)
    assert "--policy-seed" in message


@pytest.mark.parametrize(("extra", "expected"), [
    (["--eval-limit", "0"], "--eval-limit 0: expected an integer >= 1"),
    (["--eval-limit", "-3"], "--eval-limit -3: expected an integer >= 1"),
])
def test_ladder_checks_its_eval_limit(tmp_path, capsys, extra, expected):
    message = _fails(["ladder", "--task", "countdown", "--limit", "1", "--max-steps", "1", *extra,
                      "--out", str(tmp_path / "l")], capsys)
    assert expected in message


def test_an_eval_limit_without_held_out_problems_is_named_unused(capsys):
    from rungs.pipelines.ladder import LadderConfig

    # math has no dev set (eval_problems "auto" is None): a stored run like this still resumes
    LadderConfig(task="math", problems="builtin:countdown-easy", eval_limit=5)
    assert "--eval-limit 5 is unused" in capsys.readouterr().err


@pytest.mark.parametrize(("command", "key"), [(["demo", "--limit", "1"], "seed"), (["ladder", "--limit", "1"], "task"),
                                              (["ttrl", "--limit", "1"], "task")])
def test_options_a_job_sets_itself_are_refused_as_policy_options(tmp_path, capsys, command, key):
    message = _fails([*command, "--policy-option", f"{key}=x", "--out", str(tmp_path / "r")], capsys)
    assert f"--policy-option {key}=" in message and "use that instead" in message


def test_a_failed_start_leaves_the_directory_usable_again(tmp_path):
    from rungs.runs import RunDir

    out = tmp_path / "d"
    out.mkdir()
    run = RunDir.create(out, {"job": "eval"})
    (out / "samples.jsonl").write_text("")  # opened by the job, nothing recorded before it failed
    assert run.discard_if_unused()
    RunDir.create(out, {"job": "eval"}).release()  # the retry is not refused
    (tmp_path / "e").mkdir()
    (tmp_path / "e" / "samples.jsonl").write_text("")  # an empty log left by anything: not an earlier run
    run = RunDir.create(tmp_path / "e", {"job": "eval"})
    run.append_rows("samples.jsonl", [{"problem": 1}])  # this run's progress now: never discarded as unused
    assert not run.discard_if_unused() and (tmp_path / "e" / "config.yaml").exists()
    run.release()


def test_an_out_path_that_cannot_be_made_is_one_line(tmp_path, capsys):
    (tmp_path / "afile").write_text("")
    message = _fails(["eval", "--task", "countdown", "--problems", _problems(tmp_path), "--no-progress",
                      "--out", str(tmp_path / "afile" / "sub")], capsys)
    assert "Not a directory" in message
    message = _fails(["eval", "--task", "countdown", "--problems", _problems(tmp_path), "--no-progress",
                      "--out", str(tmp_path / ("x" * 300))], capsys)
    assert "File name too long" in message


def test_an_empty_variants_file_is_refused(tmp_path, capsys):
    (tmp_path / "v.jsonl").write_text("")
    message = _fails(["ladder", "--task", "countdown", "--limit", "1", "--max-steps", "1",
                      "--variants", str(tmp_path / "v.jsonl"), "--out", str(tmp_path / "l")], capsys)
    assert "has no variant rows" in message


def test_checkpoint_folders_are_readable_by_others(tmp_path):
    import stat

    from rungs.runs import write_dir_atomically

    final = write_dir_atomically(tmp_path / "final", lambda d: (d / "x.txt").write_text("x"))
    (tmp_path / "made").mkdir()
    assert stat.S_IMODE(final.stat().st_mode) == stat.S_IMODE((tmp_path / "made").stat().st_mode)  # as mkdir's


def test_a_malformed_line_costs_that_row_in_a_job(tmp_path):
    from rungs.data import load_task_problems
    from rungs.tasks import get_task

    path = tmp_path / "p.jsonl"
    path.write_bytes(b'{"id": "a", "prompt": "numbers: 2 3 4; target: 14"}\n{"id": "b", broken\n\xff\xfe\n'
                     b'{"id": "c", "prompt": "numbers: 2 5; target: 7"}\n')
    warned: list[str] = []
    problems = load_task_problems(str(path), get_task("countdown"), warn=warned.append)
    assert [p.id for p in problems] == ["a", "c"]
    assert any(":2: skipped: malformed JSON" in w for w in warned) and any(":3: skipped: not UTF-8" in w for w in warned)


def test_a_fresh_run_refuses_a_directory_with_another_runs_logs(tmp_path, capsys):
    out = tmp_path / "o"
    out.mkdir()
    (out / "rollouts.jsonl").write_text('{"step": 1}\n')
    message = _fails(["eval", "--task", "countdown", "--problems", _problems(tmp_path), "--no-progress",
                      "--out", str(out)], capsys)
    assert "holds the logs of an earlier run (rollouts.jsonl)" in message
    assert (out / "rollouts.jsonl").read_text() == '{"step": 1}\n'  # untouched


def test_the_openai_policy_without_its_package_is_one_line(monkeypatch, capsys):
    import sys

    monkeypatch.setitem(sys.modules, "openai", None)  # as if not installed: `import openai` raises ImportError
    message = _fails(["eval", "--policy", "openai:http://127.0.0.1:1/v1", "--model", "x", "--limit", "1",
                      "--strategy", "greedy", "--no-progress"], capsys)
    assert "pip install 'rungs[openai]'" in message


@pytest.mark.parametrize(("command", "kind"), [(["eval", "--limit", "1"], "easy"), (["ttrl", "--steps", "1"], "hard"),
                                               (["ladder", "--max-steps", "1"], "train")])
def test_a_task_without_built_in_problems_asks_for_a_file(tmp_path, capsys, command, kind):
    message = _fails([*command, "--task", "math", "--out", str(tmp_path / "r")], capsys)
    assert f"task 'math' has no built-in {kind} set" in message and "--problems FILE" in message
