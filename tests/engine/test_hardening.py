"""Issue #6: the engine and CLI defects found by trying the product as a hostile user would.

Each test names its item; each failed before the fix."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
import zipfile

import numpy as np
import pytest
import torch
from helpers import ROOT, TinyCNN, grid_labels, make_classifier, tiny_view
from PIL import Image

from explainer import cli, export, store
from explainer.errors import LabelError, ModelError, RegionError
from explainer.explanation import Explanation, SearchLog
from explainer.models import pick_device
from explainer.regions import load_label_map, slico_for_count
from explainer.search import explain

FIXTURE_RUNS = ROOT / "tests" / "fixtures" / "runs_v0_1"
REAL_RUN = "dd199df0a1b8725b41be"  # Lite0 on chelsea, saved by version 0.1


def one_error_line(capsys) -> str:
    _, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lima: error:"), err
    return lines[0]


# -- item 2: one malformed run folder never hides the good ones ------------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        {"format": store.FORMAT, "summary": None},
        {"format": store.FORMAT, "summary": {}, "source": "a string", "created": "2020"},
        {"format": store.FORMAT, "summary": {"n_regions": "many"}, "model": [1, 2]},
        {"name": "another program's file"},
        [1, 2, 3],
        "just a string",
    ],
)
def test_a_malformed_explanation_json_is_listed_as_unreadable(tiny_exp, tmp_path, content):
    runs = store.RunStore(tmp_path)
    runs.save(tiny_exp, "good")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "explanation.json").write_text(json.dumps(content))
    rows, problems = runs.catalogue()
    assert [r["key"] for r in rows] == ["good"]
    assert [key for key, _ in problems] == ["bad"] and problems[0][1]
    assert runs.list() == rows and runs.load("good").target == tiny_exp.target


def test_unreadable_bytes_are_listed_with_the_reason(tiny_exp, tmp_path):
    runs = store.RunStore(tmp_path)
    runs.save(tiny_exp, "good")
    for name, data in (("broken", b"{oops"), ("not-utf8", b'{"created": "\xff"}')):
        (tmp_path / name).mkdir()
        (tmp_path / name / "explanation.json").write_bytes(data)
    rows, problems = runs.catalogue()
    assert [r["key"] for r in rows] == ["good"]
    assert sorted(k for k, _ in problems) == ["broken", "not-utf8"]
    assert all("cannot be read" in reason for _, reason in problems)


# -- item 3: a bad device is a clear error -----------------------------------------------------------------


@pytest.mark.parametrize("device", ["tpu", "mps", "cuda:x", "gpu0", "cpu:0:1"])
def test_an_unknown_device_is_a_model_error(device):
    with pytest.raises(ModelError, match="unknown device"):
        pick_device(device)


@pytest.mark.parametrize("device", ["cpu", " CPU ", "auto", None, ""])
def test_known_devices_still_work(device):
    assert pick_device(device).type in ("cpu", "cuda")


def test_cli_device_tpu_is_one_line_and_exit_2(capsys):
    assert cli.main(["scan", "demo", "--device", "tpu"]) == 2
    assert "unknown device 'tpu'" in one_error_line(capsys)


# -- item 7: output paths are checked before any work; save reports the first error --------------------------


def test_explain_out_pointing_at_a_file_fails_before_any_work(tmp_path, capsys, monkeypatch):
    import explainer.models as models

    def must_not_load(*args, **kwargs):
        raise AssertionError("the model was loaded although --out is unusable")

    monkeypatch.setattr(models, "load_classifier", must_not_load)
    image = tmp_path / "cat.png"
    Image.fromarray(tiny_view()).resize((64, 64)).save(image)
    a_file = tmp_path / "taken"
    a_file.write_text("not a folder")
    for out in (a_file, a_file / "below"):
        assert cli.main(["explain", str(image), "--label", "1", "--out", str(out)]) == 2
        assert "--out" in one_error_line(capsys)
    assert a_file.read_text() == "not a folder"


def test_save_into_a_file_reports_the_real_error(tiny_exp, tmp_path):
    a_file = tmp_path / "taken"
    a_file.write_text("x")
    with pytest.raises(store.StoreError, match="is a file"):
        store.save(tiny_exp, a_file)
    assert a_file.read_text() == "x"
    # With an earlier result in place, a failing overwrite keeps it and reports its own error.
    folder = store.save(tiny_exp, tmp_path / "run")
    os.chmod(folder, 0o500)
    try:
        if os.access(folder, os.W_OK):  # running as root: permissions do not bind
            pytest.skip("permissions are not enforced for this user")
        with pytest.raises(PermissionError):
            store.save(dataclasses.replace(tiny_exp, target=0), folder)
    finally:
        os.chmod(folder, 0o700)
    assert store.load(folder).target == tiny_exp.target


# -- item 9: any region count works in the benchmark ----------------------------------------------------------


@pytest.mark.parametrize("count", [4, 9, 16, 25, 36, 49, 64, 100])
def test_slico_for_count_gets_close_to_any_count(chelsea_view, count):
    labels, size = slico_for_count(chelsea_view, count)
    got = int(labels.max()) + 1
    assert abs(got - count) <= max(1, round(0.1 * count)), (count, got, size)
    assert 8 <= size <= 112


def test_bench_reports_the_count_asked_for_and_the_count_used():
    from explainer.bench import run_bench

    clf = make_classifier(TinyCNN(5, seed=0), 5, size=64, batch_size=16)
    view = np.asarray(Image.fromarray(tiny_view()).resize((64, 64), Image.NEAREST))
    lines: list[str] = []
    out = run_bench(clf, view, [16], target=1, reference=False, plain_seconds=0.2, log=lines.append)
    [row] = out["rows"]
    assert row["requested"] == 16 and abs(row["regions"] - 16) <= 2
    assert f"N={row['regions']:3d}" in lines[-1]


# -- item 10: the readout is true in every case --------------------------------------------------------------


def _hand_made(ins_rows, full_row) -> Explanation:
    """3 regions of a 4×4 view; insertion_probs given per step (rows: empty, 1, 2 regions) + the full image."""
    labels = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 2, 2], [2, 2, 2, 2]], np.int32)
    probs = np.array(list(ins_rows) + [full_row], np.float32)
    log = SearchLog.from_rows([])
    return Explanation(
        view=np.zeros((4, 4, 3), np.uint8),
        labels=labels,
        order=np.array([0, 1, 2], np.int32),
        area=np.array([0, 0.25, 0.5, 1.0]),
        insertion_probs=probs,
        deletion_probs=probs[::-1].copy(),
        target=0,
        tracked=1,
        class_names=("tabby", "tiger cat", "Egyptian cat"),
        log=log,
        config={"search": "bidirectional", "pending": 1, "weights": {}, "fill": "black"},
    )


@pytest.mark.parametrize(
    "subset_row,full_row,wanted",
    [
        # the subset's top-1 equals the full image's top-1, which is wrong: "still"
        ([0.3, 0.6, 0.1], [0.2, 0.7, 0.1], "would still predict tiger cat"),
        # the subset's top-1 equals the full image's, which is right: "still"
        ([0.8, 0.1, 0.1], [0.6, 0.3, 0.1], "would still predict tabby"),
        # the subset flips a wrong prediction to the target: "instead"
        ([0.7, 0.2, 0.1], [0.2, 0.7, 0.1], "would predict tabby instead of tiger cat"),
        # the subset makes the model predict a third class (the fixture's real case): "instead"
        ([0.32, 0.2, 0.48], [0.17, 0.5, 0.33], "would predict Egyptian cat instead of tiger cat"),
    ],
)
def test_readout_compares_the_subset_with_the_full_image(subset_row, full_row, wanted):
    e = _hand_made([[0.05, 0.5, 0.45], subset_row, [0.1, 0.6, 0.3]], full_row)
    assert e.minimal_subset_size == 1
    text = e.readout()
    assert wanted in text, text
    if "instead" in wanted:
        assert "still" not in text


def test_the_saved_real_run_no_longer_says_still_for_another_class():
    e = store.load(FIXTURE_RUNS / REAL_RUN)
    assert e.class_name(e.full_prediction) == "tiger cat"
    assert e.class_name(e.prediction_at(e.minimal_subset_size)) == "Egyptian cat"
    assert "would predict Egyptian cat instead of tiger cat" in e.readout()


# -- item 11: one validation rule per input, in the engine ------------------------------------------------------


@pytest.fixture(scope="module")
def tiny():
    return make_classifier(TinyCNN(5, seed=0), 5), tiny_view(), grid_labels(16, 2)


@pytest.mark.parametrize("target", [1.0, 281.0, "1", True, np.float32(2)])
def test_a_non_integer_target_says_it_must_be_an_integer(tiny, target):
    clf, view, labels = tiny
    with pytest.raises(LabelError, match="must be an integer"):
        explain(clf, view, labels, target)


@pytest.mark.parametrize(
    "weights",
    [
        {"consistency": -1},
        {"collaboration": -0.5},
        {"confidence": 1e9},
        {"effectiveness": float("nan")},
        {"consistency": True},
    ],
)
def test_weights_outside_the_one_range_are_refused_by_the_api(tiny, weights):
    clf, view, labels = tiny
    with pytest.raises(ValueError, match="weight of"):
        explain(clf, view, labels, 1, weights=weights)


def test_negative_weights_are_refused_by_the_cli(tmp_path, capsys):
    image = tmp_path / "x.png"
    Image.fromarray(tiny_view()).resize((64, 64)).save(image)
    argv = [
        "explain",
        str(image),
        "--label",
        "1",
        "--weights",
        "consistency=-5",
        "--out",
        str(tmp_path / "o"),
        "--regions",
        "grid",
        "--param",
        "cells_per_side=2",
        "--quiet",
    ]
    assert cli.main(argv) == 2
    assert "must be in [0, 1000]" in one_error_line(capsys)


def test_garbage_named_npy_says_it_is_not_a_numpy_file(tmp_path):
    path = tmp_path / "labels.npy"
    path.write_bytes(b"this is not numpy at all" * 10)
    with pytest.raises(RegionError, match="not a NumPy .npy file"):
        load_label_map(path)


def test_a_pickled_npy_says_it_holds_objects_and_a_good_one_loads(tmp_path):
    pickled = tmp_path / "objects.npy"
    np.save(pickled, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(RegionError, match="Python objects"):
        load_label_map(pickled)
    good = tmp_path / "good.npy"
    np.save(good, grid_labels(16, 2))
    assert load_label_map(good, (16, 16)).max() == 3
    with pytest.raises(RegionError, match="shape"):
        load_label_map(good, (8, 8))


# -- item 12: leftovers of a save killed with -9 are cleaned up on the next start ---------------------------------

_SLOW_SAVE = """
import os, sys, time
sys.path.insert(0, {tests!r})
from explainer import store
import helpers
from explainer.search import explain
clf = helpers.make_classifier(helpers.TinyCNN(5, seed=0), 5)
exp = explain(clf, helpers.tiny_view(), helpers.grid_labels(16, 4), 1, pending=3)
real = os.fsync
def stall(fd):
    print("writing", flush=True)
    time.sleep(600)
os.fsync = stall
store.RunStore({root!r}).save(exp, "killed")
"""


def test_a_save_killed_with_sigkill_leaves_nothing_after_the_next_start(tmp_path, tiny_exp):
    runs = store.RunStore(tmp_path)
    runs.save(tiny_exp, "killed")  # an earlier result that must survive
    before = runs.load("killed")
    child = subprocess.Popen(
        [sys.executable, "-c", _SLOW_SAVE.format(tests=str(ROOT / "tests"), root=str(tmp_path))],
        stdout=subprocess.PIPE,
        cwd=ROOT,
        text=True,
    )
    try:
        assert child.stdout.readline().strip() == "writing"
        temps = list((tmp_path / "killed").glob(f"{store.TEMP_PREFIX}*"))
        assert temps, "the child should be in the middle of a write"
        # While the writer lives, its temporary file is locked and kept.
        assert store.RunStore(tmp_path).clean_interrupted_writes() == 0
        assert all(t.exists() for t in temps)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    assert list((tmp_path / "killed").glob(f"{store.TEMP_PREFIX}*"))  # the leftovers of the kill
    fresh = store.RunStore(tmp_path)  # "the next start"
    assert fresh.clean_interrupted_writes() >= 1
    leftovers = sorted(p.name for p in (tmp_path / "killed").iterdir())
    assert leftovers == ["explanation.json", "explanation.npz"], leftovers
    assert fresh.load("killed").created == before.created and fresh.list()[0]["key"] == "killed"


def test_version_0_1_temporaries_are_removed_when_old(tmp_path, tiny_exp):
    runs = store.RunStore(tmp_path)
    runs.save(tiny_exp, "k")
    old = tmp_path / "k" / ".explanation.json.abc123"
    old.write_text("half")
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    young = tmp_path / "k" / ".explanation.npz.def456"
    young.write_text("half")
    assert runs.clean_interrupted_writes() == 1
    assert not old.exists() and young.exists()


# -- item 13: every download carries the full provenance ---------------------------------------------------------


def _pdf_keywords(data: bytes) -> str:
    """The /Keywords string of a PDF's document information (a literal string, ASCII)."""
    match = re.search(rb"/Keywords \((.*?)(?<!\\)\)", data, re.S)
    assert match, "no /Keywords in the PDF"
    return re.sub(rb"\\([\\()])", rb"\1", match.group(1)).decode("ascii")


def test_every_download_carries_the_full_provenance(tiny_exp):
    want = json.loads(json.dumps(export.provenance(tiny_exp), default=str))
    found = {}
    found["step png"] = json.loads(Image.open(io.BytesIO(export.step_png(tiny_exp, 3))).text["Provenance"])
    found["figure png"] = json.loads(
        Image.open(io.BytesIO(export.composite(tiny_exp, "png", dpi=40))).text["Provenance"]
    )
    svg = ET.fromstring(export.composite(tiny_exp, "svg", dpi=40))
    meta = svg.find("{http://www.w3.org/2000/svg}metadata[@id='lima-provenance']")
    found["figure svg"] = json.loads(meta.text)
    found["figure pdf"] = json.loads(_pdf_keywords(export.composite(tiny_exp, "pdf", dpi=40)))
    found["gif"] = json.loads(Image.open(io.BytesIO(export.step_gif(tiny_exp))).info["comment"])
    csv_text = export.curves_csv(tiny_exp)
    found["csv"] = export.provenance_of_csv(csv_text)
    with zipfile.ZipFile(io.BytesIO(export.result_zip(tiny_exp))) as z:
        found["result zip"] = json.loads(z.read("provenance.json"))
        found["result zip csv"] = export.provenance_of_csv(z.read("curves.csv").decode())
    with zipfile.ZipFile(io.BytesIO(export.reference_zip(tiny_exp))) as z:
        found["reference zip"] = json.loads(z.read("provenance.json"))
    for name, prov in found.items():
        assert prov == want, name


def test_the_csv_reads_with_pandas_comment_hash(tiny_exp):
    pd = pytest.importorskip("pandas")
    table = pd.read_csv(io.StringIO(export.curves_csv(tiny_exp)), comment="#")
    assert len(table) == tiny_exp.n_regions + 1 and list(table["step"]) == list(range(tiny_exp.n_regions + 1))
    np.testing.assert_allclose(table.iloc[:, 3], tiny_exp.insertion, atol=1e-6)


@pytest.mark.slow
def test_cli_explain_writes_the_figure_in_every_format(lite0, tmp_path, capsys, monkeypatch):
    import explainer.models as models

    monkeypatch.setattr(models, "load_classifier", lambda *a, **k: lite0)
    image = tmp_path / "cat.jpg"
    import skimage.data

    Image.fromarray(skimage.data.chelsea()).save(image)
    out = tmp_path / "out"
    assert (
        cli.main(
            [
                "explain",
                str(image),
                "--label",
                "281",
                "--regions",
                "grid",
                "--param",
                "cells_per_side=2",
                "--figure",
                "png,svg,pdf",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    assert (out / "summary.png").read_bytes()[:4] == b"\x89PNG"
    assert b"lima-provenance" in (out / "summary.svg").read_bytes()
    prov = json.loads(_pdf_keywords((out / "summary.pdf").read_bytes()))
    assert prov["model_id"] == "efficientnet_lite0" and prov["image"] == "cat.jpg"


# -- tried again as a hostile user: what a second round found ------------------------------------------------------


def test_regions_never_overwrites_the_input_photo(tmp_path, capsys, lite0, monkeypatch):
    import hashlib

    import explainer.models as models

    monkeypatch.setattr(models, "load_classifier", lambda *a, **k: lite0)
    photo = tmp_path / "photo.png"
    Image.fromarray(tiny_view()).resize((64, 64)).save(photo)
    before = hashlib.sha256(photo.read_bytes()).hexdigest()
    for out in (photo, tmp_path / "photo.jpg", tmp_path / ""):
        assert cli.main(["regions", str(photo), "--method", "grid", "--out", str(out)]) == 2
        one_error_line(capsys)
    assert cli.main(["regions", str(photo), "--method", "grid", "--out", str(tmp_path / "photo.npy")]) == 0
    out, _ = capsys.readouterr()
    assert "photo.npy" in out and "photo.regions.png" in out
    assert hashlib.sha256(photo.read_bytes()).hexdigest() == before
    assert (tmp_path / "photo.regions.png").is_file()


def test_a_damaged_npz_makes_no_listing_crash(tiny_exp, tmp_path):
    runs = store.RunStore(tmp_path)
    runs.save(tiny_exp, "good")
    runs.save(tiny_exp, "damaged")
    npz = tmp_path / "damaged" / "explanation.npz"
    npz.write_bytes(npz.read_bytes()[:100])
    with pytest.raises(store.StoreError):
        runs.view("damaged")
    assert runs.view("good").shape == (16, 16, 3)
    with pytest.raises(store.StoreError):
        runs.load("damaged")


def test_folders_whose_names_are_not_keys_are_listed_as_problems(tiny_exp, tmp_path):
    runs = store.RunStore(tmp_path)
    runs.save(tiny_exp, "good")
    (tmp_path / "spa ce").mkdir()
    (tmp_path / "spa ce" / "explanation.json").write_text((tmp_path / "good" / "explanation.json").read_text())
    rows, problems = runs.catalogue()
    assert [r["key"] for r in rows] == ["good"] and problems[0][0] == "spa ce" and "not a run key" in problems[0][1]


def test_too_many_regions_are_refused_before_any_pass(tiny):
    clf, view, _ = tiny
    every_pixel = np.arange(16 * 16, dtype=np.int32).reshape(16, 16)  # 256 regions: fine
    big = np.arange(64 * 64, dtype=np.int32).reshape(64, 64)  # 4,096 regions
    big_clf = make_classifier(TinyCNN(5, seed=0), 5, size=64)
    with pytest.raises(RegionError, match="too many"):
        explain(big_clf, np.zeros((64, 64, 3), np.uint8), big, 1)
    assert every_pixel.max() + 1 <= 1024


def test_the_cli_reports_progress_when_stderr_is_not_a_terminal(tmp_path, capsys):
    image = tmp_path / "x.png"
    Image.fromarray(tiny_view()).resize((64, 64)).save(image)
    rc = cli.main(
        [
            "explain",
            str(image),
            "--label",
            "1",
            "--regions",
            "grid",
            "--param",
            "cells_per_side=2",
            "--figure",
            "none",
            "--out",
            str(tmp_path / "o"),
        ]
    )
    _, err = capsys.readouterr()
    assert rc == 0
    lines = err.strip().splitlines()
    assert lines[0].startswith("4 regions: up to") and any(line.lstrip().startswith("100 %") for line in lines)


@pytest.mark.parametrize("method,side", [("slico", 15), ("seeds", 12), ("slico", 8)])
def test_views_too_small_for_opencv_are_refused_not_crashed(method, side):
    from explainer.regions import propose_regions

    with pytest.raises(RegionError, match="at least 16"):
        propose_regions(np.zeros((side, side, 3), np.uint8), method)


class NanModel(torch.nn.Module):
    def forward(self, x):
        return torch.full((x.shape[0], 2), float("nan"))


class SometimesNan(torch.nn.Module):
    """Finite on a black image (the load-time check passes), NaN on anything brighter."""

    def forward(self, x):
        out = torch.zeros(len(x), 2)
        out[:, 1] = 1.0
        out[x.mean(dim=(1, 2, 3)) > 0.1] = float("nan")
        return out


def test_a_model_returning_nan_is_a_clear_model_error():
    with pytest.raises(ModelError, match="non-finite"):
        make_classifier(NanModel(), 2)
    clf = make_classifier(SometimesNan(), 2)
    with pytest.raises(ModelError, match="non-finite"):
        explain(clf, np.full((16, 16, 3), 200, np.uint8), grid_labels(16, 2), 1)


def test_one_class_models_and_tracked_equal_to_target_are_refused(tiny):
    with pytest.raises(ModelError, match="at least 2 classes"):
        make_classifier(TinyCNN(1, seed=0), 1)
    clf, view, labels = tiny
    with pytest.raises(LabelError, match="differ"):
        explain(clf, view, labels, 1, tracked=1)


def test_torchvision_takes_only_classification_models_and_needs_a_name():
    from explainer.models import load_classifier

    with pytest.raises(ModelError, match="not classifiers"):
        load_classifier("torchvision:fasterrcnn_resnet50_fpn:random", device="cpu")
    from explainer.models.torchvision_models import TorchvisionInputs, load

    with pytest.raises(ModelError, match="Type the name"):
        load(TorchvisionInputs(), torch.device("cpu"))


def test_a_csv_with_a_huge_field_is_a_data_error(tmp_path):
    from explainer.data import csv_set
    from explainer.errors import DataError

    path = tmp_path / "long.csv"
    path.write_text("path,label\n" + "x" * 200_000 + ".png,1\n")
    with pytest.raises(DataError, match="cannot be read as CSV"):
        csv_set(path, ["a", "b"])


@pytest.mark.parametrize("bad", ["a" * 5000, "set/" + "x/" * 2000, "with\x00nul"])
def test_long_or_odd_paths_are_data_errors(tmp_path, bad):
    from explainer.data import open_image_set, resolve_under_root
    from explainer.errors import DataError

    with pytest.raises(DataError):
        resolve_under_root(bad, tmp_path)
    with pytest.raises(DataError):
        open_image_set(bad, ["a", "b"], root=tmp_path)


def test_odd_model_file_paths_are_model_errors(tmp_path):
    from explainer.models import load_classifier

    for bad in ("m" * 5000 + ".pt", "with\x00nul.pt"):
        with pytest.raises(ModelError):
            load_classifier(f"torchscript:{bad}", device="cpu", class_names=tmp_path / "names.txt")


def test_cli_argument_oddities_are_one_line_errors(tmp_path, capsys):
    image = tmp_path / "x.png"
    Image.fromarray(tiny_view()).resize((64, 64)).save(image)
    cases = [
        ["scan", "demo", "--top", "-3"],
        ["scan", "demo", "--json", str(tmp_path)],
        ["scan", "demo", "--json", ""],
        ["explain", str(image), "--label", "1", "--out", ""],
        ["explain", str(image), "--label", "1", "--class-names", "n.txt", "--out", str(tmp_path / "o")],
        ["bench", "--regions", ","],
        ["explain", str(image), "--label", "1", "--batch-size", "-5", "--out", str(tmp_path / "o2")],
    ]
    for argv in cases:
        assert cli.main(argv) == 2, argv
        one_error_line(capsys)


def test_an_uppercase_npy_is_a_label_map(tmp_path, capsys):
    image = tmp_path / "x.png"
    Image.fromarray(tiny_view()).resize((64, 64)).save(image)
    labels = tmp_path / "LABELS.NPY"
    labels.write_bytes(b"junk")
    assert (
        cli.main(["explain", str(image), "--label", "1", "--regions", str(labels), "--out", str(tmp_path / "o")]) == 2
    )
    assert "not a NumPy .npy file" in one_error_line(capsys)


def test_api_oddities_are_clear_errors(tiny, lite0):
    from explainer.errors import ImageError, SearchError

    clf, view, labels = tiny
    for weights in ([1, 2], "x"):
        with pytest.raises(SearchError):
            explain(clf, view, labels, 1, weights=weights)
    for tolerance in (float("nan"), -1):
        with pytest.raises(SearchError):
            explain(clf, view, labels, 1, tolerance=tolerance)
    with pytest.raises(LabelError, match="source"):
        explain(clf, view, labels, 1, source="not a mapping")
    for size in (-5, 3.5, 20_000):
        with pytest.raises(ImageError, match="view size"):
            lite0.view(tiny_view(), size=size)


def test_a_float_label_map_message_is_plain():
    from explainer.labelmap import validate_labels

    with pytest.raises(RegionError, match=r"found 0\.5 \(dtype float64\)"):
        validate_labels(np.array([[0.0, 0.5]]))
