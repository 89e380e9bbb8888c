"""Supervised warm start of the tiny model on a task's generated problems.

Why it exists: RL needs a policy that is sometimes right. The tiny model starts from random
weights, so `rungs pretrain` teaches it the answer format and the easy problems: prompts are
`Task.prompt(problem, "compact")`, targets are "<answer>{reference answer}</answer><eos>", and
the loss is the mean negative log-likelihood of the target tokens only (the prompt is context,
not something to imitate). It deliberately trains on easy problems only, leaving the hard ones
for LADDER curricula and test-time RL to close.

The loop is plain: problems generated up front with a fixed seed (evaluation problems with
another seed), AdamW with linear warmup and cosine decay, gradient clipping, a tqdm bar, a greedy
evaluation every `eval_every` steps verified by the task in the sandboxed `VerifierPool`
(`--verifier inline` for debugging), and a checkpoint written (file by file, atomically) after
each evaluation, with the training state beside it in OUT/resume/ (weights, AdamW and schedule,
RNG states, data order; written whole or not at all), so that `--resume` continues a killed run
and ends exactly where the uninterrupted one would; resume/ is removed when the run finishes. The loss reuses `TinyPolicy.logprobs`, the same code path GRPO trains through.
The defaults are the settings of the shipped checkpoints (see rungs/checkpoints/README.md).

    rungs pretrain --task integration --threads 2 --out runs/tiny-integration
"""

from __future__ import annotations

import inspect
import json
import math
import os
import random
import shutil
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rungs.config import check_finite_fields, help_field
from rungs.errors import UserError
from rungs.tasks.base import Task
from rungs.types import Problem
from rungs.verify.extract import ANSWER_CLOSE, ANSWER_OPEN

if TYPE_CHECKING:  # torch is imported where it is used, so `rungs pretrain --help` stays fast
    import torch

    from rungs.policies.tiny import TinyPolicy
    from rungs.verify.pool import VerifierPool


@dataclass
class SFTConfig:
    task: str = help_field("integration", "task whose generated problems to train on")
    steps: int = help_field(2500, "optimizer steps (the learning-rate schedule's length)")
    stop_at_step: int | None = help_field(
        None, "end training after this step, the schedule still that of --steps: an early-stopped checkpoint of the "
        "longer run (the shipped tiny-integration is step 1000 of 2000, chosen on the dev set)")
    batch_size: int = help_field(32, "problems per step")
    lr: float = help_field(3e-3, "peak learning rate (AdamW)")
    weight_decay: float = help_field(0.1, "AdamW weight decay on matrices (not on norms)")
    warmup_steps: int = help_field(50, "linear warmup steps before the cosine decay")
    min_lr_ratio: float = help_field(0.1, "final learning rate as a fraction of --lr")
    grad_clip: float = help_field(1.0, "clip the gradient norm to this (0 = off)")
    bf16: bool = help_field(False, "train under bfloat16 autocast (faster on CPUs with AVX512-BF16/AMX; weights stay float32)")
    distribution: str = help_field(
        "levels", "training distribution: levels (the generator's difficulty levels in [difficulty_min, difficulty_max]) | "
        "skills (integration: every elementary rule alone, sums term by term, sparse mixed sums; see tasks/integration/skills.py; "
        "countdown: pairs of large numbers, triples, sparse 4- and 5-6-number problems; see tasks/countdown_skills.py)")
    mixed_fraction: float = help_field(0.02, "skills: share of mixed-kind sums (the hard set's shape); countdown: of 4-number problems")
    single_fraction: float = help_field(0.4, "skills: share of single-term problems (the rest are same-kind sums); countdown: of 2-number problems")
    wide_fraction: float = help_field(0.0, "skills, countdown only: share of 5-6-number problems (the rest are 3-number problems)")
    prompt_order: bool = help_field(False, "skills, countdown only: write answers with the operands of + and * in the prompt's order")
    answer_format: str = help_field("expression", "skills, countdown only: expression ('(3 + 7) * 5') | steps, a worked chain "
                                    "one operation per step ('3+7=10;10*5=50')")
    difficulty_min: float = help_field(1.0, "easiest training difficulty")
    difficulty_max: float = help_field(2.0, "hardest training difficulty (integer levels in between are mixed evenly)")
    train_problems: int = help_field(8000, "problems generated up front, split evenly over the levels (cycled in epochs)")
    eval_every: int = help_field(500, "greedy evaluation + checkpoint every this many steps (0 = only at the end)")
    eval_problems: int = help_field(100, "problems per periodic evaluation (fresh draws at the training difficulties)")
    report_difficulties: list[float] = help_field([1.0, 2.0, 3.0, 4.0, 5.0], "difficulties of the final per-difficulty accuracy table")
    report_problems: int = help_field(200, "problems per difficulty in the final table")
    max_new_tokens: int = help_field(128, "generation limit in evaluations")
    verifier: str = help_field("process", "where evaluations are verified: 'process' (sandboxed worker pool) or 'inline'")
    verify_workers: int = help_field(0, "verifier worker processes (0 = one per CPU core)")
    verify_timeout: float = help_field(5.0, "seconds per verification before the worker is killed")
    out: str = help_field("", "output checkpoint directory (default: runs/tiny-TASK; with --eval-only, where eval.json goes, "
                              "and nothing is written without it)")
    init: str | None = help_field(None, "start from this checkpoint (directory or shipped name) instead of random weights")
    eval_only: bool = help_field(False, "only run the final evaluation of --init (no training)")
    d_model: int = help_field(192, "model width (fresh models only)")
    n_layers: int = help_field(4, "transformer blocks (fresh models only)")
    n_heads: int = help_field(4, "attention heads (fresh models only)")
    max_seq_len: int = help_field(256, "longest prompt + answer, in characters (fresh models only)")
    seed: int = help_field(0, "seed for data, initialisation and evaluation sets")
    threads: int = help_field(0, "torch CPU threads (0 = torch's default)")
    progress: bool = help_field(True, "show a progress bar")
    resume: bool = help_field(
        False, "continue a killed pretraining in --out from its last checkpoint (one every --eval-every steps), with "
        "the same settings; it ends as the uninterrupted run would have (one killed before its first checkpoint "
        "starts again; one ended by --stop-at-step before --steps continues to a later --stop-at-step)")

    def __post_init__(self) -> None:
        check_finite_fields(self)
        checks = [
            ("steps", self.steps >= 0, "an integer >= 0"),
            ("stop_at_step", self.stop_at_step is None or 1 <= self.stop_at_step <= self.steps, "an integer in [1, steps]"),
            ("batch_size", self.batch_size >= 1, "an integer >= 1"),
            ("lr", self.lr > 0, "a positive number"),
            ("weight_decay", self.weight_decay >= 0, "a number >= 0"),
            ("warmup_steps", self.warmup_steps >= 0, "an integer >= 0"),
            ("min_lr_ratio", 0 <= self.min_lr_ratio <= 1, "a number in [0, 1]"),
            ("difficulty_min", self.difficulty_min > 0, "a positive number"),
            ("difficulty_max", self.difficulty_max >= self.difficulty_min, "a number >= difficulty_min"),
            ("train_problems", self.train_problems >= 1, "an integer >= 1"),
            ("eval_every", self.eval_every >= 0, "an integer >= 0"),
            ("eval_problems", self.eval_problems >= 0, "an integer >= 0"),
            ("report_problems", self.report_problems >= 0, "an integer >= 0"),
            ("max_new_tokens", self.max_new_tokens >= 1, "an integer >= 1"),
            ("threads", self.threads >= 0, "an integer >= 0"),
            ("verifier", self.verifier in ("process", "inline"), "'process' or 'inline'"),
            ("distribution", self.distribution in ("levels", "skills"), "'levels' or 'skills'"),
            ("answer_format", self.answer_format in ("expression", "steps"), "'expression' or 'steps'"),
            ("mixed_fraction", 0 <= self.mixed_fraction <= 1, "a fraction in [0, 1]"),
            ("single_fraction", 0 <= self.single_fraction <= 1 - self.mixed_fraction, "a fraction in [0, 1 - mixed_fraction]"),
            ("wide_fraction", 0 <= self.wide_fraction <= 1 - self.mixed_fraction - self.single_fraction + 1e-9,
             "a fraction in [0, 1 - mixed_fraction - single_fraction]"),
            ("verify_workers", self.verify_workers >= 0, "an integer >= 0"),
            ("verify_timeout", self.verify_timeout > 0, "a positive number"),
        ]
        for name, ok, expected in checks:
            if not ok:
                raise UserError(f"{name}: expected {expected}, got {getattr(self, name)!r}")
        if self.eval_only and not self.init:
            raise UserError("eval_only: needs --init, the checkpoint to evaluate")
        if not self.out and not self.eval_only:
            self.out = f"runs/tiny-{self.task}"
        if self.resume and self.eval_only:
            raise UserError("resume: continues a pretraining; --eval-only trains nothing")


# -- data ------------------------------------------------------------------------------------------
def difficulty_levels(lo: float, hi: float) -> list[float]:
    """The integer difficulties in [lo, hi], or [lo, hi] themselves when none lies between."""
    levels = [float(d) for d in range(math.ceil(lo), math.floor(hi) + 1)]
    return levels or sorted({lo, hi})


CHUNK = 256  # problems asked of Task.generate per call


def _draw(task: Task, n: int, level: float, seed: int) -> list[Problem]:
    """task.generate(n, level, seed), asking for fewer when the task runs out of distinct problems
    (a generator may raise RuntimeError when asked for more than a small level holds)."""
    while True:
        try:
            problems = task.generate(n, level, seed=seed)
            break
        except RuntimeError:
            if n <= 1:
                raise UserError(f"task {task.name!r}: generate() cannot make a problem of difficulty {level:g}") from None
            n //= 2
    for p in problems:
        if p.answer is None:
            raise UserError(f"task {task.name!r}: generate() returned a problem without an answer ({p.id})")
    return problems


def generate_problems(task: Task, n: int, lo: float, hi: float, seed: int) -> list[Problem]:
    """Up to `n` distinct problems spread evenly over the difficulty levels in [lo, hi].

    Drawn in chunks with derived seeds; a level stops early when a chunk brings almost nothing
    new (easy levels hold only a few hundred distinct problems), so the result may be shorter.
    """
    levels = difficulty_levels(lo, hi)
    problems: list[Problem] = []
    seen: set[str] = set()
    for i, level in enumerate(levels):
        want = n // len(levels) + (1 if i < n % len(levels) else 0)
        got, chunk = 0, 0
        while got < want:
            size = min(CHUNK, want - got)
            new = 0
            for p in _draw(task, size, level, seed * 1_000_003 + i * 10_007 + chunk):
                if p.text not in seen and got < want:
                    seen.add(p.text)
                    problems.append(p)
                    new, got = new + 1, got + 1
            chunk += 1
            if new < max(1, size // 20):
                break  # the level has run out of distinct problems
    return problems


def training_pool(task: Task, n: int, lo: float, hi: float, seed: int) -> list[Problem]:
    """About `n` problems with the difficulty levels in [lo, hi] equally represented.

    Easy levels may have few distinct problems (integration level 1 has 144), so each level's
    distinct problems are repeated up to the size of the largest level: every step then mixes
    the levels evenly instead of drowning the small ones.
    """
    levels = difficulty_levels(lo, hi)
    groups = [generate_problems(task, n // len(levels) + (i < n % len(levels)), level, level, seed + i)
              for i, level in enumerate(levels)]
    size = max(len(g) for g in groups)
    return [g[j % len(g)] for g in groups if g for j in range(size)]


def builtin_keys(task: Task) -> set[Any]:
    """`task.problem_key` of every problem in the task's built-in sets (test, dev and train).

    The pretraining pool leaves these out, so no problem that rungs evaluates or trains RL on is
    a supervised example (tests/test_pretrain.py checks the shipped pools).
    """
    from rungs.data import builtin_names, load_problems

    keys: set[Any] = set()
    for name in builtin_names():
        if name.startswith(f"{task.name}-"):
            keys.update(task.problem_key(p) for p in load_problems(f"builtin:{name}"))
    return keys


def pretraining_problems(cfg: SFTConfig, task: Task) -> tuple[list[Problem], list[Problem]]:
    """(training pool, evaluation draws) of the configured distribution, disjoint from the built-in sets."""
    if cfg.distribution == "levels":
        pool = training_pool(task, cfg.train_problems, cfg.difficulty_min, cfg.difficulty_max, cfg.seed)
        # Fresh draws from the training distribution. Easy levels have few distinct problems, so
        # these overlap the training pool; the overlap is logged rather than hidden.
        return pool, generate_problems(task, cfg.eval_problems, cfg.difficulty_min, cfg.difficulty_max, cfg.seed + 7919)
    make = getattr(task, "skill_problems", None)
    if make is None:
        raise UserError(f"--distribution skills: task {task.name!r} has none (integration and countdown have one)")
    shares: dict[str, Any] = {"mixed_fraction": cfg.mixed_fraction, "single_fraction": cfg.single_fraction}
    accepted = inspect.signature(make).parameters
    for name, default in (("wide_fraction", 0.0), ("prompt_order", False), ("answer_format", "expression")):
        if name in accepted:  # countdown's own settings
            shares[name] = getattr(cfg, name)
        elif getattr(cfg, name) != default:
            raise UserError(f"--{name.replace('_', '-')}: task {task.name!r} has no such setting in its skills "
                            "distribution (countdown has)")
    excluded = builtin_keys(task)
    pool = make(cfg.train_problems, cfg.seed, exclude=excluded, **shares)
    excluded |= {task.problem_key(p) for p in pool}
    evals = make(cfg.eval_problems, cfg.seed + 7919, exclude=excluded, **shares) if cfg.eval_problems else []
    return pool, evals


def target_text(answer: str) -> str:
    return f"{ANSWER_OPEN}{answer}{ANSWER_CLOSE}"


def encode_examples(policy: TinyPolicy, task: Task, problems: Sequence[Problem]) -> tuple[list[list[int]], list[list[int]]]:
    """(prompt ids, target ids) per problem; pairs longer than max_seq_len are dropped."""
    prompts = policy.encode_prompts([task.prompt(p, "compact") for p in problems])
    limit = policy.model.cfg.max_seq_len
    keep_p, keep_t = [], []
    for ids, p in zip(prompts, problems):
        target = [*policy.tokenizer.encode(target_text(p.answer or "")), policy.tokenizer.eos_id]
        if len(ids) + len(target) <= limit:
            keep_p.append(ids)
            keep_t.append(target)
    return keep_p, keep_t


def sft_loss(policy: TinyPolicy, prompt_ids: Sequence[Sequence[int]], target_ids: Sequence[Sequence[int]],
             prompt_loss_masks: Sequence[Sequence[bool]] | None = None) -> torch.Tensor:
    """Mean negative log-likelihood per trained token, a scalar tensor (nats).

    Without `prompt_loss_masks` only the target tokens are trained (the prompt is context). With it,
    `prompt_loss_masks[i][j]` True also trains prompt token j of row i (its prediction from the tokens
    before it): MARC's demonstration loss, which trains on every demonstration output in the context
    as well as the query's answer (Akyurek et al. 2024). A mask must have one entry per prompt token;
    the first token, which nothing predicts, is never trained. Works with any policy whose `logprobs`
    scores completions after prompts (the tiny model, an hf model).
    Raises ValueError when a mask's length differs from its prompt's.
    """
    import torch

    if prompt_loss_masks is None:
        lp = policy.logprobs(prompt_ids, target_ids)
        return -(lp.logprobs * lp.mask).sum() / lp.mask.sum().clamp(min=1)
    if len(prompt_loss_masks) != len(prompt_ids):
        raise ValueError(f"{len(prompt_ids)} prompts but {len(prompt_loss_masks)} prompt loss masks")
    heads, rests, weights = [], [], []
    for p, t, m in zip(prompt_ids, target_ids, prompt_loss_masks):
        if len(m) != len(p):
            raise ValueError(f"a prompt loss mask has {len(m)} entries for a prompt of {len(p)} tokens")
        heads.append(list(p[:1]))  # score the rest of the prompt and the target after the first token
        rests.append([*p[1:], *t])
        weights.append([bool(x) for x in m[1:]] + [True] * len(t))
    lp = policy.logprobs(heads, rests)  # [B, T]
    weight = torch.zeros(lp.logprobs.shape, dtype=lp.logprobs.dtype, device=lp.logprobs.device)
    for i, w in enumerate(weights):
        weight[i, :len(w)] = torch.tensor(w, dtype=weight.dtype)
    weight = weight * lp.mask
    return -(lp.logprobs * weight).sum() / weight.sum().clamp(min=1)


# -- evaluation ------------------------------------------------------------------------------------
@dataclass
class EvalResult:
    accuracy: float
    n: int
    statuses: dict[str, int]
    examples: list[dict[str, Any]] = field(default_factory=list)  # a few (problem, output, status)


def evaluate_greedy(policy: TinyPolicy, task: Task, problems: Sequence[Problem], pool: VerifierPool, *,
                    batch_size: int = 128, max_new_tokens: int = 128) -> EvalResult:
    """Greedy accuracy of `policy` on `problems`, checked by the task's verifier in `pool`."""
    from rungs.policies.base import SamplingParams

    sampling = SamplingParams(temperature=0.0, max_new_tokens=max_new_tokens)
    texts: list[str] = []
    for i in range(0, len(problems), batch_size):
        chunk = problems[i:i + batch_size]
        outs = policy.generate([task.prompt(p, "compact") for p in chunk], n=1, sampling=sampling)
        texts.extend(row[0].text for row in outs)
    verdicts = pool.verify(problems, texts)
    statuses = Counter(v.status.value for v in verdicts)
    correct = sum(v.correct for v in verdicts)
    examples = [{"problem": p.text, "output": t, "status": v.status.value}
                for p, t, v in list(zip(problems, texts, verdicts))[:5]]
    return EvalResult(correct / max(1, len(problems)), len(problems), dict(statuses), examples)


# -- training --------------------------------------------------------------------------------------
def build_policy(cfg: SFTConfig, task: Task) -> TinyPolicy:
    from rungs.policies.tiny import TinyPolicy

    if cfg.init:
        return TinyPolicy.from_spec(cfg.init, seed=cfg.seed)
    return TinyPolicy.new(alphabets=[task.alphabet], seed=cfg.seed, d_model=cfg.d_model, n_layers=cfg.n_layers,
                          n_heads=cfg.n_heads, max_seq_len=cfg.max_seq_len)


def lr_lambda(cfg: SFTConfig) -> Callable[[int], float]:
    """Multiplier of the peak lr: linear warmup, then cosine down to min_lr_ratio."""
    def f(step: int) -> float:
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        span = max(1, cfg.steps - cfg.warmup_steps)
        progress = min(1.0, (step - cfg.warmup_steps) / span)
        return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
    return f


@dataclass
class SFTResult:
    policy: TinyPolicy
    losses: list[float]
    evals: list[dict[str, Any]]  # {"step", "accuracy", ...} at each periodic evaluation
    report: dict[str, dict[str, Any]]  # difficulty -> {"accuracy", "n", "statuses"} of the final table
    wall_s: float
    train_wall_s: float
    threads: int


def train_sft(cfg: SFTConfig, task: Task, policy: TinyPolicy | None = None, *,
              log: Callable[[str], None] = print) -> SFTResult:
    """Train (unless eval_only), checkpoint into cfg.out, and evaluate per difficulty."""
    import torch

    from rungs.verify.pool import VerifierPool

    t0 = time.perf_counter()
    out = Path(cfg.out)
    trains = not cfg.eval_only and cfg.steps > 0
    resume_dir = resume_point(cfg) if cfg.resume else None
    if cfg.resume and resume_dir is None:
        log(f"resume: {out}: killed before its first checkpoint; starting from step 0")
    elif not cfg.resume and trains and out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"{out}: already exists and is not an empty directory; pretraining writes a new checkpoint "
                        "there and never over another: choose another --out (or remove it; or --resume a killed "
                        "pretraining there)")
    created = trains and not out.exists()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    try:
        if policy is None and resume_dir is not None:  # the run's own weights; --init need not exist any more
            from rungs.policies.tiny import TinyPolicy

            policy = TinyPolicy.from_spec(str(resume_dir / "policy"), seed=cfg.seed)
        policy = policy or build_policy(cfg, task)
        with VerifierPool(task, workers=cfg.verify_workers or None, timeout_s=cfg.verify_timeout,
                          executor=cfg.verifier) as pool:
            return _train_and_report(cfg, task, policy, pool, log, t0, resume_dir)
    except BaseException:
        # A run that fails (or is interrupted) before its first checkpoint leaves no directory
        # behind, so that the same --out can be used again; one with a checkpoint is kept.
        from rungs.policies.tiny.policy import WEIGHTS_FILE

        if created and out.is_dir() and not (out / WEIGHTS_FILE).exists():
            shutil.rmtree(out, ignore_errors=True)
        raise


def _train_and_report(cfg: SFTConfig, task: Task, policy: TinyPolicy, pool: VerifierPool,
                      log: Callable[[str], None], t0: float, resume_dir: Path | None = None) -> SFTResult:
    import torch

    from rungs.runs import atomic_write_json

    out = Path(cfg.out)
    losses: list[float] = []
    evals: list[dict[str, Any]] = []
    train_wall = 0.0
    seen: set[str] = set()
    if not cfg.eval_only and cfg.steps > 0:
        problems, eval_set = pretraining_problems(cfg, task)
        prompts, targets = encode_examples(policy, task, problems)
        if not prompts:
            raise UserError(f"task {task.name!r}: no training example fits max_seq_len {policy.model.cfg.max_seq_len}")
        seen = {p.text for p in problems}
        overlap = sum(p.text in seen for p in eval_set)
        log(f"pretrain: {len(seen)} distinct training problems, {len(prompts)} with repeats ({cfg.distribution}" + (
            f", difficulty {cfg.difficulty_min:g}-{cfg.difficulty_max:g}" if cfg.distribution == "levels" else
            f", mixed {cfg.mixed_fraction:g}, single {cfg.single_fraction:g}"
            + (f", wide {cfg.wide_fraction:g}" if cfg.wide_fraction else "")) + f"); {len(eval_set)} evaluation problems ({overlap} also in training); "
            f"model {policy.model.num_parameters() / 1e6:.2f}M parameters")
        losses, evals, train_wall = _train_loop(cfg, task, policy, pool, prompts, targets, eval_set, out, resume_dir)
    # The final table: fresh problems per difficulty. The easy levels have few distinct problems,
    # so some of these were seen in training; `seen` says how many (when training ran here).
    report: dict[str, dict[str, Any]] = {}
    for level in cfg.report_difficulties if cfg.report_problems else []:
        problems = generate_problems(task, cfg.report_problems, level, level, cfg.seed + 104729)
        result = evaluate_greedy(policy, task, problems, pool, max_new_tokens=cfg.max_new_tokens)
        row = {"accuracy": result.accuracy, "n": result.n, "statuses": result.statuses}
        if seen:
            row["seen_in_training"] = sum(p.text in seen for p in problems)
        report[f"{level:g}"] = row
        log(f"pretrain: difficulty {level:g}: greedy accuracy {result.accuracy:.1%} on {result.n} problems "
            f"{result.statuses}" + (f", {row['seen_in_training']} seen in training" if seen else ""))
    wall = time.perf_counter() - t0
    summary = {"task": task.name, "config": asdict(cfg), "parameters": policy.model.num_parameters(),
               "train_wall_s": round(train_wall, 1), "wall_s": round(wall, 1), "threads": torch.get_num_threads(),
               "final_loss": losses[-1] if losses else None, "evals": evals, "report": report}
    if cfg.out:  # an evaluation without --out only prints: it must not claim runs/tiny-TASK
        atomic_write_json(out / ("eval.json" if cfg.eval_only else "training.json"), summary)
        if not cfg.eval_only and not (cfg.stop_at_step and cfg.stop_at_step < cfg.steps):
            # finished: what only a resume needed goes (a checkpoint ships without it); a run that
            # --stop-at-step ended before its schedule's end keeps it, to be continued
            shutil.rmtree(out / RESUME_DIR, ignore_errors=True)
    return SFTResult(policy, losses, evals, report, wall, train_wall, torch.get_num_threads())


# -- resuming --------------------------------------------------------------------------------------
RESUME_DIR = "resume"  # OUT/resume/: what --resume needs beyond the weights; removed when the run ends
RESUME_STATE_FILE = "trainer_state.pt"
RESUME_CONFIG_FILE = "config.json"
# Settings a resume may change: they do not touch the weights' path (where and how evaluations are
# verified and shown, the final table, when to stop on the same schedule, how often to checkpoint).
# `out` and `init` may differ too: the directory may have moved, and a resume takes the weights from
# OUT/resume/, not from --init.
RESUME_OVERRIDABLE = ("progress", "threads", "verifier", "verify_workers", "verify_timeout", "resume", "eval_every",
                      "eval_problems", "stop_at_step", "report_difficulties", "report_problems", "max_new_tokens",
                      "out", "init")
EVENTS_FILE = "events.jsonl"


def resume_point(cfg: SFTConfig) -> Path | None:
    """OUT/resume/ of the pretraining to continue, after tidying what a kill left in OUT
    (`clean_directory`); None for one killed before its first checkpoint (OUT holds only its
    events.jsonl), which starts again. A UserError for anything else: no such directory, a file, a
    finished run, a directory that is not a pretraining, other settings (all but RESUME_OVERRIDABLE)."""
    from rungs.runs import clean_directory

    out = Path(cfg.out)
    expected = "expected the --out directory of a killed rungs pretrain"
    if out.exists() and not out.is_dir():
        raise UserError(f"resume: {out}: a file; {expected}")
    if not out.is_dir():
        raise UserError(f"resume: {out}: no such directory; {expected}")
    saved = out / RESUME_DIR / RESUME_CONFIG_FILE
    moved = out / f".tmp-old-{RESUME_DIR}" / RESUME_CONFIG_FILE  # a kill inside the re-save of resume/
    names = {p.name for p in out.iterdir() if not p.name.startswith(".")}
    if not (saved.is_file() or moved.is_file()):
        if (out / "training.json").is_file():
            raise UserError(f"resume: {out}: this pretraining has finished (training.json); nothing to resume")
        if names != {EVENTS_FILE}:  # nothing is touched in a directory that is not a pretraining's
            raise UserError(f"resume: {out}: no {RESUME_DIR}/ checkpoint, and files a pretraining killed before its "
                            f"first checkpoint would not leave; {expected}")
    clean_directory(out, files=True)  # only now: it is a pretraining's directory
    if not saved.is_file():
        return None
    try:
        before = json.loads(saved.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise UserError(f"resume: {saved}: unreadable ({err}); expected the settings of the run") from None
    now = json.loads(json.dumps(asdict(cfg)))  # tuples as lists, as saved
    changed = [f"{k}: {before.get(k)!r} -> {now.get(k)!r}" for k in sorted(set(now) | set(before))
               if k not in RESUME_OVERRIDABLE and before.get(k) != now.get(k)]
    if changed:
        raise UserError(f"resume: {out}: settings differ from the run's ({'; '.join(changed)}); expected the same "
                        f"settings (only {', '.join(RESUME_OVERRIDABLE)} may change)")
    return out / RESUME_DIR


def _save_resume_state(out: Path, cfg: SFTConfig, policy: TinyPolicy, state: dict[str, Any]) -> None:
    """OUT/resume/, whole or not at all: the weights, `state` (optimizer, schedule, RNGs, data
    order, step, losses) and the settings. The step's events line is on disk before it."""
    import torch

    from rungs.runs import write_dir_atomically

    def write(tmp: Path) -> None:
        policy.save(tmp / "policy")
        torch.save(state, tmp / RESUME_STATE_FILE)
        (tmp / RESUME_CONFIG_FILE).write_text(json.dumps(asdict(cfg), indent=1) + "\n", encoding="utf-8")

    write_dir_atomically(out / RESUME_DIR, write)


def _train_loop(cfg: SFTConfig, task: Task, policy: TinyPolicy, pool: VerifierPool, prompts: list[list[int]],
                targets: list[list[int]], eval_set: list[Problem], out: Path,
                resume_dir: Path | None = None) -> tuple[list[float], list[dict], float]:
    import torch
    from tqdm.auto import tqdm

    from rungs.runs import disk_errors, truncate_jsonl

    resumed = (torch.load(resume_dir / RESUME_STATE_FILE, map_location="cpu", weights_only=False)
               if resume_dir is not None else None)
    if resumed is not None and getattr(policy, "source", None) != str(resume_dir / "policy"):
        policy.load(resume_dir / "policy")  # a policy passed in: before the optimizer is built over its parameters
    decay = [p for p in policy.parameters() if p.ndim >= 2]
    no_decay = [p for p in policy.parameters() if p.ndim < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr, betas=(0.9, 0.95))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(cfg))
    rng = random.Random(cfg.seed)
    order: list[int] = []
    losses: list[float] = []
    evals: list[dict[str, Any]] = []
    events = out / EVENTS_FILE
    out.mkdir(parents=True, exist_ok=True)
    first, elapsed = 0, 0.0
    if resumed is not None:
        opt.load_state_dict(resumed["optimizer"])
        sched.load_state_dict(resumed["scheduler"])
        rng.setstate(resumed["python_rng"])
        torch.set_rng_state(resumed["torch_rng"])
        order, losses, evals = list(resumed["order"]), list(resumed["losses"]), list(resumed["evals"])
        first, elapsed = int(resumed["step"]), float(resumed["train_wall_s"])
        truncate_jsonl(events, first)
        print(f"resume: {out}: from the checkpoint of step {first}", flush=True)
    else:
        events.write_text("", encoding="utf-8")
    start = time.perf_counter() - elapsed
    last_step = cfg.stop_at_step or cfg.steps
    if first > last_step:
        raise UserError(f"resume: {out}: the run has already trained {first} steps, more than --stop-at-step "
                        f"{last_step}; give --stop-at-step {first} or more")
    bar = tqdm(range(first, last_step), initial=first, total=last_step, desc="pretrain", disable=not cfg.progress,
               dynamic_ncols=True)
    for step in bar:
        policy.train()
        if len(order) < cfg.batch_size:  # a new epoch, reshuffled
            more = list(range(len(prompts)))
            rng.shuffle(more)
            order.extend(more)
        batch, order = order[:cfg.batch_size], order[cfg.batch_size:]
        with torch.autocast(policy.device.type, dtype=torch.bfloat16, enabled=cfg.bf16):
            loss = sft_loss(policy, [prompts[i] for i in batch], [targets[i] for i in batch])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(decay + no_decay, cfg.grad_clip)
        opt.step()
        sched.step()
        losses.append(loss.item())
        row: dict[str, Any] = {"step": step + 1, "loss": losses[-1], "lr": sched.get_last_lr()[0],
                               "wall_s": round(time.perf_counter() - start, 2)}
        bar.set_postfix(loss=f"{losses[-1]:.3f}")
        last = step + 1 == last_step
        checkpoint = last or (cfg.eval_every and (step + 1) % cfg.eval_every == 0)
        if checkpoint:
            policy.eval()  # safe: nn.Module/Policy.eval(), inference mode; not Python's eval
            if eval_set:
                result = evaluate_greedy(policy, task, eval_set, pool, max_new_tokens=cfg.max_new_tokens)
                row.update(accuracy=result.accuracy, statuses=result.statuses)
                evals.append({"step": step + 1, "loss": losses[-1], "accuracy": result.accuracy,
                              "wall_s": round(time.perf_counter() - start, 1)})
                bar.write(f"step {step + 1}: loss {losses[-1]:.4f}, greedy accuracy {result.accuracy:.1%} "
                          f"{result.statuses}; e.g. {result.examples[0]['problem']} -> {result.examples[0]['output']}")
        with events.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(row) + "\n")
            if checkpoint:  # the step's line is on disk before the checkpoint that a resume cuts the log back to
                handle.flush()
                os.fsync(handle.fileno())
        if checkpoint:
            with disk_errors(out, resume="the same rungs pretrain command with --resume"):
                policy.save(out)
                _save_resume_state(out, cfg, policy, {
                    "step": step + 1, "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                    "python_rng": rng.getstate(), "torch_rng": torch.get_rng_state(), "order": order,
                    "losses": losses, "evals": evals, "train_wall_s": time.perf_counter() - start})
    bar.close()
    policy.eval()  # safe: nn.Module/Policy.eval(), inference mode; not Python's eval
    return losses, evals, time.perf_counter() - start
