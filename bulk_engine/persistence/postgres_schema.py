"""The PostgreSQL journal's schema: its tables, versioned and migrated on open.

The schema is versioned (table ``journal_meta``: the application's name and the schema version) and migrated
on open, under a transaction-level advisory lock so two processes opening a new schema at once do not race;
a schema holding other tables, another application's marker, a newer version or tables missing columns is
refused with :class:`~bulk_engine.errors.JournalError`, never written into.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from typing import Any

import psycopg

from bulk_engine.errors import JournalError

from .postgres_connections import PostgresConnections
from .rows import (
    ASYNC_SET_COLUMNS,
    JOB_COLUMNS,
    LOCK_COLUMNS,
    OP_COLUMNS,
    PACING_COLUMNS,
    RUN_FIELDS,
    column_set,
)

__all__ = ["APPLICATION", "SCHEMA_VERSION", "prepare_schema"]

logger = logging.getLogger("bulk_engine.journal")

APPLICATION = "bulk-engine-journal"  # journal_meta.application: marks the schema as a bulk-engine journal
SCHEMA_VERSION = 2  # PostgreSQL's own numbering (SQLite's is at 5 with the same tables); 2: + async_sets

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
    "jobs": column_set(JOB_COLUMNS),
    "ops": column_set(OP_COLUMNS) | {"job_id"},
    "job_locks": column_set(LOCK_COLUMNS) | {"job_id", "backend_pid"},
    "pacing": column_set(PACING_COLUMNS),
    "runs": set(RUN_FIELDS),
    "async_sets": column_set(ASYNC_SET_COLUMNS) | {"seq"},
}


def _setup_key(schema: str) -> int:
    digest = hashlib.sha256(f"bulk-engine-setup\0{schema}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def prepare_schema(connections: PostgresConnections) -> None:
    """Create the target's schema, or migrate it to :data:`SCHEMA_VERSION`, or refuse what it holds."""
    schema, location = connections.target.schema, connections.target.location
    s = f'"{schema}"'
    try:
        with connections.connect() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_setup_key(schema),))
            columns: dict[str, set[str]] = {}
            for table, column in conn.execute(
                "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = %s",
                (schema,),
            ):
                columns.setdefault(table, set()).add(column)
            version = _version(conn, schema, location, columns)
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
                        "journal %s: schema migrated from version %d to %d", location, version, SCHEMA_VERSION
                    )
    except psycopg.Error as err:
        raise connections.fail(err, "opening it") from None


def _version(
    conn: psycopg.Connection[Any], schema: str, location: str, columns: Mapping[str, set[str]]
) -> int:
    """The schema's journal version (0: empty or new), or a refusal of what it holds."""
    where = f"journal {location}"
    if not columns:
        return 0
    if "journal_meta" not in columns:
        found = ", ".join(sorted(columns)[:5])
        raise JournalError(
            f"{where}: schema {schema!r} holds tables of another application ({found}), not a "
            "bulk-engine journal; refusing to write into it (choose another ?schema=)"
        )
    meta = dict(conn.execute(f'SELECT key, value FROM "{schema}".journal_meta').fetchall())
    if meta.get("application") != APPLICATION:
        raise JournalError(
            f"{where}: schema {schema!r} is not a bulk-engine journal (journal_meta names "
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
