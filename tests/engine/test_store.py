"""Saved explanations: lossless round trip, atomic writes, corruption, run keys, the run store,
and the reference code's npy/json layout (lima-spec §4.4, §5.1)."""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np
import pytest
from helpers import TINY_SOURCE

from explainer import export, store
from explainer.errors import LimaError
from explainer.explanation import LOG_FIELDS, Explanation
from explainer.store import RunStore, StoreError, key_of, run_key

ARRAY_FIELDS = ("view", "labels", "order", "area", "insertion_probs", "deletion_probs")
META_FIELDS = (
    "target",
    "tracked",
    "class_names",
    "config",
    "regions",
    "model",
    "source",
    "forward_passes",
    "wall_time_s",
    "device",
    "created",
    "versions",
)


def assert_same_explanation(a: Explanation, b: Explanation) -> None:
    for name in ARRAY_FIELDS:
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and x.shape == y.shape, name
        np.testing.assert_array_equal(x, y, err_msg=name)
    for name in LOG_FIELDS:
        x, y = getattr(a.log, name), getattr(b.log, name)
        assert x.dtype == y.dtype, name
        np.testing.assert_array_equal(x, y, err_msg=name)
    for name in META_FIELDS:
        assert getattr(a, name) == getattr(b, name), name
    assert a.insertion_auc == b.insertion_auc and a.deletion_auc == b.deletion_auc
    assert a.minimal_subset == b.minimal_subset and a.readout() == b.readout()
    assert a.budget_scores() == b.budget_scores()


def other(exp: Explanation) -> Explanation:
    """A different explanation (other arrays, target and time) for overwrite tests."""
    return dataclasses.replace(
        exp,
        target=0,
        created="2001-01-01T00:00:00+00:00",
        insertion_probs=exp.insertion_probs[::-1].copy(),
        order=exp.order[::-1].copy(),
    )


# -- save / load -----------------------------------------------------------------------------------


def test_round_trip_is_lossless(tiny_exp, tmp_path):
    assert tiny_exp.tracked == 3 and tiny_exp.n_regions == 16
    folder = store.save(tiny_exp, tmp_path / "run")
    assert sorted(p.name for p in folder.iterdir()) == ["explanation.json", "explanation.npz"]
    back = store.load(folder)
    assert_same_explanation(tiny_exp, back)
    assert back.tracked_insertion.tolist() == tiny_exp.tracked_insertion.tolist()
    assert not back.order.flags.writeable  # frozen after loading too


def test_dtypes_are_the_documented_ones(tiny_exp, tmp_path):
    back = store.load(store.save(tiny_exp, tmp_path))
    assert back.view.dtype == np.uint8 and back.labels.dtype == np.int32 and back.order.dtype == np.int32
    assert back.area.dtype == np.float64 and back.insertion_probs.dtype == np.float32
    assert back.log.direction.dtype.kind == "U" and back.log.region.dtype == np.int32


def test_json_holds_readable_curves_and_metrics(tiny_exp, tmp_path):
    doc = json.loads((store.save(tiny_exp, tmp_path) / "explanation.json").read_text())
    s = doc["summary"]
    assert doc["format"] == store.FORMAT and doc["target"] == 1 and doc["tracked"] == 3
    assert s["insertion"] == tiny_exp.insertion.tolist() and s["order"] == tiny_exp.order.tolist()
    assert s["insertion_auc"] == tiny_exp.insertion_auc and s["n_regions"] == 16
    assert s["minimal_subset"] == list(tiny_exp.minimal_subset) and s["readout"] == tiny_exp.readout()
    assert s["target_name"] == "class 1" and s["tracked_name"] == "class 3"


def test_saving_twice_overwrites(tiny_exp, tmp_path):
    store.save(tiny_exp, tmp_path)
    store.save(other(tiny_exp), tmp_path)
    assert store.load(tmp_path).target == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["explanation.json", "explanation.npz"]


def failing_replace(monkeypatch, fail_on: int):
    """Make the ``fail_on``-th call of os.replace (1-based) raise, as a crash would."""
    real, calls = os.replace, []

    def replace(src, dst):
        calls.append(dst)
        if len(calls) == fail_on:
            raise OSError("simulated crash during rename")
        return real(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    return calls


def test_a_failed_write_leaves_no_temp_file_and_the_old_result(tiny_exp, tmp_path, monkeypatch):
    store.save(tiny_exp, tmp_path)
    failing_replace(monkeypatch, fail_on=1)  # the NPZ's rename fails
    with pytest.raises(OSError):
        store.save(other(tiny_exp), tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["explanation.json", "explanation.npz"]
    assert_same_explanation(store.load(tmp_path), tiny_exp)


def test_a_write_interrupted_between_the_two_files_is_never_loaded_half(tiny_exp, tmp_path, monkeypatch):
    """New NPZ, old JSON, and the kept previous NPZ lost too: the SHA-256 in the JSON catches
    the mismatch; never a mix of old and new."""
    store.save(tiny_exp, tmp_path)
    failing_replace(monkeypatch, fail_on=2)  # the JSON's rename fails
    with pytest.raises(OSError):
        store.save(other(tiny_exp), tmp_path)
    monkeypatch.undo()
    (tmp_path / store.BACKUP).unlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["explanation.json", "explanation.npz"]
    with pytest.raises(StoreError):
        store.load(tmp_path)


def test_an_overwrite_interrupted_between_the_two_files_keeps_the_previous_result(tiny_exp, tmp_path, monkeypatch):
    store.save(tiny_exp, tmp_path)
    failing_replace(monkeypatch, fail_on=2)
    with pytest.raises(OSError):
        store.save(other(tiny_exp), tmp_path)
    monkeypatch.undo()
    assert_same_explanation(store.load(tmp_path), tiny_exp)


def test_write_atomic_cleans_up_on_failure(tmp_path, monkeypatch):
    failing_replace(monkeypatch, fail_on=1)
    with pytest.raises(OSError):
        store.write_atomic(tmp_path / "sub" / "f.bin", b"data")
    assert list((tmp_path / "sub").iterdir()) == []
    monkeypatch.undo()
    store.write_atomic(tmp_path / "sub" / "f.bin", b"data")
    assert (tmp_path / "sub" / "f.bin").read_bytes() == b"data"


def test_a_corrupted_npz_is_a_store_error(tiny_exp, tmp_path):
    store.save(tiny_exp, tmp_path)
    npz = tmp_path / "explanation.npz"
    data = bytearray(npz.read_bytes())
    for i in range(len(data) // 2, len(data) // 2 + 8):
        data[i] ^= 0xFF
    npz.write_bytes(bytes(data))
    with pytest.raises(StoreError):
        store.load(tmp_path)


def test_a_truncated_npz_is_a_store_error(tiny_exp, tmp_path):
    store.save(tiny_exp, tmp_path)
    npz = tmp_path / "explanation.npz"
    npz.write_bytes(npz.read_bytes()[:100])
    with pytest.raises(StoreError):
        store.load(tmp_path)


@pytest.mark.parametrize("missing", ["explanation.json", "explanation.npz"])
def test_a_missing_file_is_a_store_error(tiny_exp, tmp_path, missing):
    store.save(tiny_exp, tmp_path)
    (tmp_path / missing).unlink()
    with pytest.raises(StoreError, match=missing):
        store.load(tmp_path)


def test_an_empty_folder_and_bad_json_are_store_errors(tiny_exp, tmp_path):
    with pytest.raises(StoreError):
        store.load(tmp_path / "nothing-here")
    store.save(tiny_exp, tmp_path)
    (tmp_path / "explanation.json").write_text("{not json")
    with pytest.raises(StoreError):
        store.load(tmp_path)


def test_a_foreign_format_is_a_store_error(tiny_exp, tmp_path):
    store.save(tiny_exp, tmp_path)
    doc = json.loads((tmp_path / "explanation.json").read_text())
    doc["format"] = "something-else/1"
    (tmp_path / "explanation.json").write_text(json.dumps(doc))
    with pytest.raises(StoreError, match="format"):
        store.load(tmp_path)


def test_store_error_is_a_lima_error_and_an_os_error():
    assert issubclass(StoreError, LimaError) and issubclass(StoreError, OSError)


# -- run keys ----------------------------------------------------------------------------------------


def key_inputs(exp: Explanation) -> dict:
    return {
        "model": dict(exp.model),
        "view": np.array(exp.view),
        "labels": np.array(exp.labels),
        "target": exp.target,
        "tracked": exp.tracked,
        "config": json.loads(json.dumps(exp.config.to_dict())),
    }


def test_run_key_is_stable(tiny_exp):
    a, b = key_inputs(tiny_exp), key_inputs(tiny_exp)
    assert run_key(**a) == run_key(**b)
    assert len(run_key(**a)) == 20 and run_key(**a).isalnum()
    assert key_of(tiny_exp) == run_key(**a)
    assert key_of(tiny_exp, tracked_was_auto=True) == run_key(**{**a, "tracked": None})


def changed(inputs: dict, what: str) -> dict:
    out = {**inputs, "model": dict(inputs["model"]), "config": json.loads(json.dumps(inputs["config"]))}
    if what == "target":
        out["target"] = 2
    elif what == "tracked":
        out["tracked"] = 4
    elif what == "tracked auto":
        out["tracked"] = None
    elif what == "weights":
        out["config"]["weights"]["consistency"] = 19.0
    elif what == "pending":
        out["config"]["pending"] += 1
    elif what == "fill":
        out["config"]["fill"] = "mean"
    elif what == "search":
        out["config"]["search"] = "greedy"
    elif what == "tolerance":
        out["config"]["tolerance"] = 0.01
    elif what == "labels":
        labels = out["labels"].copy()
        labels[0, 0] = labels[-1, -1]
        out["labels"] = labels
    elif what == "view pixel":
        view = out["view"].copy()
        view[5, 7, 1] ^= 1
        out["view"] = view
    elif what == "model hash":
        out["model"]["weights_hash"] = "0" * 64
    elif what == "model id":
        out["model"]["id"] = "another"
    return out


@pytest.mark.parametrize(
    "what",
    [
        "target",
        "tracked",
        "tracked auto",
        "weights",
        "pending",
        "fill",
        "search",
        "tolerance",
        "labels",
        "view pixel",
        "model hash",
        "model id",
    ],
)
def test_run_key_changes_with_every_input(tiny_exp, what):
    base = key_inputs(tiny_exp)
    assert run_key(**changed(base, what)) != run_key(**base)


def test_run_key_ignores_what_does_not_change_the_result(tiny_exp):
    """The batch size, the device and the label map's integer type do not change a result."""
    base = key_inputs(tiny_exp)
    other_inputs = {
        **base,
        "config": {**base["config"], "batch_size": 999},
        "model": {**base["model"], "device": "cuda:0"},
        "labels": base["labels"].astype(np.int64),
    }
    assert run_key(**other_inputs) == run_key(**base)


# -- the run store -----------------------------------------------------------------------------------


def test_run_store_save_has_load_list_delete(tiny_exp, tmp_path):
    runs = RunStore(tmp_path)
    key = key_of(tiny_exp)
    assert not runs.has(key) and runs.list() == []
    path = runs.save(tiny_exp, key)
    assert path == tmp_path / key and runs.has(key)
    assert_same_explanation(runs.load(key), tiny_exp)
    [row] = runs.list()
    assert row["key"] == key and row["image"] == TINY_SOURCE["name"] and row["target"] == "class 1"
    assert row["tracked"] == "class 3" and row["model"] == "test:TinyCNN" and row["regions"] == "grid"
    assert row["n_regions"] == 16 and row["search"] == "bidirectional"
    assert row["insertion_auc"] == tiny_exp.insertion_auc and row["deletion_auc"] == tiny_exp.deletion_auc
    runs.delete(key)
    assert not runs.has(key) and runs.list() == [] and not (tmp_path / key).exists()
    with pytest.raises(StoreError):
        runs.load(key)


def test_run_store_lists_newest_first_and_skips_broken_runs(tiny_exp, tmp_path):
    runs = RunStore(tmp_path)
    runs.save(dataclasses.replace(tiny_exp, created="2024-05-01T10:00:00+00:00"), "older")
    runs.save(dataclasses.replace(tiny_exp, created="2025-05-01T10:00:00+00:00"), "newer")
    for name, data in (("broken", b"{oops"), ("a-list", b"[1, 2]"), ("not-utf8", b'{"created": "\xff"}')):
        (tmp_path / name).mkdir()
        (tmp_path / name / "explanation.json").write_bytes(data)
    assert [r["key"] for r in runs.list()] == ["newer", "older"]


BAD_KEYS = [
    "../x",
    "",
    "a/b",
    "a.b",
    "..",
    "/etc",
    "x y",
    "../../etc/passwd",
    "<script>alert(1)</script>",
    "." * 3000,
    "abc\x00def",
    "a" * 5000,
    "é",
    None,
    12,
]


@pytest.mark.parametrize("key", BAD_KEYS, ids=lambda k: repr(k)[:20])
def test_run_store_refuses_invalid_keys(tiny_exp, tmp_path, key):
    runs = RunStore(tmp_path / "runs")
    for call in (lambda: runs.load(key), lambda: runs.delete(key), lambda: runs.save(tiny_exp, key)):
        with pytest.raises(StoreError):
            call()
    assert not (tmp_path / "x").exists() and not (tmp_path / "runs").exists()


@pytest.mark.parametrize("key", BAD_KEYS, ids=lambda k: repr(k)[:20])
def test_has_answers_false_for_anything_that_is_not_a_key(tmp_path, key):
    """A link may carry any text: has() never raises (it used to raise StoreError, or OSError
    'File name too long' from the file system)."""
    assert RunStore(tmp_path).has(key) is False


# -- the reference layout (lima-spec §4.4) -------------------------------------------------------------


@pytest.fixture(scope="module")
def reference(tiny_exp, tmp_path_factory):
    out = tmp_path_factory.mktemp("reference")
    npy_path, json_path = export.export_reference(tiny_exp, out, "photo.JPEG")
    return npy_path, json_path, np.load(npy_path), json.loads(json_path.read_text())


def test_reference_paths(tiny_exp, reference):
    npy_path, json_path, _, _ = reference
    assert npy_path.parts[-3:] == ("npy", "1", "photo.npy")
    assert json_path.parts[-3:] == ("json", "1", "photo.json")


def test_reference_npy_holds_bgr_region_images_in_ranked_order(tiny_exp, reference):
    _, _, regions, _ = reference
    n, s = tiny_exp.n_regions, tiny_exp.size
    assert regions.shape == (n, s, s, 3) and regions.dtype == np.uint8
    bgr = tiny_exp.view[..., ::-1]
    # The regions sum (in uint64, as the reference does) to the BGR view.
    np.testing.assert_array_equal(regions.sum(0, dtype=np.uint64), bgr)
    for i, r in enumerate(tiny_exp.order):
        inside = tiny_exp.labels == r
        np.testing.assert_array_equal(regions[i][inside], bgr[inside])
        assert not regions[i][~inside].any()


def test_reference_json_curves(tiny_exp, reference):
    _, _, _, doc = reference
    n = tiny_exp.n_regions
    assert len(doc["consistency_score"]) == n == len(doc["collaboration_score"])
    np.testing.assert_array_equal(doc["consistency_score"], tiny_exp.insertion[1:])
    np.testing.assert_allclose(doc["collaboration_score"], 1 - tiny_exp.deletion[1:], atol=1e-15)
    assert doc["sub-k"] == n and doc["pending_samples"] == 3
    assert doc["org_score"] == tiny_exp.insertion[-1] and doc["baseline_score"] == tiny_exp.insertion[0]
    w = tiny_exp.config["weights"]
    assert (doc["lambda1"], doc["lambda2"], doc["lambda3"], doc["lambda4"]) == (
        w["consistency"],
        w["collaboration"],
        w["confidence"],
        w["effectiveness"],
    )


def test_reference_json_step_lists(tiny_exp, reference):
    _, _, _, doc = reference
    forward = int((tiny_exp.log.direction == "forward").sum())
    backward = int((tiny_exp.log.direction == "backward").sum())
    # N = 16, p = 3: b = ceil(13/2) = 7 backward steps, N − b − 1 = 8 recorded forward steps
    assert (forward, backward) == (8, 7)
    for term in ("consistency", "collaboration", "confidence", "effectiveness"):
        assert len(doc[f"{term}_score_increase"]) == forward
        assert len(doc[f"{term}_score_decrease"]) == backward
    assert len(doc["smdl_score"]) == forward
    assert doc["smdl_score_max"] == max(doc["smdl_score"])
    assert doc["smdl_score_max_index"] == int(np.argmax(doc["smdl_score"]))
    # lima-spec §4.2: the reference rebuilds its curves from the step lists as
    # increase + reversed(decrease) + [the full (consistency) / black (collaboration) image].
    cons = doc["consistency_score_increase"] + doc["consistency_score_decrease"][::-1] + [doc["org_score"]]
    colla = (
        doc["collaboration_score_increase"] + doc["collaboration_score_decrease"][::-1] + [1 - doc["baseline_score"]]
    )
    np.testing.assert_allclose(cons, doc["consistency_score"], atol=1e-6)
    np.testing.assert_allclose(colla, doc["collaboration_score"], atol=1e-6)


def test_reference_json_counterfactual_fields(tiny_exp, reference):
    _, _, _, doc = reference
    assert doc["gt_label"] == 1 and doc["failure_label"] == 3
    assert doc["gt_class_name"] == "class 1" and doc["failure_class_name"] == "class 3"
    np.testing.assert_array_equal(doc["failure_score"], tiny_exp.tracked_insertion[1:])
    assert doc["original_gt_score"] == tiny_exp.insertion[-1]
    assert doc["original_failure_score"] == tiny_exp.tracked_insertion[-1]


def test_reference_json_without_a_tracked_class_has_no_counterfactual_fields(tiny_exp):
    doc = export.reference_json(dataclasses.replace(tiny_exp, tracked=None))
    assert not {"gt_label", "failure_label", "failure_score"} & set(doc)


def trapezoid(x, y) -> float:
    return sum((x[i + 1] - x[i]) * (y[i + 1] + y[i]) / 2 for i in range(len(x) - 1))


def test_reference_evaluator_auc_matches(tiny_exp, reference):
    """lima-spec §5.1, written out, on the exported files; equal to ours when no view pixel is
    pure black (the evaluator's non-zero test then measures the same area as the label map)."""
    _, _, regions, doc = reference
    assert (tiny_exp.view.sum(-1) > 0).all()
    regions = regions.astype(np.uint64)
    image = regions.sum(0)
    nz = lambda img: float((img.sum(-1) != 0).mean())  # noqa: E731
    prefixes = np.cumsum(regions, axis=0)
    ins_x = [0.0] + [nz(p) for p in prefixes]
    del_x = [1 - nz(image)] + [1 - nz(image - p) for p in prefixes]
    ins_y = [1 - doc["collaboration_score"][-1]] + doc["consistency_score"]
    del_y = [1 - v for v in [1 - ins_y[-1]] + doc["collaboration_score"]]
    assert trapezoid(ins_x, ins_y) == pytest.approx(tiny_exp.insertion_auc, abs=1e-9)
    assert trapezoid(del_x, del_y) == pytest.approx(tiny_exp.deletion_auc, abs=1e-9)


# -- the Explanation object, on a hand-made result ----------------------------------------------------


def hand_made(**changes) -> Explanation:
    """3 regions of a 4×4 view (areas 1/4, 1/4, 1/2), classes cat/dog/fox, target cat, order 2, 0, 1."""
    from explainer.explanation import SearchLog

    labels = np.array([[2, 2, 0, 0], [2, 2, 0, 0], [1, 1, 1, 1], [1, 1, 1, 1]], np.int32)
    ins = np.array([[0.1, 0.6, 0.3], [0.2, 0.5, 0.3], [0.7, 0.2, 0.1], [0.5, 0.4, 0.1]], np.float32)
    dels = np.array([[0.5, 0.4, 0.1], [0.3, 0.4, 0.3], [0.2, 0.3, 0.5], [0.1, 0.6, 0.3]], np.float32)
    terms = {"objective": 1.0, "consistency": 0.2, "collaboration": 0.7, "confidence": 0.1, "effectiveness": 0.0}
    log = SearchLog.from_rows(
        [
            {"direction": "forward", "region": 2, "position": 1, "candidates": 3, **terms},
            {"direction": "backward", "region": 1, "position": 3, "candidates": 2, **terms},
        ]
    )
    fields = dict(
        view=np.full((4, 4, 3), 9, np.uint8),
        labels=labels,
        order=np.array([2, 0, 1], np.int32),
        area=np.array([0.0, 0.25, 0.5, 1.0]),
        insertion_probs=ins,
        deletion_probs=dels,
        target=0,
        tracked=1,
        class_names=("cat", "dog", "fox"),
        log=log,
        config={"search": "bidirectional", "pending": 1, "weights": {}, "fill": "black"},
    )
    fields.update(changes)
    return Explanation(**fields)


def test_explanation_curves_and_metrics_by_hand():
    e = hand_made()
    assert e.n_regions == 3 and e.size == 4
    np.testing.assert_allclose(e.insertion, [0.1, 0.2, 0.7, 0.5], atol=1e-7)
    np.testing.assert_allclose(e.tracked_deletion, [0.4, 0.4, 0.3, 0.6], atol=1e-7)
    # trapezoids on the area axis: 0.25·0.15 + 0.25·0.45 + 0.5·0.6
    assert e.insertion_auc == pytest.approx(0.0375 + 0.1125 + 0.3, abs=1e-7)
    # on the step axis (thirds): (0.15 + 0.45 + 0.6) / 3
    assert e.insertion_auc_steps == pytest.approx(1.2 / 3, abs=1e-7)
    assert e.minimal_subset_size == 2 and e.minimal_subset == (2, 0)
    np.testing.assert_allclose(e.marginal_gains(), [0.1, 0.5, -0.2], atol=1e-7)
    np.testing.assert_allclose(e.marginal_gains(1), [-0.1, -0.3, 0.2], atol=1e-7)
    assert e.full_prediction == 0 and e.prediction_at(0) == 1 and e.prediction_at(2) == 0
    assert e.budget_scores((0.25, 0.5))[1].highest == pytest.approx(0.7)


def test_explanation_readout_by_hand():
    """The facts of the sentence (its exact wording may change): k*, its area, both scores, and
    what the model would predict with only the subset shown."""
    text = hand_made().readout()
    for fact in ("2 regions", "50 %", "0.50", "0.70", "predict cat"):
        assert fact in text, (fact, text)
    # the subset's prediction stays wrong: p(cat) peaks at 0.30 after 1 region, but dog still wins
    ins = np.array([[0.1, 0.6, 0.3], [0.3, 0.6, 0.1], [0.2, 0.7, 0.1], [0.25, 0.4, 0.35]], np.float32)
    text = hand_made(insertion_probs=ins).readout()
    for fact in ("1 region", "25 %", "0.25", "0.30", "still predict dog"):
        assert fact in text, (fact, text)
    # the peak is the full image: no smaller subset to report
    ins = np.array([[0.1, 0.6, 0.3], [0.2, 0.6, 0.2], [0.3, 0.5, 0.2], [0.6, 0.3, 0.1]], np.float32)
    text = hand_made(insertion_probs=ins).readout()
    assert "3 regions" in text and "0.60" in text and "predict dog" not in text


def test_explanation_top_classes_step_entries_and_mistake():
    e = hand_made()
    assert e.top_classes(2, k=2) == [(0, "cat", pytest.approx(0.7)), (1, "dog", pytest.approx(0.2))]
    assert [c for c, _, _ in e.top_classes(1, path="deletion")] == [1, 0, 2]
    assert e.step_entry(0) is None and e.step_entry(2) is None  # step 2: appended without a step
    assert e.step_entry(1)["region"] == 2 and e.step_entry(1)["direction"] == "forward"
    assert e.step_entry(3)["direction"] == "backward" and e.step_entry(3)["region"] == 1
    assert e.is_mistake is None
    assert hand_made(source={"label": 0}).is_mistake is False
    assert hand_made(source={"label": 2}).is_mistake is True
    assert e.class_name(None) == "" and e.class_name(2) == "fox"


def test_explanation_arrays_are_frozen():
    e = hand_made()
    with pytest.raises(ValueError):
        e.order[0] = 1
    with pytest.raises(ValueError):
        e.log.region[0] = 0
    with pytest.raises(dataclasses.FrozenInstanceError):
        e.target = 2
