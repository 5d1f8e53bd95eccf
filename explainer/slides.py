"""Slides: a run's step-through as a captioned video (MP4, H.264) or GIF for a talk.

Each frame is the step image at the source photo's resolution (when the run kept its crop)
with a caption band under it: the step, the revealed area and p(target), then the step's
caption ("region 6 added: p(space shuttle) 0.54 → 0.76"), the same words the player shows.
MP4s are encoded by the FFmpeg build that ships with ``imageio-ffmpeg`` (no system FFmpeg).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from explainer import figures, render, steps
from explainer.errors import LimaError
from explainer.explanation import Explanation

MAX_SIDE = 1080  # px: a 1080p projector's height; larger crops are scaled down
FORMATS = ("mp4", "gif")


class SlidesError(LimaError):
    """The slides could not be written (a bad option, or the encoder failed)."""


def _font(size: int):
    """DejaVu Sans (shipped with matplotlib; it has → and ·), else Pillow's built-in font."""
    try:
        from matplotlib import font_manager

        return ImageFont.truetype(font_manager.findfont("DejaVu Sans", fallback_to_default=True), size)
    except (ImportError, OSError, ValueError):
        return ImageFont.load_default(size=size)


def _fit(frame: np.ndarray, max_side: int) -> np.ndarray:
    side = frame.shape[0]
    if side <= max_side:
        return frame
    return np.asarray(Image.fromarray(frame).resize((max_side, max_side), Image.Resampling.LANCZOS))


def caption_lines(exp: Explanation, step: int) -> tuple[str, str]:
    """The two caption lines of step ``step``: position and numbers, then what happened."""
    area = 100 * float(exp.area[step])
    name = exp.class_name(exp.target)
    first = f"Step {step} of {exp.n_regions} · {area:.1f} % of the image · p({name}) {exp.insertion[step]:.2f}"
    return first, steps.caption(exp, step)


def _wrap(text: str, font, width: float) -> list[str]:
    """``text`` split at spaces into lines no wider than ``width`` px (a single word wider than
    that keeps a line of its own)."""
    lines: list[str] = []
    for word in text.split(" "):
        if lines and font.getlength(f"{lines[-1]} {word}") <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines


def _caption_rows(exp: Explanation, step: int, font, width: float) -> list[tuple[str, tuple[int, int, int]]]:
    """The caption's lines, wrapped to ``width``, each with its colour."""
    first, second = caption_lines(exp, step)
    return [(line, (235, 235, 235)) for line in _wrap(first, font, width)] + [
        (line, (255, 214, 0)) for line in _wrap(second, font, width)
    ]


def _caption_style(side: int) -> tuple[ImageFont.FreeTypeFont | ImageFont.ImageFont, int, int]:
    """The caption's font, its size and the band's margin in px, for a slide ``side`` px wide."""
    size = max(14, side // 30)
    return _font(size), size, size // 2


def _step_image(exp: Explanation, step: int, source: np.ndarray | None, hidden: str, max_side: int) -> np.ndarray:
    image = _fit(figures.step_view(exp, step, hidden=hidden, scale=2, source=source), max_side)
    side = image.shape[0] - image.shape[0] % 2
    return image[:side, :side]


def frame(
    exp: Explanation,
    step: int,
    source: np.ndarray | None = None,
    hidden: str = "black",
    max_side: int = MAX_SIDE,
    rows: int | None = None,
) -> np.ndarray:
    """One captioned slide: H×W×3 uint8 with even H and W (H.264 needs them), W ≤ max_side.

    The caption wraps onto more lines when the crop is narrow (a small photo), so no number is
    cut off at the edge; ``rows`` fixes the band's height in lines (every frame of a video must
    have the same size; default: as many as this step needs)."""
    image = _step_image(exp, step, source, hidden, max_side)
    side = image.shape[0]
    font, size, margin = _caption_style(side)
    lines = _caption_rows(exp, step, font, side - 2 * margin)
    count = max(rows or 0, len(lines))
    band = count * size + (count - 1) * (size // 2) + 2 * margin + size // 2  # and room for descenders
    band += band % 2
    canvas = Image.new("RGB", (side, side + band), (17, 17, 17))
    canvas.paste(Image.fromarray(image), (0, 0))
    draw = ImageDraw.Draw(canvas)
    for i, (text, colour) in enumerate(lines):
        draw.text((margin, side + margin + i * (size + size // 2)), text, fill=colour, font=font)
    return np.asarray(canvas)


def frames(exp: Explanation, source: np.ndarray | None = None, hidden: str = "black", max_side: int = MAX_SIDE):
    """Every step's slide, 0..N (N + 1 frames, all of one size)."""
    side = _step_image(exp, 0, source, hidden, max_side).shape[0]
    font, _, margin = _caption_style(side)
    rows = max(len(_caption_rows(exp, k, font, side - 2 * margin)) for k in range(exp.n_regions + 1))
    return [frame(exp, k, source, hidden, max_side, rows) for k in range(exp.n_regions + 1)]


def _provenance_text(exp: Explanation) -> str:
    from explainer import export

    return json.dumps(export.provenance(exp), default=str, separators=(",", ":"))


def to_mp4(
    exp: Explanation,
    path: str | Path,
    source: np.ndarray | None = None,
    hidden: str = "black",
    fps: float = 2.0,
    max_side: int = MAX_SIDE,
) -> Path:
    """Write the step-through as an H.264 MP4 (yuv420p, plays everywhere) with the provenance
    in the file's ``comment`` tag; the last frame is held for a second."""
    import imageio_ffmpeg

    if not 0.25 <= fps <= 30:
        raise SlidesError(f"fps must be from 0.25 to 30, got {fps}")
    path = Path(path)
    shots = frames(exp, source, hidden, max_side)
    hold = max(1, round(fps))  # the final frame stays up about a second
    height, width = shots[0].shape[:2]
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".mp4", dir=path.parent, prefix=f".{path.name}.")
    os.close(fd)
    try:
        writer = imageio_ffmpeg.write_frames(
            tmp,
            (width, height),
            fps=fps,
            codec="libx264",
            pix_fmt_out="yuv420p",
            macro_block_size=2,
            quality=None,
            output_params=["-crf", "20", "-metadata", f"comment={_provenance_text(exp)}", "-movflags", "+faststart"],
            ffmpeg_log_level="error",
        )
        writer.send(None)
        for shot in shots + [shots[-1]] * hold:
            writer.send(np.ascontiguousarray(shot))
        writer.close()
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a slide file is meant to be shared
        os.replace(tmp, path)
    except (OSError, RuntimeError) as exc:
        raise SlidesError(f"the MP4 could not be written: {exc}") from exc
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def mp4_bytes(exp: Explanation, source: np.ndarray | None = None, hidden: str = "black", fps: float = 2.0) -> bytes:
    """:func:`to_mp4` into memory (for a download button)."""
    with tempfile.TemporaryDirectory() as folder:
        return to_mp4(exp, Path(folder) / "slides.mp4", source, hidden, fps).read_bytes()


def gif_bytes(exp: Explanation, source: np.ndarray | None = None, hidden: str = "black", fps: float = 2.0) -> bytes:
    """The captioned step-through as a looping GIF (at most 720 px wide: GIFs are heavy)."""
    if not 0.25 <= fps <= 30:
        raise SlidesError(f"fps must be from 0.25 to 30, got {fps}")
    shots = frames(exp, source, hidden, max_side=720)
    return render.to_gif(shots, round(1000 / fps), comment=_provenance_text(exp))
