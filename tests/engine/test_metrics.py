"""Faithfulness metrics on hand-made curves whose answers are worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from explainer import metrics
from explainer.metrics import BudgetScore, auc, budget_scores, cumulative_area, minimal_subset_size

# -- AUC ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "x,y,expected",
    [
        ([0, 1], [1, 1], 1.0),  # a unit square
        ([0, 1], [0, 1], 0.5),  # a triangle
        ([0, 0.5, 1], [0, 1, 1], 0.25 + 0.5),  # triangle + rectangle
        # trapezoids of widths 0.1, 0.3, 0.6: 0.1·0.4 + 0.3·0.6 + 0.6·0.3
        ([0, 0.1, 0.4, 1.0], [0.2, 0.6, 0.6, 0.0], 0.04 + 0.18 + 0.18),
        ([0, 0.5, 0.5, 1], [0, 1, 0, 0], 0.25),  # a zero-width step adds nothing
        ([0.2, 0.7], [0.4, 0.4], 0.2),  # x need not start at 0
        ([0.3], [0.9], 0.0),  # a single point has no area
    ],
)
def test_auc_of_known_trapezoids(x, y, expected):
    assert auc(np.array(x), np.array(y)) == pytest.approx(expected, abs=1e-12)


def test_auc_returns_a_python_float():
    assert type(auc([0, 1], [0.5, 0.5])) is float


@pytest.mark.parametrize(
    "x,y",
    [
        ([0, 1, 2], [0, 1]),  # unequal lengths
        (np.zeros((2, 2)), np.zeros((2, 2))),  # not 1-D
        ([0, 0.6, 0.5], [1, 1, 1]),  # x decreasing
    ],
)
def test_auc_rejects_bad_input(x, y):
    with pytest.raises(ValueError):
        auc(x, y)


# -- areas ----------------------------------------------------------------------------------------


def test_region_areas_are_pixel_fractions():
    labels = np.array([[0, 0, 1], [2, 2, 2], [2, 2, 2]])
    np.testing.assert_allclose(metrics.region_areas(labels), [2 / 9, 1 / 9, 6 / 9])


def test_cumulative_area_counts_black_pixels():
    """The area comes from the label map: a pure-black region still counts (the reference
    evaluator's channel-sum test would count it as 0)."""
    labels = np.array([[0, 0, 1], [2, 2, 2], [2, 2, 2]])
    area = cumulative_area(labels, np.array([2, 0, 1]))
    np.testing.assert_allclose(area, [0, 6 / 9, 8 / 9, 1.0])
    assert area.shape == (4,) and area[-1] == 1.0


def test_cumulative_area_ends_at_exactly_one_on_a_large_map():
    labels = np.random.default_rng(0).integers(0, 37, (224, 224))
    area = cumulative_area(labels, np.random.default_rng(1).permutation(37))
    assert area[0] == 0.0 and area[-1] <= 1.0 and area[-1] == pytest.approx(1.0, abs=1e-12)
    assert np.all(np.diff(area) > 0)


def test_step_axis():
    np.testing.assert_allclose(metrics.step_axis(4), [0, 0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(metrics.step_axis(0), [0.0])


# -- the minimal subset ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "curve,tolerance,expected",
    [
        # the peak 0.9 is at k=4; nothing earlier is within 0.005 of it (0.8, 0.797 are not)
        ([0.1, 0.3, 0.8, 0.797, 0.9, 0.898], 0.005, 4),
        # plateau rule: 0.898 (k=2) is within 0.005 of the peak 0.9 (k=3), so the shorter prefix wins
        ([0.0, 0.5, 0.898, 0.9, 0.7], 0.005, 2),
        # exactly at the tolerance boundary counts (0.9 − 0.005 = 0.895)
        ([0.0, 0.895, 0.9], 0.005, 1),
        ([0.0, 0.8949, 0.9], 0.005, 2),
        # index 0 (the black image) is never a candidate, even when it scores highest
        ([0.99, 0.2, 0.5], 0.005, 2),
        # zero tolerance: the first occurrence of the maximum
        ([0.0, 0.5, 0.5], 0.0, 1),
        ([0.0, 0.1, 0.5, 0.5], 0.0, 2),
        # a huge tolerance accepts the first region
        ([0.0, 0.1, 0.5, 0.9], 1.0, 1),
    ],
)
def test_minimal_subset_size_by_hand(curve, tolerance, expected):
    assert minimal_subset_size(np.array(curve), tolerance) == expected


def test_minimal_subset_size_default_tolerance_is_0_005():
    assert metrics.MINIMAL_TOLERANCE == 0.005
    assert minimal_subset_size(np.array([0.0, 0.896, 0.9])) == 1
    assert minimal_subset_size(np.array([0.0, 0.894, 0.9])) == 2


def test_minimal_subset_of_a_curve_without_regions_is_empty():
    assert minimal_subset_size(np.array([0.3])) == 0


def test_minimal_subset_rejects_a_negative_tolerance():
    with pytest.raises(ValueError):
        minimal_subset_size(np.array([0.0, 0.5, 0.6]), -0.1)


# -- budgets (the mistake metric, lima-spec §5.4) ---------------------------------------------------

CURVE = np.array([0.05, 0.4, 0.3, 0.7, 0.9])
AREA = np.array([0.0, 0.3, 0.45, 0.8, 1.0])


def test_budget_scores_by_hand():
    got = budget_scores(CURVE, AREA)
    assert [b.budget for b in got] == [0.25, 0.5, 0.75, 1.0]
    # 25 %: even the first region (30 %) is too large -> skipped (None)
    assert got[0] == BudgetScore(0.25, None, None, None)
    # 50 % and 75 %: prefixes 1 and 2 fit (30 %, 45 %); the best is 0.4 after 1 region (30 %)
    assert got[1] == BudgetScore(0.5, 0.4, 0.3, 1)
    assert got[2] == BudgetScore(0.75, 0.4, 0.3, 1)
    # 100 %: everything fits; 0.9 after all 4 regions
    assert got[3] == BudgetScore(1.0, 0.9, 1.0, 4)


def test_budget_scores_ignore_the_black_image_and_take_the_first_of_ties():
    # index 0 (black) scores 0.95 but is not a prefix with regions; 0.6 is reached first at k=1
    got = budget_scores(np.array([0.95, 0.6, 0.6, 0.2]), np.array([0.0, 0.2, 0.4, 1.0]), budgets=(0.5,))
    assert got == [BudgetScore(0.5, 0.6, 0.2, 1)]


def test_budget_equal_to_an_area_includes_that_prefix():
    area = np.array([0.0, 0.1, 0.1 + 0.15, 1.0])  # 0.25 in floating point
    got = budget_scores(np.array([0.0, 0.2, 0.5, 0.1]), area, budgets=(0.25,))
    assert got[0].regions == 2 and got[0].highest == 0.5


def test_budget_score_to_dict():
    assert BudgetScore(0.5, 0.4, 0.3, 1).to_dict() == {"budget": 0.5, "highest": 0.4, "area": 0.3, "regions": 1}
    assert BudgetScore(0.25, None, None, None).to_dict()["highest"] is None
