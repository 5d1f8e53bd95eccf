"""The study builder: stimulus sets for human studies of explanations.

One concept per module: :mod:`~explainer.study.options` (the configuration), :mod:`~.selection`
(which images), :mod:`~.conditions` (what each condition reveals; the area-matched random
control), :mod:`~.design` (lists, Latin square, order, answer positions), :mod:`~.rendering`
(stimulus images, contact sheet), :mod:`~.bundle` (the files), :mod:`~.build` (putting it together).
"""

from explainer.study.build import StudyBundle, StudyProgress, build_study, iter_build_study
from explainer.study.options import StudyFile, StudyOptions, dump_toml, load_toml, parse_study

__all__ = [
    "StudyBundle",
    "StudyFile",
    "StudyOptions",
    "StudyProgress",
    "build_study",
    "dump_toml",
    "iter_build_study",
    "load_toml",
    "parse_study",
]
