"""Page set-up shared by app.py and every file in pages/."""

from __future__ import annotations

import streamlit as st

from ui import state

APP_TITLE = "LiMA Lens"
EXPLAIN_PAGE = "pages/2_Explain.py"
ERRORS_PAGE = "pages/1_Find_errors.py"
RUNS_PAGE = "pages/3_Runs.py"
HOME_PAGE = "app.py"

_CSS = """
<style>
/* Tighter top padding; galleries with even cards. */
.block-container {padding-top: 2.2rem;}
div[data-testid="stCaptionContainer"] p {margin-bottom: 0.1rem;}
</style>
"""


def setup(title: str, icon: str = ":material/frame_inspect:") -> None:
    """set_page_config (first Streamlit call of every page), styles, session state."""
    st.set_page_config(page_title=f"{title} · {APP_TITLE}", page_icon=icon, layout="wide")
    st.markdown(_CSS, unsafe_allow_html=True)
    state.init_state()
