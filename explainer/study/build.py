"""Build a study: select the images, get every needed ranking (reused from the stores), render the
stimuli, counterbalance the lists and assemble the bundle's files.

    from explainer.study import StudyOptions, build_study
    bundle = build_study(StudyOptions(mistakes=12, correct=4, seed=7), clf, image_set,
                         RegionSpec("slico", SlicoOptions(region_size=45)), scan_result=scan)
    bundle.write("out/study"); bundle.zip()

:func:`iter_build_study` is the generator core (progress after every search batch; stop
iterating to cancel). Nothing in the bundle depends on the time, the device's name or what was
already in the stores, so the same configuration and seed give byte-identical files.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from explainer import scan as scanning
from explainer.comparison import MethodStore
from explainer.config import SearchOptions
from explainer.data import ImageSet
from explainer.errors import StudyError
from explainer.models import Classifier
from explainer.progress import eta_from_rate
from explainer.regions import REGION_METHODS, RegionSpec, propose_regions
from explainer.search import library_versions, tracked_beside
from explainer.store import RunStore
from explainer.study import bundle as files_
from explainer.study.conditions import (
    MATCH_TOLERANCE,
    RankedOrder,
    Reveal,
    full_reveal,
    iter_order,
    random_reveal,
    ranked_reveal,
    reveal_mask,
)
from explainer.study.design import Trial, build_lists
from explainer.study.options import (
    AREA_MATCHED_RANDOM,
    GUESS_NEEDS_MISTAKES,
    MINIMAL,
    NO_EXPLANATION,
    StudyOptions,
    dump_toml,
)
from explainer.study.rendering import contact_sheet, decode_png, png_bytes, resize_rgb, stimulus
from explainer.study.selection import SelectedImage, seeded_rng, select_images

FORMAT = "lima-lens/study/1"
Budget = float | str | None


def budget_text(budget: Budget) -> str:
    """The manifest's budget: "0.25", "minimal", or "" (no explanation)."""
    if budget is None:
        return ""
    return budget if isinstance(budget, str) else f"{budget:g}"


def opaque_id(seed: int, *parts: object) -> str:
    """12 hex digits naming a stimulus or an image: nothing about it can be read off the name."""
    return hashlib.sha256(repr((int(seed), *parts)).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class StimulusSpec:
    """What one stimulus shows: an image, the class explained, the condition and the budget."""

    key: str
    target: int
    condition: str
    budget: Budget


@dataclass(frozen=True)
class Stimulus:
    """A rendered stimulus and everything the manifest says about it."""

    stimulus_id: str
    file: str
    png: bytes
    sha256: str
    image: SelectedImage
    spec: StimulusSpec
    reveal: Reveal
    p_target: float
    image_id: str

    def manifest_row(self, class_names: tuple[str, ...], options: StudyOptions) -> dict[str, Any]:
        row = self.image.row
        return {
            "stimulus_id": self.stimulus_id,
            "file": self.file,
            "sha256": self.sha256,
            "image_id": self.image_id,
            "image_name": self.image.item.name,
            "source_sha256": self.image.item.source_digest(),
            "correct": "true" if row.correct else "false",
            "true_class": row.label,
            "true_name": class_names[row.label],
            "predicted_class": row.pred,
            "predicted_name": class_names[row.pred],
            "predicted_confidence": f"{row.p_pred:.6f}",
            "condition": self.spec.condition,
            "target_class": self.spec.target,
            "budget": budget_text(self.spec.budget),
            "realized_area": f"{self.reveal.area:.6f}",
            "revealed_regions": ";".join(str(r) for r in self.reveal.regions),
            "p_target": f"{self.p_target:.6f}",
            "fill": options.fill,
            "size": options.size,
            "run_key": self.reveal.key,
            "seed": options.seed,
            "role": self.image.role,
        }


@dataclass(frozen=True)
class StudyBundle:
    """A built study: every file of the bundle (path -> bytes) and the structures behind them.

    Attributes:
        files: every bundle file by its path inside the bundle (``stimuli/…``, ``lists/…``, …).
        stimuli: by stimulus id; lists: each list's trial rows as written (participant-facing).
        answers: the answer key's rows; study: the ``study.json`` document.
        stats: what this build cost (not written into the bundle: it depends on the stores).
    """

    files: dict[str, bytes]
    stimuli: dict[str, Stimulus]
    lists: list[list[dict[str, Any]]]
    answers: list[dict[str, Any]]
    study: dict[str, Any]
    stats: dict[str, Any] = field(default_factory=dict)

    def write(self, out: str | Path) -> Path:
        return files_.write_folder(self.files, out)

    def zip(self) -> bytes:
        return files_.zip_bytes(self.files)

    @property
    def contact_sheet(self) -> bytes:
        return self.files["contact_sheet.png"]


@dataclass(frozen=True)
class StudyProgress:
    """Where a build is (an :class:`explainer.progress.Progress`)."""

    done: float
    total: int
    elapsed_s: float
    current: str = ""
    result: StudyBundle | None = None

    @property
    def fraction(self) -> float:
        return 1.0 if self.result is not None else min(0.99, self.done / max(self.total, 1))

    @property
    def eta_s(self) -> float | None:
        return 0.0 if self.result is not None else eta_from_rate(self.done, self.total, self.elapsed_s)

    def describe(self) -> str:
        return self.current or "preparing the study"


# -- what each trial needs ---------------------------------------------------------------------------------


def candidates(probs: np.ndarray, true: int, k: int) -> list[int]:
    """The distinction task's k classes: the top k, or for a mistake the top k−1 and the true class."""
    if k > len(probs):
        raise StudyError(f"{k} options per trial need at least {k} classes; the model has {len(probs)}")
    ranked = [int(c) for c in np.argsort(-probs, kind="stable")]
    top = ranked[:k]
    if true not in top:
        top = ranked[: k - 1] + [true]
    return top


def guess_options(probs: np.ndarray, true: int, pred: int, k: int) -> list[int]:
    """The guess task's k labels: the model's label and the next most likely classes (not the
    true one, which the participant is shown; a main trial is always a mistake)."""
    others = [int(c) for c in np.argsort(-probs, kind="stable") if c != pred and c != true]
    if len(others) < k - 1:
        raise StudyError(f"{k} options per trial need at least {k + 1} classes; the model has {len(probs)}")
    return [pred] + others[: k - 1]


@dataclass
class _Image:
    """One image's working data."""

    image: SelectedImage
    view: np.ndarray
    labels: np.ndarray
    probs: np.ndarray
    specs: list[StimulusSpec] = field(default_factory=list)


def _trial_specs(trial: Trial, im: _Image, options: StudyOptions) -> tuple[list[StimulusSpec], list[int]]:
    """The stimuli a trial shows (first: the main one) and its option classes (distinction: the
    candidates' classes; guess: the labels) before positioning."""
    row = im.image.row
    key, cond, budget = row.key, trial.cell.condition, trial.cell.budget
    if options.task == "distinction":
        classes = candidates(im.probs, row.label, options.k)
        return [StimulusSpec(key, row.pred, NO_EXPLANATION, None)] + [
            StimulusSpec(key, c, cond, budget) for c in classes
        ], classes
    target = row.pred if options.resolved_target() == "predicted" else row.label
    spec = StimulusSpec(key, target, cond, budget if cond != NO_EXPLANATION else None)
    if options.task == "guess":
        return [spec], guess_options(im.probs, row.label, row.pred, options.k)
    return [spec], []


def _placed(classes: list[int], answer_class: int, position: int, rng: np.random.Generator) -> list[int]:
    """``classes`` reordered so ``answer_class`` sits at 1-based ``position``, the rest shuffled."""
    rest = [c for c in classes if c != answer_class]
    rest = [rest[i] for i in rng.permutation(len(rest))]
    return rest[: position - 1] + [answer_class] + rest[position - 1 :]


# -- the build --------------------------------------------------------------------------------------------


def iter_build_study(
    options: StudyOptions,
    clf: Classifier,
    image_set: ImageSet,
    regions: RegionSpec,
    *,
    scan_result: scanning.ScanResult | None = None,
    runs: RunStore | None = None,
    methods_store: MethodStore | None = None,
) -> Iterator[StudyProgress]:
    """Build the study; yields progress, the last item carrying the :class:`StudyBundle`.

    Raises:
        StudyError (and the option classes' errors): bad settings, too few images, before any search.
    """
    options.check()
    if regions.options is None or regions.method not in REGION_METHODS:
        raise StudyError(f"a study needs a region method ({', '.join(REGION_METHODS.names())}), got {regions.method!r}")
    conditions, budgets = options.condition_names(), options.budget_values()
    runs = runs or RunStore()
    methods_store = methods_store or MethodStore(runs.root / "_methods")
    # The explanations are searched and scored with the fill participants see (study-design §3.3).
    search_fill = options.fill
    start = time.perf_counter()
    yield StudyProgress(0, 1, 0.0, "scanning the image set")
    result = scan_result or scanning.scan(clf, image_set)
    chosen = select_images(image_set, result, options)
    given_away = [s.item.name for s in chosen if options.task == "guess" and s.role == "main" and s.correct]
    if given_away:  # an explicit list with correct images (practice and checks may be correct)
        raise StudyError(f"{GUESS_NEEDS_MISTAKES}; correct: {', '.join(given_away[:5])}")
    lists = build_lists(chosen, options, conditions, budgets)
    ranked = [c for c in conditions if c not in (NO_EXPLANATION, AREA_MATCHED_RANDOM)]
    reference = "lima" if "lima" in ranked else (ranked[0] if ranked else None)

    images: dict[str, _Image] = {}
    for sel in chosen:
        view = clf.view(sel.item.load())
        labels = propose_regions(view, regions.method, regions.options)
        probs = clf.predict(view[None])[0]
        images[sel.item.key] = _Image(sel, view, labels, np.asarray(probs, np.float64))
    trial_specs: dict[tuple[int, int], tuple[list[StimulusSpec], list[int]]] = {}
    for trials in lists:
        for t in trials:
            specs, classes = _trial_specs(t, images[t.image.item.key], options)
            trial_specs[(t.list_index, t.position)] = (specs, classes)
            for s in specs:
                if s not in images[s.key].specs:
                    images[s.key].specs.append(s)
    # Every (image, target, method) order the stimuli need; random needs its reference's.
    needed: list[tuple[str, int, str]] = []
    for key, im in images.items():
        for s in im.specs:
            methods = [s.condition] if s.condition in ranked else []
            if s.condition == AREA_MATCHED_RANDOM and reference is not None:
                methods = [reference]
            for m in methods:
                if (key, s.target, m) not in needed:
                    needed.append((key, s.target, m))
    total = len(needed) + len(images)
    orders: dict[tuple[str, int, str], RankedOrder] = {}
    searched = 0
    for done, (key, target, method) in enumerate(needed):
        im = images[key]
        source = {"name": im.image.item.name, "digest": im.image.item.source_digest(), "label": im.image.row.label}
        tracked = tracked_beside(im.probs, target, im.image.row.label)
        for item in iter_order(
            clf,
            im.view,
            im.labels,
            target,
            method,
            search_fill,
            runs,
            methods_store,
            regions,
            source,
            options.seed,
            tracked,
        ):
            if item.result is not None:
                orders[(key, target, method)] = item.result
                searched += item.result.searched
            yield StudyProgress(
                done + item.fraction,
                total,
                time.perf_counter() - start,
                f"{method} on {im.image.item.name} ({done + 1} of {len(needed)} explanations)",
            )

    stimuli: dict[StimulusSpec, Stimulus] = {}
    area_gaps: list[float] = []
    for done, (key, im) in enumerate(images.items()):
        yield StudyProgress(len(needed) + done, total, time.perf_counter() - start, f"rendering {im.image.item.name}")
        reveals = []
        for s in im.specs:
            if s.condition == NO_EXPLANATION:
                rv = full_reveal(im.labels)
            elif s.condition == AREA_MATCHED_RANDOM:
                assert s.budget is not None
                if reference is not None:
                    ref = ranked_reveal(im.labels, orders[(key, s.target, reference)], s.budget)
                    goal, ref_key = ref.area, ref.key
                elif s.budget == MINIMAL:
                    raise StudyError("the budget 'minimal' needs a ranked method beside the random control")
                else:
                    goal, ref_key = float(s.budget), ""
                rng = seeded_rng(options.seed, "random", key, s.target, budget_text(s.budget))
                rv = random_reveal(im.labels, goal, s.budget, rng, ref_key)
                area_gaps.append(abs(rv.area - goal))
                if abs(rv.area - goal) > MATCH_TOLERANCE:
                    raise StudyError(
                        f"{im.image.item.name}: no random set of regions comes within {MATCH_TOLERANCE} of the "
                        f"area {goal:.3f}; use smaller regions"
                    )
            else:
                assert s.budget is not None
                rv = ranked_reveal(im.labels, orders[(key, s.target, s.condition)], s.budget)
            reveals.append(rv)
        arrays = [
            stimulus(im.view, reveal_mask(im.labels, rv), options.fill, options.size, options.outline) for rv in reveals
        ]
        # p(target) of each stimulus as the model sees it: the stimulus itself at the model's resolution.
        batch = np.stack([resize_rgb(a, clf.size) for a in arrays])
        probs = clf.predict(batch)
        image_id = opaque_id(options.seed, "image", key)
        for s, rv, array, p in zip(im.specs, reveals, arrays, probs):
            sid = opaque_id(options.seed, "stimulus", key, s.target, s.condition, budget_text(s.budget))
            png = png_bytes(array)
            stimuli[s] = Stimulus(
                sid,
                f"stimuli/{sid}.png",
                png,
                hashlib.sha256(png).hexdigest(),
                im.image,
                s,
                rv,
                float(p[s.target]),
                image_id,
            )
    if len({st.stimulus_id for st in stimuli.values()}) != len(stimuli):
        raise StudyError("two stimuli got the same name; choose another seed")  # 2^-48 odds; never silently

    bundle = _assemble(options, clf, image_set, regions, conditions, budgets, lists, trial_specs, stimuli, area_gaps)
    stats = {
        "searched": searched,
        "reused": len(needed) - searched,
        "seconds": time.perf_counter() - start,
        "stimuli": len(stimuli),
    }
    bundle = StudyBundle(bundle.files, bundle.stimuli, bundle.lists, bundle.answers, bundle.study, stats)
    yield StudyProgress(total, total, time.perf_counter() - start, "done", bundle)


def _assemble(
    options: StudyOptions,
    clf: Classifier,
    image_set: ImageSet,
    regions: RegionSpec,
    conditions: list[str],
    budgets: list[float | str],
    lists: list[list[Trial]],
    trial_specs: dict[tuple[int, int], tuple[list[StimulusSpec], list[int]]],
    stimuli: dict[StimulusSpec, Stimulus],
    area_gaps: list[float],
) -> StudyBundle:
    names = clf.class_names
    files: dict[str, bytes] = {}
    ordered = sorted(
        stimuli.values(),
        key=lambda s: (
            s.image.role != "main",
            s.image.item.key,
            s.spec.target,
            s.spec.condition,
            budget_text(s.spec.budget),
        ),
    )
    for st in ordered:
        files[st.file] = st.png
    manifest = [st.manifest_row(names, options) for st in ordered]
    files["manifest.csv"] = files_.csv_text(files_.MANIFEST_COLUMNS, manifest).encode()

    k = options.k
    columns = ["trial_index", "trial_type", "stimulus"]
    if options.task in ("agreement", "guess"):
        columns.append("shown_label")
    if options.task in ("distinction", "guess"):
        columns += [f"option_{i}" for i in range(1, k + 1)]
    list_rows: list[list[dict[str, Any]]] = []
    answers: list[dict[str, Any]] = []
    preload: dict[str, list[str]] = {}
    for trials in lists:
        rows = []
        for t in trials:
            specs, classes = trial_specs[(t.list_index, t.position)]
            row_ = t.image.row
            shown = [stimuli[s] for s in specs]
            rng = seeded_rng(options.seed, "options", t.list_index, t.position)
            row: dict[str, Any] = {"trial_index": t.position, "trial_type": t.trial_type, "stimulus": shown[0].file}
            option_classes: list[int] = []
            if options.task == "agreement":
                row["shown_label"] = names[row_.pred]
                answer = "yes" if row_.correct else "no"
            else:
                assert t.answer_position is not None
                option_classes = _placed(classes, row_.pred, t.answer_position, rng)
                answer = str(t.answer_position)
                if options.task == "guess":
                    row["shown_label"] = names[row_.label]
                    row.update({f"option_{i}": names[c] for i, c in enumerate(option_classes, start=1)})
                else:
                    by_class = {s.target: stimuli[s] for s in specs[1:]}
                    row.update({f"option_{i}": by_class[c].file for i, c in enumerate(option_classes, start=1)})
            rows.append(row)
            used = [st.stimulus_id for st in shown]
            if options.task == "distinction":
                used = [shown[0].stimulus_id] + [
                    next(st.stimulus_id for st in shown[1:] if st.spec.target == c) for c in option_classes
                ]
            answers.append(
                {
                    "list": files_.list_name(t.list_index),
                    "trial_index": t.position,
                    "trial_type": t.trial_type,
                    "stimulus_ids": ";".join(used),
                    "image_id": shown[0].image_id,
                    "image_name": t.image.item.name,
                    "correct": "true" if row_.correct else "false",
                    "true_class": row_.label,
                    "true_name": names[row_.label],
                    "predicted_class": row_.pred,
                    "predicted_name": names[row_.pred],
                    "condition": t.cell.condition,
                    "budget": budget_text(t.cell.budget),
                    "target_classes": ";".join(
                        str(st.spec.target) for st in shown if st.spec.condition == t.cell.condition
                    )
                    or str(shown[0].spec.target),
                    "answer": answer,
                    "option_classes": ";".join(str(c) for c in option_classes),
                }
            )
        name = files_.list_name(trials[0].list_index if trials else len(list_rows))
        files[f"lists/{name}.csv"] = files_.csv_text(columns, rows).encode()
        files[f"lists/{name}.json"] = files_.json_text(rows).encode()
        paths = {r["stimulus"] for r in rows} | {
            r[c] for r in rows for c in columns if c.startswith("option_") and options.task == "distinction"
        }
        preload[name] = sorted(paths)
        list_rows.append(rows)
    files["answer_key.csv"] = files_.csv_text(files_.ANSWER_COLUMNS, answers).encode()
    files["preload.json"] = files_.json_text(preload).encode()

    gaps = np.asarray(area_gaps, np.float64)
    model = clf.describe()
    study = {
        "format": FORMAT,
        "config": options.to_dict(),
        "resolved": {
            "conditions": conditions,
            "budgets": [budget_text(b) for b in budgets],
            "target": options.resolved_target(),
            "task": options.task,
            "design": options.design,
            "lists": options.lists,
            # The explanations' settings (lima searches bidirectionally, smdl greedily; both fill with this).
            "search_settings": {
                k_: v for k_, v in SearchOptions(fill=options.fill).to_dict().items() if k_ != "search"
            },
            "random_matches": "lima" if "lima" in conditions else "the first ranked condition, else the budget",
        },
        "regions": regions.to_dict(),
        # What ran the forward passes too: p_target's last digits differ between backends and devices
        # (not the device's name: the same bytes come from any machine of that kind).
        "model": {
            **{k_: model[k_] for k_ in ("id", "weights_hash", "num_classes", "preprocess", "backend", "precision")},
            "device_type": clf.device.type,
        },
        "image_set": {"name": image_set.name, "kind": image_set.kind, "images": len(image_set)},
        "seed": options.seed,
        "versions": library_versions(),
        "counts": {
            "stimuli": len(stimuli),
            "images": {
                role: sum(
                    1 for s in {st.image.item.key: st.image for st in stimuli.values()}.values() if s.role == role
                )
                for role in ("main", "practice", "check")
            },
            "trials_per_list": len(list_rows[0]) if list_rows else 0,
        },
        "area_matching": {
            "tolerance": MATCH_TOLERANCE,
            "n": int(gaps.size),
            "max_abs_delta": float(gaps.max()) if gaps.size else None,
            "mean_abs_delta": float(gaps.mean()) if gaps.size else None,
            "median_abs_delta": float(np.median(gaps)) if gaps.size else None,
        },
    }
    files["study.json"] = files_.json_text(study).encode()
    params = regions.options.to_dict() if regions.options is not None else {}
    files["study.toml"] = dump_toml(options, None, regions.method, params).encode()
    files["README.txt"] = files_.readme(options.task, k).encode()
    captions = [
        [
            f"{st.image.item.name[:28]}",
            f"{st.spec.condition} {budget_text(st.spec.budget) or 'full'}"
            + (" (wrong)" if not st.image.row.correct else " (right)"),
            f"{names[st.spec.target][:26]}",
            f"p={st.p_target:.2f} area={st.reveal.area:.2f}",
        ]
        for st in ordered
    ]
    files["contact_sheet.png"] = png_bytes(contact_sheet([decode_png(st.png) for st in ordered], captions))
    files[files_.CHECKSUMS] = files_.checksums(files).encode()
    return StudyBundle(files, {st.stimulus_id: st for st in ordered}, list_rows, answers, study)


def build_study(
    options: StudyOptions,
    clf: Classifier,
    image_set: ImageSet,
    regions: RegionSpec,
    **kwargs: Any,
) -> StudyBundle:
    """Run :func:`iter_build_study` to the end (same arguments) and return the bundle."""
    from explainer.progress import run_to_end

    return run_to_end(iter_build_study(options, clf, image_set, regions, **kwargs))


def study_config_json(options: StudyOptions, regions: RegionSpec) -> str:
    """A stable key text for a configuration (the page's job key)."""
    return json.dumps([options.to_dict(), regions.to_dict()], sort_keys=True)


__all__ = [
    "FORMAT",
    "Stimulus",
    "StimulusSpec",
    "StudyBundle",
    "StudyProgress",
    "budget_text",
    "build_study",
    "candidates",
    "guess_options",
    "iter_build_study",
    "opaque_id",
    "study_config_json",
]
