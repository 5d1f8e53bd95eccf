"""LiMA Lens engine: explain why an image classifier got an image wrong.

    from explainer import load_classifier, propose_regions, explain
    clf = load_classifier("efficientnet_lite0")
    view = clf.view(pil_image)                               # S x S x 3 uint8 RGB
    labels = propose_regions(view, "slico", region_size=30)  # S x S int32
    exp = explain(clf, view, labels, target=281)
    exp.order, exp.insertion, exp.insertion_auc, exp.minimal_subset

The engine never imports streamlit; the dashboard (app.py, pages/) only calls it.
"""

__version__ = "0.1.0"

from explainer.errors import LimaError  # noqa: E402
from explainer.explanation import Explanation  # noqa: E402
from explainer.models import Classifier, load_classifier  # noqa: E402
from explainer.regions import REGION_METHODS, propose_regions  # noqa: E402
from explainer.search import explain, iter_search  # noqa: E402

__all__ = ["load_classifier", "propose_regions", "explain", "iter_search", "Explanation", "Classifier",
           "REGION_METHODS", "LimaError", "__version__"]
