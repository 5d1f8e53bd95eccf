"""Working ahead on threads: order kept, batches decoded ahead, errors surface at their batch."""

from __future__ import annotations

import threading
import time

import pytest

from explainer.prefetch import prefetch


def test_results_come_in_order_and_two_batches_are_done_ahead():
    started: list[int] = []
    lock = threading.Lock()

    def work(x: int) -> int:
        with lock:
            started.append(x)
        return x * x

    batches = [[0, 1], [2, 3], [4, 5], [6, 7]]
    it = prefetch(work, batches, ahead=2)
    assert next(it) == [0, 1]
    deadline = time.time() + 10
    while len(started) < 6 and time.time() < deadline:  # batches 2 and 3 run while we hold batch 1
        time.sleep(0.01)
    assert set(started) == {0, 1, 2, 3, 4, 5}  # and no further: two batches ahead, not all
    assert list(it) == [[4, 9], [16, 25], [36, 49]]


def test_an_error_surfaces_when_its_batch_is_reached():
    def work(x: int) -> int:
        if x == 3:
            raise ValueError("bad item")
        return x

    it = prefetch(work, [[1], [2], [3]], ahead=1)
    assert next(it) == [1] and next(it) == [2]
    with pytest.raises(ValueError, match="bad item"):
        next(it)
