"""The PyTorch backend: the classifier's own module (the reference, and every fallback).

On the CPU it runs 8 images a batch (measured fastest for EfficientNet-Lite0 on 2 cores). On
CUDA the batch size is found from the free memory: one probe batch measures the memory an
image needs (activations, plus the composited input and its complement), and the batch is the
largest power of two that fits in half of what is free (other processes and the search's own
tensors keep the rest).
"""

from __future__ import annotations

import torch

from explainer.backends.base import Backend, register
from explainer.models.classifier import CPU_BATCH_SIZE, CUDA_BATCH_SIZE, Classifier

CUDA_BATCH_RANGE = (16, 1024)
PROBE_BATCH = 8


def cuda_batch_size(clf: Classifier, share: float = 0.5) -> int:
    """The largest power of two of images a batch that fits in ``share`` of the free GPU memory
    (within CUDA_BATCH_RANGE); CUDA_BATCH_SIZE when the measurement fails."""
    device = clf.device
    try:
        torch.cuda.synchronize(device)
        free, _total = torch.cuda.mem_get_info(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        x = torch.rand(PROBE_BATCH, 3, clf.size, clf.size, device=device)
        with torch.inference_mode(), clf._autocast():
            clf.module(clf.normalise(x))
        torch.cuda.synchronize(device)
        per_image = (torch.cuda.max_memory_allocated(device) - base) / PROBE_BATCH
        per_image += 4 * 3 * clf.size * clf.size * 4  # the kept and removed images, and their normalised copies
    except Exception:  # a measurement, never a reason to fail a load
        return CUDA_BATCH_SIZE
    fits = int(share * free / max(per_image, 1.0))
    low, high = CUDA_BATCH_RANGE
    batch = 1 << max(fits, 1).bit_length() - 1
    return int(min(high, max(low, batch)))


def _batch_size(clf: Classifier) -> int:
    return cuda_batch_size(clf) if clf.device.type == "cuda" else CPU_BATCH_SIZE


register(
    Backend(
        "torch",
        "PyTorch",
        "The model's own PyTorch module (eager, channels-last): the reference, on the CPU or a GPU.",
        ("cpu", "cuda"),
        attach=lambda clf: None,
        batch_size=_batch_size,
    )
)
