"""torchvision classifiers: ``torchvision:<name>`` with the default weights (downloaded once
where the machine has internet), or ``torchvision:<name>:random`` for random weights (timing)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from explainer.errors import ModelError
from explainer.models.class_names import imagenet_class_names
from explainer.models.classifier import Classifier, Preprocess
from explainer.models.layers import last_linear, penultimate_features
from explainer.models.registry import ModelInputs, ModelSource, register
from explainer.options import option


@dataclass(frozen=True)
class TorchvisionInputs(ModelInputs):
    name: str = option(
        "",
        label="torchvision name",
        help="e.g. resnet50, vit_b_16, convnext_tiny; the default ImageNet weights are downloaded "
        "once, or read from ~/.cache/torch.",
    )
    weights: str = option(
        "default",
        choices=("default", "random"),
        help="default: torchvision's ImageNet weights; random: random weights (for timing).",
    )


def load(inputs: TorchvisionInputs, device: torch.device, preprocess: Preprocess | None = None) -> Classifier:
    import torchvision

    name = inputs.name.strip()
    classifiers = sorted(torchvision.models.list_models(torchvision.models))  # classification only
    if not name:
        raise ModelError(
            "Type the name of a torchvision classification model, e.g. resnet50, vit_b_16 or "
            "convnext_tiny (its ImageNet weights are downloaded once)."
        )
    if name not in classifiers:
        raise ModelError(
            f"torchvision has no classification model {name!r} (e.g. {', '.join(classifiers[:12])}, "
            "...); detection and segmentation models are not classifiers."
        )
    weights = None if inputs.weights == "random" else torchvision.models.get_model_weights(name).DEFAULT
    try:
        model = torchvision.models.get_model(name, weights=weights)
    except Exception as exc:
        url = getattr(weights, "url", "")
        raise ModelError(
            f"Could not get the weights of torchvision:{name} ({type(exc).__name__}: {exc}). "
            f"This machine cannot download {url or 'them'}. On a machine with internet, run "
            f"`python -c \"import torchvision; torchvision.models.get_model('{name}', weights='DEFAULT')\"` "
            f"and copy the file from ~/.cache/torch/hub/checkpoints/ into the same folder here "
            f"(or set TORCH_HOME). Use torchvision:{name}:random for random weights."
        ) from exc
    head = last_linear(model)
    if weights is not None:
        t = weights.transforms()
        names = tuple(weights.meta["categories"])
        crop, resize = int(t.crop_size[0]), int(t.resize_size[0])
        interp = "bicubic" if "BICUBIC" in str(t.interpolation) else "bilinear"
        prep = Preprocess(crop, resize, interp, tuple(t.mean), tuple(t.std))
    else:
        names = imagenet_class_names()
        prep = Preprocess()
        if head is not None and head.out_features != len(names):
            names = tuple(f"class {i}" for i in range(head.out_features))
    try:
        return Classifier(
            model, names, preprocess or prep, spec(inputs), device=device, features=penultimate_features(model)
        )
    except ModelError:
        raise
    except Exception as exc:
        raise ModelError(f"torchvision:{name} cannot be run here ({type(exc).__name__}: {exc}).") from exc


def spec(inputs: TorchvisionInputs) -> str:
    return f"torchvision:{inputs.name.strip()}" + (":random" if inputs.weights == "random" else "")


def _parse(rest: str, extras: dict[str, Any]) -> TorchvisionInputs:
    base, _, flag = rest.partition(":")
    if flag not in ("", "random"):
        raise ModelError(f"Unknown torchvision option {flag!r}; use torchvision:{base} or torchvision:{base}:random.")
    return TorchvisionInputs(name=base, weights="random" if flag else "default")


register(
    ModelSource(
        "torchvision",
        "torchvision model",
        "A torchvision classifier with its ImageNet weights (downloaded once) or random weights.",
        TorchvisionInputs,
        _parse,
        load,
        spec,
    )
)
