"""Problem samplers that order a variant pool into a curriculum (LADDER: easiest first).

`CurriculumSampler` sorts the pool by the task's difficulty and samples from an expanding window
of the easiest problems: at training progress p in [0, 1] the window holds the easiest
`start + (1 - start) * p` fraction of the pool, so early steps see only the easiest variants
and the last steps see all of them (including the hardest, e.g. the original problems). Inside
the window, sampling is uniform without replacement until the window is exhausted.

For a mixed (non-curriculum) order use `rungs.train.grpo.EpochSampler`, a seeded shuffle per epoch.

The sampler carries its full state (step counter, queue and RNG state) in `state_dict`, so a
resumed run draws exactly the problems an uninterrupted run would have drawn.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from typing import Any

from rungs.types import Problem


class CurriculumSampler:
    def __init__(
        self,
        problems: Sequence[Problem],
        difficulty: Callable[[Problem], float],
        total_steps: int,
        seed: int = 0,
        start_fraction: float = 0.25,
    ) -> None:
        if not problems:
            raise ValueError("a curriculum needs at least one problem")
        if not 0 < start_fraction <= 1:
            raise ValueError(f"start_fraction must be in (0, 1], got {start_fraction}")
        scored = [(difficulty(p), i, p) for i, p in enumerate(problems)]
        self.problems = [p for _, _, p in sorted(scored, key=lambda t: (t[0], t[1]))]  # easiest first
        self.total_steps = max(1, int(total_steps))
        self.start_fraction = start_fraction
        self.rng = random.Random(seed)
        self.steps_done = 0
        self._queue: list[int] = []
        self._queue_window = 0

    def __len__(self) -> int:
        return len(self.problems)

    def window(self) -> int:
        """How many of the easiest problems are in play at the current step."""
        progress = min(1.0, self.steps_done / max(1, self.total_steps - 1))
        fraction = self.start_fraction + (1.0 - self.start_fraction) * progress
        return max(1, min(len(self.problems), math.ceil(fraction * len(self.problems))))

    def sample(self, k: int) -> list[Problem]:
        window = self.window()
        if window != self._queue_window:
            # The window grew: refill with the whole window, newly admitted problems first, so
            # every problem is seen soon after it enters.
            new = list(range(self._queue_window, window))
            old = [i for i in range(window) if i not in set(new) and i not in set(self._queue)]
            self.rng.shuffle(new)
            self.rng.shuffle(old)
            self._queue = new + [i for i in self._queue if i < window] + old
            self._queue_window = window
        out: list[Problem] = []
        while len(out) < k:
            if not self._queue:
                self._queue = list(range(window))
                self.rng.shuffle(self._queue)
            out.append(self.problems[self._queue.pop(0)])
        self.steps_done += 1
        return out

    @property
    def epochs_done(self) -> float:
        return self.steps_done / max(1, self.total_steps)

    def state_dict(self) -> dict[str, Any]:
        return {"steps_done": self.steps_done, "queue": list(self._queue), "queue_window": self._queue_window,
                "rng": _rng_state(self.rng)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.steps_done = int(state["steps_done"])
        self._queue = [int(i) for i in state["queue"]]
        self._queue_window = int(state["queue_window"])
        self.rng.setstate(_rng_from(state["rng"]))


def _rng_state(rng: random.Random) -> list[Any]:
    version, internal, gauss = rng.getstate()
    return [version, list(internal), gauss]


def _rng_from(state: Sequence[Any]) -> tuple[Any, ...]:
    version, internal, gauss = state
    return (version, tuple(internal), gauss)
