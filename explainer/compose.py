"""Composing perturbed inputs on the classifier's device.

A subset S of regions becomes the image that shows only S: ``view·m + fill·(1−m)`` with ``m``
the union of S's pixels. With the label map flattened to L (S·S ids), a batch of subsets given
as a b×N indicator matrix B gives every pixel mask at once as ``B[:, L]`` (a gather, the same
as the matrix product B @ R with the one-hot region matrix R, at a fraction of the cost).
Everything stays on the device; there is no per-candidate CPU or PIL work.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

FILLS = ("black", "mean", "blur", "grey", "dimmed")
GREY = 128  # the "grey" fill, uint8
DIM = 0.25  # the "dimmed" fill: the view at a quarter of its brightness


def fill_image(view: np.ndarray, fill: str) -> np.ndarray:
    """The image that replaces removed pixels.

    Args:
        view: S×S×3 uint8 RGB.
        fill: "black" (0, as in the paper), "mean" (the view's mean colour), "blur" (a strong
            Gaussian blur of the view, sigma = S/16), "grey" (128) or "dimmed" (the view at a
            quarter of its brightness, rounded to uint8 as a stimulus image is).

    Returns:
        S×S×3 float32 in [0, 1].
    """
    if fill == "black":
        return np.zeros(view.shape, np.float32)
    if fill == "mean":
        return np.broadcast_to(view.reshape(-1, 3).mean(0) / 255.0, view.shape).astype(np.float32)
    if fill == "blur":
        sigma = view.shape[0] / 16
        return cv2.GaussianBlur(view, (0, 0), sigmaX=sigma, sigmaY=sigma).astype(np.float32) / 255.0
    if fill == "grey":
        return np.full(view.shape, GREY / 255.0, np.float32)
    if fill == "dimmed":
        return np.round(view.astype(np.float32) * DIM) / 255.0
    raise ValueError(f"fill must be one of {FILLS}, got {fill!r}.")


class Composer:
    """Builds batches of perturbed views for one (view, label map) pair on one device.

    Args:
        view: S×S×3 uint8 RGB, the model's view.
        labels: S×S int label map with ids 0..N-1.
        device: the classifier's device.
        fill: how removed pixels are filled (see :func:`fill_image`).
        memory_format: the layout of the composed batches (the classifier's ``input_layout``).
    """

    def __init__(
        self,
        view: np.ndarray,
        labels: np.ndarray,
        device: torch.device,
        fill: str = "black",
        memory_format: torch.memory_format = torch.contiguous_format,
    ):
        self.memory_format = memory_format  # the layout the model reads (saves a copy per batch)
        self.size = view.shape[0]
        self.n_regions = int(labels.max()) + 1
        self.device = device
        to_chw = lambda a: torch.from_numpy(np.array(a)).to(device).permute(2, 0, 1)  # noqa: E731  (a copy: views may be read-only)
        self.fill = to_chw(fill_image(view, fill)).float()
        self.delta = to_chw(view).float().div_(255.0) - self.fill  # view − fill
        self.pixel_ids = torch.from_numpy(labels.reshape(-1).astype(np.int64)).to(device)

    def images(self, subsets: torch.Tensor, complement: bool = False) -> torch.Tensor:
        """Views showing only each subset's regions (or, with ``complement``, all but them).

        Args:
            subsets: b×N bool indicator matrix on the device (row i = subset i).
            complement: remove the subset instead of keeping it.

        Returns:
            b×3×S×S float32 in [0, 1] on the device, in ``memory_format``.
        """
        return self._compose(~subsets if complement else subsets)

    def kept_and_removed(self, kept: torch.Tensor, removed: torch.Tensor) -> torch.Tensor:
        """One batch: the views showing only ``kept``'s subsets, then those showing all but
        ``removed``'s (the search scores both in one stream so every batch is full).

        Args:
            kept: k×N bool, removed: r×N bool, on the device.

        Returns:
            (k+r)×3×S×S float32 in [0, 1] on the device, in ``memory_format``; equal to
            ``cat([images(kept), images(removed, complement=True)])`` without the copy.
        """
        return self._compose(torch.cat([kept, ~removed]))

    def _compose(self, subsets: torch.Tensor) -> torch.Tensor:
        # Complements are negated indicators before the gather (exactly 1 − mask, for free).
        masks = subsets.to(torch.float32).index_select(1, self.pixel_ids)  # b × S·S
        masks = masks.view(-1, 1, self.size, self.size)
        # An explicit output layout: a b×1×S×S mask is also "channels-last", and left to choose,
        # torch may pick the layout the model does not read (one more copy per batch).
        out = torch.empty(
            (masks.shape[0], 3, self.size, self.size),
            dtype=torch.float32,
            device=self.device,
            memory_format=self.memory_format,
        )
        return torch.addcmul(self.fill.unsqueeze(0), self.delta.unsqueeze(0), masks, out=out)
