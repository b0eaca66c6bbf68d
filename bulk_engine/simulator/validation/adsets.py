"""Ad set creates: budgets, bids, targeting, Advantage+ shopping and messaging destinations (S003 §Ad Account
Adsets; seeds 000–002 Step 2)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bulk_engine.protocol.catalog import (
    AUTOMATIC_STRATEGIES,
    BID_REQUIRED_STRATEGIES,
    DAY_S,
    GEO_KEYS,
    GUIDED_DESTINATIONS,
    INSTAGRAM_APP,
    INSTAGRAM_GOALS,
    MESSAGING_OBJECTIVES,
    MESSENGER_GOALS,
    MESSENGER_LEAD_GOALS,
    MESSENGER_OBJECTIVES,
    MULTI_DESTINATIONS,
    NAME_MAX,
    ROAS_FLOOR_RANGE,
    SINGLE_DESTINATIONS,
    WHATSAPP_APP,
)
from bulk_engine.protocol.spec_fields import promoted_page as _promoted_page

from ..params import Params
from ..store import ADSET, CAMPAIGN, PAGE, Node
from .campaigns import has_budget
from .core import (
    ASC,
    BID_STRATEGIES,
    BILLING_EVENTS,
    DESTINATION_TYPES,
    OPTIMIZATION_GOALS,
    _amount,
    _check_budget_floor,
    _future,
    _int,
    copy_params,
    create_status,
    enum,
    fail,
    parse_time,
)

if TYPE_CHECKING:
    from ..context import CallContext


# --- ad sets --------------------------------------------------------------------------------------
def validate_adset(ctx: CallContext, account: Node) -> tuple[dict[str, Any], Node]:
    params = ctx.params
    data = copy_params(
        ctx,
        ("source_adset_id", "dsa_beneficiary", "dsa_payor", "is_dynamic_creative"),
        (
            "targeting",
            "promoted_object",
            "adlabels",
            "bid_constraints",
            "frequency_control_specs",
            "attribution_spec",
        ),
    )
    name = params.str("name")
    if name is None:
        raise fail("adset.name.required", "The parameter name is required", "name")
    if len(name) > NAME_MAX:
        raise fail("adset.name.length", f"Param name must be at most {NAME_MAX} characters", "name")
    data["name"] = name
    campaign_id = params.str("campaign_id")
    if campaign_id is None:
        raise fail("adset.campaign.required", "The parameter campaign_id is required", "campaign_id")
    campaign = ctx.store.get(campaign_id)
    if campaign is None or campaign.type != CAMPAIGN or campaign.account_id != account.id:
        raise fail("adset.campaign.unknown", f"Invalid campaign_id {campaign_id}", "campaign_id")
    if campaign.status in ("ARCHIVED", "DELETED"):
        raise fail(
            "adset.campaign.not_live",
            f"Campaign {campaign.id} is {campaign.status.lower()}: ad sets can't be added to it",
            "campaign_id",
        )
    data["campaign_id"] = campaign.id
    data["status"] = create_status(ctx)
    billing = enum(
        ctx,
        "billing_event",
        BILLING_EVENTS,
        "adset.billing_event.enum",
        required_rule="adset.billing_event.required",
    )
    data["billing_event"] = billing
    goal = enum(ctx, "optimization_goal", OPTIMIZATION_GOALS, "adset.optimization_goal.enum")
    destination = enum(ctx, "destination_type", DESTINATION_TYPES, "adset.destination_type.enum")
    if destination is not None:
        data["destination_type"] = destination
    if goal is None and destination in GUIDED_DESTINATIONS:
        raise fail(
            "msg.optimization_goal", "The parameter optimization_goal is required", "optimization_goal"
        )
    data["optimization_goal"] = goal = goal or "LINK_CLICKS"
    if billing == "APP_INSTALLS" and goal == "APP_INSTALLS":
        raise fail(
            "adset.app_install_billing",
            "Mobile App Install CPA Billing will no longer be supported. The billing event cannot be App Install "
            "if the Optimization goal is App Install.",
            "billing_event",
        )
    # Times: start defaults to now; end_time=0 or empty means ongoing (S003 §Ad Account Adsets).
    start_raw = params.get("start_time") if params.has("start_time") else params.get("time_start")
    end_raw = params.get("end_time") if params.has("end_time") else params.get("time_stop")
    start = parse_time(start_raw, "start_time")
    end = _future(ctx, end_raw, "end_time")
    if start_raw not in (None, ""):
        data["start_time"] = str(start_raw)
    if end_raw not in (None, ""):
        data["end_time"] = str(end_raw)
    check_targeting(data.get("targeting"), params.has("targeting"))
    # Budgets (S003 §Ad Account Adsets; 1885621 S003 §Handling Errors).
    daily = _amount(params, "daily_budget")
    lifetime = _amount(params, "lifetime_budget")
    bid_amount = params.int("bid_amount")
    for key, value in (("daily_budget", daily), ("lifetime_budget", lifetime), ("bid_amount", bid_amount)):
        if value is not None:
            data[key] = str(value)
    _check_adset_budgets(ctx, account, campaign, daily, lifetime, start, end, params.has("daily_budget"))
    _check_spend_targets(params, campaign, data)
    strategy = enum(ctx, "bid_strategy", BID_STRATEGIES, "bid_strategy.enum")
    effective = check_bid(strategy, campaign, bid_amount, billing, data.get("bid_constraints"))
    if strategy:
        data["bid_strategy"] = strategy
    elif effective and not campaign.get("bid_strategy"):
        data["bid_strategy"] = effective
    if data.get("frequency_control_specs") is not None and goal not in ("REACH", "THRUPLAY"):
        raise fail(
            "adset.frequency_control",
            "Writes to frequency_control_specs are only available in ad sets where REACH and THRUPLAY are the "
            "performance goal",
            "frequency_control_specs",
        )
    promoted = data.get("promoted_object")
    if goal == "LEAD_GENERATION" and not _promoted_page(promoted):
        raise fail(
            "adset.lead_page",
            "When optimization_goal is LEAD_GENERATION, page_id needs to be passed as promoted_object",
            ("promoted_object", "page_id"),
        )
    if campaign.get("smart_promotion_type") == ASC:
        _check_asc_adset(ctx, campaign, billing, data.get("targeting"))
    if params.has("existing_customer_budget_percentage"):
        data["existing_customer_budget_percentage"] = check_ecbp(ctx, params)
    if destination is not None:
        _check_messaging_adset(ctx, campaign, destination, billing, goal, promoted)
    return data, campaign


def check_targeting(targeting: Any, given: bool) -> None:
    if not given:
        raise fail("adset.targeting.required", "The parameter targeting is required", "targeting")
    if not isinstance(targeting, dict):
        raise fail("adset.targeting.geo", "Param targeting must be a targeting spec object", "targeting")
    geo = targeting.get("geo_locations")
    if not isinstance(geo, dict) or not any(geo.get(k) for k in GEO_KEYS):
        raise fail(
            "adset.targeting.geo",
            "Targeting spec must include geo_locations with countries (or regions, cities, zips, places…)",
            ("targeting", "geo_locations"),
        )


def _check_adset_budgets(
    ctx: CallContext,
    account: Node,
    campaign: Node,
    daily: int | None,
    lifetime: int | None,
    start: float | None,
    end: float | None,
    daily_given: bool,
) -> None:
    own = (daily or 0) > 0 or (lifetime or 0) > 0
    if own and has_budget(campaign):
        raise fail(
            "budget.campaign_vs_adset",
            "You can only set an ad set budget or a campaign budget.",
            "daily_budget" if (daily or 0) > 0 else "lifetime_budget",
        )
    if not own and not has_budget(campaign):
        raise fail(
            "adset.budget.required",
            "Either daily_budget or lifetime_budget must be greater than 0",
            "daily_budget",
        )
    if lifetime is not None and lifetime > 0 and end is None:
        raise fail(
            "adset.lifetime.end_time", "end_time is required when lifetime_budget is specified", "end_time"
        )
    begin = start if start is not None else ctx.now
    if daily_given and (daily or 0) > 0 and end is not None and end - begin <= DAY_S:
        raise fail(
            "adset.daily.duration",
            "daily_budget is allowed only for ad sets with a duration (difference between end_time and "
            "start_time) longer than 24 hours",
            "daily_budget",
        )
    days = (end - begin) / DAY_S if end is not None else None
    _check_budget_floor("budget.too_low", daily, lifetime, days, account)


def _check_spend_targets(params: Params, campaign: Node, data: dict[str, Any]) -> None:
    for key, needs in (
        ("daily_min_spend_target", "daily_budget"),
        ("daily_spend_cap", "daily_budget"),
        ("lifetime_min_spend_target", "lifetime_budget"),
        ("lifetime_spend_cap", "lifetime_budget"),
    ):
        value = params.int(key)
        if value is None:
            continue
        if _int(campaign.get(needs)) <= 0:
            raise fail(
                "adset.spend_targets",
                f"To use {key}, {needs.replace('_', ' ')} must be specified in the Campaign",
                key,
            )
        data[key] = str(value)


def check_bid(
    strategy: str | None, campaign: Node, bid_amount: int | None, billing: str | None, constraints: Any
) -> str | None:
    """Bid rules; returns the ad set's effective strategy (own, the campaign's, or the §9.3 #4 default)."""
    effective = strategy or campaign.get("bid_strategy")
    if effective is None:
        effective = "LOWEST_COST_WITH_BID_CAP" if bid_amount is not None else "LOWEST_COST_WITHOUT_CAP"
    if effective in BID_REQUIRED_STRATEGIES and bid_amount is None:
        source = "" if strategy else " of the campaign"
        raise fail(
            "adset.bid_amount.required",
            f"bid_amount is required when the bid_strategy{source} is {effective}",
            "bid_amount",
        )
    if bid_amount is not None and effective in AUTOMATIC_STRATEGIES:
        raise fail(
            "adset.bid.automatic",
            "You need to set your bid to automatic for the chosen optimization. Remove any billing or bid info "
            "or change your optimization.",
            "bid_amount",
        )
    if bid_amount is not None:
        floor = 2 if billing in ("IMPRESSIONS", "REACH") else 1
        if bid_amount < floor:
            raise fail(
                "adset.bid_amount.min",
                f"bid_amount must be at least {floor} cents for billing_event {billing}",
                "bid_amount",
            )
    floor_value = constraints.get("roas_average_floor") if isinstance(constraints, dict) else None
    if floor_value is not None:
        low, high = ROAS_FLOOR_RANGE
        if (
            not isinstance(floor_value, (int, float))
            or isinstance(floor_value, bool)
            or not low <= floor_value <= high
        ):
            raise fail(
                "adset.roas_floor.range",
                f"The valid range of roas_average_floor is [{low}, {high}], inclusive",
                ("bid_constraints", "roas_average_floor"),
            )
    if effective == "LOWEST_COST_WITH_MIN_ROAS" and floor_value is None:
        raise fail(
            "adset.roas_floor.required",
            "LOWEST_COST_WITH_MIN_ROAS requires bid_constraints.roas_average_floor",
            ("bid_constraints", "roas_average_floor"),
        )
    return str(effective)


def check_ecbp(ctx: CallContext, params: Params) -> str:
    key = "existing_customer_budget_percentage"
    if ctx.version_number >= 25:
        raise fail(
            "asc.ecbp.deprecated",
            f"{key} is deprecated from v25.0: use two ad sets with custom audiences instead",
            key,
        )
    raw = params.str(key)
    try:
        value = float(str(raw))
    except ValueError:
        value = -1.0
    if not 0 <= value <= 100:
        raise fail("asc.ecbp.range", f"Param {key} must be between 0 and 100 - got {raw}", key)
    return str(raw)


def _check_asc_adset(ctx: CallContext, campaign: Node, billing: str | None, targeting: Any) -> None:
    if any(s.status != "DELETED" for s in ctx.store.children(campaign.id, ADSET)):
        raise fail("asc.one_adset", "Only one Ad Set can be associated with each ASC campaign", "campaign_id")
    if billing != "IMPRESSIONS":
        raise fail(
            "asc.billing_event",
            "Only IMPRESSIONS is supported for Advantage+ shopping campaigns",
            "billing_event",
        )
    extra = sorted(k for k in targeting if k != "geo_locations") if isinstance(targeting, dict) else []
    if extra:
        raise fail(
            "asc.targeting",
            f"Only geo_locations are allowed in an Advantage+ shopping ad set's targeting - got {extra[0]}",
            ("targeting", extra[0]),
        )
    regions = targeting.get("geo_locations", {}).get("regions") if isinstance(targeting, dict) else None
    if isinstance(regions, list) and len(regions) > 200:
        raise fail(
            "asc.targeting", "At most 200 regions can be targeted", ("targeting", "geo_locations", "regions")
        )


def _check_messaging_adset(
    ctx: CallContext, campaign: Node, destination: str, billing: str | None, goal: str, promoted: Any
) -> None:
    """S000 / S001 / S002 ad set rules for click-to-message destinations."""
    apps = MULTI_DESTINATIONS.get(destination) or SINGLE_DESTINATIONS.get(destination)
    if apps is None:
        return
    objective = str(campaign.get("objective"))
    if destination in GUIDED_DESTINATIONS:
        allowed = MESSENGER_OBJECTIVES if destination == "MESSENGER" else MESSAGING_OBJECTIVES
        if objective not in allowed:
            raise fail(
                "msg.objective",
                f"The ad campaign destination type is not valid: {destination} needs a campaign objective in "
                f"{{{', '.join(sorted(allowed))}}} - got {objective}",
                "destination_type",
            )
        if billing != "IMPRESSIONS":
            raise fail(
                "msg.billing_event",
                f"billing_event must be IMPRESSIONS for {destination} ads",
                "billing_event",
            )
        goals = _messaging_goals(destination, objective)
        if goal not in goals:
            raise fail(
                "msg.optimization_goal",
                f"optimization_goal must be one of {{{', '.join(sorted(goals))}}} for {destination} ads with "
                f"objective {objective} - got {goal}",
                "optimization_goal",
            )
        if destination in MULTI_DESTINATIONS:
            categories = campaign.get("special_ad_categories") or []
            if any(c != "NONE" for c in categories):
                raise fail(
                    "msg.special_ad_categories",
                    "Special ad categories are not supported for ads that click to multidestination: the campaign's"
                    " special_ad_categories must be NONE or an empty array",
                    "special_ad_categories",
                )
    page_id = _promoted_page(promoted)
    if page_id is None:
        raise fail(
            "msg.promoted_page",
            f"promoted_object.page_id is required for {destination} ads",
            ("promoted_object", "page_id"),
        )
    page = ctx.store.get(page_id)
    page_data = page.data if page is not None and page.type == PAGE else {}
    if WHATSAPP_APP in apps and not page_data.get("whatsapp_number"):
        raise fail(
            "msg.whatsapp_number",
            "The WhatsApp number connected to your Facebook page or Instagram profile was disconnected. You can "
            "run this ad again when you reconnect your WhatsApp account.",
            ("promoted_object", "page_id"),
        )
    if INSTAGRAM_APP in apps and not page_data.get("instagram_business_account"):
        raise fail(
            "msg.instagram_account",
            f"Page {page_id} has no Instagram business account connected, which {destination} requires",
            ("promoted_object", "page_id"),
        )


def _messaging_goals(destination: str, objective: str) -> frozenset[str]:
    if destination in MULTI_DESTINATIONS:
        return frozenset({"CONVERSATIONS"})
    if destination == "INSTAGRAM_DIRECT":
        return INSTAGRAM_GOALS.get(objective, frozenset())
    return MESSENGER_LEAD_GOALS if objective == "OUTCOME_LEADS" else MESSENGER_GOALS
