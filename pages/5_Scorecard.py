"""Scorecard: every attribution method on every chosen image of the set, scored by one protocol."""

from __future__ import annotations

import hashlib
import json

import pandas as pd
import streamlit as st

from explainer.comparison import MethodStore
from explainer.errors import LimaError
from explainer.evaluate import METRICS, EvaluationOptions, estimate_passes, iter_evaluate, table, to_csv
from explainer.methods import METHODS
from explainer.regions import REGION_METHODS, RegionSpec
from ui import components, forms, page, public, resources, sidebar, state
from ui.text import md, md_message, safe_filename

JOB_KEY = "scorecard_job"


def _settings(clf) -> tuple[EvaluationOptions | None, RegionSpec | None]:
    available = [m.name for m in METHODS if m.availability(clf)[0]]
    c1, c2 = st.columns([3, 2])
    methods = c1.multiselect(
        "Methods",
        available,
        default=[m for m in ("lima", "gradcam", "rise", "random") if m in available],
        format_func=lambda m: f"{METHODS.get(m).label} ({METHODS.get(m).kind})",
        key="sc_methods",
        persist_state="session",
    )
    errors_only = c2.toggle("Mistakes only", value=True, key="sc_errors", persist_state="session")
    equal = c2.toggle(
        "Equal cost", key="sc_equal", persist_state="session", help=EvaluationOptions.field("equal_cost").spec.help
    )
    c3, c4, c5 = st.columns(3)
    limit = c3.number_input("At most this many images", 1, 100_000, 10, key="sc_limit", persist_state="session")
    target = c4.radio(
        "Explain",
        ["true", "predicted"],
        key="sc_target",
        horizontal=True,
        persist_state="session",
        format_func={"true": "the true class", "predicted": "the predicted class"}.get,
    )
    method = c5.selectbox(
        "Regions",
        [m.name for m in REGION_METHODS if not m.slow_on_cpu],
        key="sc_regions",
        format_func=lambda m: REGION_METHODS.get(m).label,
        persist_state="session",
    )
    with st.expander("Region parameters", icon=":material/tune:"):
        region_options = forms.options_form(REGION_METHODS.get(method).options, f"sc_rp_{method}")
    if not methods or region_options is None:
        st.info("Choose at least one method.")
        return None, None
    try:
        options = EvaluationOptions(
            methods=",".join(methods),
            errors_only=errors_only,
            limit=int(limit),
            target=target or "true",
            equal_cost=equal,
        )
    except LimaError as exc:
        st.error(md_message(exc))
        return None, None
    return options, RegionSpec(method, region_options)


def _start(ctx, options: EvaluationOptions, regions: RegionSpec, scan_result) -> None:
    clf, image_set = ctx.clf, ctx.image_set
    blob = json.dumps([ctx.model_key, ctx.set_key, options.to_dict(), regions.to_dict()], sort_keys=True)
    key = "scorecard:" + hashlib.sha256(blob.encode()).hexdigest()[:16]
    store = MethodStore(resources.run_store().root / "_methods")
    job = resources.job_manager().submit(
        key,
        "evaluate",
        f"Scorecard of {image_set.name}",
        lambda: iter_evaluate(clf, image_set, regions, options, methods_store=store, scan_result=scan_result),
    )
    components.start_job(JOB_KEY, job)


def _results(evaluation) -> None:
    summary = evaluation.summary()
    methods = list(evaluation.methods)
    st.subheader(f"{len(evaluation.images)} images")
    rows = []
    for m in methods:
        row = {"method": m, "kind": METHODS.get(m).kind}
        for metric in METRICS:
            stats = summary[m][metric]
            row[metric.replace("highest_confidence@", "best@")] = (
                None if stats["mean"] is None else f"{stats['mean']:.3f} [{stats['ci'][0]:.3f}, {stats['ci'][1]:.3f}]"
            )
        row["forward passes"] = summary[m]["forward_passes"]
        row["s / image"] = summary[m]["seconds"]
        rows.append(row)
    st.caption(
        "Mean and 95 % bootstrap interval over the images (insertion ↑, deletion ↓, best@β: the highest "
        "p(target) within a share β of the image ↑)."
    )
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    if "lima" in methods and len(methods) > 1:
        versus = []
        for m in methods:
            if m == "lima":
                continue
            row = {"method": m}
            for metric in METRICS:
                vs = summary[m][metric].get("vs_lima")
                row[metric.replace("highest_confidence@", "best@")] = (
                    None if not vs else f"{vs['mean_diff']:+.3f} (LiMA wins {100 * vs['lima_win_rate']:.0f} %)"
                )
            versus.append(row)
        st.caption("Paired difference to LiMA (method − LiMA) and how often LiMA does better (ties count half).")
        st.dataframe(pd.DataFrame(versus), hide_index=True, width="stretch")
    per_image = [
        {
            "image": im.name,
            "method": m,
            "insertion AUC": r.score.insertion_auc,
            "deletion AUC": r.score.deletion_auc,
            "best@0.25": r.score.highest_confidence.get("0.25"),
            "forward passes": r.ranking.forward_passes,
        }
        for im in evaluation.images
        for m, r in im.results.items()
    ]
    with st.expander("Every image and method", icon=":material/table:"):
        st.dataframe(pd.DataFrame(per_image).round(4), hide_index=True, width="stretch")
    stem = f"lima-scorecard-{safe_filename(evaluation.provenance.get('image_set', 'set'), 40)}"
    c1, c2, c3 = st.columns(3)
    c1.download_button(
        "Scorecard (JSON)",
        data=lambda: json.dumps(evaluation.to_dict(), indent=1, default=str),
        file_name=f"{stem}.json",
        mime="application/json",
        on_click="ignore",
        width="stretch",
        icon=":material/download:",
        key="sc_json",
    )
    c2.download_button(
        "Scorecard (CSV)",
        data=lambda: to_csv(evaluation),
        file_name=f"{stem}.csv",
        mime="text/csv",
        on_click="ignore",
        width="stretch",
        icon=":material/download:",
        key="sc_csv",
    )
    c3.download_button(
        "Table (text)",
        data=lambda: table(summary, methods),
        file_name=f"{stem}.txt",
        mime="text/plain",
        on_click="ignore",
        width="stretch",
        icon=":material/download:",
        key="sc_txt",
    )


def main() -> None:
    st.title("Scorecard")
    st.markdown(
        "Every method ranks the same regions of every chosen image; every ranking is scored by the same "
        "protocol: insertion and deletion along the region path, and the highest confidence within "
        "25/50/75/100 % of the area. Finished pairs are kept and reused."
    )
    ctx = sidebar.context()
    clf, image_set = ctx.require_model(), ctx.require_set()
    scan = resources.scan_cache().get(clf, image_set)
    if scan is None:
        st.info(
            "Scan the image set on **Find errors** first: the scorecard picks its images from the scan.",
            icon=":material/search:",
        )
        st.page_link(page.ERRORS_PAGE, label="Find errors", icon=":material/search:")
        return
    options, regions = _settings(clf)
    finished = components.finished_job(JOB_KEY)
    if finished is not None and finished.status == "done":
        st.session_state["scorecard_result"] = finished.result
    components.show_outcome(JOB_KEY)
    job = components.job_panel(JOB_KEY)
    if options is not None and regions is not None:
        chosen = [r for r in scan.readable if not options.errors_only or not r.correct][: options.limit]
        n = 49 if regions.method == "slico" else 25
        passes = estimate_passes(options.method_names(), n, options.equal_cost)
        rate = resources.search_rate(ctx.model_key, clf)
        st.caption(
            f"{len(chosen)} images × {len(options.method_names())} methods: "
            f"{components.format_seconds(len(chosen) * passes / rate)} on {md(resources.device_name())} "
            "(saved pairs are free)."
        )
        st.button(
            "Run the scorecard",
            type="primary",
            disabled=(job is not None and job.active) or not chosen or public.on(),
            help="A public demo shows saved results only; scorecards run on a team server." if public.on() else None,
            on_click=_start,
            args=(ctx, options, regions, scan),
            icon=":material/play_arrow:",
            key="sc_run",
        )
    result = st.session_state.get("scorecard_result")
    if result is not None and _same_inputs(result, clf, image_set):
        _results(result)
    elif result is not None:  # the set or the model changed in the sidebar since
        st.caption(
            f"The last scorecard in this session was of {md(result.provenance.get('image_set', 'another set'))} "
            f"with {md(result.provenance.get('model', {}).get('id', 'another model'))}: run it again for this "
            "set and model."
        )
    state.init_state()


def _same_inputs(evaluation, clf, image_set) -> bool:
    """Whether a scorecard was made of this image set with this model."""
    made = evaluation.provenance
    model = made.get("model", {})
    return (
        made.get("image_set_fingerprint") == image_set.fingerprint()
        and model.get("id") == clf.id
        and model.get("weights_hash") == clf.weights_hash
    )


page.render("Scorecard", main)
