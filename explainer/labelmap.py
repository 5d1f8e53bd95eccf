"""Label maps: the one representation of regions, and the operations on it.

A label map is an ``(H, W)`` int32 array whose ids are ``0..N-1``, every id present: regions are
disjoint and cover the image by construction. This module validates, compacts, summarises,
loads and merges label maps; :mod:`explainer.regions` and :mod:`explainer.sam` produce them.
"""

from __future__ import annotations

import heapq
import numbers
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from explainer.errors import RegionError
from explainer.options import Options, option

__all__ = [
    "RegionOptions",
    "RegionStats",
    "check_min_area",
    "load_label_map",
    "merge_small_regions",
    "region_stats",
    "relabel",
    "validate_labels",
]


@dataclass(frozen=True)
class RegionOptions(Options):
    """The options every region method has; each method's options class extends this one."""

    error = RegionError
    what = "parameter"
    name_format = "parameter {quoted}"
    unknown_format = "unknown parameter(s) {names}{context}; valid: {valid}"

    min_area: int = option(
        0,
        low=0,
        step=50,
        ui_high=2000,
        unit="px",
        order=100,
        label="merge regions smaller than",
        help="Merge regions smaller than this many pixels into their longest-bordering neighbour (0 = off).",
    )


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


def check_min_area(min_area: Any) -> int:
    """A minimum region area in pixels: an integer >= 0."""
    integral = isinstance(min_area, numbers.Integral) or (isinstance(min_area, float) and min_area.is_integer())
    if isinstance(min_area, bool) or not integral or min_area < 0:
        raise RegionError(f"min_area must be an integer >= 0 (pixels), got {min_area!r}")
    return int(min_area)


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
        raise RegionError(f"label ids must be 0..N-1 without gaps, found id {high} in {arr.size} px")
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
    min_area = check_min_area(min_area)
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


def _merge_loop(areas: list[int], adjacency: list[dict[int, int]], parent: list[int], min_area: int) -> None:
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
            value = arr[bad].flat[0].item()
            raise RegionError(f"label ids must be integers, found {value} (dtype {arr.dtype})")
        return arr.astype(np.int64)
    raise RegionError(f"label map must hold integers, got dtype {arr.dtype}")
