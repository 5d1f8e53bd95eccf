"""Pages at scale (#12): Saved runs pages and filters through the run index; the image set
travels in the URL (``?set=``)."""

from __future__ import annotations

import dataclasses

from app_helpers import new_app
from helpers import synthetic_runs

from ui import resources

RUNS = "pages/3_Runs.py"
ERRORS = "pages/1_Find_errors.py"
EXPLAIN = "pages/2_Explain.py"


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


def _list_set(tmp_path, count: int, side: int = 8) -> str:
    """A label list of ``count`` small generated images under the data root (tmp_path)."""
    import numpy as np
    from PIL import Image

    folder = tmp_path / "many"
    folder.mkdir()
    lines = []
    for i in range(count):
        Image.fromarray(np.full((side, side, 3), 3 * i % 256, np.uint8)).save(folder / f"img{i:03d}.png")
        lines.append(f"img{i:03d}.png {i % 3}")
    (folder / "labels.txt").write_text("\n".join(lines) + "\n")
    return "many/labels.txt"


def test_the_image_set_travels_in_the_url(tmp_path, monkeypatch):
    monkeypatch.setenv("LIMA_DATA_ROOT", str(tmp_path))
    path = _list_set(tmp_path, 5)
    at = new_app()
    assert "set" not in at.query_params  # the default demo set leaves the URL alone
    # A link (or a reload, which is a new session) with ?set= chooses the set.
    linked = new_app()
    linked.query_params["set"] = f"server:{path}"
    linked.run()
    assert linked.selectbox(key="set_kind").value == "server" and linked.text_input(key="set_path").value == path
    assert not linked.warning
    assert linked.query_params["set"] == f"server:{path}"
    # The user's own change wins over the URL it replaces, and is written back to it.
    linked.selectbox(key="set_kind").set_value("demo").run()
    assert linked.selectbox(key="set_kind").value == "demo" and linked.query_params["set"] == "demo"
    # A value that names no set: a clear warning; the choice stays.
    bad = new_app()
    bad.query_params["set"] = "nonsense:"
    bad.run()
    assert any("is not understood" in w.value for w in bad.warning)
    assert bad.selectbox(key="set_kind").value == "demo"
    # A path outside the data root: the set is refused with its reason.
    outside = new_app()
    outside.query_params["set"] = "server:/etc"
    outside.run()
    assert any("outside the data root" in w.value for w in outside.warning)  # Home's set card says why


def test_a_set_that_cannot_be_opened_is_explained_once(tmp_path, monkeypatch):
    """Where the page needs the set, it says why the set could not be opened, and the sidebar
    does not repeat it; on a page that does not need it (Saved runs), the sidebar says it."""
    monkeypatch.setenv("LIMA_DATA_ROOT", str(tmp_path))
    at = new_app()
    at.query_params["set"] = "server:missing/labels.txt"
    at.switch_page("pages/1_Find_errors.py").run()
    assert not at.exception, at.exception
    said = [e.value for e in [*at.error, *at.warning] if "does not exist" in e.value]
    assert len(said) == 1 and said[0].startswith("The image set could not be opened"), said
    assert not [w for w in at.sidebar.warning if "does not exist" in w.value]
    at.switch_page("pages/3_Runs.py").run()
    assert not at.exception, at.exception
    assert [w.value for w in at.sidebar.warning if "does not exist" in w.value]
    assert not [e for e in [*at.main.error, *at.main.warning] if "does not exist" in e.value]
    for where in ("app.py", "pages/2_Explain.py"):  # pages that show it in a card of their own
        at.switch_page(where).run()
        assert not at.exception, at.exception
        said = [e.value for e in [*at.error, *at.warning] if "does not exist" in e.value]
        assert len(said) == 1 and not [w for w in at.sidebar.warning if "does not exist" in w.value], (where, said)


def test_the_explain_picker_searches_every_image_and_lists_a_bounded_menu(tmp_path, monkeypatch):
    from ui import explain_setup

    monkeypatch.setattr(explain_setup, "PICKER_LIMIT", 4)
    monkeypatch.setenv("LIMA_DATA_ROOT", str(tmp_path))
    path = _list_set(tmp_path, 12)
    at = new_app()
    at.query_params["set"] = f"server:{path}"
    at.switch_page("pages/2_Explain.py").run()
    assert not at.exception
    picker = at.selectbox(key="_item")
    assert len(picker.options) == 4 and "12 images match" in " ".join(c.value for c in at.caption)
    at.text_input(key="_item_query").input("img01").run()  # img010, img011 (+ the chosen image)
    options = at.selectbox(key="_item").options
    assert [o.split()[0] for o in options if "img01" in o] == ["img010.png", "img011.png"]
    assert "2 images match" in " ".join(c.value for c in at.caption)


def test_the_data_root_listing_stops_at_its_limit_without_listing_everything(tmp_path):
    from ui import sidebar

    for top in ("a", "b", ".hidden"):
        for i in range(3):
            (tmp_path / top / f"sub{i}").mkdir(parents=True)
    (tmp_path / "list.txt").write_text("")
    (tmp_path / "notes.md").write_text("")
    listed = sidebar._candidates(str(tmp_path), 200)
    assert listed == ["a", "b", "list.txt", "a/sub0", "a/sub1", "a/sub2", "b/sub0", "b/sub1", "b/sub2"]
    assert sidebar._candidates(str(tmp_path), 5) == listed[:5]
    assert sidebar._candidates(str(tmp_path / "missing"), 5) == []


def test_an_old_data_root_listing_is_shown_while_a_new_one_is_made(tmp_path, monkeypatch):
    import time

    from ui import sidebar

    (tmp_path / "a").mkdir()
    assert sidebar._server_candidates(tmp_path) == ["a"]  # the first listing is made at once
    (tmp_path / "b").mkdir()
    assert sidebar._server_candidates(tmp_path) == ["a"]  # kept for 30 s
    monkeypatch.setattr(sidebar, "CANDIDATES_TTL_S", 0.0)
    assert sidebar._server_candidates(tmp_path) == ["a"]  # expired: still shown, relisted behind
    deadline = time.time() + 10
    while sidebar._server_candidates(tmp_path) != ["a", "b"]:
        assert time.time() < deadline, "the listing was not made again"
        time.sleep(0.02)


def test_a_run_on_a_linked_set_keeps_the_set_in_the_url(tmp_path, monkeypatch):
    """The step player rewrites the URL for its share link; the image set rides along, so a
    reload of a run's page still has the set in the sidebar."""
    from test_pages import run_small_explanation

    monkeypatch.setenv("LIMA_DATA_ROOT", str(tmp_path))
    path = _list_set(tmp_path, 3, side=32)
    at = new_app()
    at.query_params["set"] = f"server:{path}"
    at.run()
    at.switch_page(EXPLAIN).run()
    run_small_explanation(at)
    assert at.query_params["run"] and at.query_params["step"]
    assert at.query_params["set"] == f"server:{path}"
    assert f"set=server:{path}" in next(c.value for c in at.code if "run=" in c.value)  # the share link too


def test_the_model_travels_in_the_url_and_a_bad_one_is_named():
    """Like the set: ``?model=<source>&model.<input>=<value>`` (inputs that differ from their
    defaults) chooses the model; the sidebar writes it back, links carry it, and the built-in
    model leaves the URL alone."""
    plain = new_app()
    assert "model" not in plain.query_params
    at = new_app()
    at.query_params.update({"model": "torchvision", "model.name": "mobilenet_v3_small", "model.weights": "random"})
    at.run()
    assert not at.exception, at.exception
    assert at.selectbox(key="model_source").value == "torchvision"
    assert at.text_input(key="model_torchvision_name").value == "mobilenet_v3_small"
    assert at.selectbox(key="model_torchvision_weights").value == "random"
    assert not at.warning and not at.error
    at.switch_page("pages/1_Find_errors.py").run()  # the session keeps it across pages
    assert at.query_params["model.name"] == "mobilenet_v3_small"
    # The user's own change is written back; the built-in model (no inputs) drops every input.
    at.text_input(key="model_torchvision_name").set_value("resnet18").run()
    assert (at.query_params["model.name"], at.query_params["model.weights"]) == ("resnet18", "random")
    at.selectbox(key="model_source").set_value("efficientnet_lite0").run()
    assert dict(at.query_params) == {"model": "efficientnet_lite0"}
    # A link that names no model offered here, or an input the source does not take.
    for params, reason in (
        ({"model": "nosuch"}, "no model source"),
        ({"model": "torchvision", "model.x": "1"}, "valid: name, weights"),
    ):
        bad = new_app()
        bad.query_params.update(params)
        bad.run()
        assert any("The link's model is not used" in w.value and reason in w.value for w in bad.warning)
        assert bad.selectbox(key="model_source").value == "efficientnet_lite0"
