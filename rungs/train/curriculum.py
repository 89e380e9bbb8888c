"""Problem samplers that order a variant pool into a curriculum (LADDER: easiest first).

Two orders, both resumable:

- `SolveRateCurriculum` (the default of `rungs ladder`): orders and filters by the *current
  policy's measured* solve rate, re-estimated from its own training samples as it learns, and
  keeps most of each batch in the learnable band 0 < p < 1 (where GRPO's group advantages are
  non-zero). See its docstring.
- `CurriculumSampler` (`--curriculum easiest_first`): sorts the pool by the task's structural
  difficulty estimate and samples from an expanding window of the easiest problems: at training
  progress p in [0, 1] the window holds the easiest `start + (1 - start) * p` fraction of the pool,
  so early steps see only the easiest variants and the last steps see all of them (including the
  hardest, e.g. the original problems). Inside the window, sampling is uniform without
  replacement; problems admitted as the window grows are shuffled into the rest of the window.

Why the first is the default (measured, issue 8): the structural estimate ranks by shape, not by
what this model can do (`x*(x + 1)**2` scores as easy; the tiny model cannot expand it), so the
easiest-first window can hold only unsolvable problems. And an earlier version of the window put
each step's newly admitted problems at the head of its queue: with the window growing every step,
every step after the first trained only on the hardest problems just admitted, and `rungs ladder`
showed a training accuracy falling from 0.33 to 0 by step 2 while the greedy accuracy of the same
model on a fixed probe of variants stayed at 0.23-0.25: the curve measured a harder and harder
frontier, not a worse model.

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

EXPLORE_ORDERS = ("random", "easiest_first", "hardest_first", "band_rate", "descend")


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
            # The window grew: the newly admitted problems join the problems not yet drawn in this
            # pass, shuffled together (putting them first made every step train on the frontier).
            queued = set(self._queue)
            new = [i for i in range(self._queue_window, window) if i not in queued]
            self._queue = [i for i in self._queue if i < window] + new
            self.rng.shuffle(self._queue)
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


class SolveRateCurriculum:
    """A curriculum driven by what the policy can do now: its measured solve rate per problem.

    GRPO learns only from groups whose rewards differ (a problem the policy always or never
    solves gives every sample the same advantage, zero), and RL sharpens what the policy already
    samples now and then (Yue et al. 2025). So the useful problems are those in the *learnable
    band* 0 < p < 1 of the current policy's solve rate p, and that band moves as it learns. This
    sampler keeps an estimate of p per problem from the policy's own training samples (the
    trainer calls `observe` with every generated group) and fills each batch with

    - `band_fraction` of problems measured in the band (0 < successes < trials), drawn without
      replacement with weight p(1 - p) + 0.05 (most informative first, none starved), and
    - the rest exploring: problems never measured, in `prior` order (the task's structural
      difficulty, easiest first) or shuffled; once all are measured, the out-of-band problems
      measured longest ago are re-tested, since a problem that was never solved may become
      solvable (and one always solved may be forgotten).

    Estimates are re-made as training goes: a new observation of a problem is added to its
    counts after multiplying the old counts by `decay` (0.5: the latest group weighs as much as
    all earlier ones together).

    Variant trees (LADDER) fit this well: variants the policy cannot yet solve stay out of the
    batch until re-testing finds them in the band, instead of starving a structural window.

    Two settings keep a large pool (LADDER's thousands of variants against a few hundred draws)
    from collapsing onto a handful of problems (measured, issue 8: with one exploring slot per
    step, a 60-step run trained on 109 of 2,544 problems, the most drawn one 31 times):

    - `mastered_at`: a problem whose estimated p reaches this leaves the band as mastered (1.0,
      the default: only one always solved). Below 1 the batch goes to the rungs the policy is
      still climbing instead of the easy ones it solves most of the time (measured, issue 8: on
      countdown three quarters of LADDER's samples went to 2-number variants it solved 60-75% of
      the time, while the 4-number rung next to the roots got 2%). Mastered problems are
      re-tested like any other out-of-band problem. Without `cooldown` the few hard problems
      left in the band can be drawn nearly every step (one in 194 of 400 steps, measured).
    - `climb` (LADDER's way back up the tree): the first time a variant is answered right at
      least half the time in a round, its parent, if never solved, is re-tested in the next batch
      before any exploring (once per variant: re-testing on every such round let a few band
      problems and their parents take every slot, measured: 8-82 distinct problems in 150
      steps). Without it a root measured at 0 early is re-tested only once every problem of the
      pool has been measured, which in a pool of thousands of variants does not happen
      (measured, issue 8: on integration-harder 400 LADDER steps drew 45 of the 200 roots, each
      about once, while their 3-term variants went from 26% to 75% right).
    - `cooldown`: a band problem drawn at step t is not drawn again before step t + cooldown; its
      slot goes to another band problem or to exploring. 0 turns it off.
    - `explore="band_rate"` with a `group` function (LADDER: the variant's transform and depth;
      roots are their own group): which group to explore next is chosen by Thompson sampling on
      the share of that group's measured problems now in the band (Beta(in + 1, out + 1)), so a
      transform whose variants are mostly unsolvable or trivial for this policy is explored less.
      Estimated online from the policy's own samples; nothing is assumed about the task.
    """

    def __init__(self, problems: Sequence[Problem], total_steps: int, seed: int = 0,
                 prior: Callable[[Problem], float] | None = None, band_fraction: float = 0.75,
                 decay: float = 0.5, explore: str = "random", hard_bias: bool = False,
                 cooldown: int = 0, group: Callable[[Problem], Any] | None = None,
                 parent: Callable[[Problem], str | None] | None = None, mastered_at: float = 1.0,
                 climb: bool = False) -> None:
        if not problems:
            raise ValueError("a curriculum needs at least one problem")
        if not 0 <= band_fraction <= 1:
            raise ValueError(f"band_fraction must be in [0, 1], got {band_fraction}")
        if not 0 <= decay <= 1:
            raise ValueError(f"decay must be in [0, 1], got {decay}")
        if explore not in EXPLORE_ORDERS:
            raise ValueError(f"explore must be one of {', '.join(EXPLORE_ORDERS)}, got {explore!r}")
        if climb and parent is None:
            raise ValueError("climb needs a parent function (the id each variant was made from)")
        if explore == "descend" and parent is None:
            raise ValueError("explore='descend' needs a parent function (the id each variant was made from)")
        if explore == "band_rate" and group is None:
            raise ValueError("explore='band_rate' needs a group function (which family each problem belongs to)")
        if cooldown < 0:
            raise ValueError(f"cooldown must be >= 0 steps, got {cooldown}")
        if not 0 < mastered_at <= 1:
            raise ValueError(f"mastered_at must be in (0, 1], got {mastered_at}")
        self.mastered_at = mastered_at
        self.problems = list(problems)
        self.total_steps = max(1, int(total_steps))
        self.band_fraction = band_fraction
        self.decay = decay
        self.rng = random.Random(seed)
        self.index: dict[str, int] = {}
        for i, p in enumerate(self.problems):
            self.index.setdefault(p.id, i)
        order = list(range(len(self.problems)))
        self.rng.shuffle(order)
        if prior is not None and explore == "easiest_first":
            order.sort(key=lambda i: prior(self.problems[i]))
        elif prior is not None and explore == "hardest_first":
            order.sort(key=lambda i: -prior(self.problems[i]))
        self.explore_order = order
        self.explore = explore
        self.cooldown = int(cooldown)
        # band_rate: each group's problems in exploring order (the groups' labels need not be sortable)
        self.groups: list[list[int]] = []
        self.group_of: list[int] = []
        # descend: the original problems first; a problem never solved on first try sends the
        # exploration down to its own easier variants next (depth first), LADDER's tree as a search
        self.children: dict[int, list[int]] = {}
        self.parent_of: dict[int, int] = {}
        self.roots: list[int] = []
        self.frontier: list[int] = []
        self.climb = climb
        self.retest: list[int] = []  # climb: parents to re-test, oldest first
        self.climbed: set[int] = set()  # climb: variants that have sent their parent to be re-tested
        if explore == "descend" or climb:
            position = {i: n for n, i in enumerate(order)}
            for i, p in enumerate(self.problems):
                up = parent(p)  # type: ignore[misc]
                if up is None:
                    self.roots.append(i)
                elif up in self.index:
                    self.children.setdefault(self.index[up], []).append(i)
                    self.parent_of[i] = self.index[up]
            self.roots.sort(key=position.__getitem__)
            for kids in self.children.values():
                kids.sort(key=position.__getitem__)
        if explore == "band_rate":
            labels: dict[Any, int] = {}
            self.group_of = [labels.setdefault(group(p), len(labels)) for p in self.problems]  # type: ignore[misc]
            self.groups = [[] for _ in labels]
            for i in order:
                self.groups[self.group_of[i]].append(i)
            self._group_cursor = [0] * len(self.groups)
        self.prior = [max(1.0, prior(p)) if prior is not None else 1.0 for p in self.problems] if hard_bias else None
        self.explore_position = 0
        self.steps_done = 0
        # problem index -> [successes, trials, step of the last observation] (counts decayed)
        self.stats: dict[int, list[float]] = {}

    def __len__(self) -> int:
        return len(self.problems)

    # -- estimates ---------------------------------------------------------------------------------
    def solve_rate(self, problem: Problem) -> float | None:
        """The current estimate of p for `problem` (None if never measured)."""
        stat = self.stats.get(self.index.get(problem.id, -1))
        return None if stat is None or stat[1] <= 0 else stat[0] / stat[1]

    def in_band(self, i: int) -> bool:
        stat = self.stats.get(i)
        return stat is not None and 0 < stat[0] < self.mastered_at * stat[1]  # mastered_at 1: p < 1

    def band(self) -> list[int]:
        """Indices of the problems measured in the learnable band 0 < p < 1."""
        return [i for i in self.stats if self.in_band(i)]

    def observe(self, problems: Sequence[Problem], correct: Sequence[bool]) -> None:
        """Record one round of samples: `problems[j]` was answered, correctly iff `correct[j]`.

        Problems outside the pool (e.g. a trainer's extra evaluation) are ignored.
        """
        tally: dict[int, list[int]] = {}
        for problem, ok in zip(problems, correct):
            i = self.index.get(problem.id)
            if i is not None:
                t = tally.setdefault(i, [0, 0])
                t[0] += bool(ok)
                t[1] += 1
        for i, (wins, trials) in tally.items():
            self._climb_from(i, wins, trials)
            old = self.stats.get(i)
            if old is None:
                self.stats[i] = [float(wins), float(trials), float(self.steps_done)]
                if wins == 0 and i in self.children:  # never solved: its easier variants are explored next
                    self.frontier.extend(reversed(self.children[i]))
                elif self.in_band(i) and i in self.parent_of:  # a rung found: its siblings can wait
                    self.frontier = [j for j in self.frontier if self.parent_of.get(j) != self.parent_of[i]]
            else:
                self.stats[i] = [old[0] * self.decay + wins, old[1] * self.decay + trials, float(self.steps_done)]

    def _climb_from(self, i: int, wins: int, trials: int) -> None:
        """climb: the first round in which a variant is answered right at least half the time puts
        its parent, if that was never solved, at the back of the re-test queue (once per variant,
        so that a variant drawn every step does not re-test its parent every step)."""
        up = self.parent_of.get(i)
        if not self.climb or up is None or 2 * wins < trials or i in self.climbed:
            return
        self.climbed.add(i)
        stat = self.stats.get(up)
        if (stat is None or stat[0] == 0) and up not in self.retest:  # solved once already: sampled as such
            self.retest.append(up)

    # -- sampling ----------------------------------------------------------------------------------
    def _rested(self, i: int) -> bool:
        return self.cooldown <= 0 or self.steps_done - self.stats[i][2] >= self.cooldown

    def _next_by_band_rate(self, taken: set[int]) -> int | None:
        """An unmeasured problem from the group Thompson-sampled on its measured in-band share."""
        inside = [0] * len(self.groups)
        measured = [0] * len(self.groups)
        for i in self.stats:
            g = self.group_of[i]
            measured[g] += 1
            inside[g] += self.in_band(i)
        best, best_draw = None, -1.0
        for g, members in enumerate(self.groups):
            cursor = self._group_cursor[g]
            while cursor < len(members) and (members[cursor] in self.stats or members[cursor] in taken):
                cursor += 1
            self._group_cursor[g] = cursor
            if cursor == len(members):
                continue
            draw = self.rng.betavariate(inside[g] + 1, measured[g] - inside[g] + 1)
            if draw > best_draw:
                best, best_draw = g, draw
        if best is None:
            return None
        i = self.groups[best][self._group_cursor[best]]
        self._group_cursor[best] += 1
        return i

    def _next_descending(self, taken: set[int]) -> int | None:
        """The newest pushed variant of an unsolved problem, else the next original problem, else any."""
        self.frontier = [i for i in self.frontier if i not in self.stats and i not in taken]
        busy = {self.parent_of.get(j) for j in taken}
        for n in range(len(self.frontier) - 1, -1, -1):  # newest first; one child per parent per batch
            if self.parent_of.get(self.frontier[n]) not in busy:
                return self.frontier.pop(n)
        for i in self.roots:
            if i not in self.stats and i not in taken:
                return i
        return None

    def sample(self, k: int) -> list[Problem]:
        chosen: list[int] = []
        band = [i for i in self.band() if self._rested(i)]
        want_band = min(len(band), round(self.band_fraction * k))
        if want_band:
            # weighted sampling without replacement (Efraimidis & Spirakis): key u ** (1 / w)
            def weight(i: int) -> float:
                s, n, _ = self.stats[i]
                p = s / n
                return (p * (1 - p) + 0.05) * (self.prior[i] if self.prior else 1.0)
            keyed = sorted(band, key=lambda i: self.rng.random() ** (1.0 / weight(i)), reverse=True)
            chosen.extend(keyed[:want_band])
        taken = set(chosen)
        while len(chosen) < k and self.retest:  # climb: parents whose variant was just solved
            i = self.retest.pop(0)
            if i not in taken:
                chosen.append(i)
                taken.add(i)
        while len(chosen) < k and self.explore in ("band_rate", "descend"):
            i = self._next_by_band_rate(taken) if self.explore == "band_rate" else self._next_descending(taken)
            if i is None:
                break
            chosen.append(i)
            taken.add(i)
        while len(chosen) < k and self.explore_position < len(self.explore_order):  # descend's leftovers too
            i = self.explore_order[self.explore_position]
            self.explore_position += 1
            if i not in self.stats and i not in taken:
                chosen.append(i)
                taken.add(i)
        if len(chosen) < k:  # everything measured: re-test the out-of-band problems seen longest ago
            stale = sorted((i for i in self.stats if i not in taken and not self.in_band(i)),
                           key=lambda i: (self.stats[i][2], self.rng.random()))
            for i in stale[:k - len(chosen)]:
                chosen.append(i)
                taken.add(i)
        if len(chosen) < k:  # a pool smaller than the batch, or all in band: fill from the band
            rest = [i for i in self.band() if i not in taken] or list(range(len(self.problems)))
            while len(chosen) < k:
                chosen.append(self.rng.choice(rest))
        self.steps_done += 1
        return [self.problems[i] for i in chosen]

    @property
    def epochs_done(self) -> float:
        return self.steps_done / max(1, self.total_steps)

    def state_dict(self) -> dict[str, Any]:
        return {"steps_done": self.steps_done, "explore_position": self.explore_position,
                "explore_order": list(self.explore_order), "stats": {str(i): v for i, v in self.stats.items()}, "rng": _rng_state(self.rng),
                "frontier": list(self.frontier), "retest": list(self.retest),
                "climbed": sorted(self.climbed),
                "num_problems": len(self.problems)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if int(state.get("num_problems", len(self.problems))) != len(self.problems):
            raise ValueError(f"the checkpoint's curriculum had {state['num_problems']} problems, this one "
                             f"{len(self.problems)}: resume with the same problems and variants")
        self.steps_done = int(state["steps_done"])
        self.explore_position = int(state["explore_position"])
        self.explore_order = [int(i) for i in state["explore_order"]]
        self.stats = {int(i): [float(x) for x in v] for i, v in state["stats"].items()}
        self.rng.setstate(_rng_from(state["rng"]))
        self.frontier = [int(i) for i in state.get("frontier", [])]
        self.retest = [int(i) for i in state.get("retest", [])]
        self.climbed = {int(i) for i in state.get("climbed", [])}
        if self.children:  # orders follow the saved exploring order
            position = {i: n for n, i in enumerate(self.explore_order)}
            self.roots.sort(key=position.__getitem__)
            for kids in self.children.values():
                kids.sort(key=position.__getitem__)
        if self.groups:  # the saved exploring order; cursors skip measured problems, so they can start over
            self.groups = [[] for _ in self.groups]
            for i in self.explore_order:
                self.groups[self.group_of[i]].append(i)
            self._group_cursor = [0] * len(self.groups)
