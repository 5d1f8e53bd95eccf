"""The Explain page's result: readout, metrics, the step-through fragment, heatmaps, exports.

Stepping only reruns the step fragment, which reads the stored Explanation (no model calls).
The URL carries the run and the step (``?run=KEY&step=K``), so a link reopens exactly this view.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from explainer import export, figures
from explainer.explanation import Explanation
from explainer.models import Classifier
from explainer.objective import TERMS
from ui import charts, components, explain_compare, state
from ui.text import md, safe_filename

STEP_KEY = "step"
HIDDEN_KEY = "hidden"
HIDDEN_CHOICES = {"black": "Black", "dim": "Dimmed"}
PLAY_INTERVAL_S = 0.7
CHART_CONFIG = {"displayModeBar": False, "scrollZoom": False}


# -- step state ------------------------------------------------------------------------------------


def init_step(exp: Explanation, key: str) -> None:
    """When a run is opened, start at the URL's step (for a shared link) or the minimal subset."""
    if state.get("step_run") == key and STEP_KEY in st.session_state:
        return
    step, hidden = exp.minimal_subset_size, "black"
    if st.query_params.get("run") == key:
        try:
            step = int(st.query_params.get("step", step))
        except ValueError:
            pass
        if st.query_params.get("hidden") in HIDDEN_CHOICES:  # a link carries Black/Dimmed too
            hidden = st.query_params["hidden"]
    st.session_state[STEP_KEY] = min(max(step, 0), exp.n_regions)
    st.session_state[HIDDEN_KEY] = hidden
    state.put("step_run", key)
    state.put("playing", False)


def _set_step(value: int, n: int) -> None:
    st.session_state[STEP_KEY] = min(max(int(value), 0), n)


def _stop_playing() -> None:
    state.put("playing", False)


def _shift(delta: int, n: int) -> None:
    _stop_playing()
    _set_step(st.session_state[STEP_KEY] + delta, n)


def _toggle_play(n: int) -> None:
    playing = not state.get("playing")
    if playing and st.session_state[STEP_KEY] >= n:
        st.session_state[STEP_KEY] = 0  # replay from the start
    state.put("playing", playing)
    st.session_state["_play_changed"] = True


def _on_curve_click(chart_key: str, n: int) -> None:
    event = st.session_state.get(chart_key) or {}
    points = (event.get("selection") or {}).get("points") or []
    if points:
        point = points[0]
        value = point.get("customdata", point.get("point_index"))
        if isinstance(value, (list, tuple)):
            value = value[0]
        _stop_playing()
        _set_step(int(value), n)


# -- the fragment ------------------------------------------------------------------------------------


@st.cache_resource(max_entries=32, show_spinner=False)
def _deletion_figure(key: str, _exp: Explanation):
    import plotly.graph_objects as go

    return go.Figure(charts.curve_base(_exp, "deletion", height=240, show_subset=False), _validate=False)


@st.cache_resource(max_entries=32, show_spinner=False)
def _curve_base(key: str, path: str, _exp: Explanation) -> dict:
    """The curve figure of a run without the step marker (built once; stepping only adds it)."""
    if path == "insertion":
        return charts.curve_base(_exp, "insertion", height=300)
    return charts.curve_base(_exp, "deletion", height=240, show_subset=False)


def _step_panel(exp: Explanation, step: int) -> None:
    names = exp.class_names
    p_t, p_t_full = exp.insertion[step], exp.insertion[-1]
    st.metric(f"p({md(names[exp.target])})", f"{p_t:.3f}", f"{p_t - p_t_full:+.3f} vs full image")
    if exp.tracked is not None:
        p_o, p_o_full = exp.tracked_insertion[step], exp.tracked_insertion[-1]
        st.metric(
            f"p({md(names[exp.tracked])})", f"{p_o:.3f}", f"{p_o - p_o_full:+.3f} vs full image", delta_color="inverse"
        )
    colours = {exp.target: "blue", exp.tracked: "orange"}
    lines = [
        (f":{colours[i]}[{md(name)}]" if i in colours else md(name)) + f" · {p:.3f}"
        for i, name, p in exp.top_classes(step, 5)
    ]
    st.markdown("**Top 5 at this step**  \n" + "  \n".join(lines))
    entry = exp.step_entry(step)
    if entry is None:
        note = "the empty image" if step == 0 else "placed last by the forward search, without a comparison"
        st.caption(f"Step {step}: {note}.")
        return
    where = (
        "front (forward step, maximising F)"
        if entry["direction"] == "forward"
        else "tail (backward step, minimising F)"
    )
    terms = " · ".join(f"{t} {entry[t]:.3f}" for t in TERMS if t != "effectiveness" or entry[t])
    st.caption(
        f"Step {step}: region {entry['region']} went to the {where} among {entry['candidates']} candidates; "
        f"F = {entry['objective']:.3f} ({terms})."
    )


def _step_body(exp: Explanation, key: str, clf: Classifier | None = None) -> None:
    n = exp.n_regions
    if st.session_state.pop("_play_changed", False):
        st.rerun()  # re-create the fragment with(out) its timer
    playing = state.get("playing")
    if playing:
        if st.session_state[STEP_KEY] >= n:
            state.put("playing", False)
            st.rerun()
        _set_step(st.session_state[STEP_KEY] + 1, n)
    controls = st.columns([6, 1, 1, 1.3, 2.2], vertical_alignment="bottom")
    step = controls[0].slider("Step: regions revealed", 0, n, key=STEP_KEY, on_change=_stop_playing)
    controls[1].button(
        "",
        icon=":material/chevron_left:",
        on_click=_shift,
        args=(-1, n),
        key="step_prev",
        help="Previous step",
        disabled=step == 0,
    )
    controls[2].button(
        "",
        icon=":material/chevron_right:",
        on_click=_shift,
        args=(1, n),
        key="step_next",
        help="Next step",
        disabled=step == n,
    )
    controls[3].button(
        "Pause" if playing else "Play",
        icon=":material/pause:" if playing else ":material/play_arrow:",
        on_click=_toggle_play,
        args=(n,),
        key="step_play",
    )
    hidden = (
        controls[4].segmented_control(
            "Hidden regions", list(HIDDEN_CHOICES), key=HIDDEN_KEY, required=True, format_func=HIDDEN_CHOICES.get
        )
        or "black"
    )
    link = share_params(key, step, hidden)
    if dict(st.query_params) != link:
        st.query_params.from_dict(link)  # one URL update, not two

    left, mid, right = st.columns([1.15, 1.6, 0.9], gap="medium")
    with left.container(key="step_image"):
        caption = (
            "the empty image"
            if step == 0
            else f"{step} of {n} regions · {100 * exp.area[step]:.1f} % of the image; yellow: the region added last"
        )
        st.image(
            figures.step_view(exp, step, hidden=hidden, subset=False),
            caption=caption,
            width="stretch",
            output_format="JPEG",
        )  # 1 ms to encode instead of 11 ms for PNG
    with mid:
        st.plotly_chart(
            charts.with_step(_curve_base(key, "insertion", exp), exp, step, "insertion"),
            key="curve_ins",
            on_select=lambda: _on_curve_click("curve_ins", n),
            selection_mode="points",
            config=CHART_CONFIG,
            width="stretch",
        )
        # The deletion chart has no step marker: its spec stays the same from step to step, so
        # the browser does not redraw it (plotly redraws cost most of a step's latency).
        st.plotly_chart(
            _deletion_figure(key, exp),
            key="curve_del",
            on_select=lambda: _on_curve_click("curve_del", n),
            selection_mode="points",
            config=CHART_CONFIG,
            width="stretch",
        )
    with right:
        _step_panel(exp, step)
        st.download_button(
            "PNG of this view",
            data=lambda: export.step_png(exp, step, hidden),
            file_name=f"{download_stem(exp, key)}-step{step}.png",
            mime="image/png",
            icon=":material/image:",
            on_click="ignore",
            key="dl_step_png",
            width="stretch",
        )
    explain_compare.step_row(exp, clf, step, hidden)  # every compared method at the same step
    url = (st.context.url or "").split("?")[0]
    st.caption("Share this view:")
    st.code(f"{url}?" + "&".join(f"{k}={v}" for k, v in link.items()), language=None)


def share_params(key: str, step: int, hidden: str) -> dict[str, str]:
    """The query parameters of a shared view: ``run`` and ``step`` (kept stable in every version,
    since links live on in papers and slides), and ``hidden=dim`` when context is dimmed."""
    params = {"run": key, "step": str(step)}
    if hidden != "black":
        params["hidden"] = hidden
    return params


def step_through(exp: Explanation, key: str, clf: Classifier | None = None) -> None:
    run_every = PLAY_INTERVAL_S if state.get("playing") else None
    st.fragment(_step_body, run_every=run_every)(exp, key, clf)


# -- the rest of the result ----------------------------------------------------------------------------


def _header(exp: Explanation) -> None:
    names = exp.class_names
    k = exp.minimal_subset_size
    st.success(md(exp.readout()), icon=":material/lightbulb:")
    cols = st.columns(5)
    cols[0].metric(
        "Minimal subset",
        f"{k} of {exp.n_regions}",
        f"{100 * exp.area[k]:.0f} % of the image",
        delta_color="off",
        delta_arrow="off",
    )
    cols[1].metric(
        f"p({md(names[exp.target])}) with it",
        f"{exp.insertion[k]:.3f}",
        f"{exp.insertion[k] - exp.insertion[-1]:+.3f} vs full image",
    )
    cols[2].metric(
        "Insertion AUC",
        f"{exp.insertion_auc:.3f}",
        help="Area under p(target) as regions are revealed "
        "in ranked order, on the revealed-area axis (higher: the ranking finds the evidence early).",
    )
    cols[3].metric(
        "Deletion AUC",
        f"{exp.deletion_auc:.3f}",
        help="Area under p(target) as regions are removed in "
        "ranked order (lower: removing the top regions destroys the evidence quickly).",
    )
    cols[4].metric(
        "Forward passes",
        f"{exp.forward_passes:,}",
        f"{exp.wall_time_s:.1f} s · {md(exp.device)}",
        delta_color="off",
        delta_arrow="off",
    )


def _heatmap(exp: Explanation, kind: str, caption: str) -> None:
    st.image(figures.heatmap_image(exp, kind), width=448, caption=caption)
    components.colour_scale(figures.heatmap_scale(exp, kind), width=448)


def _heatmaps(exp: Explanation) -> None:
    tabs = st.tabs(["True vs wrong", "Marginal gain", "Region rank", "Budgets"])
    target, other = md(exp.class_name(exp.target)), md(exp.class_name(exp.tracked) or "other")
    with tabs[0]:
        _heatmap(
            exp,
            "contrast",
            f"Each region's gain in p({target}) − p({other}) when added: blue supports "
            "the target, vermillion the other class. Outline: the minimal subset.",
        )
    with tabs[1]:
        _heatmap(exp, "gain", f"Each region's marginal gain in p({target}) when it was added.")
    with tabs[2]:
        _heatmap(exp, "rank", "Bright regions were chosen early.")
    with tabs[3]:
        rows = [
            {
                "area budget": f"{int(100 * b.budget)} %",
                f"highest p({exp.class_name(exp.target)})": None if b.highest is None else round(b.highest, 4),
                "reached at area": None if b.area is None else f"{100 * b.area:.1f} %",
                "regions": b.regions,
            }
            for b in exp.budget_scores()
        ]
        st.dataframe(pd.DataFrame(rows), hide_index=True)
        st.caption(
            "The paper's mistake metric: the highest target probability on the insertion path within each "
            "share of the image, and where it is reached."
        )


def download_stem(exp: Explanation, key: str) -> str:
    """File-name stem of a run's downloads: no spaces, brackets or other odd characters."""
    return f"lima-{safe_filename((exp.source.get('name') or 'image').rsplit('.', 1)[0], 40)}-{key[:8]}"


def _exports(exp: Explanation, key: str) -> None:
    st.markdown("##### Export")
    stem = download_stem(exp, key)
    hidden = st.session_state.get(HIDDEN_KEY) or "black"
    groups = [
        (
            "Paper figure (regions, subset, contrast map with its scale, curves)",
            [
                ("Figure (PNG)", lambda: export.composite(exp, "png"), f"{stem}.png", "image/png"),
                ("Figure (SVG)", lambda: export.composite(exp, "svg"), f"{stem}.svg", "image/svg+xml"),
                ("Figure (PDF)", lambda: export.composite(exp, "pdf"), f"{stem}.pdf", "application/pdf"),
            ],
        ),
        (
            "Step-through and data",
            [
                ("Step-through (GIF)", lambda: export.step_gif(exp, hidden), f"{stem}-steps.gif", "image/gif"),
                ("Curves (CSV)", lambda: export.curves_csv(exp), f"{stem}-curves.csv", "text/csv"),
                ("Result (JSON + NPZ)", lambda: export.result_zip(exp), f"{stem}-result.zip", "application/zip"),
                (
                    "Reference layout (npy/json)",
                    lambda: export.reference_zip(exp),
                    f"{stem}-reference.zip",
                    "application/zip",
                ),
            ],
        ),
    ]
    index = 0
    for title, buttons in groups:
        # One full-width button a row: every label stays readable from 1280 to 1920 px wide.
        st.caption(title)
        for label, make, name, mime in buttons:
            st.download_button(
                label,
                data=make,
                file_name=name,
                mime=mime,
                on_click="ignore",
                key=f"dl_{index}",
                width="stretch",
                icon=":material/download:",
            )
            index += 1
    st.caption(
        "Every file carries its provenance: model and weights hash, image hash, regions and parameters, "
        "λ weights, pending samples, fill, versions, device and time."
    )


def _provenance(exp: Explanation) -> None:
    with st.expander("Provenance and settings", icon=":material/info:"):
        st.json(export.provenance(exp), expanded=1)


def result_section(exp: Explanation, key: str, clf: Classifier | None = None) -> None:
    init_step(exp, key)
    _header(exp)
    step_through(exp, key, clf)
    st.divider()
    explain_compare.compare_section(exp, key, clf)
    st.divider()
    left, right = st.columns([1, 1], gap="large")
    with left:
        _heatmaps(exp)
    with right:
        _exports(exp, key)
        _provenance(exp)
