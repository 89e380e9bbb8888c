"""Is a countdown model better than chance? pass@k of the model beside random expressions.

RL sharpens what a model already samples (Yue et al. 2025), so a countdown base's pass@64 is the
ceiling LADDER and GRPO work under. But countdown answers can also be hit by luck: a random
expression over the given numbers sometimes equals the target. This puts the model's pass@k
beside three policies that read no text and learn nothing:

    chance-any      all the numbers, each once, combined pairwise in random order with a random
                    operation from + - * / (fractions and negatives allowed, as the verifier allows)
    chance-integer  the same, with the operation drawn among those that keep the intermediate a
                    positive integer (division only when exact, subtraction only when positive)
    generator       `rungs.tasks.countdown.random_combination`: the random process that made the
                    targets, of the built-in dev and hard sets and of the pretraining pool alike
                    (like chance-integer, but each pair is ordered larger first and multiplying or
                    dividing by 1 is avoided). Not chance: it knows how the targets were drawn,
                    which the pretrained model had to learn from its pool

and compares them problem by problem (Spearman's rho between the model's and chance's solve rates,
and what share of the problems the model ever solves chance solves too). Chance's expressions are
our own, not model output, so they are checked in-process; the model's go through the sandboxed
verifier pool (`bench/precondition.py`'s `sample_counts`, the same settings: n samples at T = 1).

    python bench/countdown_chance.py                                   # dev and hard, 3 seeds
    python bench/countdown_chance.py --policy tiny:countdown-long-plus1500 --out bench/results-dev/countdown-chance.json

Prints a table (mean ± std over seeds), writes JSON and a plot of pass@k per set.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from precondition import KS, problem_sets, sample_counts  # noqa: E402

CHANCE = ("chance-any", "chance-integer", "generator")


def random_any(numbers: list[int], rng: random.Random) -> Any:
    """All `numbers`, each once, combined pairwise at random with a random operation (the operation
    is redrawn only where it would divide by zero). Returns the expression tree."""
    from rungs.tasks.countdown import BinOp, _apply, _leaf

    pool = [(_leaf(n), n) for n in numbers]
    while len(pool) > 1:
        i, j = rng.sample(range(len(pool)), 2)
        (ea, a), (eb, b) = pool[i], pool[j]
        ops = ["+", "-", "*"] + (["/"] if b != 0 else [])
        op = rng.choice(ops)
        pool = [p for k, p in enumerate(pool) if k not in (i, j)]
        pool.append((BinOp(op, ea, eb), _apply(op, a, b)))
    return pool[0][0]


def random_integer(numbers: list[int], rng: random.Random) -> Any:
    """All `numbers`, each once, combined pairwise at random with an operation drawn among those that
    keep the intermediate a positive integer (+ always qualifies, so this never gets stuck)."""
    from rungs.tasks.countdown import BinOp, _apply, _leaf

    pool = [(_leaf(n), n) for n in numbers]
    while len(pool) > 1:
        i, j = rng.sample(range(len(pool)), 2)
        (ea, a), (eb, b) = pool[i], pool[j]
        ops = [op for op in "+-*/" if isinstance(value := _apply(op, a, b), int) and value > 0]
        op = rng.choice(ops)
        pool = [p for k, p in enumerate(pool) if k not in (i, j)]
        pool.append((BinOp(op, ea, eb), _apply(op, a, b)))
    return pool[0][0]


def random_generator(numbers: list[int], rng: random.Random, tries: int = 100) -> Any:
    """`random_combination` (the targets' own generator), retried until it does not get stuck;
    after `tries` failures, a `random_integer` expression."""
    from rungs.tasks.countdown import random_combination

    for _ in range(tries):
        made = random_combination(numbers, rng)
        if made is not None:
            return made[0]
    return random_integer(numbers, rng)


def chance_counts(kind: str, problems: list[Any], n: int, seed: int) -> list[int]:
    """Right answers out of n random expressions of `kind` per problem."""
    from rungs.tasks import get_task
    from rungs.tasks.countdown import parse_spec, render

    task = get_task("countdown")
    draw = {"chance-any": random_any, "chance-integer": random_integer, "generator": random_generator}[kind]
    counts = []
    for problem in problems:
        numbers, _ = parse_spec(problem)
        rng = random.Random(f"{kind}:{seed}:{problem.id}")
        counts.append(sum(task.verify_answer(problem, render(draw(list(numbers), rng))).correct for _ in range(n)))
    return counts


def pass_curve(counts: list[int], n: int) -> dict[int, float]:
    from rungs.metrics import pass_at_k

    return {k: sum(pass_at_k(n, c, k) for c in counts) / len(counts) for k in KS if k <= n}


def compare(model: list[float], chance: list[float]) -> dict[str, float | None]:
    """Spearman's rho of per-problem solve rates, and the share of the problems the model ever
    solves that chance solves too (None where the model solves none)."""
    from scipy.stats import spearmanr

    rho = spearmanr(model, chance).statistic if len(set(model)) > 1 and len(set(chance)) > 1 else float("nan")
    solved = [c for m, c in zip(model, chance) if m > 0]
    return {"spearman_rho": None if rho != rho else round(float(rho), 3),
            "model_solved": len(solved),
            "of_them_chance_solves": sum(c > 0 for c in solved) / len(solved) if solved else None}


def pass_at_k_axes(ax: Any, arms: dict[str, dict[str, Any]]) -> None:
    """pass@k against k (log scale), mean with std bars, one line per arm ({arm: {"pass@k_mean",
    "pass@k_std"}}, as this bench and bench/countdown_calculator.py store them)."""
    for arm, a in arms.items():
        ks = list(a["pass@k_mean"])
        ax.errorbar(ks, [a["pass@k_mean"][k] for k in ks], yerr=[a["pass@k_std"][k] for k in ks],
                    marker="o", capsize=2, label=arm)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("k (samples)")
    ax.set_ylabel("pass@k")
    ax.legend(fontsize=7)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--policy", default="tiny:countdown-long-plus1500", help="the model beside chance ('' for chance only)")
    ap.add_argument("--sets", default="dev,hard", help="dev (levels 3-4 of builtin:countdown-dev) and/or hard")
    ap.add_argument("--n", type=int, default=64, help="samples per problem and seed")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", default=None, help="JSON here, and a .png beside it")
    args = ap.parse_args(argv)
    if args.n < 1 or args.seeds < 1:
        ap.error("--n and --seeds must be >= 1")
    names = [s for s in args.sets.split(",") if s]
    if not names or set(names) - {"dev", "hard"}:
        ap.error(f"--sets: expected dev and/or hard, got {args.sets!r}")

    sets = problem_sets("countdown", names, "builtin:countdown-hard", 0)
    arms = list(CHANCE) + ([args.policy] if args.policy else [])
    # per arm, set and seed: right answers out of n per problem
    counts: dict[str, dict[str, list[list[int]]]] = {arm: {s: [] for s in sets} for arm in arms}
    greedy: dict[str, float] = {}
    t0 = time.process_time()
    for arm in CHANCE:
        for name, problems in sets.items():
            for seed in range(args.seeds):
                counts[arm][name].append(chance_counts(arm, problems, args.n, seed))
    print(f"chance: {time.process_time() - t0:.1f} CPU s", file=sys.stderr)
    if args.policy:
        import torch

        from rungs.policies import load_policy
        from rungs.tasks import get_task
        from rungs.verify.pool import VerifierPool

        torch.set_num_threads(1)
        task = get_task("countdown")
        with VerifierPool(task, workers=args.workers) as pool:
            for seed in range(args.seeds):
                policy = load_policy(args.policy, task="countdown", seed=seed)
                for name, problems in sets.items():
                    got, greedy_right = sample_counts(policy, task, pool, problems, args.n, args.temperature, seed)
                    counts[args.policy][name].append(got)
                    greedy[name] = sum(greedy_right) / len(greedy_right)
                    print(f"{args.policy} {name} seed {seed}: pass@{args.n} {sum(c > 0 for c in got) / len(got):.3f}",
                          file=sys.stderr, flush=True)

    from rungs.report import fmt_mean_std, print_table

    result: dict[str, Any] = {"policy": args.policy, "n": args.n, "seeds": args.seeds,
                              "temperature": args.temperature, "sets": {}}
    rows = []
    for name, problems in sets.items():
        entry: dict[str, Any] = {"problems": len(problems), "arms": {}}
        for arm in arms:
            curves = [pass_curve(c, args.n) for c in counts[arm][name]]
            mean = {k: statistics.mean(c[k] for c in curves) for k in curves[0]}
            std = {k: statistics.pstdev(c[k] for c in curves) for k in curves[0]}
            entry["arms"][arm] = {"pass@k_mean": mean, "pass@k_std": std,
                                  "greedy": greedy.get(name) if arm == args.policy else None,
                                  "per_problem_solve_rate": [sum(col) / (args.n * args.seeds)
                                                             for col in zip(*counts[arm][name])]}
            rows.append({"set": f"{name} ({len(problems)})", "policy": arm,
                         "greedy": f"{greedy[name]:.3f}" if arm == args.policy else "-",
                         **{f"pass@{k}": fmt_mean_std(mean[k], std[k]) for k in (1, 8, 64) if k in mean}})
        if args.policy:
            model = entry["arms"][args.policy]["per_problem_solve_rate"]
            entry["model_vs_chance"] = {arm: compare(model, entry["arms"][arm]["per_problem_solve_rate"]) for arm in CHANCE}
        result["sets"][name] = entry
    columns = ["set", "policy", "greedy"] + [f"pass@{k}" for k in (1, 8, 64) if k <= args.n]
    print_table(rows, columns, title=f"countdown: a model's pass@k beside random expressions (n = {args.n}, "
                                     f"{args.seeds} seeds, mean ± std)")
    for name, entry in result["sets"].items():
        for arm, c in entry.get("model_vs_chance", {}).items():
            share = "-" if c["of_them_chance_solves"] is None else f"{c['of_them_chance_solves']:.2f}"
            print(f"{name}: {args.policy} vs {arm}: Spearman rho {c['spearman_rho']}, of the "
                  f"{c['model_solved']} problems the model ever solves chance solves {share}")
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, len(sets), figsize=(max(7, 5 * len(sets)), 3.8), squeeze=False)
        for ax, (name, entry) in zip(axes[0], result["sets"].items()):
            pass_at_k_axes(ax, entry["arms"])
            ax.set_title(f"{name} ({entry['problems']} problems)", fontsize=9)
        fig.suptitle(f"Countdown pass@k: {args.policy or 'chance only'} vs random expressions\n"
                     f"({args.seeds} seeds, T={args.temperature})", fontsize=10)
        fig.tight_layout()
        fig.savefig(out.with_suffix(".png"), dpi=120)
        print(f"wrote {out} and {out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    import bench_cli

    bench_cli.run(main, "countdown_chance")
