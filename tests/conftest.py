"""Shared fixtures: the real built-in model and real photos; isolated caches for the app.

Runs, scans and SAM caches go to a temporary folder for the whole session, so tests never
touch a user's ~/.cache/lima-lens.
"""

from __future__ import annotations

import os
import tempfile

_CACHE = tempfile.mkdtemp(prefix="lima-tests-")
os.environ["LIMA_CACHE_DIR"] = _CACHE  # e.g. ONNX exports of the models (explainer.backends)
os.environ["LIMA_RUNS_DIR"] = os.path.join(_CACHE, "runs")
os.environ["LIMA_SCANS_DIR"] = os.path.join(_CACHE, "scans")
os.environ["LIMA_SAM_DIR"] = os.path.join(_CACHE, "sam")
os.environ.pop("LIMA_SAM_CHECKPOINT", None)

import pytest  # noqa: E402
from helpers import TINY_SOURCE, TinyCNN, grid_labels, make_classifier, tiny_view  # noqa: E402


@pytest.fixture(scope="session")
def lite0():
    """The real built-in EfficientNet-Lite0 on the CPU (loaded once), run by PyTorch: the
    reference the parity tests compare against (the default backend, ``auto``, is ONNX Runtime
    on the CPU; ``lite0_ort`` is that)."""
    from explainer import load_classifier

    return load_classifier("efficientnet_lite0", device="cpu", backend="torch")


@pytest.fixture(scope="session")
def lite0_ort():
    """The real built-in EfficientNet-Lite0 on the CPU run by ONNX Runtime (exported once)."""
    from explainer import load_classifier

    return load_classifier("efficientnet_lite0", device="cpu", backend="onnxruntime")


@pytest.fixture(scope="session")
def chelsea_view(lite0):
    """skimage's chelsea (a tabby cat the model calls tiger cat / Egyptian cat), as Lite0 sees it."""
    import skimage.data

    return lite0.view(skimage.data.chelsea())


@pytest.fixture(scope="session")
def tiny_exp():
    """A finished bidirectional run of a 5-class TinyCNN on a 4×4 grid (16 regions), target 1,
    tracked class 3, with embeddings and a non-zero effectiveness weight, and full provenance."""
    from explainer.search import explain

    clf = make_classifier(TinyCNN(5, seed=0), 5, embeddings=True)
    return explain(
        clf,
        tiny_view(),
        grid_labels(16, 4),
        1,
        tracked=3,
        pending=3,
        weights={"effectiveness": 0.5},
        regions={"method": "grid", "params": {"cells_per_side": 4}},
        source=dict(TINY_SOURCE),
    )


@pytest.fixture(scope="session")
def tiny_set(tmp_path_factory):
    """Files of a tiny labelled set (``helpers.make_tiny_set``): model, names, labels.txt."""
    from helpers import make_tiny_set

    return make_tiny_set(tmp_path_factory.mktemp("tiny-set"))


@pytest.fixture(scope="session")
def tiny(tiny_set):
    """(classifier, image set, scan) of the tiny set."""
    from helpers import load_tiny

    from explainer.data import open_image_set
    from explainer.scan import scan

    clf = load_tiny(tiny_set)
    image_set = open_image_set(str(tiny_set["labels"]), clf.class_names)
    return clf, image_set, scan(clf, image_set)


def pytest_collection_modifyitems(config, items):
    """``gpu`` tests need CUDA; ``network`` tests need the internet and run only with
    LIMA_TEST_NETWORK=1 (the build machines reach package registries only)."""
    import torch

    no_gpu = pytest.mark.skip(reason="needs a CUDA GPU")
    offline = pytest.mark.skip(reason="needs the internet: set LIMA_TEST_NETWORK=1 to run it")
    for item in items:
        if "gpu" in item.keywords and not torch.cuda.is_available():
            item.add_marker(no_gpu)
        if "network" in item.keywords and os.environ.get("LIMA_TEST_NETWORK") != "1":
            item.add_marker(offline)
