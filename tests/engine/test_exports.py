"""Rendering, figures and export files of an Explanation."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import zipfile

import numpy as np
import pytest
from helpers import TINY_SOURCE, grid_labels
from PIL import Image, ImageSequence

from explainer import export, figures, render, store

S = 16


def up(a: np.ndarray, f: int) -> np.ndarray:
    return np.kron(a, np.ones((f, f) + (1,) * (a.ndim - 2), dtype=a.dtype))


# -- render -------------------------------------------------------------------------------------------


def test_upscale_is_nearest_neighbour():
    a = np.arange(4, dtype=np.uint8).reshape(2, 2)
    np.testing.assert_array_equal(render.upscale(a, 2), [[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]])
    np.testing.assert_array_equal(render.upscale(a, 1), a)


@pytest.mark.parametrize("scale", [1, 2, 3])
def test_step_image_shape(tiny_exp, scale):
    img = render.step_image(tiny_exp.view, tiny_exp.labels, tiny_exp.order, 4, scale=scale)
    assert img.shape == (scale * S, scale * S, 3) and img.dtype == np.uint8


@pytest.mark.parametrize("k", [1, 5, 15])
def test_black_step_image_is_zero_exactly_outside_the_revealed_regions(tiny_exp, k):
    e = tiny_exp
    img = render.step_image(e.view, e.labels, e.order, k, hidden="black", scale=2, highlight=False)
    shown = up(np.isin(e.labels, e.order[:k]), 2)
    assert shown.any() and (~shown).any()
    assert not img[~shown].any()
    np.testing.assert_array_equal(img[shown], up(e.view, 2)[shown])


def test_dim_step_image_keeps_a_quarter_of_the_brightness(tiny_exp):
    e = tiny_exp
    img = render.step_image(e.view, e.labels, e.order, 6, hidden="dim", scale=1, highlight=False)
    shown = np.isin(e.labels, e.order[:6])
    np.testing.assert_array_equal(img[shown], e.view[shown])
    assert np.abs(img[~shown] - 0.25 * e.view[~shown].astype(float)).max() <= 0.5
    dimmer = render.step_image(e.view, e.labels, e.order, 6, hidden="dim", dim=0.5, scale=1, highlight=False)
    assert np.abs(dimmer[~shown] - 0.5 * e.view[~shown].astype(float)).max() <= 0.5


def test_step_zero_is_black_and_step_n_is_the_view(tiny_exp):
    e = tiny_exp
    assert not render.step_image(e.view, e.labels, e.order, 0, scale=2).any()
    full = render.step_image(e.view, e.labels, e.order, e.n_regions, scale=2, highlight=False)
    np.testing.assert_array_equal(full, up(e.view, 2))


def test_the_added_region_is_outlined_in_yellow_inside_itself(tiny_exp):
    e, k = tiny_exp, 5
    plain = render.step_image(e.view, e.labels, e.order, k, scale=2, highlight=False)
    lit = render.step_image(e.view, e.labels, e.order, k, scale=2, highlight=True)
    changed = (plain != lit).any(-1)
    region = up(e.labels == e.order[k - 1], 2)
    assert changed.any() and not (changed & ~region).any()
    outline = (lit == render.HIGHLIGHT_RGB).all(-1) & region
    # a 4×4 cell at scale 2 is 8×8 pixels; a 2-pixel outline covers all but its inner 4×4
    assert outline.sum() == 8 * 8 - 4 * 4


@pytest.mark.parametrize("region", [0, 5, 15])  # a corner, an inner and the last cell
@pytest.mark.parametrize("scale", [1, 2, 3])
def test_outlines_are_closed_and_scale_pixels_wide(region, scale):
    view, labels = np.full((S, S, 3), 100, np.uint8), grid_labels(S, 4)
    order = np.array([region] + [r for r in range(16) if r != region])
    lit = render.step_image(view, labels, order, 1, scale=scale)
    outline = (lit == render.HIGHLIGHT_RGB).all(-1)
    side = 4 * scale  # a 4×4 cell, upscaled
    inner = side - 2 * scale
    assert outline.sum() == side * side - inner * inner
    assert not (outline & ~up(labels == region, scale)).any()


def test_the_minimal_subset_outline_stays_inside_the_subset(tiny_exp):
    e = tiny_exp
    plain = render.step_image(e.view, e.labels, e.order, e.n_regions, scale=2, highlight=False)
    marked = render.step_image(e.view, e.labels, e.order, e.n_regions, scale=2, highlight=False, subset_size=3)
    changed = (plain != marked).any(-1)
    subset = up(np.isin(e.labels, e.order[:3]), 2)
    assert changed.any() and not (changed & ~subset).any()
    assert (marked[changed] == render.TARGET_RGB).all()


def test_step_image_rejects_unknown_modes(tiny_exp):
    with pytest.raises(ValueError):
        render.step_image(tiny_exp.view, tiny_exp.labels, tiny_exp.order, 1, hidden="grey")


def test_step_image_does_not_modify_its_inputs():
    view = np.full((S, S, 3), 200, np.uint8)
    labels = grid_labels(S, 2)
    before = view.copy()
    render.step_image(view, labels, np.array([1, 0, 3, 2]), 2, subset_size=1)
    render.heatmap(view, labels, np.array([0.1, 0.2, 0.3, 0.4]), outline=labels == 0)
    np.testing.assert_array_equal(view, before)


def test_rank_values_by_hand():
    np.testing.assert_allclose(render.rank_values(np.array([2, 0, 1])), [2 / 3, 1 / 3, 1.0])
    np.testing.assert_allclose(render.rank_values(np.array([0])), [1.0])


def test_gain_values_by_hand():
    # order 2, 0, 1 on the curve 0.1 -> 0.5 -> 0.4 -> 0.9: region 2 +0.4, region 0 −0.1, region 1 +0.5
    np.testing.assert_allclose(
        render.gain_values(np.array([2, 0, 1]), np.array([0.1, 0.5, 0.4, 0.9])), [-0.1, 0.5, 0.4]
    )


def test_colorize_endpoints_and_clipping():
    first, last = render.SEQUENTIAL[0][1], render.SEQUENTIAL[-1][1]
    out = render.colorize(np.array([0.0, 1.0, -5.0, 7.0]))
    assert out.dtype == np.uint8 and out.shape == (4, 3)
    assert out.tolist() == [list(first), list(last), list(first), list(last)]
    div = render.colorize(np.array([-2.0, 0.0, 2.0]), render.DIVERGING, -2.0, 2.0)
    assert div.tolist() == [list(render.OTHER_RGB), [247, 247, 247], list(render.TARGET_RGB)]
    # halfway between two stops: the mean of their colours
    mid = render.colorize(np.array([0.5]), ((0.0, (0, 0, 0)), (1.0, (200, 100, 50))))
    assert mid.tolist() == [[100, 50, 25]]


def test_per_region_and_blend():
    labels = np.array([[0, 1], [1, 2]])
    np.testing.assert_allclose(render.per_region(labels, np.array([0.5, 1.5, 2.5])), [[0.5, 1.5], [1.5, 2.5]])
    black, white = np.zeros((2, 2, 3), np.uint8), np.full((2, 2, 3), 255, np.uint8)
    assert (render.blend(black, white, alpha=0.62) == round(0.62 * 255)).all()
    assert (render.blend(black, white, alpha=0.0) == 0).all()


@pytest.mark.parametrize("diverging", [False, True])
def test_heatmap_shape(tiny_exp, diverging):
    values = np.linspace(-1, 1, tiny_exp.n_regions)
    img = render.heatmap(tiny_exp.view, tiny_exp.labels, values, diverging=diverging, scale=3)
    assert img.shape == (3 * S, 3 * S, 3) and img.dtype == np.uint8


def test_draw_boundaries_shape_and_only_edges_change():
    view = np.full((S, S, 3), 100, np.uint8)
    out = render.draw_boundaries(view, grid_labels(S, 2), color=(255, 0, 0), scale=2)
    assert out.shape == (2 * S, 2 * S, 3)
    changed = (out != 100).any(-1)
    assert changed.any() and changed.mean() < 0.25
    assert render.draw_boundaries(view, np.zeros((S, S), np.int32)).tolist() == up(view, 2).tolist()


def test_png_keeps_text_chunks():
    img = np.random.default_rng(0).integers(0, 256, (8, 9, 3), dtype=np.uint8)
    data = render.to_png(img, {"Provenance": '{"a": "é"}', "Step": "3"})
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    back = Image.open(io.BytesIO(data))
    assert back.text == {"Provenance": '{"a": "é"}', "Step": "3"}
    np.testing.assert_array_equal(np.asarray(back.convert("RGB")), img)


def test_gif_frames_and_durations():
    frames = [np.full((8, 8, 3), 30 * i, np.uint8) for i in range(4)]
    im = Image.open(io.BytesIO(render.to_gif(frames, duration_ms=100, comment="hello")))
    assert im.n_frames == 4
    durations = [f.info["duration"] for f in ImageSequence.Iterator(im)]
    assert durations == [100, 100, 100, 300]  # the last frame is held 3×
    with pytest.raises(ValueError):
        render.to_gif([])


# -- figures -----------------------------------------------------------------------------------------


def test_figure_images_have_the_view_geometry(tiny_exp):
    for img in (
        figures.step_view(tiny_exp, 3),
        figures.rank_heatmap(tiny_exp),
        figures.gain_heatmap(tiny_exp),
        figures.contrast_heatmap(tiny_exp),
    ):
        assert img.shape == (2 * S, 2 * S, 3) and img.dtype == np.uint8
    untracked = dataclasses.replace(tiny_exp, tracked=None)
    np.testing.assert_array_equal(figures.contrast_heatmap(untracked), figures.gain_heatmap(untracked))
    assert not np.array_equal(figures.contrast_heatmap(tiny_exp), figures.gain_heatmap(tiny_exp))


def test_subset_mask(tiny_exp):
    mask = figures.subset_mask(tiny_exp)
    assert mask.mean() == pytest.approx(tiny_exp.area[tiny_exp.minimal_subset_size])


@pytest.mark.parametrize("fmt,magic", [("png", b"\x89PNG\r\n\x1a\n"), ("pdf", b"%PDF"), ("svg", b"<?xml")])
def test_composite_bytes(tiny_exp, fmt, magic):
    data = export.composite(tiny_exp, fmt, dpi=40)
    assert data.startswith(magic)
    if fmt == "svg":
        assert b"<svg" in data[:2000]
    if fmt == "png":
        text = Image.open(io.BytesIO(data)).text
        prov = json.loads(text["Provenance"])
        assert prov["model_id"] == "test:TinyCNN" and prov["image_sha256"] == TINY_SOURCE["digest"]
        assert text["Description"] == tiny_exp.readout()


def test_composite_rejects_other_formats(tiny_exp):
    with pytest.raises(ValueError):
        export.composite(tiny_exp, "jpg")


# -- export --------------------------------------------------------------------------------------------


def test_provenance(tiny_exp):
    p = export.provenance(tiny_exp)
    assert p["model_id"] == "test:TinyCNN" and p["model_weights_sha256"] == tiny_exp.model["weights_hash"]
    assert len(p["model_weights_sha256"]) == 64
    assert p["image"] == "tiny.png" and p["image_sha256"] == TINY_SOURCE["digest"] and p["image_label"] == 1
    assert p["view_sha256"] == store.array_digest(tiny_exp.view)
    assert (
        p["regions"] == {"method": "grid", "params": {"cells_per_side": 4, "rows": None, "min_area": 0}}
        and p["n_regions"] == 16
    )
    assert p["weights"]["effectiveness"] == 0.5 and p["weights"]["consistency"] == 20.0
    assert p["pending_samples"] == 3 and p["fill"] == "black" and p["search"] == "bidirectional"
    assert set(p["versions"]) >= {"torch", "numpy", "lima_lens"}
    assert p["device"] == tiny_exp.device and p["created"] == tiny_exp.created and p["created"]
    assert p["target"] == 1 and p["tracked"] == 3 and p["tracked_name"] == "class 3"
    json.dumps(p)  # JSON-able as is


def test_step_png_carries_the_step_and_provenance(tiny_exp):
    back = Image.open(io.BytesIO(export.step_png(tiny_exp, 4)))
    assert back.size == (2 * S, 2 * S) and back.text["Step"] == "4"
    assert json.loads(back.text["Provenance"])["target_name"] == "class 1"


def test_step_gif_has_one_frame_per_step(tiny_exp):
    im = Image.open(io.BytesIO(export.step_gif(tiny_exp)))
    assert im.n_frames == tiny_exp.n_regions + 1
    assert json.loads(im.info["comment"])["model_id"] == "test:TinyCNN"  # the whole provenance


@pytest.mark.parametrize("max_frames", [5, 16])
def test_step_gif_respects_max_frames(tiny_exp, max_frames):
    im = Image.open(io.BytesIO(export.step_gif(tiny_exp, max_frames=max_frames)))
    assert im.n_frames == max_frames  # N + 1 = 17 > max_frames
    frames = [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(im)]
    assert not frames[0].any()  # starts at the empty image ...
    full = figures.step_view(tiny_exp, tiny_exp.n_regions).astype(float)
    assert np.abs(frames[-1] - full).mean() < 2  # ... ends full (up to the GIF palette)


def test_curves_csv(tiny_exp):
    e = tiny_exp
    text = export.curves_csv(e)
    lines = [line for line in text.splitlines() if not line.startswith("#")]  # the provenance header
    assert len(lines) == e.n_regions + 2
    rows = list(csv.reader(io.StringIO("\n".join(lines))))
    assert rows[0] == [
        "step",
        "region",
        "area_revealed",
        "insertion_p_class 1",
        "deletion_p_class 1",
        "insertion_p_class 3",
        "deletion_p_class 3",
    ]
    for i, row in enumerate(rows[1:]):
        assert int(row[0]) == i and row[1] == ("" if i == 0 else str(e.order[i - 1]))
        np.testing.assert_allclose(
            [float(v) for v in row[2:]],
            [e.area[i], e.insertion[i], e.deletion[i], e.tracked_insertion[i], e.tracked_deletion[i]],
            atol=1e-6,
        )
    untracked = list(
        csv.reader(
            line
            for line in io.StringIO(export.curves_csv(dataclasses.replace(e, tracked=None)))
            if not line.startswith("#")
        )
    )
    assert all(r[5] == "" and r[6] == "" for r in untracked[1:])


def test_result_zip_loads_back(tiny_exp, tmp_path):
    with zipfile.ZipFile(io.BytesIO(export.result_zip(tiny_exp))) as z:
        assert sorted(z.namelist()) == ["curves.csv", "explanation.json", "explanation.npz", "provenance.json"]
        z.extractall(tmp_path)
        assert z.read("curves.csv").decode() == export.curves_csv(tiny_exp)
        assert json.loads(z.read("provenance.json"))["model_id"] == "test:TinyCNN"
    back = store.load(tmp_path)
    np.testing.assert_array_equal(back.insertion_probs, tiny_exp.insertion_probs)
    np.testing.assert_array_equal(back.order, tiny_exp.order)
    assert back.source == tiny_exp.source and back.config == tiny_exp.config


def test_reference_zip_layout(tiny_exp):
    with zipfile.ZipFile(io.BytesIO(export.reference_zip(tiny_exp))) as z:
        names = sorted(z.namelist())
        assert names == ["json/1/tiny.json", "npy/1/tiny.npy", "provenance.json"]
        regions = np.load(io.BytesIO(z.read("npy/1/tiny.npy")))
        doc = json.loads(z.read("json/1/tiny.json"))
    assert regions.shape == (16, S, S, 3)
    assert len(doc["consistency_score"]) == 16
    with zipfile.ZipFile(io.BytesIO(export.reference_zip(tiny_exp, name="other.jpg"))) as z:
        assert "npy/1/other.npy" in z.namelist()
