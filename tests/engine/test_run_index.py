"""The run index (SQLite inside the runs folder): kept in step by save/delete, reconciled with
folders added or removed behind its back, rebuilt when damaged, safe with a second process
writing, and serving filters and pages."""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import shutil
import sqlite3

import pytest

from explainer import store
from explainer.run_index import INDEX_NAME, RunFilter
from explainer.store import RunStore

MODELS = ("m:a", "m:b")
CLASSES = ("class 0", "class 1", "class 2", "class 3", "class 4")


def _variant(tiny_exp, i: int):
    """The i-th synthetic run: model, image set, true class and creation time vary with i."""
    return dataclasses.replace(
        tiny_exp,
        created=f"2026-01-01T00:{i // 60:02d}:{i % 60:02d}+00:00",
        model={**tiny_exp.model, "id": MODELS[i % 2]},
        source={"name": f"img{i:03d}.png", "label": i % 3, "set": "set-A" if i < 6 else "set-B"},
    )


@pytest.fixture
def filled(tiny_exp, tmp_path):
    """Ten runs saved through the store (the tiny model predicts class 1 on every image)."""
    runs = RunStore(tmp_path)
    for i in range(10):
        runs.save(_variant(tiny_exp, i), f"run{i:02d}")
    return runs


def test_the_index_is_sqlite_in_wal_mode_inside_the_runs_folder(filled, tmp_path):
    assert filled.count() == 10
    with sqlite3.connect(tmp_path / INDEX_NAME) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT count(*) FROM runs").fetchone()[0] == 10
    # The index is no run: it never shows up as a folder problem.
    assert filled.catalogue()[1] == []


def test_rows_carry_the_filter_fields_and_page_newest_first(filled, tiny_exp):
    rows = filled.list()
    assert [r["key"] for r in rows] == [f"run{i:02d}" for i in reversed(range(10))]
    r = next(r for r in rows if r["key"] == "run04")
    predicted = tiny_exp.class_name(tiny_exp.full_prediction)
    assert (r["model"], r["image_set"], r["label"], r["predicted"], r["regions"]) == (
        "m:a",
        "set-A",
        "class 1",
        predicted,
        "grid",
    )
    assert r["image"] == "img004.png" and r["n_regions"] == 16 and r["insertion_auc"] == tiny_exp.insertion_auc
    page2 = filled.list(limit=4, offset=4)
    assert [r["key"] for r in page2] == ["run05", "run04", "run03", "run02"]
    assert filled.list(limit=4, offset=8) == rows[8:]


def test_filters_by_model_set_class_confusion_regions_and_text(filled, tiny_exp):
    predicted = tiny_exp.class_name(tiny_exp.full_prediction)

    def keys(**kw):
        return [r["key"] for r in filled.list(RunFilter(**kw))]

    assert keys(model="m:b") == ["run09", "run07", "run05", "run03", "run01"]
    assert keys(image_set="set-A", model="m:a") == ["run04", "run02", "run00"]
    assert keys(label="class 2") == ["run08", "run05", "run02"]
    wrong = {i for i in range(10) if CLASSES[i % 3] != predicted}
    assert set(keys(mistakes=True)) == {f"run{i:02d}" for i in wrong}
    wrong_class = next(c for c in CLASSES[:3] if c != predicted)
    with_it = [f"run{i:02d}" for i in reversed(range(10)) if CLASSES[i % 3] == wrong_class]
    assert keys(confusion=(wrong_class, predicted)) == with_it and keys(confusion=(predicted, predicted)) == []
    assert keys(regions="grid") == keys() and keys(regions="slico") == []
    assert keys(text="IMG007") == ["run07"]
    assert filled.count(RunFilter(image_set="set-B")) == 4
    assert filled.values("image_set") == ["set-A", "set-B"] and filled.values("model") == list(MODELS)
    assert sum(n for _, _, n in filled.confusions()) == len(wrong)


def test_folders_added_or_removed_behind_its_back_are_picked_up(filled, tmp_path):
    assert filled.count() == 10
    shutil.copytree(tmp_path / "run03", tmp_path / "copied")  # another program adds a run
    shutil.rmtree(tmp_path / "run05")  # ... and removes one
    (tmp_path / "unfinished").mkdir()  # a save in progress: no JSON yet, not listed
    keys = [r["key"] for r in filled.list()]
    assert "copied" in keys and "run05" not in keys and "unfinished" not in keys and len(keys) == 10


def test_a_run_overwritten_behind_its_back_is_re_read_on_a_full_check(filled, tmp_path):
    doc_path = tmp_path / "run01" / "explanation.json"
    doc = json.loads(doc_path.read_text())
    doc["source"]["name"] = "renamed-by-hand.png"
    doc_path.write_text(json.dumps(doc))
    fresh = RunStore(tmp_path)  # a new process: its first listing checks every run's JSON
    assert fresh.list(RunFilter(text="renamed"))[0]["key"] == "run01"


def test_save_and_delete_keep_the_index_in_step(filled, tiny_exp, tmp_path):
    filled.save(_variant(tiny_exp, 99), "new-run")
    with sqlite3.connect(tmp_path / INDEX_NAME) as conn:  # written by save itself, not a later sync
        assert conn.execute("SELECT image FROM runs WHERE key = 'new-run'").fetchone() == ("img099.png",)
    filled.delete("new-run")
    with sqlite3.connect(tmp_path / INDEX_NAME) as conn:
        assert conn.execute("SELECT count(*) FROM runs WHERE key = 'new-run'").fetchone()[0] == 0


@pytest.mark.parametrize("damage", ["garbage", "truncated", "other-schema"])
def test_a_damaged_index_is_rebuilt_from_the_files(filled, tmp_path, damage):
    index = tmp_path / INDEX_NAME
    for suffix in ("-wal", "-shm"):
        (tmp_path / (INDEX_NAME + suffix)).unlink(missing_ok=True)
    if damage == "garbage":
        index.write_bytes(b"this is not a database" * 100)
    elif damage == "truncated":
        index.write_bytes(index.read_bytes()[:1500])
    else:
        with sqlite3.connect(index) as conn:
            conn.execute("PRAGMA user_version = 99")
    again = RunStore(tmp_path)
    assert again.count() == 10 and [r["key"] for r in again.list(limit=2)] == ["run09", "run08"]


def test_bad_folders_are_problems_in_the_index_too(filled, tmp_path):
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "explanation.json").write_text("{oops")
    rows, problems = filled.catalogue()
    assert len(rows) == 10 and [k for k, _ in problems] == ["broken"] and "cannot be read" in problems[0][1]


def _writer(root: str, template: str, start: int, count: int) -> None:
    runs = RunStore(root)
    for i in range(start, start + count):
        shutil.copytree(template, f"{root}/w{i:03d}")
        runs.index.put(f"w{i:03d}", store.read_listing_row(f"w{i:03d}", runs.root / f"w{i:03d}" / "explanation.json"))


def test_two_processes_writing_at_once_lose_nothing(filled, tmp_path):
    """A batch in another process records runs while this one does too (WAL + busy timeout)."""
    template = str(tmp_path.parent / "template")
    shutil.copytree(tmp_path / "run00", template)
    # fork: the other process starts at once, so the two really write at the same time (a spawned
    # one spent seconds importing the engine first, and often began after this one had finished).
    ctx = multiprocessing.get_context("fork")
    other = ctx.Process(target=_writer, args=(str(tmp_path), template, 0, 30))
    other.start()
    _writer(str(tmp_path), template, 30, 30)
    other.join(60)
    assert other.exitcode == 0
    with sqlite3.connect(tmp_path / INDEX_NAME) as conn:  # every put landed, none needed a sync
        assert conn.execute("SELECT count(*) FROM runs WHERE key LIKE 'w%'").fetchone()[0] == 60
    assert filled.count() == 70


def test_without_a_usable_index_the_files_are_read(filled, tmp_path, monkeypatch):
    def locked(*args, **kwargs):
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(filled.index, "sync", locked)
    assert [r["key"] for r in filled.list(RunFilter(model="m:b"), limit=2)] == ["run09", "run07"]
    assert filled.count() == 10 and (tmp_path / INDEX_NAME).exists()  # never deleted for a lock


def test_a_run_finished_after_a_listing_is_picked_up_at_once(filled, tmp_path):
    (tmp_path / "later").mkdir()  # a save in another process: the folder first ...
    (tmp_path / "_methods").mkdir()  # ... and a folder that never holds a run
    assert filled.count() == 10
    shutil.copy(tmp_path / "run01" / "explanation.npz", tmp_path / "later")
    shutil.copy(tmp_path / "run01" / "explanation.json", tmp_path / "later")  # ... then its JSON
    assert filled.count() == 11 and filled.problems() == []


def test_runs_that_explain_the_true_or_the_predicted_class(filled, tiny_exp, monkeypatch):
    """Every run explains class 1 (the tiny run's target): the true class of images 1, 4, 7."""
    target = tiny_exp.class_name(tiny_exp.target)
    predicted = tiny_exp.class_name(tiny_exp.full_prediction)
    explain_true = [f"run{i:02d}" for i in reversed(range(10)) if CLASSES[i % 3] == target]
    explain_predicted = [f"run{i:02d}" for i in reversed(range(10))] if predicted == target else []
    assert explain_true == ["run07", "run04", "run01"]
    for source in ("index", "files"):
        if source == "files":  # the file-reading twin gives the same answers
            monkeypatch.setattr(filled.index, "sync", lambda *a, **k: (_ for _ in ()).throw(sqlite3.OperationalError()))
        assert [r["key"] for r in filled.list(RunFilter(explains="true"))] == explain_true
        assert [r["key"] for r in filled.list(RunFilter(explains="predicted"))] == explain_predicted
        assert filled.count(RunFilter(explains="true", model="m:a")) == 1  # run04
    with pytest.raises(ValueError, match="explains"):
        RunFilter(explains="both").where()
