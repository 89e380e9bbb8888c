"""Variant trees: easier problems under a hard one, recursively (LADDER's curriculum).

A tree is grown breadth-first: the root's easier variants, their easier variants, and so on to
`depth` levels, at most `width` children per node, with duplicates removed across the whole tree
(the task's `problem_key` says when two problems are the same). Where the variants come from is
not this module's business: any `make_variants(problem, n, rng) -> list[Variant]` works, the
task's symbolic mutators by default, or the LLM-written maker in `rungs.variants.llm`.

A tree is a flat list of `Variant`s, parents before children, each knowing its parent, depth
and root, and it round-trips through JSONL (one row per variant) so that LADDER runs can reuse a
tree with `--variants FILE`. The rows are also a valid problems file (`problem`, `answer`, `id`,
`meta`), so `rungs eval` can read them directly.

    tree = variant_tree(get_task("integration"), problem, depth=2, width=5)
    save_tree("tree.jsonl", tree)
    print(render_tree(load_tree("tree.jsonl"), root=problem))
"""

from __future__ import annotations

import dataclasses
import os
import random
import sys
from collections.abc import Callable, Hashable, Sequence
from typing import Any

from rungs.errors import UserError
from rungs.tasks.base import Task, Variant
from rungs.types import Problem, missing_answer_note

MakeVariants = Callable[[Problem, int, random.Random], list[Variant]]
TREE_FIELDS = ("id", "problem", "answer", "difficulty", "transform", "parent_id", "depth", "root_id")


def _key_of(task: Task) -> Callable[[Problem], Hashable]:
    def key(problem: Problem) -> Hashable:
        try:
            return task.problem_key(problem)
        except (UserError, ValueError):  # a variant that does not parse: fall back to its text
            return "".join(problem.text.split())

    return key


def variant_tree(
    task: Task,
    problem: Problem,
    depth: int = 2,
    width: int = 5,
    seed: int = 0,
    make_variants: MakeVariants | None = None,
) -> list[Variant]:
    """The variants of `problem` to `depth` levels, up to `width` per node, deduplicated tree-wide.

    Deterministic in `seed` (for a deterministic `make_variants`). Each returned Variant has
    `depth` (1 = child of the root), `parent_id`, and `meta["root_id"]`; parents come first.
    """
    if depth < 0:
        raise ValueError(f"depth must be >= 0, got {depth}")
    if width < 0:
        raise ValueError(f"width must be >= 0, got {width}")
    make = make_variants or task.variants
    key = _key_of(task)
    rng = random.Random(seed)
    seen = {key(problem)}
    tree: list[Variant] = []
    frontier = [problem]
    for level in range(1, depth + 1):
        next_frontier: list[Problem] = []
        for parent in frontier:
            for variant in make(parent, width, rng)[:width]:
                k = key(variant.problem)
                if k in seen:
                    continue
                seen.add(k)
                variant = dataclasses.replace(
                    variant, parent_id=parent.id, depth=level, meta={**variant.meta, "root_id": problem.id}
                )
                tree.append(variant)
                next_frontier.append(variant.problem)
        frontier = next_frontier
        if not frontier:
            break
    return tree


# ---- JSONL -------------------------------------------------------------------------------------


def variant_row(variant: Variant) -> dict[str, Any]:
    """One JSONL row: the TREE_FIELDS, plus the problem's meta."""
    return {
        "id": variant.problem.id,
        "problem": variant.problem.text,
        "answer": variant.problem.answer,
        "difficulty": variant.difficulty,
        "transform": variant.transform,
        "parent_id": variant.parent_id,
        "depth": variant.depth,
        "root_id": variant.meta.get("root_id"),
        "meta": dict(variant.problem.meta),
    }


def save_tree(path: str | os.PathLike[str], variants: Sequence[Variant]) -> None:
    """Write a tree as JSON lines, atomically."""
    from rungs.data import write_jsonl

    write_jsonl(path, (variant_row(v) for v in variants))


def _row_to_variant(row: Any, where: str) -> Variant:
    if not isinstance(row, dict):
        raise UserError(f"{where}: expected a JSON object, got {type(row).__name__}")
    missing = [f for f in TREE_FIELDS if f not in row]
    if missing:
        raise UserError(f"{where}: missing field(s) {', '.join(missing)}; a variant row has {', '.join(TREE_FIELDS)}")
    if not isinstance(row["problem"], str) or not row["problem"]:
        raise UserError(f"{where}: field 'problem' must be a non-empty string")
    try:
        difficulty, depth = float(row["difficulty"]), int(row["depth"])
    except (TypeError, ValueError):
        raise UserError(f"{where}: 'difficulty' must be a number and 'depth' an integer, got "
                        f"{row['difficulty']!r} and {row['depth']!r}") from None
    meta = row.get("meta") or {}
    if not isinstance(meta, dict):
        raise UserError(f"{where}: field 'meta' must be an object, got {type(meta).__name__}")
    # a non-string answer becomes text; a non-finite number (NaN, inf) is no answer (rungs.types.answer_text)
    problem = Problem(id=str(row["id"]), text=row["problem"], answer=row["answer"], meta=dict(meta))
    root = row["root_id"]
    return Variant(problem, difficulty, str(row["transform"]), str(row["parent_id"]), depth,
                   meta={"root_id": None if root is None else str(root)})


def load_tree(path: str | os.PathLike[str], task: Task | None = None,
              warn: Callable[[str], None] | None = None) -> list[Variant]:
    """Read a tree written by `save_tree` (LADDER's `--variants FILE`).

    A bad row costs that row, not the file: a row that is not a variant row (a missing field, a
    depth that is not an integer, nested too deeply, ...) or, given `task`, whose problem the task
    cannot parse, is skipped with one line `FILE:LINE: skipped: REASON` through `warn` (stderr by
    default) for each of the first MAX_SKIP_LINES and a count for the rest. A missing or malformed
    file, or one whose rows are all bad, is one UserError line naming the file (and the first bad row).
    """
    from pathlib import Path

    from rungs.data import MAX_SKIP_LINES, iter_jsonl

    warn = warn or (lambda line: print(line, file=sys.stderr))
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such variants file")
    variants: list[Variant] = []
    skipped: list[str] = []

    def skip(lineno: int, reason: str) -> None:
        skipped.append(f"{path}:{lineno}: skipped: {reason}")

    for lineno, row in iter_jsonl(path, skip=skip):
        where = f"{path}:{lineno}"
        try:
            variant = _row_to_variant(row, where)
            if task is not None:
                task.parse_problem(variant.problem)
        except UserError as err:
            reason = str(err)
            skip(lineno, reason[len(where) + 2:] if reason.startswith(f"{where}: ") else reason)
            continue
        except ValueError as err:  # the row's meta nested too deeply (Problem's to_builtin)
            skip(lineno, str(err))
            continue
        note = missing_answer_note(where, "answer", row["answer"]) if variant.problem.answer is None else None
        if note is not None:
            warn(note)
        variants.append(variant)
    for line in skipped[:MAX_SKIP_LINES]:
        warn(line)
    if len(skipped) > MAX_SKIP_LINES:
        warn(f"{path}: skipped {len(skipped) - MAX_SKIP_LINES} more variant rows")
    if skipped and not variants:
        first = skipped[0].replace(": skipped: ", ": ", 1)
        raise UserError(f"{path}: no usable variant row ({len(skipped)} skipped; the first: {first})")
    return variants


# ---- text --------------------------------------------------------------------------------------


def render_tree(variants: Sequence[Variant], root: Problem | None = None) -> str:
    """An indented text tree, one line per problem: difficulty, transform, text."""
    children: dict[str, list[Variant]] = {}
    ids = {v.problem.id for v in variants}
    for v in variants:
        children.setdefault(v.parent_id, []).append(v)
    lines: list[str] = []

    def walk(parent_id: str, indent: int) -> None:
        for v in children.get(parent_id, []):
            lines.append(f"{'  ' * indent}- [{v.difficulty:.2f}] {v.transform}: {v.problem.text}")
            walk(v.problem.id, indent + 1)

    # roots: the given root, else every parent that is not itself in the tree
    tops = [root.id] if root is not None else [p for p in children if p not in ids]
    for top in tops:
        lines.append(f"{top}: {root.text}" if root is not None else top)
        walk(top, 1)
    return "\n".join(lines)
