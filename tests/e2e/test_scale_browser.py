"""#12 in a real browser: the chosen image set is carried in the URL, so a reload (a new
Streamlit session) and a copied link keep it."""

from __future__ import annotations

from urllib.parse import unquote

import numpy as np
import pytest
from browser_helpers import screenshot, wait_for_run
from PIL import Image

pytestmark = pytest.mark.e2e
SERVER_SET = "Folder, list or CSV on the server"


def _small_set(data_root) -> str:
    folder = data_root / "urlset"
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(3):
        Image.fromarray(np.full((16, 16, 3), 60 * i, np.uint8)).save(folder / f"pic{i}.png")
        lines.append(f"pic{i}.png {i}")
    (folder / "labels.txt").write_text("\n".join(lines) + "\n")
    return "urlset/labels.txt"


def _choose_server_set(page, path: str):
    """Choose "a folder, list or CSV on the server" in the sidebar and type ``path``; returns the path box."""
    sidebar = page.locator("[data-testid='stSidebar']")
    sidebar.get_by_role("combobox", name="Image set").click()
    page.get_by_role("option", name=SERVER_SET).click()
    wait_for_run(page)
    box = sidebar.locator(".st-key-set_path input")
    box.fill(path)
    box.press("Enter")
    return box


def test_a_reload_and_a_copied_link_keep_the_image_set(browser, server_url, server_cache):
    path = _small_set(server_cache / "data")
    ctx = browser.new_context(viewport={"width": 1440, "height": 1000})
    page = ctx.new_page()
    page.goto(f"{server_url}/Explain")
    wait_for_run(page)
    sidebar = page.locator("[data-testid='stSidebar']")
    box = _choose_server_set(page, path)
    wait_for_run(page)
    page.wait_for_function("() => decodeURIComponent(location.search).includes('set=server:')", timeout=30_000)
    assert f"set=server:{path}" in unquote(page.url)

    page.reload()  # a new session: only the URL remembers the choice
    wait_for_run(page)
    assert sidebar.get_by_role("combobox", name="Image set").input_value() == SERVER_SET
    assert box.input_value() == path
    picker = page.get_by_role("combobox", name="Image", exact=True)
    assert picker.input_value().startswith("pic"), screenshot(page, "url_set_after_reload")  # the set's images

    link = page.url
    other = browser.new_context(viewport={"width": 1440, "height": 1000}).new_page()
    other.goto(link)
    wait_for_run(other)
    other.wait_for_function(
        "(p) => document.querySelector(\"[data-testid='stSidebar'] .st-key-set_path input\")?.value === p",
        arg=path,
        timeout=60_000,
    )
    other.context.close()
    ctx.close()


def test_explain_on_a_gallery_card_keeps_the_set_and_the_page_choices(browser, server_url, server_cache):
    """A page switch from a button (a card's Explain) once drew the sidebar afresh: a set chosen
    in the sidebar or by a link fell back to the demo on the Explain page."""
    path = _small_set(server_cache / "data")
    ctx = browser.new_context(viewport={"width": 1440, "height": 1000})
    page = ctx.new_page()
    page.goto(f"{server_url}/Explain")
    wait_for_run(page)
    page.get_by_role("combobox", name="Regions").click()
    page.get_by_role("option", name="Square grid").click()
    wait_for_run(page)
    sidebar = page.locator("[data-testid='stSidebar']")
    sidebar.get_by_test_id("stPageLink-NavLink").filter(has_text="Find errors").click()
    page.wait_for_timeout(500)
    wait_for_run(page)
    box = _choose_server_set(page, path)
    card = page.get_by_role("button", name="Explain")
    card.first.wait_for(timeout=120_000)  # the three plain pictures are mistakes of the model
    wait_for_run(page)
    query = page.locator(".st-key-filter_query input")
    query.fill("tench")  # pic0's true class: one card left
    query.press("Enter")
    wait_for_run(page)
    page.get_by_text("Misclassified, most confidently wrong first (1)").wait_for(timeout=30_000)
    card.first.click()
    page.get_by_role("heading", name="Explain").first.wait_for(timeout=60_000)
    wait_for_run(page)
    page.wait_for_timeout(500)
    wait_for_run(page)
    assert sidebar.get_by_role("combobox", name="Image set").input_value() == SERVER_SET, screenshot(
        page, "card_explain_lost_set"
    )
    assert box.input_value() == path
    assert page.get_by_role("combobox", name="Image", exact=True).input_value().startswith("pic")
    assert page.get_by_role("combobox", name="Regions").input_value() == "Square grid"
    assert not page.get_by_text("is not in the image set").count()
    # Back to Find errors (the browser's Back): the search is kept, Explain's parameters are not.
    page.go_back()
    page.get_by_role("heading", name="Find errors").first.wait_for(timeout=60_000)
    wait_for_run(page)
    page.wait_for_timeout(500)
    wait_for_run(page)
    assert query.input_value() == "tench", screenshot(page, "find_errors_lost_search")
    assert "image=" not in page.url
    # And by the sidebar's link from Explain.
    page.get_by_role("button", name="Explain").first.click()
    page.get_by_role("heading", name="Explain").first.wait_for(timeout=60_000)
    wait_for_run(page)
    sidebar.get_by_test_id("stPageLink-NavLink").filter(has_text="Find errors").click()
    page.get_by_role("heading", name="Find errors").first.wait_for(timeout=60_000)
    wait_for_run(page)
    page.wait_for_timeout(500)
    wait_for_run(page)
    assert query.input_value() == "tench", screenshot(page, "find_errors_lost_search_link")

    # The same from a link that carries the set (a new session).
    other = browser.new_context(viewport={"width": 1440, "height": 1000}).new_page()
    other.goto(f"{server_url}/Find_errors?set=server:{path}")
    wait_for_run(other)
    other.get_by_role("button", name="Explain").first.wait_for(timeout=120_000)
    wait_for_run(other)
    other.get_by_role("button", name="Explain").first.click()
    other.get_by_role("heading", name="Explain").first.wait_for(timeout=60_000)
    wait_for_run(other)
    other.wait_for_timeout(500)
    wait_for_run(other)
    assert other.get_by_role("combobox", name="Image", exact=True).input_value().startswith("pic"), screenshot(
        other, "card_explain_link_lost_set"
    )
    assert not other.get_by_text("is not in the image set").count()
    other.context.close()
    ctx.close()
