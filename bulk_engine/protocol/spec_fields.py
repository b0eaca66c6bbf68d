"""Reading ad-object specs the way the Graph API does: datetimes, Pages, calls to action, greetings, links.

Pure helpers shared by the simulator (which answers with them) and the operations layer (which checks job
files with them before any call). Sources: S003 §Ad Campaign / Ad Set reference (datetime formats),
S000-S002 (call_to_action, page_welcome_message placements, messaging Pages), S003 §Ad Creative.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Iterator, Mapping
from typing import Any

from bulk_engine.errors import BulkEngineError

from .catalog import CTA_APPS, STORY_DATA_KEYS

SpecPath = tuple[str | int, ...]

TZ_ABBREVIATIONS = {
    "UTC": 0,
    "GMT": 0,
    "PST": -8,
    "PDT": -7,
    "MST": -7,
    "MDT": -6,
    "CST": -6,
    "CDT": -5,
    "EST": -5,
    "EDT": -4,
}
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


class BadTime(BulkEngineError, ValueError):
    """A datetime parameter Graph would refuse."""


def parse_time(value: Any) -> float | None:
    """A Graph datetime (``2015-03-12 23:59:59-07:00``, ``… PDT``, ISO, UNIX) → epoch; ``0``/empty → None."""
    if value is None:
        return None
    text = str(value).strip()
    if text in ("", "0"):
        return None
    if _NUMBER.match(text):
        return float(text)
    zone: _dt.tzinfo = _dt.UTC
    head, _, abbreviation = text.rpartition(" ")
    if head and abbreviation.upper() in TZ_ABBREVIATIONS:
        text = head
        zone = _dt.timezone(_dt.timedelta(hours=TZ_ABBREVIATIONS[abbreviation.upper()]))
    if re.search(r"[+-]\d{4}$", text):  # ISO offsets without a colon: 2025-12-10T11:21:33-0800
        text = text[:-2] + ":" + text[-2:]
    try:
        parsed = _dt.datetime.fromisoformat(text)
    except ValueError:
        raise BadTime(text) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    return parsed.timestamp()


def promoted_page(promoted: Any) -> str | None:
    if isinstance(promoted, Mapping) and promoted.get("page_id") not in (None, ""):
        return str(promoted["page_id"])
    return None


def iter_ctas(params: Mapping[str, Any]) -> Iterator[tuple[SpecPath, Mapping[str, Any]]]:
    """Every call_to_action outside the asset feed, with its path."""
    cta = params.get("call_to_action")
    if isinstance(cta, Mapping):
        yield ("call_to_action",), cta
    spec = params.get("object_story_spec")
    if not isinstance(spec, Mapping):
        return
    for key in STORY_DATA_KEYS:
        block = spec.get(key)
        if not isinstance(block, Mapping):
            continue
        if isinstance(block.get("call_to_action"), Mapping):
            yield ("object_story_spec", key, "call_to_action"), block["call_to_action"]
        children = block.get("child_attachments")
        for i, child in enumerate(children if isinstance(children, list) else ()):
            if isinstance(child, Mapping) and isinstance(child.get("call_to_action"), Mapping):
                yield (
                    ("object_story_spec", key, "child_attachments", i, "call_to_action"),
                    child["call_to_action"],
                )


def cta_app(cta: Mapping[str, Any]) -> str | None:
    value = cta.get("value")
    app = value.get("app_destination") if isinstance(value, Mapping) else None
    return str(app) if app else CTA_APPS.get(str(cta.get("type")))


def welcome_messages(params: Mapping[str, Any]) -> Iterator[tuple[SpecPath, Any]]:
    if params.get("page_welcome_message") is not None:
        yield ("page_welcome_message",), params["page_welcome_message"]
    spec = params.get("object_story_spec")
    if not isinstance(spec, Mapping):
        return
    if spec.get("page_welcome_message") is not None:
        yield ("object_story_spec", "page_welcome_message"), spec["page_welcome_message"]
    for key in STORY_DATA_KEYS:
        block = spec.get(key)
        if isinstance(block, Mapping) and block.get("page_welcome_message") is not None:
            yield ("object_story_spec", key, "page_welcome_message"), block["page_welcome_message"]


def creative_page(creative: Mapping[str, Any]) -> str | None:
    spec = creative.get("object_story_spec")
    if isinstance(spec, Mapping) and spec.get("page_id") not in (None, ""):
        return str(spec["page_id"])
    story = creative.get("object_story_id")
    if story:
        return str(story).split("_", 1)[0]
    return None


def creative_has_link(creative: Mapping[str, Any]) -> bool:
    if creative.get("object_story_id") or creative.get("link_url") or creative.get("object_url"):
        return True
    feed = creative.get("asset_feed_spec")
    if isinstance(feed, Mapping) and feed.get("link_urls"):
        return True
    spec = creative.get("object_story_spec")
    if (
        isinstance(spec, Mapping)
        and isinstance(spec.get("link_data"), Mapping)
        and spec["link_data"].get("link")
    ):
        return True
    for _, cta in iter_ctas(creative):
        value = cta.get("value")
        if isinstance(value, Mapping) and value.get("link"):
            return True
    return False
