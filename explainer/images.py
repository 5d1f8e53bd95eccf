"""Reading any user image safely into one canonical form: an 8-bit RGB PIL image.

Everything the engine explains goes through :func:`load_image`, so every odd format (16-bit
greyscale, float TIFFs, CMYK, palettes with transparency, EXIF-rotated phone photos, numpy
arrays) is normalised in one place, and every failure becomes an :class:`ImageError` whose
message names the file and says what to do.

Only numpy and Pillow are used here.
"""

from __future__ import annotations

import hashlib
import io
import re
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from explainer.errors import ImageError

MAX_PIXELS_DEFAULT = 64_000_000  # refuse bigger images (decompression bombs) before decoding
MIN_SIDE = 16  # refuse images smaller than this on either side (e.g. 1×1)
MAX_BYTES_DEFAULT = 200 * 1024 * 1024  # refuse bigger files before reading them into memory

_WHITE = (255, 255, 255)
_ALPHA_MODES = frozenset({"LA", "La", "RGBA", "RGBa", "PA"})
_INT_GREY_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N", "I"})


# ----------------------------------------------------------------------------------- public API


def load_image(
    source: str | Path | bytes | np.ndarray | Image.Image,
    *,
    max_pixels: int = MAX_PIXELS_DEFAULT,
    name: str | None = None,
) -> Image.Image:
    """Read an image from a file, bytes, an array or a PIL image, as 8-bit RGB.

    Conversions:
        * EXIF orientation is applied, so phone photos come out upright.
        * Greyscale ("L", "1") is replicated into three channels.
        * Transparency ("LA", "RGBA", "PA", or "P" with a transparent colour) is composited
          onto a **white** background: transparent pixels become white.
        * 16-bit greyscale ("I;16", "I;16B", "I" holding 0..65535) is divided by 257, so
          0..65535 maps onto 0..255; an "I" image with other values is min-max stretched.
        * 32-bit float greyscale ("F"): values in [0, 1] are scaled by 255, values in
          [0, 255] are kept, anything else is min-max stretched. NaN becomes 0.
        * CMYK, YCbCr and 16-bit RGB(A) PNGs use Pillow's own conversion.
        * Animated GIF/WebP and multi-page TIFF: the first frame.
        * Arrays of shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) with dtype uint8,
          uint16 (÷257), bool (False→0, True→255) or float in [0, 1] (×255).

    Args:
        source: a file path, the encoded bytes of a file, an array as above, or a PIL image.
        max_pixels: refuse images with more pixels than this (checked from the file header,
            before decoding). Pillow's own decompression-bomb limit (about 89 MP, an error
            above about 179 MP) still applies on top of it.
        name: how to call the image in error messages; defaults to the file name.

    Returns:
        A fully loaded PIL image in mode "RGB" (uint8, 0..255), independent of any file.

    Raises:
        ImageError: the file is missing, a directory, not an image, damaged or truncated,
            larger than ``max_pixels``, smaller than MIN_SIDE on a side, or of an unusable
            array shape/dtype/range.
    """
    label = _display_name(source, name)
    if isinstance(source, np.ndarray):
        image = _array_to_image(source, label, max_pixels)
    elif isinstance(source, Image.Image):
        _check_size(source.size, label, max_pixels)
        image = _decode(source, label)
    elif isinstance(source, (bytes, bytearray, memoryview)):
        image = _open_and_decode(io.BytesIO(bytes(source)), label, max_pixels)
    elif isinstance(source, (str, Path)):
        path = _existing_file(Path(source), label)
        image = _open_and_decode(path, label, max_pixels)
    else:
        raise ImageError(
            f"{label}: cannot read an image from a {type(source).__name__}; "
            "give a file path, bytes, a numpy array or a PIL image."
        )
    _check_min_side(image.size, label)
    return image


def image_digest(data: bytes | np.ndarray) -> str:
    """SHA-256 hex digest of raw bytes, or of an array's shape, dtype and contents.

    Args:
        data: encoded file bytes, or an array of any shape and dtype.

    Returns:
        64 lowercase hex characters; equal content gives an equal digest.
    """
    digest = hashlib.sha256()
    if isinstance(data, np.ndarray):
        # Shape and dtype are hashed too, so a (2, 8) and an (8, 2) array of the same
        # bytes, or uint8 vs int8 views, do not collide.
        digest.update(repr((data.shape, data.dtype.str)).encode())
        digest.update(np.ascontiguousarray(data).tobytes())
    else:
        digest.update(bytes(data))
    return digest.hexdigest()


def file_digest(path: str | Path) -> str:
    """SHA-256 hex digest of a file's bytes, read in 1 MiB chunks (constant memory).

    Raises:
        ImageError: the path is missing, a directory, or unreadable.
    """
    path = _existing_file(Path(path), Path(path).name)
    digest = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as exc:
        raise ImageError(f"{path.name}: cannot read the file ({exc.strerror or exc}).") from exc
    return digest.hexdigest()


def read_bytes(path: str | Path, *, max_bytes: int = MAX_BYTES_DEFAULT) -> bytes:
    """Read a whole file, refusing files larger than ``max_bytes``.

    Raises:
        ImageError: the path is missing, a directory, unreadable, or too large.
    """
    path = _existing_file(Path(path), Path(path).name)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise ImageError(f"{path.name} is {_mib(size)}; the limit is {_mib(max_bytes)}. Use a smaller file.")
        return path.read_bytes()
    except OSError as exc:
        raise ImageError(f"{path.name}: cannot read the file ({exc.strerror or exc}).") from exc


# ------------------------------------------------------------------------------ file decoding


def _open_and_decode(fp: Path | io.BytesIO, label: str, max_pixels: int) -> Image.Image:
    """Open lazily, check the header size, then decode and convert; always closes the file."""
    # No warnings.catch_warnings() here: it changes process-wide state and is not thread-safe
    # (scans decode on worker threads). Pillow only *warns* between its two bomb limits, so the
    # header check below applies the stricter of ``max_pixels`` and Pillow's own limit.
    try:
        opened = Image.open(fp)
    except Image.DecompressionBombError as exc:
        raise _bomb_error(exc, label, max_pixels) from exc
    except Image.UnidentifiedImageError as exc:
        raise ImageError(f"{label} is not an image Pillow can read (JPEG, PNG, WebP, BMP, TIFF, GIF...).") from exc
    except OSError as exc:
        raise ImageError(f"{label}: cannot open the file ({exc.strerror or exc}).") from exc
    with opened:
        _check_size(opened.size, label, min(max_pixels, Image.MAX_IMAGE_PIXELS or max_pixels))
        return _decode(opened, label)


def _decode(image: Image.Image, label: str) -> Image.Image:
    """Decode pixel data, apply EXIF orientation and convert to RGB."""
    try:
        image.load()
        upright = _exif_upright(image)
        if upright is not image and upright.mode == "RGB":
            return upright  # already a detached RGB copy: skip one more copy
        return _to_rgb(upright, label)
    except (ImageError, MemoryError):
        raise
    except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError, ... on bad data
        raise ImageError(
            f"{label}: the image data is damaged or truncated ({exc}). Re-export or re-download the file."
        ) from exc


def _exif_upright(image: Image.Image) -> Image.Image:
    """Rotate/flip by the EXIF Orientation tag; a broken EXIF block is ignored, not fatal."""
    try:
        return ImageOps.exif_transpose(image) or image
    except Exception:  # malformed EXIF is common in the wild; the pixels are still fine
        return image


def _to_rgb(image: Image.Image, label: str) -> Image.Image:
    """Convert any Pillow mode to a new, detached "RGB" image (see load_image)."""
    mode = image.mode
    if mode in _INT_GREY_MODES:
        return _grey_to_rgb(_int_grey_to_uint8(np.asarray(image)))
    if mode == "F":
        return _grey_to_rgb(_float_grey_to_uint8(np.asarray(image, dtype=np.float64)))
    if mode in _ALPHA_MODES or (mode == "P" and "transparency" in image.info):
        return _flatten_alpha(image.convert("RGBA"))
    try:
        return image.convert("RGB")
    except (ValueError, OSError) as exc:
        raise ImageError(
            f"{label}: images in colour mode {mode!r} are not supported ({exc}); "
            "save it as an RGB or greyscale JPEG/PNG."
        ) from exc


def _flatten_alpha(rgba: Image.Image) -> Image.Image:
    """Composite an RGBA image onto white, so transparent pixels read as white."""
    background = Image.new("RGBA", rgba.size, _WHITE + (255,))
    return Image.alpha_composite(background, rgba).convert("RGB")


def _int_grey_to_uint8(values: np.ndarray) -> np.ndarray:
    """16-bit data (0..65535) → 0..255 by ÷257; other integer ranges are min-max stretched."""
    values = values.astype(np.int64)
    if values.size and values.min() >= 0 and values.max() <= 65535:
        return np.round(values / 257.0).astype(np.uint8)
    return _stretch(values.astype(np.float64))


def _float_grey_to_uint8(values: np.ndarray) -> np.ndarray:
    """Float greyscale → uint8: [0,1] ×255, [0,255] as is, otherwise min-max stretched."""
    values = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
    low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    if low >= 0.0 and high <= 1.0:
        return np.round(values * 255.0).astype(np.uint8)
    if low >= 0.0 and high <= 255.0:
        return np.round(values).astype(np.uint8)
    return _stretch(values)


def _stretch(values: np.ndarray) -> np.ndarray:
    """Linearly map min..max onto 0..255 (a constant image becomes 0)."""
    low, high = float(values.min()), float(values.max())
    if high <= low:
        return np.zeros(values.shape, dtype=np.uint8)
    return np.round((values - low) * (255.0 / (high - low))).astype(np.uint8)


def _grey_to_rgb(grey: np.ndarray) -> Image.Image:
    """(H, W) uint8 → RGB PIL image."""
    return Image.fromarray(np.ascontiguousarray(grey), mode="L").convert("RGB")


# ----------------------------------------------------------------------------------- arrays


def _array_to_image(array: np.ndarray, label: str, max_pixels: int) -> Image.Image:
    """Convert an (H, W[, C]) array to RGB, validating shape, dtype and value range."""
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (3, 4))):
        raise ImageError(
            f"{label}: an image array must have shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4); got {array.shape}."
        )
    _check_size((array.shape[1], array.shape[0]), label, max_pixels)
    pixels = np.ascontiguousarray(_array_to_uint8(array, label))
    if pixels.ndim == 2:
        return _grey_to_rgb(pixels)
    if pixels.shape[2] == 4:
        return _flatten_alpha(Image.fromarray(pixels, mode="RGBA"))
    return Image.fromarray(pixels, mode="RGB")


def _array_to_uint8(array: np.ndarray, label: str) -> np.ndarray:
    """Map bool / uint8 / uint16 / float-in-[0,1] / small-int arrays onto uint8 0..255."""
    kind = array.dtype.kind
    if kind == "b":
        return array.astype(np.uint8) * 255
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.uint16:
        return np.round(array / 257.0).astype(np.uint8)
    if kind == "f":
        return _unit_float_to_uint8(array, label)
    if kind in "iu" and array.size and array.min() >= 0 and array.max() <= 255:
        return array.astype(np.uint8)  # e.g. int64 arrays that hold 8-bit values
    raise ImageError(
        f"{label}: unsupported array dtype {array.dtype} (values "
        f"{_range_text(array)}); use uint8, uint16, bool, or float in [0, 1]."
    )


def _unit_float_to_uint8(array: np.ndarray, label: str) -> np.ndarray:
    """Float arrays must be finite and within [0, 1]; anything else is ambiguous."""
    if not np.all(np.isfinite(array)):
        raise ImageError(f"{label}: the float image array contains NaN or infinite values.")
    if array.size and (array.min() < 0.0 or array.max() > 1.0):
        raise ImageError(
            f"{label}: a float image array must hold values in [0, 1]; got "
            f"{_range_text(array)}. Divide 0..255 data by 255 first."
        )
    return np.round(array * 255.0).astype(np.uint8)


# ------------------------------------------------------------------------------ validation


def _existing_file(path: Path, label: str) -> Path:
    """Return ``path`` if it is an existing regular file, else raise a clear ImageError."""
    if path.is_dir():
        raise ImageError(f"{label} is a folder, not an image file: {path}")
    if not path.exists():
        raise ImageError(f"{label} does not exist: {path}")
    if not path.is_file():
        raise ImageError(f"{label} is not a regular file: {path}")
    return path


def _check_size(size: tuple[int, int], label: str, max_pixels: int) -> None:
    """Refuse over-large images, using only the (width, height) from the header."""
    width, height = size
    if width * height > max_pixels:
        raise ImageError(
            f"{label} is {width}×{height} = {_mp(width * height)}; the limit is "
            f"{_mp(max_pixels)}. Resize it to fewer pixels and try again."
        )


def _check_min_side(size: tuple[int, int], label: str) -> None:
    """Refuse images too small to explain (a 1×1 pixel says nothing)."""
    width, height = size
    if min(width, height) < MIN_SIDE:
        raise ImageError(
            f"{label} is only {width}×{height} pixels; images need at least {MIN_SIDE} pixels on each side."
        )


def _bomb_error(exc: Exception, label: str, max_pixels: int) -> ImageError:
    """Turn Pillow's decompression-bomb error/warning into a readable ImageError."""
    found = re.search(r"\((\d+) pixels\)", str(exc))
    size_text = _mp(int(found.group(1))) if found else "too many pixels"
    pillow_limit = Image.MAX_IMAGE_PIXELS or max_pixels
    return ImageError(
        f"{label} has {size_text}; the limit is {_mp(min(max_pixels, pillow_limit))} "
        "(a guard against decompression bombs). Resize it to fewer pixels and try again."
    )


def _display_name(source: object, name: str | None) -> str:
    """A short name for messages: the given name, the file name, or the source kind."""
    if name:
        return name
    if isinstance(source, (str, Path)):
        return Path(source).name or str(source)
    if isinstance(source, np.ndarray):
        return "the image array"
    return "the image"


def _mp(pixels: int) -> str:
    """Pixels as megapixels: '400 MP', '8.3 MP', '0.25 MP'."""
    megapixels = pixels / 1e6
    if megapixels >= 10:
        return f"{megapixels:.0f} MP"
    return f"{megapixels:.2g} MP" if megapixels < 1 else f"{megapixels:.1f} MP"


def _mib(size: int) -> str:
    """Bytes as MiB with one decimal."""
    return f"{size / (1024 * 1024):.1f} MiB"


def _range_text(array: np.ndarray) -> str:
    """'min..max' of an array, or 'empty'."""
    if not array.size:
        return "empty"
    return f"{np.nanmin(array)}..{np.nanmax(array)}"
