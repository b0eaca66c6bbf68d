"""The migration's verification phase: read each result and its tree, judge it, and journal the id map.

Why its own module: the tree read is also the **map record** of the migration. Its operations are named
``<key>/map/<source campaign>/<new campaign>/{adsets,ads}/p<n>`` and their answers list every ad set and ad
of the result with ``source_adset_id`` / ``source_ad_id`` (in place: the same ids), so the journal holds the
old → new map like any operation's outcome: a resumed run gets the same answers back from the journal, and a
rollback reads the same map from it (:mod:`.migrate_journal`) without the report.

The verification rule — S003 §Migrate Advantage+ Shopping Campaigns and Advantage+ App Campaigns into
Advantage+ Campaigns: the result "will reflect a smart_promotion_type of GUIDED_CREATION and will have
advantage_state_info details" — is the pure :func:`~.migrate_record.verify_problems`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from bulk_engine.planning.graph import OpKind

from .base import EngineLike, TaskEnv
from .migrate_eligibility import LEVERS, _opt
from .migrate_record import MigrationRecord, drain, full_map, verify_problems
from .reads import EdgeRead, read_edges, read_nodes
from .status import LIVE_FILTER
from .task import TaskReport

if TYPE_CHECKING:
    from .migrate import MigrateTask

__all__ = [
    "ADSET_FIELDS",
    "CAMPAIGN_FIELDS",
    "MAP_ADSETS_FIELDS",
    "MAP_ADS_FIELDS",
    "NON_DELETED",
    "map_reads",
    "verify",
]

CAMPAIGN_FIELDS = (
    "id,name,objective,status,effective_status,smart_promotion_type,existing_customer_budget_percentage,"
    "special_ad_categories,daily_budget,lifetime_budget,bid_strategy,advantage_state_info"
)
ADSET_FIELDS = (
    "id,name,status,effective_status,daily_budget,lifetime_budget,bid_strategy,bid_amount,targeting,"
    "existing_customer_budget_percentage"
)
MAP_ADSETS_FIELDS = ADSET_FIELDS + ",source_adset_id"
MAP_ADS_FIELDS = "id,name,status,adset_id,source_ad_id"
NON_DELETED = sorted({*LIVE_FILTER, "ARCHIVED"})


def map_reads(source_id: str, new_id: str, account_id: str) -> tuple[EdgeRead, EdgeRead]:
    """The two edge reads of one result's tree, keyed ``<source>/<new>/adsets|ads`` (the map record)."""
    return (
        EdgeRead(
            f"{source_id}/{new_id}/adsets",
            f"{new_id}/adsets",
            account_id,
            {"fields": MAP_ADSETS_FIELDS, "effective_status": NON_DELETED},
        ),
        EdgeRead(
            f"{source_id}/{new_id}/ads",
            f"{new_id}/ads",
            account_id,
            {"fields": MAP_ADS_FIELDS, "effective_status": NON_DELETED},
        ),
    )


async def verify(
    task: MigrateTask,
    engine: EngineLike,
    env: TaskEnv,
    report: TaskReport,
    records: dict[str, MigrationRecord],
) -> dict[str, tuple[dict[str, Any], list[dict[str, Any]]]]:
    """Read every result (node and tree) and judge it; returns new id → (campaign, ad sets) as read."""
    targets = {r.new_id: r for r in records.values() if r.state == "migrated" and r.new_id}
    ready = {cid: r for cid, r in records.items() if r.readiness and r.readiness.get("applied")}
    ids = [*targets, *(c for c in ready if c not in targets)]
    if not ids:
        return {}
    nodes = await read_nodes(
        engine, ids, CAMPAIGN_FIELDS, env.account_id, report, op_prefix=env.op_id("verify")
    )
    trees = await read_edges(
        engine,
        [read for new_id, r in targets.items() for read in map_reads(r.source_id, new_id, env.account_id)],
        report,
        op_prefix=env.op_id("map"),
    )
    source_adsets: Mapping[str, list[str]] = report.details.get("source_adsets") or {}
    read: dict[str, tuple[dict[str, Any], list[dict[str, Any]]]] = {}
    for object_id in ids:
        found = nodes.items.get(object_id)
        node = found[0] if found else {}
        raw_info = node.get("advantage_state_info")
        info = dict(raw_info) if isinstance(raw_info, dict) else None
        record = targets.get(object_id)
        if record is not None:
            adsets = trees.items.get(f"{record.source_id}/{object_id}/adsets", [])
            ads = trees.items.get(f"{record.source_id}/{object_id}/ads", [])
            read[object_id] = (node, adsets)
            record.smart_promotion_type = _opt(node.get("smart_promotion_type"))
            record.advantage_state_info = info
            record.id_map = full_map(record, adsets, ads)
            record.verify_problems = verify_problems(
                record,
                node,
                adsets,
                ads,
                source_adsets.get(record.source_id, []),
                nodes.errors.get(object_id),
            )
            record.verified = not record.verify_problems
            if info is not None and info.get("advantage_state") == "DISABLED":
                off = [k for k in LEVERS if info.get(k) != "ENABLED"]
                record.warnings.append(
                    "migrated, but advantage_state is DISABLED (levers off: " + ", ".join(off) + ")"
                )
        if object_id in ready and record is None:
            readiness_record = ready[object_id].readiness or {}
            readiness_record["after"] = info
            readiness_record["smart_promotion_type_after"] = _opt(node.get("smart_promotion_type"))
    for record in targets.values():
        switched = record.action == "copy_and_migrate" and task.after_copy == "pause_source"
        if record.verified is False and not switched:  # (a switched one's skipped switch op says it)
            why = f"{record.new_id} not verified: " + "; ".join(record.verify_problems)
            env.ctx.skip(env.op_id("unverified", record.source_id), env.account_id, OpKind.READ.value, why)
    drain(report, env)
    return read
