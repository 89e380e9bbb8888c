"""Every bench script refuses a bad count or name in one argparse line, before it measures anything (C4, M1)."""

from __future__ import annotations

import pytest

CASES = [
    ("precondition", "main", ["--sets", "foo"], "argument --sets: 'foo': expected a comma-separated list of hard"),
    ("precondition", "main", ["--n", "0"], "argument --n: '0': expected an integer >= 1"),
    ("precondition", "main", ["--n", "-3"], "argument --n: '-3': expected an integer >= 1"),
    ("rewards", "parse_args", ["--seeds", "0"], "argument --seeds: '0': expected an integer >= 1"),
    ("rewards", "parse_args", ["--steps", "0"], "argument --steps: '0': expected an integer >= 1"),
    ("verify", "main", ["--workers", "0"], "argument --workers: '0': expected an integer >= 1"),
    ("verify", "main", ["--limit", "0"], "argument --limit: '0': expected an integer >= 1"),
    ("verify", "main", ["--limit", "-2"], "argument --limit: '-2': expected an integer >= 1"),
    ("verify", "main", ["--executor", "foo"], "argument --executor: 'foo': expected process, ray or ray:ADDRESS"),
    ("generate", "main", ["--threads", "-1"], "argument --threads: '-1': expected an integer >= 1"),
    ("generate", "main", ["--repeats", "0"], "argument --repeats: '0': expected an integer >= 1"),
    ("real_model", "main", ["--samples", "-1"], "argument --samples: '-1': expected an integer >= 1"),
    ("real_model", "main", ["--limit", "0"], "argument --limit: '0': expected an integer >= 1"),
    ("contention", "main", ["--modes", "foo"], "argument --modes: 'foo': expected a comma-separated list of old, new"),
    ("reliability", "main", ["--kills", "99"], "argument --kills: 99: there are 8 kill points (expected 1 to 8)"),
    ("reliability", "main", ["--kills", "-1"], "argument --kills: '-1': expected an integer >= 1"),
    ("trl_step", "parse_args", ["--prompts", "0", "--quick"], "argument --prompts: '0': expected an integer >= 1"),
]


@pytest.mark.parametrize(("script", "entry", "flags", "said"), CASES, ids=[f"{c[0]} {' '.join(c[2])}" for c in CASES])
def test_a_bad_value_is_one_argparse_line(load_bench, capsys, script, entry, flags, said):
    module = load_bench(script)
    with pytest.raises(SystemExit) as raised:
        getattr(module, entry)(flags)
    assert raised.value.code == 2
    err = capsys.readouterr().err
    assert said in err and "Traceback" not in err


def test_quick_keeps_the_sizes_given_and_says_so(load_bench, capsys):
    trl_step = load_bench("trl_step")
    args = trl_step.parse_args(["--quick", "--prompts", "3", "--micro", "3"])
    assert (args.prompts, args.micro, args.hidden, args.steps) == (3, 3, 64, 2)  # the rest: --quick's sizes
    assert "trl_step: --quick keeps the given --prompts 3, --micro 3" in capsys.readouterr().err
    args = trl_step.parse_args(["--quick"])
    assert (args.prompts, args.hidden) == (2, 64) and capsys.readouterr().err == ""


def test_verify_makes_the_json_folder_before_measuring(load_bench, tmp_path):
    verify = load_bench("verify")
    target = tmp_path / "nodir" / "v.json"
    assert verify.main(["--data", str(tmp_path / "absent.jsonl"), "--json", str(target)]) == 2  # stops before measuring
    assert target.parent.is_dir()


HELP = [("learning", "parse_args", ["seeds per suite (default 3)", "LADDER's variant-tree depth (default 2)"]),
        ("long_budget", "parse_args", ["seeds per arm (default 3)", "(default bench/results-400)"]),
        ("arc", "parse_args", ["torch threads (default 1)", "default builtin:arc1-evaluation"]),
        ("rewards", "parse_args", ["seeds per arm (default 3)", "verifier workers (default 1)"]),
        ("precondition", "main", ["samples per problem (default 64)", "verifier workers (default 2)"]),
        ("trl_step", "parse_args", ["model architecture (default qwen2)", "transformer layers (default 4)"])]


@pytest.mark.parametrize(("script", "entry", "texts"), HELP, ids=[h[0] for h in HELP])
def test_help_describes_the_flags_and_their_defaults(load_bench, capsys, script, entry, texts):
    with pytest.raises(SystemExit):
        getattr(load_bench(script), entry)(["--help"])
    printed = " ".join(capsys.readouterr().out.split())  # argparse wraps help text
    for text in texts:
        assert text in printed
