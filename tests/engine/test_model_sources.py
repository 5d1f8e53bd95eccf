"""The model-source registry (timm-style register/list/create) and zero-shot CLIP through
open_clip, with random weights (no CLIP weights can be downloaded here)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from helpers import random_view

from explainer.errors import ModelError
from explainer.models import MODEL_SOURCES, create, list_sources, load_classifier
from explainer.models.clip import ClipInputs, ZeroShotHead
from explainer.search import explain

open_clip = pytest.importorskip("open_clip")

TINY_CLIP = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "patch_size": 16, "head_width": 32},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}


@pytest.fixture(scope="module")
def tiny_arch(tmp_path_factory):
    """A tiny open_clip architecture (3 M parameters, 64 px), registered with open_clip."""
    folder = tmp_path_factory.mktemp("clipcfg")
    (folder / "lima-tiny-clip.json").write_text(json.dumps(TINY_CLIP))
    open_clip.add_model_config(folder)
    return "lima-tiny-clip"


def test_the_registry_lists_every_source_in_order():
    assert MODEL_SOURCES.names() == ["efficientnet_lite0", "torchvision", "torchscript", "checkpoint", "clip"]
    assert [s.name for s in list_sources(in_app=True)] == ["efficientnet_lite0", "torchvision", "torchscript", "clip"]
    for source in MODEL_SOURCES:
        assert source.label and source.description.endswith(".")
        source.inputs()  # default inputs are valid options


@pytest.mark.parametrize(
    "spec,message",
    [
        ("nonsense:thing", "Unknown model"),
        ("clip", "say which model"),
        ("clip:No-Such-Arch:random", "no architecture"),
        ("", "model name"),
    ],
)
def test_bad_specs_are_model_errors(spec, message):
    with pytest.raises(ModelError, match=message):
        load_classifier(spec, device="cpu")


def test_clip_with_random_weights_is_a_zero_shot_classifier(tiny_arch):
    clf = load_classifier(f"clip:{tiny_arch}:random", device="cpu")
    assert clf.id == f"clip:{tiny_arch}:random" and clf.num_classes == 1000 and clf.size == 64
    assert clf.preprocess.interpolation == "bicubic" and clf.preprocess.mean[0] == pytest.approx(0.4815, abs=1e-3)
    assert clf.has_embeddings
    view = random_view(64, 1)
    probs = clf.predict(view[None])[0]
    assert probs.shape == (1000,) and probs.sum() == pytest.approx(1.0, abs=1e-5)
    # The logits are exactly logit_scale · normalize(image embedding) · prototypesᵀ.
    head = clf.module
    assert isinstance(head, ZeroShotHead)
    x = clf.normalise(clf.to_batch(view))
    with torch.inference_mode():
        emb = torch.nn.functional.normalize(head.visual(x).float(), dim=-1)
        expected = (head.logit_scale * emb @ head.prototypes.T).softmax(1)[0].numpy()
    np.testing.assert_allclose(probs, expected, atol=1e-5)
    assert torch.allclose(head.prototypes.norm(dim=1), torch.ones(1000), atol=1e-5)


def test_clip_class_names_template_and_weights_file(tiny_arch, tmp_path):
    names = tmp_path / "names.txt"
    names.write_text("cat\ndog\nfox\n")
    model = open_clip.create_model(tiny_arch, pretrained=None)
    weights = tmp_path / "tiny.pt"
    torch.save(model.state_dict(), weights)
    inputs = ClipInputs(
        architecture=tiny_arch, weights=str(weights), class_names=str(names), template="a drawing of a {}."
    )
    clf = create("clip", inputs, device="cpu")
    assert clf.class_names == ("cat", "dog", "fox") and clf.id == f"clip:{tiny_arch}:tiny.pt"
    other = create("clip", inputs.replace(template="a photo of a {}."), device="cpu")
    assert other.weights_hash != clf.weights_hash  # the prompts are part of the classifier
    tokenizer = open_clip.get_tokenizer(tiny_arch)
    with torch.inference_mode():
        text = model.encode_text(tokenizer(["a drawing of a cat.", "a drawing of a dog.", "a drawing of a fox."]))
    np.testing.assert_allclose(
        clf.module.prototypes.numpy(), torch.nn.functional.normalize(text.float(), dim=-1).numpy(), atol=1e-5
    )
    with pytest.raises(ModelError, match="must mark the class name"):
        create("clip", inputs.replace(template="no placeholder"), device="cpu")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a state dict")
    with pytest.raises(ModelError, match="not a readable weights file"):
        create("clip", inputs.replace(weights=str(bad)), device="cpu")


def test_lima_explains_with_a_clip_model_and_its_embeddings(tiny_arch):
    clf = load_classifier(f"clip:{tiny_arch}:random", device="cpu", batch_size=16)
    view = random_view(64, 2)
    labels = (np.arange(64)[:, None] // 16 * 4 + np.arange(64)[None, :] // 16).astype(np.int32)  # 4×4 grid
    exp = explain(clf, view, labels, 3, pending=4, weights={"effectiveness": 0.05})
    assert sorted(exp.order.tolist()) == list(range(16)) and exp.model["id"].startswith("clip:")
    assert exp.log.effectiveness[exp.log.where("forward")][1:].max() > 0  # embeddings feed the term


def test_the_cli_loads_clip_with_a_prompt(tiny_arch, tmp_path, capsys):
    from PIL import Image

    from explainer import cli

    image = tmp_path / "x.png"
    Image.fromarray(random_view(80, 3)).save(image)
    rc = cli.main(
        [
            "explain",
            str(image),
            "--label",
            "1",
            "--model",
            f"clip:{tiny_arch}:random",
            "--prompt",
            "a sketch of a {}.",
            "--regions",
            "grid",
            "--param",
            "cells_per_side=2",
            "--figure",
            "none",
            "--out",
            str(tmp_path / "out"),
            "--quiet",
        ]
    )
    assert rc == 0, capsys.readouterr().err


# -- GPU paths (run by scripts/gpu_check.sh where a GPU is lent) ------------------------------------------------


@pytest.mark.gpu
def test_cuda_classifier_scores_in_fp32_with_bf16_autocast(lite0):
    gpu = load_classifier("efficientnet_lite0", device="cuda", precision="bf16")
    assert gpu.device.type == "cuda" and gpu.precision == "bf16"
    view = lite0.view(random_view(256, 5))
    p_gpu, p_cpu = gpu.predict(view[None])[0], lite0.predict(view[None])[0]
    assert p_gpu.dtype == np.float32 and abs(p_gpu.sum() - 1) < 1e-4
    assert int(np.argmax(p_gpu)) == int(np.argmax(p_cpu)) or abs(p_gpu.max() - p_cpu.max()) < 0.05


@pytest.mark.gpu
def test_cuda_search_matches_the_cpu_search_in_fp32(lite0, chelsea_view):
    from explainer.regions import propose_regions

    labels = propose_regions(chelsea_view, "grid", cells_per_side=4)
    gpu = load_classifier("efficientnet_lite0", device="cuda")
    a = explain(lite0, chelsea_view, labels, 281)
    b = explain(gpu, chelsea_view, labels, 281)
    np.testing.assert_allclose(a.insertion, b.insertion, atol=1e-3)


# -- the network (skipped offline) --------------------------------------------------------------------------------


@pytest.mark.network
def test_torchvision_default_weights_download_and_load():
    clf = load_classifier("torchvision:resnet18", device="cpu")
    assert clf.id == "torchvision:resnet18" and clf.preprocess.resize == 256
