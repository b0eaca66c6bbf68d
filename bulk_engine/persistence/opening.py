"""The one place that decides which journal a target names: a path is an SQLite file, a
``postgresql://`` (or ``postgres://``) URL a PostgreSQL schema — for the CLI's ``--journal``, the Airflow
operators and ``BulkEngine(config, journal=open_journal(target))``.

The PostgreSQL backend is an optional extra (``pip install "meta-bulk-engine[postgres]"``): it is imported
only when a URL asks for it, so SQLite users need no driver.
"""

from __future__ import annotations

from pathlib import Path

from bulk_engine.errors import JournalError
from bulk_engine.scrub import Scrubber

from .journal import Journal
from .sqlite import SqliteJournal

__all__ = ["URL_SCHEMES", "is_journal_url", "open_journal"]

URL_SCHEMES = ("postgresql://", "postgres://")


def is_journal_url(target: str | Path) -> bool:
    """Whether ``target`` names a database journal rather than a file."""
    return isinstance(target, str) and target.lower().startswith(URL_SCHEMES)


def open_journal(target: str | Path) -> Journal:
    """An open journal for ``target``: :class:`SqliteJournal` for a path, ``PostgresJournal`` for a URL.

    Raises :class:`~bulk_engine.errors.JournalError` (never quoting a password) when the journal cannot be
    opened, including a URL without the PostgreSQL extra installed.
    """
    if not is_journal_url(target):
        return SqliteJournal(target)
    assert isinstance(target, str)
    try:
        from .postgres import PostgresJournal
    except ImportError as err:
        from urllib.parse import urlsplit

        password = urlsplit(target).password
        shown = Scrubber([password] if password else [])(target)
        raise JournalError(
            f"journal {shown}: a PostgreSQL journal needs the `postgres` extra "
            f'(pip install "meta-bulk-engine[postgres]"): {err}'
        ) from None
    return PostgresJournal(target)
