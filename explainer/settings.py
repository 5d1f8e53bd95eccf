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

:func:`current` reads them every time it is called, so a test, a notebook or a server can change
them without restarting (no module reads the environment at import time).
"""

from __future__ import annotations

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


def _path(value: str) -> Path:
    return Path(value).expanduser().resolve()


def current() -> Settings:
    """The settings now, from the environment (see the module docstring)."""
    env = os.environ
    if env.get("LIMA_CACHE_DIR", "").strip():
        cache = _path(env["LIMA_CACHE_DIR"])
    else:
        import platformdirs

        cache = platformdirs.user_cache_path(APP_NAME)
    data_root = env.get("LIMA_DATA_ROOT", "").strip()
    checkpoint = env.get("LIMA_SAM_CHECKPOINT", "").strip()
    return Settings(
        cache_dir=cache,
        runs_dir=_path(env["LIMA_RUNS_DIR"]) if env.get("LIMA_RUNS_DIR", "").strip() else cache / "runs",
        scans_dir=_path(env["LIMA_SCANS_DIR"]) if env.get("LIMA_SCANS_DIR", "").strip() else cache / "scans",
        data_root=_path(data_root) if data_root else (Path.cwd() / "data").resolve(),
        device=env.get("LIMA_DEVICE", "").strip() or "auto",
        sam_checkpoint=Path(checkpoint).expanduser() if checkpoint else None,
        sam_dir=_path(env["LIMA_SAM_DIR"]) if env.get("LIMA_SAM_DIR", "").strip() else cache / "sam",
    )


__all__ = ["APP_NAME", "Settings", "current"]
