"""Batch explanation on a local Ray (started in process, 2 CPUs, no dashboard; one Ray session for
the module): the same orders and curves as in process, a killed worker's images retried, and a
second run that reuses every saved result."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest
from helpers import TINY_PREPROCESS
from test_batch import GRID

from explainer.batch import BatchOptions, iter_batch, run_batch
from explainer.config import SearchOptions
from explainer.store import RunStore

ray = pytest.importorskip("ray")
ray_runner = pytest.importorskip("explainer.ray_runner")

pytestmark = pytest.mark.slow  # Ray and its worker processes take several seconds to start on 2 cores

SEARCH = SearchOptions(pending=2)


def recipe(tiny_set) -> ray_runner.ModelRecipe:
    return ray_runner.ModelRecipe(
        f"torchscript:{tiny_set['model']}",
        device="cpu",
        class_names=str(tiny_set["names"]),
        batch_size=16,
        preprocess=TINY_PREPROCESS,
    )


def test_ray_gives_the_in_process_results_and_reuses_them(ray_session, tiny, tiny_set, tmp_path):
    clf, image_set, scanned = tiny
    selection = BatchOptions(limit=6)
    local_runs, ray_runs = RunStore(tmp_path / "local"), RunStore(tmp_path / "ray")
    local = run_batch(clf, image_set, scanned, GRID, SEARCH, selection, runs=local_runs)
    runner = ray_runner.RayRunner(recipe(tiny_set), workers=2, poll_s=0.1)
    remote = run_batch(clf, image_set, scanned, GRID, SEARCH, selection, runner, ray_runs)
    assert remote.computed == 6 and remote.complete
    assert {o.worker.split("@")[0] for o in remote.images} == {"ray-0", "ray-1"}
    assert [o.run_key for o in remote.images] == [o.run_key for o in local.images]
    for a, b in zip(local.images, remote.images):
        assert a.order == b.order and a.minimal_subset == b.minimal_subset
        x, y = local_runs.load(a.run_key), ray_runs.load(b.run_key)
        np.testing.assert_allclose(x.insertion_probs, y.insertion_probs, atol=1e-6)
        np.testing.assert_allclose(x.deletion_probs, y.deletion_probs, atol=1e-6)
        assert b.overhead_s >= 0
    # a second run reuses every saved result and starts no worker
    again_runner = ray_runner.RayRunner(recipe(tiny_set), workers=2)
    again = run_batch(clf, image_set, scanned, GRID, SEARCH, selection, again_runner, ray_runs)
    assert (again.reused, again.computed) == (6, 0) and again_runner.actors == []


def test_a_killed_worker_costs_only_a_retry(ray_session, tiny, tiny_set, tmp_path):
    clf, image_set, scanned = tiny
    runs = RunStore(tmp_path / "runs")
    five = GRID.__class__("grid", GRID.options.replace(cells_per_side=5))  # 25 regions: long enough to kill mid-image
    runner = ray_runner.RayRunner(recipe(tiny_set), workers=2, poll_s=0.05, max_retries=2)
    runner.start()
    victim = runner.pids()[0]
    killed = False
    result = None
    for progress in iter_batch(clf, image_set, scanned, five, SEARCH, BatchOptions(), runner, runs):
        if not killed and progress.text and "in flight" in progress.text:
            os.kill(victim, signal.SIGKILL)  # the worker dies with its image (and the next) unfinished
            killed = True
        result = progress.result or result
    assert killed and result is not None and result.complete
    assert result.computed == len(image_set) == len(runs.list())
    pids = {int(o.worker.rsplit(":", 1)[1]) for o in result.images}
    assert victim not in pids or len(pids) == 3  # the restarted actor (a new process) finished its images
    restarted = {
        o.name for o in result.images if o.worker.startswith("ray-0@") and int(o.worker.rsplit(":", 1)[1]) != victim
    }
    assert restarted, "the killed worker's images were retried on its restarted actor"
