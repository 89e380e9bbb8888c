"""rungs verifiers as reward functions for the trainers people already use: TRL and veRL.

Both adapters verify through a `VerifierPool`, so a hanging or crashing check costs one sample a
zero reward (after `timeout_s`), never the training run.

TRL (`GRPOTrainer(reward_funcs=...)`):

    from rungs.integrations import trl_reward, trl_vote_reward
    trainer = GRPOTrainer(model=..., reward_funcs=[trl_reward("math")], train_dataset=ds, ...)
    # label-free TTRL: majority-vote pseudo-labels per prompt group, no answer column needed
    trainer = GRPOTrainer(model=..., reward_funcs=[trl_vote_reward("math")], train_dataset=ds, ...)

TRL calls `f(prompts=..., completions=..., completion_ids=..., **columns)` with every dataset
column except `prompt` as a keyword list, plus `trainer_state`, `log_extra` and `log_metric`.
The reward function reads the reference answer from the `answer` column (or `solution`,
`ground_truth`, `gold`, `reference`; without one, a task that needs answers warns once and returns
None for every row); the problem text from a `problem` (or `question`) column when there is one,
else from the prompt (for conversational prompts, the last user message); other columns go to
`Problem.meta` (so TinyZero's `nums` / `target` columns work for countdown). Completions may be
strings or conversations (the last assistant message is scored). It returns one float per
completion, or None where the task needs a reference answer and the row has none, or has one
that does not parse as math (TRL then ignores that sample for this function, as its own
`accuracy_reward` does). It is a picklable callable object named
`"<task>_reward"` (TRL logs rewards by `__name__`), and it logs `<name>/frac_no_answer` and
`<name>/frac_verifier_failed` (timeouts, crashes, errors) through `log_metric`.

veRL 0.9 (`reward.custom_reward_function.path=.../rungs/integrations.py`, `name=compute_score`, which
its reward loop calls once per response); `compute_score_batch` / `compute_score_vote_batch` are for
veRL 0.6's legacy batch manager (`reward_model.reward_manager=batch`): from 0.7 veRL's reward loop
scores one response at a time, so a prompt's group cannot vote there (0.9 refuses the name
`batch`); examples/verl/ has the lines and a parquet writer:

    compute_score(data_source, solution_str, ground_truth, extra_info=None) -> float (or dict)
    compute_score_batch(data_sources, solution_strs, ground_truths, extra_infos) -> list
    compute_score_vote_batch(...)  # TTRL: label-free majority vote per prompt (`verl_group_key`)

The task comes from `data_source`: a registered task name, else the first of "integra" ->
integration, "countdown" -> countdown, "math" -> math found in it, else math (GSM8K, MATH, ...).
Ground-truth convention:
- tasks that need a reference answer (math): `ground_truth` is that answer;
- tasks that check themselves from the problem (integration, countdown): `ground_truth` is the
  problem text when it is a non-empty string, else `extra_info["problem"]` or
  `extra_info["question"]`;
- a dict `ground_truth` is merged into `Problem.meta` (TinyZero's countdown
  `{"target": 98, "numbers": [44, 19, 35]}`), and its `problem` / `question` / `answer` keys
  fill in the text and the answer; `extra_info` goes to `meta` too;
- numpy arrays and scalars (what pandas / pyarrow give for parquet columns) are accepted anywhere
  in a ground truth or extra_info, and so are one-element lists of answers;
- a reference answer that is a non-finite number (NaN, pandas' missing value; inf) is no answer:
  the row is unlabelled (`Status.UNLABELLED`; TRL gets None); so is the text "nan", "None", "null"
  or "<NA>" (`rungs.types.missing_text`: what a missing value becomes when a table is written out);
- a row whose ground truth, extra_info or columns nest more than `rungs.types.MAX_NESTING` levels
  scores 0 with `invalid_problem` (and does not vote); the other rows of the batch are scored.
Each process keeps one pool per (task, timeout, executor) and reuses it; reward kwargs
`timeout_s`, `workers`, `executor` ("ray" / "ray:ADDRESS" to verify on a Ray cluster) and
`return_dict` (veRL's dict form, `score` plus logged extras) come from veRL's
`reward.custom_reward_function.reward_kwargs`.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
import os
import threading
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from rungs.errors import UserError
from rungs.strategies.base import Sample
from rungs.tasks import TASKS, Task, get_task
from rungs.tasks.base import reasoning_tags
from rungs.types import (
    ANSWERS_META_KEY,
    Completion,
    Problem,
    Status,
    Verdict,
    reference_answers,
    to_builtin,
)
from rungs.verify.pool import VerifierPool

ANSWER_COLUMNS = ("answer", "solution", "ground_truth", "gold", "reference")
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


# Where a parsed reasoning model's message keeps its thinking, apart from `content` (TRL's
# `parse_response` schemas and vLLM's reasoning parsers write `reasoning_content`).
REASONING_FIELDS = ("reasoning_content", "reasoning", "thinking")


def message_text(message: Any, reasoning_close: str = "\n") -> str:
    """The text of a chat message whose content is a string or a list of typed parts.

    A message whose thinking was parsed into its own field (`REASONING_FIELDS`) is written back as
    thinking + `reasoning_close` + content: its reasoning did close, so with `reasoning_close` the
    task's closing delimiter (`</think>`) the answer is read after it, and with the default newline
    an answer given only in the thinking still counts, as it does in unparsed text.
    """
    content = message.get("content", "") if isinstance(message, Mapping) else message
    if isinstance(content, str):
        text = content
    elif isinstance(content, Sequence):  # [{"type": "text", "text": ...}, {"type": "image"}, ...]
        text = "".join(p.get("text", "") for p in content if isinstance(p, Mapping) and p.get("type", "text") == "text")
    else:
        text = "" if content is None else str(content)
    if isinstance(message, Mapping):
        thinking = next((message[f] for f in REASONING_FIELDS if isinstance(message.get(f), str) and message[f]), None)
        if thinking is not None:
            return f"{thinking}{reasoning_close}{text}"
    return text


def last_message(conversation: Any, role: str, reasoning_close: str = "\n") -> str:
    """Text of the last message with `role` (else of the last message); a plain string as it is.
    `reasoning_close` as in `message_text`."""
    if isinstance(conversation, str):
        return conversation
    if not isinstance(conversation, Sequence) or not conversation:
        return ""
    for message in reversed(conversation):
        if isinstance(message, Mapping) and message.get("role") == role:
            return message_text(message, reasoning_close)
    return message_text(conversation[-1], reasoning_close)


def _column(value: Any) -> Any:
    """A TRL keyword column as a list (a numpy array from a pandas-built dataset becomes a list)."""
    if isinstance(value, (str, bytes)) or value is None:
        return value
    if not isinstance(value, Sequence) and callable(getattr(value, "tolist", None)):
        try:
            return to_builtin(value)
        except ValueError:  # an element nested too deeply: converted (and refused) row by row instead
            return list(value)
    return value


class TaskReward:
    """A TRL reward function verifying with a rungs task; see the module docstring.

    A callable object rather than a closure so that it pickles (TRL's async GRPO sends reward
    functions to a child process); the worker pool is created on first call and not pickled.
    """

    suffix = "reward"

    def __init__(
        self, task: str | Task, *, timeout_s: float = 5.0, workers: int | None = None, memory_mb: int | None = 2048,
        reasoning_delimiters: Sequence[str] | None = None, executor: str = "process", name: str | None = None,
    ) -> None:
        from rungs.pipelines.job import check_count
        from rungs.verify.pool import parse_executor

        # bad settings fail here, naming the argument, not inside the trainer's first step
        if isinstance(executor, str):
            parse_executor(executor)      # (an Executor object, which VerifierPool also takes, passes as it is)
        if isinstance(task, str):
            self.task = get_task(task)
        elif isinstance(task, Task):
            self.task = task
        else:
            raise UserError(f"task {task!r}: expected a task name ({', '.join(TASKS)}) or a rungs Task")
        # numpy numbers (a config read with numpy, a sweep's np.arange) are numbers like any other
        workers, memory_mb = (int(v) if isinstance(v, numbers.Integral) and not isinstance(v, bool) else v
                              for v in (workers, memory_mb))
        given = timeout_s
        if isinstance(timeout_s, numbers.Real) and not isinstance(timeout_s, bool):
            timeout_s = float(timeout_s)
        if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or not (timeout_s > 0 and math.isfinite(timeout_s)):
            raise UserError(f"timeout_s {given!r}: expected seconds > 0 (a finite limit: a verifier always runs under one)")
        check_count("workers", workers)  # None: one per core (default_workers); 0 is refused, as VerifierPool does
        check_count("memory_mb", memory_mb)  # None: no limit
        delimiters = reasoning_tags(reasoning_delimiters)  # blank tags dropped; see Task.with_reasoning
        if delimiters:  # TRL's reasoning_accuracy_reward semantics
            self.task = self.task.with_reasoning(delimiters)
        # a message's parsed-out thinking is joined back with the closing delimiter (`message_text`)
        self.reasoning_close = delimiters[0] if delimiters else "\n"
        self.timeout_s = timeout_s
        self.workers = workers
        self.memory_mb = memory_mb
        self.executor = executor
        # TRL logs rewards under __name__: two functions of one task (e.g. with and without
        # reasoning_delimiters) need different names, so the delimited one says so
        self.__name__ = name or (f"{self.task.name or type(self.task).__name__}_{self.suffix}"
                                 + ("_after_reasoning" if delimiters else ""))
        self._pool: VerifierPool | None = None
        self._lock = threading.Lock()
        self._warned: set[str] = set()  # the one-time warnings already given (`_warn_once`)

    @property
    def pool(self) -> VerifierPool:
        with self._lock:
            if self._pool is None:
                self._pool = VerifierPool(
                    self.task, workers=self.workers or default_workers(), timeout_s=self.timeout_s, memory_mb=self.memory_mb,
                    executor=self.executor,
                )
            return self._pool

    def problems(self, prompts: Sequence[Any], columns: Mapping[str, Any], require_answer: bool = True) -> list[Problem | None]:
        """One Problem per prompt from the dataset columns; None where a needed answer is missing
        (with `require_answer`; label-free rewards pass False and get a Problem for every readable
        row) or where the row cannot be read (a value nested too deeply)."""
        return [p if isinstance(p, Problem) else None for p in self._row_problems(prompts, columns, require_answer)]

    def _row_problems(self, prompts: Sequence[Any], columns: Mapping[str, Any],
                      require_answer: bool = True) -> list[Problem | Verdict | None]:
        """As `problems`, but a row that cannot be read is its verdict (`invalid_problem`, reward 0),
        so that one bad row costs that row's reward, not the batch."""
        n = len(prompts)
        columns = {k: _column(v) for k, v in columns.items() if k not in TRL_INTERNAL}
        per_row = {k: v for k, v in columns.items() if isinstance(v, Sequence) and not isinstance(v, str) and len(v) == n}
        answers = next((per_row[k] for k in ANSWER_COLUMNS if k in per_row), None)
        if answers is None and require_answer:
            self._warn_no_answer_column(columns, n)
        if answers is None:
            answers = [None] * n
        texts = next((per_row[k] for k in PROBLEM_COLUMNS if k in per_row), None)
        ids = per_row.get("id")
        out: list[Problem | Verdict | None] = []
        for i in range(n):
            try:
                text = (texts[i] if texts is not None and isinstance(texts[i], str)
                        else self.task.problem_from_prompt(last_message(prompts[i], "user")))
                answer, accepted = reference_answers(answers[i])
                if answer is None and self.task.needs_answer and require_answer:
                    out.append(None)
                    continue
                meta = {k: v[i] for k, v in per_row.items() if k not in (*ANSWER_COLUMNS, *PROBLEM_COLUMNS, "id")}
                if accepted:
                    meta[ANSWERS_META_KEY] = accepted
                pid = str(ids[i]) if ids is not None else f"trl-{i}"
                out.append(Problem(pid, text, answer, meta))
            except ValueError as err:  # to_builtin: a column value nested too deeply
                out.append(Verdict.fail(Status.INVALID_PROBLEM, f"row {i + 1}: {err}"))
        return out

    def _warn_once(self, kind: str, message: str) -> None:
        """A UserWarning `NAME: message`, the first time of each `kind` for this reward function."""
        if kind not in self._warned:
            self._warned.add(kind)
            warnings.warn(f"{self.__name__}: {message}", UserWarning, stacklevel=4)

    def _warn_no_answer_column(self, columns: Mapping[str, Any], n: int) -> None:
        """A task that needs reference answers got no per-row answer column, so every reward is
        None (TRL warns only when every reward function gives None)."""
        if not self.task.needs_answer or n == 0:
            return
        given = ", ".join(sorted(columns)) or "none"
        odd = [k for k in ANSWER_COLUMNS if k in columns]  # present, but not one value per completion
        why = f"column {odd[0]!r} is not a list of {n} values" if odd else f"no answer column (columns given: {given})"
        self._warn_once("no_answers", f"{why}; expected one of {', '.join(ANSWER_COLUMNS)} with one reference "
                        "answer per row: every reward of this function is None")

    def verdicts(self, prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> list[Verdict | None]:
        """Verdicts (None where there is nothing to check against), for callers that want statuses."""
        if len(prompts) != len(completions):
            raise ValueError(f"got {len(prompts)} prompts but {len(completions)} completions")
        problems = self._row_problems(prompts, kwargs)
        texts = [last_message(c, "assistant", self.reasoning_close) for c in completions]
        todo = [i for i, p in enumerate(problems) if isinstance(p, Problem)]
        checked = self.pool.verify([problems[i] for i in todo], [texts[i] for i in todo]) if todo else []
        out: list[Verdict | None] = [p if isinstance(p, Verdict) else None for p in problems]
        for i, verdict in zip(todo, checked):
            out[i] = verdict
        return out

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
        verdicts = self.verdicts(prompts, completions, **kwargs)
        self._log(verdicts, kwargs.get("log_metric"), kwargs.get("log_extra"))
        # None where there was nothing to check against: no reference, or one that does not parse
        return [None if v is None or v.status is Status.UNLABELLED else v.reward for v in verdicts]

    def _log(self, verdicts: list[Verdict | None], log_metric: Any, log_extra: Any) -> None:
        checked = [v for v in verdicts if v is not None]
        broken = next((v for v in checked if v.status in (Status.ERROR, Status.INVALID_PROBLEM)), None)
        if broken is not None:
            # e.g. an integration prompt with no integral rungs can read: every completion scores 0 and
            # GRPO learns nothing, which only `frac_verifier_failed` would show
            self._warn_once("broken", f"a row could not be checked ({broken.detail[:200]}); its completions score 0. "
                            f"The problem comes from a {' or '.join(repr(c) for c in PROBLEM_COLUMNS)} column, "
                            "else from the prompt's last user message (shown once)")
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
    reasoning_delimiters: Sequence[str] | None = None, executor: str = "process", name: str | None = None,
) -> Callable[..., list[float | None]]:
    """A TRL reward function `f(prompts, completions, **kwargs) -> list[float | None]` for `task`.

    `reasoning_delimiters=["</think>"]` gives TRL's `reasoning_accuracy_reward` semantics: only
    the text after the reasoning counts, and unfinished reasoning scores 0. Off (None) by default.
    `executor`: where verification runs ("process", "ray", "ray:ADDRESS"; see rungs.verify.pool;
    UserError here for any other). `name`: the function's `__name__`, under which TRL logs its
    rewards (default `<task>_reward`). The other settings are checked here too, each a one-line
    UserError naming it: `task` a task name or a Task, `timeout_s` seconds > 0, `workers` and
    `memory_mb` integers >= 1 or None (one worker per core; no memory limit), `reasoning_delimiters`
    a list of strings (empty ones are dropped).
    """
    return TaskReward(task, timeout_s=timeout_s, workers=workers, memory_mb=memory_mb,
                      reasoning_delimiters=reasoning_delimiters, executor=executor, name=name)


def prompt_key(prompt: Any) -> str:
    """A string equal for equal prompts (a plain string, or a conversation as canonical JSON)."""
    if isinstance(prompt, str):
        return prompt
    try:
        return json.dumps(to_builtin(prompt), sort_keys=True, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        try:
            return repr(prompt)
        except RecursionError:  # nested too deeply to print: only itself is equal to it
            return f"<prompt {id(prompt)}>"


def vote_rewards(pool: VerifierPool, task: Task, problems: Sequence[Problem], completions: Sequence[str],
                 groups: Sequence[Sequence[int]]) -> tuple[list[float], list[Sample], dict[str, float]]:
    """TTRL's label-free reward (Zuo et al. 2025): within each group of completions of one prompt,
    the majority answer (rungs.strategies.majority.vote, over the task's answer keys) is the
    pseudo-label, and a completion scores 1.0 if its answer has that key, else 0.0.

    problems[i] <-> completions[i]; `groups` partitions range(len(completions)). Returns
    (rewards, the verified samples, metrics): `majority_ratio` (mean share of a group voting for
    its majority answer), and where the true answer is known (a labelled row, or a task that checks
    itself) `label_accuracy` (the majority answer is right) and `true_accuracy` (of the samples),
    for logging only: they never enter the reward.
    """
    from rungs.pipelines.evaluate import verify_samples

    samples = verify_samples(pool, task, problems, [Completion(c) for c in completions])
    rewards, metrics = vote_on(samples, [label_known(task, p, s) for p, s in zip(problems, samples)], groups)
    return rewards, samples, metrics


def label_known(task: Task, problem: Problem, sample: Sample) -> bool:
    """Whether `sample`'s correctness is real: the task checks itself or the row has a reference
    answer, and the verifier could read that reference (not an unlabelled verdict)."""
    return (not task.needs_answer or problem.answer is not None) and sample.verdict.status is not Status.UNLABELLED


def vote_on(samples: Sequence[Sample], known: Sequence[bool],
            groups: Sequence[Sequence[int]]) -> tuple[list[float], dict[str, float]]:
    """The voting half of `vote_rewards`, on samples already verified: (rewards, metrics).

    known[i]: whether sample i's correctness is real (a labelled row, or a task that checks
    itself). On a tie the tied answer seen first in the group is the pseudo-label (as TTRL's
    `Counter.most_common` picks it), and
    `label_accuracy` scores that label (the one trained on), not the tie's expected value.
    """
    from rungs.strategies.majority import vote

    rewards = [0.0] * len(samples)
    ratios, label_hits, labelled = [], 0.0, 0
    for idx in groups:
        group = [samples[i] for i in idx]
        choice = vote(group)
        label = None if choice.index is None else group[choice.index].key
        for i in idx:
            rewards[i] = 1.0 if label is not None and samples[i].key == label else 0.0
        ratios.append(sum(rewards[i] for i in idx) / len(idx))
        if all(known[i] for i in idx):  # one sample with an unreadable reference makes the group unlabelled
            labelled += 1
            label_hits += choice.index is not None and group[choice.index].correct
    metrics = {"majority_ratio": sum(ratios) / len(ratios)} if ratios else {}
    if labelled:
        checked = [samples[i] for idx in groups if all(known[i] for i in idx) for i in idx]
        metrics["label_accuracy"] = label_hits / labelled
        metrics["true_accuracy"] = sum(s.correct for s in checked) / len(checked)
    return rewards, metrics


def _digest(text: str) -> str:
    """A short stand-in for a prompt key (what crosses processes instead of the whole prompt)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def gather_across_processes(payload: list[Any]) -> tuple[list[list[Any]], int]:
    """(every process's `payload`, in rank order; this process's rank) under torch.distributed
    (what TRL's accelerate launch initialises), else ([payload], 0). A collective: every rank must
    call it at the same point, as TRL does when it computes rewards."""
    try:
        import torch.distributed as dist
    except ImportError:
        return [payload], 0
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return [payload], 0
    everyone: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(everyone, payload)
    return [list(p) for p in everyone], dist.get_rank()


class TaskVoteReward(TaskReward):
    """A label-free TRL reward: TTRL majority-vote pseudo-labels per prompt group (see `vote_rewards`).

    TRL passes every completion of the batch, `num_generations` per prompt; completions whose
    prompts are equal (`prompt_key`) form one group and vote. No answer column is needed; where
    there is one (or the task checks itself), `<name>/label_accuracy` and `<name>/true_accuracy`
    are logged beside `<name>/majority_ratio` so one can see whether the pseudo-labels are right.
    Under TRL's multi-process training each process computes rewards on its own slice of the
    batch, and a prompt's `num_generations` completions may be split across processes (TRL's
    sampler does split them when per_device_train_batch_size is smaller than num_generations). So
    with torch.distributed initialised, each process verifies its own completions and then the
    answer keys of every process are gathered (`gather_across_processes`; keys and verdicts only,
    not the texts) and each prompt's whole group votes; every process derives the same labels.
    `gather=False` votes on the local slice only (for a caller that is not in lockstep with the
    other ranks).
    """

    suffix = "vote_reward"

    def __init__(self, task: str | Task, *, gather: bool = True, **kwargs: Any) -> None:
        super().__init__(task, **kwargs)
        self.gather = gather

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
        if len(prompts) != len(completions):
            raise ValueError(f"got {len(prompts)} prompts but {len(completions)} completions")
        from rungs.pipelines.evaluate import verify_samples

        rows = self._row_problems(prompts, kwargs, require_answer=False)
        good = [i for i, p in enumerate(rows) if isinstance(p, Problem)]  # a row that cannot be read scores 0
        problems = [rows[i] for i in good]
        texts = [Completion(last_message(completions[i], "assistant", self.reasoning_close)) for i in good]
        samples = verify_samples(self.pool, self.task, problems, texts) if good else []
        # What the vote needs from each sample (its key and verdict), from every process, in rank order.
        mine = [(_digest(prompt_key(prompts[i])),
                 Sample("", Verdict(samples[j].verdict.reward, samples[j].verdict.status), samples[j].key),
                 label_known(self.task, problems[j], samples[j])) for j, i in enumerate(good)]
        everyone, rank = gather_across_processes(mine) if self.gather else ([mine], 0)
        pooled = [entry for payload in everyone for entry in payload]
        offset = sum(len(payload) for payload in everyone[:rank])
        by_prompt: dict[str, list[int]] = {}
        for j, (key, _, _) in enumerate(pooled):
            by_prompt.setdefault(key, []).append(j)
        voted, metrics = vote_on([s for _, s, _ in pooled], [k for _, _, k in pooled], list(by_prompt.values()))
        rewards: list[float | None] = [0.0] * len(prompts)
        keys: list[Any] = [None] * len(prompts)
        for j, i in enumerate(good):
            rewards[i], keys[i] = voted[offset + j], samples[j].key
        log_metric, log_extra = kwargs.get("log_metric"), kwargs.get("log_extra")
        if callable(log_metric):
            for name, value in metrics.items():
                log_metric(f"{self.__name__}/{name}", value)
            log_metric(f"{self.__name__}/frac_no_answer", sum(s.key is None for s in samples) / max(1, len(samples)))
        if callable(log_extra):
            log_extra(f"{self.__name__}_answer_key", keys)
        return rewards


def trl_vote_reward(
    task: str | Task, *, timeout_s: float = 5.0, workers: int | None = None, memory_mb: int | None = 2048,
    reasoning_delimiters: Sequence[str] | None = None, executor: str = "process", gather: bool = True,
    name: str | None = None,
) -> Callable[..., list[float | None]]:
    """A label-free TRL reward function for TTRL: majority-vote pseudo-label rewards per prompt group.

    `GRPOTrainer(reward_funcs=[trl_vote_reward("math")], ...)` trains on a dataset with no answers
    (Zuo et al. 2025, "TTRL: Test-Time Reinforcement Learning"); see `TaskVoteReward`.
    `reasoning_delimiters` as in `trl_reward`: only the answer after the reasoning votes.
    `gather`: under torch.distributed, vote on each prompt's completions from every process (the
    default; see `TaskVoteReward`).
    """
    return TaskVoteReward(task, timeout_s=timeout_s, workers=workers, memory_mb=memory_mb,
                          reasoning_delimiters=reasoning_delimiters, executor=executor, gather=gather, name=name)


# ------------------------------------------------------------------------------------------------
# veRL

_POOLS: dict[tuple[str, float, str], tuple[int, VerifierPool]] = {}
_POOLS_LOCK = threading.Lock()


def task_for_source(data_source: Any) -> str:
    """The task name for a veRL `data_source` (see the module docstring)."""
    name = str(to_builtin(data_source) or "").strip().lower()
    if name in TASKS:
        return name
    for needle, task in (("integra", "integration"), ("countdown", "countdown"), ("math", "math")):
        if needle in name:
            return task
    return "math"


def shared_pool(task_name: str, timeout_s: float = 5.0, workers: int | None = None, executor: str = "process") -> VerifierPool:
    """This process's pool for `task_name` (a new one after a fork: workers belong to their parent)."""
    key = (task_name, float(timeout_s), str(executor))
    with _POOLS_LOCK:
        entry = _POOLS.get(key)
        if entry is None or entry[0] != os.getpid():
            pool = VerifierPool(get_task_cached(task_name), workers=workers or default_workers(), timeout_s=timeout_s,
                                executor=executor)
            _POOLS[key] = entry = (os.getpid(), pool)
        return entry[1]


def verl_problem(task: Task, ground_truth: Any, extra_info: Mapping[str, Any] | None, index: int = 0,
                 require_answer: bool = True) -> Problem | None:
    """The Problem a veRL row describes; None when the task needs an answer and there is none
    (unless `require_answer` is False: label-free rewards). Numpy values (parquet) are accepted
    anywhere in `ground_truth` and `extra_info`."""
    ground_truth, extra_info = to_builtin(ground_truth), to_builtin(extra_info)
    info = dict(extra_info) if isinstance(extra_info, Mapping) else {}
    meta = {k: v for k, v in info.items() if k not in PROBLEM_COLUMNS}
    text = next((info[k] for k in PROBLEM_COLUMNS if isinstance(info.get(k), str) and info[k].strip()), None)
    answer, accepted = None, []
    if isinstance(ground_truth, Mapping):
        meta.update(ground_truth)
        text = next((ground_truth[k] for k in PROBLEM_COLUMNS if isinstance(ground_truth.get(k), str)), text)
        answer, accepted = reference_answers(next((ground_truth[k] for k in ANSWER_COLUMNS
                                                   if ground_truth.get(k) is not None), None))
    elif task.needs_answer:
        answer, accepted = reference_answers(ground_truth)
    elif isinstance(ground_truth, str) and ground_truth.strip():
        text = ground_truth  # self-checking tasks: the ground truth carries the problem
    if task.needs_answer and answer is None and require_answer:
        return None
    if accepted:
        meta[ANSWERS_META_KEY] = accepted
    return Problem(str(info.get("index", index)), text or "", answer, meta)


PRED_CHARS = 300  # veRL's math_dapo scorer reads the last 300 characters too


def short_pred(answer: str | None) -> str:
    """The extracted answer as veRL's `pred` extra: at most PRED_CHARS characters (longer ones keep
    their head and tail around "..."), since veRL stacks each extra into one numpy array per batch,
    whose string dtype pads every row to the longest (one 30,000-character answer in 1,024 rows
    made a 123 MB array)."""
    text = answer or ""
    if len(text) <= PRED_CHARS:
        return text
    half = (PRED_CHARS - 3) // 2
    return text[:half] + "..." + text[-half:]


def _score_dict(verdict: Verdict | None, reward: float | None = None) -> dict[str, Any]:
    """veRL's dict form: `score` (the reward) plus extras it logs per sample (`acc` as in its
    math_dapo scorer; `pred` the extracted answer, cut by `short_pred`; 0/1 flags for no answer and
    verifier failure)."""
    if verdict is None:  # a row with no reference answer for a task that needs one: not checked
        return {"score": 0.0 if reward is None else reward, "acc": 0.0, "pred": "", "no_answer": 0.0,
                "verifier_failed": 0.0, "unlabelled": 1.0}
    return {
        "score": verdict.reward if reward is None else reward,
        "acc": float(verdict.correct),
        "pred": short_pred(verdict.answer),
        "no_answer": float(verdict.status is Status.NO_ANSWER),
        "verifier_failed": float(verdict.status in FAILED),
        "unlabelled": float(verdict.status is Status.UNLABELLED),  # `acc` is 0 there: unknown, not wrong
    }


def compute_score(
    data_source: Any,
    solution_str: str,
    ground_truth: Any,
    extra_info: Mapping[str, Any] | None = None,
    *,
    timeout_s: float = 5.0,
    workers: int | None = None,
    executor: str = "process",
    return_dict: bool = False,
    reasoning_delimiters: Sequence[str] | None = None,
    **kwargs: Any,
) -> float | dict[str, Any]:
    """veRL reward (naive / reward-loop managers call it once per sample, with keywords).

    1.0 if `solution_str` is verified right, else 0.0; never raises for a sample. With
    `return_dict=True` (set it in `reward.custom_reward_function.reward_kwargs`) the dict form
    `{"score", "acc", "pred", "no_answer", "verifier_failed", "unlabelled"}`, whose extras veRL logs. Extra
    keywords veRL adds (`reward_router_address`, ...) are ignored. `reasoning_delimiters` (a reward
    kwarg, e.g. ["</think>"]; off by default): TRL's `reasoning_accuracy_reward` semantics, see
    `Task.with_reasoning`.
    """
    return compute_score_batch([data_source], [solution_str], [ground_truth], [extra_info], timeout_s=timeout_s,
                               workers=workers, executor=executor, return_dict=return_dict,
                               reasoning_delimiters=reasoning_delimiters)[0]


def _rows(data_sources: Sequence[Any], solution_strs: Sequence[Any], ground_truths: Sequence[Any] | None,
          extra_infos: Sequence[Any] | None) -> tuple[int, list[Any], list[Any], list[Any]]:
    n = len(solution_strs)
    sources = list(data_sources) if data_sources is not None else ["math"] * n
    truths = list(ground_truths) if ground_truths is not None else [None] * n
    infos = list(extra_infos) if extra_infos is not None else [None] * n
    if not len(sources) == len(truths) == len(infos) == n:
        raise ValueError(f"veRL batch: {len(sources)} data_sources, {n} solution_strs, {len(truths)} ground_truths and "
                         f"{len(infos)} extra_infos; expected the same length")
    return n, sources, truths, infos


def compute_score_batch(
    data_sources: Sequence[Any],
    solution_strs: Sequence[str],
    ground_truths: Sequence[Any],
    extra_infos: Sequence[Mapping[str, Any] | None] | None = None,
    *,
    timeout_s: float = 5.0,
    workers: int | None = None,
    executor: str = "process",
    return_dict: bool = False,
    reasoning_delimiters: Sequence[str] | None = None,
    **kwargs: Any,
) -> list[float] | list[dict[str, Any]]:
    """veRL 0.6's legacy batch reward manager form (`reward_model.reward_manager=batch`; it calls this with the
    keywords data_sources, solution_strs, ground_truths, extra_infos, each one entry per response,
    as numpy object arrays or lists): every sample verified in parallel, scores in order."""
    solution_strs = _after_reasoning_all(solution_strs, reasoning_delimiters)
    n, sources, truths, infos = _rows(data_sources, solution_strs, ground_truths, extra_infos)
    verdicts: list[Verdict | None] = [None] * n
    groups: dict[str, list[tuple[int, Problem]]] = {}
    for i in range(n):
        try:
            name = task_for_source(sources[i])
            problem = verl_problem(get_task_cached(name), truths[i], infos[i], i)
        except ValueError as err:  # to_builtin: a ground truth or extra_info nested too deeply
            verdicts[i] = Verdict.fail(Status.INVALID_PROBLEM, f"row {i + 1}: {err}")
            continue
        if problem is not None:
            groups.setdefault(name, []).append((i, problem))
    for name, items in groups.items():
        pool = shared_pool(name, timeout_s, workers, executor)
        checked = pool.verify([p for _, p in items], [_as_text(solution_strs[i]) for i, _ in items])
        for (i, _), verdict in zip(items, checked):
            verdicts[i] = verdict
    if return_dict:
        out = [_score_dict(v) for v in verdicts]
        for i, v in enumerate(verdicts):
            if v is None:  # unlabelled: still say what the response answered
                out[i]["pred"] = short_pred(
                    get_task_cached(task_for_source(sources[i])).extract_answer(_as_text(solution_strs[i])))
        return out
    return [0.0 if v is None else v.reward for v in verdicts]


def verl_group_key(data_source: Any, ground_truth: Any, extra_info: Any) -> str:
    """Which responses of a veRL batch answer the same prompt (they vote together).

    veRL gives each prompt a `uid` and repeats its row `rollout.n` times, but the batch reward
    manager passes only data_sources, solution_strs, ground_truths and extra_infos, not the uid.
    So, in order: `extra_info["uid"]` when present (a custom manager or dataset may put it there);
    else `extra_info["index"]` (veRL's example preprocessors and `examples/verl/make_parquet.py`
    write one per row; the rows of one prompt share it) with `split`; else the prompt's content
    (`problem` / `question` in extra_info, or the ground truth). Responses to equal problems vote
    together in the last case, which is right for a vote.
    """
    info = to_builtin(extra_info) if isinstance(extra_info, Mapping) or extra_info is not None else {}
    info = info if isinstance(info, Mapping) else {}
    source = str(to_builtin(data_source))
    if info.get("uid") is not None:
        return json.dumps(["uid", source, str(info["uid"])])
    if info.get("index") is not None:
        return json.dumps(["index", source, str(info.get("split", "")), str(info["index"])])
    text = next((info[k] for k in PROBLEM_COLUMNS if isinstance(info.get(k), str)), None)
    return json.dumps(["content", source, text, to_builtin(ground_truth)], sort_keys=True, default=str)


def compute_score_vote_batch(
    data_sources: Sequence[Any],
    solution_strs: Sequence[str],
    ground_truths: Sequence[Any] | None = None,
    extra_infos: Sequence[Mapping[str, Any] | None] | None = None,
    *,
    timeout_s: float = 5.0,
    workers: int | None = None,
    executor: str = "process",
    return_dict: bool = True,
    reasoning_delimiters: Sequence[str] | None = None,
    **kwargs: Any,
) -> list[float] | list[dict[str, Any]]:
    """TTRL in veRL: label-free majority-vote rewards for veRL 0.6's legacy batch reward manager
    (`reward_model.reward_manager=batch`; veRL 0.7+'s reward loop calls a reward once per response,
    so no group can vote there).

    Responses are grouped by prompt (`verl_group_key`), each group votes with the task's answer
    equivalence (`vote_rewards`), and a response scores 1.0 if its answer is the majority answer.
    Ground truths are not needed (math rows may have none); where they exist they are used only
    for the logged `acc` (is the response right), `label_acc` (is its group's majority right; 0 for
    a group without references, whose rows log `unlabelled` 1: average it over labelled rows) and
    `majority_ratio`. Returns dicts by default (`return_dict=False`: floats). `reasoning_delimiters`
    as in `compute_score_batch`: only the text after the reasoning votes; unfinished reasoning has no answer.
    """
    solution_strs = _after_reasoning_all(solution_strs, reasoning_delimiters)
    n, sources, truths, infos = _rows(data_sources, solution_strs, ground_truths, extra_infos)
    out: list[dict[str, Any]] = [_score_dict(None) for _ in range(n)]
    by_task: dict[str, list[tuple[int, Problem]]] = {}
    for i in range(n):
        try:
            name = task_for_source(sources[i])
            problem = verl_problem(get_task_cached(name), truths[i], infos[i], i, require_answer=False)
        except ValueError as err:  # to_builtin: nested too deeply; the row scores 0 and does not vote
            out[i] = {**_score_dict(Verdict.fail(Status.INVALID_PROBLEM, f"row {i + 1}: {err}")),
                      "majority_ratio": 0.0, "label_acc": 0.0}  # every row has the same keys: veRL logs them per key
            continue
        if problem is not None:
            by_task.setdefault(name, []).append((i, problem))
    for name, items in by_task.items():
        task = get_task_cached(name)
        rows = [i for i, _ in items]
        problems = [p for _, p in items]
        groups: dict[str, list[int]] = {}
        for j, i in enumerate(rows):
            groups.setdefault(verl_group_key(sources[i], truths[i], infos[i]), []).append(j)
        pool = shared_pool(name, timeout_s, workers, executor)
        rewards, samples, _ = vote_rewards(pool, task, problems, [_as_text(solution_strs[i]) for i in rows],
                                           list(groups.values()))
        for idx in groups.values():
            ratio = sum(rewards[j] for j in idx) / len(idx)
            winners = [samples[j] for j in idx if rewards[j] > 0]
            label_acc = float(winners[0].correct) if winners else 0.0
            for j in idx:
                entry = _score_dict(samples[j].verdict, rewards[j])
                entry.update(majority_ratio=ratio, label_acc=label_acc)
                out[rows[j]] = entry
    if return_dict:
        return out
    return [entry["score"] for entry in out]


def _after_reasoning_all(solution_strs: Sequence[Any], reasoning_delimiters: Sequence[str] | str | None) -> Sequence[Any]:
    """TRL's reasoning_accuracy_reward semantics for a batch: each response cut to the text after its
    last delimiter, "" where the reasoning never closes; unchanged without delimiters."""
    delimiters = reasoning_tags(reasoning_delimiters)  # blank tags dropped, as Task.with_reasoning drops them
    if not delimiters:
        return solution_strs
    from rungs.verify.extract import after_reasoning

    return [after_reasoning(_as_text(s), delimiters) or "" for s in solution_strs]


_TASKS: dict[str, Task] = {}


def get_task_cached(name: str) -> Task:
    """One task instance per name and process (tasks are stateless; their caches are worth keeping)."""
    if name not in _TASKS:
        _TASKS[name] = get_task(name)
    return _TASKS[name]


def _as_text(value: Any) -> str:
    value = to_builtin(value)
    return value if isinstance(value, str) else ("" if value is None else str(value))
