"""TinyPolicy: the embedded tiny model behind the `Policy` interface.

`load_policy("tiny")` is a fresh, untrained model (for tests and from-scratch experiments);
`load_policy("tiny", task="integration")` or `"tiny:integration"` is the shipped checkpoint
rungs/checkpoints/tiny-integration/; `"tiny:PATH"` is any checkpoint directory written by
`TinyPolicy.save` (model.safetensors + config.json + tokenizer.json).

Prompts are in the "compact" style: the bare problem text, e.g. "integrate(3*x**2, x)". The model
conditions on `<bos>` + those characters and was trained to emit "<answer>x**3</answer><eos>";
`Completion.text` is the decoded text with the `<answer>` markers (and without `<eos>`), so a
task's `extract_answer` reads it like any other model's output. `Completion.logprobs` are the
log-probs of the sampled tokens under the model's plain distribution (temperature 1, untruncated),
i.e. exactly what `logprobs()` recomputes; see `sampling.py` for why.
"""

from __future__ import annotations

import copy
import math
import typing
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import fields
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from rungs.config import did_you_mean
from rungs.errors import UserError
from rungs.policies.base import (
    LogProbs,
    Policy,
    SamplingParams,
    TokenStats,
    check_output_memory,
    parse_device,
)
from rungs.policies.tiny.model import CONFIG_FILE, TinyConfig, TinyTransformer
from rungs.policies.tiny.sampling import generate_ids
from rungs.policies.tiny.tokenizer import CharTokenizer
from rungs.types import Completion

WEIGHTS_FILE = "model.safetensors"
FRESH_ARGS = ("random", "new", "scratch")  # "tiny:random": an untrained model even when a task has a checkpoint
CONFIG_KEYS = tuple(f.name for f in fields(TinyConfig) if f.name != "vocab_size")
KNOWN_OPTIONS = ("device", "seed", *CONFIG_KEYS)  # what --policy-option may set (CONFIG_KEYS: a fresh model only)


# The most KV cache one sampling call holds (the default model: about 0.8 MB a row for a short
# prompt and 64 new tokens, so about 1,300 rows); a larger batch is sampled in chunks of rows
# (`TinyPolicy.generate`).
GENERATE_CACHE_BYTES = 1 << 30


def row_chunks(prompts: int, n: int, rows: int) -> Iterator[tuple[int, int, int]]:
    """(first prompt, last prompt + 1, samples of each) for the sampling calls that make `n` samples
    of each of `prompts` prompts with at most `rows` rows (prompts x samples) a call, in order:
    one call when everything fits, else whole prompts a call, else one prompt's samples in parts."""
    if prompts * n <= rows:
        yield 0, prompts, n
    elif n <= rows:
        per_call = rows // n
        for first in range(0, prompts, per_call):
            yield first, min(prompts, first + per_call), n
    else:
        for first in range(prompts):
            for done in range(0, n, rows):
                yield first, first + 1, min(rows, n - done)


def checkpoints_root() -> Path:
    return Path(str(resources.files("rungs") / "checkpoints"))


def shipped_checkpoints() -> dict[str, Path]:
    """Checkpoints shipped in the package: {"integration": .../checkpoints/tiny-integration, ...}."""
    root = checkpoints_root()
    if not root.is_dir():
        return {}
    return {p.name[len("tiny-"):]: p for p in sorted(root.iterdir())
            if p.name.startswith("tiny-") and (p / WEIGHTS_FILE).is_file()}


def resolve_checkpoint(arg: str) -> Path:
    """A checkpoint directory from a path or a shipped name ("integration", "tiny-integration", or
    the policy spec "tiny:integration" that `--policy` and `--base` take)."""
    path = Path(arg).expanduser()
    if path.is_dir():
        return path
    shipped = shipped_checkpoints()
    name = arg.removeprefix("tiny:").removeprefix("tiny-")
    if name in shipped:
        return shipped[name]
    choices = ", ".join(shipped) or "(none shipped)"
    raise UserError(f"tiny checkpoint {arg!r}: no such directory, and not a shipped checkpoint "
                    f"(expected a directory or one of: {choices}, or 'random')")


def _device(device: Any) -> torch.device:
    if device is None or (isinstance(device, str) and device.strip().lower() == "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return parse_device(device, "tiny policy")


def _check_options(config: dict[str, Any], seed: Any) -> int:
    """The seed as an int, after checking each TinyConfig option's type: --policy-option values
    arrive as YAML scalars (d_model=abc is the text 'abc'), and the model's own arithmetic would
    fail on them with a TypeError. UserError (one line, naming the setting) otherwise."""
    types = {**typing.get_type_hints(TinyConfig), "seed": int}
    for name, value in {**config, "seed": seed}.items():
        if types[name] is int and (isinstance(value, bool) or not isinstance(value, int)):
            raise UserError(f"tiny policy: {name}={value!r}: expected an integer")
        if types[name] is float and (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)):
            raise UserError(f"tiny policy: {name}={value!r}: expected a finite number")
    return int(seed)


def _pretrained_task(directory: Any) -> str | None:
    """The task `rungs pretrain` recorded in DIR/training.json, or None (no such file, or unreadable)."""
    import json

    try:
        task = json.loads((Path(directory) / "training.json").read_text(encoding="utf-8")).get("task")
    except (OSError, ValueError, AttributeError):
        return None
    return task if isinstance(task, str) else None


class TinyPolicy(Policy):
    """The embedded character-level transformer; trainable, snapshot-able, a few MB."""

    name = "tiny"
    trainable = True
    prompt_style = "compact"
    # GRPO's default rate for this model (GRPOConfig.learning_rate=None); chosen on the dev set.
    default_learning_rate = 1e-4

    def __init__(self, model: TinyTransformer, tokenizer: CharTokenizer, *, device: Any = "cpu",
                 seed: int = 0, source: str | None = None) -> None:
        if model.cfg.vocab_size != tokenizer.vocab_size:
            raise UserError(f"model vocabulary ({model.cfg.vocab_size}) and tokenizer ({tokenizer.vocab_size}) differ")
        self._device = _device(device)
        self.model = model.to(self._device).eval()  # safe: nn.Module/Policy.eval(), inference mode; not Python's eval
        self.tokenizer = tokenizer
        self.source = source  # where the weights came from ("random" or a directory), for logs
        self._generator = torch.Generator(device=self._device).manual_seed(seed)
        self._reference: TinyTransformer | None = None

    # -- construction ---------------------------------------------------------------------------
    @classmethod
    def new(cls, *, alphabets: Iterable[str] = (), device: Any = "cpu", seed: int = 0, **config: Any) -> TinyPolicy:
        """A freshly initialised model; `config` overrides TinyConfig fields (d_model, n_layers, ...)."""
        unknown = sorted(set(config) - set(CONFIG_KEYS))
        if unknown:
            raise UserError(f"tiny policy: unknown setting {unknown[0]!r}; expected some of device, seed, {', '.join(CONFIG_KEYS)}")
        seed = _check_options(config, seed)
        device = _device(device)  # before building a model that could not be placed
        tokenizer = CharTokenizer.build(alphabets)
        with torch.random.fork_rng(devices=[]):  # seeded init without touching the global RNG
            torch.manual_seed(seed)
            model = TinyTransformer(TinyConfig(vocab_size=tokenizer.vocab_size, **config))
        return cls(model, tokenizer, device=device, seed=seed, source="random")

    @classmethod
    def from_pretrained(cls, directory: str | Path, *, device: Any = "cpu", seed: int = 0) -> TinyPolicy:
        directory = Path(directory)
        tokenizer = CharTokenizer.load(directory)
        model = TinyTransformer(TinyConfig.load(directory))
        policy = cls(model, tokenizer, device=device, seed=seed, source=str(directory))
        policy._load_weights(directory)
        return policy

    @classmethod
    def from_spec(cls, arg: str | None = None, *, task: Any = None, device: Any = None, seed: int | None = None,
                  **config: Any) -> TinyPolicy:
        """The registry factory: "tiny", "tiny:random", "tiny:integration", "tiny:PATH" (see module doc)."""
        seed = _check_options({}, 0 if seed is None else seed)
        device = _device("cpu" if device is None else device)
        unknown = sorted(set(config) - set(CONFIG_KEYS))
        if unknown:
            raise UserError(f"tiny policy: unknown setting {unknown[0]!r}{did_you_mean(unknown[0], KNOWN_OPTIONS)}; "
                            f"expected some of device, seed, or for a fresh model ('tiny:random') {', '.join(CONFIG_KEYS)}")
        task_name = task if isinstance(task, str) or task is None else getattr(task, "name", None)
        if arg is None and task_name is not None:
            if task_name in shipped_checkpoints():
                arg = task_name
            else:
                warnings.warn(f"no shipped tiny checkpoint for task {task_name!r}; starting from random weights "
                              f"(train one with `rungs pretrain --task {task_name}`)", stacklevel=2)
        if arg is None or arg in FRESH_ARGS:
            alphabets = []
            if task is not None:
                if isinstance(task, str):
                    from rungs.tasks import get_task

                    task = get_task(task)
                alphabets.append(task.alphabet)
            return cls.new(alphabets=alphabets, device=device, seed=seed, **config)
        if config:
            raise UserError(f"tiny policy: settings {', '.join(sorted(config))} apply only to a fresh model "
                            f"('tiny:random'), not to the checkpoint {arg!r}")
        directory = resolve_checkpoint(arg)
        trained_for = _pretrained_task(directory)
        if task_name is not None and trained_for is not None and trained_for != task_name:
            warnings.warn(f"tiny checkpoint {arg!r} was pretrained for task {trained_for!r}, not {task_name!r} "
                          "(its training.json says so); its answers will be in the wrong form", stacklevel=2)
        return cls.from_pretrained(directory, device=device, seed=seed)

    # -- generation ------------------------------------------------------------------------------
    @property
    def max_prompt_tokens(self) -> int:
        """The longest prompt (in characters) the model reads whole; a longer one keeps its end."""
        return max(1, self.model.cfg.max_seq_len - 2)

    def encode_prompts(self, prompts: Sequence[str]) -> list[list[int]]:
        """<bos> + characters; an over-long prompt keeps its end so that it fits max_seq_len - 1."""
        keep = self.max_prompt_tokens
        longest = max((len(p) for p in prompts), default=0)
        if longest > keep and not getattr(self, "_warned_long_prompt", False):
            self._warned_long_prompt = True  # once per policy: a job's problems share one length budget
            warnings.warn(f"tiny policy: a prompt of {longest} characters is longer than the {keep} the model reads; it "
                          "sees only the end, so such a problem mostly scores 0 (shorter problems, or an hf: model)",
                          UserWarning, stacklevel=2)
        return [[self.tokenizer.bos_id, *self.tokenizer.encode(p)[-keep:]] for p in prompts]

    def generate(self, prompts: Sequence[str], n: int = 1, sampling: SamplingParams | None = None) -> list[list[Completion]]:
        """`n` completions of each prompt. A batch of more rows (prompts x n) than `chunk_rows` allows
        is sampled in chunks of rows, so that its KV cache stays bounded whatever n is; a chunked
        batch draws its random numbers in another order than one call would, so its samples differ
        from an unchunked batch's (greedy ones do not). UserError (one line, naming the count) when
        the completions themselves could not fit in this machine's memory (`check_output_memory`)."""
        sampling = sampling or SamplingParams()
        generator = self._generator
        if sampling.seed is not None:
            generator = torch.Generator(device=self._device).manual_seed(sampling.seed)
        encoded = self.encode_prompts(prompts)
        steps = self._steps(encoded, sampling)
        check_output_memory(len(encoded), n, steps, "tiny policy")
        rows = self.chunk_rows(encoded, steps)
        was_training = self.model.training
        self.model.eval()  # safe: nn.Module/Policy.eval(), inference mode; not Python's eval
        samples: list[list[Any]] = [[] for _ in encoded]
        try:
            for first, stop, count in row_chunks(len(encoded), n, rows):
                made = generate_ids(self.model, encoded[first:stop], count, sampling,
                                    eos_id=self.tokenizer.eos_id, pad_id=self.tokenizer.pad_id,
                                    piece_text=self.tokenizer.piece_text, generator=generator)
                for i, row in enumerate(made, start=first):
                    samples[i].extend(row)
        finally:
            self.model.train(was_training)
        return [[Completion(s.text, s.token_ids, s.logprobs, s.finish_reason or "length") for s in row]
                for row in samples]

    def check_generate(self, prompts: Sequence[str], n: int = 1, sampling: SamplingParams | None = None) -> None:
        """The refusal `generate` would give before sampling (`check_output_memory`), without sampling."""
        encoded = self.encode_prompts(prompts)
        check_output_memory(len(encoded), n, self._steps(encoded, sampling or SamplingParams()), "tiny policy")

    def _steps(self, encoded: Sequence[Sequence[int]], sampling: SamplingParams) -> int:
        """Tokens the longest completion of `encoded` may have (`generate_ids` caps each row's budget
        so that prompt + completion fit max_seq_len)."""
        shortest = min((len(ids) for ids in encoded), default=1)
        return max(1, min(sampling.max_new_tokens, self.model.cfg.max_seq_len - shortest))

    def chunk_rows(self, encoded: Sequence[Sequence[int]], steps: int) -> int:
        """The most rows (prompts x samples) one sampling call takes: as many as keep its KV cache
        (keys and values of every layer, prompt + completion positions) within GENERATE_CACHE_BYTES."""
        cfg = self.model.cfg
        positions = max((len(ids) for ids in encoded), default=1) + steps
        per_row = 2 * cfg.n_layers * cfg.d_model * positions * self.model.embed.weight.element_size()
        return max(1, GENERATE_CACHE_BYTES // per_row)

    # -- scoring -----------------------------------------------------------------------------------
    def _score(self, model: TinyTransformer, prompt_ids: Sequence[Sequence[int]],
               completion_ids: Sequence[Sequence[int]], with_entropy: bool) -> LogProbs:
        targets, logp_all, mask = self._all_logprobs(model, prompt_ids, completion_ids)
        logp = logp_all.gather(-1, targets[..., None]).squeeze(-1).masked_fill(~mask, 0.0)  # [B, Tc]
        entropy = None
        if with_entropy:
            with torch.no_grad():
                entropy = -(logp_all.exp() * logp_all).sum(-1).masked_fill(~mask, 0.0)  # [B, Tc]
        return LogProbs(logp, mask, entropy)

    def _all_logprobs(self, model: TinyTransformer, prompt_ids: Sequence[Sequence[int]],
                      completion_ids: Sequence[Sequence[int]]) -> tuple[Tensor, Tensor, Tensor]:
        """(targets [B, Tc] long, log-softmax over the vocabulary [B, Tc, V], mask [B, Tc] bool)."""
        if len(prompt_ids) != len(completion_ids):
            raise ValueError(f"{len(prompt_ids)} prompts but {len(completion_ids)} completions")
        B = len(prompt_ids)
        plens = [len(p) for p in prompt_ids]
        clens = [len(c) for c in completion_ids]
        if B and min(plens) == 0:
            raise ValueError("every prompt needs at least one token (use encode_prompts)")
        T = max((p + c for p, c in zip(plens, clens)), default=1)
        Tc = max(clens + [1])  # at least one column, masked when every completion is empty
        pad = self.tokenizer.pad_id
        tokens = torch.full((B, T), pad, dtype=torch.long)  # right-padded: pads never precede real tokens
        targets = torch.full((B, Tc), pad, dtype=torch.long)
        mask = torch.zeros((B, Tc), dtype=torch.bool)
        for i, (p, c) in enumerate(zip(prompt_ids, completion_ids)):
            tokens[i, : len(p) + len(c)] = torch.tensor([*p, *c], dtype=torch.long)
            targets[i, : len(c)] = torch.tensor(list(c), dtype=torch.long)
            mask[i, : len(c)] = True
        tokens, targets, mask = tokens.to(self._device), targets.to(self._device), mask.to(self._device)
        hidden = model(tokens)  # [B, T, D], causal
        # Position of the hidden state that predicts completion token j: prompt_len - 1 + j.
        where = (torch.tensor(plens, device=self._device)[:, None] - 1 + torch.arange(Tc, device=self._device))
        where = where.clamp(max=T - 1)  # [B, Tc]
        h = hidden.gather(1, where[..., None].expand(-1, -1, hidden.shape[-1]))  # [B, Tc, D]
        logp_all = torch.log_softmax(model.logits(h).float(), dim=-1)  # [B, Tc, V]
        return targets, logp_all, mask

    def logprobs(self, prompt_ids: Sequence[Sequence[int]], completion_ids: Sequence[Sequence[int]], *,
                 with_entropy: bool = False) -> LogProbs:
        """[B, T] log-probs (differentiable in train mode), mask, and optionally entropy."""
        with torch.set_grad_enabled(self.model.training and torch.is_grad_enabled()):
            return self._score(self.model, prompt_ids, completion_ids, with_entropy)

    def token_stats(self, prompt_ids: Sequence[Sequence[int]], completion_ids: Sequence[Sequence[int]]) -> TokenStats:
        """Entropy and self-certainty [B, T] of the next-token distribution at each completion token."""
        with torch.no_grad():
            logp_all, mask = self._all_logprobs(self.model, prompt_ids, completion_ids)[1:]
            entropy = -(logp_all.exp() * logp_all).sum(-1).masked_fill(~mask, 0.0)  # [B, Tc]
            certainty = (-logp_all.mean(-1) - math.log(logp_all.shape[-1])).masked_fill(~mask, 0.0)  # [B, Tc]
        return TokenStats(mask, entropy, certainty)

    def decode(self, token_ids: Sequence[int]) -> str:
        return self.tokenizer.decode(token_ids)

    def set_reference(self) -> None:
        """Freeze a copy of the current weights as the KL reference."""
        ref = copy.deepcopy(self.model).eval()  # safe: nn.Module/Policy.eval(), inference mode; not Python's eval
        for p in ref.parameters():
            p.requires_grad_(False)
        self._reference = ref

    def reference_logprobs(self, prompt_ids: Sequence[Sequence[int]], completion_ids: Sequence[Sequence[int]]) -> Tensor:
        if self._reference is None:
            raise RuntimeError("call set_reference() before reference_logprobs()")
        with torch.no_grad():
            return self._score(self._reference, prompt_ids, completion_ids, False).logprobs

    # -- training state ----------------------------------------------------------------------------
    def parameters(self) -> Iterable[torch.nn.Parameter]:
        return self.model.parameters()

    def train(self) -> None:
        self.model.train()

    def eval(self) -> None:  # safe: nn.Module/Policy.eval(), inference mode; not Python's eval
        self.model.eval()  # safe: nn.Module/Policy.eval(), inference mode; not Python's eval

    def snapshot(self) -> dict[str, Tensor]:
        return {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    def restore(self, snapshot: dict[str, Tensor]) -> None:
        self.model.load_state_dict(snapshot)  # copies into the existing tensors: optimizers stay attached

    @property
    def device(self) -> torch.device:
        return self._device

    # -- persistence -------------------------------------------------------------------------------
    def save(self, directory: str | Path) -> None:
        """Write model.safetensors, config.json and tokenizer.json, each atomically."""
        from safetensors.torch import save

        from rungs.runs import atomic_write_bytes, atomic_write_text

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        tensors = {k: v.detach().to("cpu").contiguous() for k, v in self.model.state_dict().items()}
        atomic_write_text(directory / CONFIG_FILE, self.model.cfg.to_json())
        self.tokenizer.save(directory)
        atomic_write_bytes(directory / WEIGHTS_FILE, save(tensors, metadata={"format": "pt"}))

    def load(self, directory: str | Path) -> None:
        """Load the checkpoint in `directory`: in place when the shapes match (so optimizers over
        `parameters()` stay attached), else as a new model (build optimizers after loading).
        A KL reference set earlier is kept unless the model's shape changed."""
        directory = Path(directory)
        tokenizer, cfg = CharTokenizer.load(directory), TinyConfig.load(directory)
        if cfg != self.model.cfg or tokenizer.pieces != self.tokenizer.pieces:
            self.model = TinyTransformer(cfg).to(self._device).eval()  # safe: nn.Module/Policy.eval(), inference mode; not Python's eval
            self._reference = None  # a reference of another shape no longer applies
        self.tokenizer = tokenizer
        self._load_weights(directory)
        self.source = str(directory)

    def _load_weights(self, directory: Path) -> None:
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        path = directory / WEIGHTS_FILE
        if not path.is_file():
            raise UserError(f"{path}: no weights file; expected a rungs tiny checkpoint directory")
        try:
            state = load_file(str(path), device=str(self._device))
            self.model.load_state_dict(state)
        except (SafetensorError, RuntimeError) as err:
            raise UserError(f"{path}: weights do not match {directory / CONFIG_FILE} "
                            f"({str(err).splitlines()[0]})") from None
