"""SAM's image encoder on ONNX Runtime: the CPU's faster path, exported once per weights.

On this project's 2-core CPU the ViT-B image encoder (one 1024×1024 input) takes about 30 s in
PyTorch eager and about 17–21 s in ONNX Runtime, with features within 1e-5 (measured side by
side; see the README's speed section). The encoder's input is always 1×3×1024×1024 (SAM pads
every image to that square), so one traced graph serves every image.

The export is made the first time a SAM's weights are encoded on the CPU, with that image as
the tracing example: tracing runs PyTorch's encoder once anyway, so its features are kept (a
forward hook) and returned for that image, and the exported graph is checked against them
(max |Δ feature| ≤ :data:`TOLERANCE`). The graph and the check are stored in
``<cache>/backends/sam-onnx/<weights fingerprint>/``; later processes load both. A failed
export or check falls back to PyTorch and says why (:func:`encoder_note`).
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from explainer import settings

ENCODER_RUNTIMES = ("auto", "torch", "onnxruntime")
TOLERANCE = 1e-3  # max |Δ feature| between the export and PyTorch (features are of order 1)
ENV_VAR = "LIMA_SAM_ENCODER"  # auto | torch | onnxruntime: what runs SAM's image encoder
_INPUT, _OUTPUT = "image", "features"


@dataclass
class OnnxEncoder:
    """An exported SAM image encoder and the record of its check.

    ``__call__``: 1×3×1024×1024 float32 (SAM's preprocessed input) -> 1×256×64×64 float32 (for
    ViT-B/L/H), as torch tensors on the CPU.
    """

    session: Any
    folder: Path
    check: dict[str, Any]

    def __call__(self, x: Any) -> Any:
        import torch

        (features,) = self.session.run([_OUTPUT], {_INPUT: x.detach().cpu().float().contiguous().numpy()})
        return torch.from_numpy(features)


_LOCK = threading.Lock()
_LOADED: dict[str, OnnxEncoder | None] = {}  # weights fingerprint -> encoder (None: unusable)
_NOTES: dict[str, str] = {}  # weights fingerprint -> why PyTorch runs, or what runs


def requested_runtime() -> str:
    """What the environment asks for (``LIMA_SAM_ENCODER``; default ``auto``)."""
    value = os.environ.get(ENV_VAR, "auto").strip().lower() or "auto"
    return value if value in ENCODER_RUNTIMES else "auto"


def wants_onnx(device: Any, requested: str | None = None) -> bool:
    """ONNX Runtime runs the encoder on the CPU when asked (``auto`` or ``onnxruntime``) and installed."""
    requested = requested or requested_runtime()
    if requested == "torch" or getattr(device, "type", str(device)) != "cpu":
        return False
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def encoder_note(fingerprint: str) -> str:
    """One line: what ran this SAM's encoder last, or why PyTorch did."""
    return _NOTES.get(fingerprint, "PyTorch")


def folder_for(fingerprint: str) -> Path:
    return settings.current().cache_dir / "backends" / "sam-onnx" / fingerprint[:24]


def encode(sam: Any, x: Any, fingerprint: str) -> Any:
    """SAM's image features for one preprocessed input, by ONNX Runtime where it can.

    Args:
        sam: a ``segment_anything`` ``Sam`` on the CPU.
        x: 1×3×1024×1024 float32 tensor (``sam.preprocess`` output).
        fingerprint: the weights' fingerprint (:func:`explainer.sam_masks.weights_fingerprint`).

    Returns:
        1×C×64×64 float32 features (C = 256): PyTorch's own on the first (exporting) run.
    """
    with _LOCK:
        if fingerprint not in _LOADED:
            _LOADED[fingerprint], known = _load(fingerprint)
            if _LOADED[fingerprint] is None and not known:  # never exported (or under another version)
                exported = _export(sam, x, fingerprint)
                if exported is not None:  # PyTorch's features from the trace
                    return exported
        encoder = _LOADED[fingerprint]
    if encoder is None:
        return sam.image_encoder(x)
    return encoder(x)


def _session(path: Path) -> Any:
    import onnxruntime as ort
    import torch

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = torch.get_num_threads()  # the same share of the machine as PyTorch
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def _load(fingerprint: str) -> tuple[OnnxEncoder | None, bool]:
    """The stored export of these weights if its check passed under this ONNX Runtime, and
    whether the question is settled (False: nothing usable is stored, so export)."""
    import onnxruntime as ort

    folder = folder_for(fingerprint)
    try:
        check = json.loads((folder / "check.json").read_text())
    except (OSError, ValueError):
        return None, False
    if check.get("onnxruntime") != ort.__version__:
        return None, False  # another runtime version: export and check again
    if not check.get("passed"):  # the same failure would come back: PyTorch, without retrying
        _NOTES[fingerprint] = f"PyTorch: the export did not pass its check ({check.get('reason', '?')})"
        return None, True
    try:
        encoder = OnnxEncoder(_session(folder / "encoder.onnx"), folder, check)
    except Exception as exc:
        _NOTES[fingerprint] = f"PyTorch: the stored export does not load ({type(exc).__name__})"
        return None, True
    _NOTES[fingerprint] = f"ONNX Runtime (exported {check.get('exported', '?')}, max |Δ| {check['max_abs_diff']:.1e})"
    return encoder, True


def _export(sam: Any, x: Any, fingerprint: str) -> Any | None:
    """Export the encoder with ``x`` as the tracing example and check it against PyTorch.

    Returns PyTorch's features for ``x`` (computed by the trace), or None when the export could
    not even trace (the caller then runs PyTorch itself).
    """
    import onnxruntime as ort
    import torch

    folder = folder_for(fingerprint)
    tmp = folder.with_name(f".{folder.name}.{os.getpid()}.{threading.get_ident()}")
    captured: list[Any] = []
    hook = sam.image_encoder.register_forward_hook(lambda _m, _i, out: captured.append(out.detach().clone()))
    start = time.perf_counter()
    try:
        tmp.mkdir(parents=True, exist_ok=True)
        with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
            # The tracer warns that Python numbers become constants: the input size is fixed.
            warnings.simplefilter("ignore")
            torch.onnx.export(
                sam.image_encoder,
                (x.clone(),),
                str(tmp / "encoder.onnx"),
                input_names=[_INPUT],
                output_names=[_OUTPUT],
                opset_version=17,
                dynamo=False,  # the tracer: 3× quicker to export than torch.export here, same graph speed
            )
    except Exception as exc:
        hook.remove()
        shutil.rmtree(tmp, ignore_errors=True)
        reason = f"the encoder did not export to ONNX ({type(exc).__name__})"
        _NOTES[fingerprint] = f"PyTorch: {reason}"
        try:  # remembered, so later processes do not try again under this ONNX Runtime
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "check.json").write_text(
                json.dumps({"passed": False, "reason": reason, "onnxruntime": ort.__version__})
            )
        except OSError:
            pass
        return captured[0] if captured else None
    hook.remove()
    exported_s = time.perf_counter() - start
    reference = captured[0] if captured else None
    if reference is None:
        with torch.no_grad():
            reference = sam.image_encoder(x)
    try:
        encoder = OnnxEncoder(_session(tmp / "encoder.onnx"), folder, {})
        diff = float(np.abs(encoder(x).numpy() - reference.cpu().numpy()).max())
    except Exception as exc:
        diff, encoder = float("inf"), None
        _NOTES[fingerprint] = f"PyTorch: the exported encoder does not run ({type(exc).__name__})"
    passed = encoder is not None and diff <= TOLERANCE
    check = {
        "passed": passed,
        "max_abs_diff": diff,
        "tolerance": TOLERANCE,
        "onnxruntime": ort.__version__,
        "torch": torch.__version__,
        "export_s": round(exported_s, 1),
        "exported": time.strftime("%Y-%m-%d %H:%M", time.localtime()),
        **({} if passed else {"reason": f"max |Δ feature| {diff:.1e} > {TOLERANCE:g}"}),
    }
    (tmp / "check.json").write_text(json.dumps(check, indent=1))
    shutil.rmtree(folder, ignore_errors=True)
    try:
        tmp.replace(folder)  # atomic: another process sees the whole export or none
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
    if passed and encoder is not None:
        encoder.folder, encoder.check = folder, check
        encoder.session = _session(folder / "encoder.onnx")
        _LOADED[fingerprint] = encoder
        _NOTES[fingerprint] = f"ONNX Runtime (exported now in {exported_s:.0f} s, max |Δ| {diff:.1e})"
    elif fingerprint not in _NOTES or _NOTES[fingerprint].startswith("ONNX"):
        _NOTES[fingerprint] = f"PyTorch: {check.get('reason', 'the export failed its check')}"
    return reference


def forget() -> None:
    """Drop the loaded encoders (tests; a new cache folder)."""
    with _LOCK:
        _LOADED.clear()
        _NOTES.clear()


__all__ = ["ENCODER_RUNTIMES", "ENV_VAR", "TOLERANCE", "OnnxEncoder", "encode", "encoder_note", "wants_onnx"]
