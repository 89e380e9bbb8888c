"""WiSE-FT over a finished bench/learning.py run: greedy accuracy of every arm against alpha.

Why: on countdown every RL arm (GRPO or LADDER) turns over the problems the base answered right
greedily: it gains new ones and loses most of the old (bench/answer_shapes.py). Interpolating the
trained weights with the base's (Wortsman et al. 2022; rungs/train/wise_ft.py, `rungs wise-ft`)
is the standard training-free remedy. Every arm whose weights the run kept (GRPO, LADDER and the
random-reward and format-only controls) is merged with the run's base at each alpha and scored
greedily, as bench/learning.py scores it; alpha = 1 must reproduce that script's figure and
alpha = 0 the base's. Beside accuracy, how many of the base's greedily solved problems each arm
keeps and how many it gains, and the difference from base with a 95% bootstrap interval over
problems (paired; `paired_difference`).

Alpha is chosen on a --tune run (its dev pool); the chosen alpha is then read on the test run's
weights. A --tune run trains exactly the weights its test run does (the training never reads the
scored set; bench/learning.py's seeds fix the rest), so `--sets test` scores a dev run's weights on
the test set and fresh draw: the final look, once alpha is fixed.

    python bench/wise_ft.py bench/results-dev/countdown-200-roots20-plus1500 --task countdown
    python bench/wise_ft.py bench/results-countdown-roots20-200-plus1500 --task countdown --alphas 0.25 --name wise_ft_0.25

Both need the run's seed folders (its trained weights), which are not committed: run the
bench/learning.py command of that folder first. OUT/NAME.json and .png are overwritten; pass
--name to keep an earlier sweep.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/learning.py and its helpers
import bench_cli  # noqa: E402

TRAINED_ARMS = (("grpo_direct", "GRPO, no variants"), ("ladder", "LADDER"),
                ("random_reward", "control: random reward"), ("format_only", "control: format-only reward"))
DEFAULT_ALPHAS = (0.0, 0.25, 0.5, 0.75, 1.0)


def scored_sets(settings: dict[str, Any], suite: str, which: str) -> dict[str, list[Any]]:
    """The problem sets to score: the run's own ("auto": dev for a --tune run, else test and fresh),
    "dev", or "test" (the built-in test set and the fresh draw)."""
    from answer_shapes import run_sets

    if which == "auto":
        return run_sets(settings, suite)
    return run_sets({**settings, "tune": which == "dev"}, suite)


def solved_ids(policy: Any, task: Any, pool: Any, problems: list[Any]) -> set[str]:
    """The ids of the problems `policy` answers right greedily (96 new tokens, as bench/learning.py)."""
    from rungs.pipelines.ttrl import greedy_verdicts

    return {p.id for p, (_, verdict) in zip(problems, greedy_verdicts(policy, task, pool, problems, 96)) if verdict.correct}


def measure(out: Path, suite: str, alphas: list[float], which: str, base: str | None = None) -> dict[str, Any]:
    """{"rows": [{arm, seed, alpha, set, accuracy, kept, lost, gained, base_solved}], ...}. `base`
    overrides the base spec the run recorded (a run whose base checkpoint has since moved)."""
    import learning
    import torch
    from answer_shapes import run_settings, turnover
    from arm_samples import trained_finals

    from rungs.errors import UserError
    from rungs.policies import load_policy
    from rungs.tasks import get_task
    from rungs.train.wise_ft import wise_ft
    from rungs.verify.pool import VerifierPool

    settings = run_settings(out, script="wise_ft")
    task_name = learning.SUITES[suite][0]
    weights = trained_finals(out, suite, settings["seeds"], arms=TRAINED_ARMS, script="wise_ft")  # SystemExit if none
    sets = scored_sets(settings, suite, which)
    torch.set_num_threads(1)
    task = get_task(task_name)
    base_spec = base or settings.get("base", "tiny")
    try:
        base_policy = load_policy(base_spec, task=task_name, seed=0)
    except UserError as err:
        raise SystemExit(f"wise_ft: the run's base {base_spec!r}: {err} (a moved base can be named with --base)") from None
    base_dir = Path(base_policy.source)
    if not (base_dir / "model.safetensors").is_file():
        raise SystemExit(f"wise_ft: the run's base {base_spec!r} is not a checkpoint directory ({base_policy.source}); "
                         "expected a tiny checkpoint to interpolate with")
    rows: list[dict[str, Any]] = []
    with VerifierPool(task, workers=1) as pool, tempfile.TemporaryDirectory(prefix="wise-ft-") as scratch:
        base_solved = {name: solved_ids(base_policy, task, pool, problems) for name, problems in sets.items()}
        for arm, seed, final in weights:
            for alpha in alphas:
                merged = wise_ft(base_dir, final, alpha, Path(scratch) / "merged")
                policy = load_policy(f"tiny:{merged}", task=task_name, seed=0)
                for name, problems in sets.items():
                    solved = solved_ids(policy, task, pool, problems)
                    rows.append({"arm": arm, "seed": seed, "alpha": alpha, "set": name,
                                 "accuracy": len(solved) / len(problems), "base_solved": len(base_solved[name]),
                                 **turnover(base_solved[name], solved), "solved": sorted(solved)})
                    print(f"wise_ft: {arm} seed {seed} alpha {alpha:g} {name}: {rows[-1]['accuracy']:.3f} "
                          f"(kept {rows[-1]['kept']} of base's {len(base_solved[name])}, gained {rows[-1]['gained']})",
                          file=sys.stderr, flush=True)
    return {"suite": suite, "base": base_spec, "base_dir": str(base_dir), "run": str(out), "alphas": alphas,
            "sets": list(sets), "base_accuracy": {n: len(s) / len(sets[n]) for n, s in base_solved.items()},
            "problems": {n: [p.id for p in problems] for n, problems in sets.items()},
            "base_solved": {n: sorted(s) for n, s in base_solved.items()},
            "fresh_seed": learning.FRESH_SEED, "rows": rows}


def paired_difference(result: dict[str, Any], set_name: str, arm: str, alpha: float,
                      against: tuple[str, float] | None = None, resamples: int = 10_000) -> tuple[float, float, float]:
    """(mean, low, high): the accuracy difference of `arm` at `alpha` minus the base (or minus
    `against` = (arm, alpha)) on one set, with a 95% percentile bootstrap interval over problems
    (scipy.stats.bootstrap, seeded). Paired: each problem's score is its solve rate over the seeds,
    so the interval says how much the figure could move with another draw of problems of the same
    kind, which on an 80-problem set at 5-10% accuracy is most of the story. Needs rows with
    per-problem "solved" ids (written by `measure` since this function exists)."""
    import numpy as np
    from scipy.stats import bootstrap

    ids = result["problems"][set_name]

    def rate(arm_name: str | None, at: float | None) -> np.ndarray:
        if arm_name is None:
            solved = [set(result["base_solved"][set_name])]
        else:
            solved = [set(r["solved"]) for r in result["rows"]
                      if r["set"] == set_name and r["arm"] == arm_name and r["alpha"] == at]
        if not solved:
            raise ValueError(f"no rows for {arm_name} at alpha {at} on {set_name}")
        return np.array([sum(i in s for s in solved) / len(solved) for i in ids])

    diff = rate(arm, alpha) - (rate(*against) if against else rate(None, None))
    if not diff.any():
        return 0.0, 0.0, 0.0
    ci = bootstrap((diff,), np.mean, confidence_level=0.95, n_resamples=resamples, method="percentile",
                   random_state=np.random.default_rng(0)).confidence_interval
    return float(diff.mean()), float(ci.low), float(ci.high)


def summarise(result: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per (set, arm, alpha): accuracy mean ± std over seeds, per-seed values, kept/gained means."""
    from rungs.metrics import mean_std

    table = []
    for set_name in result["sets"]:
        for arm, label in TRAINED_ARMS:
            for alpha in result["alphas"]:
                rows = [r for r in result["rows"] if r["set"] == set_name and r["arm"] == arm and r["alpha"] == alpha]
                if not rows:
                    continue
                mean, std = mean_std([r["accuracy"] for r in rows])
                table.append({"set": set_name, "arm": label, "alpha": f"{alpha:g}", "seeds": len(rows),
                              "accuracy": f"{mean:.3f} ± {std:.3f}",
                              "per seed": " / ".join(f"{r['accuracy']:.3f}" for r in rows),
                              "kept / base": f"{sum(r['kept'] for r in rows) / len(rows):.1f} / {rows[0]['base_solved']}",
                              "gained": f"{sum(r['gained'] for r in rows) / len(rows):.1f}",
                              "vs base (95% CI)": _interval(result, set_name, arm, alpha)})
    return table


def _interval(result: dict[str, Any], set_name: str, arm: str, alpha: float) -> str:
    if "problems" not in result:  # a result written before per-problem ids were kept
        return "-"
    mean, low, high = paired_difference(result, set_name, arm, alpha)
    return f"{mean:+.3f} [{low:+.3f}, {high:+.3f}]"


def plot(result: dict[str, Any], path: Path) -> None:
    """Greedy accuracy against alpha per arm (mean ± std over seeds), one panel per set; base dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from rungs.metrics import mean_std
    from rungs.report import save_png

    names = result["sets"]
    fig, axes = plt.subplots(1, len(names), figsize=(max(9.0, 5.5 * len(names)), 4.2), sharey=True, squeeze=False)
    for ax, set_name in zip(axes[0], names):
        for arm, label in TRAINED_ARMS:
            points = []
            for alpha in result["alphas"]:
                rows = [r["accuracy"] for r in result["rows"] if r["set"] == set_name and r["arm"] == arm and r["alpha"] == alpha]
                if rows:
                    points.append((alpha, *mean_std(rows)))
            if points:
                xs, means, stds = zip(*points)
                ax.errorbar(xs, means, yerr=stds, marker="o", capsize=3, label=label)
        ax.axhline(result["base_accuracy"][set_name], color="grey", linestyle="--", label="base")
        ax.set_xlabel("alpha (0 = base weights, 1 = trained weights)")
        ax.set_title({"test": f"builtin:{result['suite']}-hard", "fresh": f"fresh draw (seed {result['fresh_seed']})"}.get(
            set_name, "dev pool (tuning only)"))
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("greedy accuracy")
    axes[0][0].legend(fontsize=8)
    fig.suptitle(f"{result['suite']}: greedy accuracy of WiSE-FT merges (1-alpha)*base + alpha*trained\n"
                 f"mean ± std over seeds; base {Path(result['base'].removeprefix('tiny:')).name}")
    fig.tight_layout()
    save_png(fig, path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", help="a finished bench/learning.py --out directory that kept its seed folders")
    ap.add_argument("--task", default="countdown",
                    help="the suite in that directory (integration, countdown, integration-harder; default: countdown)")
    ap.add_argument("--alphas", default=",".join(f"{a:g}" for a in DEFAULT_ALPHAS),
                    help="comma-separated alphas (0 = base, 1 = the trained arm)")
    ap.add_argument("--sets", default="auto", choices=("auto", "dev", "test"),
                    help="auto: the run's own sets (dev for a --tune run); test: the test set and fresh draw")
    ap.add_argument("--base", default=None, metavar="SPEC",
                    help="the base to merge with, if not the one the run recorded (e.g. a candidate since shipped)")
    ap.add_argument("--name", default="wise_ft", help="stem of the JSON and PNG written into OUT")
    args = ap.parse_args(argv)
    import learning

    from rungs.errors import UserError
    from rungs.report import print_table
    from rungs.train.wise_ft import check_alpha

    if args.task not in learning.SUITES:
        raise SystemExit(f"wise_ft: --task {args.task!r}: expected one of {', '.join(learning.SUITES)}")
    try:
        alphas = list(dict.fromkeys(check_alpha(float(a)) for a in args.alphas.split(",")))  # each alpha once
    except (ValueError, UserError):
        raise SystemExit(f"wise_ft: --alphas {args.alphas!r}: expected comma-separated numbers between -100 and 100 "
                         "such as 0,0.5,1") from None
    out = Path(args.out)
    result = measure(out, args.task, alphas, args.sets, args.base)
    print_table(summarise(result), ["set", "arm", "alpha", "seeds", "accuracy", "per seed", "kept / base", "gained",
                                    "vs base (95% CI)"],
                title=f"{args.task}: greedy accuracy of WiSE-FT merges with the base "
                      f"({', '.join(f'{n} base {a:.3f}' for n, a in result['base_accuracy'].items())})")
    stem = out / args.name
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2))
    plot(result, stem.with_suffix(".png"))
    print(f"json: {stem.with_suffix('.json')}\nplot: {stem.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    bench_cli.run(main, "wise_ft")
