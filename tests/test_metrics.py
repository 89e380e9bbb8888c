"""pass@k, maj@k, best-of-k, weighted@k and seed statistics, on hand-made samples (no model)."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rungs.metrics import (
    best_of_k,
    maj_at_k,
    mean_std,
    pass_at_k,
    pass_at_k_of,
    select_at_k,
    stable_rng,
    subsets,
    weighted_at_k,
)
from rungs.strategies import best_of_n, majority
from rungs.strategies.base import Sample
from rungs.types import Status, Verdict


def s(key: str | None, correct: bool, mean_logprob: float | None = None) -> Sample:
    verdict = Verdict(1.0, Status.CORRECT) if correct else Verdict.fail(Status.WRONG if key else Status.NO_ANSWER)
    return Sample(f"<answer>{key}</answer>", verdict, key, 5, mean_logprob)


# -- pass@k ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [1, 2, 5, 10, 16, 40])
def test_pass_at_k_matches_the_closed_form(n: int) -> None:
    for c in range(n + 1):
        for k in range(1, n + 1):
            exact = 1 - math.comb(n - c, k) / math.comb(n, k)
            assert pass_at_k(n, c, k) == pytest.approx(exact, abs=1e-12), (n, c, k)


def test_pass_at_k_edge_cases() -> None:
    assert pass_at_k(10, 0, 1) == 0.0
    assert pass_at_k(10, 0, 10) == 0.0
    assert pass_at_k(10, 10, 1) == 1.0
    assert pass_at_k(10, 1, 10) == 1.0  # k = n: any correct sample is in the only subset
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)
    assert pass_at_k(4, 1, 2) == pytest.approx(0.5)  # 1 - C(3,2)/C(4,2) = 1 - 3/6


def test_pass_at_k_is_stable_for_large_n() -> None:
    # C(1000, 500) overflows a float; the product form does not.
    value = pass_at_k(1000, 1, 500)
    assert value == pytest.approx(0.5)
    assert 0.0 <= pass_at_k(100_000, 3, 64) <= 1.0


@pytest.mark.parametrize("n,c,k", [(5, 6, 1), (5, -1, 1), (5, 2, 0), (5, 2, 6)])
def test_pass_at_k_rejects_impossible_counts(n: int, c: int, k: int) -> None:
    with pytest.raises(ValueError):
        pass_at_k(n, c, k)


# -- selectors at k ----------------------------------------------------------------------------------
def test_maj_and_best_of_k_on_hand_made_samples() -> None:
    samples = [s("A", True), s("B", False), s("B", False), s(None, False)]
    assert maj_at_k(samples, 4) == 0.0  # B wins 2 to 1
    assert best_of_k(samples, 4) == 1.0  # the verifier finds A
    assert pass_at_k_of(samples, 4) == 1.0
    # k = 1: the four singletons; only A is right, the answerless one does not vote.
    assert maj_at_k(samples, 1) == pytest.approx(0.25)
    assert best_of_k(samples, 1) == pytest.approx(0.25)
    # k = 2: six pairs; A wins alone with the None sample, ties 1-1 with a B (half credit).
    # {A,B1}: .5  {A,B2}: .5  {A,None}: 1  {B1,B2}: 0  {B,None} x2: 0  -> 2/6
    assert maj_at_k(samples, 2) == pytest.approx(2 / 6)
    assert best_of_k(samples, 2) == pytest.approx(3 / 6)


def test_weighted_at_k_prefers_confident_answers() -> None:
    sure, unsure = 0.0, math.log(0.2)
    samples = [s("A", True, sure), s("B", False, unsure), s("B", False, unsure)]
    assert maj_at_k(samples, 3) == 0.0
    assert weighted_at_k(samples, 3) == 1.0  # 1.0 for A against 0.2 + 0.2 for B


def test_subsets_enumerates_when_few_and_samples_when_many() -> None:
    assert subsets(4, 2, count=32) == [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]
    drawn = subsets(16, 8, count=10, rng=random.Random(1))
    assert len(drawn) == 10 and all(len(set(x)) == 8 and max(x) < 16 for x in drawn)
    assert subsets(16, 16, count=10) == [tuple(range(16))]
    assert stable_rng("a", 1).random() == stable_rng("a", 1).random()
    assert stable_rng("a", 1).random() != stable_rng("a", 2).random()


def test_mean_std_over_seeds() -> None:
    assert mean_std([0.5]) == (0.5, 0.0)
    mean, std = mean_std([0.2, 0.4, 0.6])
    assert mean == pytest.approx(0.4) and std == pytest.approx(0.2)  # sample std (n - 1)
    assert all(math.isnan(x) for x in mean_std([]))


# -- properties ----------------------------------------------------------------------------------------
sample_sets = st.lists(
    st.tuples(st.sampled_from(["A", "B", "C", None]), st.booleans()), min_size=1, max_size=12
).map(lambda rows: [s(key, correct and key is not None) for key, correct in rows])


@settings(max_examples=150, deadline=None)
@given(sample_sets)
def test_pass_at_k_non_decreasing_and_oracle_best_of_k_at_least_maj(samples: list[Sample]) -> None:
    n = len(samples)
    values = [pass_at_k_of(samples, k) for k in range(1, n + 1)]
    assert all(a <= b + 1e-12 for a, b in zip(values, values[1:]))
    for k in range(1, n + 1):
        idx = subsets(n, k, count=16, rng=random.Random(k))
        best = select_at_k(samples, k, best_of_n, index_sets=idx)
        maj = select_at_k(samples, k, majority, index_sets=idx)
        assert best >= maj - 1e-12
        assert 0.0 <= maj <= 1.0
        # Averaged over all subsets, best-of-k (oracle, 0/1 rewards) is exactly pass@k.
        if math.comb(n, k) <= 16:
            assert best == pytest.approx(pass_at_k_of(samples, k))
