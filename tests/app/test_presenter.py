"""Issue #11 in AppTest: the presenter view, the playlist, what-if by hand and its share link.

The browser half of the player (keys, play, canvas clicks) is in tests/e2e/test_player.py;
here the component's reports are injected as the browser would send them."""

from __future__ import annotations

import shutil

import pytest
from app_helpers import new_app
from helpers import ROOT

EXPLAIN = "pages/2_Explain.py"
CAT = "dd199df0a1b8725b41be"  # the real Lite0 run saved by version 0.1 (25 SLICO regions)
TINY = "4d8547f28884f8a5cd2d"


@pytest.fixture(autouse=True)
def fixture_runs(tmp_path, monkeypatch):
    shutil.copytree(ROOT / "tests" / "fixtures" / "runs_v0_1", tmp_path / "fixture-runs")
    monkeypatch.setenv("LIMA_RUNS_DIR", str(tmp_path / "fixture-runs"))


def texts(at) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    parts += [e.value for e in at.warning] + [e.value for e in at.success] + [e.value for e in at.info]
    return "\n".join(str(p) for p in parts)


def open_run(key: str, **params: str):
    at = new_app()
    at.query_params["run"] = key
    for name, value in params.items():
        at.query_params[name] = value
    at.switch_page(EXPLAIN).run()
    assert not at.exception, at.exception
    return at


def param(at, name: str):
    value = at.query_params.get(name)
    return value[0] if isinstance(value, list) else value


def test_the_presenter_view_shows_only_the_run():
    at = open_run(CAT, view="present", step="6")
    shown = texts(at)
    assert "Chelsea the cat" in shown and "explaining tabby" in shown
    assert "run 2 of 2" in shown or "run 1 of 2" in shown  # both saved runs form the playlist
    assert not at.metric and not at.get("download_button") and not at.expander  # no metrics, exports, set-up
    assert "Setup" not in [m.value for m in at.sidebar.markdown]  # the sidebar is never drawn
    assert at.session_state["step"] == 6
    assert param(at, "view") == "present" and param(at, "step") == "6"


def test_a_long_photo_name_is_shortened_so_the_title_keeps_one_line(tmp_path):
    import json

    path = tmp_path / "fixture-runs" / CAT / "explanation.json"
    doc = json.loads(path.read_text(encoding="utf-8"))
    doc["source"]["name"] = "A very long photo name from the keynote about cats, sofas and tigers (final v2).jpg"
    path.write_text(json.dumps(doc), encoding="utf-8")
    at = open_run(CAT, view="present")
    title = next(m.value for m in at.markdown if "explaining tabby" in m.value)
    assert "A very long photo name from the keynote…" in title and "predicted tiger cat" in title


def test_pagedown_goes_to_the_next_run_of_the_playlist():
    at = open_run(CAT, view="present", playlist=f"{CAT}.{TINY}.nonsense")
    assert "run 1 of 2" in texts(at)  # a key that is no saved run is left out
    at.session_state[f"player_present_{CAT}"] = {"goto": "next"}
    at.run()
    assert not at.exception
    assert param(at, "run") == TINY and param(at, "view") == "present"
    assert param(at, "playlist") == f"{CAT}.{TINY}.nonsense"
    assert "run 2 of 2" in texts(at)


def test_the_presenter_view_of_a_missing_run_falls_back_with_a_note():
    at = open_run("0" * 20, view="present")
    assert "The presenter view shows a saved run" in texts(at)
    assert "view" not in at.query_params


def test_what_if_scores_the_browsers_subset_and_links_it():
    at = open_run(CAT)
    assert "What if? Hide or show regions by hand" in texts(at)
    at.session_state[f"whatif_{CAT}"] = {"shown": [0, 1, 2]}
    at.run()
    assert not at.exception
    assert param(at, "shown") == "0.1.2"
    # A link with that subset opens it again (and keeps it in the URL).
    again = open_run(CAT, shown="0.1.2")
    assert again.session_state["_whatif"][CAT]["shown"] == [0, 1, 2]
    assert param(again, "shown") == "0.1.2"


def test_the_what_if_share_link_carries_the_hand_picked_subset():
    # The subset is chosen after the step's share link was drawn (another fragment): the what-if
    # section shows a link of its own that carries it, for copying.
    at = open_run(CAT)
    at.session_state[f"whatif_{CAT}"] = {"shown": [0, 1, 2]}
    at.run()
    links = [c.value for c in at.code if "run=" + CAT in c.value]
    assert any("shown=0.1.2" in link and "step=" in link for link in links), links


def test_a_bad_subset_in_a_link_is_named_and_replaced():
    at = open_run(CAT, shown="3.999")
    assert "not regions of this run" in texts(at)
    from explainer.store import RunStore

    exp = RunStore().load(CAT)
    assert at.session_state["_whatif"][CAT]["shown"] == sorted(int(r) for r in exp.minimal_subset)


def test_the_flip_helper_reports_what_it_found():
    at = open_run(CAT)
    flip = at.selectbox(key=f"flip_class_{CAT}")
    assert flip.value == 281  # the true class, tabby, comes first for a mistake
    flip.set_value(285).run()  # Egyptian cat: the minimal subset already predicts it
    at.button(key=f"flip_{CAT}").click().run()
    assert not at.exception
    shown = texts(at)
    assert "makes the model predict Egyptian cat" in shown and "checked with a forward pass" in shown
    assert param(at, "shown") is not None


def test_the_partition_comparison_offers_the_missing_partitions():
    at = open_run(CAT)
    assert "Does the partition matter?" in texts(at)
    assert at.multiselect(key="partition_choices").value == ["SLICO, about 36 regions", "SEEDS, about 49 regions"]
    assert at.button(key="partition_run").label == "Explain on 2 more partitions"
    at.multiselect(key="partition_choices").set_value(["Grid 6 × 6"]).run()
    assert at.button(key="partition_run").label == "Explain on 1 more partition"


def test_saved_runs_offer_their_page_as_a_playlist():
    at = new_app()
    at.switch_page("pages/3_Runs.py").run()
    assert not at.exception
    links = [e for e in at.get("page_link") if "Present these runs" in str(e.proto.label)]
    assert links, [str(e.proto) for e in at.get("page_link")][:3]
    query = links[0].proto.query_string
    assert "view=present" in query
    assert f"playlist={TINY}.{CAT}" in query or f"playlist={CAT}.{TINY}" in query  # both runs, newest first


@pytest.mark.slow
def test_a_partition_is_explained_in_the_background_and_compared(monkeypatch):
    from app_helpers import wait_until

    from explainer import agreement
    from ui import explain_partitions

    # A 3 × 3 grid besides the product's partitions (36-49 regions, ~1,000 passes each): the
    # same path at a tenth of the cost.
    small = ("Grid 3 × 3", "grid", {"cells_per_side": 3})
    monkeypatch.setattr(agreement, "PARTITIONS", (*agreement.PARTITIONS, small))
    monkeypatch.setattr(explain_partitions, "LABELS", [*explain_partitions.LABELS, small[0]])
    at = open_run(CAT)
    at.multiselect(key="partition_choices").set_value(["Grid 3 × 3"]).run()
    at.button(key="partition_run").click().run()
    assert not at.exception
    wait_until(at, lambda a: any("rank correlation (ρ)" in str(d.value.columns) for d in a.dataframe), timeout_s=300)
    table = next(d.value for d in at.dataframe if "rank correlation (ρ)" in d.value.columns)
    assert table["partition"].tolist() == ["Grid 3 × 3"] and table["regions"].tolist() == [9]
    assert -1 <= table["rank correlation (ρ)"][0] <= 1 and 0 <= table["subset overlap (IoU)"][0] <= 1


def test_a_dimmed_link_opens_the_presenter_view_dimmed_and_keeps_it(monkeypatch):
    """hidden=dim, as the Explain page's links carry it, dims the presenter's stage too; the
    address bar and the playlist's next run keep it."""
    from ui import player

    looks = []
    original = player.step_player

    def recording(exp, key, start, hidden, *args, **kwargs):
        looks.append(hidden)
        return original(exp, key, start, hidden, *args, **kwargs)

    monkeypatch.setattr(player, "step_player", recording)
    at = open_run(CAT, view="present", hidden="dim", playlist=f"{CAT}.{TINY}")
    assert looks == ["dim"] and param(at, "hidden") == "dim"
    at.session_state[f"player_present_{CAT}"] = {"goto": "next"}
    at.run()
    assert param(at, "run") == TINY and param(at, "hidden") == "dim" and looks[-1] == "dim"
    plain = open_run(CAT, view="present", hidden="nonsense")
    assert looks[-1] == "black" and param(plain, "hidden") is None
