"""Split a view into regions: one label map per method.

Every method returns a single label map on the view: an ``(H, W)`` int32 array whose ids are
``0..N-1``, all present, so regions are disjoint and cover the view by construction. The same
input and parameters always give the same map.

Methods (see :data:`REGION_METHODS`): SLICO and SEEDS superpixels as in the LiMA reference code
(``lima-spec.md`` §1.2, §1.3), scikit-image SLIC and Felzenszwalb, a square grid, and SAM
(:mod:`explainer.sam`).
"""

from __future__ import annotations

import heapq
import math
import numbers
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
from skimage.segmentation import felzenszwalb, slic

from explainer.errors import RegionError

__all__ = [
    "MIN_AREA_PARAM",
    "Param",
    "REGION_METHODS",
    "RegionMethod",
    "RegionStats",
    "load_label_map",
    "merge_small_regions",
    "propose_regions",
    "region_stats",
    "slico_for_count",
    "relabel",
    "validate_labels",
]

PARAM_KINDS = ("int", "float", "choice", "path")


@dataclass(frozen=True)
class Param:
    """One tunable parameter of a region method, as the UI shows it.

    Attributes:
        name: Keyword name passed to the method.
        default: Value used when the caller does not give one (``None`` only if ``optional``).
        low: Smallest accepted value (inclusive) for ``int``/``float``; ``None`` = unbounded.
        high: Largest accepted value (inclusive) for ``int``/``float``; ``None`` = unbounded.
        step: Suggested UI step for ``int``/``float``.
        help: One-line explanation for the UI.
        kind: ``"int"``, ``"float"``, ``"choice"`` or ``"path"``.
        choices: Accepted values when ``kind == "choice"``.
        optional: Whether ``None`` is accepted (meaning "automatic" or "not set").
    """

    name: str
    default: Any
    low: float | None = None
    high: float | None = None
    step: float | None = None
    help: str = ""
    kind: str = "int"
    choices: tuple[Any, ...] = ()
    optional: bool = False

    def check(self, value: Any) -> Any:
        """Validate ``value`` for this parameter and return it normalised.

        Raises:
            RegionError: Wrong type, out of ``[low, high]`` or not among ``choices``.
        """
        if value is None:
            if self.optional:
                return None
            raise RegionError(f"parameter {self.name!r} needs a value, got None")
        if self.kind == "int":
            value = _as_int(self.name, value)
        elif self.kind == "float":
            value = _as_float(self.name, value)
        elif self.kind == "choice":
            if value not in self.choices:
                raise RegionError(
                    f"parameter {self.name!r} must be one of {list(self.choices)}, got {value!r}"
                )
            return value
        elif self.kind == "path":
            if not isinstance(value, (str, os.PathLike)):
                raise RegionError(f"parameter {self.name!r} must be a file path, got {value!r}")
            return value
        if (self.low is not None and value < self.low) or (
            self.high is not None and value > self.high
        ):
            low, high = _fmt(self.low, "-"), _fmt(self.high, "")
            raise RegionError(
                f"parameter {self.name!r} must be in [{low}, {high}], got {value!r}"
            )
        return value


@dataclass(frozen=True)
class RegionMethod:
    """A region method the UI can list and :func:`propose_regions` can run.

    Attributes:
        name: Registry key, e.g. ``"slico"``.
        label: Display name.
        description: One sentence for the UI.
        params: The tunable parameters, in display order.
        fn: ``fn(view, **params) -> labels``; may return any integer map, it is checked after.
        extra_kwargs: Keyword arguments ``fn`` accepts that are not UI parameters (objects such
            as an already-loaded model); passed through unchecked.
    """

    name: str
    label: str
    description: str
    params: tuple[Param, ...]
    fn: Callable[..., np.ndarray]
    extra_kwargs: tuple[str, ...] = field(default=())

    def defaults(self) -> dict[str, Any]:
        """Return ``{param name: default}`` for this method."""
        return {p.name: p.default for p in self.params}


@dataclass(frozen=True)
class RegionStats:
    """Summary of a label map.

    Attributes:
        count: Number of regions N.
        smallest_px: Area of the smallest region, in pixels.
        largest_px: Area of the largest region, in pixels.
        smallest_fraction: ``smallest_px / (H * W)``, in (0, 1].
        largest_fraction: ``largest_px / (H * W)``, in (0, 1].
        areas: ``(N,)`` int64, pixel count of each id.
    """

    count: int
    smallest_px: int
    largest_px: int
    smallest_fraction: float
    largest_fraction: float
    areas: np.ndarray


MIN_AREA_PARAM = Param(
    "min_area", 0, 0, None, 1,
    help="Merge regions smaller than this many pixels into their longest-bordering neighbour "
    "(0 = off).",
)


# --------------------------------------------------------------------------- label-map tools


def validate_labels(labels: np.ndarray, shape: tuple[int, int] | None = None) -> np.ndarray:
    """Check that ``labels`` is a proper label map and return it as int32.

    Args:
        labels: ``(H, W)`` integer (or bool, or integral float) array.
        shape: Expected ``(H, W)``, or ``None`` to accept any.

    Returns:
        An ``(H, W)`` int32 copy with ids ``0..N-1``, N >= 1.

    Raises:
        RegionError: Not 2-D, empty, wrong shape, non-integer values, negative ids or gaps.
    """
    arr = _as_int_map(labels)
    if shape is not None and arr.shape != tuple(shape):
        raise RegionError(f"label map has shape {arr.shape}, expected {tuple(shape)}")
    low, high = int(arr.min()), int(arr.max())
    if low < 0:
        raise RegionError(f"label ids must be >= 0, found {low}")
    # N <= number of pixels, so a larger id implies gaps; checking first avoids a huge bincount.
    if high >= arr.size:
        raise RegionError(
            f"label ids must be 0..N-1 without gaps, found id {high} in {arr.size} px"
        )
    present = np.bincount(arr.ravel(), minlength=high + 1) > 0
    if not present.all():
        missing = np.flatnonzero(~present)
        shown = ", ".join(str(int(m)) for m in missing[:10])
        more = f" (+{missing.size - 10} more)" if missing.size > 10 else ""
        raise RegionError(f"label ids must be 0..{high} without gaps; missing {shown}{more}")
    return arr.astype(np.int32, copy=True)


NPY_MAGIC = b"\x93NUMPY"


def load_label_map(path: str | os.PathLike, shape: tuple[int, int] | None = None) -> np.ndarray:
    """A label map saved with ``np.save`` (``.npy``), checked like :func:`validate_labels`.

    Raises:
        RegionError: the file is missing, is not a NumPy ``.npy`` file, holds pickled objects,
            or is not a valid label map of ``shape``.
    """
    file = os.fspath(path)
    name = os.path.basename(file)
    try:
        with open(file, "rb") as handle:
            magic = handle.read(len(NPY_MAGIC))
    except FileNotFoundError:
        raise RegionError(f"label map not found: {file}") from None
    except IsADirectoryError:
        raise RegionError(f"{name} is a folder, not a label map (.npy)") from None
    except OSError as exc:
        raise RegionError(f"{name}: cannot read the file ({exc.strerror or exc})") from None
    if magic != NPY_MAGIC:
        raise RegionError(f"{name} is not a NumPy .npy file (save a label map with numpy.save)")
    try:
        array = np.load(file, allow_pickle=False)
    except ValueError as exc:
        if "pickle" in str(exc):
            raise RegionError(f"{name} holds Python objects, not an integer label map") from None
        raise RegionError(f"{name} is a damaged .npy file ({exc})") from None
    except (OSError, EOFError) as exc:
        raise RegionError(f"{name} is a damaged .npy file ({exc})") from None
    return validate_labels(array, shape)


def relabel(labels: np.ndarray) -> np.ndarray:
    """Compact ids to ``0..N-1``, keeping the relative order of the original ids.

    Args:
        labels: ``(H, W)`` integer array, any ids (negative and gaps allowed).

    Returns:
        ``(H, W)`` int32 array; the smallest original id becomes 0, the next 1, and so on.

    Raises:
        RegionError: Not a non-empty 2-D integer array.
    """
    arr = _as_int_map(labels)
    _, inverse = np.unique(arr.ravel(), return_inverse=True)
    return inverse.reshape(arr.shape).astype(np.int32)


def region_stats(labels: np.ndarray) -> RegionStats:
    """Count the regions of a valid label map and their smallest and largest areas.

    Args:
        labels: ``(H, W)`` label map with ids ``0..N-1``.

    Raises:
        RegionError: If ``labels`` is not a valid label map.
    """
    arr = validate_labels(labels)
    areas = np.bincount(arr.ravel()).astype(np.int64)
    total = arr.size
    small, large = int(areas.min()), int(areas.max())
    return RegionStats(
        count=int(areas.size),
        smallest_px=small,
        largest_px=large,
        smallest_fraction=small / total,
        largest_fraction=large / total,
        areas=areas,
    )


def merge_small_regions(labels: np.ndarray, min_area: int) -> np.ndarray:
    """Merge every region smaller than ``min_area`` px into a neighbour, smallest first.

    A small region joins the neighbour it shares the longest 4-connected boundary with (ties:
    the lowest id). Areas and boundaries are updated after each merge and the smallest remaining
    region below ``min_area`` is taken next (ties: lowest id), until none is left or only one
    region remains.

    Args:
        labels: ``(H, W)`` label map with ids ``0..N-1``.
        min_area: Minimum region area in pixels, >= 0 (0 or 1 changes nothing).

    Returns:
        ``(H, W)`` int32 label map, relabelled to ``0..M-1`` (M <= N), order of ids preserved.

    Raises:
        RegionError: Invalid label map or negative ``min_area``.
    """
    arr = validate_labels(labels)
    min_area = MIN_AREA_PARAM.check(min_area)
    areas = np.bincount(arr.ravel()).astype(np.int64).tolist()
    if min_area <= 1 or min(areas) >= min_area:
        return arr
    adjacency = _boundary_lengths(arr)
    parent = list(range(len(areas)))
    _merge_loop(areas, adjacency, parent, min_area)
    lut = np.array([_find(parent, i) for i in range(len(parent))], dtype=np.int64)
    return relabel(lut[arr])


def _boundary_lengths(arr: np.ndarray) -> list[dict[int, int]]:
    """Return, per id, ``{neighbour id: number of 4-adjacent pixel pairs across the border}``."""
    pairs = [
        np.stack([arr[:, :-1].ravel(), arr[:, 1:].ravel()]),
        np.stack([arr[:-1, :].ravel(), arr[1:, :].ravel()]),
    ]
    a, b = np.concatenate(pairs, axis=1)
    cross = a != b
    lo, hi = np.minimum(a[cross], b[cross]), np.maximum(a[cross], b[cross])
    n = int(arr.max()) + 1
    keys, counts = np.unique(lo.astype(np.int64) * n + hi, return_counts=True)
    adjacency: list[dict[int, int]] = [{} for _ in range(n)]
    for key, count in zip(keys.tolist(), counts.tolist()):
        i, j = divmod(key, n)
        adjacency[i][j] = count
        adjacency[j][i] = count
    return adjacency


def _merge_loop(
    areas: list[int], adjacency: list[dict[int, int]], parent: list[int], min_area: int
) -> None:
    """Merge small regions in place (``parent`` records each merge)."""
    heap = [(area, i) for i, area in enumerate(areas) if area < min_area]
    heapq.heapify(heap)
    alive = len(areas)
    while heap and alive > 1:
        area, small = heapq.heappop(heap)
        if parent[small] != small or areas[small] != area:
            continue  # stale entry: already merged away or grown since it was pushed
        neighbours = adjacency[small]
        target = min(neighbours, key=lambda k: (-neighbours[k], k))
        parent[small] = target
        areas[target] += area
        alive -= 1
        for other, length in neighbours.items():
            del adjacency[other][small]
            if other != target:
                adjacency[target][other] = adjacency[target].get(other, 0) + length
                adjacency[other][target] = adjacency[target][other]
        adjacency[small] = {}
        if areas[target] < min_area:
            heapq.heappush(heap, (areas[target], target))


def _find(parent: list[int], i: int) -> int:
    """Follow merge links to the surviving region (with path compression)."""
    root = i
    while parent[root] != root:
        root = parent[root]
    while parent[i] != root:
        parent[i], i = root, parent[i]
    return root


# --------------------------------------------------------------------------- methods


def _slico(view: np.ndarray, region_size: int = 30, iterations: int = 20) -> np.ndarray:
    """OpenCV SLICO as in the reference (``lima-spec.md`` §1.2); no connectivity enforcement."""
    # The reference runs on cv2.imread's BGR image; we pass BGR for parity. (SLICO's colour
    # distance is symmetric in the channels, so the labels are the same for RGB.)
    bgr = np.ascontiguousarray(view[..., ::-1])
    # ruler=20.0 is the reference value; it has no effect under SLICO.
    slico = cv2.ximgproc.createSuperpixelSLIC(
        bgr, algorithm=cv2.ximgproc.SLICO, region_size=region_size, ruler=20.0
    )
    slico.iterate(iterations)
    return relabel(slico.getLabels())


def _seeds(
    view: np.ndarray,
    num_superpixels: int = 50,
    num_levels: int = 3,
    prior: int = 2,
    histogram_bins: int = 5,
    iterations: int = 10,
) -> np.ndarray:
    """OpenCV SEEDS as in the reference (``lima-spec.md`` §1.3)."""
    height, width = view.shape[:2]
    bgr = np.ascontiguousarray(view[..., ::-1])  # reference parity (BGR), see _slico
    seeds = cv2.ximgproc.createSuperpixelSEEDS(
        width, height, 3, num_superpixels, num_levels, prior, histogram_bins
    )
    seeds.iterate(bgr, iterations)
    # With prior > 0 SEEDS can leave unused ids, so compact them.
    return relabel(seeds.getLabels())


def _slic(
    view: np.ndarray, n_segments: int = 50, compactness: float = 10.0, sigma: float = 1.0
) -> np.ndarray:
    """scikit-image SLIC (k-means in Lab space) with connected regions."""
    labels = slic(
        view,
        n_segments=n_segments,
        compactness=compactness,
        sigma=sigma,
        start_label=0,
        channel_axis=-1,
        enforce_connectivity=True,
    )
    return relabel(labels)


def _felzenszwalb(
    view: np.ndarray, scale: float = 200.0, sigma: float = 0.8, min_size: int = 100
) -> np.ndarray:
    """scikit-image Felzenszwalb graph segmentation (region count depends on the image)."""
    return relabel(felzenszwalb(view, scale=scale, sigma=sigma, min_size=min_size, channel_axis=-1))


def _grid(view: np.ndarray, cells_per_side: int = 7) -> np.ndarray:
    """Square grid of ``cells_per_side`` x ``cells_per_side`` cells, ids in raster order."""
    height, width = view.shape[:2]
    if cells_per_side > min(height, width):
        raise RegionError(
            f"cells_per_side={cells_per_side} exceeds the view's short side "
            f"({min(height, width)} px)"
        )
    rows = _cell_index(height, cells_per_side)
    cols = _cell_index(width, cells_per_side)
    return (rows[:, None] * cells_per_side + cols[None, :]).astype(np.int32)


def _cell_index(length: int, cells: int) -> np.ndarray:
    """Cell index of each pixel along one axis; boundaries at ``round(linspace(0, length))``."""
    bounds = np.round(np.linspace(0, length, cells + 1)).astype(np.int64)
    return np.searchsorted(bounds, np.arange(length), side="right") - 1


def _sam(view: np.ndarray, **params: Any) -> np.ndarray:
    """SAM regions; imported lazily so the superpixel methods never load SAM code."""
    from explainer.sam import sam_regions

    return sam_regions(view, **params)


REGION_METHODS: dict[str, RegionMethod] = {
    "slico": RegionMethod(
        "slico",
        "SLICO superpixels",
        "OpenCV SLICO superpixels on a regular seed grid, as in the LiMA reference (49 at 224 px).",
        (
            Param("region_size", 30, 8, 112, 1, "Seed spacing in pixels: 30 gives 49 regions, "
                  "27 gives 64, 25 gives 77, 22 gives 100 at 224 px."),
            Param("iterations", 20, 1, 50, 1, "Number of SLICO iterations."),
        ),
        _slico,
    ),
    "seeds": RegionMethod(
        "seeds",
        "SEEDS superpixels",
        "OpenCV SEEDS superpixels refined by colour histograms, as in the LiMA reference.",
        (
            Param("num_superpixels", 50, 4, 400, 1, "Requested number of superpixels "
                  "(the result is close: 50 gives 49 at 224 px)."),
            Param("num_levels", 3, 1, 8, 1, "Number of block levels; more gives finer boundaries."),
            Param("prior", 2, 0, 5, 1, "Boundary smoothing prior (0 = none)."),
            Param("histogram_bins", 5, 2, 10, 1, "Colour histogram bins per channel."),
            Param("iterations", 10, 1, 50, 1, "Number of SEEDS iterations."),
        ),
        _seeds,
    ),
    "slic": RegionMethod(
        "slic",
        "SLIC superpixels (scikit-image)",
        "scikit-image SLIC: compact, connected superpixels from k-means in Lab colour space.",
        (
            Param("n_segments", 50, 2, 1000, 1, "Approximate number of superpixels."),
            Param("compactness", 10.0, 0.01, 100.0, 0.5, "Higher gives squarer superpixels.",
                  kind="float"),
            Param("sigma", 1.0, 0.0, 5.0, 0.1, "Gaussian smoothing before segmenting.",
                  kind="float"),
        ),
        _slic,
    ),
    "felzenszwalb": RegionMethod(
        "felzenszwalb",
        "Felzenszwalb segments",
        "Graph-based segmentation that follows colour edges; the count depends on the image.",
        (
            Param("scale", 200.0, 1.0, 2000.0, 10.0, "Higher gives fewer, larger segments.",
                  kind="float"),
            Param("sigma", 0.8, 0.0, 5.0, 0.1, "Gaussian smoothing before segmenting.",
                  kind="float"),
            Param("min_size", 100, 0, 5000, 10, "Minimum segment size in pixels."),
        ),
        _felzenszwalb,
    ),
    "grid": RegionMethod(
        "grid",
        "Square grid",
        "A plain grid of equal cells, a content-blind baseline.",
        (Param("cells_per_side", 7, 1, 64, 1, "Cells along each side: 7 gives 49 regions."),),
        _grid,
    ),
    "sam": RegionMethod(
        "sam",
        "Segment Anything (SAM)",
        "SAM's automatic masks made disjoint, plus one residual region; needs a SAM checkpoint.",
        (
            Param("checkpoint", None, help="SAM checkpoint file (.pth); default: the "
                  "LIMA_SAM_CHECKPOINT variable or ~/.cache/lima-lens/sam/.", kind="path",
                  optional=True),
            Param("model_type", None, help="vit_b, vit_l or vit_h; default: read from the "
                  "checkpoint.", kind="choice", choices=("vit_b", "vit_l", "vit_h"),
                  optional=True),
            Param("points_per_side", 32, 4, 64, 1, "Prompt points along each side "
                  "(points_per_side² prompts)."),
            Param("pred_iou_thresh", 0.88, 0.0, 1.0, 0.01, "Drop masks whose predicted IoU is "
                  "below this.", kind="float"),
            Param("stability_score_thresh", 0.8, 0.0, 1.0, 0.01, "Drop unstable masks "
                  "(0.8 is the LiMA setting).", kind="float"),
            Param("box_nms_thresh", 0.7, 0.0, 1.0, 0.01, "Box IoU above which duplicate masks "
                  "are suppressed (1 = keep all).", kind="float"),
            Param("resolution", None, 224, 1024, 32, "Square size SAM sees; default: the "
                  "image as given.", optional=True),
            Param("min_fraction", 0.0005, 0.0, 0.05, 0.0005, "Drop masks covering at most this "
                  "fraction of the image (their pixels join the residual).", kind="float"),
        ),
        _sam,
        extra_kwargs=("sam", "source", "device"),
    ),
}


def slico_for_count(view: np.ndarray, count: int, iterations: int = 20) -> tuple[np.ndarray, int]:
    """SLICO regions as close as SLICO gets to ``count`` regions on this view.

    SLICO places one seed per ``region_size``² pixels, so the size is about sqrt(H·W/count);
    the sizes around that guess are tried and the one whose region count is nearest wins (ties:
    the larger size, i.e. fewer regions).

    Returns:
        (label map, region_size used).

    Raises:
        RegionError: ``count`` is not a positive integer.
    """
    view = _check_view(view)
    if isinstance(count, bool) or not isinstance(count, numbers.Integral) or count < 1:
        raise RegionError(f"the region count must be a positive integer, got {count!r}")
    spec = REGION_METHODS["slico"].params[0]
    guess = round(math.sqrt(view.shape[0] * view.shape[1] / count))
    sizes = sorted({min(max(size, int(spec.low)), int(spec.high)) for size in range(guess - 3, guess + 4)},
                   reverse=True)
    best: tuple[int, np.ndarray, int] | None = None
    for size in sizes:
        labels = _slico(view, region_size=size, iterations=iterations)
        miss = abs(int(labels.max()) + 1 - count)
        if best is None or miss < best[0]:
            best = (miss, labels, size)
    assert best is not None
    return best[1], best[2]


def propose_regions(view: np.ndarray, method: str, **params: Any) -> np.ndarray:
    """Split ``view`` into regions with a registered method.

    Args:
        view: ``(H, W, 3)`` uint8 RGB image.
        method: A key of :data:`REGION_METHODS`.
        **params: The method's parameters (see its ``params``), its ``extra_kwargs``, and
            ``min_area`` (pixels, >= 0): when > 0, smaller regions are merged afterwards.

    Returns:
        ``(H, W)`` int32 label map with ids ``0..N-1``, disjoint and covering.

    Raises:
        RegionError: Bad view, unknown method or parameter, or a parameter out of range.
        SamUnavailable: ``method="sam"`` without a usable checkpoint.
    """
    view = _check_view(view)
    spec = REGION_METHODS.get(method) if isinstance(method, str) else None
    if spec is None:
        raise RegionError(
            f"unknown region method {method!r}; choose one of: {', '.join(REGION_METHODS)}"
        )
    min_area = MIN_AREA_PARAM.check(params.pop("min_area", 0))
    kwargs = _resolve_params(spec, params)
    labels = spec.fn(view, **kwargs)
    if min_area > 1:
        labels = merge_small_regions(labels, min_area)
    return validate_labels(labels, view.shape[:2])


def _resolve_params(spec: RegionMethod, given: dict[str, Any]) -> dict[str, Any]:
    """Fill defaults, check ranges and reject names the method does not know."""
    known = {p.name: p for p in spec.params}
    unknown = sorted(set(given) - set(known) - set(spec.extra_kwargs))
    if unknown:
        valid = [*known, *spec.extra_kwargs, MIN_AREA_PARAM.name]
        raise RegionError(
            f"unknown parameter(s) {', '.join(map(repr, unknown))} for region method "
            f"{spec.name!r}; valid: {', '.join(valid)}"
        )
    resolved = {name: p.check(given.get(name, p.default)) for name, p in known.items()}
    resolved.update({k: v for k, v in given.items() if k in spec.extra_kwargs})
    return resolved


# --------------------------------------------------------------------------- helpers


def _check_view(view: Any) -> np.ndarray:
    """Require an ``(H, W, 3)`` uint8 array."""
    if not isinstance(view, np.ndarray):
        raise RegionError(f"view must be a numpy array, got {type(view).__name__}")
    if view.ndim != 3 or view.shape[2] != 3 or view.shape[0] < 1 or view.shape[1] < 1:
        raise RegionError(f"view must have shape (H, W, 3), got {view.shape}")
    if view.dtype != np.uint8:
        raise RegionError(f"view must be uint8 RGB, got dtype {view.dtype}")
    return view


def _as_int_map(labels: Any) -> np.ndarray:
    """Return ``labels`` as a non-empty 2-D integer array (integral floats accepted)."""
    arr = np.asarray(labels)
    if arr.ndim != 2:
        raise RegionError(f"label map must be 2-D, got shape {arr.shape}")
    if arr.size == 0:
        raise RegionError(f"label map is empty (shape {arr.shape})")
    if arr.dtype == bool:
        return arr.astype(np.int64)
    if np.issubdtype(arr.dtype, np.integer):
        return arr
    if np.issubdtype(arr.dtype, np.floating):
        bad = ~np.isfinite(arr) | (arr != np.round(arr))
        if bad.any():
            value = arr[bad].flat[0]
            raise RegionError(f"label ids must be integers, found {value!r} (dtype {arr.dtype})")
        return arr.astype(np.int64)
    raise RegionError(f"label map must hold integers, got dtype {arr.dtype}")


def _as_int(name: str, value: Any) -> int:
    """Accept ints and integral floats (UI sliders may send ``30.0``); reject bools."""
    if isinstance(value, (bool, np.bool_)):
        raise RegionError(f"parameter {name!r} must be an integer, got {value!r}")
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real) and math.isfinite(value) and float(value).is_integer():
        return int(value)
    raise RegionError(f"parameter {name!r} must be an integer, got {value!r}")


def _as_float(name: str, value: Any) -> float:
    """Accept finite real numbers; reject bools."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise RegionError(f"parameter {name!r} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise RegionError(f"parameter {name!r} must be finite, got {value!r}")
    return float(value)


def _fmt(bound: float | None, sign: str) -> str:
    """Format a range bound for messages (``None`` is unbounded)."""
    return f"{sign}inf" if bound is None else f"{bound:g}"
