"""Explanations on disk: lossless JSON + NPZ, atomic writes, and a run store keyed by the inputs.

A saved explanation is a folder with ``explanation.npz`` (every array) and
``explanation.json`` (metadata, readable curves and metrics, and the NPZ's SHA-256). The JSON
is written last, so a folder without a matching JSON is an unfinished write and is not loaded.
"""

from __future__ import annotations

import builtins
import hashlib
import io
import json
import os
import re
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from explainer import settings
from explainer.config import SearchOptions
from explainer.errors import StoreError
from explainer.explanation import LOG_FIELDS, Explanation, SearchLog
from explainer.regions import RegionSpec
from explainer.run_index import RunFilter, RunIndex

FORMAT = "lima-lens/explanation/1"
ARRAYS = ("view", "labels", "order", "area", "insertion_probs", "deletion_probs")
BACKUP = "explanation.npz.prev"  # the previous NPZ while an overwrite is in progress
TEMP_PREFIX = ".lima-tmp."  # temporary files of write_atomic (never listed or loaded)
# A run key names a folder: letters, digits, '-' and '_' only, at most 64 characters (run_key()
# makes 20 hex digits). Anything else (paths, dots, markup, NUL, very long names) is not a key.
KEY_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")


def is_run_key(key: object) -> bool:
    """Whether ``key`` is a well-formed run key (it may still name no saved run)."""
    return isinstance(key, str) and KEY_PATTERN.fullmatch(key) is not None


# -- atomic files -------------------------------------------------------------------------------


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder and a rename.

    The temporary file (``.<name>.<random>``) is locked while it is written, so
    :func:`remove_stale_temporaries` can tell the leftovers of a killed writer (unlocked) from a
    write in progress in another process (locked).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            _lock(f.fileno(), blocking=True)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
            os.replace(tmp, path)  # before the lock is released by closing the file
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _lock(fd: int, blocking: bool) -> bool:
    """An exclusive advisory lock on ``fd`` (released when the process ends); False if taken."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no locks, stale files go by age only
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        return True
    except OSError:
        return False


def remove_stale_temporaries(folder: Path, min_age_s: float = 0.0, keep: tuple[str, ...] = ()) -> int:
    """Delete the temporary files that writers killed in the middle of :func:`write_atomic`
    left in ``folder``; returns how many. A file another live process is still writing is locked
    and kept; files younger than ``min_age_s`` are kept too (for systems without locks), and so
    are the names in ``keep``."""
    import time

    removed = 0
    for tmp in folder.glob(f"{TEMP_PREFIX}*"):
        if tmp.name in keep:
            continue
        try:
            if time.time() - tmp.stat().st_mtime < min_age_s or not tmp.is_file():
                continue
            with open(tmp, "rb") as f:
                if not _lock(f.fileno(), blocking=False):
                    continue  # a live writer holds it
                tmp.unlink()
                removed += 1
        except OSError:
            continue
    return removed


def json_bytes(obj) -> bytes:
    """JSON as UTF-8 bytes (numpy values and paths included), indented for people."""
    return json.dumps(obj, indent=1, ensure_ascii=False, default=_json_default).encode("utf-8")


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


# -- save / load --------------------------------------------------------------------------------


def summary(exp: Explanation) -> dict:
    """The human-readable part of a saved explanation: curves and metrics."""
    k = exp.minimal_subset_size
    return {
        "n_regions": exp.n_regions,
        "target_name": exp.class_name(exp.target),
        "tracked_name": exp.class_name(exp.tracked),
        "full_prediction": exp.full_prediction,
        "full_prediction_name": exp.class_name(exp.full_prediction),
        "insertion_auc": exp.insertion_auc,
        "deletion_auc": exp.deletion_auc,
        "insertion_auc_steps": exp.insertion_auc_steps,
        "deletion_auc_steps": exp.deletion_auc_steps,
        "minimal_subset": list(exp.minimal_subset),
        "minimal_subset_area": float(exp.area[k]),
        "minimal_subset_score": float(exp.insertion[k]),
        "readout": exp.readout(),
        "budget_scores": [b.to_dict() for b in exp.budget_scores()],
        "order": exp.order.tolist(),
        "area": exp.area.tolist(),
        "insertion": exp.insertion.tolist(),
        "deletion": exp.deletion.tolist(),
        "tracked_insertion": None if exp.tracked is None else exp.curve(exp.tracked, "insertion").tolist(),
        "tracked_deletion": None if exp.tracked is None else exp.curve(exp.tracked, "deletion").tolist(),
    }


def metadata(exp: Explanation) -> dict:
    """Provenance and settings: everything but the arrays."""
    return {
        "format": FORMAT,
        "target": exp.target,
        "tracked": exp.tracked,
        "class_names": list(exp.class_names),
        "config": exp.config.to_dict(),
        "regions": exp.regions.to_dict(),
        "model": exp.model,
        "source": exp.source,
        "batch_size": exp.batch_size,
        "forward_passes": exp.forward_passes,
        "wall_time_s": exp.wall_time_s,
        "device": exp.device,
        "created": exp.created,
        "versions": exp.versions,
    }


def to_npz_bytes(exp: Explanation) -> bytes:
    arrays = {name: getattr(exp, name) for name in ARRAYS}
    arrays.update({f"log_{name}": getattr(exp.log, name) for name in LOG_FIELDS})
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def save(exp: Explanation, folder: str | Path) -> Path:
    """Save ``exp`` into ``folder`` (created if needed); returns the folder.

    Each file is replaced atomically, the NPZ first and the JSON (which holds the NPZ's hash)
    last. When an earlier result is overwritten, its NPZ is kept as ``explanation.npz.prev``
    until the new JSON is in place, so a write interrupted between the two files still loads
    the previous result (see :func:`load`).
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise StoreError(f"Cannot save into {folder}: it is a file, not a folder.")
    npz = to_npz_bytes(exp)
    doc = {**metadata(exp), "npz_sha256": hashlib.sha256(npz).hexdigest(), "summary": summary(exp)}
    folder.mkdir(parents=True, exist_ok=True)
    with _folder_lock(folder, blocking=True):
        _save_locked(folder, npz, doc)
    return folder


def _save_locked(folder: Path, npz: bytes, doc: dict) -> None:
    npz_path, backup = folder / "explanation.npz", folder / BACKUP
    if npz_path.exists():
        _quietly(backup.unlink, missing_ok=True)
        try:
            os.link(npz_path, backup)
        except OSError:
            shutil.copy2(npz_path, backup)
    try:
        write_atomic(npz_path, npz)
    except BaseException:
        # Nothing changed: the old pair is intact. The cleanup must not replace the real error
        # (e.g. "Not a directory" when ``folder`` is a file).
        _quietly(backup.unlink, missing_ok=True)
        raise
    write_atomic(folder / "explanation.json", json_bytes(doc))
    _quietly(backup.unlink, missing_ok=True)


@contextmanager
def _folder_lock(folder: Path, blocking: bool) -> Iterator[bool]:
    """Hold ``folder``'s save lock (a locked ``.lima-tmp.lock`` file) for a whole save, so a
    clean-up in another process never mistakes a live overwrite for a killed one. Yields whether
    the lock was taken (always, when ``blocking``). The file is removed when released."""
    path = folder / f"{TEMP_PREFIX}lock"
    try:
        fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
    except OSError:
        yield blocking  # a read-only folder: nothing to guard
        return
    try:
        taken = _lock(fd, blocking)
        try:
            yield taken
        finally:
            if taken:
                _quietly(path.unlink, missing_ok=True)
    finally:
        os.close(fd)


def _quietly(action, *args, **kwargs) -> None:
    """Run a best-effort cleanup step; an OSError there is not the error worth reporting."""
    try:
        action(*args, **kwargs)
    except OSError:
        pass


def load(folder: str | Path) -> Explanation:
    """Load an explanation saved by :func:`save`.

    Raises:
        StoreError: missing files, a format from another program, an NPZ that matches neither
            its JSON nor the kept previous NPZ (an interrupted write or a corrupt file), or a
            JSON without the fields a result needs.
    """
    folder = Path(folder)
    try:
        doc = json.loads((folder / "explanation.json").read_text(encoding="utf-8"))
        npz = (folder / "explanation.npz").read_bytes()
    except FileNotFoundError as exc:
        raise StoreError(f"No saved explanation in {folder} ({Path(exc.filename).name} is missing).") from exc
    except (ValueError, OSError) as exc:
        raise StoreError(f"{folder / 'explanation.json'} is not readable JSON: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        found = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise StoreError(f"{folder} holds format {found!r}, expected {FORMAT!r}.")
    if hashlib.sha256(npz).hexdigest() != doc.get("npz_sha256"):
        npz = _previous_npz(folder, doc)
    try:
        with np.load(io.BytesIO(npz), allow_pickle=False) as z:
            arrays = {name: z[name] for name in ARRAYS}
            log = SearchLog(**{name: z[f"log_{name}"] for name in LOG_FIELDS})
        config = dict(doc["config"])
        batch_size = int(doc.get("batch_size") or config.pop("batch_size", 0) or 0)  # 0.1 kept it in config
        return Explanation(
            **arrays,
            target=doc["target"],
            tracked=doc["tracked"],
            class_names=tuple(doc["class_names"]),
            log=log,
            config=SearchOptions.from_saved(config),
            regions=RegionSpec.from_dict(doc["regions"]),
            model=doc["model"],
            source=doc["source"],
            batch_size=batch_size,
            forward_passes=doc["forward_passes"],
            wall_time_s=doc["wall_time_s"],
            device=doc["device"],
            created=doc["created"],
            versions=doc["versions"],
        )
    except (KeyError, ValueError, TypeError, OSError) as exc:
        raise StoreError(f"{folder} is incomplete or corrupt ({type(exc).__name__}: {exc}).") from exc


def _previous_npz(folder: Path, doc: dict) -> bytes:
    """The NPZ an interrupted overwrite left behind, if it matches the JSON still in place."""
    backup = folder / BACKUP
    if backup.is_file():
        data = backup.read_bytes()
        if hashlib.sha256(data).hexdigest() == doc.get("npz_sha256"):
            return data
    raise StoreError(f"{folder / 'explanation.npz'} does not match its JSON (interrupted write or corrupt file).")


# -- run keys and the run store -----------------------------------------------------------------


def array_digest(array: np.ndarray) -> str:
    """SHA-256 of an array's dtype, shape and bytes."""
    a = np.ascontiguousarray(array)
    return hashlib.sha256(f"{a.dtype}:{a.shape}:".encode() + a.tobytes()).hexdigest()


def run_key(
    model: dict, view: np.ndarray, labels: np.ndarray, target: int, tracked: int | None, config: SearchOptions | dict
) -> str:
    """A key for the inputs of a search: the same model weights, view, label map, classes and
    settings give the same key, so a finished run can be reused instead of recomputed. (Keys of
    runs saved by version 0.1 are unchanged: links to them keep working.)

    Args:
        model: at least ``id`` and ``weights_hash`` (``Classifier.describe()``).
        config: the search settings (:class:`SearchOptions`, or a dict of them).
    """
    options = config if isinstance(config, SearchOptions) else SearchOptions.from_saved(config)
    settings_ = {
        "search": options.search,
        "pending": options.pending,
        "fill": options.fill,
        "weights": options.weights.to_dict(),
        "tolerance": float(options.tolerance),
    }
    blob = json.dumps(
        {
            "model": [model.get("id"), model.get("weights_hash")],
            "view": array_digest(view),
            "labels": array_digest(np.asarray(labels, np.int32)),
            "target": int(target),
            "tracked": tracked,
            "settings": settings_,
        },
        sort_keys=True,
        default=_json_default,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def key_of(exp: Explanation, tracked_was_auto: bool = False) -> str:
    """The run key of a finished explanation (``tracked_was_auto``: it was chosen automatically)."""
    return run_key(exp.model, exp.view, exp.labels, exp.target, None if tracked_was_auto else exp.tracked, exp.config)


SOURCE_VIEW = "source.jpg"


class RunStore:
    """Finished runs in a folder, one sub-folder per run key.

    Args:
        root: the folder (default: ``settings.current().runs_dir``, i.e. ``$LIMA_RUNS_DIR`` or the
            cache's ``runs``).
    """

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root else settings.current().runs_dir
        self.index = RunIndex(self.root, read_listing_row, is_run_key)

    def path(self, key: str) -> Path:
        if not is_run_key(key):
            shown = repr(key) if len(str(key)) <= 80 else repr(str(key)[:77]) + "..."
            raise StoreError(f"Not a valid run key: {shown}")
        return self.root / key

    def has(self, key: str) -> bool:
        """True when a finished run is saved under ``key``; False for anything that is not a
        well-formed key (a link may carry any text) and for unreadable folders."""
        if not is_run_key(key):
            return False
        try:
            return (self.root / key / "explanation.json").is_file()
        except OSError:
            return False

    def save(self, exp: Explanation, key: str) -> Path:
        """Save ``exp`` under ``key`` and record it in the run index (a failure to update the
        index never fails the save: the files are the truth, and the next listing catches up)."""
        folder = save(exp, self.path(key))
        try:
            self.index.put(key, read_listing_row(key, folder / "explanation.json"))
        except (sqlite3.Error, StoreError, OSError):
            pass
        return folder

    def load(self, key: str) -> Explanation:
        return load(self.path(key))

    def view(self, key: str) -> np.ndarray:
        """Only the view (S×S×3 uint8) of a saved run, for thumbnails: one array read from the
        NPZ, not the whole result.

        Raises:
            StoreError: no such run, or its NPZ is unreadable.
        """
        try:
            with np.load(self.path(key) / "explanation.npz", allow_pickle=False) as z:
                return z["view"]
        except Exception as exc:
            raise StoreError(f"run {key}: the view cannot be read ({type(exc).__name__}).") from exc

    def save_source_view(self, key: str, view: np.ndarray) -> None:
        """Keep the run's crop at the source resolution (``source_view.source_view``) beside it,
        as ``source.jpg``; presenter frames and slides are drawn on it."""
        from explainer.source_view import to_jpeg

        folder = self.path(key)
        folder.mkdir(parents=True, exist_ok=True)
        write_atomic(folder / SOURCE_VIEW, to_jpeg(view))

    def source_view(self, key: str) -> np.ndarray | None:
        """The run's crop at the source resolution (F×F×3 uint8), or None when the run has none
        (runs saved before 0.3, or from an API call that did not keep it) or it is unreadable."""
        from explainer.source_view import from_jpeg

        try:
            return from_jpeg((self.path(key) / SOURCE_VIEW).read_bytes())
        except Exception:
            return None

    def delete(self, key: str) -> None:
        shutil.rmtree(self.path(key), ignore_errors=True)
        try:
            self.index.remove(key)
        except (sqlite3.Error, OSError):
            pass  # the next listing notices the folder is gone

    def list(self, where: RunFilter | None = None, limit: int | None = None, offset: int = 0) -> builtins.list[dict]:
        """Saved runs, newest first: key, created, image, image set, true class, prediction,
        target, model, regions, AUCs (see :data:`explainer.run_index.COLUMNS`); those matching
        ``where``, ``limit`` of them from ``offset`` (paging). Runs whose JSON cannot be read
        are left out; :meth:`catalogue` says why. Served by the run index (kept in step with the
        folders first); without a usable index, by reading every JSON."""
        indexed = self._indexed(lambda index: index.rows(where, limit, offset))
        if indexed is not None:
            return indexed
        rows = [r for r in self._scan_files()[0] if _matches(r, where or RunFilter())]
        return rows[offset : None if limit is None else offset + limit]

    def count(self, where: RunFilter | None = None) -> int:
        """How many readable runs match ``where`` (see :meth:`list`)."""
        counted = self._indexed(lambda index: index.count(where))
        if counted is not None:
            return counted
        return len(self.list(where))

    def values(self, column: str) -> builtins.list[str]:
        """Distinct values of a filter column (model, image_set, label, predicted, target,
        regions) over the readable runs, sorted: the choices of a filter menu."""
        found = self._indexed(lambda index: index.values(column))
        if found is not None:
            return found
        return sorted({r[column] for r in self._scan_files()[0] if r.get(column)})

    def confusions(self) -> builtins.list[tuple[str, str, int]]:
        """``(true class, predicted class, runs)`` over runs of misclassified images, most first."""
        found = self._indexed(lambda index: index.confusions())
        if found is not None:
            return found
        from collections import Counter

        pairs = Counter(
            (r["label"], r["predicted"]) for r in self._scan_files()[0] if _matches(r, RunFilter(mistakes=True))
        )
        return sorted(((t, p, n) for (t, p), n in pairs.items()), key=lambda x: (-x[2], x[0], x[1]))

    def catalogue(self) -> tuple[builtins.list[dict], builtins.list[tuple[str, str]]]:
        """Every run folder: the readable runs as rows (see :meth:`list`), newest first, and
        ``(key, reason)`` for each folder whose ``explanation.json`` is unreadable, malformed or
        another program's file. One bad folder never hides the good ones."""
        indexed = self._indexed(lambda index: (index.rows(), index.problems()))
        return indexed if indexed is not None else self._scan_files()

    def problems(self) -> builtins.list[tuple[str, str]]:
        """``(folder, reason)`` for every run folder whose JSON is not a readable run."""
        found = self._indexed(lambda index: index.problems())
        return found if found is not None else self._scan_files()[1]

    def reindex(self) -> int:
        """Rebuild the run index from the folders; returns how many folders it holds."""
        return self.index.rebuild()

    def _indexed(self, query):
        """``query(index)`` after bringing the index in step with the folders; an index SQLite
        cannot read is rebuilt once; None when the index cannot be used (a read-only folder, a
        lock held too long), so the caller reads the files instead."""
        if not self.root.is_dir():
            return query(_EMPTY_INDEX)
        for attempt in (1, 2):
            try:
                self.index.sync()
                return query(self.index)
            except sqlite3.OperationalError:
                return None
            except sqlite3.DatabaseError:
                if attempt == 2:
                    return None
                self.index.discard()
            except OSError:
                return None
        return None

    def _scan_files(self) -> tuple[builtins.list[dict], builtins.list[tuple[str, str]]]:
        """:meth:`catalogue` by reading every ``explanation.json`` (the index's fallback)."""
        rows, problems = [], []
        for doc_path in sorted(self.root.glob("*/explanation.json")):
            key = doc_path.parent.name
            if not is_run_key(key):
                problems.append((key, "the folder's name is not a run key (letters, digits, '-' and '_' only)"))
                continue
            try:
                rows.append(read_listing_row(key, doc_path))
            except StoreError as exc:
                problems.append((key, str(exc)))
        rows.sort(key=lambda r: r["key"])
        rows.sort(key=lambda r: r["created"], reverse=True)
        return rows, problems

    def clean_interrupted_writes(self) -> int:
        """Remove what writers killed in the middle of a save left behind: temporary files
        (unless a live process is writing them) and backups of an overwrite that finished or
        never started. Returns how many files went. Run at start-up; never touches a good run."""
        if not self.root.is_dir():
            return 0
        removed = 0
        for folder in self.root.iterdir():
            if not folder.is_dir() or not is_run_key(folder.name):
                continue
            with _folder_lock(folder, blocking=False) as quiet:
                if not quiet:
                    continue  # a live save: leave it alone
                removed += remove_stale_temporaries(folder, keep=(f"{TEMP_PREFIX}lock",))
                removed += _legacy_temporaries(folder)
                removed += _settle_backup(folder)
        return removed


def _legacy_temporaries(folder: Path) -> int:
    """Temporary files of version 0.1 (``.explanation.json.XXXX``), which took no lock: removed
    once they are a minute old (no save takes that long)."""
    import time

    removed = 0
    for tmp in list(folder.glob(".explanation.json.*")) + list(folder.glob(".explanation.npz.*")):
        try:
            if tmp.is_file() and time.time() - tmp.stat().st_mtime > 60:
                tmp.unlink()
                removed += 1
        except OSError:
            continue
    return removed


def _settle_backup(folder: Path) -> int:
    """Finish what an overwrite killed between its two files left: if the JSON in place still
    describes the backed-up NPZ, the backup goes back in place; if it describes the current NPZ
    (the overwrite finished), the backup is dropped. Returns 1 when a file was removed or moved."""
    backup = folder / BACKUP
    if not backup.is_file():
        return 0
    try:
        wanted = json.loads((folder / "explanation.json").read_text(encoding="utf-8")).get("npz_sha256")
    except (OSError, ValueError, AttributeError):
        return 0  # no usable JSON: the backup is all that is left; keep it
    try:
        current = folder / "explanation.npz"
        # Check the current NPZ first: the backup is often a hard link to it, and renaming a
        # link onto its twin does nothing (POSIX rename).
        if current.is_file() and hashlib.sha256(current.read_bytes()).hexdigest() == wanted:
            backup.unlink()
            return 1
        if hashlib.sha256(backup.read_bytes()).hexdigest() == wanted:
            os.replace(backup, current)
            return 1
    except OSError:
        pass
    return 0


def listing_row(key: str, doc: Any) -> dict[str, Any]:
    """The listing fields of a parsed ``explanation.json``.

    Raises:
        StoreError: the document is not a LiMA Lens run (the message says why).
    """
    if not isinstance(doc, dict):
        raise StoreError(f"explanation.json holds a {type(doc).__name__}, not a LiMA Lens run")
    if doc.get("format") != FORMAT:
        raise StoreError(f"explanation.json has format {doc.get('format')!r}, not {FORMAT!r}")
    parts = {}
    for name in ("summary", "source", "model", "regions", "config"):
        value = doc.get(name, {})
        if not isinstance(value, dict):
            raise StoreError(f"explanation.json: '{name}' is {type(value).__name__}, not an object")
        parts[name] = value
    s, source = parts["summary"], parts["source"]

    def number(value):
        return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    def text(value):
        return value if isinstance(value, str) else ""

    names = doc.get("class_names")
    label = source.get("label")
    label_name = ""
    if isinstance(label, int) and not isinstance(label, bool) and isinstance(names, list) and 0 <= label < len(names):
        label_name = text(names[label])
    return {
        "key": key,
        "created": text(doc.get("created")),
        "image": text(source.get("name")),
        "image_set": text(source.get("set")),
        "label": label_name,
        "predicted": text(s.get("full_prediction_name")),
        "target": text(s.get("target_name")),
        "tracked": text(s.get("tracked_name")),
        "model": text(parts["model"].get("id")),
        "regions": text(parts["regions"].get("method")),
        "n_regions": number(s.get("n_regions")),
        "search": text(parts["config"].get("search")),
        "insertion_auc": number(s.get("insertion_auc")),
        "deletion_auc": number(s.get("deletion_auc")),
        "wall_time_s": number(doc.get("wall_time_s")),
    }


def read_listing_row(key: str, doc_path: Path) -> dict[str, Any]:
    """Read and parse one run's JSON into its listing fields (StoreError with the reason)."""
    try:
        doc = json.loads(doc_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # unreadable, not UTF-8, or not JSON
        raise StoreError(f"explanation.json cannot be read ({type(exc).__name__}: {exc})") from exc
    return listing_row(key, doc)


def _matches(row: dict, where: RunFilter) -> bool:
    """Whether a listing row passes ``where`` (the file-reading twin of RunFilter.where)."""
    from explainer.run_index import FILTER_COLUMNS

    if any(getattr(where, c) and row.get(c) != getattr(where, c) for c in FILTER_COLUMNS):
        return False
    wrong = row["label"] and row["label"] != row["predicted"]
    if where.confusion and (not wrong or (row["label"], row["predicted"]) != tuple(where.confusion)):
        return False
    if where.mistakes and not wrong:
        return False
    if where.explains and row["target"] != row["label" if where.explains == "true" else "predicted"]:
        return False
    text = (where.text or "").lower()
    return not text or text in row["image"].lower() or text in row["key"].lower()


class _NoIndex:
    """The index of a runs folder that does not exist yet: nothing in it."""

    def rows(self, *args, **kwargs):
        return []

    def count(self, *args, **kwargs):
        return 0

    def problems(self):
        return []

    def values(self, column):
        return []

    def confusions(self):
        return []


_EMPTY_INDEX = _NoIndex()
