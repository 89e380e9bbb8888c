"""LADDER: learn hard problems by climbing a self-made ladder of easier variants.

Simonds & Yoshiyama 2025 (arXiv 2503.00735): for each training problem, grow a tree of easier
variants (recursively, depth 3 for small models, 2 for strong ones), verify them, and train with
GRPO on the variants, easiest first. The model never sees a label: the verifier checks answers.

    variants: the task's symbolic mutators (built-in tasks; the embedded tiny model cannot write
              problems), or LLM-written variants for instruction-following policies
              (rungs.variants.llm: transformation library, personas, temperature cycling)
    training: GRPO (rungs.train.grpo) over the variant pool, in curriculum order: by the policy's
              measured solve rate, keeping batches in the learnable band 0 < p < 1 (default,
              rungs.train.curriculum.SolveRateCurriculum), an expanding window of the
              structurally easiest variants (easiest_first), or mixed; the original problems join
              the pool as its hardest rungs (`include_roots`)
    held-out: greedy accuracy on `eval_problems` at the start, every `eval_steps`, and the end

Trees are saved to variants.jsonl in the run directory and can be reused with `--variants FILE`.
The final weights are saved to final/ in the run directory, loadable with `--policy tiny:RUN/final`.
Resume after a kill with `rungs ladder --resume RUN_DIR` (the trainer's checkpoints).
"""

from __future__ import annotations

import random
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rungs.config import did_you_mean, help_field
from rungs.errors import UserError
from rungs.pipelines.job import JobConfig, check_count, default_problems, refuse_job_policy_options
from rungs.policies.base import Policy
from rungs.tasks.base import Task, Variant
from rungs.types import Problem

CURRICULA = ("solve_rate", "easiest_first", "mixed")
VARIANTS_FILE = "variants.jsonl"
FINAL_DIR = "final"


@dataclass
class LadderConfig(JobConfig):
    """Settings of `rungs ladder` (GRPO's own settings come from GRPOConfig; the shared ones from JobConfig)."""

    problems: str | None = help_field(None, "training problems (hard ones): file or builtin:NAME; None = builtin:<task>-train")
    eval_problems: str | None = help_field("auto", "held-out problems for periodic greedy evaluation: file or builtin:NAME; auto = builtin:<task>-dev where there is one; none: no evaluation")
    variants: str | None = help_field(None, "reuse a saved variant tree (JSONL from an earlier run) instead of building one")
    variant_source: str = help_field("auto", "auto (symbolic if the task has a mutator, else LLM-written) | symbolic | llm")
    variant_transforms: list[str] = help_field([], "the task's symbolic transforms that make each node's children (empty: the task's default set); countdown: smaller_numbers, merge_numbers, subexpression, drop_numbers (default: the last three)")
    depth: int = help_field(3, "depth of each problem's variant tree (the paper: 3 for small models, 2 for strong ones)")
    width: int = help_field(5, "variants per node")
    min_variant_difficulty: float = help_field(0.0, "train only on variants whose structural difficulty (the task's `difficulty`) is at least this; the tree is still built and saved whole (countdown: 2 keeps variants of 3 or more numbers, whose solutions can need brackets; 0: every variant)")
    curriculum: str = help_field(
        "solve_rate", "solve_rate (by the policy's measured solve rate, batches kept in the band 0 < p < 1) | "
        "easiest_first (an expanding window of the structurally easiest variants) | mixed (shuffled)")
    curriculum_start: float = help_field(0.25, "easiest_first: fraction of the pool in play at the first step")
    band_fraction: float = help_field(0.75, "solve_rate: share of each batch drawn from problems measured in 0 < p < 1 (the rest explore)")
    explore: str = help_field("random", "solve_rate: order in which unmeasured problems are tried: random | easiest_first | hardest_first (structural difficulty) | band_rate (the transform whose measured variants most often land in the band, Thompson-sampled) | descend (the original problems first; one never solved sends exploration down to its variants)")
    cooldown: int = help_field(0, "solve_rate: steps a problem drawn from the band rests before it can be drawn again (0: off)")
    climb: bool = help_field(False, "solve_rate: the first time a variant is answered right at least half the time, re-test its never-solved parent in the next batch (LADDER's climb back up the tree)")
    mastered_at: float = help_field(1.0, "solve_rate: estimated solve rate at which a problem leaves the band as mastered (1.0: only when always solved); pair it with --cooldown, or the few hard problems left in the band are drawn every step")
    hard_bias: bool = help_field(True, "solve_rate: within the band, prefer structurally harder problems (weight x difficulty)")
    include_roots: bool = help_field(True, "train on the original problems too (the top rungs of the ladder)")
    eval_limit: int | None = help_field(None, "use only the first N held-out problems")
    policy_seed: int = help_field(0, "seed of the policy's sampler")

    def __post_init__(self) -> None:
        super().__post_init__()
        from rungs.data import builtin_names

        if self.problems is None:  # the task's own sets, not integration's (`rungs ladder --task countdown`)
            self.problems = default_problems(self.task, "train", "hard problems to climb from")
        if self.eval_problems == "auto":
            self.eval_problems = f"builtin:{self.task}-dev" if f"{self.task}-dev" in builtin_names() else None
        if self.curriculum not in CURRICULA:
            raise UserError(f"--curriculum {self.curriculum!r}: expected one of {', '.join(CURRICULA)}{did_you_mean(self.curriculum, CURRICULA)}")
        if self.depth < 1 or self.width < 1:
            raise UserError(f"--depth {self.depth} --width {self.width}: expected integers >= 1")
        from rungs.train.curriculum import EXPLORE_ORDERS

        if self.explore not in EXPLORE_ORDERS:
            raise UserError(f"--explore {self.explore!r}: expected one of {', '.join(EXPLORE_ORDERS)}{did_you_mean(self.explore, EXPLORE_ORDERS)}")
        if self.cooldown < 0:
            raise UserError(f"--cooldown {self.cooldown}: expected a number of steps >= 0")
        if not 0 < self.mastered_at <= 1:
            raise UserError(f"--mastered-at {self.mastered_at}: expected a solve rate in (0, 1]")
        if not 0 <= self.band_fraction <= 1:
            raise UserError(f"--band-fraction {self.band_fraction}: expected a fraction in [0, 1]")
        if not 0 < self.curriculum_start <= 1:
            raise UserError(f"--curriculum-start {self.curriculum_start}: expected a fraction in (0, 1]")
        check_count("--eval-limit", self.eval_limit)
        if self.eval_limit is not None and not self.eval_problems:  # math, arc: no dev set; a stored run still resumes
            print(f"rungs ladder: --eval-limit {self.eval_limit} is unused: there are no held-out problems "
                  "(give --eval-problems)", file=sys.stderr)
        refuse_job_policy_options(self.policy_options)


def build_variant_pool(task: Task, problems: list[Problem], make_variants: Any, depth: int, width: int, seed: int,
                       echo: bool = True) -> list[Variant]:
    """Every training problem's variant tree, concatenated (duplicates across trees removed)."""
    from tqdm.auto import tqdm

    from rungs.variants.tree import variant_tree

    seen: set[Any] = {task.problem_key(p) for p in problems}
    pool: list[Variant] = []
    for problem in tqdm(problems, desc="variant trees", unit="problem", disable=not echo, dynamic_ncols=True):
        tree = variant_tree(task, problem, depth=depth, width=width,
                            seed=random.Random(f"{seed}:{problem.id}").randrange(2**31), make_variants=make_variants)
        for variant in tree:
            key = task.problem_key(variant.problem)
            if key not in seen:
                seen.add(key)
                pool.append(variant)
    return pool


def run_ladder(config: LadderConfig, grpo: Any, *, resume_dir: str | None = None, policy: Policy | None = None,
               task: Task | None = None, pool: Any = None, echo: bool = True,
               progress: bool | None = None) -> dict[str, Any]:
    """Run (or resume) `rungs ladder`; returns the summary (also in summary.json, written last:
    its "completed" is never on disk before the final weights are).

    echo prints the result table (and the trainer's metrics lines); progress (default: echo)
    shows the progress bars only, so `--no-progress` never hides the result."""
    from rungs.pipelines.job import job_scope, open_job

    progress = echo if progress is None else progress
    run_dir, task, problems = open_job("ladder", config, grpo, resume_dir, task)
    with job_scope(run_dir, "ladder"):
        return _run(config, grpo, run_dir, task, problems, resume_dir, policy, pool, echo, progress)


def _run(config: LadderConfig, grpo: Any, run_dir: Any, task: Task, problems: list[Problem], resume_dir: str | None,
         policy: Policy | None, pool: Any, echo: bool, progress: bool) -> dict[str, Any]:
    from rungs.data import load_task_problems
    from rungs.pipelines.ttrl import TTRLConfig, make_variant_maker
    from rungs.policies import load_policy
    from rungs.train.curriculum import CurriculumSampler, SolveRateCurriculum
    from rungs.train.grpo import EpochSampler, GRPOTrainer
    from rungs.variants.tree import load_tree, save_tree
    from rungs.verify.pool import VerifierPool

    eval_problems = (load_task_problems(config.eval_problems, task, limit=config.eval_limit)
                     if config.eval_problems else [])
    policy = policy or load_policy(config.policy, task=config.task, seed=config.policy_seed,
                                   **config.policy_options)

    tree_path = Path(run_dir.path) / VARIANTS_FILE
    llm_variants: dict[str, Any] | None = None
    if tree_path.exists():  # resuming: the tree this run already built
        variants = load_tree(tree_path, task=task)
    elif config.variants:
        variants = load_tree(config.variants, task=task)
        if not variants:
            raise UserError(f"--variants {config.variants}: the file has no variant rows; expected one JSON "
                            "object per line (id, parent_id, problem, answer, ...), as `rungs variants --out` writes")
        save_tree(tree_path, variants)
    else:
        maker = make_variant_maker(TTRLConfig(task=config.task, variant_source=config.variant_source), task, policy,
                                   config.variant_transforms)
        variants = build_variant_pool(task, problems, maker, config.depth, config.width, grpo.seed, progress)
        save_tree(tree_path, variants)
        if hasattr(maker, "well_posed_share"):  # LLM-written: how many of the model's problems were well-posed
            share = maker.well_posed_share()
            llm_variants = {**maker.stats, "well_posed_share": share}
            if echo:
                print(f"LLM-written variants: {maker.stats['parsed']} parsed, "
                      f"{'n/a' if share is None else f'{share:.0%}'} well-posed, {maker.stats['kept']} kept", flush=True)
    built = len(variants)
    variants = [v for v in variants if v.difficulty >= config.min_variant_difficulty]
    train_pool = [v.problem for v in variants] + (list(problems) if config.include_roots else [])
    if not train_pool:
        raise UserError(f"{config.problems}: no variants could be made and --no-include-roots leaves nothing to train on")

    total_steps = grpo.max_steps if grpo.max_steps > 0 else grpo.total_steps(len(train_pool))
    difficulty = {v.problem.id: v.difficulty for v in variants}
    family = {v.problem.id: (v.transform, v.depth) for v in variants}  # roots: their own family
    parents = {v.problem.id: v.parent_id for v in variants}  # roots have none
    if config.curriculum == "solve_rate":
        sampler: Any = SolveRateCurriculum(train_pool, total_steps, seed=grpo.seed, band_fraction=config.band_fraction,
                                           prior=lambda p: difficulty.get(p.id, task.difficulty(p)),
                                           explore=config.explore, hard_bias=config.hard_bias,
                                           cooldown=config.cooldown, group=lambda p: family.get(p.id, ("root", 0)),
                                           parent=lambda p: parents.get(p.id), mastered_at=config.mastered_at, climb=config.climb)
    elif config.curriculum == "easiest_first":
        sampler = CurriculumSampler(train_pool, lambda p: difficulty.get(p.id, task.difficulty(p)), total_steps,
                                         seed=grpo.seed, start_fraction=config.curriculum_start)
    else:
        sampler = EpochSampler(train_pool, seed=grpo.seed)
    own_pool = pool is None
    pool = pool or VerifierPool(task, workers=config.workers, timeout_s=config.timeout, executor=config.executor)
    try:
        trainer = GRPOTrainer(policy, task, grpo, pool=pool, run_dir=run_dir, problems=sampler,
                              eval_problems=eval_problems, progress=progress)
        train_summary = trainer.train(resume_from_checkpoint=True if resume_dir is not None else None, write_summary=False)
    finally:
        if own_pool:
            pool.close()
    run_dir.save_dir(FINAL_DIR, lambda tmp: policy.save(str(tmp)))
    from rungs.report import plot_run

    plots = [str(p) for p in plot_run(Path(run_dir.path), trainer.history)]
    summary = {
        **train_summary,
        "training_problems": len(problems),
        "variants": len(variants),
        **({"variants_built": built} if built != len(variants) else {}),
        **({"llm_variants": llm_variants} if llm_variants is not None else {}),
        "pool_size": len(train_pool),
        "final_policy": str(Path(run_dir.path) / FINAL_DIR),
        "plots": plots,
        "run_dir": str(run_dir.path),
    }
    run_dir.write_summary(summary)
    if echo:
        from rungs.report import print_table

        def at(step: Any) -> str:
            return "at start (step 0)" if step == 0 else f"at step {step}"

        rows = [{"measure": "variants built", "value": built}]
        if built != len(variants):
            rows.append({"measure": f"variants trained on (difficulty >= {config.min_variant_difficulty:g})",
                         "value": len(variants)})
        rows.append({"measure": "GRPO steps", "value": trainer.step_count})
        if "eval_accuracy_start" in summary:  # each eval labelled with its step: "start" means step 0
            rows += [{"measure": f"held-out greedy accuracy {at(summary['eval_step_start'])}", "value": summary["eval_accuracy_start"]},
                     {"measure": f"held-out greedy accuracy {at(summary['eval_step_end'])}", "value": summary["eval_accuracy_end"]}]
            if summary["eval_accuracy_best"] > max(summary["eval_accuracy_start"], summary["eval_accuracy_end"]):
                rows.append({"measure": f"held-out greedy accuracy, best ({at(summary['eval_step_best'])})",
                             "value": summary["eval_accuracy_best"]})
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        print_table(rows, ["measure", "value"], title=f"ladder: {count} ({run_dir.path}); weights in {summary['final_policy']}")
        if plots:
            print("plots: " + ", ".join(plots))  # as `rungs report` and `rungs train` end
    return summary
