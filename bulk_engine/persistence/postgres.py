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
  itself (fencing, below);
* the schema is versioned (table ``journal_meta``: the application's name and the schema version) and
  migrated on open, under a transaction-level advisory lock so two processes opening a new schema at once
  do not race; a schema holding other tables, another application's marker, a newer version or tables
  missing columns is refused with :class:`~bulk_engine.errors.JournalError`, never written into;
* pacing records (the governor's parks and last readings) are schema-wide, merged as
  :func:`~bulk_engine.persistence.journal.merge_pacing` says (newest wins, an unexpired park stands unless
  lifted), so every worker of an account starts from, and keeps reading, the same memory; run records are
  upserted by run id.

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
the same statement so a takeover and a write are serialised (fencing, as in SQLite), and the heartbeat (every ``REFRESH_EVERY_S``) also checks that the lock connection is alive: a
lost lock connection is re-taken if nobody else took the lock meanwhile, otherwise the run stops with
:class:`~bulk_engine.errors.JobLockedError` before sending anything more. Connect to the server directly
or through a session-pooling proxy: a transaction-pooling PgBouncer cannot hold session locks.

**Synchronous, on the event loop**, like SQLite: the :class:`Journal` protocol is synchronous (the
session's intent must be committed before the batch leaves anyway). A transaction costs a few loopback
round trips (see ``bench/journal_backends.py`` for figures); over a network each round trip adds its
latency to the event loop, which the batches' own latency dwarfs. Connections come from a
``psycopg_pool.ConnectionPool`` (a dropped connection is replaced; a write that failed on a broken
connection is retried once on a new one: every write is idempotent or, for ``attempts``, harmless twice).

**Credentials**: the URL's password is used to connect and nowhere else. :attr:`location` (in every
message, ``repr`` and log line) is the URL without it, and PostgreSQL's error texts are scrubbed of it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import re
import socket
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg_pool import ConnectionPool

from bulk_engine.errors import JobLockedError, JournalError
from bulk_engine.scrub import Scrubber

from .codec import canonical
from .journal import (
    AsyncSetRecord,
    JournalJob,
    JournalOp,
    OpStatus,
    OutcomeWrite,
    PacingRecord,
    PlanWrite,
    RunRecord,
    check_fingerprint,
)
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
from .rows import (
    OP_COLUMNS,
    RUN_FIELDS,
    async_set_from_row,
    async_set_row,
    op_from_row,
    pacing_from_row,
    pacing_upsert,
    run_from_row,
)

__all__ = ["APPLICATION", "DEFAULT_SCHEMA", "SCHEMA_VERSION", "PostgresJournal", "PostgresTarget"]

logger = logging.getLogger("bulk_engine.journal")

APPLICATION = "bulk-engine-journal"  # journal_meta.application: marks the schema as a bulk-engine journal
SCHEMA_VERSION = 2  # PostgreSQL's own numbering (SQLite's is at 5 with the same tables); 2: + async_sets
DEFAULT_SCHEMA = "meta_bulk"
ANALYZE_FIRST_AT = 1000  # plans written before the first ANALYZE of the ops table (then doubling)
DEAD_HOLDER_WAIT_S = 10.0  # how long a takeover waits for the server to free a dead local holder's lock
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_T = TypeVar("_T")

# One list of statements per version: opening a schema at version v applies v+1 … SCHEMA_VERSION in order.
_MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        "CREATE TABLE {s}.journal_meta (key text PRIMARY KEY, value text NOT NULL)",
        """CREATE TABLE {s}.jobs (
            job_id text PRIMARY KEY, fingerprint text, options text NOT NULL, ordered boolean NOT NULL,
            created_at double precision NOT NULL, updated_at double precision NOT NULL)""",
        """CREATE TABLE {s}.ops (
            job_id text NOT NULL, op_id text NOT NULL, seq bigint NOT NULL, plan text NOT NULL,
            digest text NOT NULL, kind text NOT NULL, account_id text NOT NULL, status text NOT NULL,
            unknown boolean NOT NULL DEFAULT false, attempts integer NOT NULL DEFAULT 0, result text,
            graph_id text, error text, reason text, PRIMARY KEY (job_id, op_id))""",
        "CREATE UNIQUE INDEX ops_by_seq ON {s}.ops (job_id, seq)",
        # every op is written 2-3 times (plan, intent, outcome): vacuum and analyse it sooner than the default
        "ALTER TABLE {s}.ops SET (autovacuum_vacuum_scale_factor = 0.05, autovacuum_analyze_scale_factor = 0.02)",
        """CREATE TABLE {s}.job_locks (
            job_id text PRIMARY KEY, owner text NOT NULL, pid integer NOT NULL, host text NOT NULL,
            process text NOT NULL DEFAULT '', acquired_at double precision NOT NULL,
            heartbeat_at double precision NOT NULL, backend_pid integer)""",
        """CREATE TABLE {s}.pacing (
            scope text PRIMARY KEY, parked_until double precision NOT NULL, reason text NOT NULL,
            usage_pct double precision, state text NOT NULL, updated_at double precision NOT NULL)""",
        """CREATE TABLE {s}.runs (
            job_id text NOT NULL, run_id text NOT NULL, number integer NOT NULL, state text NOT NULL,
            started_at double precision NOT NULL, updated_at double precision NOT NULL,
            ended_at double precision, http_requests integer NOT NULL, graph_calls integer NOT NULL,
            retries integer NOT NULL, throttle_events integer NOT NULL, unknown_outcomes integer NOT NULL,
            lookups integer NOT NULL, recovered integer NOT NULL, elapsed_s double precision NOT NULL,
            succeeded integer NOT NULL, failed integer NOT NULL, skipped integer NOT NULL, error text,
            PRIMARY KEY (job_id, run_id))""",
    ),
    2: (  # the async backend's submitted request sets (AsyncSetRecord; names as JSON text)
        """CREATE TABLE {s}.async_sets (
            job_id text NOT NULL, name text NOT NULL, set_id text, account_id text NOT NULL,
            names text NOT NULL, submitted_at double precision NOT NULL, done boolean NOT NULL, seq bigserial,
            PRIMARY KEY (job_id, name))""",
    ),
}
_COLUMNS = {  # what every table must have for this version to use it (checked on open)
    "journal_meta": {"key", "value"},
    "jobs": {"job_id", "fingerprint", "options", "ordered", "created_at", "updated_at"},
    "ops": {c.strip() for c in OP_COLUMNS.split(",")} | {"job_id"},
    "job_locks": {"job_id", "owner", "pid", "host", "process", "acquired_at", "heartbeat_at", "backend_pid"},
    "pacing": {"scope", "parked_until", "reason", "usage_pct", "state", "updated_at"},
    "runs": set(RUN_FIELDS),
    "async_sets": {"job_id", "name", "set_id", "account_id", "names", "submitted_at", "done", "seq"},
}
_KEEPALIVE = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5, "keepalives_count": 3}
# The server side of the same: a lock holder whose host vanished loses its lock within about 25 s.
_LOCK_SESSION = (
    "SET tcp_keepalives_idle = 10",
    "SET tcp_keepalives_interval = 5",
    "SET tcp_keepalives_count = 3",
    "SET idle_in_transaction_session_timeout = 0",
)


@dataclass(frozen=True)
class PostgresTarget:
    """A journal URL taken apart: what libpq gets, the schema, and the password-free form for messages."""

    conninfo: str = dataclasses.field(repr=False)  # holds the password: never printed
    schema: str
    location: str
    secrets: tuple[str, ...] = dataclasses.field(repr=False, default=())

    @classmethod
    def parse(cls, url: str) -> PostgresTarget:
        """Raises :class:`JournalError` (naming the URL without its password) for a bad URL or schema."""
        parts = urlsplit(url)
        password = parts.password or ""
        query = parse_qsl(parts.query, keep_blank_values=True)
        password = password or next((v for k, v in query if k == "password"), "")
        scrub = Scrubber([password] if password else [])
        if parts.scheme not in ("postgresql", "postgres"):
            raise JournalError(f"journal {scrub(url)}: not a postgresql:// URL")
        schema = next((v for k, v in query if k == "schema"), DEFAULT_SCHEMA)
        rest = [(k, v) for k, v in query if k != "schema"]
        conninfo = urlunsplit(("postgresql", parts.netloc, parts.path, urlencode(rest), ""))
        try:
            info = psycopg.conninfo.conninfo_to_dict(conninfo)
        except psycopg.Error as err:
            raise JournalError(
                f"journal {_bare(parts)}: not a valid PostgreSQL URL ({scrub(str(err))})"
            ) from None
        location = "postgresql://{user}{host}{port}/{db}?schema={schema}".format(
            user=f"{info['user']}@" if info.get("user") else "",
            host=info.get("host") or "",
            port=f":{info['port']}" if info.get("port") else "",
            db=info.get("dbname") or "",
            schema=schema,
        )
        if not _SCHEMA_NAME.match(schema):
            raise JournalError(
                f"journal {location}: schema {schema!r} is not a plain lower-case SQL name "
                "(letters, digits, underscore; at most 63)"
            )
        return cls(conninfo, schema, location, (password,) if password else ())


def _bare(parts: Any) -> str:
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}{parts.path}"


def _lock_key(schema: str, job_id: str) -> int:
    """The advisory lock's 64-bit key of a job (signed, as PostgreSQL's bigint)."""
    digest = hashlib.sha256(f"bulk-engine-job\0{schema}\0{job_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _setup_key(schema: str) -> int:
    digest = hashlib.sha256(f"bulk-engine-setup\0{schema}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _text(value: str | None) -> str | None:
    """PostgreSQL text cannot hold NUL; a reason quoting one keeps the rest (JSON columns escape it)."""
    return value.replace("\x00", "\ufffd") if value is not None and "\x00" in value else value


@dataclass
class _Held:
    owner: LockOwner
    conn: psycopg.Connection[Any]  # holds the advisory lock: closing it releases the lock
    beat: float  # monotonic time of the last heartbeat


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
        self._scrub = Scrubber(self.target.secrets)
        self._held: dict[str, _Held] = {}
        self._closed = False
        self._planned = 0  # plans written through this journal (statistics schedule: _analyze)
        self._analyze_at = ANALYZE_FIRST_AT
        self._connect_timeout_s = connect_timeout_s
        self._setup()
        self._pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            self.target.conninfo,
            min_size=1,
            max_size=max(2, pool_size),  # refusal_advice reads while open_job's transaction is open
            # No server-side prepared statements: a generic plan cached while a job's table was small
            # would keep scanning it as it grows, and a transaction-pooling proxy could not keep them.
            kwargs={"autocommit": True, "application_name": "bulk-engine journal", "prepare_threshold": None},
            name="bulk-engine-journal",
            timeout=connect_timeout_s,
            open=False,
        )
        try:
            self._pool.open(wait=True, timeout=connect_timeout_s)
        except psycopg.Error as err:
            self._pool.close()
            raise self._fail(err, "connecting") from None

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

    # --- plumbing -----------------------------------------------------------------------------------
    def _fail(self, err: psycopg.Error, doing: str) -> JournalError:
        text = self._scrub(str(err).strip()) or type(err).__name__
        return JournalError(f"journal {self.location}: PostgreSQL error while {doing}: {text}")

    def _connect(self, **extra: Any) -> psycopg.Connection[Any]:
        return psycopg.connect(
            self.target.conninfo,
            autocommit=True,
            connect_timeout=max(1, int(self._connect_timeout_s)),
            **extra,
        )

    def _call(self, doing: str, body: Callable[[psycopg.Connection[Any]], _T], *, tx: bool = True) -> _T:
        """Run ``body`` on a pooled connection, in one transaction (``tx``; a single statement is atomic
        without one); once more on a fresh connection if the first one broke (server restart, failover, a
        dropped idle connection)."""
        if self._closed:
            raise JournalError(f"journal {self.location}: it is closed")
        for attempt in (1, 2):
            try:
                with self._pool.connection() as conn:
                    try:
                        if not tx:
                            return body(conn)
                        with conn.transaction():
                            return body(conn)
                    except psycopg.OperationalError:
                        if attempt == 1 and conn.broken:
                            continue
                        raise
            except psycopg.Error as err:
                raise self._fail(err, doing) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _setup(self) -> None:
        s = self._s
        try:
            with self._connect() as conn, conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_setup_key(self.schema),))
                columns: dict[str, set[str]] = {}
                for table, column in conn.execute(
                    "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = %s",
                    (self.schema,),
                ):
                    columns.setdefault(table, set()).add(column)
                version = self._version(conn, columns)
                if version == 0:
                    conn.execute(f"CREATE SCHEMA IF NOT EXISTS {s}")
                for step in range(version + 1, SCHEMA_VERSION + 1):
                    for statement in _MIGRATIONS[step]:
                        conn.execute(statement.format(s=s))
                if version < SCHEMA_VERSION:
                    conn.execute(
                        f"INSERT INTO {s}.journal_meta (key, value) VALUES ('application', %s), "
                        "('schema_version', %s) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                        (APPLICATION, str(SCHEMA_VERSION)),
                    )
                    if version:
                        logger.info(
                            "journal %s: schema migrated from version %d to %d",
                            self.location,
                            version,
                            SCHEMA_VERSION,
                        )
        except psycopg.Error as err:
            raise self._fail(err, "opening it") from None

    def _version(self, conn: psycopg.Connection[Any], columns: Mapping[str, set[str]]) -> int:
        """The schema's journal version (0: empty or new), or a refusal of what it holds."""
        where = f"journal {self.location}"
        if not columns:
            return 0
        if "journal_meta" not in columns:
            found = ", ".join(sorted(columns)[:5])
            raise JournalError(
                f"{where}: schema {self.schema!r} holds tables of another application ({found}), not a "
                "bulk-engine journal; refusing to write into it (choose another ?schema=)"
            )
        meta = dict(conn.execute(f"SELECT key, value FROM {self._s}.journal_meta").fetchall())
        if meta.get("application") != APPLICATION:
            raise JournalError(
                f"{where}: schema {self.schema!r} is not a bulk-engine journal (journal_meta names "
                f"{meta.get('application')!r}); refusing to write into it"
            )
        try:
            version = int(meta.get("schema_version", ""))
        except ValueError:
            raise JournalError(
                f"{where}: the journal is corrupt (schema_version {meta.get('schema_version')!r})"
            ) from None
        if version > SCHEMA_VERSION:
            raise JournalError(
                f"{where}: written by a newer bulk-engine (schema {version} > {SCHEMA_VERSION}); upgrade "
                "bulk-engine to resume it"
            )
        if version == SCHEMA_VERSION:
            damaged = {t: sorted(need - columns.get(t, set())) for t, need in _COLUMNS.items()}
            damaged = {t: missing for t, missing in damaged.items() if missing}
            if damaged:
                raise JournalError(
                    f"{where}: the journal is corrupt: missing tables or columns {damaged} (dropped or "
                    "changed by hand?); refusing to use it"
                )
        return version

    # --- jobs -----------------------------------------------------------------------------------
    def open_job(self, job_id: str, fingerprint: str | None, options: Mapping[str, Any]) -> JournalJob:
        s = self._s

        def body(conn: psycopg.Connection[Any]) -> None:
            now = time.time()
            conn.execute(
                f"INSERT INTO {s}.jobs (job_id, fingerprint, options, ordered, created_at, updated_at) "
                "VALUES (%s, %s, %s, true, %s, %s) ON CONFLICT (job_id) DO NOTHING",
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
            f"SELECT job_id, fingerprint, options, ordered, created_at, updated_at FROM {self._s}.jobs "
            f"WHERE job_id = %s{' FOR UPDATE' if lock else ''}",
            (job_id,),
        ).fetchone()
        if row is None:
            return None
        try:
            options = json.loads(row[2])
        except ValueError:
            raise JournalError(f"journal {self.location}: job {job_id!r} has unreadable options") from None
        return JournalJob(row[0], row[1], options, bool(row[3]), row[4], row[5])

    def get_job(self, job_id: str) -> JournalJob | None:
        def body(conn: psycopg.Connection[Any]) -> JournalJob | None:
            job = self._job_row(conn, job_id)
            if job is None:
                return None
            counts = {status.value: 0 for status in OpStatus}
            for status, count in conn.execute(
                f"SELECT status, count(*) FROM {self._s}.ops WHERE job_id = %s GROUP BY status", (job_id,)
            ):
                counts[status] = count
            return dataclasses.replace(job, counts=counts)

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
        mine = self._held.get(job_id)
        token = mine.owner.token if mine is not None else None
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
        if mine is not None and time.monotonic() - mine.beat >= REFRESH_EVERY_S:
            self.refresh_lock(job_id, mine.owner)

    def iter_ops(self, job_id: str, *, page_size: int = 1000) -> Iterator[JournalOp]:
        query = f"SELECT {OP_COLUMNS} FROM {self._s}.ops WHERE job_id = %s AND seq > %s ORDER BY seq LIMIT %s"
        last = 0
        while True:

            def page(conn: psycopg.Connection[Any], after: int = last) -> list[tuple[Any, ...]]:
                return conn.execute(query, (job_id, after, page_size)).fetchall()

            rows = self._call(f"reading operations of job {job_id!r}", page, tx=False)
            if not rows:
                return
            for row in rows:
                yield op_from_row(row)
            last = rows[-1][1]

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
        rows = [
            (
                r.lifted,
                (
                    r.scope,
                    r.parked_until,
                    _text(r.reason),
                    r.usage_pct,
                    canonical(dict(r.state)),
                    r.updated_at,
                ),
            )
            for r in newest.values()
        ]

        def body(conn: psycopg.Connection[Any]) -> None:
            for lifted in (False, True):
                batch = [row for flag, row in rows if flag is lifted]
                if batch:
                    conn.cursor().executemany(pacing_upsert(f"{self._s}.pacing", "%s", lifted=lifted), batch)

        self._call("saving the pacing state", body)

    def load_pacing(self) -> list[PacingRecord]:
        rows = self._call(
            "reading the pacing state",
            lambda conn: conn.execute(
                f"SELECT scope, parked_until, reason, usage_pct, state, updated_at FROM {self._s}.pacing"
            ).fetchall(),
        )
        out: list[PacingRecord] = []
        for row in rows:
            record = pacing_from_row(row)
            if isinstance(record, str):
                logger.warning(
                    "journal %s: skipping the pacing state of %r: %s", self.location, row[0], record
                )
                continue
            out.append(record)
        return out

    # --- run records --------------------------------------------------------------------------------
    def save_run(self, record: RunRecord) -> None:
        params = {**dataclasses.asdict(record), "state": record.state.value}
        columns = ", ".join(RUN_FIELDS)
        values = ", ".join(f"%({c})s" for c in RUN_FIELDS)
        updates = ", ".join(f"{c} = excluded.{c}" for c in RUN_FIELDS if c not in ("job_id", "run_id"))
        self._call(
            f"recording run {record.number} of job {record.job_id!r}",
            lambda conn: conn.execute(
                f"INSERT INTO {self._s}.runs AS r ({columns}) VALUES ({values}) ON CONFLICT (job_id, run_id) "
                f"DO UPDATE SET {updates} WHERE excluded.updated_at >= r.updated_at",
                params,
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
        row = async_set_row(record)
        self._call(
            f"recording async request set {record.name!r}",
            lambda conn: conn.execute(
                f"INSERT INTO {self._s}.async_sets "
                "(job_id, name, set_id, account_id, names, submitted_at, done) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (job_id, name) DO UPDATE SET "
                "set_id = excluded.set_id, submitted_at = excluded.submitted_at, done = excluded.done",
                row,
            ),
        )

    def load_async_sets(self, job_id: str) -> list[AsyncSetRecord]:
        rows = self._call(
            f"reading the async request sets of job {job_id!r}",
            lambda conn: conn.execute(
                f"SELECT job_id, name, set_id, account_id, names, submitted_at, done FROM {self._s}.async_sets "
                "WHERE job_id = %s AND NOT done ORDER BY seq",
                (job_id,),
            ).fetchall(),
        )
        return [async_set_from_row(row) for row in rows]

    # --- job locks ------------------------------------------------------------------------------
    def _lock_row(self, conn: psycopg.Connection[Any], job_id: str) -> JobLock | None:
        row = conn.execute(
            f"SELECT owner, pid, host, process, acquired_at, heartbeat_at FROM {self._s}.job_locks "
            "WHERE job_id = %s",
            (job_id,),
        ).fetchone()
        if row is None:
            return None
        return JobLock(job_id, LockOwner(row[0], row[1], row[2], row[3]), row[4], row[5])

    def _lock_connection(self, job_id: str) -> tuple[psycopg.Connection[Any], bool]:
        """A new connection for ``job_id``'s advisory lock, and whether it got the lock."""
        conn = self._connect(**_KEEPALIVE, application_name="bulk-engine job lock")
        try:
            for statement in _LOCK_SESSION:
                conn.execute(statement)
            try:
                conn.execute("SET idle_session_timeout = 0")  # PostgreSQL 14+; older servers have none
            except psycopg.errors.UndefinedObject:
                pass
            row = conn.execute(
                "SELECT pg_try_advisory_lock(%s)", (_lock_key(self.schema, job_id),)
            ).fetchone()
        except BaseException:
            conn.close()
            raise
        return conn, bool(row and row[0])

    def acquire_lock(self, job_id: str, owner: LockOwner) -> None:
        mine = self._held.get(job_id)
        if mine is not None and mine.owner.token == owner.token:
            self.refresh_lock(job_id, owner)  # again by its owner: a heartbeat
            return
        if self._closed:
            raise JournalError(f"journal {self.location}: it is closed")
        try:
            conn, got = self._lock_connection(job_id)
        except psycopg.Error as err:
            raise self._fail(err, f"locking job {job_id!r}") from None
        try:
            if not got:
                found = self.get_lock(job_id)
                if found is not None and not self._await_dead(conn, job_id, found, time.time()):
                    raise locked_error(self.location, found, now=time.time())
            if not got and found is None:
                raise JobLockedError(
                    f"journal {self.location}: job {job_id!r} is being run by another process (it holds the "
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
            raise self._fail(err, f"locking job {job_id!r}") from None
        except BaseException:
            conn.close()
            raise
        self._held[job_id] = _Held(owner, conn, time.monotonic())
        held(owner.token)
        if found is not None and found.owner.token != owner.token:
            let_go(found.owner.token)
            log_takeover(self.location, found, _dead_reason(found, now))

    def _await_dead(self, conn: psycopg.Connection[Any], job_id: str, found: JobLock, now: float) -> bool:
        """Whether ``conn`` got the lock of a holder known dead: on this host, once its pid is gone, the
        server is closing its connection and frees the lock within moments — wait for that (woken by the
        server, at most :data:`DEAD_HOLDER_WAIT_S`) rather than refuse a run the holder can no longer make."""
        if found.owner.host != socket.gethostname() or stale_reason(found, now=now, ttl=float("inf")) is None:
            return False
        try:
            conn.execute(f"SET lock_timeout = {int(DEAD_HOLDER_WAIT_S * 1000)}")
            conn.execute("SELECT pg_advisory_lock(%s)", (_lock_key(self.schema, job_id),))
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
            raise lost_error(self.location, job_id, self._lock_row(conn, job_id), now=time.time())
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
            raise self._fail(err, f"re-taking the lock of job {job_id!r}") from None
        if not got:
            conn.close()
            raise lost_error(self.location, job_id, self.get_lock(job_id), now=time.time())
        logger.warning(
            "journal %s: job %s: the lock's connection was lost; lock taken again", self.location, job_id
        )
        mine.conn = conn

    def refresh_lock(self, job_id: str, owner: LockOwner) -> None:
        self._call(f"refreshing the lock of job {job_id!r}", lambda conn: self._fence(conn, job_id, owner))

    def release_lock(self, job_id: str, owner: LockOwner) -> None:
        """Never raises: the advisory lock goes with its connection, whatever happens to the row."""
        mine = self._held.get(job_id)
        if mine is not None and mine.owner == owner:
            del self._held[job_id]
        else:
            mine = None
        let_go(owner.token)
        try:
            if not self._closed:
                self._call(
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

    def _unlock(self, job_id: str, conn: psycopg.Connection[Any]) -> None:
        """Free the advisory lock before closing its connection: a closed connection's locks are freed
        only once the server has handled the close, so the next runner could still find it taken."""
        try:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_lock_key(self.schema, job_id),))
        except psycopg.Error:
            pass  # a broken connection holds nothing any more
        finally:
            conn.close()

    def get_lock(self, job_id: str) -> JobLock | None:
        return self._call(f"reading the lock of job {job_id!r}", lambda conn: self._lock_row(conn, job_id))

    def close(self) -> None:
        """Release the locks taken through this journal, then close its connections."""
        if self._closed:
            return
        for job_id, mine in list(self._held.items()):
            self.release_lock(job_id, mine.owner)
        self._closed = True
        self._pool.close()


def _dead_reason(lock: JobLock, now: float) -> str:
    """Why the lock we just took from ``lock``'s holder was free: its connection is gone (and, on this host,
    what became of its process)."""
    gone = "its connection to the PostgreSQL server is gone, so the server released its lock"
    detail = stale_reason(lock, now=now, ttl=float("inf"))
    return f"{detail}; {gone}" if detail else gone
