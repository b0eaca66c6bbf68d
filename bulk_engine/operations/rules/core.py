"""The shared core of the local rule book: the rule table, :func:`issue`, and the small readers and checks
every object type uses (budgets, times, create status)."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any, Final, NamedTuple

from bulk_engine.protocol.catalog import MIN_DAILY_BUDGET
from bulk_engine.protocol.spec_fields import BadTime, parse_time

from ..base import Issue

__all__ = [
    "RULES",
    "Path",
    "Rule",
    "as_int",
    "budget_floor",
    "create_status",
    "has_budget",
    "is_positive",
    "issue",
    "read_time",
]


class Rule(NamedTuple):
    code: int | None
    subcode: int | None
    section: str


def _r(subcode: int | None, section: str, code: int | None = 100) -> Rule:
    return Rule(code, subcode, section)


RULES: Final[dict[str, Rule]] = {
    "create.status": _r(None, "S003 §Ad Account, Ad Campaigns (only ACTIVE and PAUSED during creation)"),
    "campaign.sac.required": _r(None, "S003 §Ad Account, Ad Campaigns (special_ad_categories Required)"),
    "campaign.spend_cap.min": _r(2446307, "S003 §Ad Account, Ad Campaigns (spend_cap ≥ $100)"),
    "campaign.smart_promotion_type": _r(None, "S003 §Advantage+ Campaign Experience (v25.0 removal)"),
    "budget.too_low": _r(1885272, "S003 §Handling Errors (budget at least $1.00 per day)"),
    "budget.campaign_vs_adset": _r(1885621, "S003 §Handling Errors (1885621)"),
    "advantage.objective": _r(None, "S003 §Advantage+ Campaign Experience (objectives)", None),
    "advantage.budget": _r(None, "S003 §Advantage+ Campaign Experience (advantage_budget_state)", None),
    "advantage.placement": _r(None, "S003 §Advantage+ Campaign Experience (advantage_placement_state)", None),
    "adset.name.length": _r(None, "S003 §Ad Account Adsets (name ≤ 400)"),
    "adset.billing_event.required": _r(None, "S000/S002 Step 2 (billing_event Required)"),
    "adset.app_install_billing": _r(None, "S003 §Ad Account Adsets → Creating"),
    "adset.targeting.required": _r(None, "S003 §Create an Ad Set (targeting)"),
    "adset.targeting.geo": _r(None, "S003 §Ad Account Adsets ('countries' is required)"),
    "adset.budget.required": _r(None, "S003 §Ad Account Adsets (daily_budget or lifetime_budget > 0)"),
    "adset.lifetime.end_time": _r(None, "S003 §Ad Account Adsets (lifetime_budget requires end_time)"),
    "adset.daily.duration": _r(None, "S003 §Ad Account Adsets (daily_budget only for > 24 h)"),
    "time.invalid": _r(None, "S003 §Ad Account Adsets (datetime formats)"),
    "adset.bid_amount.required": _r(None, "S003 §Ad Account Adsets (bid_amount for BID_CAP / COST_CAP)"),
    "adset.bid.automatic": _r(1885204, "S003 §Handling Errors (1885204)"),
    "adset.bid_amount.min": _r(None, "S003 §Ad Account Adsets (bid_amount minimum)"),
    "adset.roas_floor.range": _r(None, "S003 §Advantage+ Shopping Campaigns Step 4"),
    "adset.roas_floor.required": _r(None, "S003 §Advantage+ Shopping Campaigns Step 4"),
    "adset.lead_page": _r(None, "S003 §Ad Account Adsets (promoted_object for LEAD_GENERATION)"),
    "adset.spend_targets": _r(None, "S003 §Ad Account Adsets (spend targets need a campaign budget)"),
    "adset.frequency_control": _r(None, "S003 §Ad Account Adsets (frequency_control_specs)"),
    "msg.objective": _r(2446509, "S000/S002 Step 1; S001; S003 §Handling Errors (2446509)"),
    "msg.billing_event": _r(None, "S000/S002 Step 2; S001 (billing_event IMPRESSIONS)"),
    "msg.optimization_goal": _r(None, "S000 Step 2; S002 Step 2; S001 (optimization_goal)"),
    "msg.promoted_page": _r(None, "S000/S002 Step 2; S001 (promoted_object.page_id Required)"),
    "msg.special_ad_categories": _r(None, "S000 Step 1 (NONE or empty array)"),
    "creative.spec.required": _r(None, "S003 §Create an Ad Creative"),
    "creative.story_spec": _r(None, "S003 §Ad Account Ad Creatives (object_story_spec)"),
    "creative.story_id": _r(None, "S003 §Ad Account Ad Creatives (object_story_id)"),
    "creative.dof_destinations": _r(None, "S000 Step 3 (asset_feed_spec call_to_actions)"),
    "creative.cta_destination": _r(None, "S000 Step 3; S002 (call_to_action app_destination)"),
    "creative.icebreaker.title": _r(None, "S000 Step 3 → Limitations (≤ 80 characters)"),
    "creative.icebreaker.response": _r(None, "S000 Step 3 → Limitations (≤ 300 characters)"),
    "creative.welcome.text": _r(None, "S000 Step 3 → Limitations (≤ 300 characters)"),
    "creative.instagram_ids": _r(2238055, "S003 §Handling Errors (2238055 / 2446149)"),
    "creative.asset_feed.unique": _r(1815629, "S003 §Troubleshooting → Error Codes (1815629)"),
    "creative.asset_feed.limits": _r(None, "S003 §Asset Feed Spec → Restrictions"),
    "ad.creative.required": _r(None, "S003 §Ad Account Ads (creative Required)"),
    "ad.schedule": _r(None, "S003 §Ad Account Ads (ad_schedule_* for sales / app promotion)"),
    "ad.bid_amount": _r(None, "S003 §Ad Account Ads (bid_amount no longer allowed)"),
    "msg.creative_destination": _r(
        None, "S000 Step 3 ('needs to match with the destination_type'); S001; S002"
    ),
    "ad.page_mismatch": _r(1885029, "S003 §Handling Errors (1885029)"),
    "ad.website_url": _r(2446383, "S003 §Handling Errors (2446383)"),
    "status.transition": _r(None, "S003 §Manage Your Ad Object's Status (transition table)"),
    "message.interval": _r(2018278, "S004 (at least 12 hours between messages)", 10),
    # updates of existing objects (operations/update_fields.py)
    "update.field": _r(
        None, "S003 §Ad Campaign Management → Modify an Ad Campaign; §Advantage+ Shopping → Updating"
    ),
    "update.creative": _r(None, "S003 §Asynchronous and Batch Requests (Ad Creatives cannot be edited)"),
    "update.relative": _r(None, "docs/job-files.md §update (relative values need a current amount)", None),
    "update.archived": _r(1885088, "S003 §Manage Your Ad Object's Status → Archived; §Error Codes (1885088)"),
    "update.deleted.campaign": _r(1487566, "S003 §Manage Your Ad Object's Status → Deleted; §Error Codes"),
    "update.deleted.adset": _r(1487056, "S003 §Manage Your Ad Object's Status → Deleted; §Error Codes"),
    "update.deleted.ad": _r(1885088, "S003 §Manage Your Ad Object's Status → Deleted; §Error Codes"),
    "budget.too_low.update": _r(1885650, "S003 §Error Codes (1885650: minimum budget on update)"),
}

Path = tuple[str | int, ...]
"""Where an issue is, in the Graph parameters: keys and list indexes."""


def issue(rule: str, path: Path, message: str, value: Any = None, *, has_value: bool = True) -> Issue:
    spec = RULES[rule]
    return Issue(path, message, value, rule, spec.code, spec.subcode, has_value=has_value)


# --- small readers ------------------------------------------------------------------------------------------
def as_int(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(str(value).strip())
    except ValueError:
        return None


def is_positive(value: Any) -> bool:
    number = as_int(value)
    return number is not None and number > 0


def has_budget(params: Mapping[str, Any]) -> bool:
    return is_positive(params.get("daily_budget")) or is_positive(params.get("lifetime_budget"))


def read_time(params: Mapping[str, Any], key: str) -> tuple[float | None, Issue | None]:
    try:
        moment = parse_time(params.get(key))
        if moment is not None and not math.isfinite(moment):
            raise BadTime(str(params.get(key)))
        return moment, None
    except BadTime:
        return None, issue(
            "time.invalid",
            (key,),
            "must be a datetime like 2015-03-12 23:59:59-07:00, an ISO 8601 time or a UNIX time",
            params.get(key),
        )


# --- checks more than one object type makes -----------------------------------------------------------------
def create_status(params: Mapping[str, Any]) -> Iterator[Issue]:
    """A new campaign, ad set or ad may only start ACTIVE or PAUSED."""
    status = params.get("status")
    if status is not None and status not in ("ACTIVE", "PAUSED"):
        yield issue("create.status", ("status",), "a new object can only be ACTIVE or PAUSED", status)


def budget_floor(params: Mapping[str, Any], days: float | None = None) -> Iterator[Issue]:
    daily, lifetime = as_int(params.get("daily_budget")), as_int(params.get("lifetime_budget"))
    if daily is not None and 0 < daily < MIN_DAILY_BUDGET:
        yield issue(
            "budget.too_low",
            ("daily_budget",),
            f"budget too low: it must be at least {MIN_DAILY_BUDGET} (cents) per day",
            params.get("daily_budget"),
        )
    if lifetime is not None and lifetime > 0:
        needed = MIN_DAILY_BUDGET * max(1, math.ceil(days or 1))
        if lifetime < needed:
            yield issue(
                "budget.too_low",
                ("lifetime_budget",),
                f"lifetime budget too low: it must be at least {needed} (cents) for this schedule",
                params.get("lifetime_budget"),
            )
    for key, amount in (("daily_budget", daily), ("lifetime_budget", lifetime)):
        if amount is not None and amount < 0:
            yield issue(
                "budget.too_low", (key,), "budgets are non-negative amounts in cents", params.get(key)
            )
