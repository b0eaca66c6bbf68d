"""Roll back an Advantage+ migration from its journal, or its JSON report (``type: migrate``, ``mode: rollback``).

Why from the journal first: a run killed before its report was written must be undoable too. The journal
holds, per campaign, every answer the migration got — the copy's id and map, whether the switch-over paused
the source — read back by :func:`~.migrate_journal.journal_records` (``rollback_job``, in
``rollback_journal`` or, without it, in the journal this rollback runs with). Without a journal the JSON
report's records say the same (``rollback_report``). ``bulk-engine undo`` of a migration's journal, report or
undo file writes this task into its inverse job.

What it does, in two journaled engine jobs after one read of the current statuses:

1. every copy the migration made (``copy_and_migrate`` with a new id, complete or not) is paused
   (``rollback_copies: pause``, the default) or deleted (``delete``; deleting a campaign deletes its tree) —
   first, so source and copy never deliver side by side;
2. every source the switch-over paused gets its status before the migration back (ACTIVE).

Campaigns migrated in place are **not reversible**: their ids are kept and ``smart_promotion_type`` reads
GUIDED_CREATION; S003 §Migrate … → FAQ asks "Can I make a POST request to ``smart_promotion_type`` to set it
back …?" and documents no way back, so each gets a ``skipped`` op saying so. A status already at its target
("already PAUSED": a rollback run again) costs no call and no skip.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bulk_engine.planning.graph import Operation, OpKind
from bulk_engine.results import OutcomeState

from .base import EngineLike, Issue, JobFileError, TaskEnv
from .reads import read_nodes
from .status import check_transition
from .task import TaskReport

if TYPE_CHECKING:
    from .migrate import MigrateTask

__all__ = [
    "NOT_REVERSIBLE",
    "migration_records",
    "report_issues",
    "rollback_migration",
    "rollback_rule_issues",
]

NOT_REVERSIBLE = (
    "migrated in place: not reversible — the campaign kept its id and reads smart_promotion_type "
    "GUIDED_CREATION; the migration guide (S003 §Migrate … → FAQ) documents no way to set it back"
)
MAX_REPORT_BYTES = 512 * 1024 * 1024


def migration_records(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The per-campaign records of every migrate task of a JSON report (``bulk-engine run --report``)."""
    out: list[dict[str, Any]] = []
    for task in report.get("tasks") or ():
        if not isinstance(task, Mapping) or task.get("type") != "migrate":
            continue
        details = task.get("details")
        campaigns = details.get("campaigns") if isinstance(details, Mapping) else None
        out.extend(c for c in campaigns or () if isinstance(c, dict) and c.get("source_id"))
    return out


def _load(path: Path) -> Any:
    if path.stat().st_size > MAX_REPORT_BYTES:
        raise ValueError(f"larger than {MAX_REPORT_BYTES // 2**20} MiB")
    return json.loads(path.read_text(encoding="utf-8"))


def report_issues(path: Path, field: str = "rollback_report") -> Iterator[Issue]:
    """Problems of the report to roll back, found before any call: missing, not JSON, no migration in it."""
    try:
        data = _load(path)
    except FileNotFoundError:
        yield Issue((field,), f"report not found: {path}", str(path), "migrate.rollback.missing")
        return
    except (OSError, ValueError) as err:
        yield Issue((field,), f"not a JSON report: {err}", str(path), "migrate.rollback.json", file=str(path))
        return
    if not isinstance(data, Mapping) or not migration_records(data):
        yield Issue(
            (field,),
            "the report holds no migrate task with campaigns (use the --report JSON of the migration run)",
            str(path),
            "migrate.rollback.empty",
            file=str(path),
        )


def rollback_rule_issues(task: MigrateTask) -> Iterator[Issue]:
    """A rollback names one migration: ``rollback_job`` (its journal: ``rollback_journal`` or the run's own)
    or ``rollback_report``; other modes take neither."""
    sources = [n for n in ("rollback_job", "rollback_report") if getattr(task, n) is not None]
    if task.mode != "rollback":
        for name in (*sources, *(["rollback_journal"] if task.rollback_journal else [])):
            yield Issue((name,), "only mode: rollback takes it", getattr(task, name), "migrate.rollback")
    elif len(sources) != 1:
        yield Issue(
            ("mode",),
            "mode rollback needs exactly one of rollback_job (the migration's job id in its journal) or "
            "rollback_report (its JSON report)",
            task.mode,
            "migrate.rollback",
        )
    elif task.rollback_journal is not None and task.rollback_job is None:
        yield Issue(
            ("rollback_journal",), "rollback_journal goes with rollback_job", task.rollback_journal,
            "migrate.rollback",
        )  # fmt: skip


def _journal_of(engine: Any) -> Any:
    """The journal the engine under ``engine`` (a wrapper's ``.engine``, …) runs with, or ``None``."""
    for _ in range(8):
        journal = getattr(engine, "journal", None)
        if journal is not None:
            return journal
        engine = getattr(engine, "engine", None)
    return None


def _records(task: MigrateTask, engine: EngineLike, env: TaskEnv) -> list[dict[str, Any]]:
    """The migration's per-campaign records: from its journal when the task names a job, else its report."""
    if task.rollback_job is None:
        assert task.rollback_report is not None
        return migration_records(_load(env.resolve(task.rollback_report)))
    from .migrate_journal import journal_records

    if task.rollback_journal is not None:
        from bulk_engine.persistence import is_journal_url, open_journal

        target = task.rollback_journal
        journal = open_journal(target if is_journal_url(target) else env.resolve(target))
        try:
            found = journal_records(journal, task.rollback_job)
        finally:
            journal.close()
    else:
        journal = _journal_of(engine)
        if journal is None:
            why = "rollback_job without rollback_journal reads the run's journal: run with --journal"
            raise JobFileError([Issue(("rollback_job",), why, task.rollback_job, "migrate.rollback")])
        found = journal_records(journal, task.rollback_job)
        if (
            not found
        ):  # the journal this run opened holds no migration of that job: nothing to undo is a mistake
            why = (
                "the run's journal holds no migration of this job: set rollback_journal to the migration's "
                "journal, or run with the journal the migration ran with"
            )
            raise JobFileError([Issue(("rollback_job",), why, task.rollback_job, "migrate.rollback")])
    return [record.to_dict() for records in found.values() for record in records]


async def rollback_migration(task: MigrateTask, engine: EngineLike, env: TaskEnv) -> TaskReport:
    """Undo the migration ``task`` names (see the module docstring)."""
    report = TaskReport.for_env(env, "migrate")
    records = _records(task, engine, env)
    copies = [
        r
        for r in records
        if r.get("action") == "copy_and_migrate" and r.get("new_id") and r.get("new_id") != r.get("source_id")
    ]
    paused = [r for r in copies if r.get("source_paused")]
    ids = [str(r["new_id"]) for r in copies] + [str(r["source_id"]) for r in paused]
    current = await read_nodes(
        engine,
        ids,
        "id,status,effective_status",
        env.account_id,
        report,
        op_prefix=env.op_id("rollback", "read"),
    )
    lines: dict[str, dict[str, Any]] = {
        str(r["source_id"]): {
            "source_id": r["source_id"],
            "new_id": r.get("new_id"),
            "action": r.get("action"),
        }
        for r in records
    }
    target = "PAUSED" if task.rollback_copies == "pause" else "DELETED"
    steps = (
        ("copy", [(str(r["source_id"]), str(r["new_id"]), target) for r in copies]),
        (
            "source",
            [
                (str(r["source_id"]), str(r["source_id"]), str(r.get("source_status") or "ACTIVE"))
                for r in paused
            ],
        ),
    )
    for side, changes in steps:
        ops: list[Operation] = []
        for source, object_id, status in changes:
            found = current.items.get(object_id)
            node = found[0] if found else {}
            why = check_transition(node.get("status"), status, effective=node.get("effective_status"))
            op_id = env.op_id("rollback", side, object_id)
            if not node:
                error = current.errors.get(object_id)
                lines[source][side] = f"not read: {error.reason if error else 'not found'}"
                env.ctx.skip(
                    op_id, env.account_id, OpKind.UPDATE.value, f"{object_id}: {lines[source][side]}"
                )
            elif why is not None and why.startswith("already"):
                lines[source][side] = why
            elif why is not None:
                lines[source][side] = f"left {node.get('status')}: {why}"
                env.ctx.skip(op_id, env.account_id, OpKind.UPDATE.value, f"{object_id}: {why}")
            else:
                dry = {"execution_options": ["validate_only"]} if env.ctx.validate_only else {}
                ops.append(
                    Operation(
                        op_id=op_id,
                        method="POST",
                        path=object_id,
                        params={"status": status, **dry},
                        account_id=env.account_id,
                        kind=OpKind.UPDATE,
                    )
                )
                lines[source][side] = f"{node.get('status')} → {status}"
        outcomes = await report.run(engine, ops, env.ctx)
        for source, object_id, status in changes:
            outcome = outcomes.get(env.op_id("rollback", side, object_id))
            if outcome is not None and outcome.state is not OutcomeState.SUCCEEDED:
                lines[source][side] = f"{status} not set: {outcome.reason}"
    for record in records:
        if record.get("action") == "migrate_in_place" and record.get("state") == "migrated":
            source = str(record["source_id"])
            lines[source]["in_place"] = NOT_REVERSIBLE
            env.ctx.skip(
                env.op_id("rollback", "in_place", source),
                env.account_id,
                OpKind.MIGRATE.value,
                NOT_REVERSIBLE,
            )
    for outcome in env.ctx.skipped:
        report.add(outcome)
    env.ctx.skipped.clear()
    report.details["rollback"] = [line for line in lines.values() if len(line) > 3]
    report.details["rollback_of"] = task.rollback_job or str(task.rollback_report)
    report.details["rollback_from"] = "journal" if task.rollback_job else "report"
    return report
