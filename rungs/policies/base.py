"""The Policy interface: prompts in, sampled completions out; and, when trainable, log-probs.

Strategies, GRPO, LADDER and test-time RL all talk to this one interface, so a policy must:
- `generate(prompts, n, sampling)`: n completions per prompt, with token ids and the per-token
  log-probs of the sampled tokens under the sampling distribution (when it can give them);
- when `trainable`: `encode_prompts` (the exact ids `generate` conditioned on), `logprobs` (a
  differentiable [B, T] tensor of log p(completion token | prefix)), `reference_logprobs` (the
  frozen reference for the KL term), `parameters`, train/eval, snapshot/restore, save/load;
  optionally `token_stats` (entropy and self-certainty of the full next-token distribution, for
  the label-free rewards) and `decode`.
"""

from __future__ import annotations

import abc
import contextlib
import math
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

from rungs.errors import UserError
from rungs.types import Completion


@dataclass(frozen=True)
class SamplingParams:
    """Sampling settings shared by every policy.

    temperature 0 means greedy. `first_token_temperature` / `first_token_top_k` are FIRE
    (Chen et al. 2024): the first token is sampled hot to diversify, the rest normally.
    """

    temperature: float = 1.0
    top_k: int = 0  # 0 = off
    top_p: float = 1.0
    max_new_tokens: int = 256
    stop: tuple[str, ...] = field(default_factory=tuple)
    seed: int | None = None
    first_token_temperature: float | None = None
    first_token_top_k: int | None = None

    def __post_init__(self) -> None:
        for name in ("temperature", "first_token_temperature"):
            value = getattr(self, name)
            if value is not None and not (value >= 0 and math.isfinite(value)):  # NaN fails every comparison
                raise ValueError(f"{name} must be a finite number >= 0, got {value}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    def with_(self, **changes: Any) -> SamplingParams:
        return replace(self, **changes)


# What one completion costs in memory at least, as `Completion` holds it: the object and its
# lists and text, plus per token an id, a log-prob (a Python float) and about a character.
COMPLETION_BYTES, COMPLETION_TOKEN_BYTES = 400, 41


def physical_memory_bytes() -> int | None:
    """This machine's memory in bytes; None where the OS does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def check_output_memory(prompts: int, n: int, steps: int, who: str) -> None:
    """UserError (one line, starting with `who` and naming the count) when `prompts` x `n`
    completions of up to `steps` tokens each could need more memory than this machine has (at
    COMPLETION_BYTES a completion plus COMPLETION_TOKEN_BYTES a token), before anything is sampled:
    sampling them would end in the OOM killer or an allocation error hours later. The tiny and hf
    policies call it with the most tokens a completion of theirs may have (each capped by its context)."""
    memory = physical_memory_bytes()
    each = COMPLETION_BYTES + COMPLETION_TOKEN_BYTES * steps
    if memory is None or prompts * n * each <= memory:
        return
    fits = max(1, memory // each // max(1, prompts))
    what = f"{n} samples" + (f" of each of {prompts} prompts" if prompts != 1 else "")
    raise UserError(f"{who}: {what} of up to {steps} tokens would need about {prompts * n * each / 2**30:,.1f} GiB "
                    f"for the completions alone, more than this machine's {memory / 2**30:,.1f} GiB; expected at most "
                    f"about {fits} samples{' per prompt' if prompts != 1 else ''} (a smaller --n)")


def parse_device(device: Any, who: str) -> Any:
    """The `torch.device` for an explicit device setting (cpu, cuda, cuda:N, mps), checked against
    this machine: text torch cannot parse, another device type, or a GPU that torch cannot see (a
    CPU-only build asked for cuda) is a one-line `UserError` starting with `who` ("tiny policy"),
    rather than torch's traceback at the first tensor moved there. "auto" is the caller's to resolve."""
    import torch

    expected = "expected cpu, cuda, cuda:N or mps (or auto)"
    if isinstance(device, torch.device):
        parsed = device
    elif not isinstance(device, str):
        raise UserError(f"{who}: device {device!r}: {expected}")
    else:
        try:
            parsed = torch.device(device.strip())
        except (RuntimeError, ValueError, TypeError):
            raise UserError(f"{who}: device {device!r} is not a device name; {expected}") from None
    if parsed.type not in ("cpu", "cuda", "mps"):
        raise UserError(f"{who}: device {device!r}: {expected}")
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            build = "a CPU-only build" if torch.version.cuda is None else "no GPU visible"
            raise UserError(f"{who}: device {device!r} asked for, but torch sees no CUDA GPU ({build}); use device=cpu")
        count = torch.cuda.device_count()
        if parsed.index is not None and parsed.index >= count:
            raise UserError(f"{who}: device {device!r} asked for, but torch sees {count} CUDA GPU(s) (cuda:0 to cuda:{count - 1})")
    if parsed.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise UserError(f"{who}: device {device!r} asked for, but torch sees no Apple MPS device; use device=cpu")
    return parsed


class LogProbs(NamedTuple):
    """Per-token log-probabilities of given completions, right-padded.

    logprobs: [B, T] float; requires grad when the policy is in train mode
    mask:     [B, T] bool; True on real completion tokens
    entropy:  [B, T] float or None; entropy of the full next-token distribution (no grad)
    """

    logprobs: Any
    mask: Any
    entropy: Any = None


class TokenStats(NamedTuple):
    """Statistics of the full next-token distribution at each completion token (no grad).

    mask:           [B, T] bool; True on real completion tokens
    entropy:        [B, T] float; H(p_i) = -sum_v p_i(v) log p_i(v), nats
    self_certainty: [B, T] float; KL(U || p_i) = -log|V| - mean_v log p_i(v) >= 0 (INTUITOR's
                    per-token self-certainty, Zhao et al. 2025; |V| = the logits' width)
    """

    mask: Any
    entropy: Any
    self_certainty: Any


class Policy(abc.ABC):
    """A language model that can be sampled, and (if `trainable`) scored and updated."""

    name: str = ""
    trainable: bool = False
    # "instruct" (chat LLMs) or "compact" (the embedded character-level model); see tasks.base.
    prompt_style: str = "instruct"

    @abc.abstractmethod
    def generate(self, prompts: Sequence[str], n: int = 1, sampling: SamplingParams | None = None) -> list[list[Completion]]:
        """For each prompt, `n` completions (a list of length len(prompts), each of length n)."""

    def check_generate(self, prompts: Sequence[str], n: int = 1, sampling: SamplingParams | None = None) -> None:  # noqa: B027
        """UserError (one line) when `generate(prompts, n, sampling)` would be refused before it samples
        anything (the tiny and hf policies: completions that could not fit in memory); samples nothing.
        A job that samples in many calls checks them first (`rungs eval`), so that a refusal comes
        before its first sample is stored rather than after a pass of them. Nothing, by default."""

    # -- training interface (trainable policies only) -------------------------------------------
    def encode_prompts(self, prompts: Sequence[str]) -> list[list[int]]:
        """Token ids that `generate` conditions on for these prompts (chat template applied)."""
        raise NotImplementedError(f"policy {self.name!r} is not trainable")

    def logprobs(self, prompt_ids: Sequence[Sequence[int]], completion_ids: Sequence[Sequence[int]], *, with_entropy: bool = False) -> LogProbs:
        """log p(completion token | prompt, earlier completion tokens) under the current weights."""
        raise NotImplementedError(f"policy {self.name!r} is not trainable")

    def token_stats(self, prompt_ids: Sequence[Sequence[int]], completion_ids: Sequence[Sequence[int]]) -> TokenStats:
        """Full-vocabulary statistics (entropy, self-certainty) at each completion token, under the
        current weights, without grad: what the label-free rewards self_certainty and neg_entropy read."""
        raise NotImplementedError(f"policy {self.name!r} gives no full-vocabulary statistics")

    def decode(self, token_ids: Sequence[int]) -> str:
        """The text of `token_ids` (as a completion's text is decoded from them)."""
        raise NotImplementedError(f"policy {self.name!r} cannot decode token ids")

    def reference_logprobs(self, prompt_ids: Sequence[Sequence[int]], completion_ids: Sequence[Sequence[int]]) -> Any:
        """[B, T] log-probs under the frozen reference (the weights at `set_reference`; for LoRA,
        the base model with the adapter disabled). No grad."""
        raise NotImplementedError(f"policy {self.name!r} is not trainable")

    def set_reference(self) -> None:
        """Freeze the current weights as the KL reference."""
        raise NotImplementedError(f"policy {self.name!r} is not trainable")

    def parameters(self) -> Iterable[Any]:
        """The trainable parameters (LoRA parameters only, under LoRA)."""
        raise NotImplementedError(f"policy {self.name!r} is not trainable")

    def train(self) -> None:  # noqa: B027 - optional hook
        """Switch to training mode (dropout etc.)."""

    def eval(self) -> None:  # noqa: B027 - optional hook  # safe: nn.Module/Policy.eval(), inference mode; not Python's eval
        """Switch to inference mode."""

    def snapshot(self) -> Any:
        """An opaque copy of the trainable weights, for rollback in test-time RL."""
        raise NotImplementedError(f"policy {self.name!r} is not trainable")

    def restore(self, snapshot: Any) -> None:
        """Put back the weights of `snapshot` exactly (bitwise)."""
        raise NotImplementedError(f"policy {self.name!r} is not trainable")

    def save(self, directory: str) -> None:
        raise NotImplementedError(f"policy {self.name!r} cannot be saved")

    def load(self, directory: str) -> None:
        raise NotImplementedError(f"policy {self.name!r} cannot be loaded")

    @property
    def device(self) -> Any:
        return "cpu"

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (HTTP clients, engines)."""


@contextlib.contextmanager
def raw_prompts(policy: Policy, on: bool = True) -> Iterator[None]:
    """Run `policy` with its `raw_prompts` switch on (prompts are the model's input text, with no chat
    template: the hf policy's), restored afterwards; a no-op for a policy without the switch or
    when `on` is False. Used by `rungs serve`'s /v1/completions and by budget forcing."""
    switch = on and hasattr(policy, "raw_prompts")
    before = getattr(policy, "raw_prompts", None)
    if switch:
        policy.raw_prompts = True  # type: ignore[attr-defined]
    try:
        yield
    finally:
        if switch:
            policy.raw_prompts = before  # type: ignore[attr-defined]
