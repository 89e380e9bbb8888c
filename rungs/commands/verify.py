"""Check answers with a task's verifier: one answer from the command line, or a JSONL file of them.

    rungs verify --task countdown --problem "numbers: 1 3 4 6; target: 24" --answer "6/(1-3/4)"
    rungs verify --task math --problem "1+1?" --gold 2 --answer "2" --json
    rungs verify --task integration rows.jsonl --timeout 5 --workers 8 > verdicts.jsonl
    python dump_rollouts.py | rungs verify --task math - > verdicts.jsonl

A FILE of `-` is read from standard input (named `<stdin>` in messages).

A file has one JSON object per line: the problem (`problem`, or `question` / `prompt`; a row with
only a prompt, a string or TRL's conversational list, has its problem found in it as the TRL
adapter does, `Task.problem_from_prompt`), and what to check: `completion` (raw model text; the
task finds the answer in it) or `answer` (an answer already extracted). A reference answer, for
tasks that need one (math), is `gold` (or `reference`); in a row that has a `completion`, `answer`
/ `solution` / `ground_truth` are taken as the reference, as in problem files. `id` and any other
columns are kept (countdown reads `nums` / `target` from them). Output: one JSON object per row, in
order, on stdout, with `id`, `reward`, `status`, `detail` and `answer` (each echoed field cut at
2,000 characters with a marker); a summary goes to stderr. Ids may repeat (a rollout dump has
several samples of one problem). A fault in one row is that row's verdict, and the other rows are
still checked: a row with `"answer": null` (the model gave none) or with neither field gets
`no_answer`; a row whose problem the task cannot parse, that is not an object, or whose completion
is not a string gets `invalid_problem` (reward 0, the reason naming file:line); a row whose
reference spells a missing value (`"gold": "nan"`) gets `unlabelled`. `--strict` stops at the first
row that cannot be checked instead (an explicit null answer is a verdict, not such a row). A UTF-8
byte-order mark is skipped.

Everything runs through the sandboxed verifier pool (hard wall-clock and memory limits), the same
code path that scores rollouts in training, so what this command says is what a trainer would
reward. Wrong answers and faulty rows still exit 0; a file that is not JSON lines, a row without
the reference answer the task needs, or a bad argument exits 2 with one line naming it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, NamedTuple

from rungs.config import finite_float_arg
from rungs.errors import UserError

HELP = "check answers (one, or a JSONL file of them) with a task's verifier"

CANDIDATE_KEYS = ("completion", "answer")
GOLD_KEYS = ("gold", "reference")
# In a row with a completion, these name the reference answer (the problem-file convention).
GOLD_ALIASES = ("answer", "solution", "ground_truth")
CHUNK = 256  # rows verified per pool call: output streams while a large file is checked
MAX_ECHO = 2000  # characters of an echoed field (id, answer, detail) before it is cut with a marker


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", nargs="?", help="a JSONL file of rows to check (see above); - reads standard input (./- is a file named -)")
    parser.add_argument("--task", required=True, help="task name (see `rungs tasks`)")
    parser.add_argument("--problem", help="the problem text (single-answer mode)")
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--answer", help="an extracted answer to check")
    what.add_argument("--completion", help="raw model text; the task finds the answer in it")
    parser.add_argument("--gold", help="the reference answer, for tasks that need one (math)")
    parser.add_argument("--json", action="store_true", help="single-answer mode: print one JSON object")
    parser.add_argument("--timeout", type=finite_float_arg, default=5.0, help="wall-clock limit per answer in seconds (default: 5)")
    parser.add_argument("--workers", type=int, default=None, help="verifier processes (default: one per CPU core)")
    parser.add_argument("--executor", default="process", help="verifier backend: process (worker processes here), ray (a local Ray or $RAY_ADDRESS), ray:ADDRESS (a Ray cluster) (default: process)")
    parser.add_argument("--memory-mb", type=int, default=2048, help="memory each verifier process may allocate past its size after start-up, in MB (its address-space cap; default: 2048)")
    parser.add_argument("--strict", action="store_true",
                        help="FILE: stop at the first row that cannot be checked (exit 2: a problem the task cannot "
                             "parse, no 'answer' or 'completion' field, a reference that spells a missing value) "
                             "instead of giving it the verdict invalid_problem, no_answer or unlabelled; an "
                             "explicit null answer is the model's no_answer, a verdict, not a faulty row")


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


class Row(NamedTuple):
    """One row to check: its problem, the text, whether that text is a raw completion, and the
    verdict when it is decided without the verifier (a null answer, a problem outside the grammar)."""

    problem: Any
    text: str
    is_completion: bool
    verdict: Any = None


def read_rows(path: str | Path, task: Any, strict: bool = False) -> list[Row]:
    """The rows of a verify file (`-`: standard input), in order. A file that is not JSON lines is a UserError naming
    file:line; so is a row without the reference answer a task needs. Every other fault is the
    row's own verdict, and the other rows are still checked: a row that is not an object, whose
    problem cannot be parsed, or whose completion is not a string gets `invalid_problem` (the
    reason, naming file:line); a row with neither 'answer' nor 'completion', or a null one,
    `no_answer`; a row whose reference spells a missing value, `unlabelled`. With `strict` the
    first row that cannot be checked (all of these but a null answer) is a UserError. Ids may repeat (several
    samples of one problem); rows are matched to verdicts by order."""
    from rungs.data import iter_jsonl, missing_answer_note, row_to_problem
    from rungs.types import Problem, Status, Verdict, to_builtin

    stdin = isinstance(path, str) and path == "-"  # as typed: Path("./-") would read as "-"
    path = Path("<stdin>" if stdin else path)
    if not stdin and not path.is_file():
        raise UserError(f"{path}: {'is a directory' if path.is_dir() else 'no such file'}; expected a JSONL file with 'problem' and 'answer' or 'completion' per line")
    items: list[Row] = []

    def refuse(index: int, row: Any, status: Any, reason: str) -> None:
        """A row that cannot be checked: its own verdict (with `strict`, the end of the file)."""
        if strict:
            raise UserError(reason)
        pid = row.get("id") if isinstance(row, dict) else None
        problem = Problem(id=str(pid) if pid is not None else f"p{index}", text="", answer=None)
        items.append(Row(problem, "", False, Verdict.fail(status, reason)))

    for index, (lineno, row) in enumerate(iter_jsonl(path, stream=sys.stdin.buffer if stdin else None)):
        where = f"{path}:{lineno}"
        if not isinstance(row, dict):
            refuse(index, row, Status.INVALID_PROBLEM, f"{where}: expected a JSON object, got {type(row).__name__}")
            continue
        present = [k for k in CANDIDATE_KEYS if k in row]
        key = next((k for k in present if row[k] is not None), None)
        if not present:
            refuse(index, row, Status.NO_ANSWER, f"{where}: nothing to check: expected an 'answer' or a 'completion' field")
            continue
        if key == "completion" and not isinstance(row[key], str):
            refuse(index, row, Status.INVALID_PROBLEM,
                   f"{where}: field 'completion' must be a string (raw model text), got {type(row[key]).__name__}")
            continue
        gold_keys = GOLD_KEYS + (GOLD_ALIASES if key == "completion" else GOLD_ALIASES[1:])
        gold_key = next((k for k in gold_keys if row.get(k) is not None), None)
        gold = row[gold_key] if gold_key is not None else None
        fields = {k: v for k, v in row.items() if k not in (*CANDIDATE_KEYS, *GOLD_KEYS, *GOLD_ALIASES)}
        invalid = unlabelled = None
        try:
            problem = row_to_problem({**fields, "answer": gold}, where, index, from_prompt=task.problem_from_prompt,
                                     warn=lambda note: None)  # said below, naming the row's own field
            if gold is not None and problem.answer is None:  # a reference that spells a missing value ("nan")
                unlabelled = missing_answer_note(where, gold_key, to_builtin(gold))
        except UserError as err:
            if strict:
                raise
            invalid = str(err)
            pid = row.get("id")
            problem = Problem(id=str(pid) if pid is not None else f"p{index}", text="", answer=None)
        if invalid is None:
            try:
                task.parse_problem(problem)
            except UserError as err:
                if strict:
                    raise UserError(f"{where}: {err}") from None
                invalid = f"{where}: {err}"
        if invalid is None and unlabelled is not None and task.needs_answer:
            if strict:
                raise UserError(unlabelled)
            items.append(Row(problem, "", False, Verdict.fail(Status.UNLABELLED, unlabelled)))
            continue
        if invalid is None and task.needs_answer and problem.answer is None:
            raise UserError(f"{where}: task {task.name!r} needs a reference answer: add a 'gold' field")
        if invalid is not None:
            items.append(Row(problem, "", False, Verdict.fail(Status.INVALID_PROBLEM, invalid)))
        elif key is None:
            items.append(Row(problem, "", False, Verdict.fail(Status.NO_ANSWER, f"the row's {present[0]!r} is null")))
        else:
            items.append(Row(problem, _text(row[key]), key == "completion"))
    if not items:
        raise UserError(f"{path}: contains no rows")
    return items


def _verify(pool: Any, batch: list[Row]) -> list[Any]:
    """Verdicts for a mixed batch of answers and completions, in order."""
    verdicts: list[Any] = [item.verdict for item in batch]
    for is_completion in (False, True):
        index = [i for i, item in enumerate(batch) if item.is_completion is is_completion and item.verdict is None]
        if not index:
            continue
        problems = [batch[i].problem for i in index]
        texts = [batch[i].text for i in index]
        found = pool.verify(problems, texts) if is_completion else pool.verify_answers(problems, texts)
        for i, verdict in zip(index, found):
            verdicts[i] = verdict
    return verdicts


def clip(text: Any, limit: int = MAX_ECHO) -> Any:
    """`text` cut to `limit` characters with a marker saying how long it was (other values as they are):
    a verdict echoes what it was given, and a 50 MB answer must not come back whole."""
    if not isinstance(text, str) or len(text) <= limit:
        return text
    return f"{text[:limit]}... [truncated: {len(text):,} characters]"


def output_row(problem_id: str | None, verdict: Any) -> dict[str, Any]:
    """The JSON object printed for one verdict, its echoed fields clipped (id None: a single answer
    given on the command line, which has no id)."""
    return {k: clip(v) for k, v in {"id": problem_id, **verdict.to_dict()}.items()}


def run(args: argparse.Namespace) -> int:
    from rungs.tasks import get_task
    from rungs.types import Problem
    from rungs.verify.pool import VerifierPool

    task = get_task(args.task)
    _check_args(args)

    if args.file is None:
        problem = Problem(id="--problem", text=args.problem, answer=args.gold)
        task.parse_problem(problem)
        if task.needs_answer and args.gold is None:
            raise UserError(f"task {task.name!r} needs a reference answer: add --gold")
        is_completion = args.completion is not None
        text = args.completion if is_completion else args.answer
        with VerifierPool(task, workers=1, timeout_s=args.timeout, memory_mb=args.memory_mb, executor=args.executor) as pool:
            (verdict,) = _verify(pool, [Row(problem, text, is_completion)])
        if args.json:
            print(json.dumps(output_row(None, verdict), ensure_ascii=False))
        else:
            print(f"{verdict.status.value} (reward {verdict.reward}): {clip(verdict.detail)}".rstrip(": "))
        return 0

    items = read_rows(args.file, task, strict=args.strict)
    from tqdm import tqdm

    total, correct, statuses = 0.0, 0, {}
    with VerifierPool(task, workers=args.workers, timeout_s=args.timeout, memory_mb=args.memory_mb, executor=args.executor) as pool, tqdm(
        total=len(items), desc="verify", unit="row", file=sys.stderr, disable=not sys.stderr.isatty()
    ) as bar:
        for start in range(0, len(items), CHUNK):
            batch = items[start : start + CHUNK]
            for item, verdict in zip(batch, _verify(pool, batch)):
                sys.stdout.write(json.dumps(output_row(item.problem.id, verdict), ensure_ascii=False) + "\n")
                total += verdict.reward
                correct += verdict.correct
                statuses[verdict.status.value] = statuses.get(verdict.status.value, 0) + 1
            sys.stdout.flush()
            bar.update(len(batch))
    counts = ", ".join(f"{k} {v}" for k, v in sorted(statuses.items(), key=lambda kv: -kv[1]))
    print(f"{len(items)} row{'s' if len(items) != 1 else ''}: {correct} correct, mean reward {total / len(items):.3f} ({counts})", file=sys.stderr)
    return 0
