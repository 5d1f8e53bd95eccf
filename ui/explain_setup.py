"""The Explain page's set-up: image, regions (with live preview), target, search, cost, Run."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import streamlit as st

from explainer import render, store
from explainer.data import ImageItem
from explainer.errors import LimaError
from explainer.objective import DEFAULT_WEIGHTS, TERMS, WEIGHT_RANGE
from explainer.regions import REGION_METHODS, Param, region_stats
from explainer.sam import sam_status
from explainer.search import default_tracked, forward_pass_count, iter_search
from ui import components, resources, state
from ui.sidebar import Context
from ui.text import md

CPU_SLICO_SIZE = 36        # about 36 regions: a CPU run finishes in well under 30 s
METHOD_ORDER = ("slico", "seeds", "slic", "felzenszwalb", "grid", "sam")


@dataclass
class Plan:
    """Everything a run needs, and its key."""

    item: ImageItem
    view: np.ndarray
    labels: np.ndarray | None
    region_info: dict
    target: int
    tracked: int
    config: dict
    key: str | None


def _pick_item(ctx: Context, scan) -> ImageItem:
    items = ctx.image_set.items
    by_key = {it.key: it for it in items}
    mistakes = {r.key for r in scan.mistakes()} if scan else set()
    wanted = state.get("item_key")
    if wanted not in by_key:
        first_mistake = next((r.key for r in scan.mistakes() if r.key in by_key), None) if scan else None
        wanted = first_mistake or items[0].key
        state.put("item_key", wanted)
    st.session_state["_item"] = wanted                 # follow the data key (Find errors may set it)

    def changed() -> None:
        state.put("item_key", st.session_state["_item"])
        if "image" in st.query_params:                    # keep a deep link in step with the choice
            st.query_params["image"] = st.session_state["_item"]

    st.selectbox("Image", list(by_key), key="_item", on_change=changed, index=None,
                 format_func=lambda k: f"{by_key[k].name}  ·  {ctx.clf.class_names[by_key[k].label]}"
                                       + ("  ·  misclassified" if k in mistakes else ""))
    return by_key[wanted]


def _image_panel(ctx: Context, item: ImageItem) -> tuple[np.ndarray, np.ndarray]:
    clf = ctx.clf
    try:
        view = resources.view_of(ctx.model_key, ctx.set_key, item.key, clf, item)
    except LimaError as exc:
        st.error(f"This image cannot be used: {md(exc)}")
        st.stop()
    probs = resources.probabilities(ctx.model_key, resources.digest(view), clf, view)
    pred = int(np.argmax(probs))
    st.image(view, width="stretch", caption=f"What {md(clf.id)} sees ({view.shape[0]}×{view.shape[1]})")
    names = clf.class_names
    if pred == item.label:
        st.success(f"Correct: **{md(names[pred])}** ({probs[pred]:.2f})", icon=":material/check_circle:")
    else:
        st.error(f"True **{md(names[item.label])}** ({probs[item.label]:.2f}) · predicted **{md(names[pred])}** "
                 f"({probs[pred]:.2f})", icon=":material/error:")
    top = np.argsort(-probs)[:5]
    st.caption("Top 5: " + " · ".join(f"{md(names[i])} {probs[i]:.2f}" for i in top))
    return view, probs


def _param_widget(method: str, p: Param, default):
    key = f"rp_{method}_{p.name}"
    if p.kind == "choice":
        options = ([None] if p.optional else []) + list(p.choices)
        return st.selectbox(p.name, options, persist_state="session", key=key, help=p.help, format_func=lambda v: "automatic" if v is None else v)
    if p.kind == "path":
        return st.text_input(p.name, persist_state="session", key=key, help=p.help, placeholder="automatic") or None
    if p.optional:
        options = [None, 224, 512, 768, 1024]
        return st.selectbox(p.name, options, persist_state="session", key=key, help=p.help,
                            format_func=lambda v: "as the view" if v is None else f"{v} px")
    if p.kind == "int":
        return st.slider(p.name, int(p.low), int(p.high), int(default), int(p.step or 1), persist_state="session", key=key, help=p.help)
    return st.number_input(p.name, float(p.low), float(p.high), float(default), float(p.step or 0.01), persist_state="session", key=key,
                           help=p.help, format="%.4g")


def _region_params(method: str) -> dict:
    spec = REGION_METHODS[method]
    params = {}
    for p in spec.params:
        default = p.default
        if method == "slico" and p.name == "region_size" and not resources.on_gpu():
            default = CPU_SLICO_SIZE
        params[p.name] = _param_widget(method, p, default)
    params["min_area"] = st.slider("merge regions smaller than (px)", 0, 2000, 0, 50, persist_state="session", key=f"rp_{method}_min_area",
                                   help="0 keeps every region; otherwise small regions join their longest-bordering neighbour.")
    return params


def _sam_labels(view: np.ndarray, params: dict, status, source: np.ndarray | None) -> np.ndarray | None:
    """SAM runs as a background job (minutes on a CPU); its label maps are kept by input."""
    manager = resources.job_manager()
    sam_params = {k: v for k, v in params.items() if k not in ("checkpoint", "model_type", "min_area")}
    key = "sam:" + resources.short_hash(resources.digest(view) + json.dumps(params, sort_keys=True, default=str)
                                        + str(status.checkpoint))
    job = manager.get(key)
    if job is not None and job.status == "done":
        return job.result
    if job is not None and job.active:
        state.put("sam_job", key)
        return None
    checkpoint, model_type = str(status.checkpoint), params.get("model_type") or status.model_type

    def make_iter():
        from explainer.regions import merge_small_regions
        from explainer.sam import sam_regions

        sam = resources.load_sam_shared(checkpoint, model_type)
        device = str(next(sam.parameters()).device)
        labels = sam_regions(view, sam=sam, source=source, device=device, **sam_params)
        if params.get("min_area"):
            labels = merge_small_regions(labels, int(params["min_area"]))
        yield components.Finished(labels)

    def start() -> None:
        components.start_job("sam_job", manager.submit(key, "sam", "Segmenting with SAM", make_iter))

    components.finished_job("sam_job")
    components.show_outcome("sam_job")
    st.button("Segment with SAM", on_click=start, icon=":material/auto_awesome:", key="sam_button",
              help="SAM takes seconds on a GPU and one to three minutes on a CPU; the masks are kept for this image.")
    return None


def _regions_panel(ctx: Context, item: ImageItem, view: np.ndarray) -> tuple[np.ndarray | None, dict]:
    status = sam_status()
    labels_of = {m: REGION_METHODS[m].label for m in METHOD_ORDER}
    if not status.available:
        labels_of["sam"] += " (unavailable)"
    method = st.selectbox("Regions", METHOD_ORDER, persist_state="session", key="region_method", format_func=labels_of.get,
                          help="How the image is split into interpretable regions.")
    st.caption(REGION_METHODS[method].description)
    if method == "sam" and not status.available:
        st.warning(md(status.reason), icon=":material/block:")
        return None, {"method": method}
    with st.expander("Parameters", expanded=False, icon=":material/tune:"):
        params = _region_params(method)
    clean = {k: v for k, v in params.items() if v is not None and not (k == "min_area" and v == 0)}
    if method == "sam":
        res = params.get("resolution")
        source = ctx.clf.view(item.load(), size=int(res)) if res else None   # same crop, more detail
        labels = _sam_labels(view, params, status, source)
        components.job_panel("sam_job")
        clean["checkpoint"] = status.checkpoint.name if status.checkpoint else None
    else:
        try:
            labels = resources.region_map(resources.digest(view), method, json.dumps(clean, sort_keys=True), view)
        except LimaError as exc:
            st.error(md(exc))
            return None, {"method": method, "params": clean}
    if labels is not None:
        stats = region_stats(labels)
        st.image(render.draw_boundaries(view, labels), width="stretch")
        st.caption(f"**{stats.count} regions** · smallest {stats.smallest_px} px ({100 * stats.smallest_fraction:.1f} %) · "
                   f"largest {stats.largest_px} px ({100 * stats.largest_fraction:.1f} %)")
    return labels, {"method": method, "params": clean}


def _target_panel(ctx: Context, item: ImageItem, probs: np.ndarray) -> tuple[int, int]:
    names = ctx.clf.class_names
    pred = int(np.argmax(probs))
    # Radio options are Markdown: class names of a user's model are escaped.
    modes = {"true": f"True class: {md(names[item.label])}", "predicted": f"Predicted class: {md(names[pred])}",
             "other": "Another class"}
    if pred == item.label:
        modes["predicted"] = f"Predicted (= true): {md(names[pred])}"
    mode = st.radio("Explain", list(modes), format_func=modes.get, persist_state="session", key="target_mode",
                    help="For a mistake the default asks: what evidence supports the right answer? "
                         "The other class is followed on the same path.")
    if mode == "true":
        target = item.label
    elif mode == "predicted":
        target = pred
    else:
        target = components.class_picker("Class to explain", names, persist_state="session", key="target_other", index=item.label)
    # Follow the prediction (or, when explaining the prediction of a mistake, the true class);
    # for a correct image the engine's default, the runner-up.
    tracked = item.label if target == pred != item.label else default_tracked(probs, target)
    st.caption(f"Following **{md(names[tracked])}** on the same path.")
    return int(target), int(tracked)


def _search_panel(ctx: Context) -> dict:
    c1, c2 = st.columns(2)
    search = c1.radio("Search", ["bidirectional", "greedy"], persist_state="session", key="search_kind", horizontal=True,
                      format_func={"bidirectional": "Bidirectional (LiMA)", "greedy": "Greedy (SMDL)"}.get)
    pending = c2.number_input("Pending samples", 1, 64, 8, persist_state="session", key="pending",
                              help="Candidates the backward step re-scores (LiMA's default 8).")
    weights = dict(DEFAULT_WEIGHTS)
    with st.expander("Advanced: objective weights, fill, tolerance", icon=":material/settings:"):
        cols = st.columns(4)
        for col, term in zip(cols, TERMS):
            disabled = term == "effectiveness" and not ctx.clf.has_embeddings
            weights[term] = col.number_input(term, *WEIGHT_RANGE, float(DEFAULT_WEIGHTS[term]), persist_state="session", key=f"w_{term}",
                                             format="%.4g", disabled=disabled,
                                             help="Needs embeddings from the model." if disabled else None)
        f1, f2 = st.columns(2)
        fill = f1.selectbox("Removed pixels", ["black", "mean", "blur"], persist_state="session", key="fill",
                            help="Black is the paper's baseline; mean colour or a blur are alternatives.")
        tolerance = f2.number_input("Minimal-subset tolerance", 0.0, 0.2, 0.005, 0.001, persist_state="session", key="tolerance", format="%.3f")
    return {"search": search, "pending": int(pending), "weights": weights, "fill": fill, "tolerance": float(tolerance)}


def setup_section(ctx: Context) -> Plan | None:
    """Draw the set-up and return the plan for a run (None while regions are missing)."""
    clf, image_set = ctx.require_model(), ctx.require_set()
    scan = resources.scan_cache().get(clf, image_set)
    left, mid, right = st.columns([1.05, 1.05, 1.3], gap="medium")
    with left:
        st.markdown("##### 1 · Image")
        item = _pick_item(ctx, scan)
        view, probs = _image_panel(ctx, item)
    with mid:
        st.markdown("##### 2 · Regions")
        labels, region_info = _regions_panel(ctx, item, view)
    with right:
        st.markdown("##### 3 · Target and search")
        target, tracked = _target_panel(ctx, item, probs)
        config = _search_panel(ctx)
    key = None
    if labels is not None:
        key = store.run_key(clf.describe(), view, labels, target, tracked, config)
    return Plan(item, view, labels, region_info, target, tracked, config, key)


def cost_and_run(ctx: Context, plan: Plan) -> None:
    """The cost preview and the Run button (which reuses a saved run with the same inputs)."""
    clf = ctx.clf
    components.show_outcome("search_job")
    running = components.job_panel("search_job")
    if plan.labels is None:
        st.info("Choose regions first (SAM needs its segmentation).")
        return
    n = int(plan.labels.max()) + 1
    passes = forward_pass_count(n, plan.config["search"], plan.config["pending"])
    saved = resources.run_store().has(plan.key)
    rate = resources.search_rate(ctx.model_key, clf)
    c1, c2 = st.columns([3, 1.2], vertical_alignment="center")
    if saved:
        c1.success("A saved run with exactly these inputs exists: it opens instantly, nothing is recomputed.",
                   icon=":material/history:")
    else:
        c1.info(f"**{n} regions** · up to **{passes:,} forward passes** · {components.format_seconds(passes / rate)} "
                f"on {md(resources.device_name())} (this model runs {rate:.0f} images/s here)", icon=":material/timer:")
    busy = running is not None and running.active
    c2.button("Open saved run" if saved else "Run LiMA", type="primary", icon=":material/play_arrow:",
              on_click=start_run, args=(ctx, plan), disabled=busy, width="stretch", key="run_button")


def start_run(ctx: Context, plan: Plan) -> None:
    """Run button callback: open the saved run, or start the search in the background."""
    runs = resources.run_store()
    if runs.has(plan.key):
        state.put("run_key", plan.key)
        state.put("step_run", None)
        return
    clf = ctx.clf
    source = {"name": plan.item.name, "key": plan.item.key, "digest": plan.item.source_digest(),
              "label": plan.item.label, "set": ctx.image_set.name}

    def make_iter():
        return iter_search(clf, plan.view, plan.labels, plan.target, tracked=plan.tracked, regions=plan.region_info,
                           source=source, **plan.config)

    label = f"LiMA on {plan.item.name}"
    def on_done(exp) -> None:
        runs.save(exp, plan.key)
        resources.remember_rate(ctx.model_key, exp.forward_passes / max(exp.wall_time_s, 1e-9))

    job = resources.job_manager().submit(plan.key, "search", label, make_iter, on_done=on_done)
    components.start_job("search_job", job)
