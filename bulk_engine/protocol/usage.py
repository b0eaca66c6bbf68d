"""Parse the rate-limit usage headers into a frozen :class:`UsageSnapshot`.

Why: Meta says "Check the ``X-Business-Use-Case-Usage`` HTTP header to see how close your ad
account is to its limit and when you can resume" and "When the limit has been reached, stop making
API calls" (S003 §Rate Limits → Business Use Case Rate Limits / Best Practices). The governor paces
per (ad account, BUC type) from these numbers, so the parser must never be the thing that breaks a
job: every header is parsed independently, junk is logged and ignored, nothing raises.

Headers and units (S003 §Rate Limits → Platform Rate Limits → Headers; §Business Use Case Rate
Limits → Headers; §Limits and Best Practices):

==============================  =========================================================  ========
header                          shape                                                       time unit
==============================  =========================================================  ========
``X-Business-Use-Case-Usage``   ``{"<object id>": [{type, call_count, total_cputime,        minutes
                                total_time, estimated_time_to_regain_access,
                                ads_api_access_tier}]}``
``X-App-Usage``                 ``{call_count, total_time, total_cputime}`` (percent)       --
``X-Ad-Account-Usage``          ``{acc_id_util_pct, reset_time_duration,                    seconds
                                ads_api_access_tier}``
``X-FB-Ads-Insights-Throttle``  ``{app_id_util_pct, acc_id_util_pct, ads_api_access_tier}`` --
==============================  =========================================================  ========

Tolerated junk (all seen in the seed samples, SPEC-DIGEST §9.2): duplicate JSON keys (the BUC
sample repeats ``10153848260347724``; all occurrences are kept), floats (``9.67``), numbers as
strings, ``'single quoted'`` pseudo-JSON, ``//`` comments and trailing commas, missing keys.
Duplicate (object, type) entries are merged by taking the maximum of each field (conservative).

Hostile values (issue "Exactly-once under any answer"): JSON integers are unbounded (``float(10**400)``
raises ``OverflowError``), ``NaN``/``Infinity`` parse, and anything may stand where a number belongs.
Every number goes through :func:`_number`: junk (``NaN``/``Infinity``, lists, objects, booleans,
non-numeric strings) is ignored; negatives clamp to 0; absurdly large values (``10**400``, ``1e400``)
clamp to a ceiling — 1000 % for percentages, 10 years for durations — so a reading that says "blocked
for ages" still blocks (the governor caps a park at ``GovernorConfig.max_park_s``) and every number in
a snapshot is finite and ``>= 0``. Values longer than 256 KiB are not usage headers and are ignored;
the repair of pseudo-JSON is linear in the value's length. Each header name is warned about at most
once per process (at WARNING, the value cut to 80 characters); later problems go to DEBUG, so a
hostile server cannot flood the log.

Object ids: BUC keys are business-object ids; for Marketing API calls that is the ad account id
without the ``act_`` prefix ([inference], SPEC-DIGEST §3.1). Lookups accept either spelling.
``X-Ad-Account-Usage`` carries no id: pass the request's account to :func:`parse_usage_headers`.

The values parsed into (:class:`UsageSnapshot`, :class:`Reading` and the per-header records) live in
:mod:`bulk_engine.protocol.usage_model` and are re-exported here.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from .usage_model import (
    AdAccountUsage,
    AppUsage,
    BucType,
    BucUsage,
    InsightsThrottle,
    Reading,
    UsageSnapshot,
    app_reading,
    normalize_account_id,
    reading_for,
)

__all__ = [
    "AdAccountUsage",
    "AppUsage",
    "BucType",
    "BucUsage",
    "InsightsThrottle",
    "Reading",
    "UsageSnapshot",
    "app_reading",
    "normalize_account_id",
    "parse_ad_account_usage",
    "parse_app_usage",
    "parse_buc_usage",
    "parse_insights_throttle",
    "parse_usage_headers",
    "reading_for",
]

logger = logging.getLogger(__name__)

BUC_HEADER = "x-business-use-case-usage"
APP_HEADER = "x-app-usage"
AD_ACCOUNT_HEADER = "x-ad-account-usage"
INSIGHTS_HEADER = "x-fb-ads-insights-throttle"


# --------------------------------------------------------------------------- warnings

_PREVIEW_CHARS = 80
_warned: set[str] = set()
"""Header names already warned about in this process: one WARNING each, later problems at DEBUG."""


def _warn(header: str, message: str, *args: object) -> None:
    """Log a problem with ``header`` at WARNING the first time, at DEBUG afterwards (no log flood)."""
    if header in _warned:
        logger.debug(message, *args)
        return
    _warned.add(header)
    logger.warning(message + " (further problems with this header are logged at DEBUG)", *args)


def _forget_warnings() -> None:
    """Let every header warn again (tests)."""
    _warned.clear()


def _preview(value: Any) -> str:
    """A short, safe rendering of ``value`` for a log line: never the whole of a huge value.

    ``repr`` of a huge int is slow and raises past 4300 digits, and ``repr`` of a deep list may
    recurse, so only strings and small scalars are shown.
    """
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return repr(value)
    if isinstance(value, int):
        if value.bit_length() > 14_000:  # past ~4200 digits str() may raise (int_max_str_digits)
            return f"<{value.bit_length()}-bit integer>"
        digits = str(value)
        return digits if len(digits) <= 40 else f"{digits[:20]}… ({len(digits)} digits)"
    if isinstance(value, bytes):
        value = value[: _PREVIEW_CHARS * 4].decode("utf-8", errors="replace")
    if isinstance(value, str):
        text = repr(value[:_PREVIEW_CHARS])
        return text if len(value) <= _PREVIEW_CHARS else f"{text}… ({len(value)} chars)"
    if isinstance(value, _Obj):
        return f"<object of {len(value)} keys>"
    if isinstance(value, list):
        return f"<array of {len(value)}>"
    return f"<{type(value).__name__}>"


# --------------------------------------------------------------------------- lenient JSON

_MAX_VALUE_CHARS = 256 * 1024
"""A usage header is a few hundred bytes; a value this long is not one (and would cost time)."""

# A double- or single-quoted string, each allowed to run to the end of the text when unterminated
# (even on a lone trailing backslash): every match then succeeds where it starts, so the repair scans
# the text once. A pattern that needs the closing quote restarts at every later quote after a failed
# match: quadratic, ~20 s for 64 KiB of ``'\'\'…``.
_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*+(?:"|\\?\Z)|\'((?:[^\'\\]|\\.)*+)(?:\'|\\?\Z)', re.DOTALL)
_LINE_COMMENT = re.compile(r"//[^\n\r]*")
_TRAILING_COMMA = re.compile(r",\s*([}\]])")


def _requote(match: re.Match[str]) -> str:
    """``'text'`` → ``"text"``; double-quoted strings (which may contain ``'``) stay as they are."""
    single = match.group(1)
    return match.group(0) if single is None else json.dumps(single)


class _Obj(list[tuple[str, Any]]):
    """A decoded JSON object as its ordered key/value pairs (distinguishes ``{}`` from ``[]``)."""


def _pairs_hook(pairs: list[tuple[str, Any]]) -> _Obj:
    """Keep every key/value pair so duplicate keys (seed BUC sample) are not lost."""
    return _Obj(pairs)


def _loads_pairs(text: str) -> Any:
    """``NaN``/``Infinity`` literals decode to NaN (unusable); ``1e400`` still decodes to inf (huge)."""
    return json.loads(text, object_pairs_hook=_pairs_hook, parse_constant=_nan)


def _nan(_literal: str) -> float:
    return math.nan


def _lenient_loads(raw: Any, header: str) -> Any:
    """JSON with objects as pair lists; repairs seed-style pseudo-JSON; ``None`` if hopeless."""
    if isinstance(raw, bytes | bytearray) and len(raw) <= _MAX_VALUE_CHARS:
        raw = bytes(raw).decode("utf-8", errors="replace")
    if isinstance(raw, str | bytes | bytearray) and len(raw) > _MAX_VALUE_CHARS:
        _warn(header, "ignoring %s header: %d characters long: %s", header, len(raw), _preview(raw))
        return None
    if not isinstance(raw, str):
        _warn(header, "ignoring %s header: not a string (%s)", header, type(raw).__name__)
        return None
    text = raw.strip()
    if not text:
        return None
    try:
        return _loads_pairs(text)
    except (ValueError, RecursionError):  # ValueError includes ints past Python's 4300-digit limit
        pass
    repaired = _LINE_COMMENT.sub("", text)
    repaired = _QUOTED.sub(_requote, repaired)
    repaired = _TRAILING_COMMA.sub(r"\1", repaired)
    try:
        return _loads_pairs(repaired)
    except (ValueError, RecursionError):
        _warn(header, "ignoring malformed %s header: %s", header, _preview(raw))
        return None


def _as_pairs(value: Any) -> list[tuple[str, Any]] | None:
    """A decoded JSON object (pair list) or ``None`` when ``value`` is not an object."""
    if isinstance(value, _Obj):
        return [(str(k), v) for k, v in value]
    return None


def _last_by_key(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    return {key: val for key, val in pairs}


_MAX_PCT = 1000.0
"""Usage percentages above this are absurd (the throttle starts at 100): clamp, stay finite."""
_MAX_SECONDS = 10 * 365 * 86400.0
"""Durations above ten years are absurd: clamp (the governor caps a park far lower, ``max_park_s``)."""


def _number(value: Any, header: str, name: str, ceiling: float) -> float | None:
    """A usable number in ``[0, ceiling]`` from whatever stands in the field; ``None`` if there is none.

    Numbers may arrive as ints, floats or strings (``"95"``, ``"9.67%"``). Never raises: an int too
    large for a float (``10**400``: ``OverflowError``; ``1e400``: inf) becomes ``ceiling`` (a server
    that says "very much" is believed, within bounds); negatives become 0; non-finite values (NaN,
    ``Infinity`` spelled out), booleans, containers and non-numeric strings are ignored. Anything
    changed or ignored is warned about (once per header).
    """
    if value is None:  # the field is absent: nothing to say
        return None
    number: float | None = None
    if isinstance(value, bool):
        pass
    elif isinstance(value, int):
        try:
            number = float(value)
        except OverflowError:
            number = math.inf if value > 0 else -math.inf
    elif isinstance(value, float):
        number = value
    elif isinstance(value, str):
        text = value.strip().rstrip("%").strip()
        try:
            number = float(text)  # never raises OverflowError: "1e999" and 400 digits give inf
        except ValueError:
            number = None
        if number is not None and math.isinf(number) and text.lstrip("+-").isalpha():
            number = None  # "inf", "Infinity": not a measurement
    if number is None or math.isnan(number):
        _warn(header, "ignoring %s field %s: not a number: %s", header, name, _preview(value))
        return None
    if number < 0:
        _warn(header, "%s field %s is negative (%s): using 0", header, name, _preview(value))
        return 0.0
    if number > ceiling:
        _warn(header, "%s field %s is absurd (%s): using %g", header, name, _preview(value), ceiling)
        return ceiling
    return number


def _pct(data: Mapping[str, Any], header: str, name: str) -> float:
    """A percentage field, clamped to ``[0, 1000]``; 0 when absent or unusable."""
    return _number(data.get(name), header, name, _MAX_PCT) or 0.0


def _seconds(data: Mapping[str, Any], header: str, name: str, unit_s: float = 1.0) -> float:
    """A duration field in units of ``unit_s`` seconds, as seconds in ``[0, 10 years]``."""
    value = _number(data.get(name), header, name, _MAX_SECONDS / unit_s) or 0.0
    return min(value * unit_s, _MAX_SECONDS)


def _text(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip().strip("'\"")
    return None


# --------------------------------------------------------------------------- per header


def parse_buc_usage(raw: Any) -> tuple[BucUsage, ...]:
    """Parse ``X-Business-Use-Case-Usage``; unusable entries are skipped, never raised."""
    root = _as_pairs(_lenient_loads(raw, BUC_HEADER))
    if root is None:
        if raw:
            _warn(BUC_HEADER, "ignoring %s header: top level is not an object", BUC_HEADER)
        return ()
    merged: dict[tuple[str, str], BucUsage] = {}
    for object_id, items in root:
        object_key = normalize_account_id(object_id)
        if _as_pairs(items) is not None:  # a single object instead of an array: accept it
            items = [items]
        if not isinstance(items, list):
            _warn(BUC_HEADER, "ignoring %s entry for %s: not an array", BUC_HEADER, _preview(object_id))
            continue
        for item in items:
            fields_ = _as_pairs(item)
            if fields_ is None:
                continue
            data = _last_by_key(fields_)
            buc_type = _text(data.get("type"))
            if buc_type is None:
                _warn(BUC_HEADER, "ignoring %s entry for %s without a type", BUC_HEADER, _preview(object_id))
                continue
            entry = BucUsage(
                object_id=object_key,
                type=buc_type,
                call_count=_pct(data, BUC_HEADER, "call_count"),
                total_cputime=_pct(data, BUC_HEADER, "total_cputime"),
                total_time=_pct(data, BUC_HEADER, "total_time"),
                # minutes (S003 §BUC → Headers)
                regain_after_s=_seconds(data, BUC_HEADER, "estimated_time_to_regain_access", 60.0),
                access_tier=_text(data.get("ads_api_access_tier")),
            )
            previous = merged.get((object_key, buc_type))
            merged[(object_key, buc_type)] = entry if previous is None else _merge(previous, entry)
    return tuple(merged.values())


def _merge(a: BucUsage, b: BucUsage) -> BucUsage:
    return BucUsage(
        object_id=a.object_id,
        type=a.type,
        call_count=max(a.call_count, b.call_count),
        total_cputime=max(a.total_cputime, b.total_cputime),
        total_time=max(a.total_time, b.total_time),
        regain_after_s=max(a.regain_after_s, b.regain_after_s),
        access_tier=b.access_tier or a.access_tier,
    )


def _object(raw: Any, header: str) -> dict[str, Any] | None:
    pairs = _as_pairs(_lenient_loads(raw, header))
    if pairs is None:
        if raw:
            _warn(header, "ignoring %s header: not a JSON object", header)
        return None
    return _last_by_key(pairs)


def parse_app_usage(raw: Any) -> AppUsage | None:
    """Parse ``X-App-Usage``; ``None`` when unusable."""
    data = _object(raw, APP_HEADER)
    if data is None:
        return None
    return AppUsage(
        call_count=_pct(data, APP_HEADER, "call_count"),
        total_time=_pct(data, APP_HEADER, "total_time"),
        total_cputime=_pct(data, APP_HEADER, "total_cputime"),
    )


def parse_ad_account_usage(raw: Any) -> AdAccountUsage | None:
    """Parse ``X-Ad-Account-Usage``; ``None`` when unusable."""
    data = _object(raw, AD_ACCOUNT_HEADER)
    if data is None:
        return None
    return AdAccountUsage(
        acc_id_util_pct=_pct(data, AD_ACCOUNT_HEADER, "acc_id_util_pct"),
        reset_time_duration_s=_seconds(data, AD_ACCOUNT_HEADER, "reset_time_duration"),  # seconds
        access_tier=_text(data.get("ads_api_access_tier")),
    )


def parse_insights_throttle(raw: Any) -> InsightsThrottle | None:
    """Parse ``X-FB-Ads-Insights-Throttle``; ``None`` when unusable."""
    data = _object(raw, INSIGHTS_HEADER)
    if data is None:
        return None
    return InsightsThrottle(
        app_id_util_pct=_pct(data, INSIGHTS_HEADER, "app_id_util_pct"),
        acc_id_util_pct=_pct(data, INSIGHTS_HEADER, "acc_id_util_pct"),
        access_tier=_text(data.get("ads_api_access_tier")),
    )


def parse_usage_headers(
    headers: Mapping[str, Any] | Iterable[tuple[str, Any]], *, account_id: str | None = None
) -> UsageSnapshot:
    """Build a :class:`UsageSnapshot` from response headers (any case, mapping or pairs).

    ``account_id`` is the ad account the request was made for; it scopes ``X-Ad-Account-Usage``
    and ``X-FB-Ads-Insights-Throttle``. Never raises.
    """
    try:
        items = list(headers.items()) if isinstance(headers, Mapping) else list(headers)
    except Exception:
        _warn("headers", "ignoring usage headers: not a mapping or pairs (%s)", type(headers).__name__)
        return UsageSnapshot(account_id=account_id)
    found: dict[str, Any] = {}
    for item in items:
        try:
            name, value = item
        except Exception:  # not a pair (or a hostile object whose iteration fails)
            continue
        if isinstance(name, str):
            found[name.strip().lower()] = value
    return UsageSnapshot(
        buc=_guarded(parse_buc_usage, found, BUC_HEADER) or (),
        app=_guarded(parse_app_usage, found, APP_HEADER),
        ad_account=_guarded(parse_ad_account_usage, found, AD_ACCOUNT_HEADER),
        insights=_guarded(parse_insights_throttle, found, INSIGHTS_HEADER),
        account_id=account_id,
    )


_T = TypeVar("_T")


def _guarded(parse: Callable[[Any], _T], found: Mapping[str, Any], header: str) -> _T | None:
    """``parse(found[header])``, or ``None`` when absent — or when the parser has a bug: the usage
    headers are advice, and a job must not fail because one of them could not be read."""
    if header not in found:
        return None
    try:
        return parse(found[header])
    except Exception as err:  # a bug, not junk: junk is handled inside the parsers
        _warn(header, "ignoring %s header: parser failed (%s)", header, type(err).__name__)
        return None
