"""Labelled image sets: items and sets (:mod:`.items`), class labels (:mod:`.labels`), the data
root sandbox (:mod:`.sandbox`), loaders for folders, lists, CSVs and uploads (:mod:`.loaders`),
and the built-in demo (:mod:`.demo`).
"""

from explainer.data.demo import DEMO_MANIFEST, demo_set, load_demo_manifest
from explainer.data.items import ImageItem, ImageSet, item_signature
from explainer.data.labels import check_labels
from explainer.data.loaders import (
    IMAGE_EXTENSIONS,
    csv_set,
    folder_set,
    label_list_set,
    open_image_set,
    upload_item,
    uploads_set,
)
from explainer.data.sandbox import DATA_ROOT_ENV, default_data_root, resolve_under_root

__all__ = [
    "DATA_ROOT_ENV",
    "DEMO_MANIFEST",
    "IMAGE_EXTENSIONS",
    "ImageItem",
    "ImageSet",
    "check_labels",
    "csv_set",
    "default_data_root",
    "demo_set",
    "folder_set",
    "item_signature",
    "label_list_set",
    "load_demo_manifest",
    "open_image_set",
    "resolve_under_root",
    "upload_item",
    "uploads_set",
]
