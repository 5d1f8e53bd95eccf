"""Helpers for the browser tests (waiting for Streamlit, screenshots)."""

from __future__ import annotations

import os
from pathlib import Path

# Debian's Chromium, started the way this machine's closed network needs (no background
# connections, no component updates): the browser tests and the browser benchmarks use these.
CHROMIUM = os.environ.get("LIMA_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "tests" / "e2e" / "screenshots"


def wait_for_run(page, timeout_ms: int = 90_000) -> None:
    """Wait until Streamlit is connected and the script run has finished."""
    page.locator("[data-testid='stApp'][data-test-connection-state='CONNECTED']").wait_for(
        state="attached", timeout=timeout_ms
    )
    page.wait_for_timeout(300)
    page.locator("[data-testid='stApp'][data-test-script-state='notRunning']").wait_for(
        state="attached", timeout=timeout_ms
    )
    page.wait_for_timeout(300)


def screenshot(page, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
