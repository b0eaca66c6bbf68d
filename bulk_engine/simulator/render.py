"""How an ad object reads back: the fields a read may ask for, computed fields and ``a{b,c}`` expansion.

S003 §Basic Ad Creation / §Ad Account * reference: reads return only ``id`` unless ``fields`` asks for more;
an unknown field is code 100 ("Tried accessing nonexisting field"). Shared by the object routes
(:mod:`~bulk_engine.simulator.objects`) and every edge listing (:mod:`~bulk_engine.simulator.edges`).

Feature modules whose nodes change with virtual time register an :func:`on_read` hook for their node type
(videos.py: processing → ready) instead of this module importing them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import status
from .context import CallContext
from .errors import GraphAPIError
from .params import split_fields
from .store import AD, AD_ACCOUNT, ADSET, CAMPAIGN, CREATIVE, IMAGE, PAGE, VIDEO, Node

__all__ = ["COMPUTED", "KNOWN_FIELDS", "NODE_REFERENCE_FIELDS", "on_read", "render"]

Computed = Callable[[CallContext, Node], Any]

# Fields a read may ask for, per node type (unknown fields → code 100 like Graph's
# "Tried accessing nonexisting field"). Values come from stored data or the computed table below.
KNOWN_FIELDS: dict[str, set[str]] = {
    AD_ACCOUNT: {
        "id",
        "account_id",
        "name",
        "account_status",
        "currency",
        "timezone_name",
        "amount_spent",
        "business",
        "capabilities",
        "spend_cap",
        "min_daily_budget",
        "disable_reason",
    },
    CAMPAIGN: {
        "id",
        "account_id",
        "name",
        "objective",
        "status",
        "configured_status",
        "effective_status",
        "buying_type",
        "bid_strategy",
        "daily_budget",
        "lifetime_budget",
        "spend_cap",
        "special_ad_categories",
        "special_ad_category",
        "special_ad_category_country",
        "start_time",
        "stop_time",
        "created_time",
        "updated_time",
        "adlabels",
        "promoted_object",
        "smart_promotion_type",
        "advantage_state_info",
        "source_campaign_id",
        "source_campaign",
        "is_adset_budget_sharing_enabled",
        "budget_remaining",
        "topline_id",
        "pacing_type",
        "budget_schedule_specs",
        "can_use_spend_cap",
        "issues_info",
        "recommendations",
        "existing_customer_budget_percentage",
        "is_message_campaign",
        "is_direct_send_campaign",
    },
    ADSET: {
        "id",
        "account_id",
        "campaign_id",
        "campaign",
        "name",
        "status",
        "configured_status",
        "effective_status",
        "daily_budget",
        "lifetime_budget",
        "budget_remaining",
        "bid_amount",
        "bid_strategy",
        "bid_constraints",
        "billing_event",
        "optimization_goal",
        "targeting",
        "promoted_object",
        "destination_type",
        "start_time",
        "end_time",
        "created_time",
        "updated_time",
        "adlabels",
        "source_adset_id",
        "source_adset",
        "daily_min_spend_target",
        "daily_spend_cap",
        "lifetime_min_spend_target",
        "lifetime_spend_cap",
        "existing_customer_budget_percentage",
        "is_dynamic_creative",
        "frequency_control_specs",
        "attribution_spec",
        "dsa_beneficiary",
        "dsa_payor",
        "pacing_type",
        "time_start",
        "time_stop",
        "targeting_optimization_types",
        "issues_info",
        "recommendations",
        "learning_stage_info",
    },
    CREATIVE: {
        "id",
        "account_id",
        "name",
        "status",
        "object_story_spec",
        "object_story_id",
        "asset_feed_spec",
        "degrees_of_freedom_spec",
        "call_to_action",
        "call_to_action_type",
        "instagram_user_id",
        "instagram_actor_id",
        "object_id",
        "page_welcome_message",
        "image_hash",
        "image_url",
        "url_tags",
        "authorization_category",
        "contextual_multi_ads",
        "adlabels",
        "body",
        "title",
        "link_url",
        "object_type",
        "thumbnail_url",
        "effective_object_story_id",
        "source_instagram_media_id",
        "creative_sourcing_spec",
        "product_data",
        "privacy_url",
    },
    AD: {
        "id",
        "account_id",
        "adset_id",
        "adset",
        "campaign_id",
        "campaign",
        "name",
        "status",
        "configured_status",
        "effective_status",
        "creative",
        "created_time",
        "updated_time",
        "adlabels",
        "tracking_specs",
        "conversion_domain",
        "source_ad_id",
        "source_ad",
        "bid_amount",
        "ad_schedule_start_time",
        "ad_schedule_end_time",
        "issues_info",
        "recommendations",
        "ad_review_feedback",
        "creative_sourcing_spec",
        "product_data",
    },
    IMAGE: {
        "id",
        "account_id",
        "hash",
        "name",
        "url",
        "url_128",
        "width",
        "height",
        "status",
        "created_time",
    },
    PAGE: {"id", "name", "instagram_business_account", "whatsapp_number"},
    VIDEO: {
        "id",
        "account_id",
        "title",
        "name",
        "description",
        "source",
        "picture",
        "length",
        "status",
        "created_time",
        "updated_time",
    },
}

NODE_REFERENCE_FIELDS = {
    "campaign": "campaign_id",
    "adset": "adset_id",
    "source_campaign": "source_campaign_id",
    "source_adset": "source_adset_id",
    "source_ad": "source_ad_id",
}


def _computed() -> dict[str, Computed]:
    return {
        "effective_status": lambda ctx, n: status.effective_status(ctx.store, n, ctx.now),
        "configured_status": lambda ctx, n: n.status,
        "advantage_state_info": lambda ctx, n: status.advantage_state_info(ctx.store, n),
        "smart_promotion_type": lambda ctx, n: status.smart_promotion_type(ctx.store, n),
        "budget_remaining": lambda ctx, n: n.get("daily_budget") or n.get("lifetime_budget") or "0",
    }


COMPUTED = _computed()


ReadHook = Callable[[CallContext, Node], None]

_READ_HOOKS: dict[str, list[ReadHook]] = {}


def on_read(node_type: str) -> Callable[[ReadHook], ReadHook]:
    """Register ``hook`` to bring a ``node_type`` node up to date before it is rendered (a decorator)."""

    def register(hook: ReadHook) -> ReadHook:
        hooks = _READ_HOOKS.setdefault(node_type, [])
        if hook not in hooks:
            hooks.append(hook)
        return hook

    return register


def render(ctx: CallContext, node: Node, fields_spec: str | None) -> dict[str, Any]:
    """Render ``node`` with the requested ``fields`` (and always ``id``), incl. ``a{b,c}`` expansion."""
    fields = split_fields(fields_spec) or ["id"]
    for hook in _READ_HOOKS.get(node.type, ()):  # e.g. a video: processing → ready (videos.py)
        hook(ctx, node)
    known = KNOWN_FIELDS.get(node.type, set(node.data))
    out: dict[str, Any] = {}
    for spec in fields:
        name, _, sub = spec.partition("{")
        name = name.strip()
        sub = sub.rstrip("}") if sub else ""
        if name not in known and name not in node.data:
            raise GraphAPIError(
                code=100,
                message=f"(#100) Tried accessing nonexisting field ({name}) on node type ({_type_label(node)})",
                type="OAuthException",
            )
        if name in NODE_REFERENCE_FIELDS:
            ref = node.get(NODE_REFERENCE_FIELDS[name])
            target = ctx.store.get(str(ref)) if ref else None
            if target is not None:
                out[name] = render(ctx, target, sub or "id")
            continue
        if name in COMPUTED and (node.type in (CAMPAIGN, ADSET, AD) or name == "configured_status"):
            value = COMPUTED[name](ctx, node)
        else:
            value = node.data.get(name)
        if value is None:
            continue
        if sub and isinstance(value, dict):
            value = {k: v for k, v in value.items() if k in split_fields(sub)}
        out[name] = value
    # Graph always answers a node's id, after the requested fields (seeds 000/002: ``GET /<AD_CAMPAIGN_ID>
    # ?fields=name,status,objective`` → ``{name, status, objective, id}``); SDK cursors need it.
    out.setdefault("id", node.id)
    return out


def _type_label(node: Node) -> str:
    return {
        AD_ACCOUNT: "AdAccount",
        CAMPAIGN: "AdCampaignGroup",
        ADSET: "AdCampaign",
        CREATIVE: "AdCreative",
        AD: "Adgroup",
        IMAGE: "AdImage",
        PAGE: "Page",
        VIDEO: "AdVideo",
    }.get(node.type, node.type)
