"""Grad-CAM and Grad-CAM++ from the ``grad-cam`` package, averaged over each region.

The layer the map is taken from is found automatically (``explainer.models.layers.cam_layer``:
the last spatial feature map, or for a vision transformer the last token sequence read as a
grid). A TorchScript model has no layers to hook: the methods are listed as unavailable with the
reason. The map is computed for the logit of the target class on the normalised view and resized
by grad-cam to the view; each region's score is the map's mean over the region.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch

from explainer.errors import MethodError
from explainer.methods.base import (
    AttributionMethod,
    Cost,
    MethodOptions,
    MethodProgress,
    PassCounter,
    Subject,
    ranking,
    region_means,
    register,
    run_blocking,
)
from explainer.models import Classifier
from explainer.models.layers import CamLayer, cam_layer


@dataclass(frozen=True)
class CamOptions(MethodOptions):
    """The layer is found automatically; there is nothing to set."""


class _Normalised(torch.nn.Module):
    """The classifier's module behind its own normalisation: [0, 1] images in, logits out."""

    def __init__(self, clf: Classifier, counter: PassCounter):
        super().__init__()
        self.clf, self.model, self.counter = clf, clf.module, counter

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.counter.images(len(x))
        return self.model(self.clf.normalise(x)).float()


def find_layer(clf: Classifier) -> CamLayer | None:
    """The classifier's CAM layer (cached on the classifier object: one dry pass per model)."""
    cached: Any = getattr(clf, "_cam_layer", ())
    if cached == ():
        example = clf.normalise(torch.zeros(1, 3, clf.size, clf.size, device=clf.device))
        cached = cam_layer(clf.module, example)
        object.__setattr__(clf, "_cam_layer", cached)
    return cached


def availability(clf: Classifier) -> tuple[bool, str]:
    if isinstance(clf.module, torch.jit.ScriptModule):
        return False, f"{clf.id} is a TorchScript model: its layers cannot be hooked for a class-activation map."
    try:
        layer = find_layer(clf)
    except Exception as exc:
        return False, f"no layer for a class-activation map could be found in {clf.id} ({type(exc).__name__})."
    if layer is None:
        return False, f"{clf.id} has no spatial feature map or token grid for a class-activation map."
    return True, f"layer {layer.name}"


def _runner(name: str, cam_class: str):
    def run(subject: Subject, options: CamOptions) -> Iterator[MethodProgress]:
        import pytorch_grad_cam
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

        ok, reason = availability(subject.clf)
        if not ok:
            raise MethodError(f"{name} cannot run: {reason}")
        start = time.perf_counter()
        counter = PassCounter()
        layer = find_layer(subject.clf)
        assert layer is not None
        model = _Normalised(subject.clf, counter)

        def call() -> Any:
            cam = getattr(pytorch_grad_cam, cam_class)(
                model=model, target_layers=[layer.module], reshape_transform=layer.reshape if layer.tokens else None
            )
            with cam:
                return cam(input_tensor=subject.input_batch(), targets=[ClassifierOutputTarget(subject.target)])[0]

        pixel_map = yield from run_blocking(name, call, counter, 2)
        counter.backward = counter.forward  # one backward pass per forward image
        result = ranking(
            name, region_means(pixel_map, subject.labels), counter.forward, counter.backward, start, options
        )
        yield MethodProgress(name, counter.forward + counter.backward, 2, result.seconds, result)

    return run


register(
    AttributionMethod(
        "gradcam",
        "Grad-CAM",
        "white-box",
        "The last feature map weighted by the averaged gradients of the target's logit (grad-cam package).",
        CamOptions,
        _runner("gradcam", "GradCAM"),
        lambda n, o: Cost(1, 1),
        availability,
    )
)
register(
    AttributionMethod(
        "gradcam++",
        "Grad-CAM++",
        "white-box",
        "Grad-CAM with pixel-wise weights from higher-order gradients, better for several instances.",
        CamOptions,
        _runner("gradcam++", "GradCAMPlusPlus"),
        lambda n, o: Cost(1, 1),
        availability,
    )
)
