"""The :class:`Journal` protocol: what was planned, what was sent, what came back, per job.

A journal is a dumb, durable store; the engine's :class:`~bulk_engine.persistence.session.JournalSession`
decides what to write. Backends: :class:`~bulk_engine.persistence.sqlite.SqliteJournal` (the default,
one file holding any number of jobs), :class:`~bulk_engine.persistence.postgres.PostgresJournal` (one
PostgreSQL schema shared by every worker of a distributed deployment, the job lock held by the server) and
:class:`~bulk_engine.persistence.memory.MemoryJournal` (tests, dry runs, exactly-once within one process);
:func:`~bulk_engine.persistence.opening.open_journal` picks one from a path or URL. One test suite runs
against all three.

Per job: its id, a fingerprint of its content (``JobSpec.fingerprint()`` or a hash of an in-memory plan),
and options (the idempotency-key scheme its objects carry). Per operation, in the order it was planned:

* ``plan`` — the operation as JSON (:mod:`~bulk_engine.persistence.codec`): enough to rebuild it, references
  included, so a job can be resumed from the journal alone;
* ``digest`` — SHA-256 of the plan, to refuse resuming an operation whose plan changed;
* ``status`` — ``planned`` → ``sent`` (the *intent*, written before the request leaves) → ``succeeded`` /
  ``failed`` / ``skipped``;
* ``unknown`` — set with the intent and cleared by a definite answer: a crash (or a ``null`` entry, a
  dropped connection…) leaves it set, and the next run reconciles the operation before re-sending it. A
  create planned for a job rebuilt without its journal starts with it set ("may exist") until a probe of
  its edge clears it (:meth:`Journal.mark_unknown`);
* ``result`` / ``graph_id`` / ``error`` / ``reason`` / ``attempts`` of the last outcome.

Writes come in groups — all plans of a window, all intents of one HTTP batch, all outcomes of one HTTP
batch — and each group is one transaction. Access tokens and app secrets are never given to a journal
(results are scrubbed by the session before they are written).

One job, one runner (:mod:`~bulk_engine.persistence.lock`): a session takes the job's lock
(:meth:`Journal.acquire_lock`) before it reads or writes anything of the job and releases it when it closes;
a second session for the same job id in the same journal — in another process or in this one — is refused
with :class:`~bulk_engine.errors.JobLockedError`, and a lock left by a dead run is taken over. Locks are per
(journal, job id): other jobs of the journal run meanwhile.

Pacing state (:class:`PacingRecord`, :meth:`Journal.save_pacing` / :meth:`Journal.load_pacing`) is per
journal, not per job: the rate-limit governor's park deadlines and last usage readings per scope (the app,
an ad account, an ad account and business use case), so that a resumed run, a later Airflow try or another
process starts parked where the last one left off instead of hitting a throttled account again, and a
running engine reads them again every few seconds, so a park another worker met holds it too. Parks are
about ad accounts, which every job of the journal shares, so every job reads and writes the same records
(no job id, no lock). Two writers of one scope (:func:`merge_pacing`): the newest ``updated_at`` wins, but a
save that says nothing of a park (``parked_until`` 0) keeps an unexpired one another writer stored, unless
it lifts it (``lifted``: fresher news says the account is usable).

Run records (:class:`RunRecord`, :meth:`Journal.save_run` / :meth:`Journal.load_runs`) are per job: one
row per run of it (a run of the engine under its id: the first, a resume, an Airflow retry or deferral),
written when the run starts (``running``), refreshed while it runs and rewritten when it ends
(``finished``, ``stopped``, ``raised``), so the engine can report counters over every run
(:class:`~bulk_engine.results.RunTotals`). Each row is upserted by its run id, so a run killed before its
last write stays ``running`` with its last refresh, counted once. Rows hold counters and times, never a
message (an exception's text may quote a token): only the exception's type name.

Errors: every backend raises :class:`~bulk_engine.errors.JournalError` with a message naming the journal
and the problem (not a journal, corrupt, different job for the same id, changed operation).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from bulk_engine.errors import JournalError
from bulk_engine.results import RUN_COUNTERS, RunTotals

from .lock import JobLock, LockOwner

__all__ = [
    "AsyncSetRecord",
    "Journal",
    "JournalJob",
    "JournalOp",
    "OpStatus",
    "OutcomeWrite",
    "PacingRecord",
    "PlanWrite",
    "RunRecord",
    "RunState",
    "check_fingerprint",
    "merge_pacing",
    "refusal_advice",
]


class OpStatus(StrEnum):
    PLANNED = "planned"
    SENT = "sent"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class JournalJob:
    """A job as the journal knows it."""

    job_id: str
    fingerprint: str | None
    options: Mapping[str, Any]
    ordered: bool  # every operation only references operations planned before it (resume may stream)
    created_at: float
    updated_at: float
    counts: Mapping[str, int] = field(default_factory=dict)  # per OpStatus value


@dataclass(frozen=True)
class PlanWrite:
    op_id: str
    plan: str  # JSON text (codec.encode_plan)
    digest: str
    kind: str
    account_id: str
    backward_refs: bool  # its references all point to operations planned earlier
    unknown: bool = False  # it may exist on the server already (a job rebuilt without its journal)


@dataclass(frozen=True)
class OutcomeWrite:
    op_id: str
    status: OpStatus  # succeeded, failed or skipped
    attempts: int
    unknown: bool  # the last attempt's outcome was unknown (reconcile before the next send)
    result: str | None = None  # JSON text, scrubbed
    graph_id: str | None = None
    error: str | None = None  # JSON text of GraphError.to_dict(), scrubbed
    reason: str | None = None


@dataclass(frozen=True)
class JournalOp:
    """One operation's row."""

    op_id: str
    seq: int
    plan: str
    digest: str
    kind: str
    account_id: str
    status: OpStatus
    unknown: bool
    attempts: int
    result: str | None
    graph_id: str | None
    error: str | None
    reason: str | None


@dataclass(frozen=True)
class AsyncSetRecord:
    """A request set submitted to Meta's async batch endpoint (``execution/async_backend.py``).

    Written first *before* the set is POSTed, with its unique ``name`` and no ``set_id`` ("submitting"):
    a run killed between the POST and the answer finds the set by that name (``GET act_<id>/async_requests``)
    before any of its operations is looked up or sent again. Rewritten with the ``set_id`` once Graph gave
    it, before it is first polled, and with ``done`` once every result of it is journaled (or once it was
    proved never created). Upserted by ``(job_id, name)``."""

    job_id: str
    name: str  # the set's unique name, chosen before the POST: its key, and how it is found without an id
    account_id: str
    names: tuple[tuple[str, str], ...]  # (request name in the set, op id), in the set's order
    submitted_at: float  # the engine clock's wall() when the set was (about to be) submitted
    set_id: str | None = None  # None: "submitting", the POST's answer not journaled (resolved by name)
    done: bool = False


@dataclass(frozen=True)
class PacingRecord:
    """One governor scope's state, as the governor saves it (see execution/governor.py)."""

    scope: str  # "app", "account:act_1" or "pair:act_1:ads_management" — the primary key
    parked_until: float  # wall-clock epoch seconds (the engine clock's wall time); 0.0 when not parked
    reason: str  # why parked / last reading's summary ("" when none)
    usage_pct: float | None  # last reported usage percentage, None if unknown
    state: Mapping[str, Any]  # JSON-ready estimator state (numbers and strings only), opaque to the journal
    updated_at: float  # wall-clock epoch seconds of the write
    lifted: bool = (
        False  # the writer lifted the scope's park on fresher news: clears a stored one (not stored)
    )


def merge_pacing(stored: PacingRecord | None, incoming: PacingRecord) -> PacingRecord | None:
    """What a save of ``incoming`` leaves in the store (``None``: the stored record stands, it is newer).

    Without this rule a worker's periodic save (no park of its own: ``parked_until`` 0) would erase the park
    another worker had just written for the same account. The SQL backends run the same rule as one upsert
    (:func:`~bulk_engine.persistence.rows.pacing_upsert`); the memory backend calls this."""
    if stored is not None and incoming.updated_at < stored.updated_at:
        return None
    kept = dataclasses.replace(incoming, lifted=False)
    if (
        stored is None
        or incoming.lifted
        or incoming.parked_until > 0
        or stored.parked_until <= incoming.updated_at
    ):
        return kept
    return dataclasses.replace(kept, parked_until=stored.parked_until, reason=stored.reason)


class RunState(StrEnum):
    RUNNING = "running"  # started, not ended yet — or killed before its last write (its last refresh stands)
    FINISHED = "finished"  # ran to its end (whatever the operations' outcomes)
    STOPPED = "stopped"  # request_stop, on_park stopping an account, the stream closed early, cancelled
    RAISED = "raised"  # ended by an exception (``RunRecord.error`` names its type)


@dataclass(frozen=True)
class RunRecord:
    """One run of a job, as the engine writes it: at its start, every few seconds, at its end."""

    job_id: str
    run_id: str  # random, unique: the upsert key
    number: int  # 1 for the job's first run in this journal, then 2, 3…
    state: RunState
    started_at: float  # wall-clock epoch seconds (time.time())
    updated_at: float  # the last write: a run killed meanwhile has these figures
    ended_at: float | None  # None while running (or killed)
    http_requests: int = 0
    graph_calls: int = 0
    retries: int = 0
    throttle_events: int = 0
    unknown_outcomes: int = 0
    lookups: int = 0
    recovered: int = 0
    elapsed_s: float = 0.0  # engine-clock seconds, as JobResult.elapsed_s
    succeeded: int = 0  # outcomes decided in this run (not those answered from the journal)
    failed: int = 0
    skipped: int = 0
    error: str | None = None  # the exception's type name when ``raised`` (never its message)

    def totals(self) -> RunTotals:
        """This run's counters, as one run of :class:`~bulk_engine.results.RunTotals`."""
        counters = {name: getattr(self, name) for name in RUN_COUNTERS}
        return RunTotals(runs=1, elapsed_s=self.elapsed_s, **counters)


@runtime_checkable
class Journal(Protocol):
    """Durable per-job record of plans, intents and outcomes, plus the journal-wide pacing state.
    Calls are synchronous and short."""

    keeps_plans: bool
    """False for a journal that stores nothing (``EphemeralJournal``): the session skips plan digests, and
    results carry no totals over runs (``JobResult.all_runs`` is ``None``)."""

    @property
    def location(self) -> str:
        """Where the journal lives (a path, or ``memory``), for messages."""
        ...

    def open_job(self, job_id: str, fingerprint: str | None, options: Mapping[str, Any]) -> JournalJob:
        """Create the job, or return it if it exists with the same fingerprint.

        Raises :class:`~bulk_engine.errors.JournalError` when the id is taken by a job with another
        fingerprint (``None`` on either side matches anything: a streamed job has no whole-job hash).
        """
        ...

    def get_job(self, job_id: str) -> JournalJob | None: ...

    def job_ids(self) -> list[str]: ...

    def get_ops(self, job_id: str, op_ids: Sequence[str]) -> dict[str, JournalOp]:
        """The rows of those of ``op_ids`` that are journaled."""
        ...

    def add_plans(self, job_id: str, plans: Sequence[PlanWrite]) -> None:
        """Append new operations (status ``planned``) in order; one transaction."""
        ...

    def mark_sent(self, job_id: str, op_ids: Sequence[str]) -> None:
        """The intent: these operations are about to be sent (status ``sent``, ``unknown`` set,
        ``attempts`` + 1). One transaction, committed before the request leaves."""
        ...

    def record_outcomes(self, job_id: str, outcomes: Sequence[OutcomeWrite]) -> None:
        """Terminal outcomes; one transaction."""
        ...

    def mark_unknown(self, job_id: str, op_ids: Sequence[str], unknown: bool) -> None:
        """Set or clear ``unknown`` (e.g. once a probe showed none of these can exist yet); one transaction."""
        ...

    def iter_ops(self, job_id: str, *, page_size: int = 1000) -> Iterator[JournalOp]:
        """Every operation of the job in plan order, read in pages (safe to write meanwhile)."""
        ...

    def acquire_lock(self, job_id: str, owner: LockOwner) -> None:
        """Take the job's lock for ``owner`` (check and take in one transaction; again by its owner: a
        heartbeat). A lock left by a dead holder is taken over with a WARNING
        (:func:`~bulk_engine.persistence.lock.stale_reason`); a live one raises
        :class:`~bulk_engine.errors.JobLockedError` naming it, and nothing is changed."""
        ...

    def refresh_lock(self, job_id: str, owner: LockOwner) -> None:
        """Write ``owner``'s heartbeat now (a holder idle for long; writes refresh it on their own).
        Raises :class:`~bulk_engine.errors.JobLockedError` if the lock is no longer ``owner``'s."""
        ...

    def release_lock(self, job_id: str, owner: LockOwner) -> None:
        """Give the lock back if ``owner`` holds it (never someone else's); idempotent."""
        ...

    def get_lock(self, job_id: str) -> JobLock | None:
        """The job's lock as stored (live or stale), for messages and tools."""
        ...

    def save_pacing(self, records: Sequence[PacingRecord]) -> None:
        """Upsert each record by ``scope`` (one transaction) by :func:`merge_pacing`: a record older than the
        stored one is ignored; one without a park keeps another writer's unexpired park unless ``lifted``."""
        ...

    def load_pacing(self) -> list[PacingRecord]:
        """Every stored record (any order)."""
        ...

    def save_run(self, record: RunRecord) -> None:
        """Insert or update the record of ``(record.job_id, record.run_id)`` (one transaction). A record whose
        ``updated_at`` is older than the stored one is ignored (a late write never undoes a later one)."""
        ...

    def load_runs(self, job_id: str) -> list[RunRecord]:
        """The job's run records, by ``number``."""
        ...

    def save_async_set(self, record: AsyncSetRecord) -> None:
        """Insert or update the async request set ``(record.job_id, record.name)`` (one transaction): an
        update sets its ``set_id``, ``submitted_at`` and ``done``."""
        ...

    def load_async_sets(self, job_id: str) -> list[AsyncSetRecord]:
        """The job's async request sets not ``done`` yet, in the order they were first saved."""
        ...

    def close(self) -> None:
        """Close the journal; locks taken through it are released."""
        ...


def check_fingerprint(journal: Journal, job: JournalJob, fingerprint: str | None) -> None:
    """Raise :class:`JournalError` if ``fingerprint`` and the journaled job's differ (``None`` matches)."""
    if fingerprint is None or job.fingerprint is None or fingerprint == job.fingerprint:
        return
    raise JournalError(
        f"journal {journal.location}: job {job.job_id!r} was started with a different job (fingerprint "
        f"{job.fingerprint[:12]}…, this job's is {fingerprint[:12]}…); {refusal_advice(journal, job.job_id)}"
    )


def refusal_advice(journal: Journal, job_id: str) -> str:
    """Why a job cannot be resumed with another definition, and exactly what to do: the job id to change,
    the file to delete (with what else it holds).

    Why: "use a new job id" alone could not be acted on where the id is derived — ``run_job`` names its
    engine jobs ``<job id>/<task key>/<n>``, an Airflow task's job id comes from its DAG run.
    """
    top = job_id.split("/", 1)[0]
    named = f"the job id {top!r} (a job file's `job_id`, or the `job_id` given to run_job / BulkEngine.run)"
    where = journal.location
    own_advice = getattr(journal, "forget_advice", None)  # a database journal: its rows, not a file
    if callable(own_advice):
        forget = str(own_advice(top))
    elif where in ("memory", "none"):
        forget = "or forget the earlier job: run with a new journal"
    else:
        others = [j for j in journal.job_ids() if j != top and not j.startswith(top + "/")]
        holds = (
            f"it also holds {len(others)} other job(s), e.g. {others[0]!r}, which would be forgotten too"
            if others
            else "it holds no other job"
        )
        forget = f"or forget the earlier job: delete {where} ({holds}) and run again"
    return (
        "resuming it would mix two jobs, so the journal refuses. To finish the earlier job, run it unchanged. "
        f"To run this one, either change {named}, {forget} — objects the earlier job created stay, and "
        "creates whose idempotency keys match are found and kept as they are."
    )
