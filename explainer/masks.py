"""Masks to regions: possibly overlapping binary masks (SAM's output) become one label map.

The rule follows the LiMA reference code (see ``docs/method.md``, "SAM regions"): overlaps are
resolved pairwise in the masks' order, tiny masks are dropped, and every uncovered pixel joins
one residual region. Pure numpy: no model, no files.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from explainer.errors import RegionError

__all__ = ["masks_to_labels"]


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


def _check_shape(shape: Any) -> tuple[int, int]:
    """Require ``(H, W)`` positive ints."""
    try:
        height, width = (int(s) for s in shape)
    except (TypeError, ValueError):
        raise RegionError(f"shape must be (H, W), got {shape!r}") from None
    if height < 1 or width < 1:
        raise RegionError(f"shape must be positive, got {shape!r}")
    return height, width


def _check_unit(name: str, value: Any) -> None:
    """Require a real number in [0, 1]."""
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if not ok or not 0.0 <= float(value) <= 1.0:
        raise RegionError(f"{name} must be a number in [0, 1], got {value!r}")
