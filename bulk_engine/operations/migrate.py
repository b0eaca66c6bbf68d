"""Migrate Advantage+ shopping (ASC) and app (AAC) campaigns to Advantage+ campaigns; Advantage+ readiness.

Seed 003 §Migrate Advantage+ Shopping Campaigns and Advantage+ App Campaigns into Advantage+ Campaigns:

- copy and migrate (default, source kept): ``POST /<CAMPAIGN_ID>/copies?migrate_to_advantage_plus=true`` →
  ``{"copied_campaign_id", "ad_object_ids"}``; in place (ids kept): ``POST /<CAMPAIGN_ID>?
  migrate_to_advantage_plus=true`` → ``{"success": true}``. Either way the campaign then reads
  ``smart_promotion_type: GUIDED_CREATION`` and has ``advantage_state_info``.
- Limitations: (1) "Advantage+ app campaigns can only be migrated, not copied"; (2) ASC "using
  existing_customer_budget_percentage cannot be migrated … using the Marketing API"; (3) ASC "with more than 150
  ads cannot be migrated … using the Marketing API". The FAQ asks, without an answer, about special ad
  categories: such campaigns are attempted and flagged with a warning.

Flow (:meth:`MigrateTask.execute`): **preflight** reads every campaign (objective, ``smart_promotion_type``,
``existing_customer_budget_percentage`` on the campaign and its ad sets, number of non-deleted ads, special ad
categories, status) and :func:`classify` es it — ``eligible``, ``migrate_only`` (app campaigns: migrated in
place), ``blocked`` (with the documented reason and the documented manual path), ``already_migrated``,
``not_applicable`` (not ASC/AAC); **run** copy-and-migrate or in-place for the eligible ones (a copy over the
synchronous limit, 100/1885194, falls back to a chunked copy that is then migrated in place); **verify** by
reading ``smart_promotion_type`` (must be GUIDED_CREATION) and ``advantage_state_info`` of every result; report
one :class:`MigrationRecord` per campaign. A dry run (``validate_only``) stops after the preflight and sends
``migrate_to_advantage_plus`` with ``execution_options=["validate_only"]`` per campaign to migrate (state
``validated`` or ``failed`` with Graph's answer), nothing else.

**Readiness** (S003 §Advantage+ Campaign Experience) for ordinary campaigns: :func:`readiness` says which lever
is DISABLED and the change that would enable it — budget: a campaign budget with a supported bid strategy
(one campaign update with the sum of the ad sets' daily budgets, which the campaign budget replaces: S003
§Ad Account, Ad Campaigns "either … at the campaign level or at the adset level, not both"); audience:
``targeting_automation.advantage_audience = 1``; placement: remove placement targeting/exclusions — and, with
``readiness: apply``, sends those changes (ad sets first, then the campaign) and re-reads the state.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any, Literal

from pydantic import Field

from bulk_engine.persistence.keys import strip_key
from bulk_engine.planning.graph import Operation, OpKind
from bulk_engine.results import Outcome, OutcomeState

from .base import EngineLike, Issue, TaskEnv
from .copy import FALLBACK_NOTE, CopyTask, RenameOptions, _is_sync_limit, chunked_copy
from .reads import EdgeRead, read_edges, read_nodes
from .rules import ADVANTAGE_STATES, PLACEMENT_KEYS, SUPPORTED_ADVANTAGE_STRATEGIES
from .specs import job_model_config
from .status import LIVE_FILTER
from .task import TaskBase, TaskReport

__all__ = [
    "MAX_ADS_FOR_MIGRATION",
    "CampaignFacts",
    "Classification",
    "Eligibility",
    "MigrateTask",
    "MigrationRecord",
    "Readiness",
    "ReadinessChange",
    "classify",
    "readiness",
]

ASC = "AUTOMATED_SHOPPING_ADS"
AAC = "SMART_APP_PROMOTION"
GUIDED_CREATION = "GUIDED_CREATION"
MAX_ADS_FOR_MIGRATION = 150
CAMPAIGN_FIELDS = (
    "id,name,objective,status,effective_status,smart_promotion_type,existing_customer_budget_percentage,"
    "special_ad_categories,daily_budget,lifetime_budget,bid_strategy,advantage_state_info"
)
ADSET_FIELDS = (
    "id,name,status,effective_status,daily_budget,lifetime_budget,bid_strategy,bid_amount,targeting,"
    "existing_customer_budget_percentage"
)
NON_DELETED = sorted({*LIVE_FILTER, "ARCHIVED"})
LEVERS = ("advantage_budget_state", "advantage_audience_state", "advantage_placement_state")
AUDIENCE_NEUTRAL_KEYS = frozenset(
    {"geo_locations", "targeting_automation", "targeting_relaxation_types", "targeting_optimization"}
)

MANUAL_ECBP = (
    "Migrate it in Ads Manager, or rebuild it as an Advantage+ campaign that replicates "
    "existing_customer_budget_percentage: two ad sets under an Advantage+ campaign budget, the existing-customer "
    "one with custom_audiences + targeting_relaxation_types.custom_audience=0 and daily_min_spend_target / "
    "daily_spend_cap, the other excluding them with excluded_custom_audiences (S003 §Replicate "
    "existing_customer_budget_percentage behavior)"
)
MANUAL_TOO_MANY_ADS = (
    "Migrate it in Ads Manager, or bring it to 150 ads or fewer (delete ads that no longer deliver) and run the "
    "migration again"
)
MANUAL_ARCHIVED = "Archived or deleted campaigns can't be edited: use mode 'copy' (copy and migrate) instead"


class Eligibility(StrEnum):
    ELIGIBLE = "eligible"
    MIGRATE_ONLY = "migrate_only"
    BLOCKED = "blocked"
    ALREADY_MIGRATED = "already_migrated"
    NOT_APPLICABLE = "not_applicable"


@dataclass(frozen=True)
class CampaignFacts:
    """What the preflight knows about one campaign (from reads, or built by hand in tests)."""

    id: str
    name: str = ""
    objective: str | None = None
    smart_promotion_type: str | None = None
    status: str | None = None
    effective_status: str | None = None
    special_ad_categories: tuple[str, ...] = ()
    ecbp: bool = False
    ads: int = 0
    advantage_state_info: Mapping[str, str] | None = None

    @classmethod
    def from_reads(
        cls, campaign: Mapping[str, Any], adsets: Sequence[Mapping[str, Any]], ads: int
    ) -> CampaignFacts:
        info = campaign.get("advantage_state_info")
        return cls(
            id=str(campaign.get("id")),
            name=strip_key(str(campaign.get("name", ""))),  # as the user wrote it
            objective=_opt(campaign.get("objective")),
            smart_promotion_type=_opt(campaign.get("smart_promotion_type")),
            status=_opt(campaign.get("status")),
            effective_status=_opt(campaign.get("effective_status")),
            special_ad_categories=tuple(str(c) for c in campaign.get("special_ad_categories") or ()),
            ecbp=any(
                _positive_number(n.get("existing_customer_budget_percentage")) for n in (campaign, *adsets)
            ),
            ads=ads,
            advantage_state_info=dict(info) if isinstance(info, Mapping) else None,
        )


@dataclass(frozen=True)
class Classification:
    eligibility: Eligibility
    action: Literal["copy_and_migrate", "migrate_in_place"] | None
    reason: str
    manual_path: str | None = None
    warnings: tuple[str, ...] = ()


def classify(
    facts: CampaignFacts,
    *,
    mode: Literal["copy", "in_place"] = "copy",
    app_campaigns: Literal["in_place", "skip"] = "in_place",
    max_ads: int = MAX_ADS_FOR_MIGRATION,
) -> Classification:
    """Pure: the documented eligibility of one campaign for migration (see the module docstring)."""
    kind = facts.smart_promotion_type
    warnings: list[str] = []
    if any(c != "NONE" for c in facts.special_ad_categories):
        warnings.append(
            "special ad categories "
            + ", ".join(facts.special_ad_categories)
            + ": the migration guide's FAQ leaves open whether such campaigns migrate; check the result"
        )
    if kind == GUIDED_CREATION:
        return Classification(
            Eligibility.ALREADY_MIGRATED, None, "already an Advantage+ campaign (GUIDED_CREATION)"
        )
    if kind not in (ASC, AAC):
        return Classification(
            Eligibility.NOT_APPLICABLE,
            None,
            f"not an Advantage+ shopping or app campaign (smart_promotion_type {kind or 'unset'}): only those are "
            "migrated",
            "Use the Advantage+ readiness check to turn on the budget, audience and placement levers",
        )
    if facts.ecbp:
        return Classification(
            Eligibility.BLOCKED,
            None,
            "uses existing_customer_budget_percentage: such campaigns cannot be migrated using the Marketing API",
            MANUAL_ECBP,
            tuple(warnings),
        )
    if facts.ads > max_ads:
        return Classification(
            Eligibility.BLOCKED,
            None,
            f"has {facts.ads} ads: campaigns with more than {max_ads} ads cannot be migrated using the Marketing API",
            MANUAL_TOO_MANY_ADS,
            tuple(warnings),
        )
    archived = {facts.status, facts.effective_status} & {"ARCHIVED", "DELETED"}
    if kind == AAC:
        if app_campaigns == "skip":
            return Classification(
                Eligibility.MIGRATE_ONLY,
                None,
                "Advantage+ app campaigns can only be migrated in place, not copied (skipped: app_campaigns=skip)",
                "Migrate in place: POST /<CAMPAIGN_ID>?migrate_to_advantage_plus=true",
                tuple(warnings),
            )
        if archived:
            return Classification(
                Eligibility.BLOCKED,
                None,
                "an archived or deleted app campaign can be neither edited nor copied",
                "Migrate it in Ads Manager",
                tuple(warnings),
            )
        return Classification(
            Eligibility.MIGRATE_ONLY,
            "migrate_in_place",
            "Advantage+ app campaigns can only be migrated, not copied: migrated in place (ids kept)",
            None,
            tuple(warnings),
        )
    if mode == "in_place" and archived:
        return Classification(
            Eligibility.BLOCKED,
            None,
            f"the campaign is {sorted(a for a in archived if a)[0]}: it cannot be migrated in place",
            MANUAL_ARCHIVED,
            tuple(warnings),
        )
    action: Literal["copy_and_migrate", "migrate_in_place"] = (
        "copy_and_migrate" if mode == "copy" else "migrate_in_place"
    )
    return Classification(Eligibility.ELIGIBLE, action, "Advantage+ shopping campaign", None, tuple(warnings))


# --- readiness ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ReadinessChange:
    lever: str
    object_id: str
    params: dict[str, Any]
    description: str
    phase: int  # 1: ad sets (first), 2: the campaign


@dataclass(frozen=True)
class Readiness:
    campaign_id: str
    levers: dict[str, str]
    changes: tuple[ReadinessChange, ...]
    manual: tuple[str, ...] = ()

    @property
    def ready(self) -> bool:
        return all(v == "ENABLED" for v in self.levers.values())


def readiness(campaign: Mapping[str, Any], adsets: Sequence[Mapping[str, Any]]) -> Readiness:
    """Pure: which Advantage+ lever is DISABLED and the changes that would enable it.

    Lever states come from the campaign's ``advantage_state_info`` when it was read, else from the documented
    criteria (S003 §Advantage+ Campaign Experience → Step 2).
    """
    cid = str(campaign.get("id"))
    live = [a for a in adsets if str(a.get("status", "ACTIVE")) in ("ACTIVE", "PAUSED")]
    computed = {
        "advantage_budget_state": _state(_budget_enabled(campaign)),
        "advantage_audience_state": _state(any(_audience_enabled(a.get("targeting")) for a in live)),
        "advantage_placement_state": _state(all(not _placements(a.get("targeting")) for a in live)),
    }
    info = campaign.get("advantage_state_info")
    levers = {k: str(info.get(k, computed[k])) for k in LEVERS} if isinstance(info, Mapping) else computed
    manual: list[str] = []
    if campaign.get("objective") not in ADVANTAGE_STATES:
        manual.append(
            f"objective {campaign.get('objective')} has no Advantage+ campaign experience (needs OUTCOME_SALES, "
            "OUTCOME_APP_PROMOTION or OUTCOME_LEADS)"
        )
        return Readiness(cid, levers, (), tuple(manual))
    changes: list[ReadinessChange] = []
    targeting_updates: dict[str, dict[str, Any]] = {}
    notes: dict[str, list[str]] = {}
    if levers["advantage_audience_state"] != "ENABLED":
        for adset in live:
            targeting = dict(adset.get("targeting") or {})
            automation = dict(targeting.get("targeting_automation") or {})
            automation["advantage_audience"] = 1
            targeting["targeting_automation"] = automation
            targeting_updates[str(adset["id"])] = targeting
            notes.setdefault(str(adset["id"]), []).append("advantage_audience_state")
    if levers["advantage_placement_state"] != "ENABLED":
        for adset in live:
            keys = _placements(adset.get("targeting"))
            if not keys:
                continue
            targeting = targeting_updates.get(str(adset["id"]), dict(adset.get("targeting") or {}))
            for key in keys:
                targeting.pop(key, None)
            targeting_updates[str(adset["id"])] = targeting
            notes.setdefault(str(adset["id"]), []).append("advantage_placement_state")
    for adset_id, targeting in targeting_updates.items():
        changed = notes[adset_id]
        description = []
        if "advantage_audience_state" in changed:
            description.append("set targeting_automation.advantage_audience = 1")
        if "advantage_placement_state" in changed:
            description.append("remove placement targeting / exclusions")
        changes.append(
            ReadinessChange(
                " + ".join(changed), adset_id, {"targeting": targeting}, "; ".join(description), 1
            )
        )
    if levers["advantage_budget_state"] != "ENABLED":
        budget_changes, budget_manual = _budget_changes(campaign, live)
        changes.extend(budget_changes)
        manual.extend(budget_manual)
    return Readiness(cid, levers, _merge(changes), tuple(manual))


def _merge(changes: list[ReadinessChange]) -> tuple[ReadinessChange, ...]:
    """One update per object and phase (its params and descriptions combined)."""
    merged: dict[tuple[str, int], ReadinessChange] = {}
    for change in changes:
        key = (change.object_id, change.phase)
        known = merged.get(key)
        if known is None:
            merged[key] = change
        else:
            merged[key] = ReadinessChange(
                f"{known.lever} + {change.lever}",
                change.object_id,
                {**known.params, **change.params},
                f"{known.description}; {change.description}",
                change.phase,
            )
    return tuple(merged.values())


def _budget_changes(
    campaign: Mapping[str, Any], adsets: Sequence[Mapping[str, Any]]
) -> tuple[list[ReadinessChange], list[str]]:
    cid = str(campaign.get("id"))
    strategy = campaign.get("bid_strategy")
    if _has_budget(campaign):
        if strategy not in SUPPORTED_ADVANTAGE_STRATEGIES:
            change = ReadinessChange(
                "advantage_budget_state",
                cid,
                {"bid_strategy": "LOWEST_COST_WITHOUT_CAP"},
                "use a supported bid strategy (LOWEST_COST_WITHOUT_CAP recommended)",
                2,
            )
            return [change], []
        return [], []
    budgeted = [a for a in adsets if _has_budget(a)]
    if not budgeted or any(_positive_number(a.get("lifetime_budget")) for a in budgeted):
        return [], [
            "Advantage+ budget needs a campaign budget: move the ad sets' lifetime budgets to the campaign by hand "
            "(a lifetime campaign budget needs a stop_time)"
        ]
    total = sum(int(float(str(a.get("daily_budget")))) for a in budgeted)
    strategies = {str(a.get("bid_strategy")) for a in budgeted if a.get("bid_strategy")}
    chosen = strategies.pop() if len(strategies) == 1 else "LOWEST_COST_WITHOUT_CAP"
    if chosen not in SUPPORTED_ADVANTAGE_STRATEGIES:
        chosen = "LOWEST_COST_WITHOUT_CAP"
    # One campaign update: S003 §Ad Account, Ad Campaigns (daily_budget) "All adsets under this campaign will
    # share this budget. You can either set budget at the campaign level or at the adset level, not both." —
    # the ad sets' budgets give way to the campaign's. Clearing them first is not a path: an ad set without a
    # campaign budget needs "daily_budget or lifetime_budget greater than 0" (S003 §Ad Account Adsets).
    change = ReadinessChange(
        "advantage_budget_state",
        cid,
        {"daily_budget": total, "bid_strategy": chosen},
        f"campaign budget {total} (sum of the ad sets' daily budgets, which it replaces) with {chosen}",
        2,
    )
    return [change], []


def _budget_enabled(campaign: Mapping[str, Any]) -> bool:
    strategy = campaign.get("bid_strategy")
    return _has_budget(campaign) and (strategy is None or strategy in SUPPORTED_ADVANTAGE_STRATEGIES)


def _audience_enabled(targeting: Any) -> bool:
    if not isinstance(targeting, Mapping):
        return True
    automation = targeting.get("targeting_automation")
    if isinstance(automation, Mapping) and str(automation.get("advantage_audience")) in ("1", "True", "true"):
        return True
    return all(
        key in AUDIENCE_NEUTRAL_KEYS or key in PLACEMENT_KEYS or value in (None, [], {})
        for key, value in targeting.items()
    )


def _placements(targeting: Any) -> list[str]:
    if not isinstance(targeting, Mapping):
        return []
    return [k for k in PLACEMENT_KEYS if targeting.get(k) not in (None, [], {})]


def _state(enabled: bool) -> str:
    return "ENABLED" if enabled else "DISABLED"


def _has_budget(node: Mapping[str, Any]) -> bool:
    return _positive_number(node.get("daily_budget")) or _positive_number(node.get("lifetime_budget"))


def _positive_number(value: Any) -> bool:
    try:
        return float(str(value)) > 0
    except ValueError:
        return False


def _opt(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


# --- the task ---------------------------------------------------------------------------------------------------
@dataclass
class MigrationRecord:
    """One campaign's migration: class, action, result and the verified Advantage+ state."""

    source_id: str
    name: str
    eligibility: str
    reason: str
    action: str | None = None
    manual_path: str | None = None
    warnings: list[str] = field(default_factory=list)
    new_id: str | None = None
    state: str = "not_run"  # migrated | failed | skipped | not_run | validated (dry run)
    smart_promotion_type: str | None = None
    advantage_state_info: dict[str, str] | None = None
    verified: bool | None = None
    error: dict[str, Any] | None = None
    fallback: str | None = None
    readiness: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class MigrateTask(TaskBase):
    """Migrate ASC/AAC campaigns to Advantage+ (see the module docstring)."""

    model_config = job_model_config("MigrateTask")

    type: Literal["migrate"]
    campaign_ids: list[str] | None = Field(None, description="Default: every campaign of the account")
    include_archived: bool = False
    mode: Literal["copy", "in_place"] = Field("copy", description="copy = copy and migrate (source kept)")
    app_campaigns: Literal["in_place", "skip"] = Field(
        "in_place", description="Advantage+ app campaigns can only be migrated in place"
    )
    deep_copy: bool = True
    status_option: Literal["ACTIVE", "PAUSED", "INHERITED_FROM_SOURCE"] = "INHERITED_FROM_SOURCE"
    rename_options: RenameOptions | None = None
    preflight_only: bool = False
    verify: bool = True
    readiness: Literal["off", "report", "apply"] = Field(
        "report", description="Advantage+ readiness of ordinary campaigns: report it, or apply the changes"
    )
    max_ads: int = Field(MAX_ADS_FOR_MIGRATION, ge=1)

    @property
    def needs_reads(self) -> bool:
        return True

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

    def estimate(self, env: TaskEnv) -> dict[str, int]:
        return {OpKind.MIGRATE.value: len(self.campaign_ids or [])}

    async def execute(self, engine: EngineLike, env: TaskEnv) -> TaskReport:
        report = TaskReport.for_env(env, "migrate")
        campaigns, adsets, ads = await self._preflight(engine, env, report)
        records: dict[str, MigrationRecord] = {}
        for campaign in campaigns:
            cid = str(campaign["id"])
            facts = CampaignFacts.from_reads(campaign, adsets.get(cid, []), ads.get(cid, 0))
            found = classify(facts, mode=self.mode, app_campaigns=self.app_campaigns, max_ads=self.max_ads)
            records[cid] = MigrationRecord(
                cid,
                facts.name,
                found.eligibility.value,
                found.reason,
                found.action,
                found.manual_path,
                list(found.warnings),
            )
            if self.readiness != "off" and found.eligibility is Eligibility.NOT_APPLICABLE:
                ready = readiness(campaign, adsets.get(cid, []))
                records[cid].readiness = _readiness_dict(ready)
        report.details["campaigns"] = records
        if env.ctx.validate_only and not self.preflight_only:
            await self._validate(engine, env, report, campaigns, adsets, records)
        if not (self.preflight_only or env.ctx.validate_only):
            await self._migrate(engine, env, report, records)
            if self.readiness == "apply":
                await self._apply_readiness(engine, env, report, campaigns, adsets, records)
            if self.verify:
                await self._verify(engine, env, report, records)
        report.details["campaigns"] = [r.to_dict() for r in records.values()]
        report.details["classes"] = _tally(r.eligibility for r in records.values())
        return report

    # --- phases -----------------------------------------------------------------------------------------------
    async def _preflight(
        self, engine: EngineLike, env: TaskEnv, report: TaskReport
    ) -> tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]]], dict[str, int]]:
        prefix = env.op_id("preflight")
        if self.campaign_ids is not None:
            nodes = await read_nodes(
                engine, self.campaign_ids, CAMPAIGN_FIELDS, env.account_id, report, op_prefix=prefix
            )
            campaigns = [n[0] for c in self.campaign_ids if (n := nodes.items.get(c))]
            report.details["unreadable"] = {c: o.reason for c, o in nodes.errors.items()}
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
            summary = children.summaries.get(f"{c}/ads", {})
            total = summary.get("total_count")
            ads[c] = (
                int(total)
                if isinstance(total, int | str) and str(total).isdigit()
                else len(children.items.get(f"{c}/ads", []))
            )
        return campaigns, adsets, ads

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
                if records[cid].readiness is not None and not ready.ready and not ready.manual:
                    plans[cid] = ready
                    ops.extend(_readiness_op(env, cid, change, dry) for change in ready.changes)
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
                _fail(record, outcome)
        for cid, ready in plans.items():
            failed = _readiness_errors(outcomes, env, cid, ready.changes)
            record_readiness = records[cid].readiness
            if record_readiness is not None:
                record_readiness["validated"] = not failed
                if failed:
                    record_readiness["errors"] = failed

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
            else:
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
                body = outcome.result if isinstance(outcome.result, dict) else {}
                record.new_id = (
                    str(body.get("copied_campaign_id") or cid) if record.action == "copy_and_migrate" else cid
                )
            elif record.action == "copy_and_migrate" and _is_sync_limit(outcome):
                too_large.append(cid)
                report.supersede(outcome.op_id, FALLBACK_NOTE.format(op=env.op_id("chunk", cid)))
            else:
                _fail(record, outcome)
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
            record = records[plan.source_id]
            record.fallback = "chunked copy (the tree exceeded the synchronous copy limit, 100/1885194), then migrated in place"
            if plan.new_id is None or plan.failed:
                record.state = "failed"
                record.new_id = plan.new_id
                record.error = {"reason": "chunked copy incomplete", "failed": plan.failed}
                continue
            record.new_id = plan.new_id
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
                _fail(records[plan.source_id], outcome)

    async def _verify(
        self, engine: EngineLike, env: TaskEnv, report: TaskReport, records: dict[str, MigrationRecord]
    ) -> None:
        targets = {r.new_id: r for r in records.values() if r.state == "migrated" and r.new_id}
        ready = {cid: r for cid, r in records.items() if r.readiness and r.readiness.get("applied")}
        ids = [*targets, *(c for c in ready if c not in targets)]
        if not ids:
            return
        nodes = await read_nodes(
            engine,
            ids,
            "id,name,smart_promotion_type,advantage_state_info",
            env.account_id,
            report,
            op_prefix=env.op_id("verify"),
        )
        for object_id in ids:
            found = nodes.items.get(object_id)
            node = found[0] if found else {}
            info = (
                node.get("advantage_state_info")
                if isinstance(node.get("advantage_state_info"), dict)
                else None
            )
            record = targets.get(object_id)
            if record is not None:
                record.smart_promotion_type = _opt(node.get("smart_promotion_type"))
                record.advantage_state_info = info
                record.verified = record.smart_promotion_type == GUIDED_CREATION and info is not None
                if info is not None and info.get("advantage_state") == "DISABLED":
                    off = [k for k in LEVERS if info.get(k) != "ENABLED"]
                    record.warnings.append(
                        "migrated, but advantage_state is DISABLED (levers off: " + ", ".join(off) + ")"
                    )
            if object_id in ready and record is None:
                readiness_record = ready[object_id].readiness or {}
                readiness_record["after"] = info
                readiness_record["smart_promotion_type_after"] = _opt(node.get("smart_promotion_type"))

    async def _apply_readiness(
        self,
        engine: EngineLike,
        env: TaskEnv,
        report: TaskReport,
        campaigns: list[dict[str, Any]],
        adsets: dict[str, list[dict[str, Any]]],
        records: dict[str, MigrationRecord],
    ) -> None:
        plans = {
            cid: plan
            for c in campaigns
            if records[cid := str(c["id"])].eligibility == Eligibility.NOT_APPLICABLE.value
            and not (plan := readiness(c, adsets.get(cid, []))).ready
            and not plan.manual
            and plan.changes
        }
        for phase in (1, 2):
            ops = [
                _readiness_op(env, cid, change)
                for cid, plan in plans.items()
                if not (records[cid].readiness or {}).get("errors")
                for change in plan.changes
                if change.phase == phase
            ]
            if not ops:
                continue
            outcomes = await report.run(engine, ops, env.ctx)
            for cid, plan in plans.items():
                failed = _readiness_errors(outcomes, env, cid, [c for c in plan.changes if c.phase == phase])
                record = records[cid].readiness
                if record is not None:
                    record.setdefault("errors", []).extend(failed)
                    record["applied"] = not record.get("errors")


def _op(op_id: str, path: str | tuple[str, ...], params: dict[str, Any], env: TaskEnv) -> Operation:
    return Operation(
        op_id=op_id, method="POST", path=path, params=params, account_id=env.account_id, kind=OpKind.MIGRATE
    )


def _readiness_op(
    env: TaskEnv, cid: str, change: ReadinessChange, extra: dict[str, Any] | None = None
) -> Operation:
    """One readiness update of campaign ``cid`` (``extra``: e.g. ``validate_only`` for a dry run)."""
    return Operation(
        op_id=_readiness_op_id(env, cid, change),
        method="POST",
        path=change.object_id,
        params={**change.params, **(extra or {})},
        account_id=env.account_id,
        kind=OpKind.UPDATE,
    )


def _readiness_op_id(env: TaskEnv, cid: str, change: ReadinessChange) -> str:
    return env.op_id("ready", cid, f"{change.object_id}.{change.phase}")


def _readiness_errors(
    outcomes: Mapping[str, Outcome], env: TaskEnv, cid: str, changes: Sequence[ReadinessChange]
) -> list[str | None]:
    """The reasons of the readiness updates of ``cid`` that were answered and did not succeed."""
    return [
        o.reason
        for change in changes
        if (o := outcomes.get(_readiness_op_id(env, cid, change))) is not None
        and o.state is not OutcomeState.SUCCEEDED
    ]


def _fail(record: MigrationRecord, outcome: Outcome) -> None:
    record.state = "failed" if outcome.state is OutcomeState.FAILED else "skipped"
    record.error = outcome.error.to_dict() if outcome.error is not None else {"reason": outcome.reason}


def _readiness_dict(ready: Readiness) -> dict[str, Any]:
    return {
        "levers": ready.levers,
        "ready": ready.ready,
        "changes": [asdict(c) for c in ready.changes],
        "manual": list(ready.manual),
        "applied": False,
    }


def _tally(values: Iterator[str] | Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for value in values:
        out[value] = out.get(value, 0) + 1
    return out
