"""Does the partition matter? Agreement between explanations of one image on different regions.

LiMA ranks regions, so its answer could depend on how the image was split. Two runs of the same
model, view and target on two partitions (e.g. SLICO 36 and SEEDS 49) are compared pixel by
pixel: each pixel takes its region's rank, normalised to [0, 1] (0 = chosen first), and

- **rank correlation**: Spearman's ρ between the two pixel rank maps (1 = the same order of the
  image's parts, 0 = unrelated, −1 = reversed);
- **subset overlap**: the IoU of the two minimal subsets' pixel masks;
- **where they disagree**: pixels in one minimal subset only, and |Δ normalised rank| per pixel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import spearmanr

from explainer import render
from explainer.errors import LimaError
from explainer.explanation import Explanation

# Partitions offered for the comparison: (label, region method, options); about 36–49 regions
# each on a 224-px view, so every partition costs about as much as the default run.
PARTITIONS: tuple[tuple[str, str, dict], ...] = (
    ("SLICO, about 36 regions", "slico", {"region_size": 37}),
    ("SEEDS, about 49 regions", "seeds", {"num_superpixels": 50}),
    ("Grid 6 × 6", "grid", {"cells_per_side": 6}),
    ("Felzenszwalb", "felzenszwalb", {}),
)


class AgreementError(LimaError):
    """Explanations that cannot be compared (different images, models or targets)."""


def normalised_ranks(exp: Explanation) -> np.ndarray:
    """S×S float32 in [0, 1]: each pixel's region rank / (N − 1); 0 = the region chosen first."""
    ranks = render.rank_map(exp.labels, exp.order).astype(np.float32)
    return ranks / max(exp.n_regions - 1, 1)


def subset_mask(exp: Explanation) -> np.ndarray:
    """S×S bool: the pixels of the minimal subset."""
    return render.revealed_mask(exp.labels, exp.order, exp.minimal_subset_size)


@dataclass(frozen=True)
class PairAgreement:
    """How two explanations of the same image agree.

    Attributes:
        spearman: Spearman's ρ of the pixel rank maps, in [−1, 1].
        subset_iou: IoU of the minimal subsets' pixel masks, in [0, 1].
        only_first, only_second: S×S bool, pixels in one minimal subset only.
        rank_difference: S×S float32 in [0, 1], |normalised rank₁ − normalised rank₂|.
    """

    spearman: float
    subset_iou: float
    only_first: np.ndarray
    only_second: np.ndarray
    rank_difference: np.ndarray


def _check_comparable(a: Explanation, b: Explanation) -> None:
    if a.view.shape != b.view.shape or not np.array_equal(a.view, b.view):
        raise AgreementError("the two runs explain different images (or crops); compare runs of one view")
    if a.target != b.target:
        raise AgreementError(f"the two runs explain different classes ({a.target} and {b.target})")
    if a.model.get("weights_hash") != b.model.get("weights_hash"):
        raise AgreementError("the two runs come from different models")


def compare(a: Explanation, b: Explanation) -> PairAgreement:
    """Agreement of two runs of one view, model and target on (usually) different partitions."""
    _check_comparable(a, b)
    ra, rb = normalised_ranks(a), normalised_ranks(b)
    rho = spearmanr(ra.reshape(-1), rb.reshape(-1)).statistic
    ma, mb = subset_mask(a), subset_mask(b)
    union = int((ma | mb).sum())
    iou = float((ma & mb).sum() / union) if union else 1.0
    return PairAgreement(
        spearman=float(rho) if np.isfinite(rho) else 0.0,
        subset_iou=iou,
        only_first=ma & ~mb,
        only_second=mb & ~ma,
        rank_difference=np.abs(ra - rb),
    )


def disagreement_image(view: np.ndarray, pair: PairAgreement, scale: int = 2) -> np.ndarray:
    """The view with the pixels in the first run's minimal subset only tinted blue, the second's
    only tinted orange, and the pixels both keep left as they are ((scale·S)²×3 uint8)."""
    img = view.astype(np.float32)
    for mask, colour in ((pair.only_first, (0, 114, 178)), (pair.only_second, (213, 94, 0))):
        img[mask] = 0.35 * img[mask] + 0.65 * np.asarray(colour, np.float32)
    return render.upscale(np.clip(img, 0, 255).round().astype(np.uint8), scale)
