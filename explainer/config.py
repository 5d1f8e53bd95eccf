"""The configuration of a search: what, besides the model and the inputs, decides its result.

:class:`SearchOptions` is the one definition of the search settings (kind, pending samples,
the λ weights, the fill of removed pixels, the minimal-subset tolerance): the engine validates
with it, the CLI's flags and the UI's widgets are generated from it, a result stores it as its
provenance, and the run key covers it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from explainer.compose import FILLS
from explainer.errors import SearchError
from explainer.objective import Weights
from explainer.options import Options, option

SEARCHES = ("bidirectional", "greedy")


@dataclass(frozen=True)
class SearchOptions(Options):
    """The settings of one search (stored with the result; part of its run key)."""

    error = SearchError
    what = "search option"

    search: str = option(
        "bidirectional",
        choices=SEARCHES,
        labels={"bidirectional": "Bidirectional (LiMA)", "greedy": "Greedy (SMDL)"},
        help="bidirectional: LiMA (front and tail together); greedy: SMDL (front only).",
    )
    pending: int = option(
        8,
        low=1,
        step=1,
        ui_high=64,
        label="pending samples",
        help="Candidates the backward step re-scores (LiMA's default 8).",
    )
    weights: Weights = option(Weights(), help="The λ weights of the objective's four terms, by name.")
    fill: str = option(
        "black",
        choices=FILLS,
        label="removed pixels",
        labels={"black": "black", "mean": "mean colour", "blur": "blurred", "grey": "grey", "dimmed": "dimmed"},
        help="How removed pixels are filled: black (the paper), the mean colour, a blur, grey (128), or the "
        "image dimmed to a quarter (the study builder's looks).",
    )
    tolerance: float = option(
        0.005,
        low=0.0,
        high=0.2,
        step=0.001,
        label="minimal-subset tolerance",
        help="The minimal subset is the shortest prefix within this of the curve's maximum.",
    )

    @classmethod
    def from_saved(cls, doc: Mapping[str, Any]) -> SearchOptions:
        """From a saved result's ``config`` (any version; version 0.1 also stored batch_size)."""
        return cls.from_mapping(doc, ignore=("batch_size",))


def resolve_search_options(options: SearchOptions | Mapping[str, Any] | None = None, **overrides: Any) -> SearchOptions:
    """Search options from an options object and/or a mapping and keyword values (``weights``
    may be a partial dict: missing terms take their defaults)."""
    base = options if isinstance(options, SearchOptions) else SearchOptions.from_mapping(options or {})
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if isinstance(overrides.get("weights"), Mapping):
        overrides["weights"] = Weights.from_mapping(overrides["weights"])
    return base.replace(**overrides) if overrides else base


__all__ = ["SEARCHES", "SearchOptions", "resolve_search_options"]
