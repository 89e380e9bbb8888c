"""Accuracy at k samples: pass@k, maj@k, best-of-k, weighted@k; and mean/std over seeds.

An evaluation samples N completions per problem once and reads every k <= N off them:

- pass@k uses the unbiased estimator of Chen et al. (2021), 1 - C(n-c, k) / C(n, k), written as
  a product so that it neither overflows nor loses precision for large n;
- a selector (majority, best-of-n, weighted) has no closed form, so it is averaged over random
  subsets of size k of the N samples (as Hugging Face's search-and-learn does), or over all of
  them when there are few. Every selector sees the same subsets, so per subset best-of-k (oracle)
  is never below maj@k, and their curves are comparable point by point.
"""

from __future__ import annotations

import itertools
import math
import random
import statistics
import zlib
from collections.abc import Callable, Sequence

import numpy as np

from rungs.strategies.base import Choice, Sample
from rungs.strategies.best_of_n import best_of_n
from rungs.strategies.majority import majority
from rungs.strategies.weighted import weighted

SelectFn = Callable[[Sequence[Sample]], Choice]
DEFAULT_SUBSETS = 64


def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of k samples drawn without replacement from n, c of them
    correct, is correct: 1 - C(n-c, k) / C(n, k) = 1 - prod_{i=n-c+1}^{n} (1 - k/i)."""
    if not 0 <= c <= n:
        raise ValueError(f"need 0 <= c <= n, got n={n}, c={c}")
    if not 1 <= k <= n:
        raise ValueError(f"need 1 <= k <= n, got n={n}, k={k}")
    if n - c < k:  # every k-subset holds a correct sample
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1, dtype=np.float64)))


def stable_rng(*parts: object) -> random.Random:
    """A `random.Random` seeded from `parts` (e.g. seed, problem id, k) the same way in every
    process and run, so that subsets do not depend on processing order or hash randomisation."""
    return random.Random(zlib.crc32("\x1f".join(map(str, parts)).encode("utf-8")))


def subsets(n: int, k: int, count: int = DEFAULT_SUBSETS, rng: random.Random | None = None) -> list[tuple[int, ...]]:
    """Index subsets of size k of range(n): all of them when there are at most `count`, else
    `count` uniformly random ones (independent draws, so the average stays unbiased)."""
    if not 1 <= k <= n:
        raise ValueError(f"need 1 <= k <= n, got n={n}, k={k}")
    if math.comb(n, k) <= count:
        return list(itertools.combinations(range(n), k))
    rng = rng or random.Random(0)
    return [tuple(sorted(rng.sample(range(n), k))) for _ in range(count)]


def select_at_k(samples: Sequence[Sample], k: int, select: SelectFn, *, count: int = DEFAULT_SUBSETS,
                rng: random.Random | None = None, index_sets: Sequence[Sequence[int]] | None = None) -> float:
    """Expected correctness of `select` on k of the samples, averaged over subsets (`index_sets`
    when given, else drawn with `subsets`)."""
    if index_sets is None:
        index_sets = subsets(len(samples), k, count, rng)
    return sum(select([samples[i] for i in idx]).correct for idx in index_sets) / len(index_sets)


def maj_at_k(samples: Sequence[Sample], k: int, **kwargs: object) -> float:
    """Majority vote over k samples (self-consistency), averaged over subsets."""
    return select_at_k(samples, k, majority, **kwargs)  # type: ignore[arg-type]


def best_of_k(samples: Sequence[Sample], k: int, **kwargs: object) -> float:
    """Best of k samples under the verifier (oracle), averaged over subsets."""
    return select_at_k(samples, k, best_of_n, **kwargs)  # type: ignore[arg-type]


def weighted_at_k(samples: Sequence[Sample], k: int, **kwargs: object) -> float:
    """Votes weighted by exp(mean log-prob) over k samples, averaged over subsets."""
    return select_at_k(samples, k, weighted, **kwargs)  # type: ignore[arg-type]


def pass_at_k_of(samples: Sequence[Sample], k: int) -> float:
    """pass@k of a problem's samples."""
    return pass_at_k(len(samples), sum(s.correct for s in samples), k)


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (n-1 in the denominator; 0 for a single value)."""
    if not values:
        return math.nan, math.nan
    mean = statistics.fmean(values)
    return mean, (statistics.stdev(values) if len(values) > 1 else 0.0)
