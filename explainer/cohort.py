"""A cohort: the explanations of many images looked at together (e.g. every mistake of one
confusion pair), from the outcomes of a batch (:class:`explainer.batch.ImageOutcome`).

Per image: the minimal subset (its size and the share of the image it covers), the highest
p(target) on the insertion path, and the gain (highest − p(target) on the whole image: how much
the target class recovers when only the deciding regions are shown). Over the cohort: sorting,
the mean location map of the deciding regions over normalised coordinates, and exports (CSV and
JSON with provenance, and a contact sheet PDF of every minimal subset on one scale). Runs are
read from the run store one at a time, so memory stays flat however large the cohort.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from explainer import render
from explainer.batch import BatchOptions, ImageOutcome
from explainer.errors import LimaError
from explainer.explanation import Explanation
from explainer.run_index import RunFilter
from explainer.store import RunStore

# How the gallery can be sorted: name -> (what is compared, largest first?)
SORT_KEYS: dict[str, tuple[str, bool]] = {
    "subset size": ("subset_size", False),
    "highest confidence": ("highest_confidence", True),
    "gain": ("gain", True),
}
MAP_SIZE = 64  # cells per side of the location map (normalised coordinates)


def sort_outcomes(outcomes: Iterable[ImageOutcome], by: str) -> list[ImageOutcome]:
    """Outcomes sorted by one of :data:`SORT_KEYS` (ties by name), e.g. the smallest subsets first."""
    if by not in SORT_KEYS:
        raise ValueError(f"sort by one of {', '.join(SORT_KEYS)}, got {by!r}")
    attribute, descending = SORT_KEYS[by]

    def value(o: ImageOutcome) -> float:
        return float(len(o.minimal_subset)) if attribute == "subset_size" else float(getattr(o, attribute))

    return sorted(outcomes, key=lambda o: (-value(o) if descending else value(o), o.name))


def rows(outcomes: Iterable[ImageOutcome], class_names: Sequence[str] = ()) -> list[dict[str, Any]]:
    """One flat row per image (the CSV's and the page's table)."""

    def name(c: int | None) -> str:
        return class_names[c] if c is not None and 0 <= c < len(class_names) else ""

    return [
        {
            "image": o.name,
            "run_key": o.run_key,
            "true": name(o.label),
            "predicted": name(o.prediction),
            "target": name(o.target),
            "subset_size": len(o.minimal_subset),
            "n_regions": o.n_regions,
            "subset_area": round(o.minimal_subset_area, 4),
            "highest_confidence": round(o.highest_confidence, 4),
            "full_confidence": round(o.full_confidence, 4),
            "gain": round(o.gain, 4),
            "insertion_auc": round(o.insertion_auc, 4),
            "deletion_auc": round(o.deletion_auc, 4),
            "forward_passes": o.forward_passes,
            "seconds": o.seconds,
            "worker": o.worker,
        }
        for o in outcomes
    ]


def saved_filter(
    model_id: str, set_name: str, selection: BatchOptions, region_method: str, class_names: Sequence[str]
) -> RunFilter:
    """The run-index filter of a cohort's saved runs: this model and image set, the region
    method, the class explained (true or predicted), and the selection's confusion pair, true
    class (one) or mistakes. Region parameters and search settings are not in the index: runs
    of the same method with other settings match too."""
    from explainer.batch import class_index, parse_confusion

    confusion = label = None
    if selection.confusion:
        true, pred = parse_confusion(selection.confusion, class_names)
        confusion = (class_names[true], class_names[pred])
    wanted = [c for c in (selection.classes or "").split(",") if c.strip()]
    if len(wanted) > 1:
        raise ValueError("a cohort's saved runs are listed for one true class at a time")
    if wanted:
        label = class_names[class_index(wanted[0], class_names)]
    return RunFilter(
        model=model_id,
        image_set=set_name,
        label=label,
        regions=region_method,
        confusion=confusion,
        mistakes=selection.errors_only or bool(confusion),
        explains=selection.target,
    )


def saved_outcomes(runs: RunStore, keys: Iterable[str], limit: int | None = None) -> list[ImageOutcome]:
    """The outcomes of saved runs (``keys`` newest first, e.g. from ``runs.list(saved_filter(...))``),
    one per image: the newest run of an image stands for it; at most ``limit`` images. Runs are
    loaded one at a time; damaged ones are skipped."""
    outcomes: list[ImageOutcome] = []
    seen: set[str] = set()
    for key in keys:
        if limit is not None and len(outcomes) >= limit:
            break
        try:
            exp = runs.load(key)
        except LimaError:
            continue
        outcome = ImageOutcome.saved(key, exp)
        image = outcome.item_key or outcome.name
        if image in seen:
            continue
        seen.add(image)
        outcomes.append(outcome)
    return outcomes


def subset_mask(exp: Explanation) -> np.ndarray:
    """S×S bool: where the minimal subset's regions are."""
    return render.revealed_mask(exp.labels, exp.order, exp.minimal_subset_size)


def normalised(mask: np.ndarray, size: int = MAP_SIZE) -> np.ndarray:
    """A mask on a size×size grid over normalised coordinates (each cell: the share of it covered)."""
    from PIL import Image

    img = Image.fromarray(mask.astype(np.float32), mode="F")
    return np.asarray(img.resize((size, size), Image.Resampling.BOX), np.float64)


def location_map(runs: RunStore, keys: Iterable[str], size: int = MAP_SIZE) -> tuple[np.ndarray, int]:
    """The mean location of the deciding regions: for each cell of a size×size grid over the
    frame (normalised coordinates, 0..1 both ways), the share of the cohort's images whose
    minimal subset covers it. Returns (size×size float64 in [0, 1], images used); runs that
    cannot be loaded are skipped."""
    total = np.zeros((size, size), np.float64)
    used = 0
    for key in keys:
        try:
            exp = runs.load(key)
        except LimaError:  # a damaged or deleted run: the map is over the others
            continue
        total += normalised(subset_mask(exp), size)
        used += 1
    return (total / used if used else total), used


def location_image(mean_map: np.ndarray, scale: int = 4) -> tuple[np.ndarray, render.ColourScale]:
    """The location map as an RGB image on a fixed 0..1 scale, and that scale (for a legend)."""
    colours = render.ColourScale(render.SEQUENTIAL, 0.0, 1.0, "no image's subset here", "every image's subset here")
    return render.upscale(colours.colours(mean_map), scale), colours


def subset_view(exp: Explanation, scale: int = 1) -> np.ndarray:
    """The minimal subset as the model saw it (the rest black), outlined: every image of a
    cohort on one scale (the classifier's view size × ``scale``)."""
    k = exp.minimal_subset_size
    return render.step_image(exp.view, exp.labels, exp.order, k, scale=scale, highlight=False, subset_size=k)


def to_csv(outcomes: Sequence[ImageOutcome], provenance: dict[str, Any], class_names: Sequence[str] = ()) -> str:
    """The cohort table as CSV; ``#`` lines first hold the provenance (one line of JSON), so
    ``pandas.read_csv(path, comment="#")`` reads the table."""
    buf = io.StringIO()
    buf.write("# LiMA Lens cohort: one row per image (minimal subset, highest confidence, gain)\n")
    buf.write("# provenance: " + json.dumps(provenance, default=str, ensure_ascii=False) + "\n")
    table = rows(outcomes, class_names)
    if table:
        writer = csv.DictWriter(buf, fieldnames=list(table[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(table)
    return buf.getvalue()


def to_json(outcomes: Sequence[ImageOutcome], provenance: dict[str, Any]) -> str:
    """The cohort as JSON: provenance, a summary and every image's outcome (the batch's keys)."""
    doc = {"provenance": provenance, "summary": summary(outcomes), "images": [o.to_dict() for o in outcomes]}
    return json.dumps(doc, indent=1, default=str, ensure_ascii=False)


def summary(outcomes: Sequence[ImageOutcome]) -> dict[str, Any]:
    """Medians and means of the cohort's per-image numbers."""
    if not outcomes:
        return {"images": 0}

    def stats(values: list[float]) -> dict[str, float]:
        a = np.asarray(values, np.float64)
        return {"mean": float(a.mean()), "median": float(np.median(a)), "min": float(a.min()), "max": float(a.max())}

    return {
        "images": len(outcomes),
        "subset_size": stats([len(o.minimal_subset) for o in outcomes]),
        "subset_area": stats([o.minimal_subset_area for o in outcomes]),
        "highest_confidence": stats([o.highest_confidence for o in outcomes]),
        "gain": stats([o.gain for o in outcomes]),
    }


def contact_sheet(
    runs: RunStore,
    outcomes: Sequence[ImageOutcome],
    provenance: dict[str, Any],
    columns: int = 5,
    per_page: int = 20,
    class_names: Sequence[str] = (),
) -> bytes:
    """A PDF with every image's minimal subset on one scale, ``per_page`` to a page, captioned
    with its name, subset size and highest confidence; the provenance is in the PDF's metadata
    (``Keywords``, JSON) and on the first page."""
    from matplotlib.backends.backend_pdf import PdfPages
    from matplotlib.figure import Figure

    buf = io.BytesIO()
    meta = {
        "Title": "LiMA Lens cohort contact sheet",
        "Subject": f"{len(outcomes)} minimal subsets",
        "Keywords": json.dumps(provenance, default=str, ensure_ascii=True),
        "Creator": "LiMA Lens",
    }
    pages = [outcomes[i : i + per_page] for i in range(0, max(len(outcomes), 1), per_page)]
    with PdfPages(buf, metadata=meta) as pdf:
        for number, page in enumerate(pages):
            rows_ = max(1, -(-len(page) // columns))
            fig = Figure(figsize=(8.27, 11.69))
            header = f"LiMA Lens cohort · {len(outcomes)} images · page {number + 1} of {len(pages)}"
            if number == 0:
                header += (
                    f"\n{provenance.get('model', {}).get('id', '')} · {provenance.get('image_set', '')} · "
                    f"regions {provenance.get('regions', {}).get('method', '')} · {provenance.get('created', '')}"
                )
            fig.suptitle(header, fontsize=8)
            for i, outcome in enumerate(page):
                ax = fig.add_subplot(max(rows_, per_page // columns), columns, i + 1)
                ax.set_axis_off()
                try:
                    exp = runs.load(outcome.run_key)
                except LimaError:
                    ax.set_title(f"{outcome.name[:22]}\n(run missing)", fontsize=5)
                    continue
                ax.imshow(subset_view(exp))
                target = class_names[outcome.target] if 0 <= outcome.target < len(class_names) else outcome.target
                ax.set_title(
                    f"{outcome.name[:24]}\n{len(outcome.minimal_subset)}/{outcome.n_regions} regions · "
                    f"best p({str(target)[:14]}) {outcome.highest_confidence:.2f}",
                    fontsize=5,
                )
            pdf.savefig(fig)
    return buf.getvalue()


__all__ = [
    "MAP_SIZE",
    "SORT_KEYS",
    "contact_sheet",
    "location_image",
    "location_map",
    "normalised",
    "rows",
    "sort_outcomes",
    "subset_mask",
    "subset_view",
    "summary",
    "to_csv",
    "to_json",
]
