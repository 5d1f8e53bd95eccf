"""What-if by hand: ask the model about any subset of a run's regions, and find a "flip".

An analyst who wonders "what if the sky were gone?" hides regions and asks the model again.
Every answer here is a real forward pass on the composed image (the run's view with the hidden
regions filled exactly as the search filled them), never an interpolation of the curves.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from explainer.compose import Composer
from explainer.errors import LabelError
from explainer.explanation import Explanation


@dataclass(frozen=True)
class Scored:
    """The model's answer for one subset of regions.

    Attributes:
        shown: the region ids left visible (sorted).
        probs: C float64 probabilities, summing to 1.
        area: visible share of the image, in [0, 1].
    """

    shown: tuple[int, ...]
    probs: np.ndarray
    area: float

    @property
    def prediction(self) -> int:
        return int(np.argmax(self.probs))

    def top(self, names: tuple[str, ...], k: int = 5) -> list[tuple[int, str, float]]:
        idx = np.argsort(-self.probs, kind="stable")[:k]
        return [(int(i), names[i], float(self.probs[i])) for i in idx]


def _indicators(subsets: Sequence[Iterable[int]], n: int) -> torch.Tensor:
    rows = torch.zeros((len(subsets), n), dtype=torch.bool)
    for i, shown in enumerate(subsets):
        ids = [int(r) for r in shown]
        if any(not 0 <= r < n for r in ids):
            raise LabelError(f"region ids must be in 0..{n - 1}, got {sorted(ids)}")
        rows[i, ids] = True
    return rows


def score_subsets(clf, view: np.ndarray, labels: np.ndarray, subsets: Sequence[Iterable[int]], fill: str = "black"):
    """Score each subset of visible regions with one batched forward pass.

    Args:
        clf: a :class:`~explainer.models.Classifier`.
        view: S×S×3 uint8, the model's view.
        labels: S×S int label map with ids 0..N-1.
        subsets: each an iterable of region ids to keep visible (the rest are filled).
        fill: how hidden pixels are filled ("black", "mean", "blur"; the run's own fill).

    Returns:
        one :class:`Scored` per subset, in order.
    """
    n = int(labels.max()) + 1
    rows = _indicators(subsets, n)
    composer = Composer(view, labels, clf.device, fill, clf.input_layout)
    sizes = np.bincount(labels.reshape(-1), minlength=n) / labels.size

    def score(s: slice) -> torch.Tensor:
        return clf.probs(composer.images(rows[s].to(clf.device)), scratch=True)

    with torch.inference_mode():
        chunks = [p.float().cpu() for p in clf.map_batches(score, len(subsets))]
    probs = torch.cat(chunks).numpy().astype(np.float64)
    return [
        Scored(
            tuple(sorted(int(r) for r in np.flatnonzero(rows[i].numpy()))),
            probs[i],
            float(sizes[rows[i].numpy()].sum()),
        )
        for i in range(len(subsets))
    ]


def score_subset(clf, exp: Explanation, shown: Iterable[int]) -> Scored:
    """One forward pass: the model's answer with only ``shown`` visible on ``exp``'s view."""
    return score_subsets(clf, exp.view, exp.labels, [list(shown)], exp.config.fill)[0]


@dataclass(frozen=True)
class Flip:
    """The fewest regions, taken along LiMA's order, whose removal makes the model predict ``want``.

    Attributes:
        want: the class asked for.
        removed: the region ids removed, or () when no run along the order flips the prediction.
        end: "head" (LiMA's top regions removed first) or "tail" (its last regions first: the
            ones the backward search found working against the target), or "" when not found.
        scored: the verifying forward pass on the image without them (None when not found).
    """

    want: int
    removed: tuple[int, ...]
    end: str
    scored: Scored | None

    @property
    def found(self) -> bool:
        return self.scored is not None


def flip(clf, exp: Explanation, want: int | None = None) -> Flip:
    """The fewest regions to remove so that the model predicts ``want`` (default: the image's
    true class when it is known and differs from the prediction, else the runner-up class).

    Two walks along LiMA's order are tried: removing its top regions first (the evidence for
    the target goes) and removing its last regions first (the regions that work against the
    target go). All 2·(N−1) candidates are scored in one batch; the smallest removal that flips
    the prediction wins (ties: the head walk) and is verified with its own forward pass.
    """
    if want is None:
        label = exp.source.get("label")
        full = exp.full_prediction
        if label is not None and int(label) != full:
            want = int(label)
        else:
            want = int(np.argsort(-exp.insertion_probs[-1], kind="stable")[1])
    if not 0 <= want < len(exp.class_names):
        raise LabelError(f"class {want} is not one of the model's {len(exp.class_names)} classes")
    n, order = exp.n_regions, [int(r) for r in exp.order]
    walks = {"head": order, "tail": order[::-1]}
    candidates = [(end, k) for k in range(1, n) for end in walks]  # by size, head first; one region stays
    subsets = [sorted(set(order) - set(walks[end][:k])) for end, k in candidates]
    for (end, k), scored in zip(candidates, score_subsets(clf, exp.view, exp.labels, subsets, exp.config.fill)):
        if scored.prediction == want:
            return Flip(want, tuple(walks[end][:k]), end, score_subset(clf, exp, scored.shown))
    return Flip(want, (), "", None)
