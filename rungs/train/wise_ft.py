"""Weight-space ensembling of a fine-tuned model with the model it started from (WiSE-FT).

Wortsman et al. 2022 ("Robust fine-tuning of zero-shot models", CVPR; arXiv 2109.01903) take the
weights before and after fine-tuning and interpolate them,

    theta(alpha) = (1 - alpha) * theta_base + alpha * theta_tuned,

alpha = 0 being the base and alpha = 1 the fine-tuned model. The interpolated model keeps what the
base did well and much of what fine-tuning added; alpha is chosen on held-out data. alpha > 1
extrapolates past the fine-tuned weights along the same direction (ExPO, Zheng et al. 2024,
"Weak-to-strong extrapolation expedites alignment", arXiv 2404.16792).

Why rungs has it: on the embedded countdown model every RL run (GRPO or LADDER) turns over the
problems the base answered right greedily: it gains new ones and loses most of the old. The
interpolation is the standard, training-free remedy, and it is a post-processing step that every
arm of a comparison gets alike.

Two layouts are handled:
- whole checkpoints (a rungs tiny checkpoint, or a transformers model saved with
  `save_pretrained`: `model.safetensors` or sharded `model-0000i-of-0000n.safetensors` with
  `model.safetensors.index.json`): every floating tensor is interpolated in float32 and stored in
  the tuned checkpoint's dtype; the tuned checkpoint's other files (config, tokenizer) are copied.
- a peft LoRA adapter (`adapter_config.json` + `adapter_model.safetensors`) trained from its base
  model: the adapter's update is delta W = B A * scaling, so scaling every `lora_B` (and
  `lora_embedding_B`) by alpha is exactly the interpolation above, with no base weights read.
  Interpolating two adapters is not (B and A multiply), and DoRA's magnitude vectors and
  `modules_to_save` copies are not linear in alpha either: those are refused.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from rungs.errors import UserError

WEIGHTS = "model.safetensors"
INDEX = "model.safetensors.index.json"
ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
RECORD = "wise_ft.json"  # provenance of a merged checkpoint: base, tuned, alpha
LORA_B_KEYS = ("lora_B", "lora_embedding_B")
NONLINEAR_ADAPTER_KEYS = ("lora_magnitude_vector", "modules_to_save")


def check_alpha(alpha: Any) -> float:
    """`alpha` as a float; UserError (one line) unless it is a finite number."""
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not math.isfinite(alpha):
        raise UserError(f"wise-ft: alpha={alpha!r}: expected a finite number (0 = base, 1 = tuned, >1 extrapolates)")
    return float(alpha)


def interpolate(base: Any, tuned: Any, alpha: float) -> Any:
    """(1 - alpha) * base + alpha * tuned for one tensor, computed in float32 and returned in
    `tuned`'s dtype; a non-floating tensor (an integer buffer) is returned from `tuned` unchanged."""
    import torch

    if not torch.is_floating_point(tuned):
        return tuned
    mixed = torch.lerp(base.to(torch.float32), tuned.to(torch.float32), alpha)
    return mixed.to(tuned.dtype).contiguous()


def weight_files(directory: Path) -> list[str]:
    """The safetensors files of a whole checkpoint in `directory`, in shard order: [model.safetensors],
    or the shards named by model.safetensors.index.json. UserError when there are none."""
    index = directory / INDEX
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        except (ValueError, KeyError, TypeError) as err:
            raise UserError(f"{index}: not a safetensors index ({err}); expected {{'weight_map': {{key: file}}}}") from None
        files = sorted(set(weight_map.values()))
        missing = [f for f in files if not (directory / f).is_file()]
        if missing:
            raise UserError(f"{index}: names {missing[0]}, which is not in {directory}")
        return files
    if (directory / WEIGHTS).is_file():
        return [WEIGHTS]
    raise UserError(f"{directory}: no {WEIGHTS} or {INDEX}; expected a checkpoint directory "
                    "(a rungs tiny checkpoint or a transformers model saved with save_pretrained)")


def _open(path: Path) -> Any:
    from safetensors import SafetensorError, safe_open

    try:
        return safe_open(str(path), framework="pt")
    except (SafetensorError, OSError) as err:
        raise UserError(f"{path}: not a readable safetensors file ({str(err).splitlines()[0]})") from None


def _tensors(directory: Path) -> dict[str, Path]:
    """key -> the file holding it, over every weight file of `directory`."""
    where: dict[str, Path] = {}
    for name in weight_files(directory):
        with _open(directory / name) as handle:
            for key in handle.keys():
                where[key] = directory / name
    return where


def _merged_checkpoint(base: Path, tuned: Path, alpha: float, out: Path) -> int:
    """Write the interpolated weights of two whole checkpoints into `out` (the tuned one's file
    layout) and return the number of tensors. UserError when their keys or shapes differ."""
    from safetensors.torch import save_file

    base_where, tuned_where = _tensors(base), _tensors(tuned)
    for key in tuned_where:
        if key not in base_where:
            raise UserError(f"wise-ft: {tuned_where[key]}: tensor {key!r} is not in the base {base}; "
                            "expected two checkpoints of the same model")
    for key in base_where:
        if key not in tuned_where:
            raise UserError(f"wise-ft: {base_where[key]}: tensor {key!r} is not in the tuned {tuned}; "
                            "expected two checkpoints of the same model")
    count = 0
    with contextlib.ExitStack() as stack:
        base_handles = {path: stack.enter_context(_open(path)) for path in set(base_where.values())}
        for name in weight_files(tuned):
            merged = {}
            with _open(tuned / name) as handle:
                metadata = handle.metadata()
                for key in handle.keys():
                    tuned_tensor = handle.get_tensor(key)
                    base_tensor = base_handles[base_where[key]].get_tensor(key)
                    if tuned_tensor.shape != base_tensor.shape:
                        raise UserError(f"wise-ft: tensor {key!r}: shape {tuple(tuned_tensor.shape)} in {tuned / name}, "
                                        f"{tuple(base_tensor.shape)} in the base {base_where[key]}; expected the same model")
                    merged[key] = interpolate(base_tensor, tuned_tensor, alpha)
                    count += 1
            save_file(merged, str(out / name), metadata=metadata or {"format": "pt"})
    return count


def _scaled_adapter(tuned: Path, alpha: float, out: Path) -> int:
    """Write `tuned`'s LoRA adapter with every lora_B scaled by alpha; return the tensors scaled."""
    import torch
    from safetensors.torch import save_file

    path = tuned / ADAPTER_WEIGHTS
    if not path.is_file():
        raise UserError(f"{tuned}: has {ADAPTER_CONFIG} but no {ADAPTER_WEIGHTS}; expected a peft adapter saved by rungs")
    config = json.loads((tuned / ADAPTER_CONFIG).read_text(encoding="utf-8"))
    if config.get("use_dora") or config.get("modules_to_save"):
        raise UserError(f"{tuned / ADAPTER_CONFIG}: a DoRA adapter or one with modules_to_save is not linear in alpha; "
                        "expected a plain LoRA adapter")
    scaled, tensors = 0, {}
    with _open(path) as handle:
        metadata = handle.metadata()
        for key in handle.keys():
            if any(part in key for part in NONLINEAR_ADAPTER_KEYS):
                raise UserError(f"{path}: tensor {key!r} is not linear in alpha; expected a plain LoRA adapter")
            tensor = handle.get_tensor(key)
            if any(part in LORA_B_KEYS for part in key.split(".")):
                tensor = (tensor.to(torch.float32) * alpha).to(tensor.dtype).contiguous()
                scaled += 1
            tensors[key] = tensor
    if not scaled:
        raise UserError(f"{path}: no lora_B tensor; expected a LoRA adapter")
    save_file(tensors, str(out / ADAPTER_WEIGHTS), metadata=metadata or {"format": "pt"})
    return scaled


def wise_ft(base: str | os.PathLike[str], tuned: str | os.PathLike[str], alpha: float,
            out: str | os.PathLike[str]) -> Path:
    """Write WiSE-FT's interpolation of `tuned` toward `base` into the directory `out` and return it.

    base: the checkpoint fine-tuning started from (a directory; for a LoRA adapter, the base model
    the adapter sits on, which is not read). tuned: the fine-tuned checkpoint directory (whole
    weights, or a LoRA adapter). alpha: 0 gives the base's weights, 1 the tuned ones; values in
    between interpolate, above 1 extrapolate. The merged directory has the tuned checkpoint's
    layout and files (config, tokenizer) plus wise_ft.json recording the three inputs, and loads
    wherever `tuned` does (`tiny:OUT`, `hf:OUT`). It is written to a temporary directory beside
    `out` and renamed, so a killed merge leaves no half-written checkpoint; an earlier wise-ft
    output at `out` is replaced, any other non-empty `out` refused. UserError (one line) for a missing or mismatched checkpoint, `out` equal to an
    input, or a non-finite alpha.
    """
    alpha = check_alpha(alpha)
    base_dir, tuned_dir, out_dir = Path(base), Path(tuned), Path(out)
    for label, directory in (("--base", base_dir), ("--tuned", tuned_dir)):
        if not directory.is_dir():
            raise UserError(f"wise-ft: {label} {directory}: no such directory; expected a checkpoint directory")
    if out_dir.resolve() in (base_dir.resolve(), tuned_dir.resolve()):
        raise UserError(f"wise-ft: --out {out_dir} is one of the inputs; expected a new directory")
    if out_dir.exists() and (not out_dir.is_dir() or (any(out_dir.iterdir()) and not (out_dir / RECORD).is_file())):
        raise UserError(f"wise-ft: --out {out_dir} exists and is not an earlier wise-ft output; "
                        "expected a new or empty directory")
    adapter = (tuned_dir / ADAPTER_CONFIG).is_file()
    if not adapter and (base_dir / ADAPTER_CONFIG).is_file():
        raise UserError(f"wise-ft: --base {base_dir} is a LoRA adapter and --tuned {tuned_dir} is not; "
                        "expected the base model and a checkpoint fine-tuned from it")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        weights = {WEIGHTS, INDEX, ADAPTER_WEIGHTS, RECORD} | set(weight_files(tuned_dir) if not adapter else [])
        for item in tuned_dir.iterdir():  # config, tokenizer, generation config, adapter config
            if item.is_file() and item.name not in weights:
                shutil.copy2(item, staging / item.name)
        if adapter:
            count = _scaled_adapter(tuned_dir, alpha, staging)
        else:
            count = _merged_checkpoint(base_dir, tuned_dir, alpha, staging)
            if (tuned_dir / INDEX).is_file():
                shutil.copy2(tuned_dir / INDEX, staging / INDEX)
        record = {"method": "wise-ft", "alpha": alpha, "base": str(base_dir.resolve()),
                  "tuned": str(tuned_dir.resolve()), "tensors": count,
                  "layout": "lora_B scaled" if adapter else "interpolated"}
        (staging / RECORD).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out_dir
