"""Rows of the SQL journals (SQLite and PostgreSQL) as the journal's records, and the SQL both speak: one
column list and one decoder per table, so both backends read the same columns the same way and skip the
same unreadable pacing rows, and one text per upsert, written once with the placeholder as a parameter."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from bulk_engine.errors import JournalError

from .codec import canonical
from .journal import AsyncSetRecord, JournalJob, JournalOp, OpStatus, PacingRecord, RunRecord, RunState
from .lock import JobLock, LockOwner

__all__ = [
    "ASYNC_SET_COLUMNS",
    "JOB_COLUMNS",
    "LOCK_COLUMNS",
    "OP_COLUMNS",
    "PACING_COLUMNS",
    "RUN_FIELDS",
    "async_set_from_row",
    "async_set_row",
    "async_set_upsert",
    "column_set",
    "job_from_row",
    "lock_from_row",
    "op_from_row",
    "ops_by_seq",
    "pacing_batches",
    "pacing_from_row",
    "pacing_records",
    "pacing_upsert",
    "run_from_row",
    "run_params",
    "run_upsert",
    "status_counts",
]

logger = logging.getLogger("bulk_engine.journal")

JOB_COLUMNS = "job_id, fingerprint, options, ordered, created_at, updated_at"
OP_COLUMNS = (
    "op_id, seq, plan, digest, kind, account_id, status, unknown, attempts, result, graph_id, error, reason"
)
LOCK_COLUMNS = "owner, pid, host, process, acquired_at, heartbeat_at"  # of ``job_locks``, after ``job_id``
PACING_COLUMNS = "scope, parked_until, reason, usage_pct, state, updated_at"
ASYNC_SET_COLUMNS = "job_id, name, set_id, account_id, names, submitted_at, done"
RUN_FIELDS = [f.name for f in dataclasses.fields(RunRecord)]  # the columns of ``runs``, in this order


def column_set(columns: str) -> set[str]:
    """The names of a column list such as :data:`OP_COLUMNS` (for checking a table has them all)."""
    return {c.strip() for c in columns.split(",")}


def job_from_row(row: tuple[Any, ...], location: str) -> JournalJob:
    """A row of ``SELECT {JOB_COLUMNS}``, without counts; a job whose options are not JSON is refused."""
    try:
        options = json.loads(row[2])
    except ValueError:
        raise JournalError(f"journal {location}: job {row[0]!r} has unreadable options") from None
    return JournalJob(row[0], row[1], options, bool(row[3]), row[4], row[5])


def status_counts(rows: Iterable[tuple[str, int]]) -> dict[str, int]:
    """``JournalJob.counts`` from the rows of ``SELECT status, count(*) … GROUP BY status``: every status."""
    counts = {status.value: 0 for status in OpStatus}
    for status, count in rows:
        counts[status] = count
    return counts


def lock_from_row(job_id: str, row: tuple[Any, ...] | None) -> JobLock | None:
    """A row of ``SELECT {LOCK_COLUMNS}``, or ``None`` for no row (nobody holds the job)."""
    if row is None:
        return None
    return JobLock(job_id, LockOwner(row[0], row[1], row[2], row[3]), row[4], row[5])


def op_from_row(row: tuple[Any, ...]) -> JournalOp:
    """A row of ``SELECT {OP_COLUMNS}``."""
    return JournalOp(
        op_id=row[0],
        seq=row[1],
        plan=row[2],
        digest=row[3],
        kind=row[4],
        account_id=row[5],
        status=OpStatus(row[6]),
        unknown=bool(row[7]),
        attempts=row[8],
        result=row[9],
        graph_id=row[10],
        error=row[11],
        reason=row[12],
    )


def ops_by_seq(page: Callable[[int], Sequence[tuple[Any, ...]]]) -> Iterator[JournalOp]:
    """A job's operations in plan order, a page at a time: ``page(after)`` returns the rows of ``SELECT
    {OP_COLUMNS}`` whose ``seq`` follows ``after``, in ``seq`` order (empty at the end)."""
    last = 0
    while True:
        rows = page(last)
        if not rows:
            return
        for row in rows:
            yield op_from_row(row)
        last = rows[-1][1]


def run_from_row(row: tuple[Any, ...]) -> RunRecord:
    """A row of ``SELECT`` :data:`RUN_FIELDS`."""
    data = dict(zip(RUN_FIELDS, row, strict=True))
    data["state"] = RunState(data["state"])
    return RunRecord(**data)


def run_params(record: RunRecord) -> dict[str, Any]:
    """The named parameters of :func:`run_upsert` for ``record``."""
    return {**dataclasses.asdict(record), "state": record.state.value}


def run_upsert(table: str, mark: Callable[[str], str]) -> str:
    """The upsert of one ``runs`` row by ``(job_id, run_id)``, an older ``updated_at`` losing; ``mark(name)``
    is the dialect's named placeholder (``:name``, ``%(name)s``)."""
    columns = ", ".join(RUN_FIELDS)
    values = ", ".join(mark(c) for c in RUN_FIELDS)
    updates = ", ".join(f"{c} = excluded.{c}" for c in RUN_FIELDS if c not in ("job_id", "run_id"))
    return (
        f"INSERT INTO {table} AS r ({columns}) VALUES ({values}) ON CONFLICT (job_id, run_id) "
        f"DO UPDATE SET {updates} WHERE excluded.updated_at >= r.updated_at"
    )


def pacing_upsert(table: str, placeholder: str, *, lifted: bool) -> str:
    """The upsert of one ``pacing`` row (scope, parked_until, reason, usage_pct, state, updated_at) by
    :func:`~bulk_engine.persistence.journal.merge_pacing`, in the SQL SQLite and PostgreSQL share: lifted
    records (``lifted=True``) overwrite the stored park; the others keep an unexpired one when they have none."""
    if lifted:
        park, reason = "excluded.parked_until", "excluded.reason"
    else:
        theirs = "excluded.parked_until > 0 OR p.parked_until <= excluded.updated_at"
        park = f"CASE WHEN {theirs} THEN excluded.parked_until ELSE p.parked_until END"
        reason = f"CASE WHEN {theirs} THEN excluded.reason ELSE p.reason END"
    values = ", ".join([placeholder] * 6)
    return (
        f"INSERT INTO {table} AS p (scope, parked_until, reason, usage_pct, state, updated_at) VALUES ({values}) "
        f"ON CONFLICT (scope) DO UPDATE SET parked_until = {park}, reason = {reason}, "
        "usage_pct = excluded.usage_pct, state = excluded.state, updated_at = excluded.updated_at "
        "WHERE excluded.updated_at >= p.updated_at"
    )


def pacing_batches(
    records: Sequence[PacingRecord], *, text: Callable[[str], str] = str
) -> list[tuple[bool, list[tuple[Any, ...]]]]:
    """The rows of :func:`pacing_upsert` for ``records``, grouped by ``lifted`` (unlifted first), each group
    non-empty; ``text`` cleans the reason for the dialect. Raises :class:`TypeError` / :class:`ValueError`
    for a ``state`` that is not JSON — before anything is written."""
    rows = [
        (
            r.lifted,
            (r.scope, r.parked_until, text(r.reason), r.usage_pct, canonical(dict(r.state)), r.updated_at),
        )
        for r in records
    ]
    batches = [(lifted, [row for flag, row in rows if flag is lifted]) for lifted in (False, True)]
    return [(lifted, batch) for lifted, batch in batches if batch]


def pacing_records(rows: Iterable[tuple[Any, ...]], location: str) -> list[PacingRecord]:
    """The records of ``SELECT {PACING_COLUMNS}`` rows; an unreadable row is skipped with a WARNING (the
    governor then merely starts that scope unparked), never an error."""
    out: list[PacingRecord] = []
    for row in rows:
        record = pacing_from_row(row)
        if isinstance(record, str):
            logger.warning("journal %s: skipping the pacing state of %r: %s", location, row[0], record)
            continue
        out.append(record)
    return out


def pacing_from_row(row: tuple[Any, ...]) -> PacingRecord | str:
    """The record of a ``pacing`` row (scope, parked_until, reason, usage_pct, state, updated_at), or what
    is wrong with the row."""
    scope, parked_until, reason, usage_pct, text, updated_at = row
    try:
        state = json.loads(text)
    except (TypeError, ValueError) as err:
        return f"its stored state is not JSON ({err})"
    if not isinstance(state, dict):
        return f"its stored state is a JSON {type(state).__name__}, not an object"
    number = (int, float)
    if not (
        isinstance(scope, str)
        and isinstance(reason, str)
        and isinstance(parked_until, number)
        and isinstance(updated_at, number)
        and (usage_pct is None or isinstance(usage_pct, number))
    ):
        return "a column holds a value of the wrong type"
    return PacingRecord(
        scope,
        float(parked_until),
        reason,
        None if usage_pct is None else float(usage_pct),
        state,
        float(updated_at),
    )


def async_set_row(record: AsyncSetRecord) -> tuple[Any, ...]:
    """``(job_id, name, set_id, account_id, names, submitted_at, done)`` of ``async_sets``; ``names`` as
    JSON; ``set_id`` NULL while the set is "submitting"."""
    names = json.dumps([list(pair) for pair in record.names], separators=(",", ":"))
    return (
        record.job_id,
        record.name,
        record.set_id,
        record.account_id,
        names,
        record.submitted_at,
        bool(record.done),
    )


def async_set_upsert(table: str, mark: str) -> str:
    """The upsert of one :func:`async_set_row` by ``(job_id, name)``; ``mark`` is the dialect's positional
    placeholder (``?``, ``%s``)."""
    values = ", ".join([mark] * len(column_set(ASYNC_SET_COLUMNS)))
    return (
        f"INSERT INTO {table} ({ASYNC_SET_COLUMNS}) VALUES ({values}) ON CONFLICT (job_id, name) DO UPDATE SET "
        "set_id = excluded.set_id, submitted_at = excluded.submitted_at, done = excluded.done"
    )


def async_set_from_row(row: tuple[Any, ...]) -> AsyncSetRecord:
    """A row of ``SELECT job_id, name, set_id, account_id, names, submitted_at, done``."""
    names = tuple((str(name), str(op_id)) for name, op_id in json.loads(row[4]))
    set_id = None if row[2] is None else str(row[2])
    return AsyncSetRecord(row[0], row[1], row[3], names, float(row[5]), set_id, bool(row[6]))
