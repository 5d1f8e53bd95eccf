"""SAM in timed stages with a cached embedding: the same masks as segment-anything's own
generator (a toy random-weights SAM at a tiny grid), the stages timed, the cache hit."""

from __future__ import annotations

import numpy as np
import pytest

from explainer.sam import SAM_CPU_PRESET, SamOptions, generate_masks, sam_cost_s
from explainer.sam_masks import EmbeddingCache, SamTimings, tiny_sam

pytest.importorskip("segment_anything")
# Random weights give low-quality masks: keep them all so there is something to compare.
KEEP_ALL = {"pred_iou_thresh": 0.0, "stability_score_thresh": 0.0, "box_nms_thresh": 0.7, "points_per_side": 4}


@pytest.fixture(scope="module")
def sam():
    return tiny_sam()


@pytest.fixture(scope="module")
def image():
    rng = np.random.default_rng(0)
    img = np.zeros((48, 64, 3), np.uint8)
    img[:, 32:] = 200
    img[10:30, 5:25] = (30, 160, 60)
    return np.clip(img + rng.integers(0, 20, img.shape), 0, 255).astype(np.uint8)


def reference_masks(sam, image, **kwargs):
    import torch
    from segment_anything import SamAutomaticMaskGenerator

    with torch.inference_mode():
        records = SamAutomaticMaskGenerator(sam, output_mode="binary_mask", **kwargs).generate(image)
    return [r["segmentation"] for r in records]


def same(a, b):
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


@pytest.mark.slow
def test_staged_masks_equal_segment_anythings_and_the_cache_is_hit(sam, image, tmp_path):
    expected = reference_masks(sam, image, **KEEP_ALL)
    assert len(expected) > 0
    cache = EmbeddingCache(tmp_path)
    first, again = SamTimings(), SamTimings()
    masks = generate_masks(sam, image, SamOptions(**KEEP_ALL, points_per_batch=5), cache=cache, timings=first)
    assert same(masks, expected)  # batches of 5 prompts: the same masks
    assert first.prompts == 16 and first.batches == 4 and not first.embedding_cached
    assert first.encoder_s > 0 and first.decoder_s > 0 and first.post_s >= 0
    from_disk = EmbeddingCache(tmp_path)  # a new process: the embedding comes from the file
    masks = generate_masks(sam, image, SamOptions(**KEEP_ALL), cache=from_disk, timings=again)
    assert same(masks, expected) and again.embedding_cached and again.batches == 1
    assert len(list(tmp_path.glob("*.npz"))) == 1


@pytest.mark.slow
def test_another_image_or_other_weights_miss_the_cache(sam, image):
    cache = EmbeddingCache(None)
    t = SamTimings()
    generate_masks(sam, image, SamOptions(**KEEP_ALL), cache=cache, timings=t)
    generate_masks(sam, image[:, ::-1].copy(), SamOptions(**KEEP_ALL), cache=cache, timings=t)
    assert not t.embedding_cached
    generate_masks(tiny_sam(seed=1), image, SamOptions(**KEEP_ALL), cache=cache, timings=t)
    assert not t.embedding_cached and len(cache.memory) == 3


def test_the_cpu_preset_costs_less_and_the_cost_model_counts_batches():
    full = SamOptions()
    assert SAM_CPU_PRESET.points_per_side < full.points_per_side
    assert sam_cost_s(SAM_CPU_PRESET) < sam_cost_s(full)
    # 1024 prompts against 64: the difference is 960 of the full grid's 1024 prompts' cost
    assert sam_cost_s(full) - sam_cost_s(SAM_CPU_PRESET) == pytest.approx(960 * sam_cost_s(full, cached=True) / 1024)
    assert sam_cost_s(full, cached=True) < sam_cost_s(full, onnx=True) < sam_cost_s(full)
    assert SAM_CPU_PRESET.generator_kwargs()["points_per_batch"] == SAM_CPU_PRESET.points_per_batch


def mask_iou(a, b):
    return (a & b).sum() / max((a | b).sum(), 1)


@pytest.fixture
def onnx_encoder(monkeypatch, tmp_path):
    """A fresh cache folder, the encoder on ``auto`` (ONNX Runtime on a CPU), nothing loaded."""
    pytest.importorskip("onnxruntime")
    from explainer import sam_runtime

    monkeypatch.setenv("LIMA_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv(sam_runtime.ENV_VAR, "auto")
    sam_runtime.forget()
    yield sam_runtime
    sam_runtime.forget()


def folder_of(model):
    from explainer import sam_runtime
    from explainer.sam_masks import weights_fingerprint

    return sam_runtime.folder_for(weights_fingerprint(model))


@pytest.mark.slow
def test_the_onnx_encoder_is_exported_once_checked_and_gives_the_same_masks(image, monkeypatch, onnx_encoder):
    sam_runtime = onnx_encoder
    model = tiny_sam(seed=3)
    expected = reference_masks(model, image, **KEEP_ALL)
    first, second, third = SamTimings(), SamTimings(), SamTimings()
    exported = generate_masks(model, image, SamOptions(**KEEP_ALL), cache=None, timings=first)
    assert len(expected) > 0 and same(exported, expected)  # the exporting run returns PyTorch's own features
    assert first.encoder.startswith("ONNX Runtime (exported now")
    folder = folder_of(model)
    check = __import__("json").loads((folder / "check.json").read_text())
    assert check["passed"] and check["max_abs_diff"] <= sam_runtime.TOLERANCE
    onnx = generate_masks(model, image, SamOptions(**KEEP_ALL), cache=None, timings=second)
    assert len(onnx) == len(expected) and min(mask_iou(a, b) for a, b in zip(onnx, expected)) > 0.99
    sam_runtime.forget()  # a new process: loads the stored export, does not export again
    stamp = (folder / "encoder.onnx").stat().st_mtime_ns
    generate_masks(model, image, SamOptions(**KEEP_ALL), cache=None, timings=third)
    assert (
        third.encoder.startswith("ONNX Runtime (exported 20") and (folder / "encoder.onnx").stat().st_mtime_ns == stamp
    )
    monkeypatch.setenv(sam_runtime.ENV_VAR, "torch")
    torch_run = SamTimings()
    assert same(generate_masks(model, image, SamOptions(**KEEP_ALL), cache=None, timings=torch_run), expected)


@pytest.mark.slow
def test_a_broken_export_falls_back_to_pytorch_and_says_why(image, onnx_encoder):
    import json

    sam_runtime = onnx_encoder
    model = tiny_sam(seed=4)
    exported = generate_masks(model, image, SamOptions(**KEEP_ALL), cache=None)  # PyTorch's features
    folder = folder_of(model)
    (folder / "encoder.onnx").write_bytes(b"not a model")
    sam_runtime.forget()
    t = SamTimings()
    assert same(generate_masks(model, image, SamOptions(**KEEP_ALL), cache=None, timings=t), exported)
    assert t.encoder.startswith("PyTorch: the stored export does not load")
    check = json.loads((folder / "check.json").read_text())  # a failed check is not retried
    (folder / "check.json").write_text(json.dumps({**check, "passed": False, "reason": "max |Δ feature| 1 > 0.001"}))
    sam_runtime.forget()
    generate_masks(model, image, SamOptions(**KEEP_ALL), cache=None, timings=t)
    assert t.encoder == "PyTorch: the export did not pass its check (max |Δ feature| 1 > 0.001)"
    assert (folder / "encoder.onnx").read_bytes() == b"not a model"  # not exported again


def test_the_decoder_that_shares_the_image_side_gives_the_librarys_masks(sam):
    import torch
    from segment_anything.modeling.mask_decoder import MaskDecoder

    from explainer.sam_masks import predict_masks_shared_image

    torch.manual_seed(0)
    size, (side, _) = sam.image_encoder.img_size, sam.prompt_encoder.image_embedding_size
    emb = torch.randn(1, sam.mask_decoder.transformer_dim, side, side)
    points = (torch.rand(4, 1, 2) * size, torch.ones(4, 1, dtype=torch.int))
    with torch.inference_mode():
        sparse, dense = sam.prompt_encoder(points=points, boxes=None, masks=None)
        pe = sam.prompt_encoder.get_dense_pe()
        masks, iou = MaskDecoder.predict_masks(sam.mask_decoder, emb, pe, sparse, dense)
        shared_masks, shared_iou = predict_masks_shared_image(sam.mask_decoder, emb, pe, sparse, dense)
        # a dense embedding per prompt that differs (a mask prompt) takes the library's path
        own = dense + torch.arange(4.0).view(4, 1, 1, 1)
        lib_own = MaskDecoder.predict_masks(sam.mask_decoder, emb, pe, sparse, own)
        shared_own = predict_masks_shared_image(sam.mask_decoder, emb, pe, sparse, own)
    assert shared_masks.shape == masks.shape == (4, 4, 4 * side, 4 * side)  # masks at 4× the embedding
    torch.testing.assert_close(shared_masks, masks, rtol=0, atol=1e-5)
    torch.testing.assert_close(shared_iou, iou, rtol=0, atol=1e-6)
    assert torch.equal(shared_own[0], lib_own[0])
