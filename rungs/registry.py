"""One small registry for tasks, policies and strategies.

Entries are lazy "module:attribute" strings so that `rungs tasks` does not import torch or
transformers. An unknown name is a `UserError` that lists the choices and suggests the closest.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Iterator
from typing import Any, Generic, TypeVar

from rungs.errors import UserError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, str | T] = {}

    def register(self, name: str, target: str | T) -> None:
        """Register `target`: an object, or a lazy "package.module:attr" string."""
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._entries[name] = target

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def get(self, name: str) -> T:
        if name not in self._entries:
            raise UserError(self.unknown_message(name))
        target = self._entries[name]
        if isinstance(target, str):
            module, _, attrs = target.partition(":")
            target = importlib.import_module(module)
            for attr in attrs.split("."):
                target = getattr(target, attr)
            self._entries[name] = target
        return target  # type: ignore[return-value]

    def unknown_message(self, name: str) -> str:
        close = difflib.get_close_matches(name, self.names(), n=1, cutoff=0.5)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return f"unknown {self.kind} {name!r}: expected one of {', '.join(self.names())}{hint}"


def split_spec(spec: str) -> tuple[str, str | None]:
    """'hf:Qwen/Qwen2.5-0.5B' -> ('hf', 'Qwen/Qwen2.5-0.5B'); 'tiny' -> ('tiny', None). Whitespace
    around either part is dropped (`hf: smollm2 `, as YAML or a shell variable can leave it)."""
    name, sep, arg = spec.partition(":")
    return name.strip(), (arg.strip() if sep else None)


def build(registry: Registry[Any], spec: str, **kwargs: Any) -> Any:
    """Instantiate `registry[name]` from a spec 'name' or 'name:arg': calls factory(arg, **kwargs)."""
    name, arg = split_spec(spec)
    return registry.get(name)(arg, **kwargs)
