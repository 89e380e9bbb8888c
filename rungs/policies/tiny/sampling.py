"""Batched sampling with a KV cache for the tiny model.

Every CPU demo spends its time here, so the loop does the least work it can:

- prompts are left-padded into one batch and prefilled once each, with per-row RoPE positions
  and a padding mask, so a prompt's output does not depend on what else is in the batch;
- the `n` samples of a prompt share that prefill: its keys and values are kept once and read once
  per step for all n rows (`KVCache.share_prefix`);
- then one token per step for all live rows (`TinyTransformer.decode_step`); rows that finish
  (end of sequence, a stop string, their token budget) stop contributing, and the batch is
  compacted once a quarter of its rows are done, so that copying the cache stays rare;
- `max_new_tokens` is capped per row so that prompt + completion fit `max_seq_len` (the longest
  sequence the model was trained on).

A step of a small batch costs milliseconds, so the bookkeeping stays off the per-row Python path:
sampled ids and log-probs go into [steps, B] tensors, end of sequence is one comparison for the
batch, token budgets are known steps, a stop string is looked for only in rows whose new token's
text holds the last character of one, and text is decoded once at the end.

The log-probs returned with each sampled token are under the model's plain distribution
(temperature 1, no top-k/top-p truncation, no FIRE): the same quantity `TinyPolicy.logprobs`
recomputes, which is what GRPO's importance ratio needs as its "old" log-probs. The sampling
distribution itself (temperature, top-k, top-p, FIRE) only decides which token is drawn.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from rungs.policies.base import SamplingParams
from rungs.policies.tiny.model import KVCache, TinyTransformer

COMPACT_FRACTION = 0.75  # compact the batch when at most this fraction of its rows are live


@dataclass
class Sample:
    """One generated row: ids and plain log-probs of the sampled tokens, decoded text, why it ended."""

    token_ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    text: str = ""
    finish_reason: str | None = None


def sample_tokens(logits: Tensor, temperature: float, top_k: int, top_p: float,
                  generator: torch.Generator | None) -> Tensor:
    """Draw one token per row from logits [B, V] (temperature 0 = argmax). Returns [B] int64."""
    if temperature == 0:
        return logits.argmax(dim=-1)
    if temperature != 1:
        logits = logits / temperature
    vocab = logits.shape[-1]
    if 0 < top_k < vocab:
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]  # [B, 1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)  # [B, V]
        sorted_probs = sorted_logits.softmax(dim=-1)
        # Drop a token when the tokens ranked above it already reach top_p (the top one always stays).
        drop_sorted = (sorted_probs.cumsum(dim=-1) - sorted_probs) >= top_p
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    probs = logits.softmax(dim=-1)  # [B, V]
    # torch.multinomial(probs, 1)'s own algorithm (argmax of probs / Exp(1) noise), so the same
    # draws for a generator state, without its validity checks (three host syncs per call).
    noise = torch.empty_like(probs).exponential_(1, generator=generator)
    return torch.div(probs, noise, out=noise).argmax(dim=-1)


def _first_stop(text: str, start: int, stops: Sequence[str]) -> int | None:
    """Index of the earliest stop string that ends after `start` (the newly added text), or None."""
    best = None
    for s in stops:
        i = text.find(s, max(0, start - len(s) + 1))
        if i >= 0 and (best is None or i < best):
            best = i
    return best


def _decode(ids: Sequence[int], piece_text: Callable[[int], str]) -> str:
    return "".join(piece_text(t) for t in ids)


@torch.inference_mode()
def generate_ids(model: TinyTransformer, prompts: Sequence[Sequence[int]], n: int, sampling: SamplingParams, *,
                 eos_id: int, pad_id: int, piece_text: Callable[[int], str],
                 generator: torch.Generator | None) -> list[list[Sample]]:
    """For each prompt (a non-empty id list), `n` samples; see the module docstring."""
    device = model.embed.weight.device
    cfg = model.cfg
    P, lens = len(prompts), [len(p) for p in prompts]
    if P == 0 or n == 0:
        return [[] for _ in range(P)]
    if min(lens) == 0:
        raise ValueError("every prompt needs at least one token (the tokenizer adds <bos>)")
    T = max(lens)
    B = P * n
    limits = [max(1, min(sampling.max_new_tokens, cfg.max_seq_len - lens[r // n])) for r in range(B)]
    steps = max(limits)  # tokens of the longest row; the last one is sampled, never fed back

    # -- prefill: all prompts at once, left-padded ----------------------------------------------
    tokens = torch.full((P, T), pad_id, dtype=torch.long)
    valid = torch.zeros((P, T), dtype=torch.bool)
    for i, ids in enumerate(prompts):
        tokens[i, T - len(ids):] = torch.tensor(list(ids), dtype=torch.long)
        valid[i, T - len(ids):] = True
    tokens, valid = tokens.to(device), valid.to(device)
    positions = (valid.long().cumsum(dim=1) - 1).clamp(min=0)  # [P, T]: 0 at each prompt's first token
    has_pad = not bool(valid.all())
    mask = None
    if has_pad:
        causal = torch.ones((T, T), dtype=torch.bool, device=device).tril()
        # Padded queries may attend to themselves, so no row is fully masked (that would be NaN).
        mask = (causal & valid[:, None, :]) | torch.eye(T, dtype=torch.bool, device=device)  # [P, T, T]
        mask = mask[:, None]  # [P, 1, T, T]
    cache = KVCache(cfg, P, T + steps - 1, model.embed.weight.dtype, device)  # all a generation can need
    model.rope.ensure(T + steps, device)
    hidden = model(tokens, positions, mask, cache)  # [P, T, D]
    logits = model.logits(hidden[:, -1]).float()  # [P, V]

    # -- the n samples of each prompt share its prefill -----------------------------------------
    rows = torch.arange(P, device=device).repeat_interleave(n)  # [B]
    if n > 1:
        cache.share_prefix(n)  # kept once per prompt, not copied to its n rows
    if has_pad:
        cache.hide(~valid[rows])  # decoding steps never attend to the prompts' padding
    logits, next_pos = logits[rows], positions[rows, -1] + 1  # [B, V], [B]

    # Every row of the batch samples a token at every step, so row r's j-th token is out_ids[j, r].
    out_ids = torch.zeros((steps, B), dtype=torch.long, device=device)
    out_lp = torch.zeros((steps, B), dtype=torch.float32, device=device)
    batch_rows = torch.arange(B, device=device)  # [Bc]: the row of each batch position
    live = torch.ones(B, dtype=torch.bool, device=device)  # [Bc]: still generating
    n_live = B
    ends_at = [0] * B  # tokens of each finished row
    reasons: list[str | None] = [None] * B
    cut: dict[int, int] = {}  # row -> length of its text before the stop string it produced
    budget: dict[int, list[int]] = {}  # step -> rows that reach their token budget there
    for r, lim in enumerate(limits):
        budget.setdefault(lim - 1, []).append(r)
    stops = [s for s in sampling.stop if s]
    may_stop = None  # [V] bool: the token's text holds the last character of a stop string
    if stops:
        lasts = {s[-1] for s in stops}
        may_stop = torch.tensor([any(c in lasts for c in piece_text(t)) for t in range(cfg.vocab_size)],
                                dtype=torch.bool, device=device)

    for step in range(steps):
        temperature, top_k = sampling.temperature, sampling.top_k
        if step == 0 and sampling.first_token_temperature is not None:
            temperature = sampling.first_token_temperature
        if step == 0 and sampling.first_token_top_k is not None:
            top_k = sampling.first_token_top_k
        tok = sample_tokens(logits, temperature, top_k, sampling.top_p, generator)  # [Bc]
        plain_lp = torch.log_softmax(logits, dim=-1).gather(1, tok[:, None]).squeeze(1)  # [Bc]
        out_ids[step].index_copy_(0, batch_rows, tok)
        out_lp[step].index_copy_(0, batch_rows, plain_lp)

        # -- rows that end here: <eos>, else a stop string, else their token budget -----------------
        done = live & (tok == eos_id)  # [Bc]
        if may_stop is not None:
            check = live & may_stop[tok] & ~done
            if bool(check.any()):
                for j in check.nonzero().squeeze(1).tolist():
                    r = int(batch_rows[j])
                    text = _decode(out_ids[:step + 1, r].tolist(), piece_text)
                    hit = _first_stop(text, len(text) - len(piece_text(int(tok[j]))), stops)
                    if hit is not None:
                        cut[r] = hit
                        done[j] = True
        stopped = done.nonzero().squeeze(1).tolist() if bool(done.any()) else []
        if stopped or step in budget:
            row_of = batch_rows.tolist()
            for j in stopped:
                ends_at[row_of[j]], reasons[row_of[j]] = step + 1, "stop"
            for r in budget.get(step, ()):
                if reasons[r] is None:
                    ends_at[r], reasons[r] = step + 1, "length"
            n_live = reasons.count(None)
            if n_live == 0:
                break
            live = torch.tensor([reasons[r] is None for r in row_of], dtype=torch.bool, device=device)
            if n_live <= COMPACT_FRACTION * len(row_of):
                keep = live.nonzero().squeeze(1)
                cache.select_rows(keep)
                next_pos, tok, batch_rows, live = next_pos[keep], tok[keep], batch_rows[keep], live[keep]
        # -- one decoding step for every row still in the batch -----------------------------------
        logits = model.decode_step(tok, next_pos, cache).float()  # [Bc, V]
        next_pos = next_pos + 1

    if bool(out_lp.isnan().any()):  # torch.multinomial would have refused; say why instead of returning noise
        raise RuntimeError("the tiny model produced NaN logits (diverged weights?)")
    ids, lps = out_ids.T.tolist(), out_lp.T.tolist()  # [B, steps]
    out = []
    for r in range(B):
        k = ends_at[r]
        text = _decode(ids[r][:k], piece_text)
        out.append(Sample(ids[r][:k], lps[r][:k], text[:cut[r]] if r in cut else text, reasons[r]))
    return [out[p * n:(p + 1) * n] for p in range(P)]
