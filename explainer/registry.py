"""A small named registry, the one pattern behind region methods, model sources and attribution
methods: ``register`` an entry (anything with a ``name``), ``get`` it by name, list the names.

Adding an entry is a change in one place: the module that defines it registers it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Generic, Protocol, TypeVar

from explainer.errors import LimaError


class Named(Protocol):
    @property
    def name(self) -> str: ...


T = TypeVar("T", bound=Named)


class Registry(Generic[T]):
    """Entries by name, in registration order.

    Args:
        what: what the entries are, for messages ("region method").
        error: the LimaError subclass raised for an unknown name.
    """

    def __init__(self, what: str, error: type[LimaError]):
        self.what, self.error = what, error
        self._entries: dict[str, T] = {}

    def register(self, entry: T) -> T:
        """Add ``entry`` under ``entry.name`` (a second entry of the same name replaces the first)."""
        self._entries[entry.name] = entry
        return entry

    def get(self, name: object) -> T:
        """The entry called ``name``; the error lists the known names."""
        entry = self._entries.get(name) if isinstance(name, str) else None
        if entry is None:
            raise self.error(f"unknown {self.what} {name!r}; choose one of: {', '.join(self._entries)}")
        return entry

    def names(self) -> list[str]:
        return list(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[T]:
        return iter(list(self._entries.values()))

    def __len__(self) -> int:
        return len(self._entries)
