"""The background job manager (ui/jobs.py): one computation at a time in submission order,
equal keys shared, cancel, failures and shutdown. Pure Python: no Streamlit involved."""

from __future__ import annotations

import threading
import time

import pytest

from explainer.errors import DataError
from explainer.progress import Done
from ui.jobs import JobManager


class Step:
    """A progress item: step i of n."""

    def __init__(self, i: int, n: int, result=None):
        self.i, self.n, self.result = i, n, result

    @property
    def fraction(self) -> float:
        return self.i / self.n

    @property
    def eta_s(self):
        return None

    def describe(self) -> str:
        return f"{self.i} of {self.n}"


def gated(log: list, name: str, gate: threading.Event, steps: int = 3):
    """A computation that waits for ``gate`` before its first step and logs what it does."""

    def make():
        log.append(f"{name} start")
        gate.wait(10)
        for i in range(1, steps + 1):
            log.append(f"{name} {i}")
            yield Step(i, steps, result=f"{name} result" if i == steps else None)

    return make


def wait_for(condition, timeout_s: float = 10.0) -> None:
    deadline = time.time() + timeout_s
    while not condition():
        assert time.time() < deadline, "timed out"
        time.sleep(0.01)


@pytest.fixture
def manager():
    m = JobManager()
    yield m
    m.shutdown(5)


def test_jobs_run_one_at_a_time_in_submission_order(manager):
    log: list[str] = []
    first_gate, second_gate = threading.Event(), threading.Event()
    a = manager.submit("a", "search", "A", gated(log, "a", first_gate))
    b = manager.submit("b", "search", "B", gated(log, "b", second_gate))
    wait_for(lambda: a.status == "running")
    assert b.status == "queued" and manager.queue_position(b) == 1 and manager.queue_position(a) == 0
    second_gate.set()  # b may not start before a finishes anyway
    time.sleep(0.1)
    assert "b start" not in log
    first_gate.set()
    wait_for(lambda: b.status == "done")
    assert log.index("a 3") < log.index("b start")
    assert a.result == "a result" and b.result == "b result" and a.fraction == b.fraction == 1.0


def test_an_interactive_run_never_waits_behind_a_scan_or_a_batch(manager):
    """#12: scans and batches have their own lane; a LiMA search starts at once beside them."""
    log: list[str] = []
    scan_gate, search_gate, batch_gate = threading.Event(), threading.Event(), threading.Event()
    scan = manager.submit("scan", "scan", "Scan", gated(log, "scan", scan_gate))
    batch = manager.submit("batch", "batch", "Batch", gated(log, "batch", batch_gate))
    search = manager.submit("search", "search", "LiMA", gated(log, "search", search_gate))
    wait_for(lambda: scan.status == "running" and search.status == "running")
    assert batch.status == "queued" and manager.queue_position(batch) == 1  # behind the scan
    assert manager.queue_position(search) == 0 and (scan.lane, search.lane) == ("batch", "interactive")
    search_gate.set()
    wait_for(lambda: search.status == "done")
    assert scan.status == "running" and "batch start" not in log  # finished while the scan runs
    scan_gate.set()
    batch_gate.set()
    wait_for(lambda: batch.status == "done")
    with pytest.raises(ValueError):
        manager.submit("x", "search", "X", gated(log, "x", batch_gate), lane="nowhere")


def test_equal_keys_share_one_job_and_on_done_runs_once(manager):
    done: list = []
    gate = threading.Event()
    first = manager.submit("k", "search", "K", gated([], "k", gate), on_done=done.append)
    second = manager.submit("k", "search", "K", gated([], "k", gate), on_done=done.append)
    assert second is first
    gate.set()
    wait_for(lambda: first.status == "done")
    assert done == ["k result"]
    again = manager.submit("k", "search", "K", gated([], "k2", gate))  # a finished key runs anew
    assert again is not first


def test_cancel_stops_the_generator_and_skips_on_done(manager):
    closed, done = threading.Event(), []

    def make():
        try:
            for i in range(1000):
                yield Step(i, 1000)
                time.sleep(0.01)
        finally:
            closed.set()

    job = manager.submit("c", "search", "C", make, on_done=done.append)
    wait_for(lambda: job.progress is not None and job.progress.i >= 2)
    job.cancel()
    wait_for(lambda: job.status == "cancelled")
    assert closed.wait(5) and done == [] and job.result is None
    assert 0 < job.fraction < 1


def test_a_queued_job_cancelled_before_it_starts_never_runs(manager):
    log: list[str] = []
    gate = threading.Event()
    a = manager.submit("a", "scan", "A", gated(log, "a", gate))
    b = manager.submit("b", "scan", "B", gated(log, "b", gate))
    b.cancel()
    gate.set()
    wait_for(lambda: a.status == "done" and b.status == "cancelled")
    assert not any(entry.startswith("b") for entry in log)


@pytest.mark.parametrize(
    "error,message", [(DataError("the set is empty"), "the set is empty"), (KeyError("bug"), "KeyError: 'bug'")]
)
def test_failures_are_kept_with_a_readable_message(manager, error, message):
    def make():
        yield Step(1, 2)
        raise error

    job = manager.submit("f", "scan", "F", make)
    wait_for(lambda: not job.active)
    assert job.status == "failed" and job.error == message
    ok = manager.submit("g", "scan", "G", lambda: iter([Done("fine")]))  # the manager carries on
    wait_for(lambda: ok.status == "done")
    assert ok.result == "fine"


def test_shutdown_cancels_every_active_job_and_joins_the_workers(manager):
    gate = threading.Event()

    def endless():
        gate.set()
        while True:
            yield Step(0, 1)
            time.sleep(0.01)

    running = manager.submit("r", "search", "R", endless)
    waiting = manager.submit("w", "search", "W", endless)
    assert gate.wait(5)
    manager.shutdown(5)
    assert running.status == "cancelled" and waiting.status == "cancelled"
    assert not any(t.is_alive() for t in manager._threads)


def test_one_watchers_release_does_not_stop_a_job_another_waits_for(manager):
    """Two sessions with the same inputs share one job: one session's Cancel only lets go of it."""
    gate = threading.Event()
    job = manager.submit("shared", "search", "S", gated([], "s", gate), watcher="tab-a")
    assert manager.submit("shared", "search", "S", gated([], "s", gate), watcher="tab-b") is job
    assert job.watchers == {"tab-a", "tab-b"}
    assert manager.release(job, "tab-b") is False and job.active and not job.cancel_event.is_set()
    assert manager.release(job, "tab-a") is True  # the last one out stops it
    gate.set()
    wait_for(lambda: job.status == "cancelled")


class Timed(Step):
    """A progress item with an estimate of the seconds left."""

    def __init__(self, i: int, n: int, eta: float | None, result=None):
        super().__init__(i, n, result)
        self.eta = eta

    @property
    def eta_s(self):
        return self.eta


def test_a_job_that_ends_sets_its_ended_event_and_a_poll_can_wait_for_its_last_second(manager):
    from ui.components import POLL_S, ends_before_next_poll

    gate, last = threading.Event(), threading.Event()

    def make():
        yield Timed(1, 3, eta=30.0)
        gate.wait(10)
        yield Timed(2, 3, eta=POLL_S / 4)
        last.wait(10)
        yield Timed(3, 3, eta=0.0, result="r")

    job = manager.submit("t", "search", "T", make)
    wait_for(lambda: job.progress is not None and job.status == "running")
    assert not ends_before_next_poll(job) and not job.ended.is_set()  # 30 s left: the poll goes on polling
    gate.set()
    wait_for(lambda: job.progress.i == 2)
    assert ends_before_next_poll(job)  # under one poll left: the poll waits for the end
    threading.Timer(0.2, last.set).start()
    assert job.ended.wait(POLL_S) and job.status == "done" and job.result == "r"  # it ends within the wait
    assert not ends_before_next_poll(job)  # an ended job is not waited for
    failed = manager.submit("f", "search", "F", lambda: iter([1]))  # not a progress item: it fails
    lane_free = threading.Event()
    ahead = manager.submit("a", "scan", "A", gated([], "a", lane_free))
    cancelled_early = manager.submit("q", "scan", "Q", gated([], "q", lane_free))  # queued behind it
    cancelled_early.cancel()
    lane_free.set()
    for ended in (failed, ahead, cancelled_early):
        assert ended.ended.wait(10) and not ended.active
    assert (failed.status, ahead.status, cancelled_early.status) == ("failed", "done", "cancelled")
