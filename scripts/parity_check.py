"""Parity of the fast backend with PyTorch on real mistakes (issue #10).

For every image the built-in model gets wrong in a labelled set (default: the shared ImageNet
sample's 22 mistakes), explain the true class at about 49 SLICO regions twice, with PyTorch and
with ONNX Runtime, and compare (``explainer.parity``): same order, curves within 1e-4, or a
near-tie at the first difference. Prints one line per image and a summary; ``--json`` writes it.

    python scripts/parity_check.py [SET] [--regions 49] [--limit 0] [--json parity.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from explainer import data, load_classifier  # noqa: E402
from explainer.parity import CURVE_TOLERANCE, compare  # noqa: E402
from explainer.regions import slico_for_count  # noqa: E402
from explainer.scan import scan  # noqa: E402
from explainer.search import explain  # noqa: E402

DEFAULT_SET = ROOT.parent / "shared" / "data" / "imagenet-sample" / "labels.txt"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("source", nargs="?", default=str(DEFAULT_SET), help="a labelled image set")
    p.add_argument("--regions", type=int, default=49)
    p.add_argument("--limit", type=int, default=0, help="at most this many mistakes (0 = all)")
    p.add_argument("--fast", default="onnxruntime", help="the backend compared with torch")
    p.add_argument("--json", help="write every image's report here")
    args = p.parse_args(argv)

    ref = load_classifier("efficientnet_lite0", device="cpu", backend="torch")
    fast = load_classifier("efficientnet_lite0", device="cpu", backend=args.fast)
    print(f"reference: {ref.backend_note}; fast: {fast.backend_note}", flush=True)
    image_set = data.open_image_set(args.source, ref.class_names)
    mistakes = scan(ref, image_set).mistakes()[: args.limit or None]
    items = {it.key: it for it in image_set.items}
    rows, t_ref, t_fast = [], 0.0, 0.0
    for row in mistakes:
        view = ref.view(items[row.key].load())
        labels, _ = slico_for_count(view, args.regions)
        start = time.perf_counter()
        a = explain(ref, view, labels, row.label)
        t_ref += time.perf_counter() - start
        start = time.perf_counter()
        b = explain(fast, view, labels, row.label)
        t_fast += time.perf_counter() - start
        report = compare(a, b, ref, fast, names=("torch", args.fast))
        rows.append({"image": row.name, "regions": a.n_regions, **report.to_dict()})
        print(f"{row.name}: {a.n_regions} regions, {report.note}", flush=True)
    same = sum(r["same_order"] for r in rows)
    ties = sum(1 for r in rows if not r["same_order"] and r["near_tie"])
    bad = [r["image"] for r in rows if not r["near_tie"]]
    curves = max((r["max_curve_difference"] for r in rows), default=0.0)
    summary = {
        "images": len(rows),
        "same_order": same,
        "near_ties": ties,
        "unexplained": bad,
        "max_curve_difference": curves,
        "curves_within_tolerance": curves <= CURVE_TOLERANCE,
        "seconds_torch": round(t_ref, 1),
        f"seconds_{args.fast}": round(t_fast, 1),
    }
    print(
        f"{len(rows)} mistakes at ~{args.regions} regions: {same} same order, {ties} near-ties, "
        f"{len(bad)} unexplained; curves within {curves:.1e} on the shared prefixes; "
        f"{t_ref:.0f} s with torch, {t_fast:.0f} s with {args.fast} ({t_ref / max(t_fast, 1e-9):.1f}x)"
    )
    if args.json:
        Path(args.json).write_text(json.dumps({"summary": summary, "rows": rows}, indent=1, default=str))
    return 0 if not bad else 1


if __name__ == "__main__":
    raise SystemExit(main())
