"""Split a view into regions: a registry of methods, each returning one label map.

Every method returns a single label map on the view: an ``(H, W)`` int32 array whose ids are
``0..N-1``, all present, so regions are disjoint and cover the view by construction. The same
input and options always give the same map.

A method is one :class:`RegionMethod` in :data:`REGION_METHODS`: a name, a description, an
options dataclass (its parameters with defaults, ranges and help: the CLI's ``--param`` and the
UI's widgets come from it) and a function ``fn(view, options, **objects) -> labels``. Adding a
method is adding one entry here. Methods: SLICO and SEEDS superpixels as in the LiMA reference
(``docs/method.md``, "Regions"), scikit-image SLIC and Felzenszwalb, a square grid, and SAM
(:mod:`explainer.sam`).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
from skimage.segmentation import felzenszwalb, slic

from explainer.errors import RegionError
from explainer.labelmap import (
    RegionOptions,
    RegionStats,
    load_label_map,
    merge_small_regions,
    region_stats,
    relabel,
    validate_labels,
)
from explainer.options import option
from explainer.registry import Registry
from explainer.sam import SamOptions, sam_regions, sam_status

__all__ = [
    "REGION_METHODS",
    "RegionMethod",
    "RegionOptions",
    "RegionSpec",
    "RegionStats",
    "load_label_map",
    "merge_small_regions",
    "propose_regions",
    "region_stats",
    "relabel",
    "slico_for_count",
    "validate_labels",
]


@dataclass(frozen=True)
class RegionMethod:
    """A region method the UI can list and :func:`propose_regions` can run.

    Attributes:
        name: registry key, e.g. ``"slico"``.
        label: display name.
        description: one sentence for the UI.
        options: the method's options dataclass (a :class:`RegionOptions` subclass).
        fn: ``fn(view, options, **objects) -> labels``; may return any integer map, it is
            checked after.
        objects: keyword arguments ``fn`` accepts that are not options (objects such as an
            already-loaded model); passed through unchecked.
        slow_on_cpu: the method needs a GPU to be interactive (SAM), so the UI runs it as a job.
    """

    name: str
    label: str
    description: str
    options: type[RegionOptions]
    fn: Callable[..., np.ndarray]
    objects: tuple[str, ...] = field(default=())
    slow_on_cpu: bool = False
    min_side: int = 1  # smaller views are refused (OpenCV's SLICO and SEEDS crash on them)

    def defaults(self) -> dict[str, Any]:
        """``{option name: default}`` for this method."""
        return self.options().to_dict()

    def availability(self) -> tuple[bool, str]:
        """Whether the method can run here, and why not (only SAM can be unavailable)."""
        if self.name == "sam":
            status = sam_status()
            return status.available, status.reason
        return True, ""


REGION_METHODS: Registry[RegionMethod] = Registry("region method", RegionError)


# --------------------------------------------------------------------------- SLICO


@dataclass(frozen=True)
class SlicoOptions(RegionOptions):
    region_size: int = option(
        30,
        low=8,
        high=112,
        step=1,
        unit="px",
        help="Seed spacing in pixels: 30 gives 49 regions, 27 gives 64, 25 gives 77, 22 gives 100 at 224 px.",
    )
    iterations: int = option(20, low=1, high=50, step=1, help="Number of SLICO iterations.")


def _slico(view: np.ndarray, o: SlicoOptions) -> np.ndarray:
    """OpenCV SLICO as in the reference (``docs/method.md``); no connectivity enforcement."""
    # The reference runs on cv2.imread's BGR image; we pass BGR for parity. (SLICO's colour
    # distance is symmetric in the channels, so the labels are the same for RGB.)
    bgr = np.ascontiguousarray(view[..., ::-1])
    # ruler=20.0 is the reference value; it has no effect under SLICO.
    slico_ = cv2.ximgproc.createSuperpixelSLIC(bgr, algorithm=cv2.ximgproc.SLICO, region_size=o.region_size, ruler=20.0)
    slico_.iterate(o.iterations)
    return relabel(slico_.getLabels())


REGION_METHODS.register(
    RegionMethod(
        "slico",
        "SLICO superpixels",
        "OpenCV SLICO superpixels on a regular seed grid, as in the LiMA reference (49 at 224 px).",
        SlicoOptions,
        _slico,
        min_side=16,
    )
)


# --------------------------------------------------------------------------- SEEDS


@dataclass(frozen=True)
class SeedsOptions(RegionOptions):
    num_superpixels: int = option(
        50,
        low=4,
        high=400,
        step=1,
        help="Requested number of superpixels (the result is close: 50 gives 49 at 224 px).",
    )
    num_levels: int = option(3, low=1, high=8, step=1, help="Number of block levels; more gives finer boundaries.")
    prior: int = option(2, low=0, high=5, step=1, help="Boundary smoothing prior (0 = none).")
    histogram_bins: int = option(5, low=2, high=10, step=1, help="Colour histogram bins per channel.")
    iterations: int = option(10, low=1, high=50, step=1, help="Number of SEEDS iterations.")


def _seeds(view: np.ndarray, o: SeedsOptions) -> np.ndarray:
    """OpenCV SEEDS as in the reference (``docs/method.md``)."""
    height, width = view.shape[:2]
    bgr = np.ascontiguousarray(view[..., ::-1])  # reference parity (BGR), see _slico
    seeds = cv2.ximgproc.createSuperpixelSEEDS(
        width, height, 3, o.num_superpixels, o.num_levels, o.prior, o.histogram_bins
    )
    seeds.iterate(bgr, o.iterations)
    # With prior > 0 SEEDS can leave unused ids, so compact them.
    return relabel(seeds.getLabels())


REGION_METHODS.register(
    RegionMethod(
        "seeds",
        "SEEDS superpixels",
        "OpenCV SEEDS superpixels refined by colour histograms, as in the LiMA reference.",
        SeedsOptions,
        _seeds,
        min_side=16,
    )
)


# --------------------------------------------------------------------------- SLIC (scikit-image)


@dataclass(frozen=True)
class SlicOptions(RegionOptions):
    n_segments: int = option(50, low=2, high=1000, step=1, help="Approximate number of superpixels.")
    compactness: float = option(10.0, low=0.01, high=100.0, step=0.5, help="Higher gives squarer superpixels.")
    sigma: float = option(1.0, low=0.0, high=5.0, step=0.1, help="Gaussian smoothing before segmenting.")


def _slic(view: np.ndarray, o: SlicOptions) -> np.ndarray:
    """scikit-image SLIC (k-means in Lab space) with connected regions."""
    labels = slic(
        view,
        n_segments=o.n_segments,
        compactness=o.compactness,
        sigma=o.sigma,
        start_label=0,
        channel_axis=-1,
        enforce_connectivity=True,
    )
    return relabel(labels)


REGION_METHODS.register(
    RegionMethod(
        "slic",
        "SLIC superpixels (scikit-image)",
        "scikit-image SLIC: compact, connected superpixels from k-means in Lab colour space.",
        SlicOptions,
        _slic,
    )
)


# --------------------------------------------------------------------------- Felzenszwalb


@dataclass(frozen=True)
class FelzenszwalbOptions(RegionOptions):
    scale: float = option(200.0, low=1.0, high=2000.0, step=10.0, help="Higher gives fewer, larger segments.")
    sigma: float = option(0.8, low=0.0, high=5.0, step=0.1, help="Gaussian smoothing before segmenting.")
    min_size: int = option(100, low=0, high=5000, step=10, unit="px", help="Minimum segment size in pixels.")


def _felzenszwalb(view: np.ndarray, o: FelzenszwalbOptions) -> np.ndarray:
    """scikit-image Felzenszwalb graph segmentation (region count depends on the image)."""
    return relabel(felzenszwalb(view, scale=o.scale, sigma=o.sigma, min_size=o.min_size, channel_axis=-1))


REGION_METHODS.register(
    RegionMethod(
        "felzenszwalb",
        "Felzenszwalb segments",
        "Graph-based segmentation that follows colour edges; the count depends on the image.",
        FelzenszwalbOptions,
        _felzenszwalb,
    )
)


# --------------------------------------------------------------------------- grid


@dataclass(frozen=True)
class GridOptions(RegionOptions):
    cells_per_side: int = option(7, low=1, high=64, step=1, help="Cells along each side: 7 gives 49 regions.")
    rows: int | None = option(
        None,
        low=1,
        high=64,
        step=1,
        optional=True,
        help="Rows of cells, if not cells_per_side (e.g. 3 rows of 7 for horizontal bands).",
    )


def _grid(view: np.ndarray, o: GridOptions) -> np.ndarray:
    """A grid of ``rows`` x ``cells_per_side`` cells (square by default), ids in raster order."""
    height, width = view.shape[:2]
    cells, rows_n = o.cells_per_side, o.rows or o.cells_per_side
    if cells > width or rows_n > height:
        raise RegionError(f"cells_per_side={cells} exceeds the view's short side ({min(height, width)} px)")
    rows, cols = _cell_index(height, rows_n), _cell_index(width, cells)
    return (rows[:, None] * cells + cols[None, :]).astype(np.int32)


def _cell_index(length: int, cells: int) -> np.ndarray:
    """Cell index of each pixel along one axis; boundaries at ``round(linspace(0, length))``."""
    bounds = np.round(np.linspace(0, length, cells + 1)).astype(np.int64)
    return np.searchsorted(bounds, np.arange(length), side="right") - 1


REGION_METHODS.register(
    RegionMethod("grid", "Square grid", "A plain grid of equal cells, a content-blind baseline.", GridOptions, _grid)
)


# --------------------------------------------------------------------------- SAM


def _sam(view: np.ndarray, o: SamOptions, **objects: Any) -> np.ndarray:
    return sam_regions(view, o, **objects)


REGION_METHODS.register(
    RegionMethod(
        "sam",
        "Segment Anything (SAM)",
        "SAM's automatic masks made disjoint, plus one residual region; needs a SAM checkpoint.",
        SamOptions,
        _sam,
        objects=("sam", "source", "device"),
        slow_on_cpu=True,
    )
)


# --------------------------------------------------------------------------- running a method


@dataclass(frozen=True)
class RegionSpec:
    """How a label map was made: the method and its resolved options (provenance of a result).

    ``method`` is a registry name, or "file" for a label map read from a file (then ``options``
    is None and ``source`` names the file), or any other text for maps made elsewhere.
    """

    method: str
    options: RegionOptions | None = None
    source: str = ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"method": self.method, "params": self.options.to_dict() if self.options else {}}
        if self.source:
            out["file"] = self.source
        return out

    @classmethod
    def from_dict(cls, doc: Any) -> RegionSpec:
        """From a saved result (any version) or a caller's dict; unknown methods or params are
        kept as far as they can be typed (never an error: old results must still open)."""
        if isinstance(doc, RegionSpec):
            return doc
        if not isinstance(doc, dict):
            return cls("unknown")
        method = str(doc.get("method") or "unknown")
        params = doc.get("params") if isinstance(doc.get("params"), dict) else {}
        source = str(doc.get("file") or doc.get("source") or "")
        if method in REGION_METHODS:
            try:
                return cls(method, REGION_METHODS.get(method).options.from_mapping(params), source)
            except RegionError:
                pass
        return cls(method, None, source)

    def describe(self) -> str:
        """A short text, e.g. "slico (region_size 30)"."""
        changed = self.options.changed() if self.options else {}
        inner = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in changed.items())
        return f"{self.method} ({inner})" if inner else self.method


def resolve_options(method: str, options: RegionOptions | dict[str, Any] | None = None, **params: Any) -> RegionOptions:
    """The typed options of ``method`` from an options object, a dict and/or keyword values."""
    spec = REGION_METHODS.get(method)
    if isinstance(options, RegionOptions):
        if not isinstance(options, spec.options):
            raise RegionError(f"{type(options).__name__} are not options of the region method {method!r}")
        return options.replace(**params) if params else options
    return spec.options.from_mapping({**(options or {}), **params}, context=f" for region method {method!r}")


def propose_regions(
    view: np.ndarray, method: str, options: RegionOptions | dict[str, Any] | None = None, **params: Any
) -> np.ndarray:
    """Split ``view`` into regions with a registered method.

    Args:
        view: ``(H, W, 3)`` uint8 RGB image.
        method: a name in :data:`REGION_METHODS`.
        options: the method's options object (or a dict of them); keyword ``params`` are merged
            in, so ``propose_regions(view, "slico", region_size=30)`` works. ``min_area`` (pixels,
            every method has it) merges smaller regions afterwards. The method's ``objects``
            (e.g. SAM's ``sam``, ``source``, ``device``) may be given as keywords too.

    Returns:
        ``(H, W)`` int32 label map with ids ``0..N-1``, disjoint and covering.

    Raises:
        RegionError: bad view, unknown method or option, or an option out of range.
        SamUnavailable: ``method="sam"`` without a usable checkpoint.
    """
    view = _check_view(view)
    spec = REGION_METHODS.get(method)
    if min(view.shape[:2]) < spec.min_side:
        raise RegionError(
            f"{spec.label} needs a view of at least {spec.min_side}×{spec.min_side} px, got "
            f"{view.shape[1]}×{view.shape[0]}"
        )
    objects = {k: params.pop(k) for k in list(params) if k in spec.objects}
    resolved = resolve_options(method, options, **params)
    labels = spec.fn(view, resolved, **objects)
    if resolved.min_area > 1:
        labels = merge_small_regions(labels, resolved.min_area)
    return validate_labels(labels, view.shape[:2])


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
    size_field = SlicoOptions.field("region_size").spec
    low, high = int(size_field.low or 8), int(size_field.high or 112)
    guess = round(math.sqrt(view.shape[0] * view.shape[1] / count))
    sizes = sorted({min(max(size, low), high) for size in range(guess - 3, guess + 4)}, reverse=True)
    best: tuple[int, np.ndarray, int] | None = None
    for size in sizes:
        labels = _slico(view, SlicoOptions(region_size=size, iterations=iterations))
        miss = abs(int(labels.max()) + 1 - count)
        if best is None or miss < best[0]:
            best = (miss, labels, size)
    assert best is not None
    return best[1], best[2]


def _check_view(view: Any) -> np.ndarray:
    """Require an ``(H, W, 3)`` uint8 array."""
    if not isinstance(view, np.ndarray):
        raise RegionError(f"view must be a numpy array, got {type(view).__name__}")
    if view.ndim != 3 or view.shape[2] != 3 or view.shape[0] < 1 or view.shape[1] < 1:
        raise RegionError(f"view must have shape (H, W, 3), got {view.shape}")
    if view.dtype != np.uint8:
        raise RegionError(f"view must be uint8 RGB, got dtype {view.dtype}")
    return view
