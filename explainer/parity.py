"""Parity of two explanations of the same inputs (e.g. PyTorch against ONNX Runtime).

Two runs of the same search on the same view, label map, target and settings, with two
classifiers that differ only in float noise (max |Δ logit| ≤ 1e-4), should give the same region
order and curves within about 1e-4. Where the orders differ, the difference is explained by a
near-tie: at the first position k where they differ, the two candidates a and b (each run's
choice) are re-scored with *both* classifiers on the same set, ``F(order[:k] ∪ {a})`` and
``F(order[:k] ∪ {b})`` (the objective's probability terms; :mod:`explainer.objective`). When
their gap is within ``tie`` (1e-3 by default, on an objective of scale ~25) under both
classifiers, the two choices are equally good up to float noise and the difference is a
near-tie, not a bug.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from explainer.compose import Composer
from explainer.explanation import Explanation
from explainer.models.classifier import Classifier
from explainer.objective import term_values

NEAR_TIE = 1e-3  # an objective gap this small is float noise (F is ~25 at most with the default λ)
CURVE_TOLERANCE = 1e-4


@dataclass(frozen=True)
class Divergence:
    """The first position where two orders differ, re-scored with both classifiers.

    Attributes:
        position: k, the first index where the orders differ.
        candidates: (a, b), the region each run put at k.
        objective_a, objective_b: F(order[:k] ∪ {a}) and F(order[:k] ∪ {b}) under each classifier
            (a dict by classifier name -> value).
        gap: the largest |F(a) − F(b)| over the two classifiers.
    """

    position: int
    candidates: tuple[int, int]
    objective_a: dict[str, float]
    objective_b: dict[str, float]
    gap: float


@dataclass(frozen=True)
class ParityReport:
    """How two explanations of the same inputs compare.

    Attributes:
        same_order: the region orders are equal.
        max_curve_difference: max |Δ p| over both curves (all classes), where the orders agree up to
            that point (the curves of differing orders are compared only on the shared prefix).
        divergence: where the orders first differ (None when they are equal).
        near_tie: the divergence is a near-tie (gap ≤ ``tie``); True when the orders are equal.
        note: one sentence for a report.
    """

    same_order: bool
    max_curve_difference: float
    divergence: Divergence | None
    near_tie: bool
    note: str

    def to_dict(self) -> dict:
        return asdict(self)


def _objective(clf: Classifier, exp: Explanation, sets: torch.Tensor) -> np.ndarray:
    composer = Composer(exp.view, exp.labels, clf.device, exp.config.fill, clf.input_layout)
    with torch.inference_mode():
        kept = clf.probs(composer.images(sets), scratch=True)
        removed = clf.probs(composer.images(sets, complement=True), scratch=True)
    terms = term_values(kept, removed, exp.target, np.zeros(len(sets)))
    return terms.objective(exp.config.weights)


def compare(
    a: Explanation,
    b: Explanation,
    clf_a: Classifier,
    clf_b: Classifier,
    names: tuple[str, str] = ("a", "b"),
    tie: float = NEAR_TIE,
) -> ParityReport:
    """Compare two explanations of the same inputs made with ``clf_a`` and ``clf_b``.

    Raises:
        ValueError: the explanations are not of the same view, label map and target.
    """
    if a.view.shape != b.view.shape or not np.array_equal(a.labels, b.labels) or a.target != b.target:
        raise ValueError("parity compares explanations of the same view, label map and target")
    order_a, order_b = np.asarray(a.order), np.asarray(b.order)
    differs = np.nonzero(order_a != order_b)[0]
    k = int(differs[0]) if len(differs) else len(order_a)
    shared = k + 1  # curve rows 0..k show the same sets
    curve = max(
        float(np.abs(a.insertion_probs[:shared] - b.insertion_probs[:shared]).max()),
        float(np.abs(a.deletion_probs[:shared] - b.deletion_probs[:shared]).max()),
    )
    if not len(differs):
        note = f"same order; curves within {curve:.1e}"
        return ParityReport(True, curve, None, True, note)
    n = len(order_a)
    sets = torch.zeros(2, n, dtype=torch.bool)
    sets[:, order_a[:k].tolist()] = True
    ca, cb = int(order_a[k]), int(order_b[k])
    sets[0, ca], sets[1, cb] = True, True
    objective_a, objective_b = {}, {}
    for name, clf in zip(names, (clf_a, clf_b)):
        values = _objective(clf, a, sets.to(clf.device))
        objective_a[name], objective_b[name] = float(values[0]), float(values[1])
    gap = max(abs(objective_a[x] - objective_b[x]) for x in names)
    weights = a.config.weights
    near = gap <= tie and weights.effectiveness == 0.0  # the effectiveness term is not re-scored here
    divergence = Divergence(k, (ca, cb), objective_a, objective_b, gap)
    note = (
        f"orders differ from position {k} (regions {ca} vs {cb}): "
        f"{'a near-tie' if near else 'NOT a near-tie'}, objective gap {gap:.1e} (tie ≤ {tie:g}); "
        f"curves within {curve:.1e} up to there"
    )
    return ParityReport(False, curve, divergence, near, note)


__all__ = ["CURVE_TOLERANCE", "NEAR_TIE", "Divergence", "ParityReport", "compare"]
