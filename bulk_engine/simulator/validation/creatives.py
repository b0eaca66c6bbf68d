"""Creative creates: story specs, media of the account, Instagram ids, calls to action, asset feeds, welcome
messages (S003 §Ad Account Ad Creatives; seeds 000–002 Step 3)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from bulk_engine.protocol.catalog import (
    ASSET_FEED_LIMITS,
    ASSET_TEXT_LIMITS,
    CTA_ALLOWED_APPS,
    CTA_APPS,
    ICEBREAKER_RESPONSE_MAX,
    ICEBREAKER_TITLE_MAX,
    STORY_DATA_KEYS,
    WELCOME_TEXT_MAX,
)
from bulk_engine.protocol.spec_fields import cta_app as _cta_app
from bulk_engine.protocol.spec_fields import welcome_messages as _welcome_messages

from ..store import CREATIVE, VIDEO, Node
from .core import copy_params, creative_ctas, fail

if TYPE_CHECKING:
    from ..context import CallContext


# --- creatives ------------------------------------------------------------------------------------
def validate_creative(ctx: CallContext, account: Node) -> dict[str, Any]:
    data = copy_params(
        ctx,
        (
            "name",
            "object_story_id",
            "object_id",
            "instagram_user_id",
            "instagram_actor_id",
            "instagram_story_id",
            "image_hash",
            "image_url",
            "url_tags",
            "authorization_category",
            "body",
            "title",
            "link_url",
            "object_url",
            "source_instagram_media_id",
            "privacy_url",
        ),
        (
            "object_story_spec",
            "asset_feed_spec",
            "degrees_of_freedom_spec",
            "call_to_action",
            "adlabels",
            "contextual_multi_ads",
            "creative_sourcing_spec",
            "product_data",
        ),
    )
    pwm = ctx.params.get("page_welcome_message")
    if pwm is not None:
        data["page_welcome_message"] = pwm
    if not any(k in data for k in ("object_story_spec", "object_story_id", "asset_feed_spec", "object_id")):
        raise fail(
            "creative.spec.required",
            "The parameter object_story_spec is required (or object_story_id, object_id or asset_feed_spec)",
            "object_story_spec",
        )
    spec = data.get("object_story_spec")
    if spec is not None:
        _check_story_spec(spec, "asset_feed_spec" in data)
    story = data.get("object_story_id")
    if story is not None and not re.fullmatch(r"\d+_\d+", story):
        raise fail(
            "creative.story_id",
            f"Param object_story_id must look like <PAGE_ID>_<POST_ID> - got {story}",
            "object_story_id",
        )
    _check_instagram_ids(ctx, data)
    _check_ctas(data)
    feed = data.get("asset_feed_spec")
    if feed is not None:
        _check_asset_feed(feed)
    for path, value in _welcome_messages(data):
        _check_welcome_message(value, tuple(str(part) for part in path))
    if ctx.config.check_creative_media:
        _check_media(ctx, account, data)
    data.setdefault("name", f"Creative {ctx.store.new_id()[-6:]}")
    data["status"] = "ACTIVE"
    return data


def image_node_id(account_id: str, image_hash: str) -> str:
    """Images are account-scoped and keyed by their hash (``<account number>:<hash>``, as Graph's AdImage id)."""
    return f"{account_id.removeprefix('act_')}:{image_hash}"


def _media_refs(value: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, str, tuple[str, ...]]]:
    """Every ``("image", hash, path)`` / ``("video", id, path)`` a creative references, at any depth."""
    if isinstance(value, dict):
        for key, item in value.items():
            here = (*path, str(key))
            if key == "image_hash" and isinstance(item, str) and item:
                yield "image", item, here
            elif key == "video_id" and isinstance(item, str | int) and str(item):
                yield "video", str(item), here
            elif key == "images" and path == ("asset_feed_spec",) and isinstance(item, list):
                for image in item:
                    if isinstance(image, dict) and isinstance(image.get("hash"), str):
                        yield "image", image["hash"], (*here, "hash")
            else:
                yield from _media_refs(item, here)
    elif isinstance(value, list):
        for item in value:
            yield from _media_refs(item, path)


def _check_media(ctx: CallContext, account: Node, data: dict[str, Any]) -> None:
    """Images and videos are the ad account's: a hash must be in its image library (S003 §Asset Feed Spec:
    "provide images which are in the ad account's image library"), a video in its video library (S003 §Video
    and Carousel Ads → Limitations: "The video_id must be associated with the ad account")."""
    for kind, ref, path in _media_refs(data):
        if kind == "image":
            image = ctx.store.get(image_node_id(account.id, ref))
            if image is None or image.get("status") == "DELETED":
                raise fail(
                    "creative.image_hash.unknown",
                    f"Image with hash {ref} is not in the image library of ad account {account.id}",
                    path,
                )
        else:
            video = ctx.store.get(ref)
            if video is None or video.type != VIDEO or video.account_id != account.id:
                raise fail(
                    "creative.video.unknown",
                    f"Video {ref} is not associated with ad account {account.id}",
                    path,
                )


def _check_story_spec(spec: Any, has_feed: bool) -> None:
    if not isinstance(spec, dict):
        raise fail("creative.story_spec", "Param object_story_spec must be an object", "object_story_spec")
    if spec.get("page_id") in (None, ""):
        raise fail(
            "creative.story_spec", "object_story_spec requires page_id", ("object_story_spec", "page_id")
        )
    if not has_feed and not any(isinstance(spec.get(k), dict) for k in STORY_DATA_KEYS):
        raise fail(
            "creative.story_spec",
            "object_story_spec must specify link_data, photo_data, video_data, text_data or template_data",
            "object_story_spec",
        )


def _instagram_ids(ctx: CallContext) -> set[str]:
    known = {str(i) for i in ctx.config.instagram_actor_ids}
    for page_id in ctx.config.page_ids:
        page = ctx.store.get(page_id)
        if page is not None and page.get("instagram_business_account"):
            known.add(str(page.get("instagram_business_account")))
    return known


def _check_instagram_ids(ctx: CallContext, data: dict[str, Any]) -> None:
    raw_spec = data.get("object_story_spec")
    spec: dict[str, Any] = raw_spec if isinstance(raw_spec, dict) else {}
    places: tuple[tuple[tuple[str, ...], dict[str, Any]], ...] = (((), data), (("object_story_spec",), spec))
    pairs = (("instagram_user_id", "instagram_actor_id"), ("instagram_story_id", "source_instagram_media_id"))
    for where, holder in places:
        for one, other in pairs:
            if holder.get(one) not in (None, "") and holder.get(other) not in (None, ""):
                raise fail(
                    "creative.instagram_ids",
                    f"You can not pass both {one} and {other} in creative spec",
                    (*where, other),
                )
    known: set[str] | None = None
    for where, holder in places:
        for key in ("instagram_user_id", "instagram_actor_id"):
            value = holder.get(key)
            if value in (None, ""):
                continue
            known = known if known is not None else _instagram_ids(ctx)
            if str(value) not in known:
                raise fail(
                    "creative.instagram_access",
                    "Ad account has no access to this Instagram account. Please use authorized Instagram account "
                    "or assign ad account to this Instagram account first.",
                    (*where, key),
                )


def _check_ctas(data: dict[str, Any]) -> None:
    for path, cta in creative_ctas(data):
        kind = str(cta.get("type"))
        value = cta.get("value")
        app = value.get("app_destination") if isinstance(value, dict) else None
        if app and kind in CTA_ALLOWED_APPS and app not in CTA_ALLOWED_APPS[kind]:
            raise fail(
                "creative.cta_destination",
                f"call_to_action type {kind} can't open app_destination {app}",
                (*path, "value", "app_destination"),
            )


def _check_asset_feed(feed: Any) -> None:
    if not isinstance(feed, dict):
        raise fail("creative.asset_feed.limits", "Param asset_feed_spec must be an object", "asset_feed_spec")
    if feed.get("optimization_type") == "DOF_MESSAGING_DESTINATION":
        ctas = feed.get("call_to_actions")
        if not isinstance(ctas, list) or not ctas:
            raise fail(
                "creative.dof_destinations",
                "asset_feed_spec.call_to_actions is required when optimization_type is DOF_MESSAGING_DESTINATION",
                ("asset_feed_spec", "call_to_actions"),
            )
        for cta in ctas:
            kind = str(cta.get("type")) if isinstance(cta, dict) else ""
            app = _cta_app(cta) if isinstance(cta, dict) else None
            if kind not in CTA_APPS or app != CTA_APPS[kind]:
                raise fail(
                    "creative.dof_destinations",
                    "Each call_to_actions item must be MESSAGE_PAGE/MESSENGER, WHATSAPP_MESSAGE/WHATSAPP or "
                    f"INSTAGRAM_MESSAGE/INSTAGRAM_DIRECT - got {kind}/{app}",
                    ("asset_feed_spec", "call_to_actions"),
                )
    for key, limit in ASSET_FEED_LIMITS.items():
        items = feed.get(key)
        if isinstance(items, list) and len(items) > limit:
            raise fail(
                "creative.asset_feed.limits",
                f"At most {limit} {key} are allowed in an asset feed",
                ("asset_feed_spec", key),
            )
    formats = feed.get("ad_formats")
    if isinstance(formats, list) and len(formats) > 1:
        raise fail(
            "creative.asset_feed.limits",
            "Only one ad_format is allowed per asset feed",
            ("asset_feed_spec", "ad_formats"),
        )
    for key, limit in ASSET_TEXT_LIMITS.items():
        for item in feed.get(key) or []:
            text = item.get("text") if isinstance(item, dict) else None
            if isinstance(text, str) and len(text) > limit:
                raise fail(
                    "creative.asset_feed.limits",
                    f"asset_feed_spec {key} text must be at most {limit} characters",
                    ("asset_feed_spec", key),
                )
    for key in ("images", "videos", "bodies", "titles", "descriptions", "link_urls"):
        items = feed.get(key)
        if not isinstance(items, list):
            continue
        seen: set[str] = set()
        for item in items:
            marker = json.dumps(item, sort_keys=True)
            if marker in seen:
                raise fail(
                    "creative.asset_feed.unique",
                    "All ad asset values should be unique. Please check your values.",
                    ("asset_feed_spec", key),
                )
            seen.add(marker)


def _check_welcome_message(value: Any, path: tuple[str, ...]) -> None:
    """S000 Limitations: ice-breaker title ≤ 80, response ≤ 300, message text ≤ 300 characters.

    The value may be a JSON object/array, the same as a JSON-encoded string (S001), or plain greeting text.
    Strings that look like JSON but don't parse (S001's single-quoted quick-reply sample) are left alone.
    """
    if isinstance(value, str):
        text = value.strip()
        if text[:1] in ("{", "["):
            try:
                value = json.loads(text)
            except ValueError:
                return
        else:
            if len(value) > WELCOME_TEXT_MAX:
                raise fail(
                    "creative.welcome.text",
                    f"Message text must not be more than {WELCOME_TEXT_MAX} characters",
                    path,
                )
            return
    for node in _walk(value):
        message = node.get("message")
        if isinstance(message, dict) and isinstance(message.get("text"), str):
            if len(message["text"]) > WELCOME_TEXT_MAX:
                raise fail(
                    "creative.welcome.text",
                    f"Message text must not be more than {WELCOME_TEXT_MAX} characters",
                    path,
                )
        for breaker in node.get("ice_breakers") or []:
            if not isinstance(breaker, dict):
                continue
            if len(str(breaker.get("title") or "")) > ICEBREAKER_TITLE_MAX:
                raise fail(
                    "creative.icebreaker.title",
                    f"Icebreaker titles must not be more than {ICEBREAKER_TITLE_MAX} characters",
                    path,
                )
            if len(str(breaker.get("response") or "")) > ICEBREAKER_RESPONSE_MAX:
                raise fail(
                    "creative.icebreaker.response",
                    f"Icebreaker responses must not be more than {ICEBREAKER_RESPONSE_MAX} characters",
                    path,
                )


def _walk(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict):
        yield value
        for child in value.values():
            yield from _walk(child)
    elif isinstance(value, list):
        for child in value:
            yield from _walk(child)


def existing_creative_for_story(ctx: CallContext, account: Node, data: dict[str, Any]) -> Node | None:
    """S003 §Ad Account Ad Creatives: a creative reusing an ``object_story_id`` returns the existing one.

    O(1): the index maps each story to the data dict of the creative created for it; ``store.add`` keeps
    that dict, so once the creative is stored its ``id`` is in it.
    """
    story = data.get("object_story_id")
    if not story:
        return None
    per_store = ctx.store.story_index
    index = per_store.get(account.id)
    if index is None:
        index = per_store[account.id] = {}
        for creative in ctx.store.children(account.id, CREATIVE):
            if creative.get("object_story_id"):
                index.setdefault(str(creative.get("object_story_id")), creative.data)
    known = index.get(str(story))
    if known is not None:
        node = ctx.store.get(str(known.get("id", "")))
        if node is not None and node.data is known and node.status != "DELETED":
            return node
    index[str(story)] = data
    return None
