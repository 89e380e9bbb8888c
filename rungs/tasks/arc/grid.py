"""ARC grids as text, both ways: a compact format models read well, and a tolerant, bounded parser.

Why this format: a grid is rows of colours 0-9. The embedded character-level model reads one
character a token, so the compact form is one digit per cell and one newline per row
(``"012\\n340"``: r*c + r - 1 characters, nothing wasted). BPE tokenizers merge runs of digits
(Llama 3 groups up to three), which hides cells from the model, so the instruct form separates
cells with spaces (``"0 1 2\\n3 4 0"``): " 1" is one token in common BPE vocabularies, one token a
cell. The parser reads both, plus bracketed rows (JSON-style ``[[0,1,2],[3,4,0]]``, or one
``[0,1,2]`` per line: each innermost bracket group is a row) and rows framed by ``|``.

Model output is hostile: `parse_grid` is a linear scan with hard limits (text length, 30x30 as in
ARC), never `eval`/`json.loads` of model text, and every way a grid can be malformed (ragged rows,
a colour outside 0-9, too big, empty) is a `GridError` carrying the `Status` it scores as.
"""

from __future__ import annotations

from collections.abc import Sequence

from rungs.types import Status

Grid = tuple[tuple[int, ...], ...]

MAX_SIDE = 30  # ARC grids are at most 30x30
MAX_TEXT = 8 * MAX_SIDE * MAX_SIDE  # characters of a grid answer before we refuse to read it
GRID_STYLES = ("compact", "spaced")


class GridError(ValueError):
    """A text that is not a valid ARC grid; `status` is how it scores (UNPARSEABLE or REJECTED)."""

    def __init__(self, status: Status, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


def as_grid(rows: object, where: str = "grid") -> Grid:
    """A list of lists of ints 0-9 (ARC's JSON) as a `Grid`; `GridError` names what is wrong.

    Used on data files, not model text (model text goes through `parse_grid`)."""
    if not isinstance(rows, (list, tuple)) or not rows:
        raise GridError(Status.UNPARSEABLE, f"{where}: expected a non-empty list of rows")
    if len(rows) > MAX_SIDE:
        raise GridError(Status.REJECTED, f"{where}: {len(rows)} rows, more than {MAX_SIDE}")
    out = []
    for i, row in enumerate(rows):
        if not isinstance(row, (list, tuple)) or not row:
            raise GridError(Status.UNPARSEABLE, f"{where}: row {i} is not a non-empty list")
        if len(row) > MAX_SIDE:
            raise GridError(Status.REJECTED, f"{where}: row {i} has {len(row)} cells, more than {MAX_SIDE}")
        if any(isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 9 for v in row):
            raise GridError(Status.UNPARSEABLE, f"{where}: row {i} has a value outside the colours 0-9")
        out.append(tuple(row))
    if len({len(r) for r in out}) != 1:
        raise GridError(Status.UNPARSEABLE, f"{where}: ragged rows (lengths {sorted({len(r) for r in out})})")
    return tuple(out)


def format_grid(grid: Grid, style: str = "compact") -> str:
    """Rows joined by newlines; cells as contiguous digits ("compact") or space-separated ("spaced")."""
    sep = "" if style == "compact" else " "
    return "\n".join(sep.join(str(v) for v in row) for row in grid)


def grid_text_len(rows: int, cols: int, style: str = "compact") -> int:
    """len(format_grid(g, style)) for a rows x cols grid, without building it."""
    per_row = cols if style == "compact" else 2 * cols - 1
    return rows * per_row + rows - 1


_FRAME = " \t\r[](),|`"


def _row_cells(line: str, index: int) -> tuple[int, ...]:
    """One row: contiguous digits ("0120"), or cells separated by spaces, commas or bars ("0 1 2", "0,1,2")."""
    body = line.strip(_FRAME)
    if not body:
        raise GridError(Status.UNPARSEABLE, f"row {index} is empty")
    if any(ch in body for ch in " ,\t|"):
        cells = [c for c in body.replace(",", " ").replace("\t", " ").replace("|", " ").split(" ") if c]
    else:
        cells = list(body)
    out = []
    for c in cells:
        c = c.strip("[]()|")
        if len(c) != 1 or c not in "0123456789":
            raise GridError(Status.UNPARSEABLE, f"row {index}: {c[:12]!r} is not a colour 0-9")
        out.append(ord(c) - 48)
    return tuple(out)


_OPEN, _CLOSE = "[(", "])"
_BETWEEN = " \t\r\n,|`"  # what may stand between bracketed rows


def _bracketed_rows(body: str) -> list[str]:
    """The rows of bracketed text: each innermost ``[...]`` or ``(...)`` group is one row, however
    the text breaks its lines (``[[1,2],[3,4]]``, ``[1,2]\\n[3,4]``, ``[[1 2]\\n [3 4]]``, JSON
    pretty-printed one cell a line, tuples, ``[(1,2),(3,4)]``); a line break inside a row is a
    space. One linear scan. UNPARSEABLE: text outside every innermost group (``[1,[2,3]]``,
    ``[1,2] 3``, ``[[1,2]] and more``), and anything bracketed after a grid that has its own outer brackets (a note
    ``(2, 2)`` after ``[[...]]``: rows either all stand alone or all share one outer pair). An
    unclosed last group (a truncated answer) is read as a row."""
    rows: list[str] = []
    spans: list[tuple[int, int]] = []  # the innermost groups, brackets included
    stack: list[list[int]] = []  # [start, has a nested group] of each open group
    top_levels = 0  # top-level groups closed so far
    wrapped = False  # a top-level group held other groups: the grid's outer brackets

    def add_row(start: int, end: int) -> None:
        rows.append(" ".join(body[start + 1:end].split()))
        spans.append((start, end + 1))
        if len(rows) > MAX_SIDE:
            raise GridError(Status.REJECTED, f"more than {MAX_SIDE} rows; a grid has at most {MAX_SIDE}")

    for i, ch in enumerate(body):
        if ch in _OPEN:
            if not stack and wrapped:
                raise GridError(Status.UNPARSEABLE, f"{body[i:].strip()[:12]!r} is outside the brackets of the grid")
            if stack:
                stack[-1][1] = 1
            stack.append([i, 0])
        elif ch in _CLOSE and stack:
            start, nested = stack.pop()
            if not nested:
                add_row(start, i)
            if not stack:
                top_levels += 1
                wrapped = wrapped or bool(nested)
                if wrapped and top_levels > 1:
                    raise GridError(Status.UNPARSEABLE, "rows outside the brackets of the grid")
    if stack and not stack[-1][1]:
        add_row(stack[-1][0], len(body))
    outside, last = [], 0
    for start, end in spans:
        outside.append(body[last:start])
        last = end
    outside.append(body[last:])
    stray = "".join(outside).strip(_BETWEEN + _OPEN + _CLOSE)
    if stray:
        raise GridError(Status.UNPARSEABLE, f"{stray.strip()[:12]!r} is outside the brackets of a row")
    return rows


def parse_grid(text: str) -> Grid:
    """A grid from model text; raises `GridError` (with its status) on anything malformed.

    Accepts the compact and spaced formats (one row per line), ``|``-framed rows, and bracketed rows
    in any layout: every innermost ``[...]`` or ``(...)`` group is one row, so JSON-style nested
    lists (``[[1,2],[3,4]]``, on one line or several), a list per line (``[1,2]`` then ``[3,4]``,
    with or without trailing commas or an outer pair of brackets) and tuples all read as the same
    rows. Refuses: empty text, more than `MAX_TEXT` characters or `MAX_SIDE` rows/columns (REJECTED:
    "huge"), ragged rows (an empty row included), anything but the digits 0-9 in a cell, digits
    outside the brackets of a row.
    """
    if not isinstance(text, str):
        raise GridError(Status.UNPARSEABLE, "not text")
    if len(text) > MAX_TEXT:
        raise GridError(Status.REJECTED, f"answer of {len(text)} characters; a grid is at most {MAX_SIDE}x{MAX_SIDE}")
    body = text.strip().strip("`").strip()
    if body[:1] in _OPEN and any(ch in body for ch in _CLOSE):
        lines = _bracketed_rows(body)
        if not any(ln.strip(_FRAME) for ln in lines):
            lines = []
    else:
        lines = [ln for ln in body.splitlines() if ln.strip(_FRAME)]
    if not lines:
        raise GridError(Status.UNPARSEABLE, "no grid rows")
    if len(lines) > MAX_SIDE:
        raise GridError(Status.REJECTED, f"{len(lines)} rows; a grid has at most {MAX_SIDE}")
    rows = [_row_cells(line, i) for i, line in enumerate(lines)]
    widths = {len(r) for r in rows}
    if max(widths) > MAX_SIDE:
        raise GridError(Status.REJECTED, f"a row of {max(widths)} cells; a grid has at most {MAX_SIDE} columns")
    if len(widths) != 1:
        raise GridError(Status.UNPARSEABLE, f"ragged rows (lengths {sorted(widths)})")
    return tuple(rows)


def _grid_line(line: str) -> bool:
    s = line.strip(_FRAME)
    return bool(s) and all(ch in "0123456789 ,\t[]()|" for ch in s)


def last_grid_block(text: str) -> str | None:
    """The last run of consecutive grid-looking lines (digits, spaces, commas, brackets) in `text`.

    The fallback when a model writes its grid without <answer> tags ("The output is:\\n01\\n10").
    A linear scan over lines; None when there is none."""
    if not isinstance(text, str):
        return None
    lines = text[-4 * MAX_TEXT:].splitlines()
    end = len(lines)
    while end > 0 and not _grid_line(lines[end - 1]):
        end -= 1
    if end == 0:
        return None
    start = end
    while start > 0 and _grid_line(lines[start - 1]):
        start -= 1
    return "\n".join(lines[start:end])


def grid_key(grid: Grid) -> str:
    """A short canonical string of a grid ("01|23"): equal grids, equal keys (for voting)."""
    return "|".join("".join(str(v) for v in row) for row in grid)


def grid_from_key(key: str) -> Grid:
    """The inverse of `grid_key`."""
    return tuple(tuple(ord(c) - 48 for c in row) for row in key.split("|"))


def shape(grid: Sequence[Sequence[int]]) -> tuple[int, int]:
    return len(grid), len(grid[0]) if grid else 0
