"""Export files of an Explanation, each with its full provenance.

Every function returns bytes (or text) so the UI can offer a download and the CLI can write a
file. PNGs carry provenance in text chunks, GIFs in a comment, ZIPs in ``provenance.json``.
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from explainer import figures, render, store
from explainer.explanation import Explanation


def provenance(exp: Explanation) -> dict:
    """Where a result comes from: model, image, regions, settings, versions, device, time."""
    return {
        "product": "LiMA Lens",
        "method": f"LiMA ({exp.config.search} search)",
        "model_id": exp.model.get("id"),
        "model_weights_sha256": exp.model.get("weights_hash"),
        "model_preprocess": exp.model.get("preprocess"),
        "image": exp.source.get("name"),
        "image_sha256": exp.source.get("digest"),
        "image_label": exp.source.get("label"),
        "view_sha256": store.array_digest(exp.view),
        "regions": exp.regions.to_dict(),
        "n_regions": exp.n_regions,
        "target": exp.target,
        "target_name": exp.class_name(exp.target),
        "tracked": exp.tracked,
        "tracked_name": exp.class_name(exp.tracked),
        "weights": exp.config.weights.to_dict(),
        "pending_samples": exp.config.pending,
        "fill": exp.config.fill,
        "search": exp.config.search,
        "minimal_subset_tolerance": exp.config.tolerance,
        "batch_size": exp.batch_size,
        "forward_passes": exp.forward_passes,
        "wall_time_s": round(exp.wall_time_s, 3),
        "device": exp.device,
        "backend": exp.model.get("backend", "torch"),  # runs saved before backends existed ran on PyTorch
        "backend_note": exp.model.get("backend_note", ""),
        "created": exp.created,
        "versions": exp.versions,
    }


def _png_text(exp: Explanation) -> dict[str, str]:
    prov = provenance(exp)
    return {
        "Software": "LiMA Lens",
        "Description": exp.readout(),
        "Provenance": json.dumps(prov, default=str, ensure_ascii=False),
    }


def step_png(
    exp: Explanation, step: int, hidden: str = "black", scale: int = 2, source: np.ndarray | None = None
) -> bytes:
    """The view at ``step`` as PNG (what the dashboard shows), with provenance; drawn on the
    source-resolution crop when one is given (see ``source_view``)."""
    meta = _png_text(exp) | {"Step": str(step)}
    frame = figures.step_view(exp, step, hidden=hidden, scale=scale, subset=False, source=source)
    return render.to_png(frame, meta)


def composite(exp: Explanation, fmt: str = "png", step: int | None = None, dpi: int = 200) -> bytes:
    """The paper-ready composite (regions, subset, contrast map, curves) as PNG, SVG or PDF."""
    if fmt not in ("png", "svg", "pdf"):
        raise ValueError(f"format must be png, svg or pdf, got {fmt!r}.")
    fig = figures.composite_figure(exp, step=step, dpi=dpi)
    return figures.figure_bytes(
        fig, fmt, {"Software": "LiMA Lens", "Description": exp.readout()}, provenance=provenance(exp)
    )


def step_gif(
    exp: Explanation, hidden: str = "black", duration_ms: int = 350, scale: int = 2, max_frames: int = 120
) -> bytes:
    """An animated GIF of the step-through, from the empty image to the full one."""
    n = exp.n_regions
    if max_frames < 2:
        raise ValueError(f"a step-through needs at least 2 frames, got max_frames={max_frames}.")
    steps = (
        range(n + 1) if n + 1 <= max_frames else sorted({round(i * n / (max_frames - 1)) for i in range(max_frames)})
    )
    frames = [figures.step_view(exp, k, hidden=hidden, scale=scale) for k in steps]
    return render.to_gif(frames, duration_ms, comment=json.dumps(provenance(exp), default=str))


def curves_csv(exp: Explanation) -> str:
    """One row per step: region, area, p(target) and p(tracked) on both paths.

    The file starts with ``#`` lines holding the provenance (one line of JSON), so
    ``pandas.read_csv(path, comment="#")`` reads the table and ``provenance_of_csv`` the origin.
    """
    buf = io.StringIO()
    buf.write("# LiMA Lens insertion and deletion curves; one row per step (0 = no region shown)\n")
    buf.write("# provenance: " + json.dumps(provenance(exp), default=str, ensure_ascii=False) + "\n")
    w = csv.writer(buf, lineterminator="\n")
    # '#' starts a comment for readers such as pandas: keep it out of the column names.
    target = exp.class_name(exp.target).replace("#", "no.")
    tracked = (exp.class_name(exp.tracked) or "tracked").replace("#", "no.")
    w.writerow(
        [
            "step",
            "region",
            "area_revealed",
            f"insertion_p_{target}",
            f"deletion_p_{target}",
            f"insertion_p_{tracked}",
            f"deletion_p_{tracked}",
        ]
    )
    other_ins = None if exp.tracked is None else exp.curve(exp.tracked, "insertion")
    other_del = None if exp.tracked is None else exp.curve(exp.tracked, "deletion")
    for i in range(exp.n_regions + 1):
        ti = "" if other_ins is None else f"{other_ins[i]:.6f}"
        td = "" if other_del is None else f"{other_del[i]:.6f}"
        w.writerow(
            [
                i,
                "" if i == 0 else int(exp.order[i - 1]),
                f"{exp.area[i]:.6f}",
                f"{exp.insertion[i]:.6f}",
                f"{exp.deletion[i]:.6f}",
                ti,
                td,
            ]
        )
    return buf.getvalue()


def provenance_of_csv(text: str) -> dict | None:
    """The provenance written into a ``curves_csv`` file (None if it has none)."""
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        if line.startswith("# provenance: "):
            return json.loads(line[len("# provenance: ") :])
    return None


def _zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return buf.getvalue()


def result_zip(exp: Explanation) -> bytes:
    """The lossless result (explanation.json + explanation.npz), curves.csv and provenance.json."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = store.save(exp, Path(tmp) / "run")
        files = {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if not p.name.startswith(".")}
    files["curves.csv"] = curves_csv(exp).encode()
    files["provenance.json"] = json.dumps(provenance(exp), indent=1, default=str).encode()
    return _zip(files)


def reference_zip(exp: Explanation, name: str | None = None) -> bytes:
    """The reference code's npy/json layout (``docs/method.md``, "Reference files"), zipped, with provenance."""
    name = Path(name or exp.source.get("name") or "image").stem
    with tempfile.TemporaryDirectory() as tmp:
        npy, js = export_reference(exp, tmp, name)
        files = {str(p.relative_to(tmp)): p.read_bytes() for p in (npy, js)}
    files["provenance.json"] = json.dumps(provenance(exp), indent=1, default=str).encode()
    return _zip(files)


# -- method comparisons ----------------------------------------------------------------------------------------

COMPARISON_COLUMNS = (
    "method",
    "kind",
    "insertion_auc",
    "deletion_auc",
    "highest_confidence_0.25",
    "highest_confidence_0.5",
    "highest_confidence_0.75",
    "highest_confidence_1.0",
    "minimal_subset_size",
    "minimal_subset_area",
    "forward_passes",
    "backward_passes",
    "seconds",
)


def comparison_rows(results: list) -> list[dict]:
    """One row per method (``MethodResult`` objects): scores and the cost actually spent."""
    from explainer.methods import METHODS

    rows = []
    for r in results:
        s = r.score
        rows.append(
            {
                "method": r.method,
                "kind": METHODS.get(r.method).kind if r.method in METHODS else "",
                "insertion_auc": s.insertion_auc,
                "deletion_auc": s.deletion_auc,
                **{f"highest_confidence_{k}": s.highest_confidence.get(k) for k in ("0.25", "0.5", "0.75", "1.0")},
                "minimal_subset_size": len(s.minimal_subset),
                "minimal_subset_area": s.minimal_subset_area,
                "forward_passes": r.ranking.forward_passes,
                "backward_passes": r.ranking.backward_passes,
                "seconds": r.ranking.seconds,
            }
        )
    return rows


def comparison_provenance(exp: Explanation, results: list) -> dict:
    """The run's provenance plus each compared method's options."""
    return {**provenance(exp), "compared": {r.method: r.ranking.options for r in results}}


def comparison_csv(exp: Explanation, results: list) -> str:
    """The comparison table as CSV, its provenance in ``#`` lines (``pandas.read_csv(comment="#")``)."""
    buf = io.StringIO()
    buf.write("# LiMA Lens method comparison on one image; one row per method\n")
    buf.write(
        "# provenance: " + json.dumps(comparison_provenance(exp, results), default=str, ensure_ascii=False) + "\n"
    )
    w = csv.DictWriter(buf, fieldnames=list(COMPARISON_COLUMNS), lineterminator="\n")
    w.writeheader()
    for row in comparison_rows(results):
        w.writerow({k: ("" if v is None else v) for k, v in row.items()})
    return buf.getvalue()


def comparison_json(exp: Explanation, results: list) -> str:
    """The comparison as JSON: the table, each method's order and curves, and the provenance."""
    return json.dumps(
        {
            "provenance": comparison_provenance(exp, results),
            "methods": comparison_rows(results),
            "results": [r.to_dict() for r in results],
        },
        indent=1,
        default=str,
    )


def comparison_figure(exp: Explanation, results: list, fmt: str = "png", dpi: int = 150) -> bytes:
    """The side-by-side figure (rank maps on one scale, insertion curves) as PNG, SVG or PDF."""
    if fmt not in ("png", "svg", "pdf"):
        raise ValueError(f"format must be png, svg or pdf, got {fmt!r}.")
    title = f"{exp.source.get('name') or ''} · explaining {exp.class_name(exp.target)}".strip(" ·")
    fig = figures.comparison_figure(exp.view, exp.labels, results, title=title, dpi=dpi)
    return figures.figure_bytes(
        fig,
        fmt,
        {"Software": "LiMA Lens", "Description": f"{len(results)} methods compared"},
        provenance=comparison_provenance(exp, results),
    )


# -- the reference code's layout -----------------------------------------------------------------------


def reference_json(exp: Explanation) -> dict:
    """The reference code's per-image JSON (``docs/method.md``, "Reference files"), single-modal
    λ order, with the counterfactual fields when a class is tracked."""
    log, w = exp.log, exp.config.weights
    inc, dec = log.where("forward"), log.where("backward")
    doc = {
        "consistency_score": exp.insertion[1:].tolist(),
        "collaboration_score": (1.0 - exp.deletion[1:]).tolist(),
        "consistency_score_increase": log.consistency[inc].tolist(),
        "collaboration_score_increase": log.collaboration[inc].tolist(),
        "confidence_score_increase": log.confidence[inc].tolist(),
        "effectiveness_score_increase": log.effectiveness[inc].tolist(),
        # The reference stores decrease entries in insertion terms (``docs/method.md``, "Reference files").
        "consistency_score_decrease": (1.0 - log.collaboration[dec]).tolist(),
        "collaboration_score_decrease": (1.0 - log.consistency[dec]).tolist(),
        "confidence_score_decrease": log.confidence[dec].tolist(),
        "effectiveness_score_decrease": log.effectiveness[dec].tolist(),
        "smdl_score": log.objective[inc].tolist(),
        "smdl_score_max": float(log.objective[inc].max()) if len(inc) else None,
        "smdl_score_max_index": int(np.argmax(log.objective[inc])) if len(inc) else None,
        "lambda1": w.consistency,
        "lambda2": w.collaboration,
        "lambda3": w.confidence,
        "lambda4": w.effectiveness,
        "sub-k": exp.n_regions,
        "pending_samples": exp.config.pending,
        "org_score": float(exp.insertion[-1]),
        "baseline_score": float(exp.insertion[0]),
    }
    if exp.tracked is not None:
        doc.update(
            {
                "gt_label": exp.target,
                "failure_label": exp.tracked,
                "gt_class_name": exp.class_name(exp.target),
                "failure_class_name": exp.class_name(exp.tracked),
                "original_gt_score": float(exp.insertion[-1]),
                "original_failure_score": float(exp.curve(exp.tracked, "insertion")[-1]),
                "failure_score": exp.curve(exp.tracked, "insertion")[1:].tolist(),
            }
        )
    return doc


def export_reference(
    exp: Explanation, out_dir: str | Path, name: str, class_dir: str | None = None
) -> tuple[Path, Path]:
    """Write ``npy/<class>/<name>.npy`` (N×S×S×3 uint8 BGR region images in ranked order) and
    ``json/<class>/<name>.json``, as the reference code does; returns both paths."""
    out_dir, class_dir = Path(out_dir), class_dir or str(exp.target)
    stem = Path(name).stem
    bgr = exp.view[..., ::-1]
    regions = np.stack([np.where((exp.labels == r)[..., None], bgr, 0) for r in exp.order]).astype(np.uint8)
    buf = io.BytesIO()
    np.save(buf, regions)
    npy_path = out_dir / "npy" / class_dir / f"{stem}.npy"
    json_path = out_dir / "json" / class_dir / f"{stem}.json"
    store.write_atomic(npy_path, buf.getvalue())
    store.write_atomic(json_path, store.json_bytes(reference_json(exp)))
    return npy_path, json_path
