"""Marketing messages on Messenger (S004 Marketing Messages API for Messenger).

- ``POST /act_<id>/message_campaign`` ``{name, page_id, daily_budget | lifetime_budget}`` → ``{"id"}``. The
  endpoint is "similar to a combination of the campaigns and adsets endpoints", so the simulator keeps one
  node (type ``message_campaign``) that reads as both: ``GET /<MESSAGE_CAMPAIGN_ID>?fields=id,campaign{name},
  creative{actor_id},adset{name,lifetime_budget,daily_budget,start_time,end_time}`` answers like the seed,
  and ``is_message_campaign`` / ``is_direct_send_campaign`` are ``true``. Budgets are in cents and read back as
  strings; exactly one of the two is required. Minimums [inference from "min_daily_budget_imp for USD is 100
  cents, the minimum lifetime_budget should be $30"]: daily ≥ :data:`MIN_DAILY_BUDGET` (100), lifetime ≥
  :data:`MIN_LIFETIME_BUDGET` (3,000); lower → code 100 / subcode ``1885272`` "Budget is too low." (S003 error
  table), blaming the budget field. ``page_id`` must be a Page the simulator knows.
- ``POST /act_<id>/messages`` ``{message_id (= the message campaign id), messenger_delivery_data:
  {subscription_token}, message}`` → ``{"success": true, "marketing_message_tracking_id": "<uuid4>"}``
  (uuid drawn from the run's seeded RNG, so runs reproduce). Each sent message is stored as an ad under its
  message campaign ("this endpoint is similar to the ads endpoint"), so ``GET /act_<id>/ads?fields=id,
  adset{…},campaign{name,is_message_campaign,is_direct_send_campaign}`` lists the messages as S004 shows.
- **12 hours per subscription token**: "If sending multiple messages, ensure you delay subsequent messages
  by at least 12 hours to avoid errors." The seeds give no code; the simulator answers the Messenger Platform's
  outside-the-allowed-window refusal, code ``10`` / subcode ``2018278`` "This message is sent outside of allowed
  window" [supplemental], blaming ``messenger_delivery_data.subscription_token``, with the seconds to wait in
  ``error_user_msg``. It is permanent for that request (not ``is_transient``): the engine reschedules, it
  does not retry in a loop. The interval is per token across all campaigns (a token is one subscriber ↔ Page
  relationship), measured on the virtual clock; refused sends do not restart it.
- ``DELETE /<MESSAGE_CAMPAIGN_ID>`` → ``{"success": true}`` (idempotent). A deleted message campaign cannot
  send, and its messages leave the ``/ads`` edge (they inherit DELETED).
- ``GET /act_<id>/generatepreviews?ad_format=…&creative={…}`` → ``{"data": [{"body": "<iframe …>"}]}``: a
  deterministic iframe for the seed's ``MESSENGER_MARKETING_MESSAGES_MEDIA`` format and the ad formats of
  S003 §Ad Account Generatepreviews.

All calls count against the ad account's ``ads_management`` quota (they are ad-account edges).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import TYPE_CHECKING, Any

from bulk_engine.protocol.catalog import (
    MIN_DAILY_BUDGET,
)

from . import status
from .context import check_account_access
from .errors import GraphAPIError, invalid_param, missing_param, rule_error
from .params import split_fields
from .routing import RouteTable
from .store import AD, AD_ACCOUNT, MESSAGE_CAMPAIGN, PAGE, Node

if TYPE_CHECKING:
    from .context import CallContext

routes = RouteTable()

MIN_LIFETIME_BUDGET = 30 * MIN_DAILY_BUDGET
MESSAGE_INTERVAL_S = 12 * 3600.0
SUBCODE_BUDGET_TOO_LOW = 1885272
CODE_OUTSIDE_WINDOW = 10
SUBCODE_OUTSIDE_WINDOW = 2018278
PREVIEW_FORMATS = {
    "MESSENGER_MARKETING_MESSAGES_MEDIA",
    "RIGHT_COLUMN_STANDARD",
    "DESKTOP_FEED_STANDARD",
    "MOBILE_FEED_STANDARD",
    "INSTAGRAM_STANDARD",
    "MOBILE_BANNER",
    "MOBILE_INTERSTITIAL",
}

# What a message campaign answers, and the two "views" it is read through (S004 §Get campaign information).
MESSAGE_CAMPAIGN_FIELDS = {
    "id",
    "account_id",
    "name",
    "page_id",
    "status",
    "configured_status",
    "effective_status",
    "daily_budget",
    "lifetime_budget",
    "start_time",
    "end_time",
    "created_time",
    "updated_time",
    "is_message_campaign",
    "is_direct_send_campaign",
    "campaign",
    "adset",
    "creative",
}
CAMPAIGN_VIEW = ("id", "name", "status", "is_message_campaign", "is_direct_send_campaign")
ADSET_VIEW = ("id", "name", "status", "daily_budget", "lifetime_budget", "start_time", "end_time")


# --- message campaigns ----------------------------------------------------------------------------
@routes.add("POST", AD_ACCOUNT, "message_campaign")
def create_message_campaign(ctx: CallContext, node: Node | None) -> Any:
    check_account_access(node)
    assert node is not None
    name = ctx.params.str("name", required=True)
    page_id = ctx.params.str("page_id", required=True)
    page = ctx.store.get(str(page_id))
    if page is None or page.type != PAGE:
        raise invalid_param(
            f"Invalid page_id {page_id}: the Page does not exist or is not accessible", "page_id"
        )
    budgets = {key: _budget(ctx, key) for key in ("daily_budget", "lifetime_budget")}
    given = [key for key, value in budgets.items() if value is not None]
    if not given:
        raise missing_param("daily_budget")
    if len(given) == 2:
        raise invalid_param("Set either daily_budget or lifetime_budget, not both", "lifetime_budget")
    key = given[0]
    minimum = MIN_DAILY_BUDGET if key == "daily_budget" else MIN_LIFETIME_BUDGET
    if (budgets[key] or 0) < minimum:
        raise rule_error(
            100,
            SUBCODE_BUDGET_TOO_LOW,
            "Budget is too low.",
            f"The {key.replace('_', ' ')} must be at least {minimum} cents.",
            key,
        )
    created = status.iso_time(ctx.now)
    campaign = ctx.store.add(
        MESSAGE_CAMPAIGN,
        {
            "name": name,
            "page_id": page.id,
            "account_id": node.id.removeprefix("act_"),
            "status": "ACTIVE",
            "daily_budget": _str_or_none(budgets["daily_budget"]),
            "lifetime_budget": _str_or_none(budgets["lifetime_budget"]),
            "start_time": created,
            "end_time": None,
            "is_message_campaign": True,
            "is_direct_send_campaign": True,
            "created_time": created,
            "updated_time": created,
        },
        now=ctx.now,
        account_id=node.id,
    )
    return {"id": campaign.id}


def _budget(ctx: CallContext, key: str) -> int | None:
    value = ctx.params.int(key)
    if value is not None and value < 0:
        raise invalid_param(f"Param {key} must be a non-negative integer", key)
    return value


def _str_or_none(value: int | None) -> str | None:
    return None if value is None else str(value)


@routes.add("GET", MESSAGE_CAMPAIGN)
def read_message_campaign(ctx: CallContext, node: Node | None) -> Any:
    assert node is not None
    return render_message_campaign(ctx, node, ctx.params.str("fields"))


def render_message_campaign(ctx: CallContext, node: Node, fields_spec: str | None) -> dict[str, Any]:
    """The message campaign with ``fields``; ``campaign{…}`` / ``adset{…}`` / ``creative{…}`` are views of it."""
    out: dict[str, Any] = {}
    for spec in split_fields(fields_spec) or ["id"]:
        name, _, sub = spec.partition("{")
        name, sub = name.strip(), sub.rstrip("}")
        if name not in MESSAGE_CAMPAIGN_FIELDS:
            raise GraphAPIError(
                code=100,
                message=f"(#100) Tried accessing nonexisting field ({name}) on node type (MessageCampaign)",
            )
        if name == "campaign":
            out[name] = _view(node, CAMPAIGN_VIEW, sub or "id")
        elif name == "adset":
            out[name] = _view(node, ADSET_VIEW, sub or "id")
        elif name == "creative":
            creative = {"actor_id": node.get("page_id")}
            out[name] = {k: v for k, v in creative.items() if not sub or k in split_fields(sub)}
        elif name == "effective_status":
            out[name] = status.effective_status(ctx.store, node, ctx.now)
        elif name == "configured_status":
            out[name] = node.status
        elif node.get(name) is not None:
            out[name] = node.get(name)
    out.setdefault("id", node.id)
    return out


def _view(node: Node, allowed: tuple[str, ...], sub: str) -> dict[str, Any]:
    wanted = [f for f in split_fields(sub) if f in allowed]
    view = {f: node.get(f) for f in wanted if node.get(f) is not None}
    view.setdefault("id", node.id)
    return view


@routes.add("DELETE", MESSAGE_CAMPAIGN)
def delete_message_campaign(ctx: CallContext, node: Node | None) -> Any:
    """S004 §Delete a campaign: ``{"success": true}``; "this action cannot be undone"."""
    assert node is not None
    if node.status != "DELETED":
        node.data["status"] = "DELETED"
        node.data["updated_time"] = status.iso_time(ctx.now)
    return {"success": True}


# --- messages ---------------------------------------------------------------------------------------
@routes.add("POST", AD_ACCOUNT, "messages")
def send_message(ctx: CallContext, node: Node | None) -> Any:
    check_account_access(node)
    assert node is not None
    message_id = ctx.params.str("message_id", required=True)
    campaign = ctx.store.get(str(message_id))
    if campaign is None or campaign.type != MESSAGE_CAMPAIGN or campaign.account_id != node.id:
        raise invalid_param(
            f"Invalid message_id {message_id}: it must be a message campaign id", "message_id"
        )
    if campaign.status != "ACTIVE":
        raise invalid_param(
            f"The message campaign {campaign.id} is {campaign.status.lower()} and cannot send messages",
            "message_id",
        )
    delivery = ctx.params.json("messenger_delivery_data", required=True)
    token = delivery.get("subscription_token") if isinstance(delivery, dict) else None
    if not isinstance(token, (str, int)) or isinstance(token, bool) or str(token).strip() == "":
        raise GraphAPIError(
            code=100,
            message="(#100) The parameter messenger_delivery_data.subscription_token is required",
            blame_field_specs=[["messenger_delivery_data", "subscription_token"]],
        )
    token = str(token)
    message = ctx.params.json("message", required=True) if _looks_like_json(ctx, "message") else None
    if message is None:
        message = ctx.params.str("message", required=True)
    last = ctx.core.message_sent_at.get(token)
    if last is not None and ctx.now - last < MESSAGE_INTERVAL_S:
        wait = int(MESSAGE_INTERVAL_S - (ctx.now - last)) + 1
        raise GraphAPIError(
            code=CODE_OUTSIDE_WINDOW,
            subcode=SUBCODE_OUTSIDE_WINDOW,
            message="(#10) This message is sent outside of allowed window.",
            user_title="Message Sent Too Soon",
            user_msg=(
                "Marketing messages to one subscription token must be at least 12 hours apart. Send this "
                f"message again in {wait} seconds."
            ),
            blame_field_specs=[["messenger_delivery_data", "subscription_token"]],
        )
    ctx.core.message_sent_at[token] = ctx.now
    tracking_id = str(uuid.UUID(int=ctx.core.rng.getrandbits(128), version=4))
    sent = status.iso_time(ctx.now)
    ctx.store.add(
        AD,
        {
            "name": f"Marketing message {tracking_id}",
            "account_id": node.id.removeprefix("act_"),
            "campaign_id": campaign.id,
            "adset_id": campaign.id,
            "status": "ACTIVE",
            "creative": {"actor_id": campaign.get("page_id")},
            "message": message,
            "messenger_delivery_data": {"subscription_token": token},
            "marketing_message_tracking_id": tracking_id,
            "created_time": sent,
            "updated_time": sent,
        },
        now=ctx.now,
        account_id=node.id,
        parent_id=campaign.id,
    )
    return {"success": True, "marketing_message_tracking_id": tracking_id}


def _looks_like_json(ctx: CallContext, key: str) -> bool:
    value = ctx.params.get(key)
    return isinstance(value, (dict, list)) or (isinstance(value, str) and value.strip()[:1] in ("{", "["))


# --- previews -----------------------------------------------------------------------------------------
@routes.add("GET", AD_ACCOUNT, "generatepreviews")
def generate_previews(ctx: CallContext, node: Node | None) -> Any:
    """S004 step 2 / S003 §Ad Account Generatepreviews: one iframe per call, deterministic per input."""
    check_account_access(node)
    assert node is not None
    ad_format = ctx.params.str("ad_format", required=True)
    if ad_format not in PREVIEW_FORMATS:
        raise invalid_param(
            f"Param ad_format must be one of {{{', '.join(sorted(PREVIEW_FORMATS))}}} - got {ad_format}",
            "ad_format",
        )
    creative = ctx.params.json("creative", required=True)
    if not isinstance(creative, dict):
        raise invalid_param("Param creative must be a JSON object", "creative")
    digest = hashlib.sha256(
        json.dumps([ad_format, creative, ctx.params.get("message")], sort_keys=True, default=str).encode()
    ).hexdigest()[:48]
    src = f"https://business.facebook.com/ads/api/preview_iframe.php?d={digest}&t={ad_format}"
    body = f'<iframe src="{src}" width="274" height="213" scrolling="yes" style="border: none;"></iframe>'
    return {"data": [{"body": body}]}
