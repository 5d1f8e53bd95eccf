"""The sidebar's "Running now" names the jobs the page does not show in a progress panel of its
own: a job the page shows is polled by its panel already (every poll makes the browser draw the
page again), and a job the page does not show (another page's scan, another session's run) stays
visible, live."""

from __future__ import annotations

import threading
import uuid

from streamlit.testing.v1 import AppTest


def _script():
    import streamlit as st

    from ui import components, resources, sidebar, state

    gate, names = st.session_state["gate"], st.session_state["names"]

    def make_iter():
        gate.wait(60)
        yield from ()

    manager = resources.job_manager()
    if state.get("search_job") is None:
        mine = manager.submit(names["mine"], "search", names["mine"], make_iter, watcher=state.session_id())
        state.put("search_job", mine.key)
        if "other" in names:  # a scan that this page has no panel for
            manager.submit(names["other"], "scan", names["other"], make_iter)
    components.start_page()
    with st.sidebar:
        sidebar._running_jobs()
    components.job_panel("search_job")
    sidebar.running_jobs()


def _run(with_other: bool) -> tuple[AppTest, threading.Event, dict]:
    gate = threading.Event()
    names = {"mine": f"my run {uuid.uuid4().hex[:6]}"}
    if with_other:
        names["other"] = f"their scan {uuid.uuid4().hex[:6]}"
    at = AppTest.from_function(_script, default_timeout=30)
    at.session_state["gate"], at.session_state["names"] = gate, names
    return at.run(), gate, names


def _sidebar_text(at: AppTest) -> str:
    return "\n".join(c.value for c in at.sidebar.caption)


def test_a_job_the_page_shows_is_not_polled_again_by_the_sidebar():
    at, gate, names = _run(with_other=False)
    try:
        assert not at.exception
        assert any(names["mine"] in p.proto.text for p in at.get("progress"))  # the page's panel
        assert names["mine"] not in _sidebar_text(at)
    finally:
        gate.set()


def test_a_job_the_page_does_not_show_stays_in_the_sidebar():
    at, gate, names = _run(with_other=True)
    try:
        assert not at.exception
        sidebar = _sidebar_text(at)
        assert f"{names['other']} (0 %)" in sidebar and names["mine"] not in sidebar
        assert any(names["mine"] in p.proto.text for p in at.get("progress"))
    finally:
        gate.set()


def _stopping_page():
    import streamlit as st

    from ui import components, page, resources, sidebar

    gate, name = st.session_state["gate"], st.session_state["name"]

    def make_iter():
        gate.wait(60)
        yield from ()

    resources.job_manager().submit(name, "scan", name, make_iter)

    def body() -> None:
        with st.sidebar:
            sidebar._running_jobs()
        st.markdown("before the stop")
        components.stop_page()  # e.g. Find errors before its first scan
        st.markdown("never drawn")

    page.render("Stopping", body)


def test_a_page_that_ends_early_still_shows_what_runs_in_the_sidebar():
    gate = threading.Event()
    name = f"their scan {uuid.uuid4().hex[:6]}"
    at = AppTest.from_function(_stopping_page, default_timeout=30)
    at.session_state["gate"], at.session_state["name"] = gate, name
    try:
        at.run()
        assert not at.exception, at.exception
        shown = [m.value for m in at.main.markdown]
        assert "before the stop" in shown and "never drawn" not in shown
        assert f"{name} (0 %)" in _sidebar_text(at)  # drawn after the page stopped
    finally:
        gate.set()
