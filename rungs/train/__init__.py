"""Training: GRPO (config, loss, trainer loop) and, alongside, supervised warm starts.

`from rungs.train import GRPOConfig, GRPOTrainer` works; names are resolved lazily so that
importing `rungs.train.grpo_config` (e.g. to build CLI flags) does not import torch.
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "GRPOConfig": "rungs.train.grpo_config",
    "GRPOTrainer": "rungs.train.grpo",
    "EpochSampler": "rungs.train.grpo",
    "ProblemSampler": "rungs.train.grpo",
    "grpo_loss": "rungs.train.grpo_loss",
    "group_advantages": "rungs.train.grpo_loss",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'rungs.train' has no attribute {name!r}")


__all__ = sorted(_EXPORTS)
