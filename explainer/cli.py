"""Command line: ``python -m explainer {explain,scan,regions,evaluate,bench,study,batch,slides}`` (also
installed as ``lima``).

The search flags (``--search``, ``--pending``, ``--weights``, ``--fill``, ``--tolerance``) are
generated from :class:`explainer.config.SearchOptions`, region parameters (``--param
NAME=VALUE``) are read by the chosen method's options class, and model names by the model
registry: defaults, ranges and help are defined once, in the engine. Bad arguments and bad
inputs print one line (``lima: error: ...``) and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from explainer.config import SearchOptions
from explainer.errors import LimaError, SearchError, UsageError
from explainer.evaluate import EvaluationOptions
from explainer.options import Options, parse_pairs

EXIT_BAD_INPUT = 2
OptionsT = TypeVar("OptionsT", bound=Options)
FIGURE_FORMATS = ("png", "svg", "pdf")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]  # one line, not the usage
        raise SystemExit(_fail(f"{message} (see {self.prog} --help)"))


def _fail(message: str) -> int:
    print(f"lima: error: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


# -- flags generated from options dataclasses ------------------------------------------------------------


def add_option_flags(parser: argparse.ArgumentParser, options: type[Options], skip: tuple[str, ...] = ()) -> None:
    """One ``--name`` flag per field of ``options`` (nested options take ``name=value`` pairs).

    Values stay text here: :meth:`Options.parse` converts and validates them, so every message
    about a bad value comes from the one definition of the option.
    """
    for f in options.specs():
        if f.name in skip:
            continue
        flag = "--" + f.name.replace("_", "-")
        default = f.default.to_dict() if isinstance(f.default, Options) else f.default
        help_text = f"{f.spec.help} (default: {_show(default)})"
        if f.kind == "bool":
            parser.add_argument(flag, dest=f.name, action="store_true", default=None, help=f.spec.help)
        elif f.kind == "options":
            names = ",".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in default.items())
            parser.add_argument(
                flag,
                dest=f.name,
                action="append",
                default=[],
                metavar="NAME=VALUE",
                help=f"{f.spec.help} e.g. {names}; missing names keep their defaults",
            )
        elif f.kind == "choice":
            parser.add_argument(flag, dest=f.name, choices=list(f.spec.choices), default=None, help=help_text)
        else:
            parser.add_argument(flag, dest=f.name, default=None, metavar=f.kind.upper(), help=help_text)


def options_from_args(options: type[OptionsT], args: argparse.Namespace) -> OptionsT:
    """The options object from the flags :func:`add_option_flags` added (defaults where unset)."""
    values: dict[str, Any] = {}
    for f in options.specs():
        given = getattr(args, f.name, None)
        if f.kind == "options":
            if given:
                nested = f.options_type
                assert nested is not None
                values[f.name] = nested.parse(parse_pairs(given, f"--{f.name}", nested.error))
        elif given is not None:
            values[f.name] = given
    values = {k: v for k, v in values.items() if not (isinstance(v, bool) and v is False)}
    text = {k: v for k, v in values.items() if isinstance(v, str)}
    return options.parse(text).replace(**{k: v for k, v in values.items() if not isinstance(v, str)})


def _show(value: Any) -> str:
    return "automatic" if value is None else str(value)


# -- model, regions, sets ------------------------------------------------------------------------------------


def _add_model_args(p: argparse.ArgumentParser) -> None:
    from explainer.models import list_sources
    from explainer.models.registry import example_spec

    names = ", ".join(example_spec(s) for s in list_sources())
    p.add_argument(
        "--model",
        default="efficientnet_lite0",
        help=f"the classifier: {names} (default: the built-in efficientnet_lite0, offline)",
    )
    p.add_argument("--class-names", help="class-names file for user models (one per line; line i = class i-1)")
    p.add_argument("--allow-pickle", action="store_true", help="allow checkpoint: files (unpickling runs code)")
    p.add_argument("--prompt", help="CLIP prompt template, {} marks the class name (default: 'a photo of a {}.')")
    p.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda or cuda:N")
    p.add_argument(
        "--batch-size", type=int, default=0, help="images per forward pass (default: chosen for the backend and device)"
    )
    from explainer.backends import RuntimeOptions

    add_option_flags(p, RuntimeOptions)  # --backend, --precision


def _load_model(args):
    from explainer.models import load_classifier
    from explainer.models.registry import source_of

    source, _ = source_of(args.model)
    if args.class_names and "class_names" not in source.inputs.names():
        raise UsageError(f"--class-names is for models that bring their own classes, not {args.model}")

    from explainer.backends import RuntimeOptions

    runtime = options_from_args(RuntimeOptions, args)
    extras = {"template": args.prompt} if getattr(args, "prompt", None) else {}
    return load_classifier(
        args.model,
        device=args.device,
        class_names=args.class_names,
        allow_pickle=args.allow_pickle,
        precision=runtime.precision,
        batch_size=args.batch_size,
        backend=runtime.backend,
        **extras,
    )


def _runs_with(clf) -> str:
    from explainer.backends import runs_with

    return runs_with(clf)


def _region_help() -> str:
    from explainer.regions import REGION_METHODS

    return ", ".join(REGION_METHODS.names()) + ", or a LABELS.npy file"


def _regions(method: str, pairs: list[str], image: str, clf, view) -> tuple[np.ndarray, Any]:
    """The label map and its provenance (a RegionSpec) from ``--regions``/``--method`` and ``--param``."""
    from explainer.errors import RegionError
    from explainer.regions import REGION_METHODS, RegionSpec, load_label_map, propose_regions

    if _is_label_file(method):
        if pairs:
            raise RegionError("--param has no effect with a label-map file")
        path = Path(method)
        return load_label_map(path, view.shape[:2]), RegionSpec("file", None, path.name)
    spec = REGION_METHODS.get(method)
    options = spec.options.parse(parse_pairs(pairs, "--param", RegionError, split_commas=False))
    objects = {}
    if method == "sam":  # SAM sees a sharper crop with the view's framing
        objects["source"] = clf.view(image, size=int(getattr(options, "resolution", None) or 1024))
    labels = propose_regions(view, method, options, **objects)
    return labels, RegionSpec(method, options)


class _ProgressLine:
    """Progress on stderr: one line redrawn on a terminal, a line every tenth of the way otherwise
    (a log file or a pipe still shows that a long run is alive). Silent with ``--quiet``."""

    def __init__(self, quiet: bool):
        self.quiet, self.tty, self.shown = quiet, sys.stderr.isatty(), -1

    def note(self, text: str) -> None:
        if not self.quiet:
            print(text, file=sys.stderr, flush=True)

    def update(self, progress: Any) -> None:
        if self.quiet:
            return
        eta = progress.eta_s
        text = progress.describe() + ("" if not eta else f" · about {eta / 60:.1f} min left")
        if self.tty:
            print(f"\r{text[:150]}\033[K", end="", file=sys.stderr, flush=True)
        elif int(10 * progress.fraction) > self.shown:
            self.shown = int(10 * progress.fraction)
            print(f"{100 * progress.fraction:3.0f} % · {text}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if not self.quiet and self.tty:
            print(file=sys.stderr)


def _is_label_file(regions: str) -> bool:
    return regions.lower().endswith(".npy")


def _output_file(path: str | None, flag: str, inputs: tuple[str, ...] = ()) -> Path | None:
    """Check an output file's path before any work: not empty, not a folder, not an input, in a
    folder that exists or can be made."""
    if path is None:
        return None
    if not path.strip():
        raise UsageError(f"{flag} needs a file name, got an empty one")
    out = Path(path).expanduser()
    if out.is_dir():
        raise UsageError(f"{flag} {out} is a folder; give a file name")
    for given in inputs:
        if Path(given).exists() and out.resolve() == Path(given).resolve():
            raise UsageError(f"{flag} {out} is an input of this command; it would be overwritten")
    _output_folder(str(out.parent), flag)
    return out


def _write_output(out: Path, data: str | bytes) -> None:
    """Write an output file checked by :func:`_output_file`, making its folder first (the check
    made sure it can be made, but made nothing, so bad input leaves no empty folder behind)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        out.write_text(data, encoding="utf-8")
    else:
        out.write_bytes(data)


def _open_set(source: str, clf):
    from explainer import data

    if source == "demo":
        return data.demo_set(clf.class_names)
    return data.open_image_set(source, clf.class_names)


def _figure_formats(text: str) -> list[str]:
    formats = [f.strip().lower().lstrip(".") for f in text.split(",") if f.strip()]
    if formats == ["none"]:
        return []
    bad = [f for f in formats if f not in FIGURE_FORMATS]
    if bad or not formats:
        raise UsageError(f"--figure takes png, svg and/or pdf (comma-separated) or none, got {text!r}")
    return list(dict.fromkeys(formats))


def _output_folder(path: str, flag: str = "--out") -> Path:
    """Check an output folder before any work, so a long run never ends in an error; nothing is
    created yet (bad input leaves no empty folder behind): the folder, or its nearest existing
    parent, must be a writable folder. ``flag`` names the folder in the messages."""
    if not path.strip():
        raise UsageError(f"{flag} needs a folder name, got an empty one")
    out = Path(path).expanduser()
    if out.exists() and not out.is_dir():
        raise UsageError(f"{flag} {out} is a file; give a folder (it is created if missing)")
    existing = out
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(f"{flag} {out} cannot be created: {existing} is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"{flag} {out} cannot be written: no write permission in {existing}")
    return out


# -- the parser ------------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="lima", description="LiMA Lens: explain why an image classifier got an image wrong.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser(
        "slides", help="a saved run's step-through as a captioned MP4 (H.264) and/or GIF at the photo's resolution"
    )
    p.add_argument("run", help="a run key of the run store ($LIMA_RUNS_DIR) or a run folder (explain --out)")
    p.add_argument("--out", required=True, help="the file to write: .mp4 or .gif")
    p.add_argument("--gif", help="also write a GIF here")
    p.add_argument("--fps", type=float, default=2.0, help="steps per second (default 2)")
    p.add_argument("--hidden", choices=("black", "dim"), default="black", help="hidden regions black or dimmed")

    p = sub.add_parser("explain", help="explain one image; writes the result files and a figure")
    p.add_argument("image")
    p.add_argument("--label", type=int, required=True, help="the true class index")
    p.add_argument("--target", type=int, help="class to explain (default: the true class)")
    p.add_argument(
        "--tracked", type=int, help="second class to follow (default: the prediction if wrong, else the runner-up)"
    )
    p.add_argument("--regions", default="slico", help=_region_help())
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="region parameter, e.g. region_size=30 (repeatable; see the method's parameters)",
    )
    add_option_flags(p, SearchOptions)
    p.add_argument("--out", help="output folder for the result files (needed unless --save-run)")
    p.add_argument(
        "--save-run",
        action="store_true",
        help="also save the run in the app's run store ($LIMA_RUNS_DIR) and print its key and link path "
        "(/Explain?run=KEY), e.g. to prepare a talk",
    )
    p.add_argument(
        "--figure",
        default="png",
        metavar="FORMATS",
        help="the paper figure's formats, comma-separated: png, svg, pdf (default png; 'none' for none)",
    )
    p.add_argument("--quiet", action="store_true")
    _add_model_args(p)

    p = sub.add_parser(
        "scan",
        help="accuracy and the misclassified images of a labelled set (in process or on Ray)",
        description="Score every image of a labelled set. The result is kept in the scan cache, where Find "
        "errors, batch and study reuse it; an in-process scan also keeps its mistakes' gallery thumbnails in "
        "<cache>/thumbnails.",
    )
    p.add_argument(
        "source", help="a folder (one sub-folder per class), a label list (<file> <class>), a CSV, or 'demo'"
    )
    p.add_argument("--json", help="also write the full result as JSON here")
    p.add_argument("--top", type=int, default=0, help="list at most this many mistakes (0 = all)")
    _add_ray_args(p)
    p.add_argument("--chunk", type=int, default=64, help="images per Ray task (default 64)")
    p.add_argument(
        "--ray-shared-fs",
        action="store_true",
        help="the Ray workers see this machine's image files at the same paths: send paths, not the files' bytes",
    )
    p.add_argument("--quiet", action="store_true", help="no progress line")
    _add_model_args(p)

    p = sub.add_parser("regions", help="split an image into regions and save the label map (.npy) and a preview")
    p.add_argument("image")
    p.add_argument("--method", default="slico", help=_region_help().removesuffix(", or a LABELS.npy file"))
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
    p.add_argument("--out", required=True, help="output .npy path (a .png preview is written beside it)")
    _add_model_args(p)

    p = sub.add_parser("evaluate", help="a faithfulness scorecard: every image x method on the same regions")
    p.add_argument("source", help="a folder, a label list (<file> <class>), a CSV, or 'demo'")
    add_option_flags(p, EvaluationOptions)
    p.add_argument("--regions", default="slico", help=_region_help().removesuffix(", or a LABELS.npy file"))
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE", help="region parameter")
    add_option_flags(p, SearchOptions, skip=("search", "tolerance"))
    p.add_argument("--json", help="write every image x method and the summary as JSON here")
    p.add_argument("--csv", help="write one row per image and method as CSV here")
    p.add_argument("--quiet", action="store_true")
    _add_model_args(p)

    p = sub.add_parser("bench", help="engine overhead, time per explanation, peak memory")
    p.add_argument(
        "--regions", default="25,49,100", help="comma-separated region counts (any; SLICO gets as close as it can)"
    )
    add_option_flags(p, SearchOptions, skip=("weights", "fill", "tolerance"))
    p.add_argument(
        "--no-reference",
        action="store_true",
        help="skip the official-code comparison (its input pipeline; with --backends, the official way of "
        "running the same search, replayed and timed)",
    )
    p.add_argument("--no-demo", action="store_true", help="skip the first-demo-explanation timing (--backends)")
    p.add_argument("--scan", metavar="SET", help="also time a scan of this image set (folder, label list, CSV, demo)")
    p.add_argument("--json", help="write the results as JSON here")
    p.add_argument(
        "--backends",
        metavar="NAMES",
        help="compare these backends side by side in one run, e.g. torch,onnxruntime (ratios to the first)",
    )
    _add_model_args(p)
    _add_study_parser(sub)
    _add_batch_parser(sub)
    return parser


def _add_study_parser(sub) -> None:
    from explainer.study import StudyOptions

    p = sub.add_parser("study", help="stimuli, lists and answer key for a human study of explanations")
    p.add_argument("source", nargs="?", help="a folder, a label list, a CSV or 'demo' (or 'set' in --config)")
    p.add_argument("--config", help="a study.toml with the same names as these flags (flags override it)")
    add_option_flags(p, StudyOptions)
    p.add_argument("--regions", help=_region_help().removesuffix(", or a LABELS.npy file") + " (default slico)")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE", help="region parameter")
    p.add_argument(
        "--out", required=True, help="the bundle folder (new, empty, or an earlier bundle); a zip goes beside it"
    )
    p.add_argument("--quiet", action="store_true")
    _add_model_args(p)


# -- the commands ------------------------------------------------------------------------------------------------


def cmd_explain(args) -> int:
    from explainer import export, store
    from explainer.images import file_digest, load_image
    from explainer.search import iter_search

    options = options_from_args(SearchOptions, args)  # bad settings fail before any work
    figure_formats = _figure_formats(args.figure)
    if not args.out and not args.save_run:
        raise UsageError("explain needs --out FOLDER, --save-run, or both")
    out = _output_folder(args.out) if args.out else None
    if args.save_run:  # the run store too, before the search (minutes) rather than after it
        from explainer.settings import current

        _output_folder(str(current().runs_dir), "--save-run: the runs folder ($LIMA_RUNS_DIR)")
    load_image(args.image)  # a bad image fails before the model loads
    if _is_label_file(args.regions):
        from explainer.regions import load_label_map

        load_label_map(args.regions)
    clf = _load_model(args)
    if not 0 <= args.label < clf.num_classes:
        return _fail(f"--label {args.label} is outside 0..{clf.num_classes - 1} for {clf.id}")
    view = clf.view(args.image)
    labels, region_spec = _regions(args.regions, args.param, args.image, clf, view)
    target = args.label if args.target is None else args.target
    source = {"name": Path(args.image).name, "digest": file_digest(args.image), "label": args.label}
    from explainer.search import forward_pass_count

    line = _ProgressLine(args.quiet)
    n = int(labels.max()) + 1
    line.note(
        f"{n} regions: up to {forward_pass_count(n, options.search, options.pending):,} forward passes "
        f"with {clf.id} on {clf.device} ({_runs_with(clf)})"
    )
    result = None
    for progress in iter_search(
        clf, view, labels, target, options, tracked=args.tracked, regions=region_spec, source=source
    ):
        line.update(progress)
        result = progress.result
    line.close()
    assert result is not None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        store.save(result, out)
        for fmt in figure_formats:
            (out / f"summary.{fmt}").write_bytes(export.composite(result, fmt, dpi=150))
        (out / "curves.csv").write_text(export.curves_csv(result), encoding="utf-8")
        export.export_reference(result, out / "reference", Path(args.image).name)
    print(result.readout())
    print(
        f"insertion AUC {result.insertion_auc:.4f}, deletion AUC {result.deletion_auc:.4f}, "
        f"{result.n_regions} regions, {result.forward_passes} forward passes, {result.wall_time_s:.1f} s "
        f"on {result.device}" + (f"; written to {out}" if out is not None else "")
    )
    if args.save_run:
        from explainer.source_view import source_view

        runs = store.RunStore()
        key = store.key_of(result, tracked_was_auto=args.tracked is None)
        runs.save_source_view(key, source_view(clf, args.image))
        runs.save(result, key)
        print(f"run: {key}")
        print(f"/Explain?run={key}")
    return 0


def cmd_slides(args) -> int:
    from explainer import slides, store

    out = _output_file(args.out, "--out")
    gif = _output_file(args.gif, "--gif") if args.gif else None
    suffix = out.suffix.lower().lstrip(".") if out is not None else ""
    if suffix not in slides.FORMATS:
        raise UsageError(f"--out must end in .mp4 or .gif, got {args.out!r}")
    runs = store.RunStore()
    folder = Path(args.run)
    if store.is_run_key(args.run) and runs.has(args.run):
        exp, source = runs.load(args.run), runs.source_view(args.run)
    elif (folder / "explanation.json").is_file():
        exp, source = store.load(folder), None
    else:
        raise UsageError(f"{args.run!r} is neither a saved run's key nor a run folder")
    assert out is not None
    if suffix == "mp4":
        slides.to_mp4(exp, out, source, args.hidden, args.fps)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)  # checked by _output_file; made as for an MP4
        out.write_bytes(slides.gif_bytes(exp, source, args.hidden, args.fps))
    if gif is not None:
        gif.parent.mkdir(parents=True, exist_ok=True)
        gif.write_bytes(slides.gif_bytes(exp, source, args.hidden, args.fps))
    made = [str(out)] + ([str(gif)] if gif is not None else [])
    where = "the photo's resolution" if source is not None else "the model's view (this run kept no source crop)"
    print(f"{exp.n_regions + 1} steps at {where}: " + ", ".join(made))
    return 0


def cmd_scan(args) -> int:
    from explainer.scan import ScanCache, iter_scan
    from explainer.thumbnails import shared_cache

    if args.top < 0:
        raise UsageError(f"--top must be 0 (all) or a positive number, got {args.top}")
    if args.chunk < 1:
        raise UsageError(f"--chunk must be at least 1, got {args.chunk}")
    json_out = _output_file(args.json, "--json")
    use_ray = _use_ray(args)
    if args.ray_shared_fs and not use_ray:
        raise UsageError("--ray-shared-fs needs --ray or $RAY_ADDRESS")
    clf = _load_model(args)
    image_set = _open_set(args.source, clf)
    runner = None
    if use_ray:
        from explainer.ray_runner import RayScanRunner

        runner = RayScanRunner(
            _model_recipe(args), args.ray or None, args.workers, chunk_size=args.chunk, shared_fs=args.ray_shared_fs
        )
        print(f"{image_set.name}: scanning {len(image_set)} images on {runner.describe()}", file=sys.stderr)
    line = _ProgressLine(args.quiet)
    # In process, the mistakes' gallery thumbnails are kept as they are found (from the decoded
    # views), where the app looks: Find errors then shows this scan without decoding a photo.
    # On Ray the views stay on the workers, so the app makes them when it first shows them.
    kept = shared_cache(max_items=1) if runner is None else None  # put() writes to disk only
    scanning = iter_scan(clf, image_set, runner=runner, thumbnails=kept)
    result = None
    try:
        for progress in scanning:
            line.update(progress)
            result = progress.result or result
    except KeyboardInterrupt:
        scanning.close()  # stops the runner (Ray actors included)
        line.close()
        return _fail("interrupted: the scan was not saved")
    line.close()
    assert result is not None
    try:
        ScanCache().put(clf, image_set, result)  # what Find errors, batch and study then reuse
    except OSError as exc:  # the report and --json below still carry the whole result
        print(f"lima: warning: the scan could not be kept for the app ({exc})", file=sys.stderr)
    if kept is not None:
        kept.prune()  # a short-lived process seldom reaches the every-10,000-writes check
    readable = result.readable
    mistakes = result.mistakes()
    print(
        f"{image_set.name}: {len(readable)} images, accuracy {100 * result.accuracy:.1f} % "
        f"({len(mistakes)} misclassified), {result.images_per_s:.1f} images/s with {clf.id}"
        + (f" on {runner.describe()}" if runner is not None else "")
    )
    names = clf.class_names
    for r in mistakes[: args.top or None]:
        print(
            f"{r.key}\ttrue {r.label} {names[r.label]} ({r.p_label:.3f})\t"
            f"predicted {r.pred} {names[r.pred]} ({r.p_pred:.3f})"
        )
    for r in result.rows:
        if r.error:
            print(f"unreadable: {r.error}", file=sys.stderr)
    for line in image_set.problems:
        print(f"skipped: {line}", file=sys.stderr)
    if json_out is not None:
        _write_output(json_out, result.to_json())
    return 0


def cmd_regions(args) -> int:
    from explainer import render
    from explainer.regions import region_stats

    if not args.out.lower().endswith(".npy"):
        raise UsageError(f"--out must name a .npy file (the label map), got {args.out!r}")
    out = _output_file(args.out, "--out", (args.image,))
    assert out is not None
    preview = out.with_name(out.name[: -len(".npy")] + ".regions.png")  # never the input photo's name
    if preview.exists() and preview.resolve() == Path(args.image).resolve():
        raise UsageError(f"the preview {preview} would overwrite the input image")
    clf = _load_model(args)
    view = clf.view(args.image)
    labels, _ = _regions(args.method, args.param, args.image, clf, view)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.save(out, labels)
    preview.write_bytes(render.to_png(render.draw_boundaries(view, labels)))
    stats = region_stats(labels)
    print(
        f"{stats.count} regions (smallest {stats.smallest_px} px, largest {stats.largest_px} px); "
        f"wrote {out} and {preview}"
    )
    return 0


def cmd_bench(args) -> int:
    import skimage.data

    from explainer.bench import run_bench, scan_bench

    try:
        counts = [int(x) for x in args.regions.split(",") if x.strip()]
    except ValueError:
        raise SearchError(f"--regions takes comma-separated region counts, got {args.regions!r}") from None
    if not counts or min(counts) < 1:
        raise SearchError(f"--regions takes positive region counts, got {args.regions!r}")
    options = options_from_args(SearchOptions, args)
    json_out = _output_file(args.json, "--json")
    if args.backends:
        return _bench_backends(args, counts, options, json_out)
    clf = _load_model(args)
    result = run_bench(
        clf, clf.view(skimage.data.chelsea()), counts, options.search, options.pending, reference=not args.no_reference
    )
    if args.scan:
        result["scan"] = scan_bench(clf, _open_set(args.scan, clf))
    if json_out is not None:
        _write_output(json_out, json.dumps(result, indent=1))
    return 0


def _bench_backends(args, counts: list[int], options, json_out) -> int:
    import skimage.data

    from explainer.backends import BACKENDS
    from explainer.bench import compare_backends

    names = [n.strip() for n in args.backends.split(",") if n.strip()]
    for name in names:
        BACKENDS.get(name)  # unknown names fail before any work

    def load(name: str):
        args.backend = name
        return _load_model(args)

    first = load(names[0])
    result = compare_backends(
        load,
        names,
        first.view(skimage.data.chelsea()),
        counts,
        options.search,
        options.pending,
        scan_set=_open_set(args.scan, first) if args.scan else None,
        reference=not args.no_reference,
        first_demo=not args.no_demo,
    )
    if json_out is not None:
        _write_output(json_out, json.dumps(result, indent=1))
    return 0


def cmd_evaluate(args) -> int:
    from explainer.comparison import MethodStore
    from explainer.errors import RegionError
    from explainer.evaluate import iter_evaluate, table, to_csv
    from explainer.regions import REGION_METHODS, RegionSpec
    from explainer.scan import ScanCache, scan

    options = options_from_args(EvaluationOptions, args)
    search = options_from_args(SearchOptions, args)
    names = options.method_names()
    json_out, csv_out = _output_file(args.json, "--json"), _output_file(args.csv, "--csv")
    spec = REGION_METHODS.get(args.regions)
    region = RegionSpec(
        args.regions, spec.options.parse(parse_pairs(args.param, "--param", RegionError, split_commas=False))
    )
    clf = _load_model(args)
    image_set = _open_set(args.source, clf)
    scans = ScanCache()
    scanned = scans.get(clf, image_set)
    if scanned is None:
        scanned = scan(clf, image_set)
        scans.put(clf, image_set, scanned)
    search_methods = {
        m: {"pending": search.pending, "weights": search.weights.to_dict()}
        for m in ("lima", "smdl")
        if m in names or options.equal_cost
    }
    result = None
    line = _ProgressLine(args.quiet)
    for progress in iter_evaluate(
        clf,
        image_set,
        region,
        options,
        fill=search.fill,
        methods_store=MethodStore(),
        scan_result=scanned,
        method_options=search_methods,
    ):
        line.update(progress)
        result = progress.result
    line.close()
    assert result is not None
    summary = result.summary()
    print(
        f"{len(result.images)} images of {image_set.name}, {clf.id}, regions {region.describe()}, target "
        f"{options.target} class{', equal cost' if options.equal_cost else ''}"
    )
    print(table(summary, result.methods))
    for method, reason in result.provenance.get("unavailable", {}).items():
        print(f"{method}: unavailable: {reason}")
    for row in scanned.rows:  # left out of the evaluation: named as `scan` names them
        if row.error:
            print(f"unreadable: {row.error}", file=sys.stderr)
    for problem in image_set.problems:
        print(f"skipped: {problem}", file=sys.stderr)
    if json_out is not None:
        _write_output(json_out, json.dumps({**result.to_dict(), "summary": summary}, indent=1, default=str))
    if csv_out is not None:
        _write_output(csv_out, to_csv(result))
    return 0


def _run_study(args) -> int:
    from explainer.errors import RegionError
    from explainer.regions import REGION_METHODS, RegionSpec
    from explainer.scan import ScanCache, scan
    from explainer.study import StudyOptions, iter_build_study, load_toml
    from explainer.study.bundle import check_output

    base = load_toml(args.config) if args.config else None
    options = base.options if base else StudyOptions()
    given = {f.name: getattr(args, f.name) for f in StudyOptions.specs() if getattr(args, f.name, None) is not None}
    if given:
        parsed = StudyOptions.parse({k: v for k, v in given.items() if isinstance(v, str)})
        options = options.replace(**{k: (getattr(parsed, k) if isinstance(v, str) else v) for k, v in given.items()})
    options.check()
    source = args.source or (base.image_set if base else None)
    if not source:
        raise UsageError("name the image set (SET, or set = ... in --config)")
    method = args.regions or (base.regions if base and base.regions else "slico")
    params = {**((base.params or {}) if base else {})}
    spec = REGION_METHODS.get(method)
    pairs = parse_pairs(args.param, "--param", RegionError, split_commas=False)
    region_options = spec.options.from_mapping(params, context=f" for region method {method!r}")
    if pairs:
        parsed_pairs = spec.options.parse(pairs)
        region_options = region_options.replace(**{k: getattr(parsed_pairs, k) for k in pairs})
    region = RegionSpec(method, region_options)
    out = check_output(_output_folder(args.out))
    zip_path = out.resolve().with_name(out.resolve().name + ".zip")  # resolved: `--out .` has no name of its own
    if zip_path.is_dir():
        raise UsageError(f"{zip_path} is a folder; the bundle's zip goes there (beside --out): move it or choose --out")
    clf = _load_model(args)
    image_set = _open_set(source, clf)
    scans = ScanCache()
    scanned = scans.get(clf, image_set)
    if scanned is None:
        scanned = scan(clf, image_set)
        scans.put(clf, image_set, scanned)
    line = _ProgressLine(args.quiet)
    bundle = None
    for progress in iter_build_study(options, clf, image_set, region, scan_result=scanned):
        line.update(progress)
        bundle = progress.result
    line.close()
    assert bundle is not None
    bundle.write(out)
    zip_path.write_bytes(bundle.zip())
    match = bundle.study["area_matching"]
    stats = bundle.stats
    print(
        f"{stats['stimuli']} stimuli, {options.lists} lists of {bundle.study['counts']['trials_per_list']} trials "
        f"({options.task}, {options.design}-subject), {stats['searched']} explanations computed, "
        f"{stats['reused']} reused, {stats['seconds']:.1f} s; written to {out} and {zip_path}"
    )
    if match["n"]:
        print(
            f"random control vs reference area: |delta| mean {match['mean_abs_delta']:.4f}, "
            f"max {match['max_abs_delta']:.4f} over {match['n']} stimuli"
        )
    return 0


def _add_batch_parser(sub) -> None:
    from explainer.batch import BatchOptions

    p = sub.add_parser("batch", help="explain every selected image of a set and save each run (in process or on Ray)")
    p.add_argument("source", metavar="SET", help="a folder, a label list (<file> <class>), a CSV, or 'demo'")
    add_option_flags(p, BatchOptions)
    p.add_argument("--regions", default="slico", help=_region_help().removesuffix(", or a LABELS.npy file"))
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE", help="region parameter")
    add_option_flags(p, SearchOptions)
    p.add_argument("--json", help="write every image's outcome (and the provenance) as JSON here")
    _add_ray_args(p)
    p.add_argument("--quiet", action="store_true")
    _add_model_args(p)


def cmd_batch(args) -> int:
    from explainer.batch import (
        BatchOptions,
        ImageOutcome,
        InProcessRunner,
        Runner,
        check_regions,
        check_selection,
        iter_batch,
    )
    from explainer.errors import RegionError
    from explainer.regions import REGION_METHODS, RegionSpec
    from explainer.scan import ScanCache, scan
    from explainer.store import RunStore, json_bytes

    selection = options_from_args(BatchOptions, args)
    search = options_from_args(SearchOptions, args)
    json_out = _output_file(args.json, "--json")
    spec = REGION_METHODS.get(args.regions)
    region = RegionSpec(
        args.regions, spec.options.parse(parse_pairs(args.param, "--param", RegionError, split_commas=False))
    )
    check_regions(region)
    use_ray = _use_ray(args)
    clf = _load_model(args)
    check_selection(selection, clf.class_names)
    image_set = _open_set(args.source, clf)
    line = _ProgressLine(args.quiet)
    scans = ScanCache()
    scanned = scans.get(clf, image_set)
    if scanned is None:
        line.note(f"scanning {image_set.name} ({len(image_set)} images) first")
        scanned = scan(clf, image_set)
        scans.put(clf, image_set, scanned)
    runner: Runner
    if use_ray:
        from explainer.ray_runner import RayRunner

        runner = RayRunner(_model_recipe(args), address=args.ray or None, workers=args.workers)
    else:
        runner = InProcessRunner(clf)
    finished: list[ImageOutcome] = []
    runs = RunStore()
    progress = None
    result = None
    line.note(f"{image_set.name}: explaining with {clf.id}, regions {region.describe()}, {runner.describe()}")
    batch = iter_batch(clf, image_set, scanned, region, search, selection, runner, runs, on_outcome=finished.append)
    try:
        for progress in batch:
            line.update(progress)
            result = progress.result
    except KeyboardInterrupt:
        batch.close()  # stops the runner (Ray actors included); every finished run is saved
        line.close()
        done = sorted(finished, key=lambda o: o.name)
        if json_out is not None:
            doc = {"complete": False, "images": [o.to_dict() for o in done]}
            _write_output(json_out, json_bytes(doc))
        total = progress.total if progress is not None else 0
        print(
            f"stopped: {len(done)} of {total} images finished and saved in {runs.root}; "
            "run the same command again to resume",
            file=sys.stderr,
        )
        return 130
    line.close()
    assert result is not None
    for o in result.images:
        print(
            f"{o.name}\t{o.run_key}\tminimal subset {len(o.minimal_subset)}/{o.n_regions} regions "
            f"({100 * o.minimal_subset_area:.0f} %)\tinsertion {o.insertion_auc:.3f}\tdeletion {o.deletion_auc:.3f}"
            f"\t{o.worker}"
        )
    for failure in result.failed:
        print(f"not explained: {failure['name']}: {failure['error']}", file=sys.stderr)
    seconds = sum(o.seconds for o in result.images if not o.reused)
    rate = 60 * result.computed / result.wall_time_s if result.computed and result.wall_time_s > 0 else 0.0
    print(
        f"{len(result.images)} images: {result.computed} computed ({seconds:.0f} s of search), {result.reused} reused; "
        f"wall time {result.wall_time_s:.1f} s ({rate:.2f} images/min); runs in {runs.root}"
    )
    if json_out is not None:
        _write_output(json_out, json_bytes({**result.to_dict(), "driver": _driver_stats(runner)}))
    return 0


def _add_ray_args(p: argparse.ArgumentParser) -> None:
    """``--ray [ADDRESS]`` and ``--workers N``, the same for every command that runs on Ray."""
    p.add_argument(
        "--ray",
        nargs="?",
        const="",
        default=None,
        metavar="ADDRESS",
        help="run on Ray: a cluster address (e.g. auto, ray://head:10001), or none for $RAY_ADDRESS or a local Ray",
    )
    p.add_argument("--workers", type=int, help="Ray workers (default: one per GPU of the cluster, else one per CPU)")


def _use_ray(args) -> bool:
    """Whether this command runs on Ray (``--ray``, or ``$RAY_ADDRESS`` set); checks ``--workers``
    and that Ray is installed."""
    from explainer.ray_runner import ADDRESS_ENV

    use_ray = args.ray is not None or bool(os.environ.get(ADDRESS_ENV))
    if args.workers is not None and (args.workers < 1 or not use_ray):
        raise UsageError("--workers takes a number of Ray workers (at least 1) and needs --ray or $RAY_ADDRESS")
    if use_ray:
        from explainer.ray_runner import require_ray

        require_ray()
    return use_ray


def _model_recipe(args):
    """How each Ray worker loads the model the command line names (a picklable ModelRecipe)."""
    from explainer.backends import RuntimeOptions
    from explainer.ray_runner import ModelRecipe

    runtime = options_from_args(RuntimeOptions, args)
    return ModelRecipe(
        args.model,
        "auto" if args.device == "auto" else args.device,
        args.class_names,
        args.allow_pickle,
        runtime.precision,
        args.batch_size,
        {"template": args.prompt} if args.prompt else {},
        backend=runtime.backend,
    )


def _driver_stats(runner) -> dict:
    """The driver's peak memory (this process only, not the Ray workers) and the runner's start-up."""
    try:
        import resource

        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux
    except ImportError:  # not POSIX
        peak_mb = None
    return {"peak_rss_mb": peak_mb, "runner_startup_s": round(getattr(runner, "startup_s", 0.0), 3)}


COMMANDS = {
    "batch": cmd_batch,
    "explain": cmd_explain,
    "slides": cmd_slides,
    "scan": cmd_scan,
    "regions": cmd_regions,
    "evaluate": cmd_evaluate,
    "bench": cmd_bench,
    "study": _run_study,
}


def main(argv: list[str] | None = None) -> int:
    import warnings

    # torch.jit announces its deprecation on every TorchScript load: one line of ours, not two of theirs.
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"torch\.jit")
    try:
        args = build_parser().parse_args(argv)
        return COMMANDS[args.command](args)
    except SystemExit as exc:
        return int(exc.code or 0) if isinstance(exc.code, int) else _fail(str(exc.code))
    except (LimaError, ValueError, OSError) as exc:
        return _fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    except KeyboardInterrupt:
        return _fail("interrupted")
