"""Stimulus images: the view with hidden pixels filled, at the study's size, as PNG bytes with no
metadata; and the researcher's contact sheet.

Every stimulus has one size and mode (size×size RGB). Shown pixels equal the view resized to
``size`` (bicubic; the view itself when ``size`` is the model's resolution); hidden pixels equal
the fill image at that size: black (0), grey (128), the view blurred (σ = size/16) or dimmed to a
quarter. The mask is resized by nearest neighbour, so no pixel mixes the two.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Sequence

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from explainer import render
from explainer.compose import DIM, GREY
from explainer.errors import StudyError

OUTLINE_RGB = (255, 214, 0)


def resize_rgb(image: np.ndarray, size: int) -> np.ndarray:
    """size×size×3 uint8 (bicubic); the image itself when it already has that size."""
    if image.shape[:2] == (size, size):
        return np.asarray(image, np.uint8)
    return np.asarray(Image.fromarray(np.asarray(image, np.uint8)).resize((size, size), Image.Resampling.BICUBIC))


def resize_mask(mask: np.ndarray, size: int) -> np.ndarray:
    """size×size bool by nearest neighbour."""
    if mask.shape == (size, size):
        return mask.astype(bool)
    img = Image.fromarray(mask.astype(np.uint8) * 255).resize((size, size), Image.Resampling.NEAREST)
    return np.asarray(img) > 127


def fill_look(shown: np.ndarray, look: str) -> np.ndarray:
    """The image hidden pixels take, size×size×3 uint8 (see the module docstring)."""
    if look == "black":
        return np.zeros_like(shown)
    if look == "grey":
        return np.full_like(shown, GREY)
    if look == "blur":
        sigma = shown.shape[0] / 16
        return cv2.GaussianBlur(shown, (0, 0), sigmaX=sigma, sigmaY=sigma)
    if look == "dimmed":
        return (shown.astype(np.float32) * DIM).round().astype(np.uint8)
    raise StudyError(f"fill must be black, grey, blur or dimmed, got {look!r}")


def stimulus(view: np.ndarray, mask: np.ndarray, look: str, size: int, outline: bool = False) -> np.ndarray:
    """One stimulus, size×size×3 uint8.

    Args:
        view: S×S×3 uint8, the model's view; mask: S×S bool, the shown pixels.
        look: black, grey, blur or dimmed; outline: draw the shown area's edge in yellow.
    """
    shown = resize_rgb(view, size)
    keep = resize_mask(mask, size)
    out = np.where(keep[..., None], shown, fill_look(shown, look)).astype(np.uint8)
    if outline and keep.any() and not keep.all():
        out = render._outline(out, keep, OUTLINE_RGB, max(1, size // 160))
    return out


def png_bytes(image: np.ndarray) -> bytes:
    """A plain PNG: no text chunks, no EXIF, no time or resolution chunks; deterministic bytes
    (the same pixels always give the same file)."""
    buf = io.BytesIO()
    Image.fromarray(np.asarray(image, np.uint8), "RGB").save(buf, format="PNG", compress_level=9)
    return buf.getvalue()


def png_chunks(data: bytes) -> list[str]:
    """The chunk types of a PNG file, in order (for checks: only IHDR, IDAT and IEND belong)."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise StudyError("not a PNG file")
    out, pos = [], 8
    while pos < len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8]
        if zlib.crc32(kind + data[pos + 8 : pos + 8 + length]) != int.from_bytes(
            data[pos + 8 + length : pos + 12 + length], "big"
        ):
            raise StudyError("a PNG chunk has a bad checksum")
        out.append(kind.decode("latin-1"))
        pos += 12 + length
    return out


def contact_sheet(
    tiles: Sequence[np.ndarray], captions: Sequence[Sequence[str]], columns: int = 8, tile: int = 160
) -> np.ndarray:
    """Every stimulus as a thumbnail with caption lines under it (for the researcher only).

    Returns:
        H×W×3 uint8, white background; ``columns`` tiles per row.
    """
    if not tiles:
        return np.full((tile, tile, 3), 255, np.uint8)
    font = ImageFont.load_default(size=11)
    lines = max(len(c) for c in captions)
    line_h = 13
    cell_w, cell_h = tile + 8, tile + 6 + lines * line_h + 6
    columns = max(1, min(columns, len(tiles)))
    rows = -(-len(tiles) // columns)
    sheet = Image.new("RGB", (columns * cell_w, rows * cell_h), "white")
    draw = ImageDraw.Draw(sheet)
    for index, (image, caption) in enumerate(zip(tiles, captions)):
        x, y = (index % columns) * cell_w + 4, (index // columns) * cell_h + 4
        sheet.paste(
            Image.fromarray(np.asarray(image, np.uint8)).resize((tile, tile), Image.Resampling.BILINEAR), (x, y)
        )
        for n, text in enumerate(caption):
            shown = text if draw.textlength(text, font=font) <= tile else _fit(draw, text, font, tile)
            draw.text((x, y + tile + 3 + n * line_h), shown, fill=(20, 20, 20), font=font)
    return np.asarray(sheet)


def _fit(draw: ImageDraw.ImageDraw, text: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont, width: int) -> str:
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


__all__ = [
    "contact_sheet",
    "decode_png",
    "fill_look",
    "png_bytes",
    "png_chunks",
    "resize_mask",
    "resize_rgb",
    "stimulus",
]


def decode_png(png: bytes) -> np.ndarray:
    """PNG bytes -> H×W×3 uint8."""
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
