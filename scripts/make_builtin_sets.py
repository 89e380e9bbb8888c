"""Generate the built-in problem sets shipped in rungs/data/ (`--problems builtin:NAME`).

Run once; the JSONL files are committed, so that every reported number refers to the same
problems. Each set is drawn by the task's own generator with fixed seeds, the difficulty levels
mixed evenly and shuffled (so `--limit K` still gives a mix), and problems are distinct within a
task across all of its sets (by `task.problem_key`): no dev problem is also a test problem.

    python scripts/make_builtin_sets.py            # (re)write rungs/data/*.jsonl
    python scripts/make_builtin_sets.py --check    # regenerate in memory, compare with the files

The sets (levels are the generators' difficulty knob):
    integration-easy   levels 1-2: power rule, two monomials, exp/sin/cos -- what the tiny model trains on
    integration-hard   levels 3-4: a polynomial plus f(linear), and the chain rule -- beyond a model
                       trained on levels <= 2, but each problem has easier variants (drop a term,
                       simplify the argument) that lead back to levels 1-2
    integration-dev    levels 1-5 mixed: for tuning; never used for reported results
    integration-train  levels 3-4, 200 problems: what LADDER and plain GRPO train on
    integration-harder sums of 3-4 terms from all three rule families (a chain-rule term, a function
                       of a linear argument, powers): composing rules the skills base knows alone;
                       80 test problems (issue 8's "climbing regime")
    integration-harder-train   200 training problems of the same kind
    countdown-easy     levels 1-2: 2-3 numbers up to 20
    countdown-hard     levels 3-4: 4 numbers up to 50, or 5-6 numbers up to 100
    countdown-dev      levels 1-5 mixed
    countdown-train    levels 3-4, 200 problems

Overlap with training data: levels 1-2 of the integration generator hold only a few thousand
distinct problems, and `rungs pretrain`'s default pool (20,000 draws at levels 1-2, seed 0)
covers most of them -- 77 of the 80 integration-easy problems are in it. Read integration-easy
as "does the model do what it was trained on"; integration-hard shares no problem with it.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from dataclasses import dataclass
from pathlib import Path

from rungs.data import write_jsonl
from rungs.tasks import get_task
from rungs.types import Problem

DATA_DIR = Path(__file__).resolve().parent.parent / "rungs" / "data"


@dataclass(frozen=True)
class SetSpec:
    name: str
    task: str
    levels: tuple[int, ...]
    size: int
    seed: int
    maker: str = "levels"  # "levels": task.generate per level; "composite": skills.composite_problems


# Test sets first: the dev sets then skip whatever the test sets already hold. The seeds are far
# from the ones `rungs pretrain` draws its training pool with (0, 1009, 2018, ...).
SETS = (
    SetSpec("integration-easy", "integration", (1, 2), 80, 7_100_001),
    SetSpec("integration-hard", "integration", (3, 4), 80, 7_100_002),
    SetSpec("integration-dev", "integration", (1, 2, 3, 4, 5), 100, 7_100_003),
    SetSpec("countdown-easy", "countdown", (1, 2), 80, 7_200_001),
    SetSpec("countdown-hard", "countdown", (3, 4), 80, 7_200_002),
    SetSpec("countdown-dev", "countdown", (1, 2, 3, 4, 5), 100, 7_200_003),
    # Training sets for LADDER and the GRPO ablation: hard problems like the hard test sets,
    # none of them in any test or dev set (drawn last, so the sets above are kept out).
    SetSpec("integration-train", "integration", (3, 4), 200, 7_100_004),
    SetSpec("countdown-train", "countdown", (3, 4), 200, 7_200_004),
    # Added with the skills base (issue 8), after every other set so that those stay as they were;
    # also kept out of the shipped skills pretraining pool.
    SetSpec("integration-harder", "integration", (7,), 80, 7_100_005, maker="composite"),
    SetSpec("integration-harder-train", "integration", (7,), 200, 7_100_006, maker="composite"),
)


def pretraining_pool_keys() -> set:
    """Canonical keys of the shipped tiny-integration's pretraining pool (its recorded settings)."""
    from rungs.train.sft import SFTConfig, pretraining_problems

    config = json.loads((DATA_DIR.parent / "checkpoints" / "tiny-integration" / "training.json").read_text())["config"]
    task = get_task("integration")
    pool, _ = pretraining_problems(SFTConfig(**{**config, "eval_problems": 0}), task)
    return {task.problem_key(p) for p in pool}


def make_composite(spec: SetSpec, taken: set) -> list[Problem]:
    from rungs.tasks.integration.skills import composite_problems

    task = get_task(spec.task)
    excluded = taken | pretraining_pool_keys()
    chosen = composite_problems(spec.size, spec.seed, exclude=excluded,
                                key=lambda text: task.problem_key(Problem("key", text)))
    taken.update(task.problem_key(p) for p in chosen)
    return [Problem(f"{spec.name}-{i:03d}", p.text, p.answer, {**p.meta, "generator_id": p.id, "set": spec.name})
            for i, p in enumerate(chosen)]


def make_set(spec: SetSpec, taken: set) -> list[Problem]:
    """`spec.size` problems, levels as even as the sizes allow, none of whose keys is in `taken`."""
    if spec.maker == "composite":
        return make_composite(spec, taken)
    task = get_task(spec.task)
    per_level = [spec.size // len(spec.levels) + (i < spec.size % len(spec.levels)) for i in range(len(spec.levels))]
    chosen: list[Problem] = []
    for level, want in zip(spec.levels, per_level):
        got: list[Problem] = []
        draw = 2 * want
        while len(got) < want:
            got = []
            # A prefix-stable generator gives the same first problems for a larger draw.
            for p in task.generate(draw, float(level), seed=spec.seed * 10 + level):
                key = task.problem_key(p)
                if key in taken or any(task.problem_key(q) == key for q in got):
                    continue
                got.append(p)
                if len(got) == want:
                    break
            if len(got) < want:
                if draw > 64 * want:
                    raise RuntimeError(f"{spec.name}: level {level} has too few distinct problems for {want}")
                draw *= 2
        for p in got:
            taken.add(task.problem_key(p))
        chosen += got
    random.Random(spec.seed).shuffle(chosen)
    return [Problem(f"{spec.name}-{i:03d}", p.text, p.answer,
                    {**p.meta, "difficulty": float(p.meta.get("level", p.meta.get("difficulty", 0.0))),
                     "generator_id": p.id, "set": spec.name})
            for i, p in enumerate(chosen)]


def make_all() -> dict[str, list[Problem]]:
    taken: dict[str, set] = {}
    return {spec.name: make_set(spec, taken.setdefault(spec.task, set())) for spec in SETS}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the committed files instead of writing")
    args = parser.parse_args(argv)
    sets = make_all()
    stale = []
    for name, problems in sets.items():
        path = DATA_DIR / f"{name}.jsonl"
        rows = [p.to_dict() for p in problems]
        levels: dict[float, int] = {}
        for p in problems:
            levels[p.meta["difficulty"]] = levels.get(p.meta["difficulty"], 0) + 1
        mix = ", ".join(f"level {lv:g}: {c}" for lv, c in sorted(levels.items()))
        if args.check:
            current = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []
            ok = current == json.loads(json.dumps(rows))
            stale += [] if ok else [name]
            print(f"{name:18} {'same' if ok else 'DIFFERS'} ({len(rows)} problems; {mix})")
        else:
            write_jsonl(path, rows)
            print(f"wrote {path} ({len(rows)} problems; {mix})")
    if stale:
        print(f"differ from the generators: {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
