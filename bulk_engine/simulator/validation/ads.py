"""Ad creates: the ad set, the creative (by id or inline) and how they fit (S003 §Ad Account Ads)."""

from __future__ import annotations

import dataclasses
import datetime as _dt
from typing import TYPE_CHECKING, Any

from bulk_engine.protocol.catalog import (
    MULTI_DESTINATIONS,
    SCHEDULE_OBJECTIVES,
    SINGLE_DESTINATIONS,
    TRAFFIC_OBJECTIVES,
)
from bulk_engine.protocol.spec_fields import creative_has_link as _creative_has_link
from bulk_engine.protocol.spec_fields import creative_page as _creative_page
from bulk_engine.protocol.spec_fields import cta_app as _cta_app
from bulk_engine.protocol.spec_fields import promoted_page as _promoted_page

from ..params import Params
from ..store import ADSET, CREATIVE, Node
from .core import copy_params, create_status, creative_ctas, fail, parse_time
from .creatives import existing_creative_for_story, validate_creative

if TYPE_CHECKING:
    from ..context import CallContext


# --- ads ------------------------------------------------------------------------------------------
def validate_ad(ctx: CallContext, account: Node, store_inline: bool) -> tuple[dict[str, Any], Node]:
    params = ctx.params
    data = copy_params(
        ctx,
        ("source_ad_id", "conversion_domain", "ad_schedule_start_time", "ad_schedule_end_time"),
        ("adlabels", "tracking_specs", "creative_sourcing_spec", "product_data"),
    )
    name = params.str("name")
    if name is None:
        raise fail("ad.name.required", "The parameter name is required", "name")
    data["name"] = name
    adset_id = params.str("adset_id")
    if adset_id is None:
        raise fail("ad.adset.required", "The parameter adset_id is required", "adset_id")
    adset = ctx.store.get(adset_id)
    if adset is None or adset.type != ADSET or adset.account_id != account.id:
        raise fail("ad.adset.unknown", f"Invalid adset_id {adset_id}", "adset_id")
    campaign = ctx.store.parent(adset)
    for node in (adset, campaign):
        if node is not None and node.status in ("ARCHIVED", "DELETED"):
            kind = "ad set" if node is adset else "campaign"
            raise fail(
                "ad.adset.not_live",
                f"The {kind} {node.id} is {node.status.lower()}: ads can't be added to it",
                "adset_id",
            )
    data["adset_id"] = adset.id
    data["campaign_id"] = adset.get("campaign_id")
    data["status"] = create_status(ctx)
    if params.has("bid_amount"):
        raise fail(
            "ad.bid_amount",
            "We no longer allow setting the bid_amount value on an ad. Please set bid_amount for the ad set.",
            "bid_amount",
        )
    objective = campaign.get("objective") if campaign is not None else None
    for key in ("ad_schedule_start_time", "ad_schedule_end_time"):
        if key in data:
            if objective not in SCHEDULE_OBJECTIVES:
                raise fail(
                    "ad.schedule", f"{key} is only available for sales and app promotion campaigns", key
                )
            parse_time(data[key], key)
    found = _ad_creative(ctx, account, store_inline)
    _check_ad_fit(adset, campaign, found.data if isinstance(found, Node) else found)
    if isinstance(found, Node):
        data["creative"] = {"id": found.id}
    elif store_inline:
        data["creative"] = {"id": _store_inline_creative(ctx, account, found).id}
    else:  # validate_only: the inline spec was checked, nothing is stored
        data["creative"] = {"id": "0"}
    return data, adset


def _ad_creative(ctx: CallContext, account: Node, store_inline: bool) -> Node | dict[str, Any]:
    """``creative={"creative_id": …}`` → that node; an inline spec (``{"creative": {...}}`` or ``{<spec>}``)
    → the existing creative for its object_story_id, or the validated data of a creative still to store."""
    raw = ctx.params.json("creative")
    if raw is None:
        raise fail("ad.creative.required", "The parameter creative is required", "creative")
    if not isinstance(raw, dict):
        raise fail("ad.creative.required", "Param creative must be an object", "creative")
    creative_id = raw.get("creative_id")
    if creative_id is not None:
        node = ctx.store.get(str(creative_id))
        if node is None or node.type != CREATIVE or node.account_id != account.id or node.status == "DELETED":
            raise fail(
                "ad.creative.unknown", f"Invalid creative_id {creative_id}", ("creative", "creative_id")
            )
        return node
    spec = raw.get("creative") if isinstance(raw.get("creative"), dict) else raw
    if not spec:
        raise fail(
            "ad.creative.required", "Param creative must contain creative_id or a creative spec", "creative"
        )
    sub = dataclasses.replace(ctx, params=Params(spec))
    data = validate_creative(sub, account)
    existing = existing_creative_for_story(sub, account, data) if store_inline else None
    return existing if existing is not None else data


def _store_inline_creative(ctx: CallContext, account: Node, data: dict[str, Any]) -> Node:
    data["account_id"] = account.id.removeprefix("act_")
    stamp = _dt.datetime.fromtimestamp(ctx.now, _dt.UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")
    data["created_time"] = data["updated_time"] = stamp
    return ctx.store.add(CREATIVE, data, now=ctx.now, account_id=account.id)


def _check_ad_fit(adset: Node, campaign: Node | None, creative: dict[str, Any]) -> None:
    """Creative ↔ ad set rules checked when the two meet in an ad."""
    destination = adset.get("destination_type")
    apps: set[str | None]
    if destination in MULTI_DESTINATIONS:
        feed = creative.get("asset_feed_spec")
        ctas = feed.get("call_to_actions") if isinstance(feed, dict) else None
        apps = {_cta_app(c) for c in ctas if isinstance(c, dict)} if isinstance(ctas, list) else set()
        if (
            not isinstance(feed, dict)
            or feed.get("optimization_type") != "DOF_MESSAGING_DESTINATION"
            or apps != MULTI_DESTINATIONS[destination]
        ):
            raise fail(
                "msg.creative_destination",
                f"The creative's asset_feed_spec (optimization_type DOF_MESSAGING_DESTINATION) call_to_actions "
                f"must match the ad set's destination_type {destination}",
                ("creative", "asset_feed_spec", "call_to_actions"),
            )
    elif destination in ("MESSENGER", "INSTAGRAM_DIRECT"):
        apps = {app for _, cta in creative_ctas(creative) if (app := _cta_app(cta))}
        if apps != SINGLE_DESTINATIONS[destination]:
            raise fail(
                "msg.creative_destination",
                f"The creative's call_to_action app_destination must be {destination} to match the ad set's "
                f"destination_type - got {sorted(str(a) for a in apps) or 'none'}",
                ("creative", "call_to_action"),
            )
    promoted_page = _promoted_page(adset.get("promoted_object"))
    creative_page = _creative_page(creative)
    if promoted_page and creative_page and promoted_page != creative_page:
        raise fail(
            "ad.page_mismatch",
            "The Page selected for your ad doesn't match the Page associated with the object you're promoting, "
            "like a Page post or app. Please make sure the Pages are the same.",
            ("creative", "object_story_spec", "page_id"),
        )
    objective = campaign.get("objective") if campaign is not None else None
    if destination == "WEBSITE" and objective in TRAFFIC_OBJECTIVES and not _creative_has_link(creative):
        raise fail(
            "ad.website_url",
            "Your campaign objective requires an external website URL. Select a call to action and enter a "
            "website URL in the ad creative section.",
            ("creative", "object_story_spec", "link_data", "link"),
        )
