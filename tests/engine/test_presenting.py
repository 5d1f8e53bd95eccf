"""Issue #11's engine: per-step readouts, what-if scoring and flips, source-resolution frames,
slides, and ``explain --save-run`` / ``slides`` on the command line."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
import torch
from helpers import RegionSumModel, TinyCNN, grid_labels, make_classifier, tiny_view
from PIL import Image

from explainer import cli, render, slides, source_view, steps, whatif
from explainer.errors import LabelError
from explainer.search import explain
from explainer.store import RunStore

WHITE = np.full((16, 16, 3), 255, np.uint8)


def additive(weights):
    """A 2×2 grid and a model with p(class 1) = sigmoid(Σ_{shown r} w_r) on a white view."""
    labels = grid_labels(16, 2)
    return make_classifier(RegionSumModel(labels, weights), 2), labels


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + np.exp(-x))


# -- what-if -------------------------------------------------------------------------------------


def test_a_subset_is_scored_with_one_exact_forward_pass():
    clf, labels = additive([3.0, 2.0, 1.0, -4.5])
    scored = whatif.score_subsets(clf, WHITE, labels, [[0, 2], [], [3, 1, 0, 2]])
    assert [s.shown for s in scored] == [(0, 2), (), (0, 1, 2, 3)]
    assert scored[0].probs[1] == pytest.approx(sigmoid(3.0 + 1.0), abs=1e-6)
    assert scored[1].probs[1] == pytest.approx(0.5, abs=1e-6)  # nothing shown: logit 0
    assert scored[2].probs[1] == pytest.approx(sigmoid(1.5), abs=1e-6)
    assert [s.area for s in scored] == [0.5, 0.0, 1.0]
    assert scored[0].prediction == 1 and scored[0].top(clf.class_names, 1)[0][1] == "class 1"


def test_scores_match_the_search_curves_on_the_runs_own_subsets():
    clf = make_classifier(TinyCNN(5, seed=1), 5)
    labels = grid_labels(16, 3)
    exp = explain(clf, tiny_view(), labels, 2, pending=3)
    for k in (1, 4, exp.n_regions):
        got = whatif.score_subset(clf, exp, exp.order[:k])
        assert got.probs[exp.target] == pytest.approx(exp.insertion[k], abs=1e-6)


def test_bad_region_ids_are_refused():
    clf, labels = additive([1.0, 1.0, 1.0, 1.0])
    with pytest.raises(LabelError, match=r"0\.\.3"):
        whatif.score_subsets(clf, WHITE, labels, [[0, 4]])


def test_a_flip_removes_the_fewest_regions_along_the_order_and_is_verified():
    clf, labels = additive([3.0, 2.0, 1.0, -4.5])
    exp = explain(clf, WHITE, labels, 1, pending=2)
    assert list(exp.order[:3]) == [0, 1, 2] and exp.full_prediction == 1
    found = whatif.flip(clf, exp, want=0)
    # Removing region 0 (weight 3) leaves 2 + 1 − 4.5 < 0: class 0, with one region removed.
    assert found.found and found.removed == (0,) and found.end == "head"
    assert found.scored is not None and found.scored.shown == (1, 2, 3)
    assert found.scored.probs[0] == pytest.approx(1 - sigmoid(-1.5), abs=1e-6)


def test_a_flip_can_come_from_the_tail_and_can_be_impossible():
    clf, labels = additive([3.0, 2.0, 1.0, -4.5])
    exp = explain(clf, WHITE, labels, 0, pending=2)  # explaining class 0: region 3 is its evidence
    tail_first = whatif.flip(clf, exp, want=1)
    assert tail_first.found and clf.module(torch.ones(1, 3, 16, 16)).argmax().item() == 1
    assert tail_first.scored is not None and tail_first.scored.prediction == 1
    assert len(tail_first.removed) == 1  # region 3 alone: 3 + 2 + 1 > 0
    positive, labels = additive([1.0, 1.0, 1.0, 1.0])
    exp = explain(positive, WHITE, labels, 1, pending=2)
    never = whatif.flip(positive, exp, want=0)  # every non-empty subset predicts class 1
    assert not never.found and never.removed == () and never.scored is None


# -- readouts and frames ---------------------------------------------------------------------------


def test_readouts_say_what_each_step_did():
    clf, labels = additive([3.0, 2.0, 1.0, -4.5])
    exp = explain(clf, WHITE, labels, 1, pending=2)
    records = steps.readouts(exp)
    assert len(records) == exp.n_regions + 1 == 5
    assert records[0].caption == f"the empty image: p(class 1) {exp.insertion[0]:.2f}"
    assert records[1].region == 0 and records[1].caption == (
        f"region 0 added: p(class 1) {exp.insertion[0]:.2f} → {exp.insertion[1]:.2f}"
    )
    assert [r.p_target for r in records] == pytest.approx(list(exp.insertion))
    assert records[2].top[0][1] == "class 1" and len(records[2].top) == 2
    assert records[3].to_dict()["area"] == pytest.approx(0.75)


def test_labels_are_carried_onto_a_finer_crop_exactly():
    labels = grid_labels(16, 4)
    assert np.array_equal(render.carry(labels, 48), render.upscale(labels, 3))
    odd = render.carry(labels, 37)  # any size: nearest neighbour
    assert odd.shape == (37, 37) and set(np.unique(odd)) == set(range(16))
    view = tiny_view()
    order = np.arange(16)[::-1]
    fine = render.step_image(view, labels, order, 5, source=render.upscale(view, 3))
    assert np.array_equal(fine, render.step_image(view, labels, order, 5, scale=3))


def test_the_source_crop_is_the_models_crop_at_the_photos_resolution(lite0):
    photo = np.random.default_rng(0).integers(0, 256, (800, 1000, 3), dtype=np.uint8)
    photo = np.asarray(Image.fromarray(photo).resize((100, 80)).resize((1000, 800), Image.Resampling.BILINEAR))
    assert source_view.source_side(lite0, photo) == round(224 * 800 / 256) == 700
    big = source_view.source_view(lite0, photo)
    assert big.shape == (700, 700, 3)
    small = np.asarray(Image.fromarray(big).resize((224, 224), Image.Resampling.BICUBIC), np.float32)
    assert np.abs(small - lite0.view(photo).astype(np.float32)).mean() < 4  # the same crop
    assert source_view.source_side(lite0, np.zeros((100, 90, 3), np.uint8)) == 224  # never below S
    assert np.array_equal(source_view.from_jpeg(source_view.to_jpeg(big)).shape, big.shape)


def test_the_run_store_keeps_a_source_crop_beside_a_run(tmp_path):
    runs = RunStore(tmp_path)
    key = "a" * 20
    assert runs.source_view(key) is None
    crop = np.zeros((300, 300, 3), np.uint8)
    crop[:150] = 200
    runs.save_source_view(key, crop)
    back = runs.source_view(key)
    assert back is not None and back.shape == (300, 300, 3) and abs(int(back[10, 10, 0]) - 200) <= 3


# -- slides ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_run():
    clf, labels = additive([3.0, 2.0, 1.0, -4.5])
    return explain(clf, np.full((16, 16, 3), 200, np.uint8), labels, 1, pending=2)


def test_a_slide_carries_its_caption_under_an_even_sized_frame(small_run):
    shot = slides.frame(small_run, 2, source=np.full((301, 301, 3), 200, np.uint8))
    assert shot.shape[1] == 300 and shot.shape[0] % 2 == 0 and shot.shape[0] > 300  # a caption band
    band = shot[300:]
    assert (band == (255, 214, 0)).all(axis=-1).any()  # the yellow caption line was drawn
    first, second = slides.caption_lines(small_run, 2)
    assert first.startswith("Step 2 of 4 · 50.0 % of the image · p(class 1)")
    assert second == steps.caption(small_run, 2)


def test_a_narrow_slide_wraps_its_caption_instead_of_cutting_it(small_run):
    # A 224-px crop (a small photo) is narrower than one caption line: the band wraps the
    # words (the same height on every step, so the video's frames match), and no text runs
    # into the right edge, where p(target) would be cut off.
    source = np.full((224, 224, 3), 200, np.uint8)
    shots = slides.frames(small_run, source)
    assert len({shot.shape for shot in shots}) == 1
    for shot in shots:
        band = shot[224:]
        assert (band[:, -3:] == (17, 17, 17)).all()  # nothing drawn at the right edge
    wide = slides.frame(small_run, 2, source=np.full((1000, 1000, 3), 200, np.uint8))
    assert (wide[1000:, -3:] == (17, 17, 17)).all()


def test_mp4_is_h264_with_every_step_and_provenance(small_run, tmp_path):
    import imageio_ffmpeg

    out = slides.to_mp4(small_run, tmp_path / "talk.mp4", fps=2)
    probe = subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(out)], capture_output=True, text=True
    )
    assert "Video: h264" in probe.stderr and "yuv420p" in probe.stderr and "LiMA Lens" in probe.stderr
    frames, _ = imageio_ffmpeg.count_frames_and_secs(str(out))
    assert frames == small_run.n_regions + 1 + 2  # every step, the last held a second at 2 fps
    with pytest.raises(slides.SlidesError, match="fps"):
        slides.to_mp4(small_run, tmp_path / "x.mp4", fps=0)


def test_gif_has_one_frame_per_step(small_run):
    import io

    gif = Image.open(io.BytesIO(slides.gif_bytes(small_run)))
    assert gif.n_frames == small_run.n_regions + 1 and gif.width <= 720
    assert b"LiMA Lens" in gif.info["comment"]


# -- command line ------------------------------------------------------------------------------------


def test_explain_save_run_prints_the_key_and_link_and_slides_reads_it(fast_lite0, tmp_path, monkeypatch, capsys):
    import skimage.data

    monkeypatch.setenv("LIMA_RUNS_DIR", str(tmp_path / "runs"))
    photo = tmp_path / "chelsea.jpg"
    Image.fromarray(skimage.data.chelsea()).save(photo, quality=92)
    args = ["explain", str(photo), "--label", "281", "--regions", "grid", "--param", "cells_per_side=2", "--save-run"]
    assert cli.main(args) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    key = lines[-2].removeprefix("run: ")
    assert lines[-2] == f"run: {key}" and lines[-1] == f"/Explain?run={key}"
    runs = RunStore(tmp_path / "runs")
    assert runs.has(key) and runs.load(key).n_regions == 4
    crop = runs.source_view(key)
    assert crop is not None and crop.shape == (262, 262, 3)  # chelsea is 451×300: round(224·300/256)
    assert cli.main(["slides", key, "--out", str(tmp_path / "talk.mp4"), "--gif", str(tmp_path / "talk.gif")]) == 0
    assert "at the photo's resolution" in capsys.readouterr().out
    assert (tmp_path / "talk.mp4").stat().st_size > 1000 and Image.open(tmp_path / "talk.gif").n_frames == 5


def test_slides_and_explain_refuse_bad_arguments(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LIMA_RUNS_DIR", str(tmp_path / "runs"))
    assert cli.main(["slides", "f" * 20, "--out", str(tmp_path / "a.mp4")]) == 2
    assert "neither a saved run's key nor a run folder" in capsys.readouterr().err
    assert cli.main(["slides", "f" * 20, "--out", str(tmp_path / "a.avi")]) == 2
    assert ".mp4 or .gif" in capsys.readouterr().err
    assert cli.main(["explain", str(tmp_path / "x.jpg"), "--label", "1"]) == 2
    assert "--out FOLDER, --save-run, or both" in capsys.readouterr().err


def test_slides_make_the_folders_of_their_outputs(small_run, tmp_path, capsys):
    # As for --out FILE.mp4, a GIF's folder that does not exist yet is made (not an error
    # after the MP4 was already written).
    from explainer import store

    store.save(small_run, tmp_path / "run")
    gif, also = tmp_path / "new" / "talk.gif", tmp_path / "other" / "deeper" / "talk.gif"
    assert cli.main(["slides", str(tmp_path / "run"), "--out", str(gif), "--gif", str(also)]) == 0, capsys.readouterr()
    assert Image.open(gif).n_frames == Image.open(also).n_frames == small_run.n_regions + 1


def test_save_run_checks_the_runs_folder_before_any_work(tmp_path, monkeypatch, capsys):
    # A runs folder that cannot be written is named before the model loads and the search runs
    # (minutes), not after, with the result lost.
    not_a_folder = tmp_path / "runs"
    not_a_folder.write_text("a file, not a folder")
    monkeypatch.setenv("LIMA_RUNS_DIR", str(not_a_folder))
    photo = tmp_path / "photo.png"
    Image.fromarray(np.full((40, 40, 3), 90, np.uint8)).save(photo)

    def no_model(*_args, **_kwargs):
        raise AssertionError("the model was loaded before the runs folder was checked")

    monkeypatch.setattr(cli, "_load_model", no_model)
    assert cli.main(["explain", str(photo), "--label", "281", "--save-run"]) == 2
    err = capsys.readouterr().err
    assert "LIMA_RUNS_DIR" in err and str(not_a_folder) in err and "Errno" not in err


# -- does the partition matter? --------------------------------------------------------------------


def test_partition_agreement_is_known_by_hand():
    from explainer import agreement

    clf = make_classifier(RegionSumModel(grid_labels(16, 2), [3.0, 2.0, 1.0, -4.5]), 2)
    coarse = explain(clf, WHITE, grid_labels(16, 2), 1, pending=2)
    fine = explain(clf, WHITE, grid_labels(16, 4), 1, pending=2)  # 16 cells inside the same 4 quadrants
    same = agreement.compare(coarse, coarse)
    assert same.spearman == pytest.approx(1.0) and same.subset_iou == 1.0 and not same.only_first.any()
    pair = agreement.compare(coarse, fine)
    assert -1.0 <= pair.spearman <= 1.0 and 0.0 <= pair.subset_iou <= 1.0
    # By hand: IoU of the two minimal subsets' pixel masks.
    a, b = agreement.subset_mask(coarse), agreement.subset_mask(fine)
    assert pair.subset_iou == pytest.approx((a & b).sum() / (a | b).sum())
    assert np.array_equal(pair.only_first, a & ~b) and np.array_equal(pair.only_second, b & ~a)
    # A reversed order on the same partition anti-correlates perfectly.
    flipped = explain(clf, WHITE, grid_labels(16, 2), 1, pending=2)
    object.__setattr__(flipped, "order", coarse.order[::-1].copy())
    assert agreement.compare(coarse, flipped).spearman == pytest.approx(-1.0)
    image = agreement.disagreement_image(WHITE, pair)
    assert image.shape == (32, 32, 3) and image.dtype == np.uint8


def test_runs_of_different_images_or_targets_are_not_compared():
    from explainer import agreement

    clf, labels = additive([3.0, 2.0, 1.0, -4.5])
    a = explain(clf, WHITE, labels, 1, pending=2)
    b = explain(clf, np.full((16, 16, 3), 100, np.uint8), labels, 1, pending=2)
    c = explain(clf, WHITE, labels, 0, pending=2)
    with pytest.raises(agreement.AgreementError, match="different images"):
        agreement.compare(a, b)
    with pytest.raises(agreement.AgreementError, match="different classes"):
        agreement.compare(a, c)
