"""The Cohorts page with Streamlit's AppTest: a cohort of the demo set's mistakes explained in the
background (built-in model, 9 grid regions), then its gallery, charts, links and exports."""

from __future__ import annotations

import numpy as np
import pytest
from app_helpers import new_app, wait_until
from test_pages import demo_truth, texts

from explainer.data import demo_set
from explainer.scan import ScanCache, scan
from explainer.store import RunStore

COHORTS = "pages/4_Cohorts.py"


def test_cohorts_asks_for_a_scan_first(tmp_path, monkeypatch):
    monkeypatch.setenv("LIMA_SCANS_DIR", str(tmp_path / "no-scans"))
    at = new_app()
    at.switch_page(COHORTS).run()
    assert not at.exception
    assert "cohorts come from the scan" in texts(at)
    assert "Cohorts" in {link.label for link in at.get("page_link")}


@pytest.mark.slow  # a background batch of the demo's mistakes with the real model
def test_a_cohort_of_mistakes_is_explained_and_shown(lite0):
    items, probs = demo_truth(lite0)
    wrong = {it.name for it, p in zip(items, probs) if int(np.argmax(p)) != it.label}
    image_set = demo_set(lite0.class_names)
    cache = ScanCache()
    if cache.get(lite0, image_set) is None:
        cache.put(lite0, image_set, scan(lite0, image_set))
    at = new_app()
    at.switch_page(COHORTS).run()
    at.radio(key="co_kind").set_value("all").run()
    at.selectbox(key="co_regions").set_value("grid").run()
    at.slider(key="co_rp_grid_cells_per_side").set_value(3).run()
    assert f"{len(wrong)} images × up to about" in texts(at)
    at.button(key="co_run").click().run()
    at = wait_until(at, lambda a: any("images" in s.value for s in a.subheader), timeout_s=300)
    assert at.subheader[0].value.startswith(f"{len(wrong)} images")
    body = texts(at)
    assert all(name in body for name in wrong)
    assert "Median subset" in body and "Where the deciding regions lie" in body
    runs = RunStore()
    links = [link for link in at.get("page_link") if link.label == "Open in Explain"]
    assert len(links) == len(wrong)
    saved = [row["key"] for row in runs.list()]
    assert len(saved) == len(wrong)
    assert sorted(k for k in saved if any(k in str(link.proto) for link in links)) == sorted(saved)
    assert len(at.get("plotly_chart")) == 2
    assert {b.label for b in at.get("download_button")} >= {"Cohort (CSV)", "Cohort (JSON)", "Contact sheet (PDF)"}
    at.radio(key="co_sort").set_value("gain").run()
    assert not at.exception
