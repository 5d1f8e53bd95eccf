"""Scan a labelled image set with a classifier: accuracy, confusions, the confident mistakes.

:func:`iter_scan` decodes images on worker threads while the model runs (so decoding hides
behind inference) and yields :class:`ScanProgress` after every batch; the last item carries the
:class:`ScanResult`. Results serialise to JSON and are cached per model and image set.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from explainer import settings
from explainer.data import ImageItem, ImageSet, item_signature
from explainer.errors import LimaError
from explainer.models import Classifier
from explainer.prefetch import prefetch
from explainer.progress import eta_from_rate, run_to_end
from explainer.store import write_atomic
from explainer.thumbnails import ThumbnailCache, framing_of, thumbnail_from_view

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
        sig: the item's signature when it was scanned (:func:`explainer.data.item_signature`):
            an incremental scan reuses the row while the signature is unchanged.
    """

    key: str
    name: str
    label: int
    pred: int = -1
    p_label: float = 0.0
    p_pred: float = 0.0
    top: tuple[tuple[int, float], ...] = ()
    error: str | None = None
    sig: str = ""

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

    # Derived tables are computed once per result (a result is immutable) and kept on it, so a
    # page that reruns on every click at 50,000 images does not re-sort them each time.

    @cached_property
    def readable(self) -> list[ScanRow]:
        return [r for r in self.rows if r.error is None]

    @cached_property
    def unreadable(self) -> list[ScanRow]:
        return [r for r in self.rows if r.error is not None]

    @cached_property
    def accuracy(self) -> float:
        rows = self.readable
        return sum(r.correct for r in rows) / len(rows) if rows else float("nan")

    @property
    def images_per_s(self) -> float:
        return len(self.rows) / self.elapsed_s if self.elapsed_s > 0 else float("nan")

    def mistakes(self, true: int | None = None, pred: int | None = None) -> list[ScanRow]:
        """Misclassified images, most confidently wrong first (p of the wrong class, then the
        lowest p of the true class), optionally filtered by true and/or predicted class."""
        if true is None and pred is None:
            return list(self._mistakes)
        return [r for r in self._mistakes if (true is None or r.label == true) and (pred is None or r.pred == pred)]

    @cached_property
    def _mistakes(self) -> tuple[ScanRow, ...]:
        rows = [r for r in self.readable if not r.correct]
        return tuple(sorted(rows, key=lambda r: (-r.p_pred, r.p_label, r.key)))

    @cached_property
    def mistake_keys(self) -> frozenset[str]:
        return frozenset(r.key for r in self._mistakes)

    def confusions(self) -> list[tuple[int, int, int]]:
        """(true, predicted, count) for every confused pair, most frequent first."""
        return list(self._confusions)

    @cached_property
    def _confusions(self) -> tuple[tuple[int, int, int], ...]:
        counts = Counter((r.label, r.pred) for r in self._mistakes)
        return tuple(sorted(((t, p, n) for (t, p), n in counts.items()), key=lambda x: (-x[2], x[0], x[1])))

    def row(self, key: str) -> ScanRow | None:
        return self._by_key.get(key)

    @cached_property
    def _by_key(self) -> dict[str, ScanRow]:
        return {r.key: r for r in self.rows}

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

    reused: int = 0  # rows an incremental scan took from the previous scan

    def describe(self) -> str:
        extra = f" ({self.reused:,} unchanged, reused)" if self.reused else ""
        return f"{self.done:,} of {self.total:,} images{extra}"


def _load_view(clf: Classifier, item: ImageItem):
    return _view_of(clf, item.load, item.name)


def _view_of(clf: Classifier, load: Callable[[], Any], name: str) -> tuple[np.ndarray | None, str | None]:
    """(the classifier's S×S×3 uint8 view, None), or (None, why the image cannot be read)."""
    try:
        return clf.view(load()), None
    except LimaError as exc:
        return None, str(exc)
    except Exception as exc:
        return None, f"{name}: {type(exc).__name__}: {exc}"


class _Labelled(Protocol):
    """An image's identity in a row: an :class:`ImageItem` or a :class:`ScanInput`."""

    @property
    def key(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def label(self) -> int: ...


def _rows_for(clf: Classifier, items: Sequence[_Labelled], loaded, sigs: list[str]) -> list[ScanRow]:
    ok = [i for i, (v, _) in enumerate(loaded) if v is not None]
    probs = clf.predict(np.stack([loaded[i][0] for i in ok])) if ok else np.zeros((0, clf.num_classes))
    rows: list[ScanRow] = []
    by_index = dict(zip(ok, probs))
    for i, item in enumerate(items):
        if i not in by_index:
            rows.append(ScanRow(item.key, item.name, item.label, error=loaded[i][1], sig=sigs[i]))
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
                sig=sigs[i],
            )
        )
    return rows


# -- who scores the images ------------------------------------------------------------------------------------


class ScanRunner(Protocol):
    """Scores images: yields the :class:`ScanRow` of finished images (in any order, each image
    once), or an empty list while it waits (so a caller can stop). Stopping the iteration stops
    it."""

    workers: int

    def describe(self) -> str: ...

    def score(self, clf: Classifier, items: list[ImageItem], sigs: dict[str, str]) -> Iterator[list[ScanRow]]: ...


class InProcessScan:
    """One model in this process; images decoded on threads two batches ahead of the model.

    Args:
        thumbnails: where the mistakes' gallery thumbnails are kept as they are found (made from
            the view the scan decoded anyway, about 1 ms each), so the gallery's first look at
            them decodes nothing; None keeps none.
    """

    def __init__(self, batch_size: int | None = None, workers: int = 2, thumbnails: ThumbnailCache | None = None):
        self.batch_size, self.workers, self.thumbnails = batch_size, workers, thumbnails

    def describe(self) -> str:
        return "in process"

    def score(self, clf: Classifier, items: list[ImageItem], sigs: dict[str, str]) -> Iterator[list[ScanRow]]:
        b = self.batch_size or clf.batch_size
        batches = [items[i : i + b] for i in range(0, len(items), b)]
        # Decode two batches ahead while the model runs (decoding stops competing with inference).
        loads = prefetch(lambda it: _load_view(clf, it), batches, ahead=PREFETCH_BATCHES, workers=self.workers)
        framing = framing_of(clf.preprocess)
        for batch, loaded in zip(batches, loads):
            rows = _rows_for(clf, batch, loaded, [sigs[it.key] for it in batch])
            if self.thumbnails is not None:
                for item, (view, _), row in zip(batch, loaded, rows):
                    if view is not None and not row.correct:
                        self.thumbnails.put(item, framing, thumbnail_from_view(view, framing))
            yield rows


@dataclass(frozen=True)
class ScanInput:
    """One image as a remote scan worker receives it: what to decode, and its row's identity.

    Attributes:
        key, name, label, sig: as in :class:`ScanRow`.
        source: what the worker decodes: a file path (the workers share the driver's file
            system), the file's encoded bytes, or an H×W×3 uint8 RGB array (a built-in demo
            photo, decoded by the driver). None when ``error`` is set.
        shown_as: the image's name in decoding errors (as :meth:`ImageItem.load` names it, so
            an unreadable image gets the same message as in process).
        error: why the driver could not read the image (the worker then only reports it).
    """

    key: str
    name: str
    label: int
    sig: str
    source: Path | bytes | np.ndarray | None = field(repr=False)
    shown_as: str
    error: str | None = None


def scan_input(item: ImageItem, sig: str, shared_fs: bool = False) -> ScanInput:
    """What a remote worker needs to score ``item``.

    The rule: a file travels as its bytes, read here (the workers need no shared file system),
    unless ``shared_fs``, when it travels as its path and the worker reads it; uploaded bytes
    travel as they are; a built-in demo photo travels decoded (the workers need not have the
    packages that ship it). A file this process cannot read is sent as its path, so the worker
    reports it exactly as an in-process scan does.
    """
    base: dict[str, Any] = {"key": item.key, "name": item.name, "label": item.label, "sig": sig}
    if item.path is not None:
        if shared_fs:
            return ScanInput(**base, source=item.path, shown_as=item.key)
        try:
            return ScanInput(**base, source=item.path.read_bytes(), shown_as=item.key)
        except OSError:
            return ScanInput(**base, source=item.path, shown_as=item.key)
    if item.data is not None:
        return ScanInput(**base, source=item.data, shown_as=item.name)
    try:
        return ScanInput(**base, source=np.asarray(item.load()), shown_as=item.name)
    except LimaError as exc:
        return ScanInput(**base, source=None, shown_as=item.name, error=str(exc))
    except Exception as exc:
        return ScanInput(**base, source=None, shown_as=item.name, error=f"{item.name}: {type(exc).__name__}: {exc}")


def score_inputs(clf: Classifier, inputs: Sequence[ScanInput]) -> list[ScanRow]:
    """A remote worker's job: decode ``inputs`` and score them (one :class:`ScanRow` each)."""
    from explainer.images import load_image

    def decode(one: ScanInput) -> tuple[np.ndarray | None, str | None]:
        if one.error is not None:
            return None, one.error
        return _view_of(clf, lambda: load_image(one.source, name=one.shown_as), one.name)  # type: ignore[arg-type]

    return _rows_for(clf, inputs, [decode(one) for one in inputs], [one.sig for one in inputs])


def iter_scan(
    clf: Classifier,
    image_set: ImageSet,
    batch_size: int | None = None,
    workers: int = 2,
    previous: ScanResult | None = None,
    runner: ScanRunner | None = None,
    thumbnails: ThumbnailCache | None = None,
) -> Generator[ScanProgress, None, None]:
    """Classify every image of ``image_set``; yields progress per batch, the result last.

    Stop iterating to cancel. Unreadable images become rows with ``error`` set.

    Args:
        previous: an earlier scan of this set by the same model (same id and weights; otherwise
            it is ignored). Incremental: an item whose signature (key, label, file path, size and
            mtime, or content digest) is unchanged keeps its row; only new or changed items are
            scored. Progress then counts the items to score.
        batch_size, workers: the in-process runner's images per forward pass (default the
            classifier's) and decoding threads.
        runner: who scores the images (default :class:`InProcessScan`; on Ray
            :class:`explainer.ray_runner.RayScanRunner`). This process builds the result either way.
        thumbnails: for the default runner, where the mistakes' gallery thumbnails are kept as
            they are found (see :class:`InProcessScan`).
    """
    from datetime import datetime, timezone

    # Timed from here: the signatures (a stat per file, a decode per built-in photo the first
    # time) are part of what a scan costs, and the speed a scan reports calibrates the next
    # estimate.
    start = time.perf_counter()
    all_items = list(image_set.items)
    sigs = {item.key: item_signature(item) for item in all_items}
    reusable: dict[str, ScanRow] = {}
    if previous is not None and (previous.model_id, previous.weights_hash) == (clf.id, clf.weights_hash):
        reusable = {r.key: r for r in previous.rows if r.sig and r.sig == sigs.get(r.key)}
    items = [item for item in all_items if item.key not in reusable]
    runner = runner or InProcessScan(batch_size, workers, thumbnails)
    scored: dict[str, ScanRow] = {}
    yield ScanProgress(0, len(items), time.perf_counter() - start, reused=len(reusable))
    done = 0
    for finished in runner.score(clf, items, sigs):
        for row in finished:
            scored[row.key] = row
        done += len(finished)
        yield ScanProgress(done, len(items), time.perf_counter() - start, reused=len(reusable))
    missing = [item.key for item in items if item.key not in scored]
    if missing:  # a runner that lost images must not pass for a complete scan
        raise LimaError(f"the scan runner returned no answer for {len(missing)} images, e.g. {missing[0]}")
    rows = tuple(scored.get(item.key) or reusable[item.key] for item in all_items)
    fingerprint = image_set.fingerprint()
    elapsed = time.perf_counter() - start
    if reusable and previous is not None:
        # The reported speed stays the model's: the reused rows cost what they cost before.
        elapsed += previous.elapsed_s * len(reusable) / max(len(previous.rows), 1)
    result = ScanResult(
        image_set.name,
        fingerprint,
        clf.id,
        clf.weights_hash,
        rows,
        elapsed,
        datetime.now(timezone.utc).isoformat(timespec="seconds"),
        tuple(image_set.problems),
    )
    yield ScanProgress(done, len(items), elapsed, result, reused=len(reusable))


def scan(clf: Classifier, image_set: ImageSet, **options) -> ScanResult:
    """Run :func:`iter_scan` to the end and return the :class:`ScanResult`."""
    return run_to_end(iter_scan(clf, image_set, **options))


class ScanCache:
    """Scan results on disk, one JSON file per (model weights, image set fingerprint), plus a
    small pointer per (model, image set) to its latest scan (what an incremental rescan reuses).

    Parsed results are held in memory (the last few, keyed by file, size and mtime), so a page
    that asks for the same scan on every rerun parses its JSON once, not on every click.
    """

    MEMORY = 4  # parsed results kept

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root else settings.current().scans_dir
        self._memory: OrderedDict[Path, tuple[tuple[int, int], ScanResult]] = OrderedDict()
        self._lock = threading.Lock()

    def path(self, clf: Classifier, image_set: ImageSet) -> Path:
        import hashlib

        key = hashlib.sha256(f"{clf.id}|{clf.weights_hash}|{image_set.fingerprint()}".encode()).hexdigest()[:20]
        return self.root / f"{key}.json"

    def _pointer(self, clf: Classifier, image_set: ImageSet) -> Path:
        import hashlib

        identity = json.dumps([clf.id, clf.weights_hash, image_set.kind, image_set.name, str(image_set.root)])
        return self.root / f"{hashlib.sha256(identity.encode()).hexdigest()[:20]}.latest"

    def get(self, clf: Classifier, image_set: ImageSet) -> ScanResult | None:
        return self._read(self.path(clf, image_set))

    def latest(self, clf: Classifier, image_set: ImageSet) -> ScanResult | None:
        """The last scan of this set (by kind, name and folder) with this model, whatever the
        set's version then: the rows an incremental rescan may reuse. None if there is none."""
        try:
            name = self._pointer(clf, image_set).read_text(encoding="utf-8").strip()
        except OSError:
            return None
        if not name or "/" in name or not name.endswith(".json"):
            return None
        return self._read(self.root / name)

    def _read(self, path: Path) -> ScanResult | None:
        try:
            st = path.stat()
        except OSError:
            return None
        stamp = (st.st_size, st.st_mtime_ns)
        with self._lock:
            held = self._memory.get(path)
            if held is not None and held[0] == stamp:
                self._memory.move_to_end(path)
                return held[1]
        try:
            result = ScanResult.from_json(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None
        self._remember(path, stamp, result)
        return result

    def put(self, clf: Classifier, image_set: ImageSet, result: ScanResult) -> Path:
        path = self.path(clf, image_set)
        write_atomic(path, result.to_json().encode("utf-8"))
        write_atomic(self._pointer(clf, image_set), path.name.encode("utf-8"))
        try:
            st = path.stat()
            self._remember(path, (st.st_size, st.st_mtime_ns), result)  # no re-parse on the next get
        except OSError:
            pass
        return path

    def _remember(self, path: Path, stamp: tuple[int, int], result: ScanResult) -> None:
        with self._lock:
            self._memory[path] = (stamp, result)
            self._memory.move_to_end(path)
            while len(self._memory) > self.MEMORY:
                self._memory.popitem(last=False)
