"""Batch explanation in process: selection, the JSON's keys, run keys shared with interactive runs,
reuse and resume, and the cohort's aggregates. (Ray: tests/engine/test_ray_batch.py.)"""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest
from helpers import load_tiny

from explainer import cli, cohort
from explainer.batch import BatchOptions, InProcessRunner, iter_batch, run_batch, select
from explainer.config import SearchOptions
from explainer.errors import BatchError
from explainer.regions import REGION_METHODS, RegionSpec, propose_regions
from explainer.scan import ScanCache, scan
from explainer.store import RunStore, run_key

JSON_KEYS = {
    "name",
    "label",
    "target",
    "run_key",
    "order",
    "insertion_auc",
    "deletion_auc",
    "minimal_subset",
    "forward_passes",
    "seconds",
    "worker",
}
GRID = RegionSpec("grid", REGION_METHODS.get("grid").options.parse({"cells_per_side": "3"}))


def test_selection_follows_the_scan(tiny):
    clf, image_set, scanned = tiny
    mistakes = scanned.mistakes()
    assert mistakes, "the tiny model should get some images wrong"
    chosen = select(scanned, image_set, BatchOptions(errors_only=True), clf.class_names)
    assert [row.key for _, row in chosen] == [r.key for r in mistakes]
    t, p = mistakes[0].label, mistakes[0].pred
    pair = select(scanned, image_set, BatchOptions(confusion=f"{t}>class {p}"), clf.class_names)
    assert pair and all(row.label == t and row.pred == p for _, row in pair)
    one_class = select(scanned, image_set, BatchOptions(classes=str(t), limit=1), clf.class_names)
    assert len(one_class) == 1 and one_class[0][1].label == t
    assert len(select(scanned, image_set, BatchOptions(), clf.class_names)) == 8
    with pytest.raises(BatchError, match="no class named"):
        select(scanned, image_set, BatchOptions(confusion="1>husky"), clf.class_names)
    with pytest.raises(BatchError, match="TRUE>PRED"):
        select(scanned, image_set, BatchOptions(confusion="1"), clf.class_names)


def test_batch_saves_runs_under_interactive_keys_and_reuses_them(tiny, tmp_path):
    clf, image_set, scanned = tiny
    runs = RunStore(tmp_path / "runs")
    options = SearchOptions(pending=2)
    selection = BatchOptions(errors_only=True, limit=3)
    seen = []
    first = run_batch(clf, image_set, scanned, GRID, options, selection, runs=runs, on_outcome=seen.append)
    assert len(first.images) == 3 and first.computed == 3 and first.reused == 0 and first.complete
    assert [o.run_key for o in seen] == [o.run_key for o in first.images]
    for outcome, (item, row) in zip(first.images, select(scanned, image_set, selection, clf.class_names)):
        assert set(outcome.to_dict()) >= JSON_KEYS
        # the key an interactive run of the same image gets: true class, prediction tracked
        view = clf.view(item.load())
        labels = propose_regions(view, "grid", GRID.options)
        assert outcome.run_key == run_key(clf.describe(), view, labels, row.label, row.pred, options)
        saved = runs.load(outcome.run_key)
        assert saved.target == row.label == outcome.target and saved.tracked == row.pred
        assert outcome.order == saved.order.tolist() and len(outcome.order) == 9
        assert outcome.minimal_subset == list(saved.minimal_subset)
        assert outcome.insertion_auc == pytest.approx(saved.insertion_auc)
        assert outcome.gain == pytest.approx(np.max(saved.insertion) - saved.insertion[-1])
        assert 0 < outcome.minimal_subset_area <= 1
    again = run_batch(clf, image_set, scanned, GRID, options, selection, runs=runs)
    assert again.reused == 3 and again.computed == 0
    assert [o.order for o in again.images] == [o.order for o in first.images]
    assert all(o.worker == "reused" for o in again.images)
    # the cohort's saved runs, found through the run index, give the batch's outcomes
    where = cohort.saved_filter(clf.id, image_set.name, selection, "grid", clf.class_names)
    listed = cohort.saved_outcomes(runs, [row["key"] for row in runs.list(where)])
    made = {o.run_key: o for o in first.images}
    assert sorted(o.run_key for o in listed) == sorted(made) and {o.worker for o in listed} == {"saved"}
    same = ("name", "label", "target", "item_key", "prediction", "order", "minimal_subset", "insertion_auc")
    for o in listed:
        assert [getattr(o, f) for f in same] == [getattr(made[o.run_key], f) for f in same]
        assert (o.gain, o.minimal_subset_area) == (made[o.run_key].gain, made[o.run_key].minimal_subset_area)
    predicted = BatchOptions(errors_only=True, target="predicted")
    assert runs.count(cohort.saved_filter(clf.id, image_set.name, predicted, "grid", clf.class_names)) == 0
    assert runs.count(cohort.saved_filter(clf.id, image_set.name, selection, "slico", clf.class_names)) == 0


def test_a_stopped_batch_resumes_where_it_stopped(tiny, tmp_path):
    clf, image_set, scanned = tiny
    runs = RunStore(tmp_path / "runs")
    # Five images: at the first progress with two saved, at most four are computed (saves lag by
    # at most two, and one image arrives per step), so the stop always leaves one to resume.
    selection = BatchOptions(limit=5)
    batch = iter_batch(clf, image_set, scanned, GRID, SearchOptions(pending=2), selection, InProcessRunner(clf), runs)
    for progress in batch:
        if progress.computed >= 2:
            assert progress.images_per_min and progress.images_per_min > 0
            batch.close()  # what Ctrl-C and Cancel do
            break
    saved = len(runs.list())
    assert 2 <= saved < 5  # everything computed by the stop is saved (saves under way included)
    resumed = run_batch(clf, image_set, scanned, GRID, SearchOptions(pending=2), selection, runs=runs)
    assert (resumed.reused, resumed.computed) == (saved, 5 - saved)


class _SlowStore(RunStore):
    """A run store whose saves take a while (a slow disk) and may fail, counting how many run at once."""

    def __init__(self, root, fail_on: str | None = None):
        super().__init__(root)
        self.fail_on, self.lock = fail_on, threading.Condition()
        self.now = self.most = 0

    def save(self, exp, key):
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
            self.lock.notify_all()
            # Hold the first save until a second one runs beside it, however slowly the next
            # image is computed (a busy machine): only a driver that saves one run at a time
            # never starts one, and then this gives up after 10 s and the test fails.
            self.lock.wait_for(lambda: self.most > 1, timeout=10)
        try:
            time.sleep(0.05)
            if self.fail_on and exp.source.get("name") == self.fail_on:
                raise OSError("No space left on device")
            return super().save(exp, key)
        finally:
            with self.lock:
                self.now -= 1


class _ThreeSavers(InProcessRunner):
    prepare_threads = 3  # as a Ray runner with 3 workers: the driver prepares and saves on 3 threads


def test_runs_are_saved_on_threads_and_a_failed_save_stops_the_batch(tiny, tmp_path):
    clf, image_set, scanned = tiny
    options, selection = SearchOptions(pending=2), BatchOptions(limit=6)
    store = _SlowStore(tmp_path / "a")
    seen = []
    result = run_batch(
        clf, image_set, scanned, GRID, options, selection, _ThreeSavers(clf), store, on_outcome=seen.append
    )
    assert result.complete and result.computed == 6 and len(store.list()) == 6
    assert store.most > 1  # saves overlapped the next images' work
    assert [o.run_key for o in seen] == [o.run_key for o in result.images]  # reported once saved, in order
    inline = run_batch(clf, image_set, scanned, GRID, options, selection, runs=RunStore(tmp_path / "b"))
    assert [(o.name, o.order) for o in result.images] == [(o.name, o.order) for o in inline.images]
    # A save that fails (a full disk) stops the batch with its error; what was computed before it is saved.
    third = select(scanned, image_set, selection, clf.class_names)[2][0].name
    failing = _SlowStore(tmp_path / "c", fail_on=third)
    with pytest.raises(OSError, match="No space left"):
        run_batch(clf, image_set, scanned, GRID, options, selection, _ThreeSavers(clf), failing)
    names = {row["image"] for row in failing.list()}
    assert third not in names and {o.name for o in result.images[:2]} <= names


def test_cli_batch_writes_the_json(tiny, tiny_set, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LIMA_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("LIMA_SCANS_DIR", str(tmp_path / "scans"))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setattr(cli, "_load_model", lambda args: load_tiny(tiny_set))
    out = tmp_path / "batch.json"
    argv = ["batch", str(tiny_set["labels"]), "--errors-only", "--limit", "2", "--regions", "grid"]
    argv += ["--param", "cells_per_side=3", "--pending", "2", "--json", str(out), "--quiet"]
    assert cli.main(argv) == 0, capsys.readouterr().err
    doc = json.loads(out.read_text())
    assert len(doc["images"]) == 2 and doc["computed"] == 2 and doc["complete"] is True
    assert all(set(image) >= JSON_KEYS for image in doc["images"])
    assert doc["provenance"]["regions"]["method"] == "grid"
    assert "2 computed" in capsys.readouterr().out
    clf, image_set, _ = tiny
    assert ScanCache(tmp_path / "scans").get(clf, image_set) is not None
    assert cli.main(argv) == 0
    assert json.loads(out.read_text())["reused"] == 2


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--confusion", "0-1"], "TRUE>PRED"),
        (["--classes", "nope"], "no class named"),
        (["--regions", "sam"], "SAM regions"),
        (["--workers", "2"], "--workers"),
        (["--limit", "0"], "limit"),
    ],
)
def test_cli_batch_bad_input_is_one_line(tiny_set, tmp_path, monkeypatch, capsys, extra, message):
    monkeypatch.setenv("LIMA_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setattr(cli, "_load_model", lambda args: load_tiny(tiny_set))
    assert cli.main(["batch", str(tiny_set["labels"]), *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("lima: error:") and message in err[0]


# -- cohort aggregates --------------------------------------------------------------------------------------


def test_cohort_location_map_sorting_and_exports(tiny_exp, tmp_path):
    import io

    import pandas as pd

    from explainer import cohort
    from explainer.batch import BatchTask, ImageOutcome

    runs = RunStore(tmp_path / "runs")
    runs.save(tiny_exp, "tinyrun")
    task = BatchTask(
        0, "tiny.png", "tiny.png", 1, 3, 1, 3, "tinyrun", tiny_exp.view, tiny_exp.labels, {}, GRID, SearchOptions()
    )
    outcome = ImageOutcome.of(task, tiny_exp, "here", 1.0)
    # By hand: a 4×4 grid on a 16 px view; the minimal subset's cells, each a 16×16 block of the 64×64 map.
    cells = np.zeros(16)
    cells[list(tiny_exp.minimal_subset)] = 1.0
    expected = np.kron(cells.reshape(4, 4), np.ones((16, 16)))
    mean_map, used = cohort.location_map(runs, ["tinyrun", "tinyrun", "missing-run"])
    assert used == 2
    np.testing.assert_allclose(mean_map, expected, atol=1e-6)
    # Sorting: smallest subsets first; highest confidence and gain largest first.
    small = outcome.__class__(**{**outcome.to_dict(), "name": "b", "minimal_subset": [0], "gain": 0.9})
    big = outcome.__class__(**{**outcome.to_dict(), "name": "a", "minimal_subset": [0, 1, 2], "gain": 0.1})
    assert [o.name for o in cohort.sort_outcomes([big, small], "subset size")] == ["b", "a"]
    assert [o.name for o in cohort.sort_outcomes([big, small], "gain")] == ["b", "a"]
    with pytest.raises(ValueError, match="sort by"):
        cohort.sort_outcomes([big], "colour")
    provenance = {"product": "LiMA Lens", "image_set": "tiny"}
    table = pd.read_csv(io.StringIO(cohort.to_csv([outcome], provenance, tiny_exp.class_names)), comment="#")
    assert table.loc[0, "run_key"] == "tinyrun" and table.loc[0, "subset_size"] == len(tiny_exp.minimal_subset)
    assert table.loc[0, "gain"] == pytest.approx(np.max(tiny_exp.insertion) - tiny_exp.insertion[-1], abs=1e-4)
    assert json.loads(cohort.to_json([outcome], provenance))["summary"]["images"] == 1
    pdf = cohort.contact_sheet(runs, [outcome, outcome], provenance)
    assert pdf.startswith(b"%PDF") and b"LiMA Lens" in pdf


def test_an_image_broken_since_the_scan_is_recorded_and_the_batch_goes_on(tiny_set, tmp_path):
    import shutil

    from explainer.data import open_image_set

    folder = tmp_path / "set"
    shutil.copytree(tiny_set["labels"].parent, folder)
    clf = load_tiny(tiny_set)
    image_set = open_image_set(str(folder / "labels.txt"), clf.class_names)
    scanned = scan(clf, image_set)
    (folder / "img1.png").write_bytes(b"not a png any more")
    result = run_batch(
        clf, image_set, scanned, GRID, SearchOptions(pending=2), BatchOptions(limit=3), runs=RunStore(tmp_path / "r")
    )
    assert [f["name"] for f in result.failed] == ["img1.png"] and "img1.png" in result.failed[0]["error"]
    assert [o.name for o in result.images] == ["img0.png", "img2.png"] and result.complete
    assert result.to_dict()["failed"] == list(result.failed)

    class ThreeThreads(InProcessRunner):
        prepare_threads = 3  # as a Ray runner with 3 workers asks: the driver prepares on 3 threads

    threaded = run_batch(
        clf,
        image_set,
        scanned,
        GRID,
        SearchOptions(pending=2),
        BatchOptions(limit=5),
        runner=ThreeThreads(clf),
        runs=RunStore(tmp_path / "r2"),
    )
    inline = run_batch(
        clf, image_set, scanned, GRID, SearchOptions(pending=2), BatchOptions(limit=5), runs=RunStore(tmp_path / "r3")
    )
    assert [f["name"] for f in threaded.failed] == ["img1.png"]
    assert [(o.name, o.run_key, o.order) for o in threaded.images] == [
        (o.name, o.run_key, o.order) for o in inline.images
    ]
