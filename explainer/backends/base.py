"""The backend registry, the runtime options and the choice with its load check (see the
package docstring of :mod:`explainer.backends`)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from explainer.errors import ModelError
from explainer.models.classifier import Classifier, Runtime
from explainer.options import Options, option
from explainer.registry import Registry

PROBE_TOLERANCE = 1e-4  # max |Δ logit| between a runtime and PyTorch on the probe batch
PROBE_IMAGES = 4
log = logging.getLogger(__name__)


class BackendUnavailable(ModelError):
    """A backend cannot run this classifier here (the message says why); callers fall back."""


@dataclass(frozen=True)
class Backend:
    """One way to run forward passes.

    Attributes:
        name: "torch", "onnxruntime", ...
        label: display name; description: one sentence for the UI and ``--help``.
        devices: the device types it runs on ("cpu", "cuda").
        attach: ``attach(clf) -> Runtime`` (None = the PyTorch module itself); raises
            :class:`BackendUnavailable` (or anything else) when it cannot.
        batch_size: ``batch_size(clf) -> int``, the images per forward pass it runs fastest at
            for this classifier on its device (measured; see the README).
        missing: ``missing() -> str | None``, why it is not installed (None when it is).
    """

    name: str
    label: str
    description: str
    devices: tuple[str, ...]
    attach: Callable[[Classifier], Runtime | None]
    batch_size: Callable[[Classifier], int]
    missing: Callable[[], str | None] = lambda: None


BACKENDS: Registry[Backend] = Registry("backend", ModelError)


def register(backend: Backend) -> Backend:
    """Add a backend (called by the module that defines it)."""
    return BACKENDS.register(backend)


def backend_names() -> tuple[str, ...]:
    """ "auto" and every registered backend, for the options' choices."""
    return ("auto", *BACKENDS.names())


@dataclass(frozen=True)
class RuntimeOptions(Options):
    """How forward passes run (not part of any run key: results do not depend on it beyond float
    noise, which the load check bounds)."""

    error = ModelError
    what = "runtime option"

    backend: str = option(
        "auto",
        choices=("auto", "torch", "onnxruntime"),
        labels={"auto": "automatic (fastest here)", "torch": "PyTorch", "onnxruntime": "ONNX Runtime (CPU)"},
        help="What runs the model: auto = ONNX Runtime on the CPU (checked against PyTorch at load), "
        "PyTorch on a GPU; torch; onnxruntime.",
    )
    precision: str = option(
        "fp32",
        choices=("fp32", "bf16", "fp16"),
        help="GPU only: bf16/fp16 autocast for the model (scores are still computed in fp32).",
    )


def max_logit_difference(clf: Classifier, runtime: Runtime, images: int = PROBE_IMAGES) -> float:
    """max |Δ logit| between ``runtime`` and the PyTorch module on a probe batch: seeded random
    images, a black and a mid-grey one (B×3×S×S in [0, 1], normalised as the model expects)."""
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(images, 3, clf.size, clf.size, generator=gen)
    x = torch.cat([x, torch.zeros(1, 3, clf.size, clf.size), torch.full((1, 3, clf.size, clf.size), 0.5)])
    x = clf.normalise(x.to(clf.device))
    with torch.inference_mode():
        ref = clf.module(x).float()
        got = runtime.logits(x).float()
    if got.shape != ref.shape:
        return float("inf")
    diff = (got.to(ref.device) - ref).abs().max().item()
    return diff if diff == diff else float("inf")  # NaN -> inf


def _resolve(name: str, device_type: str) -> list[str]:
    """The backends to try, in order, for a requested name ("auto" expands)."""
    if name == "auto":
        return [b.name for b in BACKENDS if device_type in b.devices and b.name != "torch"][:1] + ["torch"]
    return [name] if name == "torch" else [name, "torch"]


def use_backend(clf: Classifier, backend: str = "auto", batch_size: int = 0) -> Classifier:
    """Attach the requested backend to ``clf`` (in place; returns it).

    Tries the backend (for "auto", the fastest one for the device), checks it against PyTorch on
    a probe batch and falls back to PyTorch when anything fails, recording the reason in
    ``clf.backend_note``. ``batch_size`` 0 = the backend's measured best for the device.

    Raises:
        ModelError: an unknown backend name.
    """
    name = (backend or "auto").strip().lower()
    if name != "auto":
        BACKENDS.get(name)  # unknown names: a readable error listing the valid ones
    clf.runtime, notes = None, []
    for candidate in _resolve(name, clf.device.type):
        entry = BACKENDS.get(candidate)
        if clf.device.type not in entry.devices:
            notes.append(f"{entry.label} does not run on {clf.device.type}")
            continue
        reason = entry.missing()
        if reason:
            notes.append(f"{entry.label} is not available ({reason})")
            continue
        try:
            runtime = entry.attach(clf)
            if runtime is not None:
                diff = max_logit_difference(clf, runtime)
                if not diff <= PROBE_TOLERANCE:
                    raise BackendUnavailable(
                        f"its logits differ from PyTorch's by {diff:.2g} on the probe batch "
                        f"(allowed {PROBE_TOLERANCE:g})"
                    )
        except Exception as exc:  # any failure of an optional runtime: PyTorch still works
            notes.append(f"{entry.label} failed: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
            log.warning("backend %s for %s: %s", candidate, clf.id, notes[-1])
            continue
        clf.runtime = runtime
        clf.batch_size = int(batch_size) if batch_size else entry.batch_size(clf)
        if candidate == "torch" and notes:
            clf.backend_note = "PyTorch, because " + "; ".join(notes)
        elif candidate == "torch":
            clf.backend_note = (
                "PyTorch (asked for)" if name == "torch" else f"PyTorch (the fastest on {clf.device.type})"
            )
        else:
            detail = getattr(runtime, "note", "")
            clf.backend_note = (
                f"{entry.label}{' (automatic)' if name == 'auto' else ''}{': ' + detail if detail else ''}"
            )
        return clf
    raise ModelError(f"{clf.id}: no backend could run it ({'; '.join(notes)}).")  # torch never fails above


def runs_with(clf: Classifier) -> str:
    """One line for the UI and the CLI: what runs the model, on what, at which batch size."""
    from explainer.models.classifier import device_label

    entry = BACKENDS.get(clf.backend)
    text = f"{entry.label} on {device_label(clf.device)}, {clf.batch_size} images a batch"
    if clf.precision != "fp32":
        text += f", {clf.precision} autocast"
    fallback = clf.backend_note if clf.backend_note.startswith("PyTorch, because") else ""
    return text + (f" ({fallback[len('PyTorch, ') :]})" if fallback else "")


def describe_backends() -> list[dict[str, Any]]:
    """Every backend with whether it is installed (for ``--help`` texts and the README)."""
    return [{"name": b.name, "label": b.label, "installed": b.missing() is None} for b in BACKENDS]


__all__ = [
    "BACKENDS",
    "PROBE_TOLERANCE",
    "Backend",
    "BackendUnavailable",
    "RuntimeOptions",
    "backend_names",
    "describe_backends",
    "max_logit_difference",
    "register",
    "runs_with",
    "use_backend",
]
