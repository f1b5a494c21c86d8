"""Small name -> component registries (one per ingredient kind).

Every registered component carries a one-line reference to the paper it comes from, so a
sweep's leaderboard can always say what a name means. Adding a component never means
editing the training loop: the loop looks components up by name.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Generic, Iterator, TypeVar

T = TypeVar("T")


class UnknownComponent(ValueError):
    """Raised for a name that is not registered; the message lists the allowed names."""


@dataclass(frozen=True)
class Entry(Generic[T]):
    name: str
    obj: T
    ref: str


class Registry(Generic[T]):
    """A named collection of components of one kind (losses, regularizers, ...)."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}

    def register(self, name: str, *, ref: str) -> Callable[[T], T]:
        if not ref:
            raise ValueError(f"{self.kind} {name!r} needs a paper reference")

        def deco(obj: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._entries[name] = Entry(name, obj, ref)
            return obj

        return deco

    def get(self, name: str) -> T:
        return self.entry(name).obj

    def entry(self, name: str) -> Entry[T]:
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownComponent(
                f"unknown {self.kind} {name!r}; allowed: {', '.join(sorted(self._entries))}"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)

    def describe(self) -> dict[str, Any]:
        return {n: self._entries[n].ref for n in self.names()}
