"""Ad create rules, and the rules of a creative meeting its ad set (S003 §Ad Account Ads; §Handling Errors;
S000 Step 3)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from bulk_engine.protocol.catalog import (
    MULTI_DESTINATIONS,
    SCHEDULE_OBJECTIVES,
    SINGLE_DESTINATIONS,
    TRAFFIC_OBJECTIVES,
)
from bulk_engine.protocol.spec_fields import creative_has_link as _creative_has_link
from bulk_engine.protocol.spec_fields import creative_page as _creative_page
from bulk_engine.protocol.spec_fields import cta_app as _cta_app
from bulk_engine.protocol.spec_fields import iter_ctas as _ctas
from bulk_engine.protocol.spec_fields import promoted_page as _promoted_page

from ..base import Issue
from .core import Path, create_status, issue


def ad_rules(
    params: Mapping[str, Any],
    adset: Mapping[str, Any] | None,
    campaign: Mapping[str, Any] | None,
    creative: Mapping[str, Any] | None,
    *,
    creative_path: Path = ("creative",),
) -> Iterator[Issue]:
    """Rules of one ad, and of its creative meeting its ad set (``creative`` is ``None`` for an existing id)."""
    yield from create_status(params)
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
