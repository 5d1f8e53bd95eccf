"""Class names: the ImageNet-1k list (offline) and users' class-name files.

A class-name file maps line i to class i-1 (a text file), or is a JSON list, or a JSON object
``{"0": name, ...}`` with keys exactly 0..K-1. Anything that would silently shift the mapping
(a blank line in the middle, a gap in the keys) is refused with the line or key named.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from explainer.errors import ModelError


@lru_cache(maxsize=1)
def imagenet_class_names() -> tuple[str, ...]:
    """The 1000 ImageNet-1k class names (offline, from torchvision's metadata)."""
    from torchvision.models import EfficientNet_B0_Weights

    return tuple(EfficientNet_B0_Weights.DEFAULT.meta["categories"])


def read_class_names(path: str | Path) -> tuple[str, ...]:
    """Class names from a text file (one per line) or a JSON list / {index: name} dict."""
    try:
        path = Path(path)
        exists = path.is_file()
    except (OSError, ValueError) as exc:
        raise ModelError(f"{str(path)[:80]!r} is not a usable file path ({exc}).") from exc
    if not exists:
        raise ModelError(f"Class-names file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelError(f"{path.name} cannot be read as UTF-8 text ({exc}).") from exc
    if path.suffix.lower() == ".json":
        names = _names_from_json(text, path.name)
    else:
        lines = [line.strip() for line in text.splitlines()]
        while lines and not lines[-1]:  # blank lines at the very end shift nothing
            lines.pop()
        blank = next((number for number, line in enumerate(lines, start=1) if not line), None)
        if blank is not None:
            raise ModelError(
                f"{path.name}: line {blank} is blank; line i must name class i-1, so a blank "
                f"line would shift every class after it. Remove it or name the class."
            )
        names = tuple(lines)
    if not names:
        raise ModelError(f"{path} lists no class names.")
    return names


def _names_from_json(text: str, file_name: str) -> tuple[str, ...]:
    """Class names from a JSON list, or a {"0": name, "1": name, ...} object with keys 0..K-1."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ModelError(f"{file_name} is not valid JSON ({exc}).") from exc
    if isinstance(data, dict):
        try:
            index = {int(k): v for k, v in data.items()}
        except (TypeError, ValueError):
            raise ModelError(f"{file_name}: the keys must be class indices 0..K-1.") from None
        if sorted(index) != list(range(len(index))):
            raise ModelError(f"{file_name}: the keys must be exactly 0..{len(index) - 1}, without gaps.")
        data = [index[i] for i in range(len(index))]
    if not isinstance(data, list):
        raise ModelError(f"{file_name} must hold a list of names or an object of index: name.")
    names = tuple(str(x).strip() if isinstance(x, (str, int, float)) else "" for x in data)
    blank = next((i for i, name in enumerate(names) if not name), None)
    if blank is not None:
        raise ModelError(f"{file_name}: class {blank} has no name.")
    return names


__all__ = ["imagenet_class_names", "read_class_names"]
