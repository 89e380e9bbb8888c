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
  the tuned checkpoint's dtype; the tuned checkpoint's config and tokenizer files are copied (not
  its run logs, optimizer state or other weight formats). Only names and shapes are compared:
  nothing can tell whether `tuned` really was trained from `base`.
- a peft LoRA adapter (`adapter_config.json` + `adapter_model.safetensors`) trained from its base
  model with the usual identity start (lora_B = 0): the adapter's update is delta W = B A *
  scaling, so scaling every `lora_B` (and `lora_embedding_B`) by alpha is exactly the
  interpolation above, with no base weights read. What is not linear in alpha is refused: two
  adapters (B and A multiply), DoRA magnitudes, trained biases, `modules_to_save` and trainable
  token copies, and initialisations that also move the base weights (PiSSA, OLoRA, LoftQ, CorDA).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Any

from rungs.errors import UserError

WEIGHTS = "model.safetensors"
INDEX = "model.safetensors.index.json"
ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
RECORD = "wise_ft.json"  # provenance of a merged checkpoint: base, tuned, alpha
MAX_ABS_ALPHA = 100.0
LORA_B_KEYS = ("lora_B", "lora_embedding_B")
LORA_KEYS = ("lora_A", "lora_B", "lora_embedding_A", "lora_embedding_B")
IDENTITY_INITS = (True, "gaussian", "eva")  # lora_B starts at 0 and the base weights are untouched
# the files of a checkpoint besides its weights that describe the model: copied into a merge
METADATA_FILE = re.compile(r"(config|generation_config|adapter_config|special_tokens_map|added_tokens|"
                           r"tokenizer(_config)?|vocab|merges|chat_template|spiece|sentencepiece\..*)"
                           r"\.(json|txt|model|jinja|tiktoken)$|tokenizer\.model$")


def check_alpha(alpha: Any) -> float:
    """`alpha` as a float; UserError (one line) unless it is a number with |alpha| <= 100."""
    if (isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not math.isfinite(alpha)
            or abs(alpha) > MAX_ABS_ALPHA):
        raise UserError(f"alpha={alpha!r}: expected a number between -{MAX_ABS_ALPHA:g} and "
                        f"{MAX_ABS_ALPHA:g} (0 = base, 1 = tuned, in between interpolates, above 1 extrapolates)")
    return float(alpha)


def interpolate(base: Any, tuned: Any, alpha: float) -> Any:
    """(1 - alpha) * base + alpha * tuned for one tensor, computed in float32 and returned in
    `tuned`'s dtype; a non-floating tensor (an integer buffer) is returned from `tuned` unchanged."""
    import torch

    if not torch.is_floating_point(tuned):
        return tuned
    mixed = torch.lerp(base.to(torch.float32), tuned.to(torch.float32), alpha)
    return mixed.to(tuned.dtype).contiguous()


def _finite_or_refuse(tensor: Any, key: str, alpha: float) -> None:
    import torch

    if torch.is_floating_point(tensor) and not bool(torch.isfinite(tensor).all()):
        raise UserError(f"tensor {key!r} overflows its dtype at alpha={alpha:g}; expected a smaller |alpha|")


def weight_files(directory: Path) -> list[str]:
    """The safetensors files of a whole checkpoint in `directory`, in shard order: [model.safetensors],
    or the shards named by model.safetensors.index.json (plain file names in `directory`). UserError
    (one line) when there are none or the index is malformed."""
    index = directory / INDEX
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as err:
            raise UserError(f"{index}: not a safetensors index ({type(err).__name__}); "
                            "expected {\"weight_map\": {tensor name: shard file}}") from None
        if (not isinstance(weight_map, dict) or not weight_map
                or not all(isinstance(k, str) and isinstance(v, str) for k, v in weight_map.items())):
            raise UserError(f"{index}: weight_map is not a non-empty mapping of tensor names to shard files")
        files = sorted(set(weight_map.values()))
        for name in files:
            if name != Path(name).name or name in (".", "..") or not name.endswith(".safetensors"):
                raise UserError(f"{index}: shard {name!r} is not a .safetensors file name inside {directory}")
            if not (directory / name).is_file():
                raise UserError(f"{index}: names {name}, which is not in {directory}")
        return files
    if (directory / WEIGHTS).is_file():
        return [WEIGHTS]
    hint = " (a rungs train checkpoint keeps its weights in checkpoints/step-N/policy)" \
        if (directory / "policy").is_dir() or (directory / "checkpoints").is_dir() else ""
    if (directory / "final").is_dir():
        hint = f" (a rungs run keeps its final weights in {directory / 'final'})"
    raise UserError(f"{directory}: no {WEIGHTS} or {INDEX}; expected a checkpoint directory "
                    f"(a rungs tiny checkpoint or a transformers model saved with save_pretrained){hint}")


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
            raise UserError(f"{tuned_where[key]}: tensor {key!r} is not in the base {base}; "
                            "expected two checkpoints of the same model")
    for key in base_where:
        if key not in tuned_where:
            raise UserError(f"{base_where[key]}: tensor {key!r} is not in the tuned {tuned}; "
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
                        raise UserError(f"tensor {key!r}: shape {tuple(tuned_tensor.shape)} in {tuned / name}, "
                                        f"{tuple(base_tensor.shape)} in the base {base_where[key]}; expected the same model")
                    merged[key] = interpolate(base_tensor, tuned_tensor, alpha)
                    _finite_or_refuse(merged[key], key, alpha)
                    count += 1
            save_file(merged, str(out / name), metadata=metadata or {"format": "pt"})
    return count


def adapter_config(tuned: Path) -> dict[str, Any]:
    """The parsed adapter_config.json of `tuned`; UserError (one line) unless it is a JSON object."""
    path = tuned / ADAPTER_CONFIG
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: not JSON ({type(err).__name__}); expected a peft adapter config") from None
    if not isinstance(config, dict):
        raise UserError(f"{path}: not a JSON object; expected a peft adapter config")
    return config


def _same_base(given: str, recorded: str) -> bool:
    """Whether a --base spec names the base model an adapter records (the same text, or the same directory)."""
    given = given.removeprefix("hf:")
    if given == recorded:
        return True
    return Path(given).expanduser().is_dir() and Path(recorded).expanduser().is_dir() and \
        Path(given).expanduser().resolve() == Path(recorded).expanduser().resolve()


def _scaled_adapter(tuned: Path, alpha: float, out: Path, base: str | None) -> int:
    """Write `tuned`'s LoRA adapter with every lora_B scaled by alpha; return the tensors scaled."""
    import torch
    from safetensors.torch import save_file

    config = adapter_config(tuned)
    where = tuned / ADAPTER_CONFIG
    recorded = config.get("base_model_name_or_path")
    if base is not None and isinstance(recorded, str) and recorded and not _same_base(base, recorded):
        raise UserError(f"--base {base} is not the base model {where} records ({recorded!r}); "
                        "expected the model the adapter was trained on")
    problems = [name for name, bad in (("DoRA (use_dora)", config.get("use_dora")),
                                       ("modules_to_save", config.get("modules_to_save")),
                                       ("trainable_token_indices", config.get("trainable_token_indices")),
                                       (f"bias={config.get('bias')!r}", config.get("bias", "none") not in (None, "none")),
                                       (f"init_lora_weights={config.get('init_lora_weights')!r}",
                                        config.get("init_lora_weights", True) not in IDENTITY_INITS)) if bad]
    if problems:
        raise UserError(f"{where}: {problems[0]} is not linear in alpha; expected a plain LoRA adapter "
                        "started from the identity (lora_B = 0, base weights untouched)")
    path = tuned / ADAPTER_WEIGHTS
    if not path.is_file():
        raise UserError(f"{tuned}: has {ADAPTER_CONFIG} but no {ADAPTER_WEIGHTS}; expected a peft adapter directory")
    scaled, tensors = 0, {}
    with _open(path) as handle:
        metadata = handle.metadata()
        for key in handle.keys():
            parts = key.split(".")
            if not any(part in LORA_KEYS for part in parts):
                raise UserError(f"{path}: tensor {key!r} is not a LoRA factor (a bias or a saved module copy is not "
                                "linear in alpha); expected a plain LoRA adapter")
            tensor = handle.get_tensor(key)
            if any(part in LORA_B_KEYS for part in parts):
                tensor = (tensor.to(torch.float32) * alpha).to(tensor.dtype).contiguous()
                _finite_or_refuse(tensor, key, alpha)
                scaled += 1
            tensors[key] = tensor
    if not scaled:
        raise UserError(f"{path}: no lora_B tensor; expected a LoRA adapter")
    save_file(tensors, str(out / ADAPTER_WEIGHTS), metadata=metadata or {"format": "pt"})
    return scaled


def _check_out(out: Path, inputs: list[Path]) -> None:
    """Refuse an --out that would destroy anything but an earlier merge: an input or a folder holding
    one, the working directory or a folder above it, a symlink, or a non-empty directory that is not
    a merge written here (only files, with a wise_ft.json record)."""
    if not str(out).strip():
        raise UserError("--out is empty; expected a new directory")
    if out.is_symlink():
        raise UserError(f"--out {out} is a symlink; expected a new directory")
    target = out.resolve()
    for path in [*inputs, Path.cwd()]:
        resolved = path.resolve()
        if resolved == target or target in resolved.parents:
            what = "the working directory" if path == Path.cwd() else "an input"
            raise UserError(f"--out {out} is or holds {what} ({path}); expected a new directory")
    if out.exists():
        if not out.is_dir():
            raise UserError(f"--out {out} is a file; expected a new directory")
        entries = list(out.iterdir())
        if entries and not _is_merge(out, entries):
            raise UserError(f"--out {out} exists and is not an earlier wise-ft merge; "
                            "expected a new or empty directory")


def _is_merge(directory: Path, entries: list[Path]) -> bool:
    if not all(e.is_file() and not e.is_symlink() for e in entries):
        return False
    try:
        record = json.loads((directory / RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return False
    return isinstance(record, dict) and record.get("method") == "wise-ft"


OWNER = ".wise-ft-owner.json"  # in each folder a merge makes beside --out: who made it, for what


def _alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine (a reused id reads as alive: kept, not lost)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError, ValueError):  # someone else's process, or not a possible pid: keep
        return True
    return True


def _owner_record(out: Path) -> dict[str, Any]:
    return {"host": socket.gethostname(), "pid": os.getpid(), "out": str(out.resolve())}


def _side_folder(out: Path, kind: str) -> Path:
    """A new folder beside `out` for a merge in progress (`kind`: "wise-ft" staging, "old" for the
    earlier merge moved aside), named `.OUT.KIND.PID.XXXXXXXX` and holding an OWNER record."""
    folder = Path(tempfile.mkdtemp(prefix=f".{out.name}.{kind}.{os.getpid()}.", dir=out.parent))
    (folder / OWNER).write_text(json.dumps(_owner_record(out)) + "\n", encoding="utf-8")
    return folder


def _recover_leftovers(out: Path) -> None:
    """Tidy what a merge into `out` killed by SIGKILL/SIGTERM left beside it: its staging folder is
    deleted; an earlier merge it had moved aside is put back at `out` if nothing took its place,
    else deleted. Only a folder that is certainly such a leftover is touched: named as
    `_side_folder` names them (mkdtemp's 8-character suffix), not a symlink, holding an OWNER
    record written on this host for this `out` by the process its name gives, which no longer
    runs, and holding nothing else a merge would not (files; or the moved-aside `merge` folder).
    Anything else, a user's folder of a similar name or a merge still running, is left alone."""
    pattern = re.compile(rf"\.{re.escape(out.name)}\.(wise-ft|old)\.(\d{{1,9}})\.[a-z0-9_]{{8}}")
    if not out.parent.is_dir():
        return
    for leftover in sorted(out.parent.iterdir()):
        match = pattern.fullmatch(leftover.name)
        if not match or leftover.is_symlink() or not leftover.is_dir():
            continue
        kind, pid = match.group(1), int(match.group(2))
        try:
            owner = json.loads((leftover / OWNER).read_text(encoding="utf-8"))
            entries = list(leftover.iterdir())
        except (OSError, ValueError, UnicodeDecodeError):
            continue
        if owner != {**_owner_record(out), "pid": pid} or _alive(pid):
            continue
        aside = leftover / "merge"
        if kind == "old":
            if {e.name for e in entries} - {OWNER, "merge"} or not aside.is_dir() or aside.is_symlink():
                continue
            if not out.exists() and not out.is_symlink():
                os.replace(aside, out)
        elif any(e.is_symlink() or not e.is_file() for e in entries):
            continue
        shutil.rmtree(leftover, ignore_errors=True)


def wise_ft(base: str | os.PathLike[str] | None, tuned: str | os.PathLike[str], alpha: float,
            out: str | os.PathLike[str]) -> Path:
    """Write WiSE-FT's interpolation of `tuned` toward `base` into the directory `out` and return it.

    base: the checkpoint fine-tuning started from, a directory. For a LoRA adapter it is not read
    and may be None; given, it must name the base model the adapter records
    (`base_model_name_or_path`, as text or as the same directory). tuned: the fine-tuned checkpoint
    directory (whole weights, or a LoRA adapter). alpha: 0 gives the base's weights, 1 the tuned
    ones; values in between interpolate, above 1 extrapolate; |alpha| <= 100. The merged directory
    has the tuned checkpoint's weight layout, its config and tokenizer files, and wise_ft.json
    recording the inputs; it loads wherever `tuned` does (`tiny:OUT`, `hf:OUT`). It is written to a
    temporary directory beside `out` and renamed in; an earlier merge at `out` is moved aside
    first and deleted after, so a killed merge never leaves a half-written `out`, and the next merge
    into `out` tidies what a killed one left (`_recover_leftovers`). UserError (one
    line) for a missing or mismatched checkpoint, an `out` that is not new, empty or an earlier
    merge (see `_check_out`), an unwritable location, or a bad alpha.
    """
    alpha = check_alpha(alpha)
    tuned_dir, out_dir = Path(tuned), Path(out)
    if not tuned_dir.is_dir():
        raise UserError(f"--tuned {tuned_dir}: no such directory; expected a checkpoint directory")
    adapter = (tuned_dir / ADAPTER_CONFIG).is_file()
    base_dir = None if base is None else Path(base)
    if not adapter:
        if base_dir is None or not base_dir.is_dir():
            raise UserError(f"--base {base}: no such directory; expected the checkpoint {tuned_dir} was "
                            "fine-tuned from")
        if (base_dir / ADAPTER_CONFIG).is_file():
            raise UserError(f"--base {base_dir} is a LoRA adapter and --tuned {tuned_dir} is not; "
                            "expected the base model and a checkpoint fine-tuned from it")
    _recover_leftovers(out_dir)
    _check_out(out_dir, [tuned_dir] + ([base_dir] if base_dir is not None and base_dir.exists() else []))
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        staging = _side_folder(out_dir, "wise-ft")
    except OSError as err:
        raise UserError(f"--out {out_dir}: cannot write there ({err.strerror or err}); "
                        "expected a writable location") from None
    old = None
    try:
        os.chmod(staging, 0o755)  # mkdtemp's 0700 would hide the merge from other users
        for item in tuned_dir.iterdir():  # config, tokenizer, generation config, adapter config
            if item.is_file() and METADATA_FILE.fullmatch(item.name):
                shutil.copy2(item, staging / item.name)
        if adapter:
            count = _scaled_adapter(tuned_dir, alpha, staging, None if base is None else str(base))
        else:
            count = _merged_checkpoint(base_dir, tuned_dir, alpha, staging)  # type: ignore[arg-type]
            if (tuned_dir / INDEX).is_file():
                shutil.copy2(tuned_dir / INDEX, staging / INDEX)
        record = {"method": "wise-ft", "alpha": alpha,
                  "base": str(base_dir.resolve()) if base_dir is not None and base_dir.exists() else base,
                  "tuned": str(tuned_dir.resolve()), "tensors": count,
                  "layout": "lora_B scaled" if adapter else "interpolated"}
        (staging / RECORD).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        if out_dir.exists():  # an earlier merge (checked above): moved aside, deleted once the new one is in
            old = _side_folder(out_dir, "old")
            os.replace(out_dir, old / "merge")
        (staging / OWNER).unlink()  # the merge itself carries no owner record
        os.replace(staging, out_dir)
    except OSError as err:
        shutil.rmtree(staging, ignore_errors=True)
        if old is not None and not out_dir.exists():
            os.replace(old / "merge", out_dir)  # put the earlier merge back
        raise UserError(f"--out {out_dir}: cannot write the merge ({err.strerror or err})") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return out_dir
