"""Small UI pieces shared by the pages: the job progress panel, class pickers, captions."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import NoReturn

import streamlit as st

from ui import resources, state
from ui.jobs import Job
from ui.text import md, md_message


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "estimating…"
    if seconds < 90:
        return f"about {seconds:.0f} s"
    return f"about {seconds / 60:.1f} min"


def progress_text(job: Job) -> str:
    """One line (Markdown) on where a job is; its label is escaped (it names user files)."""
    if job.status == "queued":
        ahead = resources.job_manager().queue_position(job)
        lane = "batch job" if job.lane == "batch" else "interactive job"
        return f"Waiting: {ahead} other {lane}{'s' if ahead != 1 else ''} first (one {lane} runs at a time)."
    p = job.progress
    if p is None:
        return f"{md(job.label)}: starting…"
    return f"{md(job.label)}: {md(p.describe())} · {format_seconds(p.eta_s)} left"


# The jobs whose progress this page run shows in a panel (each session's script runs on its own
# thread; ui.page.render starts the set afresh for every page run). The sidebar leaves them out.
_PAGE = threading.local()

# Seconds between two polls of a running job. Each poll makes the browser draw the page again
# (~0.15 s of a core for the Explain page on this 2-core machine): polled twice a second (and
# the sidebar once), Chromium took 9 core-seconds of a 17 s demo explanation next to the search
# (README, "Speed"). Once a second still moves the bar, at a third of the cost.
POLL_S = 1.0
END_MARGIN_S = 0.25  # how much longer than its ETA a poll waits for a job about to end


def start_page() -> None:
    """A page run starts: no job panel drawn yet."""
    _PAGE.panels = set()


def panels_on_page() -> set[str]:
    """Keys of the jobs that this page run shows in a progress panel so far."""
    panels = getattr(_PAGE, "panels", None)
    if panels is None:
        panels = _PAGE.panels = set()
    return panels


def job_panel(session_key: str) -> Job | None:
    """While this session's job ``session_key`` is active, poll it in a fragment (progress bar
    and Cancel); when it ends, trigger one full rerun so the page can use the result.

    Returns the job (active or finished), or None.
    """
    manager = resources.job_manager()
    job = manager.get(state.get(session_key))
    if job is None or not job.active:
        return job
    panels_on_page().add(job.key)

    @st.fragment(run_every=POLL_S)
    def _poll() -> None:
        current = manager.get(state.get(session_key))
        if current is not None and current.active and ends_before_next_poll(current):
            # Its result is shown as it ends, not up to a poll later; an estimate that stays at 0
            # (a run saving its result) costs a short wait per poll, not a whole interval.
            current.ended.wait(min(POLL_S, (current.eta_s or 0.0) + END_MARGIN_S))
        if current is None or not current.active:
            st.rerun()  # hand over to the page (full run)
        st.progress(current.fraction, text=progress_text(current))
        st.button(
            "Cancel",
            key=f"cancel_{session_key}",
            on_click=stop_waiting,
            args=(session_key,),
            icon=":material/stop_circle:",
        )

    _poll()
    return job


class StopPage(Exception):
    """Ends a page's body early (:func:`stop_page`); ``ui.page.render`` catches it."""


def stop_page() -> NoReturn:
    """End the page's body here, like ``st.stop()``, but let ``ui.page.render`` finish what
    comes after the page (the sidebar's notes): after ``st.stop()`` nothing more is drawn."""
    raise StopPage


def ends_before_next_poll(job: Job) -> bool:
    """Whether a running job expects to end within one poll interval (its progress's ETA): the
    poll then waits for it, up to its ETA plus :data:`END_MARGIN_S`, instead of showing the
    result up to a second late. (A click during that wait is handled when it ends.)"""
    eta = job.eta_s if job.status == "running" else None
    return eta is not None and 0 <= eta < POLL_S


def finished_job(session_key: str) -> Job | None:
    """This session's job if it has ended (done, failed or cancelled), else None. The outcome of
    a failed or cancelled job is kept for :func:`show_outcome` until the next job starts."""
    job = resources.job_manager().get(state.get(session_key))
    if job is None or job.active:
        return None
    state.put(session_key, None)
    if job.status == "failed":
        st.session_state[f"_outcome_{session_key}"] = ("error", f"{md(job.label)} failed: {md_message(job.error)}")
    elif job.status == "cancelled":
        st.session_state[f"_outcome_{session_key}"] = (
            "warning",
            f"{md(job.label)} was cancelled. Nothing else changed: earlier results are still here.",
        )
    return job


def show_outcome(session_key: str) -> None:
    """The message of this session's last failed or cancelled job, if any."""
    outcome = st.session_state.get(f"_outcome_{session_key}")
    if outcome:
        getattr(st, outcome[0])(outcome[1])


def start_job(session_key: str, job: Job) -> None:
    """Remember ``job`` as this session's ``session_key`` job (this session now waits for it) and
    forget the last outcome."""
    st.session_state.pop(f"_outcome_{session_key}", None)
    resources.job_manager().watch(job, state.session_id())
    state.put(session_key, job.key)


def stop_waiting(session_key: str) -> None:
    """Cancel callback: this session stops waiting for its job; the job itself is cancelled only
    when no other session waits for it (two tabs with the same inputs share one job)."""
    manager = resources.job_manager()
    job = manager.get(state.get(session_key))
    if job is None:
        return
    if not manager.release(job, state.session_id()):
        state.put(session_key, None)
        st.session_state[f"_outcome_{session_key}"] = (
            "info",
            f"{md(job.label)} goes on for another session that waits for it; its result will be saved.",
        )


def class_label(names: Sequence[str], index: int) -> str:
    return f"{names[index]} ({index})"


def class_picker(
    label: str, names: Sequence[str], key: str, index: int | None = 0, help: str | None = None, **kwargs
) -> int | None:
    """A searchable selectbox over class names; returns the class index."""
    return st.selectbox(
        label, range(len(names)), index=index, key=key, help=help, format_func=lambda i: class_label(names, i), **kwargs
    )


def colour_scale(scale, width: int = 448) -> None:
    """A heatmap's legend: the colour gradient with its end values and what the ends mean.

    ``scale`` is an ``explainer.render.ColourScale``. Drawn as HTML (no Markdown processing;
    the labels, which hold class names, are HTML-escaped).
    """
    import html

    def number(x: float) -> str:
        return f"{x:+.2f}" if scale.low < 0 < scale.high else f"{x:.2f}"

    low, high = html.escape(scale.low_label), html.escape(scale.high_label)
    mid = (
        '<span style="flex:1;text-align:center">0</span>'
        if scale.low < 0 < scale.high
        else '<span style="flex:1"></span>'
    )
    st.html(
        f'<div class="lima-colour-scale" style="width:{width}px;max-width:100%;font-size:0.8rem;'
        f'color:var(--st-text-color, inherit)">'
        f'<div style="height:12px;border-radius:3px;background:{scale.css_gradient()};'
        f'border:1px solid rgba(128,128,128,0.35)"></div>'
        f'<div style="display:flex;justify-content:space-between;gap:8px;margin-top:2px">'
        f"<span>{number(scale.low)} · {low}</span>{mid}<span>{high} · {number(scale.high)}</span></div></div>"
    )
