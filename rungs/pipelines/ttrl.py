"""Test-time RL: keep learning at inference time, with no labels.

Two published recipes, one job (`rungs ttrl --mode variants|vote`):

- variants (LADDER's TTRL, Simonds & Yoshiyama 2025): for each test problem the greedy answer is
  checked first; for an unsolved one, its variant tree is built (depth 2), GRPO runs for up to
  `steps` steps on the variants (and, since the integration verifier needs no label, on the
  problem itself), the problem is answered greedily, and the weights are rolled back before the
  next problem (snapshot/restore; a LoRA adapter reset for HF models). Every `check_every` steps
  the current greedy answer is verified, and training stops early once it is right: the verifier
  is label-free, so this uses no information a deployment would not have.
  A problem counts as solved only by its final greedy answer. "Ever solved during training" (any
  training sample on the problem itself verified correct: the LADDER paper's looser count) is
  reported separately and labelled as such.

- vote (Zuo et al. 2025): label-free GRPO on the unlabelled test set with the `majority_vote`
  reward (rungs/rewards/majority_vote.py): for each prompt, `vote_samples` answers are drawn; the
  majority answer (grouped by the task's own answer equivalence) is the pseudo-label; a sample's
  reward is 1 when its answer equals it. GRPO trains on `num_generations` of them (the paper: vote
  on 64, train on 32). Where the true answers are known (or the task verifies without labels),
  label accuracy (is the majority answer right?) and reward accuracy (does the pseudo-reward equal
  the true reward?) are logged. `--mode vote` is `--reward majority_vote:N` on the test set; other
  label-free rewards (`--reward self_certainty`, ...) run in the same mode when named.

Run directory (see rungs/runs.py): config.yaml, events.jsonl, outcomes.jsonl (variants mode: one
row per finished problem), summary.json and plots. A killed variants-mode run resumes at problem
granularity: finished problems are kept, the interrupted one is redone from the base weights
(its partial events are dropped), so nothing is lost or counted twice. Vote mode resumes through
the trainer's checkpoints.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rungs.config import did_you_mean, help_field
from rungs.errors import UserError
from rungs.pipelines.job import JobConfig, check_at_least, default_problems, refuse_job_policy_options
from rungs.policies.base import Policy, SamplingParams
from rungs.tasks.base import Task
from rungs.types import Completion, Problem, Verdict

MODES = ("variants", "vote")
VARIANT_SOURCES = ("auto", "symbolic", "llm")
OUTCOMES_FILE = "outcomes.jsonl"


@dataclass
class TTRLConfig(JobConfig):
    """Settings of `rungs ttrl` (GRPO's own settings come from GRPOConfig; the shared ones from JobConfig)."""

    problems: str | None = help_field(None, "test problems: a JSONL/parquet file, a dataset directory, or builtin:NAME; None = builtin:<task>-hard")
    mode: str = help_field("variants", "variants (LADDER's TTRL: per-problem variant GRPO with rollback) | vote (Zuo et al.: majority-vote pseudo-labels)")
    # variants mode
    steps: int = help_field(20, "variants mode: most GRPO steps per problem (the paper: 100)")
    check_every: int = help_field(5, "variants mode: verify the greedy answer every this many steps and stop once it is right (0 = only at the end)")
    depth: int = help_field(2, "variants mode: depth of each problem's variant tree")
    width: int = help_field(6, "variants mode: variants per node of the tree")
    include_problem: bool = help_field(True, "variants mode: put the test problem itself in the training pool (its verifier needs no label)")
    skip_solved: bool = help_field(True, "variants mode: do not train on problems whose greedy answer is already right")
    variant_source: str = help_field("auto", "auto (symbolic if the task has a mutator, else LLM-written) | symbolic | llm")
    # vote mode
    vote_samples: int = help_field(16, "vote mode: answers sampled per problem for the majority vote (the paper: 64); GRPO trains on num_generations of them")
    steps_vote: int = help_field(40, "vote mode: GRPO steps over the test set")
    # shared
    max_new_tokens: int = help_field(96, "greedy answers: the most tokens")
    policy_seed: int = help_field(0, "seed of the policy's sampler")

    def __post_init__(self) -> None:
        super().__post_init__()
        refuse_job_policy_options(self.policy_options)
        if self.problems is None:  # the task's own hard set, not integration's (`rungs ttrl --task countdown`)
            self.problems = default_problems(self.task, "hard", "test problems to learn on")
        if self.mode not in MODES:
            raise UserError(f"--mode {self.mode!r}: expected one of {', '.join(MODES)}{did_you_mean(self.mode, MODES)}")
        if self.variant_source not in VARIANT_SOURCES:
            raise UserError(f"--variant-source {self.variant_source!r}: expected one of {', '.join(VARIANT_SOURCES)}{did_you_mean(self.variant_source, VARIANT_SOURCES)}")
        check_at_least(self, {"steps": 1, "depth": 1, "width": 1, "vote_samples": 2 if self.mode == "vote" else 1,
                              "steps_vote": 1, "max_new_tokens": 1, "check_every": 0})


# -- shared helpers ---------------------------------------------------------------------------------


def greedy_verdicts(policy: Policy, task: Task, pool: Any, problems: Sequence[Problem], max_new_tokens: int,
                    batch_size: int = 64) -> list[tuple[Completion, Verdict]]:
    """The greedy answer to each problem and its verdict (through the sandboxed pool)."""
    sampling = SamplingParams(temperature=0.0, max_new_tokens=max_new_tokens)
    out: list[tuple[Completion, Verdict]] = []
    policy.eval()  # safe: nn.Module/Policy.eval(), inference mode; not Python's eval
    for start in range(0, len(problems), batch_size):
        chunk = list(problems[start:start + batch_size])
        groups = policy.generate([task.prompt(p, policy.prompt_style) for p in chunk], n=1, sampling=sampling)
        completions = [g[0] for g in groups]
        out.extend(zip(completions, pool.verify(chunk, [c.text for c in completions])))
    return out


@contextlib.contextmanager
def rolled_back(policy: Policy) -> Iterator[None]:
    """Train inside the block; on leaving it (normally or by an exception) the trainable weights are
    put back bitwise (`Policy.snapshot` / `Policy.restore`: the full state of the tiny model, the
    LoRA adapter of an hf model). Test-time RL and test-time training roll back through this."""
    snapshot = policy.snapshot()
    try:
        yield
    finally:
        policy.restore(snapshot)


class RecordingPool:
    """Passes verification through, remembering which watched problems were ever solved."""

    def __init__(self, pool: Any, watch: set[str]) -> None:
        self.pool = pool
        self.watch = watch
        self.solved: set[str] = set()

    def verify(self, problems: Sequence[Problem], completions: Sequence[str]) -> list[Verdict]:
        verdicts = self.pool.verify(problems, completions)
        self.solved |= {p.id for p, v in zip(problems, verdicts) if v.correct and p.id in self.watch}
        return verdicts

    def __getattr__(self, name: str) -> Any:
        return getattr(self.pool, name)


def make_variant_maker(config: TTRLConfig, task: Task, policy: Policy, transforms: Sequence[str] = ()) -> Any:
    """The `make_variants` callable for variant trees: the task's mutators or LLM-written ones.

    `transforms` (LADDER's `--variant-transforms`; empty: the task's default set) picks which of the
    task's symbolic transforms (`Task.variant_transforms`) make each node's children. A UserError
    names an unknown transform, a task that offers no choice, or LLM-written variants.
    """
    source = config.variant_source
    if source == "auto":
        source = "symbolic" if task.has_symbolic_variants else "llm"
    if transforms:
        if source != "symbolic" or not task.variant_transforms:
            raise UserError(f"--variant-transforms: task {task.name!r} offers no choice of "
                            f"{'symbolic' if source == 'symbolic' else 'LLM-written'} variant transforms; leave it empty")
        unknown = [t for t in transforms if t not in task.variant_transforms]
        if unknown:
            raise UserError(f"--variant-transforms {unknown[0]!r}: task {task.name!r} has "
                            f"{', '.join(task.variant_transforms)}")
    if source == "symbolic":
        if not task.has_symbolic_variants:
            raise UserError(f"task {task.name!r} has no symbolic variant maker; use --variant-source llm with an "
                            "instruction-following policy (hf:MODEL), or test-time RL without variants (--mode vote)")
        return functools.partial(task.variants, transforms=tuple(transforms)) if transforms else task.variants
    from rungs.variants.llm import LLMVariantMaker

    return LLMVariantMaker(policy, task)


# -- variants mode ----------------------------------------------------------------------------------


@dataclass
class ProblemOutcome:
    id: str
    problem: str
    solved_before: bool
    solved_after: bool  # by the final greedy answer: the count we report
    ever_solved: bool  # any verified-correct sample on this problem during training (LADDER's looser count)
    steps: int
    variants: int
    tokens: int
    seconds: float
    answer_before: str | None
    answer_after: str | None


def read_outcomes(path: str | Path, consequence: str, warn: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """The rows of a run's outcomes.jsonl that are whole `ProblemOutcome`s. A damaged row (not JSON,
    not an object, a field missing or of the wrong type) costs that row, with one line `FILE:LINE:
    CONSEQUENCE: what is wrong` through `warn` (a resume solves that problem again); a torn last line
    (a kill mid-write) is left out silently; a missing file is empty."""
    from rungs.runs import dataclass_row_problem, read_checked_jsonl

    return [row for _, row in read_checked_jsonl(path, lambda row: dataclass_row_problem(ProblemOutcome, row),
                                                 consequence, warn)]


def run_variants(config: TTRLConfig, grpo: Any, policy: Policy, task: Task, pool: Any, problems: Sequence[Problem],
                 run_dir: Any, echo: bool = True) -> dict[str, Any]:
    """LADDER's TTRL over `problems` (see the module docstring). Resumes from outcomes.jsonl.
    `echo` shows the progress bar."""
    from tqdm.auto import tqdm

    from rungs.runs import read_jsonl
    from rungs.train.grpo import GRPOTrainer
    from rungs.variants.tree import variant_tree

    # Resume: keep finished problems (a torn last line is dropped), and drop the events of an
    # interrupted one: it is redone from the base weights.
    # a damaged row costs that problem (it is solved again, with a warning), not the run
    done = {row["id"]: row for row in read_outcomes(Path(run_dir.path) / OUTCOMES_FILE, "solved again")}
    run_dir.rewrite_rows(OUTCOMES_FILE, list(done.values()))
    run_dir.rewrite_rows(Path(run_dir.events_path).name,
                         [e for e in read_jsonl(run_dir.events_path) if e.get("problem_id") in done])
    make_variants = make_variant_maker(config, task, policy)
    todo = [p for p in problems if p.id not in done]
    before = dict(zip([p.id for p in todo], greedy_verdicts(policy, task, pool, todo, config.max_new_tokens)))
    per_problem_grpo = dataclasses.replace(grpo, max_steps=config.steps, eval_on_start=False, eval_steps=0, save_steps=0)

    bar = tqdm(total=len(problems), initial=len(done), desc="ttrl", unit="problem", disable=not echo, dynamic_ncols=True)
    try:
        for index, problem in enumerate(problems):
            if problem.id in done:
                continue
            start = time.perf_counter()
            completion, verdict = before[problem.id]
            outcome = ProblemOutcome(problem.id, problem.text, verdict.correct, verdict.correct, False, 0, 0, 0, 0.0,
                                     verdict.answer, verdict.answer)
            if not (verdict.correct and config.skip_solved):
                tree = variant_tree(task, problem, depth=config.depth, width=config.width,
                                    seed=random.Random(f"{grpo.seed}:{problem.id}").randrange(2**31),
                                    make_variants=make_variants)
                pool_problems = [v.problem for v in tree] + ([problem] if config.include_problem else [])
                outcome.variants = len(tree)
                if pool_problems:
                    outcome = _train_on_problem(config, per_problem_grpo, policy, task, pool, problem, pool_problems,
                                                outcome, run_dir, index, GRPOTrainer)
            outcome.seconds = time.perf_counter() - start
            row = dataclasses.asdict(outcome)
            run_dir.append_rows(OUTCOMES_FILE, [row])
            done[problem.id] = row
            solved = sum(r["solved_after"] for r in done.values())
            bar.set_postfix({"solved": f"{solved}/{len(done)}"}, refresh=False)  # before update: it redraws
            bar.update(1)
    finally:
        bar.close()
    rows = [done[p.id] for p in problems]
    return summarize_variants(rows)


def _train_on_problem(config: TTRLConfig, grpo: Any, policy: Policy, task: Task, pool: Any, problem: Problem,
                      pool_problems: list[Problem], outcome: ProblemOutcome, run_dir: Any, index: int,
                      trainer_cls: Any) -> ProblemOutcome:
    recorder = RecordingPool(pool, {problem.id})
    from rungs.train.curriculum import SolveRateCurriculum

    with rolled_back(policy):
        # The same curriculum as LADDER's: the variants this policy solves sometimes come first.
        curriculum = SolveRateCurriculum(pool_problems, config.steps, seed=grpo.seed, prior=_safe_difficulty(task))
        trainer = trainer_cls(policy, task, grpo, pool=recorder, run_dir=None, problems=curriculum, progress=False)
        chunk = config.check_every or config.steps
        steps = 0
        events: list[dict[str, Any]] = []
        while steps < config.steps:
            results = trainer.train_steps(min(chunk, config.steps - steps))
            steps += len(results)
            for step, metrics in results:
                # steps are numbered globally (problem_index * steps + local step): unique and ordered
                events.append({**metrics, "step": index * config.steps + step, "local_step": step,
                               "problem_index": index, "problem_id": problem.id})
            ((completion, verdict),) = greedy_verdicts(policy, task, pool, [problem], config.max_new_tokens)
            outcome.solved_after, outcome.answer_after = verdict.correct, verdict.answer
            if verdict.correct:
                break
        outcome.steps = steps
        outcome.tokens = int(sum(e.get("tokens/generated", 0) + e.get("tokens/vote", 0) for e in events))
        outcome.ever_solved = outcome.solved_after or problem.id in recorder.solved
        run_dir.append_rows(Path(run_dir.events_path).name, events)
    return outcome


def _safe_difficulty(task: Task) -> Any:
    """task.difficulty, or +inf for a problem the task cannot score (explored last)."""
    def difficulty(problem: Problem) -> float:
        try:
            return float(task.difficulty(problem))
        except Exception:  # noqa: BLE001 - a task without a difficulty measure, or an odd variant
            return float("inf")
    return difficulty


def summarize_variants(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    n = len(rows)
    trained = [r for r in rows if r["steps"] > 0]
    return {
        "mode": "variants",
        "problems": n,
        "accuracy_before": sum(r["solved_before"] for r in rows) / n if n else 0.0,
        "accuracy_after": sum(r["solved_after"] for r in rows) / n if n else 0.0,
        "ever_solved_during_training": sum(r["ever_solved"] or r["solved_before"] for r in rows) / n if n else 0.0,
        "newly_solved": sum(r["solved_after"] and not r["solved_before"] for r in rows),
        "lost": sum(r["solved_before"] and not r["solved_after"] for r in rows),
        "problems_trained": len(trained),
        "mean_steps_trained": sum(r["steps"] for r in trained) / len(trained) if trained else 0.0,
        "tokens_generated": sum(r["tokens"] for r in rows),
        "seconds": sum(r["seconds"] for r in rows),
    }


# -- vote mode --------------------------------------------------------------------------------------


def vote_reward_funcs(config: TTRLConfig, grpo: Any) -> list[str]:
    """The rewards of vote mode: `majority_vote:<vote_samples>` in place of the verifier (so the
    default verifier,format becomes majority_vote:N,format, TTRL plus LADDER's format term);
    rewards named explicitly with no verifier among them (self_certainty, ...) are kept as they are."""
    n = max(config.vote_samples, grpo.num_generations)
    vote = f"majority_vote:{n}"
    for f in grpo.reward_funcs:
        name, _, arg = f.partition(":")
        if name == "majority_vote" and arg and arg != str(n):
            raise UserError(f"--reward {f} votes on {arg} answers, but vote mode votes on max(--vote-samples, "
                            f"--num-generations) = {n}: give the count once, as --vote-samples")
    return [vote if f.split(":")[0] in ("verifier", "majority_vote") else f for f in grpo.reward_funcs]


def run_vote(config: TTRLConfig, grpo: Any, policy: Policy, task: Task, pool: Any, problems: Sequence[Problem],
             run_dir: Any, resume: bool, echo: bool = True) -> dict[str, Any]:
    """Label-free GRPO on the test set (TTRL); the reward is `vote_reward_funcs`."""
    from rungs.train.grpo import GRPOTrainer

    vote_grpo = dataclasses.replace(grpo, max_steps=config.steps_vote, eval_on_start=False,
                                    reward_funcs=vote_reward_funcs(config, grpo))
    first = greedy_verdicts(policy, task, pool, problems, config.max_new_tokens)
    # With metric_for_best_model (say the label-free eval_vote_agreement), the trainer evaluates on
    # the test problems themselves -- the criterion uses no label -- and keeps RUN_DIR/best.
    select = list(problems) if vote_grpo.metric_for_best_model else None
    trainer = GRPOTrainer(policy, task, vote_grpo, pool=pool, run_dir=run_dir, problems=list(problems),
                          eval_problems=select, progress=echo)
    result = trainer.train(resume_from_checkpoint=True if resume else None, write_summary=False)
    last = greedy_verdicts(policy, task, pool, problems, config.max_new_tokens)
    n = len(problems)
    summary = {
        "mode": "vote",
        "problems": n,
        "reward_funcs": list(vote_grpo.reward_funcs),
        "accuracy_before": sum(v.correct for _, v in first) / n,
        "accuracy_after": sum(v.correct for _, v in last) / n,
        "steps": trainer.step_count,
        "vote_samples": max(config.vote_samples, grpo.num_generations),  # what was voted on
        "train_samples": grpo.num_generations,
        "stopped_early": result.get("stopped_early", False),
    }
    if result.get("best"):
        best = result["best"]
        summary.update({"best_metric": best["metric"], "best_value": best["value"], "best_step": best["step"],
                        "accuracy_best": best.get("eval_accuracy"), "best_path": best.get("path")})
    return summary


# -- the job ----------------------------------------------------------------------------------------


def run_ttrl(config: TTRLConfig, grpo: Any, *, resume_dir: str | None = None, policy: Policy | None = None,
             task: Task | None = None, pool: Any = None, echo: bool = True,
             progress: bool | None = None) -> dict[str, Any]:
    """Run (or resume) `rungs ttrl`; returns the summary (also in summary.json, written last with
    "completed": true).

    echo prints the result table; progress (default: echo) shows the progress bars only."""
    from rungs.pipelines.job import job_scope, open_job

    progress = echo if progress is None else progress
    run_dir, task, problems = open_job("ttrl", config, grpo, resume_dir, task)
    with job_scope(run_dir, "ttrl"):
        return _run(config, grpo, run_dir, task, problems, resume_dir, policy, pool, echo, progress)


def _run(config: TTRLConfig, grpo: Any, run_dir: Any, task: Task, problems: list[Problem], resume_dir: str | None,
         policy: Policy | None, pool: Any, echo: bool, progress: bool) -> dict[str, Any]:
    from rungs.policies import load_policy
    from rungs.verify.pool import VerifierPool

    policy = policy or load_policy(config.policy, task=config.task, seed=config.policy_seed,
                                   **config.policy_options)
    if not policy.trainable:
        raise UserError(f"policy {config.policy!r} cannot be trained at test time; use tiny or hf:MODEL")
    own_pool = pool is None
    pool = pool or VerifierPool(task, workers=config.workers, timeout_s=config.timeout, executor=config.executor)
    try:
        if config.mode == "variants":
            summary = run_variants(config, grpo, policy, task, pool, problems, run_dir, echo=progress)
        else:
            summary = run_vote(config, grpo, policy, task, pool, problems, run_dir, resume=resume_dir is not None, echo=progress)
    finally:
        if own_pool:
            pool.close()
    summary["run_dir"] = str(run_dir.path)
    summary["plots"] = plot_ttrl(run_dir.path, summary)
    summary["completed"] = True
    run_dir.write_summary(summary)
    if echo:
        print_summary(summary)
    return summary


def print_summary(summary: dict[str, Any]) -> str:
    from rungs.report import print_table

    if summary["mode"] == "variants":
        rows = [
            {"measure": "greedy accuracy before", "value": summary["accuracy_before"]},
            {"measure": "greedy accuracy after TTRL (final answers)", "value": summary["accuracy_after"]},
            {"measure": "ever solved during training (LADDER's looser count)", "value": summary["ever_solved_during_training"]},
            {"measure": "newly solved / lost", "value": f"{summary['newly_solved']} / {summary['lost']}"},
            {"measure": "problems trained on", "value": summary["problems_trained"]},
            {"measure": "mean GRPO steps per trained problem", "value": summary["mean_steps_trained"]},
            {"measure": "tokens generated in training", "value": summary["tokens_generated"]},
        ]
    else:
        rows = [
            {"measure": "greedy accuracy before", "value": summary["accuracy_before"]},
            {"measure": "greedy accuracy after TTRL (last weights)", "value": summary["accuracy_after"]},
            {"measure": "GRPO steps", "value": summary["steps"]},
        ]
        if summary.get("best_step") is not None:
            rows.append({"measure": f"greedy accuracy at the best checkpoint (by {summary['best_metric']}, "
                                    f"step {summary['best_step']})", "value": summary["accuracy_best"]})
    title = f"ttrl --mode {summary['mode']}: {summary['problems']} problems  ({summary.get('run_dir', '')})"
    return print_table(rows, ["measure", "value"], title=title)


def plot_ttrl(run_path: str | Path, summary: dict[str, Any]) -> list[str]:
    """PNG plots of a TTRL run: per-problem outcomes (variants) or accuracy curves (vote)."""
    from rungs.runs import read_jsonl

    run_path = Path(run_path)
    written = []
    if summary["mode"] == "variants":
        rows = read_outcomes(run_path / OUTCOMES_FILE, "left out of the plot", warn=lambda line: None)  # named by the table's reader
        if rows:
            written.append(str(plot_outcomes(run_path / "ttrl_outcomes.png", rows)))
    events = read_jsonl(run_path / "events.jsonl") if (run_path / "events.jsonl").exists() else []
    if summary["mode"] == "vote" and events:
        from rungs.report import plot_lines

        series = {}
        for key, label in (("ttrl/true_accuracy", "sample accuracy (true verifier)"),
                           ("ttrl/label_accuracy", "majority-label accuracy"),
                           ("ttrl/reward_accuracy", "pseudo-reward accuracy")):
            pts = [(e["step"], e[key]) for e in events if key in e]
            if pts:
                series[label] = ([s for s, _ in pts], [v for _, v in pts], None)
        if series:
            plot_lines(run_path / "ttrl_vote.png", series, "step", "fraction", ylim=(0, 1.02),
                       title="TTRL (majority vote): label-free training")
            written.append(str(run_path / "ttrl_vote.png"))
    return written


def plot_outcomes(path: Path, rows: Sequence[dict[str, Any]]) -> Path:
    """One bar per problem: GRPO steps used, coloured by outcome."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    from rungs.report import save_png

    colours = {"solved before": "#4c72b0", "solved by TTRL": "#55a868",
               "solved only during training": "#dd8452", "unsolved": "#c44e52"}

    def outcome(r: dict[str, Any]) -> str:
        if r["solved_before"]:
            return "solved before"
        if r["solved_after"]:
            return "solved by TTRL"
        return "solved only during training" if r["ever_solved"] else "unsolved"

    fig = Figure(figsize=(max(6.0, 0.18 * len(rows) + 2), 4.2), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    xs = list(range(len(rows)))
    ax.bar(xs, [max(r["steps"], 0.3) for r in rows], color=[colours[outcome(r)] for r in rows])
    ax.set_xlabel("test problem")
    ax.set_ylabel("GRPO steps used")
    counts = Counter(outcome(r) for r in rows)
    # Below the axes, never over the bars.
    ax.legend(handles=[Patch(color=c, label=f"{k} ({counts.get(k, 0)})") for k, c in colours.items()], fontsize=8,
              loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    ax.set_title("LADDER TTRL: per-problem outcomes")
    ax.grid(True, axis="y", alpha=0.3)
    save_png(fig, path)
    return path
