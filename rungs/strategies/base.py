"""What every test-time strategy works on: the N samples of one problem, and what comes back.

There are two kinds of strategy, kept apart so that each stays a few lines:

- a *sampler* decides how the N samples of a problem are drawn (greedy, plain sampling, FIRE,
  budget forcing). It is the only kind that talks to a policy.
- a *selector* turns k samples into one final answer (best-of-n, majority, weighted majority).
  It is a pure function of the samples -- no model, no verifier call -- so an evaluation draws
  N samples once and then varies k after the fact by subsampling. As in lm-evaluation-harness's
  filters, maj@k is configuration (which selector, which k), not a class of its own.

A `Sample` is flat and JSON-round-trippable (the evaluation's resume file stores exactly this),
so selecting from samples read back from disk gives bit-for-bit what selecting from fresh ones
gives.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from rungs.policies.base import Policy, SamplingParams
from rungs.types import Completion, Verdict, key_str

# The mean log-prob kept for a sample with a token of probability 0 (finite, so results stay plain
# JSON; exp(LOGPROB_FLOOR) is 0.0).
LOGPROB_FLOOR = -1e9


@dataclass(frozen=True)
class Sample:
    """One verified completion of a problem, with the answer key it votes under.

    key: the task's answer key (as `key_str`), None when the completion has no usable answer --
         such a sample never wins a vote.
    mean_logprob: mean per-token log-prob of the completion under the sampling policy (None when
         the policy cannot give log-probs); weighted voting uses exp(mean_logprob).
    """

    text: str
    verdict: Verdict
    key: str | None = None
    num_tokens: int = 0
    mean_logprob: float | None = None
    finish_reason: str = "stop"

    @property
    def correct(self) -> bool:
        return self.verdict.correct

    @classmethod
    def from_completion(cls, completion: Completion, verdict: Verdict, key: Hashable | None = None) -> Sample:
        """A sample of `completion`; a mean log-prob of -inf (a token the policy gave probability 0)
        is kept as LOGPROB_FLOOR, so that it weighs 0 in a weighted vote (`prob_score`), not 1 like
        a sample without log-probs; NaN counts as no log-probs."""
        mlp = completion.mean_logprob()
        if mlp is not None and math.isnan(mlp):
            mlp = None
        return cls(completion.text, verdict, key_str(key), completion.num_tokens,
                   None if mlp is None else float(min(max(mlp, LOGPROB_FLOOR), 0.0)), completion.finish_reason)

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "verdict": self.verdict.to_dict(), "key": self.key, "num_tokens": self.num_tokens,
                "mean_logprob": self.mean_logprob, "finish_reason": self.finish_reason}

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> Sample:
        return cls(row["text"], Verdict.from_dict(row["verdict"]), row.get("key"), int(row.get("num_tokens", 0)),
                   row.get("mean_logprob"), row.get("finish_reason", "stop"))


@dataclass(frozen=True)
class Choice:
    """A selector's result.

    index: the chosen sample (the first one among equally good candidates); None when no sample
           had an answer that could be chosen.
    correct: the probability that the answer returned is correct when ties are broken uniformly
           at random, in [0, 1]. Using the expectation rather than one arbitrary tie-break makes
           maj@k curves smooth and independent of sample order.
    """

    index: int | None
    correct: float


NO_CHOICE = Choice(None, 0.0)

# A scorer rates one sample (higher is better): a reward model, a confidence, the verifier itself.
Scorer = Callable[[Sample], float]


class Strategy:
    """Common base: a registry name, a kind, and the label it is reported under."""

    kind: ClassVar[str] = ""
    name: str = ""

    @property
    def label(self) -> str:
        return self.name

    def describe(self) -> str:
        return self.label

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.label!r})"


class Selector(Strategy):
    """k samples -> one answer. Subclasses implement `select`; it must not call any model."""

    kind = "selector"

    def select(self, samples: Sequence[Sample]) -> Choice:
        raise NotImplementedError

    def __call__(self, samples: Sequence[Sample]) -> Choice:
        return self.select(samples)


class Sampler(Strategy):
    """How the samples of a problem are drawn. The default is one `policy.generate` call with
    this sampler's changes to the sampling parameters (`params`)."""

    kind = "sampler"
    # How many samples this sampler draws per problem regardless of the requested n (greedy: 1).
    fixed_n: int | None = None
    # Prefix of the metrics of this sampler's sample set ("" for plain sampling, "fire", ...).
    prefix: str = ""

    def params(self, base: SamplingParams) -> SamplingParams:
        return base

    def generate(self, policy: Policy, prompts: Sequence[str], n: int, base: SamplingParams) -> list[list[Completion]]:
        """For each prompt, `n` completions (`fixed_n` when set)."""
        return policy.generate(list(prompts), self.fixed_n or n, self.params(base))


def no_arg(cls_name: str, arg: str | None) -> None:
    """Registry factories of strategies that take no argument call this to refuse one."""
    from rungs.errors import UserError

    if arg:
        raise UserError(f"strategy {cls_name!r} takes no argument, got {cls_name}:{arg}")


def spec_args(arg: str, first: Callable[[str], Any], second: Callable[[str], Any], default: Any, usage: str) -> tuple[Any, Any]:
    """'A' or 'A:B' from a strategy spec's argument, converted; anything else is a UserError with `usage`."""
    from rungs.errors import UserError

    parts = arg.split(":")
    try:
        if len(parts) > 2:
            raise ValueError
        return first(parts[0]), (second(parts[1]) if len(parts) == 2 else default)
    except ValueError:
        raise UserError(usage) from None


# -- scorers -------------------------------------------------------------------------------------
def oracle_score(sample: Sample) -> float:
    """The task's verifier as the scorer: any correct sample beats every wrong one."""
    return (1.0 if sample.correct else 0.0) + sample.verdict.reward


def logprob_score(sample: Sample) -> float:
    """Mean per-token log-prob (the model's confidence); -inf when the policy gave none."""
    return -math.inf if sample.mean_logprob is None else sample.mean_logprob


def prob_score(sample: Sample) -> float:
    """exp(mean per-token log-prob), in (0, 1]; 1 when the policy gave no log-probs (plain votes)."""
    return 1.0 if sample.mean_logprob is None else math.exp(sample.mean_logprob)


BUILTIN_SCORERS: dict[str, Scorer] = {"oracle": oracle_score, "logprob": logprob_score, "prob": prob_score}


def resolve_scorer(spec: str) -> Scorer:
    """'oracle' | 'logprob' | 'prob' | 'package.module:function' (a callable Sample -> float)."""
    import importlib

    from rungs.errors import UserError

    if spec in BUILTIN_SCORERS:
        return BUILTIN_SCORERS[spec]
    module, sep, attr = spec.partition(":")
    if not sep or not module or not attr:
        raise UserError(f"unknown scorer {spec!r}: expected one of {', '.join(BUILTIN_SCORERS)} "
                        f"or 'package.module:function'")
    try:
        target: Any = importlib.import_module(module)
        for part in attr.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as err:
        raise UserError(f"scorer {spec!r}: cannot import it ({err})") from None
    if not callable(target):
        raise UserError(f"scorer {spec!r} is not callable; expected a function Sample -> float")
    return target
