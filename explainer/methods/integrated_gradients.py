"""Integrated Gradients (captum): gradients of p(target) along the straight path from the fill
image to the view, times the difference, summed over channels and averaged over each region.

The path starts at the subject's fill (black by default), LiMA's removed-pixel baseline, so the
attribution answers the same question as the other methods: what the regions add over nothing.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from explainer.methods.base import (
    AttributionMethod,
    Cost,
    MethodOptions,
    MethodProgress,
    PassCounter,
    Subject,
    ranking,
    region_means,
    register,
    run_blocking,
)
from explainer.models import Classifier
from explainer.options import option


@dataclass(frozen=True)
class IntegratedGradientsOptions(MethodOptions):
    steps: int = option(
        80,
        low=4,
        high=1000,
        step=4,
        ui_high=400,
        help="Points on the path from the fill to the view (80 in the LiMA baselines).",
    )


def availability(clf: Classifier) -> tuple[bool, str]:
    return True, "gradients through the whole model"


def run(subject: Subject, options: IntegratedGradientsOptions) -> Iterator[MethodProgress]:
    from captum.attr import IntegratedGradients

    start = time.perf_counter()
    counter = PassCounter()
    clf = subject.clf

    def forward(batch: torch.Tensor) -> torch.Tensor:
        counter.images(len(batch))
        return clf.differentiable_probs(batch)

    def call() -> np.ndarray:
        ig = IntegratedGradients(forward)
        attribution = ig.attribute(
            subject.input_batch(),
            baselines=subject.baseline(),
            target=subject.target,
            n_steps=options.steps,
            internal_batch_size=clf.batch_size,
        )
        return attribution[0].detach().cpu().numpy()

    pixel_map = yield from run_blocking("ig", call, counter, 2 * options.steps)
    counter.backward = counter.forward  # captum differentiates every path image once
    result = ranking("ig", region_means(pixel_map, subject.labels), counter.forward, counter.backward, start, options)
    yield MethodProgress("ig", counter.forward + counter.backward, 2 * options.steps, result.seconds, result)


register(
    AttributionMethod(
        "ig",
        "Integrated Gradients",
        "white-box",
        "Gradients of p(target) integrated along the path from the fill image to the view (captum).",
        IntegratedGradientsOptions,
        run,
        lambda n, o: Cost(o.steps, o.steps),
        availability,
    )
)
