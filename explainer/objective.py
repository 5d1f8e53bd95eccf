"""The LiMA submodular objective: four named terms and their weights.

For a region subset S, a target class t and the class distribution p(·) of the classifier:

* consistency    p(x_S)[t]                      (only S visible)
* collaboration  1 − p(x_∖S)[t]                 (S removed)
* confidence     1 − H(p(x_S)) / log K,  H(p) = −Σ p log(p + 1e−7)
* effectiveness  Σ_{i∈S} min_{j∈S, j≠i} d_ij,  d_ij = arccos(ĝ_i·ĝ_j)/π, 0 when |S| ≤ 1

F(S) = λ_cons·consistency + λ_colla·collaboration + λ_conf·confidence + λ_eff·effectiveness.
Weights are always named, never positional (the reference code's CLIs order them differently).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import numpy as np
import torch

TERMS = ("consistency", "collaboration", "confidence", "effectiveness")
# The reference's single-modal classifier setting (paper order: cons, colla, conf).
DEFAULT_WEIGHTS = {"consistency": 20.0, "collaboration": 5.0, "confidence": 0.01, "effectiveness": 0.0}
ENTROPY_EPS = 1e-7


WEIGHT_RANGE = (0.0, 1000.0)   # one rule for the API, the CLI and the UI


def normalise_weights(weights: Mapping[str, float] | None) -> dict[str, float]:
    """Complete ``weights`` with the defaults and check the names and values.

    Raises:
        ValueError: an unknown term name, or a weight that is not a number in WEIGHT_RANGE
            (a negative weight would turn a term into a penalty the method does not define).
    """
    merged = dict(DEFAULT_WEIGHTS)
    for name, value in (weights or {}).items():
        if name not in TERMS:
            raise ValueError(f"Unknown objective term {name!r}; the terms are {', '.join(TERMS)}.")
        if isinstance(value, bool):
            raise ValueError(f"The weight of {name} must be a number, got {value!r}.")
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"The weight of {name} must be a number, got {value!r}.") from None
        if not math.isfinite(value):
            raise ValueError(f"The weight of {name} must be finite, got {value}.")
        low, high = WEIGHT_RANGE
        if not low <= value <= high:
            raise ValueError(f"The weight of {name} must be between {low:g} and {high:g}, got {value:g}.")
        merged[name] = value
    return merged


def confidence(probs: torch.Tensor) -> torch.Tensor:
    """1 − normalised entropy of each row of a B×K probability matrix; returns B values in [0, 1]."""
    entropy = -(probs * torch.log(probs + ENTROPY_EPS)).sum(dim=1)
    return 1.0 - entropy / math.log(probs.shape[1])


def distance_matrix(embeddings: torch.Tensor) -> np.ndarray:
    """Pairwise angular distances arccos(ĝ_i·ĝ_j)/π in [0, 1] of N×D embeddings; N×N float64."""
    g = torch.nn.functional.normalize(embeddings.double(), dim=1)
    return (torch.arccos((g @ g.T).clamp(-1.0, 1.0)) / math.pi).cpu().numpy()


def effectiveness_with(distances: np.ndarray, base: list[int], candidates: np.ndarray) -> np.ndarray:
    """Effectiveness of ``base ∪ {c}`` for every candidate c (c not in base).

    Args:
        distances: N×N angular distances.
        base: the region ids already in the set.
        candidates: C region ids.

    Returns:
        C float64 values: Σ_{i∈T} min_{j∈T, j≠i} d_ij with T = base ∪ {c}; 0 when |T| = 1.
    """
    candidates = np.asarray(candidates, dtype=np.int64)
    if not base:
        return np.zeros(len(candidates))
    base_idx = np.asarray(base, dtype=np.int64)
    d_bb = distances[np.ix_(base_idx, base_idx)].copy()
    np.fill_diagonal(d_bb, np.inf)                                  # min over j != i
    nearest_in_base = d_bb.min(axis=1)                              # |base|; inf when |base| = 1
    d_bc = distances[np.ix_(base_idx, candidates)]                                     # |base| × C
    base_part = np.minimum(nearest_in_base[:, None], d_bc).sum(axis=0)
    return base_part + d_bc.min(axis=0)


@dataclass(frozen=True)
class TermValues:
    """The four terms (and F) for a batch of candidate subsets; each a length-C float64 array."""

    consistency: np.ndarray
    collaboration: np.ndarray
    confidence: np.ndarray
    effectiveness: np.ndarray

    def objective(self, weights: Mapping[str, float], effectiveness: np.ndarray | None = None) -> np.ndarray:
        """F = Σ λ·term; ``effectiveness`` overrides the stored one (the backward pre-screen uses
        the effectiveness of the removal set instead)."""
        eff = self.effectiveness if effectiveness is None else effectiveness
        return (weights["consistency"] * self.consistency + weights["collaboration"] * self.collaboration
                + weights["confidence"] * self.confidence + weights["effectiveness"] * eff)

    def pick(self, i: int) -> dict[str, float]:
        return {name: float(getattr(self, name)[i]) for name in TERMS}


def term_values(probs_kept: torch.Tensor, probs_removed: torch.Tensor, target: int,
                effectiveness: np.ndarray) -> TermValues:
    """Terms from the probabilities of the subset images and of their complements (C×K each)."""
    return TermValues(
        consistency=probs_kept[:, target].double().cpu().numpy(),
        collaboration=1.0 - probs_removed[:, target].double().cpu().numpy(),
        confidence=confidence(probs_kept).double().cpu().numpy(),
        effectiveness=np.asarray(effectiveness, dtype=np.float64),
    )
