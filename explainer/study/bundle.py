"""The bundle's files: manifest, lists, answer key, preload list, study file, README, checksums, and
writing them to a folder and a zip.

Participant-facing files (``stimuli/``, ``lists/``, ``preload.json``) carry opaque names and no
condition or answer; researcher-facing files (``manifest.csv``, ``answer_key.csv``,
``study.json``, ``study.toml``, ``contact_sheet.png``) join them back. Every file is made in
memory in a fixed order with fixed formatting, so the same configuration and seed give the same
bytes (the zip's entries carry a fixed date).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from explainer.errors import StudyError

MANIFEST_COLUMNS = (
    "stimulus_id",
    "file",
    "sha256",
    "image_id",
    "image_name",
    "source_sha256",
    "correct",
    "true_class",
    "true_name",
    "predicted_class",
    "predicted_name",
    "predicted_confidence",
    "condition",
    "target_class",
    "budget",
    "realized_area",
    "revealed_regions",
    "p_target",
    "fill",
    "size",
    "run_key",
    "seed",
    "role",  # more columns may follow the required ones
)
ANSWER_COLUMNS = (
    "list",
    "trial_index",
    "trial_type",
    "stimulus_ids",
    "image_id",
    "image_name",
    "correct",
    "true_class",
    "true_name",
    "predicted_class",
    "predicted_name",
    "condition",
    "budget",
    "target_classes",
    "answer",
    "option_classes",
)
ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # zip's earliest date: no build time in the bytes
CHECKSUMS = "checksums.sha256"


def csv_text(columns: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> str:
    """CSV with a header row, ``\\n`` line ends, every row in ``columns`` order."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n", extrasaction="raise")
    writer.writeheader()
    for row in rows:
        writer.writerow({c: row.get(c, "") for c in columns})
    return buf.getvalue()


def json_text(doc: Any) -> str:
    return json.dumps(doc, indent=1, ensure_ascii=False, sort_keys=False) + "\n"


def list_name(index: int) -> str:
    """``list_01`` for the first list (0-based ``index``)."""
    return f"list_{index + 1:02d}"


def checksums(files: Mapping[str, bytes]) -> str:
    """``sha256sum`` format (``<hex>  <path>``) over every file, sorted by path."""
    return "".join(f"{hashlib.sha256(files[p]).hexdigest()}  {p}\n" for p in sorted(files) if p != CHECKSUMS)


def zip_bytes(files: Mapping[str, bytes], folder: str = "study") -> bytes:
    """A zip of the bundle (entries under ``folder/``, sorted, fixed dates: deterministic)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for path in sorted(files):
            info = zipfile.ZipInfo(f"{folder}/{path}", date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            z.writestr(info, files[path])
    return buf.getvalue()


def write_folder(files: Mapping[str, bytes], out: str | Path) -> Path:
    """Write the bundle into ``out`` (created if missing). A folder that holds anything but an
    earlier bundle is refused, so nothing else is ever overwritten; an earlier bundle's files
    are replaced (none of its stimuli is left behind)."""
    out = check_output(out)
    if out.is_dir():
        for child in out.iterdir():
            if child.is_dir():
                shutil.rmtree(child)
            else:
                child.unlink()
    for path in sorted(files):
        target = out / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(files[path])
    return out


def check_output(out: str | Path) -> Path:
    """The bundle folder, checked before any work: new, empty, or an earlier bundle (replaced).

    Raises:
        StudyError: a file, or a folder that holds anything but an earlier bundle.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise StudyError(f"{out} is a file; give a folder for the study")
    earlier = (out / "study.json").is_file() and (out / CHECKSUMS).is_file()
    if out.is_dir() and any(out.iterdir()) and not earlier:
        raise StudyError(f"{out} is not empty and holds no earlier study: choose an empty or new folder")
    return out


def readme(task: str, k: int) -> str:
    options = {
        "agreement": "shown_label: the model's prediction, shown with the image (the participant rates how sure they\n"
        "  are that it is right).",
        "distinction": f"stimulus: the plain image; option_1..option_{k}: the explanations of {k} candidate classes\n"
        "  (the participant picks the one the model predicted).",
        "guess": f"shown_label: the true label, shown with the image; option_1..option_{k}: class names\n"
        "  (the participant picks the model's label).",
    }[task]
    return f"""LiMA Lens study bundle ({task} task)

For participants (no condition, class or answer in any name):
  stimuli/<12 hex>.png   every image a participant sees; one size and mode, no metadata.
  lists/list_NN.csv      one list per participant group, one row per trial, in order
  lists/list_NN.json     the same rows as JSON (jsPsych timeline_variables, lab.js templateParameters).
  preload.json           list name -> every image the list uses (jsPsych's preload plugin).
List columns (identifier-safe, PsychoPy rule):
  trial_index: 1, 2, ... (show in this order); trial_type: practice, main or check;
  stimulus: the image's path inside this bundle;
  {options}

For the researcher:
  manifest.csv      one row per stimulus: its file and sha256, the image (image_id, name, source
                    sha256, correct, true and predicted class, confidence), condition, target_class,
                    budget (fraction of the area; 'minimal' = the method's minimal subset; empty for
                    no explanation), realized_area, revealed_regions (region ids, ';'), p_target
                    (p(target) of the stimulus as the model sees it), fill, size, run_key (the saved
                    explanation it comes from), seed, role.
  answer_key.csv    each list's trials joined to their condition, budget, classes and answer
                    (agreement: yes = the prediction is right; otherwise the correct option's number).
  study.json        the resolved configuration, the model and its weights hash, the regions, library
                    versions, the seed, counts and how closely the random control matches the area.
  study.toml        the same configuration as a study file: lima study SET --config study.toml
                    rebuilds it (SET: the same image set; its path is not recorded).
  contact_sheet.png every stimulus with its condition.
  checksums.sha256  sha256 of every file (sha256sum -c checksums.sha256).
"""


__all__ = [
    "ANSWER_COLUMNS",
    "CHECKSUMS",
    "MANIFEST_COLUMNS",
    "check_output",
    "checksums",
    "csv_text",
    "json_text",
    "list_name",
    "readme",
    "write_folder",
    "zip_bytes",
]
