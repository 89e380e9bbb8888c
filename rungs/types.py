"""The small typed records that flow between the layers.

Problem -> (Policy) -> Completion -> (Task.verify) -> Verdict; the three together are a Rollout.
They are plain dataclasses so that they serialise to JSON lines with `to_dict` and come back with
`from_dict`, which is how run directories store rollouts.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Problem:
    """One problem. `answer` is None when the problem is unlabelled (test-time RL needs no label)."""

    id: str
    text: str
    answer: str | None = None
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "problem": self.text, "answer": self.answer, "meta": dict(self.meta)}

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> Problem:
        return cls(
            id=str(row["id"]),
            text=row.get("problem", row.get("text")),
            answer=row.get("answer"),
            meta=dict(row.get("meta") or {}),
        )


class Status(str, enum.Enum):
    """Why a verdict is what it is. Only CORRECT carries a full reward."""

    CORRECT = "correct"  # verified right
    WRONG = "wrong"  # parsed and checked, and it is not right
    NO_ANSWER = "no_answer"  # no <answer>...</answer> or \boxed{...} in the completion
    UNPARSEABLE = "unparseable"  # the answer is not an expression of the task's grammar
    REJECTED = "rejected"  # parsed, but forbidden: unevaluated integral, stray symbol, non-finite, ...
    TIMEOUT = "timeout"  # the verifier ran past its wall-clock limit and was killed
    CRASH = "crash"  # the verifier process died (memory cap, segfault) and was replaced
    ERROR = "error"  # the verifier raised; logged, scored 0

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Verdict:
    """The verifier's judgement: reward in [0, 1], a status saying why, and a human-readable detail."""

    reward: float
    status: Status
    detail: str = ""
    answer: str | None = None  # the extracted answer text, when there was one

    def __post_init__(self) -> None:
        if not 0.0 <= self.reward <= 1.0:
            raise ValueError(f"reward must be in [0, 1], got {self.reward}")

    @property
    def correct(self) -> bool:
        return self.status is Status.CORRECT

    @classmethod
    def fail(cls, status: Status, detail: str = "", answer: str | None = None) -> Verdict:
        return cls(0.0, status, detail, answer)

    def to_dict(self) -> dict[str, Any]:
        return {"reward": self.reward, "status": self.status.value, "detail": self.detail, "answer": self.answer}

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> Verdict:
        return cls(float(row["reward"]), Status(row["status"]), row.get("detail", ""), row.get("answer"))


@dataclass
class Completion:
    """One sampled continuation of a prompt.

    `token_ids` and `logprobs` (of the sampled tokens, under the sampling policy) are empty for
    policies that cannot give them (some OpenAI-compatible servers). `finish_reason` is "stop"
    (end of sequence or a stop string) or "length" (hit max_new_tokens; a truncated completion).
    """

    text: str
    token_ids: list[int] = field(default_factory=list)
    logprobs: list[float] | None = None
    finish_reason: str = "stop"

    @property
    def truncated(self) -> bool:
        return self.finish_reason == "length"

    @property
    def num_tokens(self) -> int:
        return len(self.token_ids)

    def mean_logprob(self) -> float | None:
        if not self.logprobs:
            return None
        return sum(self.logprobs) / len(self.logprobs)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> Completion:
        return cls(row["text"], list(row.get("token_ids") or []), row.get("logprobs"), row.get("finish_reason", "stop"))


@dataclass
class Rollout:
    problem: Problem
    completion: Completion
    verdict: Verdict

    def to_dict(self) -> dict[str, Any]:
        return {
            "problem": self.problem.to_dict(),
            "completion": self.completion.to_dict(),
            "verdict": self.verdict.to_dict(),
        }


def key_str(key: Any) -> str | None:
    """A task's answer key as a stable string (None stays None): equal keys give equal strings.

    Strings pass through; tuples and lists are rendered element by element; sets are sorted first
    so that the string does not depend on hash randomisation between processes.
    """
    if key is None or isinstance(key, str):
        return key
    if isinstance(key, (tuple, list)):
        return "(" + ", ".join(str(key_str(k)) for k in key) + ")"
    if isinstance(key, (set, frozenset)):
        return "{" + ", ".join(sorted(str(key_str(k)) for k in key)) + "}"
    return repr(key)
