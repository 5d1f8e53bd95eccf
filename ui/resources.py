"""Cached resources shared by every page and session: models, image sets, stores, jobs.

Models, SAM and finished explanations are immutable once built, so ``st.cache_resource``
shares one copy between sessions without pickling. Arrays are keyed by digests, never hashed
by Streamlit (it samples large arrays).
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import streamlit as st
import torch

from explainer import data, regions, store
from explainer.errors import DataError, ModelError
from explainer.models import Classifier, device_label, load_classifier, measure_throughput, pick_device
from explainer.scan import ScanCache
from ui.jobs import JobManager

BUILTIN_MODEL = "efficientnet_lite0"


@dataclass(frozen=True)
class ModelChoice:
    """What the sidebar chose: "builtin", "torchvision" (name) or "torchscript" (path + class names)."""

    kind: str = "builtin"
    name: str = ""
    path: str = ""
    class_names: str = ""

    @property
    def model_name(self) -> str:
        if self.kind == "torchvision":
            return f"torchvision:{self.name.strip()}"
        if self.kind == "torchscript":
            return f"torchscript:{self.path.strip()}"
        return BUILTIN_MODEL

    @property
    def label(self) -> str:
        return {"builtin": "EfficientNet-Lite0 (built in)", "torchvision": f"torchvision {self.name}",
                "torchscript": f"TorchScript {Path(self.path).name}"}.get(self.kind, self.kind)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


@dataclass(frozen=True)
class SetChoice:
    """What the sidebar chose: "demo", "server" (a path under the data root) or "uploads"."""

    kind: str = "demo"
    path: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def data_root() -> Path:
    return data.default_data_root()


@st.cache_resource(max_entries=3, show_spinner="Loading the model…")
def _classifier(choice_json: str, device: str) -> Classifier:
    c = ModelChoice(**json.loads(choice_json))
    class_names = None
    if c.kind == "torchscript":
        class_names = str(data.resolve_under_root(c.class_names, data_root())) if c.class_names else None
        path = data.resolve_under_root(c.path, data_root())
        return load_classifier(f"torchscript:{path}", device=device, class_names=class_names)
    return load_classifier(c.model_name, device=device)


def _device_setting() -> str:
    return os.environ.get("LIMA_DEVICE", "auto")


def classifier(choice: ModelChoice) -> Classifier:
    """The chosen classifier on this machine's device (raises ModelError/DataError)."""
    return _classifier(choice.to_json(), _device_setting())


def device_error() -> str | None:
    """Why the configured device cannot be used (a bad LIMA_DEVICE), or None when it can."""
    try:
        pick_device(_device_setting())
    except ModelError as exc:
        return f"LIMA_DEVICE={_device_setting()!r} cannot be used: {exc}"
    return None


def device_name() -> str:
    try:
        return device_label(pick_device(_device_setting()))
    except ModelError:
        return "no usable device (see Home)"


def on_gpu() -> bool:
    try:
        return pick_device(_device_setting()).type == "cuda"
    except ModelError:
        return False


@st.cache_resource(max_entries=8, show_spinner=False)
def _image_set(choice_json: str, class_key: str, _class_names: tuple[str, ...]) -> data.ImageSet:
    c = SetChoice(**json.loads(choice_json))
    if c.kind == "demo":
        return data.demo_set(_class_names)
    if c.kind == "server":
        if not c.path.strip():
            raise DataError("Enter a folder, label list or CSV under the data root.")
        return data.open_image_set(c.path, _class_names, root=data_root())
    raise DataError(f"Unknown image set kind {c.kind!r}.")


def image_set(choice: SetChoice, clf: Classifier, uploads: tuple = ()) -> data.ImageSet:
    """The chosen image set, validated against the classifier's classes (raises DataError)."""
    if choice.kind == "uploads":
        if not uploads:
            raise DataError("No images uploaded yet: add some on the Find errors page.")
        return data.uploads_set(uploads)
    return _image_set(choice.to_json(), clf.id + clf.weights_hash, clf.class_names)


@st.cache_resource(show_spinner=False)
def job_manager() -> JobManager:
    return JobManager()


@st.cache_resource(show_spinner=False)
def run_store() -> store.RunStore:
    """The run store; on the first use in this process, the leftovers of saves that a killed
    process interrupted are removed (never a finished run, never a live write)."""
    runs = store.RunStore(os.environ.get("LIMA_RUNS_DIR") or None)
    runs.clean_interrupted_writes()
    return runs


@st.cache_resource(show_spinner=False)
def scan_cache() -> ScanCache:
    cache = ScanCache(os.environ.get("LIMA_SCANS_DIR") or None)
    if cache.root.is_dir():
        store.remove_stale_temporaries(cache.root)
    return cache


@st.cache_resource(max_entries=16, show_spinner=False)
def explanation(key: str):
    """A finished run from the run store (immutable, shared)."""
    return run_store().load(key)


@st.cache_resource(max_entries=4, show_spinner="Measuring this model's speed…")
def throughput(model_key: str, _clf: Classifier) -> float:
    """Images per second of the classifier at its batch size on this device (about 1 s)."""
    return measure_throughput(_clf, seconds=1.0, min_batches=2)


_RATES: dict[str, float] = {}


def remember_rate(model_key: str, rate: float) -> None:
    """Forward passes per second that a finished search achieved (the best predictor of the next)."""
    _RATES[model_key] = rate


def search_rate(model_key: str, clf: Classifier) -> float:
    """Images per second for cost previews: the last finished run's rate, else a quick measurement."""
    return _RATES.get(model_key) or throughput(model_key, clf)


@st.cache_data(max_entries=256, show_spinner=False)
def view_of(model_key: str, set_key: str, item_key: str, _clf: Classifier, _item: data.ImageItem) -> np.ndarray:
    """The classifier's view of one image set item (S×S×3 uint8)."""
    return _clf.view(_item.load())


@st.cache_data(max_entries=256, show_spinner=False)
def thumbnail(model_key: str, set_key: str, item_key: str, _clf: Classifier, _item: data.ImageItem,
              size: int = 200) -> bytes:
    """A small JPEG of the view for galleries."""
    from PIL import Image

    img = Image.fromarray(view_of(model_key, set_key, item_key, _clf, _item)).resize((size, size), Image.BICUBIC)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=85)
    return buf.getvalue()


@st.cache_data(max_entries=256, show_spinner=False)
def probabilities(model_key: str, view_key: str, _clf: Classifier, _view: np.ndarray) -> np.ndarray:
    """p(· | full view), K float32."""
    return _clf.predict(_view[None])[0]


@st.cache_data(max_entries=64, show_spinner=False)
def region_map(view_key: str, method: str, params_json: str, _view: np.ndarray) -> np.ndarray:
    """A superpixel/grid label map (fast methods only; SAM runs as a job)."""
    return regions.propose_regions(_view, method, **json.loads(params_json))


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
