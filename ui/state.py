"""Session data that is not a widget's value: this session's uploads, chosen image, jobs, run.

Widget values (the sidebar's model and image set, the Explain page's settings) keep themselves
across page switches with ``persist_state="session"`` (plus :func:`keep_widgets` for widgets drawn
on a page that switches pages from a button); what is here is set by code (a button on one page
choosing the image of another, the key of a running job) and read by several pages.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

DEFAULTS: dict[str, Any] = {
    "uploads": (),  # ImageItems uploaded in this session
    "item_key": None,  # the image chosen for the Explain page
    "scan_job": None,  # key of this session's scan job
    "search_job": None,  # key of this session's search job
    "sam_job": None,
    "scorecard_job": None,  # key of this session's scorecard job
    "study_job": None,  # key of this session's study build
    "cohort_job": None,  # key of this session's cohort batch job
    "run_key": None,  # the finished run shown on the Explain page
    "step_run": None,  # the run whose step the player holds
    "partition_jobs": (),  # keys of this session's partition-comparison searches
    "upload_times": (),  # when this session uploaded photos (the public demo's hourly limit)
}


def session_id() -> str:
    """This browser session's id (jobs record who waits for them): a random id kept in the
    session's state (one per tab; also one per AppTest, whose script context id is shared)."""
    import uuid

    return st.session_state.setdefault("_lima_session", uuid.uuid4().hex)


def init_state() -> None:
    for key, value in DEFAULTS.items():
        st.session_state.setdefault(key, value)


def get(key: str) -> Any:
    init_state()
    return st.session_state[key]


def put(key: str, value: Any) -> None:
    st.session_state[key] = value


def keep_widgets(keys) -> None:
    """Write these widgets' values back into session state before the widgets are drawn.

    A page switch from a button (``st.switch_page``: a gallery card's Explain, Saved runs' Open)
    ends the run before Streamlit carries the values of the widgets drawn in it over, and they
    came back at their defaults when drawn again on the next page (the sidebar's image set fell
    back to the demo). The same write in the next run, before the widgets exist, makes them adopt it;
    it changes no value. Only for widgets that accept a session-state value (not buttons)."""
    for key in list(keys):
        if key in st.session_state:
            st.session_state[key] = st.session_state[key]
