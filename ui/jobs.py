"""Background jobs (scans, SAM, searches) that run off Streamlit's script thread.

A job wraps an engine generator (``iter_scan``, ``iter_search``, ...): a worker thread iterates
it, keeps the latest progress item, and stops it when asked (closing the generator). One
process-wide :class:`JobManager` runs one heavy job at a time *per lane* (the model and the
CPU/GPU are shared by every browser tab): long batch work (scans, scorecards, batches) has its
own lane, so an interactive run (a LiMA search, SAM, a method) never waits behind a 12-minute
scan; within a lane a second job waits in a queue, and a job with the same key as a running one
is joined rather than started twice. Finished results are handed to ``on_done``
(which saves them) in the worker, so a closed tab loses nothing.

No Streamlit call happens in a worker thread (they have no script-run context).
"""

from __future__ import annotations

import atexit
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from explainer.errors import LimaError
from explainer.progress import Progress

ACTIVE = ("queued", "running")
# Job kinds that run in the batch lane; every other kind runs in the interactive lane.
BATCH_KINDS = frozenset({"scan", "evaluate", "scorecard", "batch", "cohort"})


def lane_of(kind: str) -> str:
    """The lane of a job kind: "batch" (long work over a whole set) or "interactive"."""
    return "batch" if kind in BATCH_KINDS else "interactive"


@dataclass
class Job:
    """One background computation.

    Attributes:
        key: identifies the work (a run key, a scan key); equal keys share one job.
        kind: "scan", "sam", "search", ... label: what the UI says it is doing.
        lane: "batch" or "interactive" (see :func:`lane_of`); one job computes per lane.
        status: "queued", "running", "done", "failed" or "cancelled".
        progress: the latest item the generator yielded (an ``explainer.progress.Progress``).
        result: the generator's final result (the ``result`` attribute of its last item).
        error: a readable message when it failed.
        watchers: the sessions waiting for it (equal keys share a job between sessions: one
            session's Cancel must not stop another's work; see :meth:`JobManager.release`).
    """

    key: str
    kind: str
    label: str
    lane: str = "interactive"
    status: str = "queued"
    progress: Any = None
    result: Any = None
    error: str | None = None
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    cancel_event: threading.Event = field(default_factory=threading.Event)
    ended: threading.Event = field(default_factory=threading.Event)  # set once it is done, failed or cancelled
    watchers: set[str] = field(default_factory=set)

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    def cancel(self) -> None:
        self.cancel_event.set()

    @property
    def fraction(self) -> float:
        """Done so far, in [0, 1] (the engine's progress items share one protocol)."""
        if self.status == "done":
            return 1.0
        return float(self.progress.fraction) if self.progress is not None else 0.0

    @property
    def eta_s(self) -> float | None:
        return self.progress.eta_s if self.progress is not None else None


class JobManager:
    """Runs jobs on worker threads, one heavy job at a time per lane, in submission order."""

    def __init__(self, keep_finished: int = 50):
        self._lock = threading.Lock()
        # One lock per lane, held while a job of that lane computes. (Locks are not strictly
        # first-come-first-served, but a lane rarely has more than two jobs waiting.)
        self._compute = {"batch": threading.Lock(), "interactive": threading.Lock()}
        self._jobs: dict[str, Job] = {}
        self._threads: list[threading.Thread] = []
        self._keep = keep_finished
        # Workers are daemon threads (a long search must not keep the server from quitting), but
        # a thread killed inside torch at interpreter exit aborts the process: stop them first.
        atexit.register(self.shutdown)

    def shutdown(self, timeout_s: float = 30.0) -> None:
        """Cancel every active job and wait for the workers to stop (they check between batches)."""
        for job in list(self._jobs.values()):
            if job.active:
                job.cancel()
        deadline = time.time() + timeout_s
        for thread in list(self._threads):
            thread.join(max(0.0, deadline - time.time()))

    def submit(
        self,
        key: str,
        kind: str,
        label: str,
        make_iter: Callable[[], Iterator],
        on_done: Callable[[Any], None] | None = None,
        watcher: str | None = None,
        lane: str | None = None,
    ) -> Job:
        """Start (or join) the job ``key``; returns at once. ``watcher`` (a session id) is
        recorded as waiting for it; ``lane`` overrides the kind's lane (:func:`lane_of`)."""
        with self._lock:
            job = self._jobs.get(key)
            if job is not None and job.active:
                if watcher:
                    job.watchers.add(watcher)
                return job
            lane = lane or lane_of(kind)
            if lane not in self._compute:
                raise ValueError(f"unknown lane {lane!r}")
            job = Job(key, kind, label, lane, watchers={watcher} if watcher else set())
            self._jobs[key] = job
            self._prune()
        thread = threading.Thread(target=self._work, args=(job, make_iter, on_done), name=f"lima-{kind}", daemon=True)
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()
        return job

    def watch(self, job: Job, watcher: str) -> None:
        """Record ``watcher`` as waiting for ``job``."""
        with self._lock:
            job.watchers.add(watcher)

    def release(self, job: Job, watcher: str | None) -> bool:
        """``watcher`` stops waiting for ``job``; the job is cancelled only when nobody waits for it
        any more (or it had no watchers). Returns whether it was cancelled."""
        with self._lock:
            job.watchers.discard(watcher or "")
            if job.watchers:
                return False
        job.cancel()
        return True

    def get(self, key: str | None) -> Job | None:
        return self._jobs.get(key) if key else None

    def active(self) -> list[Job]:
        return sorted((j for j in self._jobs.values() if j.active), key=lambda j: j.created)

    def queue_position(self, job: Job) -> int:
        """How many jobs of its lane run or wait ahead of ``job`` (0 = it is running)."""
        ahead = [j for j in self.active() if j.lane == job.lane and j.created < job.created]
        return len(ahead)

    def _prune(self) -> None:
        done = sorted((j for j in self._jobs.values() if not j.active), key=lambda j: j.created)
        for job in done[: max(0, len(done) - self._keep)]:
            self._jobs.pop(job.key, None)

    def _work(self, job: Job, make_iter: Callable[[], Iterator], on_done) -> None:
        with self._compute[job.lane]:
            if job.cancel_event.is_set():
                job.status, job.finished = "cancelled", time.time()
                job.ended.set()
                return
            job.status, job.started = "running", time.time()
            try:
                self._iterate(job, make_iter())
                if job.status == "running":
                    if on_done is not None:
                        on_done(job.result)
                    job.status = "done"
            except LimaError as exc:
                job.error, job.status = str(exc), "failed"
            except Exception as exc:
                job.error = f"{type(exc).__name__}: {exc}"
                job.status = "failed"
                traceback.print_exc()
            finally:
                job.finished = time.time()
                job.ended.set()

    @staticmethod
    def _iterate(job: Job, items: Iterator[Progress]) -> None:
        try:
            for item in items:
                job.progress = item
                if item.result is not None:
                    job.result = item.result
                if job.cancel_event.is_set():
                    job.status = "cancelled"
                    return
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()  # stop the engine's generator now
