"""Study: stimulus sets for human studies of explanations (images, conditions, counterbalanced
lists, a contact sheet, the participant's view, and the bundle to download)."""

from __future__ import annotations

import hashlib
import io
import json

import pandas as pd
import streamlit as st

from explainer.comparison import MethodStore
from explainer.errors import LimaError
from explainer.methods import METHODS
from explainer.regions import REGION_METHODS, RegionSpec
from explainer.study import StudyBundle, StudyOptions, iter_build_study
from explainer.study.build import study_config_json
from explainer.study.options import AREA_MATCHED_RANDOM, MINIMAL, NO_EXPLANATION
from explainer.study.selection import select_images
from ui import components, forms, page, public, resources, sidebar, state
from ui.text import md, md_message, safe_filename

JOB_KEY = "study_job"
RESULT_KEY = "study_bundle"
BUDGET_CHOICES = ["0.1", "0.25", "0.5", "0.75", MINIMAL]
CONDITION_LABELS = {AREA_MATCHED_RANDOM: "Random (area-matched control)", NO_EXPLANATION: "No explanation"}


def _widget(name: str, container, default=None):
    f = StudyOptions.field(name)
    return forms.field_widget(f, forms.key_of("study", name), f.default if default is None else default, container)


def _settings(clf, scan) -> tuple[StudyOptions | None, RegionSpec | None]:
    mistakes = sum(1 for r in scan.readable if not r.correct)
    right = sum(1 for r in scan.readable if r.correct)
    st.subheader("1 · Images")
    st.caption(f"The scan found {mistakes} mistakes and {right} correctly classified images in this set.")
    c1, c2, c3 = st.columns(3)
    values = {
        "mistakes": c1.number_input(
            "Mistakes", 0, 10_000, min(12, mistakes), key="study_mistakes", persist_state="session"
        ),
        "correct": c2.number_input(
            "Correct images (controls)", 0, 10_000, min(4, right), key="study_correct", persist_state="session"
        ),
    }
    seed = StudyOptions.field("seed")
    values["seed"] = c3.number_input(
        "Seed", 0, int(seed.spec.high or 2**31 - 1), 0, key="study_seed", help=seed.spec.help, persist_state="session"
    )
    with st.expander("Filters: class, confusion, confidence, or an explicit list", icon=":material/filter_alt:"):
        f1, f2 = st.columns(2)
        for index, name in enumerate(("classes", "confusion", "min_confidence", "max_confidence")):
            values[name] = _widget(name, (f1, f2)[index % 2])
        values["images"] = _widget("images", st)
    st.subheader("2 · Conditions and look")
    available = [m.name for m in METHODS if m.availability(clf)[0] and m.name != "random"]
    choices = available + [AREA_MATCHED_RANDOM, NO_EXPLANATION]
    c1, c2 = st.columns([3, 2])
    conditions = c1.multiselect(
        "Conditions",
        choices,
        default=[c for c in ("lima", "smdl", AREA_MATCHED_RANDOM, NO_EXPLANATION) if c in choices],
        format_func=lambda c: CONDITION_LABELS.get(c) or METHODS.get(c).label,
        key="study_conditions",
        persist_state="session",
        help=StudyOptions.field("conditions").spec.help,
    )
    budgets = c2.multiselect(
        "Budgets (share of the area)",
        BUDGET_CHOICES,
        default=["0.1", "0.25", "0.5"],
        key="study_budgets",
        persist_state="session",
        help=StudyOptions.field("budgets").spec.help,
    )
    c1, c2, c3, c4 = st.columns(4)
    values["task"] = _widget("task", c1)
    values["target"] = _widget("target", c2)
    values["k"] = _widget("k", c3)
    values["fill"] = _widget("fill", c4)
    c1, c2, c3 = st.columns(3)
    values["size"] = _widget("size", c1)
    values["outline"] = _widget("outline", c2)
    method = c3.selectbox(
        "Regions",
        [m.name for m in REGION_METHODS if not m.slow_on_cpu],
        key="study_regions",
        format_func=lambda m: REGION_METHODS.get(m).label,
        persist_state="session",
    )
    with st.expander("Region parameters", icon=":material/tune:"):
        region_options = forms.options_form(REGION_METHODS.get(method).options, f"study_rp_{method}")
    st.subheader("3 · Design")
    c1, c2, c3, c4 = st.columns(4)
    values["design"] = _widget("design", c1)
    values["lists"] = _widget("lists", c2, default=max(1, len(conditions)))
    values["practice"] = _widget("practice", c3)
    values["checks"] = _widget("checks", c4)
    if not conditions or not budgets or region_options is None:
        st.info("Choose at least one condition and one budget.")
        return None, None
    try:
        options = StudyOptions.from_mapping(
            {**values, "conditions": ",".join(conditions), "budgets": ",".join(budgets)}
        )
        options.check()
    except LimaError as exc:
        st.error(md_message(exc))
        return None, None
    return options, RegionSpec(method, region_options)


def _start(ctx, options: StudyOptions, regions: RegionSpec, scan_result) -> None:
    if public.on():  # the button is disabled there; a forged click starts nothing either
        return
    clf, image_set = ctx.clf, ctx.image_set
    blob = json.dumps([ctx.model_key, ctx.set_key, study_config_json(options, regions)], sort_keys=True)
    key = "study:" + hashlib.sha256(blob.encode()).hexdigest()[:16]
    runs = resources.run_store()
    job = resources.job_manager().submit(
        key,
        "study",
        f"Study from {image_set.name}",
        lambda: iter_build_study(
            options,
            clf,
            image_set,
            regions,
            scan_result=scan_result,
            runs=runs,
            methods_store=MethodStore(runs.root / "_methods"),
        ),
    )
    components.start_job(JOB_KEY, job)


def _summary(bundle: StudyBundle) -> None:
    study = bundle.study
    counts, match = study["counts"], study["area_matching"]
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Stimuli", counts["stimuli"])
    c2.metric("Lists", study["resolved"]["lists"])
    c3.metric("Trials per list", counts["trials_per_list"])
    c4.metric("Explanations computed", f"{bundle.stats.get('searched', 0)} (reused {bundle.stats.get('reused', 0)})")
    if match["n"]:
        st.caption(
            f"Random control vs the reference stimulus's area: |Δ| mean {match['mean_abs_delta']:.4f}, "
            f"max {match['max_abs_delta']:.4f} over {match['n']} stimuli (limit {match['tolerance']})."
        )
    name = safe_filename(f"lima-study-{study['image_set']['name']}-seed{study['seed']}", 60)
    st.download_button(
        "Download the bundle (zip)",
        data=bundle.zip,
        file_name=f"{name}.zip",
        mime="application/zip",
        on_click="ignore",
        icon=":material/download:",
        type="primary",
        key="study_zip",
    )


def _participant_view(bundle: StudyBundle) -> None:
    """List N trial by trial, exactly as a participant sees it (no condition, no answer)."""
    names = [f"list_{i + 1:02d}" for i in range(len(bundle.lists))]
    c1, c2 = st.columns([1, 3])
    chosen = c1.selectbox("List", names, key="study_view_list")
    trials = bundle.lists[names.index(chosen or names[0])]
    if not trials:
        st.info("This list has no trials.")
        return
    number = c1.number_input("Trial", 1, len(trials), 1, key="study_view_trial")
    trial = trials[int(number) - 1]
    with c2.container(border=True):
        st.caption(
            f"Trial {trial['trial_index']} of {len(trials)}"
            + (" · practice" if trial["trial_type"] == "practice" else "")
        )
        files = bundle.files
        task = bundle.study["resolved"]["task"]
        if task == "distinction":
            st.image(io.BytesIO(files[trial["stimulus"]]), width=240)
            st.markdown("Which of these explanations is for the class the model predicted?")
            options = [k for k in trial if k.startswith("option_")]
            cols = st.columns(len(options))
            for col, key in zip(cols, options):
                col.image(io.BytesIO(files[trial[key]]), caption=key.replace("option_", "Option "), width="stretch")
        else:
            st.image(io.BytesIO(files[trial["stimulus"]]), width=320)
            if task == "agreement":
                st.markdown(f"The model says: **{md(trial['shown_label'])}**")
                st.radio(
                    "How sure are you that the model is right?",
                    ["1 · sure it is wrong", "2", "3", "4 · sure it is right"],
                    horizontal=True,
                    index=None,
                    key=f"study_view_answer_{chosen}_{number}",
                )
            else:
                st.markdown(f"The true label is **{md(trial['shown_label'])}**. Which label did the model give?")
                st.radio(
                    "The model's label",
                    [trial[k] for k in trial if k.startswith("option_")],
                    index=None,
                    key=f"study_view_answer_{chosen}_{number}",
                    format_func=md,
                )


def _contact_sheet(bundle: StudyBundle) -> None:
    st.caption(
        "Every stimulus with its image, condition, budget, explained class, p(target) and area (researcher only)."
    )
    st.image(io.BytesIO(bundle.contact_sheet), width="stretch")
    manifest = pd.read_csv(io.BytesIO(bundle.files["manifest.csv"]), dtype=str, keep_default_na=False)
    with st.expander("Manifest", icon=":material/table:"):
        st.dataframe(manifest, hide_index=True, width="stretch")


def main() -> None:
    st.title("Study")
    st.markdown(
        "Make the images participants see in a human study of explanations: mistakes and correct "
        "controls, explanation conditions with an area-matched random control, Latin-square or "
        "between-subject lists, and a bundle with opaque file names, lists for jsPsych, PsychoPy, "
        "Gorilla or lab.js, an answer key and checksums. Explanations come from the saved runs."
    )
    ctx = sidebar.context()
    clf, image_set = ctx.require_model(), ctx.require_set()
    scan = resources.scan_cache().get(clf, image_set)
    if scan is None:
        st.info(
            "Scan the image set on **Find errors** first: the study picks its images from the scan.",
            icon=":material/search:",
        )
        st.page_link(page.ERRORS_PAGE, label="Find errors", icon=":material/search:")
        return
    options, regions = _settings(clf, scan)
    finished = components.finished_job(JOB_KEY)
    if finished is not None and finished.status == "done":
        st.session_state[RESULT_KEY] = finished.result
    components.show_outcome(JOB_KEY)
    job = components.job_panel(JOB_KEY)
    if options is not None and regions is not None:
        try:  # the images are chosen from the scan at once, so a shortfall shows before any work
            chosen = select_images(image_set, scan, options)
        except LimaError as exc:
            st.error(md_message(exc))
            return
        main_images = [c for c in chosen if c.role == "main"]
        wrong = sum(1 for c in main_images if not c.correct)
        st.caption(
            f"{len(main_images)} images ({wrong} mistakes, {len(main_images) - wrong} correct), "
            f"{options.practice} practice and {options.checks} check trials per list, {options.lists} lists. "
            "Saved explanations are reused; the others are computed in the background."
        )
        st.button(
            "Build the study",
            type="primary",
            disabled=(job is not None and job.active) or public.on(),
            help="A public demo shows saved results only; studies are built on a team server." if public.on() else None,
            on_click=_start,
            args=(ctx, options, regions, scan),
            icon=":material/play_arrow:",
            key="study_build",
        )
    bundle = st.session_state.get(RESULT_KEY)
    if bundle is not None:
        st.subheader("4 · Preview and download")
        _summary(bundle)
        view, sheet = st.tabs(["Participant view", "Contact sheet"])
        with view:
            _participant_view(bundle)
        with sheet:
            _contact_sheet(bundle)
    state.init_state()


page.render("Study", main)
