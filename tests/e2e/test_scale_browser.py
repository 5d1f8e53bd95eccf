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


def test_a_reload_and_a_copied_link_keep_the_image_set(browser, server_url, server_cache):
    path = _small_set(server_cache / "data")
    ctx = browser.new_context(viewport={"width": 1440, "height": 1000})
    page = ctx.new_page()
    page.goto(f"{server_url}/Explain")
    wait_for_run(page)
    sidebar = page.locator("[data-testid='stSidebar']")
    sidebar.get_by_role("combobox", name="Image set").click()
    page.get_by_role("option", name=SERVER_SET).click()
    wait_for_run(page)
    box = sidebar.locator(".st-key-set_path input")
    box.fill(path)
    box.press("Enter")
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
