"""Documented Graph rules checked locally, before any call (issue 5: "validation happens before any call").

Each check works on the Graph parameters an operation will send (so a matrix-expanded ad set is checked
exactly as it will go out) and yields :class:`~bulk_engine.operations.base.Issue` s whose ``path`` names the
parameter. Rule ids and codes mirror the simulator's table (``bulk_engine/simulator/validation/``), which
cites the seed section of each rule; when a rule mirrors a documented Graph error the issue carries its
code/subcode (e.g. ``1885621`` "You can only set an ad set budget or a campaign budget").

Only rules that can be decided from the job itself are here; rules that need server state (does the
campaign exist, is the Page connected to WhatsApp, is the account allowed to use this Instagram account)
are left to Graph and come back as ``failed`` outcomes with the full error.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping
from typing import Any, Final, NamedTuple

from bulk_engine.protocol.catalog import (  # noqa: F401 - re-exported for the operations modules
    ADVANTAGE_STATES,
    ASSET_FEED_LIMITS,
    ASSET_TEXT_LIMITS,
    AUTOMATIC_STRATEGIES,
    BID_REQUIRED_STRATEGIES,
    CTA_ALLOWED_APPS,
    CTA_APPS,
    DAY_S,
    GEO_KEYS,
    GUIDED_DESTINATIONS,
    ICEBREAKER_RESPONSE_MAX,
    ICEBREAKER_TITLE_MAX,
    INSTAGRAM_APP,
    INSTAGRAM_GOALS,
    MESSAGING_OBJECTIVES,
    MESSENGER_APP,
    MESSENGER_GOALS,
    MESSENGER_LEAD_GOALS,
    MESSENGER_OBJECTIVES,
    MIN_DAILY_BUDGET,
    MIN_SPEND_CAP,
    MULTI_DESTINATIONS,
    NAME_MAX,
    NO_SPEND_CAP,
    PLACEMENT_KEYS,
    ROAS_FLOOR_RANGE,
    SCHEDULE_OBJECTIVES,
    SINGLE_DESTINATIONS,
    STORY_DATA_KEYS,
    SUPPORTED_ADVANTAGE_STRATEGIES,
    TRAFFIC_OBJECTIVES,
    WELCOME_TEXT_MAX,
    WHATSAPP_APP,
)
from bulk_engine.protocol.spec_fields import BadTime, parse_time
from bulk_engine.protocol.spec_fields import creative_has_link as _creative_has_link
from bulk_engine.protocol.spec_fields import creative_page as _creative_page
from bulk_engine.protocol.spec_fields import cta_app as _cta_app
from bulk_engine.protocol.spec_fields import iter_ctas as _ctas
from bulk_engine.protocol.spec_fields import promoted_page as _promoted_page
from bulk_engine.protocol.spec_fields import welcome_messages as _welcome_messages

from .base import Issue
from .reading import parse_json_text

__all__ = [
    "ADVANTAGE_STATES",
    "PLACEMENT_KEYS",
    "RULES",
    "ad_rules",
    "adset_rules",
    "campaign_rules",
    "creative_rules",
    "parse_time",
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

# --- enums and limits: the shared catalog (the simulator answers with the same values) ------------------
Path = tuple[str | int, ...]


def issue(rule: str, path: Path, message: str, value: Any = None, *, has_value: bool = True) -> Issue:
    spec = RULES[rule]
    return Issue(path, message, value, rule, spec.code, spec.subcode, has_value=has_value)


# --- small readers ------------------------------------------------------------------------------------------
def _int(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(str(value).strip())
    except ValueError:
        return None


def _positive(value: Any) -> bool:
    number = _int(value)
    return number is not None and number > 0


def _has_budget(params: Mapping[str, Any]) -> bool:
    return _positive(params.get("daily_budget")) or _positive(params.get("lifetime_budget"))


_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


def _time(params: Mapping[str, Any], key: str) -> tuple[float | None, Issue | None]:
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


# --- campaigns ----------------------------------------------------------------------------------------------
def campaign_rules(params: Mapping[str, Any], *, advantage_plus: bool = False) -> Iterator[Issue]:
    """Rules of one campaign create (its Graph params)."""
    status = params.get("status")
    if status is not None and status not in ("ACTIVE", "PAUSED"):
        yield issue("create.status", ("status",), "a new object can only be ACTIVE or PAUSED", status)
    if params.get("special_ad_categories") is None:
        yield issue(
            "campaign.sac.required",
            ("special_ad_categories",),
            "special_ad_categories is required (use [] or [NONE] when no category applies)",
            has_value=False,
        )
    if "smart_promotion_type" in params:
        yield issue(
            "campaign.smart_promotion_type",
            ("smart_promotion_type",),
            "campaigns can no longer be created with smart_promotion_type (ASC/AAC creation is removed from "
            "v25.0; GUIDED_CREATION is read-only): set advantage_plus: true to get an Advantage+ campaign",
            params.get("smart_promotion_type"),
        )
    yield from _budget_floor(params)
    cap = _int(params.get("spend_cap"))
    if cap is not None and cap != NO_SPEND_CAP and cap < MIN_SPEND_CAP:
        yield issue(
            "campaign.spend_cap.min",
            ("spend_cap",),
            f"spend_cap must be at least {MIN_SPEND_CAP} (cents, $100 USD)",
            params.get("spend_cap"),
        )
    for key in ("start_time", "stop_time"):
        _, bad = _time(params, key)
        if bad is not None:
            yield bad
    if advantage_plus:
        objective = params.get("objective")
        if objective not in ADVANTAGE_STATES:
            yield issue(
                "advantage.objective",
                ("objective",),
                "an Advantage+ campaign needs objective OUTCOME_SALES, OUTCOME_APP_PROMOTION or OUTCOME_LEADS",
                objective,
            )
        if not _has_budget(params):
            yield issue(
                "advantage.budget",
                ("daily_budget",),
                "Advantage+ budget (advantage_budget_state) needs a campaign-level daily_budget or lifetime_budget",
                has_value=False,
            )
        strategy = params.get("bid_strategy")
        if strategy is not None and strategy not in SUPPORTED_ADVANTAGE_STRATEGIES:
            yield issue(
                "advantage.budget",
                ("bid_strategy",),
                "bid strategy not supported by Advantage+ budget",
                strategy,
            )


def _budget_floor(params: Mapping[str, Any], days: float | None = None) -> Iterator[Issue]:
    daily, lifetime = _int(params.get("daily_budget")), _int(params.get("lifetime_budget"))
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


# --- ad sets ------------------------------------------------------------------------------------------------
def adset_rules(params: Mapping[str, Any], campaign: Mapping[str, Any]) -> Iterator[Issue]:
    """Rules of one ad set create, given its campaign's create params."""
    status = params.get("status")
    if status is not None and status not in ("ACTIVE", "PAUSED"):
        yield issue("create.status", ("status",), "a new object can only be ACTIVE or PAUSED", status)
    name = params.get("name")
    if isinstance(name, str) and len(name) > NAME_MAX:
        yield issue("adset.name.length", ("name",), f"must be at most {NAME_MAX} characters", name)
    billing = params.get("billing_event")
    if billing is None:
        yield issue(
            "adset.billing_event.required", ("billing_event",), "billing_event is required", has_value=False
        )
    goal = params.get("optimization_goal")
    destination = params.get("destination_type")
    if billing == "APP_INSTALLS" and goal == "APP_INSTALLS":
        yield issue(
            "adset.app_install_billing",
            ("billing_event",),
            "the billing event cannot be APP_INSTALLS when the optimization goal is APP_INSTALLS",
            billing,
        )
    targeting = params.get("targeting")
    if targeting is None:
        yield issue("adset.targeting.required", ("targeting",), "targeting is required", has_value=False)
    elif not isinstance(targeting, Mapping):
        yield issue("adset.targeting.geo", ("targeting",), "must be a targeting spec object", targeting)
    else:
        geo = targeting.get("geo_locations")
        if not isinstance(geo, Mapping) or not any(geo.get(k) for k in GEO_KEYS):
            yield issue(
                "adset.targeting.geo",
                ("targeting", "geo_locations"),
                "targeting needs geo_locations with countries (or regions, cities, zips, places…)",
                geo,
            )
    # budgets (1885621 and friends)
    own = _has_budget(params)
    shared = _has_budget(campaign)
    if own and shared:
        key = "daily_budget" if _positive(params.get("daily_budget")) else "lifetime_budget"
        yield issue(
            "budget.campaign_vs_adset",
            (key,),
            "you can only set an ad set budget or a campaign budget: this ad set's campaign has a budget",
            params.get(key),
        )
    if not own and not shared:
        yield issue(
            "adset.budget.required",
            ("daily_budget",),
            "either daily_budget or lifetime_budget must be greater than 0 (or set a campaign budget)",
            has_value=False,
        )
    start, bad_start = _time(params, "start_time")
    end, bad_end = _time(params, "end_time")
    for bad in (bad_start, bad_end):
        if bad is not None:
            yield bad
    if _positive(params.get("lifetime_budget")) and end is None and bad_end is None:
        yield issue(
            "adset.lifetime.end_time",
            ("end_time",),
            "end_time is required when lifetime_budget is specified",
            has_value=False,
        )
    if (
        _positive(params.get("daily_budget"))
        and start is not None
        and end is not None
        and end - start <= DAY_S
    ):
        yield issue(
            "adset.daily.duration",
            ("daily_budget",),
            "daily_budget is allowed only for ad sets that run longer than 24 hours (end_time - start_time)",
            params.get("daily_budget"),
        )
    days = (end - start) / DAY_S if start is not None and end is not None else None
    yield from _budget_floor(params, days)
    for key, needs in (
        ("daily_min_spend_target", "daily_budget"),
        ("daily_spend_cap", "daily_budget"),
        ("lifetime_min_spend_target", "lifetime_budget"),
        ("lifetime_spend_cap", "lifetime_budget"),
    ):
        if params.get(key) is not None and not _positive(campaign.get(needs)):
            yield issue(
                "adset.spend_targets",
                (key,),
                f"{key} needs a campaign {needs.replace('_', ' ')}",
                params.get(key),
            )
    yield from _bid_rules(params, campaign)
    if params.get("frequency_control_specs") is not None and (goal or "LINK_CLICKS") not in (
        "REACH",
        "THRUPLAY",
    ):
        yield issue(
            "adset.frequency_control",
            ("frequency_control_specs",),
            "frequency_control_specs is only available when optimization_goal is REACH or THRUPLAY",
            params.get("frequency_control_specs"),
        )
    promoted = params.get("promoted_object")
    if goal == "LEAD_GENERATION" and not _promoted_page(promoted):
        yield issue(
            "adset.lead_page",
            ("promoted_object", "page_id"),
            "optimization_goal LEAD_GENERATION needs promoted_object.page_id",
            has_value=False,
        )
    if destination is not None:
        yield from _messaging_adset(params, campaign, str(destination), billing, goal, promoted)


def _bid_rules(params: Mapping[str, Any], campaign: Mapping[str, Any]) -> Iterator[Issue]:
    strategy = params.get("bid_strategy")
    bid_amount = _int(params.get("bid_amount"))
    effective = strategy or campaign.get("bid_strategy")
    if effective is None:
        effective = "LOWEST_COST_WITH_BID_CAP" if bid_amount is not None else "LOWEST_COST_WITHOUT_CAP"
    if effective in BID_REQUIRED_STRATEGIES and bid_amount is None:
        source = "" if strategy else " of the campaign"
        yield issue(
            "adset.bid_amount.required",
            ("bid_amount",),
            f"bid_amount is required when the bid_strategy{source} is {effective}",
            has_value=False,
        )
    if bid_amount is not None and effective in AUTOMATIC_STRATEGIES:
        yield issue(
            "adset.bid.automatic",
            ("bid_amount",),
            f"bid_amount cannot be set with the automatic bid strategy {effective}: remove it or use a cap strategy",
            params.get("bid_amount"),
        )
    if bid_amount is not None:
        billing = params.get("billing_event")
        floor = 2 if billing in ("IMPRESSIONS", "REACH") else 1
        if bid_amount < floor:
            yield issue(
                "adset.bid_amount.min",
                ("bid_amount",),
                f"bid_amount must be at least {floor} cents for billing_event {billing}",
                params.get("bid_amount"),
            )
    constraints = params.get("bid_constraints")
    floor_value = constraints.get("roas_average_floor") if isinstance(constraints, Mapping) else None
    if floor_value is not None:
        low, high = ROAS_FLOOR_RANGE
        if (
            not isinstance(floor_value, int | float)
            or isinstance(floor_value, bool)
            or not low <= floor_value <= high
        ):
            yield issue(
                "adset.roas_floor.range",
                ("bid_constraints", "roas_average_floor"),
                f"roas_average_floor must be within [{low}, {high}]",
                floor_value,
            )
    if effective == "LOWEST_COST_WITH_MIN_ROAS" and floor_value is None:
        yield issue(
            "adset.roas_floor.required",
            ("bid_constraints", "roas_average_floor"),
            "LOWEST_COST_WITH_MIN_ROAS needs bid_constraints.roas_average_floor",
            has_value=False,
        )


def _messaging_adset(
    params: Mapping[str, Any],
    campaign: Mapping[str, Any],
    destination: str,
    billing: Any,
    goal: Any,
    promoted: Any,
) -> Iterator[Issue]:
    """S000 / S001 / S002 ad set rules for click-to-message destinations."""
    apps = MULTI_DESTINATIONS.get(destination) or SINGLE_DESTINATIONS.get(destination)
    if apps is None:
        return
    objective = str(campaign.get("objective"))
    if destination in GUIDED_DESTINATIONS:
        allowed = MESSENGER_OBJECTIVES if destination == "MESSENGER" else MESSAGING_OBJECTIVES
        if objective not in allowed:
            yield issue(
                "msg.objective",
                ("destination_type",),
                f"destination_type {destination} needs a campaign objective in {sorted(allowed)} - the campaign's "
                f"is {objective}",
                destination,
            )
        if billing is not None and billing != "IMPRESSIONS":
            yield issue(
                "msg.billing_event", ("billing_event",), f"must be IMPRESSIONS for {destination} ads", billing
            )
        goals = _messaging_goals(destination, objective)
        if goal is None:
            yield issue(
                "msg.optimization_goal",
                ("optimization_goal",),
                f"optimization_goal is required for {destination} ads (one of {sorted(goals)})",
                has_value=False,
            )
        elif goals and goal not in goals:
            yield issue(
                "msg.optimization_goal",
                ("optimization_goal",),
                f"must be one of {sorted(goals)} for {destination} ads with objective {objective}",
                goal,
            )
        if destination in MULTI_DESTINATIONS:
            categories = campaign.get("special_ad_categories") or []
            if any(c != "NONE" for c in categories):
                yield issue(
                    "msg.special_ad_categories",
                    ("destination_type",),
                    "ads that click to multidestination don't support special ad categories: the campaign's "
                    "special_ad_categories must be NONE or []",
                    categories,
                )
    if _promoted_page(promoted) is None:
        yield issue(
            "msg.promoted_page",
            ("promoted_object", "page_id"),
            f"promoted_object.page_id is required for {destination} ads",
            has_value=False,
        )


def _messaging_goals(destination: str, objective: str) -> frozenset[str]:
    if destination in MULTI_DESTINATIONS:
        return frozenset({"CONVERSATIONS"})
    if destination == "INSTAGRAM_DIRECT":
        return INSTAGRAM_GOALS.get(objective, frozenset())
    if destination == "MESSENGER":
        return MESSENGER_LEAD_GOALS if objective == "OUTCOME_LEADS" else MESSENGER_GOALS
    return frozenset()


# --- creatives ----------------------------------------------------------------------------------------------
def creative_rules(params: Mapping[str, Any]) -> Iterator[Issue]:
    """Rules of one creative (its Graph params)."""
    if not any(
        params.get(k) is not None
        for k in ("object_story_spec", "object_story_id", "asset_feed_spec", "object_id")
    ):
        yield issue(
            "creative.spec.required",
            ("object_story_spec",),
            "a creative needs object_story_spec, object_story_id, object_id or asset_feed_spec",
            has_value=False,
        )
    spec = params.get("object_story_spec")
    if spec is not None:
        if not isinstance(spec, Mapping):
            yield issue("creative.story_spec", ("object_story_spec",), "must be an object", spec)
        else:
            if spec.get("page_id") in (None, ""):
                yield issue(
                    "creative.story_spec",
                    ("object_story_spec", "page_id"),
                    "object_story_spec requires page_id",
                    has_value=False,
                )
            if params.get("asset_feed_spec") is None and not any(
                isinstance(spec.get(k), Mapping) for k in STORY_DATA_KEYS
            ):
                yield issue(
                    "creative.story_spec",
                    ("object_story_spec",),
                    "object_story_spec must specify link_data, photo_data, video_data, text_data or template_data",
                    has_value=False,
                )
    story = params.get("object_story_id")
    if story is not None and not re.fullmatch(r"\d+_\d+", str(story)):
        yield issue("creative.story_id", ("object_story_id",), "must look like <PAGE_ID>_<POST_ID>", story)
    yield from _instagram_ids(params)
    for path, cta in _ctas(params):
        kind = str(cta.get("type"))
        value = cta.get("value")
        app = value.get("app_destination") if isinstance(value, Mapping) else None
        if app is not None and not isinstance(app, str):
            yield issue(
                "creative.cta_destination",
                (*path, "value", "app_destination"),
                "app_destination must be text: one app such as MESSENGER, WHATSAPP or INSTAGRAM_DIRECT",
                app,
            )
        elif app and kind in CTA_ALLOWED_APPS and app not in CTA_ALLOWED_APPS[kind]:
            yield issue(
                "creative.cta_destination",
                (*path, "value", "app_destination"),
                f"call_to_action type {kind} can't open app_destination {app}",
                app,
            )
    feed = params.get("asset_feed_spec")
    if feed is not None:
        yield from _asset_feed(feed)
    for path, value in _welcome_messages(params):
        yield from _welcome_message(value, path)


def _instagram_ids(params: Mapping[str, Any]) -> Iterator[Issue]:
    raw_spec = params.get("object_story_spec")
    spec: Mapping[str, Any] = raw_spec if isinstance(raw_spec, Mapping) else {}
    places: tuple[tuple[Path, Mapping[str, Any]], ...] = (((), params), (("object_story_spec",), spec))
    for where, holder in places:
        for one, other in (
            ("instagram_user_id", "instagram_actor_id"),
            ("instagram_story_id", "source_instagram_media_id"),
        ):
            if holder.get(one) not in (None, "") and holder.get(other) not in (None, ""):
                yield issue(
                    "creative.instagram_ids",
                    (*where, other),
                    f"you can not pass both {one} and {other}",
                    holder.get(other),
                )


def _asset_feed(feed: Any) -> Iterator[Issue]:
    if not isinstance(feed, Mapping):
        yield issue("creative.asset_feed.limits", ("asset_feed_spec",), "must be an object", feed)
        return
    if feed.get("optimization_type") == "DOF_MESSAGING_DESTINATION":
        ctas = feed.get("call_to_actions")
        if not isinstance(ctas, list) or not ctas:
            yield issue(
                "creative.dof_destinations",
                ("asset_feed_spec", "call_to_actions"),
                "call_to_actions is required when optimization_type is DOF_MESSAGING_DESTINATION",
                ctas,
            )
        else:
            for i, cta in enumerate(ctas):
                kind = str(cta.get("type")) if isinstance(cta, Mapping) else ""
                app = _cta_app(cta) if isinstance(cta, Mapping) else None
                if kind not in CTA_APPS or app != CTA_APPS[kind]:
                    yield issue(
                        "creative.dof_destinations",
                        ("asset_feed_spec", "call_to_actions", i),
                        "each item must be MESSAGE_PAGE/MESSENGER, WHATSAPP_MESSAGE/WHATSAPP or "
                        "INSTAGRAM_MESSAGE/INSTAGRAM_DIRECT",
                        cta,
                    )
    for key, limit in ASSET_FEED_LIMITS.items():
        items = feed.get(key)
        if isinstance(items, list) and len(items) > limit:
            yield issue(
                "creative.asset_feed.limits", ("asset_feed_spec", key), f"at most {limit} {key}", len(items)
            )
    formats = feed.get("ad_formats")
    if isinstance(formats, list) and len(formats) > 1:
        yield issue(
            "creative.asset_feed.limits", ("asset_feed_spec", "ad_formats"), "only one ad_format", formats
        )
    for key, limit in ASSET_TEXT_LIMITS.items():
        texts = feed.get(key)
        for i, item in enumerate(texts if isinstance(texts, list) else ()):
            text = item.get("text") if isinstance(item, Mapping) else None
            if isinstance(text, str) and len(text) > limit:
                yield issue(
                    "creative.asset_feed.limits",
                    ("asset_feed_spec", key, i, "text"),
                    f"at most {limit} characters",
                    text,
                )
    for key in ("images", "videos", "bodies", "titles", "descriptions", "link_urls"):
        items = feed.get(key)
        if not isinstance(items, list):
            continue
        seen: set[str] = set()
        for i, item in enumerate(items):
            marker = json.dumps(item, sort_keys=True, default=str)
            if marker in seen:
                yield issue(
                    "creative.asset_feed.unique",
                    ("asset_feed_spec", key, i),
                    "all ad asset values should be unique",
                    item,
                )
            seen.add(marker)


def _welcome_message(value: Any, path: Path) -> Iterator[Issue]:
    """Ice-breaker title ≤ 80, response ≤ 300, message text ≤ 300 (S000 Limitations); JSON strings too (S001)."""
    if isinstance(value, str):
        text = value.strip()
        if text[:1] in ("{", "["):
            try:
                value = parse_json_text(text)
            except ValueError:
                return
        else:
            if len(value) > WELCOME_TEXT_MAX:
                yield issue(
                    "creative.welcome.text",
                    path,
                    f"message text must be at most {WELCOME_TEXT_MAX} characters",
                    value,
                )
            return
    for node_path, node in _walk(value, path):
        message = node.get("message")
        if isinstance(message, Mapping) and isinstance(message.get("text"), str):
            if len(message["text"]) > WELCOME_TEXT_MAX:
                yield issue(
                    "creative.welcome.text",
                    (*node_path, "message", "text"),
                    f"message text must be at most {WELCOME_TEXT_MAX} characters",
                    message["text"],
                )
        breakers = node.get("ice_breakers")
        for i, breaker in enumerate(breakers if isinstance(breakers, list) else ()):
            if not isinstance(breaker, Mapping):
                continue
            where = (*node_path, "ice_breakers", i)
            title = str(breaker.get("title") or "")
            if len(title) > ICEBREAKER_TITLE_MAX:
                yield issue(
                    "creative.icebreaker.title",
                    (*where, "title"),
                    f"ice-breaker titles must be at most {ICEBREAKER_TITLE_MAX} characters",
                    title,
                )
            response = str(breaker.get("response") or "")
            if len(response) > ICEBREAKER_RESPONSE_MAX:
                yield issue(
                    "creative.icebreaker.response",
                    (*where, "response"),
                    f"ice-breaker responses must be at most {ICEBREAKER_RESPONSE_MAX} characters",
                    response,
                )


def _walk(value: Any, path: Path) -> Iterator[tuple[Path, Mapping[str, Any]]]:
    if isinstance(value, Mapping):
        yield path, value
        for key, child in value.items():
            yield from _walk(child, (*path, str(key)))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            yield from _walk(child, (*path, i))


# --- ads ----------------------------------------------------------------------------------------------------
def ad_rules(
    params: Mapping[str, Any],
    adset: Mapping[str, Any] | None,
    campaign: Mapping[str, Any] | None,
    creative: Mapping[str, Any] | None,
    *,
    creative_path: Path = ("creative",),
) -> Iterator[Issue]:
    """Rules of one ad, and of its creative meeting its ad set (``creative`` is ``None`` for an existing id)."""
    status = params.get("status")
    if status is not None and status not in ("ACTIVE", "PAUSED"):
        yield issue("create.status", ("status",), "a new object can only be ACTIVE or PAUSED", status)
    if "bid_amount" in params:
        yield issue(
            "ad.bid_amount", ("bid_amount",), "set bid_amount on the ad set, not the ad", params["bid_amount"]
        )
    objective = campaign.get("objective") if campaign is not None else None
    for key in ("ad_schedule_start_time", "ad_schedule_end_time"):
        if key in params and objective is not None and objective not in SCHEDULE_OBJECTIVES:
            yield issue(
                "ad.schedule",
                (key,),
                "ad scheduling is only available for sales and app campaigns",
                params[key],
            )
    if adset is None or creative is None:
        return
    destination = adset.get("destination_type")
    if destination in MULTI_DESTINATIONS:
        feed = creative.get("asset_feed_spec")
        ctas = feed.get("call_to_actions") if isinstance(feed, Mapping) else None
        apps = {_cta_app(c) for c in ctas if isinstance(c, Mapping)} if isinstance(ctas, list) else set()
        if (
            not isinstance(feed, Mapping)
            or feed.get("optimization_type") != "DOF_MESSAGING_DESTINATION"
            or apps != MULTI_DESTINATIONS[str(destination)]
        ):
            yield issue(
                "msg.creative_destination",
                (*creative_path, "asset_feed_spec", "call_to_actions"),
                f"the creative's asset_feed_spec (optimization_type DOF_MESSAGING_DESTINATION) call_to_actions must "
                f"open exactly {sorted(MULTI_DESTINATIONS[str(destination)])} to match destination_type {destination}",
                sorted(str(a) for a in apps),
            )
    elif destination in ("MESSENGER", "INSTAGRAM_DIRECT"):
        single = {app for _, cta in _ctas(creative) if (app := _cta_app(cta))}
        if single != SINGLE_DESTINATIONS[str(destination)]:
            yield issue(
                "msg.creative_destination",
                (*creative_path, "call_to_action"),
                f"the creative's call_to_action app_destination must be {destination} to match the ad set's "
                "destination_type",
                sorted(single),
            )
    promoted = _promoted_page(adset.get("promoted_object"))
    page = _creative_page(creative)
    if promoted and page and promoted != page:
        yield issue(
            "ad.page_mismatch",
            (*creative_path, "object_story_spec", "page_id"),
            f"the creative's Page must be the ad set's promoted Page {promoted}",
            page,
        )
    if destination == "WEBSITE" and objective in TRAFFIC_OBJECTIVES and not _creative_has_link(creative):
        yield issue(
            "ad.website_url",
            (*creative_path, "object_story_spec", "link_data", "link"),
            "a traffic campaign with destination WEBSITE needs a website URL in the creative",
            has_value=False,
        )
