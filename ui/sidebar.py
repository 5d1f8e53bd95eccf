"""The sidebar every page draws: model and image set choice, device, data root."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from explainer.data import ImageSet
from explainer.errors import LimaError
from explainer.models import Classifier
from ui import resources, state
from ui.resources import ModelChoice, SetChoice

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
            st.error(f"The model could not be loaded: {self.clf_error}")
            st.info("Choose another model in the sidebar. Saved runs stay available on the Runs page.")
            st.stop()
        return self.clf

    def require_set(self) -> ImageSet:
        if self.image_set is None:
            st.error(f"The image set could not be opened: {self.set_error}")
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


def _model_picker() -> ModelChoice:
    current: ModelChoice = state.get("model_choice")
    st.session_state.setdefault("_model_kind", current.kind)
    kind = st.selectbox("Model", list(MODEL_KINDS), format_func=MODEL_KINDS.get, key="_model_kind")
    choice = ModelChoice(kind)
    if kind == "torchvision":
        st.session_state.setdefault("_tv_name", current.name or "resnet50")
        name = st.text_input("torchvision name", key="_tv_name",
                             help="e.g. resnet50, vit_b_16, convnext_tiny; default ImageNet weights are "
                                  "downloaded once, or read from ~/.cache/torch")
        choice = ModelChoice(kind, name=name)
    elif kind == "torchscript":
        st.session_state.setdefault("_ts_path", current.path)
        st.session_state.setdefault("_ts_names", current.class_names)
        path = st.text_input("TorchScript file (under the data root)", key="_ts_path")
        names = st.text_input("Class-names file (one per line)", key="_ts_names")
        choice = ModelChoice(kind, path=path, class_names=names)
    state.put("model_choice", choice)
    return choice


def _set_picker() -> SetChoice:
    current: SetChoice = state.get("set_choice")
    st.session_state.setdefault("_set_kind", current.kind)
    kind = st.selectbox("Image set", list(SET_KINDS), format_func=SET_KINDS.get, key="_set_kind")
    choice = SetChoice(kind)
    if kind == "server":
        root = resources.data_root()
        options = _server_candidates(root)
        st.session_state.setdefault("_set_path", current.path or (options[0] if options else ""))
        path = st.text_input(f"Path under {root}", key="_set_path",
                             help="A folder with one sub-folder per class, a label list (<file> <class index> "
                                  "per line, as in the LiMA reference code) or a CSV with path and label columns.")
        if options:
            st.caption("Found under the data root: " + ", ".join(f"`{o}`" for o in options[:8])
                       + (" …" if len(options) > 8 else ""))
        choice = SetChoice(kind, path)
    state.put("set_choice", choice)
    return choice


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
            st.error(ctx.clf_error)
        set_choice = _set_picker()
        if ctx.clf is not None:
            try:
                ctx.image_set = resources.image_set(set_choice, ctx.clf, state.get("uploads"))
                if ctx.image_set.problems:
                    st.caption(f"{len(ctx.image_set.problems)} entries skipped (see Find errors).")
            except LimaError as exc:
                ctx.set_error = str(exc)
                st.warning(ctx.set_error)
        st.caption(f"Device: **{resources.device_name()}**")
        _running_jobs()
    return ctx


def _running_jobs() -> None:
    active = resources.job_manager().active()
    if active:
        st.caption("Running now: " + "; ".join(f"{j.label} ({100 * j.fraction:.0f} %)" for j in active))
