"""Dashboard benchmark in a real browser (Playwright + Debian's Chromium).

Measures, on a fresh server with empty caches:
* Run -> result: from the click on "Run LiMA" (default settings, the first demo mistake) to the
  result on screen, and the engine's own wall time for that run;
* step latency: from a key press on the step slider to the new step image in the page, over
  many steps (median and 95th percentile).

Usage: python scripts/ui_bench.py [--steps 40] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
STEP_IMAGE = ".st-key-step_image [data-testid='stImage'] img"


def start_server(runs_dir: str | None = None) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cache = tempfile.mkdtemp(prefix="lima-uibench-")
    env = dict(os.environ, LIMA_RUNS_DIR=runs_dir or f"{cache}/runs", LIMA_SCANS_DIR=f"{cache}/scans")
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
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).status == 200:
                return proc, url
        except OSError:
            time.sleep(0.3)
    proc.terminate()
    raise SystemExit("server did not start")


def idle(page) -> None:
    page.locator("[data-testid='stApp'][data-test-script-state='notRunning']").wait_for(
        state="attached", timeout=120_000
    )


def measure(page, act, count: int) -> dict:
    """Milliseconds from an input to the new step image in the page, over ``count`` inputs."""
    latencies = []
    for i in range(count):
        before = page.locator(STEP_IMAGE).first.get_attribute("src")
        t0 = time.perf_counter()
        act(i)
        page.wait_for_function(
            f'(b) => document.querySelector("{STEP_IMAGE}").src !== b', arg=before, timeout=10_000, polling="raf"
        )
        latencies.append(1000 * (time.perf_counter() - t0))
        idle(page)
        page.wait_for_timeout(150)
    latencies.sort()
    return {
        "n": len(latencies),
        "median": round(statistics.median(latencies), 1),
        "p95": round(latencies[int(0.95 * (len(latencies) - 1))], 1),
        "max": round(latencies[-1], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--json")
    args = parser.parse_args()
    proc, url = start_server()
    out = {}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            page = browser.new_page(viewport={"width": 1440, "height": 1200})
            page.goto(f"{url}/Find_errors")
            page.get_by_role("button", name="Explain").first.wait_for(timeout=180_000)
            idle(page)
            page.get_by_role("button", name="Explain").first.click()
            run = page.get_by_role("button", name="Run LiMA")
            run.wait_for(timeout=120_000)
            idle(page)
            page.wait_for_timeout(1000)
            cost = page.get_by_text(re.compile(r"forward passes")).first.inner_text()
            start = time.perf_counter()
            run.click()
            page.get_by_text("Minimal subset").first.wait_for(timeout=600_000)
            out["run_to_result_s"] = time.perf_counter() - start
            out["cost_preview"] = cost
            idle(page)
            page.wait_for_timeout(1500)
            engine_time = page.locator("[data-testid='stMetric']").filter(has_text="Time").first.inner_text()
            out["engine_time"] = engine_time.replace("\n", " ")
            slider = page.locator(".st-key-step input[type='range']")
            n = int(slider.get_attribute("max"))
            slider.focus()
            slider.press("Home")
            idle(page)
            page.wait_for_timeout(800)
            out["step_latency_ms"] = {
                "slider_key": measure(page, lambda i: slider.press("ArrowRight"), min(args.steps, n)),
                "next_prev_buttons": measure(
                    page,
                    lambda i: page.locator(
                        ".st-key-step_next button" if i % 2 else ".st-key-step_prev button"
                    ).first.click(),
                    args.steps,
                ),
            }
            browser.close()
    finally:
        proc.terminate()
        proc.wait(15)
    print(json.dumps(out, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
