"""Scanning on a local Ray (the session's in-process Ray, 2 CPUs): the same rows as the
in-process scan whether the driver sends the files' bytes or their paths, and a dead worker's
chunks retried."""

from __future__ import annotations

import os
import signal

import pytest
from test_ray_batch import recipe
from test_scan import assert_same_rows, mixed_set

from explainer.scan import scan

pytest.importorskip("ray")
ray_runner = pytest.importorskip("explainer.ray_runner")

pytestmark = pytest.mark.slow  # Ray worker processes take seconds to start on 2 cores


def test_a_ray_scan_sending_bytes_equals_the_in_process_scan(ray_session, tiny, tiny_set, tmp_path):
    clf = tiny[0]
    image_set = mixed_set(tiny_set, tmp_path)  # 12 items: files, bytes, a loader, a damaged and a missing file
    expected = scan(clf, image_set)
    runner = ray_runner.RayScanRunner(recipe(tiny_set), workers=2, chunk_size=3, poll_s=0.05)
    got = scan(clf, image_set, runner=runner)
    assert_same_rows(expected, got)
    identity = ("model_id", "weights_hash", "set_name", "set_fingerprint", "problems")
    assert [getattr(got, a) for a in identity] == [getattr(expected, a) for a in identity]
    assert sum(runner.chunks_by_worker.values()) == 4  # 12 images in chunks of 3
    assert {w.split("@")[0] for w in runner.chunks_by_worker} == {"ray-0", "ray-1"}
    assert runner.actors == []  # stopped at the end


def test_a_dead_workers_chunks_are_retried_on_a_shared_file_system(ray_session, tiny, tiny_set, tmp_path):
    clf = tiny[0]
    image_set = mixed_set(tiny_set, tmp_path)
    runner = ray_runner.RayScanRunner(
        recipe(tiny_set), workers=2, chunk_size=2, shared_fs=True, poll_s=0.05, max_retries=2
    )
    runner.start()
    victim = runner.pids()[0]
    os.kill(victim, signal.SIGKILL)  # dead before its chunks arrive: they wait for its restart
    got = scan(clf, image_set, runner=runner)
    assert_same_rows(scan(clf, image_set), got)
    assert sum(runner.chunks_by_worker.values()) == 6
    restarted = [w for w in runner.chunks_by_worker if w.startswith("ray-0@")]
    assert restarted and all(int(w.rsplit(":", 1)[1]) != victim for w in restarted)
