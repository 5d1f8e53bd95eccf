"""The Study page (issue #9) with Streamlit's AppTest, on the built-in model and demo photos."""

from __future__ import annotations

import io
import json
import zipfile

from app_helpers import new_app, wait_until

ERRORS = "pages/1_Find_errors.py"
STUDY = "pages/6_Study.py"


def test_study_page_builds_previews_and_offers_the_bundle():
    at = new_app()
    assert "Study" in {link.label for link in at.get("page_link")}
    at.switch_page(ERRORS).run()
    wait_until(at, lambda a: any(m.label == "Accuracy" for m in a.metric))  # the study reads the scan
    at.switch_page(STUDY).run()
    assert not at.exception, at.exception
    # No search needed: the random control matches the budget when no ranked method is chosen.
    at.multiselect(key="study_conditions").set_value(["random", "none"])
    at.multiselect(key="study_budgets").set_value(["0.25"])
    at.number_input(key="study_mistakes").set_value(99).run()  # more than the set has: said at once
    assert any("asks for 99 mistakes" in e.value for e in at.error)
    assert not [b for b in at.button if b.key == "study_build"]
    at.number_input(key="study_mistakes").set_value(2)
    at.number_input(key="study_correct").set_value(2)
    at.selectbox(key="study_regions").set_value("grid")
    at.slider(key="study_lists").set_value(2)
    at.run()
    assert not at.error, [e.value for e in at.error]
    assert any("4 images (2 mistakes, 2 correct)" in c.value for c in at.caption)
    at.button(key="study_build").click().run()
    at = wait_until(at, lambda a: any(m.label == "Stimuli" for m in a.metric))
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Stimuli"] == "8" and metrics["Lists"] == "2" and metrics["Trials per list"] == "4"
    bundle = at.session_state["study_bundle"]
    with zipfile.ZipFile(io.BytesIO(bundle.zip())) as z:
        names = z.namelist()
        assert "study/manifest.csv" in names and "study/lists/list_01.csv" in names
        assert json.loads(z.read("study/study.json"))["resolved"]["conditions"] == ["random", "none"]
    # The participant view shows list 1's first trial: the image and the model's label, no condition.
    first = bundle.lists[0][0]
    shown = " ".join(m.value for m in at.markdown)
    assert "The model says" in shown and first["shown_label"] in shown.replace("\\", "")
    assert "random" not in " ".join(c.value for c in at.caption if "Trial" in c.value)
    at.number_input(key="study_view_trial").set_value(2).run()
    assert not at.exception
    assert bundle.lists[0][1]["shown_label"] in " ".join(m.value for m in at.markdown).replace("\\", "")


def test_a_public_demo_builds_no_study(monkeypatch):
    # A study can mean thousands of searches at any region count: like the Scorecard, a public demo doesn't run one
    monkeypatch.setenv("LIMA_MODE", "public")
    at = new_app()
    at.switch_page(ERRORS).run()
    wait_until(at, lambda a: any(m.label == "Accuracy" for m in a.metric))
    at.switch_page(STUDY).run()
    assert not at.exception, at.exception
    at.multiselect(key="study_conditions").set_value(["random", "none"])
    at.slider(key="study_lists").set_value(2)
    at.run()
    build = [b for b in at.button if b.key == "study_build"]
    assert build and build[0].disabled and "team server" in (build[0].help or "")
