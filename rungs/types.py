"""The small typed records that flow between the layers.

Problem -> (Policy) -> Completion -> (Task.verify) -> Verdict; the three together are a Rollout.
They are plain dataclasses so that they serialise to JSON lines with `to_dict` and come back with
`from_dict`, which is how run directories store rollouts.
"""

from __future__ import annotations

import cmath
import enum
import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

MAX_NESTING = 100  # levels of lists / objects a value may nest: deeper input is refused, not recursed into
NESTING_ERROR = f"too deeply nested (more than {MAX_NESTING} levels of lists and objects)"


def to_builtin(value: Any) -> Any:
    """`value` with numpy (and other array-library) values turned into plain Python, recursively.

    Data read through pandas / pyarrow (veRL's parquet datasets, TRL columns from a DataFrame)
    arrives as numpy arrays and numpy scalars (`np.int64`, `np.str_`, object arrays of dicts); the
    tasks check `isinstance(x, (list, int, str))`. Arrays become lists, numpy scalars their Python
    value (`.item()`), bytes their UTF-8 text (a parquet binary column), dicts / lists / tuples are
    walked; anything else is returned as it is.
    Detected by duck typing (`tolist`), so numpy is never imported here. A value nested more than
    MAX_NESTING levels deep is a ValueError (NESTING_ERROR), never a RecursionError.
    """
    return _to_builtin(value, 0)


def _to_builtin(value: Any, depth: int) -> Any:
    if value is None or type(value) in (str, int, float, bool):
        return value
    if isinstance(value, str):  # np.str_ and other str subclasses
        return str(value)
    if isinstance(value, (bytes, bytearray)):  # a parquet binary column: its text, not "b'2'"
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, (dict, list, tuple)):
        if depth >= MAX_NESTING:
            raise ValueError(NESTING_ERROR)
        if isinstance(value, dict):
            return {_to_builtin(k, depth + 1): _to_builtin(v, depth + 1) for k, v in value.items()}
        items = [_to_builtin(v, depth + 1) for v in value]
        return tuple(items) if type(value) is tuple else items
    tolist = getattr(value, "tolist", None)
    if callable(tolist) and type(value).__module__.split(".")[0] in ("numpy", "pandas", "pyarrow", "torch"):
        try:
            converted = tolist()
        except (TypeError, ValueError):  # e.g. a pyarrow scalar without a list form
            pass
        else:
            return _to_builtin(converted, depth)
    as_py = getattr(value, "as_py", None)  # pyarrow scalars
    if callable(as_py):
        return _to_builtin(as_py(), depth)
    return value


def nesting_depth(value: Any, limit: int = MAX_NESTING) -> int:
    """How many levels of lists / tuples / dicts `value` nests (a scalar: 0), counted without
    recursion; the count stops at `limit + 1` (anything deeper is too deep)."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            item = item.values()
        elif not isinstance(item, (list, tuple)):
            continue
        deepest = max(deepest, level)
        if deepest > limit:
            return deepest
        stack.extend((child, level + 1) for child in item if isinstance(child, (dict, list, tuple)))
    return deepest


def missing_number(value: Any) -> bool:
    """Whether `value` is a number standing for "no value": NaN or an infinity (a float, numpy
    float, Decimal or complex; NaN is pandas' missing value, and JSON's 1e400 reads as inf), or
    pandas' NA / NaT. Text is judged by `missing_text`."""
    if isinstance(value, (str, bool, int)) or value is None:
        return False
    if isinstance(value, float):  # numpy float64 too
        return not math.isfinite(value)
    if isinstance(value, complex):
        return not cmath.isfinite(value)
    kind = type(value)
    if kind.__module__.split(".")[0] == "pandas" and kind.__name__ in ("NAType", "NaTType"):
        return True
    if kind.__module__ == "decimal" or kind.__module__.split(".")[0] == "numpy":
        try:
            return not math.isfinite(float(value))
        except (TypeError, ValueError, OverflowError):  # a signalling Decimal NaN, a numpy non-number
            return kind.__module__ == "decimal"
    return False


# How a missing value reads once it has been turned into text: str(float("nan")), str(None),
# pandas' "NaN" / "<NA>", JSON's null. No task's reference answer is one of these words.
MISSING_TEXTS = frozenset({"nan", "none", "null", "<na>"})


def missing_text(value: Any) -> bool:
    """Whether `value` is text that only spells a missing value (`"nan"`, `"None"`, `"null"`,
    `"<NA>"`, in any case, surrounding space ignored): a label lost in a `df.answer.map(str)` or a
    CSV cell, which would otherwise pay `\\boxed{nan}`."""
    return isinstance(value, str) and value.strip().lower() in MISSING_TEXTS


def missing_value(value: Any) -> bool:
    """`missing_number(value) or missing_text(value)`: a reference that is no answer."""
    return missing_number(value) or missing_text(value)


def missing_answer_note(where: str, field: str, value: Any) -> str | None:
    """The one warning line for a reference answer that is a missing value (`missing_value`), naming
    the row and field; None for any other value. One wording for problem files and variant trees."""
    if not missing_value(value):
        return None
    what = "text that spells a missing value" if isinstance(value, str) else "not a finite number"
    return f"{where}: field {field!r} is {value!r}, {what}: no reference answer; the row is unlabelled"


def answer_text(value: Any) -> str | None:
    """A reference answer as text: None or blank -> None, a one-element list -> its element,
    numpy values as their Python value (`np.int64(12)` -> "12"). A number that is NaN or infinite
    (`missing_number`: pandas' missing value, JSON's 1e400), or text that spells a missing value
    (`missing_text`: "nan", "None"), is no answer: None."""
    value = to_builtin(value)
    if isinstance(value, (list, tuple)) and len(value) == 1:
        value = value[0]
    if value is None or missing_value(value):
        return None
    text = value if isinstance(value, str) else str(value)
    return text if text.strip() else None


ANSWERS_META_KEY = "answers"  # Problem.meta[...]: every accepted reference when a ground truth lists several


def reference_answers(value: Any) -> tuple[str | None, list[str]]:
    """A ground truth as (the reference answer, every accepted reference): a list of several answers
    (`["2", "two"]`, as some datasets give) -> ("2", ["2", "two"]), any of which is right; a list of
    lists (`[[1, 2], [3, 4]]`, ARC's grid) is one answer, its JSON text; anything else ->
    (`answer_text(value)`, [])."""
    value = to_builtin(value)
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, (list, tuple)) for v in value):
        return json.dumps(value), []  # a list of lists is one answer (an ARC grid, a matrix), never alternatives
    if isinstance(value, (list, tuple)) and len(value) > 1:
        answers = [a for a in (answer_text(v) for v in value) if a is not None]
        if len(answers) > 1:
            return answers[0], answers
        return (answers[0] if answers else None), []
    return answer_text(value), []


@dataclass(frozen=True)
class Problem:
    """One problem. `answer` is None when the problem is unlabelled (test-time RL needs no label).

    Numpy values anywhere in `answer` or `meta` (a row read from parquet) are turned into plain
    Python on construction (`to_builtin`), so every task sees lists, ints and strings.
    """

    id: str
    text: str
    answer: str | None = None
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        if self.answer is not None and (type(self.answer) is not str or missing_text(self.answer)):
            object.__setattr__(self, "answer", answer_text(self.answer))  # "nan", "None": no answer
        if type(self.text) is not str and isinstance(self.text, str):
            object.__setattr__(self, "text", str(self.text))
        if not isinstance(self.meta, dict):
            object.__setattr__(self, "meta", dict(self.meta or {}))
        for key, value in self.meta.items():  # in place: the dict stays the caller's object
            if type(value) not in (str, int, float, bool, type(None)):
                self.meta[key] = to_builtin(value)

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
    UNLABELLED = "unlabelled"  # the task checks against a reference and this problem has none: not checked
    INVALID_PROBLEM = "invalid_problem"  # the problem itself is outside the task's grammar: nothing to check against

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
    (end of sequence or a stop string), "length" (hit max_new_tokens; a truncated completion) or
    "error" (a server refused this prompt, e.g. as too long: empty text, scored as no answer).
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
