"""The benchmark: engine overhead, time per explanation and peak memory.

For each region count it reports forward passes per second inside the search divided by the
classifier's plain batched throughput at the same batch size (1.0 = the engine adds nothing
to the model's own cost), the time per explanation, the forward passes, and the peak memory
(resident set on the CPU, allocated memory on CUDA). Also: the time of the reference code's
input pipeline (numpy compositing and a per-image PIL/ToTensor/Normalize transform) for the
same number of images, to show what composing on the device saves. Side by side
(``--backends``), the official code's way of running the same search is replayed and timed in
the same run (:func:`official_replay`), so the speed-up over it is measured, not estimated.

Run: ``python -m explainer bench`` (see ``--help``).
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch

from explainer.models import Classifier, device_label
from explainer.regions import slico_for_count
from explainer.search import explain


def measure_throughput(
    clf: Classifier, batch_size: int | None = None, seconds: float = 3.0, min_batches: int = 3
) -> float:
    """The classifier's plain batched throughput in images per second.

    Random composited-looking inputs already on the device, ``batch_size`` a batch (default: the
    classifier's), one warm-up batch, then at least ``min_batches`` batches or ``seconds``.
    """
    b = batch_size or clf.batch_size
    x = torch.rand(b, 3, clf.size, clf.size, device=clf.device)
    clf.probs(x)
    _sync(clf.device)
    done, start = 0, time.perf_counter()
    while done < min_batches * b or time.perf_counter() - start < seconds:
        clf.probs(x).sum().item()
        done += b
    _sync(clf.device)
    return done / (time.perf_counter() - start)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class PeakMemory:
    """Peak memory while the block runs: sampled RSS on the CPU, the allocator's peak on CUDA."""

    def __init__(self, device: torch.device, interval_s: float = 0.02):
        self.device, self.interval = device, interval_s
        self.peak = 0
        self.baseline = 0
        self._stop = threading.Event()

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, _rss_bytes())

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            self.baseline = torch.cuda.memory_allocated(self.device)
        else:
            self.baseline = self.peak = _rss_bytes()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            self.peak = torch.cuda.max_memory_allocated(self.device)
        else:
            self._stop.set()
            self._thread.join()
            self.peak = max(self.peak, _rss_bytes())

    @property
    def peak_mib(self) -> float:
        return self.peak / 2**20

    @property
    def added_mib(self) -> float:
        return (self.peak - self.baseline) / 2**20


@dataclass
class BenchRow:
    requested: int  # the region count asked for
    regions: int  # the count SLICO actually gave (as close as it gets)
    search: str
    pending: int
    batch_size: int
    forward_passes: int
    seconds: float
    search_rate: float  # forward passes per second inside the search
    plain_rate: float  # the classifier's plain batched throughput (images/s)
    ratio: float  # search_rate / plain_rate
    peak_mib: float
    added_mib: float
    insertion_auc: float
    deletion_auc: float
    step_candidates: list[int]  # candidates each search step compared, in order (the schedule)


def reference_pipeline_rate(clf: Classifier, view: np.ndarray, labels: np.ndarray, n_images: int) -> float:
    """Images per second of the reference code's input path, model included: region images
    summed in numpy, then per image PIL -> Resize -> ToTensor -> Normalize, one batch per call."""
    from PIL import Image
    from torchvision import transforms

    tf = transforms.Compose(
        [
            transforms.Resize((clf.size, clf.size), interpolation=transforms.InterpolationMode.BICUBIC),
            transforms.ToTensor(),
        ]
    )
    n = int(labels.max()) + 1
    regions = [view * (labels == i)[..., None] for i in range(n)]
    rng = np.random.default_rng(0)
    start, done = time.perf_counter(), 0
    while done < n_images:
        b = min(clf.batch_size, n_images - done)
        subsets = [rng.random(n) < 0.5 for _ in range(b)]
        imgs = [np.array(regions)[s].sum(0).astype(np.uint8) for s in subsets]
        batch = torch.stack([tf(Image.fromarray(x)) for x in imgs]).to(clf.device)
        clf.probs(batch).cpu()
        done += b
    return done / (time.perf_counter() - start)


def official_replay(
    clf: Classifier, view: np.ndarray, labels: np.ndarray, step_candidates: list[int], seed: int = 0
) -> dict:
    """Run the official LiMA code's way of computing one explanation, and time it.

    The official code (spec §4.2, §8) makes, per search step, one model call with the images of
    all the step's candidate subsets and one with their complements (no chunking: up to N images
    a call), plus one call for the source image. Each image is composed in numpy (the region
    images of the subset summed; a complement is the photo minus that), then goes through
    PIL -> Resize -> ToTensor -> Normalize one by one, and the batch through the PyTorch model
    as loaded (eager, default NCHW memory format), then a softmax. This replays exactly that for
    ``step_candidates`` (our search's own schedule, the same as the official one), with random
    subsets: the cost does not depend on which regions a subset holds.

    Args:
        clf: gives the PyTorch module, input size and normalisation (whatever its backend).
        view: H×W×3 uint8, the model's view; labels: H×W int region ids 0..N-1.
        step_candidates: candidates compared per step (``BenchRow.step_candidates``).

    Returns:
        ``{"seconds", "forward_passes", "images_per_s", "calls", "largest_call"}``.
    """
    import copy

    from PIL import Image
    from torchvision import transforms

    module = copy.deepcopy(clf.module).to(memory_format=torch.contiguous_format).eval()
    tf = transforms.Compose(
        [
            transforms.Resize((clf.size, clf.size), interpolation=transforms.InterpolationMode.BICUBIC),
            transforms.ToTensor(),
            transforms.Normalize(clf.preprocess.mean, clf.preprocess.std),
        ]
    )
    n = int(labels.max()) + 1
    region_images = np.stack([view * (labels == i)[..., None] for i in range(n)])  # N×H×W×3 uint8
    whole = view.astype(np.int32)
    rng = np.random.default_rng(seed)

    def call(images: list[np.ndarray]) -> None:
        batch = torch.stack([tf(Image.fromarray(x)) for x in images]).to(clf.device)
        with torch.no_grad():
            torch.softmax(module(batch).float(), dim=-1).cpu()

    calls = [1] + [c for c in step_candidates for _ in range(2)]
    start = time.perf_counter()
    call([view])  # the source image (the counterfactual label)
    for c in step_candidates:
        subsets = [region_images[rng.random(n) < 0.5].sum(0, dtype=np.int32) for _ in range(c)]
        call([s.astype(np.uint8) for s in subsets])  # x_{S+c} for every candidate
        call([(whole - s).astype(np.uint8) for s in subsets])  # x - x_{S+c}
    _sync(clf.device)
    seconds = time.perf_counter() - start
    passes = sum(calls)
    return {
        "seconds": seconds,
        "forward_passes": passes,
        "images_per_s": passes / seconds,
        "calls": len(calls),
        "largest_call": max(calls),
    }


def bench_one(
    clf: Classifier,
    view: np.ndarray,
    n_regions: int,
    search: str = "bidirectional",
    pending: int = 8,
    target: int = 281,
    plain_seconds: float = 3.0,
) -> BenchRow:
    """One explanation with about ``n_regions`` SLICO regions (the nearest count SLICO gives on
    this view), bracketed by two throughput runs."""
    labels, _ = slico_for_count(view, n_regions)
    before = measure_throughput(clf, seconds=plain_seconds)
    with PeakMemory(clf.device) as mem:
        exp = explain(clf, view, labels, target, search=search, pending=pending)
    after = measure_throughput(clf, seconds=plain_seconds)
    plain = (before + after) / 2
    rate = exp.forward_passes / exp.wall_time_s
    return BenchRow(
        n_regions,
        exp.n_regions,
        search,
        pending,
        clf.batch_size,
        exp.forward_passes,
        exp.wall_time_s,
        rate,
        plain,
        rate / plain,
        mem.peak_mib,
        mem.added_mib,
        exp.insertion_auc,
        exp.deletion_auc,
        [int(c) for c in exp.log.candidates],
    )


def run_bench(
    clf: Classifier,
    view: np.ndarray,
    region_counts=(25, 49, 100),
    search: str = "bidirectional",
    pending: int = 8,
    target: int = 281,
    reference: bool = True,
    log=print,
    plain_seconds: float = 3.0,
) -> dict:
    """The whole benchmark; ``log`` receives one line per result. Returns a JSON-able dict."""
    log(
        f"model {clf.id} on {device_label(clf.device)}, batch size {clf.batch_size}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} CPU threads"
    )
    rows = []
    for n in region_counts:
        row = bench_one(clf, view, n, search, pending, target, plain_seconds)
        rows.append(row)
        asked = "" if row.requested == row.regions else f" (asked for {row.requested})"
        log(
            f"N={row.regions:3d}{asked} {row.search} p={row.pending}: {row.seconds:7.2f} s, "
            f"{row.forward_passes} passes, "
            f"{row.search_rate:7.1f} passes/s in search vs {row.plain_rate:7.1f} plain -> ratio {row.ratio:.3f}; "
            f"peak memory {row.peak_mib:.0f} MiB (+{row.added_mib:.0f})"
        )
    out = {
        "model": clf.id,
        "device": device_label(clf.device),
        "batch_size": clf.batch_size,
        "torch": torch.__version__,
        "rows": [asdict(r) for r in rows],
    }
    if reference:
        labels, _ = slico_for_count(view, 49)
        n_images = 8 * clf.batch_size if clf.device.type == "cpu" else 4 * clf.batch_size
        ref = reference_pipeline_rate(clf, view, labels, n_images)
        plain = measure_throughput(clf, seconds=plain_seconds)
        out["reference_pipeline"] = {"images_per_s": ref, "plain_images_per_s": plain, "ratio": ref / plain}
        log(
            f"reference-style input pipeline (numpy merge + per-image PIL transform): {ref:.1f} images/s "
            f"vs {plain:.1f} plain -> ratio {ref / plain:.3f}"
        )
    return out


def scan_bench(clf: Classifier, image_set, log=print) -> dict:
    """Scanning a labelled set (decode + view + classify) versus the plain batched throughput."""
    from explainer.scan import scan

    plain_before = measure_throughput(clf, seconds=3.0)
    result = scan(clf, image_set)
    plain = (plain_before + measure_throughput(clf, seconds=3.0)) / 2
    rate = len(result.rows) / result.elapsed_s
    out = {
        "images": len(result.rows),
        "seconds": result.elapsed_s,
        "images_per_s": rate,
        "plain_images_per_s": plain,
        "ratio": rate / plain,
        "accuracy": result.accuracy,
        "mistakes": len(result.mistakes()),
    }
    log(
        f"scan of {image_set.name}: {out['images']} images in {out['seconds']:.1f} s = {rate:.1f} images/s vs "
        f"{plain:.1f} plain -> ratio {out['ratio']:.3f}; accuracy {100 * result.accuracy:.1f} % "
        f"({out['mistakes']} mistakes)"
    )
    return out


# -- backends side by side -------------------------------------------------------------------------


def first_explanation_s(load, backend: str, n_regions: int = 36, target: int | None = None) -> dict:
    """The first demo explanation from a click: load the model (its export already cached), take
    the first demo photo's view, SLICO regions (about ``n_regions``), and the full search.

    Args:
        load: ``load(backend) -> Classifier`` (a fresh load, as a new app process does).
    """
    from explainer.data import demo_set

    start = time.perf_counter()
    clf = load(backend)
    loaded = time.perf_counter()
    item = demo_set(clf.class_names).items[0]
    view = clf.view(item.load())
    labels, _ = slico_for_count(view, n_regions)
    exp = explain(clf, view, labels, item.label if target is None else target)
    done = time.perf_counter()
    return {
        "backend": clf.backend,
        "regions": exp.n_regions,
        "load_s": loaded - start,
        "explain_s": done - loaded,
        "total_s": done - start,
    }


def compare_backends(
    load,
    backends: list[str],
    view: np.ndarray,
    region_counts=(25, 49),
    search: str = "bidirectional",
    pending: int = 8,
    target: int = 281,
    scan_set=None,
    log=print,
    plain_seconds: float = 3.0,
    reference: bool = True,
    first_demo: bool = True,
) -> dict:
    """Every backend side by side in one run, interleaved (so the machine's drift hits all alike).

    For each backend: the plain batched throughput, and for each region count the time per
    explanation, forward passes per second inside the search vs plain, and peak memory; the
    scan throughput of ``scan_set`` (optional); the first demo explanation from a click. Ratios
    are against the first backend (``torch`` first gives speed-ups over PyTorch).

    Args:
        load: ``load(backend) -> Classifier`` for a backend name.
    """
    clfs = {name: load(name) for name in backends}
    for name, clf in clfs.items():
        log(f"{name}: {clf.backend_note} · {clf.batch_size} images a batch")
    out: dict = {
        "model": next(iter(clfs.values())).id,
        "device": device_label(next(iter(clfs.values())).device),
        "load_average": list(os.getloadavg()),
        "backends": {
            n: {"runs": clf.backend, "note": clf.backend_note, "batch_size": clf.batch_size} for n, clf in clfs.items()
        },
        "rows": [],
    }
    sweep: dict[str, dict[int, float]] = {name: {} for name in backends}
    for b in (8, 16, 32):  # the batch size each backend runs fastest at (interleaved)
        for name, clf in clfs.items():
            sweep[name][b] = measure_throughput(clf, b, seconds=plain_seconds / 2)
    out["plain_by_batch_size"] = sweep
    log(
        "plain images/s by batch size: "
        + " | ".join(f"{name} " + ", ".join(f"{b}: {r:.0f}" for b, r in sweep[name].items()) for name in backends)
    )
    base = backends[0]
    for n in region_counts:
        row: dict = {"requested": n}
        for name, clf in clfs.items():
            r = bench_one(clf, view, n, search, pending, target, plain_seconds)
            row["regions"] = r.regions
            row[name] = asdict(r)
        for name in backends[1:]:
            row[f"speedup_{name}"] = row[base]["seconds"] / row[name]["seconds"]
        if reference:
            # The official code run the official way on the same view, regions and schedule,
            # measured in this run (not estimated), right after our backends on the same inputs.
            labels, _ = slico_for_count(view, n)
            schedule = row[base]["step_candidates"]
            official = official_replay(clfs.get("torch", clfs[base]), view, labels, schedule)
            row["official_code"] = official
            row["official_code_s"] = official["seconds"]
            for name in backends:
                row[f"speedup_vs_official_{name}"] = official["seconds"] / row[name]["seconds"]
        out["rows"].append(row)
        log(
            f"N={row['regions']:3d}: "
            + " | ".join(
                f"{name} {row[name]['seconds']:.2f} s ({row[name]['search_rate']:.0f} passes/s in search vs "
                f"{row[name]['plain_rate']:.0f} plain, ratio {row[name]['ratio']:.2f}, "
                f"peak {row[name]['peak_mib']:.0f} MiB)"
                for name in backends
            )
            + "".join(f" -> {name} {row[f'speedup_{name}']:.2f}x" for name in backends[1:])
        )
        if reference:
            o = row["official_code"]
            log(
                f"N={row['regions']:3d}: official code (replayed: {o['forward_passes']} passes in {o['calls']} calls "
                f"of up to {o['largest_call']} images, {o['images_per_s']:.1f} images/s) {o['seconds']:.1f} s -> "
                + ", ".join(f"{name} {row[f'speedup_vs_official_{name}']:.2f}x faster" for name in backends)
            )
    if scan_set is not None:
        scans = {name: scan_bench(clf, scan_set, log=lambda _line: None) for name, clf in clfs.items()}
        out["scan"] = scans
        log(
            f"scan of {scan_set.name}: "
            + " | ".join(f"{name} {s['images_per_s']:.1f} images/s" for name, s in scans.items())
            + "".join(
                f" -> {name} {scans[name]['images_per_s'] / scans[base]['images_per_s']:.2f}x" for name in backends[1:]
            )
        )
    if first_demo:
        firsts = {name: first_explanation_s(load, name) for name in backends}
        out["first_demo_explanation"] = firsts
        log(
            "first demo explanation (load + view + SLICO ~36 regions + search): "
            + " | ".join(
                f"{name} {f['total_s']:.1f} s (load {f['load_s']:.1f}, {f['regions']} regions)"
                for name, f in firsts.items()
            )
        )
    out["load_average_after"] = list(os.getloadavg())
    return out
