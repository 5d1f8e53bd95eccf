"""The presenter view, ``/Explain?run=KEY&view=present``: the image and the curve fill the screen.

No sidebar, set-up, metrics row or exports: a title line, the step player at the photo's own
resolution with a caption per step, and a footer. PageUp/PageDown go through a playlist of
saved runs (``&playlist=KEY1.KEY2…``, or every saved run, newest first, when absent).
"""

from __future__ import annotations

import streamlit as st

from explainer.store import RunStore, is_run_key
from ui import explain_result, player, resources, sidebar
from ui.text import md, shorten

VIEW_PARAM, PRESENT = "view", "present"
PLAYLIST_PARAM = "playlist"
MAX_PLAYLIST = 200

_CSS = """
<style>
section[data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"], [data-testid="stSidebarCollapseButton"],
header[data-testid="stHeader"], [data-testid="stToolbar"], [data-testid="stDecoration"] {display: none !important;}
.block-container {padding: 0.8rem 2rem 0.4rem !important; max-width: 100% !important;}
.st-key-lima-present-title p {font-size: clamp(1.1rem, 1.9vw, 1.8rem); font-weight: 600; margin: 0;
  white-space: nowrap; overflow: hidden; text-overflow: ellipsis;}  /* one line: the stage's height counts on it */
</style>
"""


def requested() -> bool:
    """Whether the URL asks for the presenter view."""
    return st.query_params.get(VIEW_PARAM) == PRESENT


def playlist(runs: RunStore) -> list[str]:
    """The runs PageUp/PageDown go through: the link's ``playlist`` (saved runs only, in its
    order), else every saved run, newest first."""
    text = st.query_params.get(PLAYLIST_PARAM)
    if text:
        keys = [k for k in text.split(".")[:MAX_PLAYLIST] if is_run_key(k)]
        return list(dict.fromkeys(k for k in keys if runs.has(k)))
    rows = sorted(runs.list(), key=lambda row: row.get("created") or "", reverse=True)
    return [row["key"] for row in rows[:MAX_PLAYLIST]]


def link_params(key: str, step: int | None = None, hidden: str = "black") -> dict[str, str]:
    """Query parameters of the presenter view of run ``key`` (the playlist and a dimmed look ride
    along)."""
    params = {"run": key, VIEW_PARAM: PRESENT}
    if step is not None:
        params["step"] = str(step)
    if hidden != "black":
        params["hidden"] = hidden
    if st.query_params.get(PLAYLIST_PARAM):
        params[PLAYLIST_PARAM] = st.query_params[PLAYLIST_PARAM]
    return sidebar.with_set(params)


def show(runs: RunStore, key: str) -> None:
    """Draw the presenter view of the saved run ``key``."""
    st.markdown(_CSS, unsafe_allow_html=True)
    exp = resources.explanation(key)
    explain_result.init_step(exp, key)
    keys = playlist(runs)
    label = exp.source.get("label")
    truth = f" · true {md(exp.class_name(int(label)))}" if label is not None else ""
    name = shorten(exp.source.get("name", "image"), 40)  # the title keeps one line (the stage's height counts on it)
    with st.container(key="lima-present-title"):
        st.markdown(
            f"{md(name)}{truth} · predicted {md(exp.class_name(exp.full_prediction))} "
            f"· explaining {md(exp.class_name(exp.target))}"
        )
    # The look is the link's (hidden=dim, as on the Explain page; the address bar keeps it).
    hidden = explain_result.hidden_look(st.query_params.get("hidden"))
    state = player.step_player(
        exp, key, st.session_state[explain_result.STEP_KEY], hidden, "present", resources.source_view(key)
    )
    if state["goto"] in ("next", "prev") and keys:
        at = keys.index(key) if key in keys else -1
        nxt = keys[(at + (1 if state["goto"] == "next" else -1)) % len(keys)]
        st.query_params.from_dict(link_params(nxt, hidden=hidden))
        st.session_state.pop("step_run", None)  # the next run opens at its own link step or subset
        st.rerun()
    if state["step"] is not None:
        st.session_state[explain_result.STEP_KEY] = min(max(int(state["step"]), 0), exp.n_regions)
    step = st.session_state[explain_result.STEP_KEY]
    params = link_params(key, step, hidden)
    if dict(st.query_params) != params:
        st.query_params.from_dict(params)
    position = f"run {keys.index(key) + 1} of {len(keys)} · PageUp/PageDown: other runs · " if key in keys else ""
    left, right = st.columns([4, 1], vertical_alignment="center")
    left.caption(f"{position}← → step · space plays · {md(exp.readout())}")
    right.button("Leave the presenter view", icon=":material/close_fullscreen:", on_click=_leave, key="leave_present")


def _leave() -> None:
    """Button callback: back to the Explain page at the same run and step. (A link to this same
    page left ``view=present`` in the browser's address bar, so a reload went back here.)"""
    for name in (VIEW_PARAM, PLAYLIST_PARAM):
        st.query_params.pop(name, None)
