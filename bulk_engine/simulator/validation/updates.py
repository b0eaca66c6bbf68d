"""Updates of existing objects: which fields each type takes and the rules of a change (S003 §Ad Campaign
Management → Modify; §Manage Your Ad Object's Status)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from bulk_engine.protocol.catalog import (
    DAY_S,
    NAME_MAX,
)

from ..errors import GraphAPIError
from ..store import AD, ADSET, CAMPAIGN, CREATIVE, Node
from .adsets import check_bid, check_ecbp, check_targeting
from .campaigns import check_spend_cap, has_budget, read_special_ad_categories
from .core import (
    BID_STRATEGIES,
    BILLING_EVENTS,
    OPTIMIZATION_GOALS,
    _amount,
    _check_budget_floor,
    _future,
    _int,
    check_execution_options,
    enum,
    fail,
    parse_time,
)

if TYPE_CHECKING:
    from ..context import CallContext


# --- updates --------------------------------------------------------------------------------------
UPDATABLE: dict[str, tuple[str, ...]] = {
    CAMPAIGN: (
        "name",
        "status",
        "daily_budget",
        "lifetime_budget",
        "spend_cap",
        "bid_strategy",
        "stop_time",
        "start_time",
        "adlabels",
        "special_ad_categories",
        "is_adset_budget_sharing_enabled",
        "topline_id",
    ),
    ADSET: (
        "name",
        "status",
        "daily_budget",
        "lifetime_budget",
        "bid_amount",
        "bid_strategy",
        "targeting",
        "end_time",
        "start_time",
        "optimization_goal",
        "billing_event",
        "adlabels",
        "promoted_object",
        "daily_min_spend_target",
        "daily_spend_cap",
        "lifetime_min_spend_target",
        "lifetime_spend_cap",
        "bid_constraints",
        "existing_customer_budget_percentage",
        "attribution_spec",
    ),
    AD: ("name", "status", "creative", "adlabels", "tracking_specs", "conversion_domain"),
    CREATIVE: ("name", "status", "adlabels"),
}
IGNORED_ON_UPDATE = {
    "access_token",
    "appsecret_proof",
    "execution_options",
    "redownload",
    "fields",
    "migrate_to_advantage_plus",
    "method",
}
JSON_FIELDS = {
    "targeting",
    "adlabels",
    "creative",
    "promoted_object",
    "bid_constraints",
    "special_ad_categories",
    "attribution_spec",
}
READ_ONLY = {"smart_promotion_type", "advantage_state", "advantage_state_info"}


def validate_update(ctx: CallContext, node: Node) -> dict[str, Any]:
    """Parse ``POST /<id>`` params into changes; creatives only accept name and status."""
    check_execution_options(ctx, node.type)
    allowed = UPDATABLE.get(node.type, ())
    changes: dict[str, Any] = {}
    for key in ctx.params:
        if key in IGNORED_ON_UPDATE:
            continue
        if key not in allowed:
            if node.type == CREATIVE:
                raise fail(
                    "creative.immutable",
                    "Ad creatives cannot be edited after they have been created except for name and run status. "
                    "Create a new creative instead.",
                    key,
                )
            if key in READ_ONLY and node.type == CAMPAIGN:
                raise fail("advantage.read_only", f"{key} is read-only", key)
            raise GraphAPIError(
                code=100,
                message=f"(#100) Param {key} cannot be updated on this object",
                blame_field_specs=[[key]],
            )
        changes[key] = ctx.params.json(key) if key in JSON_FIELDS else ctx.params.str(key)
    if "status" in changes:
        changes["status"] = str(changes["status"]).upper()
    if node.status in ("ARCHIVED", "DELETED"):
        return changes  # the status machine answers with the object's archived/deleted code
    if node.type == CAMPAIGN:
        _update_campaign(ctx, node, changes)
    elif node.type == ADSET:
        _update_adset(ctx, node, changes)
    elif node.type == AD:
        _update_ad(ctx, node, changes)
    return changes


def _update_campaign(ctx: CallContext, node: Node, changes: dict[str, Any]) -> None:
    params = ctx.params
    if "bid_strategy" in changes:
        enum(ctx, "bid_strategy", BID_STRATEGIES, "bid_strategy.enum")
    if "special_ad_categories" in changes:
        changes["special_ad_categories"] = read_special_ad_categories(params)
    check_spend_cap(params)
    if "stop_time" in changes:
        _future(ctx, changes["stop_time"], "stop_time")
    daily, lifetime = _amount(params, "daily_budget"), _amount(params, "lifetime_budget")
    for key, value in (("daily_budget", daily), ("lifetime_budget", lifetime)):
        if value is not None:
            changes[key] = str(value)
    if daily is None and lifetime is None:
        return
    _check_budget_floor("budget.too_low.update", daily, lifetime, None, ctx.store.get(node.account_id or ""))
    if budget_switch(ctx, node, changes) and ctx.config.campaign_budget_switch == "refuse":
        raise fail(
            "budget.campaign_vs_adset",
            "You can only set an ad set budget or a campaign budget.",
            "daily_budget" if daily else "lifetime_budget",
        )


def budget_switch(ctx: CallContext, node: Node, changes: Mapping[str, Any]) -> list[Node]:
    """The ad sets whose own budgets a campaign-budget update replaces (empty: no switch).

    S003 §Ad Account, Ad Campaigns (daily_budget): "All adsets under this campaign will share this budget.
    You can either set budget at the campaign level or at the adset level, not both." The seeds show no
    other in-place path to a campaign budget (an ad set's budget cannot be cleared first: "Either
    daily_budget or lifetime_budget must be greater than 0"), so by default (``campaign_budget_switch =
    "convert"``) setting a budget on a campaign whose ad sets carry budgets switches it to a campaign
    budget and clears theirs, as Ads Manager's "Advantage campaign budget" toggle does; ``"refuse"``
    answers 1885621 instead.
    """
    if node.type != CAMPAIGN or has_budget(node):
        return []
    if _int(changes.get("daily_budget")) <= 0 and _int(changes.get("lifetime_budget")) <= 0:
        return []
    return [s for s in ctx.store.children(node.id, ADSET) if s.status != "DELETED" and has_budget(s)]


def _update_adset(ctx: CallContext, node: Node, changes: dict[str, Any]) -> None:
    params = ctx.params
    campaign = ctx.store.parent(node)
    if "name" in changes and len(str(changes["name"])) > NAME_MAX:
        raise fail("adset.name.length", f"Param name must be at most {NAME_MAX} characters", "name")
    if "billing_event" in changes:
        enum(ctx, "billing_event", BILLING_EVENTS, "adset.billing_event.enum")
    if "optimization_goal" in changes:
        enum(ctx, "optimization_goal", OPTIMIZATION_GOALS, "adset.optimization_goal.enum")
    strategy = enum(ctx, "bid_strategy", BID_STRATEGIES, "bid_strategy.enum")
    if "targeting" in changes:
        check_targeting(changes["targeting"], True)
    if "end_time" in changes:
        _future(ctx, changes["end_time"], "end_time")
    if "existing_customer_budget_percentage" in changes:
        check_ecbp(ctx, params)
    daily, lifetime = _amount(params, "daily_budget"), _amount(params, "lifetime_budget")
    bid_amount = params.int("bid_amount")
    for key, value in (("daily_budget", daily), ("lifetime_budget", lifetime), ("bid_amount", bid_amount)):
        if value is not None:
            changes[key] = str(value)
    merged = {**node.data, **changes}
    if campaign is not None and ((daily or 0) > 0 or (lifetime or 0) > 0) and has_budget(campaign):
        raise fail(
            "budget.campaign_vs_adset",
            "You can only set an ad set budget or a campaign budget.",
            "daily_budget" if daily else "lifetime_budget",
        )
    if (
        campaign is not None
        and (daily is not None or lifetime is not None)
        and not has_budget(campaign)
        and not has_budget(merged)
    ):
        raise fail(
            "adset.budget.required",
            "Either daily_budget or lifetime_budget must be greater than 0",
            "daily_budget" if daily is not None else "lifetime_budget",
        )
    start = parse_time(merged.get("start_time"), "start_time")
    end = parse_time(merged.get("end_time"), "end_time")
    if _int(merged.get("lifetime_budget")) > 0 and end is None:
        raise fail(
            "adset.lifetime.end_time", "end_time is required when lifetime_budget is specified", "end_time"
        )
    begin = start if start is not None else ctx.now
    if ("daily_budget" in changes or "end_time" in changes) and _int(merged.get("daily_budget")) > 0:
        if end is not None and end - begin <= DAY_S:
            raise fail(
                "adset.daily.duration",
                "daily_budget is allowed only for ad sets with a duration longer than 24 hours",
                "daily_budget",
            )
    days = (end - begin) / DAY_S if end is not None else None
    _check_budget_floor("budget.too_low.update", daily, lifetime, days, ctx.store.get(node.account_id or ""))
    if campaign is not None and ({"bid_amount", "bid_strategy", "bid_constraints"} & changes.keys()):
        check_bid(
            strategy or merged.get("bid_strategy"),
            campaign,
            _int(merged["bid_amount"]) if merged.get("bid_amount") not in (None, "") else None,
            merged.get("billing_event"),
            merged.get("bid_constraints"),
        )


def _update_ad(ctx: CallContext, node: Node, changes: dict[str, Any]) -> None:
    adset = ctx.store.parent(node)
    if adset is not None and changes.keys() - {"name", "status"}:
        end = parse_time(adset.get("end_time"), "end_time")
        if end is not None and end <= ctx.now:
            raise fail(
                "ad.adset_ended",
                "You can't edit this ad because it's part of a scheduled ad set that has reached its end date. "
                "Please go to the Budget and Schedule section of the ad set and change the end date to a date in "
                "the future and then try your edits again.",
                sorted(changes.keys() - {"name", "status"})[0],
            )
    if "creative" in changes:
        raw = changes["creative"]
        creative_id = raw.get("creative_id") if isinstance(raw, dict) else None
        target = ctx.store.get(str(creative_id)) if creative_id is not None else None
        if target is None or target.type != CREATIVE or target.account_id != node.account_id:
            raise fail(
                "ad.creative.unknown", f"Invalid creative_id {creative_id}", ("creative", "creative_id")
            )
        changes["creative"] = {"id": target.id}
