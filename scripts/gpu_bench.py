"""The GPU path, measured (issue #10): run by scripts/gpu_check.sh on a CUDA machine.

1. ResNet-50 (random weights) at 49 and 100 SLICO regions: seconds per explanation in fp32 and
   bf16 autocast (scores in fp32), the batch size found from free memory, and whether the bf16
   region order equals the fp32 one (else the near-tie check of explainer.parity).
2. Plain throughput at that batch size: eager vs torch.compile vs CUDA graphs
   (torch.compile mode="reduce-overhead"), fixed-shape batches.
3. SAM ViT-B and ViT-H (random weights) automatic masks at 32×32 points: seconds per stage.

Writes ``gpu_bench.json`` into the output folder and prints a summary.

    python scripts/gpu_bench.py OUT_DIR [--quick] [--smoke]

``--smoke`` runs every step on the CPU at toy sizes (MobileNetV3-Small, 9 and 16 regions, SAM
ViT-B only at 4×4 points, no compile): it checks that the script works where no GPU is lent, so
a GPU session's few minutes are not lost to a broken script. Its numbers mean nothing.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from explainer import load_classifier  # noqa: E402
from explainer.parity import compare  # noqa: E402
from explainer.regions import slico_for_count  # noqa: E402
from explainer.search import explain  # noqa: E402


def sync() -> None:
    """Wait for the GPU's queued work (timings must include it); nothing to wait for on a CPU."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed(fn, repeat: int = 1):
    sync()
    start = time.perf_counter()
    for _ in range(repeat):
        out = fn()
    sync()
    return out, (time.perf_counter() - start) / repeat


def throughput(module, x, seconds: float = 2.0) -> float:
    with torch.inference_mode():
        module(x)
        module(x)
        sync()
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            module(x)
            n += x.shape[0]
        sync()
    return n / (time.perf_counter() - start)


def main() -> int:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "gpu_out")
    smoke = "--smoke" in sys.argv
    quick = "--quick" in sys.argv or smoke
    out.mkdir(parents=True, exist_ok=True)
    if not torch.cuda.is_available() and not smoke:
        print("no CUDA: nothing to measure (--smoke checks the script on the CPU)")
        return 1
    device = "cpu" if smoke else "cuda"
    model = "torchvision:mobilenet_v3_small:random" if smoke else "torchvision:resnet50:random"
    name = model.split(":")[1]
    report: dict = {
        "device": "cpu (smoke run)" if smoke else torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "model": model,
    }
    import skimage.data

    fp32 = load_classifier(model, device=device, backend="torch")
    # bf16 autocast runs on CUDA only; the smoke run takes the same path in fp32.
    bf16 = load_classifier(model, device=device, backend="torch", precision="fp32" if smoke else "bf16")
    report["batch_size_from_free_memory"] = fp32.batch_size
    view = fp32.view(skimage.data.chelsea())
    target = int(fp32.predict(view[None])[0].argmax())  # random weights: explain the top class
    rows = []
    for n in (9, 16) if smoke else (49, 100):
        labels, _ = slico_for_count(view, n)
        explain(fp32, view, labels, target)  # warm-up (cuDNN autotuning, allocator)
        a, ta = timed(lambda labels=labels: explain(fp32, view, labels, target))
        b, tb = timed(lambda labels=labels: explain(bf16, view, labels, target))
        parity = compare(a, b, fp32, bf16, names=("fp32", "bf16"))
        rows.append(
            {
                "regions": a.n_regions,
                "fp32_s": ta,
                "bf16_s": tb,
                "forward_passes": a.forward_passes,
                "bf16_same_order": parity.same_order,
                "bf16_note": parity.note,
            }
        )
        print(f"{name} N={a.n_regions}: fp32 {ta:.2f} s, bf16 {tb:.2f} s; bf16 vs fp32: {parity.note}", flush=True)
    report["explanations"] = rows

    b = fp32.batch_size
    x = fp32.normalise(torch.rand(b, 3, 224, 224, device=device))
    modes = {"eager": fp32.module}
    if not quick:
        try:
            modes["torch.compile"] = torch.compile(fp32.module, mode="max-autotune-no-cudagraphs")
            modes["cuda graphs (reduce-overhead)"] = torch.compile(fp32.module, mode="reduce-overhead")
        except Exception as exc:
            report["compile_error"] = str(exc)[:300]
    rates = {}
    for name, module in modes.items():
        try:
            start = time.perf_counter()
            rates[name] = throughput(module, x)
            rates[name + " (first call incl. compile, s)"] = time.perf_counter() - start
        except Exception as exc:
            rates[name] = f"failed: {str(exc)[:200]}"
        print(f"{model.split(':')[1]} batch {b}, {name}: {rates[name]}", flush=True)
    report["throughput_images_per_s"] = rates

    from segment_anything import sam_model_registry

    from explainer.sam import SamOptions, generate_masks
    from explainer.sam_masks import EmbeddingCache, SamTimings

    sam_rows = []
    image = np.array(skimage.data.chelsea())
    side = 4 if smoke else 32
    for sam_name in ("vit_b",) if smoke else ("vit_b", "vit_h"):
        sam = sam_model_registry[sam_name](checkpoint=None).eval().to(device)
        for batch in (16,) if smoke else (64, 256):
            options = SamOptions(points_per_side=side, points_per_batch=batch)
            t = SamTimings()
            generate_masks(sam, image, options, cache=EmbeddingCache(None), timings=t)
            t = SamTimings()  # the second run: kernels warm
            _, total = timed(
                lambda sam=sam, options=options, t=t: generate_masks(
                    sam, image, options, cache=EmbeddingCache(None), timings=t
                )
            )
            sam_rows.append({"model": sam_name, "points_per_batch": batch, "wall_s": total, **t.to_dict()})
            print(
                f"SAM {sam_name} {side}x{side}, {batch} a batch: {total:.2f} s (encoder {t.encoder_s:.2f}, decoder "
                f"{t.decoder_s:.2f}, post {t.post_s:.2f})",
                flush=True,
            )
        del sam
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    report["sam"] = sam_rows
    (out / "gpu_bench.json").write_text(json.dumps(report, indent=1, default=str))
    print(f"written: {out / 'gpu_bench.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
