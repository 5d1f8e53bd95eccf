"""Browser tests: a real `streamlit run` server and Playwright driving Debian's Chromium.

Skipped when Chromium (/usr/bin/chromium) or Playwright is missing; `playwright install` is
never used (it would download a browser).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
from browser_helpers import CHROMIUM, CHROMIUM_ARGS

ROOT = Path(__file__).resolve().parents[2]

sync_api = pytest.importorskip("playwright.sync_api")
if not (Path(CHROMIUM).exists() or shutil.which("chromium")):
    pytest.skip("Debian's chromium is not installed (apt-get install chromium)", allow_module_level=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


FIXTURE_RUNS = ROOT / "tests" / "fixtures" / "runs_v0_1"


@pytest.fixture(scope="session")
def server_cache():
    """The server's cache folder; it starts with the runs saved by version 0.1 (old share links)."""
    cache = Path(tempfile.mkdtemp(prefix="lima-e2e-"))
    shutil.copytree(FIXTURE_RUNS, cache / "runs")
    return cache


@contextlib.contextmanager
def streamlit_server(cache: Path, extra_env: dict | None = None):
    """A fresh ``streamlit run app.py`` on a free loopback port with its own cache folders;
    yields its URL and stops it afterwards."""
    port = _free_port()
    env = dict(
        os.environ,
        LIMA_RUNS_DIR=f"{cache}/runs",
        LIMA_SCANS_DIR=f"{cache}/scans",
        LIMA_SAM_DIR=f"{cache}/sam",
        LIMA_DATA_ROOT=f"{cache}/data",
        **(extra_env or {}),
    )
    env.pop("LIMA_SAM_CHECKPOINT", None)
    log = open(Path(cache) / f"server-{port}.log", "w")  # noqa: SIM115 - closed in the finally below
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "app.py",
            "--server.port",
            str(port),
            "--server.address",
            "127.0.0.1",
            "--server.headless",
            "true",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while time.time() < deadline:
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).status == 200:
                    break
            except OSError:
                time.sleep(0.3)
        else:
            pytest.fail("the Streamlit server did not start")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:  # a busy machine: a background job may hold it up
            proc.kill()
            proc.wait(15)
        log.close()


@pytest.fixture(scope="session")
def server_url(server_cache):
    with streamlit_server(server_cache) as url:
        yield url


@pytest.fixture(scope="session")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium"), args=CHROMIUM_ARGS
        )
        yield b
        b.close()


@pytest.fixture
def page(browser):
    ctx = browser.new_context(viewport={"width": 1440, "height": 1200}, accept_downloads=True)
    pg = ctx.new_page()
    yield pg
    ctx.close()
