"""Outside check 4: GSM8K `#### X` answers and references in the math task; countdown names the
power operator the model wrote; `rungs verify` finds the problem inside a prompt-only row as the
TRL adapter does; `rungs report` on a killed eval skips a bad row instead of failing the file."""

from __future__ import annotations

import json

import pytest

from rungs.cli import main
from rungs.integrations import compute_score
from rungs.tasks.countdown import CountdownTask
from rungs.tasks.math import MathTask
from rungs.types import Problem, Status

GSM8K_REFERENCE = (
    "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n"
    "Natalia sold 48+24 = <<48+24=72>>72 clips altogether in April and May.\n"
    "#### 72"
)
GSM8K_COMPLETION = "She sold 24 clips in May, so she has 48 + 24 = 72 apples.\n#### 72"


# -- 1. GSM8K -----------------------------------------------------------------------------------


def test_gsm8k_final_hash_line_is_the_answer_of_a_completion() -> None:
    task = MathTask()
    verdict = task.verify(Problem("g", "q", "72"), GSM8K_COMPLETION)
    assert verdict.correct and verdict.answer == "72"
    assert not task.verify(Problem("g", "q", "71"), GSM8K_COMPLETION).correct
    assert task.verify(Problem("g", "q", "1000"), "so it costs $1,000.\n#### 1,000").correct
    assert compute_score("math", GSM8K_COMPLETION, "72", workers=1) == 1.0
    assert compute_score("openai/gsm8k", GSM8K_COMPLETION, "73", workers=1) == 0.0


def test_gsm8k_reference_rationale_means_its_final_number() -> None:
    task = MathTask()
    assert task.verify_answer(Problem("g", "q", GSM8K_REFERENCE), "72").correct
    assert not task.verify_answer(Problem("g", "q", GSM8K_REFERENCE), "24").correct
    assert task.verify_answer(Problem("g", "q", "It costs 500 + 500 = <<500+500=1000>>1000.\n#### 1,000"), "1000").correct
    assert compute_score("math", "so \\boxed{72}", GSM8K_REFERENCE, workers=1) == 1.0
    assert compute_score("math", GSM8K_COMPLETION, GSM8K_REFERENCE, workers=1) == 1.0
    assert compute_score("math", "so \\boxed{24}", GSM8K_REFERENCE, workers=1) == 0.0


def test_boxed_answer_keeps_priority_and_cut_off_or_empty_hash_is_no_answer() -> None:
    task = MathTask()
    assert task.extract_answer("#### 72\nno wait: \\boxed{71}") == "71"
    assert task.extract_answer("<answer>5</answer>\n#### 72") == "5"
    assert task.extract_answer("#### 72\nthen \\boxed{7") is None  # the last wrapper is cut off
    assert task.verify(Problem("g", "q", "72"), "the answer is\n####\n").status is Status.NO_ANSWER
    assert task.extract_answer("no answer at all") is None
    # TRL's reasoning semantics: a `####` inside the reasoning does not count
    thinking = task.with_reasoning()
    assert thinking.extract_answer("<think>#### 71</think>\n#### 72") == "72"
    assert thinking.extract_answer("<think>#### 72</think>") is None


# -- 2. countdown's power operator ------------------------------------------------------------------


def test_countdown_power_detail_names_the_operator_written() -> None:
    task = CountdownTask()
    problem = Problem("c", "numbers: 2 3 1; target: 9")
    verdict = task.verify_answer(problem, "2**3 + 1")
    assert verdict.status is Status.REJECTED and "'**'" in verdict.detail and "'^'" not in verdict.detail
    verdict = task.verify_answer(problem, "2^3 + 1")
    assert verdict.status is Status.REJECTED and "'^'" in verdict.detail and "'**'" not in verdict.detail


# -- 3. rungs verify on prompt-only rows ----------------------------------------------------------------


def test_verify_file_finds_the_problem_inside_a_prompt_only_row(tmp_path, capsys) -> None:
    prompt = "Compute integrate(x**2, x). Put the answer in \\boxed{}."
    rows = [
        {"id": "plain", "prompt": prompt, "answer": "x**3/3"},
        {"id": "chat", "prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": prompt}],
         "completion": "so \\boxed{x**3/3}"},
        {"id": "wrong", "prompt": prompt, "answer": "x**2/2"},
    ]
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    code = main(["verify", "--task", "integration", str(path), "--workers", "1"])
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 0
    assert [(r["id"], r["status"]) for r in out] == [("plain", "correct"), ("chat", "correct"), ("wrong", "wrong")]


# -- 4. rungs report on a killed eval with a bad row ----------------------------------------------------


def test_report_of_a_killed_eval_skips_a_bad_row_of_an_unregistered_task(tmp_path, capsys) -> None:
    from test_evaluate import AddTask, FakePolicy

    from rungs.commands.report import render_run
    from rungs.pipelines.evaluate import EvalConfig, evaluate
    from rungs.verify.pool import VerifierPool

    problems = tmp_path / "add.jsonl"
    good = [json.dumps(p.to_dict()) for p in AddTask().generate(4, 1, seed=3)]
    problems.write_text("\n".join([good[0], json.dumps({"problem": 5}), "[1, 2]", *good[1:]]) + "\n")
    config = EvalConfig(task="add", problems=str(problems), policy="fake", n=[1, 2], seeds=1, out=str(tmp_path / "e"),
                        strategy=["greedy", "majority"], progress=False, plot=False)
    with VerifierPool(AddTask(), executor="inline") as pool:
        result = evaluate(config, policy=FakePolicy(), task=AddTask(), pool=pool, echo=False)
    run = tmp_path / "e"
    (run / "results.json").unlink()  # killed before the end: the problems are read back from the file
    summary = render_run(run, plot=False)
    assert summary["metrics"] == result.summary["metrics"]
    assert "maj@k" in capsys.readouterr().out


def test_math_no_answer_detail_names_the_gsm8k_line_too():
    from rungs.tasks import get_task
    from rungs.tasks.math import MathTask
    from rungs.types import Problem, Status

    verdict = MathTask().verify(Problem("p", "q", "2"), "I think it is two")
    assert verdict.status is Status.NO_ANSWER and "####" in verdict.detail
    assert "####" not in get_task("countdown").verify(Problem("p", "numbers: 1 2; target: 3", "1+2"), "no").detail


@pytest.mark.parametrize("line", ["#### 72 clips", "#### **72**", "**#### 72**", "#### $72", "#### 72."])
def test_gsm8k_final_line_with_units_or_markdown_is_its_number(line):
    from rungs.integrations import compute_score

    assert compute_score("math", f"She sold 48 + 24 clips.\n{line}", "#### 72", workers=1) == 1.0
    assert compute_score("math", f"She sold 48 + 24 clips.\n{line}", "#### 73", workers=1) == 0.0
