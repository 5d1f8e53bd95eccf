"""The sidebar every page draws: model and image set choice, device, data root."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import streamlit as st

from explainer.data import ImageSet
from explainer.errors import LimaError
from explainer.models import Classifier
from ui import resources, state
from ui.resources import ModelChoice, SetChoice
from ui.text import md

MODEL_KINDS = {"builtin": "Built-in EfficientNet-Lite0", "torchvision": "torchvision model",
               "torchscript": "My TorchScript model"}
SET_KINDS = {"demo": "Built-in demo photos", "server": "Folder, list or CSV on the server", "uploads": "My uploads"}


@dataclass
class Context:
    """What every page needs; ``*_error`` holds a readable message when loading failed."""

    clf: Classifier | None = None
    clf_error: str | None = None
    image_set: ImageSet | None = None
    set_error: str | None = None

    @property
    def model_key(self) -> str:
        return f"{self.clf.id}@{self.clf.weights_hash[:16]}" if self.clf else ""

    @property
    def set_key(self) -> str:
        return self.image_set.fingerprint()[:20] if self.image_set else ""

    def require_model(self) -> Classifier:
        if self.clf is None:
            st.error(f"The model could not be loaded: {md(self.clf_error)}")
            st.info("Choose another model in the sidebar. Saved runs stay available on the Runs page.")
            st.stop()
        return self.clf

    def require_set(self) -> ImageSet:
        if self.image_set is None:
            st.error(f"The image set could not be opened: {md(self.set_error)}")
            st.stop()
        return self.image_set


def _server_candidates(root: Path, limit: int = 200) -> list[str]:
    """Folders and list/CSV files up to two levels under the data root, relative to it."""
    if not root.is_dir():
        return []
    out = []
    for depth_glob in ("*", "*/*"):
        for p in sorted(root.glob(depth_glob)):
            if p.name.startswith("."):
                continue
            if p.is_dir() or p.suffix.lower() in (".txt", ".csv", ".lst"):
                out.append(str(p.relative_to(root)))
            if len(out) >= limit:
                return out
    return out


def _bound(label: str, widget, key: str, data_key: str, field: str, **kwargs):
    """A widget whose value survives page switches (pages/ mode drops widget state on a switch).

    Streamlit's own multipage pattern: the value lives in the session's data (``data_key``, a
    frozen choice dataclass, attribute ``field``); the widget is re-seeded from it before it is
    drawn, and its on_change callback (which runs before the script) writes changes back. The
    widget gets no default of its own, so the seeded value is the only source.
    """
    def store() -> None:
        state.put(data_key, replace(state.get(data_key), **{field: st.session_state[key] or ""}))

    st.session_state[key] = getattr(state.get(data_key), field) or None
    return widget(label, key=key, on_change=store, **kwargs)


def _model_picker() -> ModelChoice:
    if not state.get("model_choice").kind:
        state.put("model_choice", ModelChoice())
    kind = _bound("Model", st.selectbox, "_model_kind", "model_choice", "kind", options=list(MODEL_KINDS),
                  format_func=MODEL_KINDS.get, index=None)
    if kind == "torchvision":
        if not state.get("model_choice").name:
            state.put("model_choice", replace(state.get("model_choice"), name="resnet50"))
        _bound("torchvision name", st.text_input, "_tv_name", "model_choice", "name", value=None,
               help="e.g. resnet50, vit_b_16, convnext_tiny; default ImageNet weights are downloaded once, "
                    "or read from ~/.cache/torch")
    elif kind == "torchscript":
        _bound("TorchScript file (under the data root)", st.text_input, "_ts_path", "model_choice", "path", value=None)
        _bound("Class-names file (one per line)", st.text_input, "_ts_names", "model_choice", "class_names", value=None)
    return state.get("model_choice")


def _set_picker() -> SetChoice:
    if not state.get("set_choice").kind:
        state.put("set_choice", SetChoice())
    kind = _bound("Image set", st.selectbox, "_set_kind", "set_choice", "kind", options=list(SET_KINDS),
                  format_func=SET_KINDS.get, index=None)
    if kind == "server":
        root = resources.data_root()
        options = _server_candidates(root)
        if not state.get("set_choice").path and options:
            state.put("set_choice", replace(state.get("set_choice"), path=options[0]))
        _bound(f"Path under {md(root)}", st.text_input, "_set_path", "set_choice", "path", value=None,
               help="A folder with one sub-folder per class, a label list (<file> <class index> per line, as in "
                    "the LiMA reference code) or a CSV with path and label columns.")
        if options:
            st.caption("Found under the data root: " + ", ".join(md(o) for o in options[:8])
                       + (" …" if len(options) > 8 else ""))
    return state.get("set_choice")


def _navigation() -> None:
    from ui import page

    st.page_link(page.HOME_PAGE, label="Home", icon=":material/home:")
    st.page_link(page.ERRORS_PAGE, label="Find errors", icon=":material/search:")
    st.page_link(page.EXPLAIN_PAGE, label="Explain", icon=":material/frame_inspect:")
    st.page_link(page.RUNS_PAGE, label="Saved runs", icon=":material/history:")
    st.divider()


def context() -> Context:
    """Draw the sidebar and load the chosen model and image set."""
    state.init_state()
    ctx = Context()
    with st.sidebar:
        _navigation()
        st.markdown("### Setup")
        model_choice = _model_picker()
        try:
            ctx.clf = resources.classifier(model_choice)
        except LimaError as exc:
            ctx.clf_error = str(exc)
            st.error(md(ctx.clf_error))
        set_choice = _set_picker()
        if ctx.clf is not None:
            try:
                ctx.image_set = resources.image_set(set_choice, ctx.clf, state.get("uploads"))
                if ctx.image_set.problems:
                    st.caption(f"{len(ctx.image_set.problems)} entries skipped (see Find errors).")
            except LimaError as exc:
                ctx.set_error = str(exc)
                st.warning(md(ctx.set_error))
        st.caption(f"Device: **{md(resources.device_name())}**")
        _running_jobs()
    return ctx


def _running_jobs() -> None:
    active = resources.job_manager().active()
    if active:
        st.caption("Running now: " + "; ".join(f"{md(j.label)} ({100 * j.fraction:.0f} %)" for j in active))
