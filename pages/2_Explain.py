"""Explain: split the image into regions, run LiMA, step through the result, export it."""

from __future__ import annotations

import streamlit as st

from explainer.store import StoreError
from ui import components, explain_result, explain_setup, page, presenter, resources, sidebar, state
from ui.text import md, md_message, shorten


def _follow_links(ctx: sidebar.Context, runs) -> None:
    """Deep links: ?run=KEY&step=K opens a saved run; ?image=KEY picks an image of the current set.

    Whatever a link carries is checked: a value that is no saved run or no image of the set gets
    a warning that names it, and the parameter is removed from the URL.
    """
    linked_run = st.query_params.get("run")
    if linked_run and linked_run != state.get("run_key"):
        if runs.has(linked_run):
            state.put("run_key", linked_run)
        else:
            st.warning(
                f"The linked run {md(shorten(linked_run, 48))} is not on this server; set up a new one below.",
                icon=":material/link_off:",
            )
            for name in ("run", "step", "hidden"):
                st.query_params.pop(name, None)
            linked_run = None
    linked_image = st.query_params.get("image")
    if linked_image and not linked_run and ctx.image_set is not None:
        if ctx.image_set.item(linked_image) is not None:
            state.put("item_key", linked_image)
        else:
            st.warning(
                f"The linked image {md(shorten(linked_image, 64))} is not in the image set "
                f"{md(ctx.image_set.name)}; showing another image.",
                icon=":material/link_off:",
            )
            st.query_params.pop("image", None)


def main() -> None:
    runs = resources.run_store()
    if presenter.requested():
        linked = st.query_params.get("run")
        if linked and runs.has(linked):
            presenter.show(runs, linked)
            return
        st.query_params.pop(presenter.VIEW_PARAM, None)
        st.warning(
            "The presenter view shows a saved run: open one (Saved runs, or a link with ?run=KEY) and press "
            "**Presenter view**.",
            icon=":material/slideshow:",
        )
    st.title("Explain")
    ctx = sidebar.context()
    _follow_links(ctx, runs)

    finished = components.finished_job("search_job")
    if finished is not None and finished.status == "done":
        state.put("run_key", finished.key)
        state.put("step_run", None)

    run_key = state.get("run_key")
    exp = None
    if run_key:
        try:
            exp = resources.explanation(run_key)
        except StoreError as exc:
            st.error(f"The saved run could not be read: {md_message(exc)}")
            state.put("run_key", None)

    with st.expander(
        "Set up a run" if exp is None else "Set up another run", expanded=exp is None, icon=":material/tune:"
    ):
        if ctx.clf is None or ctx.image_set is None:
            st.error(md_message(ctx.clf_error or ctx.set_error))
            ctx.set_error_shown()
        else:
            plan = explain_setup.setup_section(ctx)
            explain_setup.cost_and_run(ctx, plan)

    if exp is None:
        st.info(
            "Pick an image and regions above, then **Run LiMA**. Finished runs are saved and reopen instantly.",
            icon=":material/arrow_upward:",
        )
        return
    st.query_params.pop("image", None)
    label = exp.source.get("label")
    truth = f" · true {md(exp.class_name(int(label)))}" if label is not None else ""
    head, present = st.columns([5, 1], vertical_alignment="center")
    head.subheader(
        f"{md(exp.source.get('name', 'image'))}{truth} · predicted {md(exp.class_name(exp.full_prediction))} "
        f"· explaining {md(exp.class_name(exp.target))}"
    )
    present.page_link(
        page.EXPLAIN_PAGE,
        label="Presenter view",
        icon=":material/slideshow:",
        query_params=presenter.link_params(run_key, hidden=explain_result.hidden_choice()),
        help="Only the image and the curve, full screen, at the photo's resolution; ← → step, space plays, "
        "PageUp/PageDown go through the saved runs.",
    )
    explain_result.result_section(exp, run_key, ctx.clf)


page.render("Explain", main)
