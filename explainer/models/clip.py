"""Zero-shot CLIP through ``open_clip``: the model family of the LiMA paper's main results.

``clip:<architecture>:<weights file>`` (or ``clip:<architecture>:random``, for timing and tests). The classifier
is CLIP's image encoder against one text prototype per class: each class name is put into the
prompt template ("a photo of a {}."), encoded, L2-normalised; logits are
``logit_scale · normalize(image embedding) · prototypeᵀ`` (``logit_scale`` is CLIP's learned
temperature, 100 for the released weights, as in the reference code), so p(·) is a softmax over
the K classes. The normalised image embedding also feeds LiMA's effectiveness term.

The weights are a file the user provides (like SAM's): an ``open_clip`` state dict
(``.bin``/``.pt``/``.pth``, loaded with ``weights_only=True``, or ``.safetensors``). Class names
default to ImageNet-1k's; a class-names file gives others. Preprocessing is the architecture's
own (open_clip's config: size, bicubic resize of the short side, centre crop, CLIP mean/std).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from explainer.errors import ModelError
from explainer.models.class_names import imagenet_class_names, read_class_names
from explainer.models.classifier import Classifier, Preprocess
from explainer.models.registry import ModelInputs, ModelSource, register
from explainer.options import option

DEFAULT_TEMPLATE = "a photo of a {}."


@dataclass(frozen=True)
class ClipInputs(ModelInputs):
    architecture: str = option("ViT-B-32", help="An open_clip architecture, e.g. ViT-B-32, ViT-L-14, RN101.")
    weights: str | None = option(
        None,
        kind="path",
        optional=True,
        label="weights file",
        help="An open_clip weights file (for the app: under the data root); empty: random "
        "weights (for timing and tests).",
    )
    class_names: str | None = option(
        None,
        kind="path",
        optional=True,
        label="class-names file",
        help="One name per line; default: the 1000 ImageNet classes.",
    )
    template: str = option(
        DEFAULT_TEMPLATE, label="prompt template", help="The text each class name is put into; {} marks the name."
    )


class ZeroShotHead(torch.nn.Module):
    """CLIP's image encoder against fixed, normalised class prototypes (K×D)."""

    prototypes: torch.Tensor
    logit_scale: torch.Tensor

    def __init__(self, clip_model: torch.nn.Module, prototypes: torch.Tensor, logit_scale: float):
        super().__init__()
        self.visual: torch.nn.Module = clip_model.visual  # type: ignore[assignment]
        self.register_buffer("prototypes", prototypes)
        self.register_buffer("logit_scale", torch.tensor(float(logit_scale)))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.normalize(self.visual(x).float(), dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logit_scale * self.embed(x) @ self.prototypes.T

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        emb = self.embed(x)
        return self.logit_scale * emb @ self.prototypes.T, emb


def _open_clip() -> Any:
    try:
        import open_clip
    except ImportError as exc:
        raise ModelError("CLIP models need `pip install open-clip-torch` (see requirements.txt).") from exc
    return open_clip


def _read_weights(path: Path) -> dict[str, torch.Tensor]:
    state: Any
    if not path.is_file():
        raise ModelError(f"CLIP weights file not found: {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelError(f"{path.name} is not a readable weights file ({type(exc).__name__}: {exc}).") from exc
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ModelError(f"{path.name} does not hold a state dict.")
    return {k.removeprefix("module."): v for k, v in state.items()}


def load(inputs: ClipInputs, device: torch.device, preprocess: Preprocess | None = None) -> Classifier:
    open_clip = _open_clip()
    arch = inputs.architecture.strip()
    if arch not in open_clip.list_models():
        raise ModelError(
            f"open_clip has no architecture {arch!r} (e.g. {', '.join(open_clip.list_models()[:8])}, ...)."
        )
    model = open_clip.create_model(arch, pretrained=None)
    if inputs.weights:
        path = Path(inputs.weights).expanduser()
        try:
            model.load_state_dict(_read_weights(path), strict=True)
        except RuntimeError as exc:
            raise ModelError(
                f"{path.name} does not fit the open_clip {arch} architecture ({str(exc).splitlines()[0]})."
            ) from exc
    model.eval()
    names = read_class_names(inputs.class_names) if inputs.class_names else imagenet_class_names()
    if "{}" not in inputs.template:
        raise ModelError(f"the prompt template must mark the class name with {{}}, got {inputs.template!r}.")
    tokenizer = open_clip.get_tokenizer(arch)
    with torch.inference_mode():
        text = torch.cat(
            [
                model.encode_text(tokenizer([inputs.template.format(n) for n in names[i : i + 256]]))
                for i in range(0, len(names), 256)
            ]
        )
        prototypes = torch.nn.functional.normalize(text.float(), dim=-1)
        scale = float(model.logit_scale.exp())
    head = ZeroShotHead(model, prototypes.clone(), scale)
    cfg = model.visual.preprocess_cfg
    size = int(cfg["size"][0] if isinstance(cfg["size"], (tuple, list)) else cfg["size"])
    prep = preprocess or Preprocess(
        size,
        size,
        "bicubic" if cfg.get("interpolation") == "bicubic" else "bilinear",
        tuple(cfg["mean"]),
        tuple(cfg["std"]),
    )
    digest = hashlib.sha256()
    for name, tensor in sorted(head.state_dict().items()):
        digest.update(name.encode() + tensor.detach().cpu().contiguous().numpy().tobytes())
    return Classifier(
        head, names, prep, spec(inputs), weights_hash=digest.hexdigest(), device=device, features=head.features
    )


def spec(inputs: ClipInputs) -> str:
    return f"clip:{inputs.architecture.strip()}:" + (Path(inputs.weights).name if inputs.weights else "random")


def _parse(rest: str, extras: dict[str, Any]) -> ClipInputs:
    arch, _, weights = rest.partition(":")
    values: dict[str, Any] = {"architecture": arch, "weights": None if weights.lower() in ("", "random") else weights}
    if extras.get("class_names") is not None:
        values["class_names"] = str(extras["class_names"])
    if extras.get("template"):
        values["template"] = str(extras["template"])
    return ClipInputs.from_mapping(values)


register(
    ModelSource(
        "clip",
        "Zero-shot CLIP (open_clip)",
        "CLIP's image encoder against one text prototype per class; weights from a file you provide.",
        ClipInputs,
        _parse,
        load,
        spec,
    )
)
