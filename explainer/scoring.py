"""One scoring protocol for every region order: insertion and deletion along the region path.

Given an order of the N regions, the model scores every prefix twice: the image showing only
the first i regions (insertion, i = 0..N, from the fill image to the full view) and the image with
the first i regions removed (deletion). The curves are on the revealed-area axis, as LiMA's; the
metrics are the ones of :mod:`explainer.metrics` (AUCs, the highest confidence within 25/50/75/100 %
of the area, the minimal subset). LiMA's own order is scored by this same code, so a comparison
cannot be unfair by construction (and its curves equal the search's own, a test checks).

Cost: 2(N + 1) model images, composed on the device in batches.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from explainer import metrics
from explainer.compose import Composer
from explainer.models import Classifier

BUDGET_KEYS = tuple(f"{b:g}" if b < 1 else "1.0" for b in metrics.BUDGETS)  # "0.25", "0.5", "0.75", "1.0"


@dataclass(frozen=True)
class Scorecard:
    """How well an order explains the target, by the one protocol.

    Attributes:
        order: N int32 region ids.
        area: N+1 revealed area fractions (index 0 = nothing shown).
        insertion, deletion: N+1 p(target) along the two paths.
        tracked_insertion, tracked_deletion: the same for a second class, or None.
        insertion_auc (higher is better), deletion_auc (lower is better): on the area axis.
        highest_confidence: budget key ("0.25", "0.5", "0.75", "1.0") -> the highest p(target)
            among prefixes within that share of the area (None when even one region is larger).
        highest_area: budget key -> the area of the first prefix reaching it.
        minimal_subset: the shortest prefix within ``tolerance`` of the insertion maximum.
        scoring_passes: model images the scoring itself spent (not the method's cost).
    """

    order: np.ndarray
    area: np.ndarray
    insertion: np.ndarray
    deletion: np.ndarray
    tracked_insertion: np.ndarray | None
    tracked_deletion: np.ndarray | None
    insertion_auc: float
    deletion_auc: float
    highest_confidence: dict[str, float | None]
    highest_area: dict[str, float | None]
    minimal_subset: tuple[int, ...]
    scoring_passes: int
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def minimal_subset_area(self) -> float:
        return float(self.area[len(self.minimal_subset)])

    def to_dict(self) -> dict[str, Any]:
        """JSON-able (arrays as lists)."""

        def listed(a: np.ndarray | None) -> list | None:
            return None if a is None else np.asarray(a).tolist()

        return {
            "order": listed(self.order),
            "area": listed(self.area),
            "insertion": listed(self.insertion),
            "deletion": listed(self.deletion),
            "tracked_insertion": listed(self.tracked_insertion),
            "tracked_deletion": listed(self.tracked_deletion),
            "insertion_auc": self.insertion_auc,
            "deletion_auc": self.deletion_auc,
            "highest_confidence": dict(self.highest_confidence),
            "highest_area": dict(self.highest_area),
            "minimal_subset": list(self.minimal_subset),
            "minimal_subset_area": self.minimal_subset_area,
            "scoring_passes": self.scoring_passes,
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> Scorecard:
        def array(key: str, dtype: Any = np.float64) -> np.ndarray | None:
            return None if doc.get(key) is None else np.asarray(doc[key], dtype)

        return cls(
            order=np.asarray(doc["order"], np.int32),
            area=np.asarray(doc["area"], np.float64),
            insertion=np.asarray(doc["insertion"], np.float64),
            deletion=np.asarray(doc["deletion"], np.float64),
            tracked_insertion=array("tracked_insertion"),
            tracked_deletion=array("tracked_deletion"),
            insertion_auc=float(doc["insertion_auc"]),
            deletion_auc=float(doc["deletion_auc"]),
            highest_confidence=dict(doc["highest_confidence"]),
            highest_area=dict(doc["highest_area"]),
            minimal_subset=tuple(int(r) for r in doc["minimal_subset"]),
            scoring_passes=int(doc.get("scoring_passes", 0)),
        )


def prefix_sets(order: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """(N+1)×N bool: row i marks the first i regions of ``order``."""
    n = len(order)
    ranks = np.empty(n, np.int64)
    ranks[np.asarray(order, np.int64)] = np.arange(n)
    return torch.from_numpy(ranks[None, :] < np.arange(n + 1)[:, None]).to(device)


def path_probs(clf: Classifier, composer: Composer, sets: torch.Tensor, complement: bool) -> np.ndarray:
    """p(·) of the images showing (or, with ``complement``, hiding) each subset; M×K float32."""
    outs = [
        clf.probs(composer.images(sets[s], complement=complement), scratch=True).cpu()
        for s in _slices(len(sets), clf.batch_size)
    ]
    return torch.cat(outs).numpy()


def _slices(n: int, size: int) -> list[slice]:
    return [slice(i, min(n, i + size)) for i in range(0, n, max(1, size))]


def score_order(
    clf: Classifier,
    view: np.ndarray,
    labels: np.ndarray,
    order: np.ndarray,
    target: int,
    tracked: int | None = None,
    fill: str = "black",
    tolerance: float = metrics.MINIMAL_TOLERANCE,
) -> Scorecard:
    """Score ``order`` on the region path (see the module docstring).

    Args:
        clf: the classifier; view: S×S×3 uint8; labels: S×S label map with ids 0..N-1.
        order: a permutation of 0..N-1 (most important first).
        target: the class the curves follow; tracked: a second class, or None.
        fill: how removed pixels are filled (the same fill the methods used).
    """
    order = np.asarray(order, np.int32)
    n = int(labels.max()) + 1
    if sorted(order.tolist()) != list(range(n)):
        raise ValueError(f"the order must be a permutation of the {n} regions")
    composer = Composer(view, labels, clf.device, fill, clf.input_layout)
    sets = prefix_sets(order, clf.device)
    shown = path_probs(clf, composer, sets, complement=False)
    removed = path_probs(clf, composer, sets, complement=True)
    area = metrics.cumulative_area(labels, order)
    ins, dels = shown[:, target].astype(np.float64), removed[:, target].astype(np.float64)
    budgets = metrics.budget_scores(ins, area)
    return Scorecard(
        order=order,
        area=area,
        insertion=ins,
        deletion=dels,
        tracked_insertion=None if tracked is None else shown[:, tracked].astype(np.float64),
        tracked_deletion=None if tracked is None else removed[:, tracked].astype(np.float64),
        insertion_auc=metrics.auc(area, ins),
        deletion_auc=metrics.auc(area, dels),
        highest_confidence={key: b.highest for key, b in zip(BUDGET_KEYS, budgets)},
        highest_area={key: b.area for key, b in zip(BUDGET_KEYS, budgets)},
        minimal_subset=tuple(int(r) for r in order[: metrics.minimal_subset_size(ins, tolerance)]),
        scoring_passes=2 * (n + 1),
    )


__all__ = ["BUDGET_KEYS", "Scorecard", "prefix_sets", "score_order"]
