"""Issue #6 in a real browser: nothing leaves the machine, labels stay readable, user strings stay
text, links carry the view, deleting asks first."""

from __future__ import annotations

import io
import re

import pytest
from browser_helpers import screenshot, wait_for_run
from PIL import Image

pytestmark = pytest.mark.e2e
OLD_RUN = "dd199df0a1b8725b41be"  # saved by version 0.1 (tests/fixtures/runs_v0_1)


def test_no_request_leaves_the_machine(browser, server_url):
    ctx = browser.new_context(viewport={"width": 1440, "height": 1000})
    page = ctx.new_page()
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    for path in ("/", "/Find_errors", f"/Explain?run={OLD_RUN}&step=4", "/Runs"):
        page.goto(server_url + path)
        wait_for_run(page)
        page.wait_for_timeout(1500)
    ctx.close()
    local = ("http://127.0.0.1", "data:", "blob:", "about:")
    outside = sorted({u for u in requests if not u.startswith(local)})
    assert not outside, outside
    assert len(requests) > 20  # the pages really loaded


def _truncated_labels(page) -> list[str]:
    """Download-button labels whose text does not fit (cut with an ellipsis)."""
    return page.evaluate("""() => [...document.querySelectorAll('[data-testid="stDownloadButton"] button')]
        .flatMap(b => [...b.querySelectorAll('*')])
        .filter(e => e.children.length === 0 && e.textContent.trim() && e.scrollWidth > e.clientWidth + 1)
        .map(e => e.textContent.trim())""")


def test_export_labels_are_readable(browser, server_url):
    """At 1920, 1440 and 1280 pixels wide: one page, resized (the columns are laid out by the
    browser alone, so a resize needs no script run)."""
    ctx = browser.new_context(viewport={"width": 1920, "height": 1000})
    page = ctx.new_page()
    page.goto(f"{server_url}/Explain?run={OLD_RUN}&step=4")
    page.get_by_text("Minimal subset").first.wait_for(timeout=60_000)
    wait_for_run(page)
    buttons = page.locator('[data-testid="stDownloadButton"] button')
    buttons.nth(7).wait_for(timeout=60_000)  # the exports come after the what-if and partition sections
    wait_for_run(page)
    assert buttons.count() >= 8
    for width in (1920, 1440, 1280):
        page.set_viewport_size({"width": width, "height": 1000})
        page.wait_for_function("(w) => window.innerWidth === w", arg=width)
        page.wait_for_timeout(300)  # the layout settles
        assert _truncated_labels(page) == [], width
        screenshot(page, f"explain_exports_{width}")
    ctx.close()


def test_a_link_with_hidden_dim_opens_dimmed_and_keeps_it(page, server_url):
    page.goto(f"{server_url}/Explain?run={OLD_RUN}&step=3&hidden=dim")
    page.get_by_text("Minimal subset").first.wait_for(timeout=60_000)
    wait_for_run(page)
    assert "hidden=dim" in page.url and "step=3" in page.url
    dimmed = page.locator('.st-key-hidden button[aria-checked="true"], .st-key-hidden [aria-pressed="true"]')
    assert dimmed.first.inner_text().strip() == "Dimmed"
    share = page.locator("[data-testid='stCode'] code").filter(has_text="run=").first.inner_text()
    assert f"run={OLD_RUN}&step=3&hidden=dim" in share


def _png(color=(200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), color).save(buf, format="PNG")
    return buf.getvalue()


def test_markdown_in_an_uploaded_file_name_stays_text(page, server_url):
    page.goto(f"{server_url}/Find_errors")
    wait_for_run(page)
    page.get_by_text("Upload images").first.click()
    names = [
        "[click me](javascript:alert(2)).png",
        ":red[x] www.example.com.png",
        ":blue-badge[b] :smile: a@b.org.png",
    ]  # no "/": a folder separator
    page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(
        [{"name": n, "mimeType": "image/png", "buffer": _png()} for n in names]
    )
    wait_for_run(page)
    box = page.locator(".st-key-upload_label")
    box.click()
    page.keyboard.type("goldfish")
    page.keyboard.press("Enter")
    wait_for_run(page)
    page.get_by_role("button", name="Add to my uploads").click()
    # What a reader sees (invisible word joiners aside): each name exactly, as plain text.
    shown_js = """() => [...document.querySelectorAll(
                            '[data-testid="stMain"] [data-testid="stMarkdownContainer"] strong')]
                        .map(e => e.textContent.replace(/\u2060/g, ''))"""
    page.wait_for_function(
        f"() => ({shown_js})().length >= 3 && ({shown_js})().some(t => t.endsWith('.png'))", timeout=120_000
    )
    wait_for_run(page)
    main = page.locator("[data-testid='stMain']")
    shown = page.evaluate(shown_js)
    for name in names:
        assert name in shown, (name, shown)
    links = main.evaluate("m => [...m.querySelectorAll('a')].map(a => a.getAttribute('href'))")
    assert not [h for h in links if h and not h.startswith("#")], links  # only Streamlit's own anchors
    assert main.locator("[data-testid='stMarkdownContainer'] strong [data-testid='stIconMaterial']").count() == 0
    red = main.evaluate("""m => [...m.querySelectorAll('[data-testid="stMarkdownContainer"] strong span')]
                                .filter(s => s.textContent.trim() === 'x').length""")
    assert red == 0  # ':red[x]' coloured nothing
    screenshot(page, "uploads_with_markdown_names")


def test_deleting_a_run_asks_first(browser, server_url, server_cache):
    import json
    import shutil

    victim = server_cache / "runs" / "victim0000000000000001"
    shutil.copytree(server_cache / "runs" / OLD_RUN, victim)
    doc = json.loads((victim / "explanation.json").read_text())
    doc["created"] = "2999-01-01T00:00:00+00:00"  # newest: the first row
    (victim / "explanation.json").write_text(json.dumps(doc))
    ctx = browser.new_context(viewport={"width": 1440, "height": 1000})
    page = ctx.new_page()
    page.goto(f"{server_url}/Runs")
    wait_for_run(page)
    grid = page.locator("[data-testid='stDataFrame']").first
    grid.wait_for(timeout=30_000)
    box = grid.bounding_box()
    header, row_h = 35, 64  # rows are drawn on a canvas: click by position
    page.mouse.click(box["x"] + 18, box["y"] + header + row_h / 2)
    wait_for_run(page)
    page.get_by_role("button", name=re.compile("Delete")).first.click()
    dialog = page.get_by_role("dialog")
    dialog.wait_for(timeout=15_000)
    assert "victim0000000000000001" in dialog.inner_text()
    assert victim.exists()  # asked, not deleted
    screenshot(page, "runs_delete_dialog")
    dialog.get_by_role("button", name="Delete").click()
    page.wait_for_timeout(500)
    wait_for_run(page)
    assert not victim.exists()
    assert (server_cache / "runs" / OLD_RUN).exists()
    ctx.close()
