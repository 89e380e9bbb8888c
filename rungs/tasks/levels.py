"""Fractional difficulty as a mix of integer generator levels.

Generators build problems at integer levels (countdown: how many numbers; integration: how many
and which terms; ARC: a 128-token length band). A difficulty of 3.25 asks for a set whose levels
average 3.25: each problem is level 4 with probability 0.25 and level 3 otherwise, so that
`rungs sample-problems --difficulty 3.5` means what its help says ("fractional values mix levels")
for every task, instead of Python's `round` (which takes 2.5 to 2 and 3.5 to 4).
"""

from __future__ import annotations

import math
import random


def pick_level(difficulty: float, rng: random.Random, lowest: int = 1, highest: int | None = None) -> int:
    """One integer level for a (possibly fractional) `difficulty`.

    `difficulty` is first clamped to [lowest, highest] (no upper bound when `highest` is None);
    then floor(d) + 1 is returned with probability d - floor(d), else floor(d). Always draws exactly
    one `rng.random()`, so callers' random streams do not depend on the value. Raises ValueError
    for a difficulty that is not a finite number.
    """
    d = float(difficulty)
    if not math.isfinite(d):
        raise ValueError(f"difficulty must be a finite number, got {difficulty}")
    d = max(d, float(lowest))
    if highest is not None:
        d = min(d, float(highest))
    low = math.floor(d)
    return low + 1 if rng.random() < d - low else low
