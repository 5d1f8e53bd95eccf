"""A faithfulness scorecard over an image set: every image × method, scored by one protocol, with
means, 95 % bootstrap intervals, the paired difference to LiMA and LiMA's win rate.

Per image: the classifier's view, the label map of the chosen region method, the target (the
true or the predicted class) and the class followed beside it; then each method's ranking,
scored by :func:`explainer.scoring.score_order` (results are kept by :class:`MethodStore`, so an
interrupted or repeated evaluation reuses every finished pair). In equal-cost mode the sampling
methods get exactly the forward passes LiMA spent on that image (LiMA then runs first).
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from explainer import scan as scanning
from explainer.comparison import MethodResult, MethodStore, iter_method, resolve_options
from explainer.data import ImageItem, ImageSet
from explainer.errors import MethodError
from explainer.methods import METHODS, MethodOptions, Subject
from explainer.models import Classifier
from explainer.options import Options, option
from explainer.progress import eta_from_rate
from explainer.regions import REGION_METHODS, RegionSpec, propose_regions
from explainer.scoring import BUDGET_KEYS

DEFAULT_METHODS = ("lima", "smdl", "gradcam", "gradcam++", "ig", "rise", "lime", "kernelshap", "ablation", "random")
# Each metric, whether higher is better, and how to read it from a MethodResult.
METRICS: dict[str, bool] = {
    "insertion_auc": True,
    "deletion_auc": False,
    **{f"highest_confidence@{k}": True for k in BUDGET_KEYS},
}


@dataclass(frozen=True)
class EvaluationOptions(Options):
    """Which images, which methods, which target."""

    error = MethodError
    what = "evaluation option"

    methods: str = option(",".join(DEFAULT_METHODS), help="Comma-separated method names (see the methods registry).")
    errors_only: bool = option(False, help="Only the images the model gets wrong.")
    limit: int | None = option(None, low=1, optional=True, help="At most this many images (in the set's order).")
    target: str = option(
        "true",
        choices=("true", "predicted"),
        help="Explain the true class (the default for mistakes) or the predicted class.",
    )
    equal_cost: bool = option(False, help="Give RISE, LIME and KernelSHAP exactly the forward passes LiMA spent.")
    seed: int = option(0, low=0, high=2**31 - 1, help="Seed of the sampling methods.")

    def method_names(self) -> list[str]:
        names = [m.strip() for m in self.methods.split(",") if m.strip()]
        for name in names:
            METHODS.get(name)  # an unknown name is a MethodError
        if not names:
            raise MethodError("name at least one method")
        return list(dict.fromkeys(names))


@dataclass(frozen=True)
class ImageEvaluation:
    """One image's results."""

    name: str
    key: str
    label: int
    target: int
    tracked: int
    prediction: int
    results: dict[str, MethodResult] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "key": self.key,
            "label": self.label,
            "target": self.target,
            "tracked": self.tracked,
            "prediction": self.prediction,
            "methods": {m: method_entry(r) for m, r in self.results.items()},
        }


def method_entry(result: MethodResult) -> dict[str, Any]:
    """The per-image, per-method JSON entry."""
    s = result.score
    return {
        "order": result.ranking.order.tolist(),
        "insertion_auc": s.insertion_auc,
        "deletion_auc": s.deletion_auc,
        "highest_confidence": dict(s.highest_confidence),
        "minimal_subset": list(s.minimal_subset),
        "forward_passes": result.ranking.forward_passes,
        "backward_passes": result.ranking.backward_passes,
        "seconds": result.ranking.seconds,
    }


def metric_value(result: MethodResult, metric: str) -> float | None:
    if metric.startswith("highest_confidence@"):
        return result.score.highest_confidence.get(metric.split("@", 1)[1])
    return float(getattr(result.score, metric))


@dataclass(frozen=True)
class EvaluationProgress:
    """Where an evaluation is (an :class:`explainer.progress.Progress`)."""

    images_done: int
    images_total: int
    pairs_done: int
    pairs_total: int
    elapsed_s: float
    current: str = ""
    result: Evaluation | None = None

    @property
    def fraction(self) -> float:
        return 1.0 if self.result is not None else self.pairs_done / max(self.pairs_total, 1)

    @property
    def eta_s(self) -> float | None:
        return 0.0 if self.result is not None else eta_from_rate(self.pairs_done, self.pairs_total, self.elapsed_s)

    def describe(self) -> str:
        now = f" · {self.current}" if self.current else ""
        return f"image {min(self.images_done + 1, self.images_total)} of {self.images_total}{now}"


@dataclass(frozen=True)
class Evaluation:
    """Every image's results, the summary, and the provenance of the whole evaluation."""

    images: tuple[ImageEvaluation, ...]
    methods: tuple[str, ...]
    provenance: dict[str, Any]
    seconds: dict[str, float]

    def summary(self, resamples: int = 2000, seed: int = 0) -> dict[str, Any]:
        return summarise(self.images, self.methods, resamples, seed, self.seconds)

    def to_dict(self) -> dict[str, Any]:
        return {
            "images": [im.to_dict() for im in self.images],
            "summary": self.summary(),
            "provenance": self.provenance,
        }


# -- statistics ---------------------------------------------------------------------------------------------------


def bootstrap_ci(values: np.ndarray, resamples: int = 2000, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean (seeded: the same data give the same interval)."""
    values = np.asarray(values, np.float64)
    if values.size == 0:
        return (float("nan"), float("nan"))
    if values.size == 1:
        return (float(values[0]), float(values[0]))
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, values.size, size=(resamples, values.size))].mean(axis=1)
    tail = (1 - level) / 2 * 100
    return float(np.percentile(means, tail)), float(np.percentile(means, 100 - tail))


def summarise(
    images: Sequence[ImageEvaluation],
    methods: Sequence[str],
    resamples: int = 2000,
    seed: int = 0,
    seconds: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Per method and metric: mean, 95 % bootstrap interval and n; versus LiMA (when it ran): the
    paired mean difference (method − LiMA) with its interval and LiMA's win rate (ties count
    half); and the mean cost (forward passes, seconds)."""
    out: dict[str, Any] = {}
    for method in methods:
        entry: dict[str, Any] = {}
        for metric, higher_better in METRICS.items():
            pairs = [
                (
                    metric_value(im.results[method], metric),
                    metric_value(im.results["lima"], metric) if "lima" in im.results else None,
                )
                for im in images
                if method in im.results
            ]
            mine = np.array([p for p, _ in pairs if p is not None], np.float64)
            lo, hi = bootstrap_ci(mine, resamples, seed)
            stats: dict[str, Any] = {
                "mean": float(mine.mean()) if mine.size else None,
                "ci": [lo, hi] if mine.size else None,  # None, not NaN: NaN is not valid JSON
                "n": int(mine.size),
            }
            both = np.array([(p, q) for p, q in pairs if p is not None and q is not None], np.float64)
            if method != "lima" and both.size:
                diff = both[:, 0] - both[:, 1]
                better = both[:, 1] > both[:, 0] if higher_better else both[:, 1] < both[:, 0]
                ties = both[:, 1] == both[:, 0]
                stats["vs_lima"] = {
                    "mean_diff": float(diff.mean()),
                    "ci": list(bootstrap_ci(diff, resamples, seed)),
                    "lima_win_rate": float((better.sum() + 0.5 * ties.sum()) / len(both)),
                    "n": int(len(both)),
                }
            entry[metric] = stats
        costs = [im.results[method] for im in images if method in im.results]
        entry["forward_passes"] = float(np.mean([r.ranking.forward_passes for r in costs])) if costs else None
        entry["backward_passes"] = float(np.mean([r.ranking.backward_passes for r in costs])) if costs else None
        entry["seconds"] = float(np.mean([r.ranking.seconds for r in costs])) if costs else None
        entry["wall_time_s"] = (seconds or {}).get(method)
        out[method] = entry
    return out


def table(summary: dict[str, Any], methods: Sequence[str]) -> str:
    """A paper-style text table: mean [95 % CI] per metric; then Δ vs LiMA and LiMA's win rate."""
    heads = ["method", "insertion ↑", "deletion ↓"] + [f"best@{k} ↑" for k in BUDGET_KEYS] + ["passes", "s/image"]
    rows = []
    for m in methods:
        s = summary[m]
        cells = [m] + [_mean_ci(s[metric]) for metric in METRICS]
        cells += [
            f"{s['forward_passes']:,.0f}" if s["forward_passes"] is not None else "",
            f"{s['seconds']:.2f}" if s["seconds"] is not None else "",
        ]
        rows.append(cells)
    text = _format(heads, rows)
    if "lima" in methods and len(methods) > 1:
        heads = ["method"] + [f"{_short(metric)} Δ vs LiMA (LiMA wins)" for metric in METRICS]
        rows = []
        for m in methods:
            if m == "lima":
                continue
            rows.append([m] + [_versus(summary[m][metric].get("vs_lima")) for metric in METRICS])
        text += "\n\n" + _format(heads, rows)
    return text


def _short(metric: str) -> str:
    return metric.replace("highest_confidence@", "best@").replace("_auc", "")


def _mean_ci(stats: dict[str, Any]) -> str:
    if stats["mean"] is None:
        return "–"
    lo, hi = stats["ci"]
    return f"{stats['mean']:.3f} [{lo:.3f}, {hi:.3f}]"


def _versus(stats: dict[str, Any] | None) -> str:
    if not stats:
        return "–"
    return f"{stats['mean_diff']:+.3f} ({100 * stats['lima_win_rate']:.0f} %)"


def _format(heads: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [heads, *rows]) for i in range(len(heads))]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths))  # noqa: E731
    return "\n".join([line(heads), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def to_csv(evaluation: Evaluation) -> str:
    """One row per image and method, with a provenance header for ``pandas.read_csv(comment="#")``."""
    import json

    buf = io.StringIO()
    buf.write("# LiMA Lens evaluation: one row per image and method\n")
    buf.write("# provenance: " + json.dumps(evaluation.provenance, default=str) + "\n")
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(
        [
            "name",
            "label",
            "target",
            "method",
            "insertion_auc",
            "deletion_auc",
            *[f"highest_confidence_{k}" for k in BUDGET_KEYS],
            "minimal_subset_size",
            "forward_passes",
            "backward_passes",
            "seconds",
        ]
    )
    for im in evaluation.images:
        for method, r in im.results.items():
            hc = [r.score.highest_confidence.get(k) for k in BUDGET_KEYS]
            w.writerow(
                [
                    im.name,
                    im.label,
                    im.target,
                    method,
                    f"{r.score.insertion_auc:.6f}",
                    f"{r.score.deletion_auc:.6f}",
                    *("" if v is None else f"{v:.6f}" for v in hc),
                    len(r.score.minimal_subset),
                    r.ranking.forward_passes,
                    r.ranking.backward_passes,
                    f"{r.ranking.seconds:.3f}",
                ]
            )
    return buf.getvalue()


# -- running --------------------------------------------------------------------------------------------------------


def estimate_passes(methods: Sequence[str], n_regions: int, equal_cost: bool = False) -> int:
    """Model passes one image costs with these methods (a preview): each method's cost, a backward
    pass counted as two forward ones, plus the 2(N + 1) of its scoring. Equal cost gives the
    sampling methods LiMA's forward passes and runs LiMA even when it is not among ``methods``."""
    names = list(dict.fromkeys(["lima", *methods] if equal_cost else methods))
    lima = METHODS.get("lima").cost(n_regions, resolve_options("lima")).forward
    total = 0
    for name in names:
        cost = METHODS.get(name).cost(n_regions, resolve_options(name, None, lima if equal_cost else None))
        total += cost.forward + 2 * cost.backward + 2 * (n_regions + 1)
    return total


def select_items(
    clf: Classifier, image_set: ImageSet, options: EvaluationOptions, scan_result: scanning.ScanResult | None = None
) -> list[tuple[ImageItem, scanning.ScanRow]]:
    """The images to evaluate, each with the model's answer on it (from a scan of the set: pass
    a cached one to avoid rescanning)."""
    result = scan_result or scanning.scan(clf, image_set)
    by_key = {item.key: item for item in image_set.items}
    rows = [r for r in result.readable if r.key in by_key and (not options.errors_only or not r.correct)]
    if options.limit is not None:
        rows = rows[: options.limit]
    return [(by_key[r.key], r) for r in rows]


def classes_of(row: scanning.ScanRow, target_mode: str) -> tuple[int, int]:
    """(target, tracked) for an image: the target is the true or the predicted class; the class
    followed beside it is the other of the two for a mistake, else the runner-up."""
    target = row.label if target_mode == "true" else row.pred
    if row.pred != target:
        return target, row.pred
    if row.pred != row.label:
        return target, row.label
    runner_up = next((c for c, _ in row.top if c != target), (target + 1) % max(len(row.top), 2))
    return target, int(runner_up)


def iter_evaluate(
    clf: Classifier,
    image_set: ImageSet,
    regions: RegionSpec,
    options: EvaluationOptions,
    fill: str = "black",
    methods_store: MethodStore | None = None,
    scan_result: scanning.ScanResult | None = None,
    method_options: Mapping[str, MethodOptions | Mapping[str, Any]] | None = None,
) -> Iterator[EvaluationProgress]:
    """Evaluate every selected image with every method; yields progress, the last item carrying
    the :class:`Evaluation`. ``method_options`` overrides a method's defaults by name."""
    from explainer import settings as _settings
    from explainer.search import library_versions

    if regions.options is None or regions.method not in REGION_METHODS:
        raise MethodError(f"the evaluation needs a region method, got {regions.method!r}")
    names = options.method_names()
    if options.equal_cost and "lima" not in names:
        names = ["lima", *names]  # equal cost needs LiMA's passes; it is reported too
    order = sorted(names, key=lambda m: m != "lima")
    start = time.perf_counter()
    selected = select_items(clf, image_set, options, scan_result)
    total_pairs = len(selected) * len(order)
    images: list[ImageEvaluation] = []
    seconds: dict[str, float] = dict.fromkeys(order, 0.0)
    # A method that cannot run on this model (Grad-CAM on TorchScript) is skipped, with its reason.
    unavailable: dict[str, str] = {}
    for method in order:
        ok, reason = METHODS.get(method).availability(clf)
        if not ok:
            unavailable[method] = reason
    done = 0
    yield EvaluationProgress(0, len(selected), 0, total_pairs, 0.0)
    for index, (item, row) in enumerate(selected):
        view = clf.view(item.load())
        labels = propose_regions(view, regions.method, regions.options)
        target, tracked = classes_of(row, options.target)
        prediction = row.pred
        subject = Subject(clf, view, labels, target, fill, options.seed)
        results: dict[str, MethodResult] = {}
        for method in order:
            lima_passes = results["lima"].ranking.forward_passes if options.equal_cost and "lima" in results else None
            given = (method_options or {}).get(method)
            mo = resolve_options(method, given, lima_passes)
            pair_start = time.perf_counter()
            if method not in unavailable:
                for item_progress in iter_method(subject, method, mo, tracked, methods_store=methods_store):
                    if item_progress.result is not None:
                        results[method] = item_progress.result
                    yield EvaluationProgress(
                        index,
                        len(selected),
                        done,
                        total_pairs,
                        time.perf_counter() - start,
                        f"{item.name}: {item_progress.describe()}",
                    )
            seconds[method] += time.perf_counter() - pair_start
            done += 1
        images.append(ImageEvaluation(item.name, item.key, item.label, target, tracked, prediction, results))
    provenance = {
        "product": "LiMA Lens",
        "evaluation": options.to_dict(),
        "methods": order,
        "method_options": {m: resolve_options(m, (method_options or {}).get(m)).to_dict() for m in order},
        # Equal cost sets these options on each image to LiMA's forward passes there (not the defaults above).
        "equal_cost_fields": {
            m: budget for m in order if options.equal_cost and (budget := METHODS.get(m).samples_field)
        },
        "regions": regions.to_dict(),
        "fill": fill,
        "model": clf.describe(),
        "image_set": image_set.name,
        "image_set_fingerprint": image_set.fingerprint(),
        "images": len(images),
        "unavailable": unavailable,
        "versions": library_versions(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "store": str(methods_store.root if methods_store else _settings.current().runs_dir),
    }
    evaluation = Evaluation(tuple(images), tuple(order), provenance, seconds)
    yield EvaluationProgress(
        len(selected), len(selected), total_pairs, total_pairs, time.perf_counter() - start, result=evaluation
    )


__all__ = [
    "DEFAULT_METHODS",
    "METRICS",
    "Evaluation",
    "EvaluationOptions",
    "EvaluationProgress",
    "ImageEvaluation",
    "bootstrap_ci",
    "classes_of",
    "estimate_passes",
    "iter_evaluate",
    "method_entry",
    "select_items",
    "summarise",
    "table",
    "to_csv",
]
