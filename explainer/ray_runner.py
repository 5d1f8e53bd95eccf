"""Batch explanation on Ray: one actor per worker, each holding the model once.

:class:`RayRunner` is a :class:`explainer.batch.Runner`. It starts (or joins) a Ray cluster,
creates one actor per worker (one GPU each where the cluster has GPUs, else one CPU each),
and streams tasks to them with back-pressure: at most ``window`` tasks per actor are in flight
(one computing, the next already there, so an actor never waits for the driver), and the
driver prepares the next image only when a slot is free. Results (the finished
:class:`explainer.explanation.Explanation`) come back to the driver, which writes the run store,
so the workers need no shared file system. An actor whose process dies is restarted and its
unfinished tasks are retried (``max_restarts``/``max_task_retries``): a dead worker costs only
the image it was working on.

Ray is optional: :func:`require_ray` says how to install it when it is missing. The workers
need the same Python packages as the driver (torch, torchvision, this project's requirements);
when the driver joins an existing cluster, this package (``explainer``) is shipped to them
with the job (Ray's ``py_modules``), so only the dependencies must be installed there.
"""

from __future__ import annotations

import itertools
import os
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from explainer.batch import BatchTask, Failed, Finished, Tick, explain_task, local_worker_name
from explainer.data import ImageItem
from explainer.errors import BatchError, LimaError
from explainer.models import Classifier, Preprocess
from explainer.progress import run_to_end
from explainer.scan import ScanInput, ScanRow, scan_input, score_inputs

ADDRESS_ENV = "RAY_ADDRESS"
PACKAGE_DIR = Path(__file__).resolve().parent


def require_ray() -> Any:
    """The ``ray`` module, or a BatchError that says how to get it."""
    try:
        import ray
    except ImportError:
        raise BatchError(
            "Ray is not installed: pip install 'ray==2.60.0' (see requirements.txt), or run the batch without --ray"
        ) from None
    return ray


@dataclass(frozen=True)
class ModelRecipe:
    """How a worker loads the model: the arguments of :func:`explainer.models.load_classifier`.

    Plain data (picklable), so every actor loads its own copy once, on its own device. Files it
    names (a user model, a class-names file) must exist at the same path on every worker; the
    built-in and torchvision models need nothing but the packages.
    """

    name: str
    device: str = "auto"
    class_names: str | None = None
    allow_pickle: bool = False
    precision: str = "fp32"
    batch_size: int = 0
    extras: dict[str, Any] = field(default_factory=dict)
    preprocess: Preprocess | None = None
    backend: str = "auto"

    def __call__(self) -> Classifier:
        return self.load()

    def load(self) -> Classifier:
        from explainer.models import load_classifier

        return load_classifier(
            self.name,
            device=self.device,
            class_names=self.class_names,
            allow_pickle=self.allow_pickle,
            precision=self.precision,
            batch_size=self.batch_size,
            preprocess=self.preprocess,
            backend=self.backend,
            **self.extras,
        )


class ModelActor:
    """An actor's common part: loads the model once, knows its name and process."""

    def __init__(self, load_model: Callable[[], Classifier], index: int):
        self.clf = load_model()
        self.name = f"ray-{index}@{local_worker_name()}"

    def pid(self) -> int:
        return os.getpid()


class BatchWorker(ModelActor):
    """The batch actor: explains one task per call."""

    def explain(self, task: BatchTask) -> tuple[Any, str, float, float]:
        """(explanation, worker name, start, end) with wall-clock times (``time.time()``)."""
        start = time.time()
        exp = run_to_end(explain_task(self.clf, task))
        return exp, self.name, start, time.time()


class ScanWorker(ModelActor):
    """The scan actor: decodes and scores one chunk of images per call."""

    def score(self, chunk: list[ScanInput]) -> tuple[list[ScanRow], str, float, float]:
        """(one row per image, worker name, start, end) with wall-clock times (``time.time()``)."""
        start = time.time()
        rows = score_inputs(self.clf, chunk)
        return rows, self.name, start, time.time()


@dataclass
class _InFlight:
    task: Any
    actor: int
    submitted: float


@dataclass(frozen=True)
class _Returned:
    """One task back from an actor: its value, or the Ray error that ended it."""

    task: Any
    actor: int
    submitted: float
    value: Any = None
    error: Exception | None = None


class RayPool:
    """Ray actors that each hold the model once, and the streaming of tasks to them.

    The connection, the actors and the back-pressured, retried streaming that every Ray runner
    shares (:class:`RayRunner` explains images, :class:`RayScanRunner` scores chunks of a set).

    Args:
        load_model: a picklable callable that returns the classifier (e.g. a :class:`ModelRecipe`).
        address: a Ray cluster's address ("auto", "ray://host:10001", "host:6379"); None =
            ``$RAY_ADDRESS`` if set, else a Ray started here for this run (or the one this
            process already runs, e.g. in tests).
        workers: actors to start (default: one per GPU of the cluster, else one per CPU).
        window: tasks in flight per actor (≥ 1; 2 keeps each actor busy while a result travels).
        max_retries: restarts of a dead actor, and retries of its unfinished tasks.
        poll_s: how often the runner yields while it waits (so a caller can stop).
    """

    actor_class: type = object  # the actor's class; a subclass names it

    def __init__(
        self,
        load_model: Callable[[], Classifier],
        address: str | None = None,
        workers: int | None = None,
        window: int = 2,
        max_retries: int = 3,
        poll_s: float = 0.5,
    ):
        if workers is not None and workers < 1:
            raise BatchError(f"workers must be at least 1, got {workers}")
        if window < 1:
            raise BatchError(f"the in-flight window must be at least 1, got {window}")
        self.load_model, self.address = load_model, address or os.environ.get(ADDRESS_ENV) or None
        self.requested, self.window, self.max_retries, self.poll_s = workers, window, max_retries, poll_s
        self.workers = workers or 0
        self.gpus = 0
        self.actors: list[Any] = []
        self.startup_s = 0.0
        self.in_flight = 0  # tasks now on the actors (while streaming)

    @property
    def prepare_threads(self) -> int:
        """Driver threads preparing tasks: one per worker, within this machine's cores (a
        single thread caps a batch at ~7 images/s of decoding and regions, measured)."""
        return max(1, min(self.workers or 1, os.cpu_count() or 1, 16))

    def describe(self) -> str:
        where = f"Ray cluster {self.address}" if self.address else "a local Ray"
        per = "1 GPU" if self.gpus else "1 CPU"
        return f"{self.workers or self.requested or 'auto'} Ray workers ({per} each) on {where}"

    def _connect(self, ray: Any) -> bool:
        """Join or start Ray; returns whether this runner started it (and so shuts it down)."""
        if ray.is_initialized():
            return False
        kwargs: dict[str, Any] = {"include_dashboard": False, "logging_level": "WARNING", "log_to_driver": True}
        if self.address:
            # A remote cluster gets this package with the job: its workers need only the dependencies.
            kwargs["runtime_env"] = {"py_modules": [str(PACKAGE_DIR)]}
        try:
            ray.init(address=self.address, **kwargs)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise BatchError(f"cannot reach the Ray cluster at {self.address or 'a new local Ray'}: {exc}") from exc
        return True

    def start(self) -> None:
        """Connect and start the actors (each loads the model once)."""
        ray = require_ray()
        started = time.perf_counter()
        self._owns_ray = self._connect(ray)
        resources = ray.cluster_resources()
        self.gpus = int(resources.get("GPU", 0))
        cpus = max(1, int(resources.get("CPU", 1)))
        self.workers = self.requested or (self.gpus or cpus)
        actor_class = ray.remote(self.actor_class).options(
            num_cpus=0 if self.gpus else 1,
            num_gpus=1 if self.gpus else 0,
            max_restarts=self.max_retries,
            max_task_retries=self.max_retries,
        )
        self.actors = [actor_class.remote(self.load_model, i) for i in range(self.workers)]
        self.startup_s = time.perf_counter() - started

    def pids(self) -> list[int]:
        """The actors' process ids (waits for them to be up)."""
        ray = require_ray()
        return list(ray.get([a.pid.remote() for a in self.actors]))

    def stream(self, tasks: Iterable[Any], method: str) -> Iterator[_Returned | None]:
        """Call the actors' ``method`` on every task, at most ``window`` tasks per actor in flight
        (the next task is taken from ``tasks`` only when a slot is free: back-pressure). Yields
        each task's :class:`_Returned` as it comes back (in any order), None every ``poll_s``
        while nothing does. Actors start on the first task (none for no task); stopping the
        iteration cancels what is in flight and stops them."""
        ray = require_ray()
        source = iter(tasks)
        first = next(source, None)
        if first is None:
            return  # nothing to compute (e.g. every run reused): no actor is started
        if not self.actors:
            self.start()
        source = itertools.chain([first], source)
        pending: dict[Any, _InFlight] = {}
        load = [0] * len(self.actors)
        exhausted = False
        try:
            while True:
                while not exhausted and len(pending) < self.window * len(self.actors):
                    task = next(source, None)
                    if task is None:
                        exhausted = True
                        break
                    actor = min(range(len(self.actors)), key=load.__getitem__)
                    ref = getattr(self.actors[actor], method).remote(task)
                    pending[ref] = _InFlight(task, actor, time.time())
                    load[actor] += 1
                if not pending:
                    return
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=self.poll_s)
                if not ready:
                    self.in_flight = len(pending)
                    yield None
                    continue
                for ref in ready:
                    flight = pending.pop(ref)
                    load[flight.actor] -= 1
                    try:
                        value = ray.get(ref)
                    except ray.exceptions.RayError as exc:  # the task's own error, or a worker that stays dead
                        yield _Returned(flight.task, flight.actor, flight.submitted, error=exc)
                    else:
                        yield _Returned(flight.task, flight.actor, flight.submitted, value)
        finally:
            self.close(pending)

    def close(self, pending: dict[Any, Any] | None = None) -> None:
        """Stop the actors (and the Ray this runner started); unfinished tasks are dropped."""
        ray = require_ray()
        if not ray.is_initialized():
            return
        for ref in pending or ():
            try:
                ray.cancel(ref)
            except Exception:  # an actor task that already ended or cannot be cancelled
                pass
        for actor in self.actors:
            ray.kill(actor, no_restart=True)
        self.actors = []
        if getattr(self, "_owns_ray", False):
            ray.shutdown()


class RayRunner(RayPool):
    """Runs a batch's tasks on Ray actors (see the module docstring and :class:`RayPool`)."""

    actor_class = BatchWorker

    def run(self, tasks: Iterable[BatchTask]) -> Iterator[Finished | Failed | Tick]:
        last_end: dict[int, float] = {}  # when each actor finished its previous task
        for back in self.stream(tasks, "explain"):
            if back is None:
                yield Tick(None, f"{self.in_flight} images in flight on {len(self.actors)} workers")
                continue
            task = back.task
            if back.error is not None:
                cause = getattr(back.error, "cause", None)
                if isinstance(cause, LimaError):  # the input, not the worker
                    yield Failed(task, str(cause))
                    continue
                raise BatchError(f"{task.name} failed on Ray: {_first_line(back.error)}") from back.error
            exp, worker, began, ended = back.value
            received = time.time()
            waited = max(0.0, began - max(back.submitted, last_end.get(back.actor, 0.0)))
            last_end[back.actor] = ended
            yield Finished(task, exp, worker, ended - began, waited + max(0.0, received - ended))


class RayScanRunner(RayPool):
    """Scores a set's images on Ray actors (a :class:`explainer.scan.ScanRunner`).

    The images are split into chunks of ``chunk_size``; the chunks stream to the actors with
    back-pressure (the driver reads a chunk's files only when a slot is free), each actor
    decodes and scores its chunk with its own copy of the model, and the rows come back to the
    driver, which builds the :class:`explainer.scan.ScanResult` (and writes the scan cache). A
    dead worker costs only its chunk: the actor restarts and the chunk is retried.

    Args:
        chunk_size: images per task (≥ 1): large enough that a task outlasts its scheduling,
            small enough that a retry costs little and the progress moves.
        shared_fs: the workers see the driver's files at the same paths, so images travel as
            paths and the workers read them; otherwise (the default) the driver sends each
            file's bytes (see :func:`explainer.scan.scan_input`).
        other arguments: as :class:`RayPool`.
    """

    actor_class = ScanWorker

    def __init__(
        self,
        load_model: Callable[[], Classifier],
        address: str | None = None,
        workers: int | None = None,
        chunk_size: int = 64,
        shared_fs: bool = False,
        **pool: Any,
    ):
        if chunk_size < 1:
            raise BatchError(f"the chunk size must be at least 1, got {chunk_size}")
        super().__init__(load_model, address, workers, **pool)
        self.chunk_size, self.shared_fs = chunk_size, shared_fs
        self.chunks_by_worker: Counter[str] = (
            Counter()
        )  # chunks each worker scored (a retried one counts where it ended)

    def describe(self) -> str:
        sent = "paths (shared file system)" if self.shared_fs else "image bytes"
        return f"{super().describe()}, chunks of {self.chunk_size}, {sent}"

    def _chunks(self, items: list[ImageItem], sigs: dict[str, str]) -> Iterator[list[ScanInput]]:
        for i in range(0, len(items), self.chunk_size):
            yield [scan_input(item, sigs[item.key], self.shared_fs) for item in items[i : i + self.chunk_size]]

    def score(self, clf: Classifier, items: list[ImageItem], sigs: dict[str, str]) -> Iterator[list[ScanRow]]:
        for back in self.stream(self._chunks(items, sigs), "score"):
            if back is None:
                yield []  # still waiting: the caller may stop
                continue
            if back.error is not None:
                first = back.task[0].name if back.task else "?"
                raise BatchError(
                    f"a chunk of {len(back.task)} images (from {first}) failed on Ray: {_first_line(back.error)}"
                ) from back.error
            rows, worker, _, _ = back.value
            self.chunks_by_worker[worker] += 1
            yield rows


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[-1] if text else type(exc).__name__


__all__ = [
    "ADDRESS_ENV",
    "BatchWorker",
    "ModelActor",
    "ModelRecipe",
    "RayPool",
    "RayRunner",
    "RayScanRunner",
    "ScanWorker",
    "require_ray",
]
