"""Reaching the PostgreSQL server of a journal: the URL taken apart, and the pooled connections every call
goes through.

**Credentials**: the URL's password is used to connect and nowhere else. :attr:`PostgresTarget.location` (in
every message, ``repr`` and log line) is the URL without it, and PostgreSQL's error texts are scrubbed of it.

Connections come from a ``psycopg_pool.ConnectionPool`` (a dropped connection is replaced; a write that failed
on a broken connection is retried once on a new one: every write is idempotent or, for ``attempts``, harmless
twice). Connect to the server directly or through a session-pooling proxy: a transaction-pooling PgBouncer
cannot hold the job lock's session locks (:mod:`~bulk_engine.persistence.postgres_lock`).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg_pool import ConnectionPool

from bulk_engine.errors import JournalError
from bulk_engine.scrub import Scrubber

__all__ = ["DEFAULT_SCHEMA", "PostgresConnections", "PostgresTarget"]

DEFAULT_SCHEMA = "meta_bulk"
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_T = TypeVar("_T")


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


class PostgresConnections:
    """The connections of one journal: single ones (:meth:`connect`: schema setup, job locks) before and
    besides the pool (:meth:`open_pool`, then :meth:`call`), and PostgreSQL errors turned into
    :class:`JournalError` without the password (:meth:`fail`)."""

    def __init__(self, target: PostgresTarget, *, connect_timeout_s: float) -> None:
        self.target = target
        self.closed = False
        self._scrub = Scrubber(target.secrets)
        self._connect_timeout_s = connect_timeout_s
        self._pool: ConnectionPool[psycopg.Connection[Any]] | None = None

    def fail(self, err: psycopg.Error, doing: str) -> JournalError:
        text = self._scrub(str(err).strip()) or type(err).__name__
        return JournalError(f"journal {self.target.location}: PostgreSQL error while {doing}: {text}")

    def connect(self, **extra: Any) -> psycopg.Connection[Any]:
        """A new connection of its own (autocommit), outside the pool."""
        return psycopg.connect(
            self.target.conninfo,
            autocommit=True,
            connect_timeout=max(1, int(self._connect_timeout_s)),
            **extra,
        )

    def open_pool(self, pool_size: int) -> None:
        """Open the pool :meth:`call` uses; raises :class:`JournalError` if the server cannot be reached."""
        self._pool = ConnectionPool(
            self.target.conninfo,
            min_size=1,
            max_size=max(2, pool_size),  # refusal_advice reads while open_job's transaction is open
            # No server-side prepared statements: a generic plan cached while a job's table was small
            # would keep scanning it as it grows, and a transaction-pooling proxy could not keep them.
            kwargs={"autocommit": True, "application_name": "bulk-engine journal", "prepare_threshold": None},
            name="bulk-engine-journal",
            timeout=self._connect_timeout_s,
            open=False,
        )
        try:
            self._pool.open(wait=True, timeout=self._connect_timeout_s)
        except psycopg.Error as err:
            self._pool.close()
            raise self.fail(err, "connecting") from None

    def call(self, doing: str, body: Callable[[psycopg.Connection[Any]], _T], *, tx: bool = True) -> _T:
        """Run ``body`` on a pooled connection, in one transaction (``tx``; a single statement is atomic
        without one); once more on a fresh connection if the first one broke (server restart, failover, a
        dropped idle connection)."""
        if self.closed:
            raise JournalError(f"journal {self.target.location}: it is closed")
        assert self._pool is not None, "open_pool() first"
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
                raise self.fail(err, doing) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        self.closed = True
        if self._pool is not None:
            self._pool.close()
