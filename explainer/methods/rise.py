"""RISE (Petsiuk et al., 2018): random coarse masks, weighted by the model's answer.

No maintained PyTorch package implements it (captum and grad-cam do not; TorchRay is
unmaintained), so it is written here. Each of ``masks`` binary grids of ``cells``×``cells`` cells
(each kept with probability ``keep``) is upsampled bilinearly with a random sub-cell shift to
the view; the view shows through the mask and the subject's fill elsewhere; the saliency of a
pixel is Σ p(target | masked image)·mask / (masks·keep). Scores are its mean over each region.
Everything runs on the classifier's device, a batch at a time.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from explainer.methods.base import (
    AttributionMethod,
    Cost,
    MethodOptions,
    MethodProgress,
    Subject,
    ranking,
    region_means,
    register,
)
from explainer.options import option


@dataclass(frozen=True)
class RiseOptions(MethodOptions):
    masks: int = option(
        500,
        low=1,  # equal cost can give fewer than 10: LiMA spends 6 passes on two regions
        high=100_000,
        step=50,
        ui_high=8000,
        help="Random masks (each one model image); the LiMA baselines used 500.",
    )
    cells: int = option(7, low=2, high=32, step=1, help="Mask grid cells along each side before upsampling.")
    keep: float = option(0.5, low=0.05, high=0.95, step=0.05, help="Probability that a grid cell is kept.")


def _masks(rng: np.random.Generator, count: int, cells: int, keep: float, size: int, device) -> torch.Tensor:
    """``count`` smooth masks (count×1×S×S float32 in [0, 1]) on the device."""
    cell = int(np.ceil(size / cells))
    grid = torch.from_numpy((rng.random((count, 1, cells, cells)) < keep).astype(np.float32)).to(device)
    up = torch.nn.functional.interpolate(grid, size=((cells + 1) * cell,) * 2, mode="bilinear", align_corners=False)
    shifts = rng.integers(0, cell, size=(count, 2))
    return torch.stack([up[i, :, y : y + size, x : x + size] for i, (y, x) in enumerate(shifts)])


def run(subject: Subject, options: RiseOptions) -> Iterator[MethodProgress]:
    start = time.perf_counter()
    clf, size = subject.clf, subject.view.shape[0]
    rng = np.random.default_rng(subject.seed)
    image, fill = subject.input_batch(), subject.baseline()
    saliency = torch.zeros(1, 1, size, size, device=clf.device)
    done = 0
    while done < options.masks:
        count = min(clf.batch_size, options.masks - done)
        masks = _masks(rng, count, options.cells, options.keep, size, clf.device)
        probs = clf.probs(fill + (image - fill) * masks)[:, subject.target]
        saliency += (probs.view(-1, 1, 1, 1) * masks).sum(dim=0, keepdim=True)
        done += count
        yield MethodProgress("rise", done, options.masks, time.perf_counter() - start)
    pixel_map = (saliency / (options.masks * options.keep))[0, 0].cpu().numpy()
    result = ranking("rise", region_means(pixel_map, subject.labels), done, 0, start, options)
    yield MethodProgress("rise", done, done, result.seconds, result)


register(
    AttributionMethod(
        "rise",
        "RISE",
        "black-box",
        "Random smooth masks: a pixel matters as much as the model's confidence when it is visible.",
        RiseOptions,
        run,
        lambda n, o: Cost(o.masks),
        samples_field="masks",
    )
)
