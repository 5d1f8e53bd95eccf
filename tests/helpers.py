"""Shared test helpers: tiny analytic classifiers, label maps, views, paths.

Imported as `helpers` (tests/ is on sys.path); conftest.py files only hold fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from explainer.models import Classifier, Preprocess

ROOT = Path(__file__).resolve().parents[1]
IMAGENET_SAMPLE = ROOT.parent / "shared" / "data" / "imagenet-sample"
IDENTITY = Preprocess(size=16, resize=16, interpolation="bilinear", mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))

torch.set_num_threads(min(2, os.cpu_count() or 1))


def grid_labels(size: int, cells: int) -> np.ndarray:
    """size×size int32 label map of cells×cells square regions, raster order."""
    idx = np.arange(size) * cells // size
    return (idx[:, None] * cells + idx[None, :]).astype(np.int32)


class RegionSumModel(torch.nn.Module):
    """Two classes; logit_1 = Σ_r w_r · (mean intensity of region r), logit_0 = 0.

    On a white view, showing a subset S gives p_1 = sigmoid(Σ_{r∈S} w_r): additive evidence
    whose correct ranking is known by hand (descending weight).
    """

    def __init__(self, labels: np.ndarray, weights):
        super().__init__()
        onehot = torch.nn.functional.one_hot(torch.from_numpy(labels.astype(np.int64))).permute(2, 0, 1).float()
        self.register_buffer("masks", onehot / onehot.sum((1, 2), keepdim=True))
        self.register_buffer("weights", torch.as_tensor(weights, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # B×3×S×S -> B×2
        per_region = torch.einsum("bhw,rhw->br", x.mean(1), self.masks)
        logit = per_region @ self.weights
        return torch.stack([torch.zeros_like(logit), logit], dim=1)


class TinyCNN(torch.nn.Module):
    """A seeded random CNN with a Linear head (so it offers embeddings); K classes."""

    def __init__(self, classes: int = 5, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.fc = torch.nn.Linear(8 * 4 * 4, classes)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.conv(x))
        h = torch.nn.functional.adaptive_avg_pool2d(h, 4).flatten(1)
        return self.fc(h)


def make_classifier(
    module: torch.nn.Module, classes: int, size: int = 16, batch_size: int = 7, embeddings: bool = False
) -> Classifier:
    from explainer.models import penultimate_features

    prep = Preprocess(size=size, resize=size, interpolation="bilinear", mean=(0.0,) * 3, std=(1.0,) * 3)
    return Classifier(
        module,
        tuple(f"class {i}" for i in range(classes)),
        prep,
        f"test:{type(module).__name__}",
        device="cpu",
        batch_size=batch_size,
        features=penultimate_features(module) if embeddings else None,
    )


def random_view(size: int = 16, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


TINY_SOURCE = {"name": "tiny.png", "digest": "ab" * 32, "label": 1}


def tiny_view(seed: int = 3) -> np.ndarray:
    """A 16×16 random view without pure-black pixels (the reference evaluator's area test
    ignores black pixels, so its AUC matches ours only on such views)."""
    return np.maximum(random_view(16, seed), 1).astype(np.uint8)


# A tiny labelled set for batch tests: a TorchScript TinyCNN (5 classes) seen at 32 px, its class
# names, and 8 random photos listed in labels.txt (some of them mistakes).
TINY_PREPROCESS = Preprocess(size=32, resize=32, interpolation="bilinear", mean=(0.0,) * 3, std=(1.0,) * 3)


def make_tiny_set(root: Path) -> dict[str, Path]:
    from PIL import Image

    root.mkdir(parents=True, exist_ok=True)
    model = root / "tiny.pt"
    torch.jit.script(TinyCNN(5, seed=7)).save(str(model))
    names = root / "names.txt"
    names.write_text("".join(f"class {i}\n" for i in range(5)))
    rng = np.random.default_rng(1)
    lines = []
    for i in range(8):
        Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(root / f"img{i}.png")
        lines.append(f"img{i}.png {i % 5}")
    (root / "labels.txt").write_text("\n".join(lines))
    return {"model": model, "names": names, "labels": root / "labels.txt"}


def load_tiny(files: dict[str, Path]) -> Classifier:
    """The tiny set's classifier, as ``load_classifier`` gives it (CPU, batches of 16)."""
    from explainer.models import load_classifier

    return load_classifier(
        f"torchscript:{files['model']}",
        device="cpu",
        class_names=files["names"],
        preprocess=TINY_PREPROCESS,
        batch_size=16,
    )


def synthetic_runs(root, template, count: int, vary) -> list[str]:
    """``count`` valid run folders under ``root`` made from one saved run folder ``template``
    (fast: the NPZ is hard-linked, only the JSON changes). ``vary(i, doc)`` edits the i-th
    JSON document in place. Returns the keys (``syn00000``, ...)."""
    import json
    import os
    from pathlib import Path

    root, template = Path(root), Path(template)
    base = json.loads((template / "explanation.json").read_text(encoding="utf-8"))
    keys = []
    for i in range(count):
        key = f"syn{i:05d}"
        folder = root / key
        folder.mkdir(parents=True)
        os.link(template / "explanation.npz", folder / "explanation.npz")
        doc = json.loads(json.dumps(base))
        vary(i, doc)
        (folder / "explanation.json").write_text(json.dumps(doc), encoding="utf-8")
        keys.append(key)
    return keys
