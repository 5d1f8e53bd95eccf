"""Scan a labelled image set with a classifier: accuracy, confusions, the confident mistakes.

:func:`iter_scan` decodes images on worker threads while the model runs (so decoding hides
behind inference) and yields :class:`ScanProgress` after every batch; the last item carries the
:class:`ScanResult`. Results serialise to JSON and are cached per model and image set.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from explainer import settings
from explainer.data import ImageItem, ImageSet
from explainer.errors import LimaError
from explainer.models import Classifier
from explainer.prefetch import prefetch
from explainer.progress import eta_from_rate, run_to_end
from explainer.store import write_atomic

TOP_K = 5
PREFETCH_BATCHES = 2


@dataclass(frozen=True)
class ScanRow:
    """The model's answer on one image.

    Attributes:
        key, name: the item's key and display name. label: the true class.
        pred: the top-1 class; p_label, p_pred: their probabilities.
        top: the top-5 as (class id, probability) pairs.
        error: why the image could not be read (then pred is -1 and it counts nowhere).
    """

    key: str
    name: str
    label: int
    pred: int = -1
    p_label: float = 0.0
    p_pred: float = 0.0
    top: tuple[tuple[int, float], ...] = ()
    error: str | None = None

    @property
    def correct(self) -> bool:
        return self.error is None and self.pred == self.label


@dataclass(frozen=True)
class ScanResult:
    """A scanned image set."""

    set_name: str
    set_fingerprint: str
    model_id: str
    weights_hash: str
    rows: tuple[ScanRow, ...]
    elapsed_s: float = 0.0
    created: str = ""
    problems: tuple[str, ...] = field(default_factory=tuple)

    @property
    def readable(self) -> list[ScanRow]:
        return [r for r in self.rows if r.error is None]

    @property
    def accuracy(self) -> float:
        rows = self.readable
        return sum(r.correct for r in rows) / len(rows) if rows else float("nan")

    @property
    def images_per_s(self) -> float:
        return len(self.rows) / self.elapsed_s if self.elapsed_s > 0 else float("nan")

    def mistakes(self, true: int | None = None, pred: int | None = None) -> list[ScanRow]:
        """Misclassified images, most confidently wrong first (p of the wrong class, then the
        lowest p of the true class), optionally filtered by true and/or predicted class."""
        rows = [
            r
            for r in self.readable
            if not r.correct and (true is None or r.label == true) and (pred is None or r.pred == pred)
        ]
        return sorted(rows, key=lambda r: (-r.p_pred, r.p_label, r.key))

    def confusions(self) -> list[tuple[int, int, int]]:
        """(true, predicted, count) for every confused pair, most frequent first."""
        counts = Counter((r.label, r.pred) for r in self.readable if not r.correct)
        return sorted(((t, p, n) for (t, p), n in counts.items()), key=lambda x: (-x[2], x[0], x[1]))

    def row(self, key: str) -> ScanRow | None:
        return next((r for r in self.rows if r.key == key), None)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ScanResult:
        doc = json.loads(text)
        rows = tuple(ScanRow(**{**r, "top": tuple(tuple(t) for t in r["top"])}) for r in doc.pop("rows"))
        return cls(rows=rows, **{**doc, "problems": tuple(doc.get("problems", ()))})


@dataclass(frozen=True)
class ScanProgress:
    """Where a scan is (an :class:`explainer.progress.Progress`): images done of the total."""

    done: int
    total: int
    elapsed_s: float
    result: ScanResult | None = None

    @property
    def fraction(self) -> float:
        return 1.0 if self.result is not None else self.done / max(self.total, 1)

    @property
    def eta_s(self) -> float | None:
        if self.result is not None:
            return 0.0
        return eta_from_rate(self.done, self.total, self.elapsed_s)

    def describe(self) -> str:
        return f"{self.done:,} of {self.total:,} images"


def _load_view(clf: Classifier, item: ImageItem):
    try:
        return clf.view(item.load()), None
    except LimaError as exc:
        return None, str(exc)
    except Exception as exc:
        return None, f"{item.name}: {type(exc).__name__}: {exc}"


def _rows_for(clf: Classifier, items: list[ImageItem], loaded) -> list[ScanRow]:
    ok = [i for i, (v, _) in enumerate(loaded) if v is not None]
    probs = clf.predict(np.stack([loaded[i][0] for i in ok])) if ok else np.zeros((0, clf.num_classes))
    rows: list[ScanRow] = []
    by_index = dict(zip(ok, probs))
    for i, item in enumerate(items):
        if i not in by_index:
            rows.append(ScanRow(item.key, item.name, item.label, error=loaded[i][1]))
            continue
        p = by_index[i]
        top = np.argsort(-p, kind="stable")[:TOP_K]
        rows.append(
            ScanRow(
                item.key,
                item.name,
                item.label,
                int(top[0]),
                float(p[item.label]),
                float(p[top[0]]),
                tuple((int(c), float(p[c])) for c in top),
            )
        )
    return rows


def iter_scan(
    clf: Classifier, image_set: ImageSet, batch_size: int | None = None, workers: int = 2
) -> Iterator[ScanProgress]:
    """Classify every image of ``image_set``; yields progress per batch, the result last.

    Stop iterating to cancel. Unreadable images become rows with ``error`` set.
    """
    from datetime import datetime, timezone

    items = list(image_set.items)
    b = batch_size or clf.batch_size
    batches = [items[i : i + b] for i in range(0, len(items), b)]
    start, rows = time.perf_counter(), []
    yield ScanProgress(0, len(items), 0.0)
    # Decode two batches ahead while the model runs (decoding stops competing with inference).
    loads = prefetch(lambda it: _load_view(clf, it), batches, ahead=PREFETCH_BATCHES, workers=workers)
    for batch, loaded in zip(batches, loads):
        rows.extend(_rows_for(clf, batch, loaded))
        yield ScanProgress(len(rows), len(items), time.perf_counter() - start)
    result = ScanResult(
        image_set.name,
        image_set.fingerprint(),
        clf.id,
        clf.weights_hash,
        tuple(rows),
        time.perf_counter() - start,
        datetime.now(timezone.utc).isoformat(timespec="seconds"),
        tuple(image_set.problems),
    )
    yield ScanProgress(len(rows), len(items), result.elapsed_s, result)


def scan(clf: Classifier, image_set: ImageSet, **options) -> ScanResult:
    """Run :func:`iter_scan` to the end and return the :class:`ScanResult`."""
    return run_to_end(iter_scan(clf, image_set, **options))


class ScanCache:
    """Scan results on disk, one JSON file per (model weights, image set fingerprint)."""

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root else settings.current().scans_dir

    def path(self, clf: Classifier, image_set: ImageSet) -> Path:
        import hashlib

        key = hashlib.sha256(f"{clf.id}|{clf.weights_hash}|{image_set.fingerprint()}".encode()).hexdigest()[:20]
        return self.root / f"{key}.json"

    def get(self, clf: Classifier, image_set: ImageSet) -> ScanResult | None:
        path = self.path(clf, image_set)
        try:
            return ScanResult.from_json(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def put(self, clf: Classifier, image_set: ImageSet, result: ScanResult) -> Path:
        path = self.path(clf, image_set)
        write_atomic(path, result.to_json().encode("utf-8"))
        return path
