"""The real EfficientNet-Lite0 on real misclassified ImageNet photos, checked against direct
recomputation (read from /work/shared/data/imagenet-sample; skipped when it is missing).

The model runs on ONNX Runtime, the CPU's default (``lite0_ort``; 4-5× PyTorch here): what is
checked is the search against its own model, and test_parity checks the two backends agree."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import IMAGENET_SAMPLE

from explainer import propose_regions
from explainer.explanation import Explanation
from explainer.search import explain

EXPLAINED = 2  # misclassified photos explained (each ≈ 440 forward passes)


@pytest.fixture(scope="module")
def sample(lite0_ort):
    """Every photo of the sample as Lite0 sees it, its label and Lite0's probabilities."""
    labels_file = IMAGENET_SAMPLE / "labels.txt"
    if not labels_file.is_file():
        pytest.skip(f"the ImageNet sample is not at {IMAGENET_SAMPLE}")
    names, labels = [], []
    for line in labels_file.read_text().splitlines():
        if line.strip():
            name, label = line.rsplit(maxsplit=1)
            names.append(name)
            labels.append(int(label))
    views = np.stack([lite0_ort.view(IMAGENET_SAMPLE / "images" / name) for name in names])
    return names, np.array(labels), views, lite0_ort.predict(views)


@pytest.fixture(scope="module")
def mistakes(sample):
    names, labels, _, probs = sample
    return [i for i in np.argsort(names) if probs[i].argmax() != labels[i]]


@pytest.fixture(scope="module")
def explained(lite0_ort, sample, mistakes):
    names, labels, views, probs = sample
    runs = []
    for i in mistakes[:EXPLAINED]:
        regions = propose_regions(views[i], "slico", region_size=45)
        exp = explain(
            lite0_ort,
            views[i],
            regions,
            int(labels[i]),
            regions={"method": "slico", "params": {"region_size": 45}},
            source={"name": names[i], "label": int(labels[i])},
        )
        runs.append((exp, probs[i]))
    return runs


def test_about_22_of_the_200_photos_are_misclassified(sample, mistakes):
    names, labels, _, probs = sample
    assert len(names) == 200 and labels.min() >= 0 and labels.max() < 1000
    assert np.allclose(probs.sum(1), 1.0, atol=1e-4)
    assert 15 <= len(mistakes) <= 30


def recompute(lite0_ort, exp: Explanation) -> tuple[np.ndarray, np.ndarray]:
    """p(· | first i regions shown) and p(· | first i regions removed), i = 0..N, composed with
    np.where on the uint8 view, as the reference does (black elsewhere)."""
    shown = [np.isin(exp.labels, exp.order[:i])[..., None] for i in range(exp.n_regions + 1)]
    inserted = np.stack([np.where(m, exp.view, 0) for m in shown]).astype(np.uint8)
    deleted = np.stack([np.where(m, 0, exp.view) for m in shown]).astype(np.uint8)
    p = lite0_ort.predict(np.concatenate([inserted, deleted]))
    return p[: exp.n_regions + 1], p[exp.n_regions + 1 :]


@pytest.mark.slow
def test_explanations_of_real_mistakes(lite0_ort, explained):
    assert len(explained) == EXPLAINED
    for exp, p_full in explained:
        n = exp.n_regions
        assert 15 <= n <= 35  # SLICO 45 px: about 23 regions
        assert sorted(exp.order.tolist()) == list(range(n))  # a permutation of the regions
        # the tracked class defaults to the (wrong) prediction
        assert exp.tracked == int(np.argmax(p_full)) != exp.target
        assert exp.is_mistake is True
        # every curve point is the model's answer on that prefix, recomputed directly
        ins, dels = recompute(lite0_ort, exp)
        np.testing.assert_allclose(exp.insertion_probs, ins, atol=1e-4)
        np.testing.assert_allclose(exp.deletion_probs, dels, atol=1e-4)
        assert exp.insertion[-1] == pytest.approx(float(p_full[exp.target]), abs=1e-4)
        # the area axis comes from the label map
        assert exp.area[0] == 0 and exp.area[-1] == pytest.approx(1.0) and np.all(np.diff(exp.area) > 0)
        # the minimal subset: the shortest prefix within the tolerance of the peak
        k, peak = exp.minimal_subset_size, exp.insertion[1:].max()
        assert 1 <= k <= n and exp.insertion[k] >= peak - exp.tolerance
        assert all(exp.insertion[j] < peak - exp.tolerance for j in range(1, k))
        assert exp.minimal_subset == tuple(exp.order[:k].tolist())
        # within 100 % of the area the best prefix is at least as good as the full image
        full_budget = exp.budget_scores()[-1]
        assert full_budget.budget == 1.0 and full_budget.highest >= float(p_full[exp.target]) - 1e-4
        assert full_budget.highest == pytest.approx(peak)


@pytest.mark.slow
def test_search_log_matches_the_curves(explained):
    """Each forward step's terms are those of its prefix: consistency = p(target | prefix shown),
    collaboration = 1 − p(target | prefix removed)."""
    for exp, _ in explained:
        for i in exp.log.where("forward"):
            pos = int(exp.log.position[i])
            assert exp.log.region[i] == exp.order[pos - 1]
            assert exp.log.consistency[i] == pytest.approx(exp.insertion[pos], abs=1e-6)
            assert exp.log.collaboration[i] == pytest.approx(1 - exp.deletion[pos], abs=1e-6)
