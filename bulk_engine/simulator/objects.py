"""Ad objects over HTTP: create on the ad-account edges, read with ``fields``, update, delete, list edges.

S003 §Basic Ad Creation / §Ad Account * reference: ``POST /act_{id}/{campaigns,adsets,adcreatives,ads,
advideos}`` returns ``{"id": …}`` (``adimages`` answers ``{"images": …}``; images and videos are per-account
libraries that creatives must draw from); ``POST /<id>`` updates and returns ``{"success": true}``; ``DELETE /<id>``
deletes; reads return only ``id`` unless ``fields`` asks for more; edges return ``{"data", "paging"}``
with cursors and hide ARCHIVED (unless filtered for) and DELETED objects (S003 §Manage Your Ad Object's
Status). Rules live in ``validation/`` and the status machine in ``status.py``; this module only wires
them to the routes and renders nodes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from bulk_engine.protocol.images import md5_hex

from . import status, validation
from .assets import add_image
from .context import CallContext, check_account_access
from .errors import GraphAPIError, invalid_param
from .params import split_fields
from .routing import RouteTable
from .store import (
    AD,
    AD_ACCOUNT,
    ADSET,
    CAMPAIGN,
    CREATIVE,
    IMAGE,
    PAGE,
    VIDEO,
    Node,
    decode_cursor,
    encode_cursor,
)
from .videos import refresh_video

routes = RouteTable()

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


# --- rendering ------------------------------------------------------------------------------------
def render(ctx: CallContext, node: Node, fields_spec: str | None) -> dict[str, Any]:
    """Render ``node`` with the requested ``fields`` (and always ``id``), incl. ``a{b,c}`` expansion."""
    fields = split_fields(fields_spec) or ["id"]
    if node.type == VIDEO:
        refresh_video(ctx, node)  # processing → ready on the virtual clock (videos.py)
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


def list_edge(ctx: CallContext, items: list[Node], *, status_filterable: bool = True) -> dict[str, Any]:
    """An edge answer with cursor pagination (S003 §Paginated Results) and status filtering."""
    params = ctx.params
    if status_filterable:
        wanted = _status_filter(ctx)
        items = [n for n in items if status.visible_in_edge(ctx.store, n, wanted, ctx.now)]
    items = _field_filter(ctx, items)
    items = sorted(items, key=lambda n: n.seq, reverse=True)  # newest first, like Ads Manager lists
    limit = params.int("limit", ctx.config.page_size_default) or ctx.config.page_size_default
    if limit < 1:
        raise invalid_param("Param limit must be a positive integer", "limit")
    limit = min(limit, ctx.config.page_size_max)
    too_much = ctx.core.faults.reduce_data(limit)  # the "reduce the amount of data" fault (faults.py)
    if too_much is not None:
        raise too_much
    start = 0
    after, before = params.str("after"), params.str("before")
    if after or before:
        cursor_id = decode_cursor(after or before or "")
        positions = {n.id: i for i, n in enumerate(items)}
        if cursor_id is None or (cursor_id not in positions and cursor_id not in ctx.store):
            which = "After" if after else "Before"
            raise invalid_param(f"The {which} Cursor specified is invalid", "after" if after else "before")
        if cursor_id in positions:
            start = positions[cursor_id] + 1 if after else max(0, positions[cursor_id] - limit)
        else:  # cursor object left the list (e.g. archived): resume from its place in creation order
            cursor_seq = ctx.store.get(cursor_id).seq  # type: ignore[union-attr]
            start = next((i for i, n in enumerate(items) if n.seq < cursor_seq), len(items))
    page = items[start : start + limit]
    body: dict[str, Any] = {"data": [render(ctx, n, params.str("fields")) for n in page]}
    paging: dict[str, Any] = {}
    if page:
        paging["cursors"] = {"before": encode_cursor(page[0].id), "after": encode_cursor(page[-1].id)}
        base = f"{ctx.request.base_url}/{ctx.version}/{ctx.request.path}"
        query = {
            k: v
            for k, v in params.raw().items()
            if k not in ("after", "before", "access_token", "appsecret_proof")
        }
        query = {k: (json.dumps(v) if isinstance(v, (list, dict)) else v) for k, v in query.items()}
        # Graph's paging links carry the caller's token (and proof) so they can be followed as given —
        # which is also why clients must never log or report raw edge answers.
        if ctx.request.token:
            query["access_token"] = ctx.request.token
        if ctx.request.appsecret_proof:
            query["appsecret_proof"] = ctx.request.appsecret_proof
        if start + limit < len(items):
            paging["next"] = (
                f"{base}?{urlencode({**query, 'limit': limit, 'after': paging['cursors']['after']})}"
            )
        if start > 0:
            paging["previous"] = (
                f"{base}?{urlencode({**query, 'limit': limit, 'before': paging['cursors']['before']})}"
            )
    body["paging"] = paging
    summary = params.str("summary")
    if summary and "total_count" in summary:
        body["summary"] = {"total_count": len(items)}
    return body


_NAME_OPERATORS = {"EQUAL", "NOT_EQUAL", "CONTAIN", "NOT_CONTAIN", "IN", "NOT_IN", "STARTS_WITH"}
_LABEL_OPERATORS = {"ANY", "ALL", "NONE"}


def _field_filter(ctx: CallContext, items: list[Node]) -> list[Node]:
    """``filtering=[{"field", "operator", "value"}]`` on ``name`` and ``adlabels`` (all filters must match).

    ``name``: EQUAL / NOT_EQUAL / CONTAIN / NOT_CONTAIN (case-insensitive, as in Ads Manager search) / IN /
    NOT_IN / STARTS_WITH. ``adlabels``: ANY / ALL / NONE of the given labels, matched by label id or name
    (the Ad Label reference: "Supported operators are ALL and ANY: for ids and label names matching").
    ``id`` / ``campaign.id`` / ``adset.id`` (EQUAL, NOT_EQUAL, IN, NOT_IN) and ``created_time`` /
    ``updated_time`` (GREATER_THAN, LESS_THAN UNIX seconds) as an export asks for them (protocol/edges.py).
    Other fields are left to their own handlers (``effective_status``) or ignored.
    """
    filtering = ctx.params.json("filtering")
    if not isinstance(filtering, list):
        return items
    for flt in filtering:
        if not isinstance(flt, dict):
            continue
        field, value = str(flt.get("field", "")), flt.get("value")
        operator = str(flt.get("operator", "")).upper()
        if field == "name":
            if operator not in _NAME_OPERATORS:
                raise invalid_param(
                    f"Filtering operator {operator} is not supported for field name", "filtering"
                )
            items = [n for n in items if _name_matches(n.get("name"), operator, value)]
        elif field == "adlabels":
            if operator not in _LABEL_OPERATORS:
                raise invalid_param(
                    f"Filtering operator {operator} is not supported for field adlabels", "filtering"
                )
            wanted = {str(v) for v in (value if isinstance(value, list) else [value])}
            items = [n for n in items if _labels_match(n.get("adlabels"), operator, wanted)]
        elif field in _ID_FILTERS:
            items = _id_filter(items, field, operator, value)
        elif field in ("created_time", "updated_time"):
            items = _time_filter(items, field, operator, value)
    return items


# ``id`` and a parent's id in DOT notation (S003 §Insights best practices: ``adset.id`` IN […]), and the
# node times in UNIX seconds; the operators are the export's vocabulary (protocol/edges.py).
_ID_FILTERS = {"id": None, "campaign.id": "campaign_id", "adset.id": "adset_id"}


def _id_filter(items: list[Node], field: str, operator: str, value: Any) -> list[Node]:
    from bulk_engine.protocol.edges import ID_OPERATORS

    if operator not in ID_OPERATORS:
        raise invalid_param(f"Filtering operator {operator} is not supported for field {field}", "filtering")
    wanted = {str(v) for v in (value if isinstance(value, list) else [value])}
    key = _ID_FILTERS[field]
    keep = operator in ("EQUAL", "IN")
    return [n for n in items if ((n.id if key is None else str(n.get(key, ""))) in wanted) == keep]


def _time_filter(items: list[Node], field: str, operator: str, value: Any) -> list[Node]:
    from bulk_engine.protocol.edges import TIME_OPERATORS

    if operator not in TIME_OPERATORS or isinstance(value, bool) or not isinstance(value, int | float):
        raise invalid_param(
            f"Filtering on {field} takes GREATER_THAN or LESS_THAN and UNIX seconds", "filtering"
        )
    out = []
    for n in items:
        at = status.parse_time(n.get(field))
        if at is not None and (at > value if operator == "GREATER_THAN" else at < value):
            out.append(n)
    return out


def _name_matches(name: Any, operator: str, value: Any) -> bool:
    text = str(name or "")
    if operator in ("IN", "NOT_IN"):
        values = {str(v) for v in (value if isinstance(value, list) else [value])}
        return (text in values) == (operator == "IN")
    needle = str(value if value is not None else "")
    if operator == "EQUAL":
        return text == needle
    if operator == "NOT_EQUAL":
        return text != needle
    if operator == "STARTS_WITH":
        return text.startswith(needle)
    return (needle.lower() in text.lower()) == (operator == "CONTAIN")


def _labels_match(labels: Any, operator: str, wanted: set[str]) -> bool:
    if isinstance(labels, str):
        try:
            labels = json.loads(labels)
        except ValueError:
            labels = []
    have: set[str] = set()
    for label in labels if isinstance(labels, list) else []:
        if isinstance(label, dict):
            have.update(str(label[k]) for k in ("id", "name") if label.get(k) is not None)
        elif label is not None:
            have.add(str(label))
    if operator == "ANY":
        return bool(have & wanted)
    if operator == "ALL":
        return wanted <= have
    return not have & wanted


def _status_filter(ctx: CallContext) -> set[str] | None:
    raw = ctx.params.list("effective_status")
    if raw is None:
        filtering = ctx.params.json("filtering")
        if isinstance(filtering, list):
            for f in filtering:
                if isinstance(f, dict) and str(f.get("field", "")).endswith("effective_status"):
                    values = f.get("value")
                    raw = values if isinstance(values, list) else [values]
    if raw is None:
        return None
    allowed = status.EFFECTIVE_STATUS_FILTER_VALUES
    wanted = {str(v).upper() for v in raw}
    bad = sorted(wanted - allowed)
    if bad:
        raise invalid_param(
            f"Param effective_status[0] must be one of {{{', '.join(sorted(allowed))}}} - got {bad[0]}",
            "effective_status",
        )
    status.check_status_filter(ctx, wanted)  # §9.3 #9: DELETED in an edge filter
    return wanted


# --- reads ----------------------------------------------------------------------------------------
def _read(ctx: CallContext, node: Node | None) -> Any:
    assert node is not None
    return render(ctx, node, ctx.params.str("fields"))


for _type in (AD_ACCOUNT, CAMPAIGN, ADSET, CREATIVE, AD, IMAGE, PAGE, VIDEO):
    routes.add("GET", _type)(_read)


def _edge(parent_type: str, child_type: str, edge: str, status_filterable: bool = True) -> None:
    def handler(ctx: CallContext, node: Node | None) -> Any:
        assert node is not None
        return list_edge(ctx, ctx.store.children(node.id, child_type), status_filterable=status_filterable)

    routes.add("GET", parent_type, edge)(handler)


for _parent, _child, _edge_name in (
    (AD_ACCOUNT, CAMPAIGN, "campaigns"),
    (AD_ACCOUNT, ADSET, "adsets"),
    (AD_ACCOUNT, AD, "ads"),
    (CAMPAIGN, ADSET, "adsets"),
    (CAMPAIGN, AD, "ads"),
    (ADSET, AD, "ads"),
):
    _edge(_parent, _child, _edge_name)
_edge(AD_ACCOUNT, CREATIVE, "adcreatives", status_filterable=False)


@routes.add("GET", AD_ACCOUNT, "adimages")
def list_images(ctx: CallContext, node: Node | None) -> Any:
    assert node is not None
    images = ctx.store.children(node.id, IMAGE)
    hashes = ctx.params.list("hashes")
    if hashes is not None:
        images = [i for i in images if i.get("hash") in set(map(str, hashes))]
    return list_edge(ctx, images, status_filterable=False)


@routes.add("GET", AD_ACCOUNT, "advideos")
def list_videos(ctx: CallContext, node: Node | None) -> Any:
    assert node is not None
    return list_edge(ctx, ctx.store.children(node.id, VIDEO), status_filterable=False)


@routes.add("GET", AD_ACCOUNT, "ads_volume")
def ads_volume(ctx: CallContext, node: Node | None) -> Any:
    """S003 §Ad Volume: ``{"data":[{"ads_running_or_in_review_count": N}]}``."""
    assert node is not None
    running = sum(
        1
        for ad in ctx.store.children(node.id, AD)
        if ad.status == "ACTIVE"
        and status.effective_status(ctx.store, ad, ctx.now) in ("ACTIVE", "PENDING_REVIEW")
    )
    return {"data": [{"ads_running_or_in_review_count": running}]}


# --- creates --------------------------------------------------------------------------------------
def _validate_only(ctx: CallContext) -> bool:
    options = ctx.params.list("execution_options") or []
    known = {"validate_only", "include_recommendations", "synchronous_ad_review"}
    for opt in options:
        if opt not in known:
            raise invalid_param(
                f"Param execution_options[0] must be one of {{{', '.join(sorted(known))}}} - got {opt}",
                "execution_options",
            )
    if "include_recommendations" in options and "validate_only" not in options and len(options) == 1:
        raise invalid_param("include_recommendations cannot be used by itself", "execution_options")
    return "validate_only" in options


def _create(ctx: CallContext, node: Node | None, type_: str) -> Any:
    check_account_access(node)
    assert node is not None
    data, parent = validation.validate_create(ctx, node, type_)
    if _validate_only(ctx):
        return {"success": True}
    if type_ == CREATIVE:
        existing = validation.existing_creative_for_story(ctx, node, data)
        if existing is not None:  # S003 §Ad Account Ad Creatives: reuse of object_story_id returns it
            return {"id": existing.id}
    if type_ == CREATIVE and data.get("image_url") and not data.get("image_hash"):
        # S003 §Ad Account Ad Creatives (image_url): "Facebook saves the image from your URL to your ad
        # account's image library" — the creative then reads back its hash, like an uploaded image.
        url = str(data["image_url"])
        data["image_hash"] = add_image(ctx, node, url, digest=md5_hex(url.encode()), url=url).get("hash")
    data.setdefault("status", "ACTIVE")
    data["account_id"] = node.id.removeprefix("act_")
    created = ctx.store.add(
        type_, data, now=ctx.now, account_id=node.id, parent_id=parent.id if parent is not None else None
    )
    created.data["created_time"] = _iso(ctx.now)
    created.data["updated_time"] = created.data["created_time"]
    status.after_create(ctx, created)
    return {"id": created.id}


for _type, _edge_name in ((CAMPAIGN, "campaigns"), (ADSET, "adsets"), (CREATIVE, "adcreatives"), (AD, "ads")):
    routes.add("POST", AD_ACCOUNT, _edge_name)((lambda t: lambda ctx, node: _create(ctx, node, t))(_type))


@routes.add("POST", AD_ACCOUNT, "advideos")
def create_video(ctx: CallContext, node: Node | None) -> Any:
    """S003 §Ad Videos (Creating): a video from ``file_url`` or an uploaded ``source`` → ``{"id": …}``.

    Only the non-chunked forms; the video is ready at once (no transcoding delay). A ``file_url`` that is
    not http(s) answers 389 "Unable to fetch video file from URL."
    """
    check_account_access(node)
    assert node is not None
    file_url = ctx.params.str("file_url")
    uploaded = ctx.request.files.get("source")
    if file_url is None and uploaded is None and not ctx.params.has("source"):
        raise invalid_param("A video file (source) or file_url is required", "source")
    if file_url is not None and not file_url.startswith(("http://", "https://")):
        raise GraphAPIError(code=389, message="(#389) Unable to fetch video file from URL.")
    video_id = ctx.store.new_id()
    ctx.store.add(
        VIDEO,
        {
            "title": ctx.params.str("title") or ctx.params.str("name") or "",
            "name": ctx.params.str("name") or ctx.params.str("title") or "",
            "description": ctx.params.str("description") or "",
            "source": f"https://video.example/{video_id}.mp4",
            "picture": f"https://scontent.example/{video_id}.jpg",
            "status": {"video_status": "ready", "processing_progress": 100},
            "account_id": node.id.removeprefix("act_"),
            "created_time": _iso(ctx.now),
            **({"file_url": file_url} if file_url else {}),
        },
        now=ctx.now,
        account_id=node.id,
        node_id=video_id,
    )
    return {"id": video_id}


# --- updates and deletes --------------------------------------------------------------------------
def _update(ctx: CallContext, node: Node | None) -> Any:
    assert node is not None
    changes = validation.validate_update(ctx, node)
    status.check_update(ctx, node, changes)
    if ctx.params.bool("migrate_to_advantage_plus"):  # S003 §Migrate Advantage+ …: in place (copies.py)
        from .copies import migrate_in_place

        migrate_in_place(ctx, node, dry_run=_validate_only(ctx))
    if _validate_only(ctx):
        return {"success": True}
    switched = validation.budget_switch(ctx, node, changes)  # ad sets now sharing the campaign budget
    status.apply_update(ctx, node, changes)
    node.data["updated_time"] = _iso(ctx.now)
    for adset in switched:
        for key in ("daily_budget", "lifetime_budget"):
            adset.data.pop(key, None)
        adset.data["updated_time"] = node.data["updated_time"]
    return {"success": True}


def _delete(ctx: CallContext, node: Node | None) -> Any:
    assert node is not None
    status.check_update(ctx, node, {"status": "DELETED"})
    status.apply_update(ctx, node, {"status": "DELETED"})
    return {"success": True}


for _type in (CAMPAIGN, ADSET, AD, CREATIVE):
    routes.add("POST", _type)(_update)
    routes.add("DELETE", _type)(_delete)


def _iso(ts: float) -> str:
    import datetime as _dt

    return _dt.datetime.fromtimestamp(ts, _dt.UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")
