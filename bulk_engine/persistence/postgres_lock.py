"""The PostgreSQL journal's job lock: held by the server, for as long as the holder's connection lives.

**The job lock** is a session-level advisory lock (``pg_try_advisory_lock`` on a 64-bit hash of schema and
job id), taken on a connection dedicated to the job for the whole run, plus a row of ``job_locks`` naming
the holder (token, pid, host, since, heartbeat, the server pid of its lock connection) for messages and
fencing. A second runner — in this process or on any machine — fails to take the advisory lock and is
refused at once with :class:`~bulk_engine.errors.JobLockedError` naming the holder. Liveness is the
server's to judge, not a lease: when the holder's process dies (SIGKILL, OOM, a lost pod) its connection
closes and the server releases the lock at once; a vanished host is noticed by TCP keepalives set on the
lock connection (about 25 s). The next runner then takes the lock over, with a WARNING naming the dead
holder. A live holder is never taken over, however long it idles (parked on a throttled account). Every
write of a locked job is conditioned on the ``job_locks`` row still being its own, read ``FOR SHARE`` in
the same statement so a takeover and a write are serialised (fencing, as in SQLite:
:meth:`PostgresLocks.token` gives the journal's writes what to check), and the heartbeat (every
``REFRESH_EVERY_S``) also checks that the lock connection is alive: a lost lock connection is re-taken if
nobody else took the lock meanwhile, otherwise the run stops with :class:`~bulk_engine.errors.JobLockedError`
before sending anything more. Connect to the server directly or through a session-pooling proxy: a
transaction-pooling PgBouncer cannot hold session locks.
"""

from __future__ import annotations

import hashlib
import logging
import socket
import time
from dataclasses import dataclass
from typing import Any

import psycopg

from bulk_engine.errors import JobLockedError, JournalError

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
from .postgres_connections import PostgresConnections
from .rows import LOCK_COLUMNS, lock_from_row

__all__ = ["DEAD_HOLDER_WAIT_S", "PostgresLocks"]

logger = logging.getLogger("bulk_engine.journal")

DEAD_HOLDER_WAIT_S = 10.0  # how long a takeover waits for the server to free a dead local holder's lock
_KEEPALIVE = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5, "keepalives_count": 3}
# The server side of the same: a lock holder whose host vanished loses its lock within about 25 s.
_LOCK_SESSION = (
    "SET tcp_keepalives_idle = 10",
    "SET tcp_keepalives_interval = 5",
    "SET tcp_keepalives_count = 3",
    "SET idle_in_transaction_session_timeout = 0",
)


def _lock_key(schema: str, job_id: str) -> int:
    """The advisory lock's 64-bit key of a job (signed, as PostgreSQL's bigint)."""
    digest = hashlib.sha256(f"bulk-engine-job\0{schema}\0{job_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@dataclass
class _Held:
    owner: LockOwner
    conn: psycopg.Connection[Any]  # holds the advisory lock: closing it releases the lock
    beat: float  # monotonic time of the last heartbeat


class PostgresLocks:
    """The job locks taken through one journal (its ``acquire_lock`` … ``get_lock``), on ``connections``."""

    def __init__(self, connections: PostgresConnections) -> None:
        self._connections = connections
        self._schema = connections.target.schema
        self._location = connections.target.location
        self._s = f'"{self._schema}"'
        self._held: dict[str, _Held] = {}

    def token(self, job_id: str) -> str | None:
        """The token a write of ``job_id`` must find in ``job_locks`` (``None``: not locked through this
        journal, the write is not fenced)."""
        mine = self._held.get(job_id)
        return mine.owner.token if mine is not None else None

    def beat_if_due(self, job_id: str) -> None:
        """After a write of ``job_id``: the heartbeat (and lock connection check) when one is due."""
        mine = self._held.get(job_id)
        if mine is not None and time.monotonic() - mine.beat >= REFRESH_EVERY_S:
            self.refresh(job_id, mine.owner)

    def _lock_row(self, conn: psycopg.Connection[Any], job_id: str) -> JobLock | None:
        row = conn.execute(
            f"SELECT {LOCK_COLUMNS} FROM {self._s}.job_locks WHERE job_id = %s", (job_id,)
        ).fetchone()
        return lock_from_row(job_id, row)

    def _lock_connection(self, job_id: str) -> tuple[psycopg.Connection[Any], bool]:
        """A new connection for ``job_id``'s advisory lock, and whether it got the lock."""
        conn = self._connections.connect(**_KEEPALIVE, application_name="bulk-engine job lock")
        try:
            for statement in _LOCK_SESSION:
                conn.execute(statement)
            try:
                conn.execute("SET idle_session_timeout = 0")  # PostgreSQL 14+; older servers have none
            except psycopg.errors.UndefinedObject:
                pass
            row = conn.execute(
                "SELECT pg_try_advisory_lock(%s)", (_lock_key(self._schema, job_id),)
            ).fetchone()
        except BaseException:
            conn.close()
            raise
        return conn, bool(row and row[0])

    def acquire(self, job_id: str, owner: LockOwner) -> None:
        mine = self._held.get(job_id)
        if mine is not None and mine.owner.token == owner.token:
            self.refresh(job_id, owner)  # again by its owner: a heartbeat
            return
        if self._connections.closed:
            raise JournalError(f"journal {self._location}: it is closed")
        try:
            conn, got = self._lock_connection(job_id)
        except psycopg.Error as err:
            raise self._connections.fail(err, f"locking job {job_id!r}") from None
        try:
            if not got:
                found = self.get(job_id)
                if found is not None and not self._await_dead(conn, job_id, found, time.time()):
                    raise locked_error(self._location, found, now=time.time())
            if not got and found is None:
                raise JobLockedError(
                    f"journal {self._location}: job {job_id!r} is being run by another process (it holds the "
                    "job's lock on the server and has not recorded itself yet); two runs of one job would "
                    "create objects twice. Wait for it to finish, or stop it.",
                    job_id=job_id,
                    pid=None,
                    host=None,
                    acquired_at=None,
                )
            with conn.transaction():
                found = self._lock_row(conn, job_id)
                now = time.time()
                conn.execute(
                    f"INSERT INTO {self._s}.job_locks (job_id, owner, pid, host, process, acquired_at, "
                    "heartbeat_at, backend_pid) VALUES (%s, %s, %s, %s, %s, %s, %s, pg_backend_pid()) "
                    "ON CONFLICT (job_id) DO UPDATE SET owner = excluded.owner, pid = excluded.pid, "
                    "host = excluded.host, process = excluded.process, acquired_at = excluded.acquired_at, "
                    "heartbeat_at = excluded.heartbeat_at, backend_pid = excluded.backend_pid",
                    (job_id, owner.token, owner.pid, owner.host, owner.process, now, now),
                )
        except psycopg.Error as err:
            conn.close()
            raise self._connections.fail(err, f"locking job {job_id!r}") from None
        except BaseException:
            conn.close()
            raise
        self._held[job_id] = _Held(owner, conn, time.monotonic())
        held(owner.token)
        if found is not None and found.owner.token != owner.token:
            let_go(found.owner.token)
            log_takeover(self._location, found, _dead_reason(found, now))

    def _await_dead(self, conn: psycopg.Connection[Any], job_id: str, found: JobLock, now: float) -> bool:
        """Whether ``conn`` got the lock of a holder known dead: on this host, once its pid is gone, the
        server is closing its connection and frees the lock within moments — wait for that (woken by the
        server, at most :data:`DEAD_HOLDER_WAIT_S`) rather than refuse a run the holder can no longer make."""
        if found.owner.host != socket.gethostname() or stale_reason(found, now=now, ttl=float("inf")) is None:
            return False
        try:
            conn.execute(f"SET lock_timeout = {int(DEAD_HOLDER_WAIT_S * 1000)}")
            conn.execute("SELECT pg_advisory_lock(%s)", (_lock_key(self._schema, job_id),))
            conn.execute("SET lock_timeout = 0")
        except psycopg.errors.LockNotAvailable:
            return False
        return True

    def _fence(self, conn: psycopg.Connection[Any], job_id: str, owner: LockOwner | None = None) -> None:
        """In a write transaction of ``job_id``: refuse it if the lock taken through this journal is no
        longer ours; when due (or ``owner`` given), write the heartbeat and check the lock connection."""
        mine = self._held.get(job_id)
        who = owner or (mine.owner if mine is not None else None)
        if who is None:
            return  # not locked through this journal (direct use of the Journal API)
        row = conn.execute(f"SELECT owner FROM {self._s}.job_locks WHERE job_id = %s", (job_id,)).fetchone()
        if row is None or row[0] != who.token:
            raise lost_error(self._location, job_id, self._lock_row(conn, job_id), now=time.time())
        ours = mine if mine is not None and mine.owner.token == who.token else None
        if owner is not None or (ours is not None and time.monotonic() - ours.beat >= REFRESH_EVERY_S):
            if ours is not None:
                self._check_lock_connection(job_id, ours)
                ours.beat = time.monotonic()
            conn.execute(
                f"UPDATE {self._s}.job_locks SET heartbeat_at = %s WHERE job_id = %s", (time.time(), job_id)
            )

    def _check_lock_connection(self, job_id: str, mine: _Held) -> None:
        """The advisory lock lives as long as its connection: if that broke, take the lock again on a new
        one (nobody else did: the row is still ours), else stop this run."""
        try:
            mine.conn.execute("SELECT 1")
            return
        except psycopg.Error:
            mine.conn.close()
        try:
            conn, got = self._lock_connection(job_id)
        except psycopg.Error as err:
            raise self._connections.fail(err, f"re-taking the lock of job {job_id!r}") from None
        if not got:
            conn.close()
            raise lost_error(self._location, job_id, self.get(job_id), now=time.time())
        logger.warning(
            "journal %s: job %s: the lock's connection was lost; lock taken again", self._location, job_id
        )
        mine.conn = conn

    def refresh(self, job_id: str, owner: LockOwner) -> None:
        self._connections.call(
            f"refreshing the lock of job {job_id!r}", lambda conn: self._fence(conn, job_id, owner)
        )

    def release(self, job_id: str, owner: LockOwner) -> None:
        """Never raises: the advisory lock goes with its connection, whatever happens to the row."""
        mine = self._held.get(job_id)
        if mine is not None and mine.owner == owner:
            del self._held[job_id]
        else:
            mine = None
        let_go(owner.token)
        try:
            if not self._connections.closed:
                self._connections.call(
                    f"releasing the lock of job {job_id!r}",
                    lambda conn: conn.execute(
                        f"DELETE FROM {self._s}.job_locks WHERE job_id = %s AND owner = %s",
                        (job_id, owner.token),
                    ),
                )
        except JournalError as err:
            logger.warning("%s", err)
        finally:
            if mine is not None:
                self._unlock(job_id, mine.conn)

    def release_all(self) -> None:
        """Release every lock taken through this journal (before it closes)."""
        for job_id, mine in list(self._held.items()):
            self.release(job_id, mine.owner)

    def _unlock(self, job_id: str, conn: psycopg.Connection[Any]) -> None:
        """Free the advisory lock before closing its connection: a closed connection's locks are freed
        only once the server has handled the close, so the next runner could still find it taken."""
        try:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_lock_key(self._schema, job_id),))
        except psycopg.Error:
            pass  # a broken connection holds nothing any more
        finally:
            conn.close()

    def get(self, job_id: str) -> JobLock | None:
        return self._connections.call(
            f"reading the lock of job {job_id!r}", lambda conn: self._lock_row(conn, job_id)
        )


def _dead_reason(lock: JobLock, now: float) -> str:
    """Why the lock we just took from ``lock``'s holder was free: its connection is gone (and, on this host,
    what became of its process)."""
    gone = "its connection to the PostgreSQL server is gone, so the server released its lock"
    detail = stale_reason(lock, now=now, ttl=float("inf"))
    return f"{detail}; {gone}" if detail else gone
