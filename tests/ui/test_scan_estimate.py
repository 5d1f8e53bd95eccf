"""The scan estimate remembers each set's own last scan speed: another set of the same model gets
the measured estimate (model speed + its decoding), not the other set's speed."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from ui import resources


def test_a_remembered_scan_speed_is_the_sets_own(monkeypatch):
    monkeypatch.setattr(resources, "_SCAN_RATES", {})
    monkeypatch.setattr(resources, "throughput", lambda model_key, clf: 50.0)  # 20 ms an image
    monkeypatch.setattr(resources, "_decode_seconds", lambda *args: 0.03)  # + 30 ms decoding
    monkeypatch.setattr(resources, "on_gpu", lambda: False)
    demo = SimpleNamespace(kind="demo", name="Built-in demo", root=None)
    photos = SimpleNamespace(kind="list", name="labels.txt", root="/data/photos")
    assert resources.scan_rate("m", "k1", None, photos) == pytest.approx(20.0)  # 1 / (20 + 30 ms)
    resources.remember_scan_rate("m", demo, 8.0)
    assert resources.scan_rate("m", "k0", None, demo) == 8.0
    assert resources.scan_rate("m", "k1", None, photos) == pytest.approx(20.0)  # not the demo's speed
    resources.remember_scan_rate("m", photos, 25.0)
    assert resources.scan_rate("m", "k2", None, photos) == 25.0  # a new version of the same set
    assert resources.scan_rate("other model", "k1", None, photos) == pytest.approx(20.0)
