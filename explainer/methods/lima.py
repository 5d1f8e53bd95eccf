"""LiMA (bidirectional search) and SMDL (greedy search): the engine's own search, order as found.

The ranking's scores reproduce the order ((N − i)/N); the Explanation the search produced is not
kept here (the run store keeps it), only its order and cost.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

from explainer.config import SearchOptions
from explainer.methods.base import (
    AttributionMethod,
    Cost,
    MethodOptions,
    MethodProgress,
    Ranking,
    Subject,
    rank_scores,
    register,
)
from explainer.objective import Weights
from explainer.options import same_as
from explainer.search import forward_pass_count, iter_search


@dataclass(frozen=True)
class SearchMethodOptions(MethodOptions):
    """The search settings a comparison varies (the fill is the subject's, the same for all)."""

    pending: int = same_as(SearchOptions, "pending")
    weights: Weights = same_as(SearchOptions, "weights")


def _search_options(kind: str, options: SearchMethodOptions, subject: Subject) -> SearchOptions:
    return SearchOptions(search=kind, pending=options.pending, weights=options.weights, fill=subject.fill)


def _runner(name: str, kind: str):
    def run(subject: Subject, options: SearchMethodOptions) -> Iterator[MethodProgress]:
        start = time.perf_counter()
        config = _search_options(kind, options, subject)
        for progress in iter_search(subject.clf, subject.view, subject.labels, subject.target, config):
            if progress.result is None:
                yield MethodProgress(name, progress.forward_passes, progress.forward_total, progress.elapsed_s)
                continue
            exp = progress.result
            order = exp.order.astype("int32")
            yield MethodProgress(
                name,
                exp.forward_passes,
                exp.forward_passes,
                exp.wall_time_s,
                Ranking(
                    name,
                    rank_scores(order),
                    order,
                    exp.forward_passes,
                    0,
                    time.perf_counter() - start,
                    options.to_dict(),
                ),
            )

    return run


def _cost(kind: str):
    def cost(n_regions: int, options: SearchMethodOptions) -> Cost:
        return Cost(forward_pass_count(n_regions, kind, options.pending))

    return cost


register(
    AttributionMethod(
        "lima",
        "LiMA (bidirectional)",
        "black-box",
        "Submodular subset search from both ends: the most and the least important regions at each step.",
        SearchMethodOptions,
        _runner("lima", "bidirectional"),
        _cost("bidirectional"),
    )
)
register(
    AttributionMethod(
        "smdl",
        "SMDL (greedy)",
        "black-box",
        "The greedy submodular search of SMDL-Attribution: the most important region first, one at a time.",
        SearchMethodOptions,
        _runner("smdl", "greedy"),
        _cost("greedy"),
    )
)
