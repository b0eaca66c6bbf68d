"""Migration plan files: the preflight written as CSV for review, read back and checked before any call.

Why: migrating a whole account is decided campaign by campaign by a person (S003 §Migrate Advantage+ Shopping
Campaigns and Advantage+ App Campaigns into Advantage+ Campaigns: copy and migrate, migrate only, or neither
for the campaigns the "Limitations" exclude). ``bulk-engine migrate-plan`` writes one row per campaign
(:data:`PLAN_COLUMNS`); the user edits ``action`` and runs a ``migrate`` task with ``plan: plan.csv``.

Checks, in two passes:

- **before any call** (:func:`plan_issues`, the task's ``input_issues``): the file reads as CSV, every row has a
  numeric ``campaign_id`` seen once, the ``kind`` and ``eligibility`` the preflight wrote (a row added by hand
  is not the reviewed preflight's: ``migrate.plan.unknown``), and an ``action`` among ``copy | in_place |
  skip | manual`` that the row's own ``kind`` / ``eligibility`` / ``status`` allow (:func:`~.migrate_eligibility.forbidden_action`) —
  each problem names ``file:line``, the column, the value and the rule (exit 2, nothing sent);
- **after the preflight reads, before any write** (:func:`apply_plan`): the campaign still exists in the ad
  account (else ``migrate.plan.unknown`` with Graph's 100/33, :func:`unknown_row`) and its *current* state
  still allows the action (a campaign archived, migrated or given ECBP since the plan was written:
  ``migrate.plan.forbidden``). Any refusal is bad input like the first pass — every problem with its
  ``file:line``, column, value and rule, raised as :class:`~.base.JobFileError` after the reads and before any
  write (``bulk-engine run`` exits 2): a reviewed plan runs as reviewed or not at all.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bulk_engine.spreadsheet import safe_cell

from .base import Issue
from .csvinput import CsvError, csv_issue, is_file, iter_rows
from .migrate_eligibility import PLAN_ACTIONS, TASK_ACTION, Eligibility, forbidden_action
from .migrate_record import MigrationRecord

if TYPE_CHECKING:
    from bulk_engine.protocol.errors import GraphError

__all__ = [
    "PLAN_COLUMNS",
    "PlanRow",
    "apply_plan",
    "plan_issues",
    "read_plan",
    "row_refusal",
    "unknown_row",
    "write_plan",
]

PLAN_COLUMNS = (
    "campaign_id",
    "name",
    "kind",
    "eligibility",
    "reason",
    "action",
    "manual_path",
    "status",
    "budget",
    "ads",
    "warnings",
)
MAX_PLAN_ISSUES = 50
KINDS = frozenset({"ASC", "AAC", "ordinary", "Advantage+"})  # migrate_eligibility.campaign_kind
ELIGIBILITIES = frozenset(e.value for e in Eligibility)


@dataclass(frozen=True)
class PlanRow:
    """One reviewed row: the campaign, its (possibly edited) action, and what the plan recorded about it."""

    line: int
    campaign_id: str
    action: str
    kind: str
    eligibility: str
    status: str | None


def write_plan(path: Path, records: Iterable[Mapping[str, Any]]) -> int:
    """Write the plan CSV from preflight records (``MigrationRecord.to_dict()``); returns the row count."""
    from bulk_engine.reporting.files import AtomicFile

    rows = 0
    with AtomicFile(path, newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(PLAN_COLUMNS)
        for record in records:
            writer.writerow(
                safe_cell(value)
                for value in [
                    record.get("source_id"),
                    record.get("name"),
                    record.get("kind"),
                    record.get("eligibility"),
                    record.get("reason"),
                    record.get("proposed_action"),
                    record.get("manual_path") or "",
                    record.get("source_status") or "",
                    record.get("budget") or "",
                    record.get("ads"),
                    " | ".join(record.get("warnings") or ()),
                ]
            )
            rows += 1
    return rows


def read_plan(path: Path) -> list[PlanRow]:
    """The rows of a plan file already checked by :func:`plan_issues` (raises :class:`CsvError` otherwise)."""
    return [
        PlanRow(
            row.line,
            row.values.get("campaign_id", ""),
            row.values.get("action", ""),
            row.values.get("kind", ""),
            row.values.get("eligibility", ""),
            row.values.get("status") or None,
        )
        for row in iter_rows(path, "campaign_id", columns=PLAN_COLUMNS[1:])
    ]


def plan_issues(path: Path, field: str = "plan") -> Iterator[Issue]:
    """Every problem of the plan file at ``path``, located at its line (see the module docstring)."""
    if not is_file(path):
        yield Issue((field,), f"plan file not found: {path}", str(path), "migrate.plan.missing")
        return
    seen: dict[str, int] = {}
    found = 0
    try:
        for row in read_plan(path):
            problem = _row_problem(row, seen)
            seen.setdefault(row.campaign_id, row.line)
            if problem is None:
                continue
            column, value, message, rule = problem
            yield Issue((field, column), message, value, rule, file=str(path), line=row.line)
            found += 1
            if found >= MAX_PLAN_ISSUES:
                return
    except (CsvError, OSError) as err:
        yield csv_issue(err, path)
        return
    if not seen:
        yield Issue(
            (field,), "the plan has no campaign rows", str(path), "migrate.plan.empty", file=str(path)
        )


def _row_problem(row: PlanRow, seen: Mapping[str, int]) -> tuple[str, str, str, str] | None:
    if not row.campaign_id.isdigit():
        return "campaign_id", row.campaign_id, "must be a numeric campaign id", "migrate.plan.id"
    if row.campaign_id in seen:
        return (
            "campaign_id",
            row.campaign_id,
            f"campaign listed twice (first on line {seen[row.campaign_id]})",
            "migrate.plan.duplicate",
        )
    if row.kind not in KINDS or row.eligibility not in ELIGIBILITIES:
        return (
            "kind" if row.kind not in KINDS else "eligibility",
            row.kind if row.kind not in KINDS else row.eligibility,
            "not a row of the preflight (kind / eligibility missing or unknown): to add a campaign, run "
            "bulk-engine migrate-plan again",
            "migrate.plan.unknown",
        )
    if row.action not in PLAN_ACTIONS:
        return "action", row.action, f"must be one of {', '.join(PLAN_ACTIONS)}", "migrate.plan.action"
    why = forbidden_action(row.action, row.kind, row.eligibility, row.status)
    if why is not None:
        return "action", row.action, why, "migrate.plan.forbidden"
    return None


def row_refusal(row: PlanRow, file: str, kind: str, eligibility: str, status: str | None) -> Issue | None:
    """Why ``row`` cannot run against the campaign as the preflight just read it (``None``: it can)."""
    why = forbidden_action(row.action, kind, eligibility, status)
    if why is None:
        return None
    return Issue(
        ("plan", "action"),
        f"no longer allowed for campaign {row.campaign_id} as it reads now: {why}",
        row.action,
        "migrate.plan.forbidden",
        file=file,
        line=row.line,
    )


def unknown_row(row: PlanRow, file: str, account_id: str, error: GraphError | None) -> Issue:
    """The row of a campaign the preflight could not read: gone (S003 §Handling Errors → Error Codes: ``100,
    subcode 33`` — the object "does not exist, cannot be loaded due to missing permissions"), or another
    account's. Graph's own code and subcode when the read got one."""
    reason = error.message if error is not None else "not found"
    return Issue(
        ("plan", "campaign_id"),
        f"campaign cannot be read in {account_id} (unknown id, deleted, or another account's): {reason}",
        row.campaign_id,
        "migrate.plan.unknown",
        code=error.code if error is not None else 100,
        subcode=error.error_subcode if error is not None else 33,
        file=file,
        line=row.line,
    )


def apply_plan(
    rows: Sequence[PlanRow],
    records: dict[str, MigrationRecord],
    file: str,
    account_id: str,
    errors: Mapping[str, GraphError | None],
) -> list[Issue]:
    """Set each preflight record's action from its plan row; returns the problems of the rows the fresh
    preflight refuses (the module docstring's second pass: raised as bad input, before any write).
    Campaigns not in the plan are dropped: untouched."""
    refused: list[Issue] = []
    listed = {r.campaign_id for r in rows}
    for cid in [c for c in records if c not in listed]:
        del records[cid]
    for row in rows:
        record = records.get(row.campaign_id)
        if record is None:
            refused.append(unknown_row(row, file, account_id, errors.get(row.campaign_id)))
            continue
        record.plan_line = row.line
        refusal = row_refusal(row, file, record.kind, record.eligibility, record.source_status)
        if refusal is not None:
            refused.append(refusal)
        elif row.action in TASK_ACTION:
            record.action = TASK_ACTION[row.action]
            if record.kind == "AAC":
                record.action = "migrate_in_place"  # forbidden_action refused "copy" for an AAC
        else:
            record.action = None
            record.state = "manual" if row.action == "manual" else "not_run"
            record.warnings.append(f"plan line {row.line}: {row.action}")
    return refused
