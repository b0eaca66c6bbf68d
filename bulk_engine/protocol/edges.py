"""The ad-account edges an export reads: what each returns and which filters Graph takes on it.

Pure constants, one place, shared by the operations layer (an ``export`` task is checked against them before
any call) and the simulator (which evaluates the same filters), so a job the checks let through is a request
the simulator answers. Sources, S003:

- §Ad Account, Ad Campaigns / Adsets / Ads / Ad Creatives / Ad Images (Reading): the edges, their
  ``data``/``paging``/``summary`` answer, and ``effective_status`` — a parameter of the campaigns, adsets and
  ads edges only ("This endpoint doesn't have any parameters" for adcreatives). §Ad Videos says "Reading: You
  can't perform this operation on this endpoint", yet Ads Manager and every SDK list ``/act_…/advideos``;
  we read it like the others (the simulator serves it).
- §Object Archive and Delete Status: "we do not return deleted objects if you request it from another
  object's edge", so ``DELETED`` is not an ``effective_status`` an edge read can ask for.
- §Paginated Results → Cursor-based Pagination: ``limit``, ``after``, ``paging.next``.
- Filtering (§Insights → Limits and Best Practices; the Ad Label reference): ``[{"field", "operator",
  "value"}]``, DOT notation for a parent's field (``campaign.id``), ``IN`` for ``effective_status``,
  ``ANY``/``ALL``/``NONE`` for ``adlabels``.

Fields: what the reference lists for each node type and the simulator renders (``tests`` keep the two in
step); an unknown field is Graph's ``(#100) Tried accessing nonexisting field``.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "EDGE_FIELDS",
    "EDGE_NODE",
    "FILTER_OPERATORS",
    "ID_OPERATORS",
    "NAME_OPERATORS",
    "STATUS_EDGES",
    "TIME_OPERATORS",
    "filter_operators",
]

_COMMON = frozenset({"id", "account_id", "name", "created_time", "updated_time", "adlabels"})
_STATUSED = frozenset({"status", "configured_status", "effective_status", "issues_info", "recommendations"})

EDGE_FIELDS: Final[dict[str, frozenset[str]]] = {
    "campaigns": _COMMON
    | _STATUSED
    | {
        "objective",
        "buying_type",
        "bid_strategy",
        "daily_budget",
        "lifetime_budget",
        "budget_remaining",
        "spend_cap",
        "special_ad_categories",
        "special_ad_category",
        "special_ad_category_country",
        "start_time",
        "stop_time",
        "promoted_object",
        "smart_promotion_type",
        "advantage_state_info",
        "source_campaign_id",
        "source_campaign",
        "is_adset_budget_sharing_enabled",
        "topline_id",
        "pacing_type",
        "budget_schedule_specs",
        "can_use_spend_cap",
        "existing_customer_budget_percentage",
        "is_message_campaign",
        "is_direct_send_campaign",
    },
    "adsets": _COMMON
    | _STATUSED
    | {
        "campaign_id",
        "campaign",
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
        "learning_stage_info",
    },
    "ads": _COMMON
    | _STATUSED
    | {
        "adset_id",
        "adset",
        "campaign_id",
        "campaign",
        "creative",
        "tracking_specs",
        "conversion_domain",
        "source_ad_id",
        "source_ad",
        "bid_amount",
        "ad_schedule_start_time",
        "ad_schedule_end_time",
        "ad_review_feedback",
        "creative_sourcing_spec",
        "product_data",
    },
    "adcreatives": frozenset(
        {
            "id",
            "account_id",
            "name",
            "status",
            "adlabels",
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
        }
    ),
    "adimages": frozenset(
        {"id", "account_id", "hash", "name", "url", "url_128", "width", "height", "status", "created_time"}
    ),
    "advideos": frozenset(
        {
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
        }
    ),
}
"""Readable fields per ad-account edge (top-level names; ``campaign{name}`` expands a reference)."""

EDGE_NODE: Final[dict[str, str]] = {
    "campaigns": "Campaign",
    "adsets": "AdSet",
    "ads": "Ad",
    "adcreatives": "AdCreative",
    "adimages": "AdImage",
    "advideos": "AdVideo",
}

STATUS_EDGES: Final = frozenset({"campaigns", "adsets", "ads"})
"""The edges that take ``effective_status`` (and hide ARCHIVED objects unless asked for them)."""

NAME_OPERATORS: Final = frozenset(
    {"EQUAL", "NOT_EQUAL", "CONTAIN", "NOT_CONTAIN", "IN", "NOT_IN", "STARTS_WITH"}
)
LABEL_OPERATORS: Final = frozenset({"ANY", "ALL", "NONE"})
ID_OPERATORS: Final = frozenset({"EQUAL", "NOT_EQUAL", "IN", "NOT_IN"})
TIME_OPERATORS: Final = frozenset({"GREATER_THAN", "LESS_THAN"})
STATUS_OPERATORS: Final = frozenset({"IN"})

FILTER_OPERATORS: Final[dict[str, frozenset[str]]] = {
    "name": NAME_OPERATORS,
    "adlabels": LABEL_OPERATORS,
    "id": ID_OPERATORS,
    "created_time": TIME_OPERATORS,
    "updated_time": TIME_OPERATORS,
    "effective_status": STATUS_OPERATORS,
    "campaign.id": ID_OPERATORS,
    "adset.id": ID_OPERATORS,
}
"""Filter fields and their operators (time values are UNIX seconds)."""

_LEVEL = {"campaigns": "campaign", "adsets": "adset", "ads": "ad"}
_PARENT_FILTERS = {"adsets": ("campaign.id",), "ads": ("campaign.id", "adset.id")}


def filter_operators(edge: str, field: str) -> frozenset[str] | None:
    """The operators ``filtering`` may use on ``field`` of ``edge`` (``None``: not a filter of that edge).

    ``effective_status`` (also as ``<level>.effective_status``) only on the edges that have a status; a
    parent's id only where there is a parent; ``*_time`` only on nodes that have the field.
    """
    level = _LEVEL.get(edge)
    if field in ("effective_status", f"{level}.effective_status"):
        return STATUS_OPERATORS if edge in STATUS_EDGES else None
    if field in ("campaign.id", "adset.id"):
        return ID_OPERATORS if field in _PARENT_FILTERS.get(edge, ()) else None
    if field not in FILTER_OPERATORS or field not in EDGE_FIELDS.get(edge, frozenset()):
        return None
    return FILTER_OPERATORS[field]
