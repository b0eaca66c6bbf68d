"""The default :class:`~bulk_engine.persistence.journal.Journal`: one SQLite file (stdlib ``sqlite3``).

Durability and speed:

* WAL mode, ``synchronous=NORMAL`` by default: a committed transaction is in the WAL file before
  ``COMMIT`` returns, so it survives the process being killed (SIGKILL, OOM, a lost Airflow worker); only a
  power loss or kernel crash can drop the last transactions. ``synchronous="FULL"`` fsyncs every commit
  for that case too. (Even then nothing is created twice: creates carry idempotency keys and a resume
  reconciles with the server, which is the source of truth — the journal only makes resuming cheap.)
* Writes are grouped: the plans of a window, the intents of one HTTP batch, the outcomes of one HTTP
  batch — one transaction each, never one per operation.
* Calls are synchronous, on the engine's event loop. Measured on this project's CI machine a batch's
  intent (50 rows) commits in ~0.1 ms and its outcomes in ~0.2 ms, while the HTTP batch they belong to
  takes milliseconds to seconds; handing them to ``anyio.to_thread`` would add a thread hop of the same
  order, force the connection to be shared across threads (``check_same_thread=False`` plus a lock), and
  buy nothing for the intent, which must be committed before the request may leave anyway.

Refusals (:class:`~bulk_engine.errors.JournalError`, naming the file and the problem) — never a silent
fresh start over a damaged journal:

* a file that is not a whole bulk-engine journal of this or an older schema, or is corrupt
  (:mod:`~bulk_engine.persistence.sqlite_file`, which also migrates the schema on open);
* a job id reused with a different job (fingerprint), or an operation whose plan changed (session);
* a job whose lock another live run holds (:class:`~bulk_engine.errors.JobLockedError`;
  :mod:`~bulk_engine.persistence.sqlite_lock`). Every write transaction of a job this journal holds the lock
  of first checks that the lock is still its own. :meth:`SqliteJournal.close` releases the locks taken
  through it.

Pacing state (the rate-limit governor's, per scope; journal-wide, shared by every job of the file) is the
``pacing`` table: :meth:`SqliteJournal.save_pacing` upserts a batch of records in one transaction by
:func:`~bulk_engine.persistence.journal.merge_pacing` (newest wins, an unexpired park stands unless lifted);
``state`` is stored as compact JSON. A row that cannot be read (corrupt or non-object JSON, a value of the
wrong type) is skipped on load with a WARNING, never an error: the governor then merely starts that scope
unparked.

Run records (one row per run of a job: its counters and how it ended; ``RunRecord``) are the ``runs`` table,
upserted by ``(job_id, run_id)`` in one transaction per write, an older ``updated_at`` losing. They are not
fenced by the job's lock and do not refresh its heartbeat: a run writes only its own row, and the lease
keeps its meaning (a holder that sends nothing for long can still be taken over).
"""

from __future__ import annotations

import dataclasses
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from .codec import canonical
from .journal import (
    AsyncSetRecord,
    JournalJob,
    JournalOp,
    OutcomeWrite,
    PacingRecord,
    PlanWrite,
    RunRecord,
    check_fingerprint,
)
from .lock import LEASE_TTL_S, JobLock, LockOwner
from .rows import (
    ASYNC_SET_COLUMNS,
    JOB_COLUMNS,
    OP_COLUMNS,
    PACING_COLUMNS,
    RUN_FIELDS,
    async_set_from_row,
    async_set_row,
    async_set_upsert,
    job_from_row,
    op_from_row,
    ops_by_seq,
    pacing_batches,
    pacing_records,
    pacing_upsert,
    run_from_row,
    run_params,
    run_upsert,
    status_counts,
)
from .sqlite_file import APPLICATION_ID, SCHEMA_VERSION, SqliteFile, Synchronous
from .sqlite_lock import SqliteLocks

__all__ = ["APPLICATION_ID", "SCHEMA_VERSION", "SqliteJournal"]

_CHUNK = 500  # SQLite's default limit on host parameters is 999 (older builds)
_SAVE_RUN = run_upsert("runs", lambda c: f":{c}")
_SAVE_ASYNC_SET = async_set_upsert("async_sets", "?")


class SqliteJournal:
    """A journal in one SQLite file (created if missing). Holds any number of jobs.

    Use it from one thread (the engine's event loop); close it when done (``with SqliteJournal(p) as j``).
    """

    keeps_plans = True

    def __init__(
        self,
        path: str | Path,
        *,
        synchronous: Synchronous = "NORMAL",
        check: bool = True,
        lease_ttl_s: float = LEASE_TTL_S,
    ) -> None:
        self.path = Path(path)
        self._file = SqliteFile(self.path, synchronous=synchronous, check=check)
        self._db = self._file.db
        self._tx = self._file.tx
        self._fail = self._file.fail
        self._locks = SqliteLocks(self._file, lease_ttl_s=lease_ttl_s)

    def __repr__(self) -> str:
        return f"SqliteJournal({str(self.path)!r})"

    def __enter__(self) -> SqliteJournal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def location(self) -> str:
        return str(self.path)

    @property
    def lease_ttl_s(self) -> float:
        """Another host's lock is stale after this (see persistence.lock); settable."""
        return self._locks.lease_ttl_s

    @lease_ttl_s.setter
    def lease_ttl_s(self, seconds: float) -> None:
        self._locks.lease_ttl_s = seconds

    # --- jobs -----------------------------------------------------------------------------------
    def open_job(self, job_id: str, fingerprint: str | None, options: Mapping[str, Any]) -> JournalJob:
        try:
            with self._tx() as db:
                found = self._job_row(job_id)
                if found is not None:
                    check_fingerprint(self, found, fingerprint)
                    if fingerprint is not None and found.fingerprint is None:
                        db.execute("UPDATE jobs SET fingerprint=? WHERE job_id=?", (fingerprint, job_id))
                else:
                    now = time.time()
                    db.execute(
                        f"INSERT INTO jobs ({JOB_COLUMNS}) VALUES (?, ?, ?, 1, ?, ?)",
                        (job_id, fingerprint, canonical(dict(options)), now, now),
                    )
        except sqlite3.Error as err:
            raise self._fail(err, f"opening job {job_id!r}") from None
        job = self.get_job(job_id)
        assert job is not None
        return job

    def _job_row(self, job_id: str) -> JournalJob | None:
        row = self._db.execute(f"SELECT {JOB_COLUMNS} FROM jobs WHERE job_id=?", (job_id,)).fetchone()
        return None if row is None else job_from_row(row, self.location)

    def get_job(self, job_id: str) -> JournalJob | None:
        try:
            job = self._job_row(job_id)
            if job is None:
                return None
            counts = status_counts(
                self._db.execute("SELECT status, count(*) FROM ops WHERE job_id=? GROUP BY status", (job_id,))
            )
        except sqlite3.Error as err:
            raise self._fail(err, f"reading job {job_id!r}") from None
        return dataclasses.replace(job, counts=counts)

    def job_ids(self) -> list[str]:
        try:
            return [r[0] for r in self._db.execute("SELECT job_id FROM jobs ORDER BY created_at, job_id")]
        except sqlite3.Error as err:
            raise self._fail(err, "listing jobs") from None

    # --- operations -----------------------------------------------------------------------------
    def get_ops(self, job_id: str, op_ids: Sequence[str]) -> dict[str, JournalOp]:
        out: dict[str, JournalOp] = {}
        try:
            for start in range(0, len(op_ids), _CHUNK):
                chunk = list(op_ids[start : start + _CHUNK])
                marks = ",".join("?" * len(chunk))
                for row in self._db.execute(
                    f"SELECT {OP_COLUMNS} FROM ops WHERE job_id=? AND op_id IN ({marks})", (job_id, *chunk)
                ):
                    op = op_from_row(row)
                    out[op.op_id] = op
        except sqlite3.Error as err:
            raise self._fail(err, f"reading operations of job {job_id!r}") from None
        return out

    def add_plans(self, job_id: str, plans: Sequence[PlanWrite]) -> None:
        if not plans:
            return
        try:
            with self._tx() as db:
                self._locks.fence(db, job_id)
                seq = db.execute(
                    "SELECT coalesce(max(seq), 0) FROM ops WHERE job_id=?", (job_id,)
                ).fetchone()[0]
                rows = []
                for plan in plans:
                    seq += 1
                    rows.append(
                        (
                            job_id,
                            plan.op_id,
                            seq,
                            plan.plan,
                            plan.digest,
                            plan.kind,
                            plan.account_id,
                            "planned",
                            int(plan.unknown),
                        )
                    )
                db.executemany(
                    "INSERT OR IGNORE INTO ops (job_id, op_id, seq, plan, digest, kind, account_id, status, "
                    "unknown) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
                backward = all(plan.backward_refs for plan in plans)
                db.execute(
                    "UPDATE jobs SET updated_at=?, ordered=(ordered AND ?) WHERE job_id=?",
                    (time.time(), int(backward), job_id),
                )
        except sqlite3.Error as err:
            raise self._fail(err, f"recording plans of job {job_id!r}") from None

    def mark_sent(self, job_id: str, op_ids: Sequence[str]) -> None:
        if not op_ids:
            return
        try:
            with self._tx() as db:
                self._locks.fence(db, job_id)
                db.executemany(
                    "UPDATE ops SET status='sent', unknown=1, attempts=attempts+1 WHERE job_id=? AND op_id=?",
                    [(job_id, op_id) for op_id in op_ids],
                )
        except sqlite3.Error as err:
            raise self._fail(err, f"recording intents of job {job_id!r}") from None

    def record_outcomes(self, job_id: str, outcomes: Sequence[OutcomeWrite]) -> None:
        if not outcomes:
            return
        try:
            with self._tx() as db:
                self._locks.fence(db, job_id)
                db.executemany(
                    "UPDATE ops SET status=?, unknown=?, attempts=max(attempts, ?), result=?, graph_id=?, "
                    "error=?, reason=? WHERE job_id=? AND op_id=?",
                    [
                        (
                            o.status.value,
                            int(o.unknown),
                            o.attempts,
                            o.result,
                            o.graph_id,
                            o.error,
                            o.reason,
                            job_id,
                            o.op_id,
                        )
                        for o in outcomes
                    ],
                )
        except sqlite3.Error as err:
            raise self._fail(err, f"recording outcomes of job {job_id!r}") from None

    def mark_unknown(self, job_id: str, op_ids: Sequence[str], unknown: bool) -> None:
        if not op_ids:
            return
        try:
            with self._tx() as db:
                self._locks.fence(db, job_id)
                db.executemany(
                    "UPDATE ops SET unknown=? WHERE job_id=? AND op_id=?",
                    [(int(unknown), job_id, op_id) for op_id in op_ids],
                )
        except sqlite3.Error as err:
            raise self._fail(err, f"recording reconciliation flags of job {job_id!r}") from None

    def iter_ops(self, job_id: str, *, page_size: int = 1000) -> Iterator[JournalOp]:
        def page(after: int) -> list[tuple[Any, ...]]:
            try:
                return self._db.execute(
                    f"SELECT {OP_COLUMNS} FROM ops WHERE job_id=? AND seq>? ORDER BY seq LIMIT ?",
                    (job_id, after, page_size),
                ).fetchall()
            except sqlite3.Error as err:
                raise self._fail(err, f"reading operations of job {job_id!r}") from None

        return ops_by_seq(page)

    # --- pacing state (journal-wide) ---------------------------------------------------------------
    def save_pacing(self, records: Sequence[PacingRecord]) -> None:
        """Raises :class:`TypeError` / :class:`ValueError` if a record's ``state`` is not JSON (a caller's
        bug; nothing is written), :class:`~bulk_engine.errors.JournalError` if SQLite fails."""
        if not records:
            return
        batches = pacing_batches(records)
        try:
            with self._tx() as db:
                for lifted, batch in batches:
                    db.executemany(pacing_upsert("pacing", "?", lifted=lifted), batch)
        except sqlite3.Error as err:
            raise self._fail(err, "saving the pacing state") from None

    def load_pacing(self) -> list[PacingRecord]:
        try:
            rows = self._db.execute(f"SELECT {PACING_COLUMNS} FROM pacing").fetchall()
        except sqlite3.Error as err:
            raise self._fail(err, "reading the pacing state") from None
        return pacing_records(rows, self.location)

    # --- run records --------------------------------------------------------------------------------
    def save_run(self, record: RunRecord) -> None:
        try:
            with self._tx() as db:
                db.execute(_SAVE_RUN, run_params(record))
        except sqlite3.Error as err:
            raise self._fail(err, f"recording run {record.number} of job {record.job_id!r}") from None

    def load_runs(self, job_id: str) -> list[RunRecord]:
        try:
            rows = self._db.execute(
                f"SELECT {', '.join(RUN_FIELDS)} FROM runs WHERE job_id=? ORDER BY number, started_at",
                (job_id,),
            ).fetchall()
        except sqlite3.Error as err:
            raise self._fail(err, f"reading the runs of job {job_id!r}") from None
        return [run_from_row(row) for row in rows]

    # --- async request sets -------------------------------------------------------------------------
    def save_async_set(self, record: AsyncSetRecord) -> None:
        try:
            with self._tx() as db:
                db.execute(_SAVE_ASYNC_SET, async_set_row(record))
        except sqlite3.Error as err:
            raise self._fail(err, f"recording async request set {record.name!r}") from None

    def load_async_sets(self, job_id: str) -> list[AsyncSetRecord]:
        try:
            rows = self._db.execute(
                f"SELECT {ASYNC_SET_COLUMNS} FROM async_sets WHERE job_id=? AND done=0 ORDER BY rowid",
                (job_id,),
            ).fetchall()
        except sqlite3.Error as err:
            raise self._fail(err, f"reading the async request sets of job {job_id!r}") from None
        return [async_set_from_row(row) for row in rows]

    # --- job locks (sqlite_lock) ----------------------------------------------------------------
    def acquire_lock(self, job_id: str, owner: LockOwner) -> None:
        self._locks.acquire(job_id, owner)

    def refresh_lock(self, job_id: str, owner: LockOwner) -> None:
        self._locks.refresh(job_id, owner)

    def release_lock(self, job_id: str, owner: LockOwner) -> None:
        """Never raises: a row left by a failed delete is stale once this process no longer holds it."""
        self._locks.release(job_id, owner)

    def get_lock(self, job_id: str) -> JobLock | None:
        return self._locks.get(job_id)

    def close(self) -> None:
        """Release the locks taken through this journal, then close the file."""
        self._locks.close()
        self._file.close()
