"""The Explain page's result: readout, metrics, the step-through fragment, heatmaps, exports.

Stepping and playing happen in the browser (``ui/player.py``); the server hears the step when
the viewer stops, which reruns only the step fragment. The URL carries the run and the step
(``?run=KEY&step=K``), so a link reopens exactly this view.
"""

from __future__ import annotations

from urllib.parse import urlencode

import pandas as pd
import streamlit as st

from explainer import export, figures, slides, steps, whatif
from explainer.explanation import Explanation
from explainer.models import Classifier
from ui import components, explain_compare, explain_partitions, player, resources, sidebar, state
from ui.text import md, safe_filename

STEP_KEY = "step"
HIDDEN_KEY = "hidden"
HIDDEN_CHOICES = {"black": "Black", "dim": "Dimmed"}


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


def _set_step(value: int, n: int) -> None:
    st.session_state[STEP_KEY] = min(max(int(value), 0), n)


# -- the step-through -----------------------------------------------------------------------------


def _step_body(exp: Explanation, key: str, clf: Classifier | None = None) -> None:
    """The in-browser player (stepping and playing need no server), then what depends on the
    step the viewer stopped on: this view's PNG, every compared method, the share link."""
    n = exp.n_regions
    top = st.columns([3, 1.3], vertical_alignment="bottom")
    hidden = (
        top[1].segmented_control(
            "Hidden regions", list(HIDDEN_CHOICES), key=HIDDEN_KEY, required=True, format_func=HIDDEN_CHOICES.get
        )
        or "black"
    )
    top[0].caption(
        "Step with ← →, Home and End, play with space, or click the curve. "
        "Yellow: the region added at that step; green dashes: the minimal subset."
    )
    reported = player.step_player(exp, key, st.session_state[STEP_KEY], hidden, "inline", resources.source_view(key))
    if reported["step"] is not None:
        _set_step(reported["step"], n)
    step = st.session_state[STEP_KEY]
    link = share_params(key, step, hidden)
    if st.query_params.get(SHOWN_PARAM) is not None:  # the what-if subset rides along
        link[SHOWN_PARAM] = st.query_params[SHOWN_PARAM]
    link = sidebar.with_set(link)  # and the image set, so a reload keeps it
    if dict(st.query_params) != link:
        st.query_params.from_dict(link)  # one URL update, not two

    left, right = st.columns([3, 1.3], vertical_alignment="center")
    left.caption(
        f"Exports, compared methods and the share link use step {step} of {n} (where the player last "
        f"stopped): {md(steps.caption(exp, step))}."
    )
    right.download_button(
        "PNG of this view",
        data=lambda: export.step_png(exp, step, hidden, source=resources.source_view(key)),
        file_name=f"{download_stem(exp, key)}-step{step}.png",
        mime="image/png",
        icon=":material/image:",
        on_click="ignore",
        key="dl_step_png",
        width="stretch",
    )
    explain_compare.step_row(exp, clf, step, hidden)  # every compared method at the same step
    _share_code("Share this view:", link)


def _share_code(caption: str, params: dict[str, str]) -> None:
    """A copyable link to this page with ``params``."""
    url = (st.context.url or "").split("?")[0]
    st.caption(caption)
    st.code(f"{url}?" + urlencode(params, safe=":/."), language=None)  # a set's path may hold any character


def hidden_look(value: object) -> str:
    """``value`` if it is a look of hidden regions ("black" or "dim"), else "black"."""
    return value if isinstance(value, str) and value in HIDDEN_CHOICES else "black"


def hidden_choice() -> str:
    """The look of hidden regions chosen on this page now."""
    return hidden_look(st.session_state.get(HIDDEN_KEY))


def share_params(key: str, step: int, hidden: str) -> dict[str, str]:
    """The query parameters of a shared view: ``run`` and ``step`` (kept stable in every version,
    since links live on in papers and slides), and ``hidden=dim`` when context is dimmed."""
    params = {"run": key, "step": str(step)}
    if hidden != "black":
        params["hidden"] = hidden
    return params


def step_through(exp: Explanation, key: str, clf: Classifier | None = None) -> None:
    st.fragment(_step_body)(exp, key, clf)


# -- what-if by hand ---------------------------------------------------------------------------------

SHOWN_PARAM = "shown"  # ?shown=3.7.12: the what-if subset of a shared view


def parse_shown(text: str | None, n: int) -> list[int] | None:
    """The region ids of a ``shown`` link parameter ("3.7.12"; "" or "none" = no region), or
    None when it is absent or malformed (a link may carry any text)."""
    if text is None:
        return None
    text = text.strip()
    if text in ("", "none"):
        return []
    parts = text.split(".")
    if len(parts) > n or not all(p.isdigit() and len(p) <= 4 for p in parts):
        return None
    ids = sorted({int(p) for p in parts})
    return ids if all(0 <= r < n for r in ids) else None


def format_shown(shown: list[int]) -> str:
    return ".".join(str(r) for r in sorted(shown)) or "none"


def _whatif_state(exp: Explanation, key: str) -> dict:
    """This session's what-if state for run ``key``: the subset shown, the nonce of the last
    subset the server chose (a link, a preset, a flip), the browser's last report, a note."""
    store = st.session_state.setdefault("_whatif", {})
    if key not in store:
        linked = (
            parse_shown(st.query_params.get(SHOWN_PARAM), exp.n_regions) if st.query_params.get("run") == key else None
        )
        if st.query_params.get(SHOWN_PARAM) is not None and linked is None:
            st.warning("The link's hand-picked regions are not regions of this run; starting from the minimal subset.")
        shown = linked if linked is not None else sorted(int(r) for r in exp.minimal_subset)
        store[key] = {"shown": shown, "nonce": 0, "seen": None, "note": None, "from_link": linked is not None}
    return store[key]


@st.cache_resource(max_entries=256, show_spinner=False)
def _score(key: str, shown: tuple[int, ...], _clf: Classifier, _exp: Explanation) -> dict:
    scored = whatif.score_subset(_clf, _exp, shown)
    return {
        "shown": list(scored.shown),
        "area": scored.area,
        "p_target": float(scored.probs[_exp.target]),
        "p_predicted": float(scored.probs[_exp.full_prediction]),
        "top": [list(t) for t in scored.top(_exp.class_names, 5)],
    }


def _flip(exp: Explanation, key: str, clf: Classifier, want: int) -> None:
    w = _whatif_state(exp, key)
    found = whatif.flip(clf, exp, want)
    name = md(exp.class_name(want))
    if not found.found:
        w["note"] = (
            "warning",
            f"No run of regions along LiMA's order, removed from either end, makes the model predict {name}.",
        )
        return
    assert found.scored is not None
    w["shown"] = list(found.scored.shown)
    w["nonce"] += 1
    removed = ", ".join(str(r) for r in found.removed)
    share = 100 * (1 - found.scored.area)
    end = "LiMA's top regions" if found.end == "head" else "the regions LiMA ranked last"
    w["note"] = (
        "success",
        f"Removing {len(found.removed)} region{'s' if len(found.removed) != 1 else ''} ({removed}; {share:.1f} % of "
        f"the image, {end}) makes the model predict {name} (p = {found.scored.probs[want]:.3f}), checked with a "
        "forward pass.",
    )


def _whatif_body(exp: Explanation, key: str, clf: Classifier) -> None:
    w = _whatif_state(exp, key)
    reported = (st.session_state.get(player.whatif_key(key)) or {}).get("shown")
    if reported is not None and reported != w["seen"]:
        w["seen"] = reported  # the browser's latest subset (a click or a preset)
        w["shown"] = sorted({int(r) for r in reported if 0 <= int(r) < exp.n_regions})
        w["note"] = None
    result = _score(key, tuple(w["shown"]), clf, exp)
    player.whatif_canvas(
        exp,
        key,
        w["shown"],
        w["nonce"],
        st.session_state.get(STEP_KEY, exp.minimal_subset_size),
        result,
        resources.source_view(key),
    )
    label = exp.source.get("label")
    choices = [int(label)] if label is not None and int(label) != exp.full_prediction else []
    choices += [c for c, _, _ in exp.top_classes(exp.n_regions, 10) if c not in choices and c != exp.full_prediction]
    cols = st.columns([2, 1.2], vertical_alignment="bottom")
    want = cols[0].selectbox(
        "Flip the prediction to",
        choices,
        format_func=lambda c: (
            exp.class_name(c) + (" (the true class)" if label is not None and c == int(label) else "")
        ),
        key=f"flip_class_{key}",
        help="The fewest regions to remove, taken along LiMA's order from either end, so that the model "
        "predicts this class; the answer is checked with a forward pass.",
    )
    cols[1].button(
        "Find the fewest regions to remove",
        on_click=_flip,
        args=(exp, key, clf, want),
        key=f"flip_{key}",
        icon=":material/swap_horiz:",
        width="stretch",
    )
    if w["note"]:
        kind, text = w["note"]
        (st.success if kind == "success" else st.warning)(text)
    default = sorted(int(r) for r in exp.minimal_subset)
    if w["shown"] != default or w["from_link"]:
        st.query_params[SHOWN_PARAM] = format_shown(w["shown"])
        # The step's share link above was drawn before this subset was picked (another
        # fragment), so the subset gets a link of its own.
        _share_code("Share these regions:", dict(st.query_params))
    else:
        st.query_params.pop(SHOWN_PARAM, None)


def whatif_section(exp: Explanation, key: str, clf: Classifier | None) -> None:
    st.markdown("##### What if? Hide or show regions by hand")
    if not explain_compare.same_model(exp, clf):
        st.info(
            f"What-if asks the run's own model ({md(exp.model.get('id', 'unknown'))}); pick it in the sidebar to "
            "hide and show regions here.",
            icon=":material/info:",
        )
        return
    assert clf is not None
    st.caption(
        "Click regions on the image to hide or show them: the model scores the regions left visible at once "
        "(one forward pass; hidden pixels filled as in the search). The chosen regions go into the share link."
    )
    st.fragment(_whatif_body)(exp, key, clf)


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
                (
                    "Slides (MP4, captioned)",
                    lambda: slides.mp4_bytes(exp, resources.source_view(key), hidden),
                    f"{stem}-slides.mp4",
                    "video/mp4",
                ),
                (
                    "Slides (GIF, captioned)",
                    lambda: slides.gif_bytes(exp, resources.source_view(key), hidden),
                    f"{stem}-slides.gif",
                    "image/gif",
                ),
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
    whatif_section(exp, key, clf)
    st.divider()
    explain_partitions.partitions_section(exp, key, clf)
    st.divider()
    explain_compare.compare_section(exp, key, clf)
    st.divider()
    left, right = st.columns([1, 1], gap="large")
    with left:
        _heatmaps(exp)
    with right:
        _exports(exp, key)
        _provenance(exp)
