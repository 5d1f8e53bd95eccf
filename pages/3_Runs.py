"""Runs: every saved explanation on this server; open, compare at a glance, delete."""

from __future__ import annotations

import base64
import io

import pandas as pd
import streamlit as st
from PIL import Image

from explainer.errors import LimaError
from explainer.run_index import RunFilter
from explainer.store import StoreError
from ui import page, public, resources, sidebar, state
from ui.text import md, md_message

THUMB_PX = 56


@st.cache_data(max_entries=2048, show_spinner=False)
def _thumbnail(key: str, created: str) -> str | None:
    """A small JPEG of a run's view as a data URL (keyed by run and creation time, so an
    overwritten run gets a new thumbnail); None when the view cannot be read."""
    try:
        view = resources.run_store().view(key)
    except StoreError:
        return None
    buf = io.BytesIO()
    Image.fromarray(view).resize((2 * THUMB_PX, 2 * THUMB_PX), Image.BICUBIC).save(buf, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


@st.dialog("Delete this run?")
def _confirm_delete(key: str, image: str) -> None:
    st.markdown(
        f"The saved run of {md(image or 'this image')} (`{key}`) is removed from the server. Links to it "
        "stop working. This cannot be undone."
    )
    c1, c2 = st.columns(2)
    if c1.button("Delete", type="primary", icon=":material/delete:", key="confirm_delete", width="stretch"):
        # A dialog runs outside the page's error boundary: catch what deleting can raise here.
        try:
            resources.run_store().delete(key)
        except LimaError as exc:
            st.error(md_message(exc))
            return
        resources.forget_explanation()
        if state.get("run_key") == key:
            state.put("run_key", None)
        st.rerun()
    if c2.button("Keep it", key="cancel_delete", width="stretch"):
        st.rerun()


PAGE_SIZE = 50
ANY = "any"
FILTERS = (("model", "Model"), ("image_set", "Image set"), ("label", "True class"), ("regions", "Regions"))


def _filters(runs) -> RunFilter:
    """The filter row above the table; every choice comes from the run index."""
    cols = st.columns([2, 2, 2, 1, 2, 2])
    chosen: dict = {}
    for col, (name, title) in zip(cols, FILTERS):
        options = [ANY, *runs.values(name)]
        key = f"runs_filter_{name}"
        if st.session_state.get(key, ANY) not in options:
            st.session_state[key] = ANY  # a value no run has any more
        value = col.selectbox(title, options, key=key)
        chosen[name] = None if value == ANY else value
    pairs = runs.confusions()
    by_label = {f"{t} → {p} ({n})": (t, p) for t, p, n in pairs}
    if st.session_state.get("runs_filter_confusion", ANY) not in [ANY, *by_label]:
        st.session_state["runs_filter_confusion"] = ANY
    confusion = cols[4].selectbox(
        "Confusion", [ANY, *by_label], key="runs_filter_confusion", help="Runs of images the model got wrong."
    )
    text = cols[5].text_input("Image or key", key="runs_filter_text", placeholder="e.g. husky").strip()
    return RunFilter(**chosen, confusion=by_label.get(confusion), text=text or None)


def main() -> None:
    st.title("Saved runs")
    sidebar.context()
    runs = resources.run_store()
    where = "on this server" if public.on() else f"in {md(runs.root)} (set LIMA_RUNS_DIR to move them)"
    st.caption(
        f"Stored {where}. A run with the same model, image, regions and settings is reused instead of recomputed."
    )
    problems = runs.problems()
    if problems and not public.on():  # the reasons name server folders
        many = len(problems) != 1
        with st.expander(
            f"{len(problems)} folder{'s' if many else ''} in the runs folder cannot be read and "
            f"{'are' if many else 'is'} left out",
            icon=":material/warning:",
        ):
            for key, reason in problems[:200]:
                st.text(f"{key}: {reason}")
    if runs.count() == 0:
        st.info("No saved runs yet. Explain an image on the Explain page.")
        return
    where = _filters(runs)
    total = runs.count(where)
    if total == 0:
        st.info("No saved run matches these filters.")
        return
    pages = max(1, -(-total // PAGE_SIZE))
    if st.session_state.get("runs_page", 1) > pages:  # a filter left fewer pages
        st.session_state.pop("runs_page")
    if pages > 1:
        c1, c2 = st.columns([1, 5])
        page_no = c1.number_input("Page", 1, pages, key="runs_page")
        c2.caption(f"{total:,} runs · page {page_no} of {pages} · {PAGE_SIZE} per page")
    else:
        page_no = 1
        st.caption(f"{total:,} run{'s' if total != 1 else ''}")
    rows = runs.list(where, limit=PAGE_SIZE, offset=(page_no - 1) * PAGE_SIZE)
    shown = (page_no, where)
    if st.session_state.get("_runs_shown", shown) != shown:
        st.session_state.pop("runs_table", None)  # a new page or filter starts unselected
    st.session_state["_runs_shown"] = shown
    table = pd.DataFrame(rows)
    table.insert(0, "view", [_thumbnail(r["key"], r["created"]) for r in rows])
    table["created"] = table["created"].str.slice(0, 16).str.replace("T", " ")
    for column, digits in (("insertion_auc", 3), ("deletion_auc", 3), ("wall_time_s", 1)):
        table[column] = pd.to_numeric(table[column], errors="coerce").round(digits)
    # Column widths chosen so the table fits 1280-1920 px wide windows (with the sidebar open).
    config = {
        "view": st.column_config.ImageColumn("", width=THUMB_PX),
        "created": st.column_config.TextColumn("created (UTC)", width=128),
        "image": st.column_config.TextColumn("image", width="medium"),
        "label": st.column_config.TextColumn("true", width=100),
        "target": st.column_config.TextColumn("explained", width=110),
        "tracked": st.column_config.TextColumn("followed", width=110),
        "model": st.column_config.TextColumn("model", width=140),
        "regions": st.column_config.TextColumn("regions", width=80),
        "n_regions": st.column_config.NumberColumn("N", width=44),
        "insertion_auc": st.column_config.NumberColumn("ins. AUC", width=70),
        "deletion_auc": st.column_config.NumberColumn("del. AUC", width=70),
        "wall_time_s": st.column_config.NumberColumn("time (s)", width=66),
        "key": st.column_config.TextColumn("run key", width=90),
    }
    event = st.dataframe(
        table[list(config)],
        column_config=config,
        hide_index=True,
        width="stretch",
        row_height=THUMB_PX + 8,
        on_select="rerun",
        selection_mode="single-row",
        key="runs_table",
    )
    selected = [i for i in (event["selection"]["rows"] if event else []) if i < len(rows)]
    playlist = ".".join(r["key"] for r in rows)  # the runs listed here, in this order
    if not selected:
        left, right = st.columns([4, 1.4], vertical_alignment="center")
        left.caption("Select a row to open or delete it.")
        right.page_link(
            page.EXPLAIN_PAGE,
            label="Present these runs",
            icon=":material/slideshow:",
            query_params=sidebar.with_set({"run": rows[0]["key"], "view": "present", "playlist": playlist}),
            help="The presenter view of the first run; PageUp/PageDown go through the runs of this page.",
        )
        return
    row = rows[selected[0]]
    c1, c2, c3, _ = st.columns([1, 1, 1.3, 2.7])
    c3.page_link(
        page.EXPLAIN_PAGE,
        label="Present",
        icon=":material/slideshow:",
        query_params=sidebar.with_set({"run": row["key"], "view": "present", "playlist": playlist}),
    )
    if c1.button("Open", type="primary", icon=":material/open_in_new:"):
        state.put("run_key", row["key"])
        state.put("step_run", None)
        st.switch_page(page.EXPLAIN_PAGE, query_params=sidebar.with_set({"run": row["key"]}))
    if public.on():  # a public demo is read-only: every visitor sees the same saved runs
        c2.caption("Read-only demo")
    elif c2.button("Delete…", icon=":material/delete:", key="delete_run"):
        _confirm_delete(row["key"], row["image"])


page.render("Saved runs", main)
