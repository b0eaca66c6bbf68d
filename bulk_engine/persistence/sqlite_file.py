"""An SQLite journal file, opened: refused unless it is a whole bulk-engine journal, migrated to this version's
schema, and its transactions and errors — what :mod:`~bulk_engine.persistence.sqlite`'s journal and job locks
(:mod:`~bulk_engine.persistence.sqlite_lock`) write through.

Refusals (:class:`~bulk_engine.errors.JournalError`, naming the file and the problem) — never a silent
fresh start over a damaged journal:

* the file is not an SQLite database (garbage bytes, a truncated header, another kind of file);
* the file is shorter than its header says (truncated);
* it is an SQLite database of another application, or of a newer journal schema;
* ``PRAGMA quick_check`` finds corruption when the journal is opened (O(file size); ``check=False``
  skips it).

Schema versions (``PRAGMA user_version``), migrated in place on open: 1 — ``jobs``, ``ops``; 2 — adds
``job_locks``; 3 — adds ``pacing``; 4 — adds ``runs`` (a job's earlier runs then simply have no records);
5 — adds ``async_sets`` (the async backend's request sets by their unique name, ``AsyncSetRecord``; ``set_id``
    NULL while submitting; ``names`` as JSON).
A journal of a newer schema is refused: an older bulk-engine would ignore the locks (so a journal opened
once by this version is refused by one that only knows schema 3).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from bulk_engine.errors import JournalError

__all__ = ["APPLICATION_ID", "SCHEMA_VERSION", "SqliteFile", "Synchronous"]

APPLICATION_ID = 0x42454A4C  # "BEJL": PRAGMA application_id marks the file as a bulk-engine journal
SCHEMA_VERSION = 5  # 2: + job_locks; 3: + pacing; 4: + runs; 5: + async_sets (see the module docstring)
_MAGIC = b"SQLite format 3\x00"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id      TEXT PRIMARY KEY,
    fingerprint TEXT,
    options     TEXT NOT NULL,
    ordered     INTEGER NOT NULL,
    created_at  REAL NOT NULL,
    updated_at  REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS ops (
    job_id     TEXT NOT NULL,
    op_id      TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    plan       TEXT NOT NULL,
    digest     TEXT NOT NULL,
    kind       TEXT NOT NULL,
    account_id TEXT NOT NULL,
    status     TEXT NOT NULL,
    unknown    INTEGER NOT NULL DEFAULT 0,
    attempts   INTEGER NOT NULL DEFAULT 0,
    result     TEXT,
    graph_id   TEXT,
    error      TEXT,
    reason     TEXT,
    PRIMARY KEY (job_id, op_id)
);
CREATE UNIQUE INDEX IF NOT EXISTS ops_by_seq ON ops (job_id, seq);
CREATE TABLE IF NOT EXISTS job_locks (
    job_id       TEXT PRIMARY KEY,
    owner        TEXT NOT NULL,
    pid          INTEGER NOT NULL,
    host         TEXT NOT NULL,
    process      TEXT NOT NULL DEFAULT '',
    acquired_at  REAL NOT NULL,
    heartbeat_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS pacing (
    scope        TEXT PRIMARY KEY,
    parked_until REAL NOT NULL,
    reason       TEXT NOT NULL,
    usage_pct    REAL,
    state        TEXT NOT NULL /* JSON */,
    updated_at   REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    job_id           TEXT NOT NULL,
    run_id           TEXT NOT NULL,
    number           INTEGER NOT NULL,
    state            TEXT NOT NULL,
    started_at       REAL NOT NULL,
    updated_at       REAL NOT NULL,
    ended_at         REAL,
    http_requests    INTEGER NOT NULL,
    graph_calls      INTEGER NOT NULL,
    retries          INTEGER NOT NULL,
    throttle_events  INTEGER NOT NULL,
    unknown_outcomes INTEGER NOT NULL,
    lookups          INTEGER NOT NULL,
    recovered        INTEGER NOT NULL,
    elapsed_s        REAL NOT NULL,
    succeeded        INTEGER NOT NULL,
    failed           INTEGER NOT NULL,
    skipped          INTEGER NOT NULL,
    error            TEXT,
    PRIMARY KEY (job_id, run_id)
);
CREATE TABLE IF NOT EXISTS async_sets (
    job_id       TEXT NOT NULL,
    name         TEXT NOT NULL /* the set's unique name, journaled before the POST */,
    set_id       TEXT /* NULL while "submitting": resolved by name */,
    account_id   TEXT NOT NULL,
    names        TEXT NOT NULL /* JSON [[request name, op id], ...] */,
    submitted_at REAL NOT NULL,
    done         INTEGER NOT NULL,
    PRIMARY KEY (job_id, name)
);
"""
_TABLES = {"jobs", "ops", "job_locks", "pacing", "runs", "async_sets"}

Synchronous = Literal["OFF", "NORMAL", "FULL"]


class SqliteFile:
    """One journal file and its connection (created if missing). Use it from one thread."""

    def __init__(self, path: Path, *, synchronous: Synchronous, check: bool) -> None:
        if synchronous not in ("OFF", "NORMAL", "FULL"):
            raise ValueError("synchronous must be OFF, NORMAL or FULL")
        self.path = path
        existed = path.exists() and path.stat().st_size > 0
        if existed:
            _check_header(path)
        try:
            self.db = sqlite3.connect(path, isolation_level=None)
        except sqlite3.Error as err:
            raise JournalError(f"journal {path}: cannot open it ({err})") from None
        try:
            self._setup(existed, synchronous, check)
        except BaseException:
            self.db.close()
            raise

    def fail(self, err: sqlite3.Error, doing: str) -> JournalError:
        text = str(err)
        if isinstance(err, sqlite3.DatabaseError) and ("malformed" in text or "not a database" in text):
            return JournalError(f"journal {self.path}: the database is corrupt ({text}) while {doing}")
        return JournalError(f"journal {self.path}: SQLite error while {doing}: {text}")

    def _setup(self, existed: bool, synchronous: Synchronous, check: bool) -> None:
        db = self.db
        try:
            app_id = db.execute("PRAGMA application_id").fetchone()[0]
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if existed and app_id != APPLICATION_ID:
                tables = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
                if app_id != 0 or tables:
                    raise JournalError(
                        f"journal {self.path}: this is an SQLite database, but not a bulk-engine journal "
                        f"(application_id {app_id:#x}); refusing to write into it"
                    )
            if version > SCHEMA_VERSION:
                raise JournalError(
                    f"journal {self.path}: written by a newer bulk-engine (schema {version} > "
                    f"{SCHEMA_VERSION}); upgrade bulk-engine to resume it"
                )
            if existed and check:
                rows = [r[0] for r in db.execute("PRAGMA quick_check(5)").fetchall()]
                if rows != ["ok"]:
                    raise JournalError(f"journal {self.path}: the database is corrupt: {'; '.join(rows)}")
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"PRAGMA synchronous={synchronous}")
            db.execute("PRAGMA busy_timeout=10000")
            with self.tx():
                db.execute(f"PRAGMA application_id={APPLICATION_ID}")
                db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        db.execute(statement)
            missing = _TABLES - {
                r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
            if missing:  # pragma: no cover - CREATE IF NOT EXISTS above
                raise JournalError(f"journal {self.path}: tables missing: {sorted(missing)}")
        except sqlite3.Error as err:
            raise self.fail(err, "opening it") from None

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction: the write lock of the file from the start, so what it reads
        no other process changes before it commits."""
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def close(self) -> None:
        self.db.close()


def _check_header(path: Path) -> None:
    """Refuse files that are not whole SQLite databases before SQLite gets to guess."""
    size = path.stat().st_size
    with path.open("rb") as fh:
        header = fh.read(100)
    if not header.startswith(_MAGIC):
        raise JournalError(
            f"journal {path}: not a bulk-engine journal — the file is not an SQLite database "
            "(garbage bytes or another kind of file); refusing to overwrite it"
        )
    if len(header) < 100:
        raise JournalError(
            f"journal {path}: the database is truncated ({size} bytes, shorter than its header)"
        )
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    change_counter = int.from_bytes(header[24:28], "big")
    pages = int.from_bytes(header[28:32], "big")
    valid_for = int.from_bytes(header[92:96], "big")
    if pages and valid_for == change_counter and size < pages * page_size:
        raise JournalError(
            f"journal {path}: the database is truncated ({size} bytes, its header says "
            f"{pages} pages of {page_size} bytes)"
        )
