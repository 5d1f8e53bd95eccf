"""A SQLite index of the run store, so thousands of saved runs list, filter and page in
milliseconds instead of re-reading every ``explanation.json``.

The index is ``index.sqlite3`` inside the runs folder, in WAL mode with a busy timeout, so the
app and a batch process can write runs at the same time. The run folders stay the source of
truth: :meth:`RunIndex.sync` reconciles the index with them (a folder added or removed behind
the index's back is picked up; a changed ``explanation.json`` is re-read, judged by its size and
modification time), and an index that SQLite cannot read, or one written by another schema
version, is deleted and rebuilt from the files.

One row per run folder: the listing fields (see :data:`COLUMNS`), or ``problem`` with the reason
the folder's JSON is not a readable run.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from explainer.errors import StoreError

INDEX_NAME = "index.sqlite3"
SCHEMA_VERSION = 1
FULL_CHECK_S = 30.0  # at most this long between full reconciles (catches same-tick folder adds)
BUSY_TIMEOUT_MS = 10_000  # a writer waits this long for another process's write to finish

# The listing fields of a run, in table order, with their SQLite types.
COLUMNS: dict[str, str] = {
    "key": "TEXT PRIMARY KEY",
    "created": "TEXT",
    "image": "TEXT",  # the image's display name
    "image_set": "TEXT",  # the image set's name ("" when unknown, e.g. the CLI's single images)
    "label": "TEXT",  # the true class name ("" when unknown)
    "predicted": "TEXT",  # the model's prediction on the full image
    "target": "TEXT",  # the class explained
    "tracked": "TEXT",  # the class followed beside it
    "model": "TEXT",
    "regions": "TEXT",  # the region method
    "n_regions": "INTEGER",
    "search": "TEXT",
    "insertion_auc": "REAL",
    "deletion_auc": "REAL",
    "wall_time_s": "REAL",
}
LISTED = tuple(COLUMNS)
# Columns a filter may name; values are matched exactly.
FILTER_COLUMNS = ("model", "image_set", "label", "predicted", "target", "regions")


@dataclass(frozen=True)
class RunFilter:
    """What to show of the run store; None (or "") means any.

    Attributes:
        model, image_set, label, predicted, target, regions: exact values of those columns.
        confusion: ``(true class, predicted class)``; only runs of images with that confusion.
        mistakes: only runs of images the model got wrong (true class known and ≠ prediction).
        text: a case-insensitive substring of the image name or run key.
        explains: "true" = only runs that explain the image's true class (target = label),
            "predicted" = only runs that explain the model's prediction (target = predicted).
    """

    model: str | None = None
    image_set: str | None = None
    label: str | None = None
    predicted: str | None = None
    target: str | None = None
    regions: str | None = None
    confusion: tuple[str, str] | None = None
    mistakes: bool = False
    text: str | None = None
    explains: str | None = None

    def where(self) -> tuple[str, list[Any]]:
        """The SQL condition (without ``WHERE``) and its parameters."""
        if self.explains not in (None, "", "true", "predicted"):
            raise ValueError(f"explains is 'true' or 'predicted', got {self.explains!r}")
        parts, params = ["problem IS NULL"], []
        for name in FILTER_COLUMNS:
            value = getattr(self, name)
            if value:
                parts.append(f"{name} = ?")
                params.append(value)
        if self.confusion:
            parts.append("label = ? AND predicted = ? AND label != predicted")
            params.extend(self.confusion)
        if self.mistakes:
            parts.append("label != '' AND label != predicted")
        if self.text:
            parts.append("(instr(lower(image), ?) > 0 OR instr(lower(key), ?) > 0)")
            params.extend([self.text.lower()] * 2)
        if self.explains:
            parts.append("target = label" if self.explains == "true" else "target = predicted")
        return " AND ".join(parts), params


class RunIndex:
    """The SQLite index of one runs folder (see the module's docstring).

    Every call opens its own short-lived connection, so one index object may be shared by the
    app's threads; concurrent processes are serialised by SQLite's locks (WAL: readers never
    wait for the writer).
    """

    def __init__(
        self,
        root: str | Path,
        read_row: Callable[[str, Path], dict[str, Any]],
        is_key: Callable[[str], bool],
    ):
        """``read_row(key, json_path)``: a run's listing fields (StoreError with the reason when
        the JSON is no run); ``is_key(name)``: whether a folder name is a run key."""
        self.root = Path(root)
        self._read_row, self._is_key = read_row, is_key
        self._names: frozenset[str] | None = None  # the folder names at the last sync
        self._pending: frozenset[str] = frozenset()  # those of them without an explanation.json
        self.path = self.root / INDEX_NAME
        self._last_full = -FULL_CHECK_S  # the first sync checks every run

    # -- connections and schema -----------------------------------------------------------------

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A connection with the schema in place; a damaged or foreign index is rebuilt."""
        self.root.mkdir(parents=True, exist_ok=True)
        for attempt in (1, 2):
            try:
                conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
                try:
                    self._prepare(conn)
                except BaseException:
                    conn.close()
                    raise
                break
            except sqlite3.OperationalError:
                raise  # locked or unreachable: not damage, never a reason to delete the index
            except sqlite3.DatabaseError:
                if attempt == 2:
                    raise
                self.discard()
        with closing(conn):
            yield conn

    def _prepare(self, conn: sqlite3.Connection) -> None:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version == SCHEMA_VERSION:
            return
        if version != 0:
            raise sqlite3.DatabaseError(f"index schema {version}, expected {SCHEMA_VERSION}")
        conn.execute("PRAGMA journal_mode = WAL")  # persistent: set once, when created
        columns = ", ".join(f"{name} {kind}" for name, kind in COLUMNS.items())
        conn.execute("BEGIN IMMEDIATE")
        try:
            if conn.execute("PRAGMA user_version").fetchone()[0] == 0:  # another process may have won
                conn.execute(f"CREATE TABLE runs ({columns}, problem TEXT, json_mtime_ns INTEGER, json_size INTEGER)")
                conn.execute("CREATE INDEX runs_created ON runs(created DESC)")
                for name in FILTER_COLUMNS:
                    conn.execute(f"CREATE INDEX runs_{name} ON runs({name}, created DESC)")
                conn.execute("CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT)")
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def discard(self) -> None:
        """Delete a damaged index (and its WAL files): the files rebuild it."""
        for suffix in ("", "-wal", "-shm", "-journal"):
            try:
                Path(str(self.path) + suffix).unlink(missing_ok=True)
            except OSError:
                pass
        self._last_full, self._names = -FULL_CHECK_S, None

    # -- writes ----------------------------------------------------------------------------------

    def put(self, key: str, row: dict[str, Any] | None = None, problem: str | None = None) -> None:
        """Record run ``key`` (its listing ``row``, or the ``problem`` that makes it unreadable),
        with its JSON's current size and modification time."""
        try:
            st = (self.root / key / "explanation.json").stat()
            stamp: tuple[int | None, int | None] = (st.st_mtime_ns, st.st_size)
        except OSError:
            stamp = (None, None)
        with self._connect() as conn:
            self._upsert(conn, [(key, row, problem, stamp)])

    def remove(self, key: str) -> None:
        with self._connect() as conn:
            conn.execute("DELETE FROM runs WHERE key = ?", (key,))

    @staticmethod
    def _upsert(conn: sqlite3.Connection, entries) -> None:
        names = [*LISTED, "problem", "json_mtime_ns", "json_size"]
        sql = f"INSERT OR REPLACE INTO runs ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
        values = []
        for key, row, problem, (mtime, size) in entries:
            row = row or {}
            values.append([key, *(row.get(n) for n in LISTED[1:]), problem, mtime, size])
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(sql, values)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    # -- reconciling with the files --------------------------------------------------------------

    def sync(self, force: bool = False) -> int:
        """Bring the index in step with the run folders; returns how many rows changed.

        Every call lists the runs folder (names only: milliseconds at 10,000 runs), so a run
        folder added or removed behind the index's back is picked up at once. The JSON of every
        known run is checked (size and modification time) on the first call of this object, at
        most every :data:`FULL_CHECK_S` seconds after that, and when ``force``: that catches a
        run overwritten in place by a program that does not keep the index.
        """
        try:
            names = [n for n in os.listdir(self.root) if not n.startswith(".") and n != INDEX_NAME]
        except OSError:
            return 0
        full = force or time.monotonic() - self._last_full >= FULL_CHECK_S
        listed = frozenset(names)
        if not full and self._names == listed and not any(self._has_json(n) for n in self._pending):
            return 0  # the same folders as at the last sync, none of them newly finished
        with self._connect() as conn:
            known = {k: (m, s) for k, m, s in conn.execute("SELECT key, json_mtime_ns, json_size FROM runs")}
            on_disk = set(names)
            to_check = names if full else [n for n in names if n not in known]
            changed: list[tuple[str, dict[str, Any] | None, str | None, tuple[int, int]]] = []
            for name in to_check:
                try:
                    st = os.stat(self.root / name / "explanation.json")
                except OSError:  # no JSON (an unfinished write, a stray file): not a run
                    on_disk.discard(name)
                    continue
                stamp = (st.st_mtime_ns, st.st_size)
                if known.get(name) == stamp:
                    continue
                if not self._is_key(name):
                    problem = "the folder's name is not a run key (letters, digits, '-' and '_' only)"
                    changed.append((name, None, problem, stamp))
                    continue
                try:
                    changed.append((name, self._read_row(name, self.root / name / "explanation.json"), None, stamp))
                except StoreError as exc:
                    changed.append((name, None, str(exc), stamp))
            gone = [k for k in known if k not in on_disk]
            if changed:
                self._upsert(conn, changed)
            if gone:
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany("DELETE FROM runs WHERE key = ?", [(k,) for k in gone])
                conn.execute("COMMIT")
        if full:
            self._last_full = time.monotonic()
        # Folders without a JSON (a save in progress, or no run at all) are checked again on
        # every sync: one stat each.
        self._names, self._pending = listed, listed - on_disk - (set(known) - set(gone))
        return len(changed) + len(gone)

    def _has_json(self, name: str) -> bool:
        return os.path.isfile(self.root / name / "explanation.json")

    def rebuild(self) -> int:
        """Delete the index and build it again from the files; returns the number of folders."""
        self.discard()
        self.sync(force=True)
        with self._connect() as conn:
            return conn.execute("SELECT count(*) FROM runs").fetchone()[0]

    # -- reads -----------------------------------------------------------------------------------

    def rows(self, where: RunFilter | None = None, limit: int | None = None, offset: int = 0) -> list[dict[str, Any]]:
        """Readable runs matching ``where``, newest first (then by key), ``limit`` from ``offset``."""
        condition, params = (where or RunFilter()).where()
        sql = f"SELECT {', '.join(LISTED)} FROM runs WHERE {condition} ORDER BY created DESC, key"
        if limit is not None:
            sql += " LIMIT ? OFFSET ?"
            params = [*params, int(limit), max(0, int(offset))]
        with self._connect() as conn:
            return [dict(zip(LISTED, values)) for values in conn.execute(sql, params)]

    def count(self, where: RunFilter | None = None) -> int:
        condition, params = (where or RunFilter()).where()
        with self._connect() as conn:
            return conn.execute(f"SELECT count(*) FROM runs WHERE {condition}", params).fetchone()[0]

    def problems(self) -> list[tuple[str, str]]:
        """``(folder name, reason)`` for every folder whose JSON is not a readable run."""
        with self._connect() as conn:
            return list(conn.execute("SELECT key, problem FROM runs WHERE problem IS NOT NULL ORDER BY key"))

    def values(self, column: str) -> list[str]:
        """The distinct non-empty values of a filter column, sorted (for filter menus)."""
        if column not in FILTER_COLUMNS:
            raise ValueError(f"not a filter column: {column!r}")
        with self._connect() as conn:
            sql = f"SELECT DISTINCT {column} FROM runs WHERE problem IS NULL AND {column} != '' ORDER BY {column}"
            return [v for (v,) in conn.execute(sql)]

    def confusions(self) -> list[tuple[str, str, int]]:
        """``(true class, predicted class, runs)`` over runs of misclassified images, most first."""
        sql = (
            "SELECT label, predicted, count(*) AS n FROM runs WHERE problem IS NULL AND label != '' "
            "AND label != predicted GROUP BY label, predicted ORDER BY n DESC, label, predicted"
        )
        with self._connect() as conn:
            return list(conn.execute(sql))
