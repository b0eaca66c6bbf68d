"""An in-memory :class:`~bulk_engine.persistence.journal.Journal`: tests, dry runs, and exactly-once
creates within one process (it gives the engine the same reconciliation as the SQLite journal, but does
not survive the process).

Job locks have the SQLite journal's semantics within the process: a second session of a job is refused
while the first is open. Only the process itself can see the journal, so it needs no fencing of writes. Pacing records are kept per
scope for the journal's lifetime, shared by its jobs, newest ``updated_at`` winning (as in SQLite); so are
run records, per job and run id.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

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
    merge_pacing,
)
from .lock import (
    LEASE_TTL_S,
    JobLock,
    LockOwner,
    held,
    let_go,
    locked_error,
    log_takeover,
    lost_error,
    stale_reason,
)

__all__ = ["MemoryJournal"]


class _Job:
    def __init__(self, job: JournalJob) -> None:
        self.job = job
        self.ops: dict[str, JournalOp] = {}


class MemoryJournal:
    """Journal held in dictionaries. Not thread-safe (the engine calls it from its event loop)."""

    keeps_plans = True

    def __init__(self, *, lease_ttl_s: float = LEASE_TTL_S) -> None:
        self._jobs: dict[str, _Job] = {}
        self._locks: dict[str, JobLock] = {}
        self._pacing: dict[str, PacingRecord] = {}  # scope -> its newest record (journal-wide, not per job)
        self._runs: dict[str, dict[str, RunRecord]] = {}  # job id -> run id -> its newest record
        self._sets: dict[
            str, dict[str, AsyncSetRecord]
        ] = {}  # job id -> set name -> record (insertion order)
        self.lease_ttl_s = lease_ttl_s  # another host's lock is stale after this (see persistence.lock)
        self._closed = False

    def __repr__(self) -> str:
        return f"MemoryJournal(jobs={len(self._jobs)})"

    @property
    def location(self) -> str:
        return "memory"

    def _check(self) -> None:
        if self._closed:
            raise RuntimeError("journal is closed")

    def open_job(self, job_id: str, fingerprint: str | None, options: Mapping[str, Any]) -> JournalJob:
        self._check()
        found = self._jobs.get(job_id)
        if found is not None:
            check_fingerprint(self, found.job, fingerprint)
            if fingerprint is not None and found.job.fingerprint is None:
                found.job = dataclasses.replace(found.job, fingerprint=fingerprint)
            return self._snapshot(found)
        now = time.time()
        job = JournalJob(job_id, fingerprint, dict(options), True, now, now)
        self._jobs[job_id] = _Job(job)
        return job

    def get_job(self, job_id: str) -> JournalJob | None:
        self._check()
        found = self._jobs.get(job_id)
        return self._snapshot(found) if found is not None else None

    def _snapshot(self, found: _Job) -> JournalJob:
        counts = {status.value: 0 for status in OpStatus}
        for op in found.ops.values():
            counts[op.status.value] += 1
        return dataclasses.replace(found.job, counts=counts)

    def job_ids(self) -> list[str]:
        self._check()
        return list(self._jobs)

    def _job(self, job_id: str) -> _Job:
        found = self._jobs.get(job_id)
        if found is None:
            raise KeyError(f"unknown job {job_id!r}; open_job() it first")
        return found

    def get_ops(self, job_id: str, op_ids: Sequence[str]) -> dict[str, JournalOp]:
        self._check()
        ops = self._job(job_id).ops
        return {op_id: ops[op_id] for op_id in op_ids if op_id in ops}

    def add_plans(self, job_id: str, plans: Sequence[PlanWrite]) -> None:
        self._check()
        found = self._job(job_id)
        ordered = found.job.ordered
        for plan in plans:
            if plan.op_id in found.ops:
                continue
            found.ops[plan.op_id] = JournalOp(
                plan.op_id,
                len(found.ops) + 1,
                plan.plan,
                plan.digest,
                plan.kind,
                plan.account_id,
                OpStatus.PLANNED,
                plan.unknown,
                0,
                None,
                None,
                None,
                None,
            )
            ordered = ordered and plan.backward_refs
        found.job = dataclasses.replace(found.job, ordered=ordered, updated_at=time.time())

    def mark_sent(self, job_id: str, op_ids: Sequence[str]) -> None:
        self._check()
        ops = self._job(job_id).ops
        for op_id in op_ids:
            op = ops.get(op_id)
            if op is not None:
                ops[op_id] = dataclasses.replace(
                    op, status=OpStatus.SENT, unknown=True, attempts=op.attempts + 1
                )

    def record_outcomes(self, job_id: str, outcomes: Sequence[OutcomeWrite]) -> None:
        self._check()
        ops = self._job(job_id).ops
        for out in outcomes:
            op = ops.get(out.op_id)
            if op is not None:
                ops[out.op_id] = dataclasses.replace(
                    op,
                    status=out.status,
                    unknown=out.unknown,
                    attempts=max(op.attempts, out.attempts),
                    result=out.result,
                    graph_id=out.graph_id,
                    error=out.error,
                    reason=out.reason,
                )

    def mark_unknown(self, job_id: str, op_ids: Sequence[str], unknown: bool) -> None:
        self._check()
        ops = self._job(job_id).ops
        for op_id in op_ids:
            op = ops.get(op_id)
            if op is not None:
                ops[op_id] = dataclasses.replace(op, unknown=unknown)

    def iter_ops(self, job_id: str, *, page_size: int = 1000) -> Iterator[JournalOp]:
        self._check()
        found = self._jobs.get(job_id)
        if found is None:
            return
        for op_id in list(found.ops):
            yield found.ops[op_id]

    # --- run records ------------------------------------------------------------------------------
    def save_run(self, record: RunRecord) -> None:
        self._check()
        runs = self._runs.setdefault(record.job_id, {})
        stored = runs.get(record.run_id)
        if stored is None or record.updated_at >= stored.updated_at:
            runs[record.run_id] = record

    def load_runs(self, job_id: str) -> list[RunRecord]:
        self._check()
        return sorted(self._runs.get(job_id, {}).values(), key=lambda r: r.number)

    # --- async request sets -------------------------------------------------------------------------
    def save_async_set(self, record: AsyncSetRecord) -> None:
        self._check()
        self._sets.setdefault(record.job_id, {})[record.name] = record

    def load_async_sets(self, job_id: str) -> list[AsyncSetRecord]:
        self._check()
        return [r for r in self._sets.get(job_id, {}).values() if not r.done]

    # --- pacing state (journal-wide) ---------------------------------------------------------------
    def save_pacing(self, records: Sequence[PacingRecord]) -> None:
        self._check()
        for record in records:
            merged = merge_pacing(self._pacing.get(record.scope), record)
            if merged is not None:
                # a copy of the state: the caller may go on mutating its estimator's dict
                self._pacing[record.scope] = dataclasses.replace(merged, state=dict(merged.state))

    def load_pacing(self) -> list[PacingRecord]:
        self._check()
        return [dataclasses.replace(r, state=dict(r.state)) for r in self._pacing.values()]

    # --- job locks ------------------------------------------------------------------------------
    def acquire_lock(self, job_id: str, owner: LockOwner) -> None:
        self._check()
        now = time.time()
        found = self._locks.get(job_id)
        if found is not None and found.owner.token == owner.token:
            self._locks[job_id] = dataclasses.replace(found, heartbeat_at=now)
            return
        if found is not None:
            reason = stale_reason(found, now=now, ttl=self.lease_ttl_s)
            if reason is None:
                raise locked_error(self.location, found, now=now)
            let_go(found.owner.token)
            log_takeover(self.location, found, reason)
        self._locks[job_id] = JobLock(job_id, owner, now, now)
        held(owner.token)

    def refresh_lock(self, job_id: str, owner: LockOwner) -> None:
        self._check()
        now = time.time()
        found = self._locks.get(job_id)
        if found is None or found.owner.token != owner.token:
            raise lost_error(self.location, job_id, found, now=now)
        self._locks[job_id] = dataclasses.replace(found, heartbeat_at=now)

    def release_lock(self, job_id: str, owner: LockOwner) -> None:
        found = self._locks.get(job_id)
        if found is not None and found.owner.token == owner.token:
            del self._locks[job_id]
        let_go(owner.token)

    def get_lock(self, job_id: str) -> JobLock | None:
        return self._locks.get(job_id)

    def close(self) -> None:
        for lock in self._locks.values():
            let_go(lock.owner.token)
        self._locks.clear()
        self._closed = True
