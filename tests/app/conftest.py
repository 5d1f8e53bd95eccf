"""AppTest fixtures: each test gets a fresh runs folder and a fresh job manager (nothing leaks
from one test to the next); an app is started from the entrypoint."""

from __future__ import annotations

import pytest
import streamlit as st
from app_helpers import new_app


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    from ui import resources

    monkeypatch.setenv("LIMA_RUNS_DIR", str(tmp_path / "runs"))  # settings are read at call time
    resources.job_manager().shutdown()
    resources.job_manager.clear()
    resources.forget_explanation()
    st.cache_data.clear()
    yield
    resources.job_manager().shutdown()
    resources.job_manager.clear()


@pytest.fixture
def app():
    return new_app()
