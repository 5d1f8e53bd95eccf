"""Labelled images and sets of them: :class:`ImageItem` (one image, its label and where it is)
and :class:`ImageSet` (the items, in a stable order, plus why any entries were skipped).

Images are not decoded while a set is built; :meth:`ImageItem.load` decodes one on demand
through :func:`explainer.images.load_image`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from numbers import Integral
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from explainer.errors import ImageError
from explainer.images import file_digest, image_digest, load_image

__all__ = ["ImageItem", "ImageSet", "item_signature"]


@dataclass(frozen=True)
class ImageItem:
    """One labelled image; exactly one of ``path``, ``loader`` or ``data`` is its source.

    Attributes:
        key: stable identifier, unique within its set (a relative path, a demo name, or
            ``upload/<sha256[:12]>/<file name>``).
        label: class index into the model's class list, 0..len(class_names)-1.
        name: short display name (a file name or a title).
        path: an image file on disk (already resolved and checked against the data root).
        loader: a callable returning the image (a PIL image or an array), for demo photos.
        data: the encoded bytes of an uploaded file.
        note: free text shown with the image (e.g. a photo credit).
    """

    key: str
    label: int
    name: str
    path: Path | None = None
    loader: Callable[[], Image.Image] | None = field(default=None, repr=False)
    data: bytes | None = field(default=None, repr=False)
    note: str = ""
    _digest: str | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        sources = sum(value is not None for value in (self.path, self.loader, self.data))
        if sources != 1:
            raise ValueError(f"ImageItem {self.key!r} needs exactly one of path, loader, data")
        if isinstance(self.label, bool) or not isinstance(self.label, Integral):
            raise TypeError(f"ImageItem {self.key!r}: label must be an int, got {self.label!r}")
        object.__setattr__(self, "label", int(self.label))  # numpy ints → plain int

    def load(self) -> Image.Image:
        """Decode the image as 8-bit RGB (see :func:`explainer.images.load_image`).

        Raises:
            ImageError: the source cannot be read or decoded.
        """
        if self.path is not None:
            return load_image(self.path, name=self.key)
        if self.data is not None:
            return load_image(self.data, name=self.name)
        try:
            return load_image(self.loader(), name=self.name)  # type: ignore[misc]
        except (ImportError, OSError, AttributeError) as exc:
            raise ImageError(f"{self.name}: the built-in photo cannot be loaded ({exc}).") from exc

    def source_digest(self) -> str:
        """SHA-256 of the file bytes, the uploaded bytes, or (for loaders) the decoded RGB array.

        Computed once and cached on the item.
        """
        if self._digest is None:
            if self.path is not None:
                digest = file_digest(self.path)
            elif self.data is not None:
                digest = image_digest(self.data)
            else:
                digest = image_digest(np.asarray(self.load()))
            object.__setattr__(self, "_digest", digest)  # frozen: cache via object.__setattr__
        return self._digest  # type: ignore[return-value]


@dataclass(frozen=True)
class ImageSet:
    """A labelled set of images plus the reasons any entries were skipped.

    Attributes:
        name: display name (a folder or file name, or "Built-in demo").
        kind: "demo", "folder", "list", "csv" or "uploads".
        items: the usable images, in a stable order (sorted paths, or file order).
        root: the folder the set was read from; None for the demo and uploads.
        problems: one line per skipped entry, e.g. "labels.txt:12: class 1234 is outside
            0..999" or "cat/notes.txt: not an image file".
        origin: the label list or CSV file the set was read from (None for other kinds).
    """

    name: str
    kind: str
    items: tuple[ImageItem, ...]
    root: Path | None = None
    problems: tuple[str, ...] = ()
    origin: Path | None = None
    _fingerprint: tuple[Any, str] | None = field(default=None, init=False, repr=False, compare=False)
    _by_key: dict[str, ImageItem] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "items", tuple(self.items))
        object.__setattr__(self, "problems", tuple(self.problems))
        keys = [item.key for item in self.items]
        if len(set(keys)) != len(keys):
            raise ValueError(f"ImageSet {self.name!r} has duplicate item keys")

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[ImageItem]:
        return iter(self.items)

    def item(self, key: str) -> ImageItem | None:
        """The item with ``key`` (a dict lookup, built once), or None."""
        if self._by_key is None:
            object.__setattr__(self, "_by_key", {item.key: item for item in self.items})
        return self._by_key.get(key)  # type: ignore[union-attr]

    def version(self) -> tuple[Any, ...]:
        """What changes when the set's definition changes, for a few ``stat`` calls: the list or
        CSV file's (size, mtime); for a folder set, the mtimes of the folder and of its class
        folders (a file added or removed); nothing for the demo and uploads (their items are
        identified by content, and uploads make a new set)."""
        try:
            if self.origin is not None:
                st = self.origin.stat()
                return ("file", st.st_size, st.st_mtime_ns)
            if self.kind == "folder" and self.root is not None:
                folders = [self.root, *(p for p in self.root.iterdir() if p.is_dir())]
                return ("folder", *(p.stat().st_mtime_ns for p in folders))
        except OSError:
            return ("unreadable",)
        return ()

    def fingerprint(self, fresh: bool = False) -> str:
        """A cheap cache key: SHA-256 over kind, name, root and every item's identity.

        Files contribute (key, label, path, size, mtime) from ``stat`` (no reading), so adding,
        removing, relabelling or editing a file changes it; uploads and demo photos contribute
        their content digests (cached on the items). Computed once per set version (see
        :meth:`version`: a stat or a few, instead of one per item) unless ``fresh``: an image
        edited in place under an unchanged list is seen by a fresh fingerprint and by an
        incremental scan (which checks every item's signature).

        Returns:
            64 lowercase hex characters.
        """
        version = self.version()
        if not fresh and self._fingerprint is not None and self._fingerprint[0] == version:
            return self._fingerprint[1]
        value = self._compute_fingerprint()
        object.__setattr__(self, "_fingerprint", (version, value))
        return value

    def _compute_fingerprint(self) -> str:
        digest = hashlib.sha256()
        digest.update(json.dumps([self.kind, self.name, str(self.root)]).encode())
        for item in sorted(self.items, key=lambda item: item.key):
            digest.update(json.dumps(_item_signature(item)).encode() + b"\n")
        return digest.hexdigest()


def item_signature(item: ImageItem) -> str:
    """A short digest of one item's identity (key, label, and the file's path, size and mtime,
    or the content digest): equal signatures mean the model's answer can be reused."""
    return hashlib.sha256(json.dumps(_item_signature(item)).encode()).hexdigest()[:16]


def _item_signature(item: ImageItem) -> list[Any]:
    """What identifies one item in a fingerprint (see ImageSet.fingerprint)."""
    if item.path is None:
        return [item.key, item.label, item.source_digest()]
    try:
        stat = item.path.stat()
    except OSError:
        return [item.key, item.label, str(item.path), "missing"]
    return [item.key, item.label, str(item.path), stat.st_size, stat.st_mtime_ns]
