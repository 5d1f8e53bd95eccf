"""Users' own models from files: TorchScript (safe to load) and pickled checkpoints (only with
``allow_pickle``, because unpickling runs code from the file), each with a class-names file.

The model must map a normalised batch (B×3×S×S; by default ImageNet mean/std after resize 256 and
a centre crop of 224, unless a :class:`Preprocess` is given) to logits of width K.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from explainer.errors import ModelError
from explainer.models.class_names import read_class_names
from explainer.models.classifier import Classifier, Preprocess
from explainer.models.layers import penultimate_features
from explainer.models.registry import ModelInputs, ModelSource, register
from explainer.options import option


@dataclass(frozen=True)
class ModelFileInputs(ModelInputs):
    path: str = option("", kind="path", label="model file", help="The model file (for the app: under the data root).")
    class_names: str | None = option(
        None,
        kind="path",
        optional=True,
        label="class-names file",
        help="One name per line (line i = class i-1), or a JSON list.",
    )


@dataclass(frozen=True)
class CheckpointInputs(ModelFileInputs):
    allow_pickle: bool = option(False, help="Unpickling runs code from the file: only for files you trust.")


def _names(inputs: ModelFileInputs, file: Path) -> tuple[str, ...]:
    if not inputs.class_names:
        raise ModelError(f"{file.name}: a class-names file is required (one name per line, index = line).")
    return read_class_names(inputs.class_names)


def _file(inputs: ModelFileInputs) -> Path:
    if not inputs.path.strip():
        raise ModelError("Give the model file's path.")
    try:
        file = Path(inputs.path).expanduser()
        exists = file.is_file()
    except (OSError, ValueError) as exc:  # a NUL byte, a name too long for the system
        raise ModelError(f"{inputs.path[:80]!r} is not a usable file path ({exc}).") from exc
    if not exists:
        raise ModelError(f"Model file not found: {file}")
    return file


def load_torchscript(inputs: ModelFileInputs, device: torch.device, preprocess: Preprocess | None = None) -> Classifier:
    file = _file(inputs)
    class_names = _names(inputs, file)
    try:
        module = torch.jit.load(str(file), map_location="cpu")
    except Exception as exc:
        raise ModelError(
            f"{file.name} is not a loadable TorchScript file ({exc}). Export one with "
            f"torch.jit.script(model).save(path) or torch.jit.trace."
        ) from exc
    return Classifier(
        module,
        class_names,
        preprocess or Preprocess(),
        f"torchscript:{file.name}",
        weights_hash=hashlib.sha256(file.read_bytes()).hexdigest(),
        device=device,
        features=None,
    )


def load_checkpoint(inputs: CheckpointInputs, device: torch.device, preprocess: Preprocess | None = None) -> Classifier:
    file = _file(inputs)
    class_names = _names(inputs, file)
    if not inputs.allow_pickle:
        raise ModelError(
            f"{file.name}: loading a pickled checkpoint runs code from the file; "
            f"pass allow_pickle=True (CLI: --allow-pickle) only for files you trust, "
            f"or export the model to TorchScript."
        )
    try:
        module = torch.load(str(file), map_location="cpu", weights_only=False)
    except Exception as exc:
        raise ModelError(f"{file.name} could not be unpickled: {exc}") from exc
    if not isinstance(module, torch.nn.Module):
        raise ModelError(
            f"{file.name} holds a {type(module).__name__}, not an nn.Module "
            f"(a state dict needs its architecture: export TorchScript instead)."
        )
    return Classifier(
        module,
        class_names,
        preprocess or Preprocess(),
        f"checkpoint:{file.name}",
        weights_hash=hashlib.sha256(file.read_bytes()).hexdigest(),
        device=device,
        features=penultimate_features(module),
    )


def _parser(inputs_type: type[ModelFileInputs]):
    def parse(rest: str, extras: dict[str, Any]) -> ModelFileInputs:
        values: dict[str, Any] = {"path": rest}
        if extras.get("class_names") is not None:
            values["class_names"] = str(extras["class_names"])
        if inputs_type is CheckpointInputs:
            values["allow_pickle"] = bool(extras.get("allow_pickle"))
        return inputs_type.from_mapping(values)

    return parse


register(
    ModelSource(
        "torchscript",
        "My TorchScript model",
        "A TorchScript file (torch.jit.script or trace) and a class-names file.",
        ModelFileInputs,
        _parser(ModelFileInputs),
        load_torchscript,
        lambda inputs: f"torchscript:{inputs.path}",
        offline=True,
    )
)
register(
    ModelSource(
        "checkpoint",
        "Pickled checkpoint (trusted files only)",
        "A whole nn.Module saved with torch.save; loading it runs code from the file.",
        CheckpointInputs,
        _parser(CheckpointInputs),
        load_checkpoint,
        lambda inputs: f"checkpoint:{inputs.path}",
        in_app=False,
        offline=True,
    )
)
