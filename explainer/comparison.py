"""Methods side by side on one subject: run each (or reuse its saved result), score each order by
the one protocol, keep the results on disk.

A subject is one (model weights, view, label map, target, tracked class, fill); its key
(:func:`subject_key`) names the folder where every method's result for it is kept, so the
dashboard, the ``evaluate`` command and a rerun all reuse finished pairs.

**Equal-cost mode**: a sampling method (RISE, LIME, KernelSHAP: ``samples_field``) gets exactly
the forward passes LiMA spent on that subject, so one can see whether LiMA wins at equal cost.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from explainer import metrics, settings, store
from explainer.errors import StoreError
from explainer.explanation import Explanation
from explainer.methods import METHODS, MethodOptions, MethodProgress, Ranking, Subject, rank_scores
from explainer.models import Classifier
from explainer.progress import eta_from_rate
from explainer.scoring import BUDGET_KEYS, Scorecard, score_order

FORMAT = "lima-lens/method-result/1"


@dataclass(frozen=True)
class MethodResult:
    """One method's ranking of one subject and its scorecard."""

    ranking: Ranking
    score: Scorecard
    subject: dict[str, Any]

    @property
    def method(self) -> str:
        return self.ranking.method

    def to_dict(self) -> dict[str, Any]:
        r = self.ranking
        return {
            "format": FORMAT,
            "method": r.method,
            "options": r.options,
            "scores": r.scores.tolist(),
            "order": r.order.tolist(),
            "forward_passes": r.forward_passes,
            "backward_passes": r.backward_passes,
            "seconds": r.seconds,
            "score": self.score.to_dict(),
            "subject": self.subject,
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> MethodResult:
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise StoreError("not a saved method result")
        ranking = Ranking(
            doc["method"],
            np.asarray(doc["scores"], np.float64),
            np.asarray(doc["order"], np.int32),
            int(doc["forward_passes"]),
            int(doc["backward_passes"]),
            float(doc["seconds"]),
            dict(doc["options"]),
        )
        return cls(ranking, Scorecard.from_dict(doc["score"]), dict(doc.get("subject", {})))


def subject_key(
    clf: Classifier, view: np.ndarray, labels: np.ndarray, target: int, tracked: int | None, fill: str
) -> str:
    """A key for everything a method's result depends on besides the method and its options."""
    blob = json.dumps(
        {
            "model": [clf.id, clf.weights_hash],
            "view": store.array_digest(view),
            "labels": store.array_digest(np.asarray(labels, np.int32)),
            "target": int(target),
            "tracked": tracked,
            "fill": fill,
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def method_key(method: str, options: MethodOptions, seed: int) -> str:
    """A file-name-safe key of a method and its resolved options."""
    digest = hashlib.sha256(json.dumps([options.to_dict(), seed], sort_keys=True, default=str).encode()).hexdigest()
    return f"{method.replace('+', 'p')}-{digest[:12]}"


class MethodStore:
    """Saved method results: ``<root>/<subject key>/<method key>.json``; the default root is the
    runs folder's ``_methods`` (everything a server keeps lives under ``LIMA_RUNS_DIR``; that
    folder holds no ``explanation.json``, so it is never taken for a run). Writes are atomic."""

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root else settings.current().runs_dir / "_methods"

    def path(self, subject: str, key: str) -> Path:
        if not (store.is_run_key(subject) and store.is_run_key(key)):
            raise StoreError(f"not a valid key: {subject!r}/{key!r}")
        return self.root / subject / f"{key}.json"

    def get(self, subject: str, key: str) -> MethodResult | None:
        try:
            return MethodResult.from_dict(json.loads(self.path(subject, key).read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError, StoreError):
            return None

    def put(self, subject: str, key: str, result: MethodResult) -> Path:
        path = self.path(subject, key)
        store.write_atomic(path, json.dumps(result.to_dict()).encode("utf-8"))
        return path

    def all(self, subject: str) -> list[MethodResult]:
        folder = self.root / subject if store.is_run_key(subject) else None
        if folder is None or not folder.is_dir():
            return []
        out = []
        for path in sorted(folder.glob("*.json")):
            try:
                out.append(MethodResult.from_dict(json.loads(path.read_text(encoding="utf-8"))))
            except (OSError, ValueError, KeyError, TypeError, StoreError):
                continue
        return out


def resolve_options(
    method: str, given: MethodOptions | Mapping[str, Any] | None = None, equal_cost_passes: int | None = None
) -> MethodOptions:
    """The method's options (defaults, a dict or an object), with equal cost applied: a sampling
    method's sample count set to ``equal_cost_passes`` (LiMA's forward passes on the subject)."""
    spec = METHODS.get(method)
    options = (
        given
        if isinstance(given, MethodOptions)
        else spec.options.from_mapping(dict(given or {}), context=f" of {method}")
    )
    if equal_cost_passes is not None and spec.samples_field:
        options = options.replace(**{spec.samples_field: int(equal_cost_passes)})
    return options


@dataclass(frozen=True)
class ComparisonProgress:
    """Progress of one method run plus its scoring (an :class:`explainer.progress.Progress`)."""

    inner: MethodProgress | None
    elapsed_s: float
    result: MethodResult | None = None

    @property
    def fraction(self) -> float:
        if self.result is not None:
            return 1.0
        return 0.95 * self.inner.fraction if self.inner is not None else 0.0

    @property
    def eta_s(self) -> float | None:
        if self.result is not None:
            return 0.0
        return None if self.inner is None else eta_from_rate(self.fraction, 1.0, self.elapsed_s)

    def describe(self) -> str:
        return self.inner.describe() if self.inner is not None else "starting"


def iter_method(
    subject: Subject,
    method: str,
    options: MethodOptions,
    tracked: int | None = None,
    tolerance: float = 0.005,
    methods_store: MethodStore | None = None,
) -> Iterator[ComparisonProgress]:
    """Run one method on ``subject`` and score its order (or reuse a saved result); yields progress,
    the last item carrying the :class:`MethodResult` (saved when ``methods_store`` is given)."""
    start = time.perf_counter()
    skey = subject_key(subject.clf, subject.view, subject.labels, subject.target, tracked, subject.fill)
    mkey = method_key(method, options, subject.seed)
    if methods_store is not None and (saved := methods_store.get(skey, mkey)) is not None:
        yield ComparisonProgress(None, 0.0, saved)
        return
    spec = METHODS.get(method)
    ok, reason = spec.availability(subject.clf)
    if not ok:
        from explainer.errors import MethodError

        raise MethodError(f"{spec.label} cannot run here: {reason}")
    ranking = None
    for item in spec.run(subject, options):
        if item.result is not None:
            ranking = item.result
        yield ComparisonProgress(item, time.perf_counter() - start)
    assert ranking is not None
    score = score_order(
        subject.clf, subject.view, subject.labels, ranking.order, subject.target, tracked, subject.fill, tolerance
    )
    result = MethodResult(
        ranking,
        score,
        {
            "key": skey,
            "method_key": mkey,
            "target": subject.target,
            "tracked": tracked,
            "fill": subject.fill,
            "seed": subject.seed,
            "model": subject.clf.id,
            "n_regions": subject.n_regions,
        },
    )
    if methods_store is not None:
        methods_store.put(skey, mkey, result)
    yield ComparisonProgress(None, time.perf_counter() - start, result)


def scorecard_of(exp: Explanation) -> Scorecard:
    """The scorecard of a finished LiMA run, from its own curves (no model call: the search scored
    every prefix already; a test checks that :func:`score_order` gives the same numbers)."""
    budgets = metrics.budget_scores(exp.insertion, exp.area)
    return Scorecard(
        order=exp.order.astype(np.int32),
        area=exp.area,
        insertion=exp.insertion,
        deletion=exp.deletion,
        tracked_insertion=exp.tracked_insertion,
        tracked_deletion=exp.tracked_deletion,
        insertion_auc=exp.insertion_auc,
        deletion_auc=exp.deletion_auc,
        highest_confidence={k: b.highest for k, b in zip(BUDGET_KEYS, budgets)},
        highest_area={k: b.area for k, b in zip(BUDGET_KEYS, budgets)},
        minimal_subset=exp.minimal_subset,
        scoring_passes=0,
    )


def result_of(exp: Explanation) -> MethodResult:
    """A finished run as the comparison's "lima" or "smdl" result (its order, cost and curves)."""
    name = "lima" if exp.config.search == "bidirectional" else "smdl"
    ranking = Ranking(
        name,
        rank_scores(exp.order),
        exp.order.astype(np.int32),
        exp.forward_passes,
        0,
        exp.wall_time_s,
        {"pending": exp.config.pending, "weights": exp.config.weights.to_dict()},
    )
    return MethodResult(
        ranking,
        scorecard_of(exp),
        {
            "target": exp.target,
            "tracked": exp.tracked,
            "fill": exp.config.fill,
            "model": exp.model.get("id"),
            "n_regions": exp.n_regions,
        },
    )


def subject_of(exp: Explanation, clf: Classifier, seed: int = 0) -> Subject:
    """The subject a finished run explained (the same view, regions, target and fill)."""
    return Subject(clf, np.asarray(exp.view), np.asarray(exp.labels), exp.target, exp.config.fill, seed)


__all__ = [
    "ComparisonProgress",
    "MethodResult",
    "MethodStore",
    "iter_method",
    "method_key",
    "resolve_options",
    "result_of",
    "scorecard_of",
    "subject_key",
    "subject_of",
]
