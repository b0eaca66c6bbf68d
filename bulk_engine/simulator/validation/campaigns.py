"""Campaign creates (S003 §Ad Account, Ad Campaigns; §Advantage+ Shopping Campaigns)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bulk_engine.protocol.catalog import (
    MIN_SPEND_CAP,
    NO_SPEND_CAP,
)

from ..params import Params
from ..store import Node
from .core import (
    ASC,
    BID_STRATEGIES,
    BUYING_TYPES,
    OBJECTIVES,
    REMOVED_IN_V25,
    SMART_PROMOTION_TYPES,
    SPECIAL_AD_CATEGORIES,
    _amount,
    _check_budget_floor,
    _future,
    _int,
    copy_params,
    create_status,
    enum,
    fail,
)

if TYPE_CHECKING:
    from ..context import CallContext


# --- campaigns ------------------------------------------------------------------------------------
def validate_campaign(ctx: CallContext, account: Node) -> dict[str, Any]:
    params = ctx.params
    data = copy_params(
        ctx,
        (
            "spend_cap",
            "start_time",
            "stop_time",
            "topline_id",
            "source_campaign_id",
            "special_ad_category_country",
            "is_adset_budget_sharing_enabled",
        ),
        ("adlabels", "promoted_object", "budget_schedule_specs"),
    )
    name = params.str("name")
    if name is None:
        raise fail("campaign.name.required", "The parameter name is required", "name")
    data["name"] = name
    data["objective"] = enum(
        ctx, "objective", OBJECTIVES, "campaign.objective.enum", required_rule="campaign.objective.required"
    )
    data["special_ad_categories"] = read_special_ad_categories(params)
    data["status"] = create_status(ctx)
    data["buying_type"] = enum(ctx, "buying_type", BUYING_TYPES, "campaign.buying_type.enum") or "AUCTION"
    strategy = enum(ctx, "bid_strategy", BID_STRATEGIES, "bid_strategy.enum")
    for key in ("advantage_state", "advantage_state_info"):
        if params.has(key):
            raise fail("advantage.read_only", f"{key} is read-only: it is set by the Advantage+ levers", key)
    smart = params.str("smart_promotion_type")
    if smart is not None:
        if smart not in SMART_PROMOTION_TYPES:
            raise fail(
                "advantage.read_only",
                f"Param smart_promotion_type must be one of {{AUTOMATED_SHOPPING_ADS, SMART_APP_PROMOTION}}"
                f" - got {smart}",
                "smart_promotion_type",
            )
        if smart == "GUIDED_CREATION":
            raise fail(
                "advantage.read_only",
                "smart_promotion_type GUIDED_CREATION is read-only: campaigns reflect it once the Advantage+ "
                "levers are on",
                "smart_promotion_type",
            )
        if smart in REMOVED_IN_V25 and ctx.version_number >= 25:
            raise fail(
                "asc.removed_v25",
                f"Beginning with v25.0 campaigns can no longer be created with smart_promotion_type={smart}. "
                "Create an Advantage+ campaign with Advantage+ budget, audience and placements instead.",
                "smart_promotion_type",
            )
        if smart == ASC:
            if data["objective"] != "OUTCOME_SALES":
                raise fail(
                    "asc.objective",
                    "ASC can be created only with the OUTCOME_SALES campaign objective",
                    "objective",
                )
            if data["buying_type"] != "AUCTION":
                raise fail(
                    "asc.buying_type",
                    "Advantage+ shopping campaigns only support the value AUCTION",
                    "buying_type",
                )
        data["smart_promotion_type"] = smart
    daily = _amount(params, "daily_budget")
    lifetime = _amount(params, "lifetime_budget")
    for key, value in (("daily_budget", daily), ("lifetime_budget", lifetime)):
        if value is not None:
            data[key] = str(value)
    _check_budget_floor("budget.too_low", daily, lifetime, None, account)
    check_spend_cap(params)
    _future(ctx, data.get("stop_time"), "stop_time")
    if strategy:
        data["bid_strategy"] = strategy
    elif (daily or 0) > 0 or (lifetime or 0) > 0:
        data["bid_strategy"] = "LOWEST_COST_WITHOUT_CAP"  # §9.3 #4, see the module docstring
    return data


def read_special_ad_categories(params: Params) -> list[Any]:
    categories = params.list("special_ad_categories")
    if categories is None:
        raise fail(
            "campaign.sac.required",
            "The special_ad_categories parameter is required",
            "special_ad_categories",
        )
    for i, cat in enumerate(categories):
        if cat not in SPECIAL_AD_CATEGORIES:
            raise fail(
                "campaign.sac.enum",
                f"Param special_ad_categories[{i}] must be one of "
                f"{{{', '.join(sorted(SPECIAL_AD_CATEGORIES))}}} - got {cat}",
                "special_ad_categories",
            )
    return categories


def check_spend_cap(params: Params) -> None:
    cap = params.int("spend_cap")
    if cap is not None and cap != NO_SPEND_CAP and cap < MIN_SPEND_CAP:
        raise fail(
            "campaign.spend_cap.min",
            f"Campaign group spend cap is less than minimum ({MIN_SPEND_CAP} cents, $100 USD)",
            "spend_cap",
        )


def has_budget(node: Node | dict[str, Any]) -> bool:
    data = node.data if isinstance(node, Node) else node
    return _int(data.get("daily_budget")) > 0 or _int(data.get("lifetime_budget")) > 0
