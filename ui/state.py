"""Session state: the user's choices and this session's jobs, kept across pages.

The app uses Streamlit's directory-based multipage mode (``pages/``), where a widget's value is
dropped when a page that does not draw it runs. Choices that every page needs therefore live
under plain data keys; the sidebar's widgets are re-seeded from them (see ``ui.sidebar``).
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from ui.resources import ModelChoice, SetChoice

DEFAULTS: dict[str, Any] = {
    "model_choice": ModelChoice(),
    "set_choice": SetChoice(),
    "uploads": (),              # ImageItems uploaded in this session
    "item_key": None,           # the image chosen for the Explain page
    "scan_job": None,           # key of this session's scan job
    "search_job": None,         # key of this session's search job
    "sam_job": None,
    "run_key": None,            # the finished run shown on the Explain page
    "step_run": None,           # the run whose step the slider holds
    "playing": False,
}


def init_state() -> None:
    for key, value in DEFAULTS.items():
        st.session_state.setdefault(key, value)


def get(key: str) -> Any:
    init_state()
    return st.session_state[key]


def put(key: str, value: Any) -> None:
    st.session_state[key] = value
