"""The search: analytic models with known answers, the spec's semantics, invariants, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import RegionSumModel, TinyCNN, grid_labels, make_classifier, random_view
from spec_reference import SpecSearch

from explainer.compose import FILLS
from explainer.errors import ImageError, LabelError, ModelError, RegionError
from explainer.search import explain, forward_pass_count, iter_search

WHITE = np.full((16, 16, 3), 255, np.uint8)
W_NO_EFF = {"consistency": 20, "collaboration": 5, "confidence": 0.01, "effectiveness": 0}


def additive(weights, cells=4, batch_size=7):
    labels = grid_labels(16, cells)
    return make_classifier(RegionSumModel(labels, weights), 2, batch_size=batch_size), labels


@pytest.mark.parametrize("search", ["greedy", "bidirectional"])
@pytest.mark.parametrize("batch_size", [1, 3, 16, 1000])
def test_additive_model_is_ranked_in_weight_order(search, batch_size):
    """Evidence that adds up region by region must be ranked by descending weight, whatever the
    batch size: every term of F grows with the weight of the added region."""
    rng = np.random.default_rng(3)
    weights = rng.permutation(np.linspace(0.1, 1.6, 16))
    clf, labels = additive(weights, batch_size=batch_size)
    exp = explain(clf, WHITE, labels, target=1, search=search, pending=4)
    assert exp.order.tolist() == np.argsort(-weights).tolist()
    # p_1 with the first i regions shown is sigmoid of the sum of their weights.
    expected = 1 / (1 + np.exp(-np.concatenate([[0.0], np.cumsum(np.sort(weights)[::-1])])))
    np.testing.assert_allclose(exp.insertion, expected, atol=1e-6)


def test_every_batch_size_gives_the_same_result():
    clf = make_classifier(TinyCNN(5, seed=1), 5, batch_size=1)
    labels, view = grid_labels(16, 4), random_view(16, 1)
    ref = explain(clf, view, labels, target=2, pending=3)
    for b in (2, 5, 64):
        clf.batch_size = b
        exp = explain(clf, view, labels, target=2, pending=3)
        assert exp.order.tolist() == ref.order.tolist()
        np.testing.assert_allclose(exp.insertion_probs, ref.insertion_probs, atol=1e-6)
        np.testing.assert_allclose(exp.deletion_probs, ref.deletion_probs, atol=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("cells,pending", [(3, 2), (4, 3), (4, 8), (5, 4), (5, 25)])
@pytest.mark.parametrize("effectiveness", [0.0, 0.5])
def test_bidirectional_matches_the_spec_restatement(seed, cells, pending, effectiveness):
    """Same order and curves as a literal, naive restatement of lima-spec §4.2."""
    clf = make_classifier(TinyCNN(4, seed=seed), 4, embeddings=True)
    labels, view = grid_labels(16, cells), random_view(16, seed)
    weights = dict(W_NO_EFF, effectiveness=effectiveness)
    exp = explain(clf, view, labels, target=seed % 4, pending=pending, weights=weights)
    order, cons, colla = SpecSearch(clf, view, labels, seed % 4, weights).bidirectional(pending)
    assert exp.order.tolist() == order
    np.testing.assert_allclose(exp.insertion[1:], cons, atol=1e-5)
    np.testing.assert_allclose(1 - exp.deletion[1:], colla, atol=1e-5)


@pytest.mark.parametrize("seed", [0, 4])
@pytest.mark.parametrize("effectiveness", [0.0, 0.5])
def test_greedy_matches_the_spec_restatement(seed, effectiveness):
    clf = make_classifier(TinyCNN(3, seed=seed), 3, embeddings=True)
    labels, view = grid_labels(16, 4), random_view(16, seed + 10)
    weights = dict(W_NO_EFF, effectiveness=effectiveness)
    exp = explain(clf, view, labels, target=1, search="greedy", weights=weights)
    order, cons, colla = SpecSearch(clf, view, labels, 1, weights).greedy()
    assert exp.order.tolist() == order
    np.testing.assert_allclose(exp.insertion[1:], cons, atol=1e-5)
    np.testing.assert_allclose(1 - exp.deletion[1:], colla, atol=1e-5)


@pytest.mark.parametrize("search,pending", [("greedy", 8), ("bidirectional", 2), ("bidirectional", 5)])
def test_every_curve_point_equals_a_direct_recomputation(search, pending):
    clf = make_classifier(TinyCNN(6, seed=7), 6)
    labels, view = grid_labels(16, 4), random_view(16, 7)
    exp = explain(clf, view, labels, target=4, search=search, pending=pending, tracked=1)
    shown, removed = [], []
    for i in range(exp.n_regions + 1):
        mask = np.isin(labels, exp.order[:i])[..., None]
        shown.append(np.where(mask, view, 0))
        removed.append(np.where(mask, 0, view))
    np.testing.assert_allclose(exp.insertion_probs, clf.predict(np.stack(shown)), atol=1e-6)
    np.testing.assert_allclose(exp.deletion_probs, clf.predict(np.stack(removed)), atol=1e-6)
    assert exp.tracked == 1 and exp.tracked_insertion[-1] == pytest.approx(exp.deletion_probs[0, 1])
    assert sorted(exp.order.tolist()) == list(range(16))


@pytest.mark.parametrize("cells,pending", [(4, 3), (4, 8), (5, 4), (5, 8), (6, 8), (7, 8), (3, 1), (4, 2)])
def test_forward_pass_count_matches_the_spec_formula(cells, pending):
    """lima-spec §4.3 (single-modal): 2[bN − b(b−1)] + 2Σ|Q_t| + 2[r(r+1)/2 − 1] + 2."""
    labels = grid_labels(28, cells)
    clf = make_classifier(TinyCNN(3, seed=2), 3, size=28)
    view = random_view(28, 2)
    exp = explain(clf, view, labels, target=0, pending=pending)
    n = cells * cells
    b = max(0, -(-(n - pending) // 2))
    r = n - 2 * b
    backward = exp.log.where("backward")
    assert len(backward) == b and len(exp.log.where("forward")) == n - b - 1
    q_sum = int(exp.log.candidates[backward].sum())
    expected = 2 * (b * n - b * (b - 1)) + 2 * q_sum + 2 * (r * (r + 1) // 2 - 1) + 2
    assert exp.forward_passes == expected
    bound = forward_pass_count(n, "bidirectional", pending)
    assert bound - 2 * b <= exp.forward_passes <= bound


def test_known_counts_for_49_regions():
    """The spec's §4.3 table counts the multimodal classes, which add 1 + N passes (the source
    image and one embedding pass per region); single-modal runs, and ours, do without them."""
    for n, p, multimodal in ((25, 8, 532), (49, 8, 1660), (49, 12, 1816), (64, 8, 2657), (100, 8, 5969)):
        assert forward_pass_count(n, "bidirectional", p) == multimodal - (1 + n)
    assert forward_pass_count(49, "greedy") == 2500 - (1 + 49)


def test_pending_at_least_n_reduces_bidirectional_to_greedy():
    clf = make_classifier(TinyCNN(5, seed=5), 5)
    labels, view = grid_labels(16, 3), random_view(16, 5)
    greedy = explain(clf, view, labels, target=3, search="greedy")
    for pending in (9, 20):
        bi = explain(clf, view, labels, target=3, search="bidirectional", pending=pending)
        assert bi.order.tolist() == greedy.order.tolist()
        np.testing.assert_allclose(bi.insertion_probs, greedy.insertion_probs, atol=1e-6)
        assert bi.forward_passes == greedy.forward_passes == 9 * 10


def test_bidirectional_and_greedy_share_the_first_pick():
    clf = make_classifier(TinyCNN(5, seed=6), 5)
    labels, view = grid_labels(16, 4), random_view(16, 6)
    greedy = explain(clf, view, labels, target=0, search="greedy")
    for pending in (1, 2, 8):
        assert explain(clf, view, labels, target=0, pending=pending).order[0] == greedy.order[0]


def test_pending_one_never_crashes_and_still_ranks_all():
    """The reference stacks an empty batch when pending = 1 and the winner is the pre-screened one."""
    clf, labels = additive(np.ones(16))  # all ties: argmax and argmin both take index 0
    exp = explain(clf, WHITE, labels, target=1, pending=1)
    assert sorted(exp.order.tolist()) == list(range(16))
    assert not np.isnan(exp.insertion_probs).any()


def test_single_region_gives_a_two_point_curve():
    clf = make_classifier(TinyCNN(3, seed=0), 3)
    view = random_view(16, 0)
    exp = explain(clf, view, np.zeros((16, 16), np.int32), target=2)
    assert exp.order.tolist() == [0] and exp.forward_passes == 2
    np.testing.assert_allclose(exp.area, [0.0, 1.0])
    np.testing.assert_allclose(exp.insertion[1], clf.predict(view[None])[0, 2], atol=1e-6)
    assert exp.minimal_subset == (0,)


def test_progress_is_monotone_and_ends_with_the_result():
    clf = make_classifier(TinyCNN(3, seed=0), 3, batch_size=4)
    items = list(iter_search(clf, random_view(16, 0), grid_labels(16, 4), target=0, pending=4))
    passes = [p.forward_passes for p in items]
    assert passes == sorted(passes) and passes[0] == 0
    assert all(p.result is None for p in items[:-1]) and items[-1].result is not None
    assert items[-1].forward_passes == items[-1].result.forward_passes <= items[-1].forward_total
    assert items[-1].fraction == 1.0 and len(items) > 16


def test_stopping_the_generator_stops_the_work():
    clf = make_classifier(TinyCNN(3, seed=0), 3, batch_size=2)
    gen = iter_search(clf, random_view(16, 0), grid_labels(16, 4), target=0)
    seen = [next(gen) for _ in range(5)]
    gen.close()
    assert seen[-1].forward_passes <= 8 and seen[-1].result is None
    with pytest.raises(StopIteration):
        next(gen)


def test_fills_change_the_removed_pixels():
    clf = make_classifier(TinyCNN(3, seed=0), 3)
    view, labels = random_view(16, 3), grid_labels(16, 2)
    results = {fill: explain(clf, view, labels, target=0, fill=fill) for fill in ("black", "mean", "blur")}
    assert results["black"].insertion[0] != pytest.approx(results["mean"].insertion[0])
    assert results["mean"].config["fill"] == "mean"
    for exp in results.values():  # the full image never depends on the fill
        assert exp.insertion[-1] == pytest.approx(results["black"].insertion[-1], abs=1e-6)


def test_result_records_provenance_and_is_read_only():
    clf = make_classifier(TinyCNN(3, seed=0), 3)
    exp = explain(
        clf,
        random_view(16, 0),
        grid_labels(16, 2),
        target=1,
        regions={"method": "grid"},
        source={"name": "x.png", "label": 1},
    )
    assert exp.model["id"] == clf.id and exp.model["weights_hash"] == clf.weights_hash
    assert exp.config["weights"]["consistency"] == 20.0 and exp.config["pending"] == 8
    assert exp.regions.method == "grid" and exp.regions.options.changed() == {} and exp.source["label"] == 1
    assert exp.wall_time_s > 0 and exp.created and exp.versions["torch"]
    with pytest.raises(ValueError):
        exp.order[0] = 3


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        ({"target": 5}, LabelError, r"target class 5 is outside 0\.\.2"),
        ({"target": -1}, LabelError, "outside"),
        ({"target": 0, "tracked": 9}, LabelError, "tracked class 9"),
        ({"target": 0, "search": "beam"}, ValueError, "search must be"),
        ({"target": 0, "pending": 0}, ValueError, "pending must be a positive"),
        ({"target": 0, "fill": "white"}, ValueError, "fill must be"),
        ({"target": 0, "weights": {"consistancy": 1}}, ValueError, "Unknown objective term 'consistancy'"),
        ({"target": 0, "weights": {"confidence": float("nan")}}, ValueError, "finite"),
        ({"target": 0, "weights": {"effectiveness": 1.0}}, ModelError, "embeddings"),
    ],
)
def test_bad_arguments_are_refused_with_a_clear_message(kwargs, error, match):
    clf = make_classifier(TinyCNN(3, seed=0), 3)
    with pytest.raises(error, match=match):
        explain(clf, random_view(16, 0), grid_labels(16, 2), **kwargs)


def test_bad_views_and_label_maps_are_refused():
    clf = make_classifier(TinyCNN(3, seed=0), 3)
    with pytest.raises(ImageError, match="16×16×3 uint8"):
        explain(clf, random_view(20, 0), grid_labels(20, 2), target=0)
    with pytest.raises(ImageError, match="dtype float"):
        explain(clf, random_view(16, 0).astype(float), grid_labels(16, 2), target=0)
    with pytest.raises(RegionError):
        explain(clf, random_view(16, 0), np.zeros((0, 0), np.int32), target=0)
    with pytest.raises(RegionError):
        explain(clf, random_view(16, 0), grid_labels(8, 2), target=0)
    gappy = grid_labels(16, 2)
    gappy[gappy == 1] = 0
    with pytest.raises(RegionError):
        explain(clf, random_view(16, 0), gappy, target=0)


@pytest.mark.parametrize("fill", FILLS)
def test_one_stream_of_kept_and_removed_images_equals_the_two_composed_apart(fill):
    import torch

    from explainer.compose import Composer

    view, labels = random_view(16, seed=2), grid_labels(16, 4)
    composer = Composer(view, labels, torch.device("cpu"), fill)
    rng = np.random.default_rng(0)
    kept = torch.from_numpy(rng.random((5, 16)) < 0.5)
    removed = torch.from_numpy(rng.random((3, 16)) < 0.5)
    apart = torch.cat([composer.images(kept), composer.images(removed, complement=True)])
    together = composer.kept_and_removed(kept, removed)
    assert torch.equal(together, apart)  # bit for bit: a complement is 1 − mask exactly
    # a removed subset's image shows the view exactly where the subset is not
    pixels = removed[0][torch.from_numpy(labels.reshape(-1))].view(16, 16)
    shown = together[5].permute(1, 2, 0)[~pixels]
    torch.testing.assert_close(shown, torch.from_numpy(view).float().div(255.0)[~pixels], rtol=0, atol=1e-6)


def test_scratch_batches_score_the_same_as_kept_ones():
    from explainer.models import Classifier, Preprocess, penultimate_features

    module = TinyCNN(5)
    prep = Preprocess(size=16, resize=16, interpolation="bilinear", mean=(0.4, 0.5, 0.6), std=(0.2, 0.3, 0.25))
    clf = Classifier(module, tuple("abcde"), prep, "test:scratch", device="cpu", features=penultimate_features(module))
    batch = clf.to_batch(np.stack([random_view(16, seed=s) for s in range(4)]))
    kept = batch.clone()
    expected = clf.probs(batch)
    assert torch_equal(clf.probs(batch.clone(), scratch=True), expected)
    probs, _ = clf.probs_and_embeddings(batch.clone(), scratch=True)
    assert torch_equal(probs, expected)
    assert torch_equal(batch, kept)  # the default leaves the caller's batch alone
    scratch = batch.clone()
    clf.probs(scratch, scratch=True)
    assert not torch_equal(scratch, kept)  # and scratch really is normalised in place (no copy)


def torch_equal(a, b) -> bool:
    import torch

    return bool(torch.equal(a, b))


@pytest.mark.parametrize(
    ("target", "label", "expected"),
    [
        (1, 0, 0),  # the prediction of a mistake: follow the true class
        (0, 0, 1),  # the true class of a mistake: follow the prediction
        (1, 1, 2),  # a correct image: the runner-up
        (2, 0, 1),  # another class: the prediction
    ],
)
def test_the_class_followed_beside_the_target_is_the_same_for_the_page_batch_and_study(target, label, expected):
    """One rule for every caller (it is part of a run's key): ``tracked_beside`` on the full
    probabilities agrees with ``batch``/``evaluate``'s choice from a scan row."""
    from explainer.evaluate import classes_of
    from explainer.scan import ScanRow
    from explainer.search import tracked_beside

    probs = np.array([0.1, 0.6, 0.3, 0.0], np.float32)
    assert tracked_beside(probs, target, label) == expected
    if target in (label, 1):  # the targets batch can ask for: the true or the predicted class
        top = tuple((int(c), float(probs[c])) for c in np.argsort(-probs, kind="stable"))
        row = ScanRow("k", "k", label, 1, float(probs[label]), 0.6, top)
        assert classes_of(row, "true" if target == label else "predicted") == (target, expected)
