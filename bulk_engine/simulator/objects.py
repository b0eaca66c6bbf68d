"""Ad objects over HTTP: create on the ad-account edges, read with ``fields``, update, delete, list edges.

S003 §Basic Ad Creation / §Ad Account * reference: ``POST /act_{id}/{campaigns,adsets,adcreatives,ads,
advideos}`` returns ``{"id": …}`` (``adimages`` answers ``{"images": …}``; images and videos are per-account
libraries that creatives must draw from); ``POST /<id>`` updates and returns ``{"success": true}``; ``DELETE /<id>``
deletes; reads return only ``id`` unless ``fields`` asks for more; edges return ``{"data", "paging"}``
with cursors and hide ARCHIVED (unless filtered for) and DELETED objects (S003 §Manage Your Ad Object's
Status). Rules live in ``validation/`` and the status machine in ``status.py``, rendering in ``render.py`` and
edge listings in ``listing.py``, image and video uploads in ``assets.py`` and ``videos.py``; this module only
wires them to the routes.

An update parameter that belongs to another feature (``migrate_to_advantage_plus``: copies.py) is handed to
the hook that feature registered with :func:`on_update_flag`, so this module never imports its handlers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from bulk_engine.protocol.images import md5_hex

from . import status, validation
from .assets import add_image
from .context import CallContext, check_account_access
from .errors import invalid_param
from .listing import list_edge
from .render import KNOWN_FIELDS, render
from .routing import RouteTable
from .store import AD, AD_ACCOUNT, ADSET, CAMPAIGN, CREATIVE, IMAGE, PAGE, VIDEO, Node

__all__ = ["KNOWN_FIELDS", "on_update_flag", "routes"]

routes = RouteTable()


class UpdateFlagHook(Protocol):
    """What a feature does when an update sets its boolean parameter; ``dry_run`` under ``validate_only``."""

    def __call__(self, ctx: CallContext, node: Node, *, dry_run: bool) -> None: ...


_UPDATE_FLAGS: dict[str, UpdateFlagHook] = {}


def on_update_flag(param: str) -> Callable[[UpdateFlagHook], UpdateFlagHook]:
    """Register ``hook`` for updates (``POST /<id>``) where ``param`` is true: it runs after the update was
    validated and before anything changes (a decorator; copies.py registers ``migrate_to_advantage_plus``)."""

    def register(hook: UpdateFlagHook) -> UpdateFlagHook:
        _UPDATE_FLAGS[param] = hook
        return hook

    return register


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
    created.data["created_time"] = status.iso_time(ctx.now)
    created.data["updated_time"] = created.data["created_time"]
    status.after_create(ctx, created)
    return {"id": created.id}


for _type, _edge_name in ((CAMPAIGN, "campaigns"), (ADSET, "adsets"), (CREATIVE, "adcreatives"), (AD, "ads")):
    routes.add("POST", AD_ACCOUNT, _edge_name)((lambda t: lambda ctx, node: _create(ctx, node, t))(_type))


# --- updates and deletes --------------------------------------------------------------------------
def _update(ctx: CallContext, node: Node | None) -> Any:
    assert node is not None
    changes = validation.validate_update(ctx, node)
    status.check_update(ctx, node, changes)
    for param, hook in _UPDATE_FLAGS.items():  # S003 §Migrate Advantage+ …: in place (copies.py)
        if ctx.params.bool(param):
            hook(ctx, node, dry_run=_validate_only(ctx))
    if _validate_only(ctx):
        return {"success": True}
    switched = validation.budget_switch(ctx, node, changes)  # ad sets now sharing the campaign budget
    status.apply_update(ctx, node, changes)
    node.data["updated_time"] = status.iso_time(ctx.now)
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
