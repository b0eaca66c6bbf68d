"""Creative rules: the story spec, Instagram ids, calls to action, asset feeds, welcome messages and
ice-breakers (S003 §Ad Account Ad Creatives; §Asset Feed Spec; S000 Step 3)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

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
from bulk_engine.protocol.spec_fields import iter_ctas as _ctas
from bulk_engine.protocol.spec_fields import welcome_messages as _welcome_messages

from ..base import Issue
from ..reading import parse_json_text
from .core import Path, issue


def creative_rules(params: Mapping[str, Any]) -> Iterator[Issue]:
    """Rules of one creative (its Graph params)."""
    if not any(
        params.get(k) is not None
        for k in ("object_story_spec", "object_story_id", "asset_feed_spec", "object_id")
    ):
        yield issue(
            "creative.spec.required",
            ("object_story_spec",),
            "a creative needs object_story_spec, object_story_id, object_id or asset_feed_spec",
            has_value=False,
        )
    spec = params.get("object_story_spec")
    if spec is not None:
        if not isinstance(spec, Mapping):
            yield issue("creative.story_spec", ("object_story_spec",), "must be an object", spec)
        else:
            if spec.get("page_id") in (None, ""):
                yield issue(
                    "creative.story_spec",
                    ("object_story_spec", "page_id"),
                    "object_story_spec requires page_id",
                    has_value=False,
                )
            if params.get("asset_feed_spec") is None and not any(
                isinstance(spec.get(k), Mapping) for k in STORY_DATA_KEYS
            ):
                yield issue(
                    "creative.story_spec",
                    ("object_story_spec",),
                    "object_story_spec must specify link_data, photo_data, video_data, text_data or template_data",
                    has_value=False,
                )
    story = params.get("object_story_id")
    if story is not None and not re.fullmatch(r"\d+_\d+", str(story)):
        yield issue("creative.story_id", ("object_story_id",), "must look like <PAGE_ID>_<POST_ID>", story)
    yield from _instagram_ids(params)
    for path, cta in _ctas(params):
        kind = str(cta.get("type"))
        value = cta.get("value")
        app = value.get("app_destination") if isinstance(value, Mapping) else None
        if app is not None and not isinstance(app, str):
            yield issue(
                "creative.cta_destination",
                (*path, "value", "app_destination"),
                "app_destination must be text: one app such as MESSENGER, WHATSAPP or INSTAGRAM_DIRECT",
                app,
            )
        elif app and kind in CTA_ALLOWED_APPS and app not in CTA_ALLOWED_APPS[kind]:
            yield issue(
                "creative.cta_destination",
                (*path, "value", "app_destination"),
                f"call_to_action type {kind} can't open app_destination {app}",
                app,
            )
    feed = params.get("asset_feed_spec")
    if feed is not None:
        yield from _asset_feed(feed)
    for path, value in _welcome_messages(params):
        yield from _welcome_message(value, path)


def _instagram_ids(params: Mapping[str, Any]) -> Iterator[Issue]:
    raw_spec = params.get("object_story_spec")
    spec: Mapping[str, Any] = raw_spec if isinstance(raw_spec, Mapping) else {}
    places: tuple[tuple[Path, Mapping[str, Any]], ...] = (((), params), (("object_story_spec",), spec))
    for where, holder in places:
        for one, other in (
            ("instagram_user_id", "instagram_actor_id"),
            ("instagram_story_id", "source_instagram_media_id"),
        ):
            if holder.get(one) not in (None, "") and holder.get(other) not in (None, ""):
                yield issue(
                    "creative.instagram_ids",
                    (*where, other),
                    f"you can not pass both {one} and {other}",
                    holder.get(other),
                )


def _asset_feed(feed: Any) -> Iterator[Issue]:
    if not isinstance(feed, Mapping):
        yield issue("creative.asset_feed.limits", ("asset_feed_spec",), "must be an object", feed)
        return
    if feed.get("optimization_type") == "DOF_MESSAGING_DESTINATION":
        ctas = feed.get("call_to_actions")
        if not isinstance(ctas, list) or not ctas:
            yield issue(
                "creative.dof_destinations",
                ("asset_feed_spec", "call_to_actions"),
                "call_to_actions is required when optimization_type is DOF_MESSAGING_DESTINATION",
                ctas,
            )
        else:
            for i, cta in enumerate(ctas):
                kind = str(cta.get("type")) if isinstance(cta, Mapping) else ""
                app = _cta_app(cta) if isinstance(cta, Mapping) else None
                if kind not in CTA_APPS or app != CTA_APPS[kind]:
                    yield issue(
                        "creative.dof_destinations",
                        ("asset_feed_spec", "call_to_actions", i),
                        "each item must be MESSAGE_PAGE/MESSENGER, WHATSAPP_MESSAGE/WHATSAPP or "
                        "INSTAGRAM_MESSAGE/INSTAGRAM_DIRECT",
                        cta,
                    )
    for key, limit in ASSET_FEED_LIMITS.items():
        items = feed.get(key)
        if isinstance(items, list) and len(items) > limit:
            yield issue(
                "creative.asset_feed.limits", ("asset_feed_spec", key), f"at most {limit} {key}", len(items)
            )
    formats = feed.get("ad_formats")
    if isinstance(formats, list) and len(formats) > 1:
        yield issue(
            "creative.asset_feed.limits", ("asset_feed_spec", "ad_formats"), "only one ad_format", formats
        )
    for key, limit in ASSET_TEXT_LIMITS.items():
        texts = feed.get(key)
        for i, item in enumerate(texts if isinstance(texts, list) else ()):
            text = item.get("text") if isinstance(item, Mapping) else None
            if isinstance(text, str) and len(text) > limit:
                yield issue(
                    "creative.asset_feed.limits",
                    ("asset_feed_spec", key, i, "text"),
                    f"at most {limit} characters",
                    text,
                )
    for key in ("images", "videos", "bodies", "titles", "descriptions", "link_urls"):
        items = feed.get(key)
        if not isinstance(items, list):
            continue
        seen: set[str] = set()
        for i, item in enumerate(items):
            marker = json.dumps(item, sort_keys=True, default=str)
            if marker in seen:
                yield issue(
                    "creative.asset_feed.unique",
                    ("asset_feed_spec", key, i),
                    "all ad asset values should be unique",
                    item,
                )
            seen.add(marker)


def _welcome_message(value: Any, path: Path) -> Iterator[Issue]:
    """Ice-breaker title ≤ 80, response ≤ 300, message text ≤ 300 (S000 Limitations); JSON strings too (S001)."""
    if isinstance(value, str):
        text = value.strip()
        if text[:1] in ("{", "["):
            try:
                value = parse_json_text(text)
            except ValueError:
                return
        else:
            if len(value) > WELCOME_TEXT_MAX:
                yield issue(
                    "creative.welcome.text",
                    path,
                    f"message text must be at most {WELCOME_TEXT_MAX} characters",
                    value,
                )
            return
    for node_path, node in _walk(value, path):
        message = node.get("message")
        if isinstance(message, Mapping) and isinstance(message.get("text"), str):
            if len(message["text"]) > WELCOME_TEXT_MAX:
                yield issue(
                    "creative.welcome.text",
                    (*node_path, "message", "text"),
                    f"message text must be at most {WELCOME_TEXT_MAX} characters",
                    message["text"],
                )
        breakers = node.get("ice_breakers")
        for i, breaker in enumerate(breakers if isinstance(breakers, list) else ()):
            if not isinstance(breaker, Mapping):
                continue
            where = (*node_path, "ice_breakers", i)
            title = str(breaker.get("title") or "")
            if len(title) > ICEBREAKER_TITLE_MAX:
                yield issue(
                    "creative.icebreaker.title",
                    (*where, "title"),
                    f"ice-breaker titles must be at most {ICEBREAKER_TITLE_MAX} characters",
                    title,
                )
            response = str(breaker.get("response") or "")
            if len(response) > ICEBREAKER_RESPONSE_MAX:
                yield issue(
                    "creative.icebreaker.response",
                    (*where, "response"),
                    f"ice-breaker responses must be at most {ICEBREAKER_RESPONSE_MAX} characters",
                    response,
                )


def _walk(value: Any, path: Path) -> Iterator[tuple[Path, Mapping[str, Any]]]:
    if isinstance(value, Mapping):
        yield path, value
        for key, child in value.items():
            yield from _walk(child, (*path, str(key)))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            yield from _walk(child, (*path, i))
