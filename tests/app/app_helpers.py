"""AppTest helpers: every page runs from the entrypoint (directory-based multipage mode)."""

from __future__ import annotations

import time

from helpers import ROOT
from streamlit.testing.v1 import AppTest


def new_app() -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    return at


def wait_until(at: AppTest, done, timeout_s: float = 120.0, step_s: float = 0.5) -> AppTest:
    """Rerun the app until ``done(at)`` holds (background jobs finish off the script thread)."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        at.run()
        assert not at.exception, at.exception
        if done(at):
            return at
        time.sleep(step_s)
    raise AssertionError("timed out waiting for the app")
