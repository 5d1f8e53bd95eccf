"""Command line: ``python -m explainer {explain,scan,regions,bench}``.

Bad arguments and bad inputs print one line (``lima: error: ...``) and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

EXIT_BAD_INPUT = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:            # one line, not argparse's usage block
        raise SystemExit(_fail(f"{message} (see {self.prog} --help)"))


def _fail(message: str) -> int:
    print(f"lima: error: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


def _key_values(items: list[str], what: str, split_commas: bool = True) -> dict:
    """["a=1", "b=x"] -> {"a": 1, "b": "x"} with numbers parsed; with ``split_commas`` an item
    may hold several pairs ("a=1,b=2")."""
    out = {}
    for item in items:
        for part in filter(None, item.split(",") if split_commas else [item]):
            key, sep, value = part.partition("=")
            if not sep or not key.strip():
                raise ValueError(f"{what} must look like name=value, got {part!r}")
            out[key.strip()] = _number(value.strip())
    return out


def _number(text: str):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return None if text.lower() == "none" else text


def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="efficientnet_lite0",
                   help="efficientnet_lite0 (default, offline), torchvision:<name>, torchscript:<file>, checkpoint:<file>")
    p.add_argument("--class-names", help="class-names file for torchscript:/checkpoint: models (one per line)")
    p.add_argument("--allow-pickle", action="store_true", help="allow checkpoint: files (unpickling runs code)")
    p.add_argument("--device", default="auto", help="auto (CUDA if available), cpu or cuda")
    p.add_argument("--batch-size", type=int, default=0, help="images per forward pass (default: chosen for the device)")
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"], help="CUDA only")


def _load_model(args):
    from explainer.models import load_classifier

    return load_classifier(args.model, device=args.device, class_names=args.class_names,
                           allow_pickle=args.allow_pickle, precision=args.precision, batch_size=args.batch_size)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="lima", description="LiMA Lens: explain why an image classifier got an image wrong.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("explain", help="explain one image; writes the result files and a PNG summary")
    p.add_argument("image")
    p.add_argument("--label", type=int, required=True, help="the true class index")
    p.add_argument("--target", type=int, help="class to explain (default: the true class)")
    p.add_argument("--tracked", type=int, help="second class to follow (default: the prediction if wrong, else the runner-up)")
    p.add_argument("--regions", default="slico", help="slico, seeds, slic, felzenszwalb, grid, sam, or a LABELS.npy file")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                   help="region parameter, e.g. region_size=30 (repeatable)")
    p.add_argument("--search", default="bidirectional", choices=["bidirectional", "greedy"])
    p.add_argument("--pending", type=int, default=8)
    p.add_argument("--weights", action="append", default=[], metavar="TERM=VALUE",
                   help="e.g. consistency=20,collaboration=5,confidence=0.01")
    p.add_argument("--fill", default="black", choices=["black", "mean", "blur"])
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--figure", default="png", metavar="FORMATS",
                   help="the paper figure's formats, comma-separated: png, svg, pdf (default png; 'none' for none)")
    p.add_argument("--quiet", action="store_true")
    _add_model_args(p)

    p = sub.add_parser("scan", help="accuracy and the misclassified images of a labelled set")
    p.add_argument("source", help="a folder (one sub-folder per class), a label list (<file> <class>), a CSV, or 'demo'")
    p.add_argument("--json", help="also write the full result as JSON here")
    p.add_argument("--top", type=int, default=0, help="list at most this many mistakes (0 = all)")
    _add_model_args(p)

    p = sub.add_parser("regions", help="split an image into regions and save the label map (.npy) and a preview")
    p.add_argument("image")
    p.add_argument("--method", default="slico")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
    p.add_argument("--out", required=True, help="output .npy path (a .png preview is written beside it)")
    _add_model_args(p)

    p = sub.add_parser("bench", help="engine overhead, time per explanation, peak memory")
    p.add_argument("--regions", default="25,49,100", help="comma-separated region counts")
    p.add_argument("--search", default="bidirectional", choices=["bidirectional", "greedy"])
    p.add_argument("--pending", type=int, default=8)
    p.add_argument("--no-reference", action="store_true", help="skip the reference-pipeline comparison")
    p.add_argument("--scan", metavar="SET", help="also time a scan of this image set (folder, label list, CSV, demo)")
    p.add_argument("--json", help="write the results as JSON here")
    _add_model_args(p)
    return parser


def _regions(args, clf, view):
    from explainer.regions import load_label_map, propose_regions

    if args.regions.endswith(".npy"):
        path = Path(args.regions)
        return load_label_map(path, view.shape[:2]), {"method": "file", "file": path.name}
    params = _key_values(args.param, "--param", split_commas=False)
    extra = {}
    if args.regions == "sam":
        extra["source"] = clf.view(args.image, size=int(params.get("resolution") or 1024))
    labels = propose_regions(view, args.regions, **params, **extra)
    return labels, {"method": args.regions, "params": params}


FIGURE_FORMATS = ("png", "svg", "pdf")


def _figure_formats(text: str) -> list[str]:
    formats = [f.strip().lower().lstrip(".") for f in text.split(",") if f.strip()]
    if formats == ["none"]:
        return []
    bad = [f for f in formats if f not in FIGURE_FORMATS]
    if bad or not formats:
        raise ValueError(f"--figure takes png, svg and/or pdf (comma-separated) or none, got {text!r}")
    return list(dict.fromkeys(formats))


def _output_folder(path: str) -> Path:
    """Check an output folder before any work, so a long run never ends in an error; nothing is
    created yet (bad input leaves no empty folder behind): the folder, or its nearest existing
    parent, must be a writable folder."""
    out = Path(path).expanduser()
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; give a folder (it is created if missing)")
    existing = out
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"--out {out} cannot be created: {existing} is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"--out {out} cannot be written: no write permission in {existing}")
    return out


def cmd_explain(args) -> int:
    from explainer import export, store
    from explainer.images import file_digest, load_image
    from explainer.search import iter_search

    figure_formats = _figure_formats(args.figure)
    out = _output_folder(args.out)
    load_image(args.image)                                  # a bad image fails before the model loads
    if args.regions.endswith(".npy"):
        from explainer.regions import load_label_map

        load_label_map(args.regions)
    clf = _load_model(args)
    if not 0 <= args.label < clf.num_classes:
        return _fail(f"--label {args.label} is outside 0..{clf.num_classes - 1} for {clf.id}")
    view = clf.view(args.image)
    labels, region_info = _regions(args, clf, view)
    weights = _key_values(args.weights, "--weights")
    target = args.label if args.target is None else args.target
    source = {"name": Path(args.image).name, "digest": file_digest(args.image), "label": args.label}
    result = None
    for progress in iter_search(clf, view, labels, target, search=args.search, pending=args.pending, weights=weights,
                                fill=args.fill, tracked=args.tracked, regions=region_info, source=source):
        if not args.quiet and sys.stderr.isatty():
            print(f"\r{progress.forward_passes}/{progress.forward_total} forward passes", end="", file=sys.stderr)
        result = progress.result
    if not args.quiet and sys.stderr.isatty():
        print(file=sys.stderr)
    out.mkdir(parents=True, exist_ok=True)
    store.save(result, out)
    for fmt in figure_formats:
        (out / f"summary.{fmt}").write_bytes(export.composite(result, fmt, dpi=150))
    (out / "curves.csv").write_text(export.curves_csv(result), encoding="utf-8")
    store.export_reference(result, out / "reference", Path(args.image).name)
    print(result.readout())
    print(f"insertion AUC {result.insertion_auc:.4f}, deletion AUC {result.deletion_auc:.4f}, "
          f"{result.n_regions} regions, {result.forward_passes} forward passes, {result.wall_time_s:.1f} s "
          f"on {result.device}; written to {out}")
    return 0


def _open_set(source: str, clf):
    from explainer import data

    if source == "demo":
        return data.demo_set(clf.class_names)
    return data.open_image_set(source, clf.class_names)


def cmd_scan(args) -> int:
    from explainer.scan import scan

    clf = _load_model(args)
    image_set = _open_set(args.source, clf)
    result = scan(clf, image_set)
    readable = result.readable
    mistakes = result.mistakes()
    print(f"{image_set.name}: {len(readable)} images, accuracy {100 * result.accuracy:.1f} % "
          f"({len(mistakes)} misclassified), {result.images_per_s:.1f} images/s with {clf.id}")
    names = clf.class_names
    for r in mistakes[: args.top or None]:
        print(f"{r.key}\ttrue {r.label} {names[r.label]} ({r.p_label:.3f})\tpredicted {r.pred} {names[r.pred]} ({r.p_pred:.3f})")
    for r in result.rows:
        if r.error:
            print(f"unreadable: {r.error}", file=sys.stderr)
    for line in image_set.problems:
        print(f"skipped: {line}", file=sys.stderr)
    if args.json:
        Path(args.json).write_text(result.to_json(), encoding="utf-8")
    return 0


def cmd_regions(args) -> int:
    from explainer import render
    from explainer.regions import propose_regions, region_stats

    clf = _load_model(args)
    view = clf.view(args.image)
    params = _key_values(args.param, "--param", split_commas=False)
    if args.method == "sam":
        params.setdefault("source", clf.view(args.image, size=int(params.get("resolution") or 1024)))
    labels = propose_regions(view, args.method, **params)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.save(out, labels)
    out.with_suffix(".png").write_bytes(render.to_png(render.draw_boundaries(view, labels)))
    stats = region_stats(labels)
    print(f"{stats.count} regions (smallest {stats.smallest_px} px, largest {stats.largest_px} px); wrote {out}")
    return 0


def cmd_bench(args) -> int:
    import skimage.data

    from explainer.bench import run_bench

    from explainer.bench import scan_bench

    clf = _load_model(args)
    counts = [int(x) for x in args.regions.split(",") if x.strip()]
    result = run_bench(clf, clf.view(skimage.data.chelsea()), counts, args.search, args.pending,
                       reference=not args.no_reference)
    if args.scan:
        result["scan"] = scan_bench(clf, _open_set(args.scan, clf))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1), encoding="utf-8")
    return 0


COMMANDS = {"explain": cmd_explain, "scan": cmd_scan, "regions": cmd_regions, "bench": cmd_bench}


def main(argv: list[str] | None = None) -> int:
    from explainer.errors import LimaError

    try:
        args = build_parser().parse_args(argv)
        return COMMANDS[args.command](args)
    except SystemExit as exc:
        return int(exc.code or 0) if isinstance(exc.code, int) else _fail(str(exc.code))
    except (LimaError, ValueError, OSError) as exc:
        return _fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    except KeyboardInterrupt:
        return _fail("interrupted")
