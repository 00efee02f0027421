"""Lazy name registries.

A registry maps a public name to "module:attribute". Looking names up imports nothing, so
torch-free layers (``repro.spec``, ``repro.tables``) can validate names; ``resolve`` imports the
implementation only when it is needed.
"""

from __future__ import annotations

import importlib
from typing import Any


class UnknownName(KeyError):
    """A name that is not in a registry; the message lists the allowed names."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return str(self.args[0])


class Registry:
    def __init__(self, kind: str, entries: dict[str, str], versions: dict[str, int] | None = None):
        self.kind = kind
        self._entries = dict(entries)
        # Bumped when an implementation changes its results; part of every job's content key.
        self._versions = dict(versions or {})

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def target(self, name: str) -> str:
        if name not in self._entries:
            raise UnknownName(
                f"unknown {self.kind} {name!r}; allowed: {', '.join(self.names())}"
            )
        return self._entries[name]

    def version(self, name: str) -> int:
        self.target(name)
        return self._versions.get(name, 1)

    def resolve(self, name: str) -> Any:
        module, _, attr = self.target(name).partition(":")
        return getattr(importlib.import_module(module), attr)
