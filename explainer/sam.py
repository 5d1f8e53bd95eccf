"""SAM regions: Segment Anything's automatic masks turned into one label map.

SAM weights do not ship with the product; the user supplies a checkpoint (vit_b, vit_l or vit_h
from Meta's release), see :data:`SAM_DOWNLOAD_HINT`. ``segment_anything`` and ``torch`` are
imported lazily, inside the functions that need them, so importing this module stays cheap and
works without them. The mask post-processing (overlaps, tiny masks, the residual region) is the
pure algebra of :mod:`explainer.masks`.

:class:`SamOptions` is the one definition of SAM's settings (defaults, ranges, help): the region
registry, the command line and the UI all read it.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from explainer import settings
from explainer.errors import RegionError, SamUnavailable
from explainer.labelmap import RegionOptions, relabel
from explainer.masks import masks_to_labels
from explainer.options import option

if TYPE_CHECKING:
    import torch
    from segment_anything.modeling import Sam

__all__ = [
    "SAM_CPU_PRESET",
    "SAM_DOWNLOAD_HINT",
    "SAM_ENV_VAR",
    "SAM_MODEL_TYPES",
    "SAM_STAGE_SECONDS",
    "SamOptions",
    "SamStatus",
    "find_sam_checkpoint",
    "generate_masks",
    "load_sam",
    "masks_to_labels",
    "sam_cost_s",
    "sam_regions",
    "sam_status",
    "shared_cache",
]

SAM_ENV_VAR = "LIMA_SAM_CHECKPOINT"
SAM_DIR_ENV_VAR = "LIMA_SAM_DIR"
SAM_MODEL_TYPES = ("vit_b", "vit_l", "vit_h")
# Width of image_encoder.pos_embed (the ViT embedding dim) in Meta's checkpoints.
_EMBED_DIM_TO_TYPE = {768: "vit_b", 1024: "vit_l", 1280: "vit_h"}

SAM_DOWNLOAD_HINT = (
    "SAM needs a checkpoint from Meta's Segment Anything release: "
    "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_b_01ec64.pth (vit_b, ~375 MB, "
    "the smallest), sam_vit_l_0b3195.pth (vit_l) or sam_vit_h_4b8939.pth (vit_h) from the same "
    f"address. Then either set {SAM_ENV_VAR}=/path/to/file.pth, or put the file in "
    f"~/.cache/lima-lens/sam/ (or in the directory named by {SAM_DIR_ENV_VAR})."
)


@dataclass(frozen=True)
class SamOptions(RegionOptions):
    """SAM's automatic mask generator and the post-processing (the LiMA reference: stability 0.8)."""

    checkpoint: str | None = option(
        None,
        kind="path",
        optional=True,
        help="SAM checkpoint file (.pth); default: the LIMA_SAM_CHECKPOINT variable or the SAM folder of the cache.",
    )
    model_type: str | None = option(
        None, choices=SAM_MODEL_TYPES, optional=True, help="vit_b, vit_l or vit_h; default: read from the checkpoint."
    )
    points_per_side: int = option(
        32, low=4, high=64, step=1, help="Prompt points along each side (points_per_side² prompts)."
    )
    points_per_batch: int = option(
        64,
        low=1,
        high=1024,
        step=1,
        help="Prompt points the decoder runs at once (more = faster on a GPU, more memory; same masks).",
    )
    pred_iou_thresh: float = option(
        0.88, low=0.0, high=1.0, step=0.01, help="Drop masks whose predicted IoU is below this."
    )
    stability_score_thresh: float = option(
        0.8, low=0.0, high=1.0, step=0.01, help="Drop unstable masks (0.8 is the LiMA setting)."
    )
    box_nms_thresh: float = option(
        0.7, low=0.0, high=1.0, step=0.01, help="Box IoU above which duplicate masks are suppressed (1 = keep all)."
    )
    resolution: int | None = option(
        None,
        low=224,
        high=1024,
        step=32,
        unit="px",
        optional=True,
        help="Square size SAM sees; default: the image as given.",
    )
    min_fraction: float = option(
        0.0005,
        low=0.0,
        high=0.999,
        ui_high=0.05,
        step=0.0005,
        help="Drop masks covering at most this fraction of the image (their pixels join the residual).",
    )

    def generator_kwargs(self) -> dict[str, Any]:
        """The arguments of segment-anything's SamAutomaticMaskGenerator."""
        return {
            "points_per_side": self.points_per_side,
            "points_per_batch": self.points_per_batch,
            "pred_iou_thresh": self.pred_iou_thresh,
            "stability_score_thresh": self.stability_score_thresh,
            "box_nms_thresh": self.box_nms_thresh,
        }


# A laptop's CPU: 8×8 prompts instead of 32×32 (the prompt decoder costs ~0.15 s a prompt on a
# 2-core CPU, so 64 prompts ~10 s instead of ~2.5 min), decoded 8 at a time (the decoder's
# per-prompt tensors then stay in cache: 12 % faster than 64 at a time, measured), and SAM's
# masks at 448 px (upscaling, stability scores and run-length encoding grow with the pixels; the
# regions land on a 224-px view anyway). The image encoder costs the same at any grid.
SAM_CPU_PRESET = SamOptions(points_per_side=8, points_per_batch=8, resolution=448)


def sam_cost_s(options: SamOptions, device: str = "cpu", cached: bool = False, onnx: bool = False) -> float:
    """Predicted seconds of one SAM vit_b run with ``options``, from the per-stage constants of
    :data:`SAM_STAGE_SECONDS` (``cached``: the image embedding is already in the cache;
    ``onnx``: the encoder runs on ONNX Runtime, its export already made)."""
    stages = SAM_STAGE_SECONDS["cuda" if device.startswith("cuda") else "cpu"]
    prompts = options.points_per_side**2
    encoder = 0.0 if cached else stages["encoder_onnx_s" if onnx else "encoder_s"]
    return encoder + prompts * (stages["decoder_per_prompt_s"] + stages["post_per_prompt_s"])


# Seconds per stage of SAM vit_b with random weights (timing does not depend on the weights),
# measured by scripts/sam_stages.py on the project's 2-core CPU at load ~2 (README "SAM on a
# laptop"): PyTorch encoder 30 s, ONNX Runtime encoder 15-16 s (features within 1e-5), the
# one-time ONNX export and check 66 s, prompt decoder 0.15 s a prompt (8 a batch, the image side
# shared), post-processing ~0 s with random weights (few masks pass its thresholds). The CUDA
# row is an estimate until scripts/gpu_check.sh runs on a GPU.
SAM_STAGE_SECONDS = {
    "cpu": {
        "encoder_s": 30.0,
        "encoder_onnx_s": 16.0,
        "onnx_export_s": 66.0,
        "decoder_per_prompt_s": 0.15,
        "post_per_prompt_s": 0.0,
    },
    "cuda": {
        "encoder_s": 0.15,
        "encoder_onnx_s": 0.15,
        "onnx_export_s": 0.0,
        "decoder_per_prompt_s": 0.0002,
        "post_per_prompt_s": 0.0002,
    },
}


@dataclass(frozen=True)
class SamStatus:
    """Whether SAM can run here, without loading it.

    Attributes:
        available: A checkpoint file was found and ``segment_anything`` is installed.
        checkpoint: The checkpoint that would be used, or ``None``.
        model_type: ``"vit_b"``/``"vit_l"``/``"vit_h"`` read from the file name, or ``None``
            (then it is read from the weights when loading).
        reason: Human-readable explanation, including how to fix an unavailable SAM.
    """

    available: bool
    checkpoint: Path | None
    model_type: str | None
    reason: str


# --------------------------------------------------------------------------- checkpoints


def sam_dir() -> Path:
    """Directory searched for ``*.pth`` checkpoints: ``$LIMA_SAM_DIR`` or the cache's ``sam``."""
    return settings.current().sam_dir


def find_sam_checkpoint(explicit: str | Path | None = None) -> Path:
    """Locate a SAM checkpoint file.

    Order: ``explicit`` (a file, or a directory to search), then ``$LIMA_SAM_CHECKPOINT``, then
    the first ``*.pth`` (by name) in :func:`sam_dir`.

    Raises:
        SamUnavailable: Nothing found, or the given path does not exist; the message includes
            :data:`SAM_DOWNLOAD_HINT`.
    """
    if explicit is not None and str(explicit) != "":
        return _existing_checkpoint(Path(explicit).expanduser(), "the given path")
    from_env = settings.current().sam_checkpoint
    if from_env is not None:
        return _existing_checkpoint(from_env, f"{SAM_ENV_VAR}")
    directory = sam_dir()
    found = _first_pth(directory)
    if found is None:
        raise SamUnavailable(
            f"No SAM checkpoint: {SAM_ENV_VAR} is not set and {directory} has no .pth file. {SAM_DOWNLOAD_HINT}"
        )
    return found


def _existing_checkpoint(path: Path, source: str) -> Path:
    """Return ``path`` if it is a file, or the first ``*.pth`` inside it if a directory."""
    if path.is_dir():
        found = _first_pth(path)
        if found is not None:
            return found
        raise SamUnavailable(f"No .pth file in {path} ({source}). {SAM_DOWNLOAD_HINT}")
    if not path.is_file():
        raise SamUnavailable(f"SAM checkpoint not found: {path} ({source}). {SAM_DOWNLOAD_HINT}")
    return path


def _first_pth(directory: Path) -> Path | None:
    """First ``*.pth`` file in ``directory`` by name, or ``None``."""
    try:
        files = sorted(p for p in directory.glob("*.pth") if p.is_file())
    except OSError:
        return None
    return files[0] if files else None


def model_type_from_name(path: str | Path) -> str | None:
    """Read ``vit_b``/``vit_l``/``vit_h`` from a file name, else ``None``."""
    name = Path(path).name.lower()
    matches = [t for t in SAM_MODEL_TYPES if t in name]
    return matches[0] if len(matches) == 1 else None


def sam_status(explicit: str | Path | None = None) -> SamStatus:
    """Report whether SAM is usable, cheaply (no model is loaded) and without raising."""
    try:
        if importlib.util.find_spec("segment_anything") is None:
            return SamStatus(
                False,
                None,
                None,
                "segment-anything is not installed (pip install segment-anything). " + SAM_DOWNLOAD_HINT,
            )
        path = find_sam_checkpoint(explicit)
        model_type = model_type_from_name(path)
        kind = model_type or "model type read from the weights when loading"
        return SamStatus(True, path, model_type, f"SAM checkpoint {path} ({kind}).")
    except SamUnavailable as exc:
        return SamStatus(False, None, None, str(exc))
    except Exception as exc:  # never raise: this feeds a status line in the UI
        return SamStatus(False, None, None, f"SAM status unknown: {exc}. {SAM_DOWNLOAD_HINT}")


# --------------------------------------------------------------------------- model


def load_sam(
    checkpoint: str | Path,
    model_type: str | None = None,
    device: str | torch.device = "cpu",
) -> Sam:
    """Build a SAM model and load its weights safely (``weights_only=True``).

    Args:
        checkpoint: Path to a Meta SAM ``.pth`` state dict.
        model_type: ``"vit_b"``, ``"vit_l"`` or ``"vit_h"``; ``None`` reads it from the width of
            ``image_encoder.pos_embed`` (768, 1024, 1280).
        device: Where to put the model.

    Returns:
        The model in eval mode on ``device``.

    Raises:
        SamUnavailable: Missing or unreadable file, not a SAM state dict, unknown model type,
            or weights that do not fit the architecture.
    """
    path = Path(checkpoint).expanduser()
    if not path.is_file():
        raise SamUnavailable(f"SAM checkpoint not found: {path}. {SAM_DOWNLOAD_HINT}")
    if model_type is not None and model_type not in SAM_MODEL_TYPES:
        raise SamUnavailable(f"unknown SAM model type {model_type!r}; choose one of {', '.join(SAM_MODEL_TYPES)}")
    torch, registry = _import_sam()
    state = _read_state_dict(torch, path)
    model_type = _check_model_type(state, model_type, path)
    model = registry[model_type](checkpoint=None)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise SamUnavailable(
            f"{path.name} does not fit the SAM {model_type} architecture "
            f"({_first_line(exc)}). Use an official checkpoint."
        ) from exc
    return model.eval().to(device)


def _import_sam() -> tuple[Any, dict[str, Any]]:
    """Import torch and segment_anything's model registry, or raise SamUnavailable."""
    try:
        import torch
        from segment_anything import sam_model_registry
    except ImportError as exc:
        raise SamUnavailable(f"segment-anything cannot be imported ({exc}); pip install segment-anything") from exc
    return torch, sam_model_registry


def _read_state_dict(torch: Any, path: Path) -> dict[str, Any]:
    """Load a plain tensor state dict, turning any failure into SamUnavailable."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt, truncated or not a torch file: many exception types
        raise SamUnavailable(
            f"cannot read SAM checkpoint {path}: not a valid PyTorch weights file "
            f"({type(exc).__name__}). Download it again. {SAM_DOWNLOAD_HINT}"
        ) from exc
    if isinstance(state, dict) and "image_encoder.pos_embed" not in state:
        state = state.get("model", state)  # some re-saved checkpoints nest the weights
    if not isinstance(state, dict) or "image_encoder.pos_embed" not in state:
        raise SamUnavailable(
            f"{path} is not a SAM checkpoint (no 'image_encoder.pos_embed' weights). {SAM_DOWNLOAD_HINT}"
        )
    return state


def _check_model_type(state: dict[str, Any], model_type: str | None, path: Path) -> str:
    """Infer the model type from the weights, or check a given one against them."""
    pos_embed = state["image_encoder.pos_embed"]
    width = int(pos_embed.shape[-1]) if getattr(pos_embed, "ndim", 0) >= 1 else -1
    inferred = _EMBED_DIM_TO_TYPE.get(width)
    if model_type is None:
        if inferred is None:
            raise SamUnavailable(
                f"cannot tell the SAM model type of {path.name}: its image encoder width is "
                f"{width}, expected 768 (vit_b), 1024 (vit_l) or 1280 (vit_h). "
                "Use an official checkpoint or give model_type."
            )
        return inferred
    if inferred is not None and inferred != model_type:
        raise SamUnavailable(f"{path.name} holds {inferred} weights (width {width}), not {model_type}")
    return model_type


def _first_line(exc: BaseException) -> str:
    """First line of an exception message, shortened."""
    text = str(exc).strip().splitlines()
    line = text[0] if text else type(exc).__name__
    return line if len(line) <= 200 else line[:197] + "..."


# --------------------------------------------------------------------------- masks and regions


def generate_masks(sam: Sam, image: np.ndarray, options: SamOptions | None = None, **kwargs: Any) -> list[np.ndarray]:
    """Run SAM's automatic mask generator.

    Args:
        sam: A loaded ``segment_anything`` ``Sam`` model.
        image: ``(H, W, 3)`` uint8 RGB image, any size.
        options: the generator settings (:class:`SamOptions`); keyword arguments are merged in
            (``points_per_side=8``), so both ``generate_masks(sam, img, SamOptions(...))`` and
            ``generate_masks(sam, img, points_per_side=8)`` work. Also ``cache`` (an
            :class:`explainer.sam_masks.EmbeddingCache`, None for none; default the shared one)
            and ``timings`` (a :class:`explainer.sam_masks.SamTimings` filled with the stages).

    Returns:
        ``(H, W)`` bool masks, in SAM's output order (possibly empty).

    Raises:
        RegionError: Bad image or option value or name.
    """
    image = _check_rgb(image, "image")
    if kwargs.pop("output_mode", "binary_mask") != "binary_mask":
        raise RegionError("generate_masks needs output_mode='binary_mask' (one boolean mask per record)")
    cache = kwargs.pop("cache", "default")
    timings = kwargs.pop("timings", None)
    options = _merge(options, kwargs)
    import torch

    from explainer.sam_masks import staged_generator

    generator = staged_generator(
        sam, shared_cache() if cache == "default" else cache, output_mode="binary_mask", **options.generator_kwargs()
    )
    with torch.inference_mode():
        records = generator.generate(image)
    if timings is not None:  # the caller's SamTimings receives this run's stages
        timings.__dict__.update(generator.timings.__dict__)
    return [np.asarray(r["segmentation"], dtype=bool) for r in records]


_CACHES: dict[str, Any] = {}


def shared_cache() -> Any:
    """The process's SAM embedding cache for the current cache folder (memory + disk)."""
    from explainer.sam_masks import EmbeddingCache

    folder = str(settings.current().cache_dir / "sam-embeddings")
    if folder not in _CACHES:
        _CACHES[folder] = EmbeddingCache(folder)
    return _CACHES[folder]


def _merge(options: SamOptions | None, kwargs: dict[str, Any]) -> SamOptions:
    base = options or SamOptions()
    return base.replace(**kwargs) if kwargs else base


def sam_regions(
    view: np.ndarray,
    options: SamOptions | None = None,
    *,
    sam: Sam | None = None,
    source: np.ndarray | None = None,
    device: str | torch.device = "cpu",
    **kwargs: Any,
) -> np.ndarray:
    """SAM regions on the view.

    SAM runs on ``source`` (same framing as the view, any size, e.g. a sharper crop) or on the
    view itself, resized to ``options.resolution`` when given. The label map is built at SAM's
    resolution with :func:`explainer.masks.masks_to_labels` and mapped onto the view by
    nearest-neighbour resizing of the label map.

    Args:
        view: ``(H, W, 3)`` uint8 RGB view.
        options: SAM's settings (keyword arguments are merged in, e.g. ``points_per_side=8``).
        sam: An already-loaded ``Sam`` (lets the caller cache it); else loaded from
            ``options.checkpoint`` (see :func:`find_sam_checkpoint`).
        source: Optional ``(h, w, 3)`` uint8 RGB image with the view's framing.
        device: Device for loading from the checkpoint.

    Returns:
        ``(H, W)`` int32 label map with ids ``0..N-1`` (``min_area`` is not applied here; the
        region registry applies it for every method).

    Raises:
        SamUnavailable: No usable checkpoint when ``sam`` is not given.
        RegionError: Bad view, source or option.
    """
    view = _check_rgb(view, "view")
    options = _merge(options, kwargs)
    image = _sam_input(view, source, options.resolution)
    if sam is None:
        sam = load_sam(find_sam_checkpoint(options.checkpoint), options.model_type, device)
    masks = generate_masks(sam, image, options)
    labels = masks_to_labels(masks, image.shape[:2], options.min_fraction)
    height, width = view.shape[:2]
    if labels.shape != (height, width):
        # Resize the label map itself (not each mask) so regions stay disjoint and covering.
        labels = cv2.resize(labels, (width, height), interpolation=cv2.INTER_NEAREST)
    return relabel(labels)  # a thin region can vanish when downscaling


def _sam_input(view: np.ndarray, source: np.ndarray | None, resolution: int | None) -> np.ndarray:
    """Pick the image SAM sees and resize it to ``resolution`` if given."""
    image = view if source is None else _check_rgb(source, "source")
    if source is not None:
        view_ratio = view.shape[1] / view.shape[0]
        source_ratio = source.shape[1] / source.shape[0]
        if abs(source_ratio / view_ratio - 1.0) > 0.02:
            raise RegionError(
                f"source {source.shape[1]}x{source.shape[0]} does not have the view's framing "
                f"({view.shape[1]}x{view.shape[0]})"
            )
    if resolution is None:
        return np.ascontiguousarray(image)
    size = int(resolution)  # checked by SamOptions
    if image.shape[:2] == (size, size):
        return np.ascontiguousarray(image)
    shrinking = size < min(image.shape[:2])
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(image, (size, size), interpolation=interpolation)


def _check_rgb(image: Any, name: str) -> np.ndarray:
    """Require an ``(H, W, 3)`` uint8 array."""
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
        shape = getattr(image, "shape", type(image).__name__)
        raise RegionError(f"{name} must be an (H, W, 3) uint8 RGB array, got {shape}")
    if image.dtype != np.uint8 or image.shape[0] < 1 or image.shape[1] < 1:
        raise RegionError(f"{name} must be a non-empty uint8 RGB array, got {image.dtype} {image.shape}")
    return image
