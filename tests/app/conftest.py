"""AppTest fixtures: a fresh data cache per test, an app started from the entrypoint."""

from __future__ import annotations

import pytest
import streamlit as st

from app_helpers import new_app


@pytest.fixture(autouse=True)
def _fresh_data_cache():
    st.cache_data.clear()
    yield


@pytest.fixture
def app():
    return new_app()
