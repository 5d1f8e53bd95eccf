"""Image sets from files: a folder with one sub-folder per class, a ``<file> <class index>`` list
(the LiMA reference format), a CSV with path and label columns, and uploaded files.

Every loader returns an :class:`ImageSet`. Lines, rows, folders or files that cannot be used
are skipped and explained in ``ImageSet.problems``; a set with nothing usable raises
:class:`DataError`. With a ``root``, every path is confined to it (:mod:`.sandbox`).
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from explainer.data.items import ImageItem, ImageSet
from explainer.data.labels import INTEGER, ClassLookup, check_labels, class_count
from explainer.data.sandbox import as_root, resolve_under_root, set_path, within
from explainer.errors import DataError, ImageError, LabelError
from explainer.images import MAX_BYTES_DEFAULT, image_digest, load_image

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"})
PATH_COLUMNS = ("path", "file", "filename", "image")
LABEL_COLUMNS = ("label", "class", "target")
MAX_LIST_BYTES = 50 * 1024 * 1024  # a label list or CSV larger than this is surely a mistake

__all__ = [
    "IMAGE_EXTENSIONS",
    "csv_set",
    "folder_set",
    "label_list_set",
    "open_image_set",
    "upload_item",
    "uploads_set",
]


def open_image_set(path: str | Path, class_names: Sequence[str], root: str | Path | None = None) -> ImageSet:
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
        raise DataError(f"{resolved.name} is a single image; open its folder, a label list or a CSV file.")
    return label_list_set(resolved, class_names, root)


def folder_set(path: str | Path, class_names: Sequence[str], root: str | Path | None = None) -> ImageSet:
    """One sub-folder per class: ``<path>/<class>/**/<image>``.

    A folder name may be a class index ("281"), an exact class name ("tabby"), or a class
    name up to case and separators ("Tabby", "black_and_tan_coonhound"). Image files are
    found by extension (jpg, jpeg, png, webp, bmp, tif, tiff, gif; any case), recursively
    and in sorted order. Hidden files and folders are ignored.

    Raises:
        DataError: the folder is missing, outside the root, has no sub-folder naming a class,
            or holds no image files.
    """
    lookup = ClassLookup(class_names)
    base = set_path(path, root, folder=True)
    root_path = as_root(root)
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
        if within(entry, root_path) is None:
            problems.append(f"{entry.name}/: points outside the data root; skipped")
            continue
        matched.append(entry.name)
        _collect_class_folder(entry, base, label, root_path, items, problems)
    if not matched:
        raise DataError(_no_class_folders_message(base, unmatched, lookup))
    if not items:
        raise DataError(
            f"No image files in the class folders of {base} (looked for {', '.join(sorted(IMAGE_EXTENSIONS))})."
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
            resolved = within(file_path, root)
            if resolved is None:
                problems.append(f"{key}: points outside the data root; skipped")
            elif not resolved.is_file():
                problems.append(f"{key}: broken link or not a regular file; skipped")
            else:
                items.append(ImageItem(key=key, label=label, name=filename, path=resolved))


def _no_class_folders_message(base: Path, unmatched: list[str], lookup: ClassLookup) -> str:
    """Explain what a class folder must be called, with examples."""
    found = ", ".join(repr(name) for name in unmatched[:5]) or "none"
    return (
        f"No sub-folder of {base} names one of the model's {lookup.count} classes (found: "
        f"{found}). Name each folder after a class index (0..{lookup.count - 1}) or a class "
        f"name, e.g. {lookup.examples()}."
    )


def label_list_set(path: str | Path, class_names: Sequence[str], root: str | Path | None = None) -> ImageSet:
    """A ``<file> <class index>`` list (the LiMA reference format), one image per line.

    Blank lines and lines starting with ``#`` are skipped. The label is the last
    whitespace-separated field, so file names may contain spaces. A relative file is looked
    up next to the list, then in an ``images/`` sub-folder next to it.

    Raises:
        DataError: the list is missing, outside the root, not text, or has no usable line.
    """
    count = class_count(class_names)
    list_path = set_path(path, root, folder=False)
    root_path = as_root(root)
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
    return ImageSet(name, "list", tuple(items), list_path.parent, tuple(problems), origin=list_path)


def _parse_list_line(line: str, count: int) -> tuple[str, int]:
    """Split '<file name, maybe with spaces> <index>' on the last whitespace."""
    parts = line.rsplit(maxsplit=1)
    if len(parts) != 2:
        raise DataError(f"expected '<file> <class index>', got {line!r}")
    file_name, label_text = parts
    if not INTEGER.fullmatch(label_text):
        raise LabelError(f"class {label_text!r} is not an integer index")
    label = int(label_text)
    if not 0 <= label < count:
        raise LabelError(f"class {label} is outside 0..{count - 1}")
    return file_name, label


def csv_set(path: str | Path, class_names: Sequence[str], root: str | Path | None = None) -> ImageSet:
    """A CSV file with a header naming a path column and a label column.

    Path column: "path", "file", "filename" or "image"; label column: "label", "class" or
    "target" (header matching ignores case). A label is a class index or a class name
    (matched like folder names). Files are resolved like :func:`label_list_set`. The
    delimiter (comma, semicolon or tab) is detected from the header.

    Raises:
        DataError: the file is missing, outside the root, lacks the columns, or has no
            usable row.
    """
    lookup = ClassLookup(class_names)
    csv_path = set_path(path, root, folder=False)
    root_path = as_root(root)
    reader = _csv_reader(_read_text(csv_path))
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise DataError(f"{csv_path.name} cannot be read as CSV ({exc}).") from exc
    path_col, label_col = _csv_columns(header, csv_path)
    items: list[ImageItem] = []
    problems: list[str] = []
    seen: dict[str, int] = {}
    try:
        rows = list(reader)
    except csv.Error as exc:  # e.g. a field over the csv module's size limit
        raise DataError(f"{csv_path.name} cannot be read as CSV ({exc}).") from exc
    for number, row in enumerate(rows, start=2):
        where = f"{csv_path.name}:{number}"
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
        _add_unique(item, number, where, items, seen, problems)
    if not items:
        raise DataError(_nothing_usable(csv_path, "rows", problems))
    name = f"{csv_path.parent.name}/{csv_path.name}"
    return ImageSet(name, "csv", tuple(items), csv_path.parent, tuple(problems), origin=csv_path)


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
        resolved = within(candidate, root)
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
        raise DataError(f"{path.name} is not UTF-8 text ({exc.reason} at byte {exc.start}).") from exc


def _nothing_usable(path: Path, what: str, problems: list[str]) -> str:
    """Message for a list or CSV with no usable entry, quoting the first problems."""
    detail = "; ".join(problems[:3]) if problems else "the file is empty"
    return f"{path.name} has no usable {what} ({detail})."


def upload_item(data: bytes, filename: str, label: int, class_names: Sequence[str]) -> ImageItem:
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
