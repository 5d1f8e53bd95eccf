"""The engine is a pure package: importing all of it never imports streamlit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MODULES = "explainer, explainer.cli, explainer.scan, explainer.export, explainer.bench, explainer.sam, explainer.data"


def test_the_engine_never_imports_streamlit():
    code = f"import {MODULES}; import sys; print('streamlit' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_the_check_can_see_streamlit_when_it_is_imported():
    """The same probe reports True once streamlit is imported (so the test above can fail)."""
    code = "import importlib.util, sys\n" \
           "if importlib.util.find_spec('streamlit') is None: print('absent')\n" \
           "else:\n import streamlit; print('streamlit' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() in ("True", "absent")


def test_no_engine_module_mentions_streamlit():
    for path in (ROOT / "explainer").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "import streamlit" not in text and "from streamlit" not in text, path.name
