"""Does the model get better? Every arm on builtin:integration-hard, same compute, mean +- std over seeds.

    python bench/learning.py                     # the full comparison (tens of minutes on 2 cores)
    python bench/learning.py --seeds 1 --limit 20 --steps 40    # a quick look
    python bench/learning.py --part trl          # only the GRPO step-time comparison with TRL

Arms (all label-free: the integration verifier differentiates the answer; no reference is read):
  base            the shipped tiny model (supervised on easy integrals only), greedy
  grpo_direct     GRPO on the hard *training* problems themselves, no variants (the paper's ablation)
  ladder          GRPO on symbolic easier variants of the same training problems, easiest first
  ladder_ttrl     LADDER, then test-time RL on each test problem's variants (weights rolled back)
  best_of_n       best-of-N with the verifier from the LADDER weights (where TTRL starts), N chosen so
                  that the tokens generated per problem match what TTRL spent

grpo_direct and ladder get the same number of GRPO steps, prompts per step and samples per
prompt. Test problems are never trained on except by TTRL, which sees each one without its label.
Tuning happened on builtin:integration-dev only. Results go to bench/results/learning.json and a
PNG; the table is printed.

Part 2 (--part trl, or both by default): one GRPO step of rungs' trainer with the hf policy on a
tiny local Qwen2 config against TRL's GRPOTrainer with matched settings, in the same process run.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", choices=("all", "learning", "trl"), default="all")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--limit", type=int, default=None, help="first N test problems (default: all 80)")
    ap.add_argument("--train-problems", default="builtin:integration-train")
    ap.add_argument("--train-limit", type=int, default=None)
    ap.add_argument("--steps", type=int, default=100, help="GRPO steps for grpo_direct and ladder")
    ap.add_argument("--ttrl-steps", type=int, default=12)
    ap.add_argument("--check-every", type=int, default=4)
    ap.add_argument("--depth", type=int, default=2)
    ap.add_argument("--width", type=int, default=4)
    ap.add_argument("--workers", type=int, default=1, help="verifier workers per seed process")
    ap.add_argument("--curriculum", default="mixed", choices=("easiest_first", "mixed"),
                    help="mixed was better on the dev set (easiest_first starved: its window held only unsolvable variants)")
    ap.add_argument("--grpo", action="append", default=[], metavar="KEY=VALUE", help="override a GRPO setting")
    ap.add_argument("--parallel", type=int, default=3, help="seeds run at once, each in its own process")
    ap.add_argument("--only-seed", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--out", default=str(HERE / "results"))
    return ap.parse_args(argv)


def mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def greedy_accuracy(policy: Any, task: Any, pool: Any, problems: list[Any]) -> float:
    from rungs.pipelines.ttrl import greedy_verdicts

    verdicts = greedy_verdicts(policy, task, pool, problems, 96)
    return sum(v.correct for _, v in verdicts) / len(verdicts)


def best_of_n_accuracy(policy: Any, task: Any, pool: Any, problems: list[Any], n: int, seed: int) -> tuple[float, float]:
    """(accuracy, mean tokens per problem) of best-of-n with the verifier as the selector."""
    from rungs.policies.base import SamplingParams

    solved, tokens = 0, 0
    for index, problem in enumerate(problems):
        prompt = task.prompt(problem, policy.prompt_style)
        hit = False
        for start in range(0, n, 256):  # samples in chunks: N can be thousands (TTRL's token budget)
            k = min(256, n - start)
            sampling = SamplingParams(temperature=1.0, max_new_tokens=64, seed=seed * 1_000_003 + index * 7919 + start)
            (group,) = policy.generate([prompt], n=k, sampling=sampling)
            tokens += sum(c.num_tokens for c in group)
            if any(v.correct for v in pool.verify([problem] * k, [c.text for c in group])):
                hit = True
                break  # best-of-N with a verifier stops at the first verified sample
        solved += hit
    return solved / len(problems), tokens / len(problems)


ARMS = ("base", "grpo_direct", "ladder", "ladder_ttrl", "ever_solved_ttrl", "best_of_n_ladder")


def grpo_settings(args: argparse.Namespace, seed: int) -> Any:
    """The GRPO settings every trained arm shares (tuned on builtin:integration-dev only)."""
    import yaml

    from rungs.train.grpo_config import TINY_GRPO_DEFAULTS, GRPOConfig

    overrides = {}
    for item in args.grpo:
        key, _, value = item.partition("=")
        overrides[key] = yaml.safe_load(value)
    # The tiny model's defaults (rungs/train/grpo_config.py; learning rate: the policy's own, 1e-4).
    return GRPOConfig(**{**TINY_GRPO_DEFAULTS, **overrides, "seed": seed, "max_steps": args.steps,
                         "eval_on_start": False})


def run_seed(args: argparse.Namespace, seed: int) -> dict[str, Any]:
    """Every arm for one seed; returns {arm: accuracy, ...} (also written to seed-S.json)."""
    import torch

    from rungs.data import load_problems
    from rungs.pipelines.ladder import LadderConfig, run_ladder
    from rungs.pipelines.ttrl import TTRLConfig, run_ttrl
    from rungs.policies import load_policy
    from rungs.runs import read_jsonl
    from rungs.tasks import get_task
    from rungs.train.grpo import GRPOTrainer
    from rungs.verify.pool import VerifierPool

    torch.set_num_threads(1)
    out = Path(args.out)
    task = get_task("integration")
    test = load_problems("builtin:integration-hard", limit=args.limit)
    train = load_problems(args.train_problems, limit=args.train_limit)
    grpo = grpo_settings(args, seed)
    # Each arm's figure is saved as soon as it exists, and finished LADDER and TTRL runs are
    # reused, so a killed seed process picks up where it stopped.
    partial = out / f"seed-{seed}.partial.json"
    row: dict[str, Any] = json.loads(partial.read_text()) if partial.exists() else {"seed": seed}

    def keep(key: str, value: Any) -> None:
        row[key] = value
        partial.write_text(json.dumps(row, indent=2))

    t0 = time.perf_counter()
    with VerifierPool(task, workers=args.workers) as pool:
        if "base" not in row:
            keep("base", greedy_accuracy(load_policy("tiny", task="integration"), task, pool, test))
        # -- GRPO directly on the hard training problems (no variants): the paper's ablation ----
        if "grpo_direct" not in row:
            direct = load_policy("tiny", task="integration", seed=seed)
            GRPOTrainer(direct, task, grpo, pool=pool, problems=train, progress=False).train()
            keep("grpo_direct", greedy_accuracy(direct, task, pool, test))
        # -- LADDER: the same budget on variants of the same training problems -------------------
        ladder_dir = out / f"ladder-seed{seed}"
        if (ladder_dir / "summary.json").exists() and (ladder_dir / "final").is_dir():
            ladder = load_policy(f"tiny:{ladder_dir / 'final'}", task="integration", seed=seed)
        else:
            ladder = load_policy("tiny", task="integration", seed=seed)
            run_ladder(LadderConfig(problems=args.train_problems, limit=args.train_limit, eval_problems=None,
                                    depth=args.depth, width=args.width, curriculum=args.curriculum,
                                    out=str(ladder_dir)),
                       grpo, policy=ladder, task=task, pool=pool, echo=False,
                       resume_dir=str(ladder_dir) if (ladder_dir / "config.yaml").exists() else None)
        keep("ladder", greedy_accuracy(ladder, task, pool, test))
        # -- LADDER + TTRL ------------------------------------------------------------------------
        ttrl_dir = out / f"ttrl-seed{seed}"
        ttrl = run_ttrl(TTRLConfig(problems="builtin:integration-hard", limit=args.limit, steps=args.ttrl_steps,
                                   check_every=args.check_every, out=str(ttrl_dir)),
                        grpo, policy=ladder, task=task, pool=pool, echo=False,
                        resume_dir=str(ttrl_dir) if (ttrl_dir / "config.yaml").exists() else None)
        row["ladder_ttrl"] = ttrl["accuracy_after"]
        row["ever_solved_ttrl"] = ttrl["ever_solved_during_training"]
        row["ttrl_tokens_per_problem"] = ttrl["tokens_generated"] / len(test)
        # -- best-of-N at TTRL's token budget -------------------------------------------------------
        lengths = [e["completions/mean_length"] for e in read_jsonl(out / f"ttrl-seed{seed}" / "events.jsonl")]
        n = max(1, math.ceil(row["ttrl_tokens_per_problem"] / max(1.0, statistics.fmean(lengths) if lengths else 16.0)))
        row["best_of_n"] = n
        if "best_of_n_ladder" not in row:
            keep("best_of_n_ladder", best_of_n_accuracy(ladder, task, pool, test, n, seed)[0])
    row["seconds"] = time.perf_counter() - t0
    (out / f"seed-{seed}.json").write_text(json.dumps(row, indent=2))
    return row


def run_learning(args: argparse.Namespace) -> dict[str, Any]:
    """Seeds run as parallel subprocesses (each with its own verifier pool); then aggregated."""
    import subprocess

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    base_cmd = [sys.executable, __file__, "--part", "learning", "--out", str(out)]
    for key in ("limit", "train_problems", "train_limit", "steps", "ttrl_steps", "check_every", "depth", "width",
                "workers", "curriculum"):
        value = getattr(args, key)
        if value is not None:
            base_cmd += [f"--{key.replace('_', '-')}", str(value)]
    for item in args.grpo:
        base_cmd += ["--grpo", item]
    pending = list(range(args.seeds))
    running: list[tuple[int, Any]] = []
    while pending or running:
        while pending and len(running) < args.parallel:
            seed = pending.pop(0)
            log = open(out / f"seed-{seed}.log", "w")  # noqa: SIM115 - closed when the child ends
            running.append((seed, subprocess.Popen([*base_cmd, "--only-seed", str(seed)], stdout=log, stderr=subprocess.STDOUT)))
        time.sleep(2)
        for seed, proc in list(running):
            if proc.poll() is not None:
                running.remove((seed, proc))
                if proc.returncode != 0:
                    raise SystemExit(f"seed {seed} failed; see {out / f'seed-{seed}.log'}")
                print(f"seed {seed} done", flush=True)
    rows = [json.loads((out / f"seed-{seed}.json").read_text()) for seed in range(args.seeds)]
    per_seed = {arm: [r[arm] for r in rows] for arm in ARMS}
    result = {"test_problems": args.limit or 80, "seeds": args.seeds, "settings": vars(args),
              "grpo": {k: v for k, v in vars(grpo_settings(args, 0)).items()},
              "per_seed": per_seed, "extra": {"best_of_n": [r["best_of_n"] for r in rows],
                                              "ttrl_tokens_per_problem": [r["ttrl_tokens_per_problem"] for r in rows],
                                              "seconds": [r["seconds"] for r in rows]},
              "summary": {k: mean_std(v) for k, v in per_seed.items()}}
    (out / "learning.json").write_text(json.dumps(result, indent=2))
    plot(out / "learning.png", result)
    return result


def plot(path: Path, result: dict[str, Any]) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from rungs.report import save_png

    arms = ["base", "grpo_direct", "ladder", "ladder_ttrl", "best_of_n_ladder"]
    fig = Figure(figsize=(8, 4.2), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    means = [result["summary"][a][0] for a in arms]
    stds = [result["summary"][a][1] for a in arms]
    ax.bar(arms, means, yerr=stds, capsize=4, color=["#8c8c8c", "#dd8452", "#4c72b0", "#55a868", "#937860"])
    ax.set_ylabel("accuracy on builtin:integration-hard")
    ax.set_ylim(0, 1)
    ax.set_title(f"tiny model, {result['test_problems']} hard integrals, mean ± std over {result['seeds']} seeds")
    ax.tick_params(axis="x", labelrotation=20)
    ax.grid(True, axis="y", alpha=0.3)
    save_png(fig, path)


def print_learning(result: dict[str, Any]) -> None:
    from rungs.report import fmt_mean_std, print_table

    names = {
        "base": "base (greedy)",
        "grpo_direct": "GRPO on the hard problems, no variants",
        "ladder": "LADDER",
        "ladder_ttrl": "LADDER + TTRL (final greedy answer)",
        "ever_solved_ttrl": "  (ever solved during TTRL: looser count)",
        "best_of_n_ladder": f"best-of-N (verifier) from LADDER weights at TTRL's tokens, N={result['extra']['best_of_n']}",
    }
    rows = [{"arm": names[k], "accuracy": fmt_mean_std(*result["summary"][k])} for k in names]
    print_table(rows, ["arm", "accuracy"],
                title=f"bench/learning.py: {result['test_problems']} hard integrals, {result['seeds']} seeds")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.only_seed is not None:
        print(json.dumps(run_seed(args, args.only_seed)))
        return 0
    if args.part in ("all", "learning"):
        print_learning(run_learning(args))
    if args.part in ("all", "trl"):
        sys.path.insert(0, str(HERE))
        from trl_step import main as trl_main  # bench/trl_step.py

        trl_main([])
    return 0


if __name__ == "__main__":
    sys.exit(main())
