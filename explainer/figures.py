"""Figures of an Explanation: step views and heatmaps (raster) and the paper-ready composite.

The composite is a static PNG/SVG/PDF for papers and slides, drawn with matplotlib's
object-oriented API (a ``Figure`` per call, never pyplot's global state: the engine runs in
threads). The dashboard's interactive charts live on the UI side (``ui/charts.py``).
"""

from __future__ import annotations

import io

import numpy as np
from matplotlib.figure import Figure

from explainer import render
from explainer.explanation import Explanation

TARGET_HEX, OTHER_HEX = render.TARGET_HEX, render.OTHER_HEX


def step_view(
    exp: Explanation,
    k: int,
    hidden: str = "black",
    scale: int = 2,
    subset: bool = False,
    source: np.ndarray | None = None,
) -> np.ndarray:
    """The view at step k (see ``render.step_image``), on ``source`` (the same crop at a higher
    resolution) when given."""
    return render.step_image(
        exp.view,
        exp.labels,
        exp.order,
        k,
        hidden=hidden,
        scale=scale,
        subset_size=exp.minimal_subset_size if subset else None,
        source=source,
    )


def subset_mask(exp: Explanation) -> np.ndarray:
    return render.revealed_mask(exp.labels, exp.order, exp.minimal_subset_size)


def heatmap_values(exp: Explanation, kind: str) -> tuple[np.ndarray, bool]:
    """One value per region id for a heatmap kind, and whether its scale is diverging.

    Kinds: "rank" ((N − i)/N for the i-th ranked region), "gain" (marginal gain in p(target)
    when added), "contrast" (gain in the margin p(target) − p(tracked); = "gain" untracked).
    """
    if kind == "rank":
        return render.rank_values(exp.order), False
    if kind == "gain" or (kind == "contrast" and exp.tracked is None):
        return render.gain_values(exp.order, exp.insertion), True
    if kind == "contrast":
        return render.gain_values(exp.order, exp.insertion - exp.tracked_insertion), True
    raise ValueError(f"heatmap kind must be rank, gain or contrast, got {kind!r}.")


def heatmap_scale(exp: Explanation, kind: str) -> render.ColourScale:
    """The colour scale of a heatmap kind, with its two ends named."""
    values, diverging = heatmap_values(exp, kind)
    target = exp.class_name(exp.target)
    if kind == "rank":
        return render.ColourScale.for_values(values, False, "ranked last", "ranked first")
    if kind == "contrast" and exp.tracked is not None:
        return render.ColourScale.for_values(
            values, True, f"supports {exp.class_name(exp.tracked)}", f"supports {target}"
        )
    return render.ColourScale.for_values(values, True, f"lowers p({target})", f"raises p({target})")


def heatmap_image(exp: Explanation, kind: str, scale: int = 2) -> np.ndarray:
    """The heatmap of ``kind`` over the view, the minimal subset outlined."""
    values, _ = heatmap_values(exp, kind)
    return render.heatmap(
        exp.view, exp.labels, values, scale=scale, outline=subset_mask(exp), colours=heatmap_scale(exp, kind)
    )


def rank_heatmap(exp: Explanation, scale: int = 2) -> np.ndarray:
    """Region rank: bright = chosen early; the minimal subset outlined."""
    return heatmap_image(exp, "rank", scale)


def gain_heatmap(exp: Explanation, scale: int = 2) -> np.ndarray:
    """Marginal gain of p(target) each region brought when it was added (diverging)."""
    return heatmap_image(exp, "gain", scale)


def contrast_heatmap(exp: Explanation, scale: int = 2) -> np.ndarray:
    """True-vs-wrong map: each region's gain in the margin p(target) − p(tracked); blue regions
    support the target, vermillion ones the tracked (wrong) class."""
    return heatmap_image(exp, "contrast", scale)


def composite_figure(exp: Explanation, step: int | None = None, dpi: int = 200) -> Figure:
    """A paper-ready composite: regions, the minimal subset (or step), the true-vs-wrong map,
    and the insertion/deletion curves. Returns a matplotlib ``Figure`` (not registered with pyplot)."""
    k = exp.minimal_subset_size if step is None else step
    fig = Figure(figsize=(12, 3.4), dpi=dpi, layout="constrained")
    axes = fig.subplots(1, 4, width_ratios=[1, 1, 1, 1.5])
    method = exp.regions.method
    subset = render.step_image(exp.view, exp.labels, exp.order, k, hidden="dim", highlight=False, subset_size=k)
    panels = [
        (render.draw_boundaries(exp.view, exp.labels), f"{exp.n_regions} regions" + (f" ({method})" if method else "")),
        (subset, f"first {k} regions ({100 * exp.area[k]:.0f} % of the image)"),
        (
            contrast_heatmap(exp),
            "supports target (blue) vs other class" if exp.tracked is not None else "marginal gain",
        ),
    ]
    for ax, (img, title) in zip(axes[:3], panels):
        ax.imshow(img)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    _colour_bar(fig, axes[2], heatmap_scale(exp, "contrast"))
    ax = axes[3]
    area = 100 * exp.area
    ax.plot(area, exp.insertion, color=TARGET_HEX, lw=2, label=f"p({exp.class_name(exp.target)}), insertion")
    ax.plot(area, exp.deletion, color=TARGET_HEX, lw=1.2, ls="--", label="deletion")
    if exp.tracked is not None:
        ax.plot(
            area, exp.tracked_insertion, color=OTHER_HEX, lw=2, label=f"p({exp.class_name(exp.tracked)}), insertion"
        )
    ax.axvline(area[k], color="#444", ls=":", lw=1)
    ax.set_xlim(0, 100)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("image revealed / removed (%)", fontsize=9)
    ax.set_ylabel("probability", fontsize=9)
    ax.tick_params(labelsize=8)
    ax.legend(fontsize=7, loc="upper right", frameon=False)
    ax.set_title(f"insertion AUC {exp.insertion_auc:.3f} · deletion AUC {exp.deletion_auc:.3f}", fontsize=9)
    label = exp.source.get("label")
    head = [exp.source.get("name") or ""]
    if label is not None:
        head.append(f"true: {exp.class_name(int(label))}")
    head += [f"predicted: {exp.class_name(exp.full_prediction)}", f"explaining: {exp.class_name(exp.target)}"]
    fig.suptitle("  ·  ".join(h for h in head if h), fontsize=10)
    return fig


def _colour_bar(fig, ax, colours: render.ColourScale) -> None:
    """A horizontal colour bar under ``ax`` with the scale's numbers and end labels."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import LinearSegmentedColormap, Normalize

    cmap = LinearSegmentedColormap.from_list("lima", [(pos, tuple(c / 255 for c in rgb)) for pos, rgb in colours.stops])
    bar = fig.colorbar(
        ScalarMappable(Normalize(colours.low, colours.high), cmap),
        ax=ax,
        orientation="horizontal",
        fraction=0.05,
        pad=0.02,
        aspect=30,
    )
    bar.ax.tick_params(labelsize=6)
    bar.set_label(f"{colours.low_label}  ←  →  {colours.high_label}", fontsize=7)


def figure_bytes(fig: Figure, fmt: str = "png", metadata: dict | None = None, provenance: dict | None = None) -> bytes:
    """Render a matplotlib figure to PNG/SVG/PDF bytes, with provenance inside the file.

    Args:
        metadata: text fields ("Description", ...) for PNG text chunks.
        provenance: the full provenance (a JSON-able dict), stored where each format keeps
            metadata: PNG text chunk "Provenance"; PDF document information ("Keywords" holds the
            JSON, "Subject" the description); SVG a ``<metadata id="lima-provenance">`` element
            holding the JSON.
    """
    import json
    from xml.sax.saxutils import escape

    buf = io.BytesIO()
    description = str((metadata or {}).get("Description", ""))
    prov_json = json.dumps(provenance, default=str, ensure_ascii=False) if provenance else ""
    # PDF strings outside ASCII become UTF-16: keep the Keywords JSON ASCII (\u escapes) and simple.
    pdf_json = json.dumps(provenance, default=str, ensure_ascii=True) if provenance else ""
    meta = None
    if fmt == "png":
        meta = {k: str(v) for k, v in (metadata or {}).items()}
        if prov_json:
            meta["Provenance"] = prov_json
    elif fmt == "pdf":
        meta = {"Title": "LiMA Lens explanation", "Subject": description, "Keywords": pdf_json, "Creator": "LiMA Lens"}
    elif fmt == "svg":
        meta = {"Title": "LiMA Lens explanation", "Description": description, "Creator": "LiMA Lens"}
    fig.savefig(buf, format=fmt, metadata=meta)
    data = buf.getvalue()
    if fmt == "svg" and prov_json:
        # A second metadata element, machine-readable: the provenance JSON as its text.
        element = f' <metadata id="lima-provenance">{escape(prov_json)}</metadata>\n'.encode()
        head, sep, rest = data.partition(b"</title>\n")
        data = head + sep + element + rest if sep else data.replace(b"</svg>", element + b"</svg>", 1)
    return data


def comparison_figure(view: np.ndarray, labels: np.ndarray, results: list, title: str = "", dpi: int = 150) -> Figure:
    """Methods side by side: each method's region rank map on one colour scale (first = bright),
    its minimal subset outlined, and every method's insertion curve in one chart.

    Args:
        view: S×S×3 uint8; labels: S×S label map; results: ``MethodResult`` objects (one per
            method), drawn in the given order.
    """
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import LinearSegmentedColormap, Normalize

    count = len(results)
    per_row = min(5, max(count, 1))
    rows = -(-count // per_row)
    fig = Figure(figsize=(2.3 * per_row + 4.2, 2.5 * rows + 0.5), dpi=dpi, layout="constrained")
    grid = fig.add_gridspec(rows, per_row + 2)
    colours = render.ColourScale(render.SEQUENTIAL, 0.0, 1.0, "ranked last", "ranked first")
    for index, result in enumerate(results):
        ax = fig.add_subplot(grid[index // per_row, index % per_row])
        order = np.asarray(result.score.order)
        subset = render.revealed_mask(labels, order, len(result.score.minimal_subset))
        ax.imshow(render.heatmap(view, labels, render.rank_values(order), colours=colours, outline=subset, scale=1))
        ax.set_title(
            f"{result.method}\nins {result.score.insertion_auc:.3f} · del {result.score.deletion_auc:.3f}", fontsize=8
        )
        ax.axis("off")
    cmap = LinearSegmentedColormap.from_list("rank", [(p, tuple(c / 255 for c in rgb)) for p, rgb in colours.stops])
    bar = fig.colorbar(
        ScalarMappable(Normalize(0, 1), cmap), ax=fig.axes, location="bottom", shrink=0.4, fraction=0.04, pad=0.02
    )
    bar.set_ticks([0, 1], labels=["ranked last", "ranked first"], fontsize=7)
    curves = fig.add_subplot(grid[:, per_row:])
    palette = [
        "#0072B2",
        "#D55E00",
        "#009E73",
        "#CC79A7",
        "#E69F00",
        "#56B4E9",
        "#F0E442",
        "#000000",
        "#999999",
        "#882255",
    ]
    for index, result in enumerate(results):
        curves.plot(
            100 * np.asarray(result.score.area),
            result.score.insertion,
            lw=2 if index == 0 else 1.3,
            color=palette[index % len(palette)],
            label=result.method,
        )
    curves.set_xlim(0, 100)
    curves.set_ylim(0, 1.02)
    curves.set_xlabel("image revealed (%)", fontsize=8)
    curves.set_ylabel("p(target), insertion", fontsize=8)
    curves.tick_params(labelsize=7)
    curves.legend(fontsize=7, frameon=False)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig
