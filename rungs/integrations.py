"""rungs verifiers as reward functions for the trainers people already use: TRL and veRL.

Both adapters verify through a `VerifierPool`, so a hanging or crashing check costs one sample a
zero reward (after `timeout_s`), never the training run.

TRL (`GRPOTrainer(reward_funcs=...)`):

    from rungs.integrations import trl_reward
    trainer = GRPOTrainer(model=..., reward_funcs=[trl_reward("math")], train_dataset=ds, ...)

TRL calls `f(prompts=..., completions=..., completion_ids=..., **columns)` with every dataset
column except `prompt` as a keyword list, plus `trainer_state`, `log_extra` and `log_metric`.
The reward function reads the reference answer from the `answer` column (or `solution`,
`ground_truth`); the problem text from a `problem` (or `question`) column when there is one,
else from the prompt (for conversational prompts, the last user message); other columns go to
`Problem.meta` (so TinyZero's `nums` / `target` columns work for countdown). Completions may be
strings or conversations (the last assistant message is scored). It returns one float per
completion, or None where the task needs a reference answer and the row has none (TRL then
ignores that sample for this function). It is a picklable callable object named
`"<task>_reward"` (TRL logs rewards by `__name__`), and it logs `<name>/frac_no_answer` and
`<name>/frac_verifier_failed` (timeouts, crashes, errors) through `log_metric`.

veRL (`custom_reward_function.path=.../rungs/integrations.py`, `name=compute_score`, or
`compute_score_batch` with the batch reward manager):

    compute_score(data_source, solution_str, ground_truth, extra_info=None) -> float

The task comes from `data_source`: a registered task name, else the first of "integra" ->
integration, "countdown" -> countdown, "math" -> math found in it, else math (GSM8K, MATH, ...).
Ground-truth convention:
- tasks that need a reference answer (math): `ground_truth` is that answer;
- tasks that check themselves from the problem (integration, countdown): `ground_truth` is the
  problem text when it is a non-empty string, else `extra_info["problem"]` or
  `extra_info["question"]`;
- a dict `ground_truth` is merged into `Problem.meta` (TinyZero's countdown
  `{"target": 98, "numbers": [44, 19, 35]}`), and its `problem` / `question` / `answer` keys
  fill in the text and the answer; `extra_info` goes to `meta` too.
Each process keeps one pool per (task, timeout) and reuses it; reward kwargs `timeout_s` and
`workers` (veRL's `custom_reward_function.reward_kwargs`) set them.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from rungs.tasks import TASKS, Task, get_task
from rungs.types import Problem, Status, Verdict
from rungs.verify.pool import VerifierPool

ANSWER_COLUMNS = ("answer", "solution", "ground_truth")
PROBLEM_COLUMNS = ("problem", "question")
# Keyword arguments TRL adds that are not dataset columns.
TRL_INTERNAL = frozenset({"prompts", "completions", "completion_ids", "trainer_state", "log_extra", "log_metric", "environments"})
FAILED = (Status.TIMEOUT, Status.CRASH, Status.ERROR)


def default_workers() -> int:
    """One worker per core, shared among the ranks of this machine (torchrun sets LOCAL_WORLD_SIZE)."""
    try:
        ranks = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    except ValueError:
        ranks = 1
    return max(1, (os.cpu_count() or 1) // ranks)


def message_text(message: Any) -> str:
    """The text of a chat message whose content is a string or a list of typed parts."""
    content = message.get("content", "") if isinstance(message, Mapping) else message
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):  # [{"type": "text", "text": ...}, {"type": "image"}, ...]
        return "".join(p.get("text", "") for p in content if isinstance(p, Mapping) and p.get("type", "text") == "text")
    return "" if content is None else str(content)


def last_message(conversation: Any, role: str) -> str:
    """Text of the last message with `role` (else of the last message); a plain string as it is."""
    if isinstance(conversation, str):
        return conversation
    if not isinstance(conversation, Sequence) or not conversation:
        return ""
    for message in reversed(conversation):
        if isinstance(message, Mapping) and message.get("role") == role:
            return message_text(message)
    return message_text(conversation[-1])


def _answer_text(value: Any) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    return text if text.strip() else None


class TaskReward:
    """A TRL reward function verifying with a rungs task; see the module docstring.

    A callable object rather than a closure so that it pickles (TRL's async GRPO sends reward
    functions to a child process); the worker pool is created on first call and not pickled.
    """

    def __init__(
        self, task: str | Task, *, timeout_s: float = 5.0, workers: int | None = None, memory_mb: int | None = 2048,
        reasoning_delimiters: Sequence[str] | None = None,
    ) -> None:
        self.task = get_task(task) if isinstance(task, str) else task
        if reasoning_delimiters:  # TRL's reasoning_accuracy_reward semantics; see Task.with_reasoning
            self.task = self.task.with_reasoning(reasoning_delimiters)
        self.timeout_s = timeout_s
        self.workers = workers
        self.memory_mb = memory_mb
        self.__name__ = f"{self.task.name or type(self.task).__name__}_reward"
        self._pool: VerifierPool | None = None
        self._lock = threading.Lock()

    @property
    def pool(self) -> VerifierPool:
        with self._lock:
            if self._pool is None:
                self._pool = VerifierPool(
                    self.task, workers=self.workers or default_workers(), timeout_s=self.timeout_s, memory_mb=self.memory_mb
                )
            return self._pool

    def problems(self, prompts: Sequence[Any], columns: Mapping[str, Any]) -> list[Problem | None]:
        """One Problem per prompt from the dataset columns; None where a needed answer is missing."""
        n = len(prompts)
        per_row = {k: v for k, v in columns.items() if k not in TRL_INTERNAL and isinstance(v, Sequence) and not isinstance(v, str) and len(v) == n}
        answers = next((per_row[k] for k in ANSWER_COLUMNS if k in per_row), [None] * n)
        texts = next((per_row[k] for k in PROBLEM_COLUMNS if k in per_row), None)
        ids = per_row.get("id")
        out: list[Problem | None] = []
        for i in range(n):
            text = texts[i] if texts is not None and isinstance(texts[i], str) else last_message(prompts[i], "user")
            answer = _answer_text(answers[i])
            if answer is None and self.task.needs_answer:
                out.append(None)
                continue
            meta = {k: v[i] for k, v in per_row.items() if k not in (*ANSWER_COLUMNS, *PROBLEM_COLUMNS, "id")}
            pid = str(ids[i]) if ids is not None else f"trl-{i}"
            out.append(Problem(pid, text, answer, meta))
        return out

    def verdicts(self, prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> list[Verdict | None]:
        """Verdicts (None where there is nothing to check against), for callers that want statuses."""
        if len(prompts) != len(completions):
            raise ValueError(f"got {len(prompts)} prompts but {len(completions)} completions")
        problems = self.problems(prompts, kwargs)
        texts = [last_message(c, "assistant") for c in completions]
        todo = [i for i, p in enumerate(problems) if p is not None]
        checked = self.pool.verify([problems[i] for i in todo], [texts[i] for i in todo]) if todo else []
        out: list[Verdict | None] = [None] * len(problems)
        for i, verdict in zip(todo, checked):
            out[i] = verdict
        return out

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
        verdicts = self.verdicts(prompts, completions, **kwargs)
        self._log(verdicts, kwargs.get("log_metric"), kwargs.get("log_extra"))
        return [None if v is None else v.reward for v in verdicts]

    def _log(self, verdicts: list[Verdict | None], log_metric: Any, log_extra: Any) -> None:
        checked = [v for v in verdicts if v is not None]
        if callable(log_metric) and checked:
            log_metric(f"{self.__name__}/frac_no_answer", sum(v.status is Status.NO_ANSWER for v in checked) / len(checked))
            log_metric(f"{self.__name__}/frac_verifier_failed", sum(v.status in FAILED for v in checked) / len(checked))
        if callable(log_extra):
            log_extra(f"{self.__name__}_status", [None if v is None else v.status.value for v in verdicts])

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.close()
                self._pool = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_pool"], state["_lock"] = None, None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()


def trl_reward(
    task: str | Task, *, timeout_s: float = 5.0, workers: int | None = None, memory_mb: int | None = 2048,
    reasoning_delimiters: Sequence[str] | None = None,
) -> Callable[..., list[float | None]]:
    """A TRL reward function `f(prompts, completions, **kwargs) -> list[float | None]` for `task`.

    `reasoning_delimiters=["</think>"]` gives TRL's `reasoning_accuracy_reward` semantics: only
    the text after the reasoning counts, and unfinished reasoning scores 0. Off (None) by default.
    """
    return TaskReward(task, timeout_s=timeout_s, workers=workers, memory_mb=memory_mb,
                      reasoning_delimiters=reasoning_delimiters)


# ------------------------------------------------------------------------------------------------
# veRL

_POOLS: dict[tuple[str, float], tuple[int, VerifierPool]] = {}
_POOLS_LOCK = threading.Lock()


def task_for_source(data_source: Any) -> str:
    """The task name for a veRL `data_source` (see the module docstring)."""
    name = str(data_source or "").strip().lower()
    if name in TASKS:
        return name
    for needle, task in (("integra", "integration"), ("countdown", "countdown"), ("math", "math")):
        if needle in name:
            return task
    return "math"


def shared_pool(task_name: str, timeout_s: float = 5.0, workers: int | None = None) -> VerifierPool:
    """This process's pool for `task_name` (a new one after a fork: workers belong to their parent)."""
    key = (task_name, float(timeout_s))
    with _POOLS_LOCK:
        entry = _POOLS.get(key)
        if entry is None or entry[0] != os.getpid():
            pool = VerifierPool(get_task_cached(task_name), workers=workers or default_workers(), timeout_s=timeout_s)
            _POOLS[key] = entry = (os.getpid(), pool)
        return entry[1]


def verl_problem(task: Task, ground_truth: Any, extra_info: Mapping[str, Any] | None, index: int = 0) -> Problem | None:
    """The Problem a veRL row describes; None when the task needs an answer and there is none."""
    info = dict(extra_info) if isinstance(extra_info, Mapping) else {}
    meta = {k: v for k, v in info.items() if k not in PROBLEM_COLUMNS}
    text = next((info[k] for k in PROBLEM_COLUMNS if isinstance(info.get(k), str) and info[k].strip()), None)
    answer = None
    if isinstance(ground_truth, Mapping):
        meta.update(ground_truth)
        text = next((ground_truth[k] for k in PROBLEM_COLUMNS if isinstance(ground_truth.get(k), str)), text)
        answer = next((_answer_text(ground_truth[k]) for k in ANSWER_COLUMNS if ground_truth.get(k) is not None), None)
    elif task.needs_answer:
        answer = _answer_text(ground_truth)
    elif isinstance(ground_truth, str) and ground_truth.strip():
        text = ground_truth  # self-checking tasks: the ground truth carries the problem
    if task.needs_answer and answer is None:
        return None
    return Problem(str(info.get("index", index)), text or "", answer, meta)


def compute_score(
    data_source: Any,
    solution_str: str,
    ground_truth: Any,
    extra_info: Mapping[str, Any] | None = None,
    *,
    timeout_s: float = 5.0,
    workers: int | None = None,
    reasoning_delimiters: Sequence[str] | None = None,
    **kwargs: Any,
) -> float:
    """veRL reward: 1.0 if `solution_str` is verified right, else 0.0 (never raises for a sample).

    `reasoning_delimiters` (a reward kwarg, e.g. ["</think>"]; off by default): TRL's
    `reasoning_accuracy_reward` semantics, see `Task.with_reasoning`.
    """
    return compute_score_batch([data_source], [solution_str], [ground_truth], [extra_info], timeout_s=timeout_s,
                               workers=workers, reasoning_delimiters=reasoning_delimiters)[0]


def compute_score_batch(
    data_sources: Sequence[Any],
    solution_strs: Sequence[str],
    ground_truths: Sequence[Any],
    extra_infos: Sequence[Mapping[str, Any] | None] | None = None,
    *,
    timeout_s: float = 5.0,
    workers: int | None = None,
    reasoning_delimiters: Sequence[str] | None = None,
    **kwargs: Any,
) -> list[float]:
    """veRL's batch reward manager form: every sample of a batch verified in parallel."""
    if reasoning_delimiters:  # only the text after the reasoning counts; unfinished reasoning scores 0
        from rungs.verify.extract import after_reasoning

        if isinstance(reasoning_delimiters, str):
            reasoning_delimiters = [reasoning_delimiters]
        solution_strs = [after_reasoning(_as_text(s), reasoning_delimiters) or "" for s in solution_strs]
    n = len(solution_strs)
    infos = list(extra_infos) if extra_infos is not None else [None] * n
    scores = [0.0] * n
    groups: dict[str, list[tuple[int, Problem]]] = {}
    for i in range(n):
        name = task_for_source(data_sources[i])
        problem = verl_problem(get_task_cached(name), ground_truths[i], infos[i], i)
        if problem is not None:
            groups.setdefault(name, []).append((i, problem))
    for name, items in groups.items():
        pool = shared_pool(name, timeout_s, workers)
        verdicts = pool.verify([p for _, p in items], [_as_text(solution_strs[i]) for i, _ in items])
        for (i, _), verdict in zip(items, verdicts):
            scores[i] = verdict.reward
    return scores


_TASKS: dict[str, Task] = {}


def get_task_cached(name: str) -> Task:
    """One task instance per name and process (tasks are stateless; their caches are worth keeping)."""
    if name not in _TASKS:
        _TASKS[name] = get_task(name)
    return _TASKS[name]


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else ("" if value is None else str(value))
