"""Documented validation rules for creating and updating ad objects.

Each rule answers with the documented code/subcode, or code 100 with ``error_data.blame_field_specs``.
The rule table (rule → code → seed section) is kept in ``RULES`` below and rendered into docs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import GraphAPIError, invalid_param, missing_param, rule_error
from .status import CREATE_STATUSES
from .store import AD, ADSET, CAMPAIGN, CREATIVE, Node

if TYPE_CHECKING:
    from .graph import CallContext

OBJECTIVES = {
    "APP_INSTALLS",
    "BRAND_AWARENESS",
    "CONVERSIONS",
    "EVENT_RESPONSES",
    "LEAD_GENERATION",
    "LINK_CLICKS",
    "LOCAL_AWARENESS",
    "MESSAGES",
    "OFFER_CLAIMS",
    "OUTCOME_APP_PROMOTION",
    "OUTCOME_AWARENESS",
    "OUTCOME_ENGAGEMENT",
    "OUTCOME_LEADS",
    "OUTCOME_SALES",
    "OUTCOME_TRAFFIC",
    "PAGE_LIKES",
    "POST_ENGAGEMENT",
    "PRODUCT_CATALOG_SALES",
    "REACH",
    "STORE_VISITS",
    "VIDEO_VIEWS",
}
SPECIAL_AD_CATEGORIES = {
    "NONE",
    "EMPLOYMENT",
    "HOUSING",
    "CREDIT",
    "ISSUES_ELECTIONS_POLITICS",
    "ONLINE_GAMBLING_AND_GAMING",
    "FINANCIAL_PRODUCTS_SERVICES",
}
BID_STRATEGIES = {
    "LOWEST_COST_WITHOUT_CAP",
    "LOWEST_COST_WITH_BID_CAP",
    "COST_CAP",
    "LOWEST_COST_WITH_MIN_ROAS",
}
BUYING_TYPES = {"AUCTION", "RESERVED"}
BILLING_EVENTS = {
    "APP_INSTALLS",
    "CLICKS",
    "IMPRESSIONS",
    "LINK_CLICKS",
    "NONE",
    "OFFER_CLAIMS",
    "PAGE_LIKES",
    "POST_ENGAGEMENT",
    "THRUPLAY",
    "PURCHASE",
    "LISTING_INTERACTION",
    "VIDEO_VIEWS",
}
OPTIMIZATION_GOALS = {
    "NONE",
    "APP_INSTALLS",
    "AD_RECALL_LIFT",
    "ENGAGED_USERS",
    "EVENT_RESPONSES",
    "IMPRESSIONS",
    "LEAD_GENERATION",
    "QUALITY_LEAD",
    "LINK_CLICKS",
    "OFFSITE_CONVERSIONS",
    "PAGE_LIKES",
    "POST_ENGAGEMENT",
    "QUALITY_CALL",
    "REACH",
    "LANDING_PAGE_VIEWS",
    "VISIT_INSTAGRAM_PROFILE",
    "VALUE",
    "THRUPLAY",
    "DERIVED_EVENTS",
    "APP_INSTALLS_AND_OFFSITE_CONVERSIONS",
    "CONVERSATIONS",
    "IN_APP_VALUE",
    "MESSAGING_PURCHASE_CONVERSION",
    "SUBSCRIBERS",
    "REMINDERS_SET",
    "MEANINGFUL_CALL_ATTEMPT",
    "PROFILE_VISIT",
    "PROFILE_AND_PAGE_ENGAGEMENT",
    "ADVERTISER_SILOED_VALUE",
    "AUTOMATIC_OBJECTIVE",
    "MESSAGING_APPOINTMENT_CONVERSION",
}
SMART_PROMOTION_TYPES = {"AUTOMATED_SHOPPING_ADS", "SMART_APP_PROMOTION", "GUIDED_CREATION"}


def enum(ctx: CallContext, key: str, allowed: set[str], *, required: bool = False) -> str | None:
    value = ctx.params.str(key, required=required)
    if value is not None and value not in allowed:
        raise invalid_param(f"Param {key} must be one of {{{', '.join(sorted(allowed))}}} - got {value}", key)
    return value


def _copy_params(ctx: CallContext, keys: tuple[str, ...], json_keys: tuple[str, ...] = ()) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for key in keys:
        value = ctx.params.str(key)
        if value is not None:
            data[key] = value
    for key in json_keys:
        value = ctx.params.json(key)
        if value is not None:
            data[key] = value
    return data


def _create_status(ctx: CallContext) -> str:
    value = ctx.params.str("status") or "ACTIVE"
    if value not in CREATE_STATUSES:  # reference: "Only ACTIVE and PAUSED are valid during creation"
        raise invalid_param(
            f"Param status must be one of {{ACTIVE, PAUSED}} during creation - got {value}", "status"
        )
    return value


def _budget(ctx: CallContext, key: str) -> int | None:
    value = ctx.params.int(key)
    if value is not None and value < 0:
        raise invalid_param(f"Param {key} must be a non-negative integer", key)
    return value


def validate_create(ctx: CallContext, account: Node, type_: str) -> tuple[dict[str, Any], Node | None]:
    """Validate a create on an ad-account edge; returns (stored data, parent node)."""
    if type_ == CAMPAIGN:
        return _campaign(ctx), None
    if type_ == ADSET:
        return _adset(ctx, account)
    if type_ == CREATIVE:
        return _creative(ctx), None
    if type_ == AD:
        return _ad(ctx, account)
    raise GraphAPIError(code=100, message=f"(#100) cannot create {type_}")


def _campaign(ctx: CallContext) -> dict[str, Any]:
    data = _copy_params(
        ctx,
        (
            "name",
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
    data["name"] = ctx.params.str("name", required=True)
    data["objective"] = enum(ctx, "objective", OBJECTIVES) or "OUTCOME_TRAFFIC"
    categories = ctx.params.list("special_ad_categories")
    if categories is None:
        raise rule_error(
            100,
            None,
            "Special ad categories required",
            "The special_ad_categories parameter is required",
            "special_ad_categories",
        )
    for cat in categories:
        if cat not in SPECIAL_AD_CATEGORIES:
            raise invalid_param(
                f"Param special_ad_categories[0] must be one of {{{', '.join(sorted(SPECIAL_AD_CATEGORIES))}}}"
                f" - got {cat}",
                "special_ad_categories",
            )
    data["special_ad_categories"] = categories
    data["status"] = _create_status(ctx)
    data["buying_type"] = enum(ctx, "buying_type", BUYING_TYPES) or "AUCTION"
    strategy = enum(ctx, "bid_strategy", BID_STRATEGIES)
    for key in ("daily_budget", "lifetime_budget"):
        value = _budget(ctx, key)
        if value is not None:
            data[key] = str(value)
    if strategy:
        data["bid_strategy"] = strategy
    elif "daily_budget" in data or "lifetime_budget" in data:
        data["bid_strategy"] = "LOWEST_COST_WITHOUT_CAP"
    smart = enum(ctx, "smart_promotion_type", SMART_PROMOTION_TYPES)
    if smart:
        data["smart_promotion_type"] = smart
    return data


def _adset(ctx: CallContext, account: Node) -> tuple[dict[str, Any], Node]:
    data = _copy_params(
        ctx,
        ("start_time", "end_time", "source_adset_id", "dsa_beneficiary", "dsa_payor"),
        (
            "targeting",
            "promoted_object",
            "adlabels",
            "bid_constraints",
            "frequency_control_specs",
            "attribution_spec",
        ),
    )
    name = ctx.params.str("name", required=True)
    assert name is not None
    if len(name) > 400:
        raise invalid_param("Param name must be at most 400 characters", "name")
    data["name"] = name
    campaign_id = ctx.params.str("campaign_id")
    if campaign_id is None:
        raise missing_param("campaign_id")
    campaign = ctx.store.get(campaign_id)
    if campaign is None or campaign.type != CAMPAIGN or campaign.account_id != account.id:
        raise invalid_param(f"Invalid campaign_id {campaign_id}", "campaign_id")
    data["campaign_id"] = campaign.id
    data["status"] = _create_status(ctx)
    data["billing_event"] = enum(ctx, "billing_event", BILLING_EVENTS, required=True)
    data["optimization_goal"] = enum(ctx, "optimization_goal", OPTIMIZATION_GOALS) or "LINK_CLICKS"
    if ctx.params.has("destination_type"):
        data["destination_type"] = ctx.params.str("destination_type")
    for key in ("daily_budget", "lifetime_budget", "bid_amount"):
        value = _budget(ctx, key)
        if value is not None:
            data[key] = str(value)
    strategy = enum(ctx, "bid_strategy", BID_STRATEGIES)
    if strategy:
        data["bid_strategy"] = strategy
    if "targeting" not in data:
        raise missing_param("targeting")
    has_own_budget = any(int(data.get(k, 0) or 0) > 0 for k in ("daily_budget", "lifetime_budget"))
    has_campaign_budget = any(int(campaign.get(k, 0) or 0) > 0 for k in ("daily_budget", "lifetime_budget"))
    if has_own_budget and has_campaign_budget:
        raise rule_error(
            100,
            1885621,
            "Can't Set Ad Set Budget",
            "You can only set an ad set budget or a campaign budget.",
            "daily_budget",
        )
    return data, campaign


def _creative(ctx: CallContext) -> dict[str, Any]:
    data = _copy_params(
        ctx,
        (
            "name",
            "object_story_id",
            "object_id",
            "instagram_user_id",
            "instagram_actor_id",
            "image_hash",
            "image_url",
            "url_tags",
            "authorization_category",
            "body",
            "title",
            "link_url",
            "source_instagram_media_id",
            "privacy_url",
        ),
        (
            "object_story_spec",
            "asset_feed_spec",
            "degrees_of_freedom_spec",
            "call_to_action",
            "adlabels",
            "contextual_multi_ads",
            "creative_sourcing_spec",
            "product_data",
        ),
    )
    pwm = ctx.params.get("page_welcome_message")
    if pwm is not None:
        data["page_welcome_message"] = pwm
    if not any(k in data for k in ("object_story_spec", "object_story_id", "asset_feed_spec", "object_id")):
        raise missing_param("object_story_spec")
    data.setdefault("name", f"Creative {ctx.store.new_id()[-6:]}")
    data["status"] = "ACTIVE"
    return data


def existing_creative_for_story(ctx: CallContext, account: Node, data: dict[str, Any]) -> Node | None:
    story = data.get("object_story_id")
    if not story:
        return None
    return next(
        (c for c in ctx.store.children(account.id, CREATIVE) if c.get("object_story_id") == story), None
    )


def _ad(ctx: CallContext, account: Node) -> tuple[dict[str, Any], Node]:
    data = _copy_params(
        ctx,
        ("source_ad_id", "conversion_domain", "ad_schedule_start_time", "ad_schedule_end_time"),
        ("adlabels", "tracking_specs", "creative_sourcing_spec", "product_data"),
    )
    data["name"] = ctx.params.str("name", required=True)
    adset_id = ctx.params.str("adset_id", required=True)
    adset = ctx.store.get(str(adset_id))
    if adset is None or adset.type != ADSET or adset.account_id != account.id:
        raise invalid_param(f"Invalid adset_id {adset_id}", "adset_id")
    data["adset_id"] = adset.id
    data["campaign_id"] = adset.get("campaign_id")
    data["status"] = _create_status(ctx)
    creative = ctx.params.json("creative", required=True)
    if not isinstance(creative, dict):
        raise invalid_param("Param creative must be an object", "creative")
    creative_id = creative.get("creative_id")
    if creative_id is not None:
        node = ctx.store.get(str(creative_id))
        if node is None or node.type != CREATIVE:
            raise invalid_param(f"Invalid creative_id {creative_id}", "creative")
        data["creative"] = {"id": node.id}
    else:
        raise invalid_param("Param creative must contain creative_id", "creative")
    return data, adset


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
        "bid_constraints",
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


def validate_update(ctx: CallContext, node: Node) -> dict[str, Any]:
    """Parse ``POST /<id>`` params into changes; creatives only accept name and status."""
    allowed = UPDATABLE.get(node.type, ())
    changes: dict[str, Any] = {}
    for key in ctx.params:
        if key in IGNORED_ON_UPDATE:
            continue
        if key not in allowed:
            if node.type == CREATIVE:
                raise rule_error(
                    100,
                    None,
                    "Ad creative cannot be edited",
                    "Ad creatives cannot be edited after they have been created except for name "
                    "and run status. Create a new creative instead.",
                    key,
                )
            raise invalid_param(f"Param {key} cannot be updated on this object", key)
        value: Any = (
            ctx.params.json(key)
            if key
            in (
                "targeting",
                "adlabels",
                "creative",
                "promoted_object",
                "bid_constraints",
                "special_ad_categories",
            )
            else ctx.params.str(key)
        )
        changes[key] = value
    if "status" in changes:
        changes["status"] = str(changes["status"]).upper()
    return changes
