"""Does the model get better? Every arm on builtin:integration-hard, same compute, mean +- std over seeds.

    python bench/learning.py                     # the full comparison (tens of minutes on 2 cores)
    python bench/learning.py --seeds 1 --limit 20 --steps 40    # a quick look
    python bench/learning.py --part trl          # only the GRPO step-time comparison with TRL

Arms (all label-free: the integration verifier differentiates the answer; no reference is read):
  base            the shipped tiny model (supervised on easy integrals only), greedy
  grpo_direct     GRPO on the hard *training* problems themselves, no variants (the paper's ablation)
  ladder          GRPO on symbolic easier variants of the same training problems, easiest first
  ladder_ttrl     LADDER, then test-time RL on each test problem's variants (weights rolled back)
  best_of_n       best-of-N with the verifier from the LADDER weights (and from the base weights),
                  N chosen so that the tokens generated per problem match what TTRL spent

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
    ap.add_argument("--workers", type=int, default=None)
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

    sampling = SamplingParams(temperature=1.0, max_new_tokens=64, seed=seed)
    solved, tokens = 0, 0
    for start in range(0, len(problems), 8):
        chunk = problems[start:start + 8]
        groups = policy.generate([task.prompt(p, policy.prompt_style) for p in chunk], n=n, sampling=sampling)
        flat = [(p, c) for p, g in zip(chunk, groups) for c in g]
        verdicts = pool.verify([p for p, _ in flat], [c.text for _, c in flat])
        tokens += sum(c.num_tokens for _, c in flat)
        for i in range(len(chunk)):
            solved += any(v.correct for v in verdicts[i * n:(i + 1) * n])
    return solved / len(problems), tokens / len(problems)


def run_learning(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from rungs.commands.ttrl import TINY_GRPO_DEFAULTS
    from rungs.data import load_problems
    from rungs.pipelines.ladder import LadderConfig, run_ladder
    from rungs.pipelines.ttrl import TTRLConfig, run_ttrl
    from rungs.policies import load_policy
    from rungs.tasks import get_task
    from rungs.train.grpo import GRPOTrainer
    from rungs.train.grpo_config import GRPOConfig
    from rungs.verify.pool import VerifierPool

    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    task = get_task("integration")
    test = load_problems("builtin:integration-hard", limit=args.limit)
    train = load_problems(args.train_problems, limit=args.train_limit)
    per_seed: dict[str, list[float]] = {k: [] for k in ("base", "grpo_direct", "ladder", "ladder_ttrl",
                                                        "ever_solved_ttrl", "best_of_n_ladder", "best_of_n_base")}
    extra: dict[str, list[float]] = {"ttrl_tokens_per_problem": [], "best_of_n": [], "seconds": []}
    with VerifierPool(task, workers=args.workers) as pool:
        base_acc = greedy_accuracy(load_policy("tiny", task="integration"), task, pool, test)
        for seed in range(args.seeds):
            t0 = time.perf_counter()
            grpo = GRPOConfig(**{**TINY_GRPO_DEFAULTS, "seed": seed, "max_steps": args.steps, "eval_on_start": False})
            per_seed["base"].append(base_acc)  # greedy decoding of fixed weights: the same every seed
            # -- GRPO directly on the hard training problems (no variants) -------------------------
            direct = load_policy("tiny", task="integration", seed=seed)
            GRPOTrainer(direct, task, grpo, pool=pool, problems=train, progress=True).train()
            per_seed["grpo_direct"].append(greedy_accuracy(direct, task, pool, test))
            # -- LADDER ----------------------------------------------------------------------------
            ladder = load_policy("tiny", task="integration", seed=seed)
            run_ladder(LadderConfig(problems=args.train_problems, limit=args.train_limit, eval_problems=None,
                                    depth=args.depth, width=args.width, out=str(out / f"ladder-seed{seed}")),
                       grpo, policy=ladder, task=task, pool=pool, echo=False)
            per_seed["ladder"].append(greedy_accuracy(ladder, task, pool, test))
            # -- LADDER + TTRL ---------------------------------------------------------------------
            ttrl = run_ttrl(TTRLConfig(problems="builtin:integration-hard", limit=args.limit, steps=args.ttrl_steps,
                                       check_every=args.check_every, out=str(out / f"ttrl-seed{seed}")),
                            grpo, policy=ladder, task=task, pool=pool, echo=False)
            per_seed["ladder_ttrl"].append(ttrl["accuracy_after"])
            per_seed["ever_solved_ttrl"].append(ttrl["ever_solved_during_training"])
            tokens_per_problem = ttrl["tokens_generated"] / len(test)
            extra["ttrl_tokens_per_problem"].append(tokens_per_problem)
            # -- best-of-N at TTRL's token budget --------------------------------------------------
            from rungs.runs import read_jsonl

            lengths = [e["completions/mean_length"] for e in read_jsonl(out / f"ttrl-seed{seed}" / "events.jsonl")]
            n = max(1, math.ceil(tokens_per_problem / max(1.0, statistics.fmean(lengths) if lengths else 32.0)))
            extra["best_of_n"].append(n)
            per_seed["best_of_n_ladder"].append(best_of_n_accuracy(ladder, task, pool, test, n, seed)[0])
            per_seed["best_of_n_base"].append(
                best_of_n_accuracy(load_policy("tiny", task="integration"), task, pool, test, n, seed)[0])
            extra["seconds"].append(time.perf_counter() - t0)
            print(json.dumps({"seed": seed, **{k: v[-1] for k, v in per_seed.items()}, "best_of_n": n}), flush=True)
    result = {"test_problems": len(test), "train_problems": len(train), "seeds": args.seeds,
              "settings": vars(args), "per_seed": per_seed, "extra": extra,
              "summary": {k: mean_std(v) for k, v in per_seed.items()}}
    (out / "learning.json").write_text(json.dumps(result, indent=2))
    plot(out / "learning.png", result)
    return result


def plot(path: Path, result: dict[str, Any]) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from rungs.report import save_png

    arms = ["base", "grpo_direct", "ladder", "ladder_ttrl", "best_of_n_ladder", "best_of_n_base"]
    fig = Figure(figsize=(8, 4.2), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    means = [result["summary"][a][0] for a in arms]
    stds = [result["summary"][a][1] for a in arms]
    ax.bar(arms, means, yerr=stds, capsize=4, color=["#8c8c8c", "#dd8452", "#4c72b0", "#55a868", "#937860", "#c4ad66"])
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
        "best_of_n_ladder": f"best-of-N from LADDER weights, N={result['extra']['best_of_n']}",
        "best_of_n_base": "best-of-N from base weights, same N",
    }
    rows = [{"arm": names[k], "accuracy": fmt_mean_std(*result["summary"][k])} for k in names]
    print_table(rows, ["arm", "accuracy"],
                title=f"bench/learning.py: {result['test_problems']} hard integrals, {result['seeds']} seeds")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.part in ("all", "learning"):
        print_learning(run_learning(args))
    if args.part in ("all", "trl"):
        sys.path.insert(0, str(HERE))
        from trl_step import main as trl_main  # bench/trl_step.py

        trl_main([])
    return 0


if __name__ == "__main__":
    sys.exit(main())
