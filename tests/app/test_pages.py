"""Every page with Streamlit's AppTest, on the built-in model and the built-in demo photos."""

from __future__ import annotations

import io
import json
import re

import numpy as np
import pytest
from app_helpers import new_app, wait_until
from helpers import ROOT
from PIL import Image
from streamlit.testing.v1 import AppTest

from explainer.data import demo_set
from explainer.sam import SAM_ENV_VAR
from ui import resources

EXPLAIN = "pages/2_Explain.py"
ERRORS = "pages/1_Find_errors.py"
RUNS = "pages/3_Runs.py"


def unescape(markdown: str) -> str:
    """What a reader sees of Markdown that ``ui.text.md`` escaped: no backslashes, no joiners."""
    return re.sub(r"\\(.)", r"\1", markdown).replace("\u2060", "")


def texts(at) -> str:
    """All visible text of the app (markdown, captions, alerts, metrics), joined and unescaped."""
    parts = [
        e.value
        for kind in ("markdown", "caption", "success", "info", "warning", "error", "title", "subheader")
        for e in at.get(kind)
    ]
    parts += [f"{m.label} {m.value}" for m in at.metric]
    return unescape("\n".join(str(p) for p in parts))


def demo_truth(lite0):
    """Independently computed: which demo photos the built-in model gets wrong."""
    items = demo_set(lite0.class_names).items
    probs = lite0.predict(np.stack([lite0.view(it.load()) for it in items]))
    return items, probs


def test_home_shows_model_set_device_and_sam_status(app):
    body = texts(app)
    assert "LiMA Lens" in body
    assert "efficientnet_lite0" in body and "1000 classes" in body
    assert "Built-in demo" in body and "images" in body
    assert "CPU" in body
    assert "Not available" in body  # no SAM checkpoint in the test environment
    assert {"Home", "Find errors", "Explain", "Saved runs"} <= {link.label for link in app.get("page_link")}


def scanned_errors_page():
    at = new_app()
    at.switch_page(ERRORS).run()
    return wait_until(at, lambda a: any(m.label == "Accuracy" for m in a.metric))


def test_find_errors_scans_in_the_background_and_lists_the_mistakes(lite0):
    items, probs = demo_truth(lite0)
    wrong = [it for it, p in zip(items, probs) if int(np.argmax(p)) != it.label]
    at = scanned_errors_page()
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Accuracy"] == f"{100 * (1 - len(wrong) / len(items)):.1f} %"
    assert metrics["Misclassified"] == str(len(wrong))
    explain_buttons = [b for b in at.button if b.label == "Explain"]
    assert len(explain_buttons) == len(wrong)
    # Most confidently wrong first: the first card is the mistake with the highest wrong probability.
    most = max(((it, p) for it, p in zip(items, probs) if int(np.argmax(p)) != it.label), key=lambda x: x[1].max())
    assert explain_buttons[0].key == f"explain_{most[0].key}"


def test_a_second_visit_reads_the_cached_scan_at_once():
    scanned_errors_page()
    at = new_app()
    at.switch_page(ERRORS).run()  # one run, no waiting
    assert any(m.label == "Accuracy" for m in at.metric)
    assert not at.get("progress")


def click_confusion_row(at, row: int):
    """Select a row of the confusion table as a click does (its key carries a generation)."""
    key = f"confusions_{at.session_state['_confusions_gen']}"
    at.session_state[key] = {"selection": {"rows": [row], "columns": [], "cells": []}}
    return at.run()


def test_confusion_click_and_filters_narrow_the_gallery():
    at = scanned_errors_page()
    total = len([b for b in at.button if b.label == "Explain"])
    assert total >= 2
    click_confusion_row(at, 0)
    assert len([b for b in at.button if b.label == "Explain"]) == 1
    # Clicking the row off again shows every mistake; the boxes say "any".
    at.session_state[f"confusions_{at.session_state['_confusions_gen']}"] = {"selection": {"rows": [], "columns": []}}
    at.run()
    assert len([b for b in at.button if b.label == "Explain"]) == total
    assert (at.selectbox(key="filter_true").value, at.selectbox(key="filter_pred").value) == (-1, -1)
    click_confusion_row(at, 0)
    pair = (at.selectbox(key="filter_true").value, at.selectbox(key="filter_pred").value)
    # Back from another page the table has no selection state: the kept boxes still filter.
    del at.session_state[f"confusions_{at.session_state['_confusions_gen']}"]
    at.run()
    assert (at.selectbox(key="filter_true").value, at.selectbox(key="filter_pred").value) == pair != (-1, -1)
    assert len([b for b in at.button if b.label == "Explain"]) == 1
    at.text_input(key="filter_query").input("zzzz-no-such-class").run()
    assert len([b for b in at.button if b.label == "Explain"]) == 0


def test_a_confusion_row_shows_in_the_filter_boxes(lite0):
    at = scanned_errors_page()
    gen = at.session_state["_confusions_gen"]
    click_confusion_row(at, 0)
    assert at.session_state["_confusions_gen"] == gen  # the same grid, the row highlighted: not drawn again
    true_box, pred_box = at.selectbox(key="filter_true"), at.selectbox(key="filter_pred")
    assert true_box.value != -1 and pred_box.value != -1  # not "any"
    card = next(b for b in at.button if b.label == "Explain").key.removeprefix("explain_")
    scan = resources.scan_cache().get(lite0, demo_set(lite0.class_names))
    row = scan.row(card)
    assert (row.label, row.pred) == (true_box.value, pred_box.value)
    # The boxes are now the filter: setting one back to "any" widens the gallery again.
    true_box.set_value(-1).run()
    assert at.session_state["_confusions_gen"] == gen + 1  # the highlight went stale: a fresh table
    pred_box = at.selectbox(key="filter_pred")
    pred_box.set_value(-1).run()
    assert len([b for b in at.button if b.label == "Explain"]) >= 2


def test_explain_button_opens_the_image_on_the_explain_page():
    at = scanned_errors_page()
    first = next(b for b in at.button if b.label == "Explain")
    first.click().run()
    assert not at.exception
    key = first.key.removeprefix("explain_")
    assert at.session_state["item_key"] == key
    assert at.selectbox(key="_item").value == key
    # A mistake: the true class is explained by default, and the prediction is charted beside it.
    assert at.radio(key="target_mode").value == "true"
    assert any("(the prediction), scored on the same regions" in c.value for c in at.caption)
    at.switch_page("pages/2_Explain.py")  # AppTest reruns the page it was told (Find errors) otherwise
    at.radio(key="target_mode").set_value("predicted").run()
    captions = [c.value for c in at.caption]
    assert any("(the true class), scored on the same regions" in c for c in captions), captions


def run_small_explanation(at, cells: int = 3):
    """Choose a 3×3 grid (9 regions: fast on a CPU), run LiMA, wait for the result."""
    at.selectbox(key="region_method").set_value("grid").run()
    at.slider(key="rp_grid_cells_per_side").set_value(cells).run()
    at.button(key="run_button").click().run()
    return wait_until(at, lambda a: any(m.label == "Minimal subset" for m in a.metric), timeout_s=180)


def stop_player_at(at, key: str, step: int) -> None:
    """What the browser's step player reports when the viewer stops on ``step``."""
    at.session_state[f"player_inline_{key}"] = {"step": step}
    at.run()
    assert not at.exception, at.exception


def test_explain_runs_lima_and_steps_through_the_result():
    at = new_app()
    at.switch_page(EXPLAIN).run()
    assert "regions" in texts(at) and "forward passes" in texts(at)  # the cost preview
    run_small_explanation(at)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Forward passes"] in ("90", "88", "86", "84")  # 9·10, minus skipped re-scores
    key = at.query_params["run"][0] if isinstance(at.query_params["run"], list) else at.query_params["run"]
    exp = resources.run_store().load(key)
    # The player runs in the browser; the server hears the step where the viewer stops.
    assert at.session_state["step"] == exp.minimal_subset_size
    stop_player_at(at, key, 2)
    assert str(at.query_params["step"]).strip("[]'\"") == "2"
    assert any("use step 2 of 9" in c.value for c in at.caption)
    stop_player_at(at, key, 99)  # a bad report is clamped, never an error
    assert at.session_state["step"] == 9 and not at.exception
    labels = [b.label for b in at.get("download_button")]
    for wanted in (
        "PNG of this view",
        "Figure (PNG)",
        "Step-through (GIF)",
        "Result (JSON + NPZ)",
        "Reference layout (npy/json)",
        "Curves (CSV)",
        "Slides (MP4, captioned)",
        "Slides (GIF, captioned)",
    ):
        assert wanted in labels


def test_the_same_inputs_reuse_the_saved_run():
    at = new_app()
    at.switch_page(EXPLAIN).run()
    run_small_explanation(at)
    first_key = at.session_state["run_key"]
    before = resources.job_manager().get(first_key)
    at2 = new_app()
    at2.switch_page(EXPLAIN).run()
    at2.selectbox(key="region_method").set_value("grid").run()
    at2.slider(key="rp_grid_cells_per_side").set_value(3).run()
    assert at2.button(key="run_button").label == "Open saved run"
    at2.button(key="run_button").click().run()
    assert at2.session_state["run_key"] == first_key
    assert resources.job_manager().get(first_key) is before  # no new job was started


def test_a_shared_link_opens_the_same_run_and_step():
    at = new_app()
    at.switch_page(EXPLAIN).run()
    run_small_explanation(at)
    key = at.session_state["run_key"]
    fresh = new_app()
    fresh.query_params["run"] = key
    fresh.query_params["step"] = "4"
    fresh.switch_page(EXPLAIN).run()
    assert not fresh.exception
    assert fresh.session_state["run_key"] == key
    assert fresh.session_state["step"] == 4


def test_a_link_to_a_missing_run_says_so():
    at = new_app()
    at.query_params["run"] = "doesnotexist123"
    at.switch_page(EXPLAIN).run()
    assert "is not on this server" in texts(at)


def test_runs_page_lists_and_opens_saved_runs():
    at = new_app()
    at.switch_page(EXPLAIN).run()
    run_small_explanation(at)
    key = at.session_state["run_key"]
    at.switch_page(RUNS).run()
    assert not at.exception
    table = at.dataframe[0].value
    assert key in list(table["key"])


def test_cancel_stops_a_running_search():
    at = new_app()
    at.switch_page(EXPLAIN).run()
    at.selectbox(key="region_method").set_value("grid").run()
    at.slider(key="rp_grid_cells_per_side").set_value(12).run()  # 144 regions: minutes on a CPU
    at.button(key="run_button").click().run()
    job_key = at.session_state["search_job"]
    job = resources.job_manager().get(job_key)
    wait_until(at, lambda a: job.status == "running" and job.progress is not None, timeout_s=60, step_s=0.2)
    at.button(key="cancel_search_job").click().run()
    wait_until(at, lambda a: "was cancelled" in texts(a), timeout_s=60, step_s=0.2)
    assert job.status == "cancelled"
    assert not resources.run_store().has(job_key)


def test_two_sessions_asking_for_the_same_run_share_one_job():
    a, b = new_app(), new_app()
    for at in (a, b):
        at.switch_page(EXPLAIN).run()
        at.selectbox(key="region_method").set_value("grid").run()
        at.slider(key="rp_grid_cells_per_side").set_value(4).run()
        at.button(key="run_button").click().run()
    assert a.session_state["search_job"] == b.session_state["search_job"]
    wait_until(a, lambda at: any(m.label == "Minimal subset" for m in at.metric), timeout_s=180)
    wait_until(b, lambda at: any(m.label == "Minimal subset" for m in at.metric), timeout_s=30)


def test_sam_without_a_checkpoint_is_shown_as_unavailable(monkeypatch):
    monkeypatch.delenv(SAM_ENV_VAR, raising=False)
    at = new_app()
    at.switch_page(EXPLAIN).run()
    at.selectbox(key="region_method").set_value("sam").run()
    body = texts(at)
    assert SAM_ENV_VAR in body and "sam_vit_b" in body
    assert "Choose regions first" in body


def test_a_path_outside_the_data_root_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("LIMA_DATA_ROOT", str(tmp_path))
    at = new_app()
    at.selectbox(key="set_kind").set_value("server").run()
    at.text_input(key="set_path").input("/etc").run()
    assert "outside the data root" in texts(at)


def test_a_folder_set_under_the_data_root_is_scanned(tmp_path, monkeypatch, lite0):
    import skimage.data

    folder = tmp_path / "set" / "tabby"
    folder.mkdir(parents=True)
    Image.fromarray(skimage.data.chelsea()).save(folder / "cat.png")
    (tmp_path / "set" / "not-a-class").mkdir()
    monkeypatch.setenv("LIMA_DATA_ROOT", str(tmp_path))
    at = new_app()
    at.switch_page(ERRORS).run()  # (AppTest keeps no widget value across a page switch;
    at.selectbox(key="set_kind").set_value("server").run()  # the browser test of the sidebar does)
    at.text_input(key="set_path").input("set").run()
    at = wait_until(at, lambda a: any(m.label == "Accuracy" for m in a.metric))
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Images"] == "1" and metrics["Misclassified"] == "1"  # the model calls it a tiger cat
    assert "not-a-class" in "\n".join(t.value for t in at.text)


def test_a_model_that_cannot_load_gets_a_clear_message():
    at = new_app()
    at.selectbox(key="model_source").set_value("torchscript").run()
    at.text_input(key="model_torchscript_path").input("no/such/model.pt").run()
    body = texts(at)
    assert "could not be loaded" in body or "not found" in body
    at.switch_page(ERRORS).run()  # (AppTest keeps no widget value across a page switch)
    at.selectbox(key="model_source").set_value("torchscript").run()
    at.text_input(key="model_torchscript_path").input("no/such/model.pt").run()
    assert "could not be loaded" in texts(at)


def _png_bytes(mode: str = "RGB") -> bytes:
    import skimage.data

    buf = io.BytesIO()
    Image.fromarray(skimage.data.coffee()).convert(mode).save(buf, format="PNG")
    return buf.getvalue()


def test_uploads_accept_odd_modes_and_refuse_broken_files():
    at = new_app()
    at.switch_page(ERRORS).run()
    at.file_uploader(key="upload_files").upload("broken.png", b"not an image", "image/png").upload(
        "grey.png", _png_bytes("L"), "image/png"
    ).upload("rgba.png", _png_bytes("RGBA"), "image/png").run()
    at.selectbox(key="upload_label").set_value(967).run()
    next(b for b in at.button if b.label == "Add to my uploads").click().run()
    assert not at.exception
    assert any("broken.png" in unescape(e.value) for e in at.error), [e.value for e in at.error]
    assert len(at.session_state["uploads"]) == 2


# -- issue #6: hostile input through the pages -------------------------------------------------------------------

BAD_RUN_VALUES = [
    "../../etc/passwd",
    "<script>alert(1)</script>",
    "." * 3000,
    "abc\x00def",
    "a" * 5000,
    "[x](javascript:alert(1))",
    ":red[boom]",
]


@pytest.mark.parametrize("value", BAD_RUN_VALUES, ids=lambda v: repr(v)[:24])
def test_a_link_with_any_run_value_says_it_is_not_here(value):
    at = new_app()
    at.query_params["run"] = value
    at.query_params["step"] = "3"
    at.switch_page(EXPLAIN).run()
    assert not at.exception
    warnings = [unescape(w.value) for w in at.warning]
    assert any("is not on this server" in w for w in warnings), warnings
    assert "run" not in at.query_params and "step" not in at.query_params
    # The value is shown literally (escaped), never as markup, and cut when long.
    shown = next(w.value for w in at.warning if "is not on this server" in unescape(w.value))
    assert len(shown) < 400 and "](" not in shown.replace("\\](", "").replace("\\(", "")


def test_a_malformed_run_folder_is_listed_as_unreadable_and_good_runs_still_open(tmp_path, tiny_exp):
    runs = resources.run_store()
    good = "goodrun00000000000001"
    runs.save(tiny_exp, good)
    bad = runs.root / "badrun00000000000001"
    bad.mkdir(parents=True, exist_ok=True)
    (bad / "explanation.json").write_text(json.dumps({"format": "lima-lens/explanation/1", "summary": None}))
    try:
        at = new_app()
        at.switch_page(RUNS).run()
        assert not at.exception
        assert good in list(at.dataframe[0].value["key"])
        assert any("cannot be read" in e.label for e in at.expander)
        assert "badrun00000000000001" in "\n".join(t.value for t in at.text)
    finally:
        runs.delete(good)
        runs.delete("badrun00000000000001")


def test_a_bad_lima_device_is_a_clear_message_on_home(monkeypatch):
    monkeypatch.setenv("LIMA_DEVICE", "tpu")
    at = new_app()
    assert not at.exception
    body = texts(at)
    assert "LIMA_DEVICE='tpu' cannot be used" in body and "unknown device 'tpu'" in body
    at.switch_page(ERRORS).run()
    assert not at.exception and "unknown device" in texts(at)


def test_the_server_shows_no_error_details_and_the_boundary_catches_failures():
    import tomllib

    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["client"]["showErrorDetails"] == "none"

    def script():
        from explainer.errors import DataError
        from ui import page

        with page.boundary("Test"):
            raise DataError("the set [x](javascript:1) is empty")
        with page.boundary("Test"):
            raise KeyError("an unexpected bug")

    at = AppTest.from_function(script).run()
    assert not at.exception
    errors = [unescape(e.value) for e in at.error]
    assert errors[0] == "the set [x](javascript:1) is empty"
    assert "unexpected error (incident" in errors[1] and "KeyError" not in errors[1]


def test_file_and_class_names_are_shown_literally_in_the_gallery():
    at = new_app()
    at.switch_page(ERRORS).run()
    names = ["[click me](javascript:alert(2)).png", ":red[x].png"]
    uploader = at.file_uploader(key="upload_files")
    for name in names:
        uploader = uploader.upload(name, _png_bytes(), "image/png")
    uploader.run()
    at.selectbox(key="upload_label").set_value(1).run()  # goldfish: a mistake for sure
    next(b for b in at.button if b.label == "Add to my uploads").click().run()
    at.selectbox(key="set_kind").set_value("uploads").run()
    at = wait_until(at, lambda a: any(m.label == "Accuracy" for m in a.metric))
    # a card is one markdown element: the name in bold on its first line, then the classes
    cards = [m.value.split("  \n")[0] for m in at.markdown if m.value.startswith("**")]
    for name in names:
        assert any(unescape(c) == f"**{name}**" for c in cards), cards
    assert not any("](javascript" in c or c.startswith("**:red[") for c in cards)


def test_an_unknown_image_link_is_named_and_removed():
    at = new_app()
    at.query_params["image"] = "no/such/image.jpg"
    at.switch_page(EXPLAIN).run()
    assert not at.exception
    assert "The linked image no/such/image.jpg is not in the image set" in texts(at)
    assert "image" not in at.query_params


def test_a_link_carries_black_or_dimmed_and_old_links_still_work():
    at = new_app()
    at.switch_page(EXPLAIN).run()
    run_small_explanation(at)
    key = at.session_state["run_key"]
    dimmed = new_app()
    for name, value in (("run", key), ("step", "2"), ("hidden", "dim")):
        dimmed.query_params[name] = value
    dimmed.switch_page(EXPLAIN).run()
    assert dimmed.session_state["hidden"] == "dim" and dimmed.session_state["step"] == 2
    assert str(dimmed.query_params["hidden"]).strip("[]'\"") == "dim"
    assert any("hidden=dim" in c.value and f"run={key}" in c.value for c in dimmed.code)
    plain = new_app()  # a link from version 0.1: run and step only
    plain.query_params["run"] = key
    plain.query_params["step"] = "1"
    plain.switch_page(EXPLAIN).run()
    assert plain.session_state["hidden"] == "black" and plain.session_state["step"] == 1
    assert "hidden" not in plain.query_params
    assert any("hidden" not in c.value and f"run={key}&step=1" in c.value for c in plain.code)


def test_a_result_shows_a_colour_scale_for_every_heatmap():
    at = new_app()
    at.switch_page(EXPLAIN).run()
    run_small_explanation(at)
    scales = [h for h in at.get("html") if "lima-colour-scale" in h.proto.body]
    assert len(scales) == 3
    assert any("ranked first" in h.proto.body for h in scales)
    assert any("supports" in h.proto.body for h in scales)


def test_download_names_have_no_spaces_or_brackets(tiny_exp):
    import dataclasses

    from ui.explain_result import download_stem

    for name in ("my photo (1).jpg", "[a]{b} c.png", "..hidden", "ünïcode ñame.JPEG", ""):
        stem = download_stem(dataclasses.replace(tiny_exp, source={"name": name}), "0123456789abcdef")
        assert re.fullmatch(r"[A-Za-z0-9._-]+", stem), stem


def test_runs_page_has_thumbnails_and_delete_asks_first(tiny_exp):
    runs = resources.run_store()
    key = "deleteme000000000001"
    runs.save(tiny_exp, key)
    at = new_app()
    at.switch_page(RUNS).run()
    table = at.dataframe[0].value
    row = list(table["key"]).index(key)
    assert str(table["view"][row]).startswith("data:image/jpeg;base64,")
    at.session_state["runs_table"] = {"selection": {"rows": [row], "columns": [], "cells": []}}
    at.run()
    at.button(key="delete_run").click().run()
    assert runs.has(key)  # nothing deleted yet: a dialog asks
    assert {"confirm_delete", "cancel_delete"} <= {b.key for b in at.button}
    # (Confirming runs the dialog as a fragment, which AppTest cannot do: the browser test confirms.)
    runs.delete(key)


# -- issue #8: compare methods on the run's regions --------------------------------------------------------------


def test_compare_methods_runs_in_the_background_and_shows_every_method():
    at = new_app()
    at.switch_page(EXPLAIN).run()
    run_small_explanation(at)
    assert any("Compare methods" in m.value for m in at.markdown)
    at.multiselect(key="compare_methods").set_value(["random", "ablation", "gradcam"]).run()
    preview = next((f.value for f in at.dataframe if "forward passes" in f.value.columns), None)
    assert preview is not None and list(preview["method"]) == [
        "Random order",
        "Occlusion (feature ablation)",
        "Grad-CAM",
    ]
    assert list(preview["forward passes"]) == [0, 10, 1]  # 9 regions: ablation is N + 1
    at.button(key="compare_run").click().run()

    def compared(a) -> set:
        return next((set(f.value["method"]) for f in a.dataframe if "insertion_auc" in f.value.columns), set())

    at = wait_until(at, lambda a: len(compared(a)) == 4, timeout_s=180)
    assert compared(at) == {"lima", "random", "ablation", "gradcam"}
    assert any("Insertion, every method" in str(c.proto.spec) for c in at.get("plotly_chart"))
    assert {b.label for b in at.get("download_button")} >= {"Figure (PNG)", "Table (CSV)", "Table (JSON)"}
    # A second session asking for the same comparison reuses the saved results: nothing to run.
    again = new_app()
    again.switch_page(EXPLAIN).run()
    run_small_explanation(again)
    again.multiselect(key="compare_methods").set_value(["random", "ablation", "gradcam"]).run()
    assert again.button(key="compare_run").disabled


SCORECARD = "pages/5_Scorecard.py"


def test_the_scorecard_page_evaluates_the_set_in_the_background():
    scanned_errors_page()  # the scorecard picks images from the scan
    at = new_app()
    at.switch_page(SCORECARD).run()
    assert not at.exception
    at.multiselect(key="sc_methods").set_value(["lima", "random", "ablation"]).run()
    at.number_input(key="sc_limit").set_value(1).run()
    at.selectbox(key="sc_regions").set_value("grid").run()
    at.slider(key="sc_rp_grid_cells_per_side").set_value(3).run()
    at.button(key="sc_run").click().run()
    at = wait_until(at, lambda a: any("1 images" in s.value for s in a.subheader), timeout_s=240)
    frames = [f.value for f in at.dataframe]
    summary = next(f for f in frames if "insertion_auc" in f.columns and "kind" in f.columns)
    assert list(summary["method"]) == ["lima", "random", "ablation"]
    assert summary["insertion_auc"].str.match(r"\d\.\d{3} \[").all()
    versus = next(f for f in frames if "insertion_auc" in f.columns and "kind" not in f.columns)
    assert list(versus["method"]) == ["random", "ablation"] and versus["insertion_auc"].str.contains("LiMA wins").all()
    assert {b.label for b in at.get("download_button")} >= {"Scorecard (JSON)", "Scorecard (CSV)"}


def test_a_scorecard_of_another_set_or_model_is_not_shown_as_this_ones():
    """The last scorecard stays in the session; after the sidebar's set or model changes, it is
    named as the other set's, not shown under this one."""
    from explainer.evaluate import Evaluation

    scanned_errors_page()
    at = new_app()
    at.switch_page(SCORECARD).run()
    other = {"image_set": "someone else's set", "image_set_fingerprint": "0" * 64, "model": {"id": "x"}}
    at.session_state["scorecard_result"] = Evaluation((), ("random",), other, {})
    at.run()
    assert not at.exception
    assert not any("images" in s.value for s in at.subheader)
    assert "someone else" in texts(at) and "run it again" in texts(at)


def test_the_scorecard_asks_for_a_scan_first(tmp_path, monkeypatch):
    monkeypatch.setenv("LIMA_SCANS_DIR", str(tmp_path / "empty-scans"))
    at = new_app()
    at.switch_page(SCORECARD).run()
    assert not at.exception and "Scan the image set" in texts(at)


def test_a_damaged_run_and_an_odd_folder_name_do_not_break_the_runs_page(tiny_exp):
    runs = resources.run_store()
    runs.save(tiny_exp, "goodrun00000000000002")
    runs.save(tiny_exp, "damaged0000000000000")
    npz = runs.root / "damaged0000000000000" / "explanation.npz"
    npz.write_bytes(npz.read_bytes()[:100])
    odd = runs.root / "spa ce"
    odd.mkdir()
    (odd / "explanation.json").write_text((runs.root / "goodrun00000000000002" / "explanation.json").read_text())
    at = new_app()
    at.switch_page(RUNS).run()
    assert not at.exception and not at.error
    table = at.dataframe[0].value
    assert {"goodrun00000000000002", "damaged0000000000000"} <= set(table["key"])
    assert table.loc[table["key"] == "damaged0000000000000", "view"].isna().all()  # no thumbnail, no crash
    assert "spa ce" in "\n".join(t.value for t in at.text)


def test_cancel_in_one_session_leaves_a_shared_run_to_the_other():
    sessions = [new_app(), new_app()]
    for at in sessions:
        at.switch_page(EXPLAIN).run()
        at.selectbox(key="region_method").set_value("grid").run()
        at.slider(key="rp_grid_cells_per_side").set_value(12).run()  # 144 regions: minutes on a CPU
        at.button(key="run_button").click().run()
    first, second = sessions
    key = first.session_state["search_job"]
    assert second.session_state["search_job"] == key
    job = resources.job_manager().get(key)
    assert len(job.watchers) == 2
    second.button(key="cancel_search_job").click().run()
    assert job.active and not job.cancel_event.is_set()  # the first session still waits
    assert "goes on for another session" in texts(second)
    first.button(key="cancel_search_job").click().run()
    wait_until(first, lambda a: "was cancelled" in texts(a), timeout_s=60, step_s=0.2)


def test_the_sidebar_says_what_runs_the_model_and_switches_backends():
    at = new_app()
    assert "Runs with: ONNX Runtime on CPU" in texts(at)  # auto on the CPU
    at.selectbox(key="runtime_backend").set_value("torch").run()
    assert "Runs with: PyTorch on CPU" in texts(at)
    assert at.selectbox(key="runtime_precision").disabled  # a GPU option only


def test_a_cards_explain_link_carries_the_set_and_the_model():
    at = new_app()
    at.query_params.update({"model": "efficientnet_lite0", "set": "demo"})  # a link naming both
    at.switch_page(ERRORS).run()
    wait_until(at, lambda a: any(m.label == "Accuracy" for m in a.metric))
    first = next(b for b in at.button if b.label == "Explain")
    first.click().run()
    assert not at.exception, at.exception
    params = dict(at.query_params)
    assert params["image"] == first.key.removeprefix("explain_")
    assert (params["set"], params["model"]) == ("demo", "efficientnet_lite0")
