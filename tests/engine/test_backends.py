"""Inference backends: ONNX Runtime attached behind the Classifier interface, checked against
PyTorch at load, cached exports, clear fallbacks, and run keys that never see the backend."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import TinyCNN, grid_labels, make_classifier, tiny_view

from explainer import cli, store
from explainer.backends import (
    BACKENDS,
    PROBE_TOLERANCE,
    RuntimeOptions,
    max_logit_difference,
    onnx_runtime,
    use_backend,
)
from explainer.errors import ModelError
from explainer.search import explain

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")


def tiny(embeddings: bool = True, seed: int = 0):
    return make_classifier(TinyCNN(5, seed=seed), 5, embeddings=embeddings)


def test_onnxruntime_matches_pytorch_and_is_recorded():
    ref, fast = tiny(), use_backend(tiny(), "onnxruntime")
    assert fast.backend == "onnxruntime" and ref.backend == "torch"
    x = torch.rand(9, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(fast.probs(x), ref.probs(x), atol=1e-5)
    (p1, e1), (p2, e2) = fast.probs_and_embeddings(x), ref.probs_and_embeddings(x)
    assert fast.runtime is not None and fast.runtime.has_embeddings  # embeddings come from the graph
    assert torch.allclose(e1, e2, atol=1e-5) and torch.allclose(p1, p2, atol=1e-5)
    described = fast.describe()
    assert described["backend"] == "onnxruntime" and described["runtime"]["name"] == "onnxruntime"
    assert max_logit_difference(ref, fast.runtime) <= PROBE_TOLERANCE


def test_the_export_is_made_once_per_model_and_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("LIMA_CACHE_DIR", str(tmp_path))
    first = use_backend(tiny(seed=0), "onnxruntime")
    again = use_backend(tiny(seed=0), "onnxruntime")
    other = use_backend(tiny(seed=1), "onnxruntime")  # other weights: another export
    exports = sorted(p.parent.name for p in (tmp_path / "backends" / "onnx").glob("*/model.onnx"))
    assert len(exports) == 2
    assert first.runtime.export_s > 0 and again.runtime.export_s == 0  # type: ignore[union-attr]
    assert other.runtime.path != first.runtime.path  # type: ignore[union-attr]


def test_auto_picks_onnxruntime_on_the_cpu_and_a_batch_size_for_it():
    clf = use_backend(tiny(), "auto")
    assert clf.backend == "onnxruntime" and "automatic" in clf.backend_note
    assert clf.batch_size == onnx_runtime.CPU_BATCH_SIZE
    assert use_backend(tiny(), "auto", batch_size=3).batch_size == 3  # the user's batch size wins


class _Off:
    """A runtime whose logits are off by 0.01: the load check must refuse it."""

    name, has_embeddings = "onnxruntime", False

    def __init__(self, clf):
        self.clf = clf

    def logits(self, x):
        return self.clf.module(x) + 0.01

    def logits_and_embeddings(self, x):
        raise AssertionError("not used")

    def describe(self):
        return {}


def test_a_runtime_that_disagrees_falls_back_to_pytorch_with_the_reason(monkeypatch):
    entry = BACKENDS.get("onnxruntime")
    monkeypatch.setitem(BACKENDS._entries, "onnxruntime", type(entry)(**{**entry.__dict__, "attach": _Off}))
    clf = use_backend(tiny(), "onnxruntime")
    assert clf.backend == "torch" and clf.runtime is None
    assert "differ from PyTorch's by 0.01" in clf.backend_note
    assert clf.describe()["backend_note"] == clf.backend_note


def test_a_missing_package_or_a_failed_export_falls_back(monkeypatch):
    entry = BACKENDS.get("onnxruntime")
    monkeypatch.setitem(
        BACKENDS._entries, "onnxruntime", type(entry)(**{**entry.__dict__, "missing": lambda: "pip install it"})
    )
    clf = use_backend(tiny(), "auto")
    assert clf.backend == "torch" and "not available (pip install it)" in clf.backend_note
    monkeypatch.undo()

    class Untraceable(TinyCNN):
        def forward(self, x):
            if torch.jit.is_tracing() or torch.compiler.is_compiling():
                raise RuntimeError("cannot be traced")
            return super().forward(x)

    clf = use_backend(make_classifier(Untraceable(5), 5), "onnxruntime")
    assert clf.backend == "torch" and "ONNX export failed" in clf.backend_note


def test_unknown_backends_and_options():
    with pytest.raises(ModelError, match="backend"):
        use_backend(tiny(), "tensorrt")
    assert RuntimeOptions.parse({"backend": "auto"}).backend == "auto"  # "auto" is a choice, not None
    assert RuntimeOptions.parse({"backend": "torch", "precision": "bf16"}).precision == "bf16"
    with pytest.raises(ModelError, match="backend"):
        RuntimeOptions.parse({"backend": "nonsense"})


def test_run_keys_and_results_do_not_depend_on_the_backend():
    labels = grid_labels(16, 3)
    ref = explain(tiny(), tiny_view(), labels, 1, pending=3)
    fast = explain(use_backend(tiny(), "onnxruntime"), tiny_view(), labels, 1, pending=3)
    assert fast.model["backend"] == "onnxruntime" and ref.model["backend"] == "torch"
    from explainer.export import provenance

    assert provenance(fast)["backend"] == "onnxruntime" and provenance(ref)["backend"] == "torch"
    key = store.run_key(ref.model, ref.view, ref.labels, 1, ref.tracked, ref.config)
    assert key == store.run_key(fast.model, fast.view, fast.labels, 1, fast.tracked, fast.config)
    assert list(fast.order) == list(ref.order)
    assert np.abs(fast.insertion_probs - ref.insertion_probs).max() < 1e-4


def test_the_cli_takes_backend_flags(capsys, tmp_path):
    rc = cli.main(["scan", "demo", "--backend", "nonsense"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "--backend" in err[0] and "invalid choice" in err[0]
    args = cli.build_parser().parse_args(["scan", "demo", "--backend", "torch", "--precision", "bf16"])
    options = cli.options_from_args(RuntimeOptions, args)
    assert (options.backend, options.precision) == ("torch", "bf16")
    assert cli.options_from_args(RuntimeOptions, cli.build_parser().parse_args(["scan", "demo"])).backend == "auto"


@pytest.mark.slow
def test_lite0_through_onnxruntime_matches_pytorch(lite0, lite0_ort, chelsea_view):
    assert lite0_ort.backend == "onnxruntime", lite0_ort.backend_note
    views = np.stack([chelsea_view, chelsea_view // 2, np.zeros_like(chelsea_view)])
    assert np.abs(lite0_ort.predict(views) - lite0.predict(views)).max() < 1e-5
    assert lite0_ort.describe()["runtime"]["embeddings"] is True


def test_bench_refuses_an_unknown_backend_before_any_work(capsys):
    rc = cli.main(["bench", "--backends", "torch,tensorrt", "--regions", "4"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "tensorrt" in err[0]


def test_the_side_by_side_bench_replays_the_official_code_on_the_same_schedule():
    from explainer.bench import compare_backends

    view = np.asarray(tiny_view())
    lines: list[str] = []
    out = compare_backends(
        lambda name: use_backend(tiny(), name),
        ["torch", "onnxruntime"],
        view,
        (4,),
        target=0,
        log=lines.append,
        plain_seconds=0.05,
        first_demo=False,
    )
    row = out["rows"][0]
    schedule = row["torch"]["step_candidates"]
    # Our passes: both images of every compared candidate, plus the full and the black image.
    assert row["torch"]["forward_passes"] == 2 * sum(schedule) + 2
    assert row["onnxruntime"]["step_candidates"] == schedule
    official = row["official_code"]
    # The official way: the source image, then one call of all subsets and one of all complements a step.
    assert official["forward_passes"] == 1 + 2 * sum(schedule)
    assert official["calls"] == 1 + 2 * len(schedule) and official["largest_call"] == max(schedule)
    assert official["seconds"] > 0 and row["official_code_s"] == official["seconds"]
    for name in ("torch", "onnxruntime"):
        assert row[f"speedup_vs_official_{name}"] == pytest.approx(row["official_code_s"] / row[name]["seconds"])
    assert row["speedup_onnxruntime"] == pytest.approx(row["torch"]["seconds"] / row["onnxruntime"]["seconds"])
    assert any("official code" in line for line in lines) and "first_demo_explanation" not in out
