"""Which images a study shows: N mistakes and M correctly classified images (the controls), filtered
by class, confusion or confidence, drawn with the study's seed; or an explicit list. Practice and
attention-check images come from the rest of the set, so they never repeat a main image.

The model's answer on every image comes from a scan of the set (:mod:`explainer.scan`); the pool is
sorted by item key before any draw, so the file system's order never changes a study.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from explainer.data import ImageItem, ImageSet
from explainer.errors import StudyError
from explainer.scan import ScanResult, ScanRow
from explainer.study.options import StudyOptions

ROLES = ("main", "practice", "check")


@dataclass(frozen=True)
class SelectedImage:
    """One image of the study and the model's answer on it.

    Attributes:
        item: the image; row: the scan's row (true class, prediction, top-5).
        role: "main", "practice" or "check".
        index: position within its role and correctness group (the design's column).
    """

    item: ImageItem
    row: ScanRow
    role: str
    index: int

    @property
    def correct(self) -> bool:
        return self.row.correct


def seeded_rng(seed: int, *parts: object) -> np.random.Generator:
    """A generator for one named random choice: the same seed and parts give the same draws,
    whatever else the study draws and in whichever order (so another budget changes nothing
    that does not depend on it)."""
    digest = hashlib.sha256(repr((int(seed), *parts)).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def _matches(row: ScanRow, options: StudyOptions, classes: set[int], confusions: set[tuple[int, int]]) -> bool:
    if classes and row.label not in classes and row.pred not in classes:
        return False
    if confusions and (row.correct or (row.label, row.pred) not in confusions):
        return False
    return options.min_confidence <= row.p_pred <= options.max_confidence


def _draw(rows: list[ScanRow], count: int, seed: int, what: str) -> list[ScanRow]:
    if count > len(rows):
        raise StudyError(f"the study asks for {count} {what} but the set has only {len(rows)} that match")
    picked = seeded_rng(seed, "select", what).permutation(len(rows))[:count]
    return [rows[i] for i in sorted(picked)]  # in key order: the design's columns never depend on the draw order


def select_images(image_set: ImageSet, scan: ScanResult, options: StudyOptions) -> list[SelectedImage]:
    """The study's images: main ones (mistakes first, then correct ones), then practice and
    attention-check images from the rest of the set (checks: the most confident correct images).

    Raises:
        StudyError: fewer matching images than asked for, or a listed image that is not in the set.
    """
    by_key = {item.key: item for item in image_set.items}
    rows = sorted((r for r in scan.readable if r.key in by_key), key=lambda r: r.key)
    listed = options.image_list()
    if listed:
        keys = {r.key for r in rows}
        by_name: dict[str, list[str]] = {}
        for r in rows:
            by_name.setdefault(r.name, []).append(r.key)
        for name in listed:  # a file name that two images share (folders of classes) is not guessed
            if name not in keys and len(by_name.get(name, [])) > 1:
                sharing = by_name[name]
                raise StudyError(
                    f"{name} names {len(sharing)} images ({', '.join(sharing[:3])}): list them by key instead"
                )
        index = {r.key: r for r in rows} | {r.name: r for r in rows if r.name not in keys}
        missing = [name for name in listed if name not in index]
        if missing:
            raise StudyError(f"not in the image set (or unreadable): {', '.join(missing[:5])}")
        chosen = list(dict.fromkeys(index[name] for name in listed))
        main = [r for r in chosen if not r.correct] + [r for r in chosen if r.correct]
    else:
        classes, confusions = options.class_filter(), options.confusion_filter()
        pool = [r for r in rows if _matches(r, options, classes, confusions)]
        main = _draw([r for r in pool if not r.correct], options.mistakes, options.seed, "mistakes")
        main += _draw([r for r in pool if r.correct], options.correct, options.seed, "correct images")
    used = {r.key for r in main}
    rest = [r for r in rows if r.key not in used]
    checks = sorted((r for r in rest if r.correct), key=lambda r: (-r.p_pred, r.key))[: options.checks]
    if len(checks) < options.checks:
        raise StudyError(f"{options.checks} attention checks need as many correct images beyond the study's")
    used |= {r.key for r in checks}
    rest = [r for r in rest if r.key not in used]
    if options.practice > len(rest):
        raise StudyError(f"{options.practice} practice trials need as many images beyond the study's")
    practice = _draw(rest, options.practice, options.seed, "practice images")
    out: list[SelectedImage] = []
    groups = {True: 0, False: 0}
    for r in main:
        out.append(SelectedImage(by_key[r.key], r, "main", groups[r.correct]))
        groups[r.correct] += 1
    out += [SelectedImage(by_key[r.key], r, "practice", i) for i, r in enumerate(practice)]
    out += [SelectedImage(by_key[r.key], r, "check", i) for i, r in enumerate(checks)]
    return out


__all__ = ["ROLES", "SelectedImage", "seeded_rng", "select_images"]
