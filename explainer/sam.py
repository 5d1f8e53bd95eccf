"""SAM regions: Segment Anything's automatic masks turned into one label map.

SAM weights do not ship with the product; the user supplies a checkpoint (vit_b, vit_l or
vit_h from Meta's release), see :data:`SAM_DOWNLOAD_HINT`. ``segment_anything`` and ``torch``
are imported lazily, inside the functions that need them, so that importing this module (and
:mod:`explainer.regions`) stays cheap and works without them.

The mask post-processing follows the LiMA reference exactly (``lima-spec.md`` §1.4): overlaps
are resolved pairwise in SAM's order, tiny masks are dropped, uncovered pixels form one residual
region.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from explainer.errors import RegionError, SamUnavailable

if TYPE_CHECKING:
    import torch
    from segment_anything.modeling import Sam

__all__ = [
    "SAM_DIR",
    "SAM_DOWNLOAD_HINT",
    "SAM_ENV_VAR",
    "SAM_MODEL_TYPES",
    "SamStatus",
    "find_sam_checkpoint",
    "generate_masks",
    "load_sam",
    "masks_to_labels",
    "sam_regions",
    "sam_status",
]

SAM_ENV_VAR = "LIMA_SAM_CHECKPOINT"
SAM_DIR_ENV_VAR = "LIMA_SAM_DIR"
SAM_DIR = Path.home() / ".cache" / "lima-lens" / "sam"
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
    """Directory searched for ``*.pth`` checkpoints: ``$LIMA_SAM_DIR`` or :data:`SAM_DIR`."""
    override = os.environ.get(SAM_DIR_ENV_VAR)
    return Path(override).expanduser() if override else SAM_DIR


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
    from_env = os.environ.get(SAM_ENV_VAR)
    if from_env:
        return _existing_checkpoint(Path(from_env).expanduser(), f"{SAM_ENV_VAR}")
    directory = sam_dir()
    found = _first_pth(directory)
    if found is None:
        raise SamUnavailable(
            f"No SAM checkpoint: {SAM_ENV_VAR} is not set and {directory} has no .pth file. "
            f"{SAM_DOWNLOAD_HINT}"
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
            return SamStatus(False, None, None, "segment-anything is not installed "
                             "(pip install segment-anything). " + SAM_DOWNLOAD_HINT)
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
        raise SamUnavailable(
            f"unknown SAM model type {model_type!r}; choose one of {', '.join(SAM_MODEL_TYPES)}"
        )
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
        raise SamUnavailable(
            f"segment-anything cannot be imported ({exc}); pip install segment-anything"
        ) from exc
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
            f"{path} is not a SAM checkpoint (no 'image_encoder.pos_embed' weights). "
            f"{SAM_DOWNLOAD_HINT}"
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
        raise SamUnavailable(
            f"{path.name} holds {inferred} weights (width {width}), not {model_type}"
        )
    return model_type


def _first_line(exc: BaseException) -> str:
    """First line of an exception message, shortened."""
    text = str(exc).strip().splitlines()
    line = text[0] if text else type(exc).__name__
    return line if len(line) <= 200 else line[:197] + "..."


# --------------------------------------------------------------------------- masks


def generate_masks(
    sam: Sam,
    image: np.ndarray,
    *,
    points_per_side: int = 32,
    pred_iou_thresh: float = 0.88,
    stability_score_thresh: float = 0.8,
    **kwargs: Any,
) -> list[np.ndarray]:
    """Run SAM's automatic mask generator.

    Args:
        sam: A loaded ``segment_anything`` ``Sam`` model.
        image: ``(H, W, 3)`` uint8 RGB image, any size.
        points_per_side: Prompt grid size (points_per_side² prompts), >= 1.
        pred_iou_thresh: Predicted-IoU filter in [0, 1].
        stability_score_thresh: Stability filter in [0, 1]; 0.8 is the LiMA setting.
        **kwargs: Further ``SamAutomaticMaskGenerator`` options (e.g. ``box_nms_thresh``).

    Returns:
        ``(H, W)`` bool masks, in SAM's output order (possibly empty).

    Raises:
        RegionError: Bad image, option value or option name.
    """
    image = _check_rgb(image, "image")
    _check_generator_options(points_per_side, pred_iou_thresh, stability_score_thresh)
    if kwargs.get("output_mode", "binary_mask") != "binary_mask":
        raise RegionError("generate_masks needs output_mode='binary_mask'")
    import torch
    from segment_anything import SamAutomaticMaskGenerator

    try:
        generator = SamAutomaticMaskGenerator(
            sam,
            points_per_side=points_per_side,
            pred_iou_thresh=pred_iou_thresh,
            stability_score_thresh=stability_score_thresh,
            **kwargs,
        )
    except TypeError as exc:
        raise RegionError(f"invalid SAM generator option: {exc}") from exc
    with torch.inference_mode():
        records = generator.generate(image)
    return [np.asarray(r["segmentation"], dtype=bool) for r in records]


def masks_to_labels(
    masks: list[np.ndarray] | np.ndarray,
    shape: tuple[int, int],
    min_fraction: float = 0.0005,
) -> np.ndarray:
    """Turn possibly overlapping masks into one label map, as the LiMA reference does.

    For each pair i < j (in order) with overlap I = m_i & m_j, I is removed from the mask with
    the smaller proportion |I|/|m|, i.e. the larger one; on a tie from m_i. Masks shrink in
    place, so later pairs see the shrunken masks. Masks with ``mean <= min_fraction`` are then
    dropped; kept masks get ids 0..K-1 in order and all uncovered pixels (dropped masks
    included) become one residual region with id K, if there are any.

    Args:
        masks: ``(H, W)`` bool (or 0/1) masks, a list or an ``(n, H, W)`` array; SAM records
            (dicts with ``"segmentation"``) are accepted too.
        shape: ``(H, W)`` of the masks.
        min_fraction: Drop threshold on the fraction of pixels, in [0, 1).

    Returns:
        ``(H, W)`` int32 label map with ids ``0..N-1``; a single region (all zeros) when no
        mask is kept.

    Raises:
        RegionError: A mask of another shape, a bad ``shape`` or ``min_fraction``.
    """
    height, width = _check_shape(shape)
    _check_unit("min_fraction", min_fraction)
    if min_fraction >= 1.0:  # 1 would drop every mask
        raise RegionError(f"min_fraction must be below 1, got {min_fraction!r}")
    flat = _stack_masks(masks, (height, width))
    if flat.shape[0] == 0:
        return np.zeros((height, width), dtype=np.int32)
    packed = _pack(flat)
    areas = flat.sum(axis=1, dtype=np.int64)
    _resolve_overlaps(packed, areas, _candidate_pairs(packed))
    pixels = height * width
    kept = np.flatnonzero(areas / pixels > min_fraction)
    if kept.size == 0:
        return np.zeros((height, width), dtype=np.int32)
    disjoint = np.unpackbits(packed[kept].view(np.uint8), axis=1, count=pixels).astype(bool)
    covered = disjoint.any(axis=0)
    # Kept masks are disjoint, so argmax picks the single mask covering a pixel.
    labels = np.where(covered, disjoint.argmax(axis=0), kept.size)
    return labels.reshape(height, width).astype(np.int32)


def _pack(flat: np.ndarray) -> np.ndarray:
    """Pack ``(n, P)`` bool masks into ``(n, ceil(P/64))`` uint64 words (64 px per word).

    The pair loop then touches 8x less memory than bytes of bools and counts bits per word.
    """
    packed = np.packbits(flat, axis=1)
    pad = (-packed.shape[1]) % 8
    if pad:
        packed = np.pad(packed, ((0, 0), (0, pad)))
    return np.ascontiguousarray(packed).view(np.uint64)


def _candidate_pairs(packed: np.ndarray) -> np.ndarray:
    """``(n, n)`` bool: True where masks i and j may overlap (a superset of the real pairs).

    Masks only shrink, so pairs that do not overlap at the start never overlap later and can be
    skipped. One matrix product over word occupancy (64 px per word) finds every pair sharing a
    non-zero word: all truly overlapping pairs, plus a few that only share a word, which the
    exact test in :func:`_resolve_overlaps` then skips; much cheaper than a per-pixel product.
    """
    occupied = (packed != 0).astype(np.float32)
    return (occupied @ occupied.T) > 0.5


def _resolve_overlaps(packed: np.ndarray, areas: np.ndarray, candidates: np.ndarray) -> None:
    """Apply the reference's pairwise overlap rule in place on bit-packed masks."""
    # np.nonzero walks row-major: i ascending, then j ascending, the reference's loop order.
    rows, cols = np.nonzero(np.triu(candidates, k=1))
    for i, j in zip(rows.tolist(), cols.tolist()):
        if areas[i] == 0 or areas[j] == 0:
            continue
        inter = packed[i] & packed[j]
        count = _popcount(inter)
        if count == 0:
            continue
        # |I|/|m_i| <= |I|/|m_j|  <=>  |m_i| >= |m_j| (|I| > 0): exact in integers; the tie
        # (equal areas, equal proportions) removes from m_i like the reference.
        loser = i if areas[i] >= areas[j] else j
        packed[loser] &= ~inter
        areas[loser] -= count


def _popcount(words: np.ndarray) -> int:
    """Number of set bits in a uint64 array (np.bitwise_count needs numpy >= 2.0)."""
    if hasattr(np, "bitwise_count"):
        return int(np.bitwise_count(words).sum())
    return int(np.unpackbits(words.view(np.uint8)).sum())


def _stack_masks(masks: Any, shape: tuple[int, int]) -> np.ndarray:
    """Return masks as an ``(n, H*W)`` bool array, checking each shape."""
    items = list(masks) if not isinstance(masks, np.ndarray) or masks.ndim == 3 else None
    if items is None:
        raise RegionError(f"masks must be a list of (H, W) arrays or (n, H, W), got {masks.shape}")
    flat = np.zeros((len(items), shape[0] * shape[1]), dtype=bool)
    for k, mask in enumerate(items):
        if isinstance(mask, dict):
            mask = mask["segmentation"]
        mask = np.asarray(mask)
        if mask.shape != shape:
            raise RegionError(f"mask {k} has shape {mask.shape}, expected {shape}")
        flat[k] = mask.ravel() != 0
    return flat


# --------------------------------------------------------------------------- regions


def sam_regions(
    view: np.ndarray,
    *,
    checkpoint: str | Path | None = None,
    model_type: str | None = None,
    points_per_side: int = 32,
    pred_iou_thresh: float = 0.88,
    stability_score_thresh: float = 0.8,
    box_nms_thresh: float = 0.7,
    resolution: int | None = None,
    source: np.ndarray | None = None,
    min_fraction: float = 0.0005,
    sam: Sam | None = None,
    device: str | torch.device = "cpu",
    **generator_kwargs: Any,
) -> np.ndarray:
    """SAM regions on the view.

    SAM runs on ``source`` (same framing as the view, any size, e.g. a sharper crop) or on the
    view itself, resized to ``resolution`` x ``resolution`` when given. The label map is built
    at SAM's resolution with :func:`masks_to_labels` and mapped onto the view by
    nearest-neighbour resizing of the label map.

    Args:
        view: ``(H, W, 3)`` uint8 RGB view.
        checkpoint: Checkpoint path, used when ``sam`` is not given (see
            :func:`find_sam_checkpoint`).
        model_type: ``vit_b``/``vit_l``/``vit_h`` or ``None`` (read from the weights).
        points_per_side: Prompt grid size, >= 1.
        pred_iou_thresh: Predicted-IoU filter in [0, 1].
        stability_score_thresh: Stability filter in [0, 1] (LiMA: 0.8).
        box_nms_thresh: Box NMS threshold in [0, 1] (SAM's default 0.7).
        resolution: Square size SAM's input is resized to, or ``None`` for as is.
        source: Optional ``(h, w, 3)`` uint8 RGB image with the view's framing.
        min_fraction: Masks covering at most this fraction are dropped, in [0, 1).
        sam: An already-loaded ``Sam`` (lets the caller cache it).
        device: Device for loading from ``checkpoint``.
        **generator_kwargs: Further ``SamAutomaticMaskGenerator`` options.

    Returns:
        ``(H, W)`` int32 label map with ids ``0..N-1``.

    Raises:
        SamUnavailable: No usable checkpoint when ``sam`` is not given.
        RegionError: Bad view, source or option.
    """
    from explainer.regions import relabel  # regions imports this module lazily: no cycle

    view = _check_rgb(view, "view")
    _check_generator_options(points_per_side, pred_iou_thresh, stability_score_thresh)
    _check_unit("box_nms_thresh", box_nms_thresh)
    image = _sam_input(view, source, resolution)
    if sam is None:
        sam = load_sam(find_sam_checkpoint(checkpoint), model_type, device)
    masks = generate_masks(
        sam,
        image,
        points_per_side=points_per_side,
        pred_iou_thresh=pred_iou_thresh,
        stability_score_thresh=stability_score_thresh,
        box_nms_thresh=box_nms_thresh,
        **generator_kwargs,
    )
    labels = masks_to_labels(masks, image.shape[:2], min_fraction)
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
    is_int = isinstance(resolution, (int, np.integer)) and not isinstance(resolution, bool)
    if not is_int or resolution < 16:
        raise RegionError(f"resolution must be an integer >= 16 or None, got {resolution!r}")
    size = int(resolution)
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
        raise RegionError(f"{name} must be a non-empty uint8 RGB array, got {image.dtype} "
                          f"{image.shape}")
    return image


def _check_shape(shape: Any) -> tuple[int, int]:
    """Require ``(H, W)`` positive ints."""
    try:
        height, width = (int(s) for s in shape)
    except (TypeError, ValueError):
        raise RegionError(f"shape must be (H, W), got {shape!r}") from None
    if height < 1 or width < 1:
        raise RegionError(f"shape must be positive, got {shape!r}")
    return height, width


def _check_generator_options(points: Any, iou: Any, stability: Any) -> None:
    """Validate the three main generator options."""
    if isinstance(points, bool) or not isinstance(points, (int, np.integer)) or points < 1:
        raise RegionError(f"points_per_side must be an integer >= 1, got {points!r}")
    _check_unit("pred_iou_thresh", iou)
    _check_unit("stability_score_thresh", stability)


def _check_unit(name: str, value: Any) -> None:
    """Require a real number in [0, 1]."""
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if not ok or not 0.0 <= float(value) <= 1.0:
        raise RegionError(f"{name} must be a number in [0, 1], got {value!r}")
