"""The Cohorts page in a real browser: the demo's mistakes explained as one background batch (9 grid
regions), the gallery of minimal subsets, and one image opened on the Explain page."""

from __future__ import annotations

import re

import pytest
from browser_helpers import screenshot, wait_for_run

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_a_cohort_of_the_demo_mistakes(page, server_url):
    page.goto(f"{server_url}/Find_errors")  # the cohort comes from the scan
    page.get_by_role("button", name="Explain").first.wait_for(timeout=120_000)
    page.goto(f"{server_url}/Cohorts")
    wait_for_run(page)
    page.get_by_text("All mistakes").click()
    wait_for_run(page)
    page.locator(".st-key-co_regions").click()
    page.get_by_role("option", name="Square grid").click()
    wait_for_run(page)
    page.get_by_text("Region parameters").click()
    slider = page.locator(
        ".st-key-co_rp_grid_cells_per_side input[type='range'], .st-key-co_rp_grid_cells_per_side [role='slider']"
    ).first
    slider.focus()
    slider.press("Home")
    wait_for_run(page)
    for _ in range(2):
        slider.press("ArrowRight")
        page.wait_for_timeout(300)
    wait_for_run(page)
    page.get_by_role("button", name="Explain the cohort").click()
    page.get_by_text("Median subset").first.wait_for(timeout=300_000)
    wait_for_run(page)
    heading = page.get_by_role("heading", name=re.compile(r"^\d+ images")).inner_text()
    count = int(heading.split()[0])
    links = page.get_by_role("link", name="Open in Explain")
    assert count >= 1 and links.count() == count
    assert page.get_by_text(re.compile(r"\d+/9 regions")).count() == count  # every image at 9 regions
    screenshot(page, "cohorts")
    links.first.click()
    page.wait_for_url(re.compile(r".*/Explain\?run=.*"), timeout=60_000)
    page.get_by_text("Minimal subset").first.wait_for(timeout=60_000)
