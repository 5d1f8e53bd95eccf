"""SAM's automatic masks in timed stages, with the image embedding cached.

segment-anything's ``SamAutomaticMaskGenerator`` runs three stages on one image:

1. the **image encoder** (a ViT on a 1024-pixel input: the same cost for every prompt grid);
2. the **prompt decoder**, once per batch of ``points_per_batch`` prompt points (there are
   ``points_per_side²`` of them); on a CPU this is the larger part at 32×32 points;
3. the **post-processing**: thresholds, stability scores, box NMS, masks from run lengths.

:class:`StagedMaskGenerator` is that generator with each stage timed (:class:`SamTimings`)
and the encoder's output taken from an :class:`EmbeddingCache` when the same image was
encoded before with the same weights (the key: image digest + weights fingerprint + the
encoder's input size). Its masks are the generator's own, by construction (only the
encoder call is replaced by a cache lookup; a test compares the two on random weights).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from explainer import sam_runtime, settings

if TYPE_CHECKING:
    import torch

MEMORY_ITEMS = 4  # image embeddings kept in memory (4 MiB each: 256×64×64 float32)


@dataclass
class SamTimings:
    """Seconds per stage of one automatic-mask run (see the module docstring)."""

    encoder_s: float = 0.0
    decoder_s: float = 0.0
    post_s: float = 0.0
    prompts: int = 0
    batches: int = 0
    embedding_cached: bool = False
    encoder: str = ""  # what ran the image encoder ("" when the embedding came from the cache)

    @property
    def total_s(self) -> float:
        return self.encoder_s + self.decoder_s + self.post_s

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "total_s": self.total_s}


def weights_fingerprint(sam: torch.nn.Module) -> str:
    """SHA-256 of the SAM weights, computed once per loaded model (kept on the module)."""
    cached = getattr(sam, "_lima_fingerprint", None)
    if cached:
        return cached
    from explainer.models.classifier import weights_digest

    digest = weights_digest(sam)
    object.__setattr__(sam, "_lima_fingerprint", digest)
    return digest


class EmbeddingCache:
    """SAM image embeddings by key: a small in-memory LRU and ``<folder>/<key>.npz`` files.

    Args:
        folder: where embeddings are stored (default ``<cache>/sam-embeddings``); None = memory only.
    """

    def __init__(self, folder: str | Path | None = "default", memory_items: int = MEMORY_ITEMS):
        if folder == "default":
            folder = settings.current().cache_dir / "sam-embeddings"
        self.folder = Path(folder) if folder is not None else None
        self.memory: OrderedDict[str, tuple[np.ndarray, tuple, tuple]] = OrderedDict()
        self.memory_items = memory_items
        self._lock = threading.Lock()

    @staticmethod
    def key(image: np.ndarray, fingerprint: str, input_size: int) -> str:
        """Image bytes and shape, the weights and the encoder's input size."""
        h = hashlib.sha256(f"{image.shape}|{fingerprint}|{input_size}".encode())
        h.update(np.ascontiguousarray(image).tobytes())
        return h.hexdigest()[:32]

    def get(self, key: str) -> tuple[np.ndarray, tuple, tuple] | None:
        with self._lock:
            if key in self.memory:
                self.memory.move_to_end(key)
                return self.memory[key]
        if self.folder is None:
            return None
        path = self.folder / f"{key}.npz"
        try:
            with np.load(path) as f:
                entry = (f["features"], tuple(int(v) for v in f["original"]), tuple(int(v) for v in f["input"]))
        except (OSError, KeyError, ValueError):
            return None
        self._remember(key, entry)
        return entry

    def put(self, key: str, features: np.ndarray, original: tuple, input_size: tuple) -> None:
        entry = (features, tuple(original), tuple(input_size))
        self._remember(key, entry)
        if self.folder is None:
            return
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            tmp = self.folder / f".{key}.{threading.get_ident()}.npz"
            np.savez(tmp, features=features, original=np.array(original), input=np.array(input_size))
            tmp.replace(self.folder / f"{key}.npz")  # atomic
        except OSError:  # a full or read-only disk only costs the next run its encoder
            pass

    def _remember(self, key: str, entry: tuple[np.ndarray, tuple, tuple]) -> None:
        with self._lock:
            self.memory[key] = entry
            self.memory.move_to_end(key)
            while len(self.memory) > self.memory_items:
                self.memory.popitem(last=False)


def predict_masks_shared_image(
    decoder: Any, image_embeddings: Any, image_pe: Any, sparse_prompt_embeddings: Any, dense_prompt_embeddings: Any
) -> tuple[Any, Any]:
    """SAM's ``MaskDecoder.predict_masks`` without copying the image side once per prompt.

    The library repeats the 256×64×64 image embedding and its positional encoding for every
    prompt before the two-way transformer; the transformer's first block only reads them (its
    projections of the image tokens are the same for every prompt) and broadcasts correctly
    when they have batch 1. So they are passed once: the first block's image-side projections
    run once instead of once per prompt, and 2 × prompts × 4 MiB of copies disappear. The
    output is the library's (a test compares masks and IoU predictions on random weights).

    Args:
        decoder: segment-anything's ``MaskDecoder``.
        image_embeddings: 1×C×h×w; image_pe: 1×C×h×w.
        sparse_prompt_embeddings: B×T×C; dense_prompt_embeddings: B×C×h×w.

    Returns:
        masks B×M×4h×4w (logits), IoU predictions B×M (M = the decoder's mask tokens).
    """
    import torch

    n = sparse_prompt_embeddings.shape[0]
    same_dense = dense_prompt_embeddings.shape[0] == 1 or dense_prompt_embeddings.stride(0) == 0
    if image_embeddings.shape[0] != 1 or not same_dense:  # a mask prompt per point: the library's way
        return type(decoder).predict_masks(
            decoder, image_embeddings, image_pe, sparse_prompt_embeddings, dense_prompt_embeddings
        )
    output_tokens = torch.cat([decoder.iou_token.weight, decoder.mask_tokens.weight], dim=0)
    tokens = torch.cat((output_tokens.unsqueeze(0).expand(n, -1, -1), sparse_prompt_embeddings), dim=1)
    src = image_embeddings + dense_prompt_embeddings[:1]  # every row of an expanded dense embedding is the same
    _, c, h, w = src.shape
    hs, keys = decoder.transformer(src, image_pe, tokens)  # keys: n×hw×C after the first block
    keys = keys.expand(n, -1, -1)  # (already n rows unless the transformer had no layers)
    mask_tokens_out = hs[:, 1 : 1 + decoder.num_mask_tokens, :]
    upscaled = decoder.output_upscaling(keys.transpose(1, 2).reshape(n, c, h, w))
    hyper_in = torch.stack(
        [mlp(mask_tokens_out[:, i, :]) for i, mlp in enumerate(decoder.output_hypernetworks_mlps)], dim=1
    )
    b, c2, h2, w2 = upscaled.shape
    masks = (hyper_in @ upscaled.view(b, c2, h2 * w2)).view(b, -1, h2, w2)
    return masks, decoder.iou_prediction_head(hs[:, 0, :])


def share_image_side(sam: Any) -> None:
    """Make ``sam``'s mask decoder use :func:`predict_masks_shared_image` (idempotent)."""
    import types

    decoder = sam.mask_decoder
    if not getattr(decoder, "_lima_shared_image", False):
        decoder.predict_masks = types.MethodType(predict_masks_shared_image, decoder)
        object.__setattr__(decoder, "_lima_shared_image", True)


def staged_generator(sam: Any, cache: EmbeddingCache | None = None, **kwargs: Any) -> Any:
    """A :class:`StagedMaskGenerator` (built lazily: segment_anything is imported here)."""
    from segment_anything import SamAutomaticMaskGenerator

    class StagedMaskGenerator(SamAutomaticMaskGenerator):
        """segment-anything's automatic generator, its stages timed, its embedding cached."""

        def __init__(self, model: Any, embedding_cache: EmbeddingCache | None, **options: Any):
            super().__init__(model, **options)
            share_image_side(model)
            self.cache = embedding_cache
            self.timings = SamTimings()

        def generate(self, image: np.ndarray) -> list[dict[str, Any]]:
            self.timings = SamTimings()
            start = time.perf_counter()
            records = super().generate(image)
            total = time.perf_counter() - start
            self.timings.post_s = total - self.timings.encoder_s - self.timings.decoder_s
            return records

        def _encode(self, image: np.ndarray) -> None:
            """predictor.set_image, or its result from the cache."""
            import torch

            predictor = self.predictor
            size = predictor.model.image_encoder.img_size
            key = None
            if self.cache is not None:
                key = EmbeddingCache.key(image, weights_fingerprint(predictor.model), size)
                hit = self.cache.get(key)
                if hit is not None:
                    features, original, input_size = hit
                    predictor.reset_image()
                    predictor.features = torch.from_numpy(features).to(predictor.device)
                    predictor.original_size, predictor.input_size = original, input_size
                    predictor.is_image_set = True
                    self.timings.embedding_cached = True
                    return
            if sam_runtime.wants_onnx(predictor.device):
                self._encode_onnx(image)
            else:
                predictor.set_image(image)
            self.timings.encoder = sam_runtime.encoder_note(weights_fingerprint(predictor.model))
            if self.cache is not None and key is not None:
                self.cache.put(key, predictor.features.cpu().numpy(), predictor.original_size, predictor.input_size)

        def _encode_onnx(self, image: np.ndarray) -> None:
            """predictor.set_image with the encoder call on ONNX Runtime (the same steps:
            resize the long side to 1024, normalise and pad, encode)."""
            import torch

            predictor = self.predictor
            resized = predictor.transform.apply_image(image)  # SAM's image format is RGB, as ours
            transformed = torch.as_tensor(resized).permute(2, 0, 1).contiguous()[None]
            features = sam_runtime.encode(
                predictor.model, predictor.model.preprocess(transformed), weights_fingerprint(predictor.model)
            )
            predictor.reset_image()
            predictor.original_size, predictor.input_size = image.shape[:2], tuple(transformed.shape[-2:])
            predictor.features = features.to(predictor.device)
            predictor.is_image_set = True

        def _process_crop(self, image, crop_box, crop_layer_idx, orig_size):
            # The parent's stages, each timed; only the encoder call goes through the cache.
            import torch
            from segment_anything.utils.amg import MaskData, batch_iterator, uncrop_boxes_xyxy, uncrop_points
            from torchvision.ops.boxes import batched_nms

            x0, y0, x1, y1 = crop_box
            cropped = image[y0:y1, x0:x1, :]
            size = cropped.shape[:2]
            start = time.perf_counter()
            self._encode(cropped)
            self.timings.encoder_s += time.perf_counter() - start
            points_for_image = self.point_grids[crop_layer_idx] * np.array(size)[None, ::-1]
            data = MaskData()
            start = time.perf_counter()
            for (points,) in batch_iterator(self.points_per_batch, points_for_image):
                data.cat(self._process_batch(points, size, crop_box, orig_size))
                self.timings.batches += 1
                self.timings.prompts += len(points)
            self.timings.decoder_s += time.perf_counter() - start
            self.predictor.reset_image()
            keep = batched_nms(
                data["boxes"].float(), data["iou_preds"], torch.zeros(len(data["boxes"])), self.box_nms_thresh
            )
            data.filter(keep)
            data["boxes"] = uncrop_boxes_xyxy(data["boxes"], crop_box)
            data["points"] = uncrop_points(data["points"], crop_box)
            data["crop_boxes"] = torch.tensor([crop_box for _ in range(len(data["rles"]))])
            return data

    return StagedMaskGenerator(sam, cache, **kwargs)


def tiny_sam(seed: int = 0, img_size: int = 256, dim: int = 64, depth: int = 2, heads: int = 2, pdim: int = 64) -> Any:
    """A ~0.4 M-parameter SAM with random weights: segment-anything's own classes (ViT image
    encoder with windowed and global attention, prompt encoder, two-way mask decoder) at toy
    sizes, so the whole pipeline runs in a fraction of a second (for tests and smoke runs).

    Args:
        seed: torch seed for the random weights (the same seed gives the same weights).
        img_size: the encoder's square input in pixels (ViT-B/L/H: 1024); a multiple of 16.
        dim, depth, heads: the encoder's width, blocks and attention heads (the last block global).
        pdim: the prompt/mask decoder's width (ViT-B/L/H: 256).
    """
    from functools import partial

    import torch
    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    side = img_size // 16  # the embedding's side: one token per 16-pixel patch
    with torch.random.fork_rng():  # the caller's random state is left as it was
        torch.manual_seed(seed)
        return Sam(
            image_encoder=ImageEncoderViT(
                depth=depth,
                embed_dim=dim,
                img_size=img_size,
                mlp_ratio=4,
                norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
                num_heads=heads,
                patch_size=16,
                qkv_bias=True,
                use_rel_pos=True,
                global_attn_indexes=(depth - 1,),
                window_size=7,
                out_chans=pdim,
            ),
            prompt_encoder=PromptEncoder(
                embed_dim=pdim,
                image_embedding_size=(side, side),
                input_image_size=(img_size, img_size),
                mask_in_chans=16,
            ),
            mask_decoder=MaskDecoder(
                num_multimask_outputs=3,
                transformer=TwoWayTransformer(depth=2, embedding_dim=pdim, mlp_dim=256, num_heads=2),
                transformer_dim=pdim,
                iou_head_depth=3,
                iou_head_hidden_dim=64,
            ),
        ).eval()


__all__ = [
    "EmbeddingCache",
    "SamTimings",
    "predict_masks_shared_image",
    "share_image_side",
    "staged_generator",
    "tiny_sam",
    "weights_fingerprint",
]
