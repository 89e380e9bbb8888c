"""Batched sampling with a KV cache for the tiny model.

Every CPU demo spends its time here, so the loop does the least work it can:

- prompts are left-padded into one batch and prefilled once each, with per-row RoPE positions
  and a padding mask, so a prompt's output does not depend on what else is in the batch;
- the `n` samples of a prompt share that prefill (the cache rows are repeated, not recomputed);
- then one token per step for all live rows; rows that finish (end of sequence, a stop string,
  their token budget) stop contributing, and the batch is compacted once a quarter of its rows
  are done, so that copying the cache stays rare;
- `max_new_tokens` is capped per row so that prompt + completion fit `max_seq_len` (the longest
  sequence the model was trained on).

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
    probs = logits.softmax(dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(1)


def _first_stop(text: str, start: int, stops: Sequence[str]) -> int | None:
    """Index of the earliest stop string that ends after `start` (the newly added text), or None."""
    best = None
    for s in stops:
        i = text.find(s, max(0, start - len(s) + 1))
        if i >= 0 and (best is None or i < best):
            best = i
    return best


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
    max_new = sampling.max_new_tokens
    cache = KVCache(cfg, P, T + min(max_new, 64), model.embed.weight.dtype, device)
    hidden = model(tokens, positions, mask, cache)  # [P, T, D]
    logits = model.logits(hidden[:, -1]).float()  # [P, V]

    # -- the n samples of each prompt share its prefill -----------------------------------------
    rows = torch.arange(P, device=device).repeat_interleave(n)  # [B]
    cache.select_rows(rows)
    logits, valid, next_pos = logits[rows], valid[rows], positions[rows, -1] + 1  # [B, V], [B, T], [B]
    B = P * n
    limits = [max(1, min(max_new, cfg.max_seq_len - lens[r // n])) for r in range(B)]
    out = [Sample() for _ in range(B)]
    batch_rows = list(range(B))  # original row of each batch position
    live = B
    stops = [s for s in sampling.stop if s]

    step = 0
    while True:
        first = step == 0
        temperature = sampling.temperature
        top_k = sampling.top_k
        if first and sampling.first_token_temperature is not None:
            temperature = sampling.first_token_temperature
        if first and sampling.first_token_top_k is not None:
            top_k = sampling.first_token_top_k
        tok = sample_tokens(logits, temperature, top_k, sampling.top_p, generator)  # [Bc]
        plain_lp = torch.log_softmax(logits, dim=-1).gather(1, tok[:, None]).squeeze(1)  # [Bc]
        for j, (t, lp) in enumerate(zip(tok.tolist(), plain_lp.tolist())):
            s = out[batch_rows[j]]
            if s.finish_reason is not None:
                continue  # finished earlier, waiting for the next compaction
            s.token_ids.append(t)
            s.logprobs.append(lp)
            if t == eos_id:
                s.finish_reason = "stop"
            else:
                piece = piece_text(t)
                if piece and stops:
                    before = len(s.text)
                    s.text += piece
                    hit = _first_stop(s.text, before, stops)
                    if hit is not None:
                        s.text, s.finish_reason = s.text[:hit], "stop"
                else:
                    s.text += piece
                if s.finish_reason is None and len(s.token_ids) >= limits[batch_rows[j]]:
                    s.finish_reason = "length"
            if s.finish_reason is not None:
                live -= 1
        if live == 0:
            break
        if live <= COMPACT_FRACTION * len(batch_rows):
            keep = [j for j, r in enumerate(batch_rows) if out[r].finish_reason is None]
            idx = torch.tensor(keep, device=device)
            cache.select_rows(idx)
            valid, next_pos, tok = valid[idx], next_pos[idx], tok[idx]
            batch_rows = [batch_rows[j] for j in keep]
        # -- one decoding step for every row still in the batch -----------------------------------
        valid = torch.cat([valid, valid.new_ones((len(batch_rows), 1))], dim=1)  # [Bc, S]
        step_mask = valid[:, None, None, :] if has_pad else None  # [Bc, 1, 1, S]
        hidden = model(tok[:, None], next_pos[:, None], step_mask, cache)  # [Bc, 1, D]
        logits = model.logits(hidden[:, 0]).float()  # [Bc, V]
        next_pos = next_pos + 1
        step += 1
    return [out[p * n:(p + 1) * n] for p in range(P)]
