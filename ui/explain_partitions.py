"""The Explain page's "Does the partition matter?" section: the same image, model and target
explained on two or three partitions side by side, with how far they agree
(``explainer/agreement.py``). Each partition is an ordinary saved run (reused when it exists;
one background search each otherwise)."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from explainer import agreement, figures, store
from explainer.errors import LimaError
from explainer.explanation import Explanation
from explainer.models import Classifier
from explainer.search import iter_search
from ui import components, explain_compare, public, resources, state
from ui.text import md, md_message

LABELS = [label for label, _, _ in agreement.PARTITIONS]


def _partition_runs(exp: Explanation, clf: Classifier, chosen: list[str]) -> list[tuple[str, str, dict, str, object]]:
    """(label, region method, its options, run key, label map) of each chosen partition of ``exp``'s view."""
    out = []
    for label, method, options in agreement.PARTITIONS:
        if label not in chosen:
            continue
        labels = resources.region_map(resources.digest(exp.view), method, json.dumps(options, sort_keys=True), exp.view)
        key = store.run_key(clf.describe(), exp.view, labels, exp.target, exp.tracked, exp.config)
        out.append((label, method, options, key, labels))
    return out


def _start(exp: Explanation, clf: Classifier, missing: list) -> None:
    refusal = public.job_refusal(resources.job_manager())
    if refusal:
        st.session_state["_partition_refusal"] = refusal
        return
    runs, manager = resources.run_store(), resources.job_manager()
    keys = []
    for label, method, options, key, labels in missing:

        def make_iter(labels=labels, method=method, options=options):
            return iter_search(
                clf,
                exp.view,
                labels,
                exp.target,
                exp.config,
                tracked=exp.tracked,
                regions={"method": method, "params": options},
                source=exp.source,
            )

        def on_done(result, key=key) -> None:
            runs.save(result, key)

        job = manager.submit(key, "search", f"LiMA on {label}", make_iter, on_done=on_done, watcher=state.session_id())
        keys.append(job.key)
    state.put("partition_jobs", tuple(keys))


@st.fragment(run_every=components.POLL_S)
def _progress() -> None:
    manager = resources.job_manager()
    jobs = [manager.get(k) for k in state.get("partition_jobs") or ()]
    active = [j for j in jobs if j is not None and j.active]
    for job in active:
        st.progress(job.fraction, text=f"{md(job.label)} · {100 * job.fraction:.0f} %")
    if not active and jobs:
        state.put("partition_jobs", ())
        st.rerun(scope="app")


def partitions_section(exp: Explanation, key: str, clf: Classifier | None) -> None:
    st.markdown("##### Does the partition matter?")
    if not explain_compare.same_model(exp, clf):
        st.info("Comparing partitions runs the run's own model; pick it in the sidebar.", icon=":material/info:")
        return
    assert clf is not None
    st.caption(
        "The same image, model, target and search on other regions. Rank correlation: Spearman's ρ between "
        "the pixel rank maps (1 = the same order of the image's parts). Subset overlap: IoU of the minimal subsets."
    )
    chosen = st.multiselect("Partitions", LABELS, default=LABELS[:2], key="partition_choices", max_selections=3)
    try:
        planned = _partition_runs(exp, clf, chosen)
    except LimaError as exc:
        st.error(md_message(exc))
        return
    runs = resources.run_store()
    missing = [run for run in planned if not runs.has(run[3]) and run[3] != key]
    if st.session_state.get("_partition_refusal"):
        st.warning(md_message(st.session_state.pop("_partition_refusal")), icon=":material/public:")
    if state.get("partition_jobs"):
        components.panels_on_page().update(state.get("partition_jobs"))  # the sidebar leaves them out
        _progress()
    elif missing:
        passes = sum(int(run[4].max()) + 1 for run in missing)
        st.button(
            f"Explain on {len(missing)} more partition{'s' if len(missing) != 1 else ''}",
            on_click=_start,
            args=(exp, clf, missing),
            key="partition_run",
            icon=":material/play_arrow:",
            help=f"One LiMA search each ({passes} regions in all); finished partitions are saved runs.",
        )
    done = [(label, runs.load(k)) for label, _, _, k, _ in planned if k != key and runs.has(k)]
    if not done:
        return
    this = f"This run ({md(exp.regions.method)}, {exp.n_regions} regions)"
    columns = st.columns(len(done) + 1)
    columns[0].image(figures.step_view(exp, exp.minimal_subset_size, subset=True), caption=this, width="stretch")
    rows = []
    for col, (label, other) in zip(columns[1:], done):
        k = other.minimal_subset_size
        col.image(
            figures.step_view(other, k, subset=True),
            caption=f"{md(label)}: {other.n_regions} regions, minimal subset {k} ({100 * other.area[k]:.0f} %)",
            width="stretch",
        )
        pair = agreement.compare(exp, other)
        rows.append(
            {
                "partition": label,
                "regions": other.n_regions,
                "rank correlation (ρ)": round(pair.spearman, 3),
                "subset overlap (IoU)": round(pair.subset_iou, 3),
                "insertion AUC": round(other.insertion_auc, 3),
            }
        )
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    with st.expander("Where they disagree", icon=":material/compare:"):
        cols = st.columns(len(done))
        for col, (label, other) in zip(cols, done):
            pair = agreement.compare(exp, other)
            col.image(
                agreement.disagreement_image(exp.view, pair),
                caption=f"Blue: in this run's minimal subset only; orange: in {md(label)}'s only.",
                width="stretch",
            )
