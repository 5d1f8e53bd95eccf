"""What every attribution method shares: its inputs, its result, its cost, and how it runs.

A method turns a :class:`Subject` (classifier, view, region label map, target class, fill) into a
:class:`Ranking`: one score per region and the order of the regions (scores sorted descending,
stable), plus the cost it actually spent. The order is then scored by one protocol for every
method (:mod:`explainer.scoring`), so a comparison cannot be unfair by construction.

A method is an :class:`AttributionMethod` in :data:`METHODS` (registered by the module that
defines it; adding a method is one file in ``explainer/methods/``). Its ``run`` is a generator
of :class:`MethodProgress` (the engine's progress protocol); the last item carries the Ranking.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from explainer.compose import fill_image
from explainer.errors import MethodError
from explainer.models import Classifier
from explainer.options import Options
from explainer.progress import eta_from_rate
from explainer.registry import Registry

KINDS = ("black-box", "white-box", "control")


class MethodOptions(Options):
    """Base of a method's options (each method's options class extends it)."""

    error = MethodError
    what = "method option"


@dataclass(frozen=True)
class Subject:
    """What a method explains.

    Attributes:
        clf: the classifier.
        view: S×S×3 uint8 RGB, what the model sees.
        labels: S×S int32 label map with ids 0..N-1.
        target: the class explained (e.g. the true class of a mistake).
        fill: how removed pixels are filled ("black", "mean", "blur"): the baseline of the
            perturbation methods, the same one the scoring uses.
        seed: for the methods that sample (random, LIME, KernelSHAP, RISE).
    """

    clf: Classifier
    view: np.ndarray
    labels: np.ndarray
    target: int
    fill: str = "black"
    seed: int = 0

    @property
    def n_regions(self) -> int:
        return int(self.labels.max()) + 1

    def input_batch(self) -> torch.Tensor:
        """The view as a 1×3×S×S float32 batch in [0, 1] on the classifier's device."""
        return self.clf.to_batch(self.view)

    def baseline(self) -> torch.Tensor:
        """The fill image as a 1×3×S×S float32 batch in [0, 1] (what removed pixels become)."""
        fill = np.ascontiguousarray(fill_image(self.view, self.fill).transpose(2, 0, 1))
        return torch.from_numpy(fill)[None].to(self.clf.device)

    def feature_mask(self) -> torch.Tensor:
        """The label map as a 1×1×S×S int64 tensor (captum's feature mask; broadcast over channels)."""
        return torch.from_numpy(self.labels.astype(np.int64))[None, None].to(self.clf.device)


@dataclass(frozen=True)
class Cost:
    """Model passes of one run: forward images and backward passes (per image)."""

    forward: int
    backward: int = 0

    @property
    def total(self) -> int:
        return self.forward + self.backward


@dataclass(frozen=True)
class Ranking:
    """A method's answer for one subject.

    Attributes:
        method: the registry name.
        scores: N float64, one per region id (higher = more important for the target).
        order: N int32 region ids, most important first.
        forward_passes, backward_passes: what the method actually spent.
        seconds: its wall time.
        options: the resolved options (provenance).
    """

    method: str
    scores: np.ndarray
    order: np.ndarray
    forward_passes: int
    backward_passes: int
    seconds: float
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MethodProgress:
    """Where a method run is (an :class:`explainer.progress.Progress`): passes done of about ``total``."""

    method: str
    done: int
    total: int
    elapsed_s: float
    result: Ranking | None = None

    @property
    def fraction(self) -> float:
        return 1.0 if self.result is not None else min(1.0, self.done / max(self.total, 1))

    @property
    def eta_s(self) -> float | None:
        return 0.0 if self.result is not None else eta_from_rate(self.done, self.total, self.elapsed_s)

    def describe(self) -> str:
        return f"{self.method}: {self.done:,} of about {self.total:,} model passes"


@dataclass(frozen=True)
class AttributionMethod:
    """A method the registry can list, the UI can preview and the comparison can run.

    Attributes:
        name: registry key ("lima", "gradcam", ...); label: display name.
        kind: "black-box" (forward passes only), "white-box" (gradients) or "control".
        description: one sentence for the UI.
        options: the method's options dataclass.
        run: ``run(subject, options) -> Iterator[MethodProgress]``; the last item has the Ranking.
        cost: ``cost(n_regions, options) -> Cost``, the preview of what a run spends.
        availability: ``availability(classifier) -> (ok, reason)``; white-box methods need layers
            or gradients a TorchScript model may not offer.
        samples_field: the option that sets how many model images a sampling method spends
            (RISE, LIME, KernelSHAP): equal-cost mode sets it to what LiMA spent.
    """

    name: str
    label: str
    kind: str
    description: str
    options: type[MethodOptions]
    run: Callable[[Subject, Any], Iterator[MethodProgress]]
    cost: Callable[[int, Any], Cost]
    availability: Callable[[Classifier], tuple[bool, str]] = lambda clf: (True, "")
    samples_field: str | None = None


METHODS: Registry[AttributionMethod] = Registry("attribution method", MethodError)


def register(method: AttributionMethod) -> AttributionMethod:
    if method.kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {method.kind!r}")
    return METHODS.register(method)


# -- helpers the methods share ----------------------------------------------------------------------------------


def order_of(scores: np.ndarray) -> np.ndarray:
    """Region ids by descending score; ties keep the lower id first (a stable sort)."""
    return np.argsort(-np.asarray(scores, np.float64), kind="stable").astype(np.int32)


def rank_scores(order: np.ndarray) -> np.ndarray:
    """Scores that reproduce an order: (N − i)/N for the region ranked i-th (0-based)."""
    n = len(order)
    scores = np.empty(n, np.float64)
    scores[np.asarray(order)] = (n - np.arange(n)) / max(n, 1)
    return scores


def region_means(pixel_map: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The mean of an S×S (or C×S×S, summed over channels) map over each region: N float64."""
    values = np.asarray(pixel_map, np.float64)
    if values.ndim == 3:
        values = values.sum(axis=0)
    if values.shape != labels.shape:
        raise ValueError(f"map {values.shape} and label map {labels.shape} differ")
    sums = np.bincount(labels.ravel(), weights=values.ravel(), minlength=int(labels.max()) + 1)
    counts = np.bincount(labels.ravel(), minlength=int(labels.max()) + 1)
    return sums / np.maximum(counts, 1)


def ranking(method: str, scores: np.ndarray, forward: int, backward: int, start: float, options: Options) -> Ranking:
    scores = np.asarray(scores, np.float64)
    if not np.all(np.isfinite(scores)):
        scores = np.nan_to_num(scores, nan=-np.inf)
    return Ranking(
        method, scores, order_of(scores), int(forward), int(backward), time.perf_counter() - start, options.to_dict()
    )


class PassCounter:
    """Counts model images and backward passes, and stops a blocking library call when asked
    (its model calls raise :class:`Stopped`)."""

    def __init__(self) -> None:
        self.forward = 0
        self.backward = 0
        self.stop = threading.Event()

    def images(self, n: int) -> None:
        if self.stop.is_set():
            raise Stopped()
        self.forward += int(n)


class Stopped(Exception):
    """Raised inside a library call when its run was cancelled."""


def run_blocking(
    method: str, call: Callable[[], Any], counter: PassCounter, total: int, poll_s: float = 0.25
) -> Generator[MethodProgress, None, Any]:
    """Run a library call that reports no progress (captum, grad-cam) on a helper thread and
    yield :class:`MethodProgress` from the pass counter while it runs; the generator's return
    value is the call's result. Closing the generator stops the call at its next model pass."""
    start = time.perf_counter()
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"lima-{method}")
    future = pool.submit(call)
    try:
        while not future.done():
            yield MethodProgress(method, counter.forward + counter.backward, total, time.perf_counter() - start)
            _wait(future, poll_s)
        return future.result()
    finally:
        counter.stop.set()
        pool.shutdown(wait=True)


def _wait(future: Any, seconds: float) -> None:
    try:
        future.result(timeout=seconds)
    except Exception:
        pass


__all__ = [
    "METHODS",
    "AttributionMethod",
    "Cost",
    "MethodOptions",
    "MethodProgress",
    "PassCounter",
    "Ranking",
    "Stopped",
    "Subject",
    "order_of",
    "rank_scores",
    "region_means",
    "register",
    "run_blocking",
]
