"""Policy flags shared by `rungs serve` and `rungs generate`: --policy, --model, --policy-option K=V."""

from __future__ import annotations

import argparse
from typing import Any

from rungs.errors import UserError


def add_policy_arguments(parser: argparse.ArgumentParser, default: str = "tiny") -> None:
    parser.add_argument("--policy", default=default,
                        help=f"policy: tiny, tiny:PATH, hf:MODEL, openai:URL, vllm:MODEL (default: {default})")
    parser.add_argument("--model", default=None, help="model name (for the openai policy: the served model)")
    parser.add_argument("--policy-option", action="append", default=[], metavar="KEY=VALUE",
                        help="a policy setting, repeatable: lora_rank=16, dtype=bfloat16, device=cpu, api_key=...")


def parse_policy_options(items: list[str]) -> dict[str, Any]:
    """--policy-option KEY=VALUE items -> {key: value}, values read as YAML scalars (16, true, 1e-4)."""
    import yaml

    options: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--policy-option {item!r}: expected KEY=VALUE, e.g. lora_rank=16")
        try:
            options[key.strip()] = yaml.safe_load(value) if value.strip() else ""
        except yaml.YAMLError:
            options[key.strip()] = value
    return options


def policy_kwargs(args: argparse.Namespace, task: str | None = None) -> dict[str, Any]:
    """Keyword arguments for `load_policy`: task=, model= and each --policy-option (YAML-typed)."""
    kwargs: dict[str, Any] = {}
    if task is not None:
        kwargs["task"] = task
    if args.model is not None:
        kwargs["model"] = args.model
    kwargs.update(parse_policy_options(args.policy_option))
    return kwargs
