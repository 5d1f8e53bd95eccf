"""Scanning on a local Ray (the session's in-process Ray, 2 CPUs): the same rows as the
in-process scan whether the driver sends the files' bytes or their paths, a dead worker's chunks
retried, and ``scan --ray`` on the command line."""

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


def test_a_ray_scan_equals_the_in_process_scan_and_retries_a_dead_workers_chunks(ray_session, tiny, tiny_set, tmp_path):
    clf = tiny[0]
    image_set = mixed_set(tiny_set, tmp_path)  # 12 items: files, bytes, a loader, a damaged and a missing file
    expected = scan(clf, image_set)
    runner = ray_runner.RayScanRunner(recipe(tiny_set), workers=2, chunk_size=2, poll_s=0.05, max_retries=2)
    runner.start()
    victim = runner.pids()[0]
    os.kill(victim, signal.SIGKILL)  # dead before its chunks arrive: they wait for its restart
    got = scan(clf, image_set, runner=runner)
    assert_same_rows(expected, got)
    identity = ("model_id", "weights_hash", "set_name", "set_fingerprint", "problems")
    assert [getattr(got, a) for a in identity] == [getattr(expected, a) for a in identity]
    assert sum(runner.chunks_by_worker.values()) == 6  # 12 images in chunks of 2, each scored once
    assert {w.split("@")[0] for w in runner.chunks_by_worker} == {"ray-0", "ray-1"}
    restarted = [w for w in runner.chunks_by_worker if w.startswith("ray-0@")]
    assert restarted and all(int(w.rsplit(":", 1)[1]) != victim for w in restarted)
    assert runner.actors == []  # stopped at the end


def test_cli_scan_on_ray_with_a_shared_file_system_gives_and_caches_the_in_process_scan(
    ray_session, tiny_set, tmp_path, capsys
):
    from explainer import cli
    from explainer.data import open_image_set
    from explainer.models import load_classifier
    from explainer.scan import ScanCache, ScanResult

    labels = tmp_path / "labels.txt"  # the tiny set's 8 photos and a damaged file
    (tmp_path / "damaged.png").write_bytes(b"not an image")
    labels.write_text(
        "".join(f"{tiny_set['labels'].parent}/img{i}.png {i % 5}\n" for i in range(8)) + "damaged.png 2\n"
    )
    model = ["--model", f"torchscript:{tiny_set['model']}", "--class-names", str(tiny_set["names"])]
    assert cli.main(["scan", str(labels), *model, "--json", str(tmp_path / "local.json"), "--quiet"]) == 0
    local_out = capsys.readouterr().out
    ray_args = ["--ray", "--workers", "2", "--chunk", "4", "--ray-shared-fs", "--json", str(tmp_path / "ray.json")]
    assert cli.main(["scan", str(labels), *model, *ray_args]) == 0
    out, err = capsys.readouterr()
    assert "2 Ray workers" in out and "paths (shared file system)" in out and "100 %" in err
    assert out.splitlines()[1:] == local_out.splitlines()[1:]  # the same mistakes, one per line
    local = ScanResult.from_json((tmp_path / "local.json").read_text())
    remote = ScanResult.from_json((tmp_path / "ray.json").read_text())
    assert_same_rows(local, remote)
    clf = load_classifier(model[1], class_names=tiny_set["names"])
    assert ScanCache().get(clf, open_image_set(labels, clf.class_names)) == remote
