"""Test-time training on ARC: the MARC recipe (Akyurek et al. 2024, arXiv 2411.07279).

For each test problem (one test input of an ARC task), with nothing but its demonstrations:

1. TTT data: the leave-one-out tasks of the demonstrations (each demo in turn is the query, the
   others the context), each also under `train_augmentations` random invertible augmentations
   (a symmetry of the square, a colour permutation keeping 0, a demo order);
2. fine-tune on them for `steps` optimizer steps (AdamW; the loss is the negative log-likelihood,
   `rungs.train.sft.sft_loss`, of the query's answer and, MARC's demonstration loss, of every
   demonstration output in the context; `demo_loss=False` trains the answer alone): every weight
   of the tiny model, the LoRA adapter of an hf model;
3. predict greedily under `infer_augmentations` augmentations (identity first, then the other 7
   symmetries, then symmetries with colour permutations and demo shuffles), map each prediction
   back with the augmentation's inverse, and take the top 2 of the hierarchical vote (within each
   symmetry, then across: `rungs.tasks.arc.vote`); ARC's pass@2 is whether either is right;
4. roll the weights back (`rungs.pipelines.ttrl.rolled_back`, the snapshot/restore of `rungs ttrl`)
   before the next problem.

`steps=0` is the no-TTT arm (augmented inference and voting only); `infer_augmentations=1` is
plain greedy; `train_augmentations=0` trains on the leave-one-out tasks alone. Each problem also
records the identity (un-augmented) prediction, so one run gives greedy and voted accuracy.

Training examples or augmented prompts that do not fit the policy's context are dropped (and
counted). A problem with a single demonstration has no leave-one-out task and is answered
untrained. Nothing here reads the test output except the final verification, which runs in the
sandboxed verifier pool.

Run directory: config.yaml, outcomes.jsonl (one row per problem, appended as it finishes: a
killed run resumes with `--resume`, redoing only the unfinished problem, and any problem whose row
is damaged, with a warning naming its line), summary.json, ttt.png.
"""

from __future__ import annotations

import contextlib
import random
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rungs.config import help_field
from rungs.errors import UserError
from rungs.pipelines.job import JobConfig, check_at_least, refuse_job_policy_options
from rungs.policies.base import Policy, SamplingParams
from rungs.tasks.arc import ArcTask, answer_text, parse_spec, prompt_with_output_spans
from rungs.tasks.arc.augment import ArcSpec, Augmentation, augmentations, augmented_loo_tasks, spec_text_len
from rungs.tasks.arc.grid import Grid, GridError, grid_from_key, grid_key, parse_grid
from rungs.tasks.arc.vote import hierarchical_vote
from rungs.tasks.base import Task
from rungs.types import Problem

OUTCOMES_FILE = "outcomes.jsonl"
TINY_OVERHEAD = 4  # <bos>, <answer>, </answer>, <eos>


@dataclass
class TTTConfig(JobConfig):
    """Settings of `rungs ttt` (test-time training, MARC's recipe; the shared ones from JobConfig)."""

    task: str = help_field("arc", "task name; test-time training needs invertible augmentations: arc")
    problems: str = help_field("builtin:arc1-evaluation", "test problems: builtin:arc1-evaluation, builtin:arc2-evaluation, or a JSONL of ARC tasks")
    policy: str = help_field("tiny", "trainable policy: tiny (the shipped tiny-arc checkpoint), tiny:PATH, hf:MODEL with --policy-option lora_rank=N")
    limit: int | None = help_field(None, "use only the first N problems (after --only-fitting)")
    only_fitting: bool = help_field(False, "keep only problems whose prompt and reference answer fit the policy's context (the bench's selection; uses the answer's size only)")
    steps: int = help_field(16, "fine-tuning steps per problem (0 = no test-time training)")
    batch_size: int = help_field(8, "leave-one-out examples per step")
    demo_loss: bool = help_field(True, "MARC's demonstration loss: also train on every demonstration output in each "
                                       "leave-one-out prompt, not only the query's answer (--no-demo-loss: the answer alone)")
    learning_rate: float | None = help_field(None, "AdamW learning rate (default: 3e-3 for tiny, 1e-4 for hf LoRA)")
    weight_decay: float = help_field(0.0, "AdamW weight decay")
    grad_clip: float = help_field(1.0, "clip the gradient norm (0 = off)")
    train_augmentations: int = help_field(7, "random augmentations of each leave-one-out task (0 = the LOO tasks alone)")
    infer_augmentations: int = help_field(8, "augmented prompts per problem, identity first (1 = plain greedy)")
    per_transform: int = help_field(3, "candidates each symmetry passes to the second stage of the vote")
    attempts: int = help_field(2, "answers kept per problem (ARC scores pass@2)")
    max_new_tokens: int = help_field(512, "the most tokens of an answer (the tiny model is also capped by its context)")
    seed: int = help_field(0, "seed of the augmentations and batch order")
    policy_seed: int = help_field(0, "seed of the policy")

    def __post_init__(self) -> None:
        super().__post_init__()
        refuse_job_policy_options(self.policy_options)
        check_at_least(self, {"steps": 0, "batch_size": 1, "train_augmentations": 0, "infer_augmentations": 1,
                              "per_transform": 1, "attempts": 1, "max_new_tokens": 1})
        if self.learning_rate is not None and self.learning_rate <= 0:
            raise UserError(f"--learning-rate {self.learning_rate}: expected a positive number")


# -- policy plumbing ----------------------------------------------------------------------------------


def context_length(policy: Policy) -> int | None:
    """Longest prompt + completion the policy handles (tokens); None when unbounded or unknown."""
    model = getattr(policy, "model", None)
    cfg = getattr(model, "cfg", None)
    if cfg is not None and hasattr(cfg, "max_seq_len"):
        return int(cfg.max_seq_len)
    config = getattr(model, "config", None)
    return getattr(config, "max_position_embeddings", None)


def encode_targets(policy: Policy, texts: Sequence[str]) -> list[list[int]]:
    """Token ids of completions ending in end-of-sequence, as the policy's `logprobs` scores them."""
    tok = getattr(policy, "tokenizer", None)
    if tok is None:
        raise UserError(f"policy {policy.name!r} has no tokenizer to train with")
    if hasattr(tok, "eos_id"):  # the tiny model's character tokenizer
        return [[*tok.encode(t), tok.eos_id] for t in texts]
    eos = list(getattr(policy, "eos_token_ids", []) or [])[:1]
    return [[*tok(t, add_special_tokens=False)["input_ids"], *eos] for t in texts]


def check_trainable(policy: Policy, config: TTTConfig) -> None:
    if config.steps == 0:
        return
    if not policy.trainable:
        raise UserError(f"policy {config.policy!r} cannot be fine-tuned at test time; use tiny or hf:MODEL with LoRA")
    if getattr(policy, "lora", None) is False:
        raise UserError(f"policy {config.policy!r}: test-time training of an hf model trains a LoRA adapter; "
                        "add --policy-option lora_rank=16")


def default_learning_rate(policy: Policy) -> float:
    """1e-4 for a LoRA adapter; for the tiny model its pretraining's peak rate (3e-3; not tuned on ARC)."""
    return 1e-4 if getattr(policy, "lora", False) else 3e-3


def fits(policy: Policy, spec: ArcSpec, answer: Grid | None) -> bool:
    """Whether the prompt of `spec` and the answer grid fit the policy's context."""
    limit = context_length(policy)
    if limit is None:
        return True
    if policy.prompt_style == "compact":  # one token a character: count without encoding
        return spec_text_len(spec, answer) + TINY_OVERHEAD <= limit
    prompt = len(policy.encode_prompts([ArcTask.format_prompt(spec, policy.prompt_style)])[0])
    target = len(encode_targets(policy, [answer_text(answer, "spaced")])[0]) if answer is not None else 0
    return prompt + target <= limit


# -- fine-tuning ----------------------------------------------------------------------------------------


def demo_loss_masks(policy: Policy, prompts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]],
                    prompt_ids: Sequence[Sequence[int]]) -> list[list[bool]]:
    """Which tokens of each encoded prompt lie in a demonstration output (MARC's demonstration loss).

    prompts[i] is a prompt's text, spans[i] its output spans in characters
    (`rungs.tasks.arc.prompt_with_output_spans`), prompt_ids[i] its ids from `policy.encode_prompts`;
    the result has one bool per id. The tiny model's character tokenizer maps characters to tokens
    directly (after <bos>, and after a truncated start); an hf model's tokenizer gives the offsets of
    its tokens in the chat-templated text, in which the prompt appears verbatim.
    Raises UserError when the policy cannot say where its tokens come from (a slow hf tokenizer, a
    chat template that rewrites the prompt): train with --no-demo-loss there.
    """
    tok = getattr(policy, "tokenizer", None)
    if tok is None:
        raise UserError(f"policy {policy.name!r} has no tokenizer to train with")
    masks: list[list[bool]] = []
    for text, text_spans, ids in zip(prompts, spans, prompt_ids):
        mask = [False] * len(ids)
        if hasattr(tok, "eos_id"):  # the tiny model: one token a character, "<answer>" markers aside
            shift = len(ids) - len(tok.encode(text))  # <bos>, less what a too-long prompt lost at its start
            for start, end in text_spans:
                for j in range(shift + len(tok.encode(text[:start])), shift + len(tok.encode(text[:end]))):
                    if 0 < j < len(ids):
                        mask[j] = True
        else:
            rendered = policy.format_prompt(text) if hasattr(policy, "format_prompt") else text
            at = rendered.find(text)
            if at < 0:
                raise UserError(f"policy {policy.name!r}: its chat template rewrites the prompt, so the demonstration "
                                "outputs cannot be located for the demonstration loss; use --no-demo-loss")
            chat = bool(getattr(tok, "chat_template", None))
            try:
                enc = tok(rendered, add_special_tokens=not chat, return_offsets_mapping=True)
            except NotImplementedError as err:
                raise UserError(f"policy {policy.name!r}: the demonstration loss needs a fast tokenizer "
                                "(token offsets); use --no-demo-loss") from err
            if list(enc["input_ids"]) != list(ids):
                raise UserError(f"policy {policy.name!r}: tokenizing the rendered prompt does not reproduce its "
                                "ids, so the demonstration outputs cannot be located; use --no-demo-loss")
            for j, (a, b) in enumerate(enc["offset_mapping"]):
                mask[j] = b > a and any(a < at + end and b > at + start for start, end in text_spans)
        masks.append(mask)
    return masks


def fine_tune(policy: Policy, prompt_ids: Sequence[Sequence[int]], target_ids: Sequence[Sequence[int]], *, steps: int,
              batch_size: int, learning_rate: float, weight_decay: float = 0.0, grad_clip: float = 1.0,
              rng: random.Random, prompt_loss_masks: Sequence[Sequence[bool]] | None = None) -> list[float]:
    """`steps` AdamW steps on (prompt, target) pairs, batches drawn in reshuffled epochs; returns the
    losses (mean negative log-likelihood per trained token, `rungs.train.sft.sft_loss`: the target
    tokens, and the prompt tokens marked in `prompt_loss_masks` when given). A fresh optimizer each
    call: nothing of one problem's training carries over to the next."""
    import torch

    from rungs.train.sft import sft_loss

    params = [p for p in policy.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=learning_rate, weight_decay=weight_decay, betas=(0.9, 0.95))
    order: list[int] = []
    losses: list[float] = []
    policy.train()
    try:
        for _ in range(steps):
            if len(order) < batch_size:
                more = list(range(len(prompt_ids)))
                rng.shuffle(more)
                order.extend(more)
            batch, order = order[:batch_size], order[batch_size:]
            masks = [prompt_loss_masks[i] for i in batch] if prompt_loss_masks is not None else None
            loss = sft_loss(policy, [prompt_ids[i] for i in batch], [target_ids[i] for i in batch], masks)  # type: ignore[arg-type]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(params, grad_clip)
            opt.step()
            losses.append(float(loss.item()))
    finally:
        policy.eval()  # safe: nn.Module/Policy.eval(), inference mode; not Python's eval
    return losses


# -- augmented inference ---------------------------------------------------------------------------------


@dataclass
class Prediction:
    augmentation: str
    geometry: str
    grid: str | None  # grid_key of the prediction mapped back to the original task; None if unusable
    status: str  # "ok", or why not: a grid error's status, "no_answer", "not_invertible"
    tokens: int


def predict(policy: Policy, task: ArcTask, spec: ArcSpec, augs: Sequence[Augmentation], max_new_tokens: int) -> tuple[list[Prediction], int]:
    """Greedy answers under each augmentation (prompts that do not fit the context are skipped),
    parsed and mapped back; returns (predictions, prompts skipped)."""
    style = policy.prompt_style
    limit = context_length(policy)
    jobs: list[tuple[Augmentation, str]] = []
    skipped = 0
    for aug in augs:
        aug_spec = aug.apply(spec)
        # a prompt needs room for at least a 1x1 answer
        if style == "compact" and limit is not None and spec_text_len(aug_spec, ((0,),)) + TINY_OVERHEAD > limit:
            skipped += 1
            continue
        jobs.append((aug, task.format_prompt(aug_spec, style)))
    if not jobs:
        return [], skipped
    sampling = SamplingParams(temperature=0.0, max_new_tokens=max_new_tokens)
    outs = policy.generate([p for _, p in jobs], n=1, sampling=sampling)
    preds = []
    for (aug, _), row in zip(jobs, outs):
        completion = row[0]
        tokens = completion.num_tokens or len(completion.text)
        answer = task.extract_answer(completion.text)
        if answer is None:
            preds.append(Prediction(aug.name, aug.geometry, None, "no_answer", tokens))
            continue
        try:
            grid = aug.invert_grid(parse_grid(answer))
        except GridError as err:
            preds.append(Prediction(aug.name, aug.geometry, None, err.status.value, tokens))
            continue
        preds.append(Prediction(aug.name, aug.geometry, grid_key(grid), "ok", tokens))
    return preds, skipped


# -- one problem --------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    id: str
    task_id: str
    solved: bool  # pass@k: any kept attempt is right (k = config.attempts; ARC: 2)
    top1: bool  # the vote's first attempt is right
    greedy: bool  # the identity prediction (no augmentation, no vote) is right
    attempts: list[str]  # the kept grids (grid_key form)
    statuses: list[str]  # the verifier's status of each attempt
    predictions: int  # augmented predictions made
    parsed: int  # of them, usable grids
    skipped_prompts: int  # augmented prompts that did not fit the context
    train_examples: int
    dropped_examples: int  # training examples that did not fit the context
    steps: int
    loss_first: float | None
    loss_last: float | None
    tokens_generated: int
    tokens_trained: int  # prompt + target tokens through the model in fine-tuning
    seconds: float
    seconds_train: float
    prediction_statuses: dict[str, int] = field(default_factory=dict)


def read_outcomes(path: Path, consequence: str, warn: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """The rows of a run's outcomes.jsonl. A damaged row (not JSON, not an object, a field missing
    or of the wrong type) costs that row: it is left out with one line `FILE:LINE: CONSEQUENCE:
    what is wrong` (a resume solves that problem again; a report leaves it out); a torn last line
    (a kill mid-write) is left out silently; a missing file is empty."""
    from rungs.runs import dataclass_row_problem, read_checked_jsonl

    return [row for _, row in read_checked_jsonl(path, lambda row: dataclass_row_problem(Outcome, row), consequence, warn)]


def solve_problem(config: TTTConfig, policy: Policy, task: ArcTask, pool: Any, problem: Problem) -> Outcome:
    """The recipe on one problem (see the module docstring); the weights are rolled back after."""
    from rungs.pipelines.ttrl import rolled_back

    start = time.perf_counter()
    spec = parse_spec(problem)
    rng = random.Random(f"ttt:{config.seed}:{problem.id}")
    infer = augmentations(config.infer_augmentations, len(spec.train), rng)
    examples = augmented_loo_tasks(spec, config.train_augmentations, rng) if config.steps > 0 else []
    prompts: list[list[int]] = []
    targets: list[list[int]] = []
    masks: list[list[bool]] | None = None
    dropped = 0
    if examples:
        style = policy.prompt_style
        kept = [(s, t) for s, t, _ in examples if fits(policy, s, t)]
        dropped = len(examples) - len(kept)
        if kept:
            texts, spans = zip(*(prompt_with_output_spans(s, style) for s, _ in kept))
            prompts = policy.encode_prompts(list(texts))
            targets = encode_targets(policy, [answer_text(t, "compact" if style == "compact" else "spaced") for _, t in kept])
            if config.demo_loss:
                masks = demo_loss_masks(policy, texts, spans, prompts)
    losses: list[float] = []
    train_s = 0.0
    steps = config.steps if prompts else 0
    # No training, nothing to roll back: an inference-only policy (openai, vllm) runs the no-TTT arm.
    with rolled_back(policy) if steps else contextlib.nullcontext():
        if steps:
            t0 = time.perf_counter()
            losses = fine_tune(policy, prompts, targets, steps=steps, batch_size=config.batch_size,
                               learning_rate=config.learning_rate or default_learning_rate(policy),
                               weight_decay=config.weight_decay, grad_clip=config.grad_clip, rng=rng,
                               prompt_loss_masks=masks)
            train_s = time.perf_counter() - t0
        preds, skipped = predict(policy, task, spec, infer, config.max_new_tokens)
    votes = hierarchical_vote([(p.geometry, p.grid) for p in preds], top=config.attempts, per_transform=config.per_transform)
    identity = next((p.grid for p in preds if p.augmentation == infer[0].name), None)
    texts = [answer_text(grid_from_key(k)) for k in votes]
    checks = texts + ([answer_text(grid_from_key(identity))] if identity is not None else [])
    verdicts = pool.verify([problem] * len(checks), checks) if checks else []
    attempt_verdicts = verdicts[:len(votes)]
    per_step = config.batch_size
    trained_tokens = 0
    if steps:
        mean_len = sum(len(p) + len(t) for p, t in zip(prompts, targets)) / len(prompts)
        trained_tokens = int(mean_len * per_step * steps)
    return Outcome(
        id=problem.id, task_id=str(problem.meta.get("task_id", problem.id)),
        solved=any(v.correct for v in attempt_verdicts), top1=bool(attempt_verdicts and attempt_verdicts[0].correct),
        greedy=identity is not None and verdicts[-1].correct, attempts=list(votes),
        statuses=[v.status.value for v in attempt_verdicts], predictions=len(preds),
        parsed=sum(p.grid is not None for p in preds), skipped_prompts=skipped, train_examples=len(prompts),
        dropped_examples=dropped, steps=steps, loss_first=losses[0] if losses else None,
        loss_last=losses[-1] if losses else None, tokens_generated=sum(p.tokens for p in preds),
        tokens_trained=trained_tokens, seconds=time.perf_counter() - start, seconds_train=train_s,
        prediction_statuses=dict(Counter(p.status for p in preds)),
    )


# -- the job ----------------------------------------------------------------------------------------------------


def select_problems(policy: Policy, problems: Sequence[Problem], only_fitting: bool, limit: int | None, *,
                    source: str | None = None, warn: Callable[[str], None] | None = None) -> list[Problem]:
    """The problems to run: those that fit the context when `only_fitting`, then the first `limit`.

    Sizing a problem needs its reference output grid; a problem without one (a missing answer, an
    answer that is not a grid) costs that problem: it is skipped with one line through `warn`
    (stderr by default) naming `source` and the problem, and the others go on."""
    from rungs.tasks.arc import reference_grid

    if not only_fitting:
        return list(problems[:limit]) if limit else list(problems)
    warn = warn or (lambda line: print(line, file=sys.stderr))
    chosen = []
    for p in problems:
        try:
            fitting = fits(policy, parse_spec(p), reference_grid(p))
        except UserError as err:
            where = f"{source}: " if source else ""
            warn(f"rungs ttt: {where}skipped {err}; --only-fitting sizes each problem by its reference output grid "
                 "(expected an ARC grid as the answer)")
            continue
        if fitting:
            chosen.append(p)
    return chosen[:limit] if limit else chosen


def summarize(rows: Sequence[dict[str, Any]], config: TTTConfig) -> dict[str, Any]:
    n = len(rows)

    def mean(key: str) -> float:
        return sum(float(r[key]) for r in rows) / n if n else 0.0

    return {
        "problems": n,
        f"pass@{config.attempts}": mean("solved"),
        "top1": mean("top1"),
        "greedy": mean("greedy"),
        "solved_ids": [r["id"] for r in rows if r["solved"]],
        "steps": config.steps,
        "train_augmentations": config.train_augmentations,
        "infer_augmentations": config.infer_augmentations,
        "problems_trained": sum(r["steps"] > 0 for r in rows),
        "mean_train_examples": mean("train_examples"),
        "parsed_fraction": (sum(r["parsed"] for r in rows) / max(1, sum(r["predictions"] for r in rows))),
        "seconds_per_problem": mean("seconds"),
        "train_seconds_per_problem": mean("seconds_train"),
        "tokens_generated_per_problem": mean("tokens_generated"),
        "tokens_trained_per_problem": mean("tokens_trained"),
    }


def run_ttt(config: TTTConfig, *, resume_dir: str | None = None, policy: Policy | None = None, task: Task | None = None,
            pool: Any = None, echo: bool = True, problems: Sequence[Problem] | None = None) -> dict[str, Any]:
    """Run (or resume) `rungs ttt`; returns the summary (also in RUN_DIR/summary.json)."""
    from rungs.config import to_dict
    from rungs.pipelines.job import default_out, job_scope
    from rungs.runs import RunDir

    task = task or config.build_task()
    if not isinstance(task, ArcTask):
        raise UserError(f"rungs ttt: task {config.task!r} has no invertible augmentations; test-time training runs on arc")
    # job_scope releases the run directory however the job ends, and removes a new one again if
    # the job fails before its first problem is done (a policy that will not load, say).
    run_dir = RunDir.open(resume_dir, job="ttt", lock=True) if resume_dir else \
        RunDir.create(config.out or default_out("ttt", config.task), {"ttt": to_dict(config)})
    with job_scope(run_dir, "ttt"):
        return _run_ttt(config, run_dir, policy, task, pool, echo, problems)


def _run_ttt(config: TTTConfig, run_dir: Any, policy: Policy | None, task: ArcTask, pool: Any, echo: bool,
             problems: Sequence[Problem] | None) -> dict[str, Any]:
    from tqdm.auto import tqdm

    from rungs.data import load_task_problems
    from rungs.policies import load_policy
    from rungs.verify.pool import VerifierPool

    policy = policy or load_policy(config.policy, task=config.task, seed=config.policy_seed, **config.policy_options)
    check_trainable(policy, config)
    if problems is None:
        loaded = load_task_problems(config.problems, task)
        problems = select_problems(policy, loaded, config.only_fitting, config.limit, source=str(config.problems))
    if not problems:
        raise UserError(f"{config.problems}: no problem left to run" + (" that fits the policy's context" if config.only_fitting else ""))
    # a damaged row costs that problem (it is solved again, with a warning), not the run
    done = {row["id"]: row for row in read_outcomes(Path(run_dir.path) / OUTCOMES_FILE, "solved again")}
    run_dir.rewrite_rows(OUTCOMES_FILE, list(done.values()))
    own_pool = pool is None
    pool = pool or VerifierPool(task, workers=config.workers, timeout_s=config.timeout, executor=config.executor)
    bar = tqdm(total=len(problems), initial=sum(p.id in done for p in problems), desc="ttt", unit="problem",
               disable=not echo, dynamic_ncols=True)
    try:
        for problem in problems:
            if problem.id in done:
                continue
            row = asdict(solve_problem(config, policy, task, pool, problem))
            run_dir.append_rows(OUTCOMES_FILE, [row])
            done[problem.id] = row
            bar.update(1)
            bar.set_postfix({"pass@2": f"{sum(done[p.id]['solved'] for p in problems if p.id in done)}/{len(done)}"}, refresh=False)
    finally:
        bar.close()
        if own_pool:
            pool.close()
    rows = [done[p.id] for p in problems]
    summary = summarize(rows, config)
    summary.update(run_dir=str(run_dir.path), policy=config.policy, source=config.problems)
    summary["plots"] = [str(plot_ttt(Path(run_dir.path) / "ttt.png", rows, summary, config))]
    run_dir.write_summary(summary)
    if echo:
        print_summary(summary, config)
    return summary


def print_summary(summary: dict[str, Any], config: TTTConfig) -> str:
    from rungs.report import print_table

    k = config.attempts
    rows = [
        {"measure": f"pass@{k} (hierarchical vote over {config.infer_augmentations} augmentations)", "value": summary[f"pass@{k}"]},
        {"measure": "top-1 of the vote", "value": summary["top1"]},
        {"measure": "identity prediction alone (greedy)", "value": summary["greedy"]},
        {"measure": "problems fine-tuned / steps each", "value": f"{summary['problems_trained']} / {config.steps}"},
        {"measure": "training examples per problem (LOO x augmentations)", "value": summary["mean_train_examples"]},
        {"measure": "predictions that parsed as grids", "value": summary["parsed_fraction"]},
        {"measure": "seconds per problem (of them training)", "value": f"{summary['seconds_per_problem']:.1f} ({summary['train_seconds_per_problem']:.1f})"},
        {"measure": "tokens generated / trained per problem", "value": f"{summary['tokens_generated_per_problem']:.0f} / {summary['tokens_trained_per_problem']:.0f}"},
    ]
    title = f"ttt {config.task}: {summary['problems']} problems of {config.problems}, policy {config.policy}  ({summary.get('run_dir', '')})"
    return print_table(rows, ["measure", "value"], title=title)


def plot_ttt(path: Path, rows: Sequence[dict[str, Any]], summary: dict[str, Any], config: TTTConfig) -> Path:
    """Left: greedy, top-1 and pass@k accuracy; right: seconds per problem, coloured by outcome."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from rungs.report import save_png

    fig = Figure(figsize=(10, 4), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    left, right = fig.subplots(1, 2, width_ratios=[1, 2])
    k = config.attempts
    names = ["greedy", "vote top-1", f"vote pass@{k}"]
    values = [summary["greedy"], summary["top1"], summary[f"pass@{k}"]]
    left.bar(names, values, color=["#8c8c8c", "#4c72b0", "#55a868"])
    for x, v in enumerate(values):
        left.text(x, v + 0.01, f"{v:.2f}", ha="center", fontsize=9)
    left.set_ylim(0, max(0.1, max(values) * 1.25))
    left.set_ylabel("fraction of test inputs")
    left.set_title(f"{summary['problems']} problems, {config.steps} TTT steps")
    xs = list(range(len(rows)))
    colours = ["#55a868" if r["solved"] else "#c44e52" for r in rows]
    right.bar(xs, [r["seconds"] for r in rows], color=colours)
    right.bar(xs, [r["seconds_train"] for r in rows], color="none", edgecolor="black", hatch="//", linewidth=0.5)
    right.set_xlabel("problem (green: solved at pass@k; hatched: training time)")
    right.set_ylabel("seconds")
    right.grid(True, axis="y", alpha=0.3)
    save_png(fig, path)
    return path
