"""Tests for explainer.regions: every method gives a valid, deterministic label map."""

from __future__ import annotations

from functools import cache

import cv2
import numpy as np
import pytest
import skimage.data
from PIL import Image
from skimage.measure import label as connected_components

from explainer.errors import RegionError
from explainer.options import Options, option
from explainer.regions import (
    REGION_METHODS,
    RegionOptions,
    RegionStats,
    merge_small_regions,
    propose_regions,
    region_stats,
    relabel,
    validate_labels,
)

SUPERPIXEL_METHODS = ["slico", "seeds", "slic", "felzenszwalb", "grid"]


@cache
def photo_view(name: str, size: int = 224) -> np.ndarray:
    """An skimage photo as the product's view: short side to 256 (bicubic), centre crop 224.

    ``size`` other than 224 scales both steps (e.g. 448: short side 512, crop 448).
    """
    image = Image.fromarray(getattr(skimage.data, name)())
    short = round(size * 256 / 224)
    width, height = image.size
    scale = short / min(width, height)
    image = image.resize((round(width * scale), round(height * scale)), Image.BICUBIC)
    width, height = image.size
    left, top = (width - size) // 2, (height - size) // 2
    view = np.asarray(image.crop((left, top, left + size, top + size)).convert("RGB"))
    view.setflags(write=False)  # cached: tests must not modify it
    return view


def assert_label_map(labels: np.ndarray, shape: tuple[int, int]) -> int:
    """Assert the label-map contract and return N."""
    assert isinstance(labels, np.ndarray)
    assert labels.dtype == np.int32
    assert labels.shape == shape
    ids = np.unique(labels)
    np.testing.assert_array_equal(ids, np.arange(ids.size))
    return int(ids.size)


# --------------------------------------------------------------------------- every method


@pytest.mark.parametrize("name", ["chelsea", "coffee"])
@pytest.mark.parametrize("method", SUPERPIXEL_METHODS)
def test_method_gives_valid_deterministic_label_map(method: str, name: str) -> None:
    view = photo_view(name)
    first = propose_regions(view, method)
    count = assert_label_map(first, (224, 224))
    assert 10 <= count <= 200
    np.testing.assert_array_equal(first, propose_regions(view, method))
    assert view.shape == (224, 224, 3)  # input untouched


def test_registry_lists_all_methods_with_valid_defaults() -> None:
    assert REGION_METHODS.names() == ["slico", "seeds", "slic", "felzenszwalb", "grid", "sam"]
    for method in REGION_METHODS:
        assert REGION_METHODS.get(method.name) is method
        assert method.label and method.description.endswith(".")
        fields = method.options.specs()
        assert len({f.name for f in fields}) == len(fields)
        for f in fields:
            assert f.kind in ("int", "float", "choice", "path")
        assert method.options.from_mapping(method.defaults()) == method.options()  # defaults pass validation
        assert fields[-1].name == "min_area"  # every method has it, shown last


@pytest.mark.parametrize("method", SUPERPIXEL_METHODS)
def test_registry_defaults_equal_calling_without_params(method: str) -> None:
    view = photo_view("coffee")
    defaults = REGION_METHODS.get(method).defaults()
    np.testing.assert_array_equal(propose_regions(view, method, **defaults), propose_regions(view, method))


def test_methods_work_on_non_square_views() -> None:
    view = np.ascontiguousarray(photo_view("chelsea")[:150, :200])
    for method in SUPERPIXEL_METHODS:
        assert assert_label_map(propose_regions(view, method), (150, 200)) >= 4


# --------------------------------------------------------------------------- SLICO and SEEDS


@pytest.mark.parametrize(("region_size", "expected"), [(30, 49), (27, 64), (25, 77), (22, 100)])
def test_slico_region_counts_match_reference(region_size: int, expected: int) -> None:
    labels = propose_regions(photo_view("chelsea"), "slico", region_size=region_size)
    assert assert_label_map(labels, (224, 224)) == expected


def test_slico_matches_reference_recipe_on_bgr_and_ignores_channel_order() -> None:
    view = photo_view("coffee")
    ours = propose_regions(view, "slico")
    results = []
    for image in (np.ascontiguousarray(view[..., ::-1]), np.ascontiguousarray(view)):
        slico = cv2.ximgproc.createSuperpixelSLIC(image, region_size=30, ruler=20.0)
        slico.iterate(20)
        results.append(slico.getLabels())
    np.testing.assert_array_equal(ours, relabel(results[0]))
    np.testing.assert_array_equal(results[0], results[1])  # RGB vs BGR: same labels


@pytest.mark.parametrize("name", ["chelsea", "coffee", "astronaut"])
def test_seeds_default_gives_49_like_reference(name: str) -> None:
    view = photo_view(name)
    labels = propose_regions(view, "seeds")
    assert assert_label_map(labels, (224, 224)) == 49
    seeds = cv2.ximgproc.createSuperpixelSEEDS(224, 224, 3, num_superpixels=50, num_levels=3)
    seeds.iterate(np.ascontiguousarray(view[..., ::-1]), 10)
    np.testing.assert_array_equal(labels, relabel(seeds.getLabels()))


def test_seeds_more_superpixels_gives_more_regions() -> None:
    view = photo_view("chelsea")
    counts = [region_stats(propose_regions(view, "seeds", num_superpixels=n)).count for n in (16, 50, 200)]
    assert counts[0] < counts[1] < counts[2]
    assert counts[2] >= 150


def test_seeds_with_prior_compacts_unused_ids() -> None:
    # prior=5 with 400 requested leaves unused ids in OpenCV's raw output.
    labels = propose_regions(photo_view("chelsea"), "seeds", num_superpixels=400, prior=5)
    assert 250 <= assert_label_map(labels, (224, 224)) < 324


# --------------------------------------------------------------------------- skimage methods


def test_slic_regions_are_connected_and_near_requested_count() -> None:
    view = photo_view("chelsea")
    labels = propose_regions(view, "slic")
    count = assert_label_map(labels, (224, 224))
    assert 25 <= count <= 60
    for region in range(count):
        assert connected_components(labels == region, connectivity=1).max() == 1
    more = propose_regions(view, "slic", n_segments=150)
    assert region_stats(more).count > 2 * count


@pytest.mark.parametrize("name", ["chelsea", "coffee"])
def test_felzenszwalb_respects_min_size_and_scale(name: str) -> None:
    view = photo_view(name)
    labels = propose_regions(view, "felzenszwalb")
    assert region_stats(labels).smallest_px >= 100
    coarse = propose_regions(view, "felzenszwalb", scale=1000.0)
    assert region_stats(coarse).count < region_stats(labels).count


# --------------------------------------------------------------------------- grid


def test_grid_default_is_7x7_cells_of_32px_in_raster_order() -> None:
    labels = propose_regions(photo_view("coffee"), "grid")
    assert assert_label_map(labels, (224, 224)) == 49
    stats = region_stats(labels)
    assert stats.smallest_px == stats.largest_px == 32 * 32
    expected = (np.arange(224)[:, None] // 32) * 7 + np.arange(224)[None, :] // 32
    np.testing.assert_array_equal(labels, expected)


def test_grid_uneven_cells_follow_rounded_linspace_bounds() -> None:
    labels = propose_regions(photo_view("coffee"), "grid", cells_per_side=10)
    assert assert_label_map(labels, (224, 224)) == 100
    # round(linspace(0, 224, 11)) = 0 22 45 67 90 112 134 157 179 202 224
    widths = [22, 23, 22, 23, 22, 22, 23, 22, 23, 22]
    first_row = labels[0]
    np.testing.assert_array_equal(np.bincount(first_row), widths)
    np.testing.assert_array_equal(np.bincount(labels[:, 0])[::10], widths)  # ids 0, 10, ...
    areas = region_stats(labels).areas.reshape(10, 10)
    np.testing.assert_array_equal(areas, np.outer(widths, widths))


def test_grid_too_many_cells_for_view_raises() -> None:
    small = np.zeros((20, 30, 3), np.uint8)
    assert region_stats(propose_regions(small, "grid", cells_per_side=20)).count == 400
    with pytest.raises(RegionError, match="cells_per_side=21.*20 px"):
        propose_regions(small, "grid", cells_per_side=21)


# --------------------------------------------------------------------------- relabel


def test_relabel_compacts_and_preserves_order() -> None:
    labels = np.array([[5, -3, 5], [100, 7, -3]], dtype=np.int64)
    out = relabel(labels)
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out, [[1, 0, 1], [3, 2, 0]])


def test_relabel_random_ids_is_monotonic_mapping() -> None:
    rng = np.random.default_rng(3)
    ids = rng.choice(10_000, size=40, replace=False)
    labels = ids[rng.integers(0, 40, size=(30, 30))]
    out = relabel(labels)
    assert_label_map(out, (30, 30))
    pairs = np.unique(np.stack([labels.ravel(), out.ravel()]), axis=1)
    assert pairs.shape[1] == np.unique(labels).size  # one new id per old id
    assert np.all(np.diff(pairs[1]) == 1)  # sorted old ids map to 0, 1, 2, ...


def test_relabel_rejects_non_maps() -> None:
    with pytest.raises(RegionError, match="2-D"):
        relabel(np.zeros((2, 2, 2), int))
    with pytest.raises(RegionError, match="integers"):
        relabel(np.array([[0.5, 1.0]]))


# --------------------------------------------------------------------------- merge


def test_merge_joins_longest_shared_boundary() -> None:
    labels = np.array([[0, 0, 0, 1], [0, 0, 0, 1], [2, 2, 2, 2], [2, 2, 2, 2]])
    # Region 1 (2 px) shares 2 edges with region 0 and 1 edge with region 2.
    out = merge_small_regions(labels, 3)
    np.testing.assert_array_equal(out, [[0, 0, 0, 0], [0, 0, 0, 0], [1, 1, 1, 1], [1, 1, 1, 1]])
    assert out.dtype == np.int32


def test_merge_goes_smallest_first_with_lowest_id_ties() -> None:
    labels = np.array([[0, 0, 0, 0, 1, 2, 2, 3, 3, 3, 3]])
    # 1 (1 px) ties between 0 and 2 -> 0; then 2 (2 px) now ties between 0 and 3 -> 0.
    out = merge_small_regions(labels, 3)
    np.testing.assert_array_equal(out, [[0] * 7 + [1] * 4])


def test_merge_small_regions_on_fine_superpixels() -> None:
    view = photo_view("astronaut")
    fine = propose_regions(view, "felzenszwalb", scale=5.0, min_size=0)
    assert region_stats(fine).smallest_px < 10
    merged = merge_small_regions(fine, 80)
    count = assert_label_map(merged, (224, 224))
    assert region_stats(merged).smallest_px >= 80
    assert count < region_stats(fine).count
    # A coarsening: every old region lies inside exactly one new region.
    pairs = np.unique(np.stack([fine.ravel(), merged.ravel()]), axis=1)
    assert pairs.shape[1] == region_stats(fine).count
    np.testing.assert_array_equal(merged, merge_small_regions(fine, 80))  # deterministic


def test_merge_edge_cases() -> None:
    labels = propose_regions(photo_view("coffee"), "grid", cells_per_side=4)
    np.testing.assert_array_equal(merge_small_regions(labels, 0), labels)
    np.testing.assert_array_equal(merge_small_regions(labels, 56 * 56), labels)
    single = merge_small_regions(labels, 224 * 224 + 1)  # nothing can reach it: one region
    np.testing.assert_array_equal(single, np.zeros((224, 224), np.int32))
    with pytest.raises(RegionError, match="min_area.*-5"):
        merge_small_regions(labels, -5)


def test_propose_regions_min_area_applies_to_every_method() -> None:
    view = photo_view("chelsea")
    labels = propose_regions(view, "slico", region_size=8, min_area=150)
    assert region_stats(propose_regions(view, "slico", region_size=8)).smallest_px < 150
    assert region_stats(labels).smallest_px >= 150
    assert_label_map(labels, (224, 224))
    grid = propose_regions(view, "grid", cells_per_side=7, min_area=2000)
    assert region_stats(grid).smallest_px >= 2000
    assert RegionOptions.field("min_area").default == 0


# --------------------------------------------------------------------------- stats, validation


def test_region_stats_on_grid() -> None:
    stats = region_stats(propose_regions(photo_view("coffee"), "grid"))
    assert isinstance(stats, RegionStats)
    assert stats.count == 49
    assert stats.smallest_px == stats.largest_px == 1024
    assert stats.smallest_fraction == pytest.approx(1024 / 224**2)
    assert stats.areas.dtype == np.int64 and stats.areas.sum() == 224 * 224


def test_region_stats_uneven() -> None:
    stats = region_stats(np.array([[0, 0, 0], [0, 1, 2]]))
    assert (stats.count, stats.smallest_px, stats.largest_px) == (3, 1, 4)
    assert stats.largest_fraction == pytest.approx(4 / 6)
    np.testing.assert_array_equal(stats.areas, [4, 1, 1])


@pytest.mark.parametrize(
    ("labels", "shape", "message"),
    [
        (np.zeros((0, 0), np.int32), None, "empty"),
        (np.zeros((0, 5), np.int32), None, "empty"),
        (np.zeros((4, 4), np.int32), (4, 5), r"shape \(4, 4\).*\(4, 5\)"),
        (np.array([[0, 2], [2, 0]]), None, "missing 1"),
        (np.array([[0, 7]]), None, "id 7"),
        (np.array([[-1, 0]]), None, "-1"),
        (np.array([[0.0, 0.5]]), None, "0.5"),
        (np.array([[0.0, np.nan]]), None, "integers"),
        (np.zeros((2, 2, 1), np.int32), None, r"2-D.*\(2, 2, 1\)"),
        (np.zeros(5, np.int32), None, "2-D"),
        (np.array([["a", "b"]]), None, "dtype"),
    ],
)
def test_validate_labels_rejects(labels: np.ndarray, shape, message: str) -> None:
    with pytest.raises(RegionError, match=message):
        validate_labels(labels, shape)


def test_validate_labels_accepts_and_copies() -> None:
    single = np.zeros((3, 4), np.uint8)
    out = validate_labels(single, (3, 4))
    assert out.dtype == np.int32 and out.shape == (3, 4) and out.max() == 0
    labels = np.array([[0, 1], [2, 1]], np.int64)
    out = validate_labels(labels)
    out[0, 0] = 9
    assert labels[0, 0] == 0  # a copy, never a view
    np.testing.assert_array_equal(validate_labels(np.array([[1.0, 0.0]])), [[1, 0]])


# --------------------------------------------------------------------------- parameter checks


def test_unknown_method_lists_choices() -> None:
    with pytest.raises(RegionError, match="unknown region method 'quickshift'.*slico.*sam"):
        propose_regions(photo_view("coffee"), "quickshift")


def test_unknown_parameter_lists_valid_ones() -> None:
    with pytest.raises(RegionError, match="'regionsize'.*'slico'.*region_size, iterations"):
        propose_regions(photo_view("coffee"), "slico", regionsize=20)


@pytest.mark.parametrize(
    ("method", "params", "message"),
    [
        ("slico", {"region_size": 7}, r"region_size.*\[8, 112\].*7"),
        ("slico", {"region_size": 113}, r"\[8, 112\].*113"),
        ("slico", {"region_size": 30.5}, "integer.*30.5"),
        ("slico", {"iterations": True}, "integer.*True"),
        ("seeds", {"num_superpixels": 401}, r"num_superpixels.*\[4, 400\].*401"),
        ("seeds", {"histogram_bins": 1}, "histogram_bins"),
        ("slic", {"compactness": float("nan")}, "finite"),
        ("slic", {"sigma": "1"}, "number"),
        ("felzenszwalb", {"scale": -1.0}, "scale"),
        ("grid", {"cells_per_side": 0}, "cells_per_side"),
        ("grid", {"min_area": -1}, "min_area.*-1"),
        ("sam", {"points_per_side": 65}, r"points_per_side.*\[4, 64\]"),
        ("sam", {"model_type": "vit_x"}, "vit_b.*vit_x"),
        ("sam", {"resolution": 100}, r"resolution.*\[224, 1024\].*100"),
        ("sam", {"stability_score_thresh": 1.5}, "stability_score_thresh"),
    ],
)
def test_out_of_range_parameters_raise(method: str, params: dict, message: str) -> None:
    with pytest.raises(RegionError, match=message):
        propose_regions(photo_view("coffee"), method, **params)


def test_integral_float_parameters_are_accepted() -> None:
    view = photo_view("coffee")
    np.testing.assert_array_equal(propose_regions(view, "grid", cells_per_side=7.0), propose_regions(view, "grid"))


@pytest.mark.parametrize(
    ("view", "message"),
    [
        (np.zeros((8, 8), np.uint8), r"\(H, W, 3\)"),
        (np.zeros((8, 8, 4), np.uint8), r"\(H, W, 3\)"),
        (np.zeros((8, 8, 3), np.float32), "uint8"),
        ([[0, 0, 0]], "numpy array"),
    ],
)
def test_bad_views_raise(view, message: str) -> None:
    with pytest.raises(RegionError, match=message):
        propose_regions(view, "grid")


def test_param_check_choices_and_optional() -> None:
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Probe(Options):
        error = RegionError
        kind: str = option("a", choices=("a", "b"))
        size: int | None = option(None, low=1, high=10, optional=True)

    assert Probe(kind="b").kind == "b"
    with pytest.raises(RegionError, match="needs a value"):
        Probe(kind=None)
    assert Probe(size=None).size is None
    assert Probe(size=np.int64(4)).size == 4 and type(Probe(size=np.int64(4)).size) is int
