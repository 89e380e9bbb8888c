"""What every job shares: its base settings (`JobConfig`), and what a resumable job does first:
open or create its run directory, load and check problems.

`JobConfig` holds the settings every job has (task, problems, policy and its options, limit, run
directory, verifier workers, timeout and executor) and checks them once, so that `rungs ladder
--workers 0` is the same one-line error as `rungs eval --workers 0`; LadderConfig, TTRLConfig,
TTTConfig, EvalConfig, the demo's DemoConfig and `rungs train`'s TrainJobConfig add their own.
`rungs ladder` and `rungs ttrl` share `open_job` (`rungs train` predates it and keeps its job
settings at the top level of its config.yaml, GRPOConfig's under `grpo:`). A
job's config.yaml holds one section per config class ({"ladder": ..., "grpo": ...}), the layout
`--resume` and `--config` read back.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rungs.config import JOB_POLICY_OPTIONS_HELP, check_finite_fields, check_policy_options, help_field
from rungs.errors import UserError
from rungs.tasks.base import Task, reasoning_tags
from rungs.types import Problem


def default_problems(task: str, kind: str, purpose: str) -> str:
    """`builtin:TASK-KIND`, the task's own built-in set of that kind (`countdown-hard`); a UserError
    for an unknown task (with its did-you-mean), or one saying to give `--problems FILE` when the
    task has no such set (math has none: its problems are the user's)."""
    from rungs.data import builtin_names
    from rungs.tasks import get_task

    get_task(task)  # an unknown task is named as such, not as a missing problem set
    if f"{task}-{kind}" not in builtin_names():
        raise UserError(f"task {task!r} has no built-in {kind} set (builtin:{task}-{kind}); "
                        f"give the {purpose} with --problems FILE")
    return f"builtin:{task}-{kind}"


def check_eval_limit(eval_limit: int | None, eval_problems: str | None) -> None:
    """`--eval-limit`: None, or an integer >= 1 with held-out problems to limit; a one-line
    UserError otherwise (0 would read as "no limit", a negative one as an empty set)."""
    check_count("--eval-limit", eval_limit)
    if eval_limit is not None and not eval_problems:
        raise UserError(f"--eval-limit {eval_limit}: there are no held-out problems to limit; "
                        "give --eval-problems or drop --eval-limit")


# What a job passes `load_policy` itself, with the flag that sets it: a --policy-option of that name
# would reach `load_policy` twice.
JOB_POLICY_KEYWORDS = {"seed": "--policy-seed (policy_seed: in YAML)", "task": "--task"}


def refuse_job_policy_options(options: dict[str, Any], seed_flag: str = JOB_POLICY_KEYWORDS["seed"]) -> None:
    """A job that gives its policy the task and a seed itself refuses `--policy-option seed=N` or
    `task=NAME`: a one-line UserError pointing to the job's own flag (`seed_flag` for the seed)."""
    if not isinstance(options, dict):
        return
    for key, flag in {**JOB_POLICY_KEYWORDS, "seed": seed_flag}.items():
        if key in options:
            raise UserError(f"--policy-option {key}={options[key]!r}: this job sets its policy's {key} with {flag}; "
                            "use that instead")


def check_at_least(config: Any, least: dict[str, int]) -> None:
    """Each named integer setting of `config` is an int (not a bool) >= its bound: UserError
    "--check-every -1: expected an integer >= 0" (the flag and the value) otherwise."""
    for name, low in least.items():
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise UserError(f"--{name.replace('_', '-')} {value!r}: expected an integer >= {low}")


def check_count(flag: str, value: int | None) -> None:
    """A count setting (`--limit`, `--workers`, `--eval-limit`): None, or an integer >= 1 (not a
    bool); a one-line UserError naming the flag and the value otherwise."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise UserError(f"{flag} {value!r}: expected an integer >= 1")


def check_job_settings(limit: int | None, workers: int | None, timeout: float, executor: str,
                       limit_flag: str = "--limit") -> None:
    """The settings every job shares, checked the same way: `limit` (problems, None = all) and
    `workers` (verifier processes, None = the free cores) are integers >= 1, `timeout` seconds per
    verification > 0 and finite, `executor` one of rungs.verify.pool.EXECUTORS. Raises UserError (one line
    naming the flag and the value) otherwise."""
    from rungs.verify.pool import parse_executor

    check_count(limit_flag, limit)
    check_count("--workers", workers)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not (timeout > 0 and math.isfinite(timeout)):
        raise UserError(f"--timeout {timeout!r}: expected seconds > 0 (a finite limit: a verifier always runs under one)")
    parse_executor(executor)


@dataclass
class JobConfig:
    """Settings every job has; a job's config subclasses it and adds its own (its `__post_init__`
    calls this one first). Subclasses may redefine a field to change its default or help."""

    POLICY_OPTIONS_EXAMPLE = "lora_rank: 16"  # shown when policy_options is not a mapping

    task: str = help_field("integration", "task name (rungs tasks lists them)")
    problems: str | None = help_field(None, "problems: a .jsonl/.json/.parquet file, a dataset directory, or builtin:NAME")
    policy: str = help_field("tiny", "trainable policy: tiny, tiny:PATH, hf:MODEL")
    policy_options: dict[str, Any] = help_field({}, JOB_POLICY_OPTIONS_HELP)
    limit: int | None = help_field(None, "use only the first N problems")
    out: str | None = help_field(None, "run directory (default runs/<job>-<task>-<time>)")
    workers: int | None = help_field(None, "verifier worker processes (default: the cores free at start, see --threads)")
    timeout: float = help_field(5.0, "seconds per verification before the worker is killed")
    executor: str = help_field("process", "verifier backend: process (worker processes here), ray (a local Ray or $RAY_ADDRESS), ray:ADDRESS (a Ray cluster)")
    reasoning_delimiters: list[str] = help_field([], "read answers only after the reasoning: the text after the last of the first of these tags found "
                                                 "(TRL's reasoning_delimiters, e.g. </think>; a completion whose reasoning never closes has no answer); empty = anywhere")

    def __post_init__(self) -> None:
        check_finite_fields(self)  # the subclass's own float settings too (learning rates, fractions)
        check_policy_options(self.policy_options, self.POLICY_OPTIONS_EXAMPLE)
        check_job_settings(self.limit, self.workers, self.timeout, self.executor)
        # Blank tags are dropped as the flag's comma list and the Python API drop them (`reasoning_tags`):
        # YAML's [""] means no delimiters, as `--reasoning-delimiters ''` does; a tag that is not a string is refused.
        self.reasoning_delimiters = list(reasoning_tags(self.reasoning_delimiters) or ())

    def build_task(self) -> Task:
        """The job's task (`rungs.tasks.get_task(self.task)`), reading answers only after the
        reasoning when `reasoning_delimiters` is set (`Task.with_reasoning`). UserError for an
        unknown task name."""
        from rungs.tasks import get_task

        return get_task(self.task, reasoning_delimiters=self.reasoning_delimiters or None)


def default_out(prefix: str, task: str) -> str:
    """runs/<prefix>-<task>-<YYYYmmdd-HHMMSS>"""
    return str(Path("runs") / f"{prefix}-{task}-{time.strftime('%Y%m%d-%H%M%S')}")


def open_job(section: str, config: Any, grpo: Any, resume_dir: str | None, task: Task | None = None) -> tuple[Any, Task, list[Problem]]:
    """(run directory, task, problems): the run directory is created (or reopened to resume, which
    must be a run of the same job whose problem files are unchanged) and locked by this process,
    the task built from `config.task`, and `config.problems` loaded and parsed by the task
    (`load_task_problems`: a row the task cannot parse is skipped with a warning). A new
    run checks the task and problems before it makes its directory, so bad input leaves nothing
    behind. The caller owns the run directory from here: run the job inside
    `job_scope(run_dir, section)`, which releases it (and discards it if no step was made)."""
    from rungs.config import to_dict
    from rungs.runs import RunDir, disk_errors, resume_command

    settings = {section: to_dict(config), "grpo": to_dict(grpo)}
    if resume_dir is None:
        task, problems = _load_job_problems(config, task)
        return RunDir.create(config.out or default_out(section, config.task), settings), task, problems
    run_dir = RunDir.open(resume_dir, job=section, lock=True)
    try:
        run_dir.check_budget(getattr(grpo, "max_steps", 0) or 0)  # before the stored settings change
        with disk_errors(run_dir.path, resume_command(section, run_dir.path)):
            run_dir.write_config(settings)  # the run-length settings a resume may change
        task, problems = _load_job_problems(config, task)
    except BaseException:
        run_dir.release()
        raise
    return run_dir, task, problems


def _load_job_problems(config: Any, task: Task | None) -> tuple[Task, list[Problem]]:
    """The job's task (`task`, else built from `config.task`) and its problems, each parsed by it
    (a row it cannot parse is skipped with a warning line naming the file and line)."""
    from rungs.data import load_task_problems

    task = task or config.build_task()
    return task, load_task_problems(config.problems, task, limit=config.limit)


@contextlib.contextmanager
def job_scope(run_dir: Any, job: str) -> Iterator[None]:
    """The life of a job in its run directory: a disk that refuses a write becomes one line naming
    the path and how to resume, and the directory's lock is released however the job ends. A new
    run that fails (bad input, a policy that will not load) before it records a step is removed
    (`RunDir.discard_if_unused`), so that its --out can be used again; an interrupt (Ctrl-C) keeps
    it, to be resumed, and says how (the `Interrupted` message the CLI prints)."""
    from rungs.errors import Interrupted
    from rungs.runs import disk_errors, resume_command

    try:
        with disk_errors(run_dir.path, resume_command(job, run_dir.path)):
            yield
    except KeyboardInterrupt as err:  # Ctrl-C: say how to continue (what is saved is each finished step/problem)
        if isinstance(err, Interrupted):
            raise
        raise Interrupted(f"interrupted; continue with: {resume_command(job, run_dir.path)}") from None
    except Exception:
        run_dir.discard_if_unused()
        raise
    finally:
        run_dir.release()
