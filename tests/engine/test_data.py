"""Tests for explainer.data: demo, folder, label-list, CSV and upload sets, and the data root."""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from explainer import data
from explainer.data import (
    DATA_ROOT_ENV,
    ImageItem,
    ImageSet,
    check_labels,
    csv_set,
    default_data_root,
    demo_set,
    folder_set,
    label_list_set,
    load_demo_manifest,
    open_image_set,
    resolve_under_root,
    upload_item,
    uploads_set,
)
from explainer.errors import DataError, ImageError, LabelError

IMAGENET_SAMPLE = Path("/work/shared/data/imagenet-sample")
MIN_PHOTO_SIDE = 100

# A small class list with the awkward cases: hyphens, spaces, case, and a duplicate name
# (ImageNet's original list has two "crane" classes).
CLASSES = ["tabby", "tiger cat", "Egyptian cat", "black-and-tan coonhound", "crane", "crane", "wall clock"]


# ------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def imagenet_classes() -> list[str]:
    """The 1000 ImageNet-1k class names, offline, from torchvision's metadata."""
    torchvision_models = pytest.importorskip("torchvision.models")
    return list(torchvision_models.EfficientNet_B0_Weights.DEFAULT.meta["categories"])


def png_bytes(colour: tuple[int, int, int] = (200, 30, 30), size: tuple[int, int] = (32, 24)):
    """A small solid-colour PNG, as bytes."""
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "PNG")
    return buffer.getvalue()


def write_image(path: Path, colour: tuple[int, int, int] = (200, 30, 30)) -> Path:
    """Write a small image (format from the suffix), creating folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = "JPEG" if path.suffix.lower() in (".jpg", ".jpeg") else "PNG"
    Image.new("RGB", (32, 24), colour).save(path, fmt)
    return path


@pytest.fixture
def class_tree(tmp_path: Path) -> Path:
    """A folder set: index, exact, normalised, unknown and ambiguous class folders."""
    base = tmp_path / "root" / "pets"
    write_image(base / "0" / "b.png")
    write_image(base / "0" / "a.JPG")
    write_image(base / "0" / "deeper" / "c.png")
    (base / "0" / "notes.txt").write_text("not an image")
    (base / "0" / ".DS_Store").write_bytes(b"\x00")
    write_image(base / "tiger cat" / "t.png")
    write_image(base / "Black_and_Tan-coonhound" / "dog.png")
    write_image(base / "bogus" / "x.png")
    write_image(base / "crane" / "bird.png")
    write_image(base / "Tabby_cat" / "y.png")
    write_image(base / "stray.png")
    return base


@pytest.fixture
def list_tree(tmp_path: Path) -> Path:
    """A label list in the reference format, with every kind of bad line."""
    base = tmp_path / "root" / "set"
    write_image(base / "a.png")
    write_image(base / "my cat.png")
    write_image(base / "images" / "in_images.png")
    write_image(tmp_path / "root" / "sibling.png")
    write_image(tmp_path / "outside.png")
    lines = [
        "# comment line",
        "",
        "a.png 0",  # 3
        "my cat.png   6",  # 4: a space in the name
        "in_images.png 1",  # 5: found in images/
        "missing.png 2",  # 6
        "a.png 99",  # 7: out of range
        "a.png abc",  # 8: not an integer
        "lonely.png",  # 9: no label
        "a.png 1",  # 10: listed again
        "notes.txt 1",  # 11: not an image
        "../sibling.png 2",  # 12: inside the root, outside the list folder
        "../../outside.png 3",  # 13: outside the root
        "   # indented comment",
    ]
    (base / "labels.txt").write_text("\n".join(lines) + "\n")
    return base


# ------------------------------------------------------------------------------ demo set


def test_demo_set_loads_real_photos(imagenet_classes: list[str]):
    demo = demo_set(imagenet_classes)
    assert demo.kind == "demo" and demo.root is None
    assert len(demo) >= 8 and demo.problems == ()
    manifest = {entry["key"]: entry for entry in load_demo_manifest()}
    for item in demo:
        image = item.load()
        assert image.mode == "RGB"
        assert min(image.size) >= 256 and max(image.size) <= 1024
        assert np.asarray(image).std() > 10  # a real photo, not a blank
        assert imagenet_classes[item.label] == manifest[item.key]["label_name"]
        assert item.note  # licence and credit travel with the image


def test_demo_manifest_has_the_expected_entries():
    entries = {entry["key"]: entry for entry in load_demo_manifest()}
    expected = {
        "chelsea": 281,
        "coffee": 967,
        "rocket": 812,
        "motorcycle": 665,
        "camera": 872,
        "grace_hopper": 652,
        "china": 698,
        "flower": 985,
    }
    for key, label in expected.items():
        assert entries[key]["label"] == label
    assert "astronaut" not in entries
    for entry in entries.values():
        assert entry["licence"] and entry["credit"] and entry["title"]
    assert entries["grace_hopper"]["source"] == "matplotlib:grace_hopper.jpg"
    assert entries["china"]["licence"] == "CC BY 2.0"


def test_demo_set_without_class_names_and_fingerprint():
    demo = demo_set()
    assert len(demo) >= 8
    assert demo.fingerprint() == demo_set().fingerprint()
    assert all(len(item.source_digest()) == 64 for item in demo)


def test_demo_set_refuses_other_label_spaces(imagenet_classes: list[str]):
    with pytest.raises(DataError, match="ImageNet-1k"):
        demo_set(["cat", "dog"])
    renamed = list(imagenet_classes)
    renamed[281] = "house cat"
    demo = demo_set(renamed)
    assert "chelsea" not in {item.key for item in demo}
    assert any(problem.startswith("chelsea:") and "tabby" in problem for problem in demo.problems)


# ---------------------------------------------------------------------------- folder sets


def test_folder_set_matches_index_name_and_normalised_name(class_tree: Path):
    found = folder_set(class_tree, CLASSES)
    assert found.kind == "folder" and found.name == "pets" and found.root == class_tree
    labels = {item.key: item.label for item in found}
    assert labels == {
        "0/a.JPG": 0,
        "0/b.png": 0,
        "0/deeper/c.png": 0,
        "Black_and_Tan-coonhound/dog.png": 3,
        "tiger cat/t.png": 1,
    }
    assert [item.key for item in found][:3] == ["0/a.JPG", "0/b.png", "0/deeper/c.png"]
    problems = "\n".join(found.problems)
    assert "0/notes.txt: not an image file" in problems
    assert "bogus/" in problems and "Tabby_cat/" in problems
    assert "crane/" in problems and "4 and 5" in problems  # ambiguous name
    assert "stray.png: not inside a class folder" in problems
    assert ".DS_Store" not in problems
    assert all(item.load().mode == "RGB" for item in found)


def test_folder_set_no_matching_folder(tmp_path: Path):
    write_image(tmp_path / "set" / "cats" / "a.png")
    write_image(tmp_path / "set" / "dogs" / "b.png")
    with pytest.raises(DataError) as error:
        folder_set(tmp_path / "set", CLASSES)
    message = str(error.value)
    assert "'cats'" in message and "'dogs'" in message and "'tabby'" in message


def test_folder_set_empty_folder(tmp_path: Path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty"):
        folder_set(tmp_path / "empty", CLASSES)
    (tmp_path / "empty" / "0").mkdir()
    with pytest.raises(DataError, match="No image files"):
        folder_set(tmp_path / "empty", CLASSES)


def test_folder_set_missing_or_file(tmp_path: Path):
    with pytest.raises(DataError, match="does not exist"):
        folder_set(tmp_path / "nope", CLASSES)
    with pytest.raises(DataError, match="is a file"):
        folder_set(write_image(tmp_path / "x.png"), CLASSES)


# ------------------------------------------------------------------------- label lists


@pytest.mark.skipif(not IMAGENET_SAMPLE.is_dir(), reason="imagenet-sample is not available")
def test_label_list_on_imagenet_sample(imagenet_classes: list[str]):
    sample = label_list_set(IMAGENET_SAMPLE / "labels.txt", imagenet_classes)
    assert len(sample) == 200 and sample.problems == () and sample.kind == "list"
    for item in sample:
        assert item.path.parent == IMAGENET_SAMPLE / "images"
        class_part = item.name.split("_", 1)[1].rsplit(".", 1)[0].replace("_", " ")
        assert class_part.lower() == imagenet_classes[item.label].lower()
    first = sample.items[0].load()
    assert first.mode == "RGB" and min(first.size) >= MIN_PHOTO_SIDE
    # The same set through the data root and the dispatcher.
    via_root = open_image_set("imagenet-sample/labels.txt", imagenet_classes, root=IMAGENET_SAMPLE.parent)
    assert via_root.fingerprint() == sample.fingerprint()


def test_label_list_problems_have_line_numbers(list_tree: Path):
    listed = label_list_set(list_tree / "labels.txt", CLASSES, root=list_tree.parent)
    assert [(item.key, item.label) for item in listed] == [
        ("a.png", 0),
        ("my cat.png", 6),
        ("in_images.png", 1),
        ("../sibling.png", 2),
    ]
    assert listed.items[2].path == list_tree / "images" / "in_images.png"
    problems = listed.problems
    assert len(problems) == 7
    assert problems[0].startswith("labels.txt:6: missing.png not found")
    assert problems[1] == "labels.txt:7: class 99 is outside 0..6"
    assert problems[2].startswith("labels.txt:8: class 'abc' is not an integer")
    assert problems[3].startswith("labels.txt:9: expected '<file> <class index>'")
    assert problems[4].startswith("labels.txt:10: a.png is listed again (first on line 3)")
    assert problems[5].startswith("labels.txt:11: notes.txt: not an image file")
    assert problems[6] == "labels.txt:13: ../../outside.png is outside the data root; skipped"


def test_label_list_without_root_is_unrestricted(list_tree: Path):
    listed = label_list_set(list_tree / "labels.txt", CLASSES)
    assert "../../outside.png" in {item.key for item in listed}


def test_label_list_cannot_reach_system_files(tmp_path: Path):
    root = tmp_path / "root"
    (root / "set").mkdir(parents=True)
    depth = len(root.parts) + 3
    (root / "set" / "evil.txt").write_text(f"{'../' * depth}etc/passwd.png 0\n/etc/hosts.png 0\n")
    with pytest.raises(DataError) as error:
        label_list_set(root / "set" / "evil.txt", CLASSES, root=root)
    assert "outside the data root" in str(error.value)


def test_label_list_not_text_or_empty(tmp_path: Path):
    binary = tmp_path / "labels.txt"
    binary.write_bytes(png_bytes())
    with pytest.raises(DataError, match="not a text file"):
        label_list_set(binary, CLASSES)
    binary.write_text("# only a comment\n\n")
    with pytest.raises(DataError, match="no usable"):
        label_list_set(binary, CLASSES)


# -------------------------------------------------------------------------------- CSV sets


def test_csv_with_names_and_indices(tmp_path: Path):
    write_image(tmp_path / "a.png")
    write_image(tmp_path / "b.png")
    write_image(tmp_path / "images" / "c.png")
    write_image(tmp_path / "d e.png")
    (tmp_path / "set.csv").write_text(
        "Image,notes,Class\n"
        "a.png,first,0\n"
        "b.png,second,Tiger_Cat\n"
        "c.png,third,black-and-tan coonhound\n"
        '"d e.png","a, quoted",wall clock\n'
        "a.png,dup,0\n"
        "b.png,bad,zebra\n"
        "b.png,ambiguous,crane\n"
        "b.png,range,7\n"
        "short\n"
    )
    found = csv_set(tmp_path / "set.csv", CLASSES)
    assert found.kind == "csv"
    assert [(item.key, item.label) for item in found] == [("a.png", 0), ("b.png", 1), ("c.png", 3), ("d e.png", 6)]
    problems = found.problems
    assert problems[0].startswith("set.csv:6: a.png is listed again")
    assert problems[1].startswith("set.csv:7: 'zebra' is neither")
    assert problems[2].startswith("set.csv:8: 'crane' names classes 4 and 5")
    assert problems[3] == "set.csv:9: class 7 is outside 0..6"
    assert problems[4].startswith("set.csv:10: the row has only 1 column")


def test_csv_semicolons_and_bom(tmp_path: Path):
    write_image(tmp_path / "a.png")
    (tmp_path / "set.csv").write_bytes("\ufeffpath;label\na.png;tabby\n".encode("utf-8"))
    found = csv_set(tmp_path / "set.csv", CLASSES)
    assert [(item.key, item.label) for item in found] == [("a.png", 0)]


def test_csv_without_the_columns(tmp_path: Path):
    (tmp_path / "set.csv").write_text("picture,kind\na.png,0\n")
    with pytest.raises(DataError, match="path column.*label column.*picture"):
        csv_set(tmp_path / "set.csv", CLASSES)


# --------------------------------------------------------------------------- dispatching


def test_open_image_set_dispatch(class_tree: Path, list_tree: Path, tmp_path: Path):
    assert open_image_set(class_tree, CLASSES).kind == "folder"
    assert open_image_set(list_tree / "labels.txt", CLASSES).kind == "list"
    write_image(tmp_path / "z.png")
    (tmp_path / "s.csv").write_text("file,target\nz.png,2\n")
    assert open_image_set(tmp_path / "s.csv", CLASSES).kind == "csv"
    with pytest.raises(DataError, match="single image"):
        open_image_set(tmp_path / "z.png", CLASSES)
    with pytest.raises(DataError, match="does not exist"):
        open_image_set(tmp_path / "nothing", CLASSES)


# ------------------------------------------------------------------------------ data root


def test_resolve_under_root(tmp_path: Path):
    root = tmp_path / "root"
    (root / "a").mkdir(parents=True)
    assert resolve_under_root("a", root) == (root / "a").resolve()
    assert resolve_under_root(root / "a" / ".." / "a", root) == (root / "a").resolve()
    assert resolve_under_root(root, root) == root.resolve()
    with pytest.raises(DataError, match=f"outside the data root.*{DATA_ROOT_ENV}"):
        resolve_under_root("../elsewhere", root)
    with pytest.raises(DataError, match="outside the data root"):
        resolve_under_root("/etc/passwd", root)
    assert resolve_under_root("/etc/passwd", None) == Path("/etc/passwd").resolve()


def test_root_restricts_set_paths(class_tree: Path, tmp_path: Path):
    with pytest.raises(DataError, match="outside the data root"):
        folder_set(class_tree, CLASSES, root=tmp_path / "elsewhere")
    relative = folder_set("pets", CLASSES, root=class_tree.parent)
    assert len(relative) == 5
    with pytest.raises(DataError, match="outside the data root"):
        open_image_set("../..", CLASSES, root=class_tree)


def test_symlinks_pointing_outside_root_are_refused(tmp_path: Path):
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    secret = write_image(outside / "secret.png")
    write_image(outside / "cls" / "hidden.png")
    write_image(root / "set" / "0" / "ok.png")
    (root / "set" / "0" / "link.png").symlink_to(secret)
    (root / "set" / "1").symlink_to(outside / "cls", target_is_directory=True)
    (root / "set" / "inner.png").symlink_to(root / "set" / "0" / "ok.png")
    found = folder_set(root / "set", CLASSES, root=root)
    assert [item.key for item in found] == ["0/ok.png"]
    problems = "\n".join(found.problems)
    assert "0/link.png: points outside the data root" in problems
    assert "1/: points outside the data root" in problems
    # Without a root the same links are followed.
    assert {item.key for item in folder_set(root / "set", CLASSES)} == {"0/link.png", "0/ok.png", "1/hidden.png"}
    # A label list that is itself a link out of the root is refused outright.
    (outside / "labels.txt").write_text("secret.png 0\n")
    (root / "labels.txt").symlink_to(outside / "labels.txt")
    with pytest.raises(DataError, match="outside the data root"):
        label_list_set(root / "labels.txt", CLASSES, root=root)


def test_default_data_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(DATA_ROOT_ENV, str(tmp_path / "mine"))
    assert default_data_root() == (tmp_path / "mine").resolve()
    monkeypatch.delenv(DATA_ROOT_ENV)
    monkeypatch.chdir(tmp_path)
    assert default_data_root() == (tmp_path / "data").resolve()


# ---------------------------------------------------------------------------- fingerprint


def test_fingerprint_stable_and_sensitive(class_tree: Path):
    first = folder_set(class_tree, CLASSES).fingerprint()
    assert folder_set(class_tree, CLASSES).fingerprint() == first
    assert len(first) == 64
    write_image(class_tree / "0" / "new.png")
    added = folder_set(class_tree, CLASSES).fingerprint()
    assert added != first
    path = class_tree / "0" / "new.png"
    write_image(path, colour=(1, 2, 3))
    os.utime(path, ns=(1, 1))  # a different mtime, whatever the clock resolution
    assert folder_set(class_tree, CLASSES).fingerprint() != added


def test_fingerprint_of_uploads_depends_on_content():
    one = uploads_set([upload_item(png_bytes(), "a.png", 0, CLASSES)])
    same = uploads_set([upload_item(png_bytes(), "a.png", 0, CLASSES)])
    other = uploads_set([upload_item(png_bytes((0, 0, 9)), "a.png", 0, CLASSES)])
    relabelled = uploads_set([upload_item(png_bytes(), "a.png", 1, CLASSES)])
    assert one.fingerprint() == same.fingerprint()
    assert len({one.fingerprint(), other.fingerprint(), relabelled.fingerprint()}) == 3


# -------------------------------------------------------------------------------- uploads


def test_upload_item_ok():
    payload = png_bytes()
    item = upload_item(payload, "C:\\Users\\me\\cat.png", 6, CLASSES)
    assert item.name == "cat.png" and item.label == 6
    assert item.key == f"upload/{hashlib.sha256(payload).hexdigest()[:12]}/cat.png"
    assert item.source_digest() == hashlib.sha256(payload).hexdigest()
    assert item.load().size == (32, 24)
    assert "data=" not in repr(item)  # bytes stay out of logs


def test_upload_item_bad_bytes_and_labels():
    with pytest.raises(ImageError, match="broken.jpg"):
        upload_item(b"definitely not a jpeg", "broken.jpg", 0, CLASSES)
    with pytest.raises(LabelError, match="7.*0..6"):
        upload_item(png_bytes(), "a.png", 7, CLASSES)
    with pytest.raises(LabelError):
        upload_item(png_bytes(), "a.png", -1, CLASSES)


def test_uploads_set_drops_duplicates_and_refuses_empty():
    item = upload_item(png_bytes(), "a.png", 0, CLASSES)
    other = upload_item(png_bytes((1, 1, 1)), "a.png", 0, CLASSES)
    found = uploads_set([item, item, other])
    assert len(found) == 2 and found.kind == "uploads"
    assert found.problems == ("a.png: uploaded twice; kept the first",)
    with pytest.raises(DataError, match="No images uploaded"):
        uploads_set([])


# ---------------------------------------------------------------------- labels and items


def test_check_labels():
    assert check_labels([0, np.int64(6), 3], CLASSES) == [0, 6, 3]
    with pytest.raises(LabelError, match="7"):
        check_labels([0, 7], CLASSES)
    with pytest.raises(LabelError, match="-1, 9, 10 and 1 more"):
        check_labels([-1, 9, 10, 11], CLASSES)
    with pytest.raises(LabelError, match="not an integer"):
        check_labels([2.5], CLASSES)
    with pytest.raises(LabelError, match="not an integer"):
        check_labels([True], CLASSES)
    with pytest.raises(LabelError, match="empty"):
        check_labels([0], [])


def test_image_item_sources(tmp_path: Path):
    path = write_image(tmp_path / "a.png")
    by_path = ImageItem("a.png", 0, "a.png", path=path)
    assert by_path.source_digest() == hashlib.sha256(path.read_bytes()).hexdigest()
    calls = []

    def loader() -> Image.Image:
        calls.append(1)
        return Image.new("RGB", (20, 20), (5, 6, 7))

    by_loader = ImageItem("demo", 1, "Demo", loader=loader)
    assert by_loader.source_digest() == by_loader.source_digest()
    assert len(calls) == 1  # cached
    with pytest.raises(ValueError):
        ImageItem("x", 0, "x")
    with pytest.raises(ValueError):
        ImageItem("x", 0, "x", path=path, data=b"1")
    with pytest.raises(ValueError):
        ImageSet("dup", "uploads", (by_path, by_path), None, ())
    with pytest.raises(ImageError, match="gone.png"):
        ImageItem("gone.png", 0, "gone.png", path=tmp_path / "gone.png").load()


def test_demo_manifest_is_valid_json():
    raw = json.loads(data.DEMO_MANIFEST.read_text(encoding="utf-8"))
    assert raw["num_classes"] == 1000 and len(raw["entries"]) <= 10
