"""Tests for explainer.sam: checkpoints, loading, mask post-processing and SAM regions.

SAM weights are not available offline, so the real ``segment_anything`` code path runs with a
tiny randomly initialised ``Sam`` (``explainer.sam_masks.tiny_sam``). Its masks are meaningless;
the tests check formats, the overlap rule, label maps and error handling.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pytest
import skimage.data
import torch
from PIL import Image

from explainer.errors import RegionError, SamUnavailable
from explainer.regions import propose_regions, region_stats, validate_labels
from explainer.sam import (
    SAM_DOWNLOAD_HINT,
    SAM_ENV_VAR,
    SamStatus,
    find_sam_checkpoint,
    generate_masks,
    load_sam,
    masks_to_labels,
    sam_regions,
    sam_status,
)
from explainer.sam_masks import tiny_sam

PERMISSIVE = {"pred_iou_thresh": 0.0, "stability_score_thresh": 0.0, "box_nms_thresh": 1.0}


@cache
def photo_view(name: str, size: int = 224) -> np.ndarray:
    """An skimage photo framed like the product's view (short side size*256/224, centre crop)."""
    image = Image.fromarray(getattr(skimage.data, name)())
    short = round(size * 256 / 224)
    width, height = image.size
    scale = short / min(width, height)
    image = image.resize((round(width * scale), round(height * scale)), Image.BICUBIC)
    width, height = image.size
    left, top = (width - size) // 2, (height - size) // 2
    view = np.asarray(image.crop((left, top, left + size, top + size)).convert("RGB"))
    view.setflags(write=False)
    return view


def reference_masks_to_labels(masks: list[np.ndarray], min_fraction: float) -> np.ndarray:
    """Straightforward transcription of lima-spec §1.4, slow but obvious."""
    work = [m.astype(np.uint8).copy() for m in masks]
    for i in range(len(work)):
        for j in range(i + 1, len(work)):
            inter = work[i] & work[j]
            if inter.sum() > 0:
                if inter.sum() / work[i].sum() <= inter.sum() / work[j].sum():
                    work[i] = work[i] - inter
                else:
                    work[j] = work[j] - inter
    kept = [m for m in work if m.mean() > min_fraction]
    labels = np.full(masks[0].shape, len(kept), dtype=np.int64)
    for k, mask in enumerate(kept):
        labels[mask > 0] = k
    return labels


def strip(*spans: tuple[int, int], length: int = 10) -> list[np.ndarray]:
    """1 x length masks, each True on [start, stop)."""
    masks = []
    for start, stop in spans:
        mask = np.zeros((1, length), bool)
        mask[0, start:stop] = True
        masks.append(mask)
    return masks


@pytest.fixture(scope="module")
def tiny() -> torch.nn.Module:
    return tiny_sam()


@pytest.fixture(scope="module")
def many_masks(tiny) -> list[np.ndarray]:
    image = np.ascontiguousarray(photo_view("chelsea", 256))
    return generate_masks(tiny, image, points_per_side=8, **PERMISSIVE)


@pytest.fixture
def no_sam_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No checkpoint variable; the SAM folder an empty temporary directory (returned)."""
    empty = tmp_path / "sam-dir"
    empty.mkdir()
    monkeypatch.delenv(SAM_ENV_VAR, raising=False)
    monkeypatch.setenv("LIMA_SAM_DIR", str(empty))  # settings are read at call time
    return empty


# --------------------------------------------------------------------------- masks_to_labels


def test_big_mask_loses_the_small_mask_it_contains() -> None:
    big = np.ones((6, 6), bool)
    small = np.zeros((6, 6), bool)
    small[:2, :2] = True
    labels = masks_to_labels([big, small], (6, 6), min_fraction=0.0)
    np.testing.assert_array_equal(labels, np.where(small, 1, 0))
    # Order reversed: still removed from the big one (now m_j), ids follow SAM order.
    labels = masks_to_labels([small, big], (6, 6), min_fraction=0.0)
    np.testing.assert_array_equal(labels, np.where(small, 0, 1))


def test_equal_proportions_remove_the_overlap_from_the_first_mask() -> None:
    first, second = strip((0, 6), (3, 9))  # both 6 px, overlap 3..5
    labels = masks_to_labels([first, second], (1, 10), min_fraction=0.0)
    np.testing.assert_array_equal(labels, [[0, 0, 0, 1, 1, 1, 1, 1, 1, 2]])


def test_masks_shrink_in_place_so_later_pairs_see_the_shrunken_mask() -> None:
    masks = strip((0, 6), (0, 3), (3, 7))
    # (0,1): m1 inside m0 -> m0 = 3..5 (3 px). (0,2): I = 3..5, 3/3 > 3/4 -> removed from m2,
    # leaving m2 = 6. With the original m0 (6 px) the overlap would leave m2 whole instead.
    labels = masks_to_labels(masks, (1, 10), min_fraction=0.0)
    np.testing.assert_array_equal(labels, [[1, 1, 1, 0, 0, 0, 2, 3, 3, 3]])
    # m2 shrank to 1 px = 0.1 of the strip: dropped at 0.1, its pixel joins the residual.
    labels = masks_to_labels(masks, (1, 10), min_fraction=0.1)
    np.testing.assert_array_equal(labels, [[1, 1, 1, 0, 0, 0, 2, 2, 2, 2]])


def test_residual_region_comes_last_and_only_when_needed() -> None:
    left, right = strip((0, 4), (4, 10))
    np.testing.assert_array_equal(masks_to_labels([right], (1, 10), 0.0), [[1, 1, 1, 1, 0, 0, 0, 0, 0, 0]])
    exact = masks_to_labels([left, right], (1, 10), 0.0)  # full cover: no residual id
    np.testing.assert_array_equal(exact, [[0] * 4 + [1] * 6])


def test_tiny_mask_is_dropped_into_the_residual() -> None:
    shape = (224, 224)
    dot = np.zeros(shape, bool)
    dot[:5, :5] = True  # 25 px = 0.0498 % <= 0.05 %: dropped, like the reference
    half = np.zeros(shape, bool)
    half[112:] = True
    labels = masks_to_labels([dot, half], shape)
    assert set(np.unique(labels)) == {0, 1}
    assert (labels[:5, :5] == 1).all() and (labels[112:] == 0).all()
    dot[5, 0] = True  # 26 px: kept
    assert masks_to_labels([dot, half], shape).max() == 2


@pytest.mark.parametrize("masks", [[], np.zeros((0, 8, 9), bool), [np.zeros((8, 9), bool)], [np.ones((8, 9), bool)]])
def test_no_usable_mask_gives_a_single_region(masks) -> None:
    labels = masks_to_labels(masks, (8, 9), min_fraction=0.9999)
    assert labels.dtype == np.int32 and labels.shape == (8, 9)
    assert (labels == 0).all()


def test_all_masks_tiny_gives_a_single_region() -> None:
    masks = [np.zeros((100, 100), bool) for _ in range(5)]
    for k, mask in enumerate(masks):
        mask[k, :5] = True  # 5 px = 0.05 %: not above the threshold
    np.testing.assert_array_equal(masks_to_labels(masks, (100, 100)), np.zeros((100, 100)))


def test_masks_to_labels_matches_reference_on_random_masks() -> None:
    rng = np.random.default_rng(7)
    for _ in range(60):
        height, width = rng.integers(3, 20, size=2)
        masks = []
        for _ in range(rng.integers(1, 9)):
            if rng.random() < 0.3:
                masks.append(rng.random((height, width)) < 0.4)
                continue
            y0, x0 = rng.integers(0, height), rng.integers(0, width)
            mask = np.zeros((height, width), bool)
            mask[y0 : rng.integers(y0, height + 1), x0 : rng.integers(x0, width + 1)] = True
            masks.append(mask)
        min_fraction = float(rng.choice([0.0, 0.0005, 0.05, 0.2]))
        labels = masks_to_labels(masks, (height, width), min_fraction)
        validate_labels(labels, (height, width))
        np.testing.assert_array_equal(labels, reference_masks_to_labels(masks, min_fraction))


def test_masks_to_labels_accepts_sam_records_and_arrays() -> None:
    masks = strip((0, 5), (3, 8))
    expected = masks_to_labels(masks, (1, 10), 0.0)
    records = [{"segmentation": m, "area": int(m.sum())} for m in masks]
    np.testing.assert_array_equal(masks_to_labels(records, (1, 10), 0.0), expected)
    np.testing.assert_array_equal(masks_to_labels(np.stack(masks), (1, 10), 0.0), expected)
    uint8 = [m.astype(np.uint8) for m in masks]
    np.testing.assert_array_equal(masks_to_labels(uint8, (1, 10), 0.0), expected)


def test_masks_to_labels_rejects_bad_input() -> None:
    with pytest.raises(RegionError, match=r"mask 1 has shape \(4, 4\), expected \(4, 5\)"):
        masks_to_labels([np.ones((4, 5), bool), np.ones((4, 4), bool)], (4, 5))
    with pytest.raises(RegionError, match="min_fraction.*1.5"):
        masks_to_labels([], (4, 5), min_fraction=1.5)
    with pytest.raises(RegionError, match="shape"):
        masks_to_labels([], (0, 5))


# --------------------------------------------------------------------------- tiny SAM


def test_generate_masks_format(many_masks) -> None:
    assert isinstance(many_masks, list)
    assert len(many_masks) >= 100  # about 190: 64 prompts x 3 masks, nothing filtered
    for mask in many_masks:
        assert mask.dtype == bool and mask.shape == (256, 256)


def test_many_overlapping_sam_masks_become_a_label_map(many_masks, monkeypatch) -> None:
    import explainer.masks as masks_module

    counted = {"pairs": 0}
    real = masks_module._popcount

    def counting(words):
        counted["pairs"] += 1
        return real(words)

    monkeypatch.setattr(masks_module, "_popcount", counting)
    labels = masks_to_labels(many_masks, (256, 256))
    count = validate_labels(labels, (256, 256)).max() + 1
    assert 2 <= count <= len(many_masks) + 1
    # Each pair of masks is intersected at most once (the cost is pairs, not pixels x pairs).
    n = len(many_masks)
    assert 0 < counted["pairs"] <= n * (n - 1) // 2
    subset = many_masks[:40]
    np.testing.assert_array_equal(masks_to_labels(subset, (256, 256)), reference_masks_to_labels(subset, 0.0005))


def test_sam_regions_maps_a_256_sam_input_onto_the_224_view(tiny) -> None:
    view = photo_view("chelsea")
    labels = propose_regions(view, "sam", sam=tiny, resolution=256, points_per_side=8, **PERMISSIVE)
    count = validate_labels(labels, (224, 224)).max() + 1
    assert labels.dtype == np.int32 and count >= 2


def test_sam_regions_from_a_sharper_source(tiny) -> None:
    view, source = photo_view("coffee"), photo_view("coffee", 448)
    labels = sam_regions(view, source=source, sam=tiny, points_per_side=4, **PERMISSIVE)
    assert labels.shape == (224, 224)
    assert region_stats(labels).count >= 2
    with pytest.raises(RegionError, match="framing"):
        sam_regions(view, source=np.zeros((100, 300, 3), np.uint8), sam=tiny)


def test_default_thresholds_give_no_masks_and_a_single_region(tiny) -> None:
    view = photo_view("coffee")
    assert generate_masks(tiny, np.ascontiguousarray(view), points_per_side=8) == []
    labels = sam_regions(view, sam=tiny, points_per_side=8)
    np.testing.assert_array_equal(labels, np.zeros((224, 224), np.int32))
    assert labels.dtype == np.int32


def test_generate_masks_rejects_bad_options(tiny) -> None:
    image = np.zeros((32, 32, 3), np.uint8)
    with pytest.raises(RegionError, match="no_such_option"):
        generate_masks(tiny, image, no_such_option=1)
    with pytest.raises(RegionError, match="points_per_side.*0"):
        generate_masks(tiny, image, points_per_side=0)
    with pytest.raises(RegionError, match="uint8"):
        generate_masks(tiny, image.astype(np.float32))
    with pytest.raises(RegionError, match="binary_mask"):
        generate_masks(tiny, image, output_mode="coco_rle")
    with pytest.raises(RegionError, match="pred_iou_thresh.*'high'"):
        sam_regions(image, sam=tiny, pred_iou_thresh="high")
    with pytest.raises(RegionError, match="resolution.*8"):
        sam_regions(image, sam=tiny, resolution=8)


# --------------------------------------------------------------------------- load_sam


def test_load_sam_cannot_infer_the_tiny_models_type(tiny, tmp_path: Path) -> None:
    path = tmp_path / "tiny.pth"
    torch.save(tiny.state_dict(), path)
    with pytest.raises(SamUnavailable, match="cannot tell the SAM model type.*width is 64"):
        load_sam(path)


def test_load_sam_loads_weights_into_the_registry_model(tiny, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import segment_anything

    path = tmp_path / "weights.pth"
    torch.save(tiny.state_dict(), path)
    # The registry builds other random weights: only loading the file can make them equal.
    assert not torch.equal(tiny_sam(seed=1).mask_decoder.iou_token.weight, tiny.mask_decoder.iou_token.weight)
    monkeypatch.setitem(segment_anything.sam_model_registry, "vit_b", lambda checkpoint: tiny_sam(seed=1).train())
    loaded = load_sam(path, model_type="vit_b")
    assert not loaded.training  # load_sam puts it in eval mode
    for name, value in tiny.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[name], value)


def test_load_sam_rejects_weights_that_do_not_fit(tiny, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import segment_anything

    path = tmp_path / "weights.pth"
    torch.save(tiny.state_dict(), path)
    monkeypatch.setitem(segment_anything.sam_model_registry, "vit_b", lambda checkpoint: tiny_sam(dim=32))
    with pytest.raises(SamUnavailable, match="does not fit the SAM vit_b"):
        load_sam(path, model_type="vit_b")


def test_load_sam_rejects_a_declared_type_that_contradicts_the_weights(tmp_path: Path) -> None:
    path = tmp_path / "fake.pth"
    torch.save({"image_encoder.pos_embed": torch.zeros(1, 1, 1, 768)}, path)
    with pytest.raises(SamUnavailable, match="holds vit_b weights.*not vit_h"):
        load_sam(path, model_type="vit_h")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (np.random.default_rng(0).bytes(4096), "cannot read SAM checkpoint"),
        (b"", "cannot read SAM checkpoint"),
        ({"weight": torch.zeros(3)}, "not a SAM checkpoint"),
        ([1, 2, 3], "not a SAM checkpoint"),
    ],
)
def test_load_sam_rejects_corrupt_or_foreign_files(content, message: str, tmp_path: Path) -> None:
    path = tmp_path / "sam_vit_b_broken.pth"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        torch.save(content, path)
    with pytest.raises(SamUnavailable, match=message) as info:
        load_sam(path)
    assert len(str(info.value)) < 1000  # a readable message, not a dump


def test_load_sam_missing_file_and_bad_type(tmp_path: Path) -> None:
    with pytest.raises(SamUnavailable, match="not found.*dl.fbaipublicfiles.com"):
        load_sam(tmp_path / "nope.pth")
    path = tmp_path / "x.pth"
    path.write_bytes(b"x")
    with pytest.raises(SamUnavailable, match="unknown SAM model type 'vit_x'"):
        load_sam(path, model_type="vit_x")


# --------------------------------------------------------------------------- finding checkpoints


def test_status_without_checkpoint_explains_what_to_do(no_sam_env: Path) -> None:
    status = sam_status()
    assert isinstance(status, SamStatus)
    assert status.available is False and status.checkpoint is None and status.model_type is None
    assert SAM_ENV_VAR in status.reason
    assert "sam_vit_b_01ec64.pth" in status.reason and str(no_sam_env) in status.reason
    with pytest.raises(SamUnavailable, match=SAM_ENV_VAR):
        find_sam_checkpoint()


def test_status_finds_a_checkpoint_in_the_directory(no_sam_env: Path) -> None:
    (no_sam_env / "notes.txt").write_text("not a checkpoint")
    (no_sam_env / "sam_vit_b_01ec64.pth").write_bytes(b"")  # never loaded by sam_status
    status = sam_status()
    assert status.available is True
    assert status.checkpoint == no_sam_env / "sam_vit_b_01ec64.pth"
    assert status.model_type == "vit_b"
    (no_sam_env / "a_custom.pth").write_bytes(b"")  # sorts first; type unknown from its name
    status = sam_status()
    assert status.checkpoint == no_sam_env / "a_custom.pth" and status.model_type is None


def test_checkpoint_precedence(no_sam_env: Path, tmp_path: Path, monkeypatch) -> None:
    in_dir = no_sam_env / "sam_vit_l_0b3195.pth"
    from_env = tmp_path / "sam_vit_h_4b8939.pth"
    explicit = tmp_path / "sam_vit_b_01ec64.pth"
    for path in (in_dir, from_env, explicit):
        path.write_bytes(b"")
    assert find_sam_checkpoint() == in_dir
    monkeypatch.setenv(SAM_ENV_VAR, str(from_env))
    assert find_sam_checkpoint() == from_env
    assert sam_status().model_type == "vit_h"
    assert find_sam_checkpoint(explicit) == explicit
    assert sam_status(str(explicit)).model_type == "vit_b"


def test_sam_dir_env_override(no_sam_env: Path, tmp_path: Path, monkeypatch) -> None:
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "sam_vit_l_0b3195.pth").write_bytes(b"")
    monkeypatch.setenv("LIMA_SAM_DIR", str(other))
    status = sam_status()
    assert status.available and status.model_type == "vit_l"


def test_missing_explicit_or_env_path_is_unavailable(no_sam_env: Path, tmp_path, monkeypatch):
    missing = tmp_path / "gone" / "sam_vit_b.pth"
    status = sam_status(missing)
    assert not status.available and str(missing) in status.reason
    monkeypatch.setenv(SAM_ENV_VAR, str(missing))
    with pytest.raises(SamUnavailable, match=f"not found.*{SAM_ENV_VAR}"):
        find_sam_checkpoint()


def test_sam_status_never_raises(no_sam_env: Path) -> None:
    status = sam_status(explicit=12345)  # not a path at all
    assert status.available is False and status.reason


def test_propose_sam_without_checkpoint_says_where_to_get_and_put_one(no_sam_env: Path) -> None:
    with pytest.raises(SamUnavailable) as info:
        propose_regions(photo_view("coffee"), "sam")
    message = str(info.value)
    assert "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_b_01ec64.pth" in message
    assert SAM_ENV_VAR in message and "~/.cache/lima-lens/sam" in message
    assert SAM_DOWNLOAD_HINT in message
