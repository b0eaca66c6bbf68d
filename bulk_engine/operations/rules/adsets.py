"""Ad set create rules: required fields, targeting, budgets and schedules, bids, and the click-to-message
destinations (S003 §Ad Account Adsets; S000/S001/S002 Step 2)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from bulk_engine.protocol.catalog import (
    AUTOMATIC_STRATEGIES,
    BID_REQUIRED_STRATEGIES,
    DAY_S,
    GEO_KEYS,
    GUIDED_DESTINATIONS,
    INSTAGRAM_GOALS,
    MESSAGING_OBJECTIVES,
    MESSENGER_GOALS,
    MESSENGER_LEAD_GOALS,
    MESSENGER_OBJECTIVES,
    MULTI_DESTINATIONS,
    NAME_MAX,
    ROAS_FLOOR_RANGE,
    SINGLE_DESTINATIONS,
)
from bulk_engine.protocol.spec_fields import promoted_page as _promoted_page

from ..base import Issue
from .core import as_int, budget_floor, create_status, has_budget, is_positive, issue, read_time


def adset_rules(params: Mapping[str, Any], campaign: Mapping[str, Any]) -> Iterator[Issue]:
    """Rules of one ad set create, given its campaign's create params."""
    yield from create_status(params)
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
    own = has_budget(params)
    shared = has_budget(campaign)
    if own and shared:
        key = "daily_budget" if is_positive(params.get("daily_budget")) else "lifetime_budget"
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
    start, bad_start = read_time(params, "start_time")
    end, bad_end = read_time(params, "end_time")
    for bad in (bad_start, bad_end):
        if bad is not None:
            yield bad
    if is_positive(params.get("lifetime_budget")) and end is None and bad_end is None:
        yield issue(
            "adset.lifetime.end_time",
            ("end_time",),
            "end_time is required when lifetime_budget is specified",
            has_value=False,
        )
    if (
        is_positive(params.get("daily_budget"))
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
    yield from budget_floor(params, days)
    for key, needs in (
        ("daily_min_spend_target", "daily_budget"),
        ("daily_spend_cap", "daily_budget"),
        ("lifetime_min_spend_target", "lifetime_budget"),
        ("lifetime_spend_cap", "lifetime_budget"),
    ):
        if params.get(key) is not None and not is_positive(campaign.get(needs)):
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
    bid_amount = as_int(params.get("bid_amount"))
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
