"""LiMA Lens engine: explain why an image classifier got an image wrong.

    from explainer import load_classifier, propose_regions, explain
    clf = load_classifier("efficientnet_lite0")
    view = clf.view(pil_image)                               # S x S x 3 uint8 RGB
    labels = propose_regions(view, "slico", region_size=30)  # S x S int32
    exp = explain(clf, view, labels, target=281)
    exp.order, exp.insertion, exp.insertion_auc, exp.minimal_subset

The engine never imports streamlit; the dashboard (app.py, pages/) only calls it.
"""

from explainer.config import SearchOptions
from explainer.errors import LimaError
from explainer.explanation import Explanation
from explainer.models import Classifier, load_classifier
from explainer.objective import Weights
from explainer.regions import REGION_METHODS, RegionSpec, propose_regions
from explainer.search import explain, iter_search
from explainer.version import __version__

__all__ = [
    "REGION_METHODS",
    "Classifier",
    "Explanation",
    "LimaError",
    "RegionSpec",
    "SearchOptions",
    "Weights",
    "__version__",
    "explain",
    "iter_search",
    "load_classifier",
    "propose_regions",
]
