"""Dataclass configs: the same class gives CLI flags, YAML files and validation.

A config is a plain dataclass whose fields carry `metadata={"help": ...}` (as TRL's configs do).
`add_arguments(parser, Cls)` turns each field into `--field-name` (bools become
`--flag/--no-flag`), `from_namespace(Cls, ns)` builds the instance, and `--config FILE.yaml`
supplies defaults that explicit flags override. Validation lives in each class's
`__post_init__` and raises `UserError` with the field name and what was expected.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from rungs.errors import UserError

C = TypeVar("C")


def help_field(default: Any, help: str, aliases: tuple[str, ...] = (), **kwargs: Any) -> Any:  # noqa: A002 - mirrors argparse
    """A dataclass field with CLI help text (and optional extra flags, e.g. ("--reward",))."""
    metadata = {"help": help, **({"aliases": tuple(aliases)} if aliases else {})}
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=metadata, **kwargs)
    return dataclasses.field(default=default, metadata=metadata, **kwargs)


def _base_type(tp: Any) -> tuple[Any, bool]:
    """(underlying type, optional?) for annotations like `int | None` or `Optional[str]`."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return (args[0] if len(args) == 1 else str), True
    return tp, False


def _parse_optional(inner: Any) -> Any:
    def parse(text: str) -> Any:
        if text.lower() in ("none", "null", ""):
            return None
        return inner(text)

    parse.__name__ = getattr(inner, "__name__", "value")
    return parse


def add_arguments(parser: argparse.ArgumentParser, cls: type, *, skip: tuple[str, ...] = ()) -> None:
    hints = typing.get_type_hints(cls)
    group = parser.add_argument_group(cls.__name__)
    for f in dataclasses.fields(cls):
        if f.name in skip or not f.init:
            continue
        flags = ["--" + f.name.replace("_", "-"), *f.metadata.get("aliases", ())]
        help_text = f.metadata.get("help", "")
        tp, optional = _base_type(hints[f.name])
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else None
        )
        kwargs: dict[str, Any] = {"dest": f.name, "default": argparse.SUPPRESS, "help": f"{help_text} (default: {default})"}
        if tp is bool:
            group.add_argument(*flags, action=argparse.BooleanOptionalAction, **kwargs)
        elif typing.get_origin(tp) in (list, tuple):
            (inner,) = typing.get_args(tp)[:1] or (str,)
            group.add_argument(*flags, type=_list_parser(inner, flags[0]), metavar="A,B,...", **kwargs)
        elif tp in (int, float, str):
            group.add_argument(*flags, type=_parse_optional(tp) if optional else tp, **kwargs)
        else:
            group.add_argument(*flags, type=str, **kwargs)


def _list_parser(inner: Any, flag: str) -> Any:
    """'a,b' -> [inner('a'), inner('b')]; a bad item is an argparse error naming the flag."""
    def parse(text: str) -> list[Any]:
        try:
            return [inner(x.strip()) for x in text.split(",") if x.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} {text!r}: expected {getattr(inner, '__name__', 'value')}s "
                                              "separated by commas") from None

    parse.__name__ = "list"
    return parse


def from_dict(cls: type[C], values: dict[str, Any], source: str = "config") -> C:
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        import difflib

        close = difflib.get_close_matches(unknown[0], names, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise UserError(f"{source}: unknown setting {unknown[0]!r} for {cls.__name__}{hint}")
    try:
        return cls(**values)
    except TypeError as err:
        raise UserError(f"{source}: {err}") from None


def from_namespace(cls: type[C], ns: argparse.Namespace, yaml_path: str | None = None) -> C:
    """YAML values (if any) overridden by the flags given on the command line."""
    values: dict[str, Any] = load_yaml(yaml_path) if yaml_path else {}
    names = {f.name for f in dataclasses.fields(cls)}
    values = {k: v for k, v in values.items() if k in names} if yaml_path else values
    values.update({k: v for k, v in vars(ns).items() if k in names})
    return from_dict(cls, values, source=yaml_path or "command line")


def load_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such config file; expected a YAML mapping of settings")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise UserError(f"{path}: malformed YAML ({str(err).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a YAML mapping of settings, got {type(data).__name__}")
    return data


def to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def to_yaml(config: Any) -> str:
    return yaml.safe_dump(to_dict(config) if dataclasses.is_dataclass(config) else config, sort_keys=False)


def from_sections(ns: argparse.Namespace, sections: dict[str, type], yaml_path: str | None = None,
                  defaults: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Build several configs from one command line: {"ttrl": TTRLConfig, "grpo": GRPOConfig}.

    Precedence, lowest first: the dataclass defaults, the job's own `defaults[section]`, the YAML
    file's `section:` mapping (the layout of a run directory's config.yaml), then explicit flags.
    """
    data = load_yaml(yaml_path) if yaml_path else {}
    unknown = sorted(set(data) - set(sections))
    if unknown:
        raise UserError(f"{yaml_path}: unknown section {unknown[0]!r}; expected {', '.join(sections)}")
    out = {}
    for section, cls in sections.items():
        names = {f.name for f in dataclasses.fields(cls)}
        values = dict((defaults or {}).get(section, {}))
        yaml_values = data.get(section) or {}
        if not isinstance(yaml_values, dict):
            raise UserError(f"{yaml_path}: section {section!r} must be a mapping of settings")
        values.update(yaml_values)
        values.update({k: v for k, v in vars(ns).items() if k in names})
        out[section] = from_dict(cls, values, source=yaml_path or "command line")
    return out
