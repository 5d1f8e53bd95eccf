"""The model's crop at the source photo's own resolution, kept beside a saved run.

A run's ``view`` is what the model saw (S×S, e.g. 224 px): scaled up on a projector it looks
pixelated. The same crop resampled from the original photo keeps the photo's detail; the label
map is carried onto it (``render.carry``), so every step frame shows exactly the model's regions.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from explainer.images import load_image

MAX_SIDE = 1280  # px; a 4K photo's crop would make 10 MB frames and add nothing on a projector
JPEG_QUALITY = 92


def source_side(clf, image, max_side: int = MAX_SIDE) -> int:
    """Side in pixels of the model's crop measured in the photo's own pixels (never below the
    model's S, never above ``max_side``)."""
    w, h = load_image(image).size
    native = round(clf.size * min(w, h) / clf.preprocess.resize)
    return int(min(max(native, clf.size), max_side))


def source_view(clf, image, max_side: int = MAX_SIDE) -> np.ndarray:
    """The model's crop of ``image`` at the source resolution: F×F×3 uint8, S ≤ F ≤ max_side."""
    img = load_image(image)
    return clf.view(img, size=source_side(clf, img, max_side))


def to_jpeg(view: np.ndarray) -> bytes:
    """JPEG bytes of an F×F×3 uint8 crop (no metadata)."""
    buf = io.BytesIO()
    Image.fromarray(np.asarray(view, dtype=np.uint8)).save(buf, format="JPEG", quality=JPEG_QUALITY)
    return buf.getvalue()


def from_jpeg(data: bytes) -> np.ndarray:
    """F×F×3 uint8 from :func:`to_jpeg`'s bytes."""
    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()
