"""Links people paste into papers and slides, and the sidebar's choices, in a real browser.

A fresh server is started for the first test, and the very first request is a deep link to a
run saved by version 0.1: it must open that run at that step (in directory-based multipage mode
a deep link to a page works on a cold server; see the design notes)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from browser_helpers import screenshot, wait_for_run
from conftest import FIXTURE_RUNS, streamlit_server

pytestmark = pytest.mark.e2e
OLD_RUN = "dd199df0a1b8725b41be"


@pytest.fixture(scope="module")
def fresh_server():
    cache = Path(tempfile.mkdtemp(prefix="lima-e2e-fresh-"))
    shutil.copytree(FIXTURE_RUNS, cache / "runs")
    with streamlit_server(cache) as url:
        yield url


def test_an_old_share_link_opens_the_run_and_step_on_a_fresh_server(browser, fresh_server):
    ctx = browser.new_context(viewport={"width": 1440, "height": 1000})
    page = ctx.new_page()
    page.goto(f"{fresh_server}/Explain?run={OLD_RUN}&step=7")  # the server's very first request
    player = page.locator(".lp-inline[data-lima-step]")
    player.wait_for(timeout=90_000)
    wait_for_run(page)
    assert player.get_attribute("data-lima-step") == "7"
    assert page.locator(".lp-inline .lp-range").get_attribute("max") == "25"
    assert "run=" + OLD_RUN in page.url and "step=7" in page.url
    assert page.get_by_text("Chelsea the cat").first.is_visible()
    # The sidebar is the app's own (Home, Find errors, Explain, Saved runs), not the legacy list.
    nav = page.locator("[data-testid='stSidebar'] [data-testid='stPageLink-NavLink']").all_inner_texts()
    assert [n.strip().splitlines()[-1] for n in nav] == [
        "Home",
        "Find errors",
        "Explain",
        "Saved runs",
        "Scorecard",
        "Study",
        "Cohorts",
    ]
    assert page.locator("[data-testid='stSidebarNavItems']").count() == 0  # no legacy page list
    screenshot(page, "old_link_fresh_server")
    ctx.close()


@pytest.mark.parametrize("path", ["/", "/Find_errors", "/Explain", "/Runs", "/Cohorts", "/Scorecard", "/Study"])
def test_every_page_url_works_on_its_own(browser, fresh_server, path):
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    page.goto(fresh_server + path)
    wait_for_run(page)
    heading = {
        "/": "LiMA Lens",
        "/Find_errors": "Find errors",
        "/Explain": "Explain",
        "/Runs": "Saved runs",
        "/Cohorts": "Cohorts",
        "/Scorecard": "Scorecard",
        "/Study": "Study",
    }[path]
    assert page.get_by_role("heading", name=heading).first.is_visible()
    assert page.locator("[data-testid='stException']").count() == 0
    ctx.close()


def test_sidebar_choices_hold_across_page_switches(browser, fresh_server):
    ctx = browser.new_context(viewport={"width": 1440, "height": 1000})
    page = ctx.new_page()
    page.goto(fresh_server)
    wait_for_run(page)
    sidebar = page.locator("[data-testid='stSidebar']")
    sidebar.get_by_role("combobox", name="Image set").click()
    page.get_by_role("option", name="My uploads").click()
    wait_for_run(page)
    sidebar.get_by_role("combobox", name="Model").click()
    page.get_by_role("option", name="torchvision model").click()
    wait_for_run(page)
    name_box = sidebar.get_by_role("textbox", name="torchvision name")
    name_box.fill("mobilenet_v3_small")
    name_box.press("Enter")
    wait_for_run(page)
    for link in ("Find errors", "Saved runs", "Explain", "Home"):
        sidebar.get_by_test_id("stPageLink-NavLink").filter(has_text=link).click()
        page.wait_for_timeout(800)
        wait_for_run(page)
        assert sidebar.get_by_role("combobox", name="Image set").input_value() == "My uploads", link
        assert sidebar.get_by_role("combobox", name="Model").input_value() == "torchvision model", link
        assert sidebar.get_by_role("textbox", name="torchvision name").input_value() == "mobilenet_v3_small", link
    ctx.close()
