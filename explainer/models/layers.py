"""Finding layers inside a classifier: its head (for embeddings) and, for the white-box
baselines, the layer a class-activation map is taken from.

Works on the usual torchvision/timm architectures (ResNet ``fc``, EfficientNet ``classifier``,
ViT ``heads``); TorchScript modules are opaque, so nothing is found there.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

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


__all__ = ["CamLayer", "cam_layer", "last_linear", "penultimate_features"]


@dataclass(frozen=True)
class CamLayer:
    """The layer a class-activation map is taken from, and how to read it as a feature map.

    Attributes:
        name: its dotted name in the model (for messages and provenance).
        module: the layer.
        tokens: its output is a sequence of tokens (a vision transformer): B×(1+k²)×C with a class
            token first, to be read as a k×k grid (``grid``); else a B×C×H×W feature map.
    """

    name: str
    module: torch.nn.Module
    tokens: bool = False
    grid: int = 0

    def reshape(self, output: torch.Tensor) -> torch.Tensor:
        """A transformer layer's tokens as a B×C×k×k map (the class token dropped)."""
        patches = output[:, 1:, :] if output.shape[1] == self.grid * self.grid + 1 else output
        return patches.reshape(output.shape[0], self.grid, self.grid, output.shape[2]).permute(0, 3, 1, 2)


def cam_layer(model: torch.nn.Module, example: torch.Tensor) -> CamLayer | None:
    """The last layer whose output is a spatial feature map (B×C×H×W, H and W > 1), found by one
    forward pass; for a vision transformer (no such map after the patch embedding), the last layer
    whose output is a token sequence of 1 + k² (or k²) tokens. None for TorchScript modules (their
    layers cannot be hooked) or models with neither.

    Args:
        model: maps a normalised B×3×S×S batch to logits.
        example: such a batch (one image is enough).
    """
    if isinstance(model, torch.jit.ScriptModule):
        return None
    seen: list[tuple[str, torch.nn.Module, tuple[int, ...]]] = []
    names = {module: name for name, module in model.named_modules() if name}
    hooks = []

    def record(module: torch.nn.Module, _inputs: object, output: object) -> None:
        if isinstance(output, torch.Tensor) and module in names:
            seen.append((names[module], module, tuple(output.shape)))

    for module in names:
        hooks.append(module.register_forward_hook(record))
    try:
        with torch.no_grad():
            model(example)
    finally:
        for hook in hooks:
            hook.remove()
    maps = [i for i, (_, _, shape) in enumerate(seen) if len(shape) == 4 and shape[2] > 1 and shape[3] > 1]
    tokens = [i for i, (_, _, shape) in enumerate(seen) if len(shape) == 3 and _grid_of(shape[1]) > 1]
    if tokens and (not maps or tokens[-1] > maps[-1] + 2):
        name, module, shape = seen[tokens[-1]]
        return CamLayer(name, module, tokens=True, grid=_grid_of(shape[1]))
    if maps:
        name, module, _ = seen[maps[-1]]
        return CamLayer(name, module)
    return None


def _grid_of(count: int) -> int:
    """k when ``count`` tokens are k² patches, with or without a class token; else 0."""
    for n in (count - 1, count):
        k = int(round(n**0.5))
        if n > 1 and k * k == n:
            return k
    return 0
