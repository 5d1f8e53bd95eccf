"""Browser benchmark of the step player and what-if (issue #11).

Starts ``streamlit run app.py`` on a free port (or uses --url), opens a saved run in Debian's
Chromium and measures, inside the page:

- key-to-frame latency: from the key press (the event's timestamp) to the first moment after the
  browser painted the new frame (a requestAnimationFrame, then a task), over ``--steps`` presses
  of → and ←;
- autoplay at 10 steps/s: the interval between steps and whether any step was skipped;
- what-if click-to-score latency: from the click on a region to the model's answer for the new
  subset on screen (a server rerun with one forward pass in between), over ``--clicks`` clicks.

Usage:
    python scripts/player_bench.py [--run KEY] [--runs-dir DIR] [--steps 40] [--clicks 12] [--json out.json]

Without --run it uses the real Lite0 run saved by version 0.1 under tests/fixtures/runs_v0_1.
Prints the median and p95 of each latency and the machine's load average.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
from browser_helpers import CHROMIUM, CHROMIUM_ARGS  # noqa: E402  (tests/e2e is on the path)

FIXTURE = ROOT / "tests" / "fixtures" / "runs_v0_1"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def summary(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "median_ms": round(statistics.median(values), 2),
        "p95_ms": round(percentile(values, 0.95), 2),
        "max_ms": round(max(values), 2),
    }


def start_server(runs_dir: Path, port: int) -> subprocess.Popen:
    env = dict(os.environ, LIMA_RUNS_DIR=str(runs_dir), LIMA_SCANS_DIR=str(runs_dir.parent / "scans"))
    return subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port), "--server.headless", "true"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wait_idle(page, timeout_ms: int = 120_000) -> None:
    page.locator("[data-testid='stApp'][data-test-script-state='notRunning']").wait_for(
        state="attached", timeout=timeout_ms
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", default="dd199df0a1b8725b41be", help="run key (default: the fixture's Lite0 run)")
    parser.add_argument("--runs-dir", help="runs folder holding the run (default: a copy of the fixtures)")
    parser.add_argument("--url", help="an already running app (default: start one)")
    parser.add_argument("--steps", type=int, default=40, help="key presses to time (≥ 30)")
    parser.add_argument("--clicks", type=int, default=12, help="what-if clicks to time")
    parser.add_argument("--json", help="write the numbers here")
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    server = None
    tmp = Path(tempfile.mkdtemp(prefix="lima-bench-"))
    if args.url:
        base = args.url.rstrip("/")
    else:
        runs = Path(args.runs_dir) if args.runs_dir else tmp / "runs"
        if not args.runs_dir:
            shutil.copytree(FIXTURE, runs)
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = start_server(runs, port)
        base = f"http://127.0.0.1:{port}"
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            for _ in range(60):
                try:
                    page.goto(f"{base}/Explain?run={args.run}", timeout=5_000)
                    break
                except Exception:
                    time.sleep(1)
            wait_idle(page)
            player = page.locator(".lp-inline[data-lima-step]")
            player.wait_for(timeout=60_000)
            page.wait_for_timeout(1500)
            n = int(page.locator(".lp-inline .lp-range").get_attribute("max"))
            player.focus()
            page.keyboard.press("Home")
            page.evaluate("window.__limaPlayer.latencies = []")
            keys = []
            for i in range(args.steps):
                forward = (i // n) % 2 == 0
                keys.append("ArrowRight" if forward else "ArrowLeft")
            for key in keys:
                before = player.get_attribute("data-lima-step")
                page.keyboard.press(key)
                page.wait_for_function(
                    "([el, b]) => el.getAttribute('data-lima-step') !== b",
                    arg=[player.element_handle(), before],
                    timeout=5_000,
                )
                page.wait_for_timeout(60)  # let the paint-timing callback run before the next press
            key_latency = page.evaluate("window.__limaPlayer.latencies.slice()")
            draws = page.evaluate("window.__limaPlayer.draws.slice()")

            # Autoplay at 10 steps/s from the first step to the last.
            page.keyboard.press("Home")
            page.locator(".lp-inline .lp-speed").select_option("10")
            page.evaluate("window.__limaPlayer.intervals = []")
            steps_seen = page.evaluate(
                """([el]) => { window.__limaSeen = []; const o = new MutationObserver(() =>
                    window.__limaSeen.push(Number(el.getAttribute('data-lima-step'))));
                    o.observe(el, {attributes: true, attributeFilter: ['data-lima-step']}); return 0; }""",
                [player.element_handle()],
            )
            page.locator(".lp-inline .lp-play").click()
            page.wait_for_function(
                "([el]) => el.getAttribute('data-lima-playing') === 'false'",
                arg=[player.element_handle()],
                timeout=60_000,
            )
            intervals = page.evaluate("window.__limaPlayer.intervals.slice(1)")
            steps_seen = page.evaluate("window.__limaSeen.slice()")
            skipped = sum(1 for a, b in zip(steps_seen, steps_seen[1:]) if b - a > 1)

            # What-if: click region centres one after another (hide, show, hide …).
            canvas = page.locator(".lp-whatif .lp-canvas")
            canvas.scroll_into_view_if_needed()
            page.wait_for_timeout(500)
            page.evaluate("window.__limaPlayer.whatif = []")
            whatif_root = page.locator(".lp-whatif")
            box = canvas.bounding_box()
            points = [(0.2 + 0.6 * ((i * 37) % 10) / 10, 0.2 + 0.6 * ((i * 53) % 10) / 10) for i in range(args.clicks)]
            for fx, fy in points:
                canvas.click(position={"x": box["width"] * fx, "y": box["height"] * fy})
                page.wait_for_function(
                    "([el]) => el.getAttribute('data-lima-pending') === 'false'",
                    arg=[whatif_root.element_handle()],
                    timeout=30_000,
                )
                page.wait_for_timeout(100)
            whatif_latency = page.evaluate("window.__limaPlayer.whatif.slice()")
            browser.close()
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=20)
        shutil.rmtree(tmp, ignore_errors=True)

    result = {
        "run": args.run,
        "regions": n,
        "key_to_frame": summary(key_latency),
        "draw": summary(draws),
        "autoplay_10_per_s": {
            **summary(intervals),
            "steps_shown": len(steps_seen),
            "skipped_steps": skipped,
            "target_interval_ms": 100,
        },
        "whatif_click_to_score": summary(whatif_latency),
        "load_average": os.getloadavg(),
    }
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
