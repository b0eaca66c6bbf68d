"""Advantage+ readiness in the migration flow: report the levers, apply the documented changes, read again.

Why its own module: two kinds of campaigns get it — ordinary campaigns (not ASC/AAC: nothing to migrate, but
their levers can be turned on) and migrated campaigns whose ``advantage_state`` still reads DISABLED (issue 17
item 4). The changes come from the pure :func:`~.migrate_eligibility.readiness` (S003 §Advantage+ Campaign
Experience → Step 2); they are sent ad sets first (phase 1), then the campaign (phase 2), each phase one
journaled engine job, and a campaign whose phase-1 update failed gets no phase 2.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from bulk_engine.planning.graph import Operation, OpKind
from bulk_engine.results import Outcome, OutcomeState

from .base import EngineLike, TaskEnv
from .migrate_eligibility import Readiness, ReadinessChange, readiness
from .migrate_record import MigrationRecord, readiness_dict
from .reads import read_nodes
from .task import TaskReport

if TYPE_CHECKING:
    from .migrate import MigrateTask

__all__ = ["apply_readiness", "follow_up", "readiness_errors", "readiness_op"]


async def follow_up(
    task: MigrateTask,
    engine: EngineLike,
    env: TaskEnv,
    report: TaskReport,
    records: dict[str, MigrationRecord],
    read: Mapping[str, tuple[dict[str, Any], list[dict[str, Any]]]],
) -> None:
    """Migrated campaigns still DISABLED: the readiness of their levers, applied with ``readiness: apply``."""
    if task.readiness == "off":
        return
    plans: dict[str, Readiness] = {}
    for record in records.values():
        info = record.advantage_state_info
        new_id = record.new_id or ""
        if new_id not in read or info is None or info.get("advantage_state") != "DISABLED":
            continue
        node, adsets = read[new_id]
        plan = readiness(node, adsets)
        record.readiness = readiness_dict(plan)
        plans[record.source_id] = plan
    if task.readiness != "apply" or not plans:
        return
    await apply_readiness(engine, env, report, plans, records)
    applied = {cid: records[cid] for cid in plans if (records[cid].readiness or {}).get("applied")}
    if not applied:
        return
    nodes = await read_nodes(
        engine,
        [str(r.new_id) for r in applied.values()],
        "id,smart_promotion_type,advantage_state_info",
        env.account_id,
        report,
        op_prefix=env.op_id("reverify"),
    )
    for record in applied.values():
        found = nodes.items.get(str(record.new_id))
        node = found[0] if found else {}
        info = node.get("advantage_state_info")
        record.advantage_state_info = dict(info) if isinstance(info, dict) else record.advantage_state_info
        if record.readiness is not None:
            record.readiness["after"] = record.advantage_state_info


async def apply_readiness(
    engine: EngineLike,
    env: TaskEnv,
    report: TaskReport,
    plans: Mapping[str, Readiness],
    records: dict[str, MigrationRecord],
) -> None:
    """Send the readiness changes of ``plans`` (campaign → readiness): ad sets first, then the campaign."""
    todo = {cid: p for cid, p in plans.items() if not p.ready and not p.manual and p.changes}
    for phase in (1, 2):
        ops = [
            readiness_op(env, cid, change)
            for cid, plan in todo.items()
            if not (records[cid].readiness or {}).get("errors")
            for change in plan.changes
            if change.phase == phase
        ]
        if not ops:
            continue
        outcomes = await report.run(engine, ops, env.ctx)
        for cid, plan in todo.items():
            failed = readiness_errors(outcomes, env, cid, [c for c in plan.changes if c.phase == phase])
            record = records[cid].readiness
            if record is not None:
                record.setdefault("errors", []).extend(failed)
                record["applied"] = not record.get("errors")


def readiness_op(
    env: TaskEnv, cid: str, change: ReadinessChange, extra: dict[str, Any] | None = None
) -> Operation:
    """One readiness update of campaign ``cid`` (``extra``: e.g. ``validate_only`` for a dry run)."""
    return Operation(
        op_id=readiness_op_id(env, cid, change),
        method="POST",
        path=change.object_id,
        params={**change.params, **(extra or {})},
        account_id=env.account_id,
        kind=OpKind.UPDATE,
    )


def readiness_op_id(env: TaskEnv, cid: str, change: ReadinessChange) -> str:
    return env.op_id("ready", cid, f"{change.object_id}.{change.phase}")


def readiness_errors(
    outcomes: Mapping[str, Outcome], env: TaskEnv, cid: str, changes: Sequence[ReadinessChange]
) -> list[str | None]:
    """The reasons of the readiness updates of ``cid`` that were answered and did not succeed."""
    return [
        o.reason
        for change in changes
        if (o := outcomes.get(readiness_op_id(env, cid, change))) is not None
        and o.state is not OutcomeState.SUCCEEDED
    ]
