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
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from explainer.batch import BatchTask, Failed, Finished, Tick, explain_task, local_worker_name
from explainer.errors import BatchError, LimaError
from explainer.models import Classifier, Preprocess
from explainer.progress import run_to_end

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
            **self.extras,
        )


class BatchWorker:
    """The actor's class: loads the model once, then explains one task per call."""

    def __init__(self, load_model: Callable[[], Classifier], index: int):
        self.clf = load_model()
        self.name = f"ray-{index}@{local_worker_name()}"

    def pid(self) -> int:
        return os.getpid()

    def explain(self, task: BatchTask) -> tuple[Any, str, float, float]:
        """(explanation, worker name, start, end) with wall-clock times (``time.time()``)."""
        start = time.time()
        exp = run_to_end(explain_task(self.clf, task))
        return exp, self.name, start, time.time()


@dataclass
class _InFlight:
    task: BatchTask
    actor: int
    submitted: float


class RayRunner:
    """Runs a batch's tasks on Ray actors (see the module docstring).

    Args:
        load_model: a picklable callable that returns the classifier (e.g. a :class:`ModelRecipe`).
        address: a Ray cluster's address ("auto", "ray://host:10001", "host:6379"); None =
            ``$RAY_ADDRESS`` if set, else a Ray started here for this batch (or the one this
            process already runs, e.g. in tests).
        workers: actors to start (default: one per GPU of the cluster, else one per CPU).
        window: tasks in flight per actor (≥ 1; 2 keeps each actor busy while a result travels).
        max_retries: restarts of a dead actor, and retries of its unfinished tasks.
        poll_s: how often the runner yields a :class:`Tick` while it waits (so a caller can stop).
    """

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
        actor_class = ray.remote(BatchWorker).options(
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

    def run(self, tasks: Iterable[BatchTask]) -> Iterator[Finished | Failed | Tick]:
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
        last_end = [0.0] * len(self.actors)  # when each actor finished its previous task
        exhausted = False
        try:
            while True:
                while not exhausted and len(pending) < self.window * len(self.actors):
                    task = next(source, None)
                    if task is None:
                        exhausted = True
                        break
                    actor = min(range(len(self.actors)), key=load.__getitem__)
                    ref = self.actors[actor].explain.remote(task)
                    pending[ref] = _InFlight(task, actor, time.time())
                    load[actor] += 1
                if not pending:
                    return
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=self.poll_s)
                if not ready:
                    yield Tick(None, f"{len(pending)} images in flight on {len(self.actors)} workers")
                    continue
                for ref in ready:
                    flight = pending.pop(ref)
                    load[flight.actor] -= 1
                    try:
                        exp, worker, began, ended = ray.get(ref)
                    except ray.exceptions.RayTaskError as exc:
                        if isinstance(getattr(exc, "cause", None), LimaError):  # the input, not the worker
                            yield Failed(flight.task, str(exc.cause))
                            continue
                        raise BatchError(f"{flight.task.name} failed on Ray: {_first_line(exc)}") from exc
                    except ray.exceptions.RayError as exc:  # a worker that stays dead after its restarts
                        raise BatchError(f"{flight.task.name} failed on Ray: {_first_line(exc)}") from exc
                    received = time.time()
                    waited = max(0.0, began - max(flight.submitted, last_end[flight.actor]))
                    last_end[flight.actor] = ended
                    yield Finished(flight.task, exp, worker, ended - began, waited + max(0.0, received - ended))
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


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[-1] if text else type(exc).__name__


__all__ = ["ADDRESS_ENV", "BatchWorker", "ModelRecipe", "RayRunner", "require_ray"]
