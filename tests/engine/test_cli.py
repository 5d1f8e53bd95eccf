"""The command line, in-process: outputs, exit codes, one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from helpers import TinyCNN
from PIL import Image

from explainer import cli, store
from explainer.scan import ScanResult

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")


@pytest.fixture(scope="module")
def cat_file(tmp_path_factory):
    import skimage.data

    path = tmp_path_factory.mktemp("photos") / "chelsea.jpg"
    Image.fromarray(skimage.data.chelsea()).save(path, quality=92)
    return path


def one_error_line(capsys) -> str:
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("lima: error:")
    return lines[0]


# -- explain -------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_explain_writes_every_file(fast_lite0, cat_file, tmp_path, capsys):
    out = tmp_path / "result"
    rc = cli.main(
        [
            "explain",
            str(cat_file),
            "--label",
            "281",
            "--regions",
            "grid",
            "--param",
            "cells_per_side=3",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    stdout, stderr = capsys.readouterr()
    assert rc == 0, stderr
    for name in ("explanation.json", "explanation.npz", "summary.png", "curves.csv"):
        assert (out / name).is_file(), name
    assert (out / "reference" / "npy" / "281" / "chelsea.npy").is_file()
    assert (out / "reference" / "json" / "281" / "chelsea.json").is_file()
    exp = store.load(out)
    assert exp.n_regions == 9 and exp.target == 281 and sorted(exp.order.tolist()) == list(range(9))
    assert exp.regions.method == "grid" and exp.regions.options.changed() == {"cells_per_side": 3}
    assert exp.source["name"] == "chelsea.jpg" and exp.source["label"] == 281 and len(exp.source["digest"]) == 64
    assert exp.model["id"] == "efficientnet_lite0"
    np.testing.assert_array_equal(exp.view, fast_lite0.view(cat_file))
    # the 3×3 grid of the view
    assert np.array_equal(np.unique(exp.labels[::75, ::75]), np.arange(9))
    lines = stdout.strip().splitlines()
    assert lines[0] == exp.readout()
    assert f"insertion AUC {exp.insertion_auc:.4f}" in lines[1] and "9 regions" in lines[1]
    assert Image.open(out / "summary.png").format == "PNG"
    rows = [line for line in (out / "curves.csv").read_text().splitlines() if not line.startswith("#")]
    assert len(rows) == 11  # the header, then steps 0..9
    assert np.load(out / "reference" / "npy" / "281" / "chelsea.npy").shape == (9, 224, 224, 3)


def bad_photos(tmp_path):
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg" * 10)
    tiny = tmp_path / "tiny.png"
    Image.new("RGB", (1, 1), (200, 10, 10)).save(tiny)
    return {"missing": str(tmp_path / "no-such-photo.jpg"), "corrupt": str(corrupt), "tiny": str(tiny)}


@pytest.mark.parametrize(
    "case",
    [
        "missing image",
        "corrupt image",
        "1x1 image",
        "label 5000",
        "negative label",
        "unknown regions",
        "bad param syntax",
        "bad param value",
        "unknown param",
        "unknown model",
        "unknown weight",
        "bad weight value",
        "missing label file",
    ],
)
def test_explain_bad_input_is_one_line_and_exit_2(fast_lite0, cat_file, tmp_path, capsys, case):
    photos = bad_photos(tmp_path)
    out = tmp_path / "out"
    image = {"missing image": photos["missing"], "corrupt image": photos["corrupt"], "1x1 image": photos["tiny"]}.get(
        case, str(cat_file)
    )
    extra = {
        "label 5000": ["--label", "5000"],
        "negative label": ["--label", "-1"],
        "unknown regions": ["--regions", "wobble"],
        "bad param syntax": ["--regions", "grid", "--param", "cells_per_side:3"],
        "bad param value": ["--regions", "grid", "--param", "cells_per_side=0"],
        "unknown param": ["--regions", "grid", "--param", "colour=red"],
        "unknown model": ["--model", "no_such_model"],
        "unknown weight": ["--regions", "grid", "--param", "cells_per_side=2", "--weights", "bogus=1"],
        "bad weight value": ["--regions", "grid", "--param", "cells_per_side=2", "--weights", "consistency=lots"],
        "missing label file": ["--regions", str(tmp_path / "labels.npy")],
    }.get(case, [])
    argv = ["explain", image, "--out", str(out), "--quiet"]
    argv += extra if extra[:1] == ["--label"] else ["--label", "281"] + extra
    assert cli.main(argv) == 2
    line = one_error_line(capsys)
    assert len(line) > len("lima: error: ")
    assert not out.exists()
    if case == "label 5000":
        assert "5000" in line
    if case == "unknown weight":
        assert "bogus" in line


def tiny_scan_argv(tmp_path, count: int) -> list[str]:
    """`scan` of a label list of ``count`` flat 20×20 photos (labels 0..count-1) with the tiny
    TorchScript model."""
    model, names = tiny_model_files(tmp_path)
    folder = tmp_path / "set"
    folder.mkdir()
    for i in range(count):
        Image.fromarray(np.full((20, 20, 3), 80 * i, np.uint8)).save(folder / f"img{i}.png")
    (folder / "labels.txt").write_text("".join(f"img{i}.png {i}\n" for i in range(count)))
    return ["scan", str(folder / "labels.txt"), "--model", f"torchscript:{model}", "--class-names", str(names)]


def test_a_scan_that_cannot_be_kept_still_reports_and_writes_its_json(tmp_path, capsys, monkeypatch):
    argv = tiny_scan_argv(tmp_path, 3)
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("LIMA_SCANS_DIR", str(tmp_path / "a-file" / "scans"))  # cannot be a folder
    report = tmp_path / "scan.json"
    rc = cli.main([*argv, "--json", str(report)])
    stdout, stderr = capsys.readouterr()
    assert rc == 0 and "3 images, accuracy" in stdout
    assert "warning: the scan could not be kept for the app" in stderr and "Traceback" not in stderr
    assert len(ScanResult.from_json(report.read_text()).rows) == 3  # nothing is lost


def test_json_goes_into_a_folder_that_is_made_and_a_file_in_its_path_is_refused_first(tmp_path, capsys):
    """--json into a new folder: the folder is made when the report is written (it used to end,
    after the whole scan, in '[Errno 2] No such file or directory'); a file where a folder must be
    is refused before any work, naming the flag."""
    argv = tiny_scan_argv(tmp_path, 2)
    report = tmp_path / "new" / "deeper" / "scan.json"
    assert cli.main([*argv, "--json", str(report)]) == 0
    capsys.readouterr()
    assert len(ScanResult.from_json(report.read_text()).rows) == 2
    (tmp_path / "a-file").write_text("")
    assert cli.main([*argv, "--json", str(tmp_path / "a-file" / "sub" / "scan.json")]) == 2
    line = one_error_line(capsys)
    assert line.startswith("lima: error: --json") and "a-file" in line


@pytest.mark.parametrize(
    "argv",
    [
        ["explain", "x.jpg"],  # no --label, no --out
        ["explain", "x.jpg", "--label", "3"],  # no --out
        ["explain", "--out", "o", "--label", "3"],  # no image
        ["explain", "x.jpg", "--label", "three", "--out", "o"],
        [],
        ["frobnicate"],
    ],
)
def test_argument_errors_are_one_line_and_exit_2(argv, capsys):
    assert cli.main(argv) == 2
    one_error_line(capsys)


def test_help_exits_0(capsys):
    assert cli.main(["--help"]) == 0
    assert "explain" in capsys.readouterr().out


# -- scan -----------------------------------------------------------------------------------------------


def tiny_model_files(tmp_path):
    model = tmp_path / "tiny.pt"
    torch.jit.script(TinyCNN(5, seed=7)).save(str(model))
    names = tmp_path / "names.txt"
    names.write_text("".join(f"class {i}\n" for i in range(5)))
    return model, names


def test_scan_a_label_list_with_a_user_model(tmp_path, capsys):
    from explainer.models import load_classifier

    model, names = tiny_model_files(tmp_path)
    folder = tmp_path / "set"
    folder.mkdir()
    rng = np.random.default_rng(0)
    lines = []
    for i in range(10):
        Image.fromarray(rng.integers(0, 256, (40, 30, 3), dtype=np.uint8)).save(folder / f"img{i}.png")
        lines.append(f"img{i}.png {i % 5}")
    (folder / "bad.png").write_bytes(b"garbage")
    lines.append("bad.png 0")
    (folder / "labels.txt").write_text("\n".join(lines))
    # the expected accuracy, image by image
    clf = load_classifier(f"torchscript:{model}", device="cpu", class_names=names)
    right = sum(int(np.argmax(clf.predict(clf.view(folder / f"img{i}.png")[None])[0])) == i % 5 for i in range(10))
    report = tmp_path / "scan.json"
    rc = cli.main(
        [
            "scan",
            str(folder / "labels.txt"),
            "--model",
            f"torchscript:{model}",
            "--class-names",
            str(names),
            "--json",
            str(report),
            "--top",
            "2",
        ]
    )
    stdout, stderr = capsys.readouterr()
    assert rc == 0, stderr
    first, *mistake_lines = stdout.strip().splitlines()
    assert f"10 images, accuracy {100 * right / 10:.1f} %" in first and f"({10 - right} misclassified)" in first
    assert len(mistake_lines) == min(2, 10 - right)
    assert "unreadable:" in stderr and "bad.png" in stderr
    result = ScanResult.from_json(report.read_text())
    assert len(result.rows) == 11 and result.accuracy == pytest.approx(right / 10)
    # the scan is cached for Find errors, batch and study
    from explainer.data import open_image_set
    from explainer.scan import ScanCache

    image_set = open_image_set(folder / "labels.txt", clf.class_names)
    assert ScanCache().get(clf, image_set) == result
    # ... and so are the mistakes' gallery thumbnails, where the app looks (and only theirs)
    from explainer.thumbnails import framing_of, shared_cache

    framing, kept = framing_of(clf.preprocess), shared_cache()
    wrong = {r.key for r in result.mistakes()}
    found = {item.key for item in image_set if kept.peek(item, framing)[0]}
    assert wrong and found == wrong


@pytest.mark.parametrize(
    "argv",
    [
        ["scan", "demo", "--ray-shared-fs"],  # needs --ray
        ["scan", "demo", "--workers", "2"],  # needs --ray
        ["scan", "demo", "--ray", "--workers", "0"],
        ["scan", "demo", "--ray", "--chunk", "0"],
    ],
)
def test_scan_ray_flag_errors_are_one_line_before_any_work(argv, capsys, monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert cli.main(argv) == 2
    assert "--" in one_error_line(capsys)


def test_scan_of_a_missing_set_is_one_line(tmp_path, capsys):
    model, names = tiny_model_files(tmp_path)
    rc = cli.main(
        ["scan", str(tmp_path / "nothing.txt"), "--model", f"torchscript:{model}", "--class-names", str(names)]
    )
    assert rc == 2
    one_error_line(capsys)


def test_user_model_without_class_names_is_one_line(tmp_path, capsys):
    model, _ = tiny_model_files(tmp_path)
    assert cli.main(["scan", "demo", "--model", f"torchscript:{model}"]) == 2
    assert "class-names" in one_error_line(capsys)


@pytest.mark.slow
def test_scan_demo_with_the_real_model(fast_lite0, capsys):
    from explainer.data import demo_set

    items = demo_set(fast_lite0.class_names).items
    assert len(items) == 9
    views = np.stack([fast_lite0.view(item.load()) for item in items])
    right = int((fast_lite0.predict(views).argmax(1) == np.array([i.label for i in items])).sum())
    assert cli.main(["scan", "demo"]) == 0
    stdout = capsys.readouterr().out
    first = stdout.splitlines()[0]
    assert first.startswith("Built-in demo: 9 images")
    assert f"accuracy {100 * right / 9:.1f} %" in first and f"({9 - right} misclassified)" in first
    assert len(stdout.strip().splitlines()) == 1 + 9 - right  # every mistake listed (--top 0)


# -- regions --------------------------------------------------------------------------------------------


def test_regions_writes_a_label_map_and_a_preview(fast_lite0, cat_file, tmp_path, capsys):
    out = tmp_path / "maps" / "cat.npy"
    rc = cli.main(["regions", str(cat_file), "--method", "grid", "--param", "cells_per_side=4", "--out", str(out)])
    stdout, stderr = capsys.readouterr()
    assert rc == 0, stderr
    labels = np.load(out)
    assert labels.shape == (224, 224) and labels.dtype == np.int32
    assert sorted(np.unique(labels).tolist()) == list(range(16))
    preview = Image.open(out.with_name("cat.regions.png"))
    assert preview.format == "PNG" and preview.size == (448, 448)
    assert stdout.startswith("16 regions")


def test_regions_label_map_is_usable_by_explain(fast_lite0, cat_file, tmp_path, capsys):
    """A map written by `regions` is accepted by `explain --regions file.npy`."""
    labels = tmp_path / "cat.npy"
    assert (
        cli.main(["regions", str(cat_file), "--method", "grid", "--param", "cells_per_side=2", "--out", str(labels)])
        == 0
    )
    out = tmp_path / "run"
    assert (
        cli.main(
            [
                "explain",
                str(cat_file),
                "--label",
                "281",
                "--regions",
                str(labels),
                "--out",
                str(out),
                "--quiet",
                "--search",
                "greedy",
            ]
        )
        == 0
    )
    exp = store.load(out)
    assert exp.n_regions == 4 and (exp.regions.method, exp.regions.source) == ("file", "cat.npy")
    np.testing.assert_array_equal(exp.labels, np.load(labels))
    assert json.loads((out / "explanation.json").read_text())["config"]["search"] == "greedy"


def test_regions_bad_method_is_one_line(fast_lite0, cat_file, tmp_path, capsys):
    assert cli.main(["regions", str(cat_file), "--method", "wobble", "--out", str(tmp_path / "x.npy")]) == 2
    one_error_line(capsys)
    assert not (tmp_path / "x.npy").exists()
