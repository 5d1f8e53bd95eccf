"""Page set-up shared by app.py and every file in pages/, and the pages' error boundary."""

from __future__ import annotations

import importlib
import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import streamlit as st

from explainer.errors import LimaError
from ui import components, sidebar, state
from ui.text import md_message

APP_TITLE = "LiMA Lens"
EXPLAIN_PAGE = "pages/2_Explain.py"
ERRORS_PAGE = "pages/1_Find_errors.py"
RUNS_PAGE = "pages/3_Runs.py"
SCORECARD_PAGE = "pages/5_Scorecard.py"
STUDY_PAGE = "pages/6_Study.py"
COHORTS_PAGE = "pages/4_Cohorts.py"
HOME_PAGE = "app.py"
# Served by the app itself: a ":material/…:" page icon makes the browser fetch the favicon from
# an outside font host, and nothing the app does may need a host other than this one.
FAVICON = Path(__file__).resolve().parents[1] / "assets" / "favicon.png"

_LOG = logging.getLogger("lima_lens.ui")

_CSS = """
<style>
/* Tighter top padding; galleries with even cards. */
.block-container {padding-top: 2.2rem;}
div[data-testid="stCaptionContainer"] p {margin-bottom: 0.1rem;}
</style>
"""


# Imported on a background thread when the server shows its first page: the Explain page's
# result view pulls in matplotlib and scipy (about 5 s of imports on a small CPU), which would
# otherwise be paid by the first click on Explain.
WARM_MODULES = ("ui.explain_result", "ui.presenter")
_warmed = threading.Event()


def _warm_up() -> None:
    for name in WARM_MODULES:
        try:
            importlib.import_module(name)
        except Exception:  # the page that needs it reports the error itself
            _LOG.debug("warm-up import of %s failed", name, exc_info=True)


def warm_up() -> None:
    """Start importing the heavy page modules in the background, once per process."""
    if not _warmed.is_set():
        _warmed.set()
        threading.Thread(target=_warm_up, name="lima-warm-up", daemon=True).start()


def setup(title: str) -> None:
    """set_page_config (first Streamlit call of every page), styles, session state."""
    st.set_page_config(page_title=f"{title} · {APP_TITLE}", page_icon=str(FAVICON), layout="wide")
    st.markdown(_CSS, unsafe_allow_html=True)
    state.init_state()
    warm_up()


@contextmanager
def boundary(what: str = "This page") -> Iterator[None]:
    """Show expected failures (:class:`LimaError`) as a clear message, and unexpected ones as a
    short note with an incident id while the traceback goes to the server log. Streamlit's own
    control flow (``st.stop``, ``st.rerun``, page switches) derives from BaseException and
    passes through untouched."""
    try:
        yield
    except LimaError as exc:
        st.error(md_message(exc), icon=":material/error:")
    except Exception:
        incident = uuid.uuid4().hex[:8]
        _LOG.exception("unexpected error in %s (incident %s)", what, incident)
        st.error(
            f"{what} hit an unexpected error (incident `{incident}`; the details are in the server "
            "log). Nothing was lost: saved runs and scans are on disk. Reload the page to go on.",
            icon=":material/error:",
        )


def render(title: str, body: Callable[[], None]) -> None:
    """A page: set-up, then ``body`` inside the error boundary."""
    setup(title)
    components.start_page()
    with boundary(f"The {title} page"):
        try:
            body()
        except components.StopPage:  # the page ended early (components.stop_page)
            pass
        sidebar.after_page()  # now that the page's own messages and progress panels are known
