"""Class labels of image sets: checking indices, and matching folder names or CSV labels to the
model's classes (by index, exact name, or name up to case and separators)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from numbers import Integral

from explainer.errors import LabelError

__all__ = ["INTEGER", "ClassLookup", "check_labels", "class_count", "normalise_name"]

INTEGER = re.compile(r"[+-]?\d+")


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
    count = class_count(class_names)
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
        raise LabelError(f"{noun} {', '.join(bad[:3])}{more} outside the model's classes 0..{count - 1}.")
    return checked


def class_count(class_names: Sequence[str] | None) -> int:
    """Number of classes, refusing a missing or empty class list."""
    if class_names is None or len(class_names) == 0:
        raise LabelError("The model's class list is empty, so no label can be checked.")
    return len(class_names)


def normalise_name(name: str) -> str:
    """Case-fold and treat runs of spaces, underscores and hyphens as one space."""
    return " ".join(re.split(r"[\s_\-]+", name.strip().lower())).strip()


class ClassLookup:
    """Maps a folder name or CSV label (index, exact name, or normalised name) to an index."""

    def __init__(self, class_names: Sequence[str]) -> None:
        self.count = class_count(class_names)
        self.names = list(class_names)
        self.exact: dict[str, list[int]] = {}
        self.loose: dict[str, list[int]] = {}
        for index, name in enumerate(self.names):
            self.exact.setdefault(str(name), []).append(index)
            self.loose.setdefault(normalise_name(str(name)), []).append(index)

    def match(self, text: str) -> int:
        """Return the class index for ``text``.

        Raises:
            LabelError: out of range, ambiguous (ImageNet has two 'crane' classes), or unknown.
        """
        text = text.strip()
        if INTEGER.fullmatch(text):
            index = int(text)
            if not 0 <= index < self.count:
                raise LabelError(f"class {index} is outside 0..{self.count - 1}")
            return index
        for table, key in ((self.exact, text), (self.loose, normalise_name(text))):
            indices = table.get(key)
            if indices and len(indices) > 1:
                listed = " and ".join(str(i) for i in indices)
                raise LabelError(f"{text!r} names classes {listed}; use the class index instead")
            if indices:
                return indices[0]
        raise LabelError(f"{text!r} is neither a class index (0..{self.count - 1}) nor a class name")

    def examples(self, count: int = 5) -> str:
        """A few valid class names, for error messages."""
        return ", ".join(repr(name) for name in self.names[:count])
