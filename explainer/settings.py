"""Where things live and which device runs: one settings object, read at call time.

Environment variables (all optional):

| variable | default | meaning |
|---|---|---|
| ``LIMA_CACHE_DIR`` | the user cache folder (``~/.cache/lima-lens`` on Linux) | root of the folders below |
| ``LIMA_RUNS_DIR`` | ``<cache>/runs`` | saved explanations |
| ``LIMA_SCANS_DIR`` | ``<cache>/scans`` | cached scans of image sets |
| ``LIMA_DATA_ROOT`` | ``./data`` | the only folder the app reads image sets and user models from |
| ``LIMA_DEVICE`` | ``auto`` | ``cpu``, ``cuda`` or ``cuda:N`` (auto: CUDA when available) |
| ``LIMA_SAM_CHECKPOINT`` | none | a SAM checkpoint file (or a folder of them) |
| ``LIMA_SAM_DIR`` | ``<cache>/sam`` | searched for ``*.pth`` SAM checkpoints |
| ``LIMA_MODE`` | ``team`` | ``public``: a read-only demo server open to anyone (see :class:`PublicLimits`) |

:func:`current` reads them every time it is called, so a test, a notebook or a server can change
them without restarting (no module reads the environment at import time).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

APP_NAME = "lima-lens"


@dataclass(frozen=True)
class Settings:
    """Resolved settings (paths are absolute; nothing is created here)."""

    cache_dir: Path
    runs_dir: Path
    scans_dir: Path
    data_root: Path
    device: str
    sam_checkpoint: Path | None
    sam_dir: Path
    mode: str = "team"

    @property
    def public(self) -> bool:
        """A demo server open to anyone: read-only, limited (see :class:`PublicLimits`)."""
        return self.mode == "public"


MODES = ("team", "public")


@dataclass(frozen=True)
class PublicLimits:
    """What a visitor of a public demo server (``LIMA_MODE=public``) may do.

    Read-only: no server paths, no deletes, no model or SAM files; the built-in model and the
    demo photos, uploads within these limits, saved runs and the presenter's playlist.

    Attributes:
        max_regions: regions a new run may have (a 64-region run is ~2,700 forward passes).
        max_pending: LiMA's backward candidates (the search's cost grows with it).
        max_upload_mb: size of one uploaded photo, in MB.
        uploads_per_hour: photos one session may upload in an hour.
        active_jobs_per_session: runs one session may have running or queued at once; with the
            server's one-job-at-a-time queue in submission order, every visitor waits their turn.
    """

    max_regions: int = 64
    max_pending: int = 8
    max_upload_mb: int = 5
    uploads_per_hour: int = 30
    active_jobs_per_session: int = 1


PUBLIC_LIMITS = PublicLimits()


def mode_of(value: str) -> str:
    """``LIMA_MODE`` as a mode: "" and "team" give "team"; anything else gives "public" (an
    unknown or mistyped value fails closed, never open)."""
    value = value.strip().lower()
    return "team" if value in ("", "team") else "public"


def _path(value: str) -> Path:
    return Path(value).expanduser().resolve()


_ENV_NAMES = (
    "LIMA_CACHE_DIR",
    "LIMA_RUNS_DIR",
    "LIMA_SCANS_DIR",
    "LIMA_DATA_ROOT",
    "LIMA_DEVICE",
    "LIMA_SAM_CHECKPOINT",
    "LIMA_SAM_DIR",
    "LIMA_MODE",
    "HOME",  # "~" in a path, and the user cache folder
    "XDG_CACHE_HOME",
)


def current() -> Settings:
    """The settings now, from the environment (see the module docstring).

    Read at every call (a test or a notebook may change the environment), but resolved once per
    distinct environment: resolving the paths stats the file system, and a page run asks about
    twenty times (measured: 1 ms a call at 50,000 images, 2-5 % of a Find errors click)."""
    env = os.environ
    return _resolve(tuple(env.get(name, "") for name in _ENV_NAMES), os.getcwd())


@functools.lru_cache(maxsize=16)
def _resolve(values: tuple[str, ...], cwd: str) -> Settings:
    env = dict(zip(_ENV_NAMES, values))
    if env["LIMA_CACHE_DIR"].strip():
        cache = _path(env["LIMA_CACHE_DIR"])
    else:
        import platformdirs

        cache = platformdirs.user_cache_path(APP_NAME)
    data_root = env["LIMA_DATA_ROOT"].strip()
    checkpoint = env["LIMA_SAM_CHECKPOINT"].strip()
    return Settings(
        cache_dir=cache,
        runs_dir=_path(env["LIMA_RUNS_DIR"]) if env["LIMA_RUNS_DIR"].strip() else cache / "runs",
        scans_dir=_path(env["LIMA_SCANS_DIR"]) if env["LIMA_SCANS_DIR"].strip() else cache / "scans",
        data_root=_path(data_root) if data_root else (Path(cwd) / "data").resolve(),
        device=env["LIMA_DEVICE"].strip() or "auto",
        sam_checkpoint=Path(checkpoint).expanduser() if checkpoint else None,
        sam_dir=_path(env["LIMA_SAM_DIR"]) if env["LIMA_SAM_DIR"].strip() else cache / "sam",
        mode=mode_of(env["LIMA_MODE"]),
    )


__all__ = ["APP_NAME", "MODES", "PUBLIC_LIMITS", "PublicLimits", "Settings", "current", "mode_of"]
