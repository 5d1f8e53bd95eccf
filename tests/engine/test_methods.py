"""Attribution baselines on the same regions (issue #8): every method on tiny analytic models
whose right order is known by hand, the one scoring protocol, equal cost, the layer choice of
Grad-CAM, the reuse of finished results."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import RegionSumModel, TinyCNN, grid_labels, make_classifier
from scipy.stats import spearmanr

from explainer.comparison import MethodStore, iter_method, resolve_options
from explainer.compose import Composer
from explainer.errors import MethodError
from explainer.methods import METHODS, Subject
from explainer.methods.gradcam import availability as cam_availability
from explainer.methods.gradcam import find_layer
from explainer.progress import run_to_end
from explainer.scoring import prefix_sets, score_order
from explainer.search import explain

LABELS = grid_labels(16, 4)  # 16 square regions of 4×4 px
WHITE = np.full((16, 16, 3), 255, np.uint8)
# Additive evidence centred on 0 (p ≈ 0.5 for a random half): the right order is argsort(−w).
WEIGHTS = np.linspace(1.0, -1.0, 16)[np.random.default_rng(0).permutation(16)]
TRUTH = np.argsort(-WEIGHTS, kind="stable")


@pytest.fixture(scope="module")
def additive():
    clf = make_classifier(RegionSumModel(LABELS, WEIGHTS), 2, batch_size=64)
    return Subject(clf, WHITE, LABELS, 1)


def rank_correlation(order: np.ndarray, truth: np.ndarray) -> float:
    return float(spearmanr(np.argsort(order), np.argsort(truth)).statistic)


def run(subject: Subject, method: str, **options):
    return run_to_end(iter_method(subject, method, resolve_options(method, options)))


def test_the_registry_lists_every_method_with_its_kind_and_cost():
    assert METHODS.names() == [
        "lima",
        "smdl",
        "random",
        "gradcam",
        "gradcam++",
        "ig",
        "rise",
        "ablation",
        "lime",
        "kernelshap",
    ]
    kinds = {m.name: m.kind for m in METHODS}
    assert kinds["gradcam"] == kinds["ig"] == "white-box" and kinds["random"] == "control"
    assert {kinds[m] for m in ("lima", "smdl", "rise", "ablation", "lime", "kernelshap")} == {"black-box"}
    for m in METHODS:
        m.options()  # defaults are valid
        assert m.label and m.description.endswith(".")
    cost = {m.name: m.cost(49, m.options()) for m in METHODS}
    assert cost["lima"].forward == 1610 and cost["smdl"].forward == 49 * 50
    assert cost["ablation"].forward == 50 and cost["rise"].forward == 500
    assert cost["lime"].forward == cost["kernelshap"].forward == 1000
    assert (cost["ig"].forward, cost["ig"].backward) == (80, 80) and (
        cost["gradcam"].forward,
        cost["gradcam"].backward,
    ) == (1, 1)
    assert {m.name for m in METHODS if m.samples_field} == {"rise", "lime", "kernelshap"}


@pytest.mark.parametrize("method", ["lima", "smdl", "ablation", "lime", "kernelshap", "ig"])
def test_exact_methods_find_the_additive_order(additive, method):
    result = run(additive, method)
    np.testing.assert_array_equal(result.ranking.order, TRUTH)
    assert len(result.ranking.scores) == 16 and result.ranking.forward_passes > 0


def test_rise_finds_the_trend_of_the_additive_order(additive):
    """RISE's smooth masks couple neighbouring regions: it ranks by the trend, not exactly."""
    result = run(additive, "rise", masks=2000)
    assert rank_correlation(result.ranking.order, TRUTH) >= 0.8
    assert result.ranking.forward_passes == 2000


def test_random_is_a_seeded_permutation(additive):
    a, b = run(additive, "random"), run(additive, "random")
    np.testing.assert_array_equal(a.ranking.order, b.ranking.order)
    assert sorted(a.ranking.order.tolist()) == list(range(16)) and a.ranking.forward_passes == 0
    other = run(additive, "random", seed=1)
    assert not np.array_equal(other.ranking.order, a.ranking.order)


def test_ablation_scores_are_the_drop_when_each_region_alone_is_removed(additive):
    result = run(additive, "ablation")
    clf = additive.clf
    composer = Composer(WHITE, LABELS, clf.device, "black")
    everything = torch.ones(16, 16, dtype=torch.bool)
    without = ~torch.eye(16, dtype=torch.bool)
    full = clf.probs(composer.images(everything[:1]))[0, 1].item()
    drops = full - clf.probs(composer.images(without))[:, 1].numpy()
    np.testing.assert_allclose(result.ranking.scores, drops, atol=1e-6)
    assert result.ranking.forward_passes == 17  # N + 1


@pytest.mark.parametrize("method", ["lime", "kernelshap", "ablation"])
def test_captum_perturbs_exactly_our_regions_with_our_fill(additive, method):
    """Every image captum asks the model about is a union of our regions on the fill: no pixel
    of a region ever differs from the rest of it (no pixel-level mismatch with LiMA's regions)."""
    clf = additive.clf
    seen: list[torch.Tensor] = []
    real = clf.probs

    def recording(batch, **kw):
        seen.append(batch.detach().cpu())
        return real(batch, **kw)

    clf.probs = recording  # type: ignore[method-assign]
    try:
        run(additive, method, **({"samples": 60} if method != "ablation" else {}))
    finally:
        del clf.probs
    images = torch.cat(seen)[:, 0].numpy()  # one channel is enough (white view)
    assert len(images) >= 17
    for image in images:
        per_region = [np.unique(image[r == LABELS]) for r in range(16)]
        assert all(len(v) == 1 and v[0] in (0.0, 1.0) for v in per_region)


class BrightnessModel(torch.nn.Module):
    """Two classes; logit_1 = the mean of a 1×1 convolution (the channel mean) over the image.
    Its only feature map is the image's brightness, so Grad-CAM's map is the brightness itself."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 1, 1, bias=False)
        torch.nn.init.constant_(self.conv.weight, 1 / 3)
        self.act = torch.nn.ReLU()

    def forward(self, x):
        logit = self.act(self.conv(x)).mean(dim=(1, 2, 3))
        return torch.stack([torch.zeros_like(logit), 8 * logit], dim=1)


@pytest.mark.parametrize("method", ["gradcam", "gradcam++"])
def test_gradcam_ranks_regions_by_the_activation_it_sees(method):
    brightness = np.linspace(255, 40, 16)[np.random.default_rng(1).permutation(16)].round().astype(np.uint8)
    view = np.repeat(brightness[LABELS][..., None], 3, axis=2)
    clf = make_classifier(BrightnessModel(), 2)
    result = run(Subject(clf, view, LABELS, 1), method)
    np.testing.assert_array_equal(result.ranking.order, np.argsort(-brightness.astype(float), kind="stable"))
    assert (result.ranking.forward_passes, result.ranking.backward_passes) == (1, 1)


def test_gradcam_layer_choice_on_real_architectures(lite0):
    import torchvision

    from explainer.models.classifier import Classifier, Preprocess

    assert find_layer(lite0).name == "_swish"  # the built-in model's last feature map
    found = {}
    for name in ("resnet18", "mobilenet_v3_small", "vit_b_16"):
        module = torchvision.models.get_model(name, weights=None)
        clf = Classifier(module, tuple(str(i) for i in range(1000)), Preprocess(), name, device="cpu")
        layer = find_layer(clf)
        found[name] = (layer.name, layer.tokens, layer.grid)
    assert found == {
        "resnet18": ("layer4", False, 0),
        "mobilenet_v3_small": ("features", False, 0),
        "vit_b_16": ("encoder", True, 14),
    }


def test_gradcam_is_unavailable_for_torchscript_with_the_reason(tmp_path):
    scripted = torch.jit.script(TinyCNN(3, seed=0))
    clf = make_classifier(scripted, 3)
    ok, reason = cam_availability(clf)
    assert not ok and "TorchScript" in reason
    with pytest.raises(MethodError, match="TorchScript"):
        run(Subject(clf, np.zeros((16, 16, 3), np.uint8), LABELS, 0), "gradcam")
    assert METHODS.get("ig").availability(clf)[0]  # gradients still flow through it


# -- the one scoring protocol ---------------------------------------------------------------------------------


def test_scoring_a_known_order_gives_the_hand_computed_curves_and_aucs(additive):
    """On a white view the model's logit is the sum of the shown regions' weights (each region's
    mean intensity is 1 when shown, 0 when black), so every curve point is a sigmoid by hand."""
    order = TRUTH
    score = score_order(additive.clf, WHITE, LABELS, order, 1)
    shown = np.concatenate([[0.0], np.cumsum(WEIGHTS[order])])  # logit with the first i shown
    sigmoid = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    np.testing.assert_allclose(score.insertion, sigmoid(shown), atol=1e-5)
    np.testing.assert_allclose(score.deletion, sigmoid(WEIGHTS.sum() - shown), atol=1e-5)
    area = np.arange(17) / 16
    np.testing.assert_allclose(score.area, area)
    by_hand = lambda y: float(np.sum((y[1:] + y[:-1]) / 2) / 16)  # noqa: E731  (trapezoids of width 1/16)
    assert score.insertion_auc == pytest.approx(by_hand(sigmoid(shown)), abs=1e-5)
    assert score.deletion_auc == pytest.approx(by_hand(sigmoid(WEIGHTS.sum() - shown)), abs=1e-5)
    assert score.scoring_passes == 34
    peak = int(np.argmax(sigmoid(shown)[1:])) + 1  # the positive weights, all of them
    assert len(score.minimal_subset) <= peak and peak == int((WEIGHTS > 0).sum())
    assert score.highest_confidence["1.0"] == pytest.approx(sigmoid(shown)[1:].max(), abs=1e-5)
    assert score.highest_confidence["0.25"] == pytest.approx(sigmoid(shown)[1:5].max(), abs=1e-5)
    assert score.highest_area["0.25"] == pytest.approx(0.25)


def test_lima_scored_by_the_protocol_matches_its_own_curves(lite0_ort, chelsea_view):
    """The real model (on ONNX Runtime, the CPU's default) scores LiMA's order as its search did."""
    from explainer.regions import propose_regions

    labels = propose_regions(chelsea_view, "grid", cells_per_side=4)
    exp = explain(lite0_ort, chelsea_view, labels, 281, tracked=282)
    score = score_order(lite0_ort, chelsea_view, labels, exp.order, 281, 282)
    np.testing.assert_allclose(score.insertion, exp.insertion, atol=1e-5)
    np.testing.assert_allclose(score.deletion, exp.deletion, atol=1e-5)
    np.testing.assert_allclose(score.tracked_insertion, exp.tracked_insertion, atol=1e-5)
    assert score.insertion_auc == pytest.approx(exp.insertion_auc, abs=1e-5)
    assert score.minimal_subset == exp.minimal_subset


def test_prefix_sets():
    sets = prefix_sets(np.array([2, 0, 1]))
    assert sets.tolist() == [[False, False, False], [False, False, True], [True, False, True], [True, True, True]]


# -- equal cost, reuse, cancel ---------------------------------------------------------------------------------------


def test_equal_cost_gives_sampling_methods_exactly_limas_passes(additive):
    lima = run(additive, "lima")
    for method in ("rise", "lime", "kernelshap"):
        options = resolve_options(method, None, equal_cost_passes=lima.ranking.forward_passes)
        result = run_to_end(iter_method(additive, method, options))
        assert result.ranking.forward_passes == lima.ranking.forward_passes, method
    for method in ("ablation", "ig", "random"):  # not sampling: unchanged
        assert resolve_options(method, None, 240) == resolve_options(method)


def test_finished_results_are_reused(additive, tmp_path):
    store = MethodStore(tmp_path)
    calls = {"n": 0}
    real = additive.clf.probs

    def counting(batch, **kw):
        calls["n"] += len(batch)
        return real(batch, **kw)

    additive.clf.probs = counting  # type: ignore[method-assign]
    try:
        first = run_to_end(iter_method(additive, "ablation", resolve_options("ablation"), methods_store=store))
        spent = calls["n"]
        again = run_to_end(iter_method(additive, "ablation", resolve_options("ablation"), methods_store=store))
    finally:
        del additive.clf.probs
    assert spent == 17 + 34 and calls["n"] == spent  # method + scoring, then nothing
    np.testing.assert_array_equal(again.ranking.order, first.ranking.order)
    assert again.score.insertion_auc == first.score.insertion_auc


def test_closing_a_library_method_stops_its_model_calls(additive):
    clf = additive.clf
    calls = {"n": 0}
    real = clf.probs

    def slow(batch, **kw):
        calls["n"] += 1
        return real(batch, **kw)

    clf.probs = slow  # type: ignore[method-assign]
    try:
        runner = METHODS.get("kernelshap").run(additive, resolve_options("kernelshap", {"samples": 100_000}))
        next(runner)
        while calls["n"] < 3:
            next(runner)
        runner.close()  # what a job's Cancel does
        stopped_at = calls["n"]
        import time

        time.sleep(0.3)
        assert calls["n"] <= stopped_at + 1  # at most the call in flight
        assert stopped_at * clf.batch_size < 100_000
    finally:
        del clf.probs


def test_equal_cost_holds_when_lima_spends_fewer_than_ten_passes():
    """Two regions: LiMA spends 6 forward passes; the sampling methods get exactly 6 (they used to
    refuse any budget under 10, which ended a whole equal-cost evaluation in an error)."""
    labels = grid_labels(16, 2) // 2  # two horizontal bands: ids 0 and 1
    clf = make_classifier(RegionSumModel(labels, [1.0, -1.0]), 2, batch_size=64)
    subject = Subject(clf, WHITE, labels, 1)
    lima = run(subject, "lima")
    assert lima.ranking.forward_passes == 6
    for method in ("rise", "lime", "kernelshap"):
        options = resolve_options(method, None, equal_cost_passes=lima.ranking.forward_passes)
        result = run_to_end(iter_method(subject, method, options))
        assert result.ranking.forward_passes == 6, method
        assert sorted(result.ranking.order.tolist()) == [0, 1]
