"""The Cohorts page with Streamlit's AppTest: a cohort of the demo set's mistakes explained in the
background (built-in model, 9 grid regions), then its gallery, charts, links and exports."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from app_helpers import new_app, wait_until
from helpers import synthetic_runs
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


def test_a_cohorts_saved_runs_are_listed_through_the_run_index(lite0, tiny_exp, monkeypatch):
    """30 generated runs, 6 of them of the demo's first confusion pair (this model, set and region
    method, explaining the true class), two of those of the same image: the page lists them through
    the run index (the JSON files are never read for the listing) and shows 5 images."""
    image_set = demo_set(lite0.class_names)
    cache = ScanCache()
    if cache.get(lite0, image_set) is None:
        cache.put(lite0, image_set, scan(lite0, image_set))
    true, pred, _ = cache.get(lite0, image_set).confusions()[0]
    names = lite0.class_names
    runs = RunStore()
    runs.save(dataclasses.replace(tiny_exp, created="2026-01-01T00:00:00+00:00"), "template")

    def vary(i, doc):  # the tiny run explains class 1 and tracks class 3: named as the pair here
        doc["created"] = f"2026-02-01T00:00:{i:02d}+00:00"
        doc["class_names"] = ["other", names[true], "other 2", names[pred], "other 4"]
        doc["model"]["id"] = lite0.id if i % 5 != 1 else "torchvision:resnet50"
        image = 0 if i == 25 else i  # run 25 is a newer run of run 0's image
        doc["source"] = {"name": f"cohort{image:02d}.jpg", "key": f"k{image:02d}", "label": 1}
        doc["source"]["set"] = image_set.name if i % 5 != 2 else "another set"
        doc["regions"]["method"] = "grid" if i % 5 != 3 else "slico"
        summary = doc["summary"]
        summary["target_name"], summary["tracked_name"] = names[true], names[pred]
        summary["full_prediction_name"] = names[pred] if i % 5 != 4 else names[true]  # 4: no mistake

    keys = synthetic_runs(runs.root, runs.root / "template", 30, vary)
    matching = {f"cohort{i:02d}.jpg" for i in range(0, 30, 5) if i != 25}
    loaded: list[str] = []
    real_load = RunStore.load
    monkeypatch.setattr(RunStore, "load", lambda self, key: loaded.append(key) or real_load(self, key))

    def no_file_listing(self):
        raise AssertionError("the listing read every explanation.json instead of the run index")

    monkeypatch.setattr(RunStore, "_scan_files", no_file_listing)
    at = new_app()
    at.switch_page(COHORTS).run()
    assert "from the run index: 6 runs" in texts(at)  # SLICO regions first: runs 3, 8, ..., 28
    loaded.clear()
    at.selectbox(key="co_regions").set_value("grid").run()
    assert not at.exception
    body = texts(at)
    assert "from the run index: 6 runs" in body and "5 images shown" in body
    assert at.subheader[0].value.startswith("5 images")
    shown = {name for name in (f"cohort{i:02d}.jpg" for i in range(30)) if name in body}
    assert shown == matching
    assert len([link for link in at.get("page_link") if link.label == "Open in Explain"]) == 5
    # only the cohort's own runs were opened (for their numbers, thumbnails and the location map)
    assert set(loaded) == {keys[i] for i in range(0, 30, 5)}
    # the predicted class explained: none of these runs
    at.radio(key="co_target").set_value("predicted").run()
    assert not at.exception and not at.subheader and "from the run index" not in texts(at)
