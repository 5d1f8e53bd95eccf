"""The public demo mode (``LIMA_MODE=public``) from a browser: each limit a visitor meets."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from browser_helpers import screenshot, wait_for_run
from conftest import FIXTURE_RUNS, streamlit_server
from PIL import Image

pytestmark = pytest.mark.e2e
CAT = "dd199df0a1b8725b41be"


@pytest.fixture(scope="module")
def public_server():
    cache = Path(tempfile.mkdtemp(prefix="lima-e2e-public-"))
    shutil.copytree(FIXTURE_RUNS, cache / "runs")
    with streamlit_server(cache, {"LIMA_MODE": "public"}) as url:
        yield url


def options_of(page, label: str) -> list[str]:
    box = page.locator("[data-testid='stSidebar']").get_by_role("combobox", name=label)
    box.click()
    items = page.locator("[role='option']").all_inner_texts()
    page.keyboard.press("Escape")
    return [i.strip() for i in items]


def test_no_server_paths_or_model_files_and_a_read_only_run_list(page, public_server):
    page.goto(f"{public_server}/Runs")
    page.get_by_role("heading", name="Saved runs").wait_for(timeout=240_000)
    wait_for_run(page)
    assert "Public demo" in page.locator("[data-testid='stSidebar']").inner_text()
    assert options_of(page, "Model") == ["Built-in EfficientNet-Lite0"]
    assert "Folder, list or CSV on the server" not in options_of(page, "Image set")
    body = page.locator("[data-testid='stMain']").inner_text()
    assert "Stored on this server" in body and "/runs" not in body and "/tmp" not in body
    grid = page.locator("[data-testid='stDataFrame']").first
    box = grid.bounding_box()
    header, row_h = 35, 64  # rows are drawn on a canvas: click by position
    page.mouse.click(box["x"] + 18, box["y"] + header + row_h / 2)
    wait_for_run(page)
    main = page.locator("[data-testid='stMain']")
    main.locator("[data-testid='stBaseButton-primary']").filter(has_text="Open").wait_for(timeout=30_000)
    assert main.get_by_role("button", name="Delete…").count() == 0
    assert page.get_by_text("Read-only demo").is_visible()
    screenshot(page, "public_runs")


def test_a_run_over_the_region_limit_cannot_start(page, public_server):
    page.goto(f"{public_server}/Explain")
    run = page.get_by_role("button", name="Run LiMA")
    run.wait_for(timeout=240_000)
    wait_for_run(page)
    page.get_by_role("combobox", name="Regions").click()
    page.get_by_role("option", name="Grid").click()
    wait_for_run(page)
    page.get_by_text("Parameters").first.click()
    thumb = page.locator(".st-key-rp_grid_cells_per_side input[type='range']")
    thumb.focus()
    for _ in range(2):  # 7 → 9 cells a side: 81 regions
        thumb.press("ArrowRight")
        wait_for_run(page)
    page.get_by_text("at most 64 regions (81 chosen)").wait_for(timeout=30_000)
    assert run.is_disabled()
    thumb.press("ArrowLeft")  # 8 a side: 64 regions is allowed
    wait_for_run(page)
    page.get_by_text("64 regions").first.wait_for(timeout=30_000)
    assert not run.is_disabled()
    screenshot(page, "public_limit")
    pending = page.locator(".st-key-search_pending input[type='range']")
    pending.focus()
    pending.press("ArrowRight")  # 8 → 9 pending candidates: one over the limit
    wait_for_run(page)
    page.get_by_text("at most 8 pending candidates (9 chosen)").wait_for(timeout=30_000)
    assert run.is_disabled()


def test_a_photo_over_the_size_limit_is_refused(page, public_server, tmp_path):
    big = tmp_path / "big.png"
    noise = np.random.default_rng(0).integers(0, 256, (1800, 1800, 3), dtype=np.uint8)
    Image.fromarray(noise).save(big)  # incompressible: about 9.7 MB
    assert big.stat().st_size > 5 * 1024 * 1024
    page.goto(f"{public_server}/Find_errors")
    page.get_by_text("Upload images").first.wait_for(timeout=240_000)
    wait_for_run(page)
    page.get_by_text("Upload images").first.click()
    page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(str(big))
    page.get_by_text("big.png").first.wait_for(timeout=60_000)  # ~10 MB reach the server first
    wait_for_run(page)
    picker = page.get_by_role("combobox", name="Their true class")
    picker.click()
    page.keyboard.type("tabby")
    page.keyboard.press("Enter")
    wait_for_run(page)
    add = page.get_by_role("button", name="Add to my uploads")
    page.wait_for_function(
        "() => [...document.querySelectorAll('button')]"
        ".some(b => b.innerText.includes('Add to my uploads') && !b.disabled)",
        timeout=60_000,
    )
    add.click()
    page.get_by_text("may be up to 5 MB each").wait_for(timeout=30_000)


def test_more_photos_than_the_hourly_allowance_are_refused(page, public_server, tmp_path):
    photos = []
    for i in range(31):  # the allowance is 30 an hour per visitor
        photos.append(tmp_path / f"p{i:02d}.png")
        Image.fromarray(np.full((24, 24, 3), 8 * i, np.uint8)).save(photos[-1])
    page.goto(f"{public_server}/Find_errors")
    page.get_by_text("Upload images").first.wait_for(timeout=240_000)
    wait_for_run(page)
    page.get_by_text("Upload images").first.click()
    page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files([str(p) for p in photos])
    wait_for_run(page)
    page.get_by_role("combobox", name="Their true class").click()
    page.keyboard.type("tabby")
    page.keyboard.press("Enter")
    wait_for_run(page)
    page.wait_for_function(
        "() => [...document.querySelectorAll('button')]"
        ".some(b => b.innerText.includes('Add to my uploads') && !b.disabled)",
        timeout=60_000,
    )
    page.get_by_role("button", name="Add to my uploads").click()
    page.get_by_text("up to 30 photos an hour from one visitor").wait_for(timeout=30_000)


def test_saved_runs_and_the_presenter_view_work_as_usual(page, public_server):
    page.goto(f"{public_server}/Explain?run={CAT}&view=present&step=4")
    player = page.locator(".lp-present[data-lima-step]")
    player.wait_for(timeout=240_000)
    assert player.get_attribute("data-lima-step") == "4"
    page.keyboard.press("ArrowRight")
    assert player.get_attribute("data-lima-step") == "5"
