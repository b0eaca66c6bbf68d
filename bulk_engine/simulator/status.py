"""The status machine of ad objects (S003 §Manage Your Ad Object's Status, §Object Archive and Delete Status).

What the seeds say, and how the simulator answers it:

- **Configured statuses** ``ACTIVE`` / ``PAUSED`` / ``ARCHIVED`` / ``DELETED``; creation accepts only ``ACTIVE``
  and ``PAUSED`` (validation/). Transition table (§Comparisons of Different Statuses, "Status can be
  changed to"): live → any valid status; ``ARCHIVED`` → ``DELETED``; ``DELETED`` → cannot change.
- **ARCHIVED**: "An ARCHIVED object has only 2 fields you can change: name and status. You can also only
  change status to DELETED." Any other edit answers code 100 / subcode ``1885088`` (the seeds document it for
  an archived ad: "Only name is allowed to be edited for this ad"; they give no code for archived ad sets and
  campaigns, so the simulator uses the same subcode with an object-specific user message).
  **SPEC-DIGEST §9.3 #2** — the campaign-management guide says an archived campaign "can be easily restored by
  changing its status back to ACTIVE"; the status reference and its transition table forbid it. The
  simulator follows the reference by default (the stricter rule, so an engine tested against it never relies
  on un-archiving); ``SimulatorConfig.archived_reactivation=True`` allows ARCHIVED → ACTIVE/PAUSED.
- **DELETED**: "You cannot change any field, except name" → ad set ``1487056``, campaign ``1487566``; the seeds
  give no code for a deleted ad, so an ad answers ``1885088`` ("Only name is allowed to be edited for this
  ad"). Setting ``DELETED`` again (``status=DELETED`` or ``DELETE /<id>``) on a deleted object is a no-op
  success, so a retried delete after a timeout succeeds.
- **Inheritance**: "If the status of a campaign is set to … paused, archived, or deleted … all the objects
  below it automatically inherit that status." ``effective_status`` is derived, never copied: DELETED anywhere
  in the chain wins, then ARCHIVED, then the object's own PAUSED, then ``CAMPAIGN_PAUSED`` / ``ADSET_PAUSED``
  (the top-most paused parent), then ``PENDING_REVIEW``. Edits follow the effective state too: a child of a
  deleted campaign is deleted (only ``name``), a child of an archived parent is archived. Children never change
  their parents' status.
- **Review**: an ACTIVE ad is ``PENDING_REVIEW`` for ``SimulatorConfig.ad_review_s`` after it is created or
  activated, or after its creative changes; targeting / optimization_goal / billing_event changes on an ad set
  put its ads in review (S003 §Ad review: "bid, budget, schedule don't"). A PAUSED ad in review stays PAUSED.
- **Archived cap**: 100,000 archived campaigns / ad sets / ads per account (§Manage Status, §Ad Account →
  Limits). **§9.3 #1**: §Object Archive and Delete Status says 5,000 — the cap is
  ``SimulatorConfig.archived_limit``. Over it → code 100 / subcode ``1487990``. The count is a counter per
  (account, type) kept on the core and maintained here, so status calls stay O(1).
- **Edges** (handled by listing.list_edge through :func:`visible_in_edge`): live objects by default; ARCHIVED
  only when the ``effective_status`` filter contains ``ARCHIVED``; DELETED never, including the children of a
  deleted campaign ("you cannot retrieve the ad sets or ads below that campaign without explicitly specifying
  the IDs"). **§9.3 #9** — with ``DELETED`` in the filter the status doc says "error", while insights can filter
  on ``ad.effective_status`` DELETED. Edges follow the status doc: code 100 naming the value
  (:func:`check_status_filter`); ``SimulatorConfig.deleted_filter_error=False`` makes it match nothing instead.
- **Other edit-time rule**: ``1340029`` deleting an ad of a dynamic-creative ad set ("Please proceed by
  deleting parent Ad Set"). (``1487007``, editing an ad of an ended ad set, is validation/ads.py's.)
- **Bulk delete** ``DELETE /act_<id>/campaigns`` (S003 §Ad Account Campaigns → Deleting): ``delete_strategy``
  (required) ``DELETE_ANY`` (newest first) | ``DELETE_OLDEST`` (oldest first) | ``DELETE_ARCHIVED_BEFORE``
  (ARCHIVED campaigns archived before ``before_date``, which it requires); ``before_date`` also limits the other
  strategies to campaigns created before it; ``object_count`` caps how many go in this call (default and
  maximum :data:`BULK_DELETE_MAX`) → ``{"objects_left_to_delete_count", "deleted_object_ids"}``.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING, Any

from .advantage import compute_advantage_state_info, effective_smart_promotion_type
from .errors import invalid_param, missing_param, rule_error
from .routing import RouteTable
from .store import AD, AD_ACCOUNT, ADSET, CAMPAIGN, CREATIVE, MESSAGE_CAMPAIGN, Node, Store

if TYPE_CHECKING:
    from .context import CallContext

routes = RouteTable()

CONFIGURED_STATUSES = ("ACTIVE", "PAUSED", "ARCHIVED", "DELETED")
CREATE_STATUSES = ("ACTIVE", "PAUSED")
LIVE_CONFIGURED = ("ACTIVE", "PAUSED")
EFFECTIVE_STATUS_FILTER_VALUES = {
    "ACTIVE",
    "PAUSED",
    "DELETED",
    "PENDING_REVIEW",
    "DISAPPROVED",
    "PREAPPROVED",
    "PENDING_BILLING_INFO",
    "CAMPAIGN_PAUSED",
    "ARCHIVED",
    "ADSET_PAUSED",
    "IN_PROCESS",
    "WITH_ISSUES",
}
STATUS_OBJECT_TYPES = (CAMPAIGN, ADSET, AD)
BULK_DELETE_STRATEGIES = ("DELETE_ANY", "DELETE_OLDEST", "DELETE_ARCHIVED_BEFORE")
BULK_DELETE_MAX = 1000

SUBCODE_ARCHIVED_EDIT = 1885088
SUBCODE_ADSET_DELETED = 1487056
SUBCODE_CAMPAIGN_DELETED = 1487566
SUBCODE_TOO_MANY_ARCHIVED = 1487990
SUBCODE_DYNAMIC_CREATIVE_DELETE = 1340029

# (subcode, user title, user message) per type (S003 §Handling Errors → Error Codes).
ARCHIVED_EDIT_ERRORS: dict[str, tuple[int, str, str]] = {
    AD: (
        SUBCODE_ARCHIVED_EDIT,
        "Ad Archived",
        "This ad has been archived and can not be edited. Only name is allowed to be edited for this ad. If "
        "you want to edit other fields, you can duplicate this ad, which will create a new ad with the same "
        "settings that you can then edit.",
    ),
    ADSET: (
        SUBCODE_ARCHIVED_EDIT,
        "Ad Set Archived",
        "This ad set has been archived: only its name can be edited and its status can only be changed to "
        "DELETED. You can duplicate this ad set, which will create a new ad set with the same settings.",
    ),
    CAMPAIGN: (
        SUBCODE_ARCHIVED_EDIT,
        "Campaign Archived",
        "This campaign has been archived: only its name can be edited and its status can only be changed to "
        "DELETED. You can duplicate this campaign, which will create a new campaign with the same settings.",
    ),
}
DELETED_EDIT_ERRORS: dict[str, tuple[int, str, str]] = {
    AD: (
        SUBCODE_ARCHIVED_EDIT,
        "Ad Deleted",
        "This ad has been deleted, so you can only edit the name. If you want to edit other fields, you can "
        "duplicate this ad, which will create a new ad with the same settings that you can then edit.",
    ),
    ADSET: (
        SUBCODE_ADSET_DELETED,
        "Ad Set Deleted",
        "This ad set has been deleted, so you can only edit the name. If you want to edit other fields, you "
        "can duplicate this ad set, which will create a new ad set with the same settings that you can then "
        "edit.",
    ),
    CAMPAIGN: (
        SUBCODE_CAMPAIGN_DELETED,
        "Campaign Deleted",
        "This campaign has been deleted, so you can only edit the name. If you want to edit other fields, you "
        "can duplicate this campaign, which will create a new campaign with the same settings that you can "
        "then edit.",
    ),
}
# Ad set edits that send its ads back to review (S003 §Ad review); ad edits that do.
ADSET_REVIEW_FIELDS = ("targeting", "optimization_goal", "billing_event")
AD_REVIEW_FIELDS = ("creative",)

_REVIEW_KEY = "_review_until"
_ARCHIVED_AT_KEY = "_archived_at"
_COUNTED_KEY = "_counted_archived"


# --- effective status -------------------------------------------------------------------------------
def _ancestors(store: Store, node: Node) -> list[Node]:
    """Parents from the nearest up (ad → ad set → campaign); at most two hops for ad objects."""
    out: list[Node] = []
    current = store.parent(node)
    while current is not None:
        out.append(current)
        current = store.parent(current)
    return out


def effective_status(store: Store, node: Node, now: float) -> str:
    """The derived ``effective_status`` (S003 §Manage Status → hierarchy; reference tables)."""
    own = node.status
    ancestors = _ancestors(store, node)
    if own == "DELETED" or any(p.status == "DELETED" for p in ancestors):
        return "DELETED"
    if own == "ARCHIVED" or any(p.status == "ARCHIVED" for p in ancestors):
        return "ARCHIVED"
    if own == "PAUSED":
        return "PAUSED"
    for parent in reversed(ancestors):  # the top-most paused parent names the state
        if parent.status == "PAUSED":
            return "CAMPAIGN_PAUSED" if parent.type in (CAMPAIGN, MESSAGE_CAMPAIGN) else "ADSET_PAUSED"
    if node.type == AD and _in_review(node, ancestors, now):
        return "PENDING_REVIEW"
    return own


def _in_review(ad: Node, ancestors: list[Node], now: float) -> bool:
    until = float(ad.data.get(_REVIEW_KEY, 0.0))
    for parent in ancestors:
        if parent.type == ADSET:
            until = max(until, float(parent.data.get(_REVIEW_KEY, 0.0)))
    return now < until


def visible_in_edge(store: Store, node: Node, wanted: set[str] | None, now: float) -> bool:
    """Live objects by default; ARCHIVED only when the filter asks; DELETED (own or inherited) never."""
    eff = effective_status(store, node, now)
    if eff == "DELETED":
        return False
    if wanted is None:
        return eff != "ARCHIVED"
    return eff in wanted


def check_status_filter(ctx: CallContext, wanted: set[str] | None) -> None:
    """§9.3 #9: an edge ``effective_status`` filter containing DELETED is an error (configurable)."""
    if wanted and "DELETED" in wanted and ctx.config.deleted_filter_error:
        raise invalid_param(
            "Deleted objects cannot be read through an edge: remove DELETED from the effective_status "
            "filter and query deleted objects by their own id",
            "effective_status",
        )


# --- edits ------------------------------------------------------------------------------------------
def check_update(ctx: CallContext, node: Node, changes: dict[str, Any]) -> None:
    """Refuse edits the status machine forbids, with the documented codes; never mutates."""
    if node.type not in (*STATUS_OBJECT_TYPES, CREATIVE, MESSAGE_CAMPAIGN):
        return
    new_status = changes.get("status")
    if new_status is not None and new_status not in CONFIGURED_STATUSES:
        raise invalid_param(
            f"Param status must be one of {{{', '.join(CONFIGURED_STATUSES)}}} - got {new_status}", "status"
        )
    if node.type not in STATUS_OBJECT_TYPES:
        return
    other = sorted(k for k in changes if k not in ("name", "status"))
    state = _edit_state(ctx.store, node)
    if state == "DELETED":
        if other or (new_status is not None and new_status != "DELETED"):
            _raise_edit_error(DELETED_EDIT_ERRORS[node.type], "status" if new_status else other[0])
        return
    if state == "ARCHIVED":
        allowed = ("ARCHIVED", "DELETED", *(LIVE_CONFIGURED if ctx.config.archived_reactivation else ()))
        if other or (new_status is not None and new_status not in allowed):
            _raise_edit_error(ARCHIVED_EDIT_ERRORS[node.type], "status" if new_status else other[0])
        if new_status in LIVE_CONFIGURED and node.status != "ARCHIVED":  # reactivation: parent still archived
            _raise_edit_error(ARCHIVED_EDIT_ERRORS[node.type], "status")
    if new_status == "ARCHIVED" and node.status != "ARCHIVED":
        _check_archived_limit(ctx, node)
    if node.type == AD and new_status == "DELETED" and node.status != "DELETED":
        adset = ctx.store.parent(node)
        if adset is not None and _truthy(adset.get("is_dynamic_creative")):
            raise rule_error(
                100,
                SUBCODE_DYNAMIC_CREATIVE_DELETE,
                "Dynamic Creative Ad Deletion",
                "Currently deletion of Dynamic Creative Ad is not allowed. Please proceed by deleting parent "
                "Ad Set",
                "status",
            )


def _check_archived_limit(ctx: CallContext, node: Node) -> None:
    if archived_count(ctx, node.account_id, node.type) >= ctx.config.archived_limit:
        raise rule_error(
            100,
            SUBCODE_TOO_MANY_ARCHIVED,
            "Too Many Archived Objects",
            "This Ad Account has already too many archived adgroups. You need to delete some of them "
            "before being able to archive any more.",
            "status",
        )


def _edit_state(store: Store, node: Node) -> str:
    """DELETED / ARCHIVED when the object or an ancestor is; else LIVE (edits follow inheritance)."""
    chain = [node, *_ancestors(store, node)]
    if any(n.status == "DELETED" for n in chain):
        return "DELETED"
    if any(n.status == "ARCHIVED" for n in chain):
        return "ARCHIVED"
    return "LIVE"


def _raise_edit_error(spec: tuple[int, str, str], field_name: str) -> None:
    subcode, title, msg = spec
    raise rule_error(100, subcode, title, msg, field_name)


def after_create(ctx: CallContext, node: Node) -> None:
    """Start review for a new ACTIVE ad and keep the account's active-ad count current."""
    if node.type == AD and node.status == "ACTIVE":
        _start_review(ctx, node)
        _count_active_ad(ctx, node.account_id, +1)


def apply_update(ctx: CallContext, node: Node, changes: dict[str, Any]) -> None:
    """Apply checked ``changes``: counters, review windows, archive time; O(1) except a parent's delete."""
    old = node.status
    review_fields = AD_REVIEW_FIELDS if node.type == AD else ADSET_REVIEW_FIELDS if node.type == ADSET else ()
    retrigger = any(k in changes and changes[k] != node.data.get(k) for k in review_fields)
    node.data.update(changes)
    new = node.status
    if node.type not in STATUS_OBJECT_TYPES:
        return
    if old != new:
        if new == "ARCHIVED":
            node.data[_ARCHIVED_AT_KEY] = ctx.now
            _count_archived(ctx, node, counted=True)
        elif old == "ARCHIVED":
            _count_archived(ctx, node, counted=False)
        if new == "DELETED" and node.type in (CAMPAIGN, ADSET):
            for child_type in (ADSET, AD) if node.type == CAMPAIGN else (AD,):
                for child in ctx.store.children(node.id, child_type):
                    _count_archived(ctx, child, counted=False)  # deleted with its parent
    if node.type == AD:
        if (new == "ACTIVE" and old != "ACTIVE") or retrigger:
            _start_review(ctx, node)
        if (old == "ACTIVE") != (new == "ACTIVE"):
            _count_active_ad(ctx, node.account_id, +1 if new == "ACTIVE" else -1)
    elif node.type == ADSET and retrigger:
        _start_review(ctx, node)


def _start_review(ctx: CallContext, node: Node) -> None:
    if ctx.config.ad_review_s > 0:
        node.data[_REVIEW_KEY] = ctx.now + ctx.config.ad_review_s


def archived_count(ctx: CallContext, account_id: str | None, type_: str) -> int:
    """Archived objects of ``type_`` in the account (own status ARCHIVED, parent not deleted)."""
    if account_id is None:
        return 0
    return ctx.core.archived_counts.get((account_id, type_), 0)


def _count_archived(ctx: CallContext, node: Node, *, counted: bool) -> None:
    """Move ``node`` in or out of its account's archived count; idempotent through a marker."""
    if node.account_id is None or bool(node.data.get(_COUNTED_KEY)) == counted:
        return
    if counted:
        node.data[_COUNTED_KEY] = True
    else:
        node.data.pop(_COUNTED_KEY, None)
    key = (node.account_id, node.type)
    counts = ctx.core.archived_counts
    counts[key] = max(0, counts.get(key, 0) + (1 if counted else -1))


def _count_active_ad(ctx: CallContext, account_id: str | None, delta: int) -> None:
    """Keep the rate limiter's "number of active ads" current: it scales the ads-management quota."""
    if account_id is None:
        return
    counts = ctx.core.active_ad_counts
    counts[account_id] = max(0, counts.get(account_id, 0) + delta)
    ctx.core.rate_limiter.set_active_ads(account_id, counts[account_id])


# --- bulk delete ------------------------------------------------------------------------------------
@routes.add("DELETE", AD_ACCOUNT, "campaigns")
def bulk_delete_campaigns(ctx: CallContext, node: Node | None) -> Any:
    """S003 §Ad Account Campaigns → Deleting: ``delete_strategy`` / ``before_date`` / ``object_count``."""
    assert node is not None
    strategy = ctx.params.str("delete_strategy")
    if strategy is None:
        raise missing_param("delete_strategy")
    if strategy not in BULK_DELETE_STRATEGIES:
        raise invalid_param(
            f"Param delete_strategy must be one of {{{', '.join(BULK_DELETE_STRATEGIES)}}} - got {strategy}",
            "delete_strategy",
        )
    before: float | None = None
    if ctx.params.has("before_date"):
        before = parse_time(ctx.params.get("before_date"))
        if before is None:
            raise invalid_param("Param before_date must be a valid datetime", "before_date")
    elif strategy == "DELETE_ARCHIVED_BEFORE":
        raise missing_param("before_date")
    count = ctx.params.int("object_count", BULK_DELETE_MAX)
    assert count is not None
    if count < 1:
        raise invalid_param("Param object_count must be a positive integer", "object_count")
    count = min(count, BULK_DELETE_MAX)

    campaigns = [c for c in ctx.store.children(node.id, CAMPAIGN) if c.status != "DELETED"]
    if strategy == "DELETE_ARCHIVED_BEFORE":
        assert before is not None
        matching = [
            c
            for c in campaigns
            if c.status == "ARCHIVED" and float(c.data.get(_ARCHIVED_AT_KEY, c.created_at)) < before
        ]
    else:
        matching = [c for c in campaigns if before is None or c.created_at < before]
        if strategy == "DELETE_ANY":
            matching.reverse()  # newest first, like the campaigns edge
    chosen, left = matching[:count], matching[count:]
    for campaign in chosen:
        apply_update(ctx, campaign, {"status": "DELETED"})
        campaign.data["updated_time"] = iso_time(ctx.now)
    return {"objects_left_to_delete_count": len(left), "deleted_object_ids": [c.id for c in chosen]}


# --- helpers ----------------------------------------------------------------------------------------
_OFFSET_RE = re.compile(r"([+-])(\d{2}):?(\d{2})$")
_TZ_ABBREVIATIONS = {"UTC": 0, "GMT": 0, "PST": -8, "PDT": -7, "MST": -7, "MDT": -6, "CST": -6, "CDT": -5}


def parse_time(value: Any) -> float | None:
    """A Graph datetime as epoch seconds, or ``None`` (absent, ``0`` = "ongoing", or unparseable).

    Accepts UNIX timestamps and the seed formats ``2015-03-12 23:59:59-07:00``, ``2015-03-12 23:59:59 PDT``
    and ``2025-12-10T11:21:33-0800`` (S003 §Ad Account Adsets).
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) if value > 0 else None
    text = str(value).strip()
    if not text or text == "0":
        return None
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        return number if number > 0 else None
    offset_hours: float = 0.0
    parts = text.rsplit(" ", 1)
    if len(parts) == 2 and parts[1].upper() in _TZ_ABBREVIATIONS:
        text, offset_hours = parts[0], _TZ_ABBREVIATIONS[parts[1].upper()]
    elif text.endswith("Z"):
        text = text[:-1]
    else:
        match = _OFFSET_RE.search(text)
        if match:
            sign = -1 if match.group(1) == "-" else 1
            offset_hours = sign * (int(match.group(2)) + int(match.group(3)) / 60)
            text = text[: match.start()]
    try:
        parsed = dt.datetime.fromisoformat(text.replace(" ", "T"))
    except ValueError:
        return None
    return parsed.replace(tzinfo=dt.UTC).timestamp() - offset_hours * 3600


def iso_time(ts: float) -> str:
    """Graph's datetime rendering, e.g. ``2026-09-21T12:26:40+0000``."""
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() in ("true", "1")


# --- Advantage+ (computed in advantage.py; kept here so reads have one entry point) ----------------
def advantage_state_info(store: Store, campaign: Node) -> dict[str, str] | None:
    """The campaign field ``advantage_state_info`` (S003 §Advantage+ Campaign Experience)."""
    if campaign.type != CAMPAIGN:
        return None
    return compute_advantage_state_info(store, campaign)


def smart_promotion_type(store: Store, campaign: Node) -> str | None:
    """The campaign field ``smart_promotion_type``: ``GUIDED_CREATION`` for an Advantage+ state."""
    if campaign.type != CAMPAIGN:
        return None
    return effective_smart_promotion_type(store, campaign)
