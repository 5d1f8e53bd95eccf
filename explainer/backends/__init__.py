"""Inference backends: what runs a classifier's forward passes, chosen by name.

A :class:`~explainer.models.classifier.Classifier` always holds its PyTorch module (gradients,
embeddings when a runtime lacks them, and the reference for checks). A backend may attach a
faster inference runtime in front of it: on the CPU, ONNX Runtime runs EfficientNet-Lite0
several times faster than PyTorch eager (see the README's "Backends" section for the numbers).

* ``torch``: the PyTorch module (the reference; CPU or CUDA).
* ``onnxruntime``: the model exported once to ONNX (per model id and weights hash, in
  ``<cache>/backends/onnx/<key>/``) and run by ONNX Runtime on the CPU.
* ``auto`` (the default): ``onnxruntime`` on the CPU when it is installed and passes its check,
  else ``torch``; always ``torch`` on CUDA.

Every attached runtime is checked at load against PyTorch on a probe batch (max |Δ logit| ≤
:data:`PROBE_TOLERANCE`); any failure (package missing, export or check failed) falls back to
PyTorch and records why in ``clf.backend_note`` (and so in the provenance of every result).
Run keys never depend on the backend: a saved run opens under any backend.

Adding a backend is one module that calls :func:`register` (see :mod:`.onnx_runtime`).
"""

from __future__ import annotations

from explainer.backends.base import (
    BACKENDS,
    PROBE_TOLERANCE,
    Backend,
    BackendUnavailable,
    RuntimeOptions,
    backend_names,
    describe_backends,
    max_logit_difference,
    register,
    runs_with,
    use_backend,
)

# The backends register themselves on import: PyTorch first (the reference and the fallback).
from explainer.backends import torch_backend, onnx_runtime  # noqa: F401  isort: skip

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
