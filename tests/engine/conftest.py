"""Engine fixtures shared by the command-line tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def fast_lite0(lite0, monkeypatch):
    """The CLI loads the real built-in model by name; hand it the session's copy instead of
    reading the weights again for every command (any other name loads as usual)."""
    import explainer.models as models

    real = models.load_classifier

    def load(name="efficientnet_lite0", **kwargs):
        if (
            name == "efficientnet_lite0"
            and str(kwargs.get("device")) in ("None", "auto", "cpu")
            and not kwargs.get("batch_size")
            and kwargs.get("precision", "fp32") == "fp32"
        ):
            return lite0
        return real(name, **kwargs)

    monkeypatch.setattr(models, "load_classifier", load)
    return lite0


@pytest.fixture(scope="session")
def ray_session():
    """A local Ray started in process (2 CPUs, no dashboard), shared by the Ray tests of a run
    (starting one costs seconds on 2 cores); shut down at the end."""
    ray = pytest.importorskip("ray")
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    yield ray
    if started:
        ray.shutdown()
