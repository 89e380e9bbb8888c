"""`rungs verify`: one answer (human and JSON output), a JSONL file of mixed rows, and bad input."""

from __future__ import annotations

import json

import pytest

from rungs.cli import main

P24 = "numbers: 1 3 4 6; target: 24"


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["verify", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_single_answer_right_and_wrong(capsys):
    code, out, _ = run_cli(capsys, "--task", "countdown", "--problem", P24, "--answer", "6/(1-3/4)")
    assert code == 0
    assert out == "correct (reward 1.0): 6 / (1 - 3 / 4) = 24\n"
    code, out, _ = run_cli(capsys, "--task", "countdown", "--problem", P24, "--answer", "6*4*1*3", "--json")
    assert code == 0
    row = json.loads(out)
    assert row["reward"] == 0.0 and row["status"] == "wrong" and row["answer"] == "6*4*1*3"
    assert row["id"] is None  # a single answer has no id (it used to read "--problem")
    assert "72" in row["detail"]
    assert out.count("\n") == 1


def test_single_completion_and_no_answer(capsys):
    argv = ["--task", "countdown", "--problem", P24, "--json", "--completion"]
    code, out, _ = run_cli(capsys, *argv, "so <answer>6 / (1 - 3/4)</answer>")
    assert code == 0 and json.loads(out)["status"] == "correct"
    code, out, _ = run_cli(capsys, *argv, "I give up")
    assert code == 0 and json.loads(out)["status"] == "no_answer"


def test_file_of_mixed_rows_in_order(tmp_path, capsys):
    marker = tmp_path / "MARKER"
    rows = [
        {"id": "right", "problem": P24, "answer": "6/(1-3/4)"},
        {"id": "wrong", "problem": P24, "answer": "1 + 3 + 4 + 6"},
        {"id": "tinyzero", "question": "reach 98", "nums": [44, 19, 35], "target": 98,
         "completion": "think... <answer>44 + 19 + 35</answer>"},
        {"id": "hostile", "problem": P24, "completion": f"<answer>__import__('os').system('touch {marker}')</answer>"},
        {"id": "deep", "problem": P24, "answer": "(" * 5000 + "1" + ")" * 5000},
        {"problem": P24, "completion": "no tags at all"},
    ]
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    code, out, err = run_cli(capsys, "--task", "countdown", str(path), "--timeout", "5", "--workers", "2")
    assert code == 0
    lines = [json.loads(line) for line in out.splitlines()]
    assert [r["id"] for r in lines] == ["right", "wrong", "tinyzero", "hostile", "deep", "p5"]
    assert [r["status"] for r in lines] == ["correct", "wrong", "correct", "rejected", "rejected", "no_answer"]
    assert [r["reward"] for r in lines] == [1.0, 0.0, 1.0, 0.0, 0.0, 0.0]
    assert not marker.exists()
    assert "6 rows: 2 correct" in err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"problem": "numbers: 1 2; target: 3", "answer": "1+2"}\n{"problem": "x"\n', "rows.jsonl:2: malformed JSON"),
        ("", "rows.jsonl: contains no rows"),
    ],
)
def test_bad_file_exits_2_with_one_line(tmp_path, capsys, content, message):
    path = tmp_path / "rows.jsonl"
    path.write_text(content)
    code, out, err = run_cli(capsys, "--task", "countdown", str(path))
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and message in err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"answer": "1+2"}\n', "rows.jsonl:2: no problem text"),
        ('{"problem": "what is love", "answer": "1+2"}\n', "rows.jsonl:2: problem 'p1': not a countdown problem"),
    ],
)
def test_strict_stops_at_the_first_bad_problem(tmp_path, capsys, content, message):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"problem": "numbers: 1 2; target: 3", "answer": "1+2"}\n' + content)
    code, out, err = run_cli(capsys, "--task", "countdown", str(path), "--strict")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and message in err


def test_row_faults_are_row_verdicts_and_ids_may_repeat(tmp_path, capsys):
    """A rollout dump repeats ids; a non-string completion, a non-object row or a row with nothing
    to check is that row's verdict, not the end of the file (exit 2 is for a file that is not JSONL)."""
    rows = [
        {"id": "q1", "problem": P24, "completion": "<answer>6/(1-3/4)</answer>"},
        {"id": "q1", "problem": P24, "completion": "<answer>1+3+4+6</answer>"},
        {"id": 5, "problem": P24, "answer": "6/(1-3/4)"},
        {"id": "5", "problem": P24, "completion": 123},
        ["not", "an", "object"],
        {"id": "nothing", "problem": P24},
        {"id": "q1", "problem": P24, "answer": "6/(1-3/4)"},
    ]
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    code, out, err = run_cli(capsys, "--task", "countdown", str(path), "--workers", "1")
    assert code == 0, err
    got = [json.loads(line) for line in out.splitlines()]
    assert [(r["id"], r["status"]) for r in got] == [
        ("q1", "correct"), ("q1", "wrong"), ("5", "correct"), ("5", "invalid_problem"), ("p4", "invalid_problem"),
        ("nothing", "no_answer"), ("q1", "correct")]
    assert got[3]["detail"] == f"{path}:4: field 'completion' must be a string (raw model text), got int"
    assert got[4]["detail"].startswith(f"{path}:5: expected a JSON object, got list")
    assert got[5]["detail"].startswith(f"{path}:6: nothing to check")
    assert "7 rows: 3 correct" in err
    code, out, err = run_cli(capsys, "--task", "countdown", str(path), "--strict")
    assert code == 2 and out == "" and err.count("\n") == 1 and f"{path}:4: field 'completion'" in err


def test_a_bad_problem_is_its_own_verdict_and_the_rest_continue(tmp_path, capsys):
    """Issue 9 item 10: a problem outside the grammar (or missing) no longer aborts the file."""
    _skip_unless_task("integration")
    rows = [
        {"id": "ok", "problem": "integrate(2*x, x)", "answer": "x**2"},
        {"id": "expand", "problem": "integrate((x+1)**2, x).expand()", "answer": "x**3/3"},
        {"id": "no-text", "answer": "x"},
        {"id": "ok2", "problem": "integrate(3*x**2, x)", "answer": "x**3 + C"},
    ]
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    code, out, err = run_cli(capsys, "--task", "integration", str(path), "--workers", "1")
    assert code == 0, err
    got = [json.loads(line) for line in out.splitlines()]
    assert [(r["id"], r["status"], r["reward"]) for r in got] == [
        ("ok", "correct", 1.0), ("expand", "invalid_problem", 0.0), ("no-text", "invalid_problem", 0.0),
        ("ok2", "correct", 1.0)]
    assert "rows.jsonl:2" in got[1]["detail"] and "rows.jsonl:3" in got[2]["detail"]
    assert "invalid_problem 2" in err
    code, _, err = run_cli(capsys, "--task", "integration", str(path), "--strict")
    assert code == 2 and err.count("\n") == 1 and "rows.jsonl:2" in err


def test_null_answer_bom_and_huge_answers(tmp_path, capsys):
    """Issue 13 item 8: a null answer is that row's verdict, a BOM is skipped, echoes are clipped."""
    huge = "1" * 3_000_000
    rows = [
        {"id": "null", "problem": P24, "answer": None},
        {"id": "right", "problem": P24, "answer": "6/(1-3/4)"},
        {"id": "huge", "problem": P24, "answer": huge},
    ]
    path = tmp_path / "rows.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + "".join(json.dumps(r) + "\n" for r in rows).encode())
    code, out, err = run_cli(capsys, "--task", "countdown", str(path), "--workers", "1")
    assert code == 0, err
    got = [json.loads(line) for line in out.splitlines()]
    assert [(r["id"], r["status"]) for r in got] == [("null", "no_answer"), ("right", "correct"), ("huge", "rejected")]
    assert len(out) < 10_000 and "truncated: 3,000,000 characters" in got[2]["answer"]


def test_missing_file_and_unknown_task(tmp_path, capsys):
    code, _, err = run_cli(capsys, "--task", "countdown", str(tmp_path / "missing.jsonl"))
    assert code == 2 and err.count("\n") == 1 and "missing.jsonl: no such file" in err
    code, _, err = run_cli(capsys, "--task", "countdwn", "--problem", P24, "--answer", "1")
    assert code == 2 and err.count("\n") == 1
    assert "unknown task 'countdwn'" in err and "did you mean 'countdown'" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--problem", P24], "needs --answer"),
        ([], "nothing to check"),
        (["--answer", "1"], "nothing to check"),
        (["rows.jsonl", "--problem", P24, "--answer", "1"], "not both"),
        (["--problem", P24, "--answer", "1", "--timeout", "0"], "--timeout"),
        (["--problem", "hello", "--answer", "1"], "not a countdown problem"),
    ],
)
def test_bad_arguments_exit_2(capsys, argv, message):
    code, _, err = run_cli(capsys, "--task", "countdown", *argv)
    assert code == 2 and err.count("\n") == 1 and message in err


def test_module_entry_point(tmp_path):
    """The documented way to run it: a subprocess with exit status 2 and one stderr line."""
    import subprocess
    import sys

    bad = tmp_path / "rows.jsonl"
    bad.write_text('{"problem": "numbers: 1 2; target: 3", "answer": "1+2"}\n{oops}\n')
    proc = subprocess.run([sys.executable, "-m", "rungs.cli", "verify", "--task", "countdown", str(bad)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().count("\n") == 0 and f"{bad}:2: malformed JSON" in proc.stderr


def _skip_unless_task(name: str) -> None:
    from rungs.tasks import TASKS

    try:
        TASKS.get(name)
    except ModuleNotFoundError as err:
        pytest.skip(f"task {name!r} is not implemented yet ({err.name})")


def test_other_tasks_through_the_same_command(tmp_path, capsys):
    _skip_unless_task("integration")
    argv = ["--task", "integration", "--problem", "integrate(3*x**2, x)", "--json"]
    code, out, _ = run_cli(capsys, *argv, "--answer", "x**3 + C")
    assert code == 0 and json.loads(out)["status"] == "correct"
    code, out, _ = run_cli(capsys, *argv, "--completion", "<answer>Integral(3*x**2, x)</answer>")
    assert code == 0 and json.loads(out)["status"] == "rejected"


def test_math_needs_a_reference_answer(tmp_path, capsys):
    _skip_unless_task("math")
    argv = ["--task", "math", "--problem", "What is 1 + 1?"]
    code, out, _ = run_cli(capsys, *argv, "--gold", "2", "--answer", "2")
    assert code == 0 and out.startswith("correct (reward 1.0)")
    code, _, err = run_cli(capsys, *argv, "--answer", "2")
    assert code == 2 and "--gold" in err
    path = tmp_path / "rows.jsonl"
    path.write_text(
        json.dumps({"problem": "1+1?", "gold": "2", "answer": "3"}) + "\n"
        + json.dumps({"problem": "1+1?", "answer": "2", "completion": "so \\boxed{2}"}) + "\n"
    )
    code, out, _ = run_cli(capsys, "--task", "math", str(path))
    assert code == 0 and [json.loads(line)["status"] for line in out.splitlines()] == ["wrong", "correct"]
    path.write_text(json.dumps({"problem": "1+1?", "answer": "2"}) + "\n")
    code, _, err = run_cli(capsys, "--task", "math", str(path))
    assert code == 2 and "rows.jsonl:1" in err and "'gold'" in err


def test_file_dash_reads_standard_input(monkeypatch, capsys):
    import io

    rows = [{"id": "a", "problem": P24, "answer": "6/(1-3/4)"}, {"id": "b", "problem": P24, "answer": "6+4+1+3"}]
    stdin = io.TextIOWrapper(io.BytesIO("".join(json.dumps(r) + "\n" for r in rows).encode()))
    monkeypatch.setattr("sys.stdin", stdin)
    code, out, err = run_cli(capsys, "--task", "countdown", "-", "--workers", "1")
    assert code == 0
    assert [(r["id"], r["status"]) for r in map(json.loads, out.splitlines())] == [("a", "correct"), ("b", "wrong")]
    assert "2 rows: 1 correct" in err


def test_file_dash_names_stdin_in_errors(monkeypatch, capsys):
    import io

    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b'{"problem": "x", "answer": "1"}\n{"bad\n')))
    code, _, err = run_cli(capsys, "--task", "countdown", "-")
    assert code == 2
    assert "<stdin>:2: malformed JSON" in err and "Traceback" not in err
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"")))
    code, _, err = run_cli(capsys, "--task", "countdown", "-")
    assert code == 2 and "<stdin>: contains no rows" in err


def test_a_file_named_dash_is_read_as_dot_slash_dash(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "-").write_text(json.dumps({"id": "f", "problem": P24, "answer": "6/(1-3/4)"}) + "\n")
    code, out, _ = run_cli(capsys, "--task", "countdown", "./-", "--workers", "1")
    assert code == 0 and json.loads(out)["id"] == "f"


def test_a_gold_that_spells_a_missing_value_costs_that_row(tmp_path, capsys):
    path = tmp_path / "g.jsonl"
    path.write_text('{"problem": "q", "answer": "12", "gold": "12"}\n{"problem": "q", "answer": "12", "gold": "nan"}\n'
                    '{"problem": "q", "answer": "12", "gold": NaN}\n')
    code, out, err = run_cli(capsys, "--task", "math", str(path), "--workers", "1")
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["status"] for r in rows] == ["correct", "unlabelled", "unlabelled"]
    assert f"{path}:2: field 'gold' is 'nan'" in rows[1]["detail"] and "field 'answer'" not in err
    code, _, err = run_cli(capsys, "--task", "math", str(path), "--strict")
    assert code == 2 and f"{path}:2: field 'gold'" in err
    path.write_text('{"problem": "q", "answer": "12"}\n')  # no reference at all: the file is refused
    code, _, err = run_cli(capsys, "--task", "math", str(path))
    assert code == 2 and "needs a reference answer" in err
