"""The main job on the embedded default: base -> LADDER -> test-time RL, in one table.

`rungs` (no arguments), `rungs demo` and `rungs ttrl` (no arguments) all run this:

1. base:   the shipped tiny integration model (supervised on easy integrals only), greedy
           accuracy on builtin:integration-hard;
2. LADDER: the shipped LADDER-trained checkpoint (GRPO on symbolic easier variants of a separate
           set of hard training integrals), or, if none is shipped, LADDER trained on the fly;
3. TTRL:   LADDER's test-time RL from the LADDER weights: per test problem, GRPO on its own
           variant tree, answered greedily, weights rolled back after each problem.

Everything is label-free: the integration verifier checks an antiderivative by differentiating
it, so no reference answers are read. The run directory holds each stage's outputs, a summary
and a bar plot of the three accuracies.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rungs.config import help_field

LADDER_CHECKPOINT = "integration-ladder"


@dataclass
class DemoConfig:
    problems: str = help_field("builtin:integration-hard", "test problems")
    limit: int | None = help_field(12, "use only the first N test problems (the demo's 10-minute budget on 2 cores); none = all")
    base: str = help_field("tiny", "the base policy")
    ladder: str | None = help_field(None, "LADDER-trained policy (default: the shipped tiny:integration-ladder, else train on the fly)")
    ladder_problems: str = help_field("builtin:integration-train", "training problems when LADDER is trained on the fly")
    ladder_steps: int = help_field(40, "GRPO steps when LADDER is trained on the fly")
    ttrl_steps: int = help_field(6, "most TTRL steps per problem")
    check_every: int = help_field(3, "TTRL: verify the greedy answer every this many steps, stop when right")
    out: str | None = help_field(None, "run directory (default runs/demo-<time>)")
    workers: int | None = help_field(None, "verifier worker processes (default: one per core)")
    seed: int = help_field(0, "seed of every stage")


def run_demo(config: DemoConfig, echo: bool = True) -> dict[str, Any]:
    from rungs.data import load_problems
    from rungs.pipelines.job import default_out
    from rungs.pipelines.ladder import LadderConfig, run_ladder
    from rungs.pipelines.ttrl import TTRLConfig, greedy_verdicts, run_ttrl
    from rungs.policies import load_policy
    from rungs.policies.tiny.policy import shipped_checkpoints
    from rungs.report import print_table
    from rungs.runs import atomic_write_json
    from rungs.tasks import get_task
    from rungs.train.grpo_config import TINY_GRPO_DEFAULTS, GRPOConfig
    from rungs.verify.pool import VerifierPool

    out = Path(config.out or default_out("demo", "integration"))
    out.mkdir(parents=True, exist_ok=True)
    task = get_task("integration")
    problems = load_problems(config.problems, limit=config.limit)
    grpo = GRPOConfig(**{**TINY_GRPO_DEFAULTS, "seed": config.seed})
    stages: list[dict[str, Any]] = []
    with VerifierPool(task, workers=config.workers) as pool:
        t0 = time.perf_counter()
        base = load_policy(config.base, task="integration", seed=config.seed)
        verdicts = [v for _, v in greedy_verdicts(base, task, pool, problems, 96)]
        stages.append({"stage": "base (supervised on easy integrals)", "policy": config.base,
                       "accuracy": sum(v.correct for v in verdicts) / len(verdicts), "seconds": time.perf_counter() - t0})

        t0 = time.perf_counter()
        ladder_spec = config.ladder
        if ladder_spec is None and LADDER_CHECKPOINT in shipped_checkpoints():
            ladder_spec = f"tiny:{LADDER_CHECKPOINT}"
        if ladder_spec is None:  # nothing shipped: train LADDER now, from the base weights
            ladder_config = LadderConfig(problems=config.ladder_problems, eval_problems=None, out=str(out / "ladder"),
                                         depth=2, width=4)
            summary = run_ladder(ladder_config, dataclasses.replace(grpo, max_steps=config.ladder_steps),
                                 policy=base, task=task, pool=pool, echo=echo)
            ladder_spec = f"tiny:{summary['final_policy']}"
        policy = load_policy(ladder_spec, task="integration", seed=config.seed)
        verdicts = [v for _, v in greedy_verdicts(policy, task, pool, problems, 96)]
        stages.append({"stage": "after LADDER (GRPO on self-made variants)", "policy": ladder_spec,
                       "accuracy": sum(v.correct for v in verdicts) / len(verdicts), "seconds": time.perf_counter() - t0})

        t0 = time.perf_counter()
        ttrl_config = TTRLConfig(problems=config.problems, limit=config.limit, steps=config.ttrl_steps,
                                 check_every=config.check_every, out=str(out / "ttrl"))
        ttrl = run_ttrl(ttrl_config, grpo, policy=policy, task=task, pool=pool, echo=False if not echo else echo)
        stages.append({"stage": "after LADDER + TTRL (final greedy answers)", "policy": ladder_spec,
                       "accuracy": ttrl["accuracy_after"], "seconds": time.perf_counter() - t0})

    summary = {"problems": len(problems), "source": config.problems, "stages": stages,
               "ever_solved_during_ttrl": ttrl["ever_solved_during_training"], "run_dir": str(out),
               "plots": [str(out / "demo.png"), *ttrl.get("plots", [])]}
    plot_stages(out / "demo.png", stages)
    atomic_write_json(out / "summary.json", summary)
    if echo:
        rows = [{**s, "solved": f"{round(s['accuracy'] * len(problems))}/{len(problems)}"} for s in stages]
        print()
        print_table(rows, ["stage", "accuracy", "solved", "seconds"],
                    title=f"rungs demo: integration, {config.problems} ({len(problems)} problems), greedy answers, no labels")
        print(f"(ever solved during TTRL, LADDER's looser count: {ttrl['ever_solved_during_training']:.3f})")
        print(f"run directory: {out}   plots: {', '.join(summary['plots'])}")
    return summary


def plot_stages(path: Path, stages: list[dict[str, Any]]) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from rungs.report import save_png

    fig = Figure(figsize=(6.5, 4), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    labels = ["base", "LADDER", "LADDER + TTRL"][: len(stages)]
    values = [s["accuracy"] for s in stages]
    bars = ax.bar(labels, values, color=["#8c8c8c", "#4c72b0", "#55a868"][: len(stages)])
    for bar, value in zip(bars, values):
        ax.annotate(f"{value:.0%}", (bar.get_x() + bar.get_width() / 2, value), ha="center", va="bottom")
    ax.set_ylim(0, 1)
    ax.set_ylabel("greedy accuracy on the hard set")
    ax.set_title("rungs demo: the tiny model climbs the ladder")
    ax.grid(True, axis="y", alpha=0.3)
    save_png(fig, path)
