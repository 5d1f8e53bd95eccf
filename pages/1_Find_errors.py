"""Find errors: scan the image set, see accuracy and confusions, pick a confident mistake."""

from __future__ import annotations

import functools

import pandas as pd
import streamlit as st

from explainer import data
from explainer.errors import LimaError
from explainer.scan import ScanResult, iter_scan
from ui import components, page, public, resources, sidebar, state
from ui.text import md, md_message

AUTO_SCAN_LIMIT = 1000
PAGE_SIZE = 24
CONFUSION_ROWS = 500  # rows of the confusion table sent to the browser (a 50,000-image set has thousands)
ANY = -1  # not None: a None option shows as an empty selectbox
EXPLAIN_PARAMS = ("image", "run", "step", "hidden", "shown", "view", "playlist")  # not this page's


def _add_uploads(names) -> None:
    """Button callback: add the chosen files with the chosen label, then show the uploads."""
    files, label = st.session_state.get("upload_files") or [], st.session_state.get("upload_label")
    refusal = public.upload_refusal([f.size for f in files])
    if refusal:
        st.session_state["_upload_errors"] = [refusal]
        return
    added, errors = list(state.get("uploads")), []
    for f in files:
        try:
            added.append(data.upload_item(f.getvalue(), f.name, int(label), names))
        except LimaError as exc:
            errors.append(str(exc))
    unique: dict[str, object] = {}
    for item in added:  # the same file twice is one upload
        unique.setdefault(item.key, item)
    state.put("uploads", tuple(unique.values()))
    st.session_state["_upload_errors"] = errors  # shown until the next upload
    if unique:
        sidebar.use_uploads()


def _uploads_panel(names) -> None:
    errors = st.session_state.get("_upload_errors", [])
    with st.expander(
        "Upload images",
        icon=":material/upload:",
        expanded=bool(errors) or (st.session_state.get(sidebar.SET_KIND_KEY) == "uploads" and not state.get("uploads")),
    ):
        for e in errors:
            st.error(md_message(e))
        files = st.file_uploader(
            "Images",
            type=["png", "jpg", "jpeg", "webp", "bmp", "tif", "tiff", "gif"],
            accept_multiple_files=True,
            key="upload_files",
        )
        label = components.class_picker(
            "Their true class", names, key="upload_label", index=None, help="Type to search the class names."
        )
        st.button(
            "Add to my uploads",
            disabled=not files or label is None,
            icon=":material/add_photo_alternate:",
            on_click=_add_uploads,
            args=(names,),
        )


def main() -> None:
    st.title("Find errors")
    for name in EXPLAIN_PARAMS:  # browser Back from Explain brings its parameters along
        st.query_params.pop(name, None)
    ctx = sidebar.context()
    clf = ctx.require_model()
    names = clf.class_names
    _uploads_panel(names)
    image_set = ctx.require_set()
    cache = resources.scan_cache()
    manager = resources.job_manager()
    scan_key = "scan:" + cache.path(clf, image_set).stem

    def start_scan(previous: ScanResult | None = None) -> None:
        thumbnails = resources.thumbnail_cache()  # the mistakes' thumbnails are kept as they are found
        job = manager.submit(
            scan_key,
            "scan",
            f"Scanning {image_set.name}",
            lambda: iter_scan(clf, image_set, previous=previous, thumbnails=thumbnails),
            on_done=lambda result: _scanned(cache, clf, image_set, result, ctx.model_key),
        )
        components.start_job("scan_job", job)

    mine = manager.get(state.get("scan_job"))
    if mine is not None and mine.key != scan_key:
        # The scan of a set the user has since switched away from: it goes on (and caches its
        # result), but it is not this set's scan, so its progress and result are not shown here.
        state.put("scan_job", None)
    finished = components.finished_job("scan_job")
    result: ScanResult | None = cache.get(clf, image_set)
    if result is None and finished is not None and finished.status == "done":
        result = finished.result
    components.show_outcome("scan_job")
    job = components.job_panel("scan_job")
    running = job is not None and job.active

    if result is None and not running:
        earlier = cache.latest(clf, image_set)  # this set's last scan, before files changed
        rate = resources.scan_rate(ctx.model_key, ctx.set_key, clf, image_set)
        reuse = (
            " Images unchanged since the last scan are reused; only new or changed files are scored."
            if earlier is not None
            else ""
        )
        st.info(
            f"**{len(image_set):,} images** in {md(image_set.name)}. Scanning them with {md(clf.id)} takes "
            f"{components.format_seconds(len(image_set) / rate)} on {md(resources.device_name())}.{reuse}"
        )
        stopped = st.session_state.get("_outcome_scan_job")  # cancelled or failed: wait for a click
        if len(image_set) <= AUTO_SCAN_LIMIT and finished is None and not stopped:
            start_scan(earlier)
            st.rerun()
        st.button(
            f"Scan {len(image_set):,} images" if earlier is None else "Scan new and changed images",
            type="primary",
            on_click=start_scan,
            args=(earlier,),
            icon=":material/play_arrow:",
        )
        components.stop_page()
    if result is None:
        components.stop_page()
    if not running:
        st.button(
            "Rescan changed files",
            on_click=start_scan,
            args=(result,),
            icon=":material/refresh:",
            key="rescan",
            help="Checks every file's size and date; only new or changed images are scored again.",
        )

    # -- overview ----------------------------------------------------------------------------------
    mistakes = result.mistakes()
    readable = result.readable
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Accuracy", f"{100 * result.accuracy:.1f} %")
    c2.metric("Images", len(readable))
    c3.metric("Misclassified", len(mistakes))
    c4.metric("Scan speed", f"{result.images_per_s:.1f} img/s")
    unreadable = result.unreadable
    if unreadable or image_set.problems:
        with st.expander(
            f"{len(unreadable) + len(image_set.problems)} entries could not be used", icon=":material/warning:"
        ):
            lines = list(image_set.problems) + [r.error or "" for r in unreadable]
            st.text("\n".join(lines[:500]) + (f"\n… and {len(lines) - 500:,} more" if len(lines) > 500 else ""))
    if not mistakes:
        st.success(
            "The model gets every image of this set right. Pick another set, or explain a correct image "
            "on the Explain page."
        )
        components.stop_page()

    st.fragment(_mistakes_section)(result, image_set, clf)


@st.cache_resource(max_entries=4, show_spinner=False)
def _mistake_index(scan_id: str, _result: ScanResult, _names: tuple[str, ...]) -> dict:
    """What the filters and the confusion table need, computed once per scan (a scan is
    immutable): the filter boxes' classes sorted by name, the top confusions as a table, and
    the class names in lower case for the search."""
    mistakes = _result.mistakes()
    conf = _result.confusions()[:CONFUSION_ROWS]
    table = pd.DataFrame([{"true": _names[t], "predicted": _names[p], "count": n} for t, p, n in conf])
    return {
        "true": sorted({r.label for r in mistakes}, key=lambda i: _names[i]),
        "pred": sorted({r.pred for r in mistakes}, key=lambda i: _names[i]),
        "conf": conf,
        "table": table,
        "lower": [n.lower() for n in _names],
    }


def _scan_id(result: ScanResult) -> str:
    """Which scan this is (a rescan is a new one), without hashing its rows."""
    parts = (result.model_id, result.weights_hash, result.set_fingerprint, result.created, str(len(result.rows)))
    return "|".join(parts)


def _sync_confusion(table_key: str, conf) -> None:
    """Keep the confusion table's selection and the two filter boxes in step; the boxes are the
    one place the filter lives.

    * A newly clicked row becomes the boxes' pair (and the gallery goes back to its first page).
      The table keeps its key, so the browser keeps the grid with the row highlighted: the
      table itself shows which pair is filtered.
    * A row clicked off again sets both boxes back to "any".
    * Boxes changed since the click leave the highlight stale: the table is then drawn afresh
      without a selection, under a new key.

    Called as the table's callback (before the run the click starts) and at the start of every
    run of the section (a selection no callback saw, e.g. set by a test, is applied the same way).
    """
    event = st.session_state.get(table_key)
    if event is None:  # no table state (back from another page): the kept boxes say what is filtered
        st.session_state.pop("_confusion_applied", None)
        return
    rows = event["selection"]["rows"]
    row = rows[0] if rows and rows[0] < len(conf) else None
    applied = st.session_state.get("_confusion_applied")
    if row is None:
        if applied is not None and applied[0] == table_key:  # the row was clicked off
            st.session_state["filter_true"] = st.session_state["filter_pred"] = ANY
            st.session_state.pop("gallery_page", None)
        st.session_state.pop("_confusion_applied", None)
        return
    t, p, _ = conf[row]
    if applied != (table_key, row):
        st.session_state["filter_true"], st.session_state["filter_pred"] = t, p
        st.session_state.pop("gallery_page", None)  # back to the first page
        st.session_state["_confusion_applied"] = (table_key, row)
    elif (st.session_state.get("filter_true"), st.session_state.get("filter_pred")) != (t, p):
        st.session_state["_confusions_gen"] = st.session_state.get("_confusions_gen", 0) + 1
        st.session_state.pop("_confusion_applied", None)


def _mistakes_section(result: ScanResult, image_set, clf) -> None:
    """Confusions, filters and the gallery. A fragment: a click here (a page, a filter, the
    search, a confusion row) reruns only this part, not the sidebar and the overview above it,
    and sends only this part to the browser."""
    names = clf.class_names
    index = _mistake_index(_scan_id(result), result, tuple(names))
    conf = index["conf"]
    left, right = st.columns([2, 3])
    with left:
        st.subheader("Top confusions")
        table = index["table"]
        table_key = f"confusions_{st.session_state.setdefault('_confusions_gen', 0)}"
        _sync_confusion(table_key, conf)  # boxes changed since a click; a selection no callback saw
        table_key = f"confusions_{st.session_state['_confusions_gen']}"
        st.dataframe(
            table,
            hide_index=True,
            width="stretch",
            height=min(38 + 35 * len(table), 360),
            on_select=functools.partial(_sync_confusion, table_key, conf),
            selection_mode="single-row",
            key=table_key,
        )
        more = len(result.confusions()) - len(conf)
        st.caption(
            "Click a row to show only that confusion (click it again for all)."
            + (f" The {more:,} less frequent pairs are reached with the filter boxes." if more > 0 else "")
        )
    with right:
        st.subheader("Filter")
        f1, f2 = st.columns(2)
        for key, options in (("filter_true", index["true"]), ("filter_pred", index["pred"])):
            if st.session_state.get(key, ANY) not in options:
                st.session_state[key] = ANY  # a class this scan has no mistakes of
        true_filter = f1.selectbox(
            "True class",
            [ANY] + index["true"],
            key="filter_true",
            persist_state="session",
            format_func=lambda i: "any" if i == ANY else names[i],
        )
        pred_filter = f2.selectbox(
            "Predicted class",
            [ANY] + index["pred"],
            key="filter_pred",
            persist_state="session",
            format_func=lambda i: "any" if i == ANY else names[i],
        )
        true_filter = None if true_filter == ANY else true_filter
        pred_filter = None if pred_filter == ANY else pred_filter
        query = (
            st.text_input("Search class names", key="filter_query", placeholder="e.g. cat", persist_state="session")
            .strip()
            .lower()
        )

    lower = index["lower"]
    shown = [
        r
        for r in result.mistakes(true_filter, pred_filter)
        if not query or query in lower[r.label] or query in lower[r.pred]
    ]
    # Its own fragment inside this one: a page change reruns (and sends to the browser) only the
    # gallery, not the confusion table and the filters.
    st.fragment(_gallery)(shown, image_set, clf)


def _gallery(shown, image_set, clf) -> None:
    """One page of the mistakes ``shown``: thumbnail, classes and an Explain button per card."""
    names = clf.class_names
    st.subheader(f"Misclassified, most confidently wrong first ({len(shown)})")
    pages = max(1, -(-len(shown) // PAGE_SIZE))
    if st.session_state.get("gallery_page", 1) > pages:  # a filter left fewer pages
        st.session_state.pop("gallery_page")
    page_no = st.number_input("Page", 1, pages, key="gallery_page", persist_state="session") if pages > 1 else 1
    cols = st.columns(4)
    page_rows = shown[(page_no - 1) * PAGE_SIZE : page_no * PAGE_SIZE]
    page_items = [image_set.item(row.key) for row in page_rows]
    thumbs = resources.thumbnails(clf, [it for it in page_items if it is not None])
    by_key = {it.key: thumb for it, thumb in zip([it for it in page_items if it is not None], thumbs)}
    for i, (row, item) in enumerate(zip(page_rows, page_items)):
        with cols[i % 4].container(border=True):
            if item is not None and by_key.get(item.key) is not None:
                st.image(by_key[item.key], width="stretch")
            st.markdown(  # one element, not two: 24 fewer for the browser to draw on every page
                f"**{md(row.name)}**  \n"
                f":blue[true] {md(names[row.label])} · {row.p_label:.2f}  \n"
                f":orange[predicted] {md(names[row.pred])} · {row.p_pred:.2f}"
            )
            if st.button(
                "Explain",
                key=f"explain_{row.key}",
                icon=":material/frame_inspect:",
                width="stretch",
                disabled=item is None,
            ):
                state.put("item_key", row.key)
                state.put("run_key", None)
                st.switch_page(page.EXPLAIN_PAGE, query_params=sidebar.with_set({"image": row.key}))
    # The next page's thumbnails are decoded while the user looks at this one (started last, so
    # the decoding threads do not slow down this run).
    following = [image_set.item(r.key) for r in shown[page_no * PAGE_SIZE : (page_no + 1) * PAGE_SIZE]]
    resources.prefetch_thumbnails(clf, [it for it in following if it is not None])


def _scanned(cache, clf, image_set, result: ScanResult, model_key: str) -> None:
    """A scan finished (in the worker): cache it and remember the speed it achieved, which
    calibrates the next estimate (decoding included, which the model's own speed leaves out)."""
    cache.put(clf, image_set, result)
    if result.elapsed_s > 0 and result.rows:
        resources.remember_scan_rate(model_key, image_set, len(result.rows) / result.elapsed_s)


page.render("Find errors", main)
