"""The GPU path (skipped without CUDA; scripts/gpu_check.sh runs these on a GPU machine)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


@pytest.fixture(scope="module")
def resnet():
    from explainer import load_classifier

    return load_classifier("torchvision:resnet50:random", device="cuda")


def test_auto_runs_pytorch_on_cuda_with_a_batch_size_from_free_memory(resnet):
    from explainer.backends.torch_backend import CUDA_BATCH_RANGE

    assert resnet.backend == "torch" and "cuda" in resnet.backend_note
    low, high = CUDA_BATCH_RANGE
    assert low <= resnet.batch_size <= high and resnet.batch_size & (resnet.batch_size - 1) == 0


def test_bf16_scores_are_fp32_and_close_to_fp32(resnet, chelsea_view):
    from explainer import load_classifier

    bf16 = load_classifier("torchvision:resnet50:random", device="cuda", precision="bf16")
    x = resnet.to_batch(np.stack([chelsea_view, chelsea_view // 2]))
    p32, p16 = resnet.probs(x), bf16.probs(x)
    assert p16.dtype == torch.float32 and bf16.describe()["precision"] == "bf16"
    assert (p32 - p16).abs().max().item() < 0.05


def test_bf16_orders_are_compared_with_fp32(resnet, chelsea_view):
    from explainer import load_classifier
    from explainer.parity import compare
    from explainer.regions import slico_for_count
    from explainer.search import explain

    bf16 = load_classifier("torchvision:resnet50:random", device="cuda", precision="bf16")
    labels, _ = slico_for_count(chelsea_view, 16)
    target = int(resnet.predict(chelsea_view[None])[0].argmax())
    report = compare(
        explain(resnet, chelsea_view, labels, target), explain(bf16, chelsea_view, labels, target), resnet, bf16
    )
    assert report.divergence is None or report.divergence.position >= 0  # recorded either way
    print(report.note)


def test_onnxruntime_is_not_used_on_cuda_and_says_why(resnet):
    from explainer.backends import use_backend

    clf = use_backend(resnet, "onnxruntime")
    assert clf.backend == "torch" and "does not run on cuda" in clf.backend_note
