"""The embedded tiny model: a small decoder-only transformer in plain PyTorch.

It is what runs every CPU demo and test, so it is small (a few MB), trains in minutes on two
cores, and uses the choices that today's open models share, so that what a user learns from it
carries over to the 7B models:

- pre-norm blocks with RMSNorm (`torch.nn.RMSNorm`): cheaper than LayerNorm, no bias to tune;
- rotary position embeddings (RoPE) applied to queries and keys from explicit per-token
  positions, so left-padded batches and the KV cache see exactly the positions an unpadded
  sequence would;
- a SwiGLU MLP (SiLU-gated linear unit, hidden size ~8/3 d_model);
- tied input/output embeddings (the vocabulary is ~100 characters; tying halves nothing big
  but keeps rare characters' input and output vectors in step);
- attention through `torch.nn.functional.scaled_dot_product_attention`, no biases anywhere.

`TinyTransformer.forward` returns the final hidden states and `logits` projects them, so that
callers scoring a completion project only the positions they need. The KV cache (`KVCache`)
keeps keys and values of all layers in one tensor so rows can be dropped or repeated with one
index operation.

Sampling runs `decode_step`: one token for each row of a batch, the computation of `forward` +
`logits` for one position (tested equal), written for speed. For a model this small a step of a
batch of dozens of rows is milliseconds, split between the weight matmuls (compute-bound),
reading every cached key and value once (tens of MB, memory-bound: `KVCache` explains the layout
that lets it stream and the prompt keys shared by a prompt's samples) and the fixed cost of each
op. So the step runs few ops: no module calls, RoPE angles looked up in a table built once (the
same float ops as computing them, so the same bits), queries and keys rotated in one op, and
attention of one query as batched matmuls over dense blocks of the cache (about twice as fast on
CPU as `scaled_dot_product_attention` over the cache in our measurements; equal up to float
rounding).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rungs.errors import UserError

CONFIG_FILE = "config.json"


@dataclass
class TinyConfig:
    """Model shape. Saved as config.json next to the weights."""

    vocab_size: int
    d_model: int = 256
    n_layers: int = 4
    n_heads: int = 4
    max_seq_len: int = 256  # longest prompt + completion the model is trained and sampled for
    mlp_hidden: int = 0  # 0 = 8/3 * d_model rounded up to a multiple of 64 (Llama's rule)
    rope_theta: float = 10000.0
    norm_eps: float = 1e-5
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if min(self.vocab_size, self.d_model, self.n_layers, self.n_heads) < 1 or self.max_seq_len < 8:
            raise UserError(f"tiny model config: sizes must be positive and max_seq_len >= 8, got {self}")
        if not 0 <= self.dropout < 1 or not self.rope_theta > 0 or not self.norm_eps > 0:
            raise UserError(f"tiny model config: expected 0 <= dropout < 1, rope_theta > 0 and norm_eps > 0, got "
                            f"dropout={self.dropout}, rope_theta={self.rope_theta}, norm_eps={self.norm_eps}")
        if self.d_model % self.n_heads or (self.d_model // self.n_heads) % 2:
            raise UserError(f"d_model {self.d_model} must split into {self.n_heads} heads of even size")
        if self.mlp_hidden <= 0:
            self.mlp_hidden = 64 * math.ceil(8 * self.d_model / 3 / 64)

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    def to_json(self) -> str:
        return json.dumps({"model_type": "rungs-tiny", **asdict(self)}, indent=2) + "\n"

    @classmethod
    def load(cls, directory: str | Path) -> TinyConfig:
        path = Path(directory) / CONFIG_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UserError(f"{path}: no model config; expected a rungs tiny checkpoint directory") from None
        except json.JSONDecodeError as err:
            raise UserError(f"{path}: malformed JSON ({err})") from None
        if data.pop("model_type", None) != "rungs-tiny":
            raise UserError(f"{path}: not a rungs tiny model config (model_type must be 'rungs-tiny')")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise UserError(f"{path}: unknown setting {unknown[0]!r}; expected some of {', '.join(sorted(known))}")
        return cls(**data)


class KVCache:
    """Keys and values of every layer for positions 0..length-1 of a batch.

    Positions after the shared prefix (all of them unless `share_prefix` was called) are kept in
    blocks: k, v [L, NB, B, H, block, Dh], position prefix_len + i in block i // block at offset
    i % block. Why blocks: a decoding step reads every cached key and value once, tens of MB for
    a batch of dozens of rows, more than the CPU's caches hold. Read from memory, a batched matmul
    over matrices that are dense as a whole streams about twice as fast as one over the strided
    [B, H, :length, Dh] slices of a [B, H, capacity, Dh] buffer, and the whole blocks
    k[layer, :nb] are one dense tensor; only the last, partial block is read strided.

    `share_prefix(n)` turns a prefilled batch of P prompts into P * n rows that share them: the
    prompts' keys and values are kept once (pk, pv [L, P, H, prefix_len, Dh]) and read once per
    prompt per step instead of once per row, and they are not copied n times.

    `bias` ([B, 1, 1, capacity]: 0 = may attend, -inf = not) hides the positions a caller hides
    (prompt padding) and those not written yet. All rows share one write index (prompts are
    left-padded to a common length). Allocate the capacity a generation can need up front: on CPU
    the OS commits a block's memory only when a position in it is first written, so a cache costs
    memory for about the tokens actually generated. `reserve` grows it when needed (copying it).
    """

    def __init__(self, cfg: TinyConfig, batch: int, capacity: int, dtype: torch.dtype, device: torch.device,
                 block: int = 32) -> None:
        self.block = block
        shape = (cfg.n_layers, -(-capacity // block), batch, cfg.n_heads, block, cfg.head_dim)
        self.k = torch.empty(shape, dtype=dtype, device=device)
        self.v = torch.empty(shape, dtype=dtype, device=device)
        self.bias = torch.full((batch, 1, 1, shape[1] * block), float("-inf"), dtype=dtype, device=device)
        self.any_hidden = False  # whether `hide` hid anything (else decoding steps need no bias)
        self.length = 0
        # The shared prefix (see share_prefix): its length, keys and values, and for each row its prompt.
        self.prefix_len = 0
        self.pk: Tensor | None = None
        self.pv: Tensor | None = None
        self.group = self.flat = torch.empty(0, dtype=torch.long)
        self.width, self.grouped = 0, False

    @property
    def capacity(self) -> int:
        return self.prefix_len + self.k.shape[1] * self.block

    def _blocks(self, length: int) -> int:
        return -(-length // self.block)

    def reserve(self, extra: int) -> None:
        """Make room for `extra` more positions (at least doubling the capacity)."""
        need = self.length + extra
        if need > self.capacity:
            self._resize(torch.arange(self.k.shape[2], device=self.k.device), max(need, 2 * self.capacity))

    def begin(self, extra: int) -> None:
        """Before writing positions length..length+extra-1 in every layer: make room and let them be
        attended to. (`length` advances after the last layer.)"""
        self.reserve(extra)
        self.bias[..., self.length:self.length + extra] = 0.0

    def hide(self, hidden: Tensor) -> None:
        """Never attend to the written positions where hidden [B, <= length] (bool) is True (e.g. padding)."""
        self.bias[:, 0, 0, :hidden.shape[1]].masked_fill_(hidden, float("-inf"))
        self.any_hidden = self.any_hidden or bool(hidden.any())

    def hidden(self) -> Tensor:
        """[B, 1, 1, length] bool: written positions that `hide` hid."""
        return self.bias[..., :self.length] != 0

    def share_prefix(self, n: int) -> None:
        """Right after a prefill of P rows (prompts): make them the shared prefix of P * n rows, n per
        prompt, in prompt order (the rows `select_rows(arange(P).repeat_interleave(n))` would give)."""
        if self.prefix_len or not self.length or n < 1:
            raise ValueError("share_prefix applies once, to a prefilled cache")
        L, _, P, H, blk, Dh = self.k.shape
        T, nb = self.length, self._blocks(self.length)

        def dense(x: Tensor) -> Tensor:  # blocks [L, nb, P, H, block, Dh] -> [L, P, H, T, Dh]
            return x[:, :nb].permute(0, 2, 3, 1, 4, 5).reshape(L, P, H, nb * blk, Dh)[:, :, :, :T].contiguous()

        self.pk, self.pv = dense(self.k), dense(self.v)
        capacity = self.capacity
        self.prefix_len = T
        shape = (L, self._blocks(max(capacity - T, 1)), P * n, H, blk, Dh)
        self.k, self.v = self.k.new_empty(shape), self.v.new_empty(shape)
        rows = torch.arange(P, device=self.k.device).repeat_interleave(n)
        bias = self.bias.new_full((P * n, 1, 1, self.capacity), float("-inf"))
        bias[..., :T] = self.bias[rows, ..., :T]
        self.bias = bias
        self._set_groups(rows)

    def _set_groups(self, group: Tensor) -> None:
        """Rows' prompts; each row's place in a [P, width] grid of its prompt's rows (flat index)."""
        seen: dict[int, int] = {}
        slots = []
        for g in group.tolist():
            slots.append(seen.get(g, 0))
            seen[g] = slots[-1] + 1
        P = self.pk.shape[1]
        self.width = max(seen.values(), default=1)
        self.group = group
        self.flat = group * self.width + torch.tensor(slots, dtype=torch.long, device=group.device)
        # Rows exactly fill the grid in order: the grid is a view of the batch, no scatter/gather.
        self.grouped = len(slots) == P * self.width and bool((self.flat == torch.arange(len(slots), device=group.device)).all())

    def select_rows(self, rows: Tensor) -> None:
        """Keep only `rows` (an index tensor into the batch), in that order; repeats allowed."""
        self._resize(rows, self.capacity)

    def _resize(self, rows: Tensor, capacity: int) -> None:
        """New buffers of `capacity` positions holding the written blocks of `rows` (only those are copied)."""
        L, _, _, H, blk, Dh = self.k.shape
        shape = (L, self._blocks(capacity - self.prefix_len), rows.shape[0], H, blk, Dh)
        k, v = self.k.new_empty(shape), self.v.new_empty(shape)
        nb = self._blocks(self.length - self.prefix_len)
        torch.index_select(self.k[:, :nb], 2, rows, out=k[:, :nb])
        torch.index_select(self.v[:, :nb], 2, rows, out=v[:, :nb])
        bias = self.bias.new_full((rows.shape[0], 1, 1, self.prefix_len + shape[1] * blk), float("-inf"))
        bias[..., :self.length] = self.bias[rows, ..., :self.length]
        self.k, self.v, self.bias = k, v, bias
        if self.pk is not None:
            self._set_groups(self.group[rows])

    def update(self, layer: int, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Write k, v [B, H, T, Dh] at the current end (after `begin(T)`); return all keys/values
        [B, H, length+T, Dh]: the given ones when the cache was empty, else a gathered copy."""
        start, end, blk = self.length - self.prefix_len, self.length - self.prefix_len + k.shape[2], self.block
        for b in range(start // blk, self._blocks(end)):  # the blocks the new positions fall in
            lo, hi = max(start, b * blk), min(end, (b + 1) * blk)
            self.k[layer, b, :, :, lo - b * blk:hi - b * blk] = k[:, :, lo - start:hi - start]
            self.v[layer, b, :, :, lo - b * blk:hi - b * blk] = v[:, :, lo - start:hi - start]
        if self.length == 0:
            return k, v
        B, H, _, Dh = k.shape
        nb = self._blocks(end)
        keys = self.k[layer, :nb].permute(1, 2, 0, 3, 4).reshape(B, H, nb * blk, Dh)[:, :, :end]
        values = self.v[layer, :nb].permute(1, 2, 0, 3, 4).reshape(B, H, nb * blk, Dh)[:, :, :end]
        if self.pk is not None:
            keys = torch.cat([self.pk[layer].index_select(0, self.group), keys], dim=2)
            values = torch.cat([self.pv[layer].index_select(0, self.group), values], dim=2)
        return keys, values

    def step_bias(self) -> Tensor | None:
        """[B, 1, 1, length+1]: the bias of the next decoding step's scores (after `begin(1)`);
        None when no position is hidden."""
        return self.bias[..., :self.length + 1] if self.any_hidden else None

    def attend_one(self, layer: int, q: Tensor, k: Tensor, v: Tensor, bias: Tensor | None) -> Tensor:
        """A decoding step: write k, v [B, H, Dh] at position `length` (after `begin(1)`) and return
        the attention output [B, H, Dh] of queries q [B, H, Dh] over positions 0..length.
        bias: `step_bias()`."""
        pos, blk = self.length - self.prefix_len, self.block  # pos: index after the prefix
        full, part = divmod(pos + 1, blk)  # whole blocks, positions in the last partial one
        self.k[layer, pos // blk, :, :, pos % blk] = k
        self.v[layer, pos // blk, :, :, pos % blk] = v
        B, H, Dh = q.shape
        scores = []
        if self.pk is not None:  # the shared prefix: the queries of a prompt's rows as one matrix
            Tp, P, m = self.prefix_len, self.pk.shape[1], self.width
            grid = q if self.grouped else q.new_zeros(P * m, H, Dh).index_copy_(0, self.flat, q)
            s = grid.view(P, m, H, Dh).transpose(1, 2) @ self.pk[layer].transpose(-1, -2)  # [P, H, m, Tp]
            s = s.transpose(1, 2).reshape(P * m, H, 1, Tp)
            scores.append(s if self.grouped else s.index_select(0, self.flat))  # [B, H, 1, Tp]
        q = q[:, :, None]  # [B, H, 1, Dh]
        if full:  # the whole blocks: one dense batch of matrices
            s = q @ self.k[layer, :full].transpose(-1, -2)  # [full, B, H, 1, block]
            scores.append(s.permute(1, 2, 3, 0, 4).reshape(B, H, 1, full * blk))
        if part:
            scores.append(q @ self.k[layer, full, :, :, :part].transpose(-1, -2))  # [B, H, 1, part]
        scores = (torch.cat(scores, dim=-1) if len(scores) > 1 else scores[0]).mul_(Dh ** -0.5)  # [B, H, 1, S]
        if bias is not None:
            scores.add_(bias)
        probs = scores.softmax(dim=-1)
        outs = []
        first = self.prefix_len
        if self.pk is not None:
            p = probs[..., :first]  # [B, H, 1, Tp]
            grid = p.reshape(B, H, Tp) if self.grouped else p.new_zeros(P * m, H, Tp).index_copy_(0, self.flat, p[:, :, 0])
            y = grid.view(P, m, H, Tp).transpose(1, 2) @ self.pv[layer]  # [P, H, m, Dh]
            y = y.transpose(1, 2).reshape(P * m, H, Dh)
            outs.append(y if self.grouped else y.index_select(0, self.flat))  # [B, H, Dh]
        if full:
            p = probs[..., first:first + full * blk].reshape(B, H, 1, full, blk).permute(3, 0, 1, 2, 4)
            outs.append((p @ self.v[layer, :full]).sum(dim=0)[:, :, 0])  # [B, H, Dh]
        if part:
            outs.append((probs[..., first + full * blk:] @ self.v[layer, full, :, :, :part])[:, :, 0])  # [B, H, Dh]
        out = outs[0]
        for y in outs[1:]:
            out = out + y
        return out


def rope_tables(positions: Tensor, head_dim: int, theta: float) -> tuple[Tensor, Tensor]:
    """cos, sin [B, 1, T, Dh] for integer positions [B, T] (rotate-half convention)."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, device=positions.device, dtype=torch.float32) / head_dim))
    angles = positions.to(torch.float32)[..., None] * inv_freq  # [B, T, Dh/2]
    angles = torch.cat([angles, angles], dim=-1)[:, None]  # [B, 1, T, Dh]
    return angles.cos(), angles.sin()


class RopeTable:
    """cos and signed sin ([-sin, sin] halves, see `apply_rope`) of positions 0..size-1: computed
    once with `rope_tables`, so looked-up values are bitwise those it gives; grown on demand."""

    def __init__(self, head_dim: int, theta: float) -> None:
        self.head_dim, self.theta = head_dim, theta
        self.cos = self.sin = torch.empty(0)

    def ensure(self, size: int, device: torch.device) -> None:
        """Cover positions 0..size-1 on `device`."""
        if self.cos.shape[0] < size or self.cos.device != device:
            size = max(size, self.cos.shape[0])
            # Plain tensors even when first needed under inference_mode: training reuses them.
            with torch.inference_mode(False), torch.no_grad():
                cos, sin = rope_tables(torch.arange(size, device=device)[None], self.head_dim, self.theta)
                half = self.head_dim // 2
                sin = torch.cat([-sin[..., :half], sin[..., half:]], dim=-1)  # negation is exact
            self.cos, self.sin = cos[0, 0], sin[0, 0]  # [size, Dh]


def apply_rope(x: Tensor, cos: Tensor, sin_signed: Tensor) -> Tensor:
    """Rotate x [..., Dh] by the position angles (cos and `RopeTable`'s signed sin broadcast against x).

    The rotate-half formula x * cos + [-x2, x1] * [sin, sin] with the sign moved onto the sine:
    x * cos + [x2, x1] * [-sin, sin], bitwise the same (a product's sign does not affect its rounding)."""
    half = x.shape[-1] // 2
    return (x * cos + torch.cat([x[..., half:], x[..., :half]], dim=-1) * sin_signed).to(x.dtype)


def rms_norm(x: Tensor, norm: nn.RMSNorm) -> Tensor:
    """`norm(x)`; for float32, in the ops of torch's own implementation (bitwise equal, tested)
    without its dtype round trips."""
    if x.dtype != torch.float32 or norm.weight.dtype != torch.float32:
        return norm(x)
    return x * x.pow(2).mean(-1, keepdim=True).add_(norm.eps).rsqrt_() * norm.weight


class Attention(nn.Module):
    def __init__(self, cfg: TinyConfig) -> None:
        super().__init__()
        self.n_heads, self.head_dim, self.dropout = cfg.n_heads, cfg.head_dim, cfg.dropout
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model, bias=False)
        self.out = nn.Linear(cfg.d_model, cfg.d_model, bias=False)

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor, mask: Tensor | None,
                cache: KVCache | None, layer: int) -> Tensor:
        B, T, D = x.shape
        qkv = self.qkv(x).view(B, T, 3, self.n_heads, self.head_dim)
        qk = apply_rope(qkv[:, :, :2], cos, sin)  # [B, T, 2, H, Dh]: queries and keys rotated at once
        q, k, v = qk[:, :, 0].transpose(1, 2), qk[:, :, 1].transpose(1, 2), qkv[:, :, 2].transpose(1, 2)  # [B, H, T, Dh]
        if cache is not None:
            k, v = cache.update(layer, k, v)  # [B, H, S, Dh]
        # No explicit mask: a plain causal sequence (training, scoring, an unpadded prefill).
        causal = mask is None and T > 1
        if causal and k.shape[2] != T:
            raise ValueError("a multi-token step after a non-empty cache needs an explicit mask")
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal,
                                           dropout_p=self.dropout if self.training else 0.0)  # [B, H, T, Dh]
        return self.out(y.transpose(1, 2).reshape(B, T, D))


class SwiGLU(nn.Module):
    def __init__(self, cfg: TinyConfig) -> None:
        super().__init__()
        self.gate_up = nn.Linear(cfg.d_model, 2 * cfg.mlp_hidden, bias=False)
        self.down = nn.Linear(cfg.mlp_hidden, cfg.d_model, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        gate, up = self.gate_up(x).chunk(2, dim=-1)
        return self.down(F.silu(gate) * up)


class Block(nn.Module):
    def __init__(self, cfg: TinyConfig) -> None:
        super().__init__()
        self.attn_norm = nn.RMSNorm(cfg.d_model, eps=cfg.norm_eps)
        self.attn = Attention(cfg)
        self.mlp_norm = nn.RMSNorm(cfg.d_model, eps=cfg.norm_eps)
        self.mlp = SwiGLU(cfg)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor, mask: Tensor | None,
                cache: KVCache | None, layer: int) -> Tensor:
        x = x + self.drop(self.attn(self.attn_norm(x), cos, sin, mask, cache, layer))
        return x + self.drop(self.mlp(self.mlp_norm(x)))


class TinyTransformer(nn.Module):
    def __init__(self, cfg: TinyConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.norm = nn.RMSNorm(cfg.d_model, eps=cfg.norm_eps)
        self.rope = RopeTable(cfg.head_dim, cfg.rope_theta)  # neither parameter nor buffer: checkpoints unchanged
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """GPT-2 style init: N(0, 0.02), residual output projections scaled by 1/sqrt(2 L)."""
        for name, p in self.named_parameters():
            if p.ndim < 2:
                nn.init.ones_(p)  # RMSNorm gains
            elif name.endswith(("attn.out.weight", "mlp.down.weight")):
                nn.init.normal_(p, std=0.02 / math.sqrt(2 * self.cfg.n_layers))
            else:
                nn.init.normal_(p, std=0.02)

    def forward(self, tokens: Tensor, positions: Tensor | None = None, mask: Tensor | None = None,
                cache: KVCache | None = None) -> Tensor:
        """Final hidden states [B, T, D] for tokens [B, T].

        positions: [B, T] int (default 0..T-1, or continuing the cache); explicit positions must be
            below max(max_seq_len, what `self.rope.ensure` was asked to cover).
        mask: [B, 1, T, S] bool, True = may attend, or float, added to the attention scores
            (S = cache length + T); None = causal. Positions the cache hides stay hidden.
        cache: keys/values of earlier positions; appended to and advanced by T.
        """
        B, T = tokens.shape
        if positions is None:
            start = cache.length if cache is not None else 0
            self.rope.ensure(max(start + T, self.cfg.max_seq_len), tokens.device)
            cos = self.rope.cos[start:start + T][None, :, None, None]  # [1, T, 1, 1, Dh]
            sin = self.rope.sin[start:start + T][None, :, None, None]
        else:
            self.rope.ensure(self.cfg.max_seq_len, tokens.device)
            cos, sin = self.rope.cos[positions][:, :, None, None], self.rope.sin[positions][:, :, None, None]
        x = self.embed(tokens)  # [B, T, D]
        if cache is not None:
            if cache.length:
                mask = self._with_hidden(mask, cache.hidden(), T)
            cache.begin(T)
        for i, block in enumerate(self.blocks):
            x = block(x, cos, sin, mask, cache, i)
        if cache is not None:
            cache.length += T
        return self.norm(x)

    @staticmethod
    def _with_hidden(mask: Tensor | None, hidden: Tensor, T: int) -> Tensor | None:
        """The caller's mask [B, 1, T, S] (None: all, for one token) minus hidden [B, 1, 1, L] cache positions."""
        if mask is None and T > 1:
            return None  # forward raises: a multi-token step after a non-empty cache needs a mask
        hidden = F.pad(hidden, (0, T))  # [B, 1, 1, S]: new positions are never hidden
        if mask is None:
            return ~hidden
        return mask & ~hidden if mask.dtype == torch.bool else mask.masked_fill(hidden, float("-inf"))

    @torch.inference_mode()
    def decode_step(self, tokens: Tensor, positions: Tensor, cache: KVCache) -> Tensor:
        """Next-token logits [B, V] after one token per row (tokens, positions: [B]), appending to
        `cache`: `logits(forward(tokens[:, None], positions[:, None], None, cache))[:, 0]` (float32,
        not training), in fewer ops; see the module docstring. Positions must be covered by `rope`."""
        B, H, Dh = tokens.shape[0], self.cfg.n_heads, self.cfg.head_dim
        cos, sin = self.rope.cos[positions][:, None, None], self.rope.sin[positions][:, None, None]  # [B, 1, 1, Dh]
        cache.begin(1)
        bias = cache.step_bias()
        x = F.embedding(tokens, self.embed.weight)  # [B, D]
        for i, block in enumerate(self.blocks):
            qkv = F.linear(rms_norm(x, block.attn_norm), block.attn.qkv.weight).view(B, 3, H, Dh)
            qk = apply_rope(qkv[:, :2], cos, sin)  # [B, 2, H, Dh]
            y = cache.attend_one(i, qk[:, 0], qk[:, 1], qkv[:, 2], bias)  # [B, H, Dh]
            x = x + F.linear(y.reshape(B, H * Dh), block.attn.out.weight)
            gate, up = F.linear(rms_norm(x, block.mlp_norm), block.mlp.gate_up.weight).chunk(2, dim=-1)
            x = x + F.linear(F.silu(gate) * up, block.mlp.down.weight)
        cache.length += 1
        return self.logits(rms_norm(x, self.norm))

    def logits(self, hidden: Tensor) -> Tensor:
        """Next-token logits [..., V] from hidden states [..., D] (tied embedding matrix)."""
        return F.linear(hidden, self.embed.weight)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
