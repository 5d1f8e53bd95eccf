"""Every page with Streamlit's AppTest, on the built-in model and the built-in demo photos."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from app_helpers import new_app, wait_until
from explainer.data import demo_set
from explainer.sam import SAM_ENV_VAR
from ui import resources

EXPLAIN = "pages/2_Explain.py"
ERRORS = "pages/1_Find_errors.py"
RUNS = "pages/3_Runs.py"


def texts(at) -> str:
    """All visible text of the app (markdown, captions, alerts, metrics), joined."""
    parts = [e.value for kind in ("markdown", "caption", "success", "info", "warning", "error", "title", "subheader")
             for e in at.get(kind)]
    parts += [f"{m.label} {m.value}" for m in at.metric]
    return "\n".join(str(p) for p in parts)


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
    assert "Not available" in body                              # no SAM checkpoint in the test environment
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
    at.switch_page(ERRORS).run()                                # one run, no waiting
    assert any(m.label == "Accuracy" for m in at.metric)
    assert not at.get("progress")


def test_confusion_click_and_filters_narrow_the_gallery():
    at = scanned_errors_page()
    total = len([b for b in at.button if b.label == "Explain"])
    assert total >= 2
    at.session_state["confusions"] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    at.run()
    assert len([b for b in at.button if b.label == "Explain"]) == 1
    at.session_state["confusions"] = {"selection": {"rows": [], "columns": [], "cells": []}}
    at.text_input(key="filter_query").input("zzzz-no-such-class").run()
    assert len([b for b in at.button if b.label == "Explain"]) == 0


def test_explain_button_opens_the_image_on_the_explain_page():
    at = scanned_errors_page()
    first = next(b for b in at.button if b.label == "Explain")
    first.click().run()
    assert not at.exception
    key = first.key.removeprefix("explain_")
    assert at.session_state["item_key"] == key
    assert at.selectbox(key="_item").value == key


def run_small_explanation(at, cells: int = 3):
    """Choose a 3×3 grid (9 regions: fast on a CPU), run LiMA, wait for the result."""
    at.selectbox(key="region_method").set_value("grid").run()
    at.slider(key="rp_grid_cells_per_side").set_value(cells).run()
    at.button(key="run_button").click().run()
    return wait_until(at, lambda a: any(m.label == "Minimal subset" for m in a.metric), timeout_s=180)


def test_explain_runs_lima_and_steps_through_the_result():
    at = new_app()
    at.switch_page(EXPLAIN).run()
    assert "regions" in texts(at) and "forward passes" in texts(at)        # the cost preview
    run_small_explanation(at)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Forward passes"] in ("90", "88", "86", "84")           # 9·10, minus skipped re-scores
    key = at.query_params["run"][0] if isinstance(at.query_params["run"], list) else at.query_params["run"]
    exp = resources.run_store().load(key)
    step = at.slider(key="step")
    assert step.max == exp.n_regions == 9 and step.value == exp.minimal_subset_size
    step.set_value(2).run()
    assert str(at.query_params["step"]).strip("[]'\"") == "2"
    assert f"p({exp.class_names[exp.target]})" in texts(at)
    # Clicking a curve point (the chart's selection state) jumps to that step.
    at.session_state["curve_ins"] = {"selection": {"points": [{"point_index": 5, "customdata": 5}],
                                                   "point_indices": [5], "box": [], "lasso": []}}
    at.run()
    at.button(key="step_next").click().run()
    assert at.slider(key="step").value in (3, 6)
    labels = [b.label for b in at.get("download_button")]
    for wanted in ("PNG of this view", "Figure (PNG)", "Step-through (GIF)", "Result (JSON + NPZ)",
                   "Reference layout (npy/json)", "Curves (CSV)"):
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
    assert resources.job_manager().get(first_key) is before               # no new job was started


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
    assert fresh.slider(key="step").value == 4


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
    at.slider(key="rp_grid_cells_per_side").set_value(12).run()          # 144 regions: minutes on a CPU
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
    at.selectbox(key="_set_kind").set_value("server").run()
    at.text_input(key="_set_path").input("/etc").run()
    assert "outside the data root" in texts(at)


def test_a_folder_set_under_the_data_root_is_scanned(tmp_path, monkeypatch, lite0):
    import skimage.data

    folder = tmp_path / "set" / "tabby"
    folder.mkdir(parents=True)
    Image.fromarray(skimage.data.chelsea()).save(folder / "cat.png")
    (tmp_path / "set" / "not-a-class").mkdir()
    monkeypatch.setenv("LIMA_DATA_ROOT", str(tmp_path))
    at = new_app()
    at.selectbox(key="_set_kind").set_value("server").run()
    at.text_input(key="_set_path").input("set").run()
    at.switch_page(ERRORS).run()
    at = wait_until(at, lambda a: any(m.label == "Accuracy" for m in a.metric))
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Images"] == "1" and metrics["Misclassified"] == "1"   # the model calls it a tiger cat
    assert "not-a-class" in "\n".join(t.value for t in at.text)


def test_a_model_that_cannot_load_gets_a_clear_message():
    at = new_app()
    at.selectbox(key="_model_kind").set_value("torchscript").run()
    at.text_input(key="_ts_path").input("no/such/model.pt").run()
    body = texts(at)
    assert "could not be loaded" in body or "not found" in body
    at.switch_page(ERRORS).run()
    assert "could not be loaded" in texts(at)


def _png_bytes(mode: str = "RGB") -> bytes:
    import skimage.data

    buf = io.BytesIO()
    Image.fromarray(skimage.data.coffee()).convert(mode).save(buf, format="PNG")
    return buf.getvalue()


def test_uploads_accept_odd_modes_and_refuse_broken_files():
    at = new_app()
    at.switch_page(ERRORS).run()
    at.file_uploader(key="upload_files").upload("broken.png", b"not an image", "image/png") \
        .upload("grey.png", _png_bytes("L"), "image/png").upload("rgba.png", _png_bytes("RGBA"), "image/png").run()
    at.selectbox(key="upload_label").set_value(967).run()
    next(b for b in at.button if b.label == "Add to my uploads").click().run()
    assert not at.exception
    assert any("broken.png" in e.value for e in at.error), [e.value for e in at.error]
    assert len(at.session_state["uploads"]) == 2
