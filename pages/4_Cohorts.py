"""Cohorts: explain every mistake of a confusion pair (or a class, or all mistakes) in one batch,
then look at them together: minimal subsets on one scale, their distributions, where in the frame
the deciding regions lie, and exports with provenance."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from PIL import Image

from explainer import cohort
from explainer.batch import BatchOptions, BatchResult, ImageOutcome, InProcessRunner, Runner, iter_batch
from explainer.config import SearchOptions
from explainer.errors import LimaError
from explainer.regions import REGION_METHODS, RegionSpec
from explainer.search import forward_pass_count
from ui import components, forms, page, resources, sidebar
from ui.text import md, md_message, safe_filename

JOB_KEY = "cohort_job"
RESULT_KEY = "cohort_result"
PER_PAGE = 24
GALLERY_COLUMNS = 6
CPU_SLICO_SIZE = 36  # as on Explain: the same regions give the same run keys, so runs are shared


def _choose_cohort(scan, names) -> BatchOptions | None:
    """The cohort: all mistakes, one confusion pair, or one true class; the target and a limit."""
    kinds = {"pair": "A confusion pair", "class": "A class", "all": "All mistakes"}
    c1, c2 = st.columns([1.2, 2])
    kind = c1.radio("Cohort", list(kinds), format_func=kinds.get, key="co_kind", persist_state="session")
    confusion = classes = None
    errors_only = True
    if kind == "pair":
        pairs = scan.confusions()
        if not pairs:
            c2.info("The model makes no mistakes on this set.")
            return None
        chosen = c2.selectbox(
            "Confusion (true → predicted, images)",
            range(len(pairs)),
            format_func=lambda i: f"{names[pairs[i][0]]} → {names[pairs[i][1]]} ({pairs[i][2]})",
            key="co_pair",
            persist_state="session",
        )
        true, pred, _ = pairs[chosen or 0]
        confusion = f"{true}>{pred}"
    elif kind == "class":
        present = sorted({r.label for r in scan.readable})
        label = c2.selectbox(
            "True class",
            present,
            format_func=lambda c: components.class_label(names, c),
            key="co_class",
            persist_state="session",
        )
        classes = str(label if label is not None else present[0])
        errors_only = c2.toggle("Mistakes only", value=True, key="co_errors", persist_state="session")
    c3, c4 = st.columns(2)
    target = c3.radio(
        "Explain",
        ["true", "predicted"],
        format_func={"true": "the true class", "predicted": "the predicted class"}.get,
        key="co_target",
        horizontal=True,
        persist_state="session",
    )
    limit = c4.number_input("At most this many images", 1, 100_000, 100, key="co_limit", persist_state="session")
    return BatchOptions(
        errors_only=errors_only, confusion=confusion, classes=classes, limit=int(limit), target=target or "true"
    )


def _choose_regions() -> RegionSpec | None:
    methods = [m.name for m in REGION_METHODS if m.name != "sam"]
    method = st.selectbox(
        "Regions",
        methods,
        format_func=lambda m: REGION_METHODS.get(m).label,
        key="co_regions",
        persist_state="session",
        help="Computed for every image; the same regions and settings as on Explain give the same saved runs.",
    )
    spec = REGION_METHODS.get(method or "slico")
    defaults = spec.options()
    if spec.name == "slico" and not resources.on_gpu():
        defaults = defaults.replace(region_size=CPU_SLICO_SIZE)
    with st.expander("Region parameters", icon=":material/tune:"):
        options = forms.options_form(spec.options, f"co_rp_{spec.name}", defaults)
    return None if options is None else RegionSpec(spec.name, options)


def _runner(clf) -> Runner:
    """In this process, or on the Ray cluster at $RAY_ADDRESS when it is set."""
    address = os.environ.get("RAY_ADDRESS")
    if not address:
        return InProcessRunner(clf)
    from explainer.ray_runner import ModelRecipe, RayRunner

    return RayRunner(ModelRecipe(clf.id), address=address)


def _start(ctx, scan, selection: BatchOptions, regions: RegionSpec, search: SearchOptions) -> None:
    clf, image_set = ctx.clf, ctx.image_set
    blob = json.dumps([ctx.model_key, ctx.set_key, selection.to_dict(), regions.to_dict()], sort_keys=True)
    key = "cohort:" + hashlib.sha256(blob.encode()).hexdigest()[:16]
    runs = resources.run_store()
    runner = _runner(clf)
    job = resources.job_manager().submit(
        key,
        "batch",
        f"Cohort of {len(selected(scan, ctx, selection))} images",
        lambda: iter_batch(clf, image_set, scan, regions, search, selection, runner, runs),
    )
    components.start_job(JOB_KEY, job)


def selected(scan, ctx, selection: BatchOptions) -> list:
    from explainer.batch import select

    return select(scan, ctx.image_set, selection, ctx.clf.class_names)


def _is_cohort(result: BatchResult | None, ctx, selection: BatchOptions, regions: RegionSpec) -> bool:
    """Whether ``result`` is a batch of this cohort (model, set, selection and regions)."""
    if result is None:
        return False
    made = result.provenance
    return (
        made.get("selection") == selection.to_dict()
        and made.get("regions") == regions.to_dict()
        and made.get("image_set") == ctx.image_set.name
        and (made.get("model") or {}).get("id") == ctx.clf.id
    )


@st.cache_data(max_entries=16, show_spinner="Reading the cohort's saved runs…")
def _saved_outcomes(root: str, keys: tuple[str, ...], limit: int | None) -> list[ImageOutcome]:
    from explainer.store import RunStore

    return cohort.saved_outcomes(RunStore(root), keys, limit)


def _saved_result(ctx, selection: BatchOptions, regions: RegionSpec) -> BatchResult | None:
    """The cohort's saved runs, found through the run index (model, image set, class or
    confusion, region method, class explained): shown when this session ran no batch of it."""
    clf, image_set = ctx.clf, ctx.image_set
    runs = resources.run_store()
    try:
        where = cohort.saved_filter(clf.id, image_set.name, selection, regions.method, clf.class_names)
    except (LimaError, ValueError):
        return None
    found = runs.count(where)
    if not found:
        return None
    keys = tuple(row["key"] for row in runs.list(where))
    outcomes = _saved_outcomes(str(runs.root), keys, selection.limit)
    st.caption(
        f"Saved runs of this cohort, from the run index: {found:,} runs of this model, set, "
        f"{'confusion' if selection.confusion else 'class' if selection.classes else 'mistakes'} and region method "
        f"({len(outcomes):,} images shown, the newest run of each). Explain the cohort to compute the missing ones."
    )
    provenance = {
        "product": "LiMA Lens",
        "what": "cohort of saved runs (run index)",
        "selection": selection.to_dict(),
        "regions": {"method": regions.method},
        "model": clf.describe(),
        "image_set": image_set.name,
        "image_set_fingerprint": image_set.fingerprint(),
        "runs": len(outcomes),
    }
    return BatchResult(tuple(outcomes), provenance, len(outcomes), 0.0)


@st.cache_data(max_entries=4096, show_spinner=False)
def _subset_thumbnail(root: str, key: str) -> str | None:
    """The minimal subset of a run as a JPEG data URL (one scale: the classifier's view size)."""
    from explainer.store import RunStore

    try:
        image = cohort.subset_view(RunStore(root).load(key))
    except LimaError:
        return None
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


@st.cache_data(max_entries=32, show_spinner="Averaging where the deciding regions lie…")
def _location_map(root: str, keys: tuple[str, ...]) -> tuple[np.ndarray, int]:
    from explainer.store import RunStore

    return cohort.location_map(RunStore(root), keys)


def _gallery(outcomes: list[ImageOutcome], names, root: str) -> None:
    c1, c2 = st.columns([2, 1])
    by = c1.radio("Sort by", list(cohort.SORT_KEYS), key="co_sort", horizontal=True, persist_state="session")
    ordered = cohort.sort_outcomes(outcomes, by or "subset size")
    pages = max(1, -(-len(ordered) // PER_PAGE))
    number = c2.number_input(f"Page (of {pages})", 1, pages, 1, key="co_page") if pages > 1 else 1
    shown = ordered[(int(number) - 1) * PER_PAGE : int(number) * PER_PAGE]
    st.caption(
        "Each image's minimal subset as the model saw it (the rest black), all at the classifier's view size. "
        "Highest confidence: the highest p(target) along the insertion path; gain: that minus p(target) "
        "on the whole image."
    )
    for start in range(0, len(shown), GALLERY_COLUMNS):
        cols = st.columns(GALLERY_COLUMNS)
        for col, o in zip(cols, shown[start : start + GALLERY_COLUMNS]):
            with col:
                url = _subset_thumbnail(root, o.run_key)
                if url:
                    st.image(url, width="stretch")
                st.caption(
                    f"**{md(o.name)}**  \n{len(o.minimal_subset)}/{o.n_regions} regions "
                    f"({100 * o.minimal_subset_area:.0f} %) · best {o.highest_confidence:.2f} · "
                    f"gain {o.gain:+.2f}"
                )
                st.page_link(
                    page.EXPLAIN_PAGE,
                    label="Open in Explain",
                    icon=":material/open_in_new:",
                    query_params=sidebar.with_set({"run": o.run_key}),
                )


def _histogram(values: list[float], title: str, axis: str) -> go.Figure:
    fig = go.Figure(go.Histogram(x=values, nbinsx=20, marker_color="#0072B2"))
    fig.update_layout(
        title=title, height=260, margin={"l": 40, "r": 10, "t": 40, "b": 40}, xaxis_title=axis, yaxis_title="images"
    )
    return fig


def _distributions(outcomes: list[ImageOutcome], root: str) -> None:
    c1, c2, c3 = st.columns([1, 1, 1.1])
    c1.plotly_chart(
        _histogram([100 * o.minimal_subset_area for o in outcomes], "Minimal-subset area", "% of the image"),
        key="co_area_chart",
    )
    c2.plotly_chart(
        _histogram([o.highest_confidence for o in outcomes], "Highest confidence", "p(target)"),
        key="co_conf_chart",
    )
    with c3:
        mean_map, used = _location_map(root, tuple(o.run_key for o in outcomes))
        image, scale = cohort.location_image(mean_map)
        st.markdown("**Where the deciding regions lie**")
        st.image(image, width=256)
        components.colour_scale(scale, width=256)
        st.caption(f"Share of the {used} images whose minimal subset covers each point of the frame (normalised).")


def _exports(result: BatchResult, outcomes: list[ImageOutcome], names, root: str) -> None:
    from explainer.store import RunStore

    provenance = {**result.provenance, "store": root}
    stem = f"lima-cohort-{safe_filename(str(result.provenance.get('image_set', 'set')), 40)}"
    c1, c2, c3 = st.columns(3)
    c1.download_button(
        "Cohort (CSV)",
        data=lambda: cohort.to_csv(outcomes, provenance, names),
        file_name=f"{stem}.csv",
        mime="text/csv",
        on_click="ignore",
        icon=":material/download:",
        width="stretch",
        key="co_csv",
    )
    c2.download_button(
        "Cohort (JSON)",
        data=lambda: cohort.to_json(outcomes, provenance),
        file_name=f"{stem}.json",
        mime="application/json",
        on_click="ignore",
        icon=":material/download:",
        width="stretch",
        key="co_json",
    )
    c3.download_button(
        "Contact sheet (PDF)",
        data=lambda: cohort.contact_sheet(RunStore(root), outcomes, provenance, class_names=names),
        file_name=f"{stem}.pdf",
        mime="application/pdf",
        on_click="ignore",
        icon=":material/download:",
        width="stretch",
        key="co_pdf",
    )


def _results(result: BatchResult, names) -> None:
    outcomes = list(result.images)
    if not outcomes:
        st.info("No image of this cohort has been explained yet.")
        return
    root = str(resources.run_store().root)
    stats = cohort.summary(outcomes)
    note = "" if result.complete else " (stopped early: run again to finish; saved runs are reused)"
    st.subheader(f"{len(outcomes)} images{note}")
    m = st.columns(4)
    m[0].metric("Median subset", f"{stats['subset_size']['median']:.0f} regions")
    m[1].metric("Median subset area", f"{100 * stats['subset_area']['median']:.0f} %")
    m[2].metric("Median highest confidence", f"{stats['highest_confidence']['median']:.2f}")
    m[3].metric("Mean gain", f"{stats['gain']['mean']:+.2f}")
    _distributions(outcomes, root)
    _gallery(outcomes, names, root)
    with st.expander("Every image", icon=":material/table:"):
        table = pd.DataFrame(cohort.rows(outcomes, names))
        table.insert(0, "open", [f"/Explain?run={o.run_key}" for o in outcomes])
        st.dataframe(
            table,
            hide_index=True,
            width="stretch",
            column_config={"open": st.column_config.LinkColumn("open", display_text="Explain")},
        )
    _exports(result, outcomes, names, root)


def main() -> None:
    st.title("Cohorts")
    st.markdown(
        "Explain every mistake of a confusion pair, a class or the whole set in one batch, then look at "
        "them together. Finished runs are saved and reused: a stopped batch resumes where it stopped."
    )
    ctx = sidebar.context()
    clf, image_set = ctx.require_model(), ctx.require_set()
    names = clf.class_names
    scan = resources.scan_cache().get(clf, image_set)
    if scan is None:
        st.info("Scan the image set on **Find errors** first: cohorts come from the scan.", icon=":material/search:")
        st.page_link(page.ERRORS_PAGE, label="Find errors", icon=":material/search:")
        return
    selection = _choose_cohort(scan, names)
    regions = _choose_regions()
    finished = components.finished_job(JOB_KEY)
    if finished is not None and finished.status == "done":
        st.session_state[RESULT_KEY] = finished.result
    components.show_outcome(JOB_KEY)
    job = components.job_panel(JOB_KEY)
    if selection is not None and regions is not None:
        chosen = selected(scan, ctx, selection)
        search = SearchOptions()
        n = 49 if regions.method == "slico" else 36
        passes = forward_pass_count(n, search.search, search.pending)
        rate = resources.search_rate(ctx.model_key, clf)
        where = "the Ray cluster at $RAY_ADDRESS" if os.environ.get("RAY_ADDRESS") else md(resources.device_name())
        st.caption(
            f"{len(chosen)} images × up to about {passes:,} forward passes: "
            f"{components.format_seconds(len(chosen) * passes / rate)} on {where} (saved runs are free)."
        )
        st.button(
            "Explain the cohort",
            type="primary",
            disabled=(job is not None and job.active) or not chosen,
            on_click=_start,
            args=(ctx, scan, selection, regions, search),
            icon=":material/play_arrow:",
            key="co_run",
        )
    result = st.session_state.get(RESULT_KEY)
    running = job is not None and job.active  # its result is shown when it ends, as before
    if selection and regions and not running and not _is_cohort(result, ctx, selection, regions):
        result = _saved_result(ctx, selection, regions)  # no batch of this cohort here: its saved runs
    if result is not None:
        try:
            _results(result, names)
        except ValueError as exc:
            st.error(md_message(exc))


page.render("Cohorts", main)
