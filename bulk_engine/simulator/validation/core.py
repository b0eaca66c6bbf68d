"""The shared core of the simulator's create and update rules: the rule table, :func:`fail`, enums and
small readers every object type uses."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from bulk_engine.protocol import catalog
from bulk_engine.protocol.catalog import (
    MIN_DAILY_BUDGET,
)
from bulk_engine.protocol.spec_fields import BadTime, iter_ctas
from bulk_engine.protocol.spec_fields import parse_time as parse_graph_time

from ..errors import GraphAPIError
from ..params import Params
from ..status import CREATE_STATUSES
from ..store import AD, ADSET, CAMPAIGN, CREATIVE, Node

if TYPE_CHECKING:
    from ..context import CallContext


class Rule(NamedTuple):
    code: int
    subcode: int | None
    title: str
    section: str


def _r(subcode: int | None, title: str, section: str) -> Rule:
    return Rule(100, subcode, title, section)


# One entry per documented rule; the module docstring renders the same table for readers.
RULES: dict[str, Rule] = {
    "exec.options.enum": _r(None, "Invalid execution option", "S003 §Ad Account Ads"),
    "exec.recommendations.alone": _r(None, "Recommendations can't be used alone", "S003 §Ad Account Adsets"),
    "exec.sync_review.alone": _r(None, "Synchronous ad review needs validate_only", "S003 §Ad Account Ads"),
    "create.status": _r(None, "Invalid status", "S003 §Ad Account, Ad Campaigns"),
    "campaign.name.required": _r(None, "Missing campaign name", "S003 §Create an Ad Campaign"),
    "campaign.objective.required": _r(None, "Missing objective", "S003 §Create an Ad Campaign"),
    "campaign.objective.enum": _r(None, "Invalid objective", "S003 §Ad Account, Ad Campaigns"),
    "campaign.sac.required": _r(None, "Special ad categories required", "S003 §Ad Account, Ad Campaigns"),
    "campaign.sac.enum": _r(None, "Invalid special ad category", "S003 §Ad Account, Ad Campaigns"),
    "campaign.buying_type.enum": _r(None, "Invalid buying type", "S003 §Ad Account, Ad Campaigns"),
    "bid_strategy.enum": _r(None, "Invalid bid strategy", "S003 §Ad Account Adsets"),
    "campaign.spend_cap.min": _r(2446307, "Spend Cap Too Low", "S003 §Handling Errors"),
    "budget.too_low": _r(1885272, "Budget Too Low", "S003 §Handling Errors"),
    "budget.too_low.update": _r(1885650, "Your Budget Is Too Low", "S003 §Handling Errors"),
    "time.end_in_past": _r(1487033, "End Date Must Be In The Future", "S003 §Troubleshooting"),
    "time.invalid": _r(None, "Invalid date", "S003 §Ad Account Adsets"),
    "asc.removed_v25": _r(None, "Smart promotion type no longer supported", "S003 §Advantage+ Campaign"),
    "advantage.read_only": _r(None, "Read-only field", "S003 §Advantage+ Campaign Experience"),
    "asc.objective": _r(None, "Objective not available for ASC", "S003 §Advantage+ Shopping Campaigns"),
    "asc.buying_type": _r(None, "Buying type not available for ASC", "S003 §Advantage+ Shopping Campaigns"),
    "adset.name.required": _r(None, "Missing ad set name", "S003 §Ad Account Adsets"),
    "adset.name.length": _r(None, "Name too long", "S003 §Ad Account Adsets"),
    "adset.campaign.required": _r(None, "Missing campaign", "S003 §Create an Ad Set"),
    "adset.campaign.unknown": _r(None, "Invalid campaign", "S003 §Ad Account Adsets"),
    "adset.campaign.not_live": _r(None, "Campaign not live", "S003 §Manage Your Ad Object's Status"),
    "adset.billing_event.required": _r(None, "Missing billing event", "S000 Step 2"),
    "adset.billing_event.enum": _r(None, "Invalid billing event", "S003 §Ad Account Adsets"),
    "adset.optimization_goal.enum": _r(None, "Invalid optimization goal", "S003 §Ad Account Adsets"),
    "adset.destination_type.enum": _r(None, "Invalid destination type", "S003 §Ad Account Adsets"),
    "adset.app_install_billing": _r(None, "App install billing not supported", "S003 §Ad Account Adsets"),
    "adset.targeting.required": _r(None, "Missing targeting", "S003 §Create an Ad Set"),
    "adset.targeting.geo": _r(None, "Missing location", "S003 §Ad Account Adsets"),
    "budget.campaign_vs_adset": _r(1885621, "Can't Set Ad Set Budget", "S003 §Handling Errors"),
    "adset.budget.required": _r(None, "Missing budget", "S003 §Ad Account Adsets"),
    "adset.lifetime.end_time": _r(None, "End time required", "S003 §Ad Account Adsets"),
    "adset.daily.duration": _r(None, "Ad set too short for a daily budget", "S003 §Ad Account Adsets"),
    "adset.bid_amount.required": _r(None, "Bid amount required", "S003 §Ad Account Adsets"),
    "adset.bid.automatic": _r(1885204, "Bid Must Be Automatic", "S003 §Handling Errors"),
    "adset.bid_amount.min": _r(None, "Bid amount too low", "S003 §Ad Account Adsets"),
    "adset.roas_floor.range": _r(None, "Invalid ROAS floor", "S003 §Advantage+ Shopping Campaigns"),
    "adset.roas_floor.required": _r(None, "ROAS floor required", "S003 §Advantage+ Shopping Campaigns"),
    "adset.lead_page": _r(None, "Page required for lead generation", "S003 §Ad Account Adsets"),
    "adset.spend_targets": _r(None, "Campaign budget required", "S003 §Ad Account Adsets"),
    "adset.frequency_control": _r(None, "Frequency control not available", "S003 §Ad Account Adsets"),
    "asc.one_adset": _r(None, "Only one ad set", "S003 §Advantage+ Shopping Campaigns"),
    "asc.billing_event": _r(
        None, "Billing event not available for ASC", "S003 §Advantage+ Shopping Campaigns"
    ),
    "asc.targeting": _r(None, "Invalid targeting", "S003 §Advantage+ Shopping Campaigns"),
    "asc.ecbp.range": _r(None, "Invalid percentage", "S003 §Advantage+ Shopping Campaigns"),
    "asc.ecbp.deprecated": _r(None, "Field deprecated", "S003 §Advantage+ Campaign Experience"),
    "msg.objective": _r(2446509, "Invalid Destination Type", "S000/S002 Step 1; S003 §Handling Errors"),
    "msg.billing_event": _r(None, "Billing event not available for messaging ads", "S000/S002 Step 2"),
    "msg.optimization_goal": _r(
        None, "Optimization goal not available for messaging ads", "S000/S002 Step 2; S001"
    ),
    "msg.promoted_page": _r(None, "Page required for messaging ads", "S000/S002 Step 2"),
    "msg.special_ad_categories": _r(None, "Special ad categories not supported", "S000 Step 1"),
    "msg.whatsapp_number": _r(2446880, "WhatsApp Number Disconnected", "S000 Step 2; S003 §Handling Errors"),
    "msg.instagram_account": _r(None, "No Instagram account", "S000 Step 2; S002"),
    "creative.spec.required": _r(None, "Missing creative content", "S003 §Create an Ad Creative"),
    "creative.story_spec": _r(None, "Invalid object story spec", "S003 §Ad Account Ad Creatives"),
    "creative.story_id": _r(None, "Invalid post id", "S003 §Ad Account Ad Creatives"),
    "creative.dof_destinations": _r(None, "Invalid destinations", "S000 Step 3"),
    "creative.cta_destination": _r(None, "Invalid call to action", "S000 Step 3; S002"),
    "creative.icebreaker.title": _r(None, "Ice breaker too long", "S000 Step 3 Limitations"),
    "creative.icebreaker.response": _r(None, "Ice breaker response too long", "S000 Step 3 Limitations"),
    "creative.welcome.text": _r(None, "Welcome message too long", "S000 Step 3 Limitations"),
    "creative.instagram_ids": _r(2238055, "Conflicting Instagram Ids", "S003 §Handling Errors"),
    "creative.instagram_access": _r(1815199, "No Access To Instagram Account", "S003 §Troubleshooting"),
    "creative.asset_feed.unique": _r(1815629, "Asset Values Not Unique", "S003 §Troubleshooting"),
    "creative.asset_feed.limits": _r(None, "Too many assets", "S003 §Asset Feed Spec"),
    "creative.image_hash.unknown": _r(
        None, "Image Not In Library", "S003 §Asset Feed Spec; §Ad Account Ad Images"
    ),
    "creative.video.unknown": _r(
        None, "Video Not In Ad Account", "S003 §Video and Carousel Ads → Limitations"
    ),
    "creative.immutable": _r(None, "Ad creative cannot be edited", "S003 §Asynchronous and Batch Requests"),
    "ad.name.required": _r(None, "Missing ad name", "S003 §Ad Account Ads"),
    "ad.adset.required": _r(None, "Missing ad set", "S003 §Ad Account Ads"),
    "ad.adset.unknown": _r(None, "Invalid ad set", "S003 §Ad Account Ads"),
    "ad.adset.not_live": _r(None, "Ad set not live", "S003 §Manage Your Ad Object's Status"),
    "ad.creative.required": _r(None, "Missing creative", "S003 §Ad Account Ads"),
    "ad.creative.unknown": _r(None, "Invalid creative", "S003 §Ad Account Ads"),
    "ad.bid_amount": _r(None, "Bid amount not allowed on ads", "S003 §Ad Account Ads"),
    "ad.schedule": _r(None, "Ad scheduling not available", "S003 §Ad Account Ads"),
    "msg.creative_destination": _r(None, "Creative does not match destination", "S000 Step 3; S001; S002"),
    "ad.page_mismatch": _r(1885029, "Page Mismatch", "S003 §Handling Errors"),
    "ad.website_url": _r(2446383, "Website URL Required", "S003 §Handling Errors"),
    "ad.adset_ended": _r(1487007, "Ad Set Ended", "S003 §Troubleshooting"),
}

Blame = str | tuple[str, ...]


def fail(rule: str, msg: str, *blame: Blame) -> GraphAPIError:
    """The error of ``rule``: its code/subcode, the user title/message, and the blamed field paths."""
    spec = RULES[rule]
    specs = [[b] if isinstance(b, str) else list(b) for b in blame]
    return GraphAPIError(
        code=spec.code,
        message=f"(#{spec.code}) Invalid parameter" if spec.subcode else f"(#{spec.code}) {msg}",
        subcode=spec.subcode,
        type="OAuthException",
        user_title=spec.title,
        user_msg=msg,
        blame_field_specs=specs or None,
    )


# --- enums ----------------------------------------------------------------------------------------
OBJECTIVES = frozenset(catalog.OBJECTIVES)
SPECIAL_AD_CATEGORIES = frozenset(catalog.SPECIAL_AD_CATEGORIES)
BID_STRATEGIES = frozenset(catalog.BID_STRATEGIES)
BUYING_TYPES = frozenset(catalog.BUYING_TYPES)
BILLING_EVENTS = frozenset(catalog.BILLING_EVENTS)
OPTIMIZATION_GOALS = frozenset(catalog.OPTIMIZATION_GOALS)
DESTINATION_TYPES = frozenset(catalog.DESTINATION_TYPES)
SMART_PROMOTION_TYPES = {"AUTOMATED_SHOPPING_ADS", "SMART_APP_PROMOTION", "GUIDED_CREATION"}
ASC = "AUTOMATED_SHOPPING_ADS"
REMOVED_IN_V25 = {"AUTOMATED_SHOPPING_ADS", "SMART_APP_PROMOTION"}

EXECUTION_OPTIONS = {
    CAMPAIGN: {"validate_only", "include_recommendations"},
    ADSET: {"validate_only", "include_recommendations"},
    AD: {"validate_only", "include_recommendations", "synchronous_ad_review"},
    CREATIVE: {"validate_only"},
}


# --- small readers --------------------------------------------------------------------------------
def enum(
    ctx: CallContext, key: str, allowed: frozenset[str], rule: str, *, required_rule: str | None = None
) -> str | None:
    value = ctx.params.str(key)
    if value is None:
        if required_rule is not None:
            raise fail(required_rule, f"The parameter {key} is required", key)
        return None
    if value not in allowed:
        raise fail(rule, f"Param {key} must be one of {{{', '.join(sorted(allowed))}}} - got {value}", key)
    return value


def copy_params(ctx: CallContext, keys: tuple[str, ...], json_keys: tuple[str, ...] = ()) -> dict[str, Any]:
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


def create_status(ctx: CallContext) -> str:
    value = ctx.params.str("status") or "ACTIVE"
    if value not in CREATE_STATUSES:  # reference: "Only ACTIVE and PAUSED are valid during creation"
        raise fail(
            "create.status",
            f"Param status must be one of {{ACTIVE, PAUSED}} during creation - got {value}",
            "status",
        )
    return value


def _amount(params: Params, key: str) -> int | None:
    value = params.int(key)
    if value is not None and value < 0:
        raise fail("budget.too_low", f"Param {key} must be a non-negative integer", key)
    return value


def _int(value: Any) -> int:
    try:
        return int(str(value).strip()) if value not in (None, "") else 0
    except ValueError:
        return 0


def parse_time(value: Any, key: str) -> float | None:
    """A Graph datetime → epoch (``0``/empty → None); a bad one is the documented parameter error."""
    try:
        return parse_graph_time(value)
    except BadTime:
        raise fail(
            "time.invalid",
            f"Param {key} must be a datetime like 2015-03-12 23:59:59-07:00 or a UNIX time",
            key,
        ) from None


def _future(ctx: CallContext, value: Any, key: str) -> float | None:
    when = parse_time(value, key)
    if when is not None and when <= ctx.now:
        raise fail(
            "time.end_in_past",
            "Your campaign's end date must be in the future. Please choose a different end date and try again.",
            key,
        )
    return when


def _min_daily_budget(account: Node | None) -> int:
    return (
        _int(account.get("min_daily_budget"))
        if account and account.get("min_daily_budget")
        else MIN_DAILY_BUDGET
    )


def _check_budget_floor(
    rule: str, daily: int | None, lifetime: int | None, days: float | None, account: Node | None
) -> None:
    """``budget.too_low``: daily ≥ the account minimum; lifetime ≥ minimum × days (at least one day)."""
    floor = _min_daily_budget(account)
    if daily is not None and 0 < daily < floor:
        raise fail(
            rule, f"Your budget is too low. It must be at least {floor} (cents) per day.", "daily_budget"
        )
    if lifetime is not None and lifetime > 0:
        needed = floor * max(1, math.ceil(days or 1))
        if lifetime < needed:
            raise fail(
                rule,
                f"Your lifetime budget is too low. It must be at least {needed} (cents).",
                "lifetime_budget",
            )


def check_execution_options(ctx: CallContext, type_: str) -> list[str]:
    options = [str(o) for o in ctx.params.list("execution_options") or []]
    allowed = EXECUTION_OPTIONS.get(type_, {"validate_only"})
    for opt in options:
        if opt not in allowed:
            raise fail(
                "exec.options.enum",
                f"Param execution_options[0] must be one of {{{', '.join(sorted(allowed))}}} - got {opt}",
                "execution_options",
            )
    if "validate_only" not in options:
        if options == ["include_recommendations"]:
            raise fail(
                "exec.recommendations.alone",
                "include_recommendations cannot be used by itself",
                "execution_options",
            )
        if "synchronous_ad_review" in options:
            raise fail(
                "exec.sync_review.alone",
                "synchronous_ad_review should always be specified with validate_only",
                "execution_options",
            )
    return options


def will_store(options: list[str]) -> bool:
    return "validate_only" not in options


def creative_ctas(data: dict[str, Any]) -> Iterator[tuple[tuple[str, ...], Mapping[str, Any]]]:
    """Every call_to_action of a creative outside the asset feed, with its blame path (strings, as Graph blames)."""
    for path, cta in iter_ctas(data):
        yield tuple(str(part) for part in path), cta
