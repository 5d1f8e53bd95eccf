"""What each condition reveals of an image: a ranked method's prefix at a budget, the area-matched
random control, or the whole image ("none").

* **Ranked methods** reveal the prefix of their order whose area is closest to the budget (ties:
  the shorter prefix), or their own minimal subset for the budget ``"minimal"``. LiMA and SMDL
  orders come from the run store (:class:`explainer.store.RunStore`, the Explain page's runs:
  a finished run is reused, never recomputed); the other registry methods from the method store
  (:class:`explainer.comparison.MethodStore`). Orders do not depend on the budget, so a rebuild
  with other budgets costs no search.
* **The random control** matches the revealed *area* (not the region count: regions differ in
  size) of the reference stimulus (LiMA's for the same image, target and budget; else the first
  ranked condition's; else the budget): a seeded random permutation's closest prefix, then
  single add/remove/swap moves while they bring the area closer (the start stays random; the
  moves only close the gap), repeated from new random starts until within 0.005 (at most 32).
* **"none"** shows the whole view.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from explainer import metrics
from explainer.comparison import MethodStore, iter_method, method_key, resolve_options, subject_key
from explainer.config import SearchOptions
from explainer.explanation import Explanation
from explainer.methods import Subject
from explainer.models import Classifier
from explainer.regions import RegionSpec
from explainer.search import iter_search
from explainer.store import RunStore, run_key
from explainer.study.options import AREA_MATCHED_RANDOM, MINIMAL, NO_EXPLANATION

SEARCHED = {"lima": "bidirectional", "smdl": "greedy"}  # methods whose orders live in the run store
MATCH_TOLERANCE = 0.02  # the random control's |Δarea| limit the issue sets (the moves do much better)


@dataclass(frozen=True)
class RankedOrder:
    """A method's order of one image's regions for one target.

    Attributes:
        method: registry name; order: N int32 region ids, most important first.
        minimal: the method's minimal subset (region ids); key: where it is kept (run key, or
            ``<subject>/<method key>`` in the method store); searched: it was computed now.
    """

    method: str
    order: np.ndarray
    minimal: tuple[int, ...]
    key: str
    searched: bool


@dataclass(frozen=True)
class Reveal:
    """What one stimulus shows: region ids (in the order they were revealed) and their area."""

    condition: str
    budget: float | str | None
    regions: tuple[int, ...]
    area: float
    key: str = ""


@dataclass(frozen=True)
class OrderProgress:
    """A search or method run in progress (wraps its own progress item)."""

    inner: Any
    result: RankedOrder | None = None

    @property
    def fraction(self) -> float:
        return 1.0 if self.result is not None else float(getattr(self.inner, "fraction", 0.0))

    def describe(self) -> str:
        return "done" if self.inner is None else self.inner.describe()


def iter_order(
    clf: Classifier,
    view: np.ndarray,
    labels: np.ndarray,
    target: int,
    method: str,
    fill: str,
    runs: RunStore,
    methods_store: MethodStore,
    regions: RegionSpec | None = None,
    source: dict[str, Any] | None = None,
    seed: int = 0,
    tracked: int | None = None,
) -> Iterator[OrderProgress]:
    """The method's order for (view, labels, target) with removed pixels filled by ``fill``:
    reused from the stores when there, else computed and saved. The last item has the result.

    ``tracked`` (the class charted beside the target; it does not change the order) is part of the
    stores' keys: pass the one the Explain page and ``batch`` use (see :func:`tracked_beside`), so
    their saved runs are found."""
    if method in SEARCHED:
        config = SearchOptions(search=SEARCHED[method], fill=fill)
        key = run_key(clf.describe(), view, labels, target, tracked, config)
        if runs.has(key):
            exp = runs.load(key)
            yield OrderProgress(None, RankedOrder(method, exp.order.astype(np.int32), exp.minimal_subset, key, False))
            return
        found: Explanation | None = None
        for progress in iter_search(clf, view, labels, target, config, tracked=tracked, regions=regions, source=source):
            found = progress.result
            if found is None:
                yield OrderProgress(progress)
        assert found is not None
        exp = found
        runs.save(exp, key)
        yield OrderProgress(None, RankedOrder(method, exp.order.astype(np.int32), exp.minimal_subset, key, True))
        return
    subject = Subject(clf, view, labels, target, fill, seed)
    options = resolve_options(method)
    key = f"{subject_key(clf, view, labels, target, tracked, fill)}/{method_key(method, options, seed)}"
    searched = methods_store.get(*key.split("/")) is None
    for step in iter_method(subject, method, options, tracked, methods_store=methods_store):
        if step.result is None:
            yield OrderProgress(step)
            continue
        r = step.result
        yield OrderProgress(None, RankedOrder(method, r.ranking.order, r.score.minimal_subset, key, searched))


def prefix_length(labels: np.ndarray, order: np.ndarray, budget: float) -> int:
    """The number of leading regions of ``order`` whose area is closest to ``budget`` (ties: fewer)."""
    area = metrics.cumulative_area(labels, order)
    return int(np.argmin(np.abs(area - budget)))


def ranked_reveal(labels: np.ndarray, ranked: RankedOrder, budget: float | str) -> Reveal:
    """A ranked method's stimulus at ``budget`` (a fraction, or ``"minimal"``)."""
    if budget == MINIMAL:
        regions = tuple(int(r) for r in ranked.minimal)
    else:
        regions = tuple(int(r) for r in ranked.order[: prefix_length(labels, ranked.order, float(budget))])
    return Reveal(ranked.method, budget, regions, area_of(labels, regions), ranked.key)


def area_of(labels: np.ndarray, regions: tuple[int, ...] | list[int]) -> float:
    """Fraction of the view's pixels in ``regions``."""
    areas = metrics.region_areas(labels)
    return float(areas[np.asarray(regions, np.int64)].sum()) if len(regions) else 0.0


def matched_random(
    labels: np.ndarray, target_area: float, rng: np.random.Generator, attempts: int = 32, good_enough: float = 0.005
) -> tuple[int, ...]:
    """Random regions whose total area is as close to ``target_area`` as single moves allow.

    A random permutation's prefix closest to the target, then, while it helps, the one move
    (add a region, remove one, or swap one in for one out) that brings the area closest. Up to
    ``attempts`` random starts, until one comes within ``good_enough``; the closest one wins.

    Returns:
        region ids: the kept prefix in its random order, then the regions moves added.
    """
    areas = metrics.region_areas(labels)
    best: tuple[float, list[int]] = (np.inf, [])
    for _ in range(attempts):
        chosen = _improve(areas, list(rng.permutation(len(areas))), target_area)
        gap = abs(float(areas[np.asarray(chosen, np.int64)].sum()) - target_area)
        if gap < best[0]:
            best = (gap, chosen)
        if gap <= good_enough:
            break
    return tuple(int(r) for r in best[1])


def _improve(areas: np.ndarray, perm: list[int], target_area: float) -> list[int]:
    """The prefix of ``perm`` closest to the target area, then the best single moves while they help."""
    cumulative = np.concatenate([[0.0], np.cumsum(areas[np.asarray(perm, np.int64)])])
    k = int(np.argmin(np.abs(cumulative - target_area)))
    chosen, rest = perm[:k], perm[k:]
    for _ in range(4 * len(areas)):
        a_in, a_out = areas[np.asarray(chosen, np.int64)], areas[np.asarray(rest, np.int64)]
        gap = float(a_in.sum() - target_area)
        moves = []  # (new |gap|, kind, i, j)
        if a_out.size:
            j = int(np.argmin(np.abs(gap + a_out)))
            moves.append((abs(gap + a_out[j]), "add", -1, j))
        if a_in.size:
            i = int(np.argmin(np.abs(gap - a_in)))
            moves.append((abs(gap - a_in[i]), "remove", i, -1))
        if a_in.size and a_out.size:
            swap = np.abs(gap - a_in[:, None] + a_out[None, :])
            si, sj = np.unravel_index(int(np.argmin(swap)), swap.shape)
            moves.append((float(swap[si, sj]), "swap", int(si), int(sj)))
        if not moves:
            break
        best = min(moves, key=lambda m: m[0])
        if best[0] >= abs(gap) - 1e-12:
            break
        _, kind, i, j = best
        if kind in ("remove", "swap"):
            rest.append(chosen.pop(i))
        if kind in ("add", "swap"):
            chosen.append(rest.pop(j))
    return chosen


def random_reveal(
    labels: np.ndarray, target_area: float, budget: float | str, rng: np.random.Generator, key: str = ""
) -> Reveal:
    regions = matched_random(labels, target_area, rng)
    return Reveal(AREA_MATCHED_RANDOM, budget, regions, area_of(labels, regions), key)


def full_reveal(labels: np.ndarray) -> Reveal:
    """The "no explanation" stimulus: the whole view (no region is singled out)."""
    return Reveal(NO_EXPLANATION, None, (), 1.0)


def reveal_mask(labels: np.ndarray, reveal: Reveal) -> np.ndarray:
    """S×S bool: the pixels a stimulus shows."""
    if reveal.condition == NO_EXPLANATION:
        return np.ones(labels.shape, bool)
    return np.isin(labels, np.asarray(reveal.regions, np.int64))


__all__ = [
    "MATCH_TOLERANCE",
    "SEARCHED",
    "OrderProgress",
    "RankedOrder",
    "Reveal",
    "area_of",
    "full_reveal",
    "iter_order",
    "matched_random",
    "prefix_length",
    "random_reveal",
    "ranked_reveal",
    "reveal_mask",
]
