"""Pages at scale (#12): Saved runs pages and filters through the run index; the image set
travels in the URL (``?set=``)."""

from __future__ import annotations

import dataclasses

from app_helpers import new_app
from helpers import synthetic_runs

from ui import resources

RUNS = "pages/3_Runs.py"
ERRORS = "pages/1_Find_errors.py"


def _many_runs(tiny_exp, count: int) -> None:
    runs = resources.run_store()
    runs.save(dataclasses.replace(tiny_exp, created="2026-01-01T00:00:00+00:00"), "template")

    def vary(i, doc):
        doc["created"] = f"2026-02-01T{i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}+00:00"
        doc["model"]["id"] = "m:even" if i % 2 == 0 else "m:odd"
        doc["source"] = {"name": f"photo{i:03d}.jpg", "label": 0, "set": "setA" if i < 40 else "setB"}

    synthetic_runs(runs.root, runs.root / "template", count, vary)


def test_runs_page_pages_and_filters_through_the_index(tiny_exp):
    _many_runs(tiny_exp, 70)  # + the template: 71 runs, two pages of 50
    at = new_app()
    at.switch_page(RUNS).run()
    assert not at.exception
    table = at.dataframe[0].value
    assert len(table) == 50 and table["image"][0] == "photo069.jpg"  # newest first
    at.number_input(key="runs_page").set_value(2).run()
    table = at.dataframe[0].value
    assert len(table) == 21 and table["image"][0] == "photo019.jpg" and "template" in list(table["key"])
    at.selectbox(key="runs_filter_model").set_value("m:odd").run()
    table = at.dataframe[0].value
    assert len(table) == 35 and set(table["model"]) == {"m:odd"}  # back on page 1 of one page
    at.selectbox(key="runs_filter_image_set").set_value("setB").run()
    assert sorted(at.dataframe[0].value["image"]) == [f"photo{i:03d}.jpg" for i in range(41, 70, 2)]
    at.text_input(key="runs_filter_text").set_value("PHOTO045").run()
    assert list(at.dataframe[0].value["image"]) == ["photo045.jpg"]
    at.text_input(key="runs_filter_text").set_value("nothing-like-this").run()
    assert not at.dataframe and any("No saved run matches" in i.value for i in at.info)
