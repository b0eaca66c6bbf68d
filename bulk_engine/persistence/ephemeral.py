"""A journal that keeps nothing: what a run without a journal uses, so it still keys its creates.

Why: exactly-once does not depend on having a journal. A run without one still gives its creates
idempotency keys and looks a create up by its key after an unknown outcome before it is sent again (the
flags live in the :class:`~bulk_engine.persistence.session.JournalSession` for the run's lifetime), and a
run under an explicit job id probes for objects an earlier run of that id created (rebuild mode), so
re-running the same job without a journal creates nothing twice. Nothing is stored: memory stays bounded
by the window on million-operation streams, and nothing can be resumed from it. Neither is the governor's
pacing state: a run without a journal starts unparked; nor are run records, so a result without a journal
has no totals over runs (``JobResult.all_runs`` is ``None``: earlier runs are unknown, not absent).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from .journal import AsyncSetRecord, JournalJob, JournalOp, OutcomeWrite, PacingRecord, PlanWrite, RunRecord
from .lock import JobLock, LockOwner

__all__ = ["EphemeralJournal"]


class EphemeralJournal:
    """Implements :class:`~bulk_engine.persistence.journal.Journal` by remembering nothing."""

    keeps_plans = False  # the session skips computing plan digests

    def __repr__(self) -> str:
        return "EphemeralJournal()"

    @property
    def location(self) -> str:
        return "none"

    def open_job(self, job_id: str, fingerprint: str | None, options: Mapping[str, Any]) -> JournalJob:
        now = time.time()
        return JournalJob(job_id, fingerprint, dict(options), True, now, now)

    def get_job(self, job_id: str) -> JournalJob | None:
        return None

    def job_ids(self) -> list[str]:
        return []

    def get_ops(self, job_id: str, op_ids: Sequence[str]) -> dict[str, JournalOp]:
        return {}

    def add_plans(self, job_id: str, plans: Sequence[PlanWrite]) -> None:
        return None

    def mark_sent(self, job_id: str, op_ids: Sequence[str]) -> None:
        return None

    def record_outcomes(self, job_id: str, outcomes: Sequence[OutcomeWrite]) -> None:
        return None

    def mark_unknown(self, job_id: str, op_ids: Sequence[str], unknown: bool) -> None:
        return None

    def iter_ops(self, job_id: str, *, page_size: int = 1000) -> Iterator[JournalOp]:
        return iter(())

    def save_pacing(self, records: Sequence[PacingRecord]) -> None:
        return None

    def load_pacing(self) -> list[PacingRecord]:
        return []

    def save_run(self, record: RunRecord) -> None:
        return None

    def load_runs(self, job_id: str) -> list[RunRecord]:
        return []

    def save_async_set(self, record: AsyncSetRecord) -> None:
        return None  # the run polls its sets from memory; a killed run without a journal cannot resume

    def load_async_sets(self, job_id: str) -> list[AsyncSetRecord]:
        return []

    # Nothing is shared, so there is nothing to lock: two runs without a journal cannot see each other.
    def acquire_lock(self, job_id: str, owner: LockOwner) -> None:
        return None

    def refresh_lock(self, job_id: str, owner: LockOwner) -> None:
        return None

    def release_lock(self, job_id: str, owner: LockOwner) -> None:
        return None

    def get_lock(self, job_id: str) -> JobLock | None:
        return None

    def close(self) -> None:
        return None
