"""The status machine of ad objects (S003 §Manage Your Ad Object's Status, §Object Archive and Delete Status).

- Configured statuses ACTIVE / PAUSED / ARCHIVED / DELETED; creation accepts only ACTIVE and PAUSED.
- ARCHIVED: "only 2 fields you can change: name and status", and status only to DELETED.
  (§9.3 #2: the campaign-management guide says an archived campaign "can be easily restored by changing
  its status back to ACTIVE"; the status reference forbids it. We follow the reference — the stricter
  rule — and answer the object's documented archived error.)
- DELETED: final; only ``name`` may change.
- Effective status is inherited downwards: a PAUSED campaign makes its ACTIVE ad sets/ads
  CAMPAIGN_PAUSED; a PAUSED ad set makes its ACTIVE ads ADSET_PAUSED; ARCHIVED/DELETED parents pass their
  status down. An ACTIVE ad is PENDING_REVIEW for ``ad_review_s`` after creation or activation.
- Edges hide ARCHIVED unless the ``effective_status`` filter asks for it and never list DELETED.
- Archived objects are capped per account (default 100,000; §9.3 #1: one section says 5,000 — the cap is
  configurable) → code 100 / subcode 1487990.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import GraphAPIError, rule_error
from .store import AD, ADSET, CAMPAIGN, CREATIVE, Node, Store

if TYPE_CHECKING:
    from .graph import CallContext

CONFIGURED_STATUSES = ("ACTIVE", "PAUSED", "ARCHIVED", "DELETED")
CREATE_STATUSES = ("ACTIVE", "PAUSED")
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
# Edit refusals on archived/deleted objects (S003 §Handling Errors → Error Codes).
ARCHIVED_EDIT_ERRORS = {
    AD: (
        100,
        1885088,
        "Ad Archived",
        "You can only edit the name field of an archived ad. You can duplicate "
        "this ad, which will create a new ad with the same settings.",
    ),
    ADSET: (
        100,
        1885088,
        "Ad Set Archived",
        "Only the name and status of an archived ad set can be changed.",
    ),
    CAMPAIGN: (
        100,
        1885088,
        "Campaign Archived",
        "Only the name and status of an archived campaign can be changed.",
    ),
}
DELETED_EDIT_ERRORS = {
    AD: (
        100,
        1885088,
        "Ad Deleted",
        "You can only edit the name field of a deleted ad. You can duplicate "
        "this ad, which will create a new ad with the same settings.",
    ),
    ADSET: (
        100,
        1487056,
        "Ad Set Deleted",
        "Your ad set has been deleted, so you can only edit its name. You can "
        "duplicate this ad set, which will create a new ad set with the same settings.",
    ),
    CAMPAIGN: (
        100,
        1487566,
        "Campaign Deleted",
        "Your campaign has been deleted, so you can only edit its name. "
        "You can duplicate this campaign, which will create a new campaign with the same settings.",
    ),
}


def effective_status(store: Store, node: Node, now: float) -> str:
    own = node.status
    if own in ("ARCHIVED", "DELETED"):
        return own
    parents = []
    current = store.parent(node)
    while current is not None:
        parents.append(current)
        current = store.parent(current)
    for parent in reversed(parents):  # campaign first
        if parent.status in ("ARCHIVED", "DELETED"):
            return parent.status
    if own == "PAUSED":
        return "PAUSED"
    for parent in reversed(parents):
        if parent.status == "PAUSED":
            return "CAMPAIGN_PAUSED" if parent.type == CAMPAIGN else "ADSET_PAUSED"
    if node.type == AD and now < float(node.data.get("_review_until", 0.0)):
        return "PENDING_REVIEW"
    return own


def visible_in_edge(store: Store, node: Node, wanted: set[str] | None, now: float) -> bool:
    """S003 §Manage Your Ad Object's Status: live objects by default; ARCHIVED only when asked; DELETED never."""
    eff = effective_status(store, node, now)
    if node.status == "DELETED" or eff == "DELETED":
        return False
    if wanted is None:
        return eff != "ARCHIVED"
    return eff in wanted


def _archived_count(store: Store, account_id: str | None, type_: str) -> int:
    if account_id is None:
        return 0
    return sum(1 for n in store.children(account_id, type_) if n.status == "ARCHIVED")


def check_update(ctx: CallContext, node: Node, changes: dict[str, Any]) -> None:
    """Refuse edits the status machine forbids, with the documented codes."""
    if node.type not in (CAMPAIGN, ADSET, AD, CREATIVE):
        return
    new_status = changes.get("status")
    if new_status is not None and new_status not in CONFIGURED_STATUSES:
        raise GraphAPIError(
            code=100,
            message=f"(#100) Param status must be one of {{{', '.join(CONFIGURED_STATUSES)}}} - got {new_status}",
            blame_field_specs=[["status"]],
        )
    other = {k for k in changes if k not in ("name", "status")}
    if node.status == "DELETED":
        if node.type in DELETED_EDIT_ERRORS and (
            other or (new_status is not None and new_status != "DELETED")
        ):
            code, sub, title, msg = DELETED_EDIT_ERRORS[node.type]
            raise rule_error(code, sub, title, msg, "status" if new_status else sorted(other)[0])
        return
    if node.status == "ARCHIVED" and node.type in ARCHIVED_EDIT_ERRORS:
        if other or (new_status is not None and new_status not in ("ARCHIVED", "DELETED")):
            code, sub, title, msg = ARCHIVED_EDIT_ERRORS[node.type]
            raise rule_error(code, sub, title, msg, "status" if new_status else sorted(other)[0])
    if new_status == "ARCHIVED" and node.status != "ARCHIVED" and node.type in (CAMPAIGN, ADSET, AD):
        limit = ctx.config.archived_limit
        if _archived_count(ctx.store, node.account_id, node.type) >= limit:
            raise rule_error(
                100,
                1487990,
                "Too Many Archived Objects",
                "There are too many archived adgroups. You need to delete some of them before being able to "
                "archive any more.",
                "status",
            )


def after_create(ctx: CallContext, node: Node) -> None:
    if node.type == AD and node.status == "ACTIVE" and ctx.config.ad_review_s > 0:
        node.data["_review_until"] = ctx.now + ctx.config.ad_review_s
    if node.type == AD and node.status == "ACTIVE":
        _count_active_ad(ctx, node.account_id, +1)


def apply_update(ctx: CallContext, node: Node, changes: dict[str, Any]) -> None:
    old = node.status
    node.data.update(changes)
    new = node.status
    if node.type == AD and new == "ACTIVE" and old != "ACTIVE" and ctx.config.ad_review_s > 0:
        node.data["_review_until"] = ctx.now + ctx.config.ad_review_s
    if node.type == AD and (old == "ACTIVE") != (new == "ACTIVE"):
        _count_active_ad(ctx, node.account_id, +1 if new == "ACTIVE" else -1)


def _count_active_ad(ctx: CallContext, account_id: str | None, delta: int) -> None:
    """Keep the rate limiter's "number of active ads" current: it scales the ads-management quota."""
    if account_id is None:
        return
    counts = ctx.core.active_ad_counts
    counts[account_id] = max(0, counts.get(account_id, 0) + delta)
    ctx.core.rate_limiter.set_active_ads(account_id, counts[account_id])


def advantage_state_info(store: Store, campaign: Node) -> dict[str, str] | None:
    """Filled in by the Advantage+ module (copies.py); kept here so reads have one entry point."""
    from .copies import compute_advantage_state_info

    if campaign.type != CAMPAIGN:
        return None
    return compute_advantage_state_info(store, campaign)
