"""LADDER against GRPO without variants at a longer budget, each stopped at its best dev step.

bench/learning.py compares the arms at a fixed 60 steps. This script asks the question the shipped
`tiny-integration-ladder` checkpoint raises: given 400 steps and the same selection rule (greedy
accuracy on builtin:integration-dev every 25 steps, keep the best step), does LADDER beat plain
GRPO on the hard training problems? Per seed it runs

    rungs ladder --problems builtin:integration-train --eval-problems builtin:integration-dev \
        --depth 2 --width 4 --max-steps 400 --eval-steps 25 --metric-for-best-model eval_accuracy
    rungs train  --problems builtin:integration-train (the same GRPO settings, no variants)

then scores each run's best weights greedily on builtin:integration-hard and on bench/learning.py's
fresh draw (seed 20261130). The selection reads dev only; the test sets are read once, at the end.
With --ttrl, test-time RL (variants, bench/learning.py's settings) then runs from each best
checkpoint on the hard set: does a model trained on variant trees make better use of them at test
time than one trained on the problems alone?

    python bench/long_budget.py                      # 3 seeds x 2 arms (about 40 CPU-minutes per run)
    python bench/long_budget.py --ttrl               # and TTRL from each run's best weights (~15 CPU-minutes each)
    python bench/long_budget.py --report             # reprint from bench/results-400 (its runs, else its stored
                                                     # long_budget.json), under the settings the runs were made with
    python bench/long_budget.py --train-limit 50 --depth 3 --width 5 --ladder cooldown=10 --dev tuning \
        --steps 600 --eval-steps 50 --parallel 3 --out bench/results-roots50-600-bestdev
                                                     # LADDER's setting (50 problems and their trees), the
                                                     # best step chosen on bench/learning.py's tuning pool
    python bench/long_budget.py ... --arms ladder    # only LADDER (a curriculum setting: GRPO is unchanged by it)
    python bench/long_budget.py --task countdown --base tiny:countdown-long-plus1500 --train-limit 20 \
        --depth 3 --width 5 --ladder cooldown=10 --dev tuning --steps 600 --eval-steps 50 --dev-only \
        --out bench/results-dev/countdown-600-roots20-plus1500-bestdev
                                                     # countdown, a tuning run: dev curves and best steps only;
                                                     # run it again without --dev-only to score the test sets
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import bench_cli  # noqa: E402

# the bench's GRPO settings (rungs/train/grpo_config.py TINY_GRPO_DEFAULTS), spelled out for `rungs train`
GRPO_FLAGS = ["--prompts-per-step", "4", "--num-generations", "16", "--max-completion-length", "64",
              "--temperature", "1.2", "--dynamic-sampling", "resample", "--dynamic-sampling-max-tries", "3",
              "--save-steps", "0"]
ARMS = {"ladder": "LADDER (variants, solve-rate curriculum)", "grpo": "GRPO on the hard training problems, no variants"}
# the flags a run was made with, recorded in long_budget.json's "settings" (and read back by --report)
SETTINGS = ("task", "base", "steps", "eval_steps", "seeds", "train_limit", "depth", "width", "ladder", "dev", "dev_only")


def command(arm: str, seed: int, args: argparse.Namespace, run_dir: Path) -> list[str]:
    """The `rungs ladder` or `rungs train` command of one run (the same GRPO settings, the same dev selection)."""
    common = ["--task", args.task, "--policy", args.base, "--problems", f"builtin:{args.task}-train",
              "--eval-problems", eval_problems(args),
              "--max-steps", str(args.steps), "--eval-steps", str(args.eval_steps), "--eval-on-start",
              "--metric-for-best-model", "eval_accuracy", "--seed", str(seed), "--threads", "1", "--no-progress",
              "--out", str(run_dir)]
    if args.train_limit:
        common += ["--limit", str(args.train_limit)]
    if arm == "ladder":
        extra = [flag for key, _, value in (item.partition("=") for item in args.ladder)
                 for flag in (f"--{key.replace('_', '-')}", value)]
        return [sys.executable, "-m", "rungs.cli", "ladder", "--depth", str(args.depth), "--width", str(args.width),
                "--curriculum", "solve_rate", *extra, *common]
    return [sys.executable, "-m", "rungs.cli", "train", *common, *GRPO_FLAGS]


def eval_problems(args: argparse.Namespace) -> str:
    """Where the best step is chosen: builtin:TASK-dev (all levels), or with --dev tuning
    bench/learning.py's tuning pool (dev levels 3-4 plus draws under DEV_SEED), written to OUT/dev-pool.jsonl."""
    if args.dev == "builtin":
        return f"builtin:{args.task}-dev"
    import learning

    from rungs.data import write_jsonl

    path = Path(args.out) / "dev-pool.jsonl"
    if not path.exists():
        write_jsonl(path, (p.to_dict() for p in learning.dev_problems(args.task)))
    return str(path)


def ttrl_command(arm: str, seed: int, out: Path, task: str = "integration") -> list[str]:
    """Test-time RL from a run's best weights on the hard set (bench/learning.py's TTRL settings)."""
    return [sys.executable, "-m", "rungs.cli", "ttrl", "--task", task,
            "--policy", f"tiny:{out / f'{arm}-seed{seed}' / 'best'}", "--problems", f"builtin:{task}-hard",
            "--steps", "8", "--check-every", "4", "--width", "4", "--seed", str(seed), "--threads", "1",
            "--no-progress", "--out", str(out / f"{arm}-seed{seed}-ttrl")]


DEV_ONLY_MARK = "DEV_ONLY"  # in OUT while its runs are a tuning run (--dev-only): --report then reads no test set


def run_all(args: argparse.Namespace) -> None:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    check_reused_runs(args, out)  # before anything in OUT changes
    mark = out / DEV_ONLY_MARK
    if args.dev_only:
        mark.write_text("runs made with --dev-only: no test set read; run without it to score the test sets\n")
    elif mark.exists():
        mark.unlink()  # the same runs, now scored on the test sets, deliberately
    for stage in ("train", "ttrl") if args.ttrl else ("train",):
        run_stage(args, out, stage)


def made_with(config: dict[str, Any], arm: str) -> dict[str, Any]:
    """The settings a training run's config.yaml records, under this script's flag names (only
    those it records: a setting it lacks is not compared)."""
    import dataclasses

    from rungs.pipelines.ladder import LadderConfig
    from rungs.runs import absolute_setting

    job = config.get("ladder", config) if isinstance(config.get("ladder", config), dict) else {}
    grpo = config.get("grpo") if isinstance(config.get("grpo"), dict) else {}
    made: dict[str, Any] = {}
    if "task" in job:
        made["task"] = job["task"]
    if "policy" in job:  # stored absolute (rungs.runs.absolute_inputs); compared as `--resume` does
        made["base"] = absolute_setting("policy", job["policy"])
    if "limit" in job:
        made["train_limit"] = job["limit"] or 0
    if "eval_problems" in job:
        made["dev"] = "builtin" if job["eval_problems"] == f"builtin:{job.get('task', 'integration')}-dev" else "tuning"
    if "eval_steps" in grpo:
        made["eval_steps"] = grpo["eval_steps"]
    if arm == "ladder" and "depth" in job:
        made.update(depth=job["depth"], width=job.get("width"))
        made["ladder"] = ladder_extra({f.name: job[f.name] for f in dataclasses.fields(LadderConfig)
                                       if f.name not in OWN_LADDER and f.name in job}, "config.yaml")
    return made


# the LadderConfig settings command() sets itself, or that name a path; the rest come from --ladder KEY=VALUE
OWN_LADDER = frozenset({"task", "policy", "problems", "eval_problems", "out", "limit", "depth", "width", "curriculum",
                        "variants"})


def _plain(value: Any) -> Any:
    """Lists and tuples (at any depth) as lists: a run's YAML and a flag's value spell them differently."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def ladder_extra(values: dict[str, Any], source: str) -> dict[str, Any]:
    """The LadderConfig settings in `values` that differ from their defaults, each read as `rungs ladder`
    reads it (rungs.config.coerce_setting: 'a,b' for a list setting is ['a', 'b']; a default made by a
    default_factory, such as variant_transforms' [], counts as a default), lists as lists. The same
    normalisation for a run's config.yaml and for these flags, so equal settings compare equal."""
    import dataclasses
    import typing

    from rungs.config import coerce_setting
    from rungs.errors import UserError
    from rungs.pipelines.ladder import LadderConfig

    fields = {f.name: f for f in dataclasses.fields(LadderConfig)}
    hints = typing.get_type_hints(LadderConfig)
    extra: dict[str, Any] = {}
    for key, value in values.items():
        field = fields.get(key)
        if field is None:  # not a LadderConfig setting: `rungs ladder` refuses it; compared as given
            extra[key] = _plain(value)
            continue
        try:
            value = coerce_setting(key, value, hints[key], source)
        except UserError:
            pass  # a value of the wrong kind: `rungs ladder` refuses it; compared as given
        if field.default is not dataclasses.MISSING:
            default = field.default
        elif field.default_factory is not dataclasses.MISSING:
            default = field.default_factory()
        else:
            extra[key] = _plain(value)
            continue
        if _plain(value) != _plain(default):
            extra[key] = _plain(value)
    return extra


def flag_settings(args: argparse.Namespace, arm: str) -> dict[str, Any]:
    """What these flags ask a run of `arm` to be made with (made_with's keys)."""
    import learning

    from rungs.runs import absolute_setting

    # the base as `rungs ladder/train` stores it: a relative tiny:DIR made absolute (rungs.runs.absolute_inputs)
    wanted: dict[str, Any] = {"task": args.task, "base": absolute_setting("policy", args.base),
                              "train_limit": args.train_limit or 0, "dev": args.dev, "eval_steps": args.eval_steps}
    if arm == "ladder":
        given = {key.replace("-", "_"): learning.parse_value(value)
                 for key, _, value in (item.partition("=") for item in args.ladder)}
        wanted.update(depth=args.depth, width=args.width, ladder=ladder_extra(given, "--ladder"))
    return wanted


def check_reused_runs(args: argparse.Namespace, out: Path) -> None:
    """Raises SystemExit (one line naming the run and each differing setting) when a run this
    command would reuse or resume was made with other settings than these flags ask for: its
    figures would be reported under the wrong settings. (The budget, --steps, may grow.)"""
    import yaml

    for arm in args.arms:
        for seed in range(args.seeds):
            config_path = out / f"{arm}-seed{seed}" / "config.yaml"
            if not config_path.is_file():
                continue
            made = made_with(yaml.safe_load(config_path.read_text()) or {}, arm)
            wanted = flag_settings(args, arm)
            differ = [key for key in made if key in wanted and made[key] != wanted[key]]
            if differ:
                was = ", ".join(f"{key} {made[key]!r}" for key in differ)
                asked = ", ".join(f"{key} {wanted[key]!r}" for key in differ)
                raise SystemExit(f"long_budget: {config_path.parent} was made with {was}, but these flags ask for "
                                 f"{asked}: give the run's settings, another --out, or remove the run to redo it")


def run_stage(args: argparse.Namespace, out: Path, stage: str) -> None:
    import learning

    suffix = "" if stage == "train" else "-ttrl"
    jobs = []
    for arm in args.arms:  # every LADDER seed first: its figures arrive soonest
        for seed in range(args.seeds):
            run_dir = out / f"{arm}-seed{seed}{suffix}"
            if (run_dir / "summary.json").exists() and (
                    stage == "ttrl" or json.loads((run_dir / "summary.json").read_text())["total_steps"] >= args.steps):
                print(f"{arm} seed {seed}{suffix}: reused the finished run in {run_dir}", flush=True)
                continue  # done; a finished run shorter than --steps is resumed to it (the rate is constant)
            cmd = command(arm, seed, args, run_dir) if stage == "train" else ttrl_command(arm, seed, out, args.task)
            if (run_dir / "config.yaml").exists():
                # A resumed run keeps the settings in its config.yaml; only the budget may grow.
                cmd = [*cmd[:cmd.index("rungs.cli") + 2], "--resume", str(run_dir), "--threads", "1", "--no-progress",
                       *(["--max-steps", str(args.steps)] if stage == "train" else [])]
            jobs.append((f"{arm} seed {seed}{suffix}", cmd, out / f"{arm}-seed{seed}{suffix}.log"))
    learning.run_processes(jobs, args.parallel, poll_s=5.0)


def run_dirs(out: Path, arm: str) -> dict[int, Path]:
    """{seed: OUT/ARM-seedN} of every training run of `arm` that has started (its config.yaml exists)."""
    found = {}
    for path in out.glob(f"{arm}-seed*"):
        seed = path.name[len(f"{arm}-seed"):]
        if seed.isdigit() and (path / "config.yaml").is_file():
            found[int(seed)] = path
    return dict(sorted(found.items()))


def runs_settings(out: Path) -> dict[str, Any]:
    """The settings of the training runs in OUT, read back from their config.yaml (a `rungs ladder`
    run: its `ladder` and `grpo` sections; a `rungs train` run: its job settings at top level):
    steps (the longest budget), eval_steps, train_limit, dev, seeds (one more than the highest seed
    started), task, base (the policy the runs start from) and, from a LADDER run, depth, width and the
    further settings it was given (`ladder`,
    every LadderConfig setting that differs from its default). {} when no run has started."""
    import dataclasses

    import yaml

    from rungs.pipelines.ladder import LadderConfig

    runs = {arm: run_dirs(out, arm) for arm in ARMS}
    configs = {arm: [yaml.safe_load((d / "config.yaml").read_text()) or {} for d in dirs.values()]
               for arm, dirs in runs.items()}
    every = [c for found in configs.values() for c in found]
    if not every:
        return {}
    job = (configs["ladder"] or every)[0]
    job = job.get("ladder", job)
    task = job.get("task") or "integration"
    settings: dict[str, Any] = {
        "task": task, "base": job.get("policy") or "tiny",
        "steps": max(int(c.get("grpo", {}).get("max_steps", 0)) for c in every),
        "eval_steps": (configs["ladder"] or every)[0].get("grpo", {}).get("eval_steps"),
        "seeds": 1 + max(seed for dirs in runs.values() for seed in dirs),
        "train_limit": job.get("limit") or 0,
        "dev": "builtin" if job.get("eval_problems") == f"builtin:{task}-dev" else "tuning",
        "dev_only": (out / DEV_ONLY_MARK).exists()}
    if configs["ladder"]:
        ladder = configs["ladder"][0].get("ladder", {})
        settings.update(depth=ladder.get("depth"), width=ladder.get("width"))
        # the settings command() sets itself, or that name a path; the rest came from --ladder KEY=VALUE
        # (a list as the flag takes it: variant_transforms=a,b)
        extra = ladder_extra({f.name: ladder[f.name] for f in dataclasses.fields(LadderConfig)
                              if f.name not in OWN_LADDER and f.name in ladder}, "config.yaml")
        settings["ladder"] = [f"{key}={','.join(map(str, value)) if isinstance(value, list) else value}"
                              for key, value in extra.items()]
    return {key: value for key, value in settings.items() if value is not None}


def stored_summary(out: Path) -> dict[str, Any]:
    """OUT/long_budget.json as stored ({} when there is none)."""
    stored = out / "long_budget.json"
    return json.loads(stored.read_text()) if stored.is_file() else {}


def report_args(args: argparse.Namespace) -> argparse.Namespace:
    """For --report: the flags of this reprint replaced by the settings the runs were made with
    (not those of this command line): the stored long_budget.json's, then what the runs' own
    config.yaml says for any setting it lacks (results written before a setting existed), then
    the defaults. Seeds and steps are the larger of the stored and the runs' (a run extended
    since). Every arm is considered: those with runs are scored, the others keep their stored
    figures."""
    out = Path(args.out)
    stored = stored_summary(out).get("settings", {})
    runs = runs_settings(out)
    defaults = vars(parse_args(["--out", args.out]))
    settings = {key: stored.get(key, runs.get(key, defaults[key])) for key in SETTINGS}
    for key in ("seeds", "steps"):
        settings[key] = max(int(stored.get(key, 0)), int(runs.get(key, 0))) or defaults[key]
    return argparse.Namespace(**{**vars(args), **settings, "arms": list(ARMS)})


def score(args: argparse.Namespace) -> dict[str, Any]:
    """Best-dev-step weights of every run, scored on the hard set and the fresh draw (cached per
    run; with --dev-only neither is read, only the dev selection is reported), written to OUT/long_budget.json. An arm whose runs are not all finished (or absent, as in
    a fresh clone) keeps the figures a stored long_budget.json has for it. Raises SystemExit (one
    line naming the folder) when no arm has figures at all: nothing is written then."""
    import learning
    import torch

    from rungs.data import load_problems
    from rungs.policies import load_policy
    from rungs.runs import read_jsonl
    from rungs.tasks import get_task
    from rungs.verify.pool import VerifierPool

    torch.set_num_threads(1)
    out = Path(args.out)
    task = get_task(args.task)
    tests = not args.dev_only
    hard = load_problems(f"builtin:{args.task}-hard") if tests else []
    fresh = learning.fresh_problems(args.task, 40) if tests else []
    result: dict[str, Any] = {"settings": {key: getattr(args, key) for key in SETTINGS},
                              "fresh_seed": learning.FRESH_SEED, "arms": {}}
    stored = stored_summary(out).get("arms", {})
    with VerifierPool(task, workers=1) as pool:
        for arm in ARMS:
            missing = [seed for seed in range(args.seeds) if not (out / f"{arm}-seed{seed}" / "summary.json").exists()]
            if arm not in args.arms or missing:  # --report while runs are going, or on a fresh clone
                if arm in stored:
                    print(f"{ARMS[arm]}: kept as stored in {out / 'long_budget.json'}"
                          + (f" (seeds {', '.join(map(str, missing))} not finished)" if arm in args.arms else ""))
                    result["arms"][arm] = stored[arm]
                elif arm in args.arms and run_dirs(out, arm):
                    print(f"{ARMS[arm]}: seeds {', '.join(map(str, missing))} not finished; left out")
                continue
            rows = []
            for seed in range(args.seeds):
                run_dir = out / f"{arm}-seed{seed}"
                cache = run_dir / "scores.json"
                summary = json.loads((run_dir / "summary.json").read_text())
                cached = json.loads(cache.read_text()) if cache.exists() else {}
                if cached.get("steps") == summary["total_steps"] and ("hard" in cached or not tests):
                    # a tuning run shows no test figure, even one cached by an earlier scoring
                    rows.append(cached if tests else {k: v for k, v in cached.items() if k not in ("hard", "fresh")})
                    continue
                events = read_jsonl(run_dir / "events.jsonl")
                best = summary["eval_step_best"]
                policy = load_policy(f"tiny:{run_dir / 'best'}", task=args.task, seed=seed)
                row = {"seed": seed, "steps": summary["total_steps"], "best_step": best, "dev": summary["eval_accuracy_best"],
                       "dev_curve": [[e["step"], e["eval_accuracy"]] for e in events if "eval_accuracy" in e],
                       "samples_to_best": int(sum(e.get("num_groups", 0) for e in events
                                                  if "eval_accuracy" not in e and e.get("step", 0) <= best) * 16)}
                if tests:
                    row.update(hard=learning.greedy_accuracy(policy, task, pool, hard),
                               fresh=learning.greedy_accuracy(policy, task, pool, fresh))
                cache.write_text(json.dumps(row, indent=2))
                rows.append(row)
            for row in rows:  # test-time RL from the best weights, where it was run (--ttrl)
                ttrl = out / f"{arm}-seed{row['seed']}-ttrl" / "summary.json"
                if ttrl.exists():
                    summary = json.loads(ttrl.read_text())
                    row["ttrl"] = summary["accuracy_after"]
                    row["ever_solved"] = summary["ever_solved_during_training"]
            keys = ("dev",) + (("hard", "fresh") if all("hard" in r for r in rows) else ()) + (
                ("ttrl", "ever_solved") if all("ttrl" in r for r in rows) else ())
            result["arms"][arm] = {"per_seed": rows,
                                   **{k: learning.mean_std([r[k] for r in rows]) for k in keys},
                                   "best_step": [r["best_step"] for r in rows],
                                   "samples_to_best": learning.mean_std([r["samples_to_best"] for r in rows])}
    reached = [int(r.get("steps", 0)) for block in result["arms"].values() for r in block.get("per_seed", [])]
    result["settings"]["steps"] = max([int(args.steps), *reached])  # a run made longer before is reported as such
    if not result["arms"]:
        raise SystemExit(f"long_budget: {out}: no finished run (expected ARM-seedN/summary.json for "
                         f"N < {args.seeds}, ARM one of {', '.join(args.arms)}) and no stored long_budget.json")
    (out / "long_budget.json").write_text(json.dumps(result, indent=2))
    return result


def report(result: dict[str, Any], out: Path, *, draw: bool = True) -> None:
    """The table, and (with `draw`) OUT/long_budget.png."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from rungs.report import fmt_mean_std, print_table, save_png

    task = result["settings"].get("task", "integration")
    rows = [{"arm": ARMS[arm], "steps": "/".join(sorted({str(r.get("steps", result["settings"]["steps"]))
                                                           for r in block["per_seed"]})),
             "best dev step": "/".join(str(s) for s in block["best_step"]),
             "dev (best)": fmt_mean_std(*block["dev"]),
             f"builtin:{task}-hard": fmt_mean_std(*block["hard"]) if "hard" in block else "not read (--dev-only)",
             "fresh draw": fmt_mean_std(*block["fresh"]) if "fresh" in block else "-",
             "samples to best": f"{block['samples_to_best'][0]:,.0f}",
             **({"+ TTRL, hard": fmt_mean_std(*block["ttrl"]), "(ever solved)": fmt_mean_std(*block["ever_solved"])}
                if "ttrl" in block else {})}
            for arm, block in result["arms"].items()]
    print_table(rows, list(rows[0]), title=f"bench/long_budget.py, {task}: up to {result['settings']['steps']} steps, best dev step, "
                                            f"greedy accuracy, mean ± std over {result['settings']['seeds']} seed{'' if result['settings']['seeds'] == 1 else 's'}")
    if not draw:
        return
    fig = Figure(figsize=(7, 4.2), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for (arm, block), color in zip(result["arms"].items(), ("#4c72b0", "#dd8452")):
        for i, row in enumerate(block["per_seed"]):
            steps, acc = zip(*row["dev_curve"])
            ax.plot(steps, acc, color=color, alpha=0.8, label=ARMS[arm] if i == 0 else None)
    ax.set_xlabel("GRPO step")
    dev = result["settings"].get("dev", "builtin")
    ax.set_ylabel("greedy accuracy, " + (f"builtin:{task}-dev" if dev == "builtin" else "dev levels 3-4 + draws"))
    top = max((acc for block in result["arms"].values() for row in block["per_seed"] for _, acc in row["dev_curve"]),
              default=1.0)
    ax.set_ylim(0, min(1.0, top * 1.25 + 0.02))
    ax.set_title(f"{task}: LADDER vs GRPO without variants, held-out dev accuracy per seed\n"
                 "(the best dev step of each run is what the test sets score)", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    save_png(fig, out / "long_budget.png")
    print(f"plot: {out / 'long_budget.png'}")


def arms_list(text: str) -> list[str]:
    """`--arms ladder,grpo` -> ["ladder", "grpo"] in ARMS' order (LADDER first); an unknown name is an error."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in ARMS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a comma-separated list of {', '.join(ARMS)}")
    return [arm for arm in ARMS if arm in names]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", choices=("integration", "countdown"), default="integration", help="default integration")
    ap.add_argument("--base", default="tiny", metavar="SPEC",
                    help="the tiny checkpoint both arms start from (default: the task's shipped one); tiny:DIR or tiny:NAME")
    ap.add_argument("--seeds", type=bench_cli.positive, default=3, help="seeds per arm (default 3)")
    ap.add_argument("--steps", type=bench_cli.positive, default=400,
                    help="GRPO steps of each run (default 400); a finished shorter run is resumed to it")
    ap.add_argument("--eval-steps", type=bench_cli.positive, default=25,
                    help="greedy dev evaluation every N steps, where the best step is chosen (default 25)")
    ap.add_argument("--train-limit", type=bench_cli.non_negative, default=0,
                    help="train both arms on only the first N training problems (LADDER: their trees; 0: all 200)")
    ap.add_argument("--depth", type=bench_cli.positive, default=2, help="LADDER's variant-tree depth")
    ap.add_argument("--width", type=bench_cli.positive, default=4, help="LADDER's variants per node")
    ap.add_argument("--ladder", action="append", default=[], metavar="KEY=VALUE",
                    help="a further `rungs ladder` setting, e.g. cooldown=10 (passed as --cooldown 10)")
    ap.add_argument("--dev", choices=("builtin", "tuning"), default="builtin",
                    help="the pool the best step is chosen on: builtin:integration-dev, or bench/learning.py's "
                         "tuning pool (dev levels 3-4 and draws; the pool its --tune settings were chosen on)")
    ap.add_argument("--arms", type=arms_list, default=list(ARMS), metavar="ARM[,ARM]",
                    help="which arms to run and score, of " + ", ".join(ARMS) + " (default: both); e.g. `ladder` "
                         "for a LADDER setting whose GRPO arm, unchanged by it, was run before")
    ap.add_argument("--parallel", type=bench_cli.positive, default=2, help="runs at once, each a `rungs` process on one thread")
    ap.add_argument("--ttrl", action="store_true", help="then test-time RL (variants) from each best checkpoint on the hard set")
    ap.add_argument("--dev-only", action="store_true",
                    help="a tuning run: report the dev curves and best steps, and read no test set (hard, fresh draw)")
    ap.add_argument("--report", action="store_true",
                    help="only score the finished runs and reprint, under the settings the runs were made with "
                         "(the flags above are ignored); without runs (a fresh clone), reprint the stored "
                         "long_budget.json as it is")
    ap.add_argument("--out", default=str(HERE.parent / "bench" / "results-400"),
                    help="results folder: the runs, long_budget.json and its plot (default bench/results-400)")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = Path(args.out)
    if args.dev_only and args.ttrl:
        raise SystemExit("long_budget: --ttrl runs on the hard test set; --dev-only reads no test set (give one)")
    if not args.report:
        run_all(args)
    elif not any(run_dirs(out, arm) for arm in ARMS):  # a fresh clone: the summary only, reprinted as stored
        result = stored_summary(out)
        if not result.get("arms"):
            raise SystemExit(f"long_budget: {out}: no runs (ARM-seedN/) and no long_budget.json with results "
                             "(expected the --out folder of a bench/long_budget.py run)")
        report(result, out, draw=False)
        print(f"long_budget: {out}: no runs; reprinted {out / 'long_budget.json'} as stored (plot left as it is)")
        return 0
    else:
        args = report_args(args)
    report(score(args), out)
    return 0


if __name__ == "__main__":
    bench_cli.run(main, "long_budget")
