"""Selectors on hand-made samples, the strategy registry, and samplers against fake policies."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pytest

from rungs.errors import UserError
from rungs.policies.base import Policy, SamplingParams
from rungs.strategies import best_of_n, load_strategy, majority, plan, vote, weighted
from rungs.strategies.base import NO_CHOICE, Sample, key_str, logprob_score
from rungs.strategies.budget_forcing import BudgetForcing
from rungs.types import Completion, Status, Verdict


def s(key: str | None, correct: bool, mean_logprob: float | None = None, reward: float | None = None) -> Sample:
    if correct:
        verdict = Verdict(1.0, Status.CORRECT)
    else:
        verdict = Verdict(reward or 0.0, Status.WRONG if key else Status.NO_ANSWER)
    return Sample(f"<answer>{key}</answer>", verdict, key, 3, mean_logprob)


# -- selectors -----------------------------------------------------------------------------------------
def test_majority_groups_by_key_and_ignores_answerless_samples() -> None:
    samples = [s(None, False), s(None, False), s(None, False), s("x**2/2", True), s("x**2/2", True), s("x", False)]
    choice = majority(samples)
    assert choice.index == 3 and choice.correct == 1.0
    assert majority([s(None, False)] * 3) == NO_CHOICE
    assert majority([]) == NO_CHOICE


def test_majority_tie_gives_expected_correctness_and_first_index() -> None:
    choice = majority([s("b", False), s("a", True), s("a", True), s("b", False), s("c", False)])
    assert choice.index == 0  # "b" was seen first among the tied answers
    assert choice.correct == pytest.approx(0.5)


def test_best_of_n_oracle_and_scorer() -> None:
    samples = [s("a", False, -0.1, reward=0.1), s("b", True, -2.0), s("c", False, -0.5)]
    assert best_of_n(samples).index == 1  # the verifier knows
    by_confidence = best_of_n(samples, logprob_score)
    assert by_confidence.index == 0 and by_confidence.correct == 0.0
    # Ties (no log-probs at all) are broken at random in expectation.
    assert best_of_n([s("a", True), s("b", False)], logprob_score).correct == pytest.approx(0.5)
    assert best_of_n([]) == NO_CHOICE


def test_weighted_sums_scores_per_distinct_answer() -> None:
    samples = [s("a", True, math.log(0.9)), s("b", False, math.log(0.3)), s("b", False, math.log(0.3)),
               s("b", False, math.log(0.25))]
    assert majority(samples).correct == 0.0
    # b has three votes but 0.3 + 0.3 + 0.25 = 0.85 of weight; a has one vote of weight 0.9.
    assert weighted(samples).correct == 1.0 and weighted(samples).index == 0
    # An explicit scorer replaces the confidence; vote() with no weight is majority.
    assert weighted(samples, lambda x: 1.0).index == majority(samples).index == vote(samples).index == 1


def test_sample_round_trips_through_json_and_keys_are_stable() -> None:
    c = Completion("<answer>3</answer>", [1, 2, 3], [-0.5, -0.25, -0.75], "stop")
    sample = Sample.from_completion(c, Verdict(1.0, Status.CORRECT, answer="3"), ("3", 1))
    assert sample.mean_logprob == pytest.approx(-0.5) and sample.num_tokens == 3
    assert Sample.from_dict(sample.to_dict()) == sample
    assert key_str(frozenset({"b", "a", "c"})) == "{a, b, c}"
    assert key_str(None) is None and key_str("x") == "x"


# -- registry and plans ----------------------------------------------------------------------------------
def test_registry_specs_and_labels() -> None:
    assert load_strategy("majority").label == "maj@k"
    assert load_strategy("best_of_n").label == "best-of-k"
    assert load_strategy("best_of_n:logprob").label == "best-of-k[logprob]"
    assert load_strategy("weighted").label == "weighted@k"
    fire = load_strategy("fire:20:8")
    params = fire.params(SamplingParams(temperature=0.7))
    assert (params.first_token_temperature, params.first_token_top_k, params.temperature) == (20.0, 8, 0.7)
    greedy = load_strategy("greedy")
    assert greedy.params(SamplingParams(temperature=1.0, first_token_temperature=30.0)).greedy
    with pytest.raises(UserError, match="did you mean 'majority'"):
        load_strategy("majorty")
    for bad in ("fire:hot", "budget_forcing:x", "majority:3", "weighted:logprob", "best_of_n:nosuch"):
        with pytest.raises(UserError):
            load_strategy(bad)


def test_plan_implies_plain_sampling_for_selectors() -> None:
    p = plan(["greedy", "majority", "best_of_n"])
    assert p.greedy is not None and [x.label for x in p.samplers] == ["pass@k"]
    assert [x.label for x in p.selectors] == ["maj@k", "best-of-k"]
    p = plan(["fire", "weighted"])
    assert [x.label for x in p.samplers] == ["fire"]
    with pytest.raises(UserError, match="twice"):
        plan(["majority", "majority"])


# -- budget forcing --------------------------------------------------------------------------------------
class ThinkingPolicy(Policy):
    """Thinks `chunk` tokens, then tries to close its thinking; after it, answers 42."""

    name = "fake-thinker"

    def __init__(self, chunk: int = 5, keep_stop_string: bool = False) -> None:
        self.chunk = chunk
        self.keep_stop_string = keep_stop_string
        self.calls: list[tuple[list[str], int, SamplingParams]] = []

    def generate(self, prompts: Sequence[str], n: int = 1, sampling: SamplingParams | None = None) -> list[list[Completion]]:
        sampling = sampling or SamplingParams()
        self.calls.append((list(prompts), n, sampling))
        out = []
        for prompt in prompts:
            if prompt.endswith("</think>"):
                text, ids, reason = " <answer>42</answer>", [7, 7, 7], "stop"
            else:
                want = self.chunk
                if want > sampling.max_new_tokens:  # out of budget: cut mid-thought
                    text, ids, reason = "hm " * sampling.max_new_tokens, [1] * sampling.max_new_tokens, "length"
                else:
                    text, ids, reason = "hm " * want, [1] * want, "stop"
                    if self.keep_stop_string:
                        text += "</think>"
            out.append([Completion(text, list(ids), [-0.1] * len(ids), reason) for _ in range(n)])
        return out


@pytest.mark.parametrize("keep_stop_string", [False, True])
@pytest.mark.parametrize("waits", [0, 1, 3])
def test_budget_forcing_appends_wait_the_configured_number_of_times(waits: int, keep_stop_string: bool) -> None:
    policy = ThinkingPolicy(chunk=5, keep_stop_string=keep_stop_string)
    bf = BudgetForcing(waits=waits, think_tokens=100)
    (row,) = bf.generate(policy, ["Q:"], 2, SamplingParams(max_new_tokens=100, seed=1))
    assert len(row) == 2
    for c in row:
        assert c.text.count("Wait") == waits
        assert c.text.count("</think>") == 1 and c.text.endswith("<answer>42</answer>")
        assert c.num_tokens == 5 * (waits + 1) + 3  # thinking rounds + the answer round
        assert len(c.logprobs) == c.num_tokens
    # Every continuation prompt is the prompt plus the text so far, ending in "Wait".
    for prompts, _, sampling in policy.calls[1:-1]:
        assert all(p.startswith("Q:") and p.endswith("Wait") for p in prompts)
        assert "</think>" in sampling.stop
    assert policy.calls[-1][0][0].endswith("</think>")  # the answer round
    assert "</think>" not in policy.calls[-1][2].stop


def test_budget_forcing_cuts_thinking_at_the_budget() -> None:
    policy = ThinkingPolicy(chunk=50)
    bf = BudgetForcing(waits=2, think_tokens=8)
    (row,) = bf.generate(policy, ["Q:"], 1, SamplingParams(max_new_tokens=256))
    (c,) = row
    assert "Wait" not in c.text  # it never got to end its thinking by itself
    assert c.text.count("</think>") == 1 and c.text.endswith("<answer>42</answer>")
    assert c.num_tokens == 8 + 3
    assert policy.calls[0][2].max_new_tokens == 8


class TemplatedThinker(ThinkingPolicy):
    """A chat-templated policy with a raw mode, like an hf policy with a chat template."""

    def __init__(self) -> None:
        super().__init__(chunk=5)
        self.raw_prompts = False
        self.seen_raw: list[bool] = []

    def format_prompt(self, prompt: str) -> str:
        return f"<user>{prompt}</user><assistant><think>"

    def generate(self, prompts, n=1, sampling=None):
        self.seen_raw.append(self.raw_prompts)
        return super().generate(prompts if self.raw_prompts else [self.format_prompt(p) for p in prompts], n, sampling)


def test_budget_forcing_formats_once_and_continues_raw() -> None:
    policy = TemplatedThinker()
    (row,) = BudgetForcing(waits=1).generate(policy, ["Q:"], 1, SamplingParams(max_new_tokens=50))
    assert policy.seen_raw == [True, True, True] and policy.raw_prompts is False  # restored afterwards
    assert all(p.startswith("<user>Q:</user><assistant><think>") for prompts, _, _ in policy.calls for p in prompts)
    assert row[0].text.count("Wait") == 1


def test_budget_forcing_refuses_policies_that_cannot_continue_text() -> None:
    class Chat(ThinkingPolicy):
        endpoint = "chat"

    class TemplatedNoRaw(ThinkingPolicy):
        def format_prompt(self, prompt: str) -> str:
            return f"<user>{prompt}</user>"

    for policy in (Chat(), TemplatedNoRaw()):
        with pytest.raises(UserError, match="budget_forcing"):
            BudgetForcing().generate(policy, ["Q:"], 1, SamplingParams())


def test_a_sample_with_a_zero_probability_token_weighs_nothing_in_a_weighted_vote() -> None:
    from rungs.strategies.base import Sample, prob_score
    from rungs.strategies.weighted import weighted
    from rungs.types import Completion, Status, Verdict

    right, wrong = Verdict(1.0, Status.CORRECT, "", "A"), Verdict.fail(Status.WRONG, "", "B")
    samples = [Sample.from_completion(Completion("A", [1, 2], [-1.0, -1.0]), right, "A") for _ in range(2)]
    samples.append(Sample.from_completion(Completion("B", [1, 2], [-0.1, float("-inf")]), wrong, "B"))
    assert prob_score(samples[2]) == 0.0
    assert weighted(samples).index in (0, 1)
    nan = Sample.from_completion(Completion("B", [1], [float("nan")]), wrong, "B")
    assert nan.mean_logprob is None  # no usable log-probs: a plain vote's weight
