"""Run-index benchmark: list, filter and page through 10,000 saved runs.

Generates N valid run folders (one real run of a tiny model, saved once; the others are copies
with a hard-linked NPZ and an edited JSON: other images, sets, classes, models, region methods
and creation times), then measures in one process, as ratios in one run:
* the old way: reading every ``explanation.json`` (what Saved runs did before the index);
* the index: first build from the files, the cheap in-step check, a page of 50, filters
  (model, image set, class, confusion, region method, text), their counts, a deep page, and
  picking up a folder added behind the index's back.

Usage: python scripts/bench_index.py [--runs 10000] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from explainer.run_index import RunFilter  # noqa: E402
from explainer.store import RunStore  # noqa: E402

MODELS = ("efficientnet_lite0", "resnet50", "vit_b_16")
SETS = ("imagenet-sample", "husky-vs-keeshond", "val-2026")
CLASSES = tuple(f"class {i}" for i in range(40))
METHODS = ("slico", "grid", "sam", "seeds")


def template_run(folder: Path) -> Path:
    """One real run of a tiny 40-class model, saved through the store."""
    import numpy as np
    import torch

    from explainer.models import Classifier
    from explainer.models.classifier import Preprocess
    from explainer.search import explain

    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16 * 16 * 3, len(CLASSES)))
    prep = Preprocess(size=16, resize=16, interpolation="bilinear", mean=(0.0,) * 3, std=(1.0,) * 3)
    clf = Classifier(module, CLASSES, prep, "bench:linear", device="cpu", batch_size=16)
    view = np.random.default_rng(0).integers(1, 256, (16, 16, 3), dtype=np.uint8)
    labels = np.repeat(np.repeat(np.arange(16).reshape(4, 4), 4, 0), 4, 1).astype(np.int32)
    exp = explain(clf, view, labels, 1, regions={"method": "grid", "params": {"cells_per_side": 4}})
    RunStore(folder).save(exp, "template")
    return folder / "template"


def generate(root: Path, template: Path, count: int) -> None:
    base = json.loads((template / "explanation.json").read_text(encoding="utf-8"))
    names = base["class_names"]
    for i in range(count):
        folder = root / f"run{i:06d}"
        folder.mkdir(parents=True)
        os.link(template / "explanation.npz", folder / "explanation.npz")
        doc = dict(base)
        label, pred = i % len(CLASSES), (i * 7 + i // 3) % len(CLASSES)
        doc["created"] = f"2026-{1 + i % 12:02d}-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:{i // 60 % 60:02d}+00:00"
        doc["model"] = {**base["model"], "id": MODELS[i % len(MODELS)]}
        doc["source"] = {"name": f"n{i:08d}.JPEG", "label": label, "set": SETS[i % len(SETS)]}
        doc["regions"] = {"method": METHODS[i % len(METHODS)], "params": {}}
        doc["summary"] = {**base["summary"], "full_prediction_name": names[pred]}
        (folder / "explanation.json").write_text(json.dumps(doc), encoding="utf-8")


def timed(action, repeat: int = 5) -> tuple[float, object]:
    """Median seconds of ``action()`` over ``repeat`` calls, and its last result."""
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = action()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="lima-bench-index-"))
    try:
        template = template_run(work / "template")
        runs_dir = work / "runs"
        start = time.perf_counter()
        generate(runs_dir, template, args.runs)
        generated_s = time.perf_counter() - start
        runs = RunStore(runs_dir)
        results: dict[str, float] = {}
        results["old: read every JSON (list all)"], old_rows = timed(lambda: runs._scan_files()[0], repeat=3)
        start = time.perf_counter()
        runs.count()
        results["index: first build from the files"] = time.perf_counter() - start
        results["index: in-step check (list folder names)"], _ = timed(lambda: runs.index.sync())
        results["index: full check (stat every JSON)"], _ = timed(lambda: runs.index.sync(force=True), repeat=3)
        results["page 1 of 50 (newest first)"], first = timed(lambda: runs.list(limit=50))
        results["page 150 of 50"], _ = timed(lambda: runs.list(limit=50, offset=149 * 50))
        results["count all"], total = timed(lambda: runs.count())
        pairs = runs.confusions()
        filters = {
            "model": RunFilter(model="resnet50"),
            "image set": RunFilter(image_set="val-2026"),
            "class": RunFilter(label="class 7"),
            "confusion": RunFilter(confusion=pairs[0][:2]),
            "region method": RunFilter(regions="sam"),
            "text": RunFilter(text="n0000123"),
            "model + set + method": RunFilter(model="vit_b_16", image_set="imagenet-sample", regions="slico"),
        }
        for name, where in filters.items():
            results[f"filter {name}: page 1 + count"], _ = timed(
                lambda where=where: (runs.list(where, limit=50), runs.count(where))
            )
        results["filter menus (distinct values + confusions)"], _ = timed(
            lambda: ([runs.values(c) for c in ("model", "image_set", "label", "regions")], runs.confusions())
        )
        shutil.copytree(runs_dir / "run000001", runs_dir / "added-behind-its-back")
        start = time.perf_counter()
        added = runs.count()
        results["a folder added behind its back: next count"] = time.perf_counter() - start
        assert total == args.runs and added == args.runs + 1 and len(first) == 50 and len(old_rows) == args.runs
        load = os.getloadavg()
        print(f"{args.runs:,} runs generated in {generated_s:.1f} s under {runs_dir}")
        print(f"load average: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
        old = results["old: read every JSON (list all)"]
        for name, seconds in results.items():
            ratio = "" if seconds == old else f"  ({old / max(seconds, 1e-9):,.0f}× faster than the old way)"
            print(f"{name:52s} {1000 * seconds:9.1f} ms{ratio}")
        if args.json:
            args.json.write_text(json.dumps({"runs": args.runs, "load": load, "seconds": results}, indent=1))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
