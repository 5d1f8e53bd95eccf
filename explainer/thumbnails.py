"""Gallery thumbnails: small JPEGs of an image as the model frames it, made fast and kept.

A gallery page shows 24 images; decoding each full-size photo, resizing it to the model's view
and then again to the thumbnail costs about 10 ms an image on a CPU, on every page the user
opens. Here a thumbnail is made in one resampling step from the decoded photo (JPEGs decoded at
a reduced DCT scale when the photo is much larger than the thumbnail: Pillow's draft mode) and
kept in a bounded in-memory LRU and, optionally, on disk (the user cache folder), keyed by the
item and the file's identity (path, size, modification time), so an edited file is made again.

Usable without Streamlit (the app's gallery, a notebook, a contact sheet).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from explainer import settings
from explainer.data.items import ImageItem
from explainer.errors import ImageError
from explainer.images import load_image

__all__ = [
    "FILES_KEPT",
    "GALLERY_SIZE",
    "MEMORY_ITEMS",
    "Framing",
    "ThumbnailCache",
    "cache_folder",
    "framing_of",
    "make_thumbnail",
    "shared_cache",
    "thumbnail_from_view",
]


@dataclass(frozen=True)
class Framing:
    """How a model frames an image, and the thumbnail's size.

    Attributes:
        view: S, the side of the model's square view (e.g. 224).
        resize: R, the short side the photo is resized to before the centre crop (e.g. 256);
            the crop therefore covers ``S / R`` of the short side.
        size: the thumbnail's side in pixels (e.g. 200).
        quality: JPEG quality, 1..95.
    """

    view: int = 224
    resize: int = 256
    size: int = 200
    quality: int = 85

    def crop_box(self, width: int, height: int) -> tuple[float, float, float, float]:
        """The model's centre crop in the coordinates of a ``width``×``height`` image
        (left, top, right, bottom, floats): the same region as ``Classifier.view``."""
        short = min(width, height)
        side = short * min(1.0, self.view / self.resize)  # R < S: the view is the whole short side
        left, top = (width - side) / 2.0, (height - side) / 2.0
        return (left, top, left + side, top + side)


GALLERY_SIZE = 200  # the gallery's thumbnails, in pixels
MEMORY_ITEMS = 2048  # thumbnails a process keeps in memory (JPEG bytes, ~10 KB each: ~20 MB)
FILES_KEPT = 100_000  # thumbnails kept in <cache>/thumbnails (~1 GB at most)


def framing_of(preprocess, size: int = GALLERY_SIZE) -> Framing:
    """How a model frames its images (``Classifier.preprocess``: ``size`` S and ``resize`` R),
    with thumbnails of ``size`` pixels: the gallery's and a scan's thumbnails share it."""
    return Framing(view=preprocess.size, resize=preprocess.resize, size=size)


def thumbnail_from_view(view: np.ndarray, framing: Framing = Framing()) -> bytes:
    """The thumbnail of an image whose model view is already decoded: the view (S×S×3 uint8,
    the centre crop :func:`make_thumbnail` frames) resized once to ``framing.size``. A scan keeps
    its mistakes' thumbnails this way without decoding them again; the picture is the same crop
    as :func:`make_thumbnail`'s, resampled from the view instead of the photo.

    Raises:
        ValueError: ``view`` is not an S×S×3 uint8 array.
    """
    if view.dtype != np.uint8 or view.ndim != 3 or view.shape[2] != 3 or view.shape[0] != view.shape[1]:
        raise ValueError(f"a view is S×S×3 uint8, got {view.shape} {view.dtype}")
    thumb = Image.fromarray(view).resize((framing.size, framing.size), Image.Resampling.BILINEAR, reducing_gap=3.0)
    buf = io.BytesIO()
    thumb.save(buf, format="JPEG", quality=framing.quality)
    return buf.getvalue()


def make_thumbnail(source: ImageItem | Path | bytes | Image.Image, framing: Framing = Framing()) -> bytes:
    """A ``framing.size``-pixel square JPEG of the model's centre crop of ``source``.

    The photo is resampled once, from its crop box straight to the thumbnail (bilinear with
    antialiasing), instead of to the model's view and again to the thumbnail. A JPEG file is
    decoded at the smallest DCT scale (1/2, 1/4 or 1/8) that still keeps the crop at least as
    large as the thumbnail, which for camera photos is several times faster than a full decode.

    Args:
        source: an image set item, a file path, encoded bytes or a PIL image.
        framing: the model's framing and the thumbnail's size.

    Returns:
        JPEG bytes (about 5-15 KB at 200 px).

    Raises:
        ImageError: the image cannot be read or decoded.
    """
    if isinstance(source, ImageItem):
        name = source.key
        source = source.path if source.path is not None else (source.data if source.data is not None else source.load())
    else:
        name = None
    if isinstance(source, (str, Path, bytes)):
        try:
            opened = Image.open(source if not isinstance(source, bytes) else io.BytesIO(source))
        except (OSError, ValueError) as exc:
            raise ImageError(f"{name or 'image'}: cannot be read as an image ({exc}).") from exc
        with opened:
            if opened.format == "JPEG":
                w, h = opened.size
                # Scale so the crop box (S/R of the short side) still covers the thumbnail.
                scale = framing.size / max(1.0, min(w, h) * min(1.0, framing.view / framing.resize))
                opened.draft("RGB", (max(1, int(w * scale + 0.5)), max(1, int(h * scale + 0.5))))
            image = load_image(opened, name=name)
    else:
        image = load_image(source, name=name)
    thumb = image.resize(
        (framing.size, framing.size), Image.Resampling.BILINEAR, box=framing.crop_box(*image.size), reducing_gap=3.0
    )
    buf = io.BytesIO()
    thumb.save(buf, format="JPEG", quality=framing.quality)
    return buf.getvalue()


class ThumbnailCache:
    """Thumbnails of image set items, kept in memory (LRU) and optionally on disk.

    An entry is keyed by the item's key, the framing and the item's identity: for a file, its
    path, size and modification time (one ``stat`` per lookup), so a changed file is decoded
    again; for uploads and built-in photos, their content digest. Two items that link to the
    same file are two entries (each item is one gallery card).

    Thread-safe: the app decodes on worker threads and prefetches the next page.

    Args:
        max_items: thumbnails kept in memory (~10 KB each); the least recently used go first.
        folder: where thumbnails are also written (e.g. ``<cache>/thumbnails``), so a restarted
            server finds them; None keeps them in memory only.
        max_files: thumbnails kept in ``folder``; when more are written, the oldest go (checked
            every ``max_files // 10`` writes, so the folder is never listed per lookup).
    """

    def __init__(self, max_items: int = 2048, folder: str | Path | None = None, max_files: int = 100_000):
        if max_items < 1 or max_files < 1:
            raise ValueError("max_items and max_files must be at least 1")
        self.max_items = max_items
        self.folder = Path(folder) if folder is not None else None
        self.max_files = max_files
        self._memory: OrderedDict[str, bytes | None] = OrderedDict()
        self._lock = threading.Lock()
        self._writes = 0
        self._made_dirs: set[Path] = set()  # a mkdir per write costs as much as the write
        self.hits = 0  # found in memory
        self.disk_hits = 0  # found on disk (then kept in memory too)
        self.misses = 0  # made from the image

    def __len__(self) -> int:
        return len(self._memory)

    @staticmethod
    def key(item: ImageItem, framing: Framing) -> str:
        """The entry's key (a hex digest); it changes when the item's file changes."""
        if item.path is not None:
            try:
                stat = item.path.stat()
                identity: list = [str(item.path), stat.st_size, stat.st_mtime_ns]
            except OSError:
                identity = [str(item.path), "missing"]
        else:
            identity = [item.source_digest()]
        text = json.dumps([item.key, identity, framing.view, framing.resize, framing.size, framing.quality])
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def peek(self, item: ImageItem, framing: Framing = Framing()) -> tuple[bool, bytes | None]:
        """(found, thumbnail) from memory or disk, without making it."""
        key = self.key(item, framing)
        with self._lock:
            if key in self._memory:
                self._memory.move_to_end(key)
                self.hits += 1
                return True, self._memory[key]
        path = self._file(key)
        if path is not None:
            try:
                data = path.read_bytes()
            except OSError:
                return False, None
            self._keep(key, data)
            with self._lock:
                self.disk_hits += 1
            return True, data
        return False, None

    def get(self, item: ImageItem, framing: Framing = Framing()) -> bytes | None:
        """The item's thumbnail (JPEG bytes), or None when the image cannot be read (remembered
        too, until the file changes: a broken file is not decoded on every page)."""
        found, data = self.peek(item, framing)
        if found:
            return data
        key = self.key(item, framing)
        try:
            data = make_thumbnail(item, framing)
        except (ImageError, OSError, ValueError):
            data = None
        with self._lock:
            self.misses += 1
        self._keep(key, data)
        if data is not None:
            self._write(key, data)
        return data

    def put(self, item: ImageItem, framing: Framing, data: bytes) -> None:
        """Keep a thumbnail made elsewhere (:func:`thumbnail_from_view` during a scan), unless
        one is kept already: on disk when the cache has a folder (a scan's thousands of
        mistakes then do not push the pictures on screen out of memory), else in memory."""
        key = self.key(item, framing)
        if self.folder is None:
            with self._lock:
                if key in self._memory:
                    return
            self._keep(key, data)
        elif self._file(key) is None:
            self._write(key, data)

    def clear(self) -> None:
        """Forget the thumbnails in memory (the disk copies stay)."""
        with self._lock:
            self._memory.clear()

    # -- internals -----------------------------------------------------------------------------

    def _keep(self, key: str, data: bytes | None) -> None:
        with self._lock:
            self._memory[key] = data
            self._memory.move_to_end(key)
            while len(self._memory) > self.max_items:
                self._memory.popitem(last=False)

    def _file(self, key: str) -> Path | None:
        if self.folder is None:
            return None
        path = self.folder / key[:2] / f"{key}.jpg"
        return path if path.is_file() else None

    def _write(self, key: str, data: bytes) -> None:
        """Write atomically (a reader never sees half a file); a full or read-only disk only
        costs the disk copy."""
        if self.folder is None:
            return
        target = self.folder / key[:2] / f"{key}.jpg"
        try:
            if target.parent not in self._made_dirs:
                target.parent.mkdir(parents=True, exist_ok=True)
                self._made_dirs.add(target.parent)
            fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
        except OSError:
            return
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, target)
        except BaseException as exc:  # a full disk, or Ctrl-C in a command-line scan: no stray file
            Path(tmp).unlink(missing_ok=True)
            if isinstance(exc, OSError):
                return
            raise
        with self._lock:
            self._writes += 1
            prune = self._writes % max(1, self.max_files // 10) == 0
        if prune:
            self.prune()

    def prune(self) -> int:
        """Remove the oldest thumbnails on disk beyond ``max_files``; returns how many went."""
        if self.folder is None or not self.folder.is_dir():
            return 0
        files = []
        for path in self.folder.glob("*/*.jpg"):
            try:
                files.append((path.stat().st_mtime_ns, path))
            except OSError:
                continue
        excess = len(files) - self.max_files
        if excess <= 0:
            return 0
        files.sort()
        removed = 0
        for _, path in files[:excess]:
            try:
                path.unlink(missing_ok=True)
                removed += 1
            except OSError:  # another user's file, or a read-only folder: leave it
                continue
        return removed


def cache_folder() -> Path:
    """``<cache folder>/thumbnails``: where the app and the ``scan`` command keep thumbnails, so
    a set scanned from the command line opens in Find errors with its mistakes' pictures made."""
    return settings.current().cache_dir / "thumbnails"


def shared_cache(folder: str | Path | None = None, max_items: int = MEMORY_ITEMS) -> ThumbnailCache:
    """A cache over ``folder`` (default :func:`cache_folder`): ``max_items`` in memory (for
    lookups; :meth:`ThumbnailCache.put` writes to the folder only), :data:`FILES_KEPT` on disk."""
    return ThumbnailCache(max_items=max_items, folder=folder or cache_folder(), max_files=FILES_KEPT)
