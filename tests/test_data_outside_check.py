"""Faults an outside check found in reading problems and references (each reproduced, then fixed):

1. a NaN / inf reference answer (pandas' missing value; JSON's NaN or 1e400) paid reward 1.0 for
   answering "nan": it is now no answer (the row is unlabelled), with a warning naming file:line;
2. deeply nested JSON raised RecursionError (the JSONL reader, `to_builtin`): the row is skipped
   with one `FILE:LINE: skipped: too deeply nested` line, and the reward adapters score it 0;
3. structurally bad rows (a list, a non-string problem, a null problem in parquet) killed a job's
   whole file: they cost that row; conversational `prompt` columns and rungs' own veRL parquet
   (`extra_info.problem`) are read; rows of every format are counted from 1;
4. one unparseable row of a `--variants` file aborted without naming it: it is skipped by name.
"""

from __future__ import annotations

import json
import math
from decimal import Decimal
from pathlib import Path

import pytest

from rungs.data import MAX_SKIP_LINES, iter_jsonl, load_problems, load_task_problems, row_to_problem
from rungs.errors import UserError
from rungs.tasks import get_task
from rungs.types import (
    MAX_NESTING,
    Problem,
    answer_text,
    missing_number,
    nesting_depth,
    reference_answers,
    to_builtin,
)

DEEP = "[" * 3000 + "]" * 3000  # far past the JSON decoder's own stack
MIDDLE = "[" * 500 + "]" * 500  # decodes, but past MAX_NESTING (and past what to_builtin could recurse)


def nested(depth: int) -> list:
    value: list = []
    for _ in range(depth - 1):
        value = [value]
    return value


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


# ---- 1. non-finite numeric references are no answer ------------------------------------------------


def test_non_finite_numbers_and_missing_values_as_text_are_no_reference_answer_but_inf_as_text_stays():
    np = pytest.importorskip("numpy")
    for value in (float("nan"), float("inf"), -math.inf, np.float64("nan"), np.float32("inf"), np.nan,
                  [float("nan")], np.array([np.nan]), Decimal("NaN"), Decimal("-Infinity"), complex("nan+1j")):
        assert answer_text(value) is None, value
        assert reference_answers(value) == (None, []), value
    assert Problem("a", "t", float("nan")).answer is None
    assert reference_answers([float("nan"), "2", math.inf]) == ("2", [])
    assert reference_answers(["2", float("nan"), "two"]) == ("2", ["2", "two"])
    for text in ("inf", "-oo", "∞", "nano", "none of these"):  # typed as text: an answer (a divergent integral's)
        assert answer_text(text) == text
    for text in ("nan", "NaN", "None", "null", "<NA>"):  # a missing value turned into text: no answer
        assert answer_text(text) is None and Problem("a", "t", text).answer is None
    assert answer_text(2.5) == "2.5" and answer_text(np.int64(7)) == "7" and answer_text(0.0) == "0.0"
    assert not missing_number(True) and not missing_number(10**400) and missing_number(float("-inf"))


def test_pandas_missing_markers_are_no_reference_answer():
    pd = pytest.importorskip("pandas")
    assert answer_text(pd.NA) is None and answer_text(pd.NaT) is None
    frame = pd.DataFrame({"answer": ["2", None]})  # pandas' gap in a string column
    assert [answer_text(v) for v in frame["answer"]] == ["2", None]
    frame = pd.DataFrame({"answer": [2.0, None]})  # ... in a numeric column: NaN
    assert [answer_text(v) for v in frame["answer"]] == ["2.0", None]


def test_compute_score_treats_a_non_finite_ground_truth_as_unlabelled():
    np = pytest.importorskip("numpy")
    from rungs.integrations import compute_score

    for truth in (float("nan"), np.float64("nan"), float("inf"), -math.inf, [np.nan]):
        out = compute_score("math", "\\boxed{nan}", truth, return_dict=True, workers=1)
        assert out["score"] == 0.0 and out["unlabelled"] == 1.0 and out["acc"] == 0.0, (truth, out)
    assert compute_score("math", "\\boxed{inf}", float("inf"), workers=1) == 0.0
    # in a dict ground truth (TinyZero's form) as well
    out = compute_score("math", "\\boxed{nan}", {"answer": float("nan")}, return_dict=True, workers=1)
    assert out["unlabelled"] == 1.0


def test_trl_reward_gives_none_for_a_nan_answer():
    np = pytest.importorskip("numpy")
    from rungs.integrations import trl_reward

    reward = trl_reward("math", workers=1)
    try:
        statuses: dict = {}
        rewards = reward(["1+1?", "what?"], ["\\boxed{2}", "\\boxed{nan}"], answer=np.array([2.0, np.nan]),
                         log_extra=statuses.setdefault)
        assert rewards == [1.0, None]
        assert list(statuses.values())[0] == ["correct", None]  # unlabelled: TRL ignores the sample
    finally:
        reward.close()


def test_a_non_finite_answer_in_a_file_is_unlabelled_with_a_warning_naming_file_and_line(tmp_path, capsys):
    path = write_lines(tmp_path / "p.jsonl", [
        '{"problem": "integrate(x, x)", "answer": "x**2/2"}',
        '{"problem": "integrate(2*x, x)", "answer": NaN}',
        '{"problem": "integrate(3*x, x)", "solution": 1e400}',  # json reads it as inf
        '{"problem": "integrate(4*x, x)", "answer": "nan"}',  # a missing value written as text
    ])
    warned: list[str] = []
    problems = load_task_problems(path, get_task("integration"), warn=warned.append)
    assert [p.answer for p in problems] == ["x**2/2", None, None, None]
    assert warned == [
        f"{path}:2: field 'answer' is nan, not a finite number: no reference answer; the row is unlabelled",
        f"{path}:3: field 'solution' is inf, not a finite number: no reference answer; the row is unlabelled",
        f"{path}:4: field 'answer' is 'nan', text that spells a missing value: no reference answer; the row is "
        "unlabelled",
    ]
    # load_problems warns on stderr, for the rows it returns
    assert [p.answer for p in load_problems(path, limit=3)] == ["x**2/2", None, None]
    err = capsys.readouterr().err.splitlines()
    assert [line.split(": field")[0] for line in err] == [f"{path}:2", f"{path}:3"]
    # a task that needs the answer refuses the row as unlabelled (`rungs eval`), after the warning
    math_path = write_lines(tmp_path / "m.jsonl", ['{"problem": "1+1", "answer": 2}', '{"problem": "?", "answer": NaN}'])
    warned.clear()
    with pytest.raises(UserError, match=r"m\.jsonl:2: task 'math' needs a reference answer"):
        load_task_problems(math_path, get_task("math"), need_answers=True, warn=warned.append)
    assert warned and warned[0].startswith(f"{math_path}:2: field 'answer' is nan")


def test_many_non_finite_answers_are_named_then_counted(tmp_path):
    path = write_lines(tmp_path / "p.jsonl", ['{"problem": "integrate(x, x)", "answer": NaN}'] * (MAX_SKIP_LINES + 4))
    warned: list[str] = []
    assert len(load_task_problems(path, get_task("integration"), warn=warned.append)) == MAX_SKIP_LINES + 4
    assert len(warned) == MAX_SKIP_LINES + 1
    assert warned[-1] == f"{path}: 4 more rows whose reference answer is a missing value (unlabelled)"


def test_a_nan_answer_in_parquet_is_unlabelled_and_named_by_its_1_based_row(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "p.parquet"
    pq.write_table(pa.table({"problem": ["1+1", "2+2", "3+3"], "answer": pa.array([2.0, float("nan"), 6.0])}), path)
    warned: list[str] = []
    problems = load_task_problems(path, get_task("math"), warn=warned.append)
    assert [p.answer for p in problems] == ["2.0", None, "6.0"]
    assert [w.split(": field")[0] for w in warned] == [f"{path} row 2"]
    pd = pytest.importorskip("pandas")  # pandas writes its NaN gap as a null: no answer, nothing to warn about
    pd.DataFrame({"problem": ["1+1", "2+2"], "answer": [2.0, float("nan")]}).to_parquet(path)
    warned.clear()
    assert [p.answer for p in load_task_problems(path, get_task("math"), warn=warned.append)] == ["2.0", None]
    assert warned == []


# ---- 2. deep nesting: the row is skipped, never a RecursionError -----------------------------------


def test_to_builtin_refuses_deep_values_with_a_value_error():
    with pytest.raises(ValueError, match=f"too deeply nested \\(more than {MAX_NESTING} levels"):
        to_builtin(nested(5000))
    with pytest.raises(ValueError, match="too deeply nested"):
        to_builtin({"a": {"b": nested(MAX_NESTING)}})
    assert to_builtin(nested(MAX_NESTING)) == nested(MAX_NESTING)
    assert to_builtin(({"k": (1, [2])},)) == ({"k": (1, [2])},)
    assert nesting_depth(nested(5000)) == MAX_NESTING + 1  # counted without recursion, stopping early
    assert nesting_depth([[1], {"a": [[]]}]) == 4 and nesting_depth("x") == 0
    with pytest.raises(ValueError, match="too deeply nested"):
        Problem("a", "t", "1", meta={"deep": nested(5000)})


@pytest.mark.parametrize("extra", [DEEP, MIDDLE])
def test_a_deeply_nested_jsonl_row_is_skipped_with_one_line(tmp_path, capsys, extra):
    path = write_lines(tmp_path / "p.jsonl", [
        '{"problem": "integrate(x, x)", "answer": "x**2/2"}',
        '{"problem": "integrate(x, x)", "answer": "x**2/2", "extra": ' + extra + "}",
        '{"problem": "integrate(cos(x), x)"}',
    ])
    assert [lineno for lineno, _ in iter_jsonl(path)] == [1, 3]
    (line,) = capsys.readouterr().err.splitlines()
    assert line == f"{path}:2: skipped: too deeply nested (more than {MAX_NESTING} levels of lists and objects)"
    # a job's loader names it among the skipped rows; ids do not shift
    warned: list[str] = []
    problems = load_task_problems(path, get_task("integration"), warn=warned.append)
    assert [p.id for p in problems] == ["p0", "p2"]
    assert warned == [f"{path}:2: skipped: too deeply nested (more than {MAX_NESTING} levels of lists and objects)"]
    # the strict loader names it as an error
    with pytest.raises(UserError, match=r"p\.jsonl:2: too deeply nested"):
        load_problems(path)
    # logs read tolerantly drop it and read on (it is not a torn line)
    dropped: list[int] = []
    assert [n for n, _ in iter_jsonl(path, damaged="stop", dropped=dropped)] == [1, 3] and dropped == [2]


def test_a_deep_json_list_row_is_skipped_and_a_json_file_too_deep_to_read_is_one_line(tmp_path):
    path = tmp_path / "p.json"
    path.write_text('[{"problem": "integrate(x, x)"}, {"problem": "integrate(x, x)", "x": ' + MIDDLE + "}]")
    warned: list[str] = []
    assert len(load_task_problems(path, get_task("integration"), warn=warned.append)) == 1
    assert warned == [f"{path} row 2: skipped: too deeply nested (more than {MAX_NESTING} levels of lists and objects)"]
    path.write_text('[{"problem": "integrate(x, x)", "x": ' + DEEP + "}]")
    with pytest.raises(UserError, match=r"p\.json: too deeply nested") as info:
        load_problems(path)
    assert "\n" not in str(info.value)


def test_verify_skips_a_deep_row_with_one_line(tmp_path, capsys):
    from rungs.cli import main

    path = write_lines(tmp_path / "v.jsonl", [
        '{"problem": "integrate(x, x)", "answer": "x**2/2"}',
        '{"problem": "integrate(x, x)", "answer": "x**2/2", "extra": ' + DEEP + "}",
    ])
    assert main(["verify", "--task", "integration", "--workers", "1", str(path)]) == 0
    out, err = capsys.readouterr()
    assert [json.loads(line)["status"] for line in out.splitlines()] == ["correct"]
    assert f"{path}:2: skipped: too deeply nested" in err and "Traceback" not in err


def test_reward_adapters_score_a_deep_row_zero_and_the_others_as_usual():
    from rungs.integrations import (
        compute_score,
        compute_score_batch,
        compute_score_vote_batch,
        trl_reward,
        trl_vote_reward,
    )

    deep = {"deep": nested(5000)}
    out = compute_score("math", "\\boxed{2}", "2", deep, return_dict=True, workers=1)
    assert out["score"] == 0.0 and out["unlabelled"] == 0.0
    assert compute_score_batch(["math"] * 2, ["\\boxed{2}"] * 2, ["2", nested(5000)], [None, None], workers=1) == [1.0, 0.0]
    voted = compute_score_vote_batch(["math"] * 3, ["\\boxed{2}"] * 3, ["2"] * 3, [deep, {"index": 1}, {"index": 1}],
                                     workers=1)
    assert [row["score"] for row in voted] == [0.0, 1.0, 1.0]
    assert len({frozenset(row) for row in voted}) == 1  # every row has the same keys (veRL logs them per key)
    reward = trl_reward("math", workers=1)
    vote = trl_vote_reward("math", workers=1)
    try:
        statuses: dict = {}
        assert reward(["q", "q2"], ["\\boxed{2}", "\\boxed{2}"], answer=["2", "2"], meta=[nested(5000), 1],
                      log_extra=statuses.setdefault) == [0.0, 1.0]
        assert list(statuses.values())[0] == ["invalid_problem", "correct"]
        assert vote(["q", "q", "q2"], ["\\boxed{2}", "\\boxed{2}", "\\boxed{3}"], extra=[nested(5000), 1, 2]) == [0.0, 1.0, 1.0]
    finally:
        reward.close()
        vote.close()


# ---- 3. a structurally bad row costs that row; where the problem text may be -------------------------


def test_structurally_bad_rows_cost_that_row_in_a_job(tmp_path):
    path = write_lines(tmp_path / "p1.jsonl", [
        '{"problem": "integrate(x, x)"}',
        '["a", "list"]',
        '{"problem": null}',
        '{"problem": 123}',
        '{"problem": "integrate(cos(x), x)", "meta": [1]}',
        '{"answer": "no text"}',
        '{"problem": "integrate(exp(x), x)"}',
    ])
    warned: list[str] = []
    problems = load_task_problems(path, get_task("integration"), warn=warned.append)
    assert [(p.id, p.text) for p in problems] == [("p0", "integrate(x, x)"), ("p6", "integrate(exp(x), x)")]
    assert warned == [
        f"{path}:2: skipped: expected a JSON object with a 'problem' field, got list",
        f"{path}:3: skipped: no problem text: expected one of the fields problem, question, prompt",
        f"{path}:4: skipped: field 'problem' must be a string, got int",
        f"{path}:5: skipped: field 'meta' must be an object, got list",
        f"{path}:6: skipped: no problem text: expected one of the fields problem, question, prompt",
    ]
    # the same rows are still errors for the strict library loader, and none usable is one line
    with pytest.raises(UserError, match=r"p1\.jsonl:2: expected a JSON object"):
        load_problems(path)
    bad = write_lines(tmp_path / "bad.jsonl", ['{"problem": 123}', "[1]"])
    with pytest.raises(UserError, match=r"bad\.jsonl: no problem left .* \(2 rows skipped, named above\)") as info:
        load_task_problems(bad, get_task("integration"), warn=lambda line: None)
    assert "\n" not in str(info.value)


def test_a_null_problem_in_parquet_costs_that_row_named_from_1(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "p.parquet"
    pq.write_table(pa.table({"problem": ["integrate(x, x)", None, "integrate(cos(x), x)"]}), path)
    warned: list[str] = []
    problems = load_task_problems(path, get_task("integration"), warn=warned.append)
    assert [p.id for p in problems] == ["p0", "p2"]
    assert warned == [f"{path} row 2: skipped: no problem text: expected one of the fields problem, question, prompt"]


def test_eval_goes_on_past_bad_rows(tmp_path, capsys):
    from rungs.cli import main

    path = write_lines(tmp_path / "p1.jsonl", [
        '{"problem": "integrate(x, x)"}',
        "[1, 2]",
        '{"problem": 123}',
        '{"problem": "integrate(cos(x), x)", "answer": 1e400}',
        '{"problem": "integrate(x, x)", "id": "deep", "extra": ' + DEEP + "}",
    ])
    argv = ["eval", "--policy", "tiny:random", "--policy-option", "d_model=32", "--policy-option", "n_layers=1",
            "--policy-option", "n_heads=2", "--policy-option", "max_seq_len=64", "--strategy", "greedy", "--n", "1",
            "--seeds", "1", "--max-new-tokens", "4", "--workers", "1", "--no-plot", "--no-progress",
            "--task", "integration", "--problems", str(path), "--out", str(tmp_path / "run")]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "Traceback" not in err
    for line in (f"{path}:2: skipped: expected a JSON object", f"{path}:3: skipped: field 'problem' must be a string",
                 f"{path}:4: field 'answer' is inf", f"{path}:5: skipped: too deeply nested"):
        assert line in err, (line, err)
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert [(p["id"], p["answer"]) for p in results["problems"]] == [("p0", None), ("p3", None)]


def test_a_conversational_prompt_gives_the_last_user_message_to_the_task(tmp_path):
    chat = [{"role": "system", "content": "You are a careful mathematician."},
            {"role": "user", "content": "Find an antiderivative: integrate(7*exp(x), x). Show your steps."}]
    parts = [{"role": "user", "content": [{"type": "text", "text": "Find integrate(x**2, x) "},
                                          {"type": "image"}, {"type": "text", "text": "please."}]}]
    path = write_lines(tmp_path / "trl.jsonl", [json.dumps({"prompt": chat}), json.dumps({"prompt": parts}),
                                                json.dumps({"prompt": [{"role": "system", "content": "x"}]}),
                                                json.dumps({"prompt": "Integrate this: integrate(cos(x), x)."})])
    warned: list[str] = []
    problems = load_task_problems(path, get_task("integration"), warn=warned.append)
    assert [p.text for p in problems] == ["integrate(7*exp(x), x)", "integrate(x**2, x)", "integrate(cos(x), x)"]
    assert warned == [f"{path}:3: skipped: field 'prompt' must be a string or a conversation (a list of "
                      "{role, content} messages with a user message), got list",
                      f"{path}:1: the prompt's system message is not used: rungs prompts a policy with the problem "
                      "(the last user message) alone, in the policy's own template, with the task's own instructions"]
    # without a task the text is the user's message as it is
    assert row_to_problem({"prompt": chat}, "w", 0).text == chat[1]["content"]


def test_messages_of_a_conversational_prompt_that_go_unused_are_said_once_per_file(tmp_path, capsys):
    """A TRL dataset's system message (or few-shot turns) is dropped when rungs re-templates the
    problem: one line names the first row and counts the others, instead of silence or a line a row."""
    system = {"role": "system", "content": "Reason step by step."}
    shot = [{"role": "user", "content": "integrate(x, x)"}, {"role": "assistant", "content": "x**2/2"}]
    rows = [{"prompt": [system, {"role": "user", "content": f"integrate(x**{k}, x)"}]} for k in range(2, 5)]
    rows += [{"prompt": [*shot, {"role": "user", "content": "integrate(cos(x), x)"}]},
             {"prompt": [{"role": "user", "content": "integrate(sin(x), x)"}]},
             {"problem": "integrate(exp(x), x)", "prompt": [system, {"role": "user", "content": "ignored"}]}]
    path = write_lines(tmp_path / "trl.jsonl", [json.dumps(r) for r in rows])
    warned: list[str] = []
    problems = load_task_problems(path, get_task("integration"), warn=warned.append)
    assert len(problems) == 6 and len(warned) == 1
    assert warned[0].startswith(f"{path}:1: the prompt's system message is not used") and warned[0].endswith(
        "(3 more rows with messages that are not used)")  # rows 2, 3 (system) and 4 (earlier turns); 5 has none; 6 has a problem column
    warned.clear()
    load_task_problems(path, get_task("integration"), limit=4, warn=warned.append)
    assert warned[0].endswith("(3 more rows with messages that are not used)")
    load_task_problems(write_lines(tmp_path / "shot.jsonl", [json.dumps(rows[3])]), get_task("integration"),
                       warn=warned.append)
    assert warned[-1].startswith(f"{tmp_path / 'shot.jsonl'}:1: the prompt's assistant and user messages are not used")
    load_problems(path)  # the strict loader says it on stderr
    assert capsys.readouterr().err.count("is not used") == 1


def test_rungs_own_verl_parquet_reads_back(tmp_path):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_parquet", Path(__file__).parents[1] / "examples/verl/make_parquet.py")
    make_parquet = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_parquet)

    originals = load_problems("builtin:countdown-train", limit=3)
    rows = make_parquet.rows_for("countdown", "builtin:countdown-train")[:3]
    pd.DataFrame(rows).to_parquet(tmp_path / "c.parquet")
    problems = load_task_problems(tmp_path / "c.parquet", get_task("countdown"), limit=2)
    assert [(p.id, p.text, p.answer) for p in problems] == [(o.id, o.text, None) for o in originals[:2]]

    math_rows = tmp_path / "m.jsonl"
    write_lines(math_rows, ['{"id": "a", "problem": "What is 1+1?", "answer": "2"}', '{"problem": "2+3?", "answer": "5"}'])
    pd.DataFrame(make_parquet.rows_for("math", str(math_rows))).to_parquet(tmp_path / "m.parquet")
    problems = load_task_problems(tmp_path / "m.parquet", get_task("math"), need_answers=True)
    assert [(p.id, p.text, p.answer) for p in problems] == [("a", "What is 1+1?", "2"), ("p1", "2+3?", "5")]
    pd.DataFrame(make_parquet.rows_for("math", str(math_rows), labels=False)).to_parquet(tmp_path / "u.parquet")
    assert [p.answer for p in load_task_problems(tmp_path / "u.parquet", get_task("math"))] == [None, None]

    pd.DataFrame(make_parquet.rows_for("integration", "builtin:integration-easy")[:2]).to_parquet(tmp_path / "i.parquet")
    problems = load_task_problems(tmp_path / "i.parquet", get_task("integration"))
    assert [(p.text, p.answer) for p in problems] == [(p.text, None) for p in load_problems("builtin:integration-easy", 2)]

    # a row the task cannot read costs that row, named by file and line, as in rungs' jobs
    bad = write_lines(tmp_path / "e.jsonl", ['{"problem": "integrate(3*x**2, x)"}', '{"problem": "not an integral"}',
                                             '{"problem": "integrate(cos(x), x)"}'])
    rows = make_parquet.rows_for("integration", str(bad))
    assert [r["extra_info"]["problem"] for r in rows] == ["integrate(3*x**2, x)", "integrate(cos(x), x)"]


# ---- 4. --variants: an unparseable row costs that row, by name --------------------------------------


def _variant_rows(tmp_path: Path) -> list[dict]:
    from rungs.variants.tree import variant_row, variant_tree

    task = get_task("integration")
    tree = variant_tree(task, Problem("root", "integrate(x*log(x) + 3*x*cos(x**2), x)"), depth=1, width=3)
    return [variant_row(v) for v in tree]


def test_load_tree_skips_unparseable_and_bad_rows_naming_file_and_line(tmp_path):
    from rungs.variants.tree import load_tree

    rows = _variant_rows(tmp_path)
    assert len(rows) >= 2
    bad_problem = {**rows[0], "id": "huge", "problem": "integrate(x**(10**100), x)"}
    bad_depth = {**rows[0], "id": "depth", "depth": "two"}
    nan_answer = {**rows[1], "id": "nan", "answer": float("nan")}
    lines = [json.dumps(rows[0]), json.dumps(bad_problem), json.dumps(bad_depth), json.dumps(nan_answer),
             *[json.dumps(r) for r in rows[1:]]]
    path = write_lines(tmp_path / "tree.jsonl", lines)
    warned: list[str] = []
    variants = load_tree(path, task=get_task("integration"), warn=warned.append)
    assert [v.problem.id for v in variants] == [rows[0]["id"], "nan", *[r["id"] for r in rows[1:]]]
    assert variants[1].problem.answer is None
    # warnings about usable rows as they come, then the skipped rows in file order
    assert warned[0] == f"{path}:4: field 'answer' is nan, not a finite number: no reference answer; the row is unlabelled"
    assert warned[1].startswith(f"{path}:2: skipped: cannot parse integration problem 'integrate(x**(10**100), x)'")
    assert warned[2].startswith(f"{path}:3: skipped: 'difficulty' must be a number and 'depth' an integer")
    assert all("\n" not in w for w in warned) and len(warned) == 3
    # without a task the problems are not parsed (the bad depth is still skipped)
    assert "huge" in [v.problem.id for v in load_tree(path, warn=lambda line: None)]


def test_load_tree_with_no_usable_row_is_one_line(tmp_path):
    from rungs.variants.tree import load_tree

    rows = _variant_rows(tmp_path)
    path = write_lines(tmp_path / "tree.jsonl", [json.dumps({**rows[0], "problem": "integrate(x**(10**100), x)"}),
                                                 '{"id": "a"}', '{"id": "b", "meta": ' + DEEP + "}"])
    warned: list[str] = []
    with pytest.raises(UserError, match=r"tree\.jsonl: no usable variant row \(3 skipped; the first: .*tree\.jsonl:1: "
                                        r"cannot parse integration problem") as info:
        load_tree(path, task=get_task("integration"), warn=warned.append)
    assert "\n" not in str(info.value)
    assert [w.split(": skipped")[0] for w in warned] == [f"{path}:1", f"{path}:2", f"{path}:3"]
    empty = write_lines(tmp_path / "empty.jsonl", [])
    assert load_tree(empty) == []  # an empty tree: the ladder trains on its roots


def test_ladder_skips_an_unparseable_variant_row_by_name(tmp_path, capsys):
    from rungs.cli import main

    rows = _variant_rows(tmp_path)
    path = write_lines(tmp_path / "tree.jsonl", [json.dumps(rows[0]),
                                                 json.dumps({**rows[0], "id": "huge", "problem": "integrate(x**(10**100), x)"}),
                                                 *[json.dumps(r) for r in rows[1:]]])
    argv = ["ladder", "--task", "integration", "--policy", "tiny:random", "--policy-option", "d_model=32",
            "--policy-option", "n_layers=1", "--policy-option", "n_heads=2", "--policy-option", "max_seq_len=64",
            "--limit", "1", "--prompts-per-step", "1", "--num-generations", "2", "--max-completion-length", "8",
            "--workers", "1", "--no-progress", "--eval-problems", "none", "--max-steps", "1",
            "--problems", "builtin:integration-easy", "--variants", str(path), "--out", str(tmp_path / "run")]
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 0, err
    assert f"{path}:2: skipped: cannot parse integration problem 'integrate(x**(10**100), x)'" in err
