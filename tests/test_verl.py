"""veRL adapters called exactly as veRL 0.9 calls them, with ground truths as pandas reads parquet.

veRL's naive / reward-loop managers call `compute_score(data_source=, solution_str=,
ground_truth=, extra_info=, **reward_kwargs)` once per response; its batch manager calls
`compute_score(data_sources=, solution_strs=, ground_truths=, extra_infos=, **reward_kwargs)`
with numpy object arrays (`non_tensor_batch`) and rows repeated `rollout.n` times (interleaved).
"""

from __future__ import annotations

import numpy as np
import pytest

from rungs.integrations import compute_score, compute_score_batch, compute_score_vote_batch, verl_group_key
from rungs.types import Problem, answer_text, to_builtin

pd = pytest.importorskip("pandas")
pytest.importorskip("pyarrow")


def test_numpy_ground_truths_for_every_task() -> None:
    # issue 9 item 7: every countdown row of a veRL job built from parquet used to score 0
    assert compute_score("countdown", "<answer>44 + 19 + 35</answer>", {"target": 98, "numbers": np.array([44, 19, 35])}) == 1.0
    assert compute_score("countdown", "<answer>44 + 19 + 35</answer>", {"target": np.int64(98), "nums": np.array([44, 19, 35])}) == 1.0
    assert compute_score("countdown", "<answer>44 + 19</answer>", {"target": np.int64(98), "nums": np.array([44, 19, 35])}) == 0.0
    for truth in (np.str_("12"), np.int64(12), np.float64(12.0), np.array(["12"], dtype=object), np.array([12])):
        assert compute_score("openai/gsm8k", "so \\boxed{12}", truth) == 1.0, truth
    assert compute_score("openai/gsm8k", "so \\boxed{13}", np.int64(12)) == 0.0
    assert compute_score("integration", "<answer>x**2/2</answer>", np.str_("integrate(x, x)")) == 1.0
    # nested in dicts and lists, numpy in extra_info too
    gt = {"answer": np.array(["0.5"], dtype=object)}
    assert compute_score("math", "\\boxed{\\frac12}", gt, {"index": np.int64(4), "question": np.str_("1/2?")}) == 1.0


def test_problem_turns_numpy_into_python() -> None:
    p = Problem("a", "t", np.int64(5), {"numbers": np.array([1, 2]), "deep": {"k": [np.float64(1.5), np.str_("s")]}})
    assert p.answer == "5" and type(p.meta["numbers"]) is list and type(p.meta["numbers"][0]) is int
    assert p.meta["deep"] == {"k": [1.5, "s"]} and type(p.meta["deep"]["k"][1]) is str
    assert to_builtin((np.int32(1), [np.bool_(True)])) == (1, [True])
    assert answer_text(np.array([7])) == "7" and answer_text(" ") is None and answer_text(None) is None


def _parquet_rows(tmp_path, rows):
    """Write rows as veRL's preprocessors do (a DataFrame -> parquet per data source: a struct
    ground truth and a string one cannot share a column) and read them back with pandas."""
    frames = []
    for k, row in enumerate(rows):
        path = tmp_path / f"part{k}.parquet"
        pd.DataFrame([row]).to_parquet(path)
        frames.append(pd.read_parquet(path))
    return pd.concat(frames, ignore_index=True)


def test_parquet_round_trip_as_the_batch_manager_passes_it(tmp_path) -> None:
    rows = [
        {"data_source": "countdown", "prompt": [{"role": "user", "content": "Using [44, 19, 35] make 98"}],
         "reward_model": {"style": "rule", "ground_truth": {"target": 98, "numbers": [44, 19, 35]}},
         "extra_info": {"split": "train", "index": 0}},
        {"data_source": "openai/gsm8k", "prompt": [{"role": "user", "content": "6*2?"}],
         "reward_model": {"style": "rule", "ground_truth": "12"}, "extra_info": {"split": "train", "index": 1}},
        {"data_source": "integration", "prompt": [{"role": "user", "content": "integrate"}],
         "reward_model": {"style": "rule", "ground_truth": "integrate(cos(x), x)"}, "extra_info": {"split": "train", "index": 2}},
    ]
    df = _parquet_rows(tmp_path, rows)
    assert isinstance(df["reward_model"][0]["ground_truth"]["numbers"], np.ndarray)  # what veRL really gets
    n = 2  # rollout.n, interleaved as DataProto.repeat(interleave=True) does
    data_sources = np.repeat(df["data_source"].to_numpy(), n)
    extras = np.repeat(df["extra_info"].to_numpy(), n)
    truths = [rm["ground_truth"] for rm in np.repeat(df["reward_model"].to_numpy(), n)]
    responses = ["<answer>44+19+35</answer>", "<answer>44*19</answer>", "\\boxed{12}", "\\boxed{11}",
                 "<answer>sin(x)</answer>", "<answer>-sin(x)</answer>"]
    scores = compute_score_batch(data_sources=data_sources, solution_strs=responses, ground_truths=truths, extra_infos=extras)
    assert scores == [1.0, 0.0, 1.0, 0.0, 1.0, 0.0]
    dicts = compute_score_batch(data_sources=data_sources, solution_strs=responses, ground_truths=truths,
                                extra_infos=extras, return_dict=True)
    assert [d["score"] for d in dicts] == scores and dicts[0]["acc"] == 1.0 and dicts[2]["pred"] == "12"
    assert all(set(d) == {"score", "acc", "pred", "no_answer", "verifier_failed", "unlabelled"} for d in dicts)
    # the per-sample form, with keywords, as the naive manager calls it (with an extra kwarg)
    for i in range(len(responses)):
        assert compute_score(data_source=data_sources[i], solution_str=responses[i], ground_truth=truths[i],
                             extra_info=extras[i], reward_router_address=None) == scores[i]
    one = compute_score(data_source="countdown", solution_str="no answer", ground_truth=truths[0], extra_info=extras[0],
                        return_dict=True)
    assert one["score"] == 0.0 and one["no_answer"] == 1.0


def test_vote_batch_groups_responses_of_one_prompt(tmp_path) -> None:
    rows = [{"data_source": "openai/gsm8k", "reward_model": {"ground_truth": gt}, "extra_info": {"split": "test", "index": i}}
            for i, gt in enumerate(["1000", None])]
    df = _parquet_rows(tmp_path, rows)
    n = 4
    sources = np.repeat(df["data_source"].to_numpy(), n)
    extras = np.repeat(df["extra_info"].to_numpy(), n)
    truths = [rm["ground_truth"] for rm in np.repeat(df["reward_model"].to_numpy(), n)]
    responses = ["\\boxed{1000}", "so \\boxed{1000}", "\\boxed{999}", "nothing",  # prompt 0: 1000 wins 2 to 1
                 "\\boxed{7}", "\\boxed{8}", "\\boxed{8}", "\\boxed{8.0}"]      # prompt 1 (no label): 8 wins
    out = compute_score_vote_batch(data_sources=sources, solution_strs=responses, ground_truths=truths, extra_infos=extras)
    assert [d["score"] for d in out] == [1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0]
    assert out[0]["label_acc"] == 1.0 and out[0]["acc"] == 1.0 and out[2]["acc"] == 0.0
    assert out[0]["majority_ratio"] == 0.5 and out[5]["majority_ratio"] == 0.75
    floats = compute_score_vote_batch(sources, responses, None, extras, return_dict=False)  # no ground truths at all
    assert floats == [d["score"] for d in out]


def test_group_key_order() -> None:
    assert verl_group_key("m", "1", {"uid": "u1", "index": 3}) == verl_group_key("m", "2", {"uid": "u1", "index": 4})
    assert verl_group_key("m", "1", {"index": 3, "split": "a"}) != verl_group_key("m", "1", {"index": 3, "split": "b"})
    assert verl_group_key("m", "1", None) == verl_group_key("m", "1", {}) != verl_group_key("m", "2", None)
    assert verl_group_key("m", {"numbers": np.array([1, 2])}, None) == verl_group_key("m", {"numbers": [1, 2]}, None)
