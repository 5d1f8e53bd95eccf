"""Classifiers: one runtime interface (:mod:`.classifier`) and the sources that load them by
name (:mod:`.registry`; the built-in :mod:`.lite0`, :mod:`.torchvision_models`, users' files in
:mod:`.user_files`, zero-shot CLIP in :mod:`.clip`).

    from explainer.models import load_classifier
    clf = load_classifier("efficientnet_lite0")            # or "torchvision:resnet50", ...
"""

from explainer.models.class_names import imagenet_class_names, read_class_names
from explainer.models.classifier import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    Classifier,
    Preprocess,
    device_label,
    is_out_of_memory,
    pick_device,
    weights_digest,
)
from explainer.models.layers import last_linear, penultimate_features
from explainer.models.registry import (
    DEFAULT_MODEL,
    MODEL_SOURCES,
    ModelInputs,
    ModelSource,
    create,
    list_sources,
    load_classifier,
    register,
)

# The sources register themselves on import, in the order the sidebar lists them.
from explainer.models import lite0, torchvision_models, user_files, clip  # noqa: F401  isort: skip

LITE_PREPROCESS = lite0.PREPROCESS

__all__ = [
    "DEFAULT_MODEL",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "LITE_PREPROCESS",
    "MODEL_SOURCES",
    "Classifier",
    "ModelInputs",
    "ModelSource",
    "Preprocess",
    "create",
    "device_label",
    "imagenet_class_names",
    "is_out_of_memory",
    "last_linear",
    "list_sources",
    "load_classifier",
    "penultimate_features",
    "pick_device",
    "read_class_names",
    "register",
    "weights_digest",
]
