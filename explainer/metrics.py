"""Faithfulness metrics on a region path: AUCs, the minimal interpretable subset, budgets.

All curves here have N+1 points: index i is the score with the first i regions of the ranking
revealed (insertion) or removed (deletion), so index 0 is the empty (black) image for insertion
and the full image for deletion. The x axis is the revealed (or removed) area fraction, as in
the reference evaluator, or the step fraction i/N.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MINIMAL_TOLERANCE = 0.005
BUDGETS = (0.25, 0.5, 0.75, 1.0)


def auc(x: np.ndarray, y: np.ndarray) -> float:
    """Trapezoidal area under y(x); x must be non-decreasing."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"x and y must be 1-D of equal length, got {x.shape} and {y.shape}.")
    if np.any(np.diff(x) < 0):
        raise ValueError("x must be non-decreasing.")
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2.0))


def region_areas(labels: np.ndarray) -> np.ndarray:
    """Fraction of the view covered by each region id 0..N-1; float64, sums to 1."""
    counts = np.bincount(np.asarray(labels).ravel())
    return counts / counts.sum()


def cumulative_area(labels: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Area fraction revealed after 0..N regions of ``order``: N+1 values from 0 to 1.

    Computed from the label map (pixel counts), so black pixels count like any other; the
    reference evaluator's non-zero-pixel test under-counts them.
    """
    areas = region_areas(labels)[np.asarray(order, dtype=np.int64)]
    return np.concatenate([[0.0], np.cumsum(areas)]).clip(0.0, 1.0)


def step_axis(n_regions: int) -> np.ndarray:
    """The uniform step axis i/N, i = 0..N."""
    return np.arange(n_regions + 1) / max(n_regions, 1)


def minimal_subset_size(curve: np.ndarray, tolerance: float = MINIMAL_TOLERANCE) -> int:
    """k* = the shortest prefix whose insertion score is within ``tolerance`` of the maximum.

    Args:
        curve: N+1 insertion scores (index 0 = empty image, which is not a candidate).
        tolerance: absolute tolerance in probability units, >= 0.

    Returns:
        k* in 1..N (0 only for a curve with no regions).
    """
    scores = np.asarray(curve, np.float64)[1:]
    if scores.size == 0:
        return 0
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance}.")
    return int(np.argmax(scores >= scores.max() - tolerance)) + 1


@dataclass(frozen=True)
class BudgetScore:
    """Highest target probability on the insertion path within an area budget.

    ``highest`` and ``area`` are None when even the first region exceeds the budget (the
    reference evaluator skips such an image for that budget).
    """

    budget: float
    highest: float | None
    area: float | None
    regions: int | None

    def to_dict(self) -> dict:
        return {"budget": self.budget, "highest": self.highest, "area": self.area, "regions": self.regions}


def budget_scores(curve: np.ndarray, area: np.ndarray, budgets=BUDGETS) -> list[BudgetScore]:
    """The paper's mistake metric: for each budget β, the highest score among prefixes whose
    area is at most β, and the area (and region count) of the first prefix reaching it.

    Args:
        curve: N+1 insertion scores; area: N+1 cumulative area fractions (index 0 = 0).
    """
    scores, areas = np.asarray(curve, np.float64)[1:], np.asarray(area, np.float64)[1:]
    out = []
    for beta in budgets:
        within = np.flatnonzero(areas <= beta + 1e-12)
        if within.size == 0:
            out.append(BudgetScore(float(beta), None, None, None))
            continue
        n = int(within[-1]) + 1  # areas are cumulative, so "within" is a prefix
        best = int(np.argmax(scores[:n]))
        out.append(BudgetScore(float(beta), float(scores[best]), float(areas[best]), best + 1))
    return out
