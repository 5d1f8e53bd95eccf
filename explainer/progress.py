"""One shape for the progress of every long computation: scans, SAM and searches.

A long computation is a generator that yields progress items; the last item carries the result.
A caller (the CLI's progress line, the dashboard's job panel) needs nothing else than this
protocol, whatever runs. Stopping is simply not iterating any further.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Progress(Protocol):
    """Where a computation is.

    Attributes:
        fraction: done so far, in [0, 1] (1 once the result is there).
        eta_s: estimated seconds left (None while unknown; 0 when done).
        result: the finished result on the last item, else None.
    """

    @property
    def fraction(self) -> float: ...

    @property
    def eta_s(self) -> float | None: ...

    @property
    def result(self) -> Any | None: ...

    def describe(self) -> str:
        """One line for people, e.g. "step 3 of 27 · 120 / 940 forward passes"."""
        ...


@dataclass(frozen=True)
class Done:
    """The single progress item of a computation that reports no steps (e.g. SAM's masks)."""

    result: Any
    message: str = "done"

    @property
    def fraction(self) -> float:
        return 1.0

    @property
    def eta_s(self) -> float | None:
        return 0.0

    def describe(self) -> str:
        return self.message


def run_to_end(items: Iterable[Progress]) -> Any:
    """Iterate a computation to its end and return its result (the last item's ``result``)."""
    result = None
    for item in items:
        result = item.result if item.result is not None else result
    if result is None:
        raise RuntimeError("the computation ended without a result")
    return result


def eta_from_rate(done: float, total: float, elapsed_s: float) -> float | None:
    """Seconds left at the rate so far (None before there is a rate)."""
    if done <= 0 or elapsed_s <= 0:
        return None
    return max(0.0, (total - done) * elapsed_s / done)


__all__ = ["Done", "Progress", "eta_from_rate"]
