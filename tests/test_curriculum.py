"""The LADDER curriculum sampler: easiest first, an expanding window, exact resume."""

from __future__ import annotations

import pytest

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


def test_window_growth_does_not_drain_the_batch_to_the_frontier():
    """Regression (issue 8, item 0): newly admitted problems used to go to the head of the queue, so
    with a window growing faster than the batch every step after the first trained only on the
    hardest problems just admitted. They are now shuffled in with the rest of the window."""
    pool = [Problem(f"q{i}", f"problem {i}", meta={"difficulty": i}) for i in range(400)]
    sampler = CurriculumSampler(pool, difficulty, total_steps=20, seed=0, start_fraction=0.25)
    sampler.sample(4)
    frontier_draws = draws = 0
    for _ in range(19):
        before = sampler._queue_window
        after = sampler.window()
        batch = sampler.sample(4)
        frontier_draws += sum(before <= p.meta["difficulty"] < after for p in batch)
        draws += len(batch)
    assert frontier_draws / draws < 0.5  # each step admits ~15 of a window of 100-400: ~10% expected


def _scripted_run(sampler, true_rate, steps, k=4, samples=8, seed=0):
    """A scripted policy: problem i is solved with probability true_rate[i]; returns drawn ids per step."""
    import random as _random

    rng = _random.Random(seed)
    drawn = []
    for _ in range(steps):
        batch = sampler.sample(k)
        drawn.append([p.id for p in batch])
        problems = [p for p in batch for _ in range(samples)]
        sampler.observe(problems, [rng.random() < true_rate[p.id] for p in problems])
    return drawn


def test_solve_rate_curriculum_keeps_batches_in_the_learnable_band():
    from rungs.train.curriculum import SolveRateCurriculum

    rates = [0.0] * 40 + [0.5] * 20 + [1.0] * 40  # only 20% of the pool is learnable
    pool = [Problem(f"r{i}", f"problem {i}", meta={"difficulty": i % 7}) for i in range(len(rates))]
    true_rate = {p.id: r for p, r in zip(pool, rates)}
    sampler = SolveRateCurriculum(pool, total_steps=60, seed=0, band_fraction=0.75)
    drawn = _scripted_run(sampler, true_rate, steps=60)
    late = [i for step in drawn[30:] for i in step]
    learnable = sum(0 < true_rate[i] < 1 for i in late) / len(late)
    assert learnable >= 0.6  # a uniform draw would give 0.2
    # Estimates follow the samples: a never-solved problem reads 0, a half-solved one in (0, 1).
    measured = {p.id: sampler.solve_rate(p) for p in pool if sampler.solve_rate(p) is not None}
    assert all(measured[i] == 0.0 for i in measured if true_rate[i] == 0.0)
    assert any(0 < measured[i] < 1 for i in measured if true_rate[i] == 0.5)


def test_solve_rate_curriculum_retests_what_it_could_not_solve_once_everything_is_measured():
    from rungs.train.curriculum import SolveRateCurriculum

    pool = [Problem(f"z{i}", f"problem {i}") for i in range(6)]
    sampler = SolveRateCurriculum(pool, total_steps=10, seed=0)
    sampler.observe(pool, [False] * 6)  # all measured, none learnable
    assert sampler.band() == []
    again = sampler.sample(3)
    assert len({p.id for p in again}) == 3  # re-tested, no duplicates in a batch
    sampler.observe([pool[0]] * 4, [True, False, True, False])
    assert sampler.band() == [0] and 0 < sampler.solve_rate(pool[0]) < 1
    sampler.observe([Problem("elsewhere", "not in the pool")], [True])  # ignored
    assert sampler.solve_rate(Problem("elsewhere", "x")) is None


def test_solve_rate_curriculum_state_dict_resumes_the_exact_sequence():
    import json

    from rungs.train.curriculum import SolveRateCurriculum

    rates = {f"s{i}": (i % 3) / 2 for i in range(30)}
    pool = [Problem(i, f"problem {i}") for i in rates]
    a = SolveRateCurriculum(pool, total_steps=20, seed=5)
    _scripted_run(a, rates, steps=6)
    state = json.loads(json.dumps(a.state_dict()))  # it goes through a JSON checkpoint
    b = SolveRateCurriculum(pool, total_steps=20, seed=123)
    b.load_state_dict(state)
    assert _scripted_run(a, rates, steps=8, seed=9) == _scripted_run(b, rates, steps=8, seed=9)


def test_cooldown_rotates_the_band_instead_of_redrawing_the_same_problems():
    from rungs.train.curriculum import SolveRateCurriculum

    rates = {f"c{i}": 0.5 if i < 8 else 0.0 for i in range(200)}  # 8 learnable problems in a large pool
    pool = [Problem(i, f"problem {i}") for i in rates]

    def shortest_gap(cooldown):
        sampler = SolveRateCurriculum(pool, total_steps=40, seed=1, cooldown=cooldown)
        last, gaps = {}, []
        for step, batch in enumerate(_scripted_run(sampler, rates, steps=40)):
            for pid in batch:
                if pid in last:
                    gaps.append(step - last[pid])
                last[pid] = step
        return min(gaps)

    assert shortest_gap(0) == 1  # without it, the same band problems come back every step
    assert shortest_gap(4) >= 4


def test_band_rate_exploration_prefers_the_family_whose_problems_land_in_the_band():
    from rungs.train.curriculum import SolveRateCurriculum

    # two families of 100: "dead" problems are never solved, "live" ones half the time
    rates = {f"{kind}{i}": (0.5 if kind == "live" else 0.0) for kind in ("dead", "live") for i in range(100)}
    pool = [Problem(i, f"problem {i}") for i in rates]

    def live_share(explore):
        sampler = SolveRateCurriculum(pool, total_steps=30, seed=3, band_fraction=0.0, explore=explore,
                                      group=lambda p: p.id[:4])
        drawn = [pid for batch in _scripted_run(sampler, rates, steps=30)[5:] for pid in batch]
        return sum(pid.startswith("live") for pid in drawn) / len(drawn)

    assert live_share("random") < 0.65  # about half
    assert live_share("band_rate") > 0.8


def test_band_rate_curriculum_resumes_the_exact_sequence():
    import json

    from rungs.train.curriculum import SolveRateCurriculum

    rates = {f"{k}{i}": r for k, r in (("a", 0.0), ("b", 0.5), ("c", 1.0)) for i in range(20)}
    pool = [Problem(i, f"problem {i}") for i in rates]

    def make(seed):
        return SolveRateCurriculum(pool, total_steps=20, seed=seed, explore="band_rate", cooldown=2,
                                   group=lambda p: p.id[0])

    a = make(5)
    _scripted_run(a, rates, steps=6)
    b = make(123)
    b.load_state_dict(json.loads(json.dumps(a.state_dict())))
    assert _scripted_run(a, rates, steps=8, seed=9) == _scripted_run(b, rates, steps=8, seed=9)


def test_band_rate_needs_a_group_function():
    from rungs.train.curriculum import SolveRateCurriculum

    with pytest.raises(ValueError, match="group"):
        SolveRateCurriculum([Problem("p", "x")], total_steps=1, explore="band_rate")


def test_descend_explores_the_variants_of_what_it_cannot_solve():
    from rungs.train.curriculum import SolveRateCurriculum

    # 10 roots; roots 0-4 are never solved, their children c{r}.{j} are learnable; roots 5-9 are
    # learnable themselves and their children are trivial
    rates, parent = {}, {}
    for r in range(10):
        rates[f"r{r}"] = 0.0 if r < 5 else 0.5
        parent[f"r{r}"] = None
        for j in range(3):
            rates[f"c{r}.{j}"] = 0.5 if r < 5 else 1.0
            parent[f"c{r}.{j}"] = f"r{r}"
    pool = [Problem(i, f"problem {i}") for i in rates]
    sampler = SolveRateCurriculum(pool, total_steps=20, seed=0, band_fraction=0.0, explore="descend",
                                  parent=lambda p: parent[p.id])
    steps = _scripted_run(sampler, rates, steps=5, k=3)
    early = [pid for batch in steps[:4] for pid in batch]  # before the roots run out
    children = [pid for pid in early if pid.startswith("c")]
    assert len(children) >= 3  # it went down from the unsolved roots ...
    assert all(parent[pid] in {f"r{r}" for r in range(5)} for pid in children)  # ... and only from those
    assert len({parent[pid] for pid in children}) == len(children)  # one learnable rung per root was enough
    assert all(sampler.solve_rate(p) is not None for p in pool if p.id.startswith("r"))  # every root tried


def test_mastered_at_moves_the_batch_from_easy_rungs_to_the_ones_still_being_climbed():
    from rungs.train.curriculum import SolveRateCurriculum

    rates = {f"m{i}": 0.8 if i < 60 else 0.2 for i in range(80)}  # many easy rungs, a few hard ones
    pool = [Problem(i, f"problem {i}") for i in rates]

    def share_hard(mastered_at):
        sampler = SolveRateCurriculum(pool, total_steps=60, seed=2, mastered_at=mastered_at)
        late = [pid for step in _scripted_run(sampler, rates, steps=60, seed=3)[30:] for pid in step]
        return sum(rates[pid] < 0.5 for pid in late) / len(late)

    assert share_hard(1.0) < 0.5  # every easy rung stays in the band and they outnumber the hard ones
    assert share_hard(0.5) > 0.7
    with pytest.raises(ValueError, match="mastered_at"):
        SolveRateCurriculum(pool, total_steps=10, mastered_at=0.0)


@pytest.mark.parametrize("value", [0.0, 1.5, -0.2])
def test_ladder_config_names_a_bad_mastered_at(value):
    from rungs.errors import UserError
    from rungs.pipelines.ladder import LadderConfig

    with pytest.raises(UserError, match=f"--mastered-at {value}: expected a solve rate in"):
        LadderConfig(mastered_at=value)


def test_ladder_without_problems_on_a_task_with_no_training_set_says_so():
    from rungs.errors import UserError
    from rungs.pipelines.ladder import LadderConfig

    assert LadderConfig(task="countdown").problems == "builtin:countdown-train"
    with pytest.raises(UserError, match="task 'math' has no built-in train set .* --problems FILE"):
        LadderConfig(task="math")
    assert LadderConfig(task="math", problems="rows.jsonl").problems == "rows.jsonl"


def test_climb_retests_a_never_solved_parent_once_per_variant_that_is_solved():
    from rungs.train.curriculum import SolveRateCurriculum

    # one root, unsolvable; three learnable variants of it; 300 unrelated never-solved problems
    kids = [Problem(f"root/v{j}", f"variant {j}") for j in range(3)]
    pool = [Problem("root", "root"), *kids] + [Problem(f"x{i}", f"x {i}") for i in range(300)]
    rates = {"root": 0.0, **{k.id: 0.75 for k in kids}, **{f"x{i}": 0.0 for i in range(300)}}

    def run(climb):
        sampler = SolveRateCurriculum(pool, total_steps=40, seed=0, band_fraction=0.5, climb=climb,
                                      parent=lambda p: "root" if p.id.startswith("root/") else None)
        sampler.observe([pool[0]] * 8, [False] * 8)  # the root, measured at 0
        sampler.observe([k for k in kids for _ in range(2)], [True, False] * 3)  # its variants, in the band
        steps = _scripted_run(sampler, rates, steps=40, k=4)
        return sum(step.count("root") for step in steps), len({pid for step in steps for pid in step})

    assert run(False)[0] == 0  # measured once at 0, never drawn again in 40 steps
    draws, distinct = run(True)
    assert 1 <= draws <= 3  # re-tested when a variant is first solved half the time, once per variant
    assert distinct >= 60  # and exploring goes on (a re-test on every solved round took every slot)


def test_climb_queue_survives_a_checkpoint():
    import json

    from rungs.train.curriculum import SolveRateCurriculum

    pool = [Problem("root", "root"), Problem("root/v0", "variant"), Problem("other", "other")]
    make = lambda: SolveRateCurriculum(pool, total_steps=10, seed=0, climb=True,  # noqa: E731
                                       parent=lambda p: "root" if p.id == "root/v0" else None)
    a = make()
    a.observe([pool[0]] * 4, [False] * 4)
    a.observe([pool[1]] * 4, [True] * 4)
    b = make()
    b.load_state_dict(json.loads(json.dumps(a.state_dict())))
    assert b.sample(1)[0].id == "root" == a.sample(1)[0].id
    with pytest.raises(ValueError, match="climb needs a parent"):
        SolveRateCurriculum(pool, total_steps=10, climb=True)

