"""The built-in demo set: real photos that ship inside installed packages (no downloads).

The manifest (``explainer/resources/demo_set.json``, package data) lists each photo's source
(``skimage:``, ``matplotlib:`` or ``sklearn:``), its ImageNet-1k label, licence and credit.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import re
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from explainer.data.items import ImageItem, ImageSet
from explainer.data.labels import normalise_name
from explainer.errors import DataError, LabelError
from explainer.images import load_image, read_bytes

DEMO_MANIFEST = resources.files("explainer") / "resources" / "demo_set.json"
_DEMO_SOURCE = re.compile(r"(skimage|matplotlib|sklearn):([\w.\-]+)(?:\[(\d+)\])?")
_DEMO_PACKAGES = {"skimage": "scikit-image", "matplotlib": "matplotlib", "sklearn": "scikit-learn"}

__all__ = ["DEMO_MANIFEST", "demo_set", "load_demo_manifest"]


def load_demo_manifest(path: Any = DEMO_MANIFEST) -> list[dict[str, Any]]:
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
                raise DataError(f"{path.name}: entry {number} needs a {kind.__name__} {field_name!r}.")
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
        items.append(ImageItem(entry["key"], entry["label"], entry["title"], loader=loader, note=note))
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
    if normalise_name(class_names[label]) != normalise_name(expected):
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
