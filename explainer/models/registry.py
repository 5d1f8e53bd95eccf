"""Model sources: where classifiers come from, registered by name (as timm's registry does).

A model is named by a spec string, ``<source>`` or ``<source>:<rest>``: ``efficientnet_lite0``,
``torchvision:resnet50``, ``torchscript:model.pt``, ``clip:ViT-B-32:weights.bin``. Each
:class:`ModelSource` says what its user gives (an options dataclass of inputs: the sidebar's
form is generated from it), how to read those inputs from a spec, and how to load a
:class:`Classifier` with its preprocessing and class names. Adding a source is one file that
calls :func:`register`; :func:`load_classifier` and the UI find it by name.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from explainer.errors import ModelError
from explainer.models.classifier import Classifier, Preprocess, pick_device
from explainer.options import Options
from explainer.registry import Registry

DEFAULT_MODEL = "efficientnet_lite0"


class ModelInputs(Options):
    """Base of a source's inputs (what a user gives to load a model)."""

    error = ModelError
    what = "model input"


@dataclass(frozen=True)
class ModelSource:
    """Where a kind of classifier comes from.

    Attributes:
        name: the spec prefix ("torchvision" in "torchvision:resnet50"), or the whole spec of a
            source that takes no inputs ("efficientnet_lite0").
        label: display name; description: one sentence for the UI.
        inputs: the options dataclass of what the user gives.
        parse: ``parse(rest, extras) -> inputs`` from the part of the spec after "name:" and the
            loader's keyword arguments (class_names, allow_pickle, template, ...).
        load: ``load(inputs, device, preprocess) -> Classifier``.
        spec: ``spec(inputs) -> str``, the model's spec string (its id's stem).
        in_app: offered in the dashboard's sidebar (pickled checkpoints are not).
        offline: works without internet on a fresh machine.
    """

    name: str
    label: str
    description: str
    inputs: type[ModelInputs]
    parse: Callable[[str, dict[str, Any]], ModelInputs]
    load: Callable[[Any, torch.device, Preprocess | None], Classifier]
    spec: Callable[[Any], str]
    in_app: bool = True
    offline: bool = False


MODEL_SOURCES: Registry[ModelSource] = Registry("model source", ModelError)
ALIASES = {"efficientnet-lite0": "efficientnet_lite0"}


def register(source: ModelSource) -> ModelSource:
    """Add a model source (called by the module that defines it)."""
    return MODEL_SOURCES.register(source)


def source_of(spec: str) -> tuple[ModelSource, str]:
    """The source of a spec string and the rest of the spec after its name."""
    if not isinstance(spec, str) or not spec.strip():
        raise ModelError(f"a model name is needed, got {spec!r}")
    spec = ALIASES.get(spec.strip(), spec.strip())
    name, sep, rest = spec.partition(":")
    if name not in MODEL_SOURCES:
        raise ModelError(f"Unknown model {spec!r}. Use {', '.join(_examples())}.")
    source = MODEL_SOURCES.get(name)
    if source.inputs.specs() and not (sep and rest):
        raise ModelError(f"{name}: say which model, e.g. {example_spec(source)}.")
    return source, rest


def example_spec(source: ModelSource) -> str:
    """An example spec string of a source, for help texts and messages."""
    return {
        "torchvision": "torchvision:resnet50",
        "torchscript": "torchscript:<file>",
        "checkpoint": "checkpoint:<file>",
        "clip": "clip:ViT-B-32:<weights file or random>",
    }.get(source.name, source.name)


def _examples() -> list[str]:
    return [example_spec(s) for s in MODEL_SOURCES]


def create(
    source: str | ModelSource,
    inputs: ModelInputs | None = None,
    *,
    device: str | torch.device | None = None,
    preprocess: Preprocess | None = None,
    precision: str = "fp32",
    batch_size: int = 0,
    backend: str = "auto",
) -> Classifier:
    """Load a classifier from a source and its inputs (the dashboard's path); ``backend`` as
    for :func:`load_classifier`."""
    src = MODEL_SOURCES.get(source) if isinstance(source, str) else source
    clf = src.load(inputs if inputs is not None else src.inputs(), pick_device(device), preprocess)
    return _tune(clf, precision, batch_size, backend)


def load_classifier(
    name: str = DEFAULT_MODEL,
    *,
    device: str | torch.device | None = None,
    class_names: str | os.PathLike | None = None,
    preprocess: Preprocess | None = None,
    allow_pickle: bool = False,
    precision: str = "fp32",
    batch_size: int = 0,
    backend: str = "auto",
    **extras: Any,
) -> Classifier:
    """Load a classifier by spec string (see the module docstring; ``list_sources()``).

    Keyword arguments a source understands (``class_names`` for user models, ``allow_pickle``
    for pickled checkpoints, ``template`` for CLIP) go to it; ``precision`` ("fp32", or on CUDA
    "bf16"/"fp16") and ``batch_size`` (0 = chosen for the backend and device) tune the runtime;
    ``backend`` ("auto", "torch", "onnxruntime"; see :mod:`explainer.backends`) says what runs
    the forward passes (a backend that fails its load check falls back to PyTorch, with the
    reason in ``clf.backend_note``).

    Raises:
        ModelError: unknown name, missing file or weights, or outputs that do not match the
            class list; the message says what to do.
    """
    device = pick_device(device)
    source, rest = source_of(name)
    inputs = source.parse(rest, {"class_names": class_names, "allow_pickle": allow_pickle, **extras})
    return _tune(source.load(inputs, device, preprocess), precision, batch_size, backend)


def _tune(clf: Classifier, precision: str, batch_size: int, backend: str = "auto") -> Classifier:
    from explainer.backends import use_backend

    if precision not in ("fp32", "bf16", "fp16"):
        raise ModelError(f"precision must be fp32, bf16 or fp16, got {precision!r}.")
    if precision != "fp32" and clf.device.type == "cuda":
        clf.precision = precision
    if batch_size and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
        raise ModelError(f"batch size must be a positive integer, got {batch_size!r}.")
    return use_backend(clf, backend, int(batch_size or 0))


def list_sources(in_app: bool | None = None) -> list[ModelSource]:
    """The registered sources (only those offered in the app, with ``in_app=True``)."""
    return [s for s in MODEL_SOURCES if in_app is None or s.in_app == in_app]


__all__ = [
    "DEFAULT_MODEL",
    "MODEL_SOURCES",
    "ModelInputs",
    "ModelSource",
    "create",
    "list_sources",
    "load_classifier",
    "register",
    "source_of",
]
