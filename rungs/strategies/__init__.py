"""Test-time strategies: how samples are drawn (samplers) and how k of them become one answer (selectors).

    samplers   greedy, sample, fire[:T[:K]], budget_forcing[:WAITS[:THINK_TOKENS]]
    selectors  best_of_n[:SCORER], majority, weighted[:SCORER]

Selectors are pure functions of `Sample`s (see `base.py`): `majority(samples)`,
`best_of_n(samples, scorer)`, `weighted(samples, scorer)` work on hand-made samples with no
model. Look a strategy up by spec with `load_strategy("fire:30:16")`; `plan(["greedy",
"majority"])` splits a list of specs into what an evaluation has to sample and to select.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rungs.errors import UserError
from rungs.registry import Registry, build
from rungs.strategies.base import (
    Choice,
    Sample,
    Sampler,
    Scorer,
    Selector,
    Strategy,
    logprob_score,
    oracle_score,
    prob_score,
    resolve_scorer,
)
from rungs.strategies.best_of_n import best_of_n
from rungs.strategies.majority import majority, vote
from rungs.strategies.weighted import weighted

STRATEGIES: Registry[Any] = Registry("strategy")  # name -> factory(arg) -> Strategy
STRATEGIES.register("greedy", "rungs.strategies.greedy:Greedy.from_spec")
STRATEGIES.register("sample", "rungs.strategies.sample:Sampling.from_spec")
STRATEGIES.register("fire", "rungs.strategies.fire:Fire.from_spec")
STRATEGIES.register("budget_forcing", "rungs.strategies.budget_forcing:BudgetForcing.from_spec")
STRATEGIES.register("best_of_n", "rungs.strategies.best_of_n:BestOfN.from_spec")
STRATEGIES.register("majority", "rungs.strategies.majority:Majority.from_spec")
STRATEGIES.register("weighted", "rungs.strategies.weighted:Weighted.from_spec")


def load_strategy(spec: str) -> Strategy:
    """'majority', 'best_of_n:logprob', 'fire:30:16', ... -> a Sampler or Selector instance."""
    return build(STRATEGIES, spec.strip())


@dataclass(frozen=True)
class Plan:
    """What an evaluation does for a list of strategy specs.

    greedy: the greedy sampler, if asked for (one sample per problem, a flat line).
    samplers: the sample sets to draw at the largest n; each is reported as pass@k and scored
        with every selector. Plain sampling is implied when selectors are asked for without one.
    selectors: applied to each sample set at each k by subsampling.
    """

    greedy: Sampler | None
    samplers: tuple[Sampler, ...]
    selectors: tuple[Selector, ...]


def plan(specs: Sequence[str]) -> Plan:
    """Split strategy specs into samplers and selectors; duplicates are an error."""
    from rungs.strategies.greedy import Greedy
    from rungs.strategies.sample import Sampling

    if not specs:
        raise UserError("no strategy given: expected a comma-separated list such as greedy,majority,best_of_n")
    greedy: Sampler | None = None
    samplers: list[Sampler] = []
    selectors: list[Selector] = []
    seen: set[str] = set()
    for spec in specs:
        strategy = load_strategy(spec)
        if strategy.label in seen:
            raise UserError(f"strategy {spec!r} is given twice")
        seen.add(strategy.label)
        if isinstance(strategy, Greedy):
            greedy = strategy
        elif isinstance(strategy, Sampler):
            samplers.append(strategy)
        else:
            selectors.append(strategy)  # type: ignore[arg-type]
    if selectors and not samplers:
        samplers.append(Sampling())
    return Plan(greedy, tuple(samplers), tuple(selectors))


__all__ = [
    "STRATEGIES",
    "Choice",
    "Plan",
    "Sample",
    "Sampler",
    "Scorer",
    "Selector",
    "Strategy",
    "best_of_n",
    "load_strategy",
    "logprob_score",
    "majority",
    "oracle_score",
    "plan",
    "prob_score",
    "resolve_scorer",
    "vote",
    "weighted",
]
