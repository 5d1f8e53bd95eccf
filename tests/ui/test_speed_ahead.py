"""The model's speed (for cost estimates) is measured in the background once a model is loaded."""

from __future__ import annotations

import threading

import pytest

from ui import resources


def test_the_speed_is_measured_once_in_the_background_and_a_failure_is_measured_again(monkeypatch):
    calls, release = [], threading.Event()

    def measure(clf, seconds, min_batches):
        calls.append(clf)
        assert release.wait(10)
        if len(calls) == 1:
            raise RuntimeError("the device went away")
        return 123.0

    monkeypatch.setattr(resources, "measure_throughput", measure)
    monkeypatch.setattr(resources, "_SPEEDS", {})
    started = resources.measure_speed_ahead("m@1", "clf")
    assert not started.done()  # the page that started it did not wait for it
    assert resources.measure_speed_ahead("m@1", "clf") is started  # once per model
    release.set()
    with pytest.raises(RuntimeError, match="went away"):
        resources.throughput("m@1", "clf")  # a page that needs it waits, and sees the failure
    assert resources.throughput("m@1", "clf") == 123.0  # measured again
    assert resources.throughput("m@1", "clf") == 123.0
    assert calls == ["clf", "clf"]


def test_only_the_last_few_models_speeds_are_kept(monkeypatch):
    monkeypatch.setattr(resources, "measure_throughput", lambda clf, seconds, min_batches: float(len(clf)))
    monkeypatch.setattr(resources, "_SPEEDS", {})
    for n in range(resources._SPEEDS_KEPT + 2):
        assert resources.throughput(f"m@{n}", "x" * (n + 1)) == n + 1
    assert list(resources._SPEEDS) == [f"m@{n}" for n in range(2, resources._SPEEDS_KEPT + 2)]
