"""Latest-weight averaging over a finished bench/learning.py run: greedy accuracy against the window.

Why: on integration the LADDER arm's greedy accuracy on the hard set sits just under the issue's 2x
base (1.94-1.98x over seeds), and its dev accuracy moves by a few points from one 50-step checkpoint
to the next. Averaging the latest weights of one run (LAWA, Kaddour 2022, "Stop wasting my time!";
the uniform mean of stochastic weight averaging, Izmailov et al. 2018) is the standard training-free
way to take out that step-to-step noise. It changes no training setting, so it is a way to read the
same runs, not another knob to tune on them.

For every trained arm (GRPO without variants, LADDER) and seed of a run made with `--snapshots N`,
the latest k snapshots (N steps apart; k = 1 is the final weights, which must reproduce
bench/learning.py's figure) are averaged uniformly, tensor by tensor, and scored greedily as
bench/learning.py scores them. Beside that, with --soup, the uniform average of the seeds' final
weights (a model soup, Wortsman et al. 2022): one model, so no spread over seeds.

k is chosen on a --tune run (its dev pool); the chosen k is then read on the same weights' test set
(`--sets test`): a --tune run trains exactly the weights its test run does (bench/wise_ft.py says why).

    python bench/learning.py --task integration --tune --core-only --train-limit 50 --depth 3 --width 5 \
        --ladder cooldown=10 --ladder explore=descend --ladder band_fraction=0.25 --steps 400 --seeds 3 \
        --snapshots 50 --out bench/results-dev/integration-400-roots50-descend-band0.25-snapshots
    python bench/weight_average.py bench/results-dev/integration-400-roots50-descend-band0.25-snapshots \
        --task integration --soup
    python bench/weight_average.py RUN --task integration --windows 1,K --sets test --name weight_average_test

The seed folders (the snapshots) are not committed: run the bench/learning.py command first.
OUT/NAME.json and .png are overwritten; pass --name to keep an earlier reading.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/learning.py and its helpers
import bench_cli  # noqa: E402

ARMS = (("grpo_direct", "GRPO, no variants"), ("ladder", "LADDER"))
DEFAULT_WINDOWS = (1, 2, 4, 8)
SOUP = "soup"  # the seed of a model-soup row


def snapshots(run: Path) -> list[tuple[int, Path]]:
    """(step, weights directory) of every snapshot of one run (RUN/checkpoints/step-K/policy, the
    layout `rungs ladder` keeps and bench/learning.py --snapshots writes), oldest first."""
    found = []
    for path in (run / "checkpoints").glob("step-*"):
        match = re.fullmatch(r"step-(\d+)", path.name)
        if match and (path / "policy" / "model.safetensors").is_file():
            found.append((int(match.group(1)), path / "policy"))
    return sorted(found)


def average_checkpoints(sources: list[Path], out: Path) -> Path:
    """Write into `out` the uniform mean of the checkpoints in `sources` (directories holding one
    model.safetensors of the same tensor names and shapes, float tensors averaged in float64 and
    cast back; other dtypes must be equal), with the other files (config, tokenizer) of the last
    source. Returns `out`. Raises ValueError naming the file whose tensors differ in names or shapes."""
    import torch
    from safetensors.torch import load_file, save_file

    if not sources:
        raise ValueError("no checkpoints to average")
    first = load_file(str(sources[-1] / "model.safetensors"))
    total = {name: t.to(torch.float64) if t.is_floating_point() else t for name, t in first.items()}
    for source in sources[:-1]:
        tensors = load_file(str(source / "model.safetensors"))
        if tensors.keys() != total.keys() or any(tensors[n].shape != total[n].shape for n in total):
            raise ValueError(f"{source / 'model.safetensors'}: tensor names or shapes differ from {sources[-1]}")
        for name, tensor in tensors.items():
            if tensor.is_floating_point():
                total[name] += tensor.to(torch.float64)
            elif not torch.equal(tensor, total[name]):
                raise ValueError(f"{source / 'model.safetensors'}: non-float tensor {name!r} differs from {sources[-1]}")
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(sources[-1], out)
    save_file({name: (t / len(sources)).to(first[name].dtype).contiguous() if t.is_floating_point() else t
               for name, t in total.items()}, str(out / "model.safetensors"))
    return out


def measure(out: Path, suite: str, windows: list[int], which: str, soup: bool) -> dict[str, Any]:
    """{"rows": [{arm, seed, k, steps, set, accuracy, solved, kept, lost, gained}], ...}: every arm
    and seed at every window k (the latest k snapshots averaged), and with `soup` the seeds' final
    weights averaged (seed "soup", k 1)."""
    import learning
    import torch
    from answer_shapes import run_settings, turnover
    from wise_ft import scored_sets, solved_ids

    from rungs.policies import load_policy
    from rungs.tasks import get_task
    from rungs.verify.pool import VerifierPool

    settings = run_settings(out, script="weight_average")
    task_name = learning.SUITES[suite][0]
    runs = {(arm, seed): snapshots(out / suite / f"{arm}-seed{seed}") for arm, _ in ARMS for seed in range(settings["seeds"])}
    if not any(runs.values()):
        raise SystemExit(f"weight_average: {out / suite}: no snapshots (expected ARM-seedN/checkpoints/step-K/policy: "
                         "a bench/learning.py run made with --snapshots N, whose seed folders a fresh clone lacks); "
                         "nothing written")
    sets = scored_sets(settings, suite, which)
    torch.set_num_threads(1)
    task = get_task(task_name)
    rows: list[dict[str, Any]] = []
    with VerifierPool(task, workers=1) as pool, tempfile.TemporaryDirectory(prefix="weight-average-") as scratch:
        base_solved = {name: solved_ids(load_policy(settings.get("base", "tiny"), task=task_name, seed=0), task, pool, p)
                       for name, p in sets.items()}

        def score(arm: str, seed: int | str, k: int, sources: list[Path], steps: list[int]) -> None:
            merged = average_checkpoints(sources, Path(scratch) / "merged")
            policy = load_policy(f"tiny:{merged}", task=task_name, seed=0)
            for name, problems in sets.items():
                solved = solved_ids(policy, task, pool, problems)
                rows.append({"arm": arm, "seed": seed, "k": k, "steps": steps, "set": name,
                             "accuracy": len(solved) / len(problems), **turnover(base_solved[name], solved),
                             "solved": sorted(solved)})
                print(f"weight_average: {arm} seed {seed} k {k} (steps {steps[0]}-{steps[-1]}) {name}: "
                      f"{rows[-1]['accuracy']:.3f}", file=sys.stderr, flush=True)

        for (arm, seed), found in runs.items():
            if not found:
                print(f"weight_average: {out / suite / f'{arm}-seed{seed}'}: no snapshots, skipped", file=sys.stderr)
                continue
            for k in windows:
                if k > len(found):
                    print(f"weight_average: {arm} seed {seed}: {len(found)} snapshots, fewer than k = {k}; skipped",
                          file=sys.stderr)
                    continue
                latest = found[-k:]
                score(arm, seed, k, [path for _, path in latest], [step for step, _ in latest])
        if soup:
            for arm, _ in ARMS:
                finals = [found[-1] for (name, _), found in runs.items() if name == arm and found]
                if len(finals) > 1:
                    score(arm, SOUP, 1, [path for _, path in finals], [step for step, _ in finals])
    return {"suite": suite, "run": str(out), "windows": windows, "sets": list(sets),
            "snapshot_steps": sorted({step for found in runs.values() for step, _ in found}),
            "base_accuracy": {n: len(s) / len(sets[n]) for n, s in base_solved.items()},
            "base_solved": {n: sorted(s) for n, s in base_solved.items()},
            "fresh_seed": learning.FRESH_SEED, "rows": rows}


def summarise(result: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per (set, arm, k) over the seeds (accuracy mean ± std, per seed, the change from k = 1),
    then each arm's soup row."""
    from rungs.metrics import mean_std

    table = []
    for set_name in result["sets"]:
        for arm, label in ARMS:
            final = [r["accuracy"] for r in result["rows"] if (r["set"], r["arm"], r["k"]) == (set_name, arm, 1)
                     and r["seed"] != SOUP]
            for k in result["windows"]:
                rows = [r for r in result["rows"] if (r["set"], r["arm"], r["k"]) == (set_name, arm, k) and r["seed"] != SOUP]
                if not rows:
                    continue
                mean, std = mean_std([r["accuracy"] for r in rows])
                table.append({"set": set_name, "arm": label, "weights": f"latest {k} averaged" if k > 1 else "final",
                              "seeds": len(rows), "accuracy": f"{mean:.3f} ± {std:.3f}",
                              "per seed": " / ".join(f"{r['accuracy']:.3f}" for r in rows),
                              "vs final": f"{mean - mean_std(final)[0]:+.3f}" if final and k > 1 else "-",
                              "x base": f"{mean / result['base_accuracy'][set_name]:.2f}"
                              if result["base_accuracy"][set_name] else "-"})
            for r in result["rows"]:
                if (r["set"], r["arm"], r["seed"]) == (set_name, arm, SOUP):
                    table.append({"set": set_name, "arm": label, "weights": f"soup of {len(r['steps'])} seeds' finals",
                                  "seeds": 1, "accuracy": f"{r['accuracy']:.3f}", "per seed": "-",
                                  "vs final": f"{r['accuracy'] - mean_std(final)[0]:+.3f}" if final else "-",
                                  "x base": f"{r['accuracy'] / result['base_accuracy'][set_name]:.2f}"
                                  if result["base_accuracy"][set_name] else "-"})
    return table


def decision(result: dict[str, Any], arm: str = "ladder", set_name: str = "dev") -> dict[str, Any] | None:
    """The pre-registered rule on a dev reading: the window k with `arm`'s best mean (the smallest
    on a tie), and whether it beats k = 1 by at least k = 1's std over the seeds. None without dev
    rows or without k = 1."""
    from rungs.metrics import mean_std

    by_k = {}
    for k in result["windows"]:
        values = [r["accuracy"] for r in result["rows"]
                  if (r["set"], r["arm"], r["k"]) == (set_name, arm, k) and r["seed"] != SOUP]
        if values:
            by_k[k] = mean_std(values)
    if 1 not in by_k:
        return None
    best = max(sorted(by_k), key=lambda k: by_k[k][0])
    gain = by_k[best][0] - by_k[1][0]
    return {"arm": arm, "set": set_name, "best_k": best, "best_mean": by_k[best][0], "final_mean": by_k[1][0],
            "final_std": by_k[1][1], "gain": gain, "passes": best != 1 and gain >= by_k[1][1]}


def plot(result: dict[str, Any], path: Path) -> None:
    """Greedy accuracy against the window k per arm (mean ± std over seeds), one panel per set; the
    soups as stars at k = 1; base dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from rungs.metrics import mean_std
    from rungs.report import save_png

    names = result["sets"]
    fig, axes = plt.subplots(1, len(names), figsize=(max(9.0, 5.5 * len(names)), 4.2), sharey=True, squeeze=False)
    for ax, set_name in zip(axes[0], names):
        for arm, label in ARMS:
            points = []
            for k in result["windows"]:
                values = [r["accuracy"] for r in result["rows"]
                          if (r["set"], r["arm"], r["k"]) == (set_name, arm, k) and r["seed"] != SOUP]
                if values:
                    points.append((k, *mean_std(values)))
            if points:
                xs, means, stds = zip(*points)
                line = ax.errorbar(xs, means, yerr=stds, marker="o", capsize=3, label=label)
                soups = [r["accuracy"] for r in result["rows"] if (r["set"], r["arm"], r["seed"]) == (set_name, arm, SOUP)]
                if soups:
                    ax.plot([1], soups, marker="*", markersize=12, linestyle="none", color=line[0].get_color(),
                            label=f"{label}: soup of the seeds' finals")
        ax.axhline(result["base_accuracy"][set_name], color="grey", linestyle="--", label="base")
        ax.set_xscale("log", base=2)
        ax.set_xticks(result["windows"], [str(k) for k in result["windows"]])
        ax.set_xlabel("k: latest snapshots averaged (1 = final weights)")
        ax.set_title({"test": f"builtin:{result['suite']}-hard", "fresh": f"fresh draw (seed {result['fresh_seed']})"}.get(
            set_name, "dev pool (tuning only)"))
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("greedy accuracy")
    axes[0][0].legend(fontsize=8)
    steps = result["snapshot_steps"]
    fig.suptitle(f"{result['suite']}: greedy accuracy of each run's latest k snapshots averaged (LAWA)\n"
                 f"mean ± std over seeds; snapshots at steps {steps[0]}..{steps[-1]}" if steps else "")
    fig.tight_layout()
    save_png(fig, path)


def windows_list(text: str) -> list[int]:
    """--windows: comma-separated positive integers, each once, in order."""
    try:
        values = [int(part) for part in text.split(",")]
    except ValueError:
        values = []
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: expected comma-separated positive integers such as 1,2,4,8")
    return sorted(set(values))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", help="a finished bench/learning.py --out directory made with --snapshots N")
    ap.add_argument("--task", default="integration",
                    help="the suite in that directory (integration, countdown, integration-harder; default: integration)")
    ap.add_argument("--windows", type=windows_list, default=list(DEFAULT_WINDOWS),
                    help="comma-separated k: the latest k snapshots averaged (default 1,2,4,8; 1 = the final weights)")
    ap.add_argument("--sets", default="auto", choices=("auto", "dev", "test"),
                    help="auto: the run's own sets (dev for a --tune run); test: the test set and fresh draw")
    ap.add_argument("--soup", action="store_true", help="also score each arm's seeds' final weights averaged (one model)")
    ap.add_argument("--name", default="weight_average", help="stem of the JSON and PNG written into OUT")
    args = ap.parse_args(argv)
    import learning

    from rungs.report import print_table

    if args.task not in learning.SUITES:
        raise SystemExit(f"weight_average: --task {args.task!r}: expected one of {', '.join(learning.SUITES)}")
    out = Path(args.out)
    result = measure(out, args.task, args.windows, args.sets, args.soup)
    result["decision"] = decision(result)
    print_table(summarise(result), ["set", "arm", "weights", "seeds", "accuracy", "per seed", "vs final", "x base"],
                title=f"{args.task}: greedy accuracy of the latest snapshots averaged "
                      f"({', '.join(f'{n} base {a:.3f}' for n, a in result['base_accuracy'].items())})")
    if result["decision"] is not None:
        d = result["decision"]
        print(f"rule (LADDER on dev): best k = {d['best_k']}, {d['best_mean']:.3f} against the final weights' "
              f"{d['final_mean']:.3f} ± {d['final_std']:.3f}: {d['gain']:+.3f}, "
              f"{'at least' if d['passes'] else 'under'} the std: {'read the test set' if d['passes'] else 'no test look'}")
    stem = out / args.name
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2))
    plot(result, stem.with_suffix(".png"))
    print(f"json: {stem.with_suffix('.json')}\nplot: {stem.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    bench_cli.run(main, "weight_average")
