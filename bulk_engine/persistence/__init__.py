"""Journals: what was planned, sent and answered per job — durable runs, resume, exactly-once creates.

``BulkEngine(config, journal=SqliteJournal("jobs.db"))`` makes every run durable (or
``open_journal(path_or_url)``: a PostgreSQL URL gives the shared ``postgres.PostgresJournal``); ``engine.resume(job_id)``
finishes an interrupted job from the journal alone. The key scheme and reconciliation are documented in
:mod:`bulk_engine.persistence.keys` and ``docs/exactly-once.md``.
"""

from .journal import (
    AsyncSetRecord,
    Journal,
    JournalJob,
    JournalOp,
    OpStatus,
    OutcomeWrite,
    PacingRecord,
    PlanWrite,
    RunRecord,
    RunState,
)
from .keys import KeyScheme, Safety
from .memory import MemoryJournal
from .opening import is_journal_url, open_journal
from .session import JournalSession, SessionStats, load_operations
from .sqlite import SqliteJournal

__all__ = [
    "AsyncSetRecord",
    "Journal",
    "JournalJob",
    "JournalOp",
    "JournalSession",
    "KeyScheme",
    "MemoryJournal",
    "OpStatus",
    "OutcomeWrite",
    "PacingRecord",
    "PlanWrite",
    "RunRecord",
    "RunState",
    "Safety",
    "SessionStats",
    "SqliteJournal",
    "is_journal_url",
    "load_operations",
    "open_journal",
]
