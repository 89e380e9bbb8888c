"""The LADDER curriculum sampler: easiest first, an expanding window, exact resume."""

from __future__ import annotations

from rungs.train.curriculum import CurriculumSampler
from rungs.types import Problem

PROBLEMS = [Problem(f"p{d}", f"problem {d}", meta={"difficulty": d}) for d in (5, 1, 4, 2, 3, 6, 8, 7)]


def difficulty(p: Problem) -> float:
    return p.meta["difficulty"]


def test_early_steps_see_only_the_easiest_and_late_steps_see_everything():
    sampler = CurriculumSampler(PROBLEMS, difficulty, total_steps=10, seed=0, start_fraction=0.25)
    first = sampler.sample(4)
    assert {p.meta["difficulty"] for p in first} <= {1, 2}
    seen = set()
    for _ in range(9):
        seen |= {p.meta["difficulty"] for p in sampler.sample(4)}
    assert seen == {1, 2, 3, 4, 5, 6, 7, 8}
    assert sampler.window() == len(PROBLEMS)


def test_window_never_shrinks_and_mean_difficulty_rises():
    sampler = CurriculumSampler(PROBLEMS * 4, difficulty, total_steps=20, seed=1)
    windows, means = [], []
    for _ in range(20):
        windows.append(sampler.window())
        batch = sampler.sample(4)
        means.append(sum(p.meta["difficulty"] for p in batch) / 4)
    assert windows == sorted(windows)
    assert sum(means[:5]) < sum(means[-5:])


def test_state_dict_resumes_the_exact_sequence():
    a = CurriculumSampler(PROBLEMS, difficulty, total_steps=12, seed=3)
    for _ in range(5):
        a.sample(3)
    state = a.state_dict()
    rest_a = [p.id for _ in range(7) for p in a.sample(3)]
    b = CurriculumSampler(PROBLEMS, difficulty, total_steps=12, seed=99)
    b.load_state_dict(state)
    rest_b = [p.id for _ in range(7) for p in b.sample(3)]
    assert rest_a == rest_b
