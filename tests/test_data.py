"""Problem files: JSONL/JSON/parquet/HF dataset directories, field aliases, ids, and bad rows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rungs.data import iter_jsonl, load_problems, row_to_problem, write_jsonl
from rungs.errors import UserError


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_jsonl_with_aliases_and_extra_columns(tmp_path):
    path = write_lines(
        tmp_path / "p.jsonl",
        [
            json.dumps({"id": "a", "problem": "1+1", "answer": "2"}),
            json.dumps({"id": "b", "question": "2+2", "solution": "4", "source": "gsm"}),
            "",  # blank lines are skipped
            json.dumps({"id": "c", "prompt": "3+3", "ground_truth": 6, "meta": {"level": 2}, "nums": [1, 2]}),
            json.dumps({"id": 7, "problem": "unlabelled"}),
        ],
    )
    problems = load_problems(path)
    assert [p.id for p in problems] == ["a", "b", "c", "7"]
    assert [p.text for p in problems] == ["1+1", "2+2", "3+3", "unlabelled"]
    assert [p.answer for p in problems] == ["2", "4", "6", None]  # a numeric answer becomes text
    assert problems[1].meta == {"source": "gsm"}  # unknown columns are kept in meta
    assert problems[2].meta == {"level": 2, "nums": [1, 2]}
    assert load_problems(path, limit=2) == problems[:2]


def test_ids_are_generated_when_absent(tmp_path):
    path = write_lines(tmp_path / "p.jsonl", [json.dumps({"problem": t}) for t in ("a", "b", "c")])
    problems = load_problems(path)
    assert [p.id for p in problems] == ["p0", "p1", "p2"]


def test_duplicate_ids_are_an_error(tmp_path):
    path = write_lines(tmp_path / "p.jsonl", [json.dumps({"id": "x", "problem": t}) for t in ("a", "b")])
    with pytest.raises(UserError, match=r"p\.jsonl:2: duplicate problem id 'x'"):
        load_problems(path)


@pytest.mark.parametrize(
    ("lines", "pattern"),
    [
        (['{"problem": "a"}', '{"problem": "b"', '{"problem": "c"}'], r"p\.jsonl:2: malformed JSON"),
        (['{"problem": "a"}', '{"problem": "numbers: 3 4; target: 7"'], r"p\.jsonl:2: malformed JSON \(.* column 38\)"),
        (['{"problem": "a"}', "", '{"answer": "3"}'], r"p\.jsonl:3: no problem text"),
        (['{"problem": ""}'], r"p\.jsonl:1: no problem text"),
        (['{"messages": [{"role": "user", "content": "1+1?"}]}'],
         r"p\.jsonl:1: no problem text: .*read from 'prompt' .*not from 'messages'"),
        (['["a list"]'], r"p\.jsonl:1: expected a JSON object"),
        (['{"problem": 5}'], r"p\.jsonl:1: field 'problem' must be a string"),
        (['{"problem": "a", "meta": [1]}'], r"p\.jsonl:1: field 'meta' must be an object"),
    ],
)
def test_bad_rows_name_the_file_and_line(tmp_path, lines, pattern):
    path = write_lines(tmp_path / "p.jsonl", lines)
    with pytest.raises(UserError, match=pattern) as info:
        load_problems(path)
    assert "\n" not in str(info.value)


def test_file_level_errors(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        load_problems(tmp_path / "missing.jsonl")
    with pytest.raises(UserError, match="contains no problems"):
        load_problems(write_lines(tmp_path / "empty.jsonl", ["", "  "]))
    (tmp_path / "latin1.json").write_bytes(b'[{"problem": "caf\xe9"}]')
    with pytest.raises(UserError, match=r"latin1\.json: not UTF-8"):
        load_problems(tmp_path / "latin1.json")
    (tmp_path / "p.csv").write_text("problem\n1+1\n")
    with pytest.raises(UserError, match="unsupported file type '.csv'"):
        load_problems(tmp_path / "p.csv")
    (tmp_path / "bin.jsonl").write_bytes(b'{"problem": "ok"}\n\xff\xfe{"problem": "x"}\n')
    with pytest.raises(UserError, match=r"bin\.jsonl:2: not UTF-8"):
        load_problems(tmp_path / "bin.jsonl")


def test_iter_jsonl_missing_file_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match=r"missing\.jsonl"):
        list(iter_jsonl(tmp_path / "missing.jsonl"))


def test_json_list_file(tmp_path):
    path = tmp_path / "p.json"
    path.write_text(json.dumps([{"question": "q1", "answer": "1"}, {"problem": "q2"}]))
    problems = load_problems(path)
    assert [(p.id, p.text, p.answer) for p in problems] == [("p0", "q1", "1"), ("p1", "q2", None)]
    path.write_text(json.dumps({"problem": "not a list"}, indent=1))  # one object over several lines
    with pytest.raises(UserError, match=r"p\.json: holds a single object over several lines; expected a JSON list "
                                        r"of objects, or JSON Lines \(one object per line\)"):
        load_problems(path)
    path.write_text('"a string"')
    with pytest.raises(UserError, match=r"p\.json: holds a string; expected a JSON list of objects, or JSON Lines"):
        load_problems(path)
    path.write_text('[{"problem": "a"},\n {"problem": }]')
    with pytest.raises(UserError, match=r"p\.json:2: malformed JSON"):
        load_problems(path)
    path.write_text(json.dumps([{"problem": "a"}, {"answer": "b"}]))
    with pytest.raises(UserError, match=r"p\.json row 2: no problem text"):
        load_problems(path)


def test_json_file_in_json_lines_loads_as_jsonl(tmp_path):
    """A .json file holding JSON Lines (what `datasets`' `Dataset.to_json` writes) is read as
    `load_dataset("json", ...)` reads it: one row per line, named FILE:LINE, a bad row costing that row."""
    from rungs.data import load_task_problems
    from rungs.tasks import get_task

    path = write_lines(tmp_path / "p.json", [json.dumps({"prompt": "1+1?", "solution": "2"}),
                                             json.dumps({"question": "2+2?", "answer": "4"})])
    problems = load_problems(path)
    assert [(p.id, p.text, p.answer) for p in problems] == [("p0", "1+1?", "2"), ("p1", "2+2?", "4")]
    # one row: a single object on one line
    write_lines(path, [json.dumps({"problem": "3+3?", "answer": "6"})])
    assert [(p.text, p.answer) for p in load_problems(path)] == [("3+3?", "6")]
    # a bad row is named by its line; a job skips it and keeps the rest, as for .jsonl
    write_lines(path, [json.dumps({"problem": "integrate(x, x)"}), '["a list"]', "",
                       json.dumps({"problem": "integrate(1, x)"})])
    with pytest.raises(UserError, match=r"p\.json:2: expected a JSON object"):
        load_problems(path)
    warned: list[str] = []
    assert [p.text for p in load_task_problems(path, get_task("integration"), warn=warned.append)] == [
        "integrate(x, x)", "integrate(1, x)"]
    assert warned == [f"{path}:2: skipped: expected a JSON object with a 'problem' field, got list"]
    # a malformed line is named as in a .jsonl file
    write_lines(path, [json.dumps({"problem": "a"}), '{"problem": '])
    with pytest.raises(UserError, match=r"p\.json:2: malformed JSON .*; expected one JSON object per line") as info:
        load_problems(path)
    assert "\n" not in str(info.value)
    # objects spread over several lines are neither a list nor JSON Lines
    path.write_text('{\n "problem": "a"\n}\n{"problem": "b"}\n')
    with pytest.raises(UserError, match=r"p\.json:4: malformed JSON \(Extra data at column 1\); "
                                        r"expected a JSON list of objects, or JSON Lines"):
        load_problems(path)


def test_json_lines_written_by_datasets_to_json(tmp_path):
    datasets = pytest.importorskip("datasets")
    rows = [{"prompt": [{"role": "user", "content": "1+1?"}], "solution": "2"}, {"prompt": [{"role": "user", "content": "2+2?"}], "solution": "4"}]
    datasets.Dataset.from_list(rows).to_json(str(tmp_path / "two.json"))
    assert [(p.text, p.answer) for p in load_problems(tmp_path / "two.json")] == [("1+1?", "2"), ("2+2?", "4")]
    datasets.Dataset.from_list(rows[1:]).to_json(str(tmp_path / "one.json"))
    assert [(p.text, p.answer) for p in load_problems(tmp_path / "one.json")] == [("2+2?", "4")]


def test_parquet(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    table = pa.table({"question": ["1+1", "2+2"], "answer": ["2", None], "level": [1, 3]})
    pq.write_table(table, tmp_path / "p.parquet")
    problems = load_problems(tmp_path / "p.parquet")
    assert [(p.id, p.text, p.answer, p.meta) for p in problems] == [
        ("p0", "1+1", "2", {"level": 1}),
        ("p1", "2+2", None, {"level": 3}),
    ]
    (tmp_path / "corrupt.parquet").write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(UserError, match=r"corrupt\.parquet: not a readable parquet file"):
        load_problems(tmp_path / "corrupt.parquet")
    pq.write_table(pa.table({"text": ["x"]}), tmp_path / "bad.parquet")
    with pytest.raises(UserError, match=r"bad\.parquet row 1: no problem text"):
        load_problems(tmp_path / "bad.parquet")


def test_hf_dataset_directory(tmp_path):
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_dict({"id": ["a", "b"], "prompt": ["∫ x dx", "∫ 1 dx"], "solution": ["x^2/2", "x"]})
    ds.save_to_disk(str(tmp_path / "single"))
    problems = load_problems(tmp_path / "single")
    assert [(p.id, p.text, p.answer) for p in problems] == [("a", "∫ x dx", "x^2/2"), ("b", "∫ 1 dx", "x")]
    # a DatasetDict: the test split is the one evaluated
    other = datasets.Dataset.from_dict({"problem": ["train row"]})
    datasets.DatasetDict({"train": other, "test": ds}).save_to_disk(str(tmp_path / "dict"))
    assert [p.id for p in load_problems(tmp_path / "dict")] == ["a", "b"]
    (tmp_path / "not_a_dataset").mkdir()
    with pytest.raises(UserError, match="not a dataset saved with save_to_disk"):
        load_problems(tmp_path / "not_a_dataset")


def test_builtin_unknown_name():
    with pytest.raises(UserError, match=r"unknown built-in problem set 'no-such-set'") as info:
        load_problems("builtin:no-such-set")
    assert "\n" not in str(info.value)


def test_row_to_problem_names_where():
    with pytest.raises(UserError, match=r"^somewhere:9: no problem text"):
        row_to_problem({"answer": "1"}, "somewhere:9", 0)


def test_write_jsonl_round_trip(tmp_path):
    rows = [{"id": "a", "problem": "π + 1", "answer": "x"}, {"id": "b", "problem": "2"}]
    write_jsonl(tmp_path / "out.jsonl", rows)
    assert [row for _, row in iter_jsonl(tmp_path / "out.jsonl")] == rows
    assert [p.id for p in load_problems(tmp_path / "out.jsonl")] == ["a", "b"]


# ---- load_task_problems: what jobs load (a bad row costs that row, not the file) -------------------

INTEGRALS = ['{"problem": "integrate(3*x**2, x)"}', '{"problem": "integrate(import os, x)"}',
             '{"problem": "integrate(cos(x), x)"}']


def test_rows_the_task_cannot_parse_are_skipped_with_one_line_each(tmp_path, capsys):
    from rungs.data import load_task_problems
    from rungs.tasks import get_task

    path = write_lines(tmp_path / "p.jsonl", INTEGRALS)
    problems = load_task_problems(path, get_task("integration"))
    assert [p.text for p in problems] == ["integrate(3*x**2, x)", "integrate(cos(x), x)"]
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"{path}:2: skipped: cannot parse integration problem 'integrate(import os, x)'")
    # the limit counts usable problems; rows past it are not parsed
    assert [p.text for p in load_task_problems(path, get_task("integration"), limit=2)] == [
        "integrate(3*x**2, x)", "integrate(cos(x), x)"]


def test_many_bad_rows_are_named_then_counted_and_none_left_is_one_error(tmp_path):
    from rungs.data import MAX_SKIP_LINES, load_task_problems
    from rungs.tasks import get_task

    path = write_lines(tmp_path / "p.jsonl", ['{"problem": "integrate(import os, x)"}'] * (MAX_SKIP_LINES + 3))
    warned: list[str] = []
    with pytest.raises(UserError, match=r"p\.jsonl: no problem left that the task 'integration' can parse") as info:
        load_task_problems(path, get_task("integration"), warn=warned.append)
    assert "\n" not in str(info.value)
    assert [w.split(": skipped")[0] for w in warned[:MAX_SKIP_LINES]] == [f"{path}:{i}" for i in range(1, MAX_SKIP_LINES + 1)]
    assert warned[MAX_SKIP_LINES:] == [f"{path}: skipped 3 more rows the task 'integration' cannot parse"]


def test_a_task_that_needs_answers_refuses_unlabelled_rows_when_asked(tmp_path):
    from rungs.data import load_task_problems
    from rungs.tasks import get_task

    path = write_lines(tmp_path / "m.jsonl", ['{"problem": "1+1?", "answer": "2"}', '{"problem": "what is 1+1?"}'])
    with pytest.raises(UserError, match=r"m\.jsonl:2: task 'math' needs a reference answer"):
        load_task_problems(path, get_task("math"), need_answers=True)
    assert len(load_task_problems(path, get_task("math"))) == 2  # test-time RL needs no labels


def test_jobs_skip_bad_rows(tmp_path, capsys):
    """`rungs ladder` / `rungs ttrl` load through open_job: the bad row is skipped, not the file."""
    from rungs.pipelines.job import open_job
    from rungs.pipelines.ladder import LadderConfig
    from rungs.train.grpo_config import GRPOConfig

    path = write_lines(tmp_path / "p.jsonl", INTEGRALS)
    config = LadderConfig(problems=str(path), out=str(tmp_path / "run"))
    run_dir, _, problems = open_job("ladder", config, GRPOConfig(), None)
    run_dir.release()
    assert len(problems) == 2
    assert f"{path}:2: skipped:" in capsys.readouterr().err


def test_eval_refuses_math_without_answers_up_front(tmp_path, capsys):
    from rungs.cli import main

    path = write_lines(tmp_path / "m.jsonl", ['{"problem": "what is 1+1?"}'])
    out = tmp_path / "ev"
    assert main(["eval", "--task", "math", "--problems", str(path), "--strategy", "greedy", "--n", "1",
                 "--seeds", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"rungs eval: error: {path}:1: task 'math' needs a reference answer: add an 'answer' field to every row"
    assert not out.exists()


def test_eval_refusing_a_non_finite_answer_says_that_rather_than_asking_for_the_field(tmp_path, capsys):
    from rungs.cli import main

    path = write_lines(tmp_path / "m.jsonl", ['{"problem": "what is 1+1?", "answer": 1e400}'])
    assert main(["eval", "--task", "math", "--problems", str(path), "--strategy", "greedy", "--n", "1",
                 "--seeds", "1", "--out", str(tmp_path / "ev")]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"{path}:1:" in err and "is a missing value" in err and "add an 'answer' field" not in err


def test_train_refuses_a_verifier_reward_on_math_rows_without_answers(tmp_path, capsys):
    """Every reward would be 0: one line naming the file and the label-free way, and no run left."""
    from rungs.cli import main

    path = write_lines(tmp_path / "m.jsonl", ['{"problem": "what is 1+1?"}', '{"problem": "what is 2+2?"}'])
    out = tmp_path / "tr"
    assert main(["train", "--task", "math", "--problems", str(path), "--max-steps", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"rungs train: error: {path}: no problem has an 'answer'"), err
    assert "--reward-funcs majority_vote,format" in err and "\n" not in err
    assert not out.exists()


def test_reward_labels_check_warns_on_some_missing_and_passes_label_free_rewards():
    from rungs.rewards import check_reward_labels
    from rungs.tasks import get_task
    from rungs.types import Problem

    math_task = get_task("math")
    labelled, unlabelled = Problem(id="a", text="1+1?", answer="2"), Problem(id="b", text="2+2?")
    assert check_reward_labels(["verifier", "format"], math_task, [labelled], "f") is None
    assert check_reward_labels(["verifier", "format"], math_task, [labelled, unlabelled], "f") == (
        "f: 1 of 2 problems have no 'answer': the verifier reward is 0 on them (task 'math' checks against a reference)")
    assert check_reward_labels(["majority_vote", "format"], math_task, [unlabelled], "f") is None
    assert check_reward_labels(["verifier", "majority_vote"], math_task, [unlabelled], "f").startswith("f: 1 of 1")
    assert check_reward_labels(["verifier"], get_task("integration"), [unlabelled], "f") is None  # no reference needed
    with pytest.raises(UserError, match="f: no problem has an 'answer'"):
        check_reward_labels(["verifier"], math_task, [unlabelled], "f")


def test_a_builtin_set_of_another_task_is_refused_by_name():
    from rungs.data import builtin_task, load_task_problems
    from rungs.tasks import get_task

    assert builtin_task("builtin:integration-hard") == "integration"
    assert builtin_task("builtin:arc2-evaluation") == "arc"
    assert builtin_task("builtin:nope") is None and builtin_task("rows.jsonl") is None
    with pytest.raises(UserError, match="builtin:integration-hard: a built-in integration set, but the task is 'math'"):
        load_task_problems("builtin:integration-hard", get_task("math"))
    assert len(load_task_problems("builtin:countdown-easy", get_task("countdown"), limit=3)) == 3
