"""Check answers with a task's verifier: one answer from the command line, or a JSONL file of them.

    rungs verify --task countdown --problem "numbers: 1 3 4 6; target: 24" --answer "6/(1-3/4)"
    rungs verify --task math --problem "1+1?" --gold 2 --answer "2" --json
    rungs verify --task integration rows.jsonl --timeout 5 --workers 8 > verdicts.jsonl

A file has one JSON object per line: the problem (`problem`, or `question` / `prompt`), and what
to check: `completion` (raw model text; the task finds the answer in it) or `answer` (an answer
already extracted). A reference answer, for tasks that need one (math), is `gold` (or
`reference`); in a row that has a `completion`, `answer` / `solution` / `ground_truth` are taken
as the reference, as in problem files. `id` and any other columns are kept (countdown reads
`nums` / `target` from them). Output: one JSON object per row, in order, on stdout, with `id`,
`reward`, `status`, `detail` and `answer`; a summary goes to stderr.

Everything runs through the sandboxed verifier pool (hard wall-clock and memory limits), the same
code path that scores rollouts in training, so what this command says is what a trainer would
reward. Wrong answers still exit 0; a bad file or argument exits 2 with one line naming it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from rungs.errors import UserError

HELP = "check answers (one, or a JSONL file of them) with a task's verifier"

CANDIDATE_KEYS = ("completion", "answer")
GOLD_KEYS = ("gold", "reference")
# In a row with a completion, these name the reference answer (the problem-file convention).
GOLD_ALIASES = ("answer", "solution", "ground_truth")
CHUNK = 256  # rows verified per pool call: output streams while a large file is checked


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", nargs="?", type=Path, help="a JSONL file of rows to check (see above)")
    parser.add_argument("--task", required=True, help="task name (see `rungs tasks`)")
    parser.add_argument("--problem", help="the problem text (single-answer mode)")
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--answer", help="an extracted answer to check")
    what.add_argument("--completion", help="raw model text; the task finds the answer in it")
    parser.add_argument("--gold", help="the reference answer, for tasks that need one (math)")
    parser.add_argument("--json", action="store_true", help="single-answer mode: print one JSON object")
    parser.add_argument("--timeout", type=float, default=5.0, help="wall-clock limit per answer in seconds (default: 5)")
    parser.add_argument("--workers", type=int, default=None, help="verifier processes (default: one per CPU core)")
    parser.add_argument("--executor", default="process", help="verifier backend: process (worker processes here), ray (a local Ray or $RAY_ADDRESS), ray:ADDRESS (a Ray cluster) (default: process)")
    parser.add_argument("--memory-mb", type=int, default=2048, help="memory cap per verifier process in MB (default: 2048)")


def _check_args(args: argparse.Namespace) -> None:
    if not args.timeout > 0:
        raise UserError(f"--timeout must be > 0 seconds, got {args.timeout:g}")
    if args.workers is not None and args.workers < 1:
        raise UserError(f"--workers must be >= 1, got {args.workers}")
    if args.memory_mb is not None and args.memory_mb < 1:
        raise UserError(f"--memory-mb must be >= 1, got {args.memory_mb}")
    single = args.problem is not None or args.answer is not None or args.completion is not None
    if args.file is not None and single:
        raise UserError("give either a FILE or --problem with --answer/--completion, not both")
    if args.file is None:
        if args.problem is None:
            raise UserError("nothing to check: give a JSONL FILE, or --problem with --answer or --completion")
        if args.answer is None and args.completion is None:
            raise UserError("--problem needs --answer (an extracted answer) or --completion (raw model text)")


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def read_rows(path: Path, task: Any) -> list[tuple[Any, str, bool]]:
    """(problem, text to check, is_completion) per row; the first bad row is a UserError naming file:line."""
    from rungs.data import iter_jsonl, row_to_problem

    if not path.is_file():
        raise UserError(f"{path}: no such file; expected a JSONL file with 'problem' and 'answer' or 'completion' per line")
    items = []
    seen: set[str] = set()
    for index, (lineno, row) in enumerate(iter_jsonl(path)):
        where = f"{path}:{lineno}"
        if not isinstance(row, dict):
            raise UserError(f"{where}: expected a JSON object, got {type(row).__name__}")
        key = next((k for k in CANDIDATE_KEYS if row.get(k) is not None), None)
        if key is None:
            raise UserError(f"{where}: nothing to check: expected an 'answer' or a 'completion' field")
        if key == "completion" and not isinstance(row[key], str):
            raise UserError(f"{where}: field 'completion' must be a string, got {type(row[key]).__name__}")
        gold_keys = GOLD_KEYS + (GOLD_ALIASES if key == "completion" else GOLD_ALIASES[1:])
        gold = next((row[k] for k in gold_keys if row.get(k) is not None), None)
        fields = {k: v for k, v in row.items() if k not in (*CANDIDATE_KEYS, *GOLD_KEYS, *GOLD_ALIASES)}
        problem = row_to_problem({**fields, "answer": gold}, where, index)
        if problem.id in seen:
            raise UserError(f"{where}: duplicate id {problem.id!r}; ids must be unique")
        seen.add(problem.id)
        try:
            task.parse_problem(problem)
        except UserError as err:
            raise UserError(f"{where}: {err}") from None
        if task.needs_answer and problem.answer is None:
            raise UserError(f"{where}: task {task.name!r} needs a reference answer: add a 'gold' field")
        items.append((problem, _text(row[key]), key == "completion"))
    if not items:
        raise UserError(f"{path}: contains no rows")
    return items


def _verify(pool: Any, batch: list[tuple[Any, str, bool]]) -> list[Any]:
    """Verdicts for a mixed batch of answers and completions, in order."""
    verdicts: list[Any] = [None] * len(batch)
    for is_completion in (False, True):
        index = [i for i, item in enumerate(batch) if item[2] is is_completion]
        if not index:
            continue
        problems = [batch[i][0] for i in index]
        texts = [batch[i][1] for i in index]
        found = pool.verify(problems, texts) if is_completion else pool.verify_answers(problems, texts)
        for i, verdict in zip(index, found):
            verdicts[i] = verdict
    return verdicts


def run(args: argparse.Namespace) -> int:
    from rungs.tasks import get_task
    from rungs.types import Problem
    from rungs.verify.pool import VerifierPool

    task = get_task(args.task)
    _check_args(args)

    if args.file is None:
        problem = Problem(id="cli", text=args.problem, answer=args.gold)
        task.parse_problem(problem)
        if task.needs_answer and args.gold is None:
            raise UserError(f"task {task.name!r} needs a reference answer: add --gold")
        is_completion = args.completion is not None
        text = args.completion if is_completion else args.answer
        with VerifierPool(task, workers=1, timeout_s=args.timeout, memory_mb=args.memory_mb, executor=args.executor) as pool:
            (verdict,) = _verify(pool, [(problem, text, is_completion)])
        if args.json:
            print(json.dumps({"id": problem.id, **verdict.to_dict()}, ensure_ascii=False))
        else:
            print(f"{verdict.status.value} (reward {verdict.reward}): {verdict.detail}".rstrip(": "))
        return 0

    items = read_rows(args.file, task)
    from tqdm import tqdm

    total, correct, statuses = 0.0, 0, {}
    with VerifierPool(task, workers=args.workers, timeout_s=args.timeout, memory_mb=args.memory_mb, executor=args.executor) as pool, tqdm(
        total=len(items), desc="verify", unit="row", file=sys.stderr, disable=not sys.stderr.isatty()
    ) as bar:
        for start in range(0, len(items), CHUNK):
            batch = items[start : start + CHUNK]
            for (problem, _, _), verdict in zip(batch, _verify(pool, batch)):
                sys.stdout.write(json.dumps({"id": problem.id, **verdict.to_dict()}, ensure_ascii=False) + "\n")
                total += verdict.reward
                correct += verdict.correct
                statuses[verdict.status.value] = statuses.get(verdict.status.value, 0) + 1
            sys.stdout.flush()
            bar.update(len(batch))
    counts = ", ".join(f"{k} {v}" for k, v in sorted(statuses.items(), key=lambda kv: -kv[1]))
    print(f"{len(items)} rows: {correct} correct, mean reward {total / len(items):.3f} ({counts})", file=sys.stderr)
    return 0
