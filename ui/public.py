"""Public demo mode (``LIMA_MODE=public``): what a visitor may do, checked in one place.

Every page asks this module rather than reading the setting itself, so a limit is enforced the
same way everywhere: no server paths or model files, no deletes, uploads within size and rate
limits, new runs within size limits and one at a time per visitor (the server's job queue runs
them in submission order, so each visitor waits their turn).
"""

from __future__ import annotations

import time

import streamlit as st

from explainer import settings
from explainer.settings import PUBLIC_LIMITS
from ui import state

SOURCE_KINDS = ("demo", "uploads")  # image sets a visitor may open (no folder on the server)


def on() -> bool:
    """Whether this server runs in public demo mode."""
    return settings.current().public


def banner() -> None:
    """A one-line note under the title of every page in public mode."""
    if on():
        st.caption(
            ":material/public: Public demo: saved runs, the built-in model and demo photos; "
            f"your own photos up to {PUBLIC_LIMITS.max_upload_mb} MB; new runs up to "
            f"{PUBLIC_LIMITS.max_regions} regions, one at a time."
        )


def run_refusal(n_regions: int, pending: int, region_method: str) -> str | None:
    """Why a new run may not start here (None when it may)."""
    if not on():
        return None
    limits = PUBLIC_LIMITS
    if region_method == "sam":
        return "SAM needs a checkpoint file on the server; this public demo offers superpixels and grids."
    if n_regions > limits.max_regions:
        return (
            f"This public demo runs at most {limits.max_regions} regions ({n_regions} chosen): "
            "use larger superpixels or fewer grid cells."
        )
    if pending > limits.max_pending:
        return f"This public demo re-scores at most {limits.max_pending} pending candidates ({pending} chosen)."
    return None


def job_refusal(jobs) -> str | None:
    """Why this session may not start another background job (None when it may)."""
    if not on():
        return None
    mine = [j for j in jobs.active() if state.session_id() in j.watchers]
    if len(mine) >= PUBLIC_LIMITS.active_jobs_per_session:
        ahead = jobs.queue_position(mine[0])
        where = "running now" if ahead == 0 else f"{ahead} ahead of it in the queue"
        return f"One run at a time per visitor on this public demo: yours is {where}."
    return None


def upload_refusal(sizes: list[int]) -> str | None:
    """Why these uploads (sizes in bytes) are refused (None when they are accepted; they are
    then counted against this session's hourly allowance)."""
    if not on():
        return None
    limits = PUBLIC_LIMITS
    too_big = [s for s in sizes if s > limits.max_upload_mb * 1024 * 1024]
    if too_big:
        return f"Photos on this public demo may be up to {limits.max_upload_mb} MB each."
    now = time.time()
    recent = [t for t in (state.get("upload_times") or []) if now - t < 3600]
    if len(recent) + len(sizes) > limits.uploads_per_hour:
        return (
            f"This public demo takes up to {limits.uploads_per_hour} photos an hour from one visitor; try again later."
        )
    state.put("upload_times", recent + [now] * len(sizes))
    return None
