"""Finding layers inside a classifier: its head (for embeddings) and, for the white-box
baselines, its last convolution.

Works on the usual torchvision/timm architectures (ResNet ``fc``, EfficientNet ``classifier``,
ViT ``heads``); TorchScript modules are opaque, so nothing is found there.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import torch


def last_linear(module: torch.nn.Module) -> torch.nn.Linear | None:
    linears = [m for m in module.modules() if isinstance(m, torch.nn.Linear)]
    return linears[-1] if linears else None


def penultimate_features(module: torch.nn.Module) -> Callable | None:
    """Embeddings = the input of the model's last Linear layer (its classifier head).

    Works for the usual torchvision/timm classifiers (ResNet fc, EfficientNet classifier, ViT
    heads). Returns ``None`` when the module has no Linear layer (e.g. TorchScript).
    """
    head = last_linear(module)
    if head is None or isinstance(module, torch.jit.ScriptModule):
        return None
    # Thread-local, and only while `features` runs: plain forward passes keep nothing, and two
    # threads sharing one model never see each other's embeddings.
    state = threading.local()

    def keep_input(_module, inputs, _output) -> None:
        if getattr(state, "capturing", False):
            state.embedding = inputs[0]

    head.register_forward_hook(keep_input)

    def features(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        state.capturing = True
        try:
            logits = module(x)
        finally:
            state.capturing = False
        embedding, state.embedding = state.embedding, None
        return logits, embedding.flatten(1)

    return features


__all__ = ["last_linear", "penultimate_features"]
