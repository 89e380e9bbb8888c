"""Does the model get better? Every arm on the hard test set, same compute, mean +- std over seeds.

    python bench/learning.py                          # integration and countdown, 3 seeds (an hour or so on 2 cores)
    python bench/learning.py --task integration --seeds 1 --steps 20 --limit 20 --out runs/learning-quick
                                                      # a quick look (not over bench/results)
    python bench/learning.py --report                 # reprint the table and plots from bench/results
                                                      # (its seed files, else its stored learning.json)
    python bench/learning.py --task integration --core-only --unsolved 16 --out bench/results-unsolved
                                                      # LADDER's regime: only problems the base never solves in 16
    python bench/learning.py --task integration --core-only --train-limit 20 --depth 3 --width 5 --ladder cooldown=10 \
        --seeds 6 --out bench/results-roots20       # LADDER's setting: a handful of training problems and their trees

Before any RL, bench/precondition.py prints what the base can sample (greedy vs pass@64).

Integration arms (all label-free: the verifier differentiates the answer; no reference is read):
  base            the shipped tiny-integration model, greedy
  grpo_direct     GRPO on the hard *training* problems themselves, no variants (the paper's ablation)
  ladder          the same GRPO budget on the symbolic variant trees of the same training problems
                  (+ the problems), in the solve-rate curriculum order (rungs ladder's default)
  ladder_ttrl     LADDER, then test-time RL on each unsolved test problem's variants, weights rolled
                  back after each problem; a problem counts only if its final greedy answer is right
  ever_solved     (the paper's looser count: some training sample of the test problem was right)
  best_of_n       best-of-N with the verifier from the LADDER weights, N matched to TTRL's tokens
  random_reward   the LADDER run with Bernoulli(0.5) rewards (Shao et al. 2025, "Spurious rewards")
  format_only     the LADDER run rewarded 1 whenever an answer can be extracted (same paper)
Countdown arms: base (tiny-countdown), grpo_direct, ladder (variants: fewer numbers, reachable
sub-targets), on builtin:countdown-hard; with --controls also random_reward and format_only.

The trained arms share steps x prompts x samples. Tuning happened on builtin:integration-dev only;
every arm is also scored on a fresh draw of hard problems (`rungs sample-problems` at difficulty 3
and 4 under a seed no one tuned on), reported beside the built-in set. Results:
bench/results/learning.json, learning.png (accuracy per arm), learning_curves.png (training
accuracy per step), ttrl_vs_best_of_n.png (accuracy against generated tokens per problem).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # bench_cli beside this file, also when loaded by path (the tests)
    sys.path.insert(0, str(HERE))
import bench_cli  # noqa: E402

FRESH_SEED = 20261130  # the fresh draw: a seed used nowhere else, fixed before any result was seen
DEV_SEED = 4242  # --tune: a dev draw beside builtin:*-dev levels 3-4 (tuning never reads a test set)
INTEGRATION_ARMS = ("base", "grpo_direct", "ladder", "ladder_ttrl", "ever_solved", "best_of_n", "ttrl_vote",
                    "ttrl_vote/label_accuracy", "ttrl_vote/reward_accuracy", "random_reward", "format_only")
COUNTDOWN_ARMS = ("base", "grpo_direct", "ladder", "random_reward", "format_only")  # controls with --controls
# suite -> (task, test set, training set); integration-harder: sums of 3-4 terms from all three rule
# families, where direct GRPO should starve and LADDER's variants should not (the climbing regime)
SUITES = {"integration": ("integration", "integration-hard", "integration-train"),
          "countdown": ("countdown", "countdown-hard", "countdown-train"),
          "integration-harder": ("integration", "integration-harder", "integration-harder-train")}
SUITE_ARMS = {"integration": INTEGRATION_ARMS, "countdown": COUNTDOWN_ARMS, "integration-harder": COUNTDOWN_ARMS}
FRESH_ARMS = ("base", "grpo_direct", "ladder", "random_reward", "format_only")
CONTROLS = (("random_reward", "random"), ("format_only", "format_only"))  # arm, ControlPool reward


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", choices=("all", *SUITES), default="all",
                    help="suite: integration (all arms), countdown, integration-harder (base, GRPO, LADDER)")
    ap.add_argument("--seeds", type=bench_cli.positive, default=3, help="seeds per suite (default 3)")
    ap.add_argument("--base", default="tiny", metavar="SPEC",
                    help="the tiny checkpoint every arm starts from (default: the task's shipped one, 'tiny'); "
                         "a candidate base as tiny:DIR")
    ap.add_argument("--limit", type=bench_cli.positive, default=None, help="first N test problems (default: all 80)")
    ap.add_argument("--steps", type=bench_cli.positive, default=60, help="GRPO steps of every trained arm (default 60)")
    ap.add_argument("--ttrl-steps", type=bench_cli.positive, default=8, help="TTRL steps per test problem (default 8)")
    ap.add_argument("--check-every", type=bench_cli.positive, default=4,
                    help="TTRL: greedy check of the test problem every N steps (default 4)")
    ap.add_argument("--depth", type=bench_cli.positive, default=2, help="LADDER's variant-tree depth (default 2)")
    ap.add_argument("--width", type=bench_cli.positive, default=4, help="LADDER's variants per node (default 4)")
    ap.add_argument("--ttrl-width", type=bench_cli.positive, default=4, help="TTRL's variants per node (default 4)")
    ap.add_argument("--vote-steps", type=bench_cli.positive, default=30, help="TTRL --mode vote: GRPO steps over the test set")
    ap.add_argument("--vote-samples", type=bench_cli.positive, default=32, help="TTRL --mode vote: answers voted on per problem")
    ap.add_argument("--fresh", type=bench_cli.non_negative, default=40, help="fresh hard problems per difficulty (3 and 4; default 40, 0: no fresh draw)")
    ap.add_argument("--curriculum", default="solve_rate", choices=("solve_rate", "easiest_first", "mixed"),
                    help="LADDER's curriculum (default solve_rate)")
    ap.add_argument("--snapshots", type=bench_cli.non_negative, default=0, metavar="N",
                    help="keep each trained arm's weights every N steps, for bench/weight_average.py "
                         "(SUITE/ARM-seedS/checkpoints/step-K; default 0: final weights only)")
    ap.add_argument("--grpo", action="append", default=[], metavar="KEY=VALUE", help="override a GRPO setting")
    ap.add_argument("--ladder", action="append", default=[], metavar="KEY=VALUE",
                    help="override a LadderConfig setting of the LADDER arm and its controls (e.g. explore=band_rate)")
    ap.add_argument("--tune", action="store_true",
                    help="score on the dev pool (dev levels 3-4 plus a dev draw under DEV_SEED) instead of the test "
                         "sets: the only mode settings were chosen in")
    ap.add_argument("--unsolved", type=bench_cli.non_negative, default=0, metavar="K",
                    help="keep only the training, test and fresh problems that the base answers right in none of K "
                         "samples at the training temperature: LADDER's own regime, where GRPO on the problems "
                         "themselves gets no reward to learn from (0: off)")
    ap.add_argument("--train-limit", type=bench_cli.positive, default=None, metavar="N",
                    help="train both arms on only the first N training problems (after --unsolved): LADDER's own "
                         "setting, a handful of hard problems and their variant trees (the paper trains from 10)")
    ap.add_argument("--train-problems", default=None, metavar="SPEC",
                    help="train both arms on these problems (a file or builtin:NAME) instead of the suite's "
                         "builtin training set, minus any problem of the test set, the dev pool or the fresh draw "
                         "(canonical form): e.g. a large draw of `rungs sample-problems`, so that no root repeats")
    ap.add_argument("--core-only", action="store_true",
                    help="only base, GRPO without variants and LADDER (no controls, no TTRL): for longer budgets")
    ap.add_argument("--controls", action="store_true",
                    help="with --core-only or --tune, also the random-reward and format-only controls (any suite; "
                         "the LADDER arm's settings, --ladder included); a finished seed gains the missing arms")
    ap.add_argument("--parallel", type=bench_cli.positive, default=3, help="seeds run at once, each in its own process (default 3)")
    ap.add_argument("--workers", type=bench_cli.positive, default=1, help="verifier workers per seed process (default 1)")
    ap.add_argument("--only", default=None, help=argparse.SUPPRESS)  # TASK:SEED, a child process
    ap.add_argument("--report", action="store_true",
                    help="only reprint the table and plots from --out: rebuilt from its seed files where they are, "
                         "else from its stored learning.json, which is then left as it is")
    ap.add_argument("--out", default=str(HERE / "results"), help="results folder (default bench/results)")
    return ap.parse_args(argv)


def mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


# -- measurements ------------------------------------------------------------------------------------
def greedy_accuracy(policy: Any, task: Any, pool: Any, problems: list[Any]) -> float:
    from rungs.pipelines.ttrl import greedy_verdicts

    verdicts = greedy_verdicts(policy, task, pool, problems, 96)
    return sum(v.correct for _, v in verdicts) / len(verdicts)


def best_of_n_tokens(policy: Any, task: Any, pool: Any, problems: list[Any], n: int, seed: int,
                     chunk: int = 64) -> list[float]:
    """Tokens generated per problem until the first verified sample (inf if none of n is right).

    Best-of-N with a verifier stops at the first verified sample, so its accuracy at a budget of t
    tokens per problem is the share of problems whose value here is <= t.
    """
    from rungs.policies.base import SamplingParams

    out = []
    for index, problem in enumerate(problems):
        prompt = task.prompt(problem, policy.prompt_style)
        spent, solved = 0, math.inf
        for start in range(0, n, chunk):
            k = min(chunk, n - start)
            sampling = SamplingParams(temperature=1.0, max_new_tokens=64, seed=seed * 1_000_003 + index * 7919 + start)
            (group,) = policy.generate([prompt], n=k, sampling=sampling)
            verdicts = pool.verify([problem] * k, [c.text for c in group])
            for c, v in zip(group, verdicts):
                spent += c.num_tokens
                if v.correct:
                    solved = spent
                    break
            if solved < math.inf:
                break
        out.append(solved)
    return out


def base_label(result: dict[str, Any]) -> str:
    """The base every arm started from, for plot titles: 'tiny' for the shipped checkpoint."""
    return str(result.get("settings", {}).get("base", "tiny"))


def never_solved(suite: str, out: Path, sets: dict[str, list[Any]], k: int, temperature: float, pool: Any,
                 base_spec: str = "tiny", settings: dict[str, Any] | None = None) -> dict[str, list[Any]]:
    """Each set cut to the problems that the base model (seed 0) answers right in none of k samples
    at `temperature`; the kept ids are cached in OUT/SUITE/unsolved-K.json, so that every seed
    process trains and is scored on the same problems. The training set is also written to
    OUT/SUITE/train-unsolved-K.jsonl (LADDER reads its roots from a file)."""
    from rungs.data import write_jsonl
    from rungs.policies import load_policy
    from rungs.policies.base import SamplingParams
    from rungs.runs import atomic_write_json

    cache = out / f"unsolved-{k}.json"
    kept = json.loads(cache.read_text()) if cache.exists() else None
    if kept is not None and kept.get("settings") != settings:  # cut under other settings: cut again
        kept = None
    if kept is None:
        task_name = SUITES[suite][0]
        from rungs.tasks import get_task

        task = get_task(task_name)
        base = load_policy(base_spec, task=task_name, seed=0)
        kept = {}
        for name, problems in sets.items():
            kept[name] = []
            for start in range(0, len(problems), 16):
                chunk = problems[start:start + 16]
                groups = base.generate([task.prompt(q, base.prompt_style) for q in chunk], n=k,
                                       sampling=SamplingParams(temperature=temperature, max_new_tokens=64, seed=start))
                for problem, group in zip(chunk, groups):
                    if not any(v.correct for v in pool.verify([problem] * k, [c.text for c in group])):
                        kept[name].append(problem.id)
        if settings is not None:
            kept["settings"] = settings
        atomic_write_json(cache, kept)
    ids = {name: set(kept[name]) for name in sets}
    out_sets = {name: [q for q in problems if q.id in ids[name]] for name, problems in sets.items()}
    write_jsonl(out / f"train-unsolved-{k}.jsonl", (q.to_dict() for q in out_sets["train"]))
    return out_sets


def training_pool(suite: str, out: Path, spec: str, fresh_n: int) -> tuple[list[Any], str]:
    """The problems of `spec` minus every problem (canonical form) of the suite's test set, its dev pool
    and its fresh draw, written to OUT/SUITE/train-pool.jsonl (LADDER reads its roots from a file).
    Returns (problems, that file). Raises SystemExit naming `spec` if nothing is left."""
    from rungs.data import load_problems, write_jsonl
    from rungs.tasks import get_task

    task_name, test_name, _ = SUITES[suite]
    task = get_task(task_name)
    banned = {task.problem_key(p) for p in load_problems(f"builtin:{test_name}") + dev_problems(suite)
              + fresh_problems(suite, fresh_n or 40)}
    seen: set[Any] = set()
    kept = []
    for problem in load_problems(spec):
        key = task.problem_key(problem)
        if key not in banned and key not in seen:
            seen.add(key)
            kept.append(problem)
    if not kept:
        raise SystemExit(f"--train-problems {spec}: no problem left once the test, dev and fresh problems are removed")
    path = out / "train-pool.jsonl"
    tmp = path.with_suffix(f".{os.getpid()}.tmp")  # seed processes write the same rows; rename is atomic
    write_jsonl(tmp, (p.to_dict() for p in kept))
    tmp.replace(path)
    return kept, str(path)


class ControlPool:
    """A verifier pool whose rewards are replaced by a control's (Shao et al. 2025, "Spurious rewards").

    random:      reward 1 with probability 0.5, seeded by (seed, call, row): no information at all
    format_only: reward 1 whenever the task can extract an answer, whatever it is
    The verdict's status and detail are the real verifier's, so logs still say what was right;
    only the reward (and `correct`, which the trainer's accuracy metric reads) is replaced.
    """

    def __init__(self, pool: Any, task: Any, kind: str, seed: int) -> None:
        import random

        if kind not in ("random", "format_only"):
            raise ValueError(f"control {kind!r}: expected random or format_only")
        self.pool, self.task, self.kind = pool, task, kind
        self.rng = random.Random(f"control:{kind}:{seed}")

    def verify(self, problems: list[Any], completions: list[str]) -> list[Any]:
        import dataclasses

        from rungs.types import Status

        real = self.pool.verify(problems, completions)
        out = []
        for text, verdict in zip(completions, real):
            if self.kind == "random":
                hit = self.rng.random() < 0.5
            else:
                hit = self.task.extract_answer(text) is not None
            # `correct` follows the control too: the solve-rate curriculum must not see the truth
            out.append(dataclasses.replace(verdict, reward=float(hit), status=Status.CORRECT if hit else Status.WRONG,
                                           detail=f"control {self.kind}; verifier: {verdict.status.value}"))
        return out

    def __getattr__(self, name: str) -> Any:  # close() etc. go to the real pool
        return getattr(self.pool, name)


def grpo_settings(args: argparse.Namespace, seed: int) -> Any:
    """The GRPO settings every trained arm shares (the tiny model's defaults; tuned on dev only)."""
    from rungs.config import from_dict
    from rungs.train.grpo_config import TINY_GRPO_DEFAULTS, GRPOConfig

    overrides = {key: parse_value(value) for key, _, value in (item.partition("=") for item in args.grpo)}
    # The tiny model's defaults (rungs/train/grpo_config.py; learning rate: the policy's own, 1e-4).
    return from_dict(GRPOConfig, {**TINY_GRPO_DEFAULTS, **overrides, "seed": seed, "max_steps": args.steps,
                                  "eval_on_start": False}, source="--grpo")


def fresh_problems(suite: str, n: int) -> list[Any]:
    """n fresh problems at difficulty 3 and n at 4 (what `rungs sample-problems` writes), seed FRESH_SEED;
    for integration-harder, 2n fresh composites."""
    import dataclasses

    from rungs.tasks import get_task

    if suite == "integration-harder":
        from rungs.tasks.integration.skills import composite_problems

        return composite_problems(2 * n, FRESH_SEED)
    task = get_task(suite)
    # label-free: the integration verifier needs no answer, countdown's target is in the problem
    return [dataclasses.replace(p, answer=None) for level in (3, 4)
            for p in task.generate(n, float(level), seed=FRESH_SEED + level)]


def dev_problems(suite: str, n: int = 40) -> list[Any]:
    """The tuning pool: builtin:<task>-dev at levels 3-4 plus n draws per level 3 and 4 under DEV_SEED,
    minus anything in the built-in hard set or the fresh draw (canonical form)."""
    import dataclasses

    from rungs.data import load_problems
    from rungs.tasks import get_task

    task_name, test_name, _ = SUITES[suite]
    task = get_task(task_name)
    banned = {task.problem_key(p) for p in load_problems(f"builtin:{test_name}") + fresh_problems(suite, n)}
    dev = [p for p in load_problems(f"builtin:{task_name}-dev") if 3 <= float(p.meta.get("difficulty", 0)) <= 4]
    drawn = [dataclasses.replace(p, answer=None) for level in (3, 4)
             for p in task.generate(n, float(level), seed=DEV_SEED + level)]
    seen: set[Any] = set()
    pool = []
    for p in dev + drawn:
        key = task.problem_key(p)
        if key not in banned and key not in seen:
            seen.add(key)
            pool.append(p)
    return pool


def parse_value(text: str) -> Any:
    """A KEY=VALUE override's value as YAML, except that YAML 1.1's off/on/yes/no stay strings."""
    import yaml

    value = yaml.safe_load(text)
    return text if isinstance(value, bool) and text.lower() not in ("true", "false") else value


def ladder_overrides(args: argparse.Namespace) -> dict[str, Any]:
    return {key: parse_value(value) for key, _, value in (item.partition("=") for item in args.ladder)}


def training_curve(run_dir: Path) -> list[float]:
    from rungs.runs import read_jsonl

    return [e["accuracy"] for e in read_jsonl(run_dir / "events.jsonl") if "accuracy" in e and "eval_accuracy" not in e]


# -- one seed ------------------------------------------------------------------------------------------
class Snapshots:
    """A GRPOTrainer callback that saves the policy's weights every `every` steps to
    RUN/checkpoints/step-K/policy, the layout `rungs ladder` keeps (for bench/weight_average.py)."""

    def __init__(self, policy: Any, run: Path, every: int) -> None:
        self.policy, self.run, self.every = policy, run, every

    def on_step_end(self, trainer: Any, step: int, metrics: dict[str, Any]) -> None:
        if step % self.every == 0:
            self.policy.save(self.run / "checkpoints" / f"step-{step}" / "policy")


def run_seed(args: argparse.Namespace, suite: str, seed: int) -> dict[str, Any]:
    """Every arm of one suite for one seed; each figure is saved as soon as it exists (resumable)."""
    import dataclasses

    import torch

    from rungs.config import from_dict
    from rungs.data import load_problems
    from rungs.pipelines.ladder import LadderConfig, run_ladder
    from rungs.pipelines.ttrl import TTRLConfig, run_ttrl
    from rungs.policies import load_policy
    from rungs.runs import read_jsonl
    from rungs.tasks import get_task
    from rungs.train.grpo import GRPOTrainer
    from rungs.verify.pool import VerifierPool

    torch.set_num_threads(1)
    task_name, test_name, train_name = SUITES[suite]
    out = Path(args.out) / suite
    out.mkdir(parents=True, exist_ok=True)
    task = get_task(task_name)
    test = dev_problems(suite) if args.tune else load_problems(f"builtin:{test_name}", limit=args.limit)
    fresh = fresh_problems(suite, args.fresh) if args.fresh and not args.tune else []
    train_set = f"builtin:{train_name}"
    train = load_problems(train_set)
    if args.train_problems:
        train, train_set = training_pool(suite, out, args.train_problems, args.fresh)
    grpo = grpo_settings(args, seed)
    reset_stale_seed(args, suite, seed)  # the parent did it already; a direct --only run too
    partial = out / f"seed-{seed}.partial.json"
    row: dict[str, Any] = json.loads(partial.read_text()) if partial.exists() else {"seed": seed}
    row["settings"] = seed_settings(args)

    def keep(key: str, value: Any) -> None:
        row[key] = value
        partial.write_text(json.dumps(row, indent=2))

    def score(name: str, policy: Any) -> None:
        keep(name, greedy_accuracy(policy, task, pool, test))
        if fresh and name in FRESH_ARMS:
            keep(f"fresh/{name}", greedy_accuracy(policy, task, pool, fresh))

    def ladder_run(name: str, control: str | None) -> Any:
        run_dir = out / f"{name}-seed{seed}"
        policy = load_policy(args.base, task=task_name, seed=seed)
        if (run_dir / "summary.json").exists() and (run_dir / "final").is_dir():
            return load_policy(f"tiny:{run_dir / 'final'}", task=task_name, seed=seed)
        variants = out / "variants.jsonl"
        made_with = out / "variants.settings.json"  # the settings the shared tree was built under
        if variants.exists() and not made_under(made_with, seed_settings(args)):
            variants, made_with = seed_tree(out, seed)  # another settings' tree: this seed builds its own
            if variants.exists() and not made_under(made_with, seed_settings(args)):
                # this seed's own tree of other settings (or of none recorded): never reused
                moved = move_aside(out, [variants, made_with])
                print(f"learning: {suite} seed {seed}: {variants.name} was built under other settings; "
                      f"moved to {moved}; building it again", file=sys.stderr, flush=True)
        ladder = from_dict(LadderConfig, {"task": task_name, "policy": args.base,  # recorded: where the run started
                                          "problems": train_set, "eval_problems": None,
                                          "depth": args.depth, "width": args.width, "curriculum": args.curriculum,
                                          "out": str(run_dir), "variants": str(variants) if variants.exists() else None,
                                          "limit": args.train_limit, **ladder_overrides(args)}, source="--ladder")
        kept = dataclasses.replace(grpo, save_steps=args.snapshots, save_total_limit=None) if args.snapshots else grpo
        run_ladder(ladder,
                   kept, policy=policy, task=task, pool=ControlPool(pool, task, control, seed) if control else pool,
                   echo=False, resume_dir=str(run_dir) if (run_dir / "config.yaml").exists() else None)
        if not variants.exists():  # later arms reuse the first finished tree (seeds started together build their own)
            variants.write_bytes((run_dir / "variants.jsonl").read_bytes())
            made_with.write_text(json.dumps(seed_settings(args)))  # the shared tree's, or this seed's own
        if control is None:  # a control's own "accuracy" is its reward: no curve
            keep(f"curve/{name}", training_curve(run_dir))
            keep(f"samples/{name}", int(sum(e.get("num_groups", 0) for e in read_jsonl(run_dir / "events.jsonl")
                                            if "eval_accuracy" not in e) * grpo.num_generations))
        return policy

    t0 = time.perf_counter()
    with VerifierPool(task, workers=args.workers) as pool:
        if args.unsolved:
            cut = never_solved(suite, out, {"train": train, "test": test, "fresh": fresh}, args.unsolved,
                               grpo.temperature, pool, args.base, seed_settings(args))
            train, test, fresh = cut["train"], cut["test"], cut["fresh"]
            train_set = str(out / f"train-unsolved-{args.unsolved}.jsonl")
            keep("unsolved_sizes", {name: len(problems) for name, problems in cut.items()})
        if args.train_limit:  # both arms: GRPO trains on these, LADDER reads the same first N roots
            train = train[:args.train_limit]
        if "base" not in row:
            score("base", load_policy(args.base, task=task_name, seed=seed))
        if "grpo_direct" not in row:
            direct = load_policy(args.base, task=task_name, seed=seed)
            snapshots = [Snapshots(direct, out / f"grpo_direct-seed{seed}", args.snapshots)] if args.snapshots else []
            trainer = GRPOTrainer(direct, task, grpo, pool=pool, problems=train, progress=False, callbacks=snapshots)
            trainer.train()
            keep("curve/grpo_direct", [e["accuracy"] for e in trainer.history if "accuracy" in e])
            keep("samples/grpo_direct", int(sum(e.get("num_groups", 0) for e in trainer.history) * grpo.num_generations))
            direct.save(out / f"grpo_direct-seed{seed}" / "final")  # for bench/arm_samples.py
            score("grpo_direct", direct)
        ladder = ladder_run("ladder", None)
        if "ladder" not in row:
            score("ladder", ladder)
        full = not args.core_only and not args.tune  # --tune: the core arms only
        if (suite == "integration" and full) or args.controls:
            for name, control in CONTROLS:
                if name not in row:
                    score(name, ladder_run(name, control))
        if suite == "integration" and full:
            ttrl_dir = out / f"ttrl-seed{seed}"
            summary = run_ttrl(TTRLConfig(task=task_name, problems=f"builtin:{test_name}", limit=args.limit,
                                          steps=args.ttrl_steps, check_every=args.check_every, width=args.ttrl_width,
                                          out=str(ttrl_dir)),
                               grpo, policy=ladder, task=task, pool=pool, echo=False,
                               resume_dir=str(ttrl_dir) if (ttrl_dir / "config.yaml").exists() else None)
            keep("ladder_ttrl", summary["accuracy_after"])
            keep("ever_solved", summary["ever_solved_during_training"])
            outcomes = read_jsonl(ttrl_dir / "outcomes.jsonl")
            # tokens each problem cost TTRL until its final answer was right (inf: never)
            keep("ttrl_tokens_to_solve", [0.0 if r["solved_before"] else (r["tokens"] if r["solved_after"] else math.inf)
                                          for r in outcomes])
            budget = summary["tokens_generated"] / len(test)
            lengths = [e["completions/mean_length"] for e in read_jsonl(ttrl_dir / "events.jsonl")
                       if "completions/mean_length" in e]
            n = max(1, math.ceil(budget / max(1.0, statistics.fmean(lengths) if lengths else 16.0)))
            keep("ttrl_tokens_per_problem", budget)
            keep("best_of_n_n", n)
            if "best_of_n" not in row:
                tokens = best_of_n_tokens(ladder, task, pool, test, n, seed)
                keep("best_of_n_tokens_to_solve", tokens)
                keep("best_of_n", sum(t < math.inf for t in tokens) / len(tokens))
            # -- Zuo et al.'s TTRL: majority-vote pseudo-labels on the unlabelled test set; the
            #    verifier only reports (label accuracy, reward accuracy, final accuracy) -------------
            if "ttrl_vote" not in row:
                vote_dir = out / f"ttrl-vote-seed{seed}"
                voter = load_policy(f"tiny:{out / f'ladder-seed{seed}' / 'final'}", task=task_name, seed=seed)
                summary = run_ttrl(TTRLConfig(task=task_name, problems=f"builtin:{test_name}", limit=args.limit,
                                              mode="vote", steps_vote=args.vote_steps, vote_samples=args.vote_samples,
                                              out=str(vote_dir)),
                                   grpo, policy=voter, task=task, pool=pool, echo=False,
                                   resume_dir=str(vote_dir) if (vote_dir / "config.yaml").exists() else None)
                events = [e for e in read_jsonl(vote_dir / "events.jsonl") if "ttrl/label_accuracy" in e]
                for key in ("label_accuracy", "reward_accuracy"):
                    keep(f"ttrl_vote/{key}", statistics.fmean(e[f"ttrl/{key}"] for e in events) if events else 0.0)
                keep("ttrl_vote_label_accuracy_per_step", [e["ttrl/label_accuracy"] for e in events])
                keep("ttrl_vote", summary["accuracy_after"])
    row["seconds"] = round(time.perf_counter() - t0, 1)
    (out / f"seed-{seed}.json").write_text(json.dumps(row, indent=2))
    return row


# -- the settings a seed's figures depend on ------------------------------------------------------
# Every flag that changes what a seed trains or scores. Which arms run (--core-only, --controls),
# how many seeds, the suite, and where or how fast they run (--parallel, --workers) do not.
SEED_SETTINGS = ("base", "limit", "steps", "ttrl_steps", "check_every", "depth", "width", "ttrl_width", "vote_steps",
                 "vote_samples", "fresh", "curriculum", "grpo", "ladder", "tune", "unsolved", "train_limit",
                 "train_problems", "snapshots")
SEED_RUNS = ("grpo_direct", "ladder", "random_reward", "format_only", "ttrl", "ttrl-vote")  # OUT/SUITE/NAME-seedN


def seed_settings(args: argparse.Namespace | dict[str, Any]) -> dict[str, Any]:
    """The settings stored in each seed file (and its partial file): a seed is reused only under the same."""
    values = args if isinstance(args, dict) else vars(args)
    return {key: values.get(key) for key in SEED_SETTINGS}


def settings_diff(stored: dict[str, Any] | None, current: dict[str, Any]) -> str:
    """'limit 1 -> 3, steps 1 -> 2': what differs, for a one-line notice."""
    if not isinstance(stored, dict):
        return "no recorded settings (written before seed files recorded them)"
    return ", ".join(f"{key} {stored.get(key)!r} -> {value!r}" for key, value in current.items()
                     if stored.get(key) != value)


def made_under(settings_file: Path, settings: dict[str, Any]) -> bool:
    """Whether a cached file's settings record exists and holds exactly `settings`."""
    return settings_file.is_file() and json.loads(settings_file.read_text()) == settings


def stale_seed(args: argparse.Namespace, suite: str, seed: int) -> str | None:
    """Why the stored files of one seed were made under other settings than these flags' (None:
    nothing stored, or the same settings)."""
    current = seed_settings(args)
    for path in (Path(args.out) / suite / f"seed-{seed}.json", Path(args.out) / suite / f"seed-{seed}.partial.json"):
        if path.is_file():
            stored = json.loads(path.read_text()).get("settings")
            if stored != current:
                return f"{path.name}: {settings_diff(stored, current)}"
    return None


def reset_stale_seed(args: argparse.Namespace, suite: str, seed: int) -> bool:
    """A seed stored under other settings is recomputed: its seed files, log, runs (OUT/SUITE/NAME-seedN,
    weights included) and own variant tree are moved aside into OUT/SUITE/stale/<UTC time>/, with one
    line on stderr saying where, so that no figure, weight or tree of the old settings is reused and
    nothing is deleted."""
    why = stale_seed(args, suite, seed)
    if why is None:
        return False
    out = Path(args.out) / suite
    # its log too, in the parent only: a seed process (--only) may be writing its own log right now
    log = [] if args.only else [out / f"seed-{seed}.log"]
    moved = move_aside(out, [out / f"seed-{seed}.json", out / f"seed-{seed}.partial.json",
                             *(out / f"{name}-seed{seed}" for name in SEED_RUNS), *seed_tree(out, seed), *log])
    where = f"moved its files and runs to {moved}" if moved else "nothing to move aside"
    print(f"learning: {suite} seed {seed} was made with other settings ({why}); {where}; recomputing it",
          file=sys.stderr, flush=True)
    return True


def seed_tree(out: Path, seed: int) -> tuple[Path, Path]:
    """A seed's own variant tree (built when the shared one was made under other settings) and its settings."""
    return out / f"variants-seed{seed}.jsonl", out / f"variants-seed{seed}.settings.json"


def move_aside(out: Path, paths: list[Path]) -> Path | None:
    """Move the existing `paths` into a new OUT/SUITE/stale/<UTC time>/ folder; returns it (None: none existed)."""
    import shutil

    present = [p for p in paths if p.exists()]
    if not present:
        return None
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    (out / "stale").mkdir(parents=True, exist_ok=True)
    dest, n = out / "stale" / stamp, 1
    while True:  # two resets within a second: never mix with or overwrite what was moved before
        try:
            dest.mkdir()
            break
        except FileExistsError:
            dest, n = out / "stale" / f"{stamp}-{n}", n + 1
    for path in present:
        shutil.move(str(path), str(dest / path.name))
    return dest


# -- the whole comparison --------------------------------------------------------------------------
def run_processes(jobs: list[tuple[str, list[str], Path]], parallel: int, poll_s: float = 2.0) -> None:
    """Run (label, argv, log file) jobs as subprocesses, `parallel` at a time, in order; stdout and
    stderr go to the log, appended below a separator line when it already holds an earlier run's.
    Raises SystemExit naming the job and its log at the first failure."""
    import subprocess

    pending = list(jobs)
    running: list[tuple[str, Path, Any]] = []
    # SIGTERM/SIGINT to this process, or a failed job, ends every running child (and what it
    # started): no orphan keeps writing a seed's files or log while a rerun resumes them
    with bench_cli.ChildGroup(Path(sys.argv[0]).stem or "bench") as group:
        while pending or running:
            while pending and len(running) < parallel:
                label, cmd, log_path = pending.pop(0)
                log_path.parent.mkdir(parents=True, exist_ok=True)
                with open(log_path, "a") as log:  # the child holds its own copy of the descriptor
                    if log.tell():  # a rerun (a resume) goes on below the earlier runs' output, never over it
                        log.write(f"\n----- {label}: started again {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} "
                                  "(earlier runs above) -----\n")
                        log.flush()
                    running.append((label, log_path, group.popen(cmd, stdout=log, stderr=subprocess.STDOUT)))
                print(f"{label}: started (log {log_path})", flush=True)
            time.sleep(poll_s)
            for item in list(running):
                label, log_path, proc = item
                if proc.poll() is not None:
                    running.remove(item)
                    if proc.returncode != 0:
                        raise SystemExit(f"{label} failed; see {log_path}")
                    print(f"{label}: done", flush=True)


def run_all(args: argparse.Namespace) -> None:
    """Seeds run as parallel subprocesses (each with its own verifier pool); then aggregated."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    argv = [a for a in sys.argv[1:] if not a.startswith("--only")]
    tasks = tuple(SUITES) if args.task == "all" else (args.task,)
    for t in tasks:
        for s in range(args.seeds):
            reset_stale_seed(args, t, s)
    run_processes([(f"{t} seed {s}", [sys.executable, __file__, *argv, "--only", f"{t}:{s}"], out / t / f"seed-{s}.log")
                   for t in tasks for s in range(args.seeds) if not seed_finished(args, out / t / f"seed-{s}.json", t)],
                  args.parallel)


def seed_finished(args: argparse.Namespace, path: Path, suite: str) -> bool:
    """A seed's file exists, was made under these settings, and holds every arm asked for
    (--controls on a finished --core-only seed: not yet, and its cached arms are reused)."""
    if not path.exists():
        return False
    row = json.loads(path.read_text())
    if row.get("settings") != seed_settings(args):
        return False
    wanted = [name for name, _ in CONTROLS] if args.controls else []
    return all(name in row for name in wanted)


def seed_files(out: Path, suite: str) -> list[Path]:
    """OUT/SUITE/seed-N.json of every finished seed (a seed-N.partial.json is still running). The
    results folders are committed without them (.gitignore), so a fresh clone has none."""
    return [p for p in sorted((out / suite).glob("seed-*.json")) if not p.name.endswith(".partial.json")]


def stored_result(out: Path) -> dict[str, Any]:
    """OUT/learning.json as stored, for --report on a folder without seed files. Raises SystemExit
    (one line naming the folder) when there is none, or when it holds no suite's results."""
    stored = out / "learning.json"
    if not stored.is_file():
        raise SystemExit(f"learning: {out}: no seed files (SUITE/seed-N.json) and no learning.json "
                         "(expected the --out folder of a bench/learning.py run)")
    result = json.loads(stored.read_text())
    if not any(suite in result for suite in SUITES):
        raise SystemExit(f"learning: {stored}: holds no suite's results (expected one of {', '.join(SUITES)})")
    return result


def seed_number(path: Path) -> int | None:
    number = path.name[len("seed-"):-len(".json")]
    return int(number) if number.isdigit() else None


def current_rows(args: argparse.Namespace, out: Path, suite: str, stored: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The seed files to average: seeds 0..--seeds-1 made under these flags' settings. With --report,
    those of the stored learning.json's settings instead (a file written before seed files recorded
    settings is taken as it is then); a seed file of other settings is left out with a notice."""
    if args.report:  # the keys the stored summary has (one written before a setting existed lacks it)
        want = {key: stored[key] for key in SEED_SETTINGS if key in stored} if stored else None
        seeds = (stored or {}).get("seeds")
    else:
        want, seeds = seed_settings(args), args.seeds
    rows = []
    for path in seed_files(out, suite):
        number = seed_number(path)
        if number is None or (isinstance(seeds, int) and number >= seeds):
            continue
        row = json.loads(path.read_text())
        made = row.get("settings")
        if args.report and made is None:
            rows.append(row)  # written before seed files recorded their settings
            continue
        if want is not None and (made is None or any(made.get(key) != value for key, value in want.items())):
            print(f"learning: {path}: made with other settings ({settings_diff(made, want)}); left out",
                  file=sys.stderr)
            continue
        rows.append(row)
    return rows


def aggregate(args: argparse.Namespace) -> dict[str, Any]:
    """OUT/learning.json rebuilt from the seed files (and written). With --report, the settings are
    the stored ones (the settings the seeds ran with, not the flags of this reprint), and a suite
    whose seed files are absent keeps its stored block: a reprint never drops a stored figure."""
    out = Path(args.out)
    result: dict[str, Any] = {"settings": {k: v for k, v in vars(args).items() if k not in ("only", "report")},
                              "grpo": dict(vars(grpo_settings(args, 0))), "fresh_seed": FRESH_SEED}
    stored = out / "learning.json"
    before = json.loads(stored.read_text()) if args.report and stored.exists() else {}
    result.update({k: before[k] for k in ("settings", "grpo") if k in before})
    for task_name, arms in SUITE_ARMS.items():
        rows = current_rows(args, out, task_name, before.get("settings"))
        if not rows:
            if task_name in before:
                result[task_name] = before[task_name]
            continue
        block: dict[str, Any] = {"seeds": len(rows), "per_seed": {}, "summary": {}, "fresh": {}, "curves": {}}
        for arm in arms:
            values = [r[arm] for r in rows if arm in r]
            if values:
                block["per_seed"][arm] = values
                block["summary"][arm] = mean_std(values)
            fresh = [r[f"fresh/{arm}"] for r in rows if f"fresh/{arm}" in r]
            if fresh:
                block["fresh"][arm] = mean_std(fresh)
                block.setdefault("fresh_per_seed", {})[arm] = fresh
            samples = [r[f"samples/{arm}"] for r in rows if f"samples/{arm}" in r]
            if samples:  # completions generated in training (DAPO resampling draws extra groups)
                block.setdefault("samples", {})[arm] = statistics.fmean(samples)
            curves = [r[f"curve/{arm}"] for r in rows if f"curve/{arm}" in r]
            if curves:
                block["curves"][arm] = curves
        for key in ("best_of_n_n", "ttrl_tokens_per_problem", "seconds"):
            block[key] = [r.get(key) for r in rows]
        for key in ("ttrl_tokens_to_solve", "best_of_n_tokens_to_solve"):
            block[key] = [[t if t < math.inf else None for t in r[key]] for r in rows if key in r]
        result[task_name] = block
    (out / "learning.json").write_text(json.dumps(result, indent=2))
    return result


# -- report ------------------------------------------------------------------------------------------
NAMES = {
    "base": "base (greedy)",
    "grpo_direct": "GRPO on the hard training problems, no variants",
    "ladder": "LADDER (variants, solve-rate curriculum)",
    "ladder_ttrl": "LADDER + TTRL (final greedy answer)",
    "ever_solved": "  (ever solved during TTRL: the looser count)",
    "best_of_n": "best-of-N (verifier) from LADDER at TTRL's tokens",
    "ttrl_vote": "LADDER + TTRL --mode vote (Zuo et al.), final greedy",
    "ttrl_vote/label_accuracy": "  (majority-label accuracy during vote TTRL)",
    "ttrl_vote/reward_accuracy": "  (pseudo-reward accuracy during vote TTRL)",
    "random_reward": "control: LADDER with random rewards",
    "format_only": "control: LADDER with format-only rewards",
}


def plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def test_label(result: dict[str, Any], task_name: str) -> str:
    """What the arms were scored on: the built-in hard set, or (--tune) the dev pool."""
    unsolved = result.get("settings", {}).get("unsolved")
    limit = result.get("settings", {}).get("limit")
    cut = f", only the first {plural(limit, 'problem')} (--limit)" if limit and not result.get("settings", {}).get("tune") else ""
    cut += f", never solved by the base in {unsolved}" if unsolved else ""
    roots = result.get("settings", {}).get("train_limit")
    cut += f"; trained on {plural(roots, 'problem')}" if roots else ""
    if result.get("settings", {}).get("tune"):
        return f"dev pool ({SUITES[task_name][0]}-dev levels 3-4 + draw {DEV_SEED}{cut})"
    return f"builtin:{SUITES[task_name][1]}{cut}"


def print_report(result: dict[str, Any]) -> None:
    from rungs.report import fmt_mean_std, print_table

    for task_name in SUITES:
        block = result.get(task_name)
        if not block:
            continue
        test_name = test_label(result, task_name)
        rows = []
        for arm, (m, s) in block["summary"].items():
            name = NAMES[arm]
            if arm == "best_of_n":
                name += f" (N={'/'.join(str(n) for n in block['best_of_n_n'])})"
            fresh = block["fresh"].get(arm)
            samples = block.get("samples", {}).get(arm)
            rows.append({"arm": name, test_name: fmt_mean_std(m, s),
                         "fresh draw": fmt_mean_std(*fresh) if fresh else "-",
                         "samples generated": f"{samples:,.0f}" if samples else "-"})
        print_table(rows, ["arm", test_name, "fresh draw", "samples generated"],
                    title=f"bench/learning.py: {task_name}, greedy accuracy, mean ± std over {plural(block['seeds'], 'seed')}")


def plot(result: dict[str, Any], out: Path) -> list[Path]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from rungs.report import save_png

    paths: list[Path] = []
    blocks = [(t, result[t]) for t in SUITES if t in result]
    if not blocks:
        return paths
    fig = Figure(figsize=(5.5 * len(blocks), 4.6), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    for i, (task_name, block) in enumerate(blocks):
        ax = fig.add_subplot(1, len(blocks), i + 1)
        arms = [a for a in block["summary"] if a != "ever_solved" and "/" not in a]
        means = [block["summary"][a][0] for a in arms]
        stds = [block["summary"][a][1] for a in arms]
        ax.bar(arms, means, yerr=stds, capsize=4, color="#4c72b0")
        fresh = [(a, block["fresh"][a][0]) for a in arms if a in block["fresh"]]
        if fresh:
            ax.scatter([a for a, _ in fresh], [f for _, f in fresh], color="#dd8452", zorder=3, label="fresh draw")
        ax.set_ylabel("greedy accuracy")
        ax.set_ylim(0, 1)
        ax.set_title(f"{base_label(result)}, {task_name}: greedy accuracy per arm on\n{test_label(result, task_name)}\n"
                     f"(mean ± std over {plural(block['seeds'], 'seed')}; dots: fresh draw)", fontsize=9)
        ax.tick_params(axis="x", labelrotation=35)
        if fresh:
            ax.legend(loc="upper left")
        ax.grid(True, axis="y", alpha=0.3)
    save_png(fig, out / "learning.png")
    paths.append(out / "learning.png")

    fig = Figure(figsize=(5.5 * len(blocks), 4.2), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    for i, (task_name, block) in enumerate(blocks):
        ax = fig.add_subplot(1, len(blocks), i + 1)
        drawn = 0
        for arm, curves in block["curves"].items():
            width = min((len(c) for c in curves), default=0)
            if not width:
                continue
            mean = [statistics.fmean(c[j] for c in curves) for j in range(width)]
            smooth = [statistics.fmean(mean[max(0, j - 4):j + 1]) for j in range(width)]
            # one step (or a few): a line through one point draws nothing, so mark every point
            ax.plot(range(1, width + 1), smooth, label=arm, marker="o" if width < 10 else None)
            drawn += 1
        ax.set_xlabel("GRPO step")
        ax.set_ylabel("training accuracy (own samples, 5-step mean)")
        nothing = "" if drawn else "\n(no training curve recorded: nothing to draw)"
        ax.set_title(f"{base_label(result)}, {task_name}: training accuracy\non the problems each step trained on{nothing}",
                     fontsize=10)
        if drawn:
            ax.legend(fontsize=8)
        ax.grid(True, alpha=0.3)
    save_png(fig, out / "learning_curves.png")
    paths.append(out / "learning_curves.png")

    block = result.get("integration", {})
    if block.get("ttrl_tokens_to_solve") and block.get("best_of_n_tokens_to_solve"):
        fig = Figure(figsize=(6.5, 4.2), dpi=110, layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        for key, label in (("ttrl_tokens_to_solve", "LADDER + TTRL (final greedy answer)"),
                           ("best_of_n_tokens_to_solve", "best-of-N with the verifier")):
            runs = block[key]
            top = max((t for r in runs for t in r if t is not None), default=1.0)
            grid = [top * j / 100 for j in range(101)]
            acc = [statistics.fmean(sum(t is not None and t <= g for t in r) / len(r) for r in runs) for g in grid]
            ax.plot(grid, acc, label=label)
        ax.set_xlabel("tokens generated per test problem")
        ax.set_ylabel("share of test problems solved")
        ax.set_title("integration-hard from the LADDER weights:\nshare solved against test-time tokens per problem", fontsize=10)
        ax.legend()
        ax.grid(True, alpha=0.3)
        save_png(fig, out / "ttrl_vs_best_of_n.png")
        paths.append(out / "ttrl_vs_best_of_n.png")
    return paths


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.only:
        task_name, seed = args.only.split(":")
        print(json.dumps(run_seed(args, task_name, int(seed))))
        return 0
    if not args.report:
        run_all(args)
    out = Path(args.out)
    if args.report and not any(seed_files(out, suite) for suite in SUITES):
        # a fresh clone: the summary only, reprinted as it is; neither it nor its plots are rewritten
        print_report(stored_result(out))
        print(f"learning: {out}: no seed files; reprinted {out / 'learning.json'} as stored (plots left as they are)")
        return 0
    result = aggregate(args)
    print_report(result)
    for path in plot(result, Path(args.out)):
        print(f"plot: {path}")
    return 0


if __name__ == "__main__":
    bench_cli.run(main, "learning")
