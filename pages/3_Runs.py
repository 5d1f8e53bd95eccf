"""Runs: every saved explanation on this server; open, compare at a glance, delete."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from ui import page, resources, sidebar, state

page.setup("Runs", ":material/history:")
st.title("Saved runs")
sidebar.context()
runs = resources.run_store()
rows = runs.list()
st.caption(f"Stored in `{runs.root}` (set LIMA_RUNS_DIR to move them). A run with the same model, image, regions and "
           "settings is reused instead of recomputed.")
if not rows:
    st.info("No saved runs yet. Explain an image on the Explain page.")
    st.stop()
table = pd.DataFrame(rows)
table["insertion_auc"] = table["insertion_auc"].round(3)
table["deletion_auc"] = table["deletion_auc"].round(3)
table["wall_time_s"] = table["wall_time_s"].round(1)
event = st.dataframe(table[["created", "image", "target", "tracked", "model", "regions", "n_regions", "search",
                            "insertion_auc", "deletion_auc", "wall_time_s", "key"]],
                     hide_index=True, width="stretch", on_select="rerun", selection_mode="single-row", key="runs_table")
selected = event["selection"]["rows"] if event else []
if not selected:
    st.caption("Select a row to open or delete it.")
    st.stop()
row = rows[selected[0]]
c1, c2, _ = st.columns([1, 1, 4])
if c1.button("Open", type="primary", icon=":material/open_in_new:"):
    state.put("run_key", row["key"])
    state.put("step_run", None)
    st.switch_page(page.EXPLAIN_PAGE, query_params={"run": row["key"]})
if c2.button("Delete", icon=":material/delete:"):
    runs.delete(row["key"])
    resources.explanation.clear()
    if state.get("run_key") == row["key"]:
        state.put("run_key", None)
    st.rerun()
