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
    """Keys and values of every layer: k, v [L, B, H, S, Dh]; positions 0..length-1 are filled.

    All rows share one write index (prompts are left-padded to a common length), and the
    capacity grows in chunks, so a cache costs memory for the tokens actually generated.
    """

    def __init__(self, cfg: TinyConfig, batch: int, capacity: int, dtype: torch.dtype, device: torch.device) -> None:
        shape = (cfg.n_layers, batch, cfg.n_heads, capacity, cfg.head_dim)
        self.k = torch.empty(shape, dtype=dtype, device=device)
        self.v = torch.empty(shape, dtype=dtype, device=device)
        self.length = 0

    @property
    def capacity(self) -> int:
        return self.k.shape[3]

    def reserve(self, extra: int, chunk: int = 64) -> None:
        """Make room for `extra` more positions."""
        need = self.length + extra
        if need <= self.capacity:
            return
        grow = max(need - self.capacity, chunk)
        pad = (*self.k.shape[:3], grow, self.k.shape[4])
        self.k = torch.cat([self.k, self.k.new_empty(pad)], dim=3)
        self.v = torch.cat([self.v, self.v.new_empty(pad)], dim=3)

    def select_rows(self, rows: Tensor) -> None:
        """Keep only `rows` (an index tensor into the batch), in that order; repeats allowed."""
        self.k = self.k.index_select(1, rows)
        self.v = self.v.index_select(1, rows)

    def update(self, layer: int, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Write k, v [B, H, T, Dh] at the current end; return all keys/values [B, H, length+T, Dh]."""
        start, end = self.length, self.length + k.shape[2]
        self.k[layer, :, :, start:end] = k
        self.v[layer, :, :, start:end] = v
        return self.k[layer, :, :, :end], self.v[layer, :, :, :end]


def rope_tables(positions: Tensor, head_dim: int, theta: float) -> tuple[Tensor, Tensor]:
    """cos, sin [B, 1, T, Dh] for integer positions [B, T] (rotate-half convention)."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, device=positions.device, dtype=torch.float32) / head_dim))
    angles = positions.to(torch.float32)[..., None] * inv_freq  # [B, T, Dh/2]
    angles = torch.cat([angles, angles], dim=-1)[:, None]  # [B, 1, T, Dh]
    return angles.cos(), angles.sin()


def apply_rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate x [B, H, T, Dh] by the position angles."""
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return (x * cos + rotated * sin).to(x.dtype)


class Attention(nn.Module):
    def __init__(self, cfg: TinyConfig) -> None:
        super().__init__()
        self.n_heads, self.head_dim, self.dropout = cfg.n_heads, cfg.head_dim, cfg.dropout
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model, bias=False)
        self.out = nn.Linear(cfg.d_model, cfg.d_model, bias=False)

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor, mask: Tensor | None,
                cache: KVCache | None, layer: int) -> Tensor:
        B, T, D = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.n_heads, self.head_dim).permute(2, 0, 3, 1, 4)  # 3 x [B, H, T, Dh]
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
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

        positions: [B, T] int (default 0..T-1, or continuing the cache).
        mask: [B, 1, T, S] bool, True = may attend (S = cache length + T); None = causal.
        cache: keys/values of earlier positions; appended to and advanced by T.
        """
        B, T = tokens.shape
        if positions is None:
            start = cache.length if cache is not None else 0
            positions = torch.arange(start, start + T, device=tokens.device).expand(B, T)
        cos, sin = rope_tables(positions, self.cfg.head_dim, self.cfg.rope_theta)
        x = self.embed(tokens)  # [B, T, D]
        if cache is not None:
            cache.reserve(T)
        for i, block in enumerate(self.blocks):
            x = block(x, cos, sin, mask, cache, i)
        if cache is not None:
            cache.length += T
        return self.norm(x)

    def logits(self, hidden: Tensor) -> Tensor:
        """Next-token logits [..., V] from hidden states [..., D] (tied embedding matrix)."""
        return F.linear(hidden, self.embed.weight)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
