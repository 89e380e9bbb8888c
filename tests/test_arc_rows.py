"""A bad row costs that row: ARC grids written one bracketed row per line, `rungs ttt --only-fitting`
on a problem whose reference is not a grid, and damaged rows of a ttt run's outcomes.jsonl on resume."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest
from test_arc_ttt import RecordingPool, ScriptedPolicy, copy_problem

from rungs.pipelines.ttt import TTTConfig, read_outcomes, run_ttt, select_problems
from rungs.tasks import get_task
from rungs.tasks.arc import answer_text, parse_spec
from rungs.tasks.arc.grid import GridError, parse_grid
from rungs.types import Problem, Status


@pytest.fixture(scope="module")
def task():
    return get_task("arc")


# -- 1. the grid parser: every innermost bracket group is one row, however the lines break ------------


@pytest.mark.parametrize("text", [
    "[1,2]\n[3,4]",  # a list per line
    "[1, 2]\n[3, 4]\n",  # with spaces
    "[1,2],\n[3,4]",  # trailing commas
    "[1,2],\n[3,4],",
    "[\n[1,2]\n[3,4]\n]",  # an outer pair of brackets around lines without commas
    "[[1, 2]\n [3, 4]]",  # numpy's print
    "[[1,2] [3,4]]",
    "[[1,2],[3,4]]",
    "[[1,2],\n [3,4]]",
    "((1,2),(3,4))",  # tuples
    "(1, 2)\n(3, 4)",
    "[12]\n[34]",  # compact cells in brackets
    "```\n[1,2]\n[3,4]\n```",
    "[1,2]\r\n[3,4]",
])
def test_bracketed_rows_on_separate_lines_are_separate_rows(text):
    assert parse_grid(text) == ((1, 2), (3, 4))


@pytest.mark.parametrize("text", [
    "[1,2]\n[3]",  # ragged, one list a line
    "[1,2],\n[3,4,5],",
    "[[1 2]\n [3]]",
    "[[1,2],[]]",  # an empty row
    "[1,[2,3]]",  # a cell outside the innermost brackets
    "[1,2] 3\n[4,5]",
    "[[1,2],[3,4]] and more",
    "[1,2]\n[3,a]",
])
def test_malformed_bracketed_rows_are_still_refused(text):
    with pytest.raises(GridError) as err:
        parse_grid(text)
    assert err.value.status is Status.UNPARSEABLE


def test_too_many_bracketed_rows_are_rejected_as_huge():
    with pytest.raises(GridError) as err:
        parse_grid("\n".join(["[1]"] * 31))
    assert err.value.status is Status.REJECTED


def test_a_completion_with_one_list_a_line_scores_as_that_grid(task):
    problem = Problem("p", json.dumps({"train": [{"input": [[1]], "output": [[1]]}], "test": [{"input": [[0]]}]}), "12\n34")
    assert task.verify(problem, "<answer>\n[1, 2]\n[3, 4]\n</answer>").correct
    assert task.verify(problem, "The output grid is:\n[1, 2],\n[3, 4]").correct  # no tags: the last grid block
    assert task.verify(problem, "<answer>[1,2]\n[3]</answer>").status is Status.UNPARSEABLE


# -- 2. --only-fitting: a problem whose reference answer is not a grid costs that problem -------------------


def _copy_script(i, prompt):
    return answer_text(parse_spec(Problem("x", prompt)).test_input)  # the copy rule, right in every frame


def test_select_problems_skips_a_problem_without_a_reference_grid_with_one_line():
    bad = Problem("bad", copy_problem().text, "not a grid")
    unlabelled = Problem("none", copy_problem().text, None)
    lines: list[str] = []
    chosen = select_problems(ScriptedPolicy(_copy_script), [copy_problem("a"), bad, unlabelled, copy_problem("b")],
                             only_fitting=True, limit=None, source="p.jsonl", warn=lines.append)
    assert [p.id for p in chosen] == ["a", "b"]
    assert len(lines) == 2 and all("p.jsonl" in line and "\n" not in line for line in lines)
    assert "'bad'" in lines[0] and "not a grid" in lines[0] and "expected an ARC grid" in lines[0]
    assert "'none'" in lines[1]


def test_ttt_only_fitting_runs_the_other_problems_when_a_reference_is_not_a_grid(tmp_path, task, capsys):
    source = tmp_path / "p.jsonl"
    rows = [{"id": "a", "problem": copy_problem().text, "answer": "20\n03"},
            {"id": "bad", "problem": copy_problem().text, "answer": "hello"},
            {"id": "b", "problem": copy_problem().text, "answer": [[2, 0], [0, 3]]}]
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = TTTConfig(problems=str(source), only_fitting=True, steps=0, infer_augmentations=1, out=str(tmp_path / "run"))
    summary = run_ttt(config, policy=ScriptedPolicy(_copy_script), task=task, pool=RecordingPool(), echo=False)
    assert summary["problems"] == 2 and summary["pass@2"] == 1.0
    err = capsys.readouterr().err
    assert str(source) in err and "'bad'" in err and "not a grid" in err


# -- 3. a damaged row of outcomes.jsonl costs that problem on resume: it is solved again ---------------------


DAMAGED = [
    pytest.param(lambda row: {k: v for k, v in row.items() if k != "solved"}, id="missing-key"),
    pytest.param(lambda row: {**row, "solved": "yes"}, id="string-for-bool"),
    pytest.param(lambda row: {**row, "id": [1]}, id="list-id"),
    pytest.param(lambda row: {**row, "seconds": None}, id="null-number"),
    pytest.param(lambda row: {**row, "attempts": "01|23"}, id="string-for-list"),
    pytest.param(lambda row: [row], id="json-list"),
    pytest.param(lambda row: 7, id="json-number"),
]


@pytest.mark.parametrize("damage", DAMAGED)
def test_a_damaged_outcome_row_is_solved_again_on_resume_with_one_line(tmp_path, task, capsys, damage):
    problems = [copy_problem("a"), copy_problem("b"), copy_problem("c")]
    config = TTTConfig(steps=0, infer_augmentations=2, out=str(tmp_path / "run"))
    first = run_ttt(config, policy=ScriptedPolicy(_copy_script), task=task, pool=RecordingPool(), echo=False, problems=problems)
    outcomes = tmp_path / "run" / "outcomes.jsonl"
    lines = outcomes.read_text().splitlines()
    assert len(lines) == 3
    lines[1] = json.dumps(damage(json.loads(lines[1])))  # problem b's row
    outcomes.write_text("\n".join(lines) + "\n")
    capsys.readouterr()
    policy = ScriptedPolicy(_copy_script)
    again = run_ttt(config, resume_dir=str(tmp_path / "run"), policy=policy, task=task, pool=RecordingPool(),
                    echo=False, problems=problems)
    err = capsys.readouterr().err
    assert f"{outcomes}:2: solved again:" in err and "expected" in err
    assert len([line for line in err.splitlines() if "outcomes.jsonl" in line]) == 1
    assert len(policy.prompts) == 2  # problem b alone, under its 2 augmentations
    assert again["problems"] == 3 and again["pass@2"] == first["pass@2"] == 1.0
    rows = read_outcomes(outcomes, "unexpected")
    assert sorted(r["id"] for r in rows) == ["a", "b", "c"]  # the damaged row replaced, the others kept


def test_read_outcomes_names_damaged_lines_but_not_a_torn_last_one(tmp_path):
    from rungs.pipelines.ttt import Outcome

    good = asdict(Outcome("a", "a", True, True, True, ["01"], ["correct"], 1, 1, 0, 0, 0, 0, None, None, 5, 0, 1.0, 0.0))
    path = tmp_path / "outcomes.jsonl"
    path.write_text(json.dumps(good) + "\n{not json\n" + json.dumps({**good, "id": "b"}) + "\n" + '{"id": "c", "sol')
    lines: list[str] = []
    rows = read_outcomes(path, "solved again", warn=lines.append)
    assert [r["id"] for r in rows] == ["a", "b"]
    assert lines == [f"{path}:2: solved again: damaged line (not JSON, or nested too deeply); expected one JSON object per line"]


@pytest.mark.parametrize("indent", [1, 2, 4])
def test_pretty_printed_json_grids_parse(indent):
    """`json.dumps(grid, indent=...)` puts every cell on its own line: a line break inside a row is a space."""
    grid = [[1, 2, 3], [4, 5, 6]]
    assert parse_grid(json.dumps(grid, indent=indent)) == ((1, 2, 3), (4, 5, 6))
    assert parse_grid("[[1,\n2,3],\n[4,5,\n6]]") == ((1, 2, 3), (4, 5, 6))


@pytest.mark.parametrize("text", ["[[1,2],[3,4]]\n(2, 2)", "((1,2),(3,4)) [5,6]"])
def test_a_bracketed_note_after_the_grid_is_not_a_row(text):
    with pytest.raises(GridError) as info:
        parse_grid(text)
    assert info.value.status == Status.UNPARSEABLE and "outside the brackets" in str(info.value)


@pytest.mark.parametrize("text", ["[(1,2),(3,4)]", "([1,2],[3,4])", "[[1,2],(3,4)]", "((1, 2),\n (3, 4))"])
def test_rows_in_either_bracket_inside_an_outer_pair_are_rows(text):
    assert parse_grid(text) == ((1, 2), (3, 4))


def test_a_second_grid_after_a_bracketed_grid_is_refused():
    with pytest.raises(GridError) as info:
        parse_grid("[[1,2],[3,4]] [[5,6],[7,8]]")
    assert info.value.status == Status.UNPARSEABLE
