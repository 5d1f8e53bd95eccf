"""The configuration of a study, defined once: :class:`StudyOptions` drives the ``study`` command's
flags, the Study page's settings, the ``--config study.toml`` file and the ``study.json`` written
into every bundle.

Lists of values (conditions, budgets, classes) are comma-separated text, so one field is one
flag, one widget and one TOML key. :func:`load_toml` reads a study file (the same names as the
flags, plus ``set``, ``regions`` and a ``[param]`` table); :func:`dump_toml` writes the resolved
configuration back in that form, so a bundle's ``study.toml`` rebuilds the same bundle.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from explainer.errors import StudyError
from explainer.options import Options, option

TASKS = ("agreement", "distinction", "guess")
DESIGNS = ("within", "between")
GUESS_NEEDS_MISTAKES = (
    "the guess task asks for the model's wrong label, so its trials are mistakes: a correct image's answer "
    "would be the true label shown beside it"
)
LOOKS = ("black", "grey", "blur", "dimmed")  # each is also a search fill (explainer.compose.FILLS)
TARGETS = ("predicted", "true", "topk")
NO_EXPLANATION = "none"
AREA_MATCHED_RANDOM = "random"
MINIMAL = "minimal"


@dataclass(frozen=True)
class StudyOptions(Options):
    """Which images, which conditions, how they look, and how they are counterbalanced."""

    error = StudyError
    what = "study option"

    mistakes: int = option(12, low=0, high=10_000, order=0, help="Misclassified images in the study.")
    correct: int = option(4, low=0, high=10_000, order=0, help="Correctly classified images (controls, as in HIVE).")
    classes: str = option(
        "",
        order=1,
        help="Only images whose true or predicted class id is among these (comma-separated ids; empty = any).",
    )
    confusion: str = option(
        "", order=1, help="Only mistakes with these TRUE>PREDICTED class ids (comma-separated, e.g. 657>812)."
    )
    min_confidence: float = option(0.0, low=0.0, high=1.0, step=0.05, order=1, help="Lowest p(predicted).")
    max_confidence: float = option(1.0, low=0.0, high=1.0, step=0.05, order=1, help="Highest p(predicted).")
    images: str = option(
        "",
        order=1,
        help="An explicit list of images (keys or file names, comma-separated); replaces the sampling.",
    )
    conditions: str = option(
        "lima,smdl,random,none",
        order=2,
        help="Comma-separated: methods of the comparison registry, 'random' (area-matched) and 'none'.",
    )
    budgets: str = option(
        "0.1,0.25,0.5",
        order=2,
        help="Revealed fractions of the area (comma-separated), or 'minimal' (the minimal subset).",
    )
    target: str = option(
        "predicted",
        choices=TARGETS,
        order=2,
        help="The class explained: predicted, true, or topk (the distinction task's candidates).",
    )
    k: int = option(
        4,
        low=2,
        high=10,
        order=2,
        label="options per trial",
        help="Options per trial in the distinction and guess tasks.",
    )
    fill: str = option(
        LOOKS[0],
        choices=LOOKS,
        order=3,
        label="hidden pixels",
        help="How hidden pixels look: black, grey, blur or dimmed.",
    )
    outline: bool = option(False, order=3, help="Outline the revealed regions (yellow).")
    size: int = option(224, low=16, high=1024, unit="px", order=3, help="Side of every stimulus in pixels.")
    task: str = option(TASKS[0], choices=TASKS, order=4, help="agreement, distinction or guess (guess the label).")
    design: str = option(
        DESIGNS[0], choices=DESIGNS, order=4, help="within: Latin-square lists; between: one condition per list."
    )
    lists: int = option(4, low=1, high=100, order=4, help="Lists (participant groups); a multiple of the conditions.")
    practice: int = option(0, low=0, high=20, order=4, help="Practice trials at the start of every list.")
    checks: int = option(
        0, low=0, high=20, order=4, help="Attention-check trials (a confident correct image, no mask)."
    )
    seed: int = option(0, low=0, high=2**31 - 1, order=5, help="Seed of every random choice (same seed, same bundle).")

    # -- parsed views of the text fields ---------------------------------------------------------------
    def condition_names(self) -> list[str]:
        from explainer.methods import METHODS

        names = list(dict.fromkeys(c.strip().lower() for c in self.conditions.split(",") if c.strip()))
        if not names:
            raise StudyError("name at least one condition (e.g. lima,random,none)")
        for name in names:
            if name not in (NO_EXPLANATION, AREA_MATCHED_RANDOM):
                METHODS.get(name)  # an unknown name is a MethodError listing the valid ones
        if self.task == "distinction" and NO_EXPLANATION in names:
            raise StudyError("the distinction task compares explanations: drop 'none' from its conditions")
        return names

    def budget_values(self) -> list[float | str]:
        """Fractions in (0, 1] and/or ``"minimal"``, in the order given."""
        out: list[float | str] = []
        for part in (p.strip().lower() for p in self.budgets.split(",")):
            if not part:
                continue
            if part == MINIMAL:
                out.append(MINIMAL)
                continue
            try:
                value = float(part)
            except ValueError:
                raise StudyError(f"a budget is a fraction of the area or 'minimal', got {part!r}") from None
            if not (math.isfinite(value) and 0 < value <= 1):
                raise StudyError(f"a budget must be in (0, 1], got {part!r}")
            out.append(value)
        out = list(dict.fromkeys(out))
        if not out:
            raise StudyError("name at least one budget (e.g. 0.1,0.25,0.5)")
        return out

    def class_filter(self) -> set[int]:
        return {_class_id(p, "--classes") for p in self.classes.split(",") if p.strip()}

    def confusion_filter(self) -> set[tuple[int, int]]:
        pairs = set()
        for part in (p.strip() for p in self.confusion.split(",")):
            if not part:
                continue
            true, sep, pred = part.partition(">")
            if not sep:
                raise StudyError(f"a confusion is TRUE>PREDICTED (class ids), got {part!r}")
            pairs.add((_class_id(true, "--confusion"), _class_id(pred, "--confusion")))
        return pairs

    def image_list(self) -> list[str]:
        return list(dict.fromkeys(p.strip() for p in self.images.split(",") if p.strip()))

    def resolved_target(self) -> str:
        """The distinction task always explains its candidates (topk); topk is for that task only."""
        if self.task == "distinction":
            return "topk"
        if self.target == "topk":
            raise StudyError("target topk is the distinction task's; choose predicted or true for this task")
        return self.target

    def check(self) -> None:
        """Cross-field checks (each field is valid on its own already)."""
        if self.min_confidence > self.max_confidence:
            raise StudyError("min_confidence must not exceed max_confidence")
        names = self.condition_names()
        self.budget_values()
        self.resolved_target()
        if self.lists % len(names):
            what = "a Latin square" if self.design == "within" else "one condition per list"
            raise StudyError(
                f"{what} needs a multiple of the {len(names)} conditions as the number of lists, got {self.lists}"
            )
        if self.task == "distinction" and self.checks:
            raise StudyError("attention checks are defined for the agreement and guess tasks")
        if self.task == "guess" and self.correct and not self.image_list():
            raise StudyError(f"{GUESS_NEEDS_MISTAKES} (set correct to 0)")
        if not self.image_list() and self.mistakes + self.correct == 0:
            raise StudyError("choose at least one image (mistakes, correct, or an explicit list)")


def _class_id(text: str, flag: str) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        raise StudyError(f"{flag} takes class ids (integers), got {text.strip()!r}") from None
    if value < 0:
        raise StudyError(f"{flag} takes class ids >= 0, got {value}")
    return value


# -- study files ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StudyFile:
    """What a ``study.toml`` holds: the options, and optionally the image set and the regions."""

    options: StudyOptions
    image_set: str | None = None
    regions: str | None = None
    params: dict[str, Any] | None = None


def load_toml(path: str | Path) -> StudyFile:
    """Read a study file; unknown keys are an error that lists the valid ones.

    Raises:
        StudyError: unreadable TOML, unknown keys, invalid values.
    """
    try:
        import tomllib  # Python 3.11+
    except ImportError:  # pragma: no cover  (3.10: the same parser as a package)
        import tomli as tomllib  # type: ignore[no-redef]
    try:
        doc = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise StudyError(f"cannot read the study file {path}: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise StudyError(f"{path} is not valid TOML: {exc}") from exc
    return parse_study(doc, str(path))


def parse_study(doc: Mapping[str, Any], where: str = "the study file") -> StudyFile:
    values = dict(doc)
    image_set = values.pop("set", None)
    regions = values.pop("regions", None)
    params = values.pop("param", None)
    for key in ("conditions", "budgets", "classes", "confusion", "images"):
        if isinstance(values.get(key), list):  # TOML arrays are accepted for the list fields
            values[key] = ",".join(str(v) for v in values[key])
    if params is not None and not isinstance(params, Mapping):
        raise StudyError(f"[param] in {where} must be a table of region parameters")
    for key, value in (("set", image_set), ("regions", regions)):
        if value is not None and not isinstance(value, str):
            raise StudyError(f"{key} in {where} must be text, got {value!r}")
    options = StudyOptions.from_mapping(values, context=f" in {where}")
    return StudyFile(options, image_set, regions, dict(params) if params is not None else None)


def dump_toml(options: StudyOptions, image_set: str | None, regions: str, params: Mapping[str, Any]) -> str:
    """The resolved configuration as a study file (every option, sorted as declared)."""
    lines = ["# LiMA Lens study: python -m explainer study SET --config study.toml --out DIR"]  # SET: not recorded
    if image_set is not None:
        lines.append(f"set = {_toml_value(image_set)}")
    lines.append(f"regions = {_toml_value(regions)}")
    lines += [f"{name} = {_toml_value(value)}" for name, value in options.to_dict().items()]
    lines.append("")
    lines.append("[param]")
    lines += [f"{name} = {_toml_value(value)}" for name, value in params.items() if value is not None]
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    import json

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(str(value), ensure_ascii=False)  # a JSON string is a valid TOML basic string


__all__ = [
    "AREA_MATCHED_RANDOM",
    "DESIGNS",
    "GUESS_NEEDS_MISTAKES",
    "LOOKS",
    "MINIMAL",
    "NO_EXPLANATION",
    "TARGETS",
    "TASKS",
    "StudyFile",
    "StudyOptions",
    "dump_toml",
    "load_toml",
    "parse_study",
]
