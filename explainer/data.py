"""Labelled image sets: the built-in demo, folders, label lists, CSV files and uploads.

Every loader returns an :class:`ImageSet` of :class:`ImageItem` s. Images are not decoded
while a set is built (only listed and checked); :meth:`ImageItem.load` decodes one on demand
through :func:`explainer.images.load_image`. Lines, rows, folders or files that cannot be used
are skipped and explained in ``ImageSet.problems``; a set with nothing usable raises
:class:`DataError`.

Data root: the dashboard passes ``root`` (see :func:`default_data_root`) so that a user can
only read files below one folder; every set path *and* every file a set refers to is resolved
(symlinks and ``..`` included) and refused if it lands outside. ``root=None`` means
unrestricted, for the engine and the CLI.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import importlib.util
import io
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from numbers import Integral
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
from PIL import Image

from explainer.errors import DataError, ImageError, LabelError
from explainer.images import (
    MAX_BYTES_DEFAULT,
    file_digest,
    image_digest,
    load_image,
    read_bytes,
)

DATA_ROOT_ENV = "LIMA_DATA_ROOT"
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"})
PATH_COLUMNS = ("path", "file", "filename", "image")
LABEL_COLUMNS = ("label", "class", "target")
DEMO_MANIFEST = Path(__file__).resolve().parent.parent / "assets" / "demo_set.json"
MAX_LIST_BYTES = 50 * 1024 * 1024  # a label list or CSV larger than this is surely a mistake

_INTEGER = re.compile(r"[+-]?\d+")
_DEMO_SOURCE = re.compile(r"(skimage|matplotlib|sklearn):([\w.\-]+)(?:\[(\d+)\])?")
_DEMO_PACKAGES = {"skimage": "scikit-image", "matplotlib": "matplotlib", "sklearn": "scikit-learn"}


# ------------------------------------------------------------------------------ data classes


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
    """

    name: str
    kind: str
    items: tuple[ImageItem, ...]
    root: Path | None = None
    problems: tuple[str, ...] = ()

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

    def fingerprint(self) -> str:
        """A cheap cache key: SHA-256 over kind, name, root and every item's identity.

        Files contribute (key, label, path, size, mtime) from ``stat`` (no reading), so adding,
        removing, relabelling or editing a file changes it; uploads and demo photos contribute
        their content digests (cached on the items).

        Returns:
            64 lowercase hex characters.
        """
        digest = hashlib.sha256()
        digest.update(json.dumps([self.kind, self.name, str(self.root)]).encode())
        for item in sorted(self.items, key=lambda item: item.key):
            digest.update(json.dumps(_item_signature(item)).encode() + b"\n")
        return digest.hexdigest()


def _item_signature(item: ImageItem) -> list[Any]:
    """What identifies one item in a fingerprint (see ImageSet.fingerprint)."""
    if item.path is None:
        return [item.key, item.label, item.source_digest()]
    try:
        stat = item.path.stat()
    except OSError:
        return [item.key, item.label, str(item.path), "missing"]
    return [item.key, item.label, str(item.path), stat.st_size, stat.st_mtime_ns]


# ------------------------------------------------------------------------- labels & classes


def check_labels(labels: Iterable[int], class_names: Sequence[str]) -> list[int]:
    """Check that every label is an integer class index of the model.

    Args:
        labels: class indices (ints or numpy integers).
        class_names: the model's class list; valid labels are 0..len(class_names)-1.

    Returns:
        The labels as plain ints.

    Raises:
        LabelError: a label is not an integer or is outside 0..len(class_names)-1 (the
            message lists the first few offenders).
    """
    count = _class_count(class_names)
    checked: list[int] = []
    bad: list[str] = []
    for label in labels:
        if isinstance(label, bool) or not isinstance(label, Integral):
            bad.append(f"{label!r} (not an integer)")
        elif not 0 <= int(label) < count:
            bad.append(str(int(label)))
        else:
            checked.append(int(label))
    if bad:
        more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
        noun = "label" if len(bad) == 1 else "labels"
        raise LabelError(
            f"{noun} {', '.join(bad[:3])}{more} outside the model's classes 0..{count - 1}."
        )
    return checked


def _class_count(class_names: Sequence[str] | None) -> int:
    """Number of classes, refusing a missing or empty class list."""
    if class_names is None or len(class_names) == 0:
        raise LabelError("The model's class list is empty, so no label can be checked.")
    return len(class_names)


def _normalise(name: str) -> str:
    """Case-fold and treat runs of spaces, underscores and hyphens as one space."""
    return " ".join(re.split(r"[\s_\-]+", name.strip().lower())).strip()


class _ClassLookup:
    """Maps a folder name or CSV label (index, exact name, or normalised name) to an index."""

    def __init__(self, class_names: Sequence[str]) -> None:
        self.count = _class_count(class_names)
        self.names = list(class_names)
        self.exact: dict[str, list[int]] = {}
        self.loose: dict[str, list[int]] = {}
        for index, name in enumerate(self.names):
            self.exact.setdefault(str(name), []).append(index)
            self.loose.setdefault(_normalise(str(name)), []).append(index)

    def match(self, text: str) -> int:
        """Return the class index for ``text``.

        Raises:
            LabelError: out of range, ambiguous (ImageNet has two 'crane' classes), or unknown.
        """
        text = text.strip()
        if _INTEGER.fullmatch(text):
            index = int(text)
            if not 0 <= index < self.count:
                raise LabelError(f"class {index} is outside 0..{self.count - 1}")
            return index
        for table, key in ((self.exact, text), (self.loose, _normalise(text))):
            indices = table.get(key)
            if indices and len(indices) > 1:
                listed = " and ".join(str(i) for i in indices)
                raise LabelError(f"{text!r} names classes {listed}; use the class index instead")
            if indices:
                return indices[0]
        raise LabelError(
            f"{text!r} is neither a class index (0..{self.count - 1}) nor a class name"
        )

    def examples(self, count: int = 5) -> str:
        """A few valid class names, for error messages."""
        return ", ".join(repr(name) for name in self.names[:count])


# ---------------------------------------------------------------------------- the data root


def default_data_root() -> Path:
    """The folder the dashboard may read image sets from.

    Returns:
        ``$LIMA_DATA_ROOT`` if that environment variable is set and non-empty, otherwise the
        ``data/`` folder of the current working directory; resolved to an absolute path
        (it need not exist).
    """
    value = os.environ.get(DATA_ROOT_ENV, "").strip()
    base = Path(value).expanduser() if value else Path.cwd() / "data"
    return base.resolve()


def resolve_under_root(path: str | Path, root: str | Path | None) -> Path:
    """Resolve ``path`` (symlinks and ``..`` included) and require it to lie under ``root``.

    Args:
        path: absolute, or relative to ``root`` (relative to the working directory when
            ``root`` is None).
        root: the data root, or None for no restriction.

    Returns:
        The resolved absolute path (it need not exist).

    Raises:
        DataError: the resolved path is outside the resolved root.
    """
    candidate = Path(path).expanduser()
    if root is None:
        return candidate.resolve()
    root_path = Path(root).expanduser().resolve()
    resolved = (candidate if candidate.is_absolute() else root_path / candidate).resolve()
    if not resolved.is_relative_to(root_path):
        raise DataError(
            f"{path} is outside the data root {root_path}; set {DATA_ROOT_ENV} to allow it."
        )
    return resolved


def _within(path: Path, root: Path | None) -> Path | None:
    """Resolved ``path``, or None when it lands outside ``root``."""
    try:
        return resolve_under_root(path, root)
    except DataError:
        return None


def _set_path(path: str | Path, root: str | Path | None, *, folder: bool) -> Path:
    """Resolve a set's own path under the root and require a folder or a file."""
    resolved = resolve_under_root(path, root)
    if not resolved.exists():
        raise DataError(f"{path} does not exist ({resolved}).")
    if folder and not resolved.is_dir():
        raise DataError(f"{path} is a file; expected a folder with one sub-folder per class.")
    if not folder and not resolved.is_file():
        raise DataError(f"{path} is a folder; expected a label list or CSV file.")
    return resolved


def _as_root(root: str | Path | None) -> Path | None:
    """The resolved root, or None."""
    return None if root is None else Path(root).expanduser().resolve()


# ------------------------------------------------------------------------------ the loaders


def open_image_set(
    path: str | Path, class_names: Sequence[str], root: str | Path | None = None
) -> ImageSet:
    """Open a folder (:func:`folder_set`), a ``.csv`` (:func:`csv_set`) or a label list.

    Raises:
        DataError: the path is missing, outside the root, a single image, or yields no images.
    """
    resolved = resolve_under_root(path, root)
    if resolved.is_dir():
        return folder_set(resolved, class_names, root)
    if not resolved.exists():
        raise DataError(f"{path} does not exist ({resolved}).")
    suffix = resolved.suffix.lower()
    if suffix == ".csv":
        return csv_set(resolved, class_names, root)
    if suffix in IMAGE_EXTENSIONS:
        raise DataError(
            f"{resolved.name} is a single image; open its folder, a label list or a CSV file."
        )
    return label_list_set(resolved, class_names, root)


def folder_set(
    path: str | Path, class_names: Sequence[str], root: str | Path | None = None
) -> ImageSet:
    """One sub-folder per class: ``<path>/<class>/**/<image>``.

    A folder name may be a class index ("281"), an exact class name ("tabby"), or a class
    name up to case and separators ("Tabby", "black_and_tan_coonhound"). Image files are
    found by extension (jpg, jpeg, png, webp, bmp, tif, tiff, gif; any case), recursively
    and in sorted order. Hidden files and folders are ignored.

    Raises:
        DataError: the folder is missing, outside the root, has no sub-folder naming a class,
            or holds no image files.
    """
    lookup = _ClassLookup(class_names)
    base = _set_path(path, root, folder=True)
    root_path = _as_root(root)
    items: list[ImageItem] = []
    problems: list[str] = []
    matched: list[str] = []
    unmatched: list[str] = []
    for entry in _sorted_entries(base):
        if entry.name.startswith("."):
            continue
        if not entry.is_dir():
            problems.append(f"{entry.name}: not inside a class folder; skipped")
            continue
        try:
            label = lookup.match(entry.name)
        except LabelError as exc:
            unmatched.append(entry.name)
            problems.append(f"{entry.name}/: {exc}; skipped")
            continue
        if _within(entry, root_path) is None:
            problems.append(f"{entry.name}/: points outside the data root; skipped")
            continue
        matched.append(entry.name)
        _collect_class_folder(entry, base, label, root_path, items, problems)
    if not matched:
        raise DataError(_no_class_folders_message(base, unmatched, lookup))
    if not items:
        raise DataError(
            f"No image files in the class folders of {base} (looked for "
            f"{', '.join(sorted(IMAGE_EXTENSIONS))})."
        )
    return ImageSet(base.name, "folder", tuple(items), base, tuple(problems))


def _sorted_entries(folder: Path) -> list[Path]:
    """The folder's entries sorted by name; an unreadable folder is a DataError."""
    try:
        return sorted(folder.iterdir(), key=lambda entry: entry.name)
    except OSError as exc:
        raise DataError(f"{folder}: cannot list the folder ({exc.strerror or exc}).") from exc


def _collect_class_folder(
    folder: Path,
    base: Path,
    label: int,
    root: Path | None,
    items: list[ImageItem],
    problems: list[str],
) -> None:
    """Append every image under ``folder`` (recursively, sorted) to ``items``."""
    # followlinks=False: a symlinked sub-folder could loop or escape; files are checked below.
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        dirnames[:] = sorted(name for name in dirnames if not name.startswith("."))
        for filename in sorted(filenames):
            if filename.startswith("."):
                continue
            file_path = Path(dirpath) / filename
            key = file_path.relative_to(base).as_posix()
            if file_path.suffix.lower() not in IMAGE_EXTENSIONS:
                problems.append(f"{key}: not an image file; skipped")
                continue
            resolved = _within(file_path, root)
            if resolved is None:
                problems.append(f"{key}: points outside the data root; skipped")
            elif not resolved.is_file():
                problems.append(f"{key}: broken link or not a regular file; skipped")
            else:
                items.append(ImageItem(key=key, label=label, name=filename, path=resolved))


def _no_class_folders_message(base: Path, unmatched: list[str], lookup: _ClassLookup) -> str:
    """Explain what a class folder must be called, with examples."""
    found = ", ".join(repr(name) for name in unmatched[:5]) or "none"
    return (
        f"No sub-folder of {base} names one of the model's {lookup.count} classes (found: "
        f"{found}). Name each folder after a class index (0..{lookup.count - 1}) or a class "
        f"name, e.g. {lookup.examples()}."
    )


def label_list_set(
    path: str | Path, class_names: Sequence[str], root: str | Path | None = None
) -> ImageSet:
    """A ``<file> <class index>`` list (the LiMA reference format), one image per line.

    Blank lines and lines starting with ``#`` are skipped. The label is the last
    whitespace-separated field, so file names may contain spaces. A relative file is looked
    up next to the list, then in an ``images/`` sub-folder next to it.

    Raises:
        DataError: the list is missing, outside the root, not text, or has no usable line.
    """
    count = _class_count(class_names)
    list_path = _set_path(path, root, folder=False)
    root_path = _as_root(root)
    items: list[ImageItem] = []
    problems: list[str] = []
    seen: dict[str, int] = {}
    for number, raw in enumerate(_read_text(list_path).splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{list_path.name}:{number}"
        try:
            file_name, label = _parse_list_line(line, count)
            item = _file_item(file_name, label, list_path.parent, root_path)
        except (DataError, LabelError) as exc:
            problems.append(f"{where}: {exc}")
            continue
        _add_unique(item, number, where, items, seen, problems)
    if not items:
        raise DataError(_nothing_usable(list_path, "'<file> <class index>' lines", problems))
    name = f"{list_path.parent.name}/{list_path.name}"
    return ImageSet(name, "list", tuple(items), list_path.parent, tuple(problems))


def _parse_list_line(line: str, count: int) -> tuple[str, int]:
    """Split '<file name, maybe with spaces> <index>' on the last whitespace."""
    parts = line.rsplit(maxsplit=1)
    if len(parts) != 2:
        raise DataError(f"expected '<file> <class index>', got {line!r}")
    file_name, label_text = parts
    if not _INTEGER.fullmatch(label_text):
        raise LabelError(f"class {label_text!r} is not an integer index")
    label = int(label_text)
    if not 0 <= label < count:
        raise LabelError(f"class {label} is outside 0..{count - 1}")
    return file_name, label


def csv_set(
    path: str | Path, class_names: Sequence[str], root: str | Path | None = None
) -> ImageSet:
    """A CSV file with a header naming a path column and a label column.

    Path column: "path", "file", "filename" or "image"; label column: "label", "class" or
    "target" (header matching ignores case). A label is a class index or a class name
    (matched like folder names). Files are resolved like :func:`label_list_set`. The
    delimiter (comma, semicolon or tab) is detected from the header.

    Raises:
        DataError: the file is missing, outside the root, lacks the columns, or has no
            usable row.
    """
    lookup = _ClassLookup(class_names)
    csv_path = _set_path(path, root, folder=False)
    root_path = _as_root(root)
    reader = _csv_reader(_read_text(csv_path))
    path_col, label_col = _csv_columns(next(reader, None), csv_path)
    items: list[ImageItem] = []
    problems: list[str] = []
    seen: dict[str, int] = {}
    for row in reader:
        where = f"{csv_path.name}:{reader.line_num}"
        if not any(cell.strip() for cell in row):
            continue
        try:
            if len(row) <= max(path_col, label_col):
                raise DataError(f"the row has only {len(row)} column(s)")
            label = lookup.match(row[label_col])
            item = _file_item(row[path_col].strip(), label, csv_path.parent, root_path)
        except (DataError, LabelError) as exc:
            problems.append(f"{where}: {exc}")
            continue
        _add_unique(item, reader.line_num, where, items, seen, problems)
    if not items:
        raise DataError(_nothing_usable(csv_path, "rows", problems))
    name = f"{csv_path.parent.name}/{csv_path.name}"
    return ImageSet(name, "csv", tuple(items), csv_path.parent, tuple(problems))


def _csv_reader(text: str) -> Any:
    """A csv.reader whose delimiter is sniffed from the header line."""
    header = text.split("\n", 1)[0]
    try:
        dialect: Any = csv.Sniffer().sniff(header, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    return csv.reader(io.StringIO(text), dialect)


def _csv_columns(header: list[str] | None, csv_path: Path) -> tuple[int, int]:
    """Indices of the path and label columns."""
    names = [cell.strip().lower() for cell in header or []]
    path_col = next((names.index(c) for c in PATH_COLUMNS if c in names), None)
    label_col = next((names.index(c) for c in LABEL_COLUMNS if c in names), None)
    if path_col is None or label_col is None:
        raise DataError(
            f"{csv_path.name}: the header must name a path column ({', '.join(PATH_COLUMNS)}) "
            f"and a label column ({', '.join(LABEL_COLUMNS)}); found {header or 'no header'}."
        )
    return path_col, label_col


def _file_item(file_name: str, label: int, base: Path, root: Path | None) -> ImageItem:
    """An item for a file named in a list or CSV, checked against the root.

    Raises:
        DataError: not an image extension, outside the root, or not found.
    """
    relative = PurePosixPath(file_name.replace("\\", "/"))  # lists written on Windows
    if not str(relative) or relative.suffix.lower() not in IMAGE_EXTENSIONS:
        raise DataError(f"{file_name}: not an image file (by its extension)")
    if Path(relative).is_absolute():
        candidates = [Path(relative)]
    else:
        candidates = [base / relative, base / "images" / relative]
    outside = False
    for candidate in candidates:
        # Check the root before the disk, so files outside it are not even probed.
        resolved = _within(candidate, root)
        if resolved is None:
            outside = True
        elif resolved.is_file():
            return ImageItem(key=str(relative), label=label, name=relative.name, path=resolved)
    if outside:
        raise DataError(f"{file_name} is outside the data root; skipped")
    raise DataError(f"{file_name} not found (looked in {base} and {base / 'images'})")


def _add_unique(
    item: ImageItem,
    number: int,
    where: str,
    items: list[ImageItem],
    seen: dict[str, int],
    problems: list[str],
) -> None:
    """Append ``item`` unless its key was listed before (keys must be unique)."""
    if item.key in seen:
        problems.append(f"{where}: {item.key} is listed again (first on line {seen[item.key]})")
        return
    seen[item.key] = number
    items.append(item)


def _read_text(path: Path) -> str:
    """A list/CSV file as text, refusing huge, binary or non-UTF-8 files."""
    try:
        if path.stat().st_size > MAX_LIST_BYTES:
            raise DataError(f"{path.name} is larger than {MAX_LIST_BYTES // 2**20} MiB.")
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path.name}: cannot read the file ({exc.strerror or exc}).") from exc
    if b"\x00" in data[:4096]:
        raise DataError(f"{path.name} is not a text file (a label list or CSV was expected).")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path.name} is not UTF-8 text ({exc.reason} at byte {exc.start})."
        ) from exc


def _nothing_usable(path: Path, what: str, problems: list[str]) -> str:
    """Message for a list or CSV with no usable entry, quoting the first problems."""
    detail = "; ".join(problems[:3]) if problems else "the file is empty"
    return f"{path.name} has no usable {what} ({detail})."


# -------------------------------------------------------------------------- uploads


def upload_item(
    data: bytes, filename: str, label: int, class_names: Sequence[str]
) -> ImageItem:
    """An uploaded file as an item, after checking its label and that it decodes.

    Args:
        data: the file's encoded bytes (at most 200 MiB).
        filename: the name the browser gave; any folder part is dropped.
        label: class index, 0..len(class_names)-1.
        class_names: the model's class list.

    Returns:
        An item with key ``upload/<sha256[:12]>/<file name>`` (stable for equal content).

    Raises:
        LabelError: the label is not a valid class index.
        ImageError: the bytes are too many or are not a readable image.
    """
    check_labels([label], class_names)
    clean = re.split(r"[\\/]", filename)[-1].strip() or "upload"
    if len(data) > MAX_BYTES_DEFAULT:
        raise ImageError(f"{clean} is larger than {MAX_BYTES_DEFAULT // 2**20} MiB.")
    load_image(bytes(data), name=clean)  # raises ImageError with the reason
    digest = image_digest(bytes(data))
    item = ImageItem(key=f"upload/{digest[:12]}/{clean}", label=label, name=clean, data=bytes(data))
    object.__setattr__(item, "_digest", digest)  # already computed; saves a second hash
    return item


def uploads_set(items: Iterable[ImageItem], name: str = "Uploads") -> ImageSet:
    """Collect uploaded items into a set; repeats of the same file and name are dropped.

    Raises:
        DataError: no items.
    """
    kept: list[ImageItem] = []
    problems: list[str] = []
    keys: set[str] = set()
    for item in items:
        if item.key in keys:
            problems.append(f"{item.name}: uploaded twice; kept the first")
            continue
        keys.add(item.key)
        kept.append(item)
    if not kept:
        raise DataError("No images uploaded yet: upload at least one image and pick its class.")
    return ImageSet(name, "uploads", tuple(kept), None, tuple(problems))


# ------------------------------------------------------------------------------ the demo


def load_demo_manifest(path: Path = DEMO_MANIFEST) -> list[dict[str, Any]]:
    """The demo manifest's entries (key, title, source, label, label_name, licence, credit...).

    Raises:
        DataError: the manifest is missing or malformed.
    """
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))["entries"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"The demo manifest {path} cannot be read ({exc}).") from exc
    required = {"key": str, "title": str, "source": str, "label": int, "label_name": str}
    keys: set[str] = set()
    for number, entry in enumerate(entries):
        for field_name, kind in required.items():
            if not isinstance(entry.get(field_name), kind):
                raise DataError(
                    f"{path.name}: entry {number} needs a {kind.__name__} {field_name!r}."
                )
        if entry["key"] in keys:
            raise DataError(f"{path.name}: the key {entry['key']!r} appears twice.")
        keys.add(entry["key"])
    return entries


def demo_set(class_names: Sequence[str] | None = None) -> ImageSet:
    """The built-in demo: real photos that ship inside installed packages (no downloads).

    Entries come from ``assets/demo_set.json``; each photo is read lazily by its item's
    loader. With ``class_names``, an entry is kept only if its label index exists and names
    the manifest's class (up to case and separators); the demo uses ImageNet-1k labels.
    Entries whose package is not installed are skipped too. Cached per class list.

    Raises:
        DataError: no entry is usable (e.g. the model is not an ImageNet-1k classifier).
    """
    names = None if class_names is None else tuple(str(name) for name in class_names)
    return _demo_set(names)


@functools.lru_cache(maxsize=4)
def _demo_set(class_names: tuple[str, ...] | None) -> ImageSet:
    items: list[ImageItem] = []
    problems: list[str] = []
    for entry in load_demo_manifest():
        try:
            _check_demo_label(entry, class_names)
            loader = _demo_loader(entry["source"], entry["title"])
        except (DataError, LabelError) as exc:
            problems.append(f"{entry['key']}: {exc}")
            continue
        note = f"{entry.get('licence', '')}. {entry.get('credit', '')}".strip(". ")
        items.append(
            ImageItem(entry["key"], entry["label"], entry["title"], loader=loader, note=note)
        )
    if not items:
        raise DataError("None of the built-in demo photos can be used: " + "; ".join(problems[:3]))
    return ImageSet("Built-in demo", "demo", tuple(items), None, tuple(problems))


def _check_demo_label(entry: dict[str, Any], class_names: tuple[str, ...] | None) -> None:
    """Require the entry's label index to name the same class in the model's list."""
    if class_names is None:
        return
    label, expected = entry["label"], entry["label_name"]
    if not 0 <= label < len(class_names):
        raise LabelError(
            f"class {label} ({expected!r}) is outside this model's classes "
            f"0..{len(class_names) - 1}; the demo uses ImageNet-1k labels"
        )
    if _normalise(class_names[label]) != _normalise(expected):
        raise LabelError(
            f"class {label} is {class_names[label]!r} for this model, not {expected!r}; "
            "the demo uses ImageNet-1k labels"
        )


def _demo_loader(source: str, title: str) -> Callable[[], Image.Image]:
    """A callable that reads a demo photo from its package (checked to be installed)."""
    found = _DEMO_SOURCE.fullmatch(source)
    if found is None:
        raise DataError(f"unknown demo source {source!r}")
    package, name, index = found.group(1), found.group(2), found.group(3)
    if importlib.util.find_spec(package) is None:
        raise DataError(f"needs {_DEMO_PACKAGES[package]}, which is not installed")
    reader = {"skimage": _read_skimage, "matplotlib": _read_matplotlib, "sklearn": _read_sklearn}
    return functools.partial(reader[package], name, None if index is None else int(index), title)


def _read_skimage(function: str, index: int | None, title: str) -> Image.Image:
    """``skimage.data.<function>()`` (optionally ``[index]`` of a tuple), as RGB."""
    import skimage.data  # lazy: heavy, and only the demo needs it

    value = getattr(skimage.data, function)()
    return load_image(np.asarray(value if index is None else value[index]), name=title)


def _read_matplotlib(file_name: str, index: int | None, title: str) -> Image.Image:
    """A file from matplotlib's bundled sample data, read as bytes."""
    from matplotlib import cbook  # lazy

    return load_image(read_bytes(cbook.get_sample_data(file_name, asfileobj=False)), name=title)


def _read_sklearn(file_name: str, index: int | None, title: str) -> Image.Image:
    """A photo from ``sklearn/datasets/images`` (the files behind load_sample_images)."""
    # Locate the package without importing it: importing scikit-learn takes about a second.
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("scikit-learn is not installed")
    folder = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "images"
    return load_image(read_bytes(folder / file_name), name=title)
