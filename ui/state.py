"""Session state: the user's choices, kept across pages.

The app uses Streamlit's directory-based multipage mode (``pages/``), where a widget's value is
dropped when a page that does not draw it runs. Choices therefore live under plain data keys
("shadow keys"); widgets use ``_``-prefixed keys, start from the data key, and copy their value
back in ``on_change``.
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
    apply_pending_widgets()


def get(key: str) -> Any:
    init_state()
    return st.session_state[key]


def put(key: str, value: Any) -> None:
    st.session_state[key] = value


def shadow(widget_key: str, data_key: str):
    """An on_change callback copying a widget's value into its data key."""
    def copy() -> None:
        st.session_state[data_key] = st.session_state[widget_key]
    return copy


def seed_widget(widget_key: str, value: Any) -> None:
    """Give a widget its value from the data key before it is drawn (once per page visit)."""
    if widget_key not in st.session_state:
        st.session_state[widget_key] = value


def set_widget_later(widget_key: str, value: Any) -> None:
    """Set a widget's value on the next run (a drawn widget's state cannot change in this run)."""
    st.session_state.setdefault("_pending_widgets", {})[widget_key] = value


def apply_pending_widgets() -> None:
    """Apply values from :func:`set_widget_later`; call before any widget is drawn."""
    for key, value in st.session_state.pop("_pending_widgets", {}).items():
        st.session_state[key] = value


def flash(kind: str, message: str) -> None:
    """A message shown once on the next full run (e.g. from a poller that triggers st.rerun)."""
    st.session_state.setdefault("_flash", []).append((kind, message))


def show_flash() -> None:
    for kind, message in st.session_state.pop("_flash", []):
        getattr(st, kind)(message)
