"""Test-time training on ARC (MARC, Akyurek et al. 2024) with the embedded tiny model: the ablations.

    python bench/arc.py                              # the README's run (--limit 20, 16 TTT steps)
    python bench/arc.py --limit 5 --steps 4 --out runs/arc-quick   # a quick look (not over bench/results)
    python bench/arc.py ... --runs DIR               # resume the arms' runs in DIR (only under the same settings)

On the ARC-AGI-1 *evaluation* test inputs whose prompt and answer fit the tiny model's context
(the shipped tiny-arc checkpoint: 512 tokens; the script prints how many of the 419 do), the first
--limit of them, four arms, all scored by ARC's pass@2 (exact match, two attempts):

  base greedy           the pretrained model, one greedy answer (pass@2 = pass@1: one attempt)
  aug vote, no TTT      greedy under --infer-augmentations augmentations, mapped back, hierarchical
                        vote, top 2
  TTT + aug vote        per-problem fine-tuning (--steps) on leave-one-out tasks x
                        --train-augmentations augmentations, then the augmented vote; rolled back
  TTT, no aug           the same fine-tuning on the leave-one-out tasks alone, one greedy answer

The goal stated in the issue: TTT + voting >= 2x the no-TTT baseline (the paper's direction:
18.3% -> 47.1% with a 1B model). Time and tokens per problem are measured per arm; tokens
generated are answer tokens, tokens trained are prompt + target tokens through the model.
Results: bench/results/arc.json and arc.png; each arm's run directory under --runs.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))
import bench_cli  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--policy", default="tiny:arc", help="a tiny checkpoint (default: the shipped tiny-arc)")
    ap.add_argument("--problems", default="builtin:arc1-evaluation", help="default builtin:arc1-evaluation")
    ap.add_argument("--limit", type=bench_cli.int_at_least(1, zero_means="all of them"), default=20,
                    help="first N fitting test inputs (default 20; 0: all of them)")
    ap.add_argument("--steps", type=bench_cli.positive, default=16, help="TTT optimizer steps per problem (default 16)")
    ap.add_argument("--batch-size", type=bench_cli.positive, default=8, help="TTT batch size (default 8)")
    ap.add_argument("--learning-rate", type=float, default=None, help="default: rungs ttt's (3e-3 for tiny)")
    ap.add_argument("--demo-loss", action=argparse.BooleanOptionalAction, default=True,
                    help="MARC's demonstration loss: TTT also trains on the demonstration outputs in each prompt "
                         "(--no-demo-loss: the held-out answer alone)")
    ap.add_argument("--train-augmentations", type=bench_cli.non_negative, default=7,
                    help="augmentations of each leave-one-out task TTT trains on (default 7)")
    ap.add_argument("--infer-augmentations", type=bench_cli.positive, default=8,
                    help="augmentations voted over at inference (default 8)")
    ap.add_argument("--threads", type=bench_cli.positive, default=1, help="torch threads (default 1)")
    ap.add_argument("--seed", type=int, default=0, help="default 0")
    ap.add_argument("--runs", default=None,
                    help="where the arms' run directories go (default runs/bench-arc-<time>); an existing one is "
                         "resumed, only under the settings it was made with")
    ap.add_argument("--out", default=str(HERE / "results"), help="results folder (default bench/results)")
    ap.add_argument("--arms", type=bench_cli.names_list(("base", "vote", "ttt_vote", "ttt_plain"), "arms"),
                    default="base,vote,ttt_vote,ttt_plain", help="comma-separated subset of the arms (default: all four)")
    return ap.parse_args(argv)


ARMS = {
    # name: (label, steps?, train augmentations?, inference augmentations?)
    "base": ("base greedy", False, False, False),
    "vote": ("aug vote, no TTT", False, False, True),
    "ttt_vote": ("TTT + aug vote", True, True, True),
    "ttt_plain": ("TTT, no aug", True, False, False),
}


def arm_config(args: argparse.Namespace, arm: str, runs: Path) -> Any:
    """The TTTConfig of one arm."""
    from rungs.pipelines.ttt import TTTConfig

    label, ttt, train_aug, infer_aug = ARMS[arm]
    return TTTConfig(problems=args.problems, policy=args.policy, out=str(runs / arm),
                     steps=args.steps if ttt else 0, batch_size=args.batch_size,
                     learning_rate=args.learning_rate, demo_loss=args.demo_loss,
                     train_augmentations=args.train_augmentations if train_aug else 0,
                     infer_augmentations=args.infer_augmentations if infer_aug else 1,
                     seed=args.seed)


# the TTTConfig settings arc.py sets: a run in --runs is resumed only when each equals what it stored
COMPARED = ("problems", "policy", "steps", "batch_size", "learning_rate", "demo_loss", "train_augmentations",
            "infer_augmentations", "seed")


def check_resume(config: Any, run: Path) -> None:
    """Raises SystemExit (one line naming the run and the setting) when RUN holds a `rungs ttt` run
    made with other settings than `config`: its outcomes would be mixed with this command's (the
    check `rungs ttt --resume` makes, with this script's flags named)."""
    import yaml

    from rungs.runs import absolute_setting

    config_path = run / "config.yaml"
    if not config_path.is_file():
        return
    saved = (yaml.safe_load(config_path.read_text()) or {}).get("ttt") or {}
    for key in COMPARED:
        value = getattr(config, key)
        if key in saved and absolute_setting(key, saved[key]) != absolute_setting(key, value):
            flag = "--" + key.replace("_", "-")
            raise SystemExit(f"arc: {run} was made with {key}={saved[key]!r}, this command's {flag} gives {value!r}; "
                             "give the same settings to resume it, or another --runs")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    runs = Path(args.runs or f"runs/bench-arc-{time.strftime('%Y%m%d-%H%M%S')}")
    arms = list(args.arms) if isinstance(args.arms, list) else [a for a in args.arms.split(",") if a]
    for arm in arms:  # every arm before anything loads or runs: a refused resume costs nothing
        check_resume(arm_config(args, arm, runs), runs / arm)
    import torch

    from rungs.data import load_problems
    from rungs.pipelines.ttt import run_ttt, select_problems
    from rungs.policies import load_policy
    from rungs.report import print_table
    from rungs.tasks import get_task
    from rungs.verify.pool import VerifierPool

    torch.set_num_threads(args.threads)
    task = get_task("arc")
    policy = load_policy(args.policy, task="arc", seed=args.seed)
    everything = load_problems(args.problems)
    fitting = select_problems(policy, everything, only_fitting=True, limit=None)
    problems = fitting[:args.limit] if args.limit else fitting
    ctx = policy.model.cfg.max_seq_len
    print(f"{args.problems}: {len(fitting)} of {len(everything)} test inputs fit the {ctx}-token context "
          f"({len({p.meta['task_id'] for p in fitting})} tasks); running the first {len(problems)}")
    results: dict[str, Any] = {"problems": args.problems, "fitting": len(fitting), "total": len(everything),
                               "context": ctx, "ids": [p.id for p in problems], "settings": vars(args), "arms": {}}
    with VerifierPool(task, workers=1, timeout_s=5.0) as pool:
        for arm in arms:
            label = ARMS[arm][0]
            config = arm_config(args, arm, runs)
            t0 = time.perf_counter()
            resume = str(runs / arm) if (runs / arm / "config.yaml").exists() else None  # rerun with --runs DIR to resume
            summary = run_ttt(config, resume_dir=resume, policy=policy, task=task, pool=pool, echo=False, problems=problems)
            summary["wall_s"] = time.perf_counter() - t0
            results["arms"][arm] = {"label": label, **summary}
            _write(args, results)
            print(f"  {label}: pass@2 {summary['pass@2']:.3f} ({len(summary['solved_ids'])}/{len(problems)}) "
                  f"in {summary['wall_s']:.0f} s")
    rows = []
    for s in results["arms"].values():
        rows.append({"arm": s["label"], "pass@2": s["pass@2"], "solved": f"{len(s['solved_ids'])}/{s['problems']}",
                     "top-1": s["top1"], "s/problem": f"{s['seconds_per_problem']:.1f}",
                     "tokens gen/problem": f"{s['tokens_generated_per_problem']:.0f}",
                     "tokens trained/problem": f"{s['tokens_trained_per_problem']:.0f}"})
    print()
    print_table(rows, ["arm", "pass@2", "solved", "top-1", "s/problem", "tokens gen/problem", "tokens trained/problem"],
                title=f"ARC-AGI-1 evaluation, {len(problems)} fitting test inputs, tiny model ({args.policy})")
    arms = results["arms"]
    if "base" in arms and "ttt_vote" in arms:
        base, best = arms["base"]["pass@2"], arms["ttt_vote"]["pass@2"]
        ratio = best / base if base > 0 else None
        results["ratio_ttt_vote_over_base"] = ratio
        verdict = "met" if (ratio is not None and ratio >= 2) or (base == 0 and best > 0) else "not met"
        shown = f"{ratio:.2f}x" if ratio is not None else ("inf (base 0)" if best > 0 else "n/a (both 0)")
        print(f"\nTTT + aug vote over base greedy: {shown}; goal >= 2x: {verdict}")
        results["goal"] = verdict
    out = _write(args, results)
    plot(out / "arc.png", results)
    print(f"wrote {out / 'arc.json'}, {out / 'arc.png'}")
    return results


def _write(args: argparse.Namespace, results: dict[str, Any]) -> Path:
    """results so far to OUT/arc.json (after every arm: a killed bench keeps what it measured)."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "arc.json").write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    return out


def plot(path: Path, results: dict[str, Any]) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from rungs.report import save_png

    arms = results["arms"]
    fig = Figure(figsize=(8, 4), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    left, right = fig.subplots(1, 2)
    labels = [a["label"] for a in arms.values()]
    values = [a["pass@2"] for a in arms.values()]
    left.bar(labels, values, color=["#8c8c8c", "#4c72b0", "#55a868", "#dd8452"][:len(labels)])
    for x, v in enumerate(values):
        left.text(x, v + 0.005, f"{v:.2f}", ha="center", fontsize=9)
    left.set_ylim(0, max(0.1, max(values, default=0) * 1.3))
    left.set_ylabel("pass@2")
    left.set_title(f"{len(results['ids'])} ARC-AGI-1 eval inputs")
    left.tick_params(axis="x", labelrotation=20, labelsize=8)
    right.bar(labels, [a["seconds_per_problem"] for a in arms.values()], color="#999999")
    right.set_ylabel("seconds per problem")
    right.tick_params(axis="x", labelrotation=20, labelsize=8)
    save_png(fig, path)


if __name__ == "__main__":
    bench_cli.run(main, "arc")
