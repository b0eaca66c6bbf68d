"""The SQLite journal's job locks: rows of ``job_locks``, a lease for holders on other hosts.

Job locks (one job, one runner; :mod:`~bulk_engine.persistence.lock`) are rows of ``job_locks``, checked and
taken in one ``BEGIN IMMEDIATE`` transaction, so two processes cannot both take one. Every write transaction
of a job this journal holds the lock of first checks that the lock is still its own (a primary-key read:
:meth:`SqliteLocks.fence`) and refreshes the heartbeat at most every ``REFRESH_EVERY_S`` (one small update).
:meth:`SqliteLocks.close` (from the journal's ``close``) releases the locks taken through it.
"""

from __future__ import annotations

import logging
import sqlite3
import time

from .lock import (
    REFRESH_EVERY_S,
    JobLock,
    LockOwner,
    held,
    let_go,
    locked_error,
    log_takeover,
    lost_error,
    stale_reason,
)
from .rows import LOCK_COLUMNS, lock_from_row
from .sqlite_file import SqliteFile

__all__ = ["SqliteLocks"]

logger = logging.getLogger("bulk_engine.journal")


class SqliteLocks:
    """The job locks taken through one journal (its ``acquire_lock`` … ``get_lock``), in ``file``."""

    def __init__(self, file: SqliteFile, *, lease_ttl_s: float) -> None:
        self._file = file
        self._location = str(file.path)
        self.lease_ttl_s = lease_ttl_s  # another host's lock is stale after this (see persistence.lock)
        self._held: dict[str, LockOwner] = {}  # job id -> the owner whose lock was taken through this journal
        self._beat: dict[str, float] = {}  # job id -> monotonic time of its last heartbeat write
        self._closed = False

    def _lock_row(self, job_id: str) -> JobLock | None:
        row = self._file.db.execute(
            f"SELECT {LOCK_COLUMNS} FROM job_locks WHERE job_id=?", (job_id,)
        ).fetchone()
        return lock_from_row(job_id, row)

    def acquire(self, job_id: str, owner: LockOwner) -> None:
        taken: tuple[JobLock, str] | None = None
        try:
            with (
                self._file.tx() as db
            ):  # BEGIN IMMEDIATE: no other process can take it between check and insert
                now = time.time()
                found = self._lock_row(job_id)
                if found is not None and found.owner.token == owner.token:
                    db.execute("UPDATE job_locks SET heartbeat_at=? WHERE job_id=?", (now, job_id))
                else:
                    if found is not None:
                        reason = stale_reason(found, now=now, ttl=self.lease_ttl_s)
                        if reason is None:
                            raise locked_error(self._location, found, now=now)
                        taken = (found, reason)
                    db.execute(
                        "INSERT OR REPLACE INTO job_locks (job_id, owner, pid, host, process, acquired_at, "
                        "heartbeat_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (job_id, owner.token, owner.pid, owner.host, owner.process, now, now),
                    )
        except sqlite3.Error as err:
            raise self._file.fail(err, f"locking job {job_id!r}") from None
        self._held[job_id] = owner
        self._beat[job_id] = time.monotonic()
        held(owner.token)
        if taken is not None:
            let_go(taken[0].owner.token)
            log_takeover(self._location, *taken)

    def fence(self, db: sqlite3.Connection, job_id: str, owner: LockOwner | None = None) -> None:
        """In a write transaction of ``job_id``: refuse it if the lock taken through this journal is no
        longer ours (taken over while we were idle); write the heartbeat when due (or ``owner`` given)."""
        mine = owner or self._held.get(job_id)
        if mine is None:
            return  # not locked through this journal (direct use of the Journal API)
        row = db.execute("SELECT owner FROM job_locks WHERE job_id=?", (job_id,)).fetchone()
        if row is None or row[0] != mine.token:
            raise lost_error(self._location, job_id, self._lock_row(job_id), now=time.time())
        if owner is not None or time.monotonic() - self._beat.get(job_id, 0.0) >= REFRESH_EVERY_S:
            db.execute("UPDATE job_locks SET heartbeat_at=? WHERE job_id=?", (time.time(), job_id))
            self._beat[job_id] = time.monotonic()

    def refresh(self, job_id: str, owner: LockOwner) -> None:
        try:
            with self._file.tx() as db:
                self.fence(db, job_id, owner)
        except sqlite3.Error as err:
            raise self._file.fail(err, f"refreshing the lock of job {job_id!r}") from None

    def release(self, job_id: str, owner: LockOwner) -> None:
        """Never raises: a row left by a failed delete is stale once this process no longer holds it."""
        if self._held.get(job_id) == owner:
            del self._held[job_id]
            self._beat.pop(job_id, None)
        let_go(owner.token)
        if self._closed:
            return
        try:
            with self._file.tx() as db:
                db.execute("DELETE FROM job_locks WHERE job_id=? AND owner=?", (job_id, owner.token))
        except sqlite3.Error as err:
            logger.warning(
                "journal %s: could not release the lock of job %s: %s", self._file.path, job_id, err
            )

    def get(self, job_id: str) -> JobLock | None:
        try:
            return self._lock_row(job_id)
        except sqlite3.Error as err:
            raise self._file.fail(err, f"reading the lock of job {job_id!r}") from None

    def close(self) -> None:
        """Release the locks taken through this journal; afterwards a release only forgets its lock."""
        for job_id, owner in list(self._held.items()):
            self.release(job_id, owner)
        self._closed = True
