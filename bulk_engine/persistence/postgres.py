"""A :class:`~bulk_engine.persistence.journal.Journal` in PostgreSQL: one journal shared by every worker of a
distributed Airflow (Celery, Kubernetes), every machine of a team, with the job lock enforced by the server.

``PostgresJournal("postgresql://user:pw@host:5432/db?schema=meta_bulk")`` (or ``open_journal(url)``). The
``schema`` query parameter (default ``meta_bulk``) names the PostgreSQL schema holding the journal's tables:
like one SQLite file, one schema holds any number of jobs (keyed by job id) and one set of pacing records,
so several teams or environments can share a database with a schema each. Every other URL parameter goes to
libpq as it is (``sslmode``, ``connect_timeout``, ``options=-csynchronous_commit%3Doff``…).

Same semantics as :class:`~bulk_engine.persistence.sqlite.SqliteJournal`:

* writes are grouped — the plans of a window, the intents of one HTTP batch, the outcomes of one HTTP
  batch — and each group is one transaction: a single statement (one round trip, atomic without
  ``BEGIN``/``COMMIT``) whose rows travel as arrays through ``unnest`` and which checks the job's lock
  itself (fencing: :mod:`~bulk_engine.persistence.postgres_lock`);
* the schema is versioned and migrated on open, and a schema that is not a journal of this version is
  refused, never written into (:mod:`~bulk_engine.persistence.postgres_schema`);
* pacing records (the governor's parks and last readings) are schema-wide, merged as
  :func:`~bulk_engine.persistence.journal.merge_pacing` says (newest wins, an unexpired park stands unless
  lifted), so every worker of an account starts from, and keeps reading, the same memory; run records are
  upserted by run id.

**The job lock** is a session-level advisory lock held by the server for as long as the holder's connection
lives, plus a row of ``job_locks`` naming the holder; liveness is the server's to judge, not a lease
(:mod:`~bulk_engine.persistence.postgres_lock`).

**Synchronous, on the event loop**, like SQLite: the :class:`Journal` protocol is synchronous (the
session's intent must be committed before the batch leaves anyway). A transaction costs a few loopback
round trips (see ``bench/journal_backends.py`` for figures); over a network each round trip adds its
latency to the event loop, which the batches' own latency dwarfs. Connections and credentials:
:mod:`~bulk_engine.persistence.postgres_connections` (a pool; a write that failed on a broken connection is
retried once on a new one; the password is used to connect and nowhere else — :attr:`location` is the URL
without it).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import psycopg

from bulk_engine.errors import JournalError

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
from .lock import JobLock, LockOwner, lost_error
from .postgres_connections import DEFAULT_SCHEMA, PostgresConnections, PostgresTarget
from .postgres_lock import PostgresLocks
from .postgres_schema import APPLICATION, SCHEMA_VERSION, prepare_schema
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

__all__ = ["APPLICATION", "DEFAULT_SCHEMA", "SCHEMA_VERSION", "PostgresJournal", "PostgresTarget"]

logger = logging.getLogger("bulk_engine.journal")

ANALYZE_FIRST_AT = 1000  # plans written before the first ANALYZE of the ops table (then doubling)


def _no_nul(value: str) -> str:
    """PostgreSQL text cannot hold NUL; a reason quoting one keeps the rest (JSON columns escape it)."""
    return value.replace("\x00", "\ufffd") if "\x00" in value else value


def _text(value: str | None) -> str | None:
    return None if value is None else _no_nul(value)


class PostgresJournal:
    """A journal in a PostgreSQL schema (created and migrated on open). Holds any number of jobs.

    Use it from one thread (the engine's event loop); close it when done (``with PostgresJournal(u) as j``).
    """

    keeps_plans = True

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 4,
        connect_timeout_s: float = 30.0,
    ) -> None:
        self.target = PostgresTarget.parse(url)
        self.schema = self.target.schema
        self._s = f'"{self.schema}"'
        self._planned = 0  # plans written through this journal (statistics schedule: _analyze)
        self._analyze_at = ANALYZE_FIRST_AT
        self._connections = PostgresConnections(self.target, connect_timeout_s=connect_timeout_s)
        self._call = self._connections.call
        self._locks = PostgresLocks(self._connections)
        prepare_schema(self._connections)
        self._connections.open_pool(pool_size)

    def __repr__(self) -> str:
        return f"PostgresJournal({self.location!r})"

    def __enter__(self) -> PostgresJournal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def location(self) -> str:
        return self.target.location

    def forget_advice(self, job_id: str) -> str:
        """How to forget a job in this journal (for :func:`~.journal.refusal_advice`): its rows, not a file."""
        pattern = job_id.replace("%", r"\%").replace("_", r"\_") + "/%"
        where = f"job_id = '{job_id}' OR job_id LIKE '{pattern}'"
        tables = ", ".join(f"{self._s}.{t}" for t in ("ops", "runs", "jobs"))
        return f"or forget the earlier job: delete its rows ({where}) from {tables} and run again"

    # --- jobs -----------------------------------------------------------------------------------
    def open_job(self, job_id: str, fingerprint: str | None, options: Mapping[str, Any]) -> JournalJob:
        s = self._s

        def body(conn: psycopg.Connection[Any]) -> None:
            now = time.time()
            conn.execute(
                f"INSERT INTO {s}.jobs ({JOB_COLUMNS}) VALUES (%s, %s, %s, true, %s, %s) "
                "ON CONFLICT (job_id) DO NOTHING",
                (job_id, fingerprint, canonical(dict(options)), now, now),
            )
            found = self._job_row(conn, job_id, lock=True)
            assert found is not None
            check_fingerprint(self, found, fingerprint)
            if fingerprint is not None and found.fingerprint is None:
                conn.execute(f"UPDATE {s}.jobs SET fingerprint = %s WHERE job_id = %s", (fingerprint, job_id))

        self._call(f"opening job {job_id!r}", body)
        job = self.get_job(job_id)
        assert job is not None
        return job

    def _job_row(
        self, conn: psycopg.Connection[Any], job_id: str, *, lock: bool = False
    ) -> JournalJob | None:
        row = conn.execute(
            f"SELECT {JOB_COLUMNS} FROM {self._s}.jobs WHERE job_id = %s{' FOR UPDATE' if lock else ''}",
            (job_id,),
        ).fetchone()
        return None if row is None else job_from_row(row, self.location)

    def get_job(self, job_id: str) -> JournalJob | None:
        def body(conn: psycopg.Connection[Any]) -> JournalJob | None:
            job = self._job_row(conn, job_id)
            if job is None:
                return None
            counts = conn.execute(
                f"SELECT status, count(*) FROM {self._s}.ops WHERE job_id = %s GROUP BY status", (job_id,)
            )
            return dataclasses.replace(job, counts=status_counts(counts))

        return self._call(f"reading job {job_id!r}", body)

    def job_ids(self) -> list[str]:
        return self._call(
            "listing jobs",
            lambda conn: [
                r[0] for r in conn.execute(f"SELECT job_id FROM {self._s}.jobs ORDER BY created_at, job_id")
            ],
        )

    # --- operations -----------------------------------------------------------------------------
    def get_ops(self, job_id: str, op_ids: Sequence[str]) -> dict[str, JournalOp]:
        if not op_ids:
            return {}

        def body(conn: psycopg.Connection[Any]) -> dict[str, JournalOp]:
            rows = conn.execute(
                f"SELECT {OP_COLUMNS} FROM {self._s}.ops WHERE job_id = %s AND op_id = ANY(%s)",
                (job_id, list(op_ids)),
            )
            return {op.op_id: op for op in map(op_from_row, rows)}

        return self._call(f"reading operations of job {job_id!r}", body, tx=False)

    def add_plans(self, job_id: str, plans: Sequence[PlanWrite]) -> None:
        if not plans:
            return
        s = self._s
        self._write(
            f"recording plans of job {job_id!r}",
            job_id,
            [
                f"INSERT INTO {s}.ops (job_id, op_id, seq, plan, digest, kind, account_id, status, unknown) "
                "SELECT %(job)s, u.op_id, base.top + u.n, u.plan, u.digest, u.kind, u.account_id, 'planned', "
                "u.unknown FROM unnest(%(ids)s::text[], %(plans)s::text[], %(digests)s::text[], "
                "%(kinds)s::text[], %(accounts)s::text[], %(unknown)s::boolean[]) "
                "WITH ORDINALITY AS u(op_id, plan, digest, kind, account_id, unknown, n), "
                f"(SELECT coalesce(max(seq), 0) AS top FROM {s}.ops WHERE job_id = %(job)s) AS base "
                "WHERE EXISTS (SELECT 1 FROM ok) ORDER BY u.n ON CONFLICT (job_id, op_id) DO NOTHING",
                f"UPDATE {s}.jobs SET updated_at = %(now)s, ordered = (ordered AND %(backward)s) "
                "WHERE job_id = %(job)s AND EXISTS (SELECT 1 FROM ok)",
            ],
            {
                "ids": [p.op_id for p in plans],
                "plans": [p.plan for p in plans],
                "digests": [p.digest for p in plans],
                "kinds": [p.kind for p in plans],
                "accounts": [p.account_id for p in plans],
                "unknown": [p.unknown for p in plans],
                "now": time.time(),
                "backward": all(p.backward_refs for p in plans),
            },
        )
        self._planned += len(plans)
        if self._planned >= self._analyze_at:
            self._analyze()

    def _analyze(self) -> None:
        """``ANALYZE`` the ops table at 1,000, 2,000, 4,000… plans written through this journal.

        Why: a new job's table grows faster than autovacuum (once a minute) samples it, and without
        statistics the planner picks the ``(job_id, seq)`` index for the per-batch updates by op id and
        scans the whole job each time: measured 0.7 ms per intent at 250 ops, 5 ms at 10,000. Doubling keeps
        it to ~10 ANALYZEs (each a bounded sample) over a 1,000,000-op job.
        """
        self._analyze_at = max(2 * self._analyze_at, self._planned + 1)
        try:
            self._call(
                "analysing the ops table", lambda conn: conn.execute(f"ANALYZE {self._s}.ops"), tx=False
            )
        except JournalError as err:  # e.g. another role owns the table: only slower, never wrong
            logger.debug("%s", err)

    def mark_sent(self, job_id: str, op_ids: Sequence[str]) -> None:
        if not op_ids:
            return
        self._write(
            f"recording intents of job {job_id!r}",
            job_id,
            [
                f"UPDATE {self._s}.ops SET status = 'sent', unknown = true, attempts = attempts + 1 "
                "WHERE job_id = %(job)s AND op_id = ANY(%(ids)s) AND EXISTS (SELECT 1 FROM ok)"
            ],
            {"ids": list(op_ids)},
        )

    def record_outcomes(self, job_id: str, outcomes: Sequence[OutcomeWrite]) -> None:
        if not outcomes:
            return
        last = list({o.op_id: o for o in outcomes}.values())  # an op twice: the later outcome stands
        self._write(
            f"recording outcomes of job {job_id!r}",
            job_id,
            [
                f"UPDATE {self._s}.ops AS o SET status = u.status, unknown = u.unknown, "
                "attempts = greatest(o.attempts, u.attempts), result = u.result, graph_id = u.graph_id, "
                "error = u.error, reason = u.reason FROM unnest(%(ids)s::text[], %(states)s::text[], "
                "%(unknown)s::boolean[], %(attempts)s::integer[], %(results)s::text[], %(graph_ids)s::text[], "
                "%(errors)s::text[], %(reasons)s::text[]) "
                "AS u(op_id, status, unknown, attempts, result, graph_id, error, reason) "
                # ANY(…) as well as the join: the primary key is used even before the table is analysed
                "WHERE o.job_id = %(job)s AND o.op_id = ANY(%(ids)s) AND o.op_id = u.op_id "
                "AND EXISTS (SELECT 1 FROM ok)"
            ],
            {
                "ids": [o.op_id for o in last],
                "states": [o.status.value for o in last],
                "unknown": [o.unknown for o in last],
                "attempts": [o.attempts for o in last],
                "results": [o.result for o in last],
                "graph_ids": [o.graph_id for o in last],
                "errors": [_text(o.error) for o in last],
                "reasons": [_text(o.reason) for o in last],
            },
        )

    def mark_unknown(self, job_id: str, op_ids: Sequence[str], unknown: bool) -> None:
        if not op_ids:
            return
        self._write(
            f"recording reconciliation flags of job {job_id!r}",
            job_id,
            [
                f"UPDATE {self._s}.ops SET unknown = %(flag)s WHERE job_id = %(job)s AND op_id = ANY(%(ids)s) "
                "AND EXISTS (SELECT 1 FROM ok)"
            ],
            {"ids": list(op_ids), "flag": unknown},
        )

    def _write(self, doing: str, job_id: str, writes: Sequence[str], params: Mapping[str, Any]) -> None:
        """The writes of one group as one statement — one round trip, atomic without BEGIN/COMMIT — fenced
        by the job's lock: ``FOR SHARE`` on the ``job_locks`` row makes a takeover wait for this write (or
        this write see the takeover), and every write is conditioned on ``ok``, the row still being this
        journal's. A refused write changes nothing and raises :class:`JobLockedError`."""
        token = self._locks.token(job_id)
        ctes = ", ".join(f"w{i} AS ({write} RETURNING 1)" for i, write in enumerate(writes))
        statement = (
            f"WITH f AS (SELECT owner FROM {self._s}.job_locks WHERE job_id = %(job)s FOR SHARE), "
            "ok AS (SELECT 1 WHERE %(token)s::text IS NULL OR EXISTS (SELECT 1 FROM f WHERE owner = %(token)s)), "
            f"{ctes} SELECT EXISTS (SELECT 1 FROM ok)"
        )

        def body(conn: psycopg.Connection[Any]) -> bool:
            row = conn.execute(statement, {**params, "job": job_id, "token": token}).fetchone()
            return bool(row and row[0])

        if not self._call(doing, body, tx=False):
            raise lost_error(self.location, job_id, self.get_lock(job_id), now=time.time())
        self._locks.beat_if_due(job_id)

    def iter_ops(self, job_id: str, *, page_size: int = 1000) -> Iterator[JournalOp]:
        query = f"SELECT {OP_COLUMNS} FROM {self._s}.ops WHERE job_id = %s AND seq > %s ORDER BY seq LIMIT %s"

        def page(after: int) -> list[tuple[Any, ...]]:
            return self._call(
                f"reading operations of job {job_id!r}",
                lambda conn: conn.execute(query, (job_id, after, page_size)).fetchall(),
                tx=False,
            )

        return ops_by_seq(page)

    # --- pacing state (schema-wide) -----------------------------------------------------------------
    def save_pacing(self, records: Sequence[PacingRecord]) -> None:
        """Raises :class:`TypeError` / :class:`ValueError` if a record's ``state`` is not JSON (a caller's
        bug; nothing is written), :class:`~bulk_engine.errors.JournalError` if PostgreSQL fails."""
        if not records:
            return
        newest: dict[str, PacingRecord] = {}
        for r in records:  # one statement cannot upsert a scope twice
            if r.scope not in newest or r.updated_at >= newest[r.scope].updated_at:
                newest[r.scope] = r
        batches = pacing_batches(list(newest.values()), text=_no_nul)

        def body(conn: psycopg.Connection[Any]) -> None:
            for lifted, batch in batches:
                conn.cursor().executemany(pacing_upsert(f"{self._s}.pacing", "%s", lifted=lifted), batch)

        self._call("saving the pacing state", body)

    def load_pacing(self) -> list[PacingRecord]:
        rows = self._call(
            "reading the pacing state",
            lambda conn: conn.execute(f"SELECT {PACING_COLUMNS} FROM {self._s}.pacing").fetchall(),
        )
        return pacing_records(rows, self.location)

    # --- run records --------------------------------------------------------------------------------
    def save_run(self, record: RunRecord) -> None:
        self._call(
            f"recording run {record.number} of job {record.job_id!r}",
            lambda conn: conn.execute(
                run_upsert(f"{self._s}.runs", lambda c: f"%({c})s"), run_params(record)
            ),
        )

    def load_runs(self, job_id: str) -> list[RunRecord]:
        rows = self._call(
            f"reading the runs of job {job_id!r}",
            lambda conn: conn.execute(
                f"SELECT {', '.join(RUN_FIELDS)} FROM {self._s}.runs WHERE job_id = %s "
                "ORDER BY number, started_at",
                (job_id,),
            ).fetchall(),
        )
        return [run_from_row(row) for row in rows]

    # --- async request sets -------------------------------------------------------------------------
    def save_async_set(self, record: AsyncSetRecord) -> None:
        self._call(
            f"recording async request set {record.name!r}",
            lambda conn: conn.execute(async_set_upsert(f"{self._s}.async_sets", "%s"), async_set_row(record)),
        )

    def load_async_sets(self, job_id: str) -> list[AsyncSetRecord]:
        rows = self._call(
            f"reading the async request sets of job {job_id!r}",
            lambda conn: conn.execute(
                f"SELECT {ASYNC_SET_COLUMNS} FROM {self._s}.async_sets WHERE job_id = %s AND NOT done "
                "ORDER BY seq",
                (job_id,),
            ).fetchall(),
        )
        return [async_set_from_row(row) for row in rows]

    # --- job locks (postgres_lock) ---------------------------------------------------------------
    def acquire_lock(self, job_id: str, owner: LockOwner) -> None:
        self._locks.acquire(job_id, owner)

    def refresh_lock(self, job_id: str, owner: LockOwner) -> None:
        self._locks.refresh(job_id, owner)

    def release_lock(self, job_id: str, owner: LockOwner) -> None:
        """Never raises: the advisory lock goes with its connection, whatever happens to the row."""
        self._locks.release(job_id, owner)

    def get_lock(self, job_id: str) -> JobLock | None:
        return self._locks.get(job_id)

    def close(self) -> None:
        """Release the locks taken through this journal, then close its connections."""
        if self._connections.closed:
            return
        self._locks.release_all()
        self._connections.close()
