"""Perturbation baselines through captum, on exactly LiMA's regions: occlusion (feature
ablation per region), LIME and KernelSHAP with the label map as the feature mask.

The input is the view in [0, 1]; a removed region takes the subject's fill (black, as LiMA's
search), and the model normalises after that, so the perturbed images are the same kind of images
LiMA's search scores. Scores are per region already (the mask's features are the regions).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

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
from explainer.options import option


def _forward(subject: Subject, counter: PassCounter):
    """p(·) of a batch of [0, 1] images, counted (captum picks the target column)."""
    clf = subject.clf

    def forward(batch: torch.Tensor) -> torch.Tensor:
        counter.images(len(batch))
        return clf.probs(batch.to(clf.device))

    return forward


def _run_captum(
    name: str, make: Any, subject: Subject, options: MethodOptions, total: int, **kwargs: Any
) -> Iterator[MethodProgress]:
    start = time.perf_counter()
    counter = PassCounter()
    algorithm = make(_forward(subject, counter))

    def call() -> np.ndarray:
        attribution = algorithm.attribute(
            subject.input_batch(),
            baselines=subject.baseline(),
            target=subject.target,
            feature_mask=subject.feature_mask(),
            perturbations_per_eval=subject.clf.batch_size,
            **kwargs,
        )
        # The feature mask is broadcast over the channels, so each channel holds the region's whole
        # attribution: take one (their mean), not their sum.
        return attribution[0].detach().cpu().numpy().mean(axis=0)

    pixel_map = yield from run_blocking(name, call, counter, total)
    result = ranking(name, region_means(pixel_map, subject.labels), counter.forward, 0, start, options)
    yield MethodProgress(name, counter.forward, counter.forward, result.seconds, result)


# -- occlusion -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AblationOptions(MethodOptions):
    """Occlusion needs no settings: each region is removed once."""


def run_ablation(subject: Subject, options: AblationOptions) -> Iterator[MethodProgress]:
    from captum.attr import FeatureAblation

    yield from _run_captum("ablation", FeatureAblation, subject, options, subject.n_regions + 1)


register(
    AttributionMethod(
        "ablation",
        "Occlusion (feature ablation)",
        "black-box",
        "Each region's score is the drop in p(target) when that region alone is removed.",
        AblationOptions,
        run_ablation,
        lambda n, o: Cost(n + 1),
    )
)


# -- LIME ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LimeOptions(MethodOptions):
    samples: int = option(
        1000,
        low=1,  # equal cost can give fewer than 10: LiMA spends 6 passes on two regions
        high=100_000,
        step=50,
        ui_high=8000,
        help="Random subsets of regions the model scores (each one model image).",
    )
    ridge_alpha: float = option(
        1.0, low=0.0, high=1000.0, step=0.1, help="Regularisation of the linear surrogate (LIME's ridge regression)."
    )


def run_lime(subject: Subject, options: LimeOptions) -> Iterator[MethodProgress]:
    from captum._utils.models.linear_model import SkLearnRidge
    from captum.attr import Lime

    torch.manual_seed(subject.seed)

    def make(forward: Any) -> Any:
        # captum's default surrogate is a Lasso with alpha 0.01, which zeroes every coefficient when
        # the target's probability is small (typical for the true class of a mistake): all
        # regions would tie. LIME's own default, a ridge regression (alpha 1), keeps the ranking.
        return Lime(forward, interpretable_model=SkLearnRidge(alpha=options.ridge_alpha))

    yield from _run_captum("lime", make, subject, options, options.samples, n_samples=options.samples)


register(
    AttributionMethod(
        "lime",
        "LIME",
        "black-box",
        "A sparse linear model fitted to the model's answers on random subsets of the regions.",
        LimeOptions,
        run_lime,
        lambda n, o: Cost(o.samples),
        samples_field="samples",
    )
)


# -- KernelSHAP --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KernelShapOptions(MethodOptions):
    samples: int = option(
        1000,
        low=1,  # equal cost can give fewer than 10: LiMA spends 6 passes on two regions
        high=100_000,
        step=50,
        ui_high=8000,
        help="Random coalitions of regions the model scores (1,000 in the LiMA baselines).",
    )


def run_kernelshap(subject: Subject, options: KernelShapOptions) -> Iterator[MethodProgress]:
    from captum.attr import KernelShap

    torch.manual_seed(subject.seed)
    yield from _run_captum("kernelshap", KernelShap, subject, options, options.samples, n_samples=options.samples)


register(
    AttributionMethod(
        "kernelshap",
        "KernelSHAP",
        "black-box",
        "Shapley values of the regions, estimated from random coalitions with the SHAP kernel.",
        KernelShapOptions,
        run_kernelshap,
        lambda n, o: Cost(o.samples),
        samples_field="samples",
    )
)
