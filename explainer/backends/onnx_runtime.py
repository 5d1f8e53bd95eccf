"""The ONNX Runtime backend: the model exported once to ONNX and run by ONNX Runtime on the CPU.

The export happens once per model id, weights hash and input size, into
``<cache>/backends/onnx/<key>/model.onnx`` (``<cache>`` is ``LIMA_CACHE_DIR`` or the user cache
folder), with two outputs, ``logits`` (B×K) and ``embeddings`` (B×D) when the model offers
embeddings; a model whose embeddings do not export gets a logits-only graph (its embeddings then
come from PyTorch). The batch dimension is dynamic. PyTorch's TorchScript-tracer exporter is
tried first (measured: 3.6 s against 11.4 s for the dynamo exporter on EfficientNet-Lite0, with
equal runtime speed), the dynamo exporter second (it needs ``onnxscript``).

Measured on 2 CPU cores (README, "Backends"): EfficientNet-Lite0 runs about 4-6× faster than
PyTorch eager, logits within 1e-5. OpenVINO was measured as a tie with ONNX Runtime and is not
kept (one backend, one dependency).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from explainer import settings
from explainer.backends.base import Backend, BackendUnavailable, register
from explainer.models.classifier import Classifier

OPSET = 17
CPU_BATCH_SIZE = 32  # measured (bench --backends, 2 busy cores): 7, 10, 13 images/s at batch 8, 16, 32
INPUT, LOGITS, EMBEDDINGS = "input", "logits", "embeddings"


def _missing() -> str | None:
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return "pip install onnx onnxruntime (see requirements.txt)"
    return None


def export_key(clf: Classifier, embeddings: bool) -> str:
    """The cache key of a classifier's export: model id, weights hash, input size, output kind,
    whether the embeddings are an output, and the torch and opset versions that wrote it."""
    text = "|".join(
        [clf.id, clf.weights_hash, str(clf.size), clf.outputs, str(embeddings), torch.__version__, str(OPSET)]
    )
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def export_dir(clf: Classifier, embeddings: bool) -> Path:
    """``<cache>/backends/onnx/<key>/`` (not created here)."""
    return settings.current().cache_dir / "backends" / "onnx" / export_key(clf, embeddings)


class _Exported(torch.nn.Module):
    """The graph to export: normalised B×3×S×S -> logits (and embeddings)."""

    def __init__(self, clf: Classifier, embeddings: bool):
        super().__init__()
        self.model = clf.module  # registered, so its parameters are the graph's weights
        self.features = clf.features if embeddings else None

    def forward(self, x: torch.Tensor):
        if self.features is not None:
            logits, emb = self.features(x)
            return logits, emb.flatten(1)
        return self.model(x)


def _export(clf: Classifier, embeddings: bool, path: Path) -> None:
    """Write the ONNX graph to ``path`` (tracer first, dynamo second); raises on failure."""
    wrapper = _Exported(clf, embeddings).eval()
    names = [LOGITS, EMBEDDINGS] if embeddings else [LOGITS]
    example = (torch.rand(2, 3, clf.size, clf.size, device=clf.device),)
    axes = {name: {0: "batch"} for name in [INPUT, *names]}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    errors = []
    for dynamo in (False, True):
        if dynamo:
            try:
                import onnxscript  # noqa: F401  the dynamo exporter needs it
            except ImportError:
                errors.append("dynamo exporter: onnxscript is not installed")
                break
        try:
            with warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")  # the tracer's deprecation and constant-folding notes
                torch.onnx.export(
                    wrapper,
                    example,
                    str(tmp),
                    input_names=[INPUT],
                    output_names=names,
                    dynamic_axes=axes,
                    opset_version=OPSET,
                    dynamo=dynamo,
                )
            os.replace(tmp, path)  # atomic: a concurrent reader sees the whole file or none
            return
        except Exception as exc:
            errors.append(f"{'dynamo' if dynamo else 'tracer'} exporter: {str(exc).splitlines()[0][:200]}")
        finally:
            tmp.unlink(missing_ok=True)
    raise BackendUnavailable("the ONNX export failed (" + "; ".join(errors) + ")")


class OnnxRuntime:
    """A classifier's ONNX graph in an ONNX Runtime CPU session (see the module docstring)."""

    name = "onnxruntime"

    def __init__(self, path: Path, has_embeddings: bool, export_s: float, threads: int):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.intra_op_num_threads = threads  # as many as PyTorch uses: the same share of the machine
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.path, self.has_embeddings, self.export_s = path, has_embeddings, export_s
        self.version = ort.__version__
        self.note = f"exported {'now' if export_s else 'earlier'} to {path.parent.name}"

    def _run(self, x: torch.Tensor, names: list[str]) -> list[np.ndarray]:
        array = x.detach().to("cpu", torch.float32).contiguous().numpy()  # NCHW, whatever the layout
        return self.session.run(names, {INPUT: array})

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        (out,) = self._run(x, [LOGITS])
        return torch.from_numpy(out).to(x.device)

    def logits_and_embeddings(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits, emb = self._run(x, [LOGITS, EMBEDDINGS])
        return torch.from_numpy(logits).to(x.device), torch.from_numpy(emb).to(x.device)

    def describe(self) -> dict:
        return {
            "name": self.name,
            "onnxruntime": self.version,
            "export": str(self.path.parent.name),
            "embeddings": self.has_embeddings,
            "threads": self.session.get_session_options().intra_op_num_threads,
        }


def attach(clf: Classifier) -> OnnxRuntime:
    """Export ``clf`` (once; cached) and open an ONNX Runtime session on it.

    Embeddings are an output when the model has them and they export; else logits only.
    """
    attempts = [True, False] if clf.has_embeddings else [False]
    failures = []
    for embeddings in attempts:
        folder = export_dir(clf, embeddings)
        path = folder / "model.onnx"
        start, export_s = time.perf_counter(), 0.0
        try:
            if not path.is_file():
                folder.mkdir(parents=True, exist_ok=True)
                _export(clf, embeddings, path)
                export_s = time.perf_counter() - start
                meta = {"model": clf.id, "weights_hash": clf.weights_hash, "size": clf.size, "embeddings": embeddings}
                (folder / "meta.json").write_text(json.dumps({**meta, "export_s": round(export_s, 2)}, indent=1))
            return OnnxRuntime(path, embeddings, export_s, torch.get_num_threads())
        except Exception as exc:
            failures.append(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    raise BackendUnavailable("; ".join(failures))


register(
    Backend(
        "onnxruntime",
        "ONNX Runtime",
        "The model exported once to ONNX and run by ONNX Runtime on the CPU (several times faster than "
        "PyTorch there; checked against PyTorch at load).",
        ("cpu",),
        attach=attach,
        batch_size=lambda clf: CPU_BATCH_SIZE,
        missing=_missing,
    )
)
