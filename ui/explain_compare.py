"""The Explain page's "Compare methods" section: other attribution methods on the run's regions.

The user picks methods (each with its kind and a cost preview), runs them in the background (one
job per method, reused when the inputs are equal, kept on disk with the run's subject), and sees
them side by side: every method's region ranks on one colour scale, the insertion curves in one
chart, a table of scores and costs, and (inside the step-through) what each method reveals with
the same number of regions. Exports: the comparison figure and table, with provenance.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from explainer import export, render
from explainer.comparison import (
    MethodResult,
    MethodStore,
    iter_method,
    method_key,
    resolve_options,
    result_of,
    subject_key,
    subject_of,
)
from explainer.explanation import Explanation
from explainer.methods import METHODS
from explainer.models import Classifier
from ui import components, public, resources, state
from ui.text import md, md_message, safe_filename

PICK_KEY = "compare_methods"
EQUAL_KEY = "compare_equal_cost"
DEFAULT_PICK = ("gradcam", "rise", "random")
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#999999", "#882255", "#44AA99")


def methods_store() -> MethodStore:
    return MethodStore(resources.run_store().root / "_methods")


def same_model(exp: Explanation, clf: Classifier | None) -> bool:
    return clf is not None and exp.model.get("id") == clf.id and exp.model.get("weights_hash") == clf.weights_hash


def _plan(exp: Explanation, clf: Classifier, names: list[str], equal_cost: bool):
    """(method, resolved options, job key) for each chosen method other than the run's own."""
    skey = subject_key(clf, exp.view, exp.labels, exp.target, exp.tracked, exp.config.fill)
    out = []
    for name in names:
        options = resolve_options(name, None, exp.forward_passes if equal_cost else None)
        out.append((name, options, f"method:{skey}:{method_key(name, options, 0)}"))
    return skey, out


def saved_results(exp: Explanation, clf: Classifier | None, equal_cost: bool | None = None) -> list[MethodResult]:
    """The run itself first, then every other method saved for this subject: per method, the
    result of the options chosen now (default budgets, or equal cost: ``equal_cost``, by default
    the page's toggle), else one saved with other options (e.g. by ``evaluate``)."""
    own = result_of(exp)
    if clf is None or not same_model(exp, clf):
        return [own]
    if equal_cost is None:
        equal_cost = bool(st.session_state.get(EQUAL_KEY, False))
    skey, plan = _plan(exp, clf, METHODS.names(), equal_cost)
    wanted = {name: key.rsplit(":", 1)[1] for name, _, key in plan}
    others = [r for r in methods_store().all(skey) if r.method != own.method]
    order = {name: i for i, name in enumerate(METHODS.names())}
    chosen: dict[str, MethodResult] = {}
    for r in others:
        if r.method not in chosen or r.subject.get("method_key") == wanted.get(r.method):
            chosen[r.method] = r
    return [own, *sorted(chosen.values(), key=lambda r: order.get(r.method, 99))]


def _start(exp: Explanation, clf: Classifier, plan) -> None:
    manager, store = resources.job_manager(), methods_store()
    me = state.session_id()
    subject = subject_of(exp, clf)
    started = []
    for name, options, key in plan:

        def make(name=name, options=options):
            return iter_method(subject, name, options, exp.tracked, exp.tolerance, store)

        started.append(
            manager.submit(
                key, "method", f"{METHODS.get(name).label} on {exp.source.get('name', 'image')}", make, watcher=me
            ).key
        )
    st.session_state["compare_jobs"] = started


def _cancel_all() -> None:
    manager = resources.job_manager()
    for key in st.session_state.get("compare_jobs", []):
        job = manager.get(key)
        if job is not None:
            manager.release(job, state.session_id())  # stops it unless another session waits


def _jobs_panel() -> bool:
    """Progress of this session's comparison jobs (a polling fragment); True while any runs."""
    manager = resources.job_manager()
    jobs = [manager.get(k) for k in st.session_state.get("compare_jobs", [])]
    if not any(j is not None and j.active for j in jobs):
        failed = [j for j in jobs if j is not None and j.status == "failed"]
        for job in failed:
            st.error(f"{md(job.label)} failed: {md_message(job.error)}")
        return False

    components.panels_on_page().update(j.key for j in jobs if j is not None and j.active)

    @st.fragment(run_every=components.POLL_S)
    def poll() -> None:
        current = [manager.get(k) for k in st.session_state.get("compare_jobs", [])]
        if not any(j is not None and j.active for j in current):
            st.rerun()
        for job in current:
            if job is not None and job.active:
                st.progress(job.fraction, text=components.progress_text(job))
        st.button("Cancel", key="compare_cancel", on_click=_cancel_all, icon=":material/stop_circle:")

    poll()
    return True


def compare_section(exp: Explanation, run_key: str, clf: Classifier | None) -> None:
    """Draw the section (below the step-through)."""
    st.markdown("##### Compare methods")
    if not same_model(exp, clf):
        st.info(
            f"This run was made with {md(exp.model.get('id', 'another model'))}; choose that model in the "
            "sidebar to compare other methods on its regions.",
            icon=":material/compare:",
        )
        return
    assert clf is not None
    n = exp.n_regions
    rate = resources.search_rate(f"{clf.id}@{clf.weights_hash[:16]}", clf)
    own = "lima" if exp.config.search == "bidirectional" else "smdl"
    choices = [m.name for m in METHODS if m.name != own]
    available = {m: METHODS.get(m).availability(clf) for m in choices}
    c1, c2 = st.columns([3, 1.3], vertical_alignment="bottom")
    picked = c1.multiselect(
        "Methods",
        choices,
        default=[m for m in DEFAULT_PICK if available[m][0]],
        key=PICK_KEY,
        format_func=lambda m: f"{METHODS.get(m).label} ({METHODS.get(m).kind})",
        persist_state="session",
        help="Every method ranks the same regions; every ranking is scored the same way.",
    )
    equal = c2.toggle(
        "Equal cost",
        key=EQUAL_KEY,
        persist_state="session",
        help=f"RISE, LIME and KernelSHAP get exactly the {exp.forward_passes:,} forward passes LiMA spent "
        "on this image.",
    )
    skey, plan = _plan(exp, clf, picked, equal)
    store = methods_store()
    preview = []
    for name, options, key in plan:
        cost = METHODS.get(name).cost(n, options)
        ok, reason = available[name]
        saved = store.get(skey, key.rsplit(":", 1)[1]) is not None
        preview.append(
            {
                "method": METHODS.get(name).label,
                "kind": METHODS.get(name).kind,
                "forward passes": cost.forward,
                "backward passes": cost.backward,
                "estimate": "saved"
                if saved
                else (
                    components.format_seconds((cost.forward + 2 * cost.backward + 2 * (n + 1)) / rate)
                    if ok
                    else "unavailable"
                ),
                "note": "" if ok else reason,
            }
        )
    if preview:
        st.dataframe(pd.DataFrame(preview), hide_index=True, width="stretch")
    runnable = [p for p in plan if available[p[0]][0] and store.get(skey, p[2].rsplit(":", 1)[1]) is None]
    running = _jobs_panel()
    st.button(
        f"Run {len(runnable)} method{'s' if len(runnable) != 1 else ''}" if runnable else "All chosen methods are done",
        type="primary",
        disabled=not runnable or running or public.on(),
        help="A public demo shows saved comparisons only." if public.on() else None,
        key="compare_run",
        on_click=_start,
        args=(exp, clf, runnable),
        icon=":material/play_arrow:",
    )
    results = saved_results(exp, clf, equal)
    if len(results) < 2:
        st.caption("Results appear here, side by side with LiMA, as each method finishes.")
        return
    _results(exp, run_key, results)


def _results(exp: Explanation, run_key: str, results: list[MethodResult]) -> None:
    rows = export.comparison_rows(results)
    table = pd.DataFrame(rows).drop(columns=["kind"])
    labels = {
        "insertion_auc": "insertion AUC ↑",
        "deletion_auc": "deletion AUC ↓",
        **{f"highest_confidence_{k}": f"best@{int(float(k) * 100)} % ↑" for k in ("0.25", "0.5", "0.75", "1.0")},
        "minimal_subset_size": "subset (regions)",
        "minimal_subset_area": "subset (area)",
        "forward_passes": "forward",
        "backward_passes": "backward",
        "seconds": "seconds",
    }
    st.dataframe(
        table.round(4),
        hide_index=True,
        width="stretch",
        column_config={k: st.column_config.NumberColumn(v) for k, v in labels.items()},
    )
    left, right = st.columns([1.3, 1], gap="medium")
    with left:
        st.plotly_chart(_curves(results), width="stretch", config={"displayModeBar": False})
    with right:
        st.caption(
            "Region rank of each method (bright: ranked first), on one colour scale; outline: its minimal subset."
        )
        _rank_maps(exp, results)
    stem = f"lima-compare-{safe_filename((exp.source.get('name') or 'image').rsplit('.', 1)[0], 40)}-{run_key[:8]}"
    cols = st.columns(5)
    for i, (label, make, name, mime) in enumerate(
        [
            ("Figure (PNG)", lambda: export.comparison_figure(exp, results, "png"), f"{stem}.png", "image/png"),
            ("Figure (SVG)", lambda: export.comparison_figure(exp, results, "svg"), f"{stem}.svg", "image/svg+xml"),
            ("Figure (PDF)", lambda: export.comparison_figure(exp, results, "pdf"), f"{stem}.pdf", "application/pdf"),
            ("Table (CSV)", lambda: export.comparison_csv(exp, results), f"{stem}.csv", "text/csv"),
            ("Table (JSON)", lambda: export.comparison_json(exp, results), f"{stem}.json", "application/json"),
        ]
    ):
        cols[i].download_button(
            label,
            data=make,
            file_name=name,
            mime=mime,
            on_click="ignore",
            key=f"cmp_dl_{i}",
            width="stretch",
            icon=":material/download:",
        )


def _curves(results: list[MethodResult]) -> go.Figure:
    fig = go.Figure()
    for i, r in enumerate(results):
        fig.add_trace(
            go.Scatter(
                x=(100 * np.asarray(r.score.area)).tolist(),
                y=np.asarray(r.score.insertion).tolist(),
                mode="lines",
                name=r.method,
                line={"color": PALETTE[i % len(PALETTE)], "width": 3 if i == 0 else 1.8},
            )
        )
    fig.update_layout(
        height=320,
        margin={"l": 10, "r": 10, "t": 36, "b": 10},
        title={"text": "Insertion, every method", "font": {"size": 14}},
        xaxis={"title": "image revealed (%)", "range": [0, 100]},
        yaxis={"title": "p(target)", "range": [-0.02, 1.02]},
        legend={"font": {"size": 11}},
    )
    return fig


def _rank_maps(exp: Explanation, results: list[MethodResult]) -> None:
    colours = render.ColourScale(render.SEQUENTIAL, 0.0, 1.0, "ranked last", "ranked first")
    cols = st.columns(3)
    for i, r in enumerate(results):
        order = np.asarray(r.score.order)
        subset = render.revealed_mask(exp.labels, order, len(r.score.minimal_subset))
        image = render.heatmap(exp.view, exp.labels, render.rank_values(order), colours=colours, outline=subset)
        cols[i % 3].image(image, caption=r.method, width="stretch")
    components.colour_scale(colours, width=300)


def step_row(exp: Explanation, clf: Classifier | None, step: int, hidden: str) -> None:
    """Inside the step-through: with ``step`` regions, what each compared method reveals."""
    results = saved_results(exp, clf)
    if len(results) < 2:
        return
    st.caption(
        f"With {step} region{'s' if step != 1 else ''}, what each method reveals "
        f"(p({md(exp.class_name(exp.target))}) under each image):"
    )
    for first in range(0, len(results), 6):  # small tiles, six to a row: every method is shown
        cols = st.columns(6)
        for col, r in zip(cols, results[first : first + 6]):
            image = render.step_image(exp.view, exp.labels, np.asarray(r.score.order), step, hidden=hidden, scale=1)
            col.image(
                image, caption=f"{r.method} · {r.score.insertion[step]:.2f}", width="stretch", output_format="JPEG"
            )
