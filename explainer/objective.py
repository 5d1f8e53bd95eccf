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
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from explainer.errors import SearchError
from explainer.options import Options, option

TERMS = ("consistency", "collaboration", "confidence", "effectiveness")
ENTROPY_EPS = 1e-7
WEIGHT_RANGE = (0.0, 1000.0)  # one rule for the API, the CLI and the UI


def _weight(default: float, help: str) -> Any:
    return option(default, low=WEIGHT_RANGE[0], high=WEIGHT_RANGE[1], step=0.01, help=help)


@dataclass(frozen=True)
class Weights(Options):
    """The λ weights by term name. Defaults: the reference's single-modal setting (20, 5, 0.01, 0)."""

    error = SearchError
    what = "weight"
    name_format = "The weight of {name}"
    unknown_format = "Unknown objective term {names}; the terms are {valid}."

    consistency: float = _weight(20.0, "λ of p(target | only the subset shown).")
    collaboration: float = _weight(5.0, "λ of 1 − p(target | the subset removed).")
    confidence: float = _weight(0.01, "λ of 1 − the normalised entropy of the subset image's prediction.")
    effectiveness: float = _weight(
        0.0, "λ of the diversity of the subset's region embeddings (needs a model that offers embeddings)."
    )


DEFAULT_WEIGHTS = Weights().to_dict()


def normalise_weights(weights: Weights | Mapping[str, float] | None) -> Weights:
    """Complete ``weights`` with the defaults and check the names and values.

    Raises:
        SearchError: an unknown term name, or a weight that is not a number in WEIGHT_RANGE
            (a negative weight would turn a term into a penalty the method does not define).
    """
    if isinstance(weights, Weights):
        return weights
    return Weights.from_mapping(weights or {})


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
    np.fill_diagonal(d_bb, np.inf)  # min over j != i
    nearest_in_base = d_bb.min(axis=1)  # |base|; inf when |base| = 1
    d_bc = distances[np.ix_(base_idx, candidates)]  # |base| × C
    base_part = np.minimum(nearest_in_base[:, None], d_bc).sum(axis=0)
    return base_part + d_bc.min(axis=0)


@dataclass(frozen=True)
class TermValues:
    """The four terms (and F) for a batch of candidate subsets; each a length-C float64 array."""

    consistency: np.ndarray
    collaboration: np.ndarray
    confidence: np.ndarray
    effectiveness: np.ndarray

    def objective(self, weights: Weights, effectiveness: np.ndarray | None = None) -> np.ndarray:
        """F = Σ λ·term; ``effectiveness`` overrides the stored one (the backward pre-screen uses
        the effectiveness of the removal set instead)."""
        eff = self.effectiveness if effectiveness is None else effectiveness
        return (
            weights.consistency * self.consistency
            + weights.collaboration * self.collaboration
            + weights.confidence * self.confidence
            + weights.effectiveness * eff
        )

    def pick(self, i: int) -> dict[str, float]:
        return {name: float(getattr(self, name)[i]) for name in TERMS}


def term_values(
    probs_kept: torch.Tensor, probs_removed: torch.Tensor, target: int, effectiveness: np.ndarray
) -> TermValues:
    """Terms from the probabilities of the subset images and of their complements (C×K each)."""
    return TermValues(
        consistency=probs_kept[:, target].double().cpu().numpy(),
        collaboration=1.0 - probs_removed[:, target].double().cpu().numpy(),
        confidence=confidence(probs_kept).double().cpu().numpy(),
        effectiveness=np.asarray(effectiveness, dtype=np.float64),
    )
