"""Greedy (SMDL) and bidirectional (LiMA) subset search, as a generator that reports progress.

Semantics follow the reference code exactly (``docs/method.md``, "The search"):

* candidates are the unassigned regions in ascending id order; argmax/argmin take the first
  index on ties;
* greedy: each step adds argmax F(S ∪ {c}) to the front;
* bidirectional: while more than ``pending`` regions are unassigned, each iteration also
  pre-screens the ``pending`` candidates with the lowest forward score (minus the forward
  winner), re-scores them as additions to the removal set D, and sends argmin F(D ∪ {c}) to
  the tail; once ``pending`` or fewer remain, only forward steps run; the last region is
  appended without evaluation;
* order = S + reversed(D); every prefix's probabilities come from the search's own forward
  passes (the complement of D is always a prefix), plus the black and full images.

:class:`SearchOptions` is the one definition of the search settings. :func:`iter_search` yields
:class:`SearchProgress` after every batch of forward passes, so a caller can draw a progress bar
and stop by simply no longer iterating; the last item carries the :class:`Explanation`.
:func:`explain` collects it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import numpy as np
import torch

from explainer import metrics
from explainer.compose import Composer
from explainer.config import SEARCHES, SearchOptions, resolve_search_options
from explainer.errors import ImageError, LabelError, ModelError, RegionError
from explainer.explanation import Explanation, SearchLog
from explainer.labelmap import validate_labels
from explainer.models import Classifier, device_label
from explainer.objective import TermValues, distance_matrix, effectiveness_with, term_values
from explainer.progress import eta_from_rate, run_to_end
from explainer.regions import RegionSpec

DEFAULT_PENDING = SearchOptions.field("pending").default


@dataclass(frozen=True)
class SearchProgress:
    """Where a running search is (an :class:`explainer.progress.Progress`).

    Attributes:
        step: search iterations finished (0 before the first one).
        steps_total: iterations the search will run.
        forward_passes: model images evaluated so far.
        forward_total: the exact total, or an upper bound for bidirectional search (the
            backward step re-scores ``pending`` or ``pending − 1`` candidates).
        elapsed_s: seconds since the start.
        result: the finished :class:`Explanation` on the last item, else None.
    """

    step: int
    steps_total: int
    forward_passes: int
    forward_total: int
    elapsed_s: float
    result: Explanation | None = None

    @property
    def fraction(self) -> float:
        return 1.0 if self.result is not None else min(1.0, self.forward_passes / max(self.forward_total, 1))

    @property
    def eta_s(self) -> float | None:
        """Estimated seconds left, from the rate so far (None before the first batch)."""
        if self.result is not None:
            return 0.0
        if self.forward_passes <= 2:
            return None
        return eta_from_rate(self.forward_passes, self.forward_total, self.elapsed_s)

    def describe(self) -> str:
        return (
            f"step {self.step} of {self.steps_total} · {self.forward_passes:,} / {self.forward_total:,} forward passes"
        )


# A search costs about N² forward passes: 1,024 regions is already over half a million images.
MAX_REGIONS = 1024


def bidirectional_iterations(n: int, pending: int) -> int:
    """b = ⌈(N − p)/2⌉ iterations that also run a backward step (0 when N ≤ p)."""
    return max(0, math.ceil((n - pending) / 2))


def forward_pass_count(n: int, search: str = "bidirectional", pending: int = DEFAULT_PENDING) -> int:
    """Model images one search evaluates, an exact count for greedy and an upper bound for
    bidirectional (each backward step re-scores ``pending`` candidates, or ``pending − 1`` when
    the forward winner was among them: the minimum is 2b below this bound).

    Greedy: N(N+1). Bidirectional (``docs/method.md``, "Cost", single-modal): 2[bN − b(b−1)] + 2bp
    + 2[r(r+1)/2 − 1] + 2 with r = N − 2b. Both include the full and the black image. The
    effectiveness term costs nothing extra: the region embeddings come from the first step's
    single-region images.
    """
    if search == "greedy" or n <= pending:
        return n * (n + 1)
    b = bidirectional_iterations(n, pending)
    r = n - 2 * b
    return 2 * (b * n - b * (b - 1)) + 2 * b * pending + 2 * (r * (r + 1) // 2 - 1) + 2


def iteration_count(n: int, search: str = "bidirectional", pending: int = DEFAULT_PENDING) -> int:
    """Search iterations: N for greedy (the last appends without evaluation), N − b for
    bidirectional (the reference's ``int((N − p)/2) + p``)."""
    return n if search == "greedy" else n - bidirectional_iterations(n, pending)


class _Run:
    """The state of one search; its generator methods yield Progress after each batch."""

    def __init__(self, clf: Classifier, view: np.ndarray, labels: np.ndarray, target: int, options: SearchOptions):
        self.clf, self.target = clf, target
        self.search, self.pending, self.weights = options.search, options.pending, options.weights
        self.n = int(labels.max()) + 1
        self.composer = Composer(view, labels, clf.device, options.fill, clf.input_layout)
        self.use_effectiveness = self.weights.effectiveness != 0.0
        self.distances: np.ndarray | None = None
        self.ins = np.full((self.n + 1, clf.num_classes), np.nan, np.float32)
        self.dels = np.full((self.n + 1, clf.num_classes), np.nan, np.float32)
        self.log: list[dict] = []
        self.passes = 0
        self.iterations_done = 0
        self.start = time.perf_counter()
        self.forward_total = forward_pass_count(self.n, self.search, self.pending)
        self.iterations_total = iteration_count(self.n, self.search, self.pending)

    def progress(self, result: Explanation | None = None) -> SearchProgress:
        return SearchProgress(
            self.iterations_done,
            self.iterations_total,
            self.passes,
            self.forward_total,
            time.perf_counter() - self.start,
            result,
        )

    # -- forward passes ---------------------------------------------------------------------------
    def evaluate(self, sets: torch.Tensor, want_embeddings: bool = False):
        """Score C subsets (C×N bool): the images showing them and their complements.

        Generator: yields Progress per batch; returns (probs_kept C×K, probs_removed C×K,
        embeddings of the kept images C×D or None), all on the device.
        """
        c = sets.shape[0]

        # One stream of 2C images (kept, then removed) so every batch is full.
        def images(s: slice) -> torch.Tensor:
            return self.composer.kept_and_removed(sets[_clip(s, 0, c)], sets[_clip(s, c, 2 * c)])

        probs, embs = [], []
        for out in self.clf.map_batches(lambda s: self._score(images(s), want_embeddings), 2 * c):
            probs.append(out[0])
            if want_embeddings:
                embs.append(out[1])
            self.passes += len(out[0])
            yield self.progress()
        all_probs = torch.cat(probs)
        emb = torch.cat(embs)[:c] if want_embeddings else None
        return all_probs[:c], all_probs[c:], emb

    def _score(self, batch: torch.Tensor, want_embeddings: bool):
        # The composed batch is ours alone: the classifier may normalise it in place.
        if want_embeddings:
            return self.clf.probs_and_embeddings(batch, scratch=True)
        return self.clf.probs(batch, scratch=True), None

    def endpoints(self):
        """p(·) of the full and the black image, the curves' ends; generator, returns 2×K."""
        full_and_black = torch.tensor([[True] * self.n, [False] * self.n], device=self.clf.device)
        probs = self.clf.probs(self.composer.images(full_and_black))
        self.passes += 2
        yield self.progress()
        return probs

    # -- steps ----------------------------------------------------------------------------------
    def subsets(self, base: list[int], candidates: np.ndarray) -> torch.Tensor:
        """C×N indicator matrix of base ∪ {c} for each candidate c."""
        sets = torch.zeros(len(candidates), self.n, dtype=torch.bool)
        if base:
            sets[:, base] = True
        sets[torch.arange(len(candidates)), torch.from_numpy(candidates)] = True
        return sets.to(self.clf.device)

    def effectiveness(self, base: list[int], candidates: np.ndarray) -> np.ndarray:
        if not self.use_effectiveness or self.distances is None:
            return np.zeros(len(candidates))
        return effectiveness_with(self.distances, base, candidates)

    def forward_step(self, kept: list[int], candidates: np.ndarray):
        """Score kept ∪ {c} for all candidates; record and return the winner and the terms.

        Generator; returns (winner position in candidates, TermValues of all candidates).
        """
        want_emb = self.use_effectiveness and self.distances is None
        probs_in, probs_out, emb = yield from self.evaluate(self.subsets(kept, candidates), want_emb)
        if want_emb:
            # The first step scores every single region alone: exactly the images whose
            # embeddings the effectiveness term needs, so they cost no extra passes.
            self.distances = distance_matrix(emb)
        terms = term_values(probs_in, probs_out, self.target, self.effectiveness(kept, candidates))
        scores = terms.objective(self.weights)
        best = int(np.argmax(scores))
        position = len(kept) + 1
        self.ins[position] = probs_in[best].cpu().numpy()
        self.dels[position] = probs_out[best].cpu().numpy()
        self._record("forward", int(candidates[best]), position, len(candidates), scores[best], terms.pick(best))
        return best, terms

    def backward_step(self, removed: list[int], candidates: np.ndarray, winner: int, forward_terms: TermValues):
        """Pick the region to send to the tail; generator, returns its id."""
        removal_eff = self.effectiveness(removed, candidates)
        prescreen = forward_terms.objective(self.weights, effectiveness=removal_eff)
        ranked = np.argsort(prescreen, kind="stable")  # lowest first, ties by id
        pool = [int(i) for i in ranked[: self.pending] if i != winner]
        if not pool:  # pending = 1 and the winner was it
            pool = [int(i) for i in ranked if i != winner][:1]
        pool_ids = candidates[pool]
        probs_in, probs_out, _ = yield from self.evaluate(self.subsets(removed, pool_ids))
        terms = term_values(probs_in, probs_out, self.target, removal_eff[pool])
        scores = terms.objective(self.weights)
        worst = int(np.argmin(scores))
        position = self.n - len(removed)  # the tail slot: complement of D ∪ {c} is a prefix
        self.ins[position - 1] = probs_out[worst].cpu().numpy()
        self.dels[position - 1] = probs_in[worst].cpu().numpy()
        self._record("backward", int(pool_ids[worst]), position, len(pool), scores[worst], terms.pick(worst))
        return int(pool_ids[worst])

    def _record(
        self, direction: str, region: int, position: int, candidates: int, objective: float, terms: dict
    ) -> None:
        self.log.append(
            {
                "direction": direction,
                "region": region,
                "position": position,
                "candidates": candidates,
                "objective": float(objective),
                **terms,
            }
        )

    def run(self):
        """The whole search; generator, returns the order (N region ids)."""
        kept: list[int] = []
        removed: list[int] = []
        while True:
            candidates = np.array(sorted(set(range(self.n)) - set(kept) - set(removed)), dtype=np.int64)
            if len(candidates) == 0:
                break
            if len(candidates) == 1:  # the last region: nothing to compare
                kept.append(int(candidates[0]))
                break
            best, terms = yield from self.forward_step(kept, candidates)
            if self.search == "bidirectional" and len(candidates) > self.pending:
                tail = yield from self.backward_step(removed, candidates, best, terms)
                removed.append(tail)
            kept.append(int(candidates[best]))
            self.iterations_done += 1
            yield self.progress()
        self.iterations_done = self.iterations_total
        return np.array(kept + removed[::-1], dtype=np.int32)


def _clip(s: slice, lo: int, hi: int) -> slice:
    """The part of slice ``s`` (over 0..2C) that falls in [lo, hi), shifted to start at 0."""
    return slice(min(max(s.start, lo), hi) - lo, min(max(s.stop, lo), hi) - lo)


def _check_inputs(
    clf: Classifier, view: np.ndarray, labels: np.ndarray, target: int, tracked: int | None
) -> np.ndarray:
    view = np.asarray(view)
    if view.dtype != np.uint8 or view.shape != (clf.size, clf.size, 3):
        raise ImageError(
            f"The view must be a {clf.size}×{clf.size}×3 uint8 RGB array (use clf.view(image)); "
            f"got shape {view.shape} and dtype {view.dtype}."
        )
    labels = validate_labels(labels, view.shape[:2])
    for name, cls in (("target", target), ("tracked", tracked)):
        if cls is None:
            continue
        if isinstance(cls, (bool, np.bool_)) or not isinstance(cls, (int, np.integer)):
            raise LabelError(
                f"The {name} class must be an integer class index (0..{clf.num_classes - 1}), "
                f"got {cls!r} ({type(cls).__name__})."
            )
        if not 0 <= cls < clf.num_classes:
            raise LabelError(f"The {name} class {cls!r} is outside 0..{clf.num_classes - 1} for {clf.id}.")
    if tracked is not None and int(tracked) == int(target):
        raise LabelError("The tracked class must differ from the target: it is the class followed beside it.")
    n = int(labels.max()) + 1
    if n > MAX_REGIONS:
        raise RegionError(
            f"{n} regions is too many: a search costs about N² forward passes ({forward_pass_count(n):,} here). "
            f"The most is {MAX_REGIONS}; use larger regions (e.g. a larger SLICO region_size) or min_area."
        )
    return labels


def check_source(source: Any) -> dict[str, Any]:
    """Image provenance as a plain dict (a name, a digest, a label, ...)."""
    if source is None:
        return {}
    if not isinstance(source, Mapping):
        raise LabelError(f"source must be a mapping of provenance fields (name, digest, label), got {source!r}")
    return dict(source)


def default_tracked(probs_full: np.ndarray, target: int) -> int:
    """The class to follow beside the target: the prediction when it is wrong, else the runner-up."""
    ranked = np.argsort(-probs_full, kind="stable")
    return int(ranked[0] if ranked[0] != target else ranked[1])


def tracked_beside(probs_full: np.ndarray, target: int, true_label: int | None = None) -> int:
    """The class the Explain page, ``batch`` and the study builder follow beside ``target`` (it is
    part of a run's key, so all three must choose it alike): the true class when the prediction
    of a mistake is explained, else :func:`default_tracked`. ``probs_full``: the K class
    probabilities of the full view; ``true_label``: the image's label, None when unknown."""
    pred = int(np.argmax(probs_full))
    if true_label is not None and target == pred != true_label:
        return int(true_label)
    return default_tracked(probs_full, target)


def iter_search(
    clf: Classifier,
    view: np.ndarray,
    labels: np.ndarray,
    target: int,
    options: SearchOptions | Mapping[str, Any] | None = None,
    *,
    tracked: int | None = None,
    regions: RegionSpec | Mapping[str, Any] | None = None,
    source: Mapping[str, Any] | None = None,
    **settings: Any,
) -> Iterator[SearchProgress]:
    """Run a LiMA search, yielding :class:`SearchProgress` after every batch of forward passes.

    Args:
        clf: the classifier.
        view: S×S×3 uint8 RGB, the classifier's view (``clf.view(image)``).
        labels: S×S integer label map, ids 0..N-1 (``propose_regions``).
        target: the class to explain (0..K-1), e.g. the true class of a mistake.
        options: :class:`SearchOptions` (or a dict of them); keyword ``settings`` (``search``,
            ``pending``, ``weights`` by name, ``fill``, ``tolerance``) are merged in, so
            ``explain(clf, view, labels, 281, search="greedy", weights={"consistency": 20})`` works.
        tracked: a second class followed on the same path; None = the prediction when it is
            wrong, else the runner-up.
        regions: how the label map was made (:class:`RegionSpec` or its dict), stored with the result.
        source: image provenance (name, digest, true label, ...), stored with the result.

    Yields:
        SearchProgress; the last one has ``result`` set. Stop iterating to cancel: the
        generator exits cleanly and nothing else runs.

    Raises:
        SearchError, LabelError, ImageError, RegionError, ModelError: bad settings or inputs
        (checked before any forward pass).
    """
    labels = _check_inputs(clf, view, labels, target, tracked)
    config = resolve_search_options(options, **settings)
    if config.weights.effectiveness != 0.0 and not clf.has_embeddings:
        raise ModelError(
            f"The effectiveness term needs embeddings, which {clf.id} does not offer; set its weight to 0."
        )
    run = _Run(clf, np.asarray(view), labels, int(target), config)
    yield run.progress()
    ends = yield from run.endpoints()
    full, black = ends[0].cpu().numpy(), ends[1].cpu().numpy()
    if tracked is None:
        tracked = default_tracked(full, target)
    order = yield from run.run()
    run.ins[0], run.ins[run.n] = black, full
    run.dels[0], run.dels[run.n] = full, black
    if np.isnan(run.ins).any() or np.isnan(run.dels).any():  # an invariant, not user input
        raise RuntimeError("internal error: a curve point was not recorded")
    result = Explanation(
        view=np.array(view, dtype=np.uint8),
        labels=labels,
        order=order,
        area=metrics.cumulative_area(labels, order),
        insertion_probs=run.ins,
        deletion_probs=run.dels,
        target=int(target),
        tracked=int(tracked),
        class_names=clf.class_names,
        log=SearchLog.from_rows(run.log),
        config=config,
        regions=RegionSpec.from_dict(regions or {}),
        model=clf.describe(),
        source=check_source(source),
        batch_size=clf.batch_size,
        forward_passes=run.passes,
        wall_time_s=time.perf_counter() - run.start,
        device=device_label(clf.device),
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        versions=library_versions(),
    )
    yield run.progress(result)


def explain(clf: Classifier, view: np.ndarray, labels: np.ndarray, target: int, **options) -> Explanation:
    """Run :func:`iter_search` to the end and return the :class:`Explanation`.

    Takes the same arguments as :func:`iter_search`.
    """
    return run_to_end(iter_search(clf, view, labels, target, **options))


def library_versions() -> dict:
    """Versions of the libraries that shape a result, for provenance."""
    import platform

    import PIL
    import torchvision

    from explainer.version import __version__

    return {
        "lima_lens": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "pillow": PIL.__version__,
    }


__all__ = [
    "DEFAULT_PENDING",
    "SEARCHES",
    "SearchOptions",
    "SearchProgress",
    "default_tracked",
    "explain",
    "forward_pass_count",
    "iter_search",
    "iteration_count",
    "resolve_search_options",
]
