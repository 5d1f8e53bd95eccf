"""The main flow in a real browser: find a mistake, explain it, step, share, export."""

from __future__ import annotations

import io
import json
import re
import zipfile

import pytest
from browser_helpers import screenshot, wait_for_run
from PIL import Image

pytestmark = pytest.mark.e2e
PLAYER = ".lp-inline[data-lima-step]"


def step_shown(page) -> int:
    """The step the in-browser player shows (its ``data-lima-step``; 0 is the empty image)."""
    return int(page.locator(PLAYER).get_attribute("data-lima-step"))


def test_home_page(page, server_url):
    page.goto(server_url)
    wait_for_run(page)
    assert page.get_by_role("heading", name="LiMA Lens").is_visible()
    assert page.get_by_text("efficientnet_lite0").first.is_visible()
    screenshot(page, "home")


def test_find_a_mistake_explain_step_share_and_export(page, server_url, browser):
    # 1. Find errors: the scan runs in the background, then the gallery lists the mistakes.
    page.goto(f"{server_url}/Find_errors")
    explain_buttons = page.get_by_role("button", name="Explain")
    explain_buttons.first.wait_for(timeout=120_000)
    wait_for_run(page)
    assert page.get_by_text("Accuracy").first.is_visible()
    screenshot(page, "find_errors")

    # 2. Open the most confidently wrong image on the Explain page.
    explain_buttons.first.click()
    page.wait_for_url(re.compile(r".*/Explain\?image=.*"), timeout=60_000)
    wait_for_run(page)
    assert page.get_by_text("predicted").first.is_visible()
    run = page.get_by_role("button", name=re.compile("Run LiMA|Open saved run"))
    run.wait_for(timeout=60_000)
    screenshot(page, "explain_setup")

    # 3. Run with the default CPU settings (superpixels), wait for the result.
    run.click()
    page.get_by_text("Minimal subset").first.wait_for(timeout=240_000)
    wait_for_run(page)
    page.wait_for_url(re.compile(r".*run=.*step=\d+"), timeout=30_000)
    screenshot(page, "explain_result")
    player = page.locator(PLAYER)
    player.wait_for(timeout=30_000)
    n = int(page.locator(".lp-inline .lp-range").get_attribute("max"))

    # 4. Step with the keyboard, then by clicking the insertion curve; the URL follows once stopped.
    player.focus()
    page.keyboard.press("Home")
    page.wait_for_function("() => /\\bstep=0\\b/.test(location.search)", timeout=15_000)
    for _ in range(2):
        page.keyboard.press("ArrowRight")
    assert step_shown(page) == 2  # at once, in the browser
    page.wait_for_function("() => /\\bstep=2\\b/.test(location.search)", timeout=15_000)
    curve = page.locator(".lp-inline .lp-curve")
    box = curve.bounding_box()
    curve.click(position={"x": box["width"] * 0.999, "y": box["height"] * 0.5})  # the right end: the full image
    assert step_shown(page) == n
    page.wait_for_timeout(300)
    page.keyboard.press("Home")
    for _ in range(5):
        page.keyboard.press("ArrowRight")
    page.wait_for_function("() => /\\bstep=5\\b/.test(location.search)", timeout=15_000)
    wait_for_run(page)
    assert step_shown(page) == 5
    screenshot(page, "explain_step5")

    # 5. The share link opens exactly this view in a new page.
    link = page.locator("[data-testid='stCode'] code").filter(has_text="run=").first.inner_text().strip()
    assert "step=5" in link
    other = browser.new_context(viewport={"width": 1440, "height": 1200}).new_page()
    other.goto(link)
    other.locator(PLAYER).wait_for(timeout=60_000)
    wait_for_run(other)
    assert step_shown(other) == 5
    other.context.close()

    # 6. Export the PNG of the view and the result (JSON + NPZ), each with provenance.
    with page.expect_download(timeout=60_000) as dl:
        page.get_by_role("button", name="PNG of this view").click()
    png = Image.open(dl.value.path())
    assert png.format == "PNG" and png.size[0] >= 224
    provenance = json.loads(png.text["Provenance"])
    assert provenance["model_id"] == "efficientnet_lite0" and provenance["image_sha256"]
    with page.expect_download(timeout=60_000) as dl:
        page.get_by_role("button", name="Result (JSON + NPZ)").click()
    with zipfile.ZipFile(io.BytesIO(open(dl.value.path(), "rb").read())) as z:
        names = set(z.namelist())
        assert {"explanation.json", "explanation.npz", "provenance.json", "curves.csv"} <= names
        doc = json.loads(z.read("explanation.json"))
    assert doc["summary"]["n_regions"] == n and len(doc["summary"]["insertion"]) == n + 1


def test_runs_page_lists_the_run(page, server_url):
    page.goto(f"{server_url}/Runs")
    wait_for_run(page)
    screenshot(page, "runs")
    assert page.get_by_role("heading", name="Saved runs").is_visible()
