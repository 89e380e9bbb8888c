"""Which training signal? Every reward arm with the same GRPO budget on builtin:integration-dev.

    python bench/rewards.py                                  # 6 arms x 3 seeds (4 min on an idle core, ~1 h on busy ones)
    python bench/rewards.py --seeds 1 --steps 3 --limit 4 --out runs/rewards-quick   # a quick look (not over bench/results)
    python bench/rewards.py --policy tiny:PATH --task integration --problems FILE.jsonl   # your own model

Arms (each reward alone, weight 1; rungs/rewards): verifier (the integration verifier, itself
label-free), majority_vote (TTRL: vote on the 16 trained samples), self_certainty (INTUITOR),
neg_entropy (entropy minimisation), random (Bernoulli(0.5)) and format_only (an answer can be
extracted): the last two are the controls of Shao et al. 2025 -- a lift means little unless it
beats them. Every arm starts from the same weights, trains on the same problems (the first
--limit of the problem file: test-time training, no label is read) for --steps GRPO steps with the
same settings (the tiny model's, rungs/commands/ttrl.py, with 4 prompts x 8 samples a step and
no dynamic resampling, so that every arm generates the same tokens), and is evaluated greedily every
--eval-steps steps. Besides the last weights, each run keeps the best ones by a *label-free*
criterion: eval_vote_agreement (the share of the majority answer among --vote-samples samples per
problem, TTRL-style); the table shows the greedy accuracy of both and the step of the best.

There is no goal on who wins: this is a side-by-side a user can rerun on their own model.
Results: bench/results/rewards.json, bench/results/rewards.png (accuracy against step per arm);
the table is printed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # bench_cli beside this file, also when loaded by path (the tests)
    sys.path.insert(0, str(HERE))
import bench_cli  # noqa: E402

ARMS = ("verifier", "majority_vote", "self_certainty", "neg_entropy", "random", "format_only")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arms", default=",".join(ARMS), help="comma-separated reward specs (one arm each)")
    ap.add_argument("--seeds", type=bench_cli.positive, default=3, help="seeds per arm (default 3)")
    ap.add_argument("--task", default="integration", help="default integration")
    ap.add_argument("--problems", default="builtin:integration-dev", help="default builtin:integration-dev")
    ap.add_argument("--limit", type=bench_cli.positive, default=8,
                    help="first N problems (trained on and evaluated on; default 8)")
    ap.add_argument("--policy", default="tiny:rungs/checkpoints/tiny-integration",
                    help="default tiny:rungs/checkpoints/tiny-integration")
    ap.add_argument("--steps", type=bench_cli.positive, default=20, help="GRPO steps per arm (default 20)")
    ap.add_argument("--eval-steps", type=bench_cli.positive, default=5, help="greedy evaluation every N steps (default 5)")
    ap.add_argument("--vote-samples", type=bench_cli.positive, default=4,
                    help="samples per problem for eval_vote_agreement (default 4)")
    ap.add_argument("--grpo", action="append", default=[], metavar="KEY=VALUE", help="override a GRPO setting")
    ap.add_argument("--workers", type=bench_cli.positive, default=1, help="verifier workers (default 1)")
    ap.add_argument("--out", default=str(HERE / "results"), help="results folder (default bench/results)")
    return ap.parse_args(argv)


def grpo_settings(args: argparse.Namespace, arm: str, seed: int) -> Any:
    import yaml

    from rungs.commands.ttrl import TINY_GRPO_DEFAULTS
    from rungs.config import from_dict
    from rungs.train.grpo_config import GRPOConfig

    overrides = {}
    for item in args.grpo:
        key, _, value = item.partition("=")
        overrides[key] = yaml.safe_load(value)
    # Every arm generates exactly the same samples per step: no dynamic resampling (whose extra
    # rounds depend on the reward), and smaller groups than the tiny defaults, for 2-core CPUs.
    budget = {"prompts_per_step": 4, "num_generations": 8, "max_completion_length": 48, "dynamic_sampling": "off"}
    return from_dict(GRPOConfig, {**TINY_GRPO_DEFAULTS, **budget, **overrides, "seed": seed, "max_steps": args.steps,
                                  "eval_on_start": True, "eval_steps": args.eval_steps, "save_steps": 0,
                                  "reward_funcs": [arm], "reward_weights": [1.0], "eval_vote_samples": args.vote_samples,
                                  "metric_for_best_model": "eval_vote_agreement"}, source="--grpo")


def run_one(args: argparse.Namespace, arm: str, seed: int) -> dict[str, Any]:
    """One arm, one seed: train, and return the eval curve, last and best (also rewards-ARM-SEED.json)."""
    import torch

    from rungs.data import load_problems
    from rungs.policies import load_policy
    from rungs.tasks import get_task
    from rungs.train.grpo import GRPOTrainer
    from rungs.verify.pool import VerifierPool

    torch.set_num_threads(1)
    task = get_task(args.task)
    problems = load_problems(args.problems, limit=args.limit)
    policy = load_policy(args.policy, task=args.task, seed=seed)
    t0 = time.perf_counter()
    with VerifierPool(task, workers=args.workers) as pool:
        trainer = GRPOTrainer(policy, task, grpo_settings(args, arm, seed), pool, problems=problems,
                              eval_problems=problems, progress=False)
        summary = trainer.train()
    evals = [e for e in trainer.history if e.get("type") == "eval"]
    train = [e for e in trainer.history if e.get("type") == "train"]
    best = summary.get("best") or {}
    return {
        "arm": arm, "seed": seed,
        "curve": [(e["step"], e["eval_accuracy"], e.get("eval_vote_agreement")) for e in evals],
        "accuracy_start": evals[0]["eval_accuracy"], "accuracy_last": evals[-1]["eval_accuracy"],
        "accuracy_best": best.get("eval_accuracy"), "best_step": best.get("step"),
        "train_accuracy_last": train[-1]["accuracy"] if train else None,
        "answer_entropy_last": train[-1].get("answers/entropy") if train else None,
        "seconds": time.perf_counter() - t0,
    }


def _run_settings(args: argparse.Namespace) -> dict[str, Any]:
    """What a saved run must match to be reused."""
    keys = ("task", "problems", "limit", "policy", "steps", "eval_steps", "vote_samples", "grpo")
    return {k: getattr(args, k) for k in keys}


def mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def run_all(args: argparse.Namespace) -> dict[str, Any]:
    """Each (arm, seed) in turn, in this process (CPU is scarce: one start-up, one run at a time);
    each finished run is saved at once and reused by a rerun, so a killed bench resumes."""
    out = Path(args.out)
    (out / "rewards").mkdir(parents=True, exist_ok=True)
    arms = [a for a in args.arms.split(",") if a]
    runs: dict[str, list[dict[str, Any]]] = {a: [] for a in arms}
    for seed in range(args.seeds):  # seed-major: after each seed, every arm has a run
        for arm in arms:
            path = out / "rewards" / f"{arm.replace(':', '_')}-seed{seed}.json"
            row = json.loads(path.read_text()) if path.exists() else None
            if row is None or row.get("settings") != _run_settings(args):  # other settings: run again
                row = {**run_one(args, arm, seed), "settings": _run_settings(args)}
                path.write_text(json.dumps(row) + "\n")
                print(f"{arm} seed {seed} done ({row['seconds']:.0f} s)", flush=True)
            else:
                print(f"{arm} seed {seed}: reused {path} (same settings)", flush=True)
            runs[arm].append(row)
    summary = {}
    for arm, rows in runs.items():
        best_steps = [r["best_step"] for r in rows if r["best_step"] is not None]
        summary[arm] = {
            "accuracy_start": mean_std([r["accuracy_start"] for r in rows]),
            "accuracy_last": mean_std([r["accuracy_last"] for r in rows]),
            "accuracy_best": mean_std([r["accuracy_best"] for r in rows if r["accuracy_best"] is not None]),
            "best_step": mean_std(best_steps) if best_steps else None,
        }
    settings = dict(vars(args))
    result = {"settings": settings, "grpo": vars(grpo_settings(args, arms[0], 0)), "runs": runs, "summary": summary}
    (out / "rewards.json").write_text(json.dumps(result, indent=2) + "\n")
    plot(out / "rewards.png", result)
    return result


def plot(path: Path, result: dict[str, Any]) -> None:
    """Greedy accuracy against step, mean over seeds, one line per arm."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from rungs.report import save_png

    fig = Figure(figsize=(7.5, 4.2), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for arm, rows in result["runs"].items():
        steps = [s for s, _, _ in rows[0]["curve"]]
        means = [statistics.fmean(r["curve"][i][1] for r in rows) for i in range(len(steps))]
        ax.plot(steps, means, marker="o", label=arm, linestyle="--" if arm in ("random", "format_only") else "-")
    s = result["settings"]
    ax.set_xlabel("GRPO step")
    ax.set_ylabel(f"greedy accuracy ({s['problems']}, first {s['limit']})")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(f"one reward per arm, mean over {s['seeds']} seeds (dashed: controls)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    save_png(fig, path)


def print_result(result: dict[str, Any]) -> str:
    from rungs.report import fmt_mean_std, print_table

    rows = []
    for arm, s in result["summary"].items():
        rows.append({"reward": arm, "start": fmt_mean_std(*s["accuracy_start"]), "last": fmt_mean_std(*s["accuracy_last"]),
                     "best (label-free pick)": fmt_mean_std(*s["accuracy_best"]),
                     "best step": f"{s['best_step'][0]:.1f} ± {s['best_step'][1]:.1f}" if s["best_step"] else "-"})
    st = result["settings"]
    return print_table(rows, ["reward", "start", "last", "best (label-free pick)", "best step"],
                       title=f"bench/rewards.py: greedy accuracy, {st['problems']} (first {st['limit']}), "
                             f"{st['steps']} GRPO step{'' if st['steps'] == 1 else 's'}, {st['seeds']} seed{'' if st['seeds'] == 1 else 's'}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print_result(run_all(args))
    return 0


if __name__ == "__main__":
    bench_cli.run(main, "rewards")
