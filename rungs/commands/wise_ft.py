"""Interpolate a fine-tuned checkpoint with the one it started from (WiSE-FT, Wortsman et al. 2022).

examples:
  rungs wise-ft --base tiny:countdown-long-plus1500 --tuned runs/ladder/final --alpha 0.25 --out runs/ladder/wise-0.25
  rungs eval --task countdown --problems builtin:countdown-dev --policy tiny:runs/ladder/wise-0.25
  rungs wise-ft --base hf:smollm2 --tuned runs/smol-lora/final --alpha 0.5 --out runs/smol-lora/wise-0.5

When --tuned is inside a rungs run (RUN/final, RUN/checkpoints/step-N/policy), --base must be
the checkpoint that run's config.yaml says it started from (`--base tiny` resolves by its task).
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
    parser.add_argument("--ignore-recorded-base", action="store_true",
                        help="merge even when the tuned run's config.yaml names another starting checkpoint")
    parser.add_argument("--out", required=True, help="directory to write the merged checkpoint to (new, empty, "
                                                     "or an earlier merge)")


def recorded_start(tuned: Path) -> tuple[str, str, Path] | None:
    """(policy spec, task, config.yaml) that the rungs run holding `tuned` started from, read from
    its config.yaml (`RUN/final`, or `RUN/checkpoints/step-N/policy`); None when there is none."""
    import yaml

    for run in (tuned.parent, tuned.parent.parent.parent):
        config = run / "config.yaml"
        if not config.is_file():
            continue
        try:
            data = yaml.safe_load(config.read_text(encoding="utf-8"))
        except (yaml.YAMLError, OSError, UnicodeDecodeError):
            return None
        if isinstance(data, dict) and "policy" not in data:  # {"ladder": {...}, "grpo": {...}}: the job's section
            data = next((v for v in data.values() if isinstance(v, dict) and "policy" in v), None)
        if isinstance(data, dict) and isinstance(data.get("policy"), str) and isinstance(data.get("task"), str):
            spec, model = data["policy"], data.get("model")
            if spec == "hf" and isinstance(model, str) and model:  # `--policy hf --model PATH`
                spec = f"hf:{model}"
            return spec, data["task"], config
        return None
    return None


def tiny_directory(spec: str, task: str) -> Path | None:
    """The checkpoint directory a tiny policy spec loads for `task` ("tiny" is the task's shipped
    checkpoint); None for a spec that is not a tiny checkpoint (random weights, another policy)."""
    from rungs.policies.tiny.policy import FRESH_ARGS

    kind, _, rest = spec.partition(":")
    if kind != "tiny" or rest in FRESH_ARGS:  # random weights: no checkpoint to compare
        return None
    if not rest:
        from rungs.policies.tiny.policy import shipped_checkpoints

        return shipped_checkpoints().get(task)
    from rungs.policies.tiny.policy import resolve_checkpoint

    return resolve_checkpoint(spec)


def base_directory(spec: str, task: str | None = None) -> Path:
    """The local directory a --base spec names ("tiny" needs the task, from the tuned run's record).
    UserError (one line) for a hub name or an unknown spec."""
    path = Path(spec).expanduser()
    if path.is_dir():
        return path
    if spec == "tiny":
        found = tiny_directory(spec, task) if task else None
        if found is None:
            raise UserError("--base tiny: which task's checkpoint is not known here; expected tiny:TASK "
                            "(e.g. tiny:integration) or a directory")
        return found
    kind, _, rest = spec.partition(":")
    if kind == "hf" and rest:
        from rungs.policies.hf import resolve_model_path

        local, _ = resolve_model_path(rest)
        if Path(local).is_dir():
            return Path(local)
    elif kind == "tiny" and rest:
        found = tiny_directory(spec, task or "")
        if found is not None:
            return found
    raise UserError(f"--base {spec}: not a local checkpoint (rungs downloads nothing); expected a directory, "
                    "tiny:NAME (a shipped tiny checkpoint or a directory) or hf:NAME (a packaged GGUF model such as "
                    "hf:smollm2, a .gguf path, or a directory)")


def _recorded_directory(spec: str, task: str) -> Path | None:
    """The local checkpoint a run's recorded policy spec names (tiny or hf, as --base is read), or
    None when it names none here (random weights, a hub id, a path that has gone)."""
    if spec.partition(":")[0] == "tiny":
        return tiny_directory(spec, task)
    try:
        return base_directory(spec, task)
    except UserError:
        return None


def run(args: argparse.Namespace) -> int:
    from rungs.train.wise_ft import ADAPTER_CONFIG, check_alpha, weight_files, wise_ft

    check_alpha(args.alpha)
    tuned = Path(args.tuned).expanduser()
    if not tuned.is_dir():  # before --base, which may be resolved from the tuned run's record
        raise UserError(f"--tuned {args.tuned}: no such directory; expected a checkpoint directory")
    if (tuned / ADAPTER_CONFIG).is_file():  # the base model is not read: checked against the adapter's record
        base = args.base
    elif args.base is None:
        raise UserError(f"--base is required: {tuned} is not a LoRA adapter, so its base weights are needed")
    else:
        try:  # a directory that is no checkpoint (a run's directory, not its final/) says so, before --base is read
            weight_files(tuned)
        except UserError as err:
            raise UserError(f"--tuned {err}") from None
        recorded = recorded_start(tuned)
        base = base_directory(args.base, recorded[1] if recorded else None)
        start = _recorded_directory(recorded[0], recorded[1]) if recorded else None
        if start is not None and start.resolve() != base.resolve() and not args.ignore_recorded_base:
            raise UserError(f"--base {args.base} is {base}, but {recorded[2]} says {tuned} was trained from "
                            f"{recorded[0]} ({start}); expected the checkpoint it started from (--ignore-recorded-base "
                            "if that record is wrong)")
    out = wise_ft(base, tuned, args.alpha, Path(args.out).expanduser())
    print(f"wise-ft: alpha {args.alpha:g} of {args.tuned} over {args.base or 'its base model'}: {out}")
    return 0
