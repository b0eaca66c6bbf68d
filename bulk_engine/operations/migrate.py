"""Migrate a whole ad account's ASC / AAC campaigns to Advantage+: decide, migrate, verify, switch over.

Seed 003 §Migrate Advantage+ Shopping Campaigns and Advantage+ App Campaigns into Advantage+ Campaigns:
copy and migrate (``POST /<CAMPAIGN_ID>/copies?migrate_to_advantage_plus=true`` → ``{"copied_campaign_id",
"ad_object_ids"}``, source kept) or migrate only (``POST /<CAMPAIGN_ID>?migrate_to_advantage_plus=true`` →
``{"success": true}``, ids kept); either way the campaign then reads ``smart_promotion_type: GUIDED_CREATION``
and has ``advantage_state_info``. The pure rules (eligibility, plan actions, readiness) are in
:mod:`.migrate_eligibility`; plan files in :mod:`.migrate_plan`; the rollback in :mod:`.migrate_rollback`.

Phases of :meth:`MigrateTask.execute`, each one or more journaled engine jobs of the same task (so a killed run
resumes phase by phase, nothing sent twice):

1. **preflight** reads every campaign (or the plan's), its ad sets and its ad count and classifies it; with
   ``plan:`` each row's action is checked against what was just read — any refusal (a campaign gone, an
   action no longer allowed) raises :class:`~.base.JobFileError` before any write (``run`` exits 2);
2. **migrate**: copy-and-migrate or in place; a copy over the synchronous limit (100/1885194) is done as a
   chunked copy, migrated in place, and the refused ``/copies`` op ends ``succeeded`` "completed by chunked
   copy" (:func:`~.copy.settle_fallback`);
3. **verify**: read each result's ``smart_promotion_type`` (must be GUIDED_CREATION), ``advantage_state_info``
   and tree (:mod:`.migrate_verify`); the full id map (campaign, ad sets, ads) comes from ``ad_object_ids`` — the
   seed's example lists only the campaign — completed by the copy's ``source_adset_id`` / ``source_ad_id``
   as the tree read answers them (the map's journal record, ``<key>/map/<source>/<new>/…``); a mapped copy missing
   from the tree, or a live source ad set left uncopied, fails verification (an unverified result that no
   switch-over op reports gets a ``skipped`` ``<key>/unverified/<source>`` saying why: never a silent success);
4. **switch-over** (``after_copy: pause_source``, the default: ``status_option`` defaults to
   INHERITED_FROM_SOURCE, so an ACTIVE source and its ACTIVE copy would both spend): pause each ACTIVE source
   whose copy verified; an unverified copy leaves its source as it was and its switch op ``skipped`` with why;
5. **follow-up**: a migrated campaign whose ``advantage_state`` reads DISABLED gets the readiness of its levers
   and, with ``readiness: apply``, the documented lever changes, then is read again (so are ordinary
   campaigns, before verification).

A dry run (``validate_only``) stops after the preflight and sends ``migrate_to_advantage_plus`` with
``execution_options=["validate_only"]`` per campaign to migrate; ``mode: rollback`` undoes a migration from
its journal, or its report (:mod:`.migrate_rollback`, :mod:`.migrate_journal`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from bulk_engine.planning.graph import Operation, OpKind
from bulk_engine.results import OutcomeState

from .base import EngineLike, Issue, JobFileError, TaskEnv
from .copy import CopyTask, RenameOptions, _is_sync_limit, _mapping_from_result, chunked_copy, settle_fallback
from .csvinput import count_rows
from .migrate_eligibility import (
    MAX_ADS_FOR_MIGRATION,
    CampaignFacts,
    Eligibility,
    Readiness,
    campaign_kind,
    classify,
    plan_action,
    readiness,
)
from .migrate_plan import apply_plan, plan_issues, read_plan
from .migrate_readiness import apply_readiness, follow_up, readiness_errors, readiness_op
from .migrate_record import MigrationRecord, drain, fail, map_entry, readiness_dict, tally
from .migrate_rollback import rollback_migration, rollback_rule_issues
from .migrate_verify import ADSET_FIELDS, CAMPAIGN_FIELDS, NON_DELETED, verify
from .reads import EdgeRead, read_edges, read_nodes
from .specs import job_model_config
from .task import TaskBase, TaskReport

if TYPE_CHECKING:
    from bulk_engine.protocol.errors import GraphError

__all__ = ["MigrateTask", "MigrationRecord"]

LIVE = ("ACTIVE", "PAUSED")


class MigrateTask(TaskBase):
    """Migrate ASC/AAC campaigns to Advantage+ (see the module docstring)."""

    model_config = job_model_config("MigrateTask")

    type: Literal["migrate"]
    campaign_ids: list[str] | None = Field(None, description="Default: every campaign of the account")
    plan: str | None = Field(
        None, description="A reviewed plan CSV (bulk-engine migrate-plan): each row's action is executed"
    )
    include_archived: bool = False
    mode: Literal["copy", "in_place", "rollback"] = Field(
        "copy",
        description="copy = copy and migrate (source kept); rollback = undo a migration from its journal "
        "(or its report)",
    )
    app_campaigns: Literal["in_place", "skip"] = Field(
        "in_place", description="Advantage+ app campaigns can only be migrated in place"
    )
    deep_copy: bool = True
    status_option: Literal["ACTIVE", "PAUSED", "INHERITED_FROM_SOURCE"] = "INHERITED_FROM_SOURCE"
    rename_options: RenameOptions | None = None
    after_copy: Literal["pause_source", "keep_source"] = Field(
        "pause_source", description="Pause each ACTIVE source once its copy verified (no double delivery)"
    )
    preflight_only: bool = False
    verify: bool = True
    readiness: Literal["off", "report", "apply"] = Field(
        "report",
        description="Advantage+ readiness of ordinary campaigns and of migrated ones still DISABLED: report it, "
        "or apply the changes",
    )
    max_ads: int = Field(MAX_ADS_FOR_MIGRATION, ge=1)
    rollback_journal: str | None = Field(
        None,
        description="mode rollback: the journal (SQLite path or PostgreSQL URL) of the migration to undo",
    )
    rollback_job: str | None = Field(
        None,
        description="mode rollback: the migration's job id in rollback_journal (default: in the journal the "
        "rollback runs with)",
    )
    rollback_report: str | None = Field(
        None, description="mode rollback without a journal: the JSON report of the migration to undo"
    )
    rollback_copies: Literal["pause", "delete"] = Field(
        "pause", description="mode rollback: what happens to the copies"
    )

    @property
    def needs_reads(self) -> bool:
        return True

    def input_files(self) -> list[str]:
        return [f for f in (self.plan, self.rollback_report) if f and not self.rollback_journal]

    def input_issues(self, base_dir: Path) -> Iterator[Issue]:
        if self.plan:
            yield from plan_issues(base_dir / self.plan)
        if self.rollback_journal and self.rollback_job:
            from .migrate_journal import journal_issues

            yield from journal_issues(self.rollback_journal, self.rollback_job, base_dir)
        elif self.rollback_report:
            from .migrate_rollback import report_issues

            yield from report_issues(base_dir / self.rollback_report)

    def rule_issues(self) -> Iterator[Issue]:
        for i, cid in enumerate(self.campaign_ids or []):
            if not cid.isdigit():
                yield Issue(("campaign_ids", i), "must be a numeric campaign id", cid, "migrate.id")
        if self.campaign_ids is not None and not self.campaign_ids:
            yield Issue(
                ("campaign_ids",),
                "empty list: omit it to migrate every campaign of the account",
                [],
                "migrate.ids",
            )
        if self.plan is not None and self.campaign_ids is not None:
            yield Issue(("plan",), "a plan names its campaigns: drop campaign_ids", self.plan, "migrate.plan")
        yield from rollback_rule_issues(self)
        if self.after_copy == "pause_source" and not self.verify and self.mode != "rollback":
            yield Issue(
                ("after_copy",),
                "pause_source pauses a source only once its copy verified: it needs verify: true "
                "(or after_copy: keep_source)",
                self.after_copy,
                "migrate.switch",
            )

    def estimate(self, env: TaskEnv) -> dict[str, int]:
        if self.plan:
            return {OpKind.MIGRATE.value: count_rows(env.resolve(self.plan), "campaign_id")}
        return {OpKind.MIGRATE.value: len(self.campaign_ids or [])}

    async def execute(self, engine: EngineLike, env: TaskEnv) -> TaskReport:
        if self.mode == "rollback":
            return await rollback_migration(self, engine, env)
        report = TaskReport.for_env(env, "migrate")
        report.details["account_id"] = env.account_id  # the rollback's account (bulk-engine undo)
        rows = read_plan(env.resolve(self.plan)) if self.plan else None
        ids = [r.campaign_id for r in rows] if rows is not None else self.campaign_ids
        campaigns, adsets, ads, unreadable = await self._preflight(engine, env, report, ids)
        records = self._classify(campaigns, adsets, ads)
        if rows is not None:
            plan_file = str(env.resolve(self.plan or "plan"))
            refused = apply_plan(rows, records, plan_file, env.account_id, unreadable)
            if refused:  # bad input found by the reads: nothing written (see migrate_plan)
                raise JobFileError(refused, plan_file)
        report.details["campaigns"] = records
        if env.ctx.validate_only and not self.preflight_only:
            await self._validate(engine, env, report, campaigns, adsets, records)
        elif not (self.preflight_only or env.ctx.validate_only):
            await self._migrate(engine, env, report, records)
            ordinary = {
                str(c["id"]): readiness(c, adsets.get(str(c["id"]), []))
                for c in campaigns
                if records[str(c["id"])].readiness is not None
            }
            if self.readiness == "apply":
                await apply_readiness(engine, env, report, ordinary, records)
            if self.verify:
                copies = await verify(self, engine, env, report, records)
                await self._switch_over(engine, env, report, records)
                await follow_up(self, engine, env, report, records, copies)
        report.details["campaigns"] = [r.to_dict() for r in records.values()]
        report.details["classes"] = tally(r.eligibility for r in records.values())
        report.details.pop("source_adsets", None)  # the verification's input, not a result
        return report

    # --- preflight --------------------------------------------------------------------------------------------
    async def _preflight(
        self, engine: EngineLike, env: TaskEnv, report: TaskReport, campaign_ids: list[str] | None
    ) -> tuple[
        list[dict[str, Any]], dict[str, list[dict[str, Any]]], dict[str, int], dict[str, GraphError | None]
    ]:
        """Campaigns, their ad sets and ad counts as read; the Graph error of each listed id not read."""
        prefix = env.op_id("preflight")
        unreadable: dict[str, GraphError | None] = {}
        if campaign_ids is not None:
            nodes = await read_nodes(
                engine, campaign_ids, CAMPAIGN_FIELDS, env.account_id, report, op_prefix=prefix
            )
            campaigns = [n[0] for c in campaign_ids if (n := nodes.items.get(c))]
            report.details["unreadable"] = {c: o.reason for c, o in nodes.errors.items()}
            unreadable = {c: o.error for c, o in nodes.errors.items()}
        else:
            params: dict[str, Any] = {"fields": CAMPAIGN_FIELDS}
            if self.include_archived:
                params["effective_status"] = NON_DELETED
            edge = await read_edges(
                engine,
                [EdgeRead("campaigns", f"{env.account_id}/campaigns", env.account_id, params)],
                report,
                op_prefix=prefix,
            )
            campaigns = edge.items.get("campaigns", [])
        ids = [str(c["id"]) for c in campaigns]
        children = await read_edges(
            engine,
            [
                *(
                    EdgeRead(
                        f"{c}/adsets",
                        f"{c}/adsets",
                        env.account_id,
                        {"fields": ADSET_FIELDS, "effective_status": NON_DELETED},
                    )
                    for c in ids
                ),
                *(
                    EdgeRead(
                        f"{c}/ads",
                        f"{c}/ads",
                        env.account_id,
                        {"fields": "id", "summary": "total_count", "effective_status": NON_DELETED},
                        max_items=1,
                    )
                    for c in ids
                ),
            ],
            report,
            op_prefix=prefix,
        )
        adsets = {c: children.items.get(f"{c}/adsets", []) for c in ids}
        ads: dict[str, int] = {}
        for c in ids:
            total = children.summaries.get(f"{c}/ads", {}).get("total_count")
            ads[c] = (
                int(total)
                if isinstance(total, int | str) and str(total).isdigit()
                else len(children.items.get(f"{c}/ads", []))
            )
        report.details["source_adsets"] = {
            c: [str(a["id"]) for a in adsets[c] if a.get("status") in LIVE] for c in ids
        }
        return campaigns, adsets, ads, unreadable

    def _classify(
        self,
        campaigns: list[dict[str, Any]],
        adsets: dict[str, list[dict[str, Any]]],
        ads: dict[str, int],
    ) -> dict[str, MigrationRecord]:
        records: dict[str, MigrationRecord] = {}
        for campaign in campaigns:
            cid = str(campaign["id"])
            facts = CampaignFacts.from_reads(campaign, adsets.get(cid, []), ads.get(cid, 0))
            mode: Literal["copy", "in_place"] = "in_place" if self.mode == "in_place" else "copy"
            found = classify(facts, mode=mode, app_campaigns=self.app_campaigns, max_ads=self.max_ads)
            records[cid] = MigrationRecord(
                cid,
                facts.name,
                found.eligibility.value,
                found.reason,
                found.action,
                found.manual_path,
                list(found.warnings),
                kind=campaign_kind(facts.smart_promotion_type),
                proposed_action=plan_action(found),
                source_status=facts.status,
                budget=facts.budget,
                ads=facts.ads,
            )
            if self.readiness != "off" and found.eligibility is Eligibility.NOT_APPLICABLE:
                records[cid].readiness = readiness_dict(readiness(campaign, adsets.get(cid, [])))
        return records

    # --- dry run ----------------------------------------------------------------------------------------------
    async def _validate(
        self,
        engine: EngineLike,
        env: TaskEnv,
        report: TaskReport,
        campaigns: list[dict[str, Any]],
        adsets: dict[str, list[dict[str, Any]]],
        records: dict[str, MigrationRecord],
    ) -> None:
        """Dry run after the preflight: Graph checks every planned change and makes none —
        ``POST /<campaign>?migrate_to_advantage_plus=true`` with ``execution_options=["validate_only"]`` for
        each campaign to migrate (the server's migration rules, whichever mode; ``/copies`` itself has no dry
        run), and the readiness updates with ``validate_only`` when ``readiness: apply``."""
        dry = {"execution_options": ["validate_only"]}
        ops: list[Operation] = []
        for cid, record in records.items():
            if record.action in ("copy_and_migrate", "migrate_in_place"):
                params = {"migrate_to_advantage_plus": True, **dry}
                ops.append(_op(env.op_id("validate", cid), cid, params, env))
        plans: dict[str, Readiness] = {}
        if self.readiness == "apply":
            for c in campaigns:
                cid = str(c["id"])
                ready = readiness(c, adsets.get(cid, []))
                if (
                    cid in records
                    and records[cid].readiness is not None
                    and not ready.ready
                    and not ready.manual
                ):
                    plans[cid] = ready
                    ops.extend(readiness_op(env, cid, change, dry) for change in ready.changes)
        if not ops:
            return
        outcomes = await report.run(engine, ops, env.ctx)
        for cid, record in records.items():
            outcome = outcomes.get(env.op_id("validate", cid))
            if outcome is None:
                continue
            if outcome.state is OutcomeState.SUCCEEDED:
                record.state = "validated"
                mode = (
                    "copied, then the copy migrated"
                    if record.action == "copy_and_migrate"
                    else "migrated in place"
                )
                record.warnings.append(
                    f"dry run: Graph accepted the migration (validate_only); it would be {mode}"
                )
            else:
                fail(record, outcome)
        for cid, ready in plans.items():
            failed = readiness_errors(outcomes, env, cid, ready.changes)
            record_readiness = records[cid].readiness
            if record_readiness is not None:
                record_readiness["validated"] = not failed
                if failed:
                    record_readiness["errors"] = failed

    # --- migrate ----------------------------------------------------------------------------------------------
    async def _migrate(
        self, engine: EngineLike, env: TaskEnv, report: TaskReport, records: dict[str, MigrationRecord]
    ) -> None:
        ops: list[Operation] = []
        copy_params: dict[str, Any] = {
            "migrate_to_advantage_plus": True,
            "deep_copy": self.deep_copy,
            "status_option": self.status_option,
        }
        if self.rename_options is not None:
            copy_params["rename_options"] = self.rename_options.model_dump(exclude_none=True)
        for cid, record in records.items():
            op_id = env.op_id("migrate", cid)
            if record.action == "copy_and_migrate":
                ops.append(_op(op_id, (cid, "copies"), copy_params, env))
            elif record.action == "migrate_in_place":
                ops.append(_op(op_id, cid, {"migrate_to_advantage_plus": True}, env))
            elif record.state == "not_run":
                record.state = "skipped"
        if not ops:
            return
        outcomes = await report.run(engine, ops, env.ctx)
        too_large: list[str] = []
        for cid, record in records.items():
            outcome = outcomes.get(env.op_id("migrate", cid))
            if outcome is None:
                continue
            if outcome.state is OutcomeState.SUCCEEDED:
                record.state = "migrated"
                if record.action == "copy_and_migrate":
                    mapping = _mapping_from_result(outcome.result, "campaign", cid, "sync")
                    record.new_id = str(mapping["new_id"] or cid)
                    record.id_map = mapping["objects"] or [map_entry("campaign", cid, record.new_id)]
                else:
                    record.new_id = cid
                    record.id_map = [map_entry("campaign", cid, cid)]
            elif record.action == "copy_and_migrate" and _is_sync_limit(outcome):
                too_large.append(cid)
            else:
                fail(record, outcome)
        if too_large:
            await self._chunked(engine, env, report, records, too_large)

    async def _chunked(
        self,
        engine: EngineLike,
        env: TaskEnv,
        report: TaskReport,
        records: dict[str, MigrationRecord],
        sources: list[str],
    ) -> None:
        """Over the synchronous copy limit: copy the tree in pieces, then migrate the copy in place."""
        task = CopyTask(
            type="copy",
            level="campaign",
            source_ids=sources,
            deep_copy=True,
            status_option=self.status_option,
            rename_options=self.rename_options,
        )
        plans = await chunked_copy(engine, env, report, task, sources, prefix="chunk")
        ops: list[Operation] = []
        for plan in plans:
            settle_fallback(report, env.op_id("migrate", plan.source_id), plan)
            record = records[plan.source_id]
            record.fallback = "chunked copy (the tree exceeded the synchronous copy limit, 100/1885194), then migrated in place"
            record.new_id = plan.new_id
            record.id_map = _mapping_from_result(plan.result(), "campaign", plan.source_id, "chunked")[
                "objects"
            ]
            if plan.new_id is None or plan.failed:
                record.state = "failed"
                record.error = {"reason": "chunked copy incomplete", "failed": plan.failed}
                continue
            ops.append(
                _op(
                    env.op_id("migrate-copy", plan.source_id),
                    plan.new_id,
                    {"migrate_to_advantage_plus": True},
                    env,
                )
            )
        if not ops:
            return
        outcomes = await report.run(engine, ops, env.ctx)
        for plan in plans:
            outcome = outcomes.get(env.op_id("migrate-copy", plan.source_id))
            if outcome is None:
                continue
            if outcome.state is OutcomeState.SUCCEEDED:
                records[plan.source_id].state = "migrated"
            else:
                fail(records[plan.source_id], outcome)

    # --- switch-over ------------------------------------------------------------------------------------------
    async def _switch_over(
        self, engine: EngineLike, env: TaskEnv, report: TaskReport, records: dict[str, MigrationRecord]
    ) -> None:
        """Pause each ACTIVE source whose copy verified (``after_copy: pause_source``); see the module docstring."""
        copies = [r for r in records.values() if r.action == "copy_and_migrate" and r.state == "migrated"]
        if self.after_copy == "keep_source":
            for record in copies:
                record.switch = "source kept (after_copy: keep_source): source and copy deliver side by side"
            return
        ops: list[Operation] = []
        for record in copies:
            op_id = env.op_id("switch", record.source_id)
            if not record.verified:
                record.switch = (
                    f"source left {record.source_status or 'as it was'}: the copy {record.new_id} was not verified ("
                    + "; ".join(record.verify_problems)
                    + ")"
                )
                env.ctx.skip(op_id, env.account_id, OpKind.UPDATE.value, record.switch)
            elif record.source_status != "ACTIVE":
                record.switch = f"source already {record.source_status}: nothing to pause"
            else:
                ops.append(
                    Operation(
                        op_id=op_id,
                        method="POST",
                        path=record.source_id,
                        params={"status": "PAUSED"},
                        account_id=env.account_id,
                        kind=OpKind.UPDATE,
                    )
                )
        outcomes = await report.run(engine, ops, env.ctx) if ops else drain(report, env)
        for record in copies:
            outcome = outcomes.get(env.op_id("switch", record.source_id))
            if outcome is None or record.switch is not None:
                continue
            if outcome.state is OutcomeState.SUCCEEDED:
                record.switch, record.source_paused = f"source paused: {record.new_id} verified", True
            else:
                record.switch = f"source left ACTIVE: pausing it did not succeed ({outcome.reason})"


def _op(op_id: str, path: str | tuple[str, ...], params: dict[str, Any], env: TaskEnv) -> Operation:
    return Operation(
        op_id=op_id, method="POST", path=path, params=params, account_id=env.account_id, kind=OpKind.MIGRATE
    )
