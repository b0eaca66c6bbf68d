"""Pure rules of the Advantage+ migration: which campaigns can migrate, how, and the readiness levers.

No I/O: the flow (:mod:`.migrate`) reads Graph and feeds these functions; tests table-test them.

Seed 003 §Migrate Advantage+ Shopping Campaigns and Advantage+ App Campaigns into Advantage+ Campaigns,
"Limitations": (1) "Advantage+ app campaigns can only be migrated, not copied"; (2) ASC "using
existing_customer_budget_percentage cannot be migrated … using the Marketing API"; (3) ASC "with more than 150
ads cannot be migrated … using the Marketing API". The FAQ asks, without an answer, about special ad
categories: such campaigns are attempted and flagged with a warning. :func:`classify` turns those into one
:class:`Classification` per campaign; :func:`plan_action` / :func:`forbidden_action` are the same rules seen
from a reviewed plan file (``copy | in_place | skip | manual`` per campaign).

**Readiness** (S003 §Advantage+ Campaign Experience) for ordinary campaigns and for migrated campaigns whose
``advantage_state`` reads DISABLED: :func:`readiness` says which lever is DISABLED and the change that would
enable it — budget: a campaign budget with a supported bid strategy (one campaign update with the sum of the
ad sets' daily budgets, which the campaign budget replaces: S003 §Ad Account, Ad Campaigns "either … at the
campaign level or at the adset level, not both"); audience: ``targeting_automation.advantage_audience = 1``;
placement: remove placement targeting/exclusions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from bulk_engine.persistence.keys import strip_key
from bulk_engine.protocol.catalog import ADVANTAGE_STATES, PLACEMENT_KEYS, SUPPORTED_ADVANTAGE_STRATEGIES

__all__ = [
    "AAC",
    "ASC",
    "GUIDED_CREATION",
    "LEVERS",
    "MAX_ADS_FOR_MIGRATION",
    "PLAN_ACTIONS",
    "CampaignFacts",
    "Classification",
    "Eligibility",
    "PlanAction",
    "Readiness",
    "ReadinessChange",
    "campaign_kind",
    "classify",
    "forbidden_action",
    "plan_action",
    "readiness",
]

ASC = "AUTOMATED_SHOPPING_ADS"
AAC = "SMART_APP_PROMOTION"
GUIDED_CREATION = "GUIDED_CREATION"
MAX_ADS_FOR_MIGRATION = 150
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
    budget: str = ""  # "daily 5000 (campaign)" / "daily 5000 (ad sets)": a plan file's spend-relevant fact

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
            budget=_budget_text(campaign, adsets),
        )


def _budget_text(campaign: Mapping[str, Any], adsets: Sequence[Mapping[str, Any]]) -> str:
    """Where the money is set: the campaign budget, else the live ad sets' budgets summed (minor units)."""
    for key in ("daily_budget", "lifetime_budget"):
        if _positive_number(campaign.get(key)):
            return f"{key.split('_')[0]} {campaign.get(key)} (campaign)"
    live = [a for a in adsets if str(a.get("status", "ACTIVE")) in ("ACTIVE", "PAUSED")]
    parts = []
    for key in ("daily_budget", "lifetime_budget"):
        values = [int(float(str(a.get(key)))) for a in live if _positive_number(a.get(key))]
        if values:
            parts.append(
                f"{key.split('_')[0]} {sum(values)} ({len(values)} ad set{'s' if len(values) > 1 else ''})"
            )
    return "; ".join(parts)


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


# --- plan files -------------------------------------------------------------------------------------------------
PlanAction = Literal["copy", "in_place", "skip", "manual"]
PLAN_ACTIONS: tuple[PlanAction, ...] = ("copy", "in_place", "skip", "manual")
TASK_ACTION: dict[str, Literal["copy_and_migrate", "migrate_in_place"]] = {
    "copy": "copy_and_migrate",
    "in_place": "migrate_in_place",
}


def campaign_kind(smart_promotion_type: str | None) -> str:
    """``ASC`` / ``AAC`` / ``ordinary`` (``Advantage+`` once migrated) — the plan file's ``kind`` column."""
    return {ASC: "ASC", AAC: "AAC", GUIDED_CREATION: "Advantage+"}.get(smart_promotion_type or "", "ordinary")


def plan_action(found: Classification) -> PlanAction:
    """The action a plan file proposes for a classified campaign: the preflight's, ``manual`` when blocked."""
    if found.action == "copy_and_migrate":
        return "copy"
    if found.action == "migrate_in_place":
        return "in_place"
    return "manual" if found.eligibility is Eligibility.BLOCKED else "skip"


def forbidden_action(action: str, kind: str, eligibility: str, status: str | None = None) -> str | None:
    """Why a (possibly edited) plan row's ``action`` must not run for a campaign of this kind / eligibility
    (``None``: allowed). The documented limitations, seen from the plan: an AAC is never copied, a blocked
    campaign only has its manual path, only ASC/AAC migrate, archived campaigns are not edited in place."""
    if action not in PLAN_ACTIONS:
        return f"unknown action {action!r}: one of {', '.join(PLAN_ACTIONS)}"
    if action in ("skip", "manual"):
        return None
    if eligibility == Eligibility.BLOCKED.value:
        return f"the preflight blocked this campaign (S003 §Migrate … → Limitations): only skip or manual, not {action}"
    if eligibility == Eligibility.ALREADY_MIGRATED.value:
        return "already an Advantage+ campaign: nothing to migrate (skip)"
    if kind not in ("ASC", "AAC") or eligibility == Eligibility.NOT_APPLICABLE.value:
        return f"only ASC and AAC campaigns migrate (this one is {kind}): skip"
    if kind == "AAC" and action == "copy":
        return '"Advantage+ app campaigns can only be migrated, not copied" (S003 §Limitations): use in_place'
    if action == "in_place" and status in ("ARCHIVED", "DELETED"):
        return f"the campaign is {status}: it cannot be migrated in place ({MANUAL_ARCHIVED})"
    return None
