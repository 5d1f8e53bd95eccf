"""The result of one LiMA run: everything the UI, exports and metrics need, frozen.

An :class:`Explanation` carries its own view and label map, so any figure can be drawn from it
alone, and the class probabilities of every prefix of the ranking along both paths, so the
curve of any class (the target, the tracked class, or another) is available without
recomputation.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from explainer import metrics
from explainer.config import SearchOptions
from explainer.objective import TERMS
from explainer.regions import RegionSpec

LOG_FIELDS = ("direction", "region", "position", "candidates", "objective") + TERMS


@dataclass(frozen=True)
class SearchLog:
    """One entry per search step that evaluated candidates, in the order they ran.

    Attributes:
        direction: "forward" (a region added to the front) or "backward" (to the tail).
        region: the region id chosen at that step.
        position: the ranking position it took (1..N); its prefix is the first ``position``
            regions of the order.
        candidates: how many candidates the step compared.
        objective: F of the chosen candidate (forward: maximised over S+c; backward: minimised
            over the removal set D+c).
        consistency, collaboration, confidence, effectiveness: the chosen candidate's terms as
            the step computed them (backward steps: on the removal set D+c, as in the reference).
    """

    direction: np.ndarray
    region: np.ndarray
    position: np.ndarray
    candidates: np.ndarray
    objective: np.ndarray
    consistency: np.ndarray
    collaboration: np.ndarray
    confidence: np.ndarray
    effectiveness: np.ndarray

    @classmethod
    def from_rows(cls, rows: list[dict]) -> SearchLog:
        dtypes: dict[str, Any] = {"direction": "<U8", "region": np.int32, "position": np.int32, "candidates": np.int32}
        return cls(**{k: np.array([r[k] for r in rows], dtype=dtypes.get(k, np.float64)) for k in LOG_FIELDS})

    def __len__(self) -> int:
        return len(self.region)

    def row(self, i: int) -> dict:
        return {k: getattr(self, k)[i].item() for k in LOG_FIELDS}

    def where(self, direction: str) -> np.ndarray:
        return np.flatnonzero(self.direction == direction)


@dataclass(frozen=True)
class Explanation:
    """A finished LiMA run.

    Attributes:
        view: S×S×3 uint8 RGB, what the model saw.
        labels: S×S int32 label map, ids 0..N-1.
        order: N int32 region ids, most important first.
        area: N+1 float64 revealed area fraction after 0..N regions.
        insertion_probs: (N+1)×K float32; row i = p(· | only the first i regions shown).
        deletion_probs: (N+1)×K float32; row i = p(· | the first i regions removed).
        target: the class the search optimised.
        tracked: a second class followed on the same path (e.g. the wrong prediction), or None.
        class_names: the K class names.
        log: the search steps (:class:`SearchLog`).
        config: the search settings (:class:`SearchOptions`; a dict is converted).
        regions: how the label map was made (:class:`RegionSpec`; a dict is converted).
        model: classifier provenance (id, weights hash, preprocessing, device).
        source: image provenance (name, digest, true label), filled by the caller.
        batch_size: images per forward pass when it ran (runtime, not part of the config).
        forward_passes: model images evaluated, all included.
        wall_time_s: seconds from start to result; device: where it ran; created: ISO time;
        versions: library versions.
    """

    view: np.ndarray
    labels: np.ndarray
    order: np.ndarray
    area: np.ndarray
    insertion_probs: np.ndarray
    deletion_probs: np.ndarray
    target: int
    tracked: int | None
    class_names: tuple[str, ...]
    log: SearchLog
    config: SearchOptions
    regions: RegionSpec = field(default_factory=lambda: RegionSpec("unknown"))
    model: dict = field(default_factory=dict)
    source: dict = field(default_factory=dict)
    batch_size: int = 0
    forward_passes: int = 0
    wall_time_s: float = 0.0
    device: str = "cpu"
    created: str = ""
    versions: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.config, SearchOptions):  # a saved or hand-made dict
            config: Any = dict(self.config)
            object.__setattr__(self, "batch_size", self.batch_size or int(config.get("batch_size") or 0))
            object.__setattr__(self, "config", SearchOptions.from_saved(config))
        if not isinstance(self.regions, RegionSpec):
            object.__setattr__(self, "regions", RegionSpec.from_dict(self.regions))
        for obj in (self, self.log):  # frozen means frozen: arrays too
            for f in fields(obj):
                value = getattr(obj, f.name)
                if isinstance(value, np.ndarray):
                    value.setflags(write=False)

    # -- sizes and curves ---------------------------------------------------------------------
    @property
    def n_regions(self) -> int:
        return int(len(self.order))

    @property
    def size(self) -> int:
        return int(self.view.shape[0])

    def curve(self, cls: int, path: str = "insertion") -> np.ndarray:
        """p(cls) along the path: N+1 float64 values ("insertion" or "deletion")."""
        probs = self.insertion_probs if path == "insertion" else self.deletion_probs
        return probs[:, cls].astype(np.float64)

    @property
    def insertion(self) -> np.ndarray:
        """N+1 values: p(target | first i regions shown); [0] = black image, [N] = full image."""
        return self.curve(self.target, "insertion")

    @property
    def deletion(self) -> np.ndarray:
        """N+1 values: p(target | first i regions removed); [0] = full image, [N] = black."""
        return self.curve(self.target, "deletion")

    @property
    def tracked_insertion(self) -> np.ndarray | None:
        return None if self.tracked is None else self.curve(self.tracked, "insertion")

    @property
    def tracked_deletion(self) -> np.ndarray | None:
        return None if self.tracked is None else self.curve(self.tracked, "deletion")

    @property
    def steps(self) -> np.ndarray:
        """The uniform step axis i/N."""
        return metrics.step_axis(self.n_regions)

    # -- metrics ------------------------------------------------------------------------------
    @property
    def insertion_auc(self) -> float:
        """Insertion AUC on the revealed-area axis (higher is better)."""
        return metrics.auc(self.area, self.insertion)

    @property
    def deletion_auc(self) -> float:
        """Deletion AUC on the removed-area axis (lower is better)."""
        return metrics.auc(self.area, self.deletion)

    @property
    def insertion_auc_steps(self) -> float:
        return metrics.auc(self.steps, self.insertion)

    @property
    def deletion_auc_steps(self) -> float:
        return metrics.auc(self.steps, self.deletion)

    @property
    def tolerance(self) -> float:
        return float(self.config.tolerance)

    @property
    def minimal_subset_size(self) -> int:
        """k*: the shortest prefix within the tolerance of the insertion curve's maximum."""
        return metrics.minimal_subset_size(self.insertion, self.tolerance)

    @property
    def minimal_subset(self) -> tuple[int, ...]:
        """The region ids of the minimal interpretable subset, in ranking order."""
        return tuple(int(r) for r in self.order[: self.minimal_subset_size])

    def budget_scores(self, budgets=metrics.BUDGETS) -> list[metrics.BudgetScore]:
        """Highest target probability within 25/50/75/100 % of the area, and where it is reached."""
        return metrics.budget_scores(self.insertion, self.area, budgets)

    # -- per-step readouts --------------------------------------------------------------------
    def top_classes(self, step: int, k: int = 5, path: str = "insertion") -> list[tuple[int, str, float]]:
        """The k most probable classes with the first ``step`` regions shown (or removed)."""
        probs = (self.insertion_probs if path == "insertion" else self.deletion_probs)[step]
        idx = np.argsort(-probs, kind="stable")[:k]
        return [(int(i), self.class_names[i], float(probs[i])) for i in idx]

    def prediction_at(self, step: int) -> int:
        """The model's top-1 class with the first ``step`` regions shown."""
        return int(np.argmax(self.insertion_probs[step]))

    def step_entry(self, step: int) -> dict | None:
        """The search-log row of the step that placed ``order[step-1]`` (None for step 0 or for
        the last forward region, which the search appends without evaluating it)."""
        hits = np.flatnonzero(self.log.position == step)
        return self.log.row(int(hits[0])) if step >= 1 and hits.size else None

    def marginal_gains(self, cls: int | None = None) -> np.ndarray:
        """Per ranking position i (1..N): p(cls | first i) − p(cls | first i−1); N float64."""
        return np.diff(self.curve(self.target if cls is None else cls))

    def class_name(self, cls: int | None) -> str:
        return "" if cls is None else self.class_names[cls]

    def readout(self) -> str:
        """One sentence on the minimal subset, true in every case, e.g. "4 regions (11 % of the
        image) raise p(tabby) from 0.17 (full image) to 0.71; with only them the model would
        predict tabby instead of tiger cat." The last clause compares the subset's top-1 class
        with the full image's: "would still predict X" when they agree, "would predict X instead
        of Y" when they differ."""
        k, n = self.minimal_subset_size, self.n_regions
        name, ins = self.class_name(self.target), self.insertion
        full, best = ins[-1], ins[k]
        if k >= n:
            return (
                f"No subset of the {n} regions does better than the full image: p({name}) is highest "
                f"({best:.2f}) with every region shown."
            )
        pred, full_pred = self.prediction_at(k), self.full_prediction
        one = k == 1
        then = f"with only {'it' if one else 'them'} the model would " + (
            f"still predict {self.class_names[pred]}"
            if pred == full_pred
            else f"predict {self.class_names[pred]} instead of {self.class_names[full_pred]}"
        )
        share = f"{k} {'region' if one else 'regions'} ({100 * self.area[k]:.0f} % of the image)"
        if best > full + self.tolerance:
            return (
                f"{share} {'raises' if one else 'raise'} p({name}) from {full:.2f} (full image) to {best:.2f}; {then}."
            )
        return (
            f"{share} already {'gives' if one else 'give'} p({name}) = {best:.2f}, as much as the full image "
            f"({full:.2f}); {then}."
        )

    @property
    def full_prediction(self) -> int:
        """The model's top-1 class on the full view."""
        return int(np.argmax(self.insertion_probs[-1]))

    @property
    def is_mistake(self) -> bool | None:
        """Whether the full view is misclassified with respect to ``source['label']`` (None if unknown)."""
        label = self.source.get("label")
        return None if label is None else self.full_prediction != int(label)
