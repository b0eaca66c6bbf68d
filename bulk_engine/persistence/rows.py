"""Rows of the SQL journals (SQLite and PostgreSQL) as the journal's records: one decoder per table, so
both backends read the same columns the same way and skip the same unreadable pacing rows."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from .journal import AsyncSetRecord, JournalOp, OpStatus, PacingRecord, RunRecord, RunState

__all__ = [
    "OP_COLUMNS",
    "RUN_FIELDS",
    "async_set_from_row",
    "async_set_row",
    "op_from_row",
    "pacing_from_row",
    "pacing_upsert",
    "run_from_row",
]

OP_COLUMNS = (
    "op_id, seq, plan, digest, kind, account_id, status, unknown, attempts, result, graph_id, error, reason"
)
RUN_FIELDS = [f.name for f in dataclasses.fields(RunRecord)]  # the columns of ``runs``, in this order


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


def run_from_row(row: tuple[Any, ...]) -> RunRecord:
    """A row of ``SELECT`` :data:`RUN_FIELDS`."""
    data = dict(zip(RUN_FIELDS, row, strict=True))
    data["state"] = RunState(data["state"])
    return RunRecord(**data)


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


def async_set_from_row(row: tuple[Any, ...]) -> AsyncSetRecord:
    """A row of ``SELECT job_id, name, set_id, account_id, names, submitted_at, done``."""
    names = tuple((str(name), str(op_id)) for name, op_id in json.loads(row[4]))
    set_id = None if row[2] is None else str(row[2])
    return AsyncSetRecord(row[0], row[1], row[3], names, float(row[5]), set_id, bool(row[6]))
