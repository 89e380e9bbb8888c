"""Interpolate a fine-tuned checkpoint with the one it started from (WiSE-FT, Wortsman et al. 2022).

examples:
  rungs wise-ft --base tiny:countdown-long-plus1500 --tuned runs/ladder/final --alpha 0.25 --out runs/ladder/wise-0.25
  rungs eval --task countdown --problems builtin:countdown-dev --policy tiny:runs/ladder/wise-0.25
  rungs wise-ft --base hf:smollm2 --tuned runs/smol-lora/final --alpha 0.5 --out runs/smol-lora/wise-0.5

The merged weights are (1 - alpha) * base + alpha * tuned: alpha 0 is the base, 1 the tuned
checkpoint, values between keep more of what the base did well (choose alpha on a dev set),
values above 1 extrapolate (ExPO). A LoRA adapter is merged by scaling its lora_B by alpha (the
base model is not read; --base, if given, must be the model the adapter records). The output
loads wherever the tuned checkpoint does and records its inputs in wise_ft.json. An existing
--out is replaced only if it is an earlier merge. `python bench/wise_ft.py RUN` sweeps alpha over
a bench run's arms.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rungs.errors import UserError

NAME = "wise-ft"
HELP = "interpolate a fine-tuned checkpoint with its base (WiSE-FT): keep the base's skills"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--base", default=None,
                        help="the checkpoint fine-tuning started from: a directory, a tiny checkpoint (tiny:countdown, "
                             "tiny:DIR) or a local hf model (hf:smollm2, hf:DIR); optional for a LoRA adapter")
    parser.add_argument("--tuned", required=True, help="the fine-tuned checkpoint directory (e.g. a run's final/)")
    parser.add_argument("--alpha", type=float, required=True,
                        help="weight of the tuned checkpoint: 0 = base, 1 = tuned, in between interpolates, "
                             "above 1 extrapolates (|alpha| <= 100)")
    parser.add_argument("--out", required=True, help="directory to write the merged checkpoint to (new, empty, "
                                                     "or an earlier merge)")


def base_directory(spec: str) -> Path:
    """The local directory a --base spec names. UserError (one line) for a hub name or an unknown spec."""
    path = Path(spec).expanduser()
    if path.is_dir():
        return path
    kind, _, rest = spec.partition(":")
    if kind == "hf" and rest:
        from rungs.policies.hf import resolve_model_path

        local, _ = resolve_model_path(rest)
        if Path(local).is_dir():
            return Path(local)
    elif kind == "tiny" and rest and rest != "random":
        from rungs.policies.tiny.policy import resolve_checkpoint

        return resolve_checkpoint(spec)
    raise UserError(f"--base {spec}: not a local checkpoint (rungs downloads nothing); expected a directory, "
                    "tiny:NAME (a shipped tiny checkpoint or a directory) or hf:NAME (a packaged GGUF model such as "
                    "hf:smollm2, a .gguf path, or a directory)")


def run(args: argparse.Namespace) -> int:
    from rungs.train.wise_ft import ADAPTER_CONFIG, check_alpha, wise_ft

    check_alpha(args.alpha)
    tuned = Path(args.tuned).expanduser()
    if (tuned / ADAPTER_CONFIG).is_file():  # the base model is not read: checked against the adapter's record
        base = args.base
    elif args.base is None:
        raise UserError(f"--base is required: {tuned} is not a LoRA adapter, so its base weights are needed")
    else:
        base = base_directory(args.base)
    out = wise_ft(base, tuned, args.alpha, Path(args.out).expanduser())
    print(f"wise-ft: alpha {args.alpha:g} of {args.tuned} over {args.base or 'its base model'}: {out}")
    return 0
