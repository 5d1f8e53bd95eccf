"""The classifier runtime: one small interface for every model, whatever loaded it.

Every classifier, built in or brought by the user, is a :class:`Classifier`:

* ``class_names``: the K class names, index = class id;
* ``view(image)``: the model's own input geometry; any image becomes an S×S×3 uint8 RGB array,
  exactly what the model sees (regions, curves and overlays all live on this view);
* ``probs(batch)``: batched class probabilities on the classifier's device, from composited
  views (B×3×S×S float in [0, 1]); normalisation happens inside, after compositing;
* ``id`` and ``weights_hash``: a stable name and a SHA-256 of the weights, for provenance;
* ``backend``: what runs the forward passes, "torch" (the module itself) or an inference
  runtime attached by :mod:`explainer.backends` (e.g. "onnxruntime" on the CPU); gradients
  (white-box baselines) always use the PyTorch module.

Loading by name is :mod:`explainer.models.registry`'s job; nothing here knows where a model
came from.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch
from PIL import Image

from explainer.errors import ImageError, ModelError
from explainer.images import load_image

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CPU_BATCH_SIZE = 8  # measured: EfficientNet-Lite0 on 2 cores is fastest at 4-16 images a batch
CUDA_BATCH_SIZE = 256


@dataclass(frozen=True)
class Preprocess:
    """How an image becomes the model's view and then its input tensor.

    Attributes:
        size: S, the side of the square view the model sees (e.g. 224).
        resize: the short side the image is resized to before the centre crop (e.g. 256).
        interpolation: "bicubic" or "bilinear" (PIL filters, with antialiasing).
        mean, std: per-channel normalisation on the [0, 1] scale, applied after compositing.
    """

    size: int = 224
    resize: int = 256
    interpolation: str = "bilinear"
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def to_dict(self) -> dict:
        return {
            "size": self.size,
            "resize": self.resize,
            "interpolation": self.interpolation,
            "mean": list(self.mean),
            "std": list(self.std),
        }


_PIL_FILTERS = {
    "bicubic": Image.Resampling.BICUBIC,
    "bilinear": Image.Resampling.BILINEAR,
    "nearest": Image.Resampling.NEAREST,
}


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """The torch device for ``device``: "auto"/None (CUDA when available, else the CPU), "cpu",
    "cuda" or "cuda:N".

    Raises:
        ModelError: an unknown device name, or CUDA asked for where there is none (or not that
            many GPUs).
    """
    if device is None or str(device).strip().lower() in ("", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    text = str(device).strip().lower()
    if not re.fullmatch(r"cpu|cuda(:\d+)?", text):
        raise ModelError(f"unknown device {str(device)!r}; use cpu, cuda or cuda:N (or auto).")
    chosen = torch.device(text)
    if chosen.type == "cuda":
        if not torch.cuda.is_available():
            raise ModelError("CUDA was requested but no GPU is available; use device 'cpu' (or auto).")
        if chosen.index is not None and chosen.index >= torch.cuda.device_count():
            raise ModelError(
                f"there is no GPU {chosen.index} (this machine has "
                f"{torch.cuda.device_count()}); use cuda:0..cuda:{torch.cuda.device_count() - 1}."
            )
    return chosen


def device_label(device: torch.device) -> str:
    """A human-readable device name, e.g. 'NVIDIA H100 80GB HBM3' or 'CPU (2 threads)'."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({torch.get_num_threads()} threads)"


def is_out_of_memory(exc: BaseException) -> bool:
    """True for CUDA (or CPU allocator) out-of-memory errors."""
    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def weights_digest(module: torch.nn.Module) -> str:
    """SHA-256 over the state dict (names, dtypes, shapes and bytes), stable across devices."""
    h = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


class Runtime(Protocol):
    """An inference runtime that replaces the PyTorch module for forward passes (no gradients).

    Both methods take a normalised B×3×S×S float32 batch (NCHW, on the CPU or the classifier's
    device) and return float32 tensors on the same device: logits B×K, embeddings B×D.
    """

    name: str
    has_embeddings: bool

    def logits(self, x: torch.Tensor) -> torch.Tensor: ...

    def logits_and_embeddings(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...

    def describe(self) -> dict: ...


@dataclass(eq=False)
class Classifier:
    """A classifier with its view geometry, normalisation, class list and device.

    Args:
        module: maps a normalised batch B×3×S×S (float32) to logits B×K (or probabilities when
            ``outputs="probs"``). Put in eval mode and moved to ``device`` here.
        class_names: K names; the output width must equal K (checked by a dry run).
        preprocess: view geometry and normalisation.
        id: a stable name, e.g. "efficientnet_lite0" or "torchvision:resnet50".
        weights_hash: SHA-256 of the weights (computed from ``module`` when empty).
        device: where the model runs.
        batch_size: images per forward pass; halved automatically on out-of-memory.
        features: optional callable, normalised batch -> (logits B×K, embeddings B×D), used for
            the effectiveness term; ``None`` when the model offers no embeddings.
        outputs: "logits" (softmax applied here) or "probs".
        precision: "fp32", or on CUDA "bf16"/"fp16" autocast (scores are still fp32).
        runtime: the inference runtime that runs forward passes instead of ``module`` (None =
            PyTorch); set by :func:`explainer.backends.use_backend`, never by hand.
        backend_note: why this backend runs (e.g. the reason of a fallback to PyTorch).
    """

    module: torch.nn.Module
    class_names: tuple[str, ...]
    preprocess: Preprocess
    id: str
    weights_hash: str = ""
    device: torch.device = field(default_factory=pick_device)
    batch_size: int = 0
    features: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]] | None = None
    outputs: str = "logits"
    precision: str = "fp32"
    runtime: Runtime | None = None
    backend_note: str = ""

    def __post_init__(self) -> None:
        self.device = pick_device(self.device)
        self.class_names = tuple(str(c) for c in self.class_names)
        if len(self.class_names) < 2:
            raise ModelError(f"{self.id}: a classifier needs at least 2 classes, got {len(self.class_names)}.")
        if self.outputs not in ("logits", "probs"):
            raise ModelError(f"outputs must be 'logits' or 'probs', got {self.outputs!r}.")
        if self.precision not in ("fp32", "bf16", "fp16"):
            raise ModelError(f"precision must be fp32, bf16 or fp16, got {self.precision!r}.")
        if self.precision != "fp32" and self.device.type != "cuda":
            self.precision = "fp32"  # reduced precision is a GPU option only
        self.module = self.module.eval().to(self.device)
        # Channels-last is faster for convolutions on CUDA and on AVX-512 CPUs alike (measured:
        # EfficientNet-Lite0 on 2 CPU cores, 40 -> 60 images/s at batch 8).
        try:
            self.module = self.module.to(memory_format=torch.channels_last)
        except RuntimeError:  # some layers (e.g. 3-D convolutions) have no channels-last layout
            pass
        if not self.batch_size:
            self.batch_size = CUDA_BATCH_SIZE if self.device.type == "cuda" else CPU_BATCH_SIZE
        if not self.weights_hash:
            self.weights_hash = weights_digest(self.module)
        mean = torch.tensor(self.preprocess.mean, dtype=torch.float32).view(1, 3, 1, 1)
        std = torch.tensor(self.preprocess.std, dtype=torch.float32).view(1, 3, 1, 1)
        self._mean, self._std = mean.to(self.device), std.to(self.device)
        self._check_output_width()

    # -- geometry ---------------------------------------------------------------------------
    @property
    def size(self) -> int:
        """S, the side of the view."""
        return self.preprocess.size

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def has_embeddings(self) -> bool:
        return self.features is not None

    @property
    def backend(self) -> str:
        """The name of what runs the forward passes: "torch" or the runtime's name."""
        return self.runtime.name if self.runtime is not None else "torch"

    def view(self, image, size: int | None = None) -> np.ndarray:
        """The model's view of ``image``: resize the short side, then centre-crop.

        Args:
            image: a path, bytes, PIL image or array in any mode (see ``images.load_image``).
            size: the output side; defaults to S. A larger size gives the same crop at a higher
                resolution (for SAM), scaling the resize step by ``size / S``.

        Returns:
            size×size×3 uint8 RGB array.
        """
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or not 16 <= size <= 4096):
            raise ImageError(f"the view size must be an integer from 16 to 4096 pixels, got {size!r}")
        img = load_image(image)
        s, size = self.size, size or self.size
        w, h = img.size
        r = self.preprocess.resize
        # torchvision's Resize(r): the short side becomes r, the long side int(r * long / short).
        new_w, new_h = (r, int(r * h / w)) if w <= h else (int(r * w / h), r)
        new_w, new_h = max(s, new_w), max(s, new_h)
        left, top = int(round((new_w - s) / 2.0)), int(round((new_h - s) / 2.0))
        resample = _PIL_FILTERS[self.preprocess.interpolation]
        if size == s:
            img = img.resize((new_w, new_h), resample)
            return np.asarray(img.crop((left, top, left + s, top + s)), dtype=np.uint8).copy()
        # Another size: resample exactly the S-view's crop box (in image coordinates), so the
        # result is the same crop; rounding the resize and the crop at `size` shifts it.
        sx, sy = w / new_w, h / new_h
        box = (left * sx, top * sy, (left + s) * sx, (top + s) * sy)
        return np.asarray(img.resize((size, size), resample, box=box), dtype=np.uint8).copy()

    def to_batch(self, views: np.ndarray) -> torch.Tensor:
        """B×S×S×3 (or S×S×3) uint8 views -> B×3×S×S float32 in [0, 1] on the device."""
        views = np.asarray(views)
        if views.ndim == 3:
            views = views[None]
        views = views if views.flags.writeable else views.copy()  # torch wants writable memory
        t = torch.from_numpy(np.ascontiguousarray(views)).to(self.device)
        return t.permute(0, 3, 1, 2).float().div_(255.0)

    # -- scoring ----------------------------------------------------------------------------
    def normalise(self, batch: torch.Tensor) -> torch.Tensor:
        """B×3×S×S in [0, 1] -> the model's normalised input."""
        return ((batch - self._mean) / self._std).contiguous(memory_format=torch.channels_last)

    def _model_input(self, batch: torch.Tensor, scratch: bool) -> torch.Tensor:
        """What the forward pass gets: normalised, channels-last for PyTorch (its fast CPU and
        GPU layout), plain NCHW for a runtime (which would copy channels-last back).
        ``scratch``: the caller will not read ``batch`` again, so it is normalised in place
        (the same arithmetic, one full-batch allocation fewer)."""
        x = batch.sub_(self._mean).div_(self._std) if scratch else (batch - self._mean) / self._std
        return x.contiguous(memory_format=self.input_layout)

    @property
    def input_layout(self) -> torch.memory_format:
        """The memory layout the forward pass reads: channels-last for PyTorch, NCHW for a
        runtime (composers build batches in it, so no batch is copied to change layout)."""
        return torch.contiguous_format if self.runtime is not None else torch.channels_last

    def _autocast(self):
        if self.precision == "fp32":
            return torch.autocast(self.device.type, enabled=False)
        dtype = torch.bfloat16 if self.precision == "bf16" else torch.float16
        return torch.autocast("cuda", dtype=dtype)

    def _to_probs(self, out: torch.Tensor) -> torch.Tensor:
        out = out.float()
        probs = out.softmax(dim=1) if self.outputs == "logits" else out
        if not bool(torch.isfinite(probs).all()):
            raise ModelError(
                f"{self.id} returned non-finite scores (NaN or infinity) for some images: the model "
                "is broken for these inputs, so nothing can be explained with it."
            )
        return probs

    @torch.inference_mode()
    def probs(self, batch: torch.Tensor, scratch: bool = False) -> torch.Tensor:
        """Class probabilities for one batch.

        Args:
            batch: B×3×S×S float32 in [0, 1] on ``self.device`` (composited views).
            scratch: ``batch`` may be overwritten (the caller composed it for this call only).

        Returns:
            B×K float32 probabilities on the device (rows sum to 1).
        """
        x = self._model_input(batch, scratch)
        if self.runtime is not None:
            return self._to_probs(self.runtime.logits(x))
        with self._autocast():
            out = self.module(x)
        return self._to_probs(out)

    def differentiable_probs(self, batch: torch.Tensor) -> torch.Tensor:
        """Class probabilities (B×K float32) with autograd on, in fp32: for the white-box
        baselines (gradients with respect to the [0, 1] input, normalisation included)."""
        with torch.enable_grad(), torch.autocast(self.device.type, enabled=False):
            return self._to_probs(self.module(self.normalise(batch)))

    @torch.inference_mode()
    def probs_and_embeddings(self, batch: torch.Tensor, scratch: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Probabilities (B×K) and embeddings (B×D, float32) from one forward pass
        (``scratch`` as in :meth:`probs`)."""
        if self.features is None:
            raise ModelError(f"{self.id} offers no embeddings (the effectiveness term needs them).")
        if self.runtime is not None and self.runtime.has_embeddings:
            logits, emb = self.runtime.logits_and_embeddings(self._model_input(batch, scratch))
        else:  # PyTorch (also when the runtime offers logits only)
            x = self.normalise(batch) if self.runtime is not None else self._model_input(batch, scratch)
            with self._autocast():
                logits, emb = self.features(x)
        return self._to_probs(logits), emb.float()

    def predict(self, views: np.ndarray) -> np.ndarray:
        """Probabilities for many uint8 views (B×S×S×3), chunked; returns B×K float32 numpy."""
        views = np.asarray(views)
        outs = [p.cpu() for p in self.map_batches(lambda s: self.probs(self.to_batch(views[s])), len(views))]
        return torch.cat(outs).numpy() if outs else np.zeros((0, self.num_classes), np.float32)

    def map_batches(self, fn: Callable[[slice], torch.Tensor], n: int):
        """Apply ``fn`` to consecutive slices of ``range(n)``, ``batch_size`` at a time.

        On out-of-memory the batch size is halved (and kept halved) and the slice retried, so
        a too-large default never fails a run. Yields ``fn``'s results in order.
        """
        start = 0
        while start < n:
            stop = min(n, start + self.batch_size)
            try:
                out = fn(slice(start, stop))
            except Exception as exc:
                if not is_out_of_memory(exc) or self.batch_size == 1:
                    if is_out_of_memory(exc):
                        raise ModelError(
                            f"{self.id}: out of memory even with one image a batch on {device_label(self.device)}."
                        ) from exc
                    raise
                self.batch_size = max(1, self.batch_size // 2)
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
                continue
            start = stop
            yield out

    def _check_output_width(self) -> None:
        """Run one black image through the model: the output must be B×K with K = len(class_names)."""
        x = torch.zeros(1, 3, self.size, self.size, device=self.device)
        try:
            with torch.inference_mode(), self._autocast():
                out = self.module(self.normalise(x))
        except Exception as exc:
            raise ModelError(f"{self.id}: the model failed on a {self.size}×{self.size} input: {exc}") from exc
        if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[0] != 1:
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ModelError(f"{self.id}: expected outputs of shape (batch, classes), got {shape}.")
        if out.shape[1] != self.num_classes:
            raise ModelError(
                f"{self.id}: the model outputs {out.shape[1]} scores but the class list has "
                f"{self.num_classes} names; they must match."
            )
        if not bool(torch.isfinite(out).all()):
            raise ModelError(
                f"{self.id} returns non-finite scores (NaN or infinity) for a black image: the model "
                "is broken, so nothing can be explained with it."
            )

    def describe(self) -> dict:
        """Provenance: id, weights hash, classes, geometry, device, backend (and why)."""
        runtime = self.runtime.describe() if self.runtime is not None else {}
        return {
            "id": self.id,
            "weights_hash": self.weights_hash,
            "num_classes": self.num_classes,
            "preprocess": self.preprocess.to_dict(),
            "device": str(self.device),
            "device_name": device_label(self.device),
            "precision": self.precision,
            "embeddings": self.has_embeddings,
            "backend": self.backend,
            "backend_note": self.backend_note,
            **({"runtime": runtime} if runtime else {}),
        }


__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "Classifier",
    "Preprocess",
    "Runtime",
    "device_label",
    "is_out_of_memory",
    "pick_device",
    "weights_digest",
]
