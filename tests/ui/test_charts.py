"""The dashboard's plotly curves (ui/charts.py): clickable markers per step, the step marker."""

from __future__ import annotations

import dataclasses

import numpy as np

from ui import charts


def test_curve_figure_has_clickable_markers(tiny_exp):
    e = tiny_exp
    fig = charts.curve_figure(e)
    target, tracked = fig.data[0], fig.data[1]
    assert len(fig.data) == 2
    for trace in (target, tracked):
        assert "markers" in trace.mode
        assert list(trace.customdata) == list(range(e.n_regions + 1))
        np.testing.assert_allclose(trace.x, 100 * e.area)
    np.testing.assert_allclose(target.y, e.insertion)
    np.testing.assert_allclose(tracked.y, e.tracked_insertion)
    assert target.name == "class 1" and tracked.name == "class 3"
    assert "select" in fig.layout.clickmode


def test_curve_figure_deletion_step_and_untracked(tiny_exp):
    e = tiny_exp
    fig = charts.curve_figure(e, step=5, path="deletion")
    np.testing.assert_allclose(fig.data[0].y, e.deletion)
    step_marks = [t for t in fig.data if list(t.customdata) == [5]]
    assert len(step_marks) == 2
    assert sorted(t.y[0] for t in step_marks) == sorted([e.deletion[5], e.tracked_deletion[5]])
    single = charts.curve_figure(dataclasses.replace(e, tracked=None))
    assert len(single.data) == 1
