"""Sampled accuracy of each arm of a finished bench/learning.py run: pass@1 and pass@k at T = 1.

Why: bench/learning.py scores each arm greedily, as issue 8 asks. On countdown the base answers 5 of
the 80 hard problems, so one seed's greedy figure is a handful of problems and moves in steps of
1/80; two arms a point apart differ by one problem. The mean solve rate over n samples per problem
(pass@1) and the unbiased pass@k (Chen et al. 2021) ask the same question with far less noise: did
training move probability onto right answers, and did it narrow what the model can sample at all
(RLVR raises pass@1 and can lower pass@k: Yue et al. 2025)?

It reads the run's weights (OUT/SUITE/ladder-seedS/final, OUT/SUITE/grpo_direct-seedS/final; the
GRPO arm's weights are kept by runs since this script exists) and its recorded settings (the base
spec, the test set, the fresh draw), samples every arm with the same sampling seeds, and writes
OUT/arm_samples.json and OUT/arm_samples.png. The greedy column is recomputed from the same weights:
it must equal bench/learning.py's figure.

    python bench/arm_samples.py bench/results-countdown-roots20-200-long --task countdown --n 32
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/learning.py and bench/precondition.py
import bench_cli  # noqa: E402

ARMS = (("base", "base"), ("grpo_direct", "GRPO, no variants"), ("ladder", "LADDER"))


def trained_finals(out: Path, suite: str, seeds: int, arms: tuple[tuple[str, str], ...] = ARMS[1:],
                   script: str = "arm_samples") -> list[tuple[str, int, Path]]:
    """(arm, seed, final weights directory) for every arm in `arms` ((name, label) pairs) and seed
    whose weights exist. A seed without weights is skipped with a line on stderr that starts with
    `script` (the calling script's name). Raises SystemExit (one line naming the folder) when no arm
    has weights at all, as in a fresh clone (the results folders are committed without their seed
    folders): a result without them would overwrite the committed one."""
    found, missing = [], []
    for arm, _ in arms:
        for seed in range(seeds):
            final = out / suite / f"{arm}-seed{seed}" / "final"
            (found if (final / "model.safetensors").is_file() else missing).append((arm, seed, final))
    if not found and not (out / suite).is_dir():
        import learning

        others = [name for name in learning.SUITES if (out / name).is_dir()]
        if others:  # --task left at its default (countdown) on, say, an integration run
            raise SystemExit(f"{script}: {out}: no {suite}/ folder (--task {suite}); it holds "
                             f"{', '.join(name + '/' for name in others)}: give --task {others[0]}")
    if not found:
        names = ", ".join(arm for arm, _ in arms)
        raise SystemExit(f"{script}: {out / suite}: no trained arm's weights (expected ARM-seedN/final/model.safetensors "
                         f"for ARM in {names}, N < {seeds}: the seed folders of a finished bench/learning.py run, "
                         "which a fresh clone lacks); nothing written")
    for _, _, final in missing:
        print(f"{script}: {final}: no weights, skipped", file=sys.stderr)
    return found


def arm_policies(out: Path, suite: str, base: str, seeds: int, script: str = "arm_samples") -> list[tuple[str, int, str]]:
    """(arm, seed, policy spec) for the base (once, seed 0) and every trained arm whose weights exist
    (`trained_finals`: a missing seed is skipped with a line on stderr, no weights at all is SystemExit)."""
    return [("base", 0, base)] + [(arm, seed, f"tiny:{final}")
                                  for arm, seed, final in trained_finals(out, suite, seeds, script=script)]


def arm_rows(result: dict[str, Any], arm: str, set_name: str) -> list[dict[str, Any]]:
    """The measured rows of one arm on one set, one per seed."""
    return [r for r in result["rows"] if r["arm"] == arm and r["set"] == set_name]


def measure_arms(out: Path, suite: str, n: int, temperature: float, workers: int) -> dict[str, Any]:
    """{"settings": ..., "rows": [{arm, seed, set, greedy, pass@k, ...}]} for every arm and set."""
    import learning
    import torch
    from precondition import curve, sample_counts

    from rungs.policies import load_policy
    from rungs.tasks import get_task
    from rungs.verify.pool import VerifierPool

    stored = out / "learning.json"
    if not stored.is_file():
        raise SystemExit(f"arm_samples: {stored}: not found (expected a finished bench/learning.py run)")
    from answer_shapes import run_sets

    settings = json.loads(stored.read_text())["settings"]
    task_name, test_name, _ = learning.SUITES[suite]
    policies = arm_policies(out, suite, settings.get("base", "tiny"), settings["seeds"])  # refuses a folder without weights
    sets = run_sets(settings, suite)  # a --tune run: its dev pool only (tuning never reads a test set)
    torch.set_num_threads(1)
    task = get_task(task_name)
    rows: list[dict[str, Any]] = []
    with VerifierPool(task, workers=workers) as pool:
        for arm, seed, spec in policies:
            policy = load_policy(spec, task=task_name, seed=0)
            for name, problems in sets.items():
                counts, greedy = sample_counts(policy, task, pool, problems, n, temperature, seed=0)
                rows.append({"arm": arm, "seed": seed, "set": name, **curve(counts, greedy, n)})
                print(f"arm_samples: {arm} seed {seed} {name}: greedy {rows[-1]['greedy']:.3f} "
                      f"pass@1 {rows[-1]['pass@k'][1]:.3f} pass@{n} {rows[-1]['pass@k'][n]:.3f}",
                      file=sys.stderr, flush=True)
    return {"suite": suite, "base": settings.get("base", "tiny"), "n": n, "temperature": temperature, "sets": list(sets),
            "test": f"builtin:{test_name}", "fresh_seed": learning.FRESH_SEED, "rows": rows}


def summarise(result: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per (arm, set): mean ± std over seeds of greedy, pass@1 and pass@n."""
    from rungs.metrics import mean_std

    n = result["n"]
    table = []
    for set_name in result.get("sets", ("test", "fresh")):
        for arm, label in ARMS:
            rows = arm_rows(result, arm, set_name)
            if not rows:
                continue
            cells = {"set": set_name, "arm": label, "seeds": len(rows)}
            columns = [("greedy", [r["greedy"] for r in rows]), ("pass@1", [r["pass@k"][1] for r in rows])]
            if n > 1:  # --n 1: pass@n is pass@1, one column
                columns.append((f"pass@{n}", [r["pass@k"][n] for r in rows]))
            for key, values in columns:
                mean, std = mean_std(values)
                cells[key] = f"{mean:.3f}" if len(rows) == 1 else f"{mean:.3f} ± {std:.3f}"
            table.append(cells)
    return table


def plot(result: dict[str, Any], path: Path) -> None:
    """pass@k against k per arm (mean over seeds), one panel per set."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from rungs.report import save_png

    set_names = list(result.get("sets", ("test", "fresh")))
    fig, axes = plt.subplots(1, len(set_names), figsize=(5 * len(set_names), 4), sharey=True, squeeze=False)
    axes = axes[0]
    for ax, set_name in zip(axes, set_names):
        for arm, label in ARMS:
            rows = arm_rows(result, arm, set_name)
            if rows:
                ks = sorted(int(k) for k in rows[0]["pass@k"])
                ax.plot(ks, [sum(r["pass@k"][k] for r in rows) / len(rows) for k in ks], marker="o",
                        label=f"{label} ({len(rows)} seed{'s' if len(rows) > 1 else ''})")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("k (samples per problem)")
        ax.set_title({"test": result["test"], "fresh": f"fresh draw (seed {result['fresh_seed']})"}.get(
            set_name, "dev pool (tuning only)"))
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("pass@k")
    axes[0].legend()
    fig.suptitle(f"{result['suite']}: pass@k of each trained arm ({result['n']} samples at T={result['temperature']}, "
                 f"mean over seeds; base {result['base']})")
    fig.tight_layout()
    save_png(fig, path)


def save_result(result: dict[str, Any], stem: Path, plot_result: Any) -> None:
    """STEM.json (the result) and STEM.png (`plot_result(result, path)`), and print both paths."""
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2))
    plot_result(result, stem.with_suffix(".png"))
    print(f"json: {stem.with_suffix('.json')}\nplot: {stem.with_suffix('.png')}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", help="a finished bench/learning.py --out directory")
    ap.add_argument("--task", default="countdown",
                    help="the suite in that directory (integration, countdown, integration-harder; default: countdown)")
    ap.add_argument("--n", type=int, default=32, help="samples per problem: 1, 2, 4, ..., 64 (default 32)")
    ap.add_argument("--temperature", type=float, default=1.0, help="default 1.0")
    ap.add_argument("--workers", type=bench_cli.positive, default=2, help="verifier workers (default 2)")
    args = ap.parse_args(argv)
    import learning
    from precondition import KS

    from rungs.report import print_table

    if args.task not in learning.SUITES:
        raise SystemExit(f"arm_samples: --task {args.task!r}: expected one of {', '.join(learning.SUITES)}")
    if args.n not in KS:
        raise SystemExit(f"arm_samples: --n {args.n}: expected one of {', '.join(map(str, KS))}")
    out = Path(args.out)
    result = measure_arms(out, args.task, args.n, args.temperature, args.workers)
    n = args.n
    print_table(summarise(result), ["set", "arm", "seeds", "greedy", "pass@1", f"pass@{n}"],
                title=f"{args.task}: greedy and sampled accuracy of each arm ({n} samples at T={args.temperature}; "
                      f"base {result['base']})")
    save_result(result, out / "arm_samples", plot)
    return 0


if __name__ == "__main__":
    bench_cli.run(main, "arm_samples")
