"""The Study page in a real browser (issue #9): build a small study, step through list 1 as a
participant sees it, download the bundle."""

from __future__ import annotations

import io
import re
import zipfile

import pytest
from browser_helpers import screenshot, wait_for_run

pytestmark = pytest.mark.e2e
NAME = re.compile(r"^study/stimuli/[0-9a-f]{12}\.png$")


def choose(page, label: str, values: list[str], clear: int) -> None:
    """Replace a multiselect's values with the keyboard: Backspace removes the last chip, typing
    filters the options and Enter picks the first match."""
    box = page.locator("[data-testid='stMultiSelect']").filter(has_text=label).first
    box.locator("input").click()
    for _ in range(clear):
        page.keyboard.press("Backspace")
    for value in values:
        page.keyboard.type(value)
        page.keyboard.press("Enter")
    page.keyboard.press("Escape")
    wait_for_run(page)


def test_build_a_study_and_see_list_1_as_a_participant(page, server_url):
    page.goto(f"{server_url}/Find_errors")  # the study picks its images from the scan
    page.get_by_text("Accuracy").first.wait_for(timeout=120_000)
    page.goto(f"{server_url}/Study")
    wait_for_run(page)
    page.get_by_role("button", name="Build the study").wait_for(timeout=60_000)
    # Controls only (no search, so the test stays fast): the area-matched random control and no explanation.
    choose(page, "Conditions", ["Random", "No expl"], clear=4)
    choose(page, "Budgets", ["0.25"], clear=3)
    chips = page.locator("[data-testid='stMultiSelectTagsContainer'] [data-tag] > span[title]").all_inner_texts()
    assert chips == ["Random (area-matched control)", "No explanation", "0.25"], chips
    page.get_by_role("button", name="Build the study").click()
    page.get_by_text("Participant view").first.wait_for(timeout=120_000)
    wait_for_run(page)
    assert page.get_by_text("The model says").first.is_visible()
    body = page.locator("[data-testid='stMain']").inner_text()
    trial = body[body.index("Trial 1 of") :][:400]
    assert "random" not in trial.lower() and "area-matched" not in trial.lower()
    page.get_by_text("The model says").first.scroll_into_view_if_needed()
    screenshot(page, "study_participant_view")
    with page.expect_download() as info:
        page.get_by_role("button", name="Download the bundle (zip)").click()
    with zipfile.ZipFile(io.BytesIO(open(info.value.path(), "rb").read())) as z:
        names = z.namelist()
        stimuli = [n for n in names if n.startswith("study/stimuli/")]
        assert stimuli and all(NAME.match(n) for n in stimuli)
        assert {"study/manifest.csv", "study/answer_key.csv", "study/checksums.sha256"} <= set(names)
    page.get_by_role("tab", name="Contact sheet").click()
    wait_for_run(page)
    page.get_by_text("Every stimulus with its image").first.scroll_into_view_if_needed()
    screenshot(page, "study_contact_sheet")
