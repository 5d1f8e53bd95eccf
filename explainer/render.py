"""Pure raster rendering (numpy/PIL): region boundaries, step views, heatmaps, GIFs.

Every function takes arrays and returns a new H×W×3 uint8 RGB array (inputs are never
modified). Colours are colour-blind safe (Okabe-Ito): blue for the target class, vermillion
for the other (wrong) class.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image
from skimage.segmentation import find_boundaries

TARGET_RGB = (0, 114, 178)  # Okabe-Ito blue: the target (usually the true) class
OTHER_RGB = (213, 94, 0)  # Okabe-Ito vermillion: the tracked (usually the wrong) class
SUBSET_RGB = (0, 158, 115)  # Okabe-Ito bluish green: the minimal subset
HIGHLIGHT_RGB = (240, 228, 66)  # Okabe-Ito yellow: the region added at this step


def hex_colour(rgb: tuple[int, int, int]) -> str:
    """ "#rrggbb" of an RGB triple (for matplotlib and plotly)."""
    return "#{:02X}{:02X}{:02X}".format(*rgb)


TARGET_HEX, OTHER_HEX, SUBSET_HEX = hex_colour(TARGET_RGB), hex_colour(OTHER_RGB), hex_colour(SUBSET_RGB)
BOUNDARY_RGB = (255, 255, 255)
# Sequential map for ranks (dark = late, bright = early) and a diverging map through white.
SEQUENTIAL = ((0.0, (13, 8, 135)), (0.35, (126, 3, 168)), (0.65, (225, 100, 98)), (1.0, (240, 249, 33)))
DIVERGING = ((0.0, OTHER_RGB), (0.5, (247, 247, 247)), (1.0, TARGET_RGB))


def upscale(image: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour upscaling by an integer factor (keeps region edges crisp)."""
    if factor <= 1:
        return np.array(image)
    return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)


def carry(values: np.ndarray, side: int) -> np.ndarray:
    """Nearest-neighbour resample of an S×S map (labels, ranks) to side×side, for any side.

    Pixel (r, c) of the result takes the value at (⌊r·S/side⌋, ⌊c·S/side⌋): the map carried onto
    the same crop at another resolution (e.g. the source photo's), region edges kept crisp.
    """
    s = values.shape[0]
    if side == s:
        return np.array(values)
    idx = (np.arange(side) * s) // side
    return values[np.ix_(idx, idx)]


def _erode(mask: np.ndarray) -> np.ndarray:
    """4-neighbour erosion; pixels outside the image count as outside the mask, so the image
    border closes an outline too."""
    inner = np.zeros_like(mask)
    inner[1:-1, 1:-1] = mask[1:-1, 1:-1] & mask[:-2, 1:-1] & mask[2:, 1:-1] & mask[1:-1, :-2] & mask[1:-1, 2:]
    return inner


def _outline(image: np.ndarray, mask: np.ndarray, color, thickness: int = 1) -> np.ndarray:
    """Draw the inner boundary of a boolean mask in ``color``, ``thickness`` pixels wide.

    Works on the mask's bounding box only (fast: a step view outlines one region per frame).
    Outside the box the mask is False by definition, so padding the box with False is exact,
    and regions touching the image border get a closed outline.
    """
    out = image.copy()
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return out
    r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    box = np.pad(mask[r0:r1, c0:c1], 1)
    core = box
    for _ in range(thickness):
        core = _erode(core)
    out[r0:r1, c0:c1][(box & ~core)[1:-1, 1:-1]] = color
    return out


def draw_boundaries(
    view: np.ndarray, labels: np.ndarray, color=BOUNDARY_RGB, scale: int = 2, alpha: float = 0.85
) -> np.ndarray:
    """The view with region boundaries drawn, upscaled by ``scale`` so lines stay thin.

    Args:
        view: S×S×3 uint8 RGB. labels: S×S int label map.
        color: boundary colour; alpha: its opacity in [0, 1].

    Returns:
        (scale·S)×(scale·S)×3 uint8.
    """
    img, lab = upscale(view, scale), upscale(labels, scale)
    edge = find_boundaries(lab, mode="inner")
    out = img.astype(np.float32)
    out[edge] = (1 - alpha) * out[edge] + alpha * np.asarray(color, np.float32)
    return out.round().astype(np.uint8)


def rank_map(labels: np.ndarray, order: np.ndarray) -> np.ndarray:
    """S×S int: each pixel's position (0-based) in the ranking of its region."""
    ranks = np.empty(len(order), np.int32)
    ranks[np.asarray(order)] = np.arange(len(order), dtype=np.int32)
    return ranks[labels]


def revealed_mask(labels: np.ndarray, order: np.ndarray, k: int) -> np.ndarray:
    """S×S bool: True where one of the first ``k`` regions of ``order`` is."""
    return rank_map(labels, order) < k


def step_image(
    view: np.ndarray,
    labels: np.ndarray,
    order: np.ndarray,
    k: int,
    *,
    hidden: str = "black",
    dim: float = 0.25,
    scale: int = 2,
    highlight: bool = True,
    subset_size: int | None = None,
    source: np.ndarray | None = None,
) -> np.ndarray:
    """The view at step k: the first k regions revealed, the rest black or dimmed, the region
    added at step k outlined in yellow and (optionally) the minimal subset outlined in blue.

    Args:
        hidden: "black" (what the model saw) or "dim" (context kept at ``dim`` brightness).
        subset_size: k* of the minimal subset to outline, or None.
        source: the same crop at a higher resolution (F×F×3 uint8, e.g. the source photo's,
            see ``source_view``); the label map is carried onto it and ``scale`` is ignored.

    Returns:
        (scale·S)×(scale·S)×3 uint8, or F×F×3 with ``source``.
    """
    if hidden not in ("black", "dim"):
        raise ValueError(f"hidden must be 'black' or 'dim', got {hidden!r}.")
    if source is not None:
        side = source.shape[0]
        ranks, img = carry(rank_map(labels, order), side), source
        scale = max(1, round(side / labels.shape[0]))  # outline width: one model pixel
    else:
        ranks, img = upscale(rank_map(labels, order), scale), upscale(view, scale)
    shown = ranks < k
    if hidden == "black":
        img = np.where(shown[..., None], img, 0).astype(np.uint8)
    else:
        img = np.where(shown[..., None], img, (img * dim).round().astype(np.uint8))
    if subset_size:
        img = _outline(img, ranks < subset_size, TARGET_RGB, scale)
    if highlight and k >= 1:
        img = _outline(img, ranks == k - 1, HIGHLIGHT_RGB, scale)
    return img


def colorize(values: np.ndarray, stops=SEQUENTIAL, vmin: float = 0.0, vmax: float = 1.0) -> np.ndarray:
    """Map a float array to RGB through colour stops ((position in [0, 1], (r, g, b)), ...)."""
    t = np.clip((np.asarray(values, np.float64) - vmin) / max(vmax - vmin, 1e-12), 0.0, 1.0)
    pos = np.array([p for p, _ in stops])
    rgb = np.array([c for _, c in stops], np.float64)
    out = np.stack([np.interp(t, pos, rgb[:, ch]) for ch in range(3)], axis=-1)
    return out.round().astype(np.uint8)


def per_region(labels: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Spread one value per region id over the label map; S×S float64."""
    return np.asarray(values, np.float64)[labels]


def rank_values(order: np.ndarray) -> np.ndarray:
    """Per region id: (N − i)/N for the region ranked i-th (0-based); the first gets 1."""
    n = len(order)
    values = np.empty(n)
    values[np.asarray(order)] = (n - np.arange(n)) / n
    return values


def gain_values(order: np.ndarray, curve: np.ndarray) -> np.ndarray:
    """Per region id: the marginal gain s_i − s_{i−1} it brought on the insertion curve."""
    values = np.empty(len(order))
    values[np.asarray(order)] = np.diff(np.asarray(curve, np.float64))
    return values


def blend(view: np.ndarray, colors: np.ndarray, alpha: float = 0.62) -> np.ndarray:
    """(1 − alpha)·view + alpha·colors, uint8."""
    return ((1 - alpha) * view.astype(np.float32) + alpha * colors.astype(np.float32)).round().astype(np.uint8)


@dataclass(frozen=True)
class ColourScale:
    """How a heatmap maps values to colours, so the UI and figures can draw its legend.

    Attributes:
        stops: ((position in [0, 1], (r, g, b)), ...) colour stops.
        low, high: the values at positions 0 and 1 (values outside are clipped).
        low_label, high_label: what the two ends mean, e.g. "ranked last" / "ranked first".
    """

    stops: tuple
    low: float
    high: float
    low_label: str = ""
    high_label: str = ""

    @classmethod
    def for_values(
        cls, values: np.ndarray, diverging: bool = False, low_label: str = "", high_label: str = ""
    ) -> ColourScale:
        """Sequential: [min, max]. Diverging: symmetric around 0, ±max|v| (white = 0)."""
        values = np.asarray(values, np.float64)
        if diverging:
            bound = max(float(np.abs(values).max()) if values.size else 0.0, 1e-9)
            return cls(DIVERGING, -bound, bound, low_label, high_label)
        low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 1.0)
        return cls(SEQUENTIAL, low, high, low_label, high_label)

    def colours(self, values: np.ndarray) -> np.ndarray:
        """RGB uint8 for each value (any shape; a trailing axis of 3 is added)."""
        return colorize(values, self.stops, self.low, self.high)

    def css_gradient(self) -> str:
        """The scale as a CSS ``linear-gradient`` from low (left) to high (right)."""
        parts = ", ".join(f"rgb{tuple(int(c) for c in rgb)} {100 * pos:.0f}%" for pos, rgb in self.stops)
        return f"linear-gradient(to right, {parts})"


def heatmap(
    view: np.ndarray,
    labels: np.ndarray,
    values: np.ndarray,
    *,
    diverging: bool = False,
    alpha: float = 0.62,
    scale: int = 2,
    outline: np.ndarray | None = None,
    colours: ColourScale | None = None,
) -> np.ndarray:
    """Per-region values painted over the view.

    Args:
        values: one float per region id. Sequential maps span [min, max]; diverging maps are
            symmetric around 0 (blue positive, vermillion negative).
        outline: optional S×S bool mask (e.g. the minimal subset) outlined in black.
        colours: the colour scale to use (default: :meth:`ColourScale.for_values`), so the
            legend drawn beside the map is exactly the one it was painted with.

    Returns:
        (scale·S)×(scale·S)×3 uint8.
    """
    values = np.asarray(values, np.float64)
    colours = colours or ColourScale.for_values(values, diverging)
    img = upscale(blend(view, colours.colours(per_region(labels, values)), alpha), scale)
    img = draw_boundaries(img, upscale(labels, scale), color=(0, 0, 0), scale=1, alpha=0.25)
    if outline is not None:
        img = _outline(img, upscale(outline, scale), (0, 0, 0), scale)
    return img


def to_png(image: np.ndarray, metadata: dict[str, str] | None = None) -> bytes:
    """Encode an RGB array as PNG bytes, with optional text chunks (provenance)."""
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    for key, value in (metadata or {}).items():
        info.add_itxt(key, str(value))
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG", pnginfo=info)
    return buf.getvalue()


def to_gif(frames: list[np.ndarray], duration_ms: int = 400, comment: str = "") -> bytes:
    """An animated GIF (looping) from RGB frames; the last frame is held three times longer."""
    if not frames:
        raise ValueError("a GIF needs at least one frame")
    images = [Image.fromarray(f).convert("P", palette=Image.Palette.ADAPTIVE, colors=255) for f in frames]
    durations = [duration_ms] * (len(frames) - 1) + [duration_ms * 3]
    buf = io.BytesIO()
    images[0].save(
        buf,
        format="GIF",
        save_all=True,
        append_images=images[1:],
        duration=durations,
        loop=0,
        comment=comment.encode("utf-8"),
    )  # any length: Pillow splits it into sub-blocks
    return buf.getvalue()
