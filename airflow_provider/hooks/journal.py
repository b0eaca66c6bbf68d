"""An Airflow connection → the URL of a shared PostgreSQL journal (``journal_conn_id=`` of every operator).

Why a connection: with the Celery or Kubernetes executor a task's retry, or its resumption after a
deferral, lands on another worker, where a local SQLite journal is not. A PostgreSQL journal every worker
reaches makes it resume from the journal instead of rebuilding from keys (which spends quota, and cannot
keep ``/copies`` or message sends from being sent twice). Production Airflow already runs PostgreSQL.

Accepted connections: type ``postgres`` (the official ``apache-airflow-providers-postgres`` form: host,
port, login, password, schema = the *database*), or any connection whose URI is ``postgresql://…`` /
``postgres://…`` (e.g. ``AIRFLOW_CONN_META_JOURNAL='postgresql://user:pw@db:5432/airflow'``). Extras:

========================  ====================================================================
``journal_schema``        the PostgreSQL schema holding the journal (default ``meta_bulk``);
                          the operator's ``journal_schema=`` overrides it
``sslmode``, ``sslrootcert``, ``sslcert``, ``sslkey``, ``connect_timeout``, ``target_session_attrs``,
``options``               passed to libpq as they are
========================  ====================================================================

The password is handed to Airflow's secret masker and to nothing that logs: the journal's own messages
name it as ``postgresql://user@host:port/db?schema=…``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from airflow.sdk import BaseHook

from bulk_engine import ConfigError

__all__ = ["LIBPQ_EXTRAS", "POSTGRES_CONN_TYPES", "journal_url"]

POSTGRES_CONN_TYPES = ("postgres", "postgresql")
LIBPQ_EXTRAS = (
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "connect_timeout",
    "target_session_attrs",
    "options",
)


def journal_url(conn_id: str, *, schema: str | None = None) -> str:
    """The ``postgresql://`` URL of the journal the connection ``conn_id`` names (password included: give
    it to :func:`bulk_engine.persistence.open_journal`, never to a log)."""
    conn = BaseHook.get_connection(conn_id)
    if conn.conn_type not in POSTGRES_CONN_TYPES:
        if not conn.get_uri().lower().startswith(("postgresql://", "postgres://")):
            raise ConfigError(
                f"journal_conn_id {conn_id!r}: connection type {conn.conn_type!r} is not a PostgreSQL "
                "connection (use conn_type 'postgres', or a postgresql:// URI)"
            )
    _mask(conn.password)
    extra: dict[str, Any] = conn.extra_dejson
    query = {k: str(extra[k]) for k in LIBPQ_EXTRAS if extra.get(k) not in (None, "")}
    query["schema"] = schema or str(extra.get("journal_schema") or "meta_bulk")
    auth = quote(conn.login or "", safe="")
    if conn.password:
        auth += ":" + quote(conn.password, safe="")
    host = conn.host or ""
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 address
    port = f":{conn.port}" if conn.port else ""
    database = quote(conn.schema or "", safe="")
    return f"postgresql://{auth + '@' if auth else ''}{host}{port}/{database}?{urlencode(query)}"


def _mask(secret: str | None) -> None:
    if not secret:
        return
    try:
        from airflow.sdk.log import mask_secret
    except ImportError:  # pragma: no cover - an Airflow without it: the journal never logs it anyway
        return
    mask_secret(secret)
