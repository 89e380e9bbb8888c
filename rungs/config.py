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
import math
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


_TYPE_WORDS = {int: "an integer", float: "a number", str: "a string"}


def check_finite_fields(config: Any) -> None:
    """Refuse a dataclass config whose float settings (alone or in a list) are NaN or +-inf, with
    the UserError "Class.field = nan: expected a finite number". No setting of rungs means anything
    there (a learning rate, a fraction, a timeout: a verifier always runs under a finite limit), and
    NaN passes every `x < 0` range check. The CLI and YAML readers refuse them too, with the flag's
    or the file's own message; this covers configs built in Python."""
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        for item in value if isinstance(value, (list, tuple)) else (value,):
            if isinstance(item, float) and not math.isfinite(item):
                raise UserError(f"{type(config).__name__}.{f.name} = {value!r}: expected a finite number")


def _value_parser(inner: Any, optional: bool = False) -> Any:
    """An argparse `type=` for int / float / str (optionally 'none'), whose error says what was expected.

    argparse names the flag itself ("argument --limit: expected an integer, got 'a'")."""
    def parse(text: str) -> Any:
        if optional and text.strip().lower() in ("none", "null", ""):
            return None
        try:
            value = inner(text)
        except (TypeError, ValueError):
            expected = _TYPE_WORDS.get(inner, getattr(inner, "__name__", "a value"))
            raise argparse.ArgumentTypeError(f"expected {expected}{' or none' if optional else ''}, got {text!r}") from None
        if inner is float and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected a finite number{' or none' if optional else ''}, got {text!r}")
        return value

    parse.__name__ = getattr(inner, "__name__", "value")
    return parse


def finite_float_arg(text: str) -> float:
    """An argparse `type=` for a float flag: finite, with "expected a finite number, got 'nan'"."""
    return _value_parser(float)(text)


def _list_parser(inner: Any) -> Any:
    """An argparse `type=` for comma-separated lists ('1,2,4'), with an error naming the bad item."""
    def parse(text: str) -> list[Any]:
        items = []
        for item in text.split(","):
            if not item.strip():
                continue
            try:
                value = inner(item.strip())
                if inner is float and not math.isfinite(value):  # NaN and inf mean nothing in a setting
                    raise ValueError(item)
                items.append(value)
            except (TypeError, ValueError):
                expected = _TYPE_WORDS.get(inner, getattr(inner, "__name__", "value")).split(" ", 1)[-1]
                raise argparse.ArgumentTypeError(
                    f"expected a comma-separated list of {expected}s such as {_LIST_EXAMPLES.get(inner, 'a,b')}, "
                    f"got {item.strip()!r} in {text!r}") from None
        return items

    parse.__name__ = f"comma-separated {getattr(inner, '__name__', 'value')} list"
    return parse


_LIST_EXAMPLES = {int: "1,2,4", float: "0.5,1.0", str: "a,b"}


def add_arguments(parser: argparse.ArgumentParser, cls: type, *, skip: tuple[str, ...] = (),
                  policy_defaults: tuple[str, dict[str, Any]] | None = None) -> None:
    """One `--field-name` flag per init field of dataclass `cls`, in an argument group named after it.

    Flags default to argparse.SUPPRESS, so that `from_namespace` / `from_sections` can tell a given
    flag from an absent one. `policy_defaults` = (who, {field: value}) adds "(default: X; with WHO: Y)"
    to the help of the fields a policy-specific default changes (the value the run will use).
    """
    hints = typing.get_type_hints(cls)
    group = parser.add_argument_group(cls.__name__)
    who, overrides = policy_defaults or ("", {})
    for f in dataclasses.fields(cls):
        if f.name in skip or not f.init:
            continue
        flags = ["--" + f.name.replace("_", "-"), *f.metadata.get("aliases", ())]
        help_text = f.metadata.get("help", "")
        tp, optional = _base_type(hints[f.name])
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else None
        )
        shown = f"default: {default}"
        if f.name in overrides and overrides[f.name] != default:
            shown += f"; with {who}: {overrides[f.name]}"
        if "(default" in help_text and f.name not in overrides:
            shown = ""  # the help says its own default (a placeholder such as "" or None is not one)
        kwargs: dict[str, Any] = {"dest": f.name, "default": argparse.SUPPRESS,
                                  "help": (f"{help_text} ({shown})" if shown else help_text).replace("%", "%%")}
        if tp is bool:
            group.add_argument(*flags, action=argparse.BooleanOptionalAction, **kwargs)
        elif typing.get_origin(tp) in (list, tuple):
            (inner,) = typing.get_args(tp)[:1] or (str,)
            group.add_argument(*flags, type=_list_parser(inner), metavar="A,B,...", **kwargs)
        elif tp in (int, float, str):
            group.add_argument(*flags, type=_value_parser(tp, optional), **kwargs)
        else:
            group.add_argument(*flags, type=str, **kwargs)


# YAML 1.1 reads yes/no/on/off as booleans, but a quoted "no" (or a flag-like "false") is a string,
# and every non-empty string is truthy: a bool setting reads the usual words itself.
_BOOL_WORDS = {"true": True, "yes": True, "on": True, "1": True, "false": False, "no": False, "off": False, "0": False}


def did_you_mean(word: Any, choices: Any) -> str:
    """"; did you mean 'x'?" for the choice closest to `word`, or "" when none is close."""
    import difflib

    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def setting_hints(*classes: type) -> dict[str, str]:
    """The `UNKNOWN_SETTING_HINTS` of config classes, merged: settings of another tool that they
    do not take, each with what rungs does instead (GRPOConfig's: TRL's names); and each field's
    extra flag names (`--reward`), which are not YAML keys, with the key they stand for."""
    out: dict[str, str] = {}
    for cls in classes:
        out.update(getattr(cls, "UNKNOWN_SETTING_HINTS", None) or {})
        for f in dataclasses.fields(cls) if dataclasses.is_dataclass(cls) else ():
            for alias in f.metadata.get("aliases", ()):  # `--reward` on the command line is reward_funcs in YAML
                out.setdefault(alias.lstrip("-").replace("-", "_"), f"the flag {alias} is the setting {f.name} in YAML")
    return out


def unknown_setting_hint(key: Any, choices: Any, hints: dict[str, str] | None = None) -> str:
    """The end of an "unknown setting KEY" UserError: for a TRL / transformers setting that rungs
    does not take (in `hints`, see `setting_hints`), what rungs does instead; else the
    did-you-mean among `choices`, or "". The hint comes first: a did-you-mean would name a setting
    with another meaning (max_prompt_length -> max_completion_length)."""
    hint = (hints or {}).get(str(key))
    if hint is not None and hint.startswith("the flag "):
        return f": {hint}"
    if hint is not None:
        return f" (a TRL / transformers setting): {hint}"
    return did_you_mean(key, choices)


def coerce_setting(name: str, value: Any, annotation: Any, source: str) -> Any:
    """`value` as the setting's declared type (`annotation`), read as the CLI reads it; a
    `UserError` "SOURCE: NAME: expected ..., got VALUE" when it is not of that kind.

    - int / float: numbers, and numbers written as strings (YAML 1.1 reads `3e-4` and `1e6` as
      strings, since its floats need a dot; TRL / HfArgumentParser users write them that way).
      A boolean is not a number (`seeds: true` is refused, not read as 1).
    - bool: YAML's true/false, 0/1, and the words true/false, yes/no, on/off, 1/0 in any case
      (a quoted "no" is a string, which Python would count as true).
    - str: a string only; a YAML number or boolean is refused rather than turned into text, since
      YAML has already rewritten it (`001` is 1, `1.10` is 1.1, `no` is false).
    - list: a YAML list (each item checked as above), or the comma-separated text the flag takes
      ("1,2,4", "greedy,majority"), or one number for a list of numbers.
    - dict: a mapping. `X | None` also takes null. Other annotations are not checked here.
    """
    tp, optional = _base_type(annotation)
    if value is None and optional:
        return None
    or_none = " or none" if optional else ""

    def wrong(expected: str) -> UserError:
        return UserError(f"{source}: {name}: expected {expected}{or_none}, got {value!r}")

    if typing.get_origin(tp) in (list, tuple):
        (inner,) = typing.get_args(tp)[:1] or (str,)
        if isinstance(value, (list, tuple)):
            return type(value)(coerce_setting(name, v, inner, source) for v in value)
        is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if isinstance(value, str) or (is_number and inner in (int, float)):
            try:
                return _list_parser(inner)(str(value))
            except argparse.ArgumentTypeError as err:
                raise UserError(f"{source}: {name}: {err}") from None
        example = _LIST_EXAMPLES.get(inner, "a,b")
        raise wrong(f"a list such as [{example.replace(',', ', ')}] or the text {example!r}")
    if tp is dict or typing.get_origin(tp) is dict:
        if not isinstance(value, dict):
            raise wrong("a mapping of settings")
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in _BOOL_WORDS:
            return _BOOL_WORDS[value.strip().lower()]
        raise wrong("true or false (or yes/no, on/off, 1/0)")
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (bool, int, float)):  # YAML read unquoted text (5, 1.10, yes) as a number or bool
            raise UserError(f"{source}: {name}: expected a string{or_none}, got {value!r} (quote it in YAML to mean text)")
        raise wrong("a string")
    if tp not in (int, float):
        return value
    if isinstance(value, bool):
        raise wrong(_TYPE_WORDS[tp])
    if tp is float and isinstance(value, float) and not math.isfinite(value):  # YAML's .nan / .inf
        raise wrong("a finite number")
    if isinstance(value, int) or (tp is float and isinstance(value, float)):
        return tp(value)
    if isinstance(value, str):
        try:
            return _value_parser(tp, optional)(value)
        except argparse.ArgumentTypeError as err:
            raise UserError(f"{source}: {name}: {err}") from None
    raise wrong(_TYPE_WORDS[tp])


def from_dict(cls: type[C], values: dict[str, Any], source: str = "config") -> C:
    """An instance of dataclass `cls` from a mapping of settings (YAML, flags, a run's config.yaml).

    Each value is checked against the field's type by `coerce_setting` (numbers written as strings,
    YAML's `3e-4`, become the field's int or float). Errors: an unknown setting (with a
    did-you-mean), a value of the wrong kind, or the class's own validation, each a `UserError`;
    the first two start with `source`."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise UserError(f"{source}: unknown setting {unknown[0]!r} for {cls.__name__}{unknown_setting_hint(unknown[0], names, setting_hints(cls))}")
    example = getattr(cls, "POLICY_OPTIONS_EXAMPLE", None)
    if example is not None and "policy_options" in values:
        check_policy_options(values["policy_options"], example, source)
    hints = typing.get_type_hints(cls)
    values = {k: coerce_setting(k, v, hints[k], source) for k, v in values.items()}
    try:
        return cls(**values)
    except TypeError as err:
        raise UserError(f"{source}: {err}") from None


def yaml_settings(cls: type, yaml_path: str | Path) -> dict[str, Any]:
    """The settings of a flat YAML file for dataclass `cls` (a run directory's `job:` key, the
    kind of run, is not a setting and is dropped). An unknown key is a `UserError` naming the
    file, with a did-you-mean: a typo must not run a job on the defaults."""
    values = load_yaml(yaml_path)
    values.pop("job", None)
    names = {f.name for f in dataclasses.fields(cls)}
    for key in values:
        if key not in names:
            raise UserError(f"{yaml_path}: unknown setting {key!r}{unknown_setting_hint(key, names, setting_hints(cls))}")
    return values


def from_namespace(cls: type[C], ns: argparse.Namespace, yaml_path: str | None = None) -> C:
    """YAML values (if any) overridden by the flags given on the command line."""
    values: dict[str, Any] = yaml_settings(cls, yaml_path) if yaml_path else {}
    names = {f.name for f in dataclasses.fields(cls)}
    values.update({k: v for k, v in vars(ns).items() if k in names})
    return from_dict(cls, values, source=yaml_path or "command line")


def load_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path}: is a directory; expected a YAML file of settings")
    if not path.exists():
        raise UserError(f"{path}: no such config file; expected a YAML mapping of settings")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise UserError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start + 1})") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as err:
        if text.lstrip()[:1] in ("{", "["):  # JSON (a subset of YAML): the JSON decoder's position is the real one
            import json

            try:
                json.loads(text)
            except json.JSONDecodeError as json_err:
                raise UserError(f"{path}:{json_err.lineno}: malformed JSON ({json_err.msg} at column {json_err.colno})") from None
        raise UserError(f"{path}: malformed YAML ({_yaml_problem(err)})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a YAML mapping of settings, got {type(data).__name__}")
    return data


def _yaml_problem(err: Exception) -> str:
    """What a YAML parser error says went wrong, and where: the *problem* mark (where the parser
    gave up), not the context mark (where the enclosing mapping began, often line 1 column 1)."""
    problem = getattr(err, "problem", None)
    mark = getattr(err, "problem_mark", None)
    if problem and mark is not None:
        return f"{problem} at line {mark.line + 1} column {mark.column + 1}"
    return str(err).splitlines()[0] if str(err) else type(err).__name__


# Policy options never written to a run directory (config.yaml, results.json): credentials. A resumed
# run gets them again from the flag or the environment (OPENAI_API_KEY).
SECRET_WORDS = ("key", "token", "secret", "password")


# The help of a training job's `policy_options` (LadderConfig, TTRLConfig).
JOB_POLICY_OPTIONS_HELP = ("settings passed to the policy (lora_rank, dtype, device, model, ...): --policy-option KEY=VALUE "
                           "and --model on the command line, a mapping in YAML; kept in config.yaml, so --resume rebuilds "
                           "the same policy")


def check_policy_options(options: Any, example: str, source: str | None = None) -> None:
    """A job config's `policy_options` must be a mapping; else a UserError showing `example`
    (and starting with `source`, the YAML file it came from, when given)."""
    if not isinstance(options, dict):
        where = f"{source}: " if source else ""
        raise UserError(f"{where}policy_options: expected a mapping of policy settings such as {{{example}}}, got {options!r}")


def storable_policy_options(options: dict[str, Any]) -> dict[str, Any]:
    """`options` without the settings whose name holds a credential word (api_key, hf_token, ...)."""
    return {k: v for k, v in options.items() if not any(word in str(k).lower() for word in SECRET_WORDS)}


def to_dict(config: Any) -> dict[str, Any]:
    """A config dataclass as the plain dict written to a run's config.yaml, minus credentials
    in its `policy_options` (see SECRET_WORDS)."""
    out = dataclasses.asdict(config)
    if isinstance(out.get("policy_options"), dict):
        out["policy_options"] = storable_policy_options(out["policy_options"])
    return out


def to_yaml(config: Any) -> str:
    return yaml.safe_dump(to_dict(config) if dataclasses.is_dataclass(config) else config, sort_keys=False)


def section_values(yaml_path: str | Path, sections: dict[str, type]) -> dict[str, dict[str, Any]]:
    """A YAML file's settings per section: {"ladder": {...}, "grpo": {...}}.

    Two layouts are read: sections (`ladder:` / `grpo:` mappings, the layout of a run directory's
    config.yaml) and flat (the same keys at top level, each going to the one section that has that
    field). An unknown key is a `UserError` naming the file, with a did-you-mean; a key under the
    wrong section (`ladder: {max_steps: 3}`) is one that names the section it belongs to.
    """
    data = load_yaml(yaml_path)
    fields = {name: {f.name for f in dataclasses.fields(cls)} for name, cls in sections.items()}
    out: dict[str, dict[str, Any]] = {name: {} for name in sections}
    for key, value in data.items():
        if key == "job":  # the kind of run (a run directory's config.yaml), not a setting
            continue
        if key in sections:
            if value is None:
                continue
            if not isinstance(value, dict):
                raise UserError(f"{yaml_path}: section {key!r} must be a mapping of settings")
            for inner in value:
                owners = [name for name, names in fields.items() if inner in names and inner not in fields[key]]
                if owners:  # e.g. ladder: {max_steps: 3}, a GRPO setting
                    also = " (or at top level)" if len(owners) == 1 else ""
                    raise UserError(f"{yaml_path}: setting {inner!r} under {key!r} is a {owners[0]} setting; "
                                    f"put it under '{owners[0]}:'{also}")
            out[key].update(value)
            continue
        owners = [name for name, names in fields.items() if key in names]
        if len(owners) == 1:
            out[owners[0]][key] = value
            continue
        if owners:
            raise UserError(f"{yaml_path}: setting {key!r} belongs to sections {', '.join(owners)}; put it under one of them")
        hints = setting_hints(*sections.values())
        if key in hints:
            raise UserError(f"{yaml_path}: unknown setting {key!r}{unknown_setting_hint(key, (), hints)}")
        hint = did_you_mean(key, [*sections, *(n for names in fields.values() for n in names)])
        raise UserError(f"{yaml_path}: unknown setting {key!r}; expected a section ({', '.join(sections)}) "
                        f"or one of its settings{hint}")
    return out


def from_sections(ns: argparse.Namespace, sections: dict[str, type], yaml_path: str | None = None,
                  defaults: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Build several configs from one command line: {"ttrl": TTRLConfig, "grpo": GRPOConfig}.

    Precedence, lowest first: the dataclass defaults, the job's own `defaults[section]`, the YAML
    file (see `section_values` for its two layouts), then explicit flags.
    """
    data = section_values(yaml_path, sections) if yaml_path else {}
    out = {}
    for section, cls in sections.items():
        names = {f.name for f in dataclasses.fields(cls)}
        values = dict((defaults or {}).get(section, {}))
        values.update(data.get(section) or {})
        values.update({k: v for k, v in vars(ns).items() if k in names})
        out[section] = from_dict(cls, values, source=yaml_path or "command line")
    return out
