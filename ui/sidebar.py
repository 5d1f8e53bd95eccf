"""The sidebar every page draws: navigation, model and image set choice, device, running jobs.

The app runs in Streamlit's directory-based multipage mode (the ``pages/`` folder), where a
widget's value is normally dropped on a page switch. Every widget here is drawn by every page
with the same key and ``persist_state="session"``, which keeps its value for the whole session
across page switches (a browser test proves it). The model's inputs are a form generated from
the chosen model source's options (``explainer.models``).
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from explainer.backends import RuntimeOptions, runs_with
from explainer.data import ImageSet
from explainer.errors import LimaError
from explainer.models import Classifier, list_sources
from ui import components, forms, public, resources, state
from ui.resources import ModelChoice, SetChoice
from ui.text import md, md_message, shorten

SET_KINDS = {"demo": "Built-in demo photos", "server": "Folder, list or CSV on the server", "uploads": "My uploads"}
MODEL_KEY = "model_source"
SET_KIND_KEY, SET_PATH_KEY = "set_kind", "set_path"


@dataclass
class Context:
    """What every page needs; ``*_error`` holds a readable message when loading failed."""

    clf: Classifier | None = None
    clf_error: str | None = None
    image_set: ImageSet | None = None
    set_error: str | None = None
    _set_key: str | None = None

    @property
    def model_key(self) -> str:
        return f"{self.clf.id}@{self.clf.weights_hash[:16]}" if self.clf else ""

    @property
    def set_key(self) -> str:
        # Asked once per gallery card: the set's fingerprint is itself kept per set version,
        # and this keeps even that check (a stat) to once per page run.
        if self.image_set is None:
            return ""
        if self._set_key is None:
            self._set_key = self.image_set.fingerprint()[:20]
        return self._set_key

    def require_model(self) -> Classifier:
        if self.clf is None:
            st.error(f"The model could not be loaded: {md_message(self.clf_error)}")
            st.info("Choose another model in the sidebar. Saved runs stay available on the Runs page.")
            components.stop_page()
        assert self.clf is not None
        return self.clf

    def set_error_shown(self) -> None:
        """The page says why the set could not be opened: the sidebar does not say it again."""
        _SLOT.set_problem = None

    def require_set(self) -> ImageSet:
        if self.image_set is None:
            self.set_error_shown()
            st.error(
                f"The image set could not be opened: {md_message(self.set_error)} Choose another in the sidebar.",
                icon=":material/folder_off:",
            )
            components.stop_page()
        assert self.image_set is not None
        return self.image_set


CANDIDATES_TTL_S = 30.0  # how old a listing of the data root may be before it is made again
_LISTINGS: dict[tuple[str, int], tuple[float, list[str]]] = {}  # (root, limit) -> (made at, listing)
_LISTINGS_LOCK = threading.Lock()
_RELISTING: set[tuple[str, int]] = set()
_LIST_POOL = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lima-list-root")


def _server_candidates(root: Path, limit: int = 200) -> list[str]:
    """Folders and list/CSV files up to two levels under the data root, relative to it. Listed
    once, then again in the background when the listing is over 30 s old (the old one is shown
    meanwhile): every full page run draws the sidebar, and listing a large data root took
    ~0.1 s of each run after the listing had expired."""
    key = (str(root), limit)
    with _LISTINGS_LOCK:
        kept = _LISTINGS.get(key)
        stale = kept is not None and time.monotonic() - kept[0] > CANDIDATES_TTL_S
        if stale and key not in _RELISTING:
            _RELISTING.add(key)
            _LIST_POOL.submit(_relist, key)
    if kept is not None:
        return kept[1]
    return _relist(key)


def _relist(key: tuple[str, int]) -> list[str]:
    try:
        listing = _candidates(*key)
        with _LISTINGS_LOCK:
            if len(_LISTINGS) >= 16 and key not in _LISTINGS:  # data roots are few; never grows unbounded
                _LISTINGS.pop(next(iter(_LISTINGS)))
            _LISTINGS[key] = (time.monotonic(), listing)
        return listing
    finally:
        with _LISTINGS_LOCK:
            _RELISTING.discard(key)


def _candidates(root_text: str, limit: int) -> list[str]:
    root = Path(root_text)
    if not root.is_dir():
        return []
    out: list[str] = []
    # Level by level, and within a level folder by folder, stopping at ``limit``: a data root
    # with thousands of entries two levels down is never listed (or sorted) in full.
    top = sorted(p for p in root.iterdir() if not p.name.startswith("."))
    for p in top:
        if _is_candidate(p):
            out.append(str(p.relative_to(root)))
            if len(out) >= limit:
                return out
    for folder in top:
        try:
            if not folder.is_dir():
                continue
            children = sorted(folder.iterdir())
        except OSError:
            continue
        for p in children:
            if not p.name.startswith(".") and _is_candidate(p):
                out.append(str(p.relative_to(root)))
                if len(out) >= limit:
                    return out
    return out


def _is_candidate(path: Path) -> bool:
    try:
        return path.is_dir() or path.suffix.lower() in (".txt", ".csv", ".lst")
    except OSError:
        return False


def model_choice() -> ModelChoice:
    """The model source selector and the chosen source's inputs."""
    # A public demo offers the built-in model only: every other source reads a file or a name
    # that the server would fetch or open on a visitor's say-so.
    sources = {s.name: s for s in list_sources(in_app=True) if not public.on() or s.name == resources.DEFAULT_SOURCE}
    _model_from_url(sources)
    name = st.selectbox(
        "Model",
        list(sources),
        format_func=lambda n: sources[n].label,
        key=MODEL_KEY,
        persist_state="session",
        help=sources[resources.DEFAULT_SOURCE].description,
    )
    source = sources[name or resources.DEFAULT_SOURCE]
    if not source.inputs.specs():
        _model_to_url(ModelChoice(source.name))
        return ModelChoice(source.name)
    st.caption(md(source.description))
    inputs = forms.options_form(source.inputs, f"model_{source.name}")
    if inputs is None:
        return ModelChoice(source.name, {"_invalid": True})
    choice = ModelChoice(source.name, inputs.to_dict())
    _model_to_url(choice)
    return choice


MODEL_PARAM = "model"  # ?model=<source>&model.<input>=<value> (inputs that differ from their defaults)
MODEL_INPUT = "model."


def _is_model_param(key: str) -> bool:
    return key == MODEL_PARAM or key.startswith(MODEL_INPUT)


def encode_model(choice: ModelChoice) -> dict[str, str]:
    """The URL parameters of a model choice: its source, and the inputs that differ from their
    defaults (``?model=torchvision&model.name=resnet50``)."""
    source = next(s for s in list_sources() if s.name == choice.source)
    defaults = source.inputs().to_dict() if source.inputs.specs() else {}
    params = {MODEL_PARAM: choice.source}
    for name, value in sorted(choice.inputs.items()):
        if value != defaults.get(name):
            params[MODEL_INPUT + name] = "none" if value is None else str(value)  # read back by Options.parse
    return params


def _model_params() -> dict[str, str]:
    """The URL's model parameters (none without ``?model=``: stray ``model.*`` keys are ignored)."""
    params = st.query_params.to_dict()
    if MODEL_PARAM not in params:
        return {}
    return {k: v for k, v in params.items() if _is_model_param(k)}


def _model_from_url(sources: dict) -> None:
    """A ``?model=`` that this session did not write itself (a link, or a reload) chooses the
    model and its inputs before the widgets are drawn; one that names no model offered here, or
    inputs it does not take, gets a warning and the choice stays as it was."""
    params = _model_params()
    if MODEL_PARAM not in params or params == st.session_state.get("_model_in_url"):
        return
    st.session_state["_model_in_url"] = params
    source = sources.get(params[MODEL_PARAM])
    values = {k.removeprefix(MODEL_INPUT): v for k, v in params.items() if k != MODEL_PARAM}
    try:
        if source is None:
            raise LimaError(f"this server offers no model source {params[MODEL_PARAM]!r}")
        inputs = source.inputs.parse(values) if source.inputs.specs() or values else None  # text, as the CLI's
    except LimaError as exc:
        st.warning(
            f"The link's model is not used ({md_message(str(exc).rstrip('.'))}); showing the model chosen below.",
            icon=":material/link_off:",
        )
        return
    st.session_state[MODEL_KEY] = source.name
    for f in source.inputs.specs() if inputs is not None else ():
        value = getattr(inputs, f.name)
        key = forms.key_of(f"model_{source.name}", f.name)
        st.session_state[key] = ("" if value is None else str(value)) if f.kind in ("path", "text") else value


def _model_to_url(choice: ModelChoice) -> None:
    """Carry the chosen model in the URL, so a reload or a copied link keeps it (the built-in
    model leaves the URL alone unless a link already carried a model)."""
    params = encode_model(choice)
    current = _model_params()
    if choice.source == resources.DEFAULT_SOURCE and MODEL_PARAM not in current:
        return
    if current != params:
        for key in [k for k in st.query_params if _is_model_param(k)]:
            if key not in params:  # a stray key of a hand-edited URL goes too
                del st.query_params[key]
        for key, value in params.items():
            if current.get(key) != value:
                st.query_params[key] = value
    st.session_state["_model_in_url"] = params


def runtime_choice() -> RuntimeOptions:
    """What runs the model (backend, precision): a form generated from RuntimeOptions, folded away."""
    gpu_only = None if resources.on_gpu() else {"precision": "Reduced precision runs on a GPU only."}
    with st.expander("Runtime", expanded=False):
        chosen = forms.options_form(RuntimeOptions, "runtime", disabled=gpu_only)
    return chosen if isinstance(chosen, RuntimeOptions) else RuntimeOptions()


SET_PARAM = "set"  # ?set=demo | uploads | server:<path under the data root>


def with_set(params: dict[str, str]) -> dict[str, str]:
    """``params`` plus the URL's image set (``?set=``) and model (``?model=...``), for every
    link or URL rewrite a page makes (a run's step, the presenter view, Open in Explain): a
    reload or a copied link then keeps them (without them, the sidebar fell back to the demo set
    and the built-in model)."""
    value = st.query_params.get(SET_PARAM)
    out = {**params, SET_PARAM: value} if value is not None and SET_PARAM not in params else dict(params)
    if not any(_is_model_param(k) for k in params):
        out.update(_model_params())
    return out


def encode_set(choice: SetChoice) -> str:
    """The ``?set=`` value of a set choice."""
    return f"server:{choice.path}" if choice.kind == "server" else choice.kind


def decode_set(value: str) -> SetChoice | None:
    """The set choice a ``?set=`` value names, or None when it names none."""
    kind, _, path = value.partition(":")
    if kind == "server" and path.strip() and len(path) <= 1000 and "\x00" not in path:
        return SetChoice("server", path.strip())
    if not path and kind in SET_KINDS and kind != "server":
        return SetChoice(kind)
    return None


def _set_from_url() -> None:
    """A ``?set=`` that this session did not write itself (a link, or a reload, which starts a
    new session) chooses the image set, before the set widgets are drawn. A value that names no
    set gets a warning and the choice stays as it was."""
    value = st.query_params.get(SET_PARAM)
    if value is None or value == st.session_state.get("_set_in_url"):
        return  # no link, or the value this session wrote: the widgets hold the choice
    st.session_state["_set_in_url"] = value
    choice = decode_set(value)
    if choice is None:
        st.warning(
            f"The link's image set {md(shorten(value, 80))} is not understood (expected `demo`, `uploads` or "
            "`server:<path under the data root>`); showing the set chosen below.",
            icon=":material/link_off:",
        )
        return
    st.session_state[SET_KIND_KEY] = choice.kind
    if choice.kind == "server":
        st.session_state[SET_PATH_KEY] = choice.path


def _set_to_url(choice: SetChoice) -> None:
    """Carry the chosen set in the URL, so a reload or a copied link keeps it (the default demo
    set leaves the URL alone unless a link already carried a set)."""
    value = encode_set(choice)
    if choice.kind == "demo" and SET_PARAM not in st.query_params:
        return
    if st.query_params.get(SET_PARAM) != value:
        st.query_params[SET_PARAM] = value
    st.session_state["_set_in_url"] = value


def set_choice() -> SetChoice:
    _set_from_url()
    choice = _set_widgets()
    _set_to_url(choice)
    return choice


def _set_widgets() -> SetChoice:
    kinds = [k for k in SET_KINDS if not public.on() or k in public.SOURCE_KINDS]  # no server paths
    if st.session_state.get(SET_KIND_KEY) not in (None, *kinds):
        st.session_state[SET_KIND_KEY] = "demo"
    kind = st.selectbox("Image set", kinds, format_func=SET_KINDS.get, key=SET_KIND_KEY, persist_state="session")
    if kind != "server":
        return SetChoice(kind or "demo")
    root = resources.data_root()
    options = _server_candidates(root)
    path = st.text_input(
        f"Path under {md(root)}",
        # No default once the value was set in the session (a link's ?set=): Streamlit warns about both.
        value=None if SET_PATH_KEY in st.session_state else (options[0] if options else ""),
        key=SET_PATH_KEY,
        persist_state="session",
        help="A folder with one sub-folder per class, a label list (<file> <class index> per line, "
        "as in the LiMA reference code) or a CSV with path and label columns.",
    )
    if options:
        st.caption(
            "Found under the data root: " + ", ".join(md(o) for o in options[:8]) + (" …" if len(options) > 8 else "")
        )
    return SetChoice("server", path or "")


def use_uploads() -> None:
    """Switch the image-set selector to the user's uploads (call from a widget callback)."""
    st.session_state[SET_KIND_KEY] = "uploads"


def _navigation() -> None:
    from ui import page

    st.page_link(page.HOME_PAGE, label="Home", icon=":material/home:")
    st.page_link(page.ERRORS_PAGE, label="Find errors", icon=":material/search:")
    st.page_link(page.EXPLAIN_PAGE, label="Explain", icon=":material/frame_inspect:")
    st.page_link(page.RUNS_PAGE, label="Saved runs", icon=":material/history:")
    st.page_link(page.SCORECARD_PAGE, label="Scorecard", icon=":material/leaderboard:")
    st.page_link(page.STUDY_PAGE, label="Study", icon=":material/groups:")
    st.page_link(page.COHORTS_PAGE, label="Cohorts", icon=":material/grid_view:")
    st.divider()


SIDEBAR_PREFIXES = ("model_", "runtime_")  # the sidebar's generated forms (forms.key_of)


def _keep_choices() -> None:
    """The sidebar's choices survive a page switch from a button (see :func:`state.keep_widgets`)."""
    mine = (MODEL_KEY, SET_KIND_KEY, SET_PATH_KEY)
    state.keep_widgets([k for k in st.session_state if k in mine or k.startswith(SIDEBAR_PREFIXES)])


def context() -> Context:
    """Draw the sidebar and load the chosen model and image set."""
    state.init_state()
    _keep_choices()
    _SLOT.set_problem = None  # this run's: a thread serves one run at a time
    ctx = Context()
    with st.sidebar:
        _navigation()
        st.markdown("### Setup")
        choice = model_choice()
        if "_invalid" in choice.inputs:
            ctx.clf_error = "the model's inputs are incomplete (see the sidebar)."
        else:
            try:
                ctx.clf = resources.classifier(choice, runtime_choice())
            except LimaError as exc:
                ctx.clf_error = str(exc)
                st.error(md_message(ctx.clf_error))
        chosen_set = set_choice()
        if ctx.clf is not None:
            try:
                ctx.image_set = resources.image_set(chosen_set, ctx.clf, state.get("uploads"))
                if ctx.image_set.problems:
                    st.caption(f"{len(ctx.image_set.problems)} entries skipped (see Find errors).")
            except LimaError as exc:
                ctx.set_error = str(exc)
                # Said once: by the page when it needs the set (Context.require_set), else here,
                # under the set's box, once the page has drawn (after_page).
                _SLOT.set_problem = (st.empty(), ctx.set_error)
        st.caption(f"Device: **{md(resources.device_name())}**")
        if ctx.clf is not None:
            st.caption(f"Runs with: {md(runs_with(ctx.clf))}")
            resources.measure_speed_ahead(ctx.model_key, ctx.clf)  # ready before a page asks for it
        public.banner()
        _running_jobs()
    return ctx


_SLOT = threading.local()  # this run's place for what runs now (each session's script has its own thread)


def _running_jobs() -> None:
    """Keep the place, at the foot of the sidebar, where :func:`running_jobs` says what runs now
    once the page has drawn (it then knows which jobs the page shows itself)."""
    _SLOT.slot = st.empty()


def after_page() -> None:
    """What the sidebar says once the page has drawn (called by ``ui.page.render``, also when
    the page stopped early): why the image set could not be opened, unless the page said it,
    and what runs now (:func:`running_jobs`)."""
    problem, _SLOT.set_problem = getattr(_SLOT, "set_problem", None), None
    if problem is not None:
        slot, message = problem
        slot.warning(md_message(message), icon=":material/folder_off:")
    running_jobs()


def running_jobs() -> None:
    """What runs now, in the place the sidebar kept: the jobs that this page's own progress
    panels do not show (a scan started on Find errors while on Explain, another session's run),
    refreshed every second while any runs. A job the page shows is left out: its panel polls it
    already, and every poll makes the browser draw the page again. Called by ``ui.page.render``
    after the page."""
    slot, _SLOT.slot = getattr(_SLOT, "slot", None), None
    if slot is None:
        return
    manager = resources.job_manager()
    shown = set(components.panels_on_page())
    if all(job.key in shown for job in manager.active()):
        return

    @st.fragment(run_every=components.POLL_S)
    def _live() -> None:
        others = [j for j in manager.active() if j.key not in shown]
        if others:
            st.caption("Running now: " + "; ".join(f"{md(j.label)} ({100 * j.fraction:.0f} %)" for j in others))

    with slot.container():
        _live()
