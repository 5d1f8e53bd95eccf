"""The Explain page's set-up: image, regions (with live preview), target, search, cost, Run."""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import streamlit as st

from explainer import render, store
from explainer.config import SearchOptions
from explainer.data import ImageItem
from explainer.errors import LimaError
from explainer.objective import Weights
from explainer.progress import Done
from explainer.regions import REGION_METHODS, RegionSpec, propose_regions, region_stats
from explainer.sam import SAM_CPU_PRESET, SAM_STAGE_SECONDS, SamOptions, sam_cost_s, sam_status
from explainer.search import forward_pass_count, iter_search, tracked_beside
from explainer.source_view import source_view
from ui import components, forms, public, resources, state
from ui.sidebar import Context
from ui.text import md, md_message

_LOG = logging.getLogger("lima_lens.ui")

CPU_SLICO_SIZE = 36  # about 36 regions: a CPU run finishes in well under 30 s


@dataclass
class Plan:
    """Everything a run needs, and its key."""

    item: ImageItem
    view: np.ndarray
    labels: np.ndarray | None
    regions: RegionSpec
    target: int
    tracked: int
    config: SearchOptions | None
    key: str | None

    @property
    def ready(self) -> bool:
        return self.labels is not None and self.config is not None and self.key is not None


PICKER_LIMIT = 200  # options in the Image picker: a 50,000-image set never lands in one menu


_INDEX_POOL = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lima-search-index")


def _build_search_index(image_set, class_names: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    return tuple((it.key, f"{it.name}\n{it.key}\n{class_names[it.label]}".lower()) for it in image_set.items)


@st.cache_resource(max_entries=4, show_spinner=False)
def _search_index_job(set_key: str, _image_set, _class_names: tuple[str, ...]) -> Future:
    """(item key, lower-case "name key class") per item of the set, built once per set version
    on a background thread: started when the picker is first drawn, so the first search does not
    wait for it (at 50,000 images it takes a few tenths of a second)."""
    return _INDEX_POOL.submit(_build_search_index, _image_set, _class_names)


def _search_index(set_key: str, image_set, class_names: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    return _search_index_job(set_key, image_set, class_names).result()


def picker_options(ctx: Context, scan, query: str, limit: int | None = None) -> tuple[list[str], int]:
    """Keys for the Image picker: the scan's mistakes first (most confidently wrong first), then
    the other images in set order; only those whose name, key or true class contains ``query``
    (case-insensitive). At most ``limit`` (default :data:`PICKER_LIMIT`); also returns how many
    matched in all. Kept per set version, scan and query: every rerun of the Explain page draws
    the picker, and at 50,000 images (5,500 mistakes) working it out costs about 50 ms."""
    limit = limit or PICKER_LIMIT
    needle = query.strip().lower()
    scan_id = (scan.created, scan.model_id, scan.weights_hash, len(scan.rows)) if scan else None
    key = (ctx.set_key, ctx.model_key, scan_id, needle, limit)
    with _PICKED_LOCK:  # sessions run on their own threads
        found = _PICKED.get(key)
        if found is not None:
            _PICKED.move_to_end(key)
    if found is None:
        found = _picker_options(ctx, scan, needle, limit)  # outside the lock: others need not wait
        with _PICKED_LOCK:
            _PICKED[key] = found
            while len(_PICKED) > 64:
                _PICKED.popitem(last=False)
    return list(found[0]), found[1]


_PICKED: OrderedDict[tuple, tuple[tuple[str, ...], int]] = OrderedDict()  # see picker_options
_PICKED_LOCK = threading.Lock()


def _picker_options(ctx: Context, scan, needle: str, limit: int) -> tuple[tuple[str, ...], int]:
    image_set = ctx.image_set
    if needle:
        matching = {key for key, text in _search_index(ctx.set_key, image_set, ctx.clf.class_names) if needle in text}
    mistakes = [r.key for r in scan.mistakes()] if scan else []
    ordered: list[str] = []
    seen: set[str] = set()
    total = 0
    for key in mistakes:
        if (not needle or key in matching) and image_set.item(key) is not None and key not in seen:
            seen.add(key)
            total += 1
            if len(ordered) < limit:
                ordered.append(key)
    for it in image_set.items:
        if it.key in seen or (needle and it.key not in matching):
            continue
        total += 1
        if len(ordered) < limit:
            ordered.append(it.key)
        elif not needle:
            return tuple(ordered), len(image_set)  # nothing left to count: every item matches
    return tuple(ordered), total


def _pick_item(ctx: Context, scan) -> ImageItem:
    """The chosen image: a link's or Find errors' choice, else the most confidently wrong."""
    image_set = ctx.image_set
    wanted = state.get("item_key")
    if image_set.item(wanted) is None:
        first_mistake = next((r.key for r in scan.mistakes() if image_set.item(r.key)), None) if scan else None
        wanted = first_mistake or image_set.items[0].key
        state.put("item_key", wanted)
    st.session_state["_item"] = wanted  # follow the data key (Find errors may set it)
    st.fragment(_picker)(ctx, scan, wanted)
    return image_set.item(wanted)  # type: ignore[return-value]


def _picker(ctx: Context, scan, shown: str) -> None:
    """The search box and the Image menu. A fragment: typing a search reruns only this part
    (at 50,000 images the rest of the page costs far more); choosing another image than
    ``shown`` (the one the page below was drawn for) reruns the whole page."""
    image_set = ctx.image_set
    mistakes = scan.mistake_keys if scan else frozenset()

    def changed() -> None:
        state.put("item_key", st.session_state["_item"])
        if "image" in st.query_params:  # keep a deep link in step with the choice
            st.query_params["image"] = st.session_state["_item"]

    query = st.text_input(
        "Find an image",
        key="_item_query",
        placeholder="file name or class",
        help="Searches every image of the set; the menu below lists the matches, mistakes first.",
    )
    _search_index_job(ctx.set_key, image_set, ctx.clf.class_names)  # built ahead of the first search
    options, total = picker_options(ctx, scan, query)
    chosen = st.session_state.get("_item") or shown
    if chosen not in options:
        options = [chosen, *options]  # the chosen image is always in the menu
    names = ctx.clf.class_names

    def label(k: str) -> str:
        it = image_set.item(k)
        return f"{it.name}  ·  {names[it.label]}" + ("  ·  misclassified" if k in mistakes else "")

    picked = st.selectbox("Image", options, key="_item", on_change=changed, index=None, format_func=label)
    if total > PICKER_LIMIT or query.strip():
        st.caption(
            f"{total:,} image{'s' if total != 1 else ''} match"
            + (f"; the menu shows the first {PICKER_LIMIT}: narrow the search" if total > PICKER_LIMIT else "")
            + (f" (of {len(image_set):,})" if query.strip() else "")
        )
    if picked is not None and picked != shown:
        st.rerun()  # the whole page, for the new image


def _image_panel(ctx: Context, item: ImageItem) -> tuple[np.ndarray, np.ndarray]:
    clf = ctx.clf
    try:
        view = resources.view_of(ctx.model_key, ctx.set_key, item.key, clf, item)
    except LimaError as exc:
        st.error(f"This image cannot be used: {md_message(exc)}")
        components.stop_page()
    probs = resources.probabilities(ctx.model_key, resources.digest(view), clf, view)
    pred = int(np.argmax(probs))
    st.image(view, width="stretch", caption=f"What {md(clf.id)} sees ({view.shape[0]}×{view.shape[1]})")
    names = clf.class_names
    if pred == item.label:
        st.success(f"Correct: **{md(names[pred])}** ({probs[pred]:.2f})", icon=":material/check_circle:")
    else:
        st.error(
            f"True **{md(names[item.label])}** ({probs[item.label]:.2f}) · predicted **{md(names[pred])}** "
            f"({probs[pred]:.2f})",
            icon=":material/error:",
        )
    top = np.argsort(-probs)[:5]
    st.caption("Top 5: " + " · ".join(f"{md(names[i])} {probs[i]:.2f}" for i in top))
    return view, probs


def _region_defaults(method: str):
    """The method's default options, with the CPU preset: SLICO at about 36 regions on a CPU."""
    spec = REGION_METHODS.get(method)
    if method == "slico" and not resources.on_gpu():
        return spec.options().replace(region_size=CPU_SLICO_SIZE)
    if method == "sam" and not resources.on_gpu():
        return SAM_CPU_PRESET  # 8×8 prompts: a laptop's CPU segments in about 30 s
    return spec.options()


def sam_cost_caption(options: SamOptions) -> str:
    """What SAM will cost with these settings, and where the figure comes from."""
    from explainer import sam_runtime

    device = "cuda" if resources.on_gpu() else "cpu"
    stages = SAM_STAGE_SECONDS[device]
    onnx = sam_runtime.wants_onnx(device)
    prompts = options.points_per_side**2
    batches = -(-prompts // options.points_per_batch)
    where = "this CPU" if device == "cpu" else "the GPU"
    encoder = stages["encoder_onnx_s" if onnx else "encoder_s"]
    runtime = " on ONNX Runtime" if onnx else ""
    export_s = stages["onnx_export_s"]
    first_use = (
        f" A checkpoint's first SAM run here also exports the encoder (~{export_s:.0f} s, once)." if onnx else ""
    )
    return (
        f"SAM with these settings: about **{sam_cost_s(options, device, onnx=onnx):.0f} s** on {where} "
        f"(image encoder ~{encoder:.0f} s{runtime}, once per image and then cached; "
        f"{prompts} prompts in {batches} decoder batches of {options.points_per_batch}, "
        f"~{stages['decoder_per_prompt_s']:.2f} s a prompt). Stage times of ViT-B measured on a 2-core CPU "
        f"(README, SAM on a laptop).{first_use}"
    )


def _sam_labels(view: np.ndarray, options: SamOptions, status, source: np.ndarray | None) -> np.ndarray | None:
    """SAM runs as a background job (minutes on a CPU); its label maps are kept by input."""
    manager = resources.job_manager()
    key = "sam:" + resources.short_hash(
        resources.digest(view) + json.dumps(options.to_dict(), sort_keys=True) + str(status.checkpoint)
    )
    job = manager.get(key)
    if job is not None and job.status == "done":
        return job.result
    if job is not None and job.active:
        state.put("sam_job", key)
        return None
    checkpoint, model_type = str(status.checkpoint), options.model_type or status.model_type

    def make_iter():
        sam = resources.load_sam_shared(checkpoint, model_type)
        device = str(next(sam.parameters()).device)
        labels = propose_regions(view, "sam", options, sam=sam, source=source, device=device)
        yield Done(labels, "segmented")

    def start() -> None:
        components.start_job("sam_job", manager.submit(key, "sam", "Segmenting with SAM", make_iter))

    components.finished_job("sam_job")
    components.show_outcome("sam_job")
    st.caption(sam_cost_caption(options))
    st.button(
        "Segment with SAM",
        on_click=start,
        icon=":material/auto_awesome:",
        key="sam_button",
        help="SAM takes seconds on a GPU; on a CPU see the estimate above. The masks are kept for this image.",
    )
    return None


def _regions_panel(ctx: Context, item: ImageItem, view: np.ndarray) -> tuple[np.ndarray | None, RegionSpec]:
    methods = {m.name: m for m in REGION_METHODS}
    labels_of = {}
    for name, m in methods.items():
        available, _ = m.availability()
        labels_of[name] = m.label + ("" if available else " (unavailable)")
    method = st.selectbox(
        "Regions",
        list(methods),
        persist_state="session",
        key="region_method",
        format_func=labels_of.get,
        help="How the image is split into interpretable regions.",
    )
    spec = methods[method or "slico"]
    st.caption(md(spec.description))
    available, reason = spec.availability()
    refusal = public.run_refusal(0, 0, spec.name)  # SAM needs a model file on the server
    if refusal:
        available, reason = False, refusal
    if not available:
        st.warning(md_message(reason), icon=":material/block:")
        return None, RegionSpec(spec.name)
    with st.expander("Parameters", expanded=False, icon=":material/tune:"):
        options = forms.options_form(spec.options, f"rp_{spec.name}", _region_defaults(spec.name))
    if options is None:
        return None, RegionSpec(spec.name)
    if spec.slow_on_cpu:
        res = getattr(options, "resolution", None)
        source = ctx.clf.view(item.load(), size=int(res)) if res else None  # same crop, more detail
        labels = _sam_labels(view, options, sam_status(), source)
        components.job_panel("sam_job")
    else:
        try:
            labels = resources.region_map(
                resources.digest(view), spec.name, json.dumps(options.to_dict(), sort_keys=True), view
            )
        except LimaError as exc:
            st.error(md_message(exc))
            return None, RegionSpec(spec.name, options)
    if labels is not None:
        stats = region_stats(labels)
        st.image(render.draw_boundaries(view, labels), width="stretch")
        st.caption(
            f"**{stats.count} regions** · smallest {stats.smallest_px} px ({100 * stats.smallest_fraction:.1f} %) · "
            f"largest {stats.largest_px} px ({100 * stats.largest_fraction:.1f} %)"
        )
    return labels, RegionSpec(spec.name, options)


def _target_panel(ctx: Context, item: ImageItem, probs: np.ndarray) -> tuple[int, int]:
    names = ctx.clf.class_names
    pred = int(np.argmax(probs))
    # Radio options are Markdown: class names of a user's model are escaped.
    modes = {
        "true": f"True class: {md(names[item.label])}",
        "predicted": f"Predicted class: {md(names[pred])}",
        "other": "Another class",
    }
    if pred == item.label:
        modes["predicted"] = f"Predicted (= true): {md(names[pred])}"
    mode = st.radio(
        "Explain",
        list(modes),
        format_func=modes.get,
        persist_state="session",
        key="target_mode",
        help="For a mistake the default asks: what evidence supports the right answer? "
        "The other class is followed on the same path.",
    )
    if mode == "true":
        target = item.label
    elif mode == "predicted":
        target = pred
    else:
        target = components.class_picker(
            "Class to explain", names, persist_state="session", key="target_other", index=item.label
        )
    # Follow the prediction (or, when explaining the prediction of a mistake, the true class);
    # for a correct image the engine's default, the runner-up.
    tracked = tracked_beside(probs, target, item.label)
    role = "the prediction" if tracked == pred else "the true class" if tracked == item.label else "the runner-up"
    st.caption(f"Also charted: **{md(names[tracked])}** ({role}), scored on the same regions in the same order.")
    return int(target), int(tracked)


def _search_panel(ctx: Context) -> SearchOptions | None:
    """The search settings, generated from SearchOptions: kind and pending first, the rest
    (weights, fill, tolerance) under "Advanced"."""
    main_fields = [SearchOptions.field("search"), SearchOptions.field("pending")]
    c1, c2 = st.columns(2)
    values = {
        f.name: forms.field_widget(f, forms.key_of("search", f.name), f.default, col)
        for f, col in zip(main_fields, (c1, c2))
    }
    with st.expander("Advanced: objective weights, fill, tolerance", icon=":material/settings:"):
        no_embeddings = "" if ctx.clf.has_embeddings else "Needs embeddings from the model."
        weights = forms.options_form(
            Weights, "search_weights", columns=4, disabled={"effectiveness": no_embeddings} if no_embeddings else None
        )
        f1, f2 = st.columns(2)
        for f, col in ((SearchOptions.field("fill"), f1), (SearchOptions.field("tolerance"), f2)):
            values[f.name] = forms.field_widget(f, forms.key_of("search", f.name), f.default, col)
    if weights is None:
        return None
    try:
        return SearchOptions.from_mapping({**values, "weights": weights})
    except LimaError as exc:
        st.error(md_message(exc))
        return None


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
        labels, regions = _regions_panel(ctx, item, view)
    with right:
        st.markdown("##### 3 · Target and search")
        target, tracked = _target_panel(ctx, item, probs)
        config = _search_panel(ctx)
    key = None
    if labels is not None and config is not None:
        key = store.run_key(clf.describe(), view, labels, target, tracked, config)
    return Plan(item, view, labels, regions, target, tracked, config, key)


def cost_and_run(ctx: Context, plan: Plan) -> None:
    """The cost preview and the Run button (which reuses a saved run with the same inputs)."""
    clf = ctx.clf
    components.show_outcome("search_job")
    if st.session_state.get("_public_refusal"):
        st.warning(md_message(st.session_state.pop("_public_refusal")), icon=":material/public:")
    running = components.job_panel("search_job")
    if plan.labels is None:
        st.info("Choose regions first (SAM needs its segmentation).")
        return
    if not plan.ready:
        st.info("Fix the search settings above to run.")
        return
    assert plan.config is not None and plan.key is not None
    n = int(plan.labels.max()) + 1
    passes = forward_pass_count(n, plan.config.search, plan.config.pending)
    saved = resources.run_store().has(plan.key)
    rate = resources.search_rate(ctx.model_key, clf)
    c1, c2 = st.columns([3, 1.2], vertical_alignment="center")
    if saved:
        c1.success(
            "A saved run with exactly these inputs exists: it opens instantly, nothing is recomputed.",
            icon=":material/history:",
        )
    else:
        c1.info(
            f"**{n} regions** · up to **{passes:,} forward passes** · {components.format_seconds(passes / rate)} "
            f"on {md(resources.device_name())} (this model runs {rate:.0f} images/s here)",
            icon=":material/timer:",
        )
    busy = running is not None and running.active
    refusal = (
        None
        if saved
        else (
            public.run_refusal(n, plan.config.pending, plan.regions.method)
            or public.job_refusal(resources.job_manager())
        )
    )
    if refusal:
        st.warning(md_message(refusal), icon=":material/public:")
    c2.button(
        "Open saved run" if saved else "Run LiMA",
        type="primary",
        icon=":material/play_arrow:",
        on_click=start_run,
        args=(ctx, plan),
        disabled=busy or refusal is not None,
        width="stretch",
        key="run_button",
    )


def start_run(ctx: Context, plan: Plan) -> None:
    """Run button callback: open the saved run, or start the search in the background."""
    runs = resources.run_store()
    if runs.has(plan.key):
        state.put("run_key", plan.key)
        state.put("step_run", None)
        return
    clf = ctx.clf
    refusal = public.job_refusal(resources.job_manager())  # checked again: two quick clicks
    if refusal:
        st.session_state["_public_refusal"] = refusal
        return
    source = {
        "name": plan.item.name,
        "key": plan.item.key,
        "digest": plan.item.source_digest(),
        "label": plan.item.label,
        "set": ctx.image_set.name,
    }

    def make_iter():
        return iter_search(
            clf,
            plan.view,
            plan.labels,
            plan.target,
            plan.config,
            tracked=plan.tracked,
            regions=plan.regions,
            source=source,
        )

    label = f"LiMA on {plan.item.name}"

    def on_done(exp) -> None:
        try:  # the crop at the photo's own resolution, for the presenter view and slides
            runs.save_source_view(plan.key, source_view(clf, plan.item.load()))
        except Exception:  # never worth losing the run for: frames fall back to the model's view
            _LOG.warning("no source-resolution crop for run %s", plan.key, exc_info=True)
        runs.save(exp, plan.key)
        resources.remember_rate(ctx.model_key, exp.forward_passes / max(exp.wall_time_s, 1e-9))

    job = resources.job_manager().submit(plan.key, "search", label, make_iter, on_done=on_done)
    components.start_job("search_job", job)
