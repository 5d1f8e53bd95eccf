"""Batch explanation: explain every selected image of a scanned set and save each run.

Three parts:

* **Selection** (:class:`BatchOptions`, :func:`select`): which images of a scan, e.g. every
  mistake, one confusion pair ``TRUE>PRED``, some true classes, at most K of them.
* **Tasks** (:func:`prepare`): the driver decodes each image, makes the classifier's view and
  the label map and computes the run key exactly as an interactive run does
  (:func:`explainer.store.run_key` over model, view, label map, target, tracked class and search
  settings), so a batch reuses interactive runs and the reverse, and a batch that was stopped
  resumes where it stopped. The task carries the arrays, so workers need no file access.
* **Runners** (:class:`Runner`): something that turns tasks into finished explanations.
  :class:`InProcessRunner` runs them one after another in this process with one model;
  :class:`explainer.ray_runner.RayRunner` spreads them over Ray actors. The driver
  (:func:`iter_batch`) always writes the run store, so workers need no shared file system.

:func:`iter_batch` is a generator of :class:`BatchProgress` (an :class:`explainer.progress.
Progress`); the last item carries the :class:`BatchResult`. Stopping the iteration stops the
batch: every run finished so far is already saved.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np

from explainer import scan as scanning
from explainer.config import SearchOptions
from explainer.data import ImageItem, ImageSet
from explainer.errors import BatchError, LimaError
from explainer.evaluate import classes_of
from explainer.explanation import Explanation
from explainer.models import Classifier
from explainer.options import Options, option
from explainer.prefetch import prefetch
from explainer.progress import eta_from_rate
from explainer.regions import REGION_METHODS, RegionSpec, propose_regions
from explainer.search import iter_search
from explainer.store import RunStore, run_key

_LOG = logging.getLogger("lima_lens.batch")

# -- selection ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchOptions(Options):
    """Which images of a scanned set a batch explains, and which class it explains."""

    error = BatchError
    what = "batch option"

    errors_only: bool = option(False, help="Only the images the model gets wrong.")
    confusion: str | None = option(
        None,
        optional=True,
        help="Only the mistakes of one confusion pair TRUE>PRED (class indices or names), e.g. 250>248.",
    )
    classes: str | None = option(
        None, optional=True, help="Only these true classes (comma-separated indices or names)."
    )
    limit: int | None = option(None, low=1, optional=True, help="At most this many images.")
    target: str = option(
        "true",
        choices=("true", "predicted"),
        help="Explain the true class (the default for mistakes) or the predicted class.",
    )


def class_index(text: str, class_names: Sequence[str]) -> int:
    """A class given as an index ("250") or a name ("Siberian husky", case-insensitive).

    Raises:
        BatchError: no such class.
    """
    text = text.strip()
    if text.lstrip("-").isdigit():
        index = int(text)
        if not 0 <= index < len(class_names):
            raise BatchError(f"class {index} is outside 0..{len(class_names) - 1}")
        return index
    folded = {name.casefold(): i for i, name in reversed(list(enumerate(class_names)))}
    if text.casefold() not in folded:
        raise BatchError(f"no class named {text!r} (give a class index or an exact class name)")
    return folded[text.casefold()]


def parse_confusion(text: str, class_names: Sequence[str]) -> tuple[int, int]:
    """``TRUE>PRED`` as two class indices."""
    true, sep, pred = text.partition(">")
    if not sep or not true.strip() or not pred.strip():
        raise BatchError(f"--confusion takes TRUE>PRED (class indices or names), got {text!r}")
    return class_index(true, class_names), class_index(pred, class_names)


def check_selection(options: BatchOptions, class_names: Sequence[str]) -> None:
    """Raise BatchError now (before any scan or search) if the classes or the pair are unknown."""
    if options.confusion:
        parse_confusion(options.confusion, class_names)
    for text in (options.classes or "").split(","):
        if text.strip():
            class_index(text, class_names)


def select(
    result: scanning.ScanResult, image_set: ImageSet, options: BatchOptions, class_names: Sequence[str]
) -> list[tuple[ImageItem, scanning.ScanRow]]:
    """The images a batch explains, each with the model's answer on it (from the scan).

    Mistakes (``errors_only`` or ``confusion``) come most confidently wrong first, as on Find
    errors; otherwise the set's order. Unreadable images are never selected.
    """
    by_key = {item.key: item for item in image_set.items}
    if options.confusion:
        true, pred = parse_confusion(options.confusion, class_names)
        rows = result.mistakes(true, pred)
    elif options.errors_only:
        rows = result.mistakes()
    else:
        rows = result.readable
    if options.classes:
        wanted = {class_index(c, class_names) for c in options.classes.split(",") if c.strip()}
        if not wanted:
            raise BatchError(f"--classes names no class: {options.classes!r}")
        rows = [r for r in rows if r.label in wanted]
    rows = [r for r in rows if r.key in by_key]
    if options.limit is not None:
        rows = rows[: options.limit]
    return [(by_key[r.key], r) for r in rows]


# -- tasks --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchTask:
    """One image to explain, with everything a worker needs (no file access).

    Attributes:
        index: position in the batch (0-based). run_key: the store key of the result.
        view: S×S×3 uint8, the classifier's view. labels: S×S int32 label map, ids 0..N-1.
        target, tracked: class indices. source: provenance (name, key, digest, label, set).
    """

    index: int
    name: str
    item_key: str
    label: int
    prediction: int
    target: int
    tracked: int
    run_key: str
    view: np.ndarray = field(repr=False)
    labels: np.ndarray = field(repr=False)
    source: dict[str, Any]
    regions: RegionSpec
    options: SearchOptions


def check_regions(regions: RegionSpec) -> None:
    """A batch proposes regions in the driver: any registered method but SAM (which needs its
    own model and minutes per image on a CPU)."""
    if regions.method not in REGION_METHODS or regions.options is None:
        raise BatchError(f"a batch needs a region method ({', '.join(REGION_METHODS.names())}), got {regions.method!r}")
    if regions.method == "sam":
        raise BatchError("SAM regions are not available in batches yet; use slico, seeds, slic, felzenszwalb or grid")


def prepare(
    clf: Classifier,
    item: ImageItem,
    row: scanning.ScanRow,
    index: int,
    regions: RegionSpec,
    options: SearchOptions,
    target_mode: str,
    set_name: str,
) -> BatchTask:
    """The task of one image: its view, label map, classes and run key (same key as the Explain
    page gives the same inputs)."""
    view = clf.view(item.load())
    labels = propose_regions(view, regions.method, regions.options)
    target, tracked = classes_of(row, target_mode)
    key = run_key(clf.describe(), view, labels, target, tracked, options)
    source = {
        "name": item.name,
        "key": item.key,
        "digest": item.source_digest(),
        "label": item.label,
        "set": set_name,
    }
    return BatchTask(
        index, item.name, item.key, item.label, row.pred, target, tracked, key, view, labels, source, regions, options
    )


def explain_task(clf: Classifier, task: BatchTask) -> Iterator[Any]:
    """Run one task's search (the same call as an interactive run); yields SearchProgress."""
    return iter_search(
        clf,
        task.view,
        task.labels,
        task.target,
        task.options,
        tracked=task.tracked,
        regions=task.regions,
        source=task.source,
    )


# -- runners ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finished:
    """What a runner hands back for one task.

    Attributes:
        explanation: the result (the driver saves it). worker: who computed it.
        seconds: the worker's time on it. overhead_s: time the task spent in transit and
            queues beyond the worker's computation (0 in process).
    """

    task: BatchTask
    explanation: Explanation
    worker: str
    seconds: float
    overhead_s: float = 0.0


@dataclass(frozen=True)
class Tick:
    """A runner's sign of life between results: ``fraction`` of the current image done (in
    process), or None when unknown (Ray)."""

    fraction: float | None = None
    text: str = ""


@dataclass(frozen=True)
class Failed:
    """A task that could not be explained (a bad input the search refuses, e.g. a model that
    returns non-finite scores for it): the batch records it and goes on."""

    task: BatchTask
    error: str


class Runner(Protocol):
    """Turns tasks into :class:`Finished` results (in any order), yielding :class:`Tick` between
    them. It pulls tasks from the iterable only when it has room (back-pressure), and stops
    cleanly when the caller stops iterating (closes the generator)."""

    workers: int

    def describe(self) -> str: ...

    def run(self, tasks: Iterable[BatchTask]) -> Iterator[Finished | Failed | Tick]: ...


def local_worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class InProcessRunner:
    """One model in this process; images one after another (each search batches its passes)."""

    workers = 1
    prepare_threads = 1  # the search already uses every core

    def __init__(self, clf: Classifier):
        self.clf = clf

    def describe(self) -> str:
        return f"in process on {self.clf.device}"

    def run(self, tasks: Iterable[BatchTask]) -> Iterator[Finished | Failed | Tick]:
        worker = f"local@{local_worker_name()}"
        for task in tasks:
            start = time.perf_counter()
            exp = None
            try:
                for progress in explain_task(self.clf, task):
                    if progress.result is not None:
                        exp = progress.result
                    else:
                        yield Tick(progress.fraction, f"{task.name}: {progress.describe()}")
            except LimaError as exc:
                yield Failed(task, str(exc))
                continue
            assert exp is not None
            yield Finished(task, exp, worker, time.perf_counter() - start)


# -- results and progress -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageOutcome:
    """One image of a batch (a row of the ``--json`` file's ``images``).

    Attributes:
        order: the region ids in the search's order. minimal_subset: its shortest prefix within
            the tolerance of the best insertion score. seconds: the search's time; worker: who
            ran it ("reused" when an earlier run was loaded). highest_confidence: the highest
            p(target) on the insertion path; full_confidence: p(target) on the whole image;
            gain = highest − full. minimal_subset_area: the share of the image (0..1) the
            minimal subset covers.
    """

    name: str
    label: int
    target: int
    run_key: str
    order: list[int]
    insertion_auc: float
    deletion_auc: float
    minimal_subset: list[int]
    forward_passes: int
    seconds: float
    worker: str
    item_key: str = ""
    tracked: int | None = None
    prediction: int | None = None
    n_regions: int = 0
    minimal_subset_area: float = 0.0
    highest_confidence: float = 0.0
    full_confidence: float = 0.0
    gain: float = 0.0
    reused: bool = False
    overhead_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def of(
        cls,
        task: BatchTask,
        exp: Explanation,
        worker: str,
        seconds: float,
        reused: bool = False,
        overhead_s: float = 0.0,
    ) -> ImageOutcome:
        return cls._of(
            exp,
            task.name,
            task.label,
            task.target,
            task.run_key,
            task.item_key,
            task.prediction,
            worker,
            seconds,
            reused,
            overhead_s,
        )

    @classmethod
    def saved(cls, run_key: str, exp: Explanation) -> ImageOutcome:
        """The outcome of a run found in the run store (not computed by a batch): name, true
        label and image key from its provenance; worker "saved"; seconds: its wall time."""
        label = exp.source.get("label")
        return cls._of(
            exp,
            str(exp.source.get("name") or run_key),
            label if isinstance(label, int) and not isinstance(label, bool) else -1,
            exp.target,
            run_key,
            str(exp.source.get("key") or ""),
            exp.full_prediction,
            "saved",
            exp.wall_time_s,
            True,
            0.0,
        )

    @classmethod
    def _of(
        cls,
        exp: Explanation,
        name: str,
        label: int,
        target: int,
        run_key: str,
        item_key: str,
        prediction: int | None,
        worker: str,
        seconds: float,
        reused: bool,
        overhead_s: float,
    ) -> ImageOutcome:
        k = exp.minimal_subset_size
        highest, full = float(np.max(exp.insertion)), float(exp.insertion[-1])
        return cls(
            name=name,
            label=label,
            target=target,
            run_key=run_key,
            order=[int(r) for r in exp.order],
            insertion_auc=float(exp.insertion_auc),
            deletion_auc=float(exp.deletion_auc),
            minimal_subset=list(exp.minimal_subset),
            forward_passes=int(exp.forward_passes),
            seconds=round(float(seconds), 4),
            worker=worker,
            item_key=item_key,
            tracked=exp.tracked,
            prediction=prediction,
            n_regions=exp.n_regions,
            minimal_subset_area=float(exp.area[k]),
            highest_confidence=highest,
            full_confidence=full,
            gain=highest - full,
            reused=reused,
            overhead_s=round(float(overhead_s), 4),
        )


@dataclass(frozen=True)
class BatchResult:
    """A finished (or stopped) batch: one outcome per explained image, in the selection's order."""

    images: tuple[ImageOutcome, ...]
    provenance: dict[str, Any]
    selected: int
    wall_time_s: float
    complete: bool = True
    failed: tuple[dict[str, str], ...] = ()  # {"name", "error"} of each image that could not be explained

    @property
    def computed(self) -> int:
        return sum(not o.reused for o in self.images)

    @property
    def reused(self) -> int:
        return sum(o.reused for o in self.images)

    def to_dict(self) -> dict[str, Any]:
        return {
            "provenance": self.provenance,
            "selected": self.selected,
            "explained": len(self.images),
            "computed": self.computed,
            "reused": self.reused,
            "complete": self.complete,
            "wall_time_s": round(self.wall_time_s, 3),
            "failed": list(self.failed),
            "images": [o.to_dict() for o in self.images],
        }


@dataclass(frozen=True)
class BatchProgress:
    """Where a batch is (an :class:`explainer.progress.Progress`).

    Attributes:
        done: images finished (computed or reused) of ``total``. computed, reused: of those.
        to_compute: images that need a search (known once every task is prepared; until then
            the selection's size minus the reuses seen so far). current: the fraction of the
            image now running in process (None on Ray).
    """

    done: int
    total: int
    computed: int
    reused: int
    elapsed_s: float
    compute_elapsed_s: float
    current: float | None = None
    text: str = ""
    result: BatchResult | None = None

    @property
    def fraction(self) -> float:
        if self.result is not None:
            return 1.0
        return min(1.0, (self.done + (self.current or 0.0)) / max(self.total, 1))

    @property
    def images_per_min(self) -> float | None:
        """Images computed per minute so far (reused ones are free and do not count)."""
        if self.computed == 0 or self.compute_elapsed_s <= 0:
            return None
        return 60.0 * self.computed / self.compute_elapsed_s

    @property
    def eta_s(self) -> float | None:
        if self.result is not None:
            return 0.0
        left = self.total - self.done
        done = self.computed + (self.current or 0.0)
        if done <= 0:
            return None
        return eta_from_rate(done, done + left - (self.current or 0.0), self.compute_elapsed_s)

    def describe(self) -> str:
        rate = self.images_per_min
        parts = [f"{self.done:,} of {self.total:,} images"]
        if self.reused:
            parts.append(f"{self.reused:,} reused")
        if rate is not None:
            parts.append(f"{rate:.2f} images/min")
        if self.text:
            parts.append(self.text)
        return " · ".join(parts)


def provenance(
    clf: Classifier,
    image_set: ImageSet,
    regions: RegionSpec,
    search: SearchOptions,
    options: BatchOptions,
    runner: Runner,
) -> dict[str, Any]:
    from explainer.search import library_versions

    return {
        "product": "LiMA Lens",
        "what": "batch explanation",
        "selection": options.to_dict(),
        "regions": regions.to_dict(),
        "search": search.to_dict(),
        "model": clf.describe(),
        "image_set": image_set.name,
        "image_set_fingerprint": image_set.fingerprint(),
        "runner": runner.describe(),
        "workers": runner.workers,
        "versions": library_versions(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


@dataclass
class _Counts:
    computed: int = 0
    reused: int = 0
    compute_start: float | None = None  # when the first search was handed to the runner


def iter_batch(
    clf: Classifier,
    image_set: ImageSet,
    scan_result: scanning.ScanResult,
    regions: RegionSpec,
    search: SearchOptions,
    options: BatchOptions,
    runner: Runner | None = None,
    runs: RunStore | None = None,
    on_outcome: Callable[[ImageOutcome], None] | None = None,
) -> Generator[BatchProgress, None, None]:
    """Explain every selected image; yields progress, the last item carrying the :class:`BatchResult`.

    Finished runs already in ``runs`` are loaded, not recomputed; each new run is saved as soon as
    it arrives (by this process, whatever runner computed it). Stop iterating to stop: the runner
    is closed and everything finished so far is saved.

    Args:
        clf: the model in this process (views, run keys; the in-process runner's model).
        scan_result: the scan of ``image_set`` with ``clf`` (the selection comes from it).
        runner: default :class:`InProcessRunner` with ``clf``.
        runs: the run store (default: the configured one).
        on_outcome: called with each image's outcome as it finishes (e.g. to stream a table).

    Raises:
        BatchError: a bad selection, regions or an empty selection.
    """
    check_regions(regions)
    runner = runner or InProcessRunner(clf)
    runs = runs or RunStore()
    selected = select(scan_result, image_set, options, clf.class_names)
    if not selected:
        raise BatchError("the selection holds no images (check --errors-only, --confusion and --classes)")
    info = provenance(clf, image_set, regions, search, options, runner)
    position = {item.key: i for i, (item, _) in enumerate(selected)}
    start = time.perf_counter()
    outcomes: dict[int, ImageOutcome] = {}
    reused_now: list[ImageOutcome] = []
    failures: list[dict[str, str]] = []
    state = _Counts()

    def prepare_one(index: int) -> BatchTask | LimaError:
        item, row = selected[index]
        try:
            return prepare(clf, item, row, index, regions, search, options.target, image_set.name)
        except LimaError as exc:  # e.g. a file changed since the scan: recorded, the batch goes on
            return exc

    def fresh_tasks() -> Iterator[BatchTask]:
        """Prepared tasks that need a search; reused runs are collected on the way.

        Views, regions and run keys are made here, in the driver (the keys decide what is
        reused), a few images ahead of the workers. With many workers one thread would cap the
        batch, so a runner may ask for more (read once it has started): the work is PIL and
        OpenCV, which release the GIL. Tasks still come in order.
        """
        threads = max(1, int(getattr(runner, "prepare_threads", 1)))
        one_each = [[i] for i in range(len(selected))]
        for index, (task,) in enumerate(prefetch(prepare_one, one_each, ahead=2 * threads, workers=threads)):
            if isinstance(task, LimaError):
                failures.append({"name": selected[index][0].name, "error": str(task)})
                continue
            if runs.has(task.run_key):
                try:
                    exp = runs.load(task.run_key)
                except LimaError:
                    pass  # damaged: compute it again (the save replaces it)
                else:
                    reused_now.append(ImageOutcome.of(task, exp, "reused", exp.wall_time_s, reused=True))
                    continue
            if state.compute_start is None:
                state.compute_start = time.perf_counter()
            yield task

    def progress(current: float | None = None, text: str = "", result: BatchResult | None = None) -> BatchProgress:
        now = time.perf_counter()
        compute_start = state.compute_start
        return BatchProgress(
            len(outcomes) + len(failures),
            len(selected),
            state.computed,
            state.reused,
            now - start,
            0.0 if compute_start is None else now - compute_start,
            current,
            text,
            result,
        )

    def take_reused() -> None:
        while reused_now:
            outcome = reused_now.pop(0)
            outcomes[position[outcome.item_key]] = outcome
            state.reused += 1
            if on_outcome is not None:
                on_outcome(outcome)

    # Results are saved on threads (NPZ compression, file writes and the index update wait on
    # the disk and release the GIL), so the driver takes the next result while earlier ones are
    # written: one serial save (~0.1 s) would cap a batch at ~9 images/s however many workers
    # compute. An image counts as computed, and reaches ``on_outcome``, once its run is saved.
    save_threads = max(1, int(getattr(runner, "prepare_threads", 1)))
    saver = ThreadPoolExecutor(max_workers=save_threads, thread_name_prefix="lima-batch-save")
    saving: deque[tuple[Future, Finished]] = deque()

    def saved(event: Finished) -> str:
        outcome = ImageOutcome.of(
            event.task, event.explanation, event.worker, event.seconds, overhead_s=event.overhead_s
        )
        outcomes[event.task.index] = outcome
        state.computed += 1
        if on_outcome is not None:
            on_outcome(outcome)
        return f"{event.task.name} done"

    def take_saved(wait_for: int) -> list[str]:
        """Record the saves that are done, in order, waiting until at most ``wait_for`` are left
        (a failed save raises its error, as a serial save would)."""
        done = []
        while saving and (len(saving) > wait_for or saving[0][0].done()):
            future, event = saving.popleft()
            future.result()
            done.append(saved(event))
        return done

    yield progress(text="preparing")
    stream = runner.run(fresh_tasks())
    complete = False
    try:
        for event in stream:
            take_reused()
            if isinstance(event, Finished):
                saving.append((saver.submit(runs.save, event.explanation, event.task.run_key), event))
                text = f"{event.task.name} computed, saving"
            elif isinstance(event, Failed):
                failures.append({"name": event.task.name, "error": event.error})
                text = f"{event.task.name} failed"
            else:
                text = ""
            done = take_saved(wait_for=2 * save_threads)  # back-pressure on the disk
            if isinstance(event, Tick):
                yield progress(event.fraction, event.text)
            else:
                yield progress(text=done[-1] if done and not isinstance(event, Failed) else text)
        take_reused()
        for text in take_saved(wait_for=0):
            yield progress(text=text)
        complete = True
    finally:
        close = getattr(stream, "close", None)
        if close is not None:
            close()
        try:
            if not complete:  # stopped (or failed): everything computed so far is still saved
                while saving:
                    future, event = saving.popleft()
                    try:
                        future.result()
                    except Exception:  # the batch is ending on its own error, or was stopped
                        _LOG.warning("batch: the run of %s could not be saved", event.task.name, exc_info=True)
                    else:
                        saved(event)
                take_reused()
        finally:
            saver.shutdown(wait=True)
    result = BatchResult(
        tuple(outcomes[i] for i in sorted(outcomes)),
        info,
        len(selected),
        time.perf_counter() - start,
        complete,
        tuple(failures),
    )
    yield progress(result=result)


def run_batch(*args: Any, **kwargs: Any) -> BatchResult:
    """Run :func:`iter_batch` to the end and return the :class:`BatchResult`."""
    from explainer.progress import run_to_end

    return run_to_end(iter_batch(*args, **kwargs))


__all__ = [
    "BatchOptions",
    "BatchProgress",
    "BatchResult",
    "BatchTask",
    "Failed",
    "Finished",
    "ImageOutcome",
    "InProcessRunner",
    "Runner",
    "Tick",
    "check_regions",
    "check_selection",
    "class_index",
    "iter_batch",
    "parse_confusion",
    "prepare",
    "run_batch",
    "select",
]
