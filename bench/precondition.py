"""Can the base model sample a right answer at all? Greedy accuracy and pass@1..64, before any RL.

RL with verifiable rewards mostly moves pass@1 toward the base model's pass@k (Yue et al. 2025):
what the base never samples, RL does not find. LADDER's variants matter where the hard problems
give no reward signal but their easier variants do. So before tuning anything, this prints, for a
policy, greedy accuracy and the unbiased pass@k (Chen et al. 2021) from n samples per problem on

    hard       the test set (builtin:integration-hard by default)
    variants   the depth-1 symbolic variants of those problems (what LADDER's tree starts from)
    dev        the level 3-4 problems of builtin:TASK-dev (what the distribution was tuned on)

LADDER's regime is greedy well below pass@64 with pass@64 well above zero (issue 8 asks for
greedy <= 15% and pass@64 >= 40% on the hard set).

`--sets rungs` measures the ladder itself: the dev level 3-4 problems and their depth-2 variant
trees (width 4), grouped by transform and rung (the task's difficulty, rounded down: for countdown
the number of numbers minus one), with the mean solve rate, the share solved at least once and the
share in the learnable band 0 < p < 1. A ladder works when every rung next to one the policy
solves is itself in reach.

    python bench/precondition.py                                  # the shipped tiny-integration
    python bench/precondition.py --policy tiny:runs/x --sets dev  # a candidate base, dev only
    python bench/precondition.py --task countdown                 # the shipped tiny-countdown
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # bench_cli beside this file, also when loaded by path (the tests)
    sys.path.insert(0, str(HERE))
import bench_cli  # noqa: E402

KS = (1, 2, 4, 8, 16, 32, 64)


def sample_counts(policy: Any, task: Any, pool: Any, problems: list[Any], n: int, temperature: float, seed: int,
                  max_new_tokens: int = 96, prompts_per_call: int = 8) -> tuple[list[int], list[bool]]:
    """(correct samples out of n, greedy correct) per problem."""
    from rungs.pipelines.ttrl import greedy_verdicts
    from rungs.policies.base import SamplingParams

    greedy = [v.correct for _, v in greedy_verdicts(policy, task, pool, problems, max_new_tokens)]
    counts: list[int] = []
    for start in range(0, len(problems), prompts_per_call):
        chunk = problems[start:start + prompts_per_call]
        sampling = SamplingParams(temperature=temperature, max_new_tokens=max_new_tokens, seed=seed * 7919 + start)
        groups = policy.generate([task.prompt(p, policy.prompt_style) for p in chunk], n=n, sampling=sampling)
        flat = [p for p in chunk for _ in range(n)]
        verdicts = pool.verify(flat, [c.text for g in groups for c in g])
        counts.extend(sum(v.correct for v in verdicts[i * n:(i + 1) * n]) for i in range(len(chunk)))
    return counts, greedy


def curve(counts: list[int], greedy: list[bool], n: int) -> dict[str, Any]:
    from rungs.metrics import pass_at_k

    return {"problems": len(counts), "greedy": sum(greedy) / len(greedy),
            "pass@k": {k: sum(pass_at_k(n, c, k) for c in counts) / len(counts) for k in KS if k <= n},
            "solved_at_least_once": sum(c > 0 for c in counts) / len(counts)}


SETS = ("hard", "variants", "dev", "rungs")


def problem_sets(task_name: str, names: list[str], test: str, seed: int) -> dict[str, list[Any]]:
    from rungs.data import load_problems
    from rungs.tasks import get_task
    from rungs.variants.tree import variant_tree

    task = get_task(task_name)
    out: dict[str, list[Any]] = {}
    hard = load_problems(test)
    if "hard" in names:
        out["hard"] = hard
    if "variants" in names:
        seen = {task.problem_key(p) for p in hard}
        variants = []
        for p in hard:
            for v in variant_tree(task, p, depth=1, width=4, seed=random.Random(f"{seed}:{p.id}").randrange(2**31)):
                if task.problem_key(v.problem) not in seen:
                    seen.add(task.problem_key(v.problem))
                    variants.append(v.problem)
        out["variants"] = variants
    if "dev" in names:
        out["dev"] = [p for p in load_problems(f"builtin:{task_name}-dev") if p.meta.get("level", p.meta.get("difficulty")) in (3, 4)]
    return out


def rung_problems(task_name: str, seed: int) -> list[tuple[str, Any]]:
    """(group label, problem) for the dev level 3-4 roots and their depth-2 variant trees."""
    from rungs.tasks import get_task
    from rungs.variants.tree import variant_tree

    task = get_task(task_name)
    out: list[tuple[str, Any]] = []
    for root in problem_sets(task_name, ["dev"], f"builtin:{task_name}-dev", seed)["dev"]:
        out.append((f"root, rung {int(task.difficulty(root))}", root))
        tree = variant_tree(task, root, depth=2, width=4, seed=random.Random(f"{seed}:{root.id}").randrange(2**31))
        out += [(f"{v.transform}, rung {int(v.difficulty)}", v.problem) for v in tree]
    return out


def rung_table(labels: list[str], counts: list[int], n: int) -> dict[str, dict[str, float]]:
    """{group: problems, mean solve rate, share solved at least once, share in 0 < p < 1}."""
    groups: dict[str, list[int]] = {}
    for label, c in zip(labels, counts):
        groups.setdefault(label, []).append(c)
    return {label: {"problems": len(cs), "solve_rate": sum(cs) / (n * len(cs)),
                    "solved_at_least_once": sum(c > 0 for c in cs) / len(cs),
                    "in_band": sum(0 < c < n for c in cs) / len(cs)}
            for label, cs in sorted(groups.items(), key=lambda kv: (int(kv[0].split(", rung ")[1]), kv[0]))}


def measure(policy_spec: str, sets: list[str], n: int = 64, temperature: float = 1.0, seed: int = 0,
            test: str | None = None, workers: int = 2, task_name: str = "integration") -> dict[str, Any]:
    """{set name: curve} for one policy."""
    import torch

    from rungs.policies import load_policy
    from rungs.tasks import get_task
    from rungs.verify.pool import VerifierPool

    torch.set_num_threads(1)
    task = get_task(task_name)
    policy = load_policy(policy_spec, task=task_name, seed=seed)
    result: dict[str, Any] = {"task": task_name, "policy": policy_spec, "n": n, "temperature": temperature}
    with VerifierPool(task, workers=workers) as pool:
        if "rungs" in sets:
            labelled = rung_problems(task_name, seed)
            counts, _ = sample_counts(policy, task, pool, [p for _, p in labelled], n, temperature, seed)
            result["rungs"] = rung_table([label for label, _ in labelled], counts, n)
        for name, problems in problem_sets(task_name, sets, test or f"builtin:{task_name}-hard", seed).items():
            if not problems:
                continue
            t0 = time.perf_counter()
            counts, greedy = sample_counts(policy, task, pool, problems, n, temperature, seed)
            result[name] = {**curve(counts, greedy, n), "seconds": round(time.perf_counter() - t0, 1)}
            print(f"{policy_spec} {name}: {json.dumps(result[name]['pass@k'])} greedy {result[name]['greedy']:.3f}",
                  file=sys.stderr, flush=True)
    return result


def print_curves(result: dict[str, Any]) -> None:
    from rungs.report import print_table

    rows = []
    for name in ("hard", "variants", "dev"):
        if name in result:
            c = result[name]
            rows.append({"set": f"{name} ({c['problems']})", "greedy": f"{c['greedy']:.3f}",
                         **{f"pass@{k}": f"{v:.3f}" for k, v in c["pass@k"].items()}})
    cols = ["set", "greedy", *[f"pass@{k}" for k in KS if k <= result["n"]]]
    if rows:
        print_table(rows, cols, title=f"precondition: {result['task']}, {result['policy']}, {result['n']} samples at T={result['temperature']}")
    if "rungs" in result:
        print_table([{"transform, rung": label, "problems": g["problems"], "solve rate": f"{g['solve_rate']:.3f}",
                      "solved once": f"{g['solved_at_least_once']:.3f}", "in band": f"{g['in_band']:.3f}"}
                     for label, g in result["rungs"].items()],
                    ["transform, rung", "problems", "solve rate", "solved once", "in band"],
                    title=f"the ladder on dev: {result['task']}, {result['policy']}, {result['n']} samples per problem")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", default="integration", choices=("integration", "countdown"), help="default integration")
    ap.add_argument("--policy", default="tiny", help="the policy sampled (default tiny: the task's shipped checkpoint)")
    ap.add_argument("--sets", type=bench_cli.names_list(SETS, "sets"), default="hard,variants,dev",
                    help=f"comma-separated, of {', '.join(SETS)} (default hard,variants,dev)")
    ap.add_argument("--n", type=bench_cli.positive, default=64, help="samples per problem (default 64)")
    ap.add_argument("--temperature", type=float, default=1.0, help="default 1.0")
    ap.add_argument("--test", default=None, help="test set (default builtin:TASK-hard)")
    ap.add_argument("--seed", type=int, default=0, help="default 0")
    ap.add_argument("--workers", type=bench_cli.positive, default=2, help="verifier workers (default 2)")
    ap.add_argument("--out", default=None, help="write the curves as JSON here")
    args = ap.parse_args(argv)
    if args.out:  # before the measurement, not after it
        bench_cli.writable_parent(args.out, "--out")
    result = measure(args.policy, args.sets, args.n, args.temperature, args.seed, args.test, args.workers,
                     args.task)
    print_curves(result)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    bench_cli.run(main, "precondition")
