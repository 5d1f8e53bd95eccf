"""The data root: the one folder the dashboard may read image sets and user models from.

Every set path *and* every file a set refers to is resolved (symlinks and ``..`` included) and
refused if it lands outside the root. ``root=None`` means unrestricted (the engine and the CLI).
"""

from __future__ import annotations

from pathlib import Path

from explainer import settings
from explainer.errors import DataError

DATA_ROOT_ENV = "LIMA_DATA_ROOT"

__all__ = ["DATA_ROOT_ENV", "as_root", "default_data_root", "resolve_under_root", "set_path", "within"]


def default_data_root() -> Path:
    """The folder the dashboard may read image sets from.

    Returns:
        ``$LIMA_DATA_ROOT`` if that environment variable is set and non-empty, otherwise the
        ``data/`` folder of the current working directory; resolved to an absolute path
        (it need not exist). Read at call time (:func:`explainer.settings.current`).
    """
    return settings.current().data_root


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
    text = str(path)
    if "\x00" in text:
        raise DataError("a path cannot contain a NUL character")
    if len(text) > 1024 or any(len(part) > 255 for part in Path(text).parts):
        raise DataError(f"{text[:60]}… is too long for a path")
    candidate = Path(path).expanduser()
    try:
        if root is None:
            return candidate.resolve()
        root_path = Path(root).expanduser().resolve()
        resolved = (candidate if candidate.is_absolute() else root_path / candidate).resolve()
    except (OSError, RuntimeError) as exc:  # a name too long for the system, a symlink loop
        raise DataError(f"{text[:80]} cannot be resolved ({type(exc).__name__}: {exc}).") from exc
    if not resolved.is_relative_to(root_path):
        raise DataError(f"{path} is outside the data root {root_path}; set {DATA_ROOT_ENV} to allow it.")
    return resolved


def within(path: Path, root: Path | None) -> Path | None:
    """Resolved ``path``, or None when it lands outside ``root``."""
    try:
        return resolve_under_root(path, root)
    except DataError:
        return None


def set_path(path: str | Path, root: str | Path | None, *, folder: bool) -> Path:
    """Resolve a set's own path under the root and require a folder or a file."""
    resolved = resolve_under_root(path, root)
    if not resolved.exists():
        raise DataError(f"{path} does not exist ({resolved}).")
    if folder and not resolved.is_dir():
        raise DataError(f"{path} is a file; expected a folder with one sub-folder per class.")
    if not folder and not resolved.is_file():
        raise DataError(f"{path} is a folder; expected a label list or CSV file.")
    return resolved


def as_root(root: str | Path | None) -> Path | None:
    """The resolved root, or None."""
    return None if root is None else Path(root).expanduser().resolve()
