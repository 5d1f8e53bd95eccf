"""Attribution methods on the same regions, one registry (:data:`METHODS`), one file each.

    from explainer.methods import METHODS, Subject
    method = METHODS.get("gradcam")
    ranking = run_to_end(method.run(Subject(clf, view, labels, target), method.options()))

Registered: LiMA and SMDL (the engine's search), random (the control), occlusion, LIME and
KernelSHAP (captum, the label map as the feature mask), RISE, Grad-CAM and Grad-CAM++ (the
grad-cam package) and Integrated Gradients (captum). Every ranking is scored by the same code,
:mod:`explainer.scoring`.
"""

from explainer.methods.base import (
    METHODS,
    AttributionMethod,
    Cost,
    MethodOptions,
    MethodProgress,
    Ranking,
    Subject,
    order_of,
    rank_scores,
    region_means,
    register,
)

# Each module registers its methods on import, in the order the dashboard lists them.
from explainer.methods import lima, random_order, gradcam, integrated_gradients, rise, perturbation  # noqa: F401  isort: skip

__all__ = [
    "METHODS",
    "AttributionMethod",
    "Cost",
    "MethodOptions",
    "MethodProgress",
    "Ranking",
    "Subject",
    "order_of",
    "rank_scores",
    "region_means",
    "register",
]
