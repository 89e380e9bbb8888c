"""The evaluation job: accuracy against test-time compute, for any task, policy and strategies.

For each seed and each sampler (plain sampling, FIRE, budget forcing) it draws N = max(n)
samples per problem once -- plus one greedy sample per problem when greedy is asked for -- and
verifies them in the sandboxed `VerifierPool`. Every smaller k is read off those N samples:
pass@k by the unbiased estimator, and each selector (maj@k, best-of-k, weighted@k) averaged over
random k-subsets (search-and-learn's protocol). Figures are mean ± std over seeds; the cost axis
is tokens generated (and wall time) per problem.

Crash-safe: each finished problem is appended as one JSON line to samples.jsonl; `--resume`
reads them back, drops a torn last line, and does only what is missing. Problems are sampled in
fixed batches with a seed derived from (seed, sampler, seed index, batch index) -- never from
what happened to be done before -- and the summary is always computed from the records as stored,
so a resumed run's summary equals an uninterrupted run's (for a policy that is deterministic given
its seed, as the tiny and hf policies are on CPU).

Outputs in --out: config.yaml, samples.jsonl, results.json (config, problems, every sample with
its verdict and answer key, summary), accuracy_vs_n.png, accuracy_vs_tokens.png, and the table.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rungs.config import help_field, load_yaml, to_dict
from rungs.errors import UserError
from rungs.metrics import DEFAULT_SUBSETS, mean_std, pass_at_k, stable_rng, subsets
from rungs.pipelines.job import JobConfig
from rungs.policies.base import Policy, SamplingParams
from rungs.runs import atomic_write_json, atomic_write_text
from rungs.strategies import Plan, Sample, Sampler, plan
from rungs.tasks.base import Task
from rungs.types import Problem

RECORDS_FILE = "samples.jsonl"
RESULTS_FILE = "results.json"
CONFIG_FILE = "config.yaml"
DEFAULT_MAX_NEW_TOKENS = 256
# The most --max-new-tokens `rungs eval` and `rungs generate` take (2^24 = 16,777,216, above the longest
# context of today's models): a larger value is refused in one line rather than handed to a policy to
# allocate or sample for hours. The tiny and hf policies also cap each completion at their model's context.
MAX_NEW_TOKENS = 1 << 24
# Settings that decide which samples are drawn: a resumed run must not change them.
# Tasks whose default set is not builtin:<task>-easy.
DEFAULT_PROBLEMS = {"arc": "builtin:arc1-evaluation"}
SAMPLING_KEYS = ("task", "problems", "policy", "model", "temperature", "top_p", "top_k", "max_new_tokens",
                 "seed", "batch_size", "limit",
                 "reasoning_delimiters")  # and how they are scored: records already made keep their verdicts


@dataclass
class EvalConfig(JobConfig):
    """Settings of `rungs eval` (also accepted from `--config FILE.yaml`; the shared ones from JobConfig)."""

    POLICY_OPTIONS_EXAMPLE = "dtype: bfloat16"

    problems: str | None = help_field(None, "problems: a .jsonl/.json/.parquet file, a dataset directory, or "
                                            "builtin:NAME; None = builtin:<task>-easy (arc: builtin:arc1-evaluation)")
    policy: str = help_field("tiny", "policy: tiny, tiny:PATH, hf:MODEL, openai:URL, vllm:MODEL")
    model: str | None = help_field(None, "model name (for the openai policy: the served model)")
    policy_options: dict[str, Any] = help_field(
        {}, "settings passed to the policy (dtype, device, lora_rank, api_key, ...): --policy-option KEY=VALUE on "
        "the command line, a mapping in YAML")
    strategy: list[str] = help_field(["greedy", "majority", "best_of_n"],
                                     "strategies (pass@k is reported with any sampling strategy; greedy alone samples nothing): greedy, sample, majority (maj@k), best_of_n[:SCORER], "
                                     "weighted[:SCORER], fire[:T[:K]], budget_forcing[:WAITS[:THINK_TOKENS]]")
    n: list[int] = help_field([1, 2, 4, 8, 16], "sample counts k to report; max(n) samples are drawn per problem")
    seeds: int = help_field(3, "independent repetitions; figures are mean and std over them")
    seed: int = help_field(0, "base random seed")
    temperature: float = help_field(1.0, "sampling temperature")
    top_p: float = help_field(1.0, "nucleus sampling threshold")
    top_k: int = help_field(0, "top-k sampling (0 = off)")
    max_new_tokens: int | None = help_field(None, f"tokens per completion; None = the policy's default, else {DEFAULT_MAX_NEW_TOKENS}")
    subsets: int = help_field(DEFAULT_SUBSETS, "random k-subsets per problem and k for maj@k, best-of-k, weighted@k")
    batch_size: int = help_field(8, "problems per generate call")
    resume: bool = help_field(False, "continue the run in --out (without --out: the latest runs/eval-<task>-*)")
    plot: bool = help_field(True, "write PNG plots")
    progress: bool = help_field(True, "show a progress bar")

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.strategy, str):
            self.strategy = [s for s in self.strategy.split(",") if s.strip()]
        if isinstance(self.n, (int, str)):
            self.n = [int(x) for x in str(self.n).split(",") if x.strip()]
        if not self.n or any(not isinstance(k, int) or k < 1 for k in self.n):
            raise UserError(f"--n: expected positive integers such as 1,2,4,8, got {self.n}")
        self.n = sorted(set(self.n))
        for name, low in (("seeds", 1), ("subsets", 1), ("batch_size", 1)):
            if getattr(self, name) < low:
                raise UserError(f"--{name.replace('_', '-')}: expected an integer >= {low}, got {getattr(self, name)}")
        check_sampling_flags(self.temperature, self.top_p, self.top_k, self.max_new_tokens)
        if self.problems is None:
            from rungs.pipelines.job import default_problems

            self.problems = DEFAULT_PROBLEMS.get(self.task) or default_problems(self.task, "easy", "problems to evaluate on")

    @property
    def samples_per_problem(self) -> int:
        return max(self.n)


def check_sampling_flags(temperature: float, top_p: float, top_k: int, max_new_tokens: int | None) -> None:
    """The sampling flags `rungs eval` and `rungs generate` share, checked the same way: a one-line
    UserError naming the flag and the value for a temperature that is not a finite number >= 0, a
    top-p outside (0, 1], a negative top-k (0 = off) or max-new-tokens outside [1, MAX_NEW_TOKENS] (None =
    the default)."""
    if not (temperature >= 0 and math.isfinite(temperature)):  # NaN fails every comparison
        raise UserError(f"--temperature: expected a finite number >= 0, got {temperature}")
    if not 0 < top_p <= 1:
        raise UserError(f"--top-p: expected a number in (0, 1], got {top_p}")
    if top_k < 0:
        raise UserError(f"--top-k: expected an integer >= 0 (0 = off), got {top_k}")
    if max_new_tokens is not None and not 1 <= max_new_tokens <= MAX_NEW_TOKENS:
        raise UserError(f"--max-new-tokens: expected an integer in [1, {MAX_NEW_TOKENS}] (tokens per completion), "
                        f"got {max_new_tokens}")


@dataclass
class EvalResult:
    out_dir: Path
    summary: dict[str, Any]
    records: list[dict[str, Any]]
    table: str = ""


# -- records: one JSON line per (sampler, seed, problem) -------------------------------------------
def record_problem(row: Any) -> str | None:
    """What is wrong with a record of an evaluation's samples.jsonl (None when nothing): one object
    per (sampler, seed, problem) as `rungs.pipelines.evaluate` writes it, each of its samples as
    `Sample.to_dict` writes it (`rungs.strategies.base.Sample`), with a verdict of a known status."""
    from rungs.runs import row_problem
    from rungs.types import Status

    why = row_problem(row, {"sampler": str, "seed": int, "problem_id": str, "samples": list, "wall_s": float},
                      optional=("wall_s",))
    if why:
        return why
    for i, sample in enumerate(row["samples"]):
        why = row_problem(sample, {"text": str, "verdict": dict, "key": str | None, "num_tokens": int,
                                   "mean_logprob": float | None, "finish_reason": str},
                          optional=("key", "num_tokens", "mean_logprob", "finish_reason"))
        if not why:
            verdict = sample["verdict"]
            why = row_problem(verdict, {"reward": float, "status": str, "detail": str, "answer": str | None},
                              optional=("detail", "answer"))
            if not why and verdict["status"] not in {s.value for s in Status}:
                why = f"verdict status {verdict['status'][:24]!r}; expected one of {', '.join(s.value for s in Status)}"
            why = why and f"verdict: {why}"
        if why:
            return f"samples[{i}]: {why}"
    return None


def read_records(path: Path) -> list[dict[str, Any]]:
    """Complete records of a samples.jsonl, for a resume: a torn last line (a crash mid-write) is
    dropped silently; a damaged line or record (not JSON, a field missing or of the wrong type,
    `record_problem`) costs that record, which is recomputed, with one line `FILE:LINE: recomputed:
    what is wrong` on stderr. The file is rewritten without them, so that appends start clean."""
    from rungs.runs import read_checked_jsonl

    dropped: list[int] = []
    records = [row for _, row in read_checked_jsonl(path, record_problem, "recomputed", dropped=dropped)]
    if dropped:
        atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    return records


def append_record(handle: Any, record: dict[str, Any]) -> None:
    """One line, one write, flushed to disk before the next problem starts."""
    handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    handle.flush()
    os.fsync(handle.fileno())


def _record_key(record: dict[str, Any]) -> tuple[str, int, str]:
    return record["sampler"], int(record["seed"]), str(record["problem_id"])


# -- the job ---------------------------------------------------------------------------------------
def _out_dir(config: EvalConfig) -> Path:
    if config.out:
        return Path(config.out)
    if config.resume:
        return _latest_out(config.task)
    return Path("runs") / f"eval-{config.task}-{time.strftime('%Y%m%d-%H%M%S')}"


def _latest_out(task: str) -> Path:
    root = Path("runs")
    found = sorted(root.glob(f"eval-{task}-*")) if root.is_dir() else []
    if not found:
        raise UserError(f"--resume: no earlier run in {root}/eval-{task}-*; pass --out DIR")
    return found[-1]


def _check_resumable(out: Path, config: EvalConfig) -> None:
    path = out / CONFIG_FILE
    if not path.exists():
        return
    from rungs.runs import absolute_setting

    before = load_yaml(path)
    for key in SAMPLING_KEYS:  # paths compare as absolute ones (config.yaml stores them so)
        if key in before and absolute_setting(key, before[key]) != absolute_setting(key, getattr(config, key)):
            raise UserError(f"--resume: {path} has {key}={before[key]!r}, the command line {getattr(config, key)!r}; "
                            f"resuming must not change how samples are drawn or scored (drop the flag; a new evaluation needs another --out)")
    if "n" in before and max(before["n"]) != config.samples_per_problem:
        raise UserError(f"--resume: {path} drew max(n)={max(before['n'])} samples per problem, the command line "
                        f"{config.samples_per_problem}; resuming must not change how samples are drawn (drop --n)")


def resume_config(given: dict[str, Any], source: str = "command line") -> EvalConfig:
    """The settings of `rungs eval --resume [--out DIR]`: those stored in DIR/config.yaml (DIR
    defaults to the latest runs/eval-<task>-*), with the flags `given` on top. A flag that would
    change how samples are drawn (SAMPLING_KEYS, max(n)) and differs from the stored value is a
    UserError; the others (strategies, other n with the same max(n), more seeds, workers, plots)
    apply. A directory without a stored evaluation is a UserError, as for ladder and ttrl (and
    Transformers' Trainer): a mistyped --out must not start a long run."""
    from rungs.runs import RunDir

    given = {**given, "resume": True}
    out = Path(given["out"]) if given.get("out") else _latest_out(str(given.get("task", EvalConfig.task)))
    given["out"] = str(out)
    if not (out / CONFIG_FILE).exists():
        raise UserError(f"--resume: {out} is not an evaluation run directory (no {CONFIG_FILE}); "
                        "drop --resume to start one there")
    run = RunDir.open(out, job="eval")
    names = {f.name for f in dataclasses.fields(EvalConfig)}
    stored = {k: v for k, v in run.read_config().items() if k in names}
    if isinstance(stored.get("policy_options"), dict) and isinstance(given.get("policy_options"), dict):
        # --policy-option adds a device or a credential (never stored) to the stored ones, nothing else
        from rungs.runs import merge_policy_options

        given["policy_options"] = {**stored["policy_options"],
                                   **merge_policy_options(out / CONFIG_FILE, stored["policy_options"], given["policy_options"])}
    return _from_dict({**stored, **given}, source)  # evaluate() refuses a conflicting flag


def _from_dict(values: dict[str, Any], source: str) -> EvalConfig:
    from rungs.config import from_dict

    return from_dict(EvalConfig, values, source=source)


def _batches(problems: Sequence[Problem], size: int) -> Iterator[tuple[int, list[Problem]]]:
    for b, start in enumerate(range(0, len(problems), size)):
        yield b, list(problems[start:start + size])


def verify_samples(pool: Any, task: Task, problems: Sequence[Problem], completions: Sequence[Any]) -> list[Sample]:
    """Verdicts and answer keys of completions (problems[i] <-> completions[i]), in the pool."""
    verdicts = pool.verify(list(problems), [c.text for c in completions])
    answers = [task.extract_answer(c.text) for c in completions]  # a linear scan, safe here
    keys = pool.answer_keys(list(problems), answers)
    return [Sample.from_completion(c, v, k) for c, v, k in zip(completions, verdicts, keys)]


def evaluate(config: EvalConfig, *, policy: Policy | None = None, task: Task | None = None,
             pool: Any = None, echo: bool = True) -> EvalResult:
    """Run (or resume) an evaluation; `policy`, `task`, `pool` may be given (tests, notebooks)."""
    from rungs.data import load_task_problems
    from rungs.pipelines.job import job_scope
    from rungs.runs import RunDir

    out = _out_dir(config)
    settings = {"job": "eval", **to_dict(config)}
    resuming = config.resume and (out / CONFIG_FILE).exists()
    # A resumed run is reopened first (its problem files must be unchanged: RunDir.check_inputs);
    # a new one checks its input before it makes a directory, and job_scope removes the directory
    # again if the job fails before a sample is stored.
    run_dir = RunDir.open(out, job="eval", lock=True) if resuming else None
    try:
        if task is None:
            task = config.build_task()
        problems = load_task_problems(config.problems, task, config.limit, need_answers=True)
        the_plan = plan(config.strategy)
    except BaseException:
        if run_dir is not None:
            run_dir.release()
        raise
    if run_dir is None:  # refuses a directory that holds a run (of any job), and locks the new one
        run_dir = RunDir.create(out, settings)
    with job_scope(run_dir, "eval"):
        return _evaluate(config, out, run_dir, settings, problems, the_plan, policy, task, pool, echo)


def _evaluate(config: EvalConfig, out: Path, run_dir: Any, settings: dict[str, Any], problems: list[Problem],
              the_plan: Plan, policy: Policy | None, task: Task, pool: Any, echo: bool) -> EvalResult:
    records_path = out / RECORDS_FILE
    if config.resume:
        _check_resumable(out, config)
        records = read_records(records_path)
        run_dir.write_config(settings)
    else:
        records = []

    units = _units(the_plan, config)
    done = {_record_key(r) for r in records}
    todo = sum(1 for sampler, seeds, _ in units for s in seeds for p in problems if (sampler.label, s, p.id) not in done)
    if todo:
        own_policy = policy is None
        own_pool = pool is None
        if policy is None:
            from rungs.policies import load_policy

            kwargs: dict[str, Any] = {"task": config.task}
            if config.model is not None:
                kwargs["model"] = config.model
            policy = load_policy(config.policy, **{**kwargs, **config.policy_options})
        if pool is None:
            from rungs.verify.pool import VerifierPool

            pool = VerifierPool(task, workers=config.workers, timeout_s=config.timeout, executor=config.executor)
        try:
            records += _sample_all(config, task, problems, units, done, policy, pool, records_path)
        finally:
            if own_pool:
                pool.close()
            if own_policy:
                policy.close()

    summary = summarize(config, the_plan, problems, records)
    result = EvalResult(out, summary, records)
    result.table = format_summary(config, summary)
    atomic_write_json(out / RESULTS_FILE, {"config": to_dict(config), "summary": summary,
                                           "problems": [p.to_dict() for p in problems], "records": _ordered(records, problems)})
    plots = [out / f"{name}.png" for name in plot_summary(out, summary)] if config.plot else []
    atomic_write_text(out / "table.txt", result.table + "\n")
    if echo:
        print(result.table)
        print(f"\nwrote {', '.join(str(p) for p in [out / RESULTS_FILE, out / 'table.txt', *plots])}")
    return result


def _units(the_plan: Plan, config: EvalConfig) -> list[tuple[Sampler, list[int], int]]:
    """(sampler, seed indices, samples per problem): greedy once, every other sampler per seed."""
    units: list[tuple[Sampler, list[int], int]] = []
    if the_plan.greedy is not None:
        units.append((the_plan.greedy, [0], 1))
    for sampler in the_plan.samplers:
        units.append((sampler, list(range(config.seeds)), config.samples_per_problem))
    return units


def _sample_all(config: EvalConfig, task: Task, problems: Sequence[Problem], units: list[tuple[Sampler, list[int], int]],
                done: set[tuple[str, int, str]], policy: Policy, pool: Any, records_path: Path) -> list[dict[str, Any]]:
    from tqdm.auto import tqdm

    max_new = config.max_new_tokens or getattr(policy, "default_max_new_tokens", None) or DEFAULT_MAX_NEW_TOKENS
    base = SamplingParams(temperature=config.temperature, top_k=config.top_k, top_p=config.top_p, max_new_tokens=max_new)
    style = getattr(policy, "prompt_style", "instruct")
    check_passes(config, task, problems, units, done, policy, base)
    total = sum(1 for sampler, seeds, _ in units for s in seeds for p in problems if (sampler.label, s, p.id) not in done)
    new: list[dict[str, Any]] = []
    n_samples = n_correct = 0
    started = time.perf_counter()
    passes = [(sampler, seed, n) for sampler, seeds, n in units for seed in seeds]
    # The bar counts (pass, problem) pairs: its total is problems x passes, and its label says which pass
    # of how many is running, so that "160/480" is not read as 160 of 480 problems.
    with open(records_path, "a", encoding="utf-8") as handle, \
            tqdm(total=total, unit="problem", desc="eval", disable=not config.progress, dynamic_ncols=True) as bar:
        for index, (sampler, seed, n) in enumerate(passes, 1):
            for b, batch in _batches(problems, config.batch_size):
                missing = [i for i, p in enumerate(batch) if (sampler.label, seed, p.id) not in done]
                if not missing:
                    continue
                bar.set_description(f"eval pass {index}/{len(passes)} ({sampler.label}, seed {seed})")
                t0 = time.perf_counter()
                # The whole batch is generated even when part of it is done, so that its seed and
                # composition -- hence its samples -- are those of an uninterrupted run.
                sampling = base.with_(seed=int(stable_rng(config.seed, sampler.label, seed, b).getrandbits(31)))
                prompts = [task.prompt(p, style=style) for p in batch]
                outs = sampler.generate(policy, prompts, n, sampling)
                flat_p = [batch[i] for i in missing for _ in outs[i]]
                flat_c = [c for i in missing for c in outs[i]]
                samples = verify_samples(pool, task, flat_p, flat_c)
                wall = (time.perf_counter() - t0) / len(batch)
                pos = 0
                for i in missing:
                    k = len(outs[i])
                    chunk, pos = samples[pos:pos + k], pos + k
                    record = {"sampler": sampler.label, "seed": seed, "problem_id": batch[i].id,
                              "samples": [s.to_dict() for s in chunk], "wall_s": wall}
                    append_record(handle, record)
                    new.append(json.loads(json.dumps(record)))  # exactly what a resume would read back
                    n_samples += k
                    n_correct += sum(s.correct for s in chunk)
                bar.update(len(missing))
                rate = n_samples / max(time.perf_counter() - started, 1e-9)
                bar.set_postfix_str(f"{rate:.1f} samples/s, acc {n_correct / max(n_samples, 1):.3f}")
    return new


def check_passes(config: EvalConfig, task: Task, problems: Sequence[Problem], units: list[tuple[Sampler, list[int], int]],
                 done: set[tuple[str, int, str]], policy: Policy, base: SamplingParams) -> None:
    """Ask the policy, before anything is sampled, whether it takes every batch still to sample
    (`Policy.check_generate`): a refusal (a --n whose completions could not fit in memory) then
    comes before the first record is stored, so that `job_scope` removes the new run directory,
    not after the greedy pass, leaving a directory whose resume met the same refusal. No sampling."""
    style = getattr(policy, "prompt_style", "instruct")
    checked: set[tuple[int, int]] = set()  # (batch, samples per problem)
    for sampler, seeds, n in units:
        for b, batch in _batches(problems, config.batch_size):
            if (b, n) in checked or all((sampler.label, s, p.id) in done for s in seeds for p in batch):
                continue
            checked.add((b, n))
            policy.check_generate([task.prompt(p, style=style) for p in batch], n, base)


def _ordered(records: list[dict[str, Any]], problems: Sequence[Problem]) -> list[dict[str, Any]]:
    order = {p.id: i for i, p in enumerate(problems)}
    return sorted((r for r in records if r["problem_id"] in order),
                  key=lambda r: (r["sampler"], r["seed"], order[r["problem_id"]]))


# -- summary ----------------------------------------------------------------------------------------
def summarize(config: EvalConfig, the_plan: Plan, problems: Sequence[Problem], records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Accuracy per k (mean/std over seeds) and cost, from stored records only."""
    table: dict[tuple[str, int], dict[str, list[Sample]]] = {}
    walls: dict[str, list[float]] = {}
    ids = {p.id for p in problems}
    for r in records:
        if r["problem_id"] not in ids:
            continue
        table.setdefault((r["sampler"], int(r["seed"])), {})[r["problem_id"]] = [Sample.from_dict(s) for s in r["samples"]]
        walls.setdefault(r["sampler"], []).append(float(r.get("wall_s", 0.0)))
    ks = list(config.n)
    N = config.samples_per_problem if the_plan.samplers else 0  # greedy alone draws no samples
    summary: dict[str, Any] = {"task": config.task, "problems": len(problems), "n": ks, "samples_per_problem": N,
                               "seeds": config.seeds, "policy": config.policy, "model": config.model,
                               "greedy": None, "metrics": {}, "cost": {}, "timing": {}, "complete": True}

    def per_problem(label: str, seed: int) -> list[tuple[Problem, list[Sample]]]:
        got = table.get((label, seed), {})
        if len(got) < len(problems):
            summary["complete"] = False
        return [(p, got[p.id]) for p in problems if p.id in got]

    if the_plan.greedy is not None:
        rows = [samples for _, samples in per_problem(the_plan.greedy.label, 0)]
        acc = _mean([float(s[0].correct) for s in rows])
        summary["greedy"] = {"mean": acc, "std": 0.0, "tokens_per_problem": _mean_tokens(rows),
                             "wall_s_per_problem": _mean(walls.get(the_plan.greedy.label, []))}
    for sampler in the_plan.samplers:
        names = {"pass@k": "pass@k", **{sel.label: sel.label for sel in the_plan.selectors}}
        if sampler.prefix:
            names = {m: f"{sampler.prefix} {m}" for m in names}
        curves: dict[str, list[list[float]]] = {m: [] for m in names}  # metric -> per seed -> per k
        all_rows: list[list[Sample]] = []
        for seed in range(config.seeds):
            rows = per_problem(sampler.label, seed)
            if not rows:  # a killed run's seed not started yet: no figure, not a NaN in the mean
                continue
            all_rows += [samples for _, samples in rows]
            values: dict[str, list[float]] = {m: [] for m in names}  # metric -> per k
            for k in ks:
                at_k: dict[str, list[float]] = {m: [] for m in names}  # metric -> per problem
                for p, samples in rows:
                    kk = min(k, len(samples))
                    at_k["pass@k"].append(pass_at_k(len(samples), sum(s.correct for s in samples), kk))
                    if not the_plan.selectors:
                        continue
                    # The same subsets for every selector: comparable point by point.
                    index_sets = subsets(len(samples), kk, config.subsets, stable_rng(config.seed, seed, p.id, kk))
                    for sel in the_plan.selectors:
                        hits = sum(sel.select([samples[i] for i in idx]).correct for idx in index_sets)
                        at_k[sel.label].append(hits / len(index_sets))
                for m in names:
                    values[m].append(_mean(at_k[m]))
            for m in names:
                curves[m].append(values[m])
        for m, per_seed in curves.items():
            stats = [mean_std([curve[j] for curve in per_seed]) for j in range(len(ks))]
            summary["metrics"][names[m]] = {"mean": [a for a, _ in stats], "std": [b for _, b in stats],
                                            "per_seed": per_seed, "seeds": len(per_seed), "sampler": sampler.label}
        per_sample = _mean_tokens(all_rows)
        summary["cost"][sampler.label] = {"tokens_per_sample": per_sample,
                                          "tokens_per_problem": [k * per_sample for k in ks]}
        wall = _mean(walls.get(sampler.label, []))
        summary["timing"][sampler.label] = {"wall_s_per_problem": [wall * k / N for k in ks],
                                            "samples_per_s": (N / wall) if wall > 0 else None}
    return summary


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def _mean_tokens(rows: Sequence[Sequence[Sample]]) -> float:
    counts = [s.num_tokens for row in rows for s in row]
    return _mean(counts) if counts else 0.0


# -- presentation -----------------------------------------------------------------------------------
def format_summary(config: EvalConfig, summary: dict[str, Any]) -> str:
    """The terminal table: one row per k, one column per metric (mean ± std over seeds), and cost."""
    from rungs.report import fmt_mean_std, format_table

    metrics = summary["metrics"]
    ks = summary["n"]
    rows: list[dict[str, Any]] = []
    cost_cols = {label: f"{label} tok/prob" if len(summary["cost"]) > 1 else "tokens/problem" for label in summary["cost"]}
    wall_cols = {label: f"{label} s/prob" if len(summary["timing"]) > 1 else "s/problem" for label in summary["timing"]}
    for j, k in enumerate(ks):
        row: dict[str, Any] = {"n": k}
        for name, m in metrics.items():
            row[name] = fmt_mean_std(m["mean"][j], m["std"][j] if config.seeds > 1 else None)  # one seed: no std
        for label, c in summary["cost"].items():
            row[cost_cols[label]] = f"{c['tokens_per_problem'][j]:,.0f}"
        for label, t in summary["timing"].items():
            row[wall_cols[label]] = f"{t['wall_s_per_problem'][j]:.3g}"
        rows.append(row)
    n_problems, seeds = summary["problems"], config.seeds
    head = (f"{config.task} | {config.problems} | {n_problems} problem{'s' if n_problems != 1 else ''} | "
            f"policy {config.policy}{' (' + config.model + ')' if config.model else ''} | "
            + (f"{seeds} seeds, mean ± std" if seeds > 1 else "1 seed"))
    lines = [head]
    if str(config.problems).startswith("builtin:") and str(config.problems).endswith("-dev"):
        lines.append("(a development set: for tuning; report results on the -easy / -hard sets)")
    g = summary.get("greedy")
    if g is not None:
        lines.append(f"greedy: {g['mean']:.3f}  ({g['tokens_per_problem']:.1f} tokens, "
                     f"{g['wall_s_per_problem']:.3f} s per problem)")
    if not summary.get("complete", True):
        started = sorted({m.get("seeds", config.seeds) for m in summary.get("metrics", {}).values()})
        lines.append("(incomplete: some problems have no results yet; run again with --resume"
                     + (f"; sampled figures over the {'/'.join(map(str, started))} of {config.seeds} seeds started"
                        if started and started != [config.seeds] else "") + ")")
    if rows and metrics:
        lines.append(format_table(rows, ["n", *metrics, *cost_cols.values(), *wall_cols.values()]))
    return "\n".join(lines)


def plot_summary(out: Path, summary: dict[str, Any]) -> dict[str, Any]:
    """accuracy_vs_n.png (log2 n) and, when token counts are known, accuracy_vs_tokens.png."""
    from rungs.report import plot_lines

    ks = summary["n"]
    series = {name: (ks, m["mean"], m["std"]) for name, m in summary["metrics"].items()}
    g = summary.get("greedy")
    hlines = {"greedy": (g["mean"], g["std"])} if g is not None else None
    title = f"{summary['task']}: {summary['problems']} problems, {summary['seeds']} seed(s)"
    figures = {"accuracy_vs_n": plot_lines(out / "accuracy_vs_n.png", series, "samples per problem (n)", "accuracy",
                                           logx2=True, title=title, hlines=hlines, ylim=(-0.02, 1.02))}
    by_tokens = {name: (summary["cost"][m["sampler"]]["tokens_per_problem"], m["mean"], m["std"])
                 for name, m in summary["metrics"].items() if summary["cost"][m["sampler"]]["tokens_per_sample"] > 0}
    if by_tokens:
        if g is not None and g["tokens_per_problem"] > 0:  # one point: greedy spends one sample's tokens
            by_tokens["greedy"] = ([g["tokens_per_problem"]], [g["mean"]], None)
        figures["accuracy_vs_tokens"] = plot_lines(out / "accuracy_vs_tokens.png", by_tokens,
                                                   "tokens generated per problem", "accuracy", logx2=True, title=title,
                                                   ylim=(-0.02, 1.02), label_points=False)
    return figures


def config_from_results(path: str | Path) -> EvalConfig:
    """The EvalConfig stored in a results.json (to re-plot or compare runs)."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    names = {f.name for f in dataclasses.fields(EvalConfig)}
    return EvalConfig(**{k: v for k, v in data["config"].items() if k in names})
