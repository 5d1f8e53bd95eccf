"""Cached resources shared by every page and session: models, image sets, stores, jobs.

Models, SAM and finished explanations are immutable once built, so ``st.cache_resource``
shares one copy between sessions without pickling. Arrays are keyed by digests, never hashed
by Streamlit (it samples large arrays). Settings (folders, device) are read at call time
(:func:`explainer.settings.current`), so a store or cache is keyed by its folder.
"""

from __future__ import annotations

import functools
import hashlib
import json
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st
import torch

from explainer import data, regions, settings, store
from explainer.backends import RuntimeOptions
from explainer.bench import measure_throughput
from explainer.errors import DataError, ModelError
from explainer.models import MODEL_SOURCES, Classifier, create, device_label, pick_device
from explainer.models.registry import ModelInputs
from explainer.scan import ScanCache
from explainer.thumbnails import GALLERY_SIZE, ThumbnailCache, cache_folder, framing_of, shared_cache
from ui.jobs import JobManager

DEFAULT_SOURCE = "efficientnet_lite0"


@dataclass(frozen=True)
class ModelChoice:
    """What the sidebar chose: a model source and its inputs (see ``explainer.models.registry``)."""

    source: str = DEFAULT_SOURCE
    inputs: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps({"source": self.source, "inputs": self.inputs}, sort_keys=True)


@dataclass(frozen=True)
class SetChoice:
    """What the sidebar chose: "demo", "server" (a path under the data root) or "uploads"."""

    kind: str = "demo"
    path: str = ""

    def to_json(self) -> str:
        return json.dumps({"kind": self.kind, "path": self.path}, sort_keys=True)


def data_root() -> Path:
    return settings.current().data_root


def _confined(inputs: ModelInputs) -> ModelInputs:
    """The inputs with every file path resolved under the data root (the app reads nothing else)."""
    paths = {
        f.name: str(data.resolve_under_root(getattr(inputs, f.name), data_root()))
        for f in inputs.specs()
        if f.kind == "path" and getattr(inputs, f.name)
    }
    return inputs.replace(**paths) if paths else inputs


@st.cache_resource(max_entries=3, show_spinner="Loading the model…")
def _classifier(choice_json: str, device: str, runtime_json: str = "{}") -> Classifier:
    choice = json.loads(choice_json)
    source = MODEL_SOURCES.get(choice["source"])
    if not source.in_app:
        raise ModelError(f"{source.label} cannot be loaded in the app; use the command line.")
    inputs = _confined(source.inputs.from_mapping(choice["inputs"]))
    runtime = RuntimeOptions.from_mapping(json.loads(runtime_json))
    return create(source, inputs, device=device, backend=runtime.backend, precision=runtime.precision)


def classifier(choice: ModelChoice, runtime: RuntimeOptions | None = None) -> Classifier:
    """The chosen classifier on this machine's device, run by the chosen backend (raises
    ModelError/DataError). Results are keyed by model and weights, never by the backend."""
    runtime_json = json.dumps((runtime or RuntimeOptions()).to_dict(), sort_keys=True)
    return _classifier(choice.to_json(), settings.current().device, runtime_json)


def device_error() -> str | None:
    """Why the configured device cannot be used (a bad LIMA_DEVICE), or None when it can."""
    device = settings.current().device
    try:
        pick_device(device)
    except ModelError as exc:
        return f"LIMA_DEVICE={device!r} cannot be used: {exc}"
    return None


def device_name() -> str:
    try:
        return device_label(pick_device(settings.current().device))
    except ModelError:
        return "no usable device (see Home)"


def on_gpu() -> bool:
    try:
        return pick_device(settings.current().device).type == "cuda"
    except ModelError:
        return False


@st.cache_resource(max_entries=8, show_spinner=False)
def _image_set(choice_json: str, class_key: str, root: str, _class_names: tuple[str, ...]) -> data.ImageSet:
    c = SetChoice(**json.loads(choice_json))
    if c.kind == "demo":
        return data.demo_set(_class_names)
    if c.kind == "server":
        if not c.path.strip():
            raise DataError("Enter a folder, label list or CSV under the data root.")
        return data.open_image_set(c.path, _class_names, root=root)
    raise DataError(f"Unknown image set kind {c.kind!r}.")


def image_set(choice: SetChoice, clf: Classifier, uploads: tuple = ()) -> data.ImageSet:
    """The chosen image set, validated against the classifier's classes (raises DataError)."""
    if choice.kind == "uploads":
        if not uploads:
            raise DataError("No images uploaded yet: add some on the Find errors page.")
        return data.uploads_set(uploads)
    return _image_set(choice.to_json(), clf.id + clf.weights_hash, str(data_root()), clf.class_names)


@st.cache_resource(show_spinner=False)
def job_manager() -> JobManager:
    return JobManager()


@st.cache_resource(show_spinner=False)
def _run_store(root: str) -> store.RunStore:
    runs = store.RunStore(root)
    runs.clean_interrupted_writes()
    return runs


def run_store() -> store.RunStore:
    """The run store of the configured folder; on its first use in this process, the leftovers
    of saves that a killed process interrupted are removed (never a finished run or a live write)."""
    return _run_store(str(settings.current().runs_dir))


@st.cache_resource(show_spinner=False)
def _scan_cache(root: str) -> ScanCache:
    cache = ScanCache(root)
    if cache.root.is_dir():
        store.remove_stale_temporaries(cache.root)
    return cache


def scan_cache() -> ScanCache:
    return _scan_cache(str(settings.current().scans_dir))


@st.cache_resource(max_entries=16, show_spinner=False)
def _explanation(root: str, key: str):
    return store.RunStore(root).load(key)


def explanation(key: str):
    """A finished run from the run store (immutable, shared)."""
    return _explanation(str(run_store().root), key)


@st.cache_resource(max_entries=16, show_spinner=False)
def _source_view(root: str, key: str):
    view = store.RunStore(root).source_view(key)
    if view is None:
        raise LookupError(key)  # not cached: a crop saved a moment later is found next time
    view.setflags(write=False)
    return view


def source_view(key: str):
    """A run's crop at the source photo's resolution (F×F×3 uint8, read-only, shared), or None
    for runs saved without one (before 0.3, or from the Python API)."""
    try:
        return _source_view(str(run_store().root), key)
    except LookupError:
        return None


def forget_explanation() -> None:
    _explanation.clear()


# Throughput measurements, one per model key, made on a background thread as soon as a model is
# loaded (the sidebar starts it), so the first page that needs a cost estimate (Explain's
# preview, a scan's estimate) finds it ready instead of waiting 1-3 s for it.
_SPEED_POOL = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lima-speed")
_SPEEDS: dict[str, Future[float]] = {}
_SPEEDS_LOCK = threading.Lock()
_SPEEDS_KEPT = 4  # models whose speed is kept (as many as the model cache holds, and one more)


def measure_speed_ahead(model_key: str, clf: Classifier) -> Future[float]:
    """Start measuring the classifier's throughput in the background, once per model key;
    returns the measurement (a future). A failed measurement is forgotten when it is read, so
    the next need measures again."""
    with _SPEEDS_LOCK:
        future = _SPEEDS.get(model_key)
        if future is None:
            while len(_SPEEDS) >= _SPEEDS_KEPT:  # the oldest goes (dicts keep insertion order)
                _SPEEDS.pop(next(iter(_SPEEDS)))
            future = _SPEEDS[model_key] = _SPEED_POOL.submit(measure_throughput, clf, seconds=1.0, min_batches=2)
        return future


def throughput(model_key: str, clf: Classifier) -> float:
    """Images per second of the classifier at its batch size on this device (measured once, in
    about 1 s; waits for the measurement when it is not finished yet)."""
    future = measure_speed_ahead(model_key, clf)
    try:
        if future.done():
            return future.result()
        with st.spinner("Measuring this model's speed…"):
            return future.result()
    except Exception:
        with _SPEEDS_LOCK:
            if _SPEEDS.get(model_key) is future:
                del _SPEEDS[model_key]
        raise


_RATES: dict[str, float] = {}


def remember_rate(model_key: str, rate: float) -> None:
    """Forward passes per second that a finished search achieved (the best predictor of the next)."""
    _RATES[model_key] = rate


def search_rate(model_key: str, clf: Classifier) -> float:
    """Images per second for cost previews: the last finished run's rate, else a quick measurement."""
    return _RATES.get(model_key) or throughput(model_key, clf)


_SCAN_RATES: dict[tuple[str, tuple[str, ...]], float] = {}
DECODE_SAMPLE = 6  # images decoded to measure a set's decoding cost


def _set_identity(image_set: data.ImageSet) -> tuple[str, ...]:
    """What identifies a set across its versions (a file added keeps it): kind, name, folder."""
    return (image_set.kind, image_set.name, str(image_set.root))


def remember_scan_rate(model_key: str, image_set: data.ImageSet, rate: float) -> None:
    """Images per second that a finished scan of this set achieved, decoding included. Kept per
    set, not per model: decoding costs differ from set to set (image sizes and formats), so one
    set's speed mispredicts another's (the demo's large photos decode 2-3 times slower than
    ImageNet JPEGs)."""
    _SCAN_RATES[(model_key, _set_identity(image_set))] = rate


@st.cache_resource(max_entries=8, show_spinner="Measuring how fast this set's images decode…")
def _decode_seconds(set_key: str, model_key: str, _clf: Classifier, _image_set: data.ImageSet) -> float:
    """Seconds to read, decode and resize one image of the set (a few images, median)."""
    import statistics
    import time

    items = _image_set.items
    step = max(1, len(items) // DECODE_SAMPLE)
    times = []
    for item in items[::step][:DECODE_SAMPLE]:
        start = time.perf_counter()
        try:
            _clf.view(item.load())
        except Exception:
            continue
        times.append(time.perf_counter() - start)
    return statistics.median(times) if times else 0.0


def scan_rate(model_key: str, set_key: str, clf: Classifier, image_set: data.ImageSet) -> float:
    """Images per second for a scan estimate: the last finished scan's speed of this set with
    this model; else the model's speed with the set's measured decoding time added (a scan decodes on two
    threads beside the model, but on a small CPU they compete: counting decoding in full is
    the estimate that did not run low)."""
    seen = _SCAN_RATES.get((model_key, _set_identity(image_set)))
    if seen:
        return seen
    per_image = 1.0 / throughput(model_key, clf)
    if not on_gpu():
        per_image += _decode_seconds(set_key, model_key, clf, image_set)
    else:
        per_image = max(per_image, _decode_seconds(set_key, model_key, clf, image_set) / 2)
    return 1.0 / per_image


@st.cache_data(max_entries=256, show_spinner=False)
def view_of(model_key: str, set_key: str, item_key: str, _clf: Classifier, _item: data.ImageItem) -> np.ndarray:
    """The classifier's view of one image set item (S×S×3 uint8)."""
    return _clf.view(_item.load())


# -- gallery thumbnails: made in parallel, kept (explainer.thumbnails), the next page ahead ------

_THUMB_POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="lima-thumbs")
# The next page is made on one thread: it runs while the browser draws this page, and on a
# small machine two threads would take the browser's CPU.
_PREFETCH_POOL = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lima-thumbs-ahead")


@st.cache_resource(show_spinner=False)
def _thumbnail_cache(folder: str) -> ThumbnailCache:
    return shared_cache(folder)


def thumbnail_cache() -> ThumbnailCache:
    """The process's thumbnail cache, backed by ``<cache folder>/thumbnails`` on disk (one per
    folder: a test or a settings change that moves the cache gets its own)."""
    return _thumbnail_cache(str(cache_folder()))


def thumbnails(clf: Classifier, items: list[data.ImageItem], size: int = GALLERY_SIZE) -> list[bytes | None]:
    """Gallery thumbnails of ``items`` as ``clf`` frames them (JPEG bytes, None for an
    unreadable image): kept ones at once, the others made on two threads (decoding releases the
    GIL)."""
    cache, framing = thumbnail_cache(), framing_of(clf.preprocess, size)
    found = [cache.peek(it, framing) for it in items]
    missing = [i for i, (hit, _) in enumerate(found) if not hit]
    made = dict(zip(missing, _THUMB_POOL.map(lambda i: cache.get(items[i], framing), missing)))
    return [made.get(i, data) for i, (_, data) in enumerate(found)]


def prefetch_thumbnails(clf: Classifier, items: list[data.ImageItem], size: int = GALLERY_SIZE) -> None:
    """Start making thumbnails the user is likely to ask for next (the next page); returns at
    once. Errors are ignored: the page makes whatever is still missing when it is shown."""
    cache, framing = thumbnail_cache(), framing_of(clf.preprocess, size)
    for item in items:
        _PREFETCH_POOL.submit(cache.get, item, framing)


@st.cache_data(max_entries=256, show_spinner=False)
def probabilities(model_key: str, view_key: str, _clf: Classifier, _view: np.ndarray) -> np.ndarray:
    """p(· | full view), K float32."""
    return _clf.predict(_view[None])[0]


@st.cache_data(max_entries=64, show_spinner=False)
def region_map(view_key: str, method: str, options_json: str, _view: np.ndarray) -> np.ndarray:
    """A superpixel/grid label map (fast methods only; SAM runs as a job)."""
    return regions.propose_regions(_view, method, json.loads(options_json))


@functools.lru_cache(maxsize=1)
def load_sam_shared(checkpoint: str, model_type: str | None):
    """The SAM model, loaded once per process (called from a job's worker thread, so a plain
    lru_cache rather than st.cache_resource, which expects a script-run context)."""
    from explainer.sam import load_sam

    device = "cuda" if torch.cuda.is_available() else "cpu"
    return load_sam(checkpoint, model_type, device=device)


def digest(array: np.ndarray) -> str:
    return store.array_digest(array)[:16]


def short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]
