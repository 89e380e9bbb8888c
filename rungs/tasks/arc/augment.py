"""Invertible augmentations of ARC tasks, and the leave-one-out tasks of test-time training.

Akyurek et al. 2024 ("The Surprising Effectiveness of Test-Time Training for Abstract
Reasoning", arXiv 2411.07279) train and predict under transformations that keep a task's rule
intact: the 8 symmetries of the square (rotations, reflections, transpositions), permutations of
the colours (background 0 stays 0: it is special in most ARC rules), and shuffles of the
demonstrations' order. Each is a bijection, so a prediction made on a transformed task maps back
to the original (`Augmentation.invert_grid`); tests check that every one round-trips exactly.

`loo_tasks` builds the paper's test-time training data: for a task with K demonstrations, K
tasks in which each demonstration in turn is the query and the other K-1 are the context
(their targets are known: no label of the test input is used).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from rungs.tasks.arc.grid import Grid, grid_text_len

Pair = tuple[Grid, Grid]


@dataclass(frozen=True)
class ArcSpec:
    """One ARC problem: demonstration pairs (input, output) and one test input."""

    train: tuple[Pair, ...]
    test_input: Grid


# -- the 8 symmetries of the square ------------------------------------------------------------------


def _rot90(g: Grid) -> Grid:  # clockwise
    return tuple(zip(*g[::-1]))


def _transpose(g: Grid) -> Grid:
    return tuple(zip(*g))


def _flip_lr(g: Grid) -> Grid:
    return tuple(row[::-1] for row in g)


def _flip_ud(g: Grid) -> Grid:
    return g[::-1]


_DIHEDRAL_FORWARD = {
    "identity": lambda g: g,
    "rot90": _rot90,
    "rot180": lambda g: _rot90(_rot90(g)),
    "rot270": lambda g: _rot90(_rot90(_rot90(g))),
    "flip_lr": _flip_lr,
    "flip_ud": _flip_ud,
    "transpose": _transpose,
    "antitranspose": lambda g: _rot90(_rot90(_transpose(g))),
}
DIHEDRAL = tuple(_DIHEDRAL_FORWARD)  # identity first
_DIHEDRAL_INVERSE = {"identity": "identity", "rot90": "rot270", "rot180": "rot180", "rot270": "rot90",
                     "flip_lr": "flip_lr", "flip_ud": "flip_ud", "transpose": "transpose",
                     "antitranspose": "antitranspose"}
_SWAPS_AXES = {"rot90", "rot270", "transpose", "antitranspose"}


def dihedral(name: str, grid: Grid) -> Grid:
    """`grid` under the symmetry `name` (one of `DIHEDRAL`)."""
    return tuple(tuple(row) for row in _DIHEDRAL_FORWARD[name](grid))


def dihedral_inverse(name: str) -> str:
    return _DIHEDRAL_INVERSE[name]


# -- one augmentation: symmetry, colour permutation, demonstration order ------------------------------


@dataclass(frozen=True)
class Augmentation:
    """A bijection on ARC tasks: a symmetry, then a colour map, then a reordering of the demos.

    colours: a permutation of 0..9 with colours[0] == 0 (None = identity): colour c becomes colours[c].
    order: a permutation of the demonstration indices (None = keep): demo i of the new task is
    demo order[i] of the old one.
    """

    geometry: str = "identity"
    colours: tuple[int, ...] | None = None
    order: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if self.geometry not in _DIHEDRAL_FORWARD:
            raise ValueError(f"unknown symmetry {self.geometry!r}; expected one of {', '.join(DIHEDRAL)}")
        if self.colours is not None and (sorted(self.colours) != list(range(10)) or self.colours[0] != 0):
            raise ValueError(f"colours must be a permutation of 0-9 keeping 0, got {self.colours}")
        if self.order is not None and sorted(self.order) != list(range(len(self.order))):
            raise ValueError(f"order must be a permutation of 0..{len(self.order) - 1}, got {self.order}")

    @property
    def name(self) -> str:
        parts = [self.geometry]
        if self.colours is not None:
            parts.append("c" + "".join(map(str, self.colours)))
        if self.order is not None:
            parts.append("o" + ".".join(map(str, self.order)))
        return "/".join(parts)

    def apply_grid(self, grid: Grid) -> Grid:
        g = dihedral(self.geometry, grid)
        if self.colours is not None:
            c = self.colours
            g = tuple(tuple(c[v] for v in row) for row in g)
        return g

    def invert_grid(self, grid: Grid) -> Grid:
        """The grid this augmentation maps to `grid` (a prediction mapped back to the original task)."""
        g = grid
        if self.colours is not None:
            inv = [0] * 10
            for a, b in enumerate(self.colours):
                inv[b] = a
            g = tuple(tuple(inv[v] for v in row) for row in g)
        return dihedral(_DIHEDRAL_INVERSE[self.geometry], g)

    def apply(self, spec: ArcSpec) -> ArcSpec:
        pairs = tuple((self.apply_grid(i), self.apply_grid(o)) for i, o in spec.train)
        if self.order is not None:
            if len(self.order) != len(pairs):
                raise ValueError(f"order {self.order} is for {len(self.order)} demos, the task has {len(pairs)}")
            pairs = tuple(pairs[j] for j in self.order)
        return ArcSpec(pairs, self.apply_grid(spec.test_input))

    def invert(self, spec: ArcSpec) -> ArcSpec:
        pairs = spec.train
        if self.order is not None:
            back: list[Pair | None] = [None] * len(pairs)
            for i, j in enumerate(self.order):
                back[j] = pairs[i]
            pairs = tuple(p for p in back if p is not None)
        pairs = tuple((self.invert_grid(i), self.invert_grid(o)) for i, o in pairs)
        return ArcSpec(pairs, self.invert_grid(spec.test_input))


IDENTITY = Augmentation()


def random_colours(rng: random.Random) -> tuple[int, ...]:
    """A random permutation of 1-9, with 0 (background) fixed."""
    rest = list(range(1, 10))
    rng.shuffle(rest)
    return (0, *rest)


def random_order(n: int, rng: random.Random) -> tuple[int, ...]:
    order = list(range(n))
    rng.shuffle(order)
    return tuple(order)


def augmentations(n: int, n_demos: int, rng: random.Random, *, colours: bool = True,
                  shuffle: bool = True) -> list[Augmentation]:
    """`n` distinct augmentations, identity first, then the other 7 symmetries (unchanged colours
    and order), then symmetries with random colour permutations and demo orders, cycling through
    the 8 symmetries so each keeps an even share (the hierarchical vote groups by symmetry)."""
    out: list[Augmentation] = []
    seen: set[Augmentation] = set()
    for geometry in DIHEDRAL[:n]:
        aug = Augmentation(geometry)
        out.append(aug)
        seen.add(aug)
    tries = 0
    while len(out) < n and (colours or (shuffle and n_demos > 1)) and tries < 50 * n:
        geometry = DIHEDRAL[(len(out) + tries) % len(DIHEDRAL)]
        tries += 1
        aug = Augmentation(geometry, random_colours(rng) if colours else None,
                           random_order(n_demos, rng) if shuffle and n_demos > 1 else None)
        if aug not in seen:
            seen.add(aug)
            out.append(aug)
    return out


# -- test-time training data -------------------------------------------------------------------------


def loo_tasks(spec: ArcSpec) -> list[tuple[ArcSpec, Grid]]:
    """The leave-one-out tasks of a problem: for each demonstration i, (the task whose context is
    the other demos, in order, and whose query is demo i's input; demo i's output as the target).
    Needs at least two demos (one to hold out, one as context); returns [] otherwise."""
    pairs = spec.train
    if len(pairs) < 2:
        return []
    return [(ArcSpec(pairs[:i] + pairs[i + 1:], pairs[i][0]), pairs[i][1]) for i in range(len(pairs))]


def augmented_loo_tasks(spec: ArcSpec, n_augmentations: int, rng: random.Random) -> list[tuple[ArcSpec, Grid, str]]:
    """Leave-one-out tasks x augmentations: (task, target, augmentation name).

    Each LOO task appears untransformed, then under `n_augmentations` random augmentations
    (a random symmetry, colour permutation and demo order each; 0 = the LOO tasks alone)."""
    out: list[tuple[ArcSpec, Grid, str]] = []
    for task, target in loo_tasks(spec):
        out.append((task, target, IDENTITY.name))
        seen = {IDENTITY}
        for _ in range(n_augmentations):
            for _try in range(20):
                aug = Augmentation(rng.choice(DIHEDRAL), random_colours(rng),
                                   random_order(len(task.train), rng) if len(task.train) > 1 else None)
                if aug not in seen:
                    break
            seen.add(aug)
            out.append((aug.apply(task), aug.apply_grid(target), aug.name))
    return out


def spec_text_len(spec: ArcSpec, answer: Grid | None, style: str = "compact") -> int:
    """Characters of the compact prompt of `spec` plus its answer grid (see ArcTask.prompt)."""
    n = 0
    for i, o in spec.train:  # "I\n{input}\nO\n{output}\n"
        n += 6 + grid_text_len(len(i), len(i[0]), style) + grid_text_len(len(o), len(o[0]), style)
    n += 5 + grid_text_len(len(spec.test_input), len(spec.test_input[0]), style)  # "I\n{input}\nO\n"
    if answer is not None:
        n += grid_text_len(len(answer), len(answer[0]), style)
    return n


def grids_of(spec: ArcSpec) -> Sequence[Grid]:
    return [g for pair in spec.train for g in pair] + [spec.test_input]
