"""Explain: split the image into regions, run LiMA, step through the result, export it."""

from __future__ import annotations

import streamlit as st

from explainer.store import StoreError
from ui import components, explain_result, explain_setup, page, resources, sidebar, state

page.setup("Explain", ":material/frame_inspect:")
st.title("Explain")
ctx = sidebar.context()
runs = resources.run_store()

# Deep links: ?run=KEY&step=K opens a saved run; ?image=KEY picks an image of the current set.
linked_run = st.query_params.get("run")
if linked_run and linked_run != state.get("run_key"):
    if runs.has(linked_run):
        state.put("run_key", linked_run)
    else:
        st.warning(f"The linked run `{linked_run}` is not on this server; set up a new one below.")
        del st.query_params["run"]
if st.query_params.get("image") and not linked_run:
    state.put("item_key", st.query_params["image"])

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
        st.error(f"The saved run could not be read: {exc}")
        state.put("run_key", None)

with st.expander("Set up a run" if exp is None else "Set up another run", expanded=exp is None,
                 icon=":material/tune:"):
    if ctx.clf is None or ctx.image_set is None:
        st.error(ctx.clf_error or ctx.set_error)
    else:
        plan = explain_setup.setup_section(ctx)
        explain_setup.cost_and_run(ctx, plan)

if exp is None:
    st.info("Pick an image and regions above, then **Run LiMA**. Finished runs are saved and reopen instantly.",
            icon=":material/arrow_upward:")
else:
    if "image" in st.query_params:
        del st.query_params["image"]
    label = exp.source.get("label")
    truth = f" · true {exp.class_name(int(label))}" if label is not None else ""
    st.subheader(f"{exp.source.get('name', 'image')}{truth} · predicted {exp.class_name(exp.full_prediction)} · "
                 f"explaining {exp.class_name(exp.target)}")
    explain_result.result_section(exp, run_key)
