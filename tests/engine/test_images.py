"""Tests for explainer.images: every odd format comes out as 8-bit RGB, bad input as ImageError."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from explainer.errors import ImageError
from explainer.images import (
    MAX_PIXELS_DEFAULT,
    MIN_SIDE,
    file_digest,
    image_digest,
    load_image,
    read_bytes,
)

RED = (255, 0, 0)
WHITE = (255, 255, 255)


# ------------------------------------------------------------------------------ fixtures


def encode(image: Image.Image, fmt: str, **params) -> bytes:
    """Encode a PIL image to bytes in ``fmt``."""
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    """One PNG chunk with its CRC."""
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def raw_png(width: int, height: int, bit_depth: int, colour_type: int, rows: bytes | None) -> bytes:
    """A hand-written PNG; ``rows=None`` writes a header with no pixel data at all."""
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    body = png_chunk(b"IHDR", header)
    if rows is not None:
        body += png_chunk(b"IDAT", zlib.compress(rows))
    return b"\x89PNG\r\n\x1a\n" + body + png_chunk(b"IEND", b"")


@pytest.fixture
def noise_rgb() -> Image.Image:
    """A 64×48 RGB image of random noise (seeded)."""
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))


def pixel(image: Image.Image, x: int, y: int) -> tuple[int, int, int]:
    """The RGB value at (x, y) as a plain tuple."""
    return tuple(int(v) for v in np.asarray(image)[y, x])


def assert_rgb(image: Image.Image, size: tuple[int, int]) -> np.ndarray:
    """Check mode, size and dtype; return the pixels."""
    assert isinstance(image, Image.Image)
    assert image.mode == "RGB"
    assert image.size == size
    pixels = np.asarray(image)
    assert pixels.dtype == np.uint8 and pixels.shape == (size[1], size[0], 3)
    return pixels


# --------------------------------------------------------------------------- file formats


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF"])
def test_common_formats_from_path_and_bytes(tmp_path: Path, noise_rgb: Image.Image, fmt: str):
    data = encode(noise_rgb, fmt)
    path = tmp_path / f"photo.{fmt.lower()}"
    path.write_bytes(data)
    assert_rgb(load_image(path), (64, 48))
    assert_rgb(load_image(str(path)), (64, 48))
    assert_rgb(load_image(data), (64, 48))


def test_lossless_png_keeps_pixels(noise_rgb: Image.Image):
    out = load_image(encode(noise_rgb, "PNG"))
    np.testing.assert_array_equal(np.asarray(out), np.asarray(noise_rgb))


def test_greyscale_l_and_1():
    grey = Image.fromarray(np.tile(np.arange(64, dtype=np.uint8) * 4, (32, 1)))
    out = assert_rgb(load_image(encode(grey, "PNG")), (64, 32))
    assert np.array_equal(out[..., 0], out[..., 2])
    assert out[0, 10, 0] == 40
    bilevel = Image.new("1", (32, 32), 0)
    bilevel.paste(1, (0, 0, 16, 32))
    out = assert_rgb(load_image(encode(bilevel, "PNG")), (32, 32))
    assert pixel(Image.fromarray(out), 0, 0) == WHITE
    assert pixel(Image.fromarray(out), 31, 0) == (0, 0, 0)


def test_rgba_transparent_becomes_white_opaque_stays():
    rgba = Image.new("RGBA", (32, 32), (255, 0, 0, 255))
    rgba.paste((0, 0, 255, 0), (16, 0, 32, 32))  # fully transparent blue
    out = load_image(encode(rgba, "PNG"))
    assert_rgb(out, (32, 32))
    assert pixel(out, 2, 2) == RED
    assert pixel(out, 20, 2) == WHITE


def test_la_transparent_becomes_white():
    la = Image.new("LA", (32, 32), (0, 255))
    la.paste((0, 0), (0, 0, 16, 32))
    out = load_image(encode(la, "PNG"))
    assert pixel(out, 2, 2) == WHITE
    assert pixel(out, 20, 2) == (0, 0, 0)


def test_half_transparent_blends_with_white():
    out = load_image(np.dstack([np.zeros((20, 20, 3), np.uint8), np.full((20, 20), 128, np.uint8)]))
    assert abs(pixel(out, 5, 5)[0] - 127) <= 1


def test_palette_with_transparency_becomes_white():
    palette_image = Image.new("P", (32, 32), 0)
    palette_image.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    palette_image.paste(1, (16, 0, 32, 32))
    data = encode(palette_image, "PNG", transparency=1)
    assert Image.open(io.BytesIO(data)).mode == "P"
    out = load_image(data)
    assert pixel(out, 2, 2) == RED
    assert pixel(out, 20, 2) == WHITE
    gif = load_image(encode(palette_image, "GIF", transparency=1))
    assert pixel(gif, 2, 2) == RED and pixel(gif, 20, 2) == WHITE


def test_animated_gif_first_frame():
    frames = [Image.new("RGB", (32, 32), colour) for colour in (RED, (0, 0, 255))]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    assert Image.open(io.BytesIO(data)).n_frames == 2
    assert pixel(load_image(data), 5, 5) == RED


def test_16bit_png_gradient_spreads_over_0_255(tmp_path: Path):
    gradient = np.linspace(0, 65535, 256 * 32).reshape(32, 256).astype(np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(gradient).save(path)
    assert Image.open(path).mode.startswith("I")
    out = assert_rgb(load_image(path), (256, 32))
    assert out.min() == 0 and out.max() == 255
    assert len(np.unique(out)) > 200  # a real gradient, not clipped to white
    np.testing.assert_allclose(out[..., 0], np.round(gradient / 257.0), atol=1)


@pytest.mark.parametrize("mode", ["I;16", "I;16B"])
def test_16bit_modes_from_pil(mode: str):
    values = np.array([[0, 257 * 100, 65535]], dtype=np.uint16).repeat(20, 0).repeat(20, 1)
    # frombytes, not convert(): Pillow's own I;16 → I;16B conversion clips to 0..255.
    dtype = "<u2" if mode == "I;16" else ">u2"
    image = Image.frombytes(mode, (60, 20), values.astype(dtype).tobytes())
    assert image.mode == mode
    out = load_image(image)
    assert [pixel(out, x, 0)[0] for x in (0, 20, 40)] == [0, 100, 255]


def test_32bit_int_mode_i():
    values = np.array([[0, 257 * 50, 65535]], dtype=np.int32).repeat(20, 0).repeat(20, 1)
    image = Image.fromarray(values)
    assert image.mode == "I"
    out = load_image(image)
    assert [pixel(out, x, 0)[0] for x in (0, 20, 40)] == [0, 50, 255]


def test_float_mode_f(tmp_path: Path):
    unit = np.linspace(0, 1, 64 * 16, dtype=np.float32).reshape(16, 64)
    path = tmp_path / "float.tif"
    Image.fromarray(unit).save(path)
    assert Image.open(path).mode == "F"
    out = assert_rgb(load_image(path), (64, 16))
    assert out.min() == 0 and out.max() == 255
    wide = Image.fromarray((unit * 5000 - 1000).astype(np.float32))  # outside 0..255: stretched
    out = np.asarray(load_image(wide))
    assert out.min() == 0 and out.max() == 255


def test_16bit_rgb_png():
    width = height = 20
    row = b"\x00" + np.full((width, 3), [65535, 32896, 0], dtype=">u2").tobytes()
    out = load_image(raw_png(width, height, 16, 2, row * height))
    assert_rgb(out, (20, 20))
    assert pixel(out, 3, 3) == (255, 128, 0)


def test_cmyk_jpeg():
    data = encode(Image.new("CMYK", (32, 32), (0, 255, 255, 0)), "JPEG", quality=95)
    assert Image.open(io.BytesIO(data)).mode == "CMYK"
    red, green, blue = pixel(load_image(data), 16, 16)
    assert red > 240 and green < 15 and blue < 15


def test_exif_orientation_is_applied(tmp_path: Path):
    image = Image.new("RGB", (64, 32), RED)
    image.paste((0, 0, 255), (0, 0, 8, 32))  # blue stripe on the left edge
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    path = tmp_path / "phone.jpg"
    image.save(path, "JPEG", exif=exif, quality=95)
    assert Image.open(path).size == (64, 32)
    out = load_image(path)
    assert out.size == (32, 64)
    red, green, blue = pixel(out, 16, 2)  # the left edge is now on top
    assert blue > 200 and red < 60


# --------------------------------------------------------------------------------- arrays


@pytest.mark.parametrize(
    "array",
    [
        np.full((20, 30), 200, np.uint8),
        np.full((20, 30, 1), 200, np.uint8),
        np.full((20, 30, 3), 200, np.uint8),
        np.full((20, 30), 200 * 257, np.uint16),
        np.full((20, 30, 3), 200 * 257, np.uint16),
        np.full((20, 30, 3), 200 / 255, np.float32),
        np.full((20, 30), 200 / 255, np.float64),
        np.full((20, 30, 3), 200, np.int64),
    ],
    ids=["u8-hw", "u8-hw1", "u8-hw3", "u16-hw", "u16-hw3", "f32-hw3", "f64-hw", "i64-hw3"],
)
def test_arrays_of_each_dtype(array: np.ndarray):
    out = assert_rgb(load_image(array), (30, 20))
    assert np.all(out == 200)


def test_bool_array():
    mask = np.zeros((20, 20), bool)
    mask[:, :10] = True
    out = load_image(mask)
    assert pixel(out, 0, 0) == WHITE and pixel(out, 15, 0) == (0, 0, 0)


def test_rgba_array_transparent_is_white():
    array = np.zeros((20, 20, 4), np.uint8)
    array[..., 0] = 255
    array[:, :10, 3] = 255
    out = load_image(array)
    assert pixel(out, 0, 0) == RED and pixel(out, 15, 0) == WHITE


@pytest.mark.parametrize(
    "array, words",
    [
        (np.full((20, 20, 3), 2.0, np.float32), "[0, 1]"),
        (np.full((20, 20), np.nan, np.float32), "NaN"),
        (np.zeros((20, 20, 5), np.uint8), "shape"),
        (np.zeros(400, np.uint8), "shape"),
        (np.full((20, 20), 1000, np.int32), "dtype"),
        (np.zeros((20, 20), np.complex64), "dtype"),
    ],
)
def test_bad_arrays(array: np.ndarray, words: str):
    with pytest.raises(ImageError, match=words.replace("[", r"\[").replace("]", r"\]")):
        load_image(array)


def test_pil_input_is_detached_copy():
    source = Image.new("RGB", (20, 20), RED)
    out = load_image(source)
    out.putpixel((0, 0), (0, 0, 0))
    assert source.getpixel((0, 0)) == RED


# ------------------------------------------------------------------------------ bad input


def test_corrupt_bytes_name_in_message():
    with pytest.raises(ImageError, match="upload.png"):
        load_image(b"\x89PNG\r\n\x1a\nnot really a png" * 10, name="upload.png")


def test_text_file(tmp_path: Path):
    path = tmp_path / "notes.txt"
    path.write_text("hello, not an image\n" * 20)
    with pytest.raises(ImageError, match="notes.txt.*not an image"):
        load_image(path)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated_file(tmp_path: Path, noise_rgb: Image.Image, fmt: str):
    data = encode(noise_rgb.resize((256, 256)), fmt)
    path = tmp_path / f"half.{fmt.lower()}"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match=f"half.{fmt.lower()}.*(damaged|truncated)"):
        load_image(path)


def test_missing_path(tmp_path: Path):
    with pytest.raises(ImageError, match="ghost.jpg.*does not exist"):
        load_image(tmp_path / "ghost.jpg")


def test_directory(tmp_path: Path):
    folder = tmp_path / "a_folder.png"
    folder.mkdir()
    with pytest.raises(ImageError, match="a_folder.png.*folder"):
        load_image(folder)


def test_unsupported_source_type():
    with pytest.raises(ImageError, match="list"):
        load_image([1, 2, 3])  # type: ignore[arg-type]


@pytest.mark.parametrize("size", [(1, 1), (MIN_SIDE - 1, 100), (100, 3)])
def test_too_small(size: tuple[int, int]):
    data = encode(Image.new("RGB", size, RED), "PNG")
    with pytest.raises(ImageError, match=f"{size[0]}×{size[1]}"):
        load_image(data, name="tiny.png")


def test_min_side_is_allowed():
    assert load_image(np.zeros((MIN_SIDE, MIN_SIDE), np.uint8)).size == (MIN_SIDE, MIN_SIDE)


def test_huge_header_refused_before_decoding():
    # A 20000×20000 header with no pixel data: decoding would fail differently.
    data = raw_png(20000, 20000, 8, 2, rows=None)
    with pytest.raises(ImageError, match=r"bomb.png.*(20000×20000 = 400 MP|400 MP).*64 MP"):
        load_image(data, name="bomb.png")


def test_header_over_max_pixels_is_refused_without_decoding(tmp_path: Path, monkeypatch):
    path = tmp_path / "big.png"
    Image.new("1", (9000, 9000), 0).save(path)  # 81 MP, a few KB on disk
    assert MAX_PIXELS_DEFAULT < 9000 * 9000

    def fail_load(self):  # pragma: no cover - must not run
        raise AssertionError("decoded a too-big image")

    monkeypatch.setattr(Image.Image, "load", fail_load)
    monkeypatch.setattr("PIL.ImageFile.ImageFile.load", fail_load)
    with pytest.raises(ImageError, match=r"big.png is 9000×9000 = 81 MP; the limit is 64 MP"):
        load_image(path)  # refused from the header: the patched decoders never ran


def test_small_max_pixels(noise_rgb: Image.Image):
    with pytest.raises(ImageError, match="64×48"):
        load_image(encode(noise_rgb, "PNG"), max_pixels=1000)
    with pytest.raises(ImageError, match="limit"):
        load_image(np.zeros((100, 100), np.uint8), max_pixels=1000)


def test_pillow_bomb_warning_becomes_error(noise_rgb: Image.Image, monkeypatch):
    data = encode(noise_rgb, "PNG")  # 3072 pixels
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 2000)  # warns above 2000, errors above 4000
    with pytest.raises(ImageError, match="limit"):
        load_image(data, max_pixels=10**9, name="w.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(ImageError, match="w.png.*limit"):
        load_image(data, max_pixels=10**9, name="w.png")


def test_warning_filter_is_restored(noise_rgb: Image.Image):
    import warnings

    before = list(warnings.filters)
    load_image(encode(noise_rgb, "PNG"))
    assert warnings.filters == before


# -------------------------------------------------------------------------------- digests


def test_image_digest_bytes_and_arrays():
    assert image_digest(b"abc") == image_digest(b"abc")
    assert image_digest(b"abc") != image_digest(b"abd")
    assert len(image_digest(b"")) == 64
    array = np.arange(16, dtype=np.uint8).reshape(4, 4)
    assert image_digest(array) == image_digest(array.copy())
    assert image_digest(array) != image_digest(array.reshape(2, 8))
    assert image_digest(array) != image_digest(array.astype(np.int8))
    assert image_digest(np.asfortranarray(array)) == image_digest(array)


def test_file_digest_and_read_bytes(tmp_path: Path):
    path = tmp_path / "blob.bin"
    data = bytes(range(256)) * 5000  # > 1 MiB, several chunks
    path.write_bytes(data)
    assert file_digest(path) == image_digest(data)
    assert read_bytes(path) == data
    path.write_bytes(data + b"!")
    assert file_digest(path) != image_digest(data)
    with pytest.raises(ImageError, match="blob.bin.*limit"):
        read_bytes(path, max_bytes=1000)
    with pytest.raises(ImageError, match="nope.bin"):
        read_bytes(tmp_path / "nope.bin")
    with pytest.raises(ImageError, match="nope.bin"):
        file_digest(tmp_path / "nope.bin")
    with pytest.raises(ImageError, match="folder"):
        read_bytes(tmp_path)
