"""Exceptions the engine raises for bad input.

Every error that a user can cause (a bad file, a wrong label, a missing checkpoint, an option out
of range) is a subclass of :class:`LimaError` with a message meant to be shown as is, in the UI or
the CLI. Programming errors keep their ordinary Python types. (A long computation is cancelled by
no longer iterating its generator, so there is no "cancelled" error.)
"""

from __future__ import annotations


class LimaError(Exception):
    """Base class: a problem with the user's input or set-up, with a readable message."""


class ImageError(LimaError, ValueError):
    """An image cannot be read, is too large or too small, or has an unusable format."""


class LabelError(LimaError, ValueError):
    """A class label is out of range or not among the model's classes."""


class ModelError(LimaError, RuntimeError):
    """A classifier cannot be loaded, or its outputs do not match its class list."""


class RegionError(LimaError, ValueError):
    """A region method or label map is invalid."""


class SamUnavailable(LimaError, RuntimeError):
    """SAM cannot run: no checkpoint, a wrong checkpoint, or segment-anything missing."""


class DataError(LimaError, ValueError):
    """An image set cannot be read, is empty, or points outside the data root."""


class SearchError(LimaError, ValueError):
    """Search settings are invalid: the search kind, pending samples, weights, fill, tolerance."""


class MethodError(LimaError, ValueError):
    """An attribution method cannot run: unknown name, bad options, or not available for this model."""


class StoreError(LimaError, OSError):
    """A saved explanation is missing, incomplete or corrupt."""


class UsageError(LimaError, ValueError):
    """A command-line argument is invalid (a format, an output folder)."""


class StudyError(LimaError, ValueError):
    """A study cannot be built as configured: too few images, a design that cannot balance, bad settings."""


class BatchError(LimaError, ValueError):
    """A batch cannot run: a bad selection (class, confusion pair), no scan, or Ray missing or unreachable."""
