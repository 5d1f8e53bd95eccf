"""Random: a seeded permutation of the regions, the control every comparison and study needs."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

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
from explainer.options import option


@dataclass(frozen=True)
class RandomOptions(MethodOptions):
    seed: int = option(0, low=0, high=2**31 - 1, help="Added to the subject's seed: another value, another order.")


def run(subject: Subject, options: RandomOptions) -> Iterator[MethodProgress]:
    start = time.perf_counter()
    rng = np.random.default_rng([subject.seed, options.seed])
    order = rng.permutation(subject.n_regions).astype(np.int32)
    yield MethodProgress(
        "random",
        0,
        0,
        0.0,
        Ranking("random", rank_scores(order), order, 0, 0, time.perf_counter() - start, options.to_dict()),
    )


register(
    AttributionMethod(
        "random",
        "Random order",
        "control",
        "A seeded random permutation of the regions: what chance does.",
        RandomOptions,
        run,
        lambda n, o: Cost(0),
    )
)
