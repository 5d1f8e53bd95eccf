"""Work ahead on threads: ``prefetch(fn, batches, ahead=2)`` yields ``[fn(x) for x in batch]`` for
each batch in order, while the next ``ahead`` batches are already being computed by a small
thread pool (image decoding releases the GIL in PIL and OpenCV, so it overlaps with inference).
Stopping the iteration cancels what has not started.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def prefetch(
    fn: Callable[[T], R], batches: Sequence[Sequence[T]], ahead: int = 2, workers: int = 2
) -> Iterator[list[R]]:
    """``[fn(x) for x in batch]`` for each batch, computed ``ahead`` batches in advance.

    Args:
        fn: applied to every item (exceptions propagate when its batch is reached).
        batches: the items, already grouped.
        ahead: how many batches beyond the current one are submitted (≥ 1).
        workers: threads.
    """
    ahead = max(1, int(ahead))
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        queue: deque[list[Future[R]]] = deque()
        submitted = 0
        try:
            for _ in range(len(batches)):
                while submitted < len(batches) and len(queue) <= ahead:
                    queue.append([pool.submit(fn, x) for x in batches[submitted]])
                    submitted += 1
                yield [f.result() for f in queue.popleft()]
        finally:
            for futures in queue:
                for f in futures:
                    f.cancel()


__all__ = ["prefetch"]
