"""Interactive plotly charts of an Explanation for the dashboard.

Every curve point is a clickable marker whose ``customdata`` is its step, so a click on the
curve selects that step. :func:`curve_base` builds a run's figure once (validated);
:func:`with_step` then marks any step in about a millisecond, without plotly's validation.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from explainer.explanation import Explanation
from explainer.render import OTHER_HEX, SUBSET_HEX, TARGET_HEX


def _curve_trace(exp: Explanation, y: np.ndarray, name: str, color: str, path: str) -> go.Scatter:
    steps = np.arange(exp.n_regions + 1)
    region = ["none"] + [str(r) for r in exp.order]
    verb = "shown" if path == "insertion" else "removed"
    # Plain lists, not arrays: plotly would encode arrays as base64 blobs in the figure dict.
    return go.Scatter(
        x=(100 * exp.area).tolist(),
        y=np.asarray(y, float).tolist(),
        mode="lines+markers",
        name=name,
        customdata=steps.tolist(),
        line={"color": color, "width": 2.5, "shape": "linear"},
        marker={"size": 7, "color": color},
        text=region,
        hovertemplate=(
            f"step %{{customdata}} · region %{{text}}<br>%{{x:.1f}} % of the image {verb}"
            f"<br>p({name}) = %{{y:.3f}}<extra></extra>"
        ),
    )


def curve_base(exp: Explanation, path: str = "insertion", height: int = 340, show_subset: bool = True) -> dict:
    """The curve figure without the step marker, as a validated plotly dict (build it once per
    run; :func:`with_step` then marks any step in about a millisecond)."""
    fig = go.Figure()
    fig.add_trace(_curve_trace(exp, exp.curve(exp.target, path), exp.class_name(exp.target), TARGET_HEX, path))
    if exp.tracked is not None:
        fig.add_trace(_curve_trace(exp, exp.curve(exp.tracked, path), exp.class_name(exp.tracked), OTHER_HEX, path))
    title = "Insertion" if path == "insertion" else "Deletion"
    if show_subset and path == "insertion":
        k = exp.minimal_subset_size
        fig.add_vrect(x0=0, x1=100 * exp.area[k], fillcolor=SUBSET_HEX, opacity=0.10, line_width=0)
        title += f" <span style='color:{SUBSET_HEX};font-size:12px'>· minimal subset: {k} regions (shaded)</span>"
    # The legend lives in the title: a plotly legend is a large part of each redraw when stepping.
    names = [(exp.class_name(exp.target), TARGET_HEX)] + (
        [(exp.class_name(exp.tracked), OTHER_HEX)] if exp.tracked is not None else []
    )
    title += (
        "<br><span style='font-size:12px'>"
        + "  ".join(f"<span style='color:{c}'>●</span> {n}" for n, c in names)
        + "</span>"
    )
    x_title = "image revealed (%)" if path == "insertion" else "image removed (%)"
    fig.update_layout(
        height=height,
        margin={"l": 10, "r": 10, "t": 48, "b": 10},
        hovermode="closest",
        title={"text": title, "font": {"size": 14}},
        showlegend=False,
        xaxis={"title": x_title, "range": [-2, 102]},
        yaxis={"title": "probability", "range": [-0.03, 1.03]},
        clickmode="event+select",
        dragmode=False,
    )
    return fig.to_dict()


def with_step(base: dict, exp: Explanation, step: int, path: str = "insertion") -> go.Figure:
    """``base`` (from :func:`curve_base`) with ``step`` marked: a dotted vertical line and a
    large dot on each curve. Skips plotly's validation (the base was validated)."""
    x = float(100 * exp.area[step])
    markers = [
        {
            "type": "scatter",
            "x": [x],
            "y": [float(exp.curve(cls, path)[step])],
            "mode": "markers",
            "marker": {"size": 14, "color": color, "line": {"color": "white", "width": 2}},
            "showlegend": False,
            "hoverinfo": "skip",
            "customdata": [step],
        }
        for cls, color in ((exp.target, TARGET_HEX), (exp.tracked, OTHER_HEX))
        if cls is not None
    ]
    line = {
        "type": "line",
        "x0": x,
        "x1": x,
        "xref": "x",
        "y0": 0,
        "y1": 1,
        "yref": "y domain",
        "line": {"color": "#444", "dash": "dot", "width": 1.5},
    }
    layout = dict(base["layout"], shapes=list(base["layout"].get("shapes", ())) + [line])
    return go.Figure({"data": list(base["data"]) + markers, "layout": layout}, _validate=False)


def curve_figure(
    exp: Explanation, step: int | None = None, path: str = "insertion", height: int = 340, show_subset: bool = True
) -> go.Figure:
    """p(target) and p(tracked) along the insertion (or deletion) path, on the area axis; every
    point is a clickable marker whose ``customdata`` is its step.

    Args:
        step: the current step, marked by a vertical line and larger markers.
        path: "insertion" or "deletion".
    """
    base = curve_base(exp, path, height, show_subset)
    return go.Figure(base) if step is None else with_step(base, exp, step, path)
