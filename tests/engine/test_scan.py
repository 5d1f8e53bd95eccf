"""Scanning a labelled set: a grey-level classifier whose answers are known by hand."""

from __future__ import annotations

import dataclasses
import os
import threading

import numpy as np
import pytest
import torch
from helpers import make_classifier
from PIL import Image

from explainer.data import ImageSet, folder_set, label_list_set
from explainer.scan import ScanCache, ScanResult, iter_scan, scan

NAMES = [f"class {i}" for i in range(5)]


class GreyModel(torch.nn.Module):
    """5 classes; class c is the grey level c/4: logit_c = −50·(mean intensity − c/4)²."""

    def __init__(self):
        super().__init__()
        self.register_buffer("centres", torch.arange(5, dtype=torch.float32) / 4)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        m = x.mean((1, 2, 3))[:, None]
        return -50.0 * (m - self.centres[None]) ** 2


# (file, grey level in [0, 1], true label); the model predicts the nearest c/4.
FILES = [
    ("a.png", 0.00, 0),  # right
    ("b.png", 0.25, 1),  # right
    ("c.png", 0.50, 0),  # wrong: 2 for 0, confidently (at class 2's centre)
    ("d.png", 0.30, 3),  # wrong: 1 for 3, unsure (between classes 1 and 2)
    ("e.png", 0.75, 3),  # right
    ("f.png", 1.00, 2),  # wrong: 4 for 2, most confidently (class 4 has one neighbour only)
    ("h.png", 0.50, 0),  # wrong: 2 for 0, same image as c.png
]


def write_set(folder, files=FILES, garbage: bool = True):
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for name, grey, label in files:
        Image.fromarray(np.full((24, 20, 3), round(255 * grey), np.uint8)).save(folder / name)
        lines.append(f"{name} {label}")
    if garbage:
        (folder / "g.png").write_bytes(b"\x89PNG this is not really a png" * 3)
        lines.append("g.png 1")
    (folder / "labels.txt").write_text("\n".join(lines) + "\n")
    return folder / "labels.txt"


@pytest.fixture
def grey():
    return make_classifier(GreyModel(), 5, batch_size=4)


@pytest.fixture
def image_set(tmp_path):
    return label_list_set(write_set(tmp_path / "set"), NAMES)


def test_scan_rows_accuracy_and_errors(grey, image_set):
    result = scan(grey, image_set, batch_size=3)
    assert [r.key for r in result.rows] == [name for name, _, _ in FILES] + ["g.png"]
    rows = {r.key: r for r in result.rows}
    assert {k: r.pred for k, r in rows.items() if r.error is None} == {
        "a.png": 0,
        "b.png": 1,
        "c.png": 2,
        "d.png": 1,
        "e.png": 3,
        "f.png": 4,
        "h.png": 2,
    }
    bad = rows["g.png"]
    assert bad.error and bad.pred == -1 and not bad.correct and bad.label == 1
    assert len(result.readable) == 7
    assert result.accuracy == pytest.approx(3 / 7)  # a, b, e right; the unreadable one not counted
    assert result.model_id == grey.id and result.weights_hash == grey.weights_hash
    assert result.set_fingerprint == image_set.fingerprint() and result.created


def test_scan_probabilities_match_a_direct_prediction(grey, image_set):
    result = scan(grey, image_set)
    for row in result.readable:
        item = next(i for i in image_set.items if i.key == row.key)
        p = grey.predict(grey.view(item.load())[None])[0]
        assert row.p_pred == pytest.approx(float(p.max()), abs=1e-6)
        assert row.p_label == pytest.approx(float(p[row.label]), abs=1e-6)
        assert [c for c, _ in row.top] == list(np.argsort(-p, kind="stable")[:5])
        assert [v for _, v in row.top] == sorted((v for _, v in row.top), reverse=True)


def test_mistakes_most_confident_first(grey, image_set):
    result = scan(grey, image_set)
    mistakes = result.mistakes()
    # f: class 4 has one neighbour, so it is surer than c/h (two neighbours); d sits between classes.
    # c and h are the same image: the tie goes by key.
    assert [r.key for r in mistakes] == ["f.png", "c.png", "h.png", "d.png"]
    assert all(a.p_pred >= b.p_pred for a, b in zip(mistakes, mistakes[1:]))
    assert [r.key for r in result.mistakes(true=0)] == ["c.png", "h.png"]
    assert [r.key for r in result.mistakes(pred=1)] == ["d.png"]
    assert result.mistakes(true=0, pred=4) == []


def test_confusions(grey, image_set):
    assert scan(grey, image_set).confusions() == [(0, 2, 2), (2, 4, 1), (3, 1, 1)]


def test_progress_per_batch(grey, image_set):
    steps = list(iter_scan(grey, image_set, batch_size=3))
    assert [p.done for p in steps] == [0, 3, 6, 8, 8]
    assert all(p.total == 8 for p in steps)
    assert all(p.result is None for p in steps[:-1]) and steps[-1].result is not None
    assert steps[0].eta_s is None and steps[-1].eta_s == 0.0
    assert steps[1].eta_s is not None and steps[1].eta_s >= 0


def test_closing_the_scan_early_stops_it(grey, image_set):
    module = grey.module
    threads_before = threading.active_count()
    calls_before = module.calls
    gen = iter_scan(grey, image_set, batch_size=2)
    assert next(gen).done == 0
    assert next(gen).done == 2
    calls_at_close = module.calls
    gen.close()
    assert calls_at_close - calls_before == 1  # one batch of two scored, out of four
    with pytest.raises(StopIteration):
        next(gen)
    assert module.calls == calls_at_close
    assert threading.active_count() <= threads_before  # the decoding threads are gone


def test_scan_result_json_round_trip(grey, image_set):
    result = scan(grey, image_set)
    back = ScanResult.from_json(result.to_json())
    assert back == result
    assert back.rows[0].top == result.rows[0].top and isinstance(back.rows[0].top[0], tuple)
    assert back.accuracy == result.accuracy and back.mistakes() == result.mistakes()


def test_scan_cache(grey, tmp_path):
    list_path = write_set(tmp_path / "set")
    image_set = label_list_set(list_path, NAMES)
    cache = ScanCache(tmp_path / "cache")
    assert cache.get(grey, image_set) is None
    result = scan(grey, image_set)
    path = cache.put(grey, image_set, result)
    assert path.parent == tmp_path / "cache" and path.suffix == ".json"
    assert cache.get(grey, label_list_set(list_path, NAMES)) == result  # reopened: same fingerprint
    # another model misses
    other = make_classifier(GreyModel(), 5)
    other.weights_hash = "f" * 64
    assert cache.get(other, image_set) is None
    # a damaged cache file is a miss, not an error
    good = path.read_text()
    path.write_text("{broken")
    assert cache.get(grey, image_set) is None
    path.write_text(good)
    # a changed file changes the fingerprint of the reopened set, and a fresh one of the same set
    # (the cached one is kept per set version, i.e. the list file's stat: #12): a miss
    before = image_set.fingerprint()
    Image.fromarray(np.full((30, 30, 3), 7, np.uint8)).save(tmp_path / "set" / "c.png")
    changed = label_list_set(list_path, NAMES)
    assert changed.fingerprint() != before and image_set.fingerprint(fresh=True) != before
    assert cache.path(grey, changed) != path
    assert cache.get(grey, changed) is None
    assert path.is_file()  # the old entry stays, unused


def test_scan_of_a_class_folder_set(grey, tmp_path):
    root = tmp_path / "folders"
    for name, g, label in FILES[:4]:
        (root / NAMES[label]).mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((20, 20, 3), round(255 * g), np.uint8)).save(root / NAMES[label] / name)
    result = scan(grey, folder_set(root, NAMES))
    assert len(result.rows) == 4 and result.accuracy == pytest.approx(2 / 4)  # a and b right
    assert {r.key: r.label for r in result.rows} == {
        "class 0/a.png": 0,
        "class 1/b.png": 1,
        "class 0/c.png": 0,
        "class 3/d.png": 3,
    }


# -- #12: scans at scale -------------------------------------------------------------------------


class CountingGrey(GreyModel):
    """GreyModel that counts the images it scores."""

    def __init__(self):
        super().__init__()
        self.images = 0

    def forward(self, x):
        self.images += x.shape[0]
        return super().forward(x)


def test_an_incremental_scan_scores_only_new_or_changed_files(tmp_path):
    clf = make_classifier(CountingGrey(), 5, batch_size=4)
    list_path = write_set(tmp_path / "set")
    clf.module.images = 0
    first = scan(clf, label_list_set(list_path, NAMES))
    assert clf.module.images == 7 and all(r.sig for r in first.rows)
    # one file changes (now grey 1.0: class 4), nothing else does
    Image.fromarray(np.full((24, 20, 3), 255, np.uint8)).save(tmp_path / "set" / "a.png")
    os.utime(tmp_path / "set" / "a.png", ns=(1, 1))  # a different mtime even on coarse clocks
    clf.module.images = 0
    steps = list(iter_scan(clf, label_list_set(list_path, NAMES), previous=first))
    again = steps[-1].result
    assert clf.module.images == 1 and steps[-1].total == 1  # only a.png (the unreadable g.png is unchanged)
    assert again.row("a.png").pred == 4 and first.row("a.png").pred == 0
    assert [r for r in again.rows if r.key != "a.png"] == [r for r in first.rows if r.key != "a.png"]
    assert "unchanged, reused" in steps[-1].describe()
    # another model reuses nothing
    other = make_classifier(CountingGrey(), 5, batch_size=4)
    other.weights_hash = "e" * 64
    other.module.images = 0
    scan(other, label_list_set(list_path, NAMES), previous=first)
    assert other.module.images == 7


def test_the_cache_keeps_parsed_results_and_points_at_the_latest_scan(grey, tmp_path, monkeypatch):
    list_path = write_set(tmp_path / "set")
    image_set = label_list_set(list_path, NAMES)
    cache = ScanCache(tmp_path / "cache")
    result = scan(grey, image_set)
    cache.put(grey, image_set, result)
    parsed = []
    real = ScanResult.from_json
    monkeypatch.setattr(ScanResult, "from_json", classmethod(lambda cls, t: parsed.append(1) or real(t)))
    assert cache.get(grey, image_set) is result and cache.get(grey, image_set) is result and not parsed
    fresh = ScanCache(tmp_path / "cache")  # another process: parses once, then holds it
    assert fresh.get(grey, image_set) == result and fresh.get(grey, image_set) is fresh.get(grey, image_set)
    assert len(parsed) == 1
    # the list grows: a new version (a miss), whose latest scan is still the old one
    Image.fromarray(np.full((24, 20, 3), 64, np.uint8)).save(tmp_path / "set" / "z.png")
    with open(list_path, "a") as f:
        f.write("z.png 1\n")
    grown = label_list_set(list_path, NAMES)
    assert cache.get(grey, grown) is None and cache.latest(grey, grown) == result


def test_the_fingerprint_is_computed_once_per_set_version(tmp_path, monkeypatch):
    from explainer.data import items as items_module

    list_path = write_set(tmp_path / "set")
    image_set = label_list_set(list_path, NAMES)
    calls = []
    real = items_module._item_signature
    monkeypatch.setattr(items_module, "_item_signature", lambda item: calls.append(1) or real(item))
    first = image_set.fingerprint()
    assert [image_set.fingerprint() for _ in range(24)] == [first] * 24 and len(calls) == 8
    list_path.write_text(list_path.read_text().replace("b.png 1", "b.png 2"))  # a new version
    os.utime(list_path, ns=(2, 2))
    assert image_set.fingerprint() == first and len(calls) == 16  # rehashed (this object's items are unchanged)
    assert label_list_set(list_path, NAMES).fingerprint() != first  # the reopened set has the new label


def mixed_set(tiny_set, root) -> ImageSet:
    """The tiny set's 8 photos as files, plus one of each other kind of item: uploaded bytes, a
    loader (as the demo's photos), a damaged file and a missing one (the last two unreadable)."""
    from explainer.data import ImageItem
    from explainer.images import load_image

    base = label_list_set(tiny_set["labels"], [f"class {i}" for i in range(5)])
    root.mkdir(parents=True, exist_ok=True)
    (root / "damaged.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    photo = base.items[0].path
    extra = (
        ImageItem("upload/abc/up.png", 2, "up.png", data=photo.read_bytes()),
        ImageItem("demo-like", 3, "A loader photo", loader=lambda: load_image(photo)),
        ImageItem("damaged.png", 1, "damaged.png", path=root / "damaged.png"),
        ImageItem("gone.png", 4, "gone.png", path=root / "gone.png"),
    )
    return ImageSet("mixed", "list", base.items + extra, root=root)


def assert_same_rows(expected: ScanResult, got: ScanResult) -> None:
    """Same images, answers and errors; probabilities within 1e-6."""
    assert [r.key for r in got.rows] == [r.key for r in expected.rows]
    for a, b in zip(expected.rows, got.rows):
        assert (b.name, b.label, b.pred, b.error, b.sig) == (a.name, a.label, a.pred, a.error, a.sig), a.key
        assert [c for c, _ in b.top] == [c for c, _ in a.top]
        np.testing.assert_allclose([p for _, p in b.top], [p for _, p in a.top], atol=1e-6)
        assert abs(b.p_label - a.p_label) <= 1e-6 and abs(b.p_pred - a.p_pred) <= 1e-6


def test_remote_scan_inputs_score_as_in_process(tiny, tiny_set, tmp_path):
    """What a Ray worker receives (file bytes, or paths on a shared file system) and scores gives
    the in-process rows, unreadable images and their messages included."""
    from explainer.data import item_signature
    from explainer.scan import scan_input, score_inputs

    clf = tiny[0]
    image_set = mixed_set(tiny_set, tmp_path)
    expected = scan(clf, image_set)
    assert [r.error is not None for r in expected.rows] == [False] * 10 + [True] * 2
    for shared_fs in (False, True):
        inputs = [scan_input(item, item_signature(item), shared_fs) for item in image_set.items]
        assert isinstance(inputs[0].source, bytes) != shared_fs  # a readable file: its bytes unless shared
        assert isinstance(inputs[-1].source, os.PathLike)  # a missing file travels as its path
        assert isinstance(inputs[9].source, np.ndarray)  # the loader's photo travels decoded
        got = dataclasses.replace(expected, rows=tuple(score_inputs(clf, inputs)))
        assert_same_rows(expected, got)


def test_the_scan_time_counts_the_signatures(grey, image_set, monkeypatch):
    """The signature pass (a stat per file; a decode per built-in photo) is part of the scan's
    time, so the speed it reports (which calibrates the next estimate) is the job's real speed."""
    import time

    from explainer import scan as scan_module

    real = scan_module.item_signature
    monkeypatch.setattr(scan_module, "item_signature", lambda item: time.sleep(0.02) or real(item))
    result = scan(grey, image_set)
    assert result.elapsed_s >= 0.02 * len(image_set)


def test_a_scan_keeps_its_mistakes_thumbnails_as_it_finds_them(grey, image_set, tmp_path):
    from explainer.thumbnails import ThumbnailCache, framing_of, thumbnail_from_view

    thumbnails = ThumbnailCache(folder=tmp_path / "thumbs")
    result = scan(grey, image_set, thumbnails=thumbnails)
    framing = framing_of(grey.preprocess)
    wrong = {r.key for r in result.mistakes()}
    assert wrong == {"c.png", "d.png", "f.png", "h.png"}
    reader = ThumbnailCache(folder=tmp_path / "thumbs")  # what the gallery does later: a new cache, same folder
    for item in image_set.items:
        found, data = reader.peek(item, framing)
        assert found == (item.key in wrong), item.key  # the mistakes only (not the right ones, not g.png)
        if found:
            view = grey.view(item.load())
            assert data == thumbnail_from_view(view, framing)  # the scan's own view, resized once
    assert reader.misses == 0
