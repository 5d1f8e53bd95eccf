"""Issue #11 in a real browser: the in-browser step player, the presenter view (light and dark,
1280×720 and 1920×1080), the playlist, and what-if by hand with its share link."""

from __future__ import annotations

import pytest
from browser_helpers import screenshot, wait_for_run

pytestmark = pytest.mark.e2e
CAT = "dd199df0a1b8725b41be"  # the real Lite0 run saved by version 0.1 (25 regions)
TINY = "4d8547f28884f8a5cd2d"
PLAYER = ".lp-inline[data-lima-step]"


def step_of(page, selector: str = PLAYER) -> int:
    return int(page.locator(selector).get_attribute("data-lima-step"))


def test_keys_play_and_the_curve_step_in_the_browser(page, server_url):
    page.goto(f"{server_url}/Explain?run={CAT}&step=3")
    player = page.locator(PLAYER)
    player.wait_for(timeout=240_000)  # the first page of a cold server loads the model
    wait_for_run(page)
    assert step_of(page) == 3
    assert page.locator(".lp-inline [aria-live]").inner_text().startswith("Step 3 of 25")
    player.focus()
    page.keyboard.press("ArrowRight")
    assert step_of(page) == 4  # no server round trip in between
    page.keyboard.press("End")
    assert step_of(page) == 25
    page.keyboard.press("ArrowRight")  # clamped at the last step
    assert step_of(page) == 25
    page.keyboard.press("Home")
    assert step_of(page) == 0
    page.keyboard.press("ArrowLeft")
    assert step_of(page) == 0
    # The server hears the step once the viewer stops: the share link follows.
    page.wait_for_function("() => /\\bstep=0\\b/.test(location.search)", timeout=15_000)
    # Space plays and pauses.
    page.locator(".lp-inline .lp-speed").select_option("10")
    page.keyboard.press(" ")
    page.wait_for_function("() => document.querySelector('#root') !== null", timeout=5_000)  # let it run for a moment
    page.wait_for_timeout(700)
    page.keyboard.press(" ")
    assert player.get_attribute("data-lima-playing") == "false"
    stopped = step_of(page)
    assert 2 <= stopped <= 25
    page.wait_for_function(f"() => /\\bstep={stopped}\\b/.test(location.search)", timeout=15_000)
    # Clicking the curve near an area picks the step at that area.
    curve = page.locator(".lp-inline .lp-curve")
    box = curve.bounding_box()
    curve.click(position={"x": box["width"] * 0.1, "y": box["height"] * 0.5})  # ~0 % area: step 0 or 1
    assert step_of(page) <= 1


def test_the_presenter_view_fills_the_screen_in_both_themes(browser, server_url):
    for (width, height), scheme in (((1280, 720), "light"), ((1920, 1080), "dark"), ((1280, 720), "dark")):
        ctx = browser.new_context(viewport={"width": width, "height": height}, color_scheme=scheme)
        page = ctx.new_page()
        page.goto(f"{server_url}/Explain?run={CAT}&view=present&step=12")
        player = page.locator(".lp-present[data-lima-step]")
        player.wait_for(timeout=90_000)
        wait_for_run(page)
        page.wait_for_timeout(500)
        assert step_of(page, ".lp-present[data-lima-step]") == 12
        assert not page.locator("[data-testid='stSidebar']").is_visible()
        assert page.get_by_text("Set up another run").count() == 0
        image = page.locator(".lp-present .lp-canvas").bounding_box()
        assert image["height"] >= 0.6 * height and image["y"] + image["height"] <= height  # big, and on screen
        controls = page.locator(".lp-present .lp-controls").bounding_box()
        assert controls["y"] + controls["height"] <= height  # nothing clipped
        leave = page.get_by_text("Leave the presenter view").bounding_box()
        assert leave["y"] + leave["height"] <= height  # the way out too, with no scrolling
        overflow = page.locator(".lp-present .lp-axis text", has_text="100%").evaluate(
            "t => t.getBoundingClientRect().right - t.ownerSVGElement.getBoundingClientRect().right"
        )
        assert overflow <= 0  # the last tick label is inside the curve's box (an SVG clips the rest)
        rows = page.locator(".lp-present .lp-top li:visible").count()
        assert f"Top {rows} at this step" in page.locator(".lp-present .lp-readout").inner_text()
        caption = page.locator(".lp-present .lp-caption")
        assert "region 18 added: p(tabby)" in caption.inner_text()
        assert float(caption.evaluate("e => parseFloat(getComputedStyle(e).fontSize)")) >= 17
        background = page.locator("[data-testid='stApp']").evaluate("e => getComputedStyle(e).backgroundColor")
        channels = [int(c) for c in background[background.index("(") + 1 : background.index(")")].split(",")[:3]]
        assert (sum(channels) < 150) == (scheme == "dark")  # the browser's preference is followed
        screenshot(page, f"presenter_{width}x{height}_{scheme}")
        ctx.close()


def test_pagedown_steps_through_the_playlist(page, server_url):
    page.goto(f"{server_url}/Explain?run={CAT}&view=present&playlist={CAT}.{TINY}")
    page.locator(".lp-present[data-lima-step]").wait_for(timeout=90_000)
    wait_for_run(page)
    page.keyboard.press("PageDown")
    page.wait_for_function(f"() => location.search.includes('run={TINY}')", timeout=30_000)
    wait_for_run(page)
    assert page.locator(".lp-present .lp-range").get_attribute("max") == "16"  # the tiny run's 16 regions
    page.keyboard.press("PageUp")
    page.wait_for_function(f"() => location.search.includes('run={CAT}')", timeout=30_000)


def test_leaving_the_presenter_view_leaves_it_in_the_address_bar_too(page, server_url):
    page.goto(f"{server_url}/Explain?run={CAT}&view=present&step=7")
    page.locator(".lp-present[data-lima-step]").wait_for(timeout=90_000)
    wait_for_run(page)
    page.get_by_text("Leave the presenter view").click()
    page.locator(PLAYER).wait_for(timeout=60_000)
    assert step_of(page) == 7
    page.wait_for_function("() => !location.search.includes('view=present')", timeout=15_000)
    page.reload()  # a reload (or the copied address) stays on the Explain page
    page.locator(PLAYER).wait_for(timeout=60_000)
    assert page.locator(".lp-present").count() == 0


def test_what_if_toggles_regions_scores_them_and_shares_them(page, server_url, browser):
    page.goto(f"{server_url}/Explain?run={CAT}")
    canvas = page.locator(".lp-whatif .lp-canvas")
    canvas.wait_for(timeout=90_000)
    wait_for_run(page)
    canvas.scroll_into_view_if_needed()
    root = page.locator(".lp-whatif")
    before = root.get_attribute("data-lima-shown")
    box = canvas.bounding_box()
    canvas.click(position={"x": box["width"] * 0.5, "y": box["height"] * 0.5})
    after = root.get_attribute("data-lima-shown")
    assert after != before  # toggled at once in the browser
    page.wait_for_function("() => document.querySelector('.lp-whatif') === null || true", timeout=1_000)
    page.locator(".lp-whatif[data-lima-pending='false']").wait_for(timeout=60_000)
    assert "The model now predicts" in page.locator(".lp-whatif .lp-readout").inner_text()
    page.wait_for_function(
        "(shown) => new URLSearchParams(location.search).get('shown') === shown", arg=after, timeout=15_000
    )
    screenshot(page, "whatif")
    other = browser.new_context(viewport={"width": 1440, "height": 1200}).new_page()
    other.goto(page.url)
    other.locator(".lp-whatif[data-lima-pending='false']").wait_for(timeout=90_000)
    assert other.locator(".lp-whatif").get_attribute("data-lima-shown") == after
    other.context.close()
