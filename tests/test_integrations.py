"""TRL and veRL adapters, with the math task; TRL's call is reproduced, not run (no training)."""

from __future__ import annotations

import inspect
import json
import pickle

import pytest

from rungs.integrations import (
    TaskReward,
    compute_score,
    compute_score_batch,
    last_message,
    task_for_source,
    trl_reward,
    verl_problem,
)
from rungs.tasks import get_task


@pytest.fixture(scope="module")
def reward():
    f = trl_reward("math", timeout_s=10.0, workers=2)
    yield f
    f.close()


def call_like_trl(f, prompts, completions, **columns):
    """What GRPOTrainer._calculate_rewards passes to a synchronous reward function."""
    logged: dict = {}
    extra: dict = {}
    rewards = f(
        prompts=prompts,
        completions=completions,
        completion_ids=[[1, 2, 3]] * len(prompts),
        trainer_state=object(),
        log_extra=lambda column, values: extra.setdefault(column, values),
        log_metric=lambda name, value: logged.setdefault(name, value),
        **columns,
    )
    assert len(rewards) == len(prompts)
    return rewards, logged, extra


def test_string_completions(reward) -> None:
    prompts = ["What is 1/2 + 0?"] * 4
    completions = ["so \\boxed{0.5}", "\\boxed{\\frac{1}{2}}", "\\boxed{3}", "I don't know"]
    rewards, logged, extra = call_like_trl(reward, prompts, completions, answer=["1/2"] * 4)
    assert rewards == [1.0, 1.0, 0.0, 0.0]
    assert logged["math_reward/frac_no_answer"] == 0.25
    assert logged["math_reward/frac_verifier_failed"] == 0.0
    assert extra["math_reward_status"] == ["correct", "correct", "wrong", "no_answer"]


def test_conversational_completions_and_solution_column(reward) -> None:
    prompts = [[{"role": "system", "content": "be brief"}, {"role": "user", "content": "2+2?"}]] * 3
    completions = [
        [{"role": "assistant", "content": "It is \\boxed{4}."}],
        [{"role": "assistant", "content": "\\boxed{4}"}, {"role": "tool", "content": "\\boxed{5}"}],  # last *assistant*
        [{"role": "assistant", "content": [{"type": "text", "text": "\\boxed{5}"}]}],  # typed parts
    ]
    rewards, _, _ = call_like_trl(reward, prompts, completions, solution=["4", "4", "4"])
    assert rewards == [1.0, 1.0, 0.0]


def test_missing_answer_gives_none(reward) -> None:
    rewards, _, _ = call_like_trl(reward, ["q1", "q2"], ["\\boxed{1}", "\\boxed{1}"], answer=["1", None])
    assert rewards == [1.0, None]
    rewards, _, _ = call_like_trl(reward, ["q1"], ["\\boxed{1}"])  # no answer column at all
    assert rewards == [None]


def test_usable_as_a_trl_reward_func(reward) -> None:
    assert reward.__name__ == "math_reward"  # TRL names the reward by __name__
    assert not inspect.iscoroutinefunction(reward) and not inspect.iscoroutinefunction(reward.__call__)
    clone = pickle.loads(pickle.dumps(reward))  # TRL's async GRPO pickles reward functions
    assert isinstance(clone, TaskReward) and clone._pool is None
    try:
        assert clone(["q"], ["\\boxed{7}"], answer=["7"]) == [1.0]  # positional, as in TRL's docs
    finally:
        clone.close()


def test_compute_score() -> None:
    assert compute_score("lighteval/MATH", "so \\boxed{\\frac{3}{4}}", "0.75") == 1.0
    assert compute_score("openai/gsm8k", "<answer>72</answer>", "72", {"index": 3}) == 1.0
    assert compute_score("math", "\\boxed{0.7}", "\\frac{3}{4}") == 0.0
    assert compute_score("math", "no box here", "1") == 0.0
    assert compute_score("math", "\\boxed{1}", None) == 0.0  # no reference: nothing to check
    assert compute_score_batch(["math"] * 3, ["\\boxed{1}", "\\boxed{2}", "\\boxed{x+x}"], ["1", "3", "2x"]) == [1.0, 0.0, 1.0]


def test_task_for_source_and_problem_convention() -> None:
    assert task_for_source("math") == "math"
    assert task_for_source("countdown") == "countdown"
    assert task_for_source("my_integration_bee") == "integration"
    assert task_for_source("TinyZero/Countdown-Tasks-3to4") == "countdown"
    assert task_for_source("DigitalLearningGmbH/MATH-lighteval") == "math"
    assert task_for_source("openai/gsm8k") == "math"
    math_task = get_task("math")
    p = verl_problem(math_task, "5", {"question": "2+3?", "index": 9})
    assert p is not None and (p.id, p.text, p.answer) == ("9", "2+3?", "5")
    assert verl_problem(math_task, None, None) is None


class SelfChecking:
    """A stand-in for integration / countdown: needs no answer, verifies from the problem."""

    needs_answer = False


def test_ground_truth_carries_the_problem_for_self_checking_tasks() -> None:
    task = SelfChecking()
    p = verl_problem(task, "numbers: 3 4; target: 7", {"question": "a long prompt"})
    assert p is not None and p.text == "numbers: 3 4; target: 7" and p.answer is None
    p = verl_problem(task, {"target": 98, "numbers": [44, 19, 35]}, {"question": "Using the numbers ..."})
    assert p is not None and p.meta["target"] == 98 and p.text == "Using the numbers ..."


def test_last_message() -> None:
    assert last_message("plain", "user") == "plain"
    assert last_message([{"content": "no roles"}], "assistant") == "no roles"
    assert last_message([], "user") == ""


def test_countdown_rows_as_trl_and_verl_give_them() -> None:
    pytest.importorskip("rungs.tasks.countdown")
    gt = {"target": 98, "numbers": [44, 19, 35]}  # TinyZero's veRL ground truth
    question = {"question": "Using the numbers [44, 19, 35], create an equation that equals 98."}
    assert compute_score("countdown", "<answer>(44 + 19) + 35</answer>", gt, question) == 1.0
    assert compute_score("countdown", "<answer>44 + 19</answer>", gt, question) == 0.0
    assert compute_score("TinyZero/countdown", "<answer>3 + 4</answer>", "numbers: 3 4; target: 7") == 1.0
    f = trl_reward("countdown", workers=1)
    try:  # TinyZero's dataset columns arrive as keyword lists and become Problem.meta
        prompts = ["Using the numbers [3, 4], make 7"] * 2
        assert f(prompts, ["<answer>3+4</answer>", "<answer>3*4</answer>"], nums=[[3, 4]] * 2, target=[7, 7]) == [1.0, 0.0]
    finally:
        f.close()


def test_vote_rewards_honour_reasoning_delimiters_in_trl_and_verl():
    """Only the answer after the reasoning votes: two responses whose reasoning never closes have no answer."""
    from rungs.integrations import compute_score_vote_batch, trl_vote_reward

    texts = ["<think>so \\boxed{1}", "<think>so \\boxed{1}", "<think>\\boxed{2}</think>\\boxed{2}"]
    verl = compute_score_vote_batch(["math"] * 3, texts, ["1"] * 3, [{"index": 0}] * 3, return_dict=False,
                                    reasoning_delimiters=["</think>"], workers=1)
    assert verl == [0.0, 0.0, 1.0]
    assert compute_score_vote_batch(["math"] * 3, texts, ["1"] * 3, [{"index": 0}] * 3, return_dict=False,
                                    workers=1) == [1.0, 1.0, 0.0]  # without the delimiters the open ones win
    trl = trl_vote_reward("math", reasoning_delimiters=["</think>"], workers=1)
    assert trl(prompts=["q"] * 3, completions=texts) == [0.0, 0.0, 1.0]


def test_integration_rows_with_only_a_prompt_find_the_integral_in_it():
    """A TRL dataset with rungs' own prompt and no `problem` column: the integral is read from the prompt."""
    from rungs.data import load_problems
    from rungs.integrations import trl_reward, trl_vote_reward
    from rungs.tasks import get_task

    task = get_task("integration")
    problem = load_problems("builtin:integration-easy")[0]  # integrate(7*exp(x), x)
    prompt = task.prompt(problem)
    assert task.problem_from_prompt(prompt) == problem.text
    assert task.problem_from_prompt("Compute $\\int x^2 \\, dx$ now") == "$\\int x^2 \\, dx$"
    assert task.problem_from_prompt("nothing to integrate (x)") == "nothing to integrate (x)"
    assert get_task("countdown").problem_from_prompt("numbers: 3 4; target: 7") == "numbers: 3 4; target: 7"
    reward = trl_reward(task, workers=1)
    assert reward(prompts=[[{"role": "user", "content": prompt}]] * 2,
                  completions=["<answer>7*exp(x)</answer>", "<answer>exp(x)</answer>"]) == [1.0, 0.0]
    vote = trl_vote_reward("integration", workers=1)
    assert vote(prompts=[prompt] * 3, completions=["<answer>7*exp(x)</answer>"] * 2 + ["<answer>x</answer>"]) == \
        [1.0, 1.0, 0.0]


def test_a_ground_truth_listing_several_answers_accepts_any_of_them(tmp_path):
    import json

    from rungs.data import load_problems
    from rungs.integrations import compute_score, trl_reward
    from rungs.tasks import get_task

    assert compute_score("math", "\\boxed{2}", ["2", "4"]) == 1.0
    assert compute_score("math", "\\boxed{4}", ["2", "4"]) == 1.0
    assert compute_score("math", "\\boxed{5}", ["2", "4"]) == 0.0
    assert compute_score("math", "\\boxed{2}", ["2"]) == 1.0  # one element: as before
    reward = trl_reward("math", workers=1)
    assert reward(prompts=["q"] * 3, completions=["\\boxed{2}", "\\boxed{4}", "\\boxed{3}"],
                  answer=[["2"], ["2", "4"], ["2", "4"]]) == [1.0, 1.0, 0.0]
    (tmp_path / "p.jsonl").write_text(json.dumps({"problem": "q", "answer": ["2", "4"]}) + "\n")
    problem = load_problems(tmp_path / "p.jsonl")[0]
    assert (problem.answer, problem.meta["answers"]) == ("2", ["2", "4"])
    assert get_task("math").verify(problem, "\\boxed{4}").correct


def test_rows_without_a_reference_are_unlabelled_not_failed():
    """A math row with no answer: not a verifier failure, not a response without an answer."""
    from rungs.integrations import compute_score, compute_score_vote_batch

    one = compute_score("math", "\\boxed{0.4}", None, return_dict=True)
    assert (one["unlabelled"], one["verifier_failed"], one["no_answer"], one["pred"]) == (1.0, 0.0, 0.0, "0.4")
    votes = compute_score_vote_batch(["math"] * 3, ["\\boxed{2}", "\\boxed{2}", "\\boxed{3}"], [None] * 3,
                                     [{"index": 0}] * 3, workers=1)
    assert [d["score"] for d in votes] == [1.0, 1.0, 0.0]
    assert all(d["unlabelled"] == 1.0 and d["verifier_failed"] == 0.0 for d in votes)
    labelled = compute_score("math", "\\boxed{2}", "2", return_dict=True)
    assert (labelled["unlabelled"], labelled["acc"]) == (0.0, 1.0)


GATHER_SCRIPT = r"""
import json, sys
import torch.distributed as dist
from rungs.integrations import trl_vote_reward

rank, init, out, gather = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4] == "1"
dist.init_process_group("gloo", init_method=f"file://{init}", rank=rank, world_size=2)
# one prompt's 8 completions split 4 / 4, as TRL's sampler splits them when
# per_device_train_batch_size < num_generations; and a second prompt only rank 1 sees
halves = {0: ["\\boxed{5}"] * 3 + ["\\boxed{7}"], 1: ["\\boxed{7}"] * 4 + ["\\boxed{2}"] * 2}
prompts = {0: ["what is 3 + 4?"] * 4, 1: ["what is 3 + 4?"] * 4 + ["what is 1 + 1?"] * 2}
answers = {0: ["7"] * 4, 1: ["7"] * 4 + ["2"] * 2}
metrics = {}
reward = trl_vote_reward("math", workers=1, executor="inline", gather=gather)
got = reward(prompts=prompts[rank], completions=halves[rank], answer=answers[rank],
             log_metric=lambda name, value: metrics.__setitem__(name.split("/")[-1], value))
json.dump({"rewards": got, "metrics": metrics}, open(out, "w"))
dist.destroy_process_group()
"""


@pytest.mark.parametrize("gather", [True, False])
def test_a_prompt_group_split_across_processes_votes_as_one_group(tmp_path, gather):
    """TRL computes rewards on each process's slice: the vote must see the whole group (real gloo, 2 ranks)."""
    import subprocess
    import sys

    script = tmp_path / "rank.py"
    script.write_text(GATHER_SCRIPT)
    procs = [subprocess.Popen([sys.executable, str(script), str(r), str(tmp_path / "init"), str(tmp_path / f"{r}.json"),
                               "1" if gather else "0"]) for r in (0, 1)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    got = [json.loads((tmp_path / f"{r}.json").read_text()) for r in (0, 1)]
    if gather:  # 7 has 5 of 8 votes: the label on both ranks; the second prompt votes on its own
        assert got[0]["rewards"] == [0.0, 0.0, 0.0, 1.0]
        assert got[1]["rewards"] == [1.0] * 6
        assert got[0]["metrics"] == got[1]["metrics"]  # every rank logs the same pooled figures
        assert got[0]["metrics"]["label_accuracy"] == 1.0
    else:  # each half votes alone: rank 0 trains towards 5
        assert got[0]["rewards"] == [1.0, 1.0, 1.0, 0.0]
        assert got[0]["metrics"]["label_accuracy"] == 0.0


def test_verl_pred_extra_is_bounded_so_one_long_answer_cannot_swell_the_batch_array():
    """veRL stacks each dict extra into a numpy array padded to its longest string."""
    from rungs.integrations import PRED_CHARS, compute_score_batch

    long_answer = "<answer>" + "1+" * 15000 + "1</answer>"
    out = compute_score_batch(["math"] * 3, ["\\boxed{2}", long_answer, "x" * 50000], ["2", "2", None], None,
                              return_dict=True, workers=1)
    assert out[0]["pred"] == "2" and out[0]["score"] == 1.0
    assert all(len(o["pred"]) <= PRED_CHARS for o in out)
    assert out[1]["pred"].startswith("1+1+") and "..." in out[1]["pred"]


def test_a_math_reward_without_an_answer_column_warns_once_and_a_broken_reference_is_skipped():
    import warnings

    from rungs.integrations import trl_reward

    reward = trl_reward("math", workers=1, executor="inline")
    prompts, completions = ["1+1?"] * 2, ["\\boxed{2}"] * 2
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert reward(prompts=prompts, completions=completions, target=["2", "2"]) == [None, None]
        assert reward(prompts=prompts, completions=completions, target=["2", "2"]) == [None, None]
    said = [str(w.message) for w in caught]
    assert len(said) == 1 and "no answer column (columns given: target)" in said[0] and "gold" in said[0]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert trl_reward("math", workers=1, executor="inline")(prompts=prompts, completions=completions,
                                                               answer="2") == [None, None]
    assert "column 'answer' is not a list of 2 values" in str(caught[0].message)
    # gold / reference are read, as `rungs verify` names them; a reference that is broken LaTeX is no label
    assert reward(prompts=prompts, completions=completions, gold=["2", "3"]) == [1.0, 0.0]
    assert reward(prompts=prompts * 2, completions=completions * 2,
                  reference=["\\frac{", "{", "2", "\\sqrt{"]) == [None, None, 1.0, None]
    with warnings.catch_warnings(record=True) as caught:  # label-free voting needs no answer column
        warnings.simplefilter("always")
        from rungs.integrations import trl_vote_reward

        trl_vote_reward("math", workers=1, executor="inline")(prompts=prompts, completions=completions)
    assert not caught


def test_a_row_whose_problem_cannot_be_read_warns_once_naming_where_the_problem_comes_from():
    import warnings

    from rungs.integrations import trl_reward

    reward = trl_reward("integration", workers=1, executor="inline")
    prompts = ["Compute the integral of 3*x**2 dx."] * 2
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert reward(prompts=prompts, completions=["<answer>x**3</answer>"] * 2) == [0.0, 0.0]
        reward(prompts=prompts, completions=["<answer>x**3</answer>"] * 2)
        assert reward(prompts=prompts, completions=["<answer>x**3</answer>"] * 2,
                      problem=["integrate(3*x**2, x)"] * 2) == [1.0, 1.0]
    said = [str(w.message) for w in caught]
    assert len(said) == 1 and "could not be checked" in said[0] and "'problem'" in said[0]


def test_a_bad_executor_is_refused_when_the_reward_is_built_and_a_name_can_be_given():
    from rungs.errors import UserError
    from rungs.integrations import trl_reward, trl_vote_reward

    with pytest.raises(UserError, match="unknown verifier executor 'rayy'"):
        trl_reward("math", executor="rayy")
    with pytest.raises(UserError, match="unknown verifier executor"):
        trl_vote_reward("math", executor="proces")
    from rungs.verify.pool import InlineExecutor

    own = trl_reward("math", executor=InlineExecutor(get_task("math")))  # an Executor object, as VerifierPool takes
    assert own(prompts=["1+1?"], completions=["\\boxed{2}"], answer=["2"]) == [1.0]
    plain, thinking = trl_reward("math"), trl_reward("math", reasoning_delimiters=["</think>"], name="math_after_think")
    assert (plain.__name__, thinking.__name__) == ("math_reward", "math_after_think")
    assert pickle.loads(pickle.dumps(thinking)).__name__ == "math_after_think"


@pytest.mark.parametrize(("kwargs", "named"), [
    ({"task": None}, "task None: expected a task name"), ({"task": 5}, "task 5: expected a task name"),
    ({"reasoning_delimiters": 5}, "reasoning_delimiters 5: expected a list of strings"),
    ({"timeout_s": -1}, "timeout_s -1: expected seconds > 0"), ({"timeout_s": float("nan")}, "timeout_s nan"),
    ({"memory_mb": 0}, "memory_mb 0: expected an integer >= 1"), ({"workers": 0}, "workers 0: expected an integer >= 1"),
])
def test_bad_reward_settings_are_refused_when_the_reward_is_built(kwargs, named):
    """Not at the first call, which inside TRL is the first training step (s35 C2, K3)."""
    from rungs.errors import UserError
    from rungs.integrations import trl_vote_reward

    settings = dict(kwargs)
    task = settings.pop("task", "math")
    for make in (trl_reward, trl_vote_reward):
        with pytest.raises(UserError, match=named):
            make(task, **settings)


@pytest.mark.parametrize("blank", [[""], [" "], ["", "\n"], ""])
def test_blank_reasoning_delimiters_are_dropped_everywhere_as_the_command_line_drops_them(blank):
    """A blank tag never ends the reasoning: kept, it scored every completion 0 (s35 W1)."""
    from rungs.integrations import trl_vote_reward

    assert get_task("math", reasoning_delimiters=blank).reasoning_delimiters is None
    assert get_task("math").with_reasoning(blank).reasoning_delimiters is None
    assert get_task("math").with_reasoning(["", "</think>"]).reasoning_delimiters == ("</think>",)
    reward = trl_reward("math", workers=1, executor="inline", reasoning_delimiters=blank)
    assert reward.__name__ == "math_reward"  # not "_after_reasoning": nothing cuts the reasoning
    assert reward(prompts=["q"], completions=["\\boxed{1}"], answer=["1"]) == [1.0]
    vote = trl_vote_reward("math", workers=1, executor="inline", reasoning_delimiters=blank)
    assert vote(prompts=["q", "q"], completions=["\\boxed{1}"] * 2) == [1.0, 1.0]
    assert compute_score("math", "\\boxed{1}", "1", workers=1, executor="inline", reasoning_delimiters=blank) == 1.0


def test_a_group_whose_reference_cannot_be_read_is_left_out_of_the_label_metrics():
    from rungs.integrations import trl_vote_reward

    said = {}
    vote = trl_vote_reward("math", workers=1, executor="inline")
    prompts = ["a?"] * 3 + ["b?"] * 3
    rewards = vote(prompts=prompts, completions=["\\boxed{2}", "\\boxed{2}", "no answer"] * 2,
                   answer=["2"] * 3 + ["\\frac{"] * 3, log_metric=lambda name, value: said.__setitem__(name, value))
    assert rewards == [1.0, 1.0, 0.0] * 2  # the vote itself needs no label
    assert said["math_vote_reward/label_accuracy"] == 1.0  # group b, whose reference is broken, is not counted
    assert said["math_vote_reward/true_accuracy"] == 2 / 3


def test_a_message_with_parsed_out_thinking_is_read_as_closed_reasoning() -> None:
    """TRL's parse_response (and vLLM's reasoning parsers) move <think>...</think> to `reasoning_content`."""
    from rungs.integrations import trl_reward

    closed = [{"role": "assistant", "reasoning_content": "1+1 is 2", "content": "The answer is \\boxed{2}"}]
    in_thinking = [{"role": "assistant", "reasoning_content": "so \\boxed{2}", "content": "done"}]
    thinking = trl_reward("math", reasoning_delimiters=["</think>"])
    plain = trl_reward("math")
    assert thinking(prompts=["1+1?"] * 2, completions=[closed, in_thinking], answer=["2", "2"]) == [1.0, 0.0]
    assert plain(prompts=["1+1?"] * 2, completions=[closed, in_thinking], answer=["2", "2"]) == [1.0, 1.0]


def test_two_reward_functions_of_one_task_log_under_two_names() -> None:
    from rungs.integrations import trl_reward, trl_vote_reward

    names = {f.__name__ for f in (trl_reward("math"), trl_reward("math", reasoning_delimiters=["</think>"]),
                                  trl_vote_reward("math"), trl_vote_reward("math", reasoning_delimiters=["</think>"]))}
    assert len(names) == 4


def test_bytes_ground_truths_and_zero_width_characters() -> None:
    from rungs.integrations import compute_score

    assert compute_score("math", "\\boxed{2}", b"2") == 1.0  # a parquet binary column, not "b'2'"
    assert compute_score("math", "\\boxed{3}", b"2") == 0.0
    assert compute_score("math", "\\boxed{2\u200b}", "2") == 1.0


def test_numpy_numbers_are_accepted_as_reward_settings():
    np = pytest.importorskip("numpy")
    reward = trl_reward("math", workers=np.int64(1), memory_mb=np.int32(2048), timeout_s=np.float64(5.0), executor="inline")
    assert (reward.workers, reward.memory_mb, reward.timeout_s) == (1, 2048, 5.0)
    assert type(reward.workers) is int and type(reward.timeout_s) is float
    assert reward(prompts=["q"], completions=["\\boxed{1}"], answer=["1"]) == [1.0]
