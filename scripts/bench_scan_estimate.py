"""Scan estimate vs actual scan time, as Find errors shows it, in one process.

Follows what a user of the app does: the demo set is scanned first (the app does it on its own),
then another set, then each again (a rescan, or a switch back). Before each scan it prints the
estimate Find errors shows with today's rule (``ui.resources.scan_rate``: the set's own last scan
speed, else the model's speed plus the set's measured decoding time) and with the earlier rule
(the last scan's speed of *any* set with this model), then the scan's wall time, and the ratios
estimate / actual (1.00 = exact; below 1 = the estimate ran low).

Usage: python scripts/bench_scan_estimate.py [SET ...] [--rounds 2]
(default sets: demo and ../shared/data/imagenet-sample/labels.txt; the built-in model, backend auto)
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
logging.getLogger("streamlit").setLevel(logging.ERROR)  # cached functions outside a running app

from explainer import data  # noqa: E402
from explainer.models import load_classifier  # noqa: E402
from explainer.scan import scan  # noqa: E402
from ui import resources  # noqa: E402

DEFAULT_SETS = ["demo", str(ROOT.parent / "shared" / "data" / "imagenet-sample" / "labels.txt")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sets", nargs="*", default=DEFAULT_SETS)
    parser.add_argument("--rounds", type=int, default=2, help="times through the sets (default 2)")
    args = parser.parse_args()
    clf = load_classifier("efficientnet_lite0")
    model_key = clf.id
    print(f"{clf.id}, backend {clf.describe().get('backend')}, batch {clf.batch_size}; load {os.getloadavg()}")
    per_model: dict[str, float] = {}  # the earlier rule: one remembered speed per model
    for round_no in range(args.rounds):
        for source in args.sets:
            if source == "demo":
                image_set = data.demo_set(clf.class_names)
            else:
                image_set = data.open_image_set(source, clf.class_names)
            n = len(image_set)
            now = n / resources.scan_rate(model_key, image_set.fingerprint()[:20], clf, image_set)
            earlier = n / per_model[model_key] if model_key in per_model else now
            start = time.perf_counter()
            result = scan(clf, image_set)
            actual = time.perf_counter() - start
            rate = n / result.elapsed_s
            resources.remember_scan_rate(model_key, image_set, rate)
            per_model[model_key] = rate
            print(
                f"round {round_no + 1} {image_set.name:28s} {n:4d} images: actual {actual:6.2f} s | "
                f"estimate now {now:6.2f} s ({now / actual:.2f}) | earlier rule {earlier:6.2f} s "
                f"({earlier / actual:.2f})",
                flush=True,
            )
    print(f"load {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
