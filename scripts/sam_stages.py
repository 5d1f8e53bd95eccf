"""Time SAM's stages on this machine with random weights (timing does not depend on them).

For each grid (default: the CPU preset and SAM's 32×32), one automatic-mask run on a photo:
the image encoder, the prompt decoder in batches, the post-processing; then the same run again
with the embedding cached. ``--encoders torch,auto`` runs the encoder both ways (auto = ONNX
Runtime on a CPU; its one-time export is made first, on another photo, and timed apart).
Prints one line per run and the load average; ``--json`` writes them.

    python scripts/sam_stages.py [--model vit_b] [--grids 8,32] [--batch 64] [--encoders torch,auto] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from explainer.sam import SamOptions, generate_masks  # noqa: E402
from explainer.sam_masks import EmbeddingCache, SamTimings  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="vit_b", choices=["vit_b", "vit_l", "vit_h"])
    p.add_argument("--grids", default="8,32")
    p.add_argument("--encoders", default="auto", help="torch, auto (ONNX Runtime on a CPU) or both: torch,auto")
    p.add_argument("--batch", type=int, default=64, help="points per decoder batch")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--json")
    args = p.parse_args(argv)
    import skimage.data
    from segment_anything import sam_model_registry

    torch.manual_seed(0)
    sam = sam_model_registry[args.model](checkpoint=None).eval().to(args.device)
    image = np.array(skimage.data.chelsea())  # 300×451, resized to 1024 by SAM
    rows = []
    from explainer import sam_runtime

    for encoder in args.encoders.split(","):
        os.environ[sam_runtime.ENV_VAR] = encoder
        if sam_runtime.wants_onnx(torch.device(args.device)):  # the one-time export, on another photo
            t = SamTimings()
            other = np.array(skimage.data.astronaut())
            generate_masks(sam, other, SamOptions(points_per_side=4), cache=EmbeddingCache(None), timings=t)
            rows.append({"model": args.model, "run": "export", "encoder": t.encoder, "encoder_s": t.encoder_s})
            print(f"{args.model} one-time export + check: {t.encoder_s:.1f} s ({t.encoder})", flush=True)
        for grid in (int(g) for g in args.grids.split(",")):
            options = SamOptions(points_per_side=grid, points_per_batch=args.batch)
            cache = EmbeddingCache(None)
            for attempt in ("cold", "cached"):
                t = SamTimings()
                masks = generate_masks(sam, image, options, cache=cache, timings=t)
                if args.device.startswith("cuda"):
                    torch.cuda.synchronize()
                row = {"model": args.model, "grid": grid, "run": attempt, "masks": len(masks), **t.to_dict()}
                rows.append(row)
                print(
                    f"{args.model} {grid}x{grid} ({attempt}, encoder: {t.encoder or 'cached'}): "
                    f"encoder {t.encoder_s:.1f} s, decoder {t.decoder_s:.1f} s "
                    f"in {t.batches} batches ({t.decoder_s / max(t.batches, 1):.2f} s each), post {t.post_s:.1f} s, "
                    f"total {t.total_s:.1f} s, {len(masks)} masks",
                    flush=True,
                )
    load = os.getloadavg()
    print(f"device {args.device}, {torch.get_num_threads()} threads, load average {load[0]:.1f} {load[1]:.1f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "load_average": load}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
