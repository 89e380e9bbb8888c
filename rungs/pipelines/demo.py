"""The main job on the embedded default: base -> LADDER -> test-time RL, in one table.

`rungs` (no arguments), `rungs demo` and `rungs ttrl` (no arguments) all run this:

1. base:   the shipped tiny integration model (supervised on single rules and term-by-term
           sums: the skills distribution), greedy accuracy on builtin:integration-hard;
2. LADDER: the shipped LADDER-trained checkpoint (GRPO on symbolic easier variants of a separate
           set of hard training integrals, trained offline: this stage only *evaluates* it), or,
           if none is shipped, LADDER trained on the fly;
3. TTRL:   LADDER's test-time RL from the LADDER weights: per test problem, GRPO on its own
           variant tree, answered greedily, weights rolled back after each problem.

Everything is label-free: the integration verifier checks an antiderivative by differentiating
it, so no reference answers are read. The run directory holds each stage's outputs, a summary
and a bar plot of the three accuracies; the table's and plot's labels say which stage was trained in
this run and which only evaluated a checkpoint.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rungs.config import help_field
from rungs.errors import UserError
from rungs.pipelines.job import JobConfig, check_at_least, refuse_job_policy_options

LADDER_CHECKPOINT = "integration-ladder"


@dataclass
class DemoConfig(JobConfig):
    """The demo's settings: `JobConfig`'s (checked the same way as every job's), with the base
    policy as `--policy` (or `--base`), and the LADDER and TTRL stages' own. Integration only: the
    shipped checkpoints are integration models."""

    task: str = help_field("integration", "the demo's task (integration only: the shipped checkpoints are integration models)")
    problems: str | None = help_field("builtin:integration-hard", "test problems")
    policy: str = help_field("tiny", "the base policy", aliases=("--base",))
    limit: int | None = help_field(20, "use only the first N test problems (the demo's 10-minute budget on 2 cores); none = all")
    out: str | None = help_field(None, "run directory (default runs/demo-integration-<time>)")
    ladder: str | None = help_field(None, "LADDER-trained policy (default: the shipped tiny:integration-ladder, else train on the fly)")
    ladder_problems: str = help_field("builtin:integration-train", "training problems when LADDER is trained on the fly")
    ladder_steps: int = help_field(40, "GRPO steps when LADDER is trained on the fly")
    ttrl_steps: int = help_field(8, "most TTRL steps per problem (bench/learning.py's setting)")
    check_every: int = help_field(4, "TTRL: verify the greedy answer every this many steps, stop when right")
    seed: int = help_field(0, "seed of every stage")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.task != "integration":
            raise UserError(f"--task {self.task!r}: the demo runs on integration only (its checkpoints are integration "
                            f"models); for another task use rungs ladder / rungs ttrl --task {self.task}")
        check_at_least(self, {"ladder_steps": 1, "ttrl_steps": 1, "check_every": 0})  # as LadderConfig's, TTRLConfig's
        refuse_job_policy_options(self.policy_options, "--seed")


def run_demo(config: DemoConfig, echo: bool = True, progress: bool | None = None) -> dict[str, Any]:
    """Run the three stages; returns the summary (also in RUN/summary.json).

    echo prints the result table; progress (default: echo) shows the progress bars only.
    Each stage's label says what was measured: a shipped checkpoint is *evaluated*, not trained here.
    """
    from rungs.config import to_dict
    from rungs.data import load_task_problems
    from rungs.pipelines.job import default_out
    from rungs.runs import RunDir

    progress = echo if progress is None else progress
    out = Path(config.out or default_out("demo", "integration"))
    task = config.build_task()
    problems = load_task_problems(config.problems, task, limit=config.limit)  # bad input leaves no directory
    run_dir = RunDir.create(out, {"job": "demo", "demo": to_dict(config)})  # `rungs report DIR` reads it back
    try:
        return _run_stages(config, out, task, problems, echo, progress)
    except Exception:
        run_dir.discard_if_unused()  # a failed setup (a policy that will not load) frees its --out
        raise
    finally:
        run_dir.release()


def _run_stages(config: DemoConfig, out: Path, task: Any, problems: list[Any], echo: bool, progress: bool) -> dict[str, Any]:
    """Base, LADDER and LADDER + TTRL on `problems`, writing into the run directory `out`."""
    from rungs.pipelines.ladder import LadderConfig, run_ladder
    from rungs.pipelines.ttrl import TTRLConfig, greedy_verdicts, run_ttrl
    from rungs.policies import load_policy
    from rungs.policies.tiny.policy import shipped_checkpoints
    from rungs.runs import atomic_write_json
    from rungs.train.grpo_config import TINY_GRPO_DEFAULTS, GRPOConfig
    from rungs.verify.pool import VerifierPool

    grpo = GRPOConfig(**{**TINY_GRPO_DEFAULTS, "seed": config.seed})
    stages: list[dict[str, Any]] = []
    with VerifierPool(task, workers=config.workers, timeout_s=config.timeout, executor=config.executor) as pool, \
            _demo_interrupts(out):
        t0 = time.perf_counter()
        base = load_policy(config.policy, task="integration", seed=config.seed, **config.policy_options)
        verdicts = [v for _, v in greedy_verdicts(base, task, pool, problems, 96)]
        stages.append({"stage": "base (the shipped skills-pretrained model)", "label": "base", "policy": config.policy,
                       "accuracy": sum(v.correct for v in verdicts) / len(verdicts), "seconds": time.perf_counter() - t0})

        t0 = time.perf_counter()
        ladder_spec = config.ladder
        if ladder_spec is None and LADDER_CHECKPOINT in shipped_checkpoints():
            ladder_spec = f"tiny:{LADDER_CHECKPOINT}"
        if ladder_spec is None:  # nothing shipped: train LADDER now, from the base weights
            ladder_config = LadderConfig(problems=config.ladder_problems, eval_problems=None, out=str(out / "ladder"),
                                         depth=2, width=4)
            summary = run_ladder(ladder_config, dataclasses.replace(grpo, max_steps=config.ladder_steps),
                                 policy=base, task=task, pool=pool, echo=echo, progress=progress)
            ladder_spec = f"tiny:{summary['final_policy']}"
            ladder_stage, ladder_label = (f"after LADDER (trained here: {config.ladder_steps} GRPO step{'s' if config.ladder_steps != 1 else ''} on self-made "
                                          "variants)"), "LADDER\n(trained here)"
        elif config.ladder is None:
            ladder_stage, ladder_label = (f"LADDER checkpoint (shipped {ladder_spec}, trained offline; "
                                          "evaluated here, not trained)"), "LADDER\n(shipped checkpoint)"
        else:
            ladder_stage, ladder_label = f"LADDER policy {ladder_spec} (given; evaluated here)", "LADDER\n(given policy)"
        policy = load_policy(ladder_spec, task="integration", seed=config.seed, **config.policy_options)
        verdicts = [v for _, v in greedy_verdicts(policy, task, pool, problems, 96)]
        stages.append({"stage": ladder_stage, "label": ladder_label, "policy": ladder_spec,
                       "accuracy": sum(v.correct for v in verdicts) / len(verdicts), "seconds": time.perf_counter() - t0})

        t0 = time.perf_counter()
        ttrl_config = TTRLConfig(problems=config.problems, limit=config.limit, steps=config.ttrl_steps,
                                 check_every=config.check_every, out=str(out / "ttrl"))
        ttrl = run_ttrl(ttrl_config, grpo, policy=policy, task=task, pool=pool, echo=False, progress=progress)
        steps = f"{config.ttrl_steps} step{'s' if config.ttrl_steps != 1 else ''}"
        stages.append({"stage": f"after TTRL from the LADDER policy (up to {steps} per problem, final greedy answers)",
                       "label": "LADDER + TTRL\n(trained here)", "policy": ladder_spec,
                       "accuracy": ttrl["accuracy_after"], "seconds": time.perf_counter() - t0})

    summary = {"problems": len(problems), "source": config.problems, "stages": stages,
               "ever_solved_during_ttrl": ttrl["ever_solved_during_training"], "run_dir": str(out),
               "plots": [str(out / "demo.png"), *ttrl.get("plots", [])]}
    plot_stages(out / "demo.png", stages, title=stages_title(summary))
    atomic_write_json(out / "summary.json", summary)
    if echo:
        print()
        print_stages(summary)
    return summary


def stages_title(summary: dict[str, Any]) -> str:
    """What the demo measured, in words: greedy accuracy per stage, and whether any stage moved it."""
    values = [s["accuracy"] for s in summary["stages"]]
    what = f"greedy accuracy on {summary['problems']} problems of {summary['source']}"
    if len(set(values)) == 1:
        return f"{what}: the same ({values[0]:.0%}) at every stage"
    return f"{what}, per stage"


def print_stages(summary: dict[str, Any]) -> str:
    """The demo's result table (also what `rungs report RUN` prints for a demo directory)."""
    from rungs.report import print_table

    n = summary["problems"]
    rows = [{**s, "solved": f"{round(s['accuracy'] * n)}/{n}"} for s in summary["stages"]]
    text = print_table(rows, ["stage", "accuracy", "solved", "seconds"],
                       title=f"rungs demo: integration, {stages_title(summary)}, no labels")
    if summary.get("ever_solved_during_ttrl") is not None:
        print(f"(ever solved during TTRL, LADDER's looser count: {summary['ever_solved_during_ttrl']:.3f})")
    print(f"run directory: {summary.get('run_dir')}   plots: {', '.join(summary.get('plots') or [])}")
    return text


def plot_stages(path: Path, stages: list[dict[str, Any]], title: str = "greedy accuracy per stage") -> Any:
    """A bar per stage (its greedy accuracy), labelled with what the stage did; returns the Figure."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from rungs.report import save_png

    fig = Figure(figsize=(7, 4.2), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    labels = [s.get("label") or s["stage"].split(" (")[0] for s in stages]
    values = [s["accuracy"] for s in stages]
    bars = ax.bar(labels, values, color=["#8c8c8c", "#4c72b0", "#55a868"][: len(stages)])
    for bar, value in zip(bars, values):
        ax.annotate(f"{value:.0%}", (bar.get_x() + bar.get_width() / 2, value), ha="center", va="bottom")
    ax.set_ylim(0, 1)
    ax.set_ylabel("greedy accuracy (final answers)")
    ax.set_title("rungs demo: " + title, fontsize=10)
    ax.grid(True, axis="y", alpha=0.3)
    save_png(fig, path)
    return fig


@contextlib.contextmanager
def _demo_interrupts(out: Path) -> Iterator[None]:
    """A Ctrl-C anywhere in the demo says what is true: its stages' own resume hints (rungs ladder
    --resume, rungs ttrl --resume) would not finish the demo, which starts over in minutes."""
    from rungs.errors import Interrupted

    try:
        yield
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted; the demo does not resume (its stages so far are in {out}): "
                          "run `rungs demo` again") from None
