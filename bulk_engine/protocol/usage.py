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

Object ids: BUC keys are business-object ids; for Marketing API calls that is the ad account id
without the ``act_`` prefix ([inference], SPEC-DIGEST §3.1). Lookups accept either spelling.
``X-Ad-Account-Usage`` carries no id: pass the request's account to :func:`parse_usage_headers`.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = [
    "AdAccountUsage",
    "AppUsage",
    "BucType",
    "BucUsage",
    "InsightsThrottle",
    "UsageSnapshot",
    "normalize_account_id",
    "parse_ad_account_usage",
    "parse_app_usage",
    "parse_buc_usage",
    "parse_insights_throttle",
    "parse_usage_headers",
]

logger = logging.getLogger(__name__)

BUC_HEADER = "x-business-use-case-usage"
APP_HEADER = "x-app-usage"
AD_ACCOUNT_HEADER = "x-ad-account-usage"
INSIGHTS_HEADER = "x-fb-ads-insights-throttle"


class BucType(StrEnum):
    """Rate-limit scopes: the BUC ``type`` values (S003 §Business Use Case Rate Limits → Headers and
    → Error Codes) plus ``platform`` for app/user-level Platform Rate Limits (S003 §Platform Rate
    Limits). Header values outside this enum are kept as plain strings."""

    ADS_INSIGHTS = "ads_insights"
    ADS_MANAGEMENT = "ads_management"
    CUSTOM_AUDIENCE = "custom_audience"
    INSTAGRAM = "instagram"
    LEADGEN = "leadgen"
    MESSENGER = "messenger"
    PAGES = "pages"
    WHATSAPP_BUSINESS_MANAGEMENT = "whatsapp_business_management"
    CATALOG_BATCH = "catalog_batch"
    CATALOG_MANAGEMENT = "catalog_management"
    PLATFORM = "platform"
    UNKNOWN = "unknown"  # a throttle code whose scope is undocumented: pause the whole account


def normalize_account_id(account_id: str) -> str:
    """``"act_123"`` and ``"123"`` name the same ad account; usage is keyed by the bare id."""
    text = str(account_id).strip()
    return text[4:] if text.startswith("act_") else text


@dataclass(frozen=True, slots=True)
class BucUsage:
    """One ``X-Business-Use-Case-Usage`` entry. Percentages are 0..100+; ``regain_after_s`` is
    ``estimated_time_to_regain_access`` converted from minutes to seconds."""

    object_id: str
    type: str
    call_count: float = 0.0
    total_cputime: float = 0.0
    total_time: float = 0.0
    regain_after_s: float = 0.0
    access_tier: str | None = None

    @property
    def max_pct(self) -> float:
        """Throttling starts when *any* of the three metrics reaches 100 (S003 §BUC → Headers)."""
        return max(self.call_count, self.total_cputime, self.total_time)


@dataclass(frozen=True, slots=True)
class AppUsage:
    """``X-App-Usage``: whole-number percentages over a rolling hour (S003 §Platform Rate Limits)."""

    call_count: float = 0.0
    total_time: float = 0.0
    total_cputime: float = 0.0

    @property
    def max_pct(self) -> float:
        return max(self.call_count, self.total_time, self.total_cputime)


@dataclass(frozen=True, slots=True)
class AdAccountUsage:
    """``X-Ad-Account-Usage``; ``reset_time_duration_s`` is already seconds in the header."""

    acc_id_util_pct: float = 0.0
    reset_time_duration_s: float = 0.0
    access_tier: str | None = None


@dataclass(frozen=True, slots=True)
class InsightsThrottle:
    """``X-FB-Ads-Insights-Throttle`` (S003 §Limits and Best Practices)."""

    app_id_util_pct: float = 0.0
    acc_id_util_pct: float = 0.0
    access_tier: str | None = None


@dataclass(frozen=True)
class UsageSnapshot:
    """Everything one response told us about quota. Immutable; empty when no header was usable.

    ``ad_account`` / ``insights`` belong to ``account_id`` (the request's account), because those
    headers carry no id of their own.
    """

    buc: tuple[BucUsage, ...] = ()
    app: AppUsage | None = None
    ad_account: AdAccountUsage | None = None
    insights: InsightsThrottle | None = None
    account_id: str | None = None
    _index: Mapping[tuple[str, str], BucUsage] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        index = {(entry.object_id, entry.type): entry for entry in self.buc}
        object.__setattr__(self, "_index", index)
        if self.account_id is not None:
            object.__setattr__(self, "account_id", normalize_account_id(self.account_id))

    @property
    def is_empty(self) -> bool:
        return not self.buc and self.app is None and self.ad_account is None and self.insights is None

    def buc_entry(self, account_id: str, buc_type: str) -> BucUsage | None:
        return self._index.get((normalize_account_id(account_id), str(buc_type)))

    def _is_own_account(self, account_id: str) -> bool:
        return self.account_id is not None and self.account_id == normalize_account_id(account_id)

    def max_pct_for(self, account_id: str, buc_type: str) -> float | None:
        """Highest known utilisation (percent) for this account and scope, ``None`` if unknown.

        Combines the BUC entry with the headers that describe the same quota: ``acc_id_util_pct``
        of ``X-Ad-Account-Usage`` for ``ads_management``, ``X-FB-Ads-Insights-Throttle`` for
        ``ads_insights``, and ``X-App-Usage`` for ``platform``.
        """
        values: list[float] = []
        entry = self.buc_entry(account_id, buc_type)
        if entry is not None:
            values.append(entry.max_pct)
        own = self._is_own_account(account_id)
        if buc_type == BucType.ADS_MANAGEMENT and own and self.ad_account is not None:
            values.append(self.ad_account.acc_id_util_pct)
        if buc_type == BucType.ADS_INSIGHTS and own and self.insights is not None:
            values.append(max(self.insights.acc_id_util_pct, self.insights.app_id_util_pct))
        if buc_type == BucType.PLATFORM and self.app is not None:
            values.append(self.app.max_pct)
        return max(values) if values else None

    def regain_after_s(self, account_id: str, buc_type: str) -> float:
        """Seconds until the scope is usable again according to the headers (0 when not blocked).

        ``estimated_time_to_regain_access`` is minutes (S003 §BUC → Headers). ``reset_time_duration``
        (seconds) is the time to reset usage *to 0*, so it is only a wait when the account is at or
        above 100 %; otherwise it would stall an account that is merely busy.
        """
        waits = [0.0]
        entry = self.buc_entry(account_id, buc_type)
        if entry is not None:
            waits.append(entry.regain_after_s)
        if (
            buc_type == BucType.ADS_MANAGEMENT
            and self._is_own_account(account_id)
            and self.ad_account is not None
            and self.ad_account.acc_id_util_pct >= 100
        ):
            waits.append(self.ad_account.reset_time_duration_s)
        return max(waits)


# --------------------------------------------------------------------------- lenient JSON

_SINGLE_QUOTED = re.compile(r"'((?:[^'\\]|\\.)*)'")
_LINE_COMMENT = re.compile(r"//[^\n\r]*")
_TRAILING_COMMA = re.compile(r",\s*([}\]])")


class _Obj(list[tuple[str, Any]]):
    """A decoded JSON object as its ordered key/value pairs (distinguishes ``{}`` from ``[]``)."""


def _pairs_hook(pairs: list[tuple[str, Any]]) -> _Obj:
    """Keep every key/value pair so duplicate keys (seed BUC sample) are not lost."""
    return _Obj(pairs)


def _loads_pairs(text: str) -> Any:
    return json.loads(text, object_pairs_hook=_pairs_hook)


def _lenient_loads(raw: Any, header: str) -> Any:
    """JSON with objects as pair lists; repairs seed-style pseudo-JSON; ``None`` if hopeless."""
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", errors="replace")
    if not isinstance(raw, str):
        logger.warning("ignoring %s header: not a string (%r)", header, type(raw).__name__)
        return None
    text = raw.strip()
    if not text:
        return None
    try:
        return _loads_pairs(text)
    except (ValueError, RecursionError):
        pass
    repaired = _LINE_COMMENT.sub("", text)
    repaired = _SINGLE_QUOTED.sub(lambda m: json.dumps(m.group(1)), repaired)
    repaired = _TRAILING_COMMA.sub(r"\1", repaired)
    try:
        return _loads_pairs(repaired)
    except (ValueError, RecursionError):
        logger.warning("ignoring malformed %s header: %.200r", header, raw)
        return None


def _as_pairs(value: Any) -> list[tuple[str, Any]] | None:
    """A decoded JSON object (pair list) or ``None`` when ``value`` is not an object."""
    if isinstance(value, _Obj):
        return [(str(k), v) for k, v in value]
    return None


def _last_by_key(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    return {key: val for key, val in pairs}


def _number(value: Any) -> float | None:
    """Numbers may arrive as ints, floats or strings (``"95"``, ``"9.67%"``); negatives clamp to 0."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip().rstrip("%").strip())
        except ValueError:
            return None
    else:
        return None
    if math.isnan(number) or math.isinf(number):
        return None
    return max(number, 0.0)


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
            logger.warning("ignoring %s header: top level is not an object", BUC_HEADER)
        return ()
    merged: dict[tuple[str, str], BucUsage] = {}
    for object_id, items in root:
        object_key = normalize_account_id(object_id)
        if _as_pairs(items) is not None:  # a single object instead of an array: accept it
            items = [items]
        if not isinstance(items, list):
            logger.warning("ignoring %s entry for %r: not an array", BUC_HEADER, object_id)
            continue
        for item in items:
            fields_ = _as_pairs(item)
            if fields_ is None:
                continue
            data = _last_by_key(fields_)
            buc_type = _text(data.get("type"))
            if buc_type is None:
                logger.warning("ignoring %s entry for %r without a type", BUC_HEADER, object_id)
                continue
            regain_min = _number(data.get("estimated_time_to_regain_access")) or 0.0
            entry = BucUsage(
                object_id=object_key,
                type=buc_type,
                call_count=_number(data.get("call_count")) or 0.0,
                total_cputime=_number(data.get("total_cputime")) or 0.0,
                total_time=_number(data.get("total_time")) or 0.0,
                regain_after_s=regain_min * 60.0,
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
            logger.warning("ignoring %s header: not a JSON object", header)
        return None
    return _last_by_key(pairs)


def parse_app_usage(raw: Any) -> AppUsage | None:
    """Parse ``X-App-Usage``; ``None`` when unusable."""
    data = _object(raw, APP_HEADER)
    if data is None:
        return None
    return AppUsage(
        call_count=_number(data.get("call_count")) or 0.0,
        total_time=_number(data.get("total_time")) or 0.0,
        total_cputime=_number(data.get("total_cputime")) or 0.0,
    )


def parse_ad_account_usage(raw: Any) -> AdAccountUsage | None:
    """Parse ``X-Ad-Account-Usage``; ``None`` when unusable."""
    data = _object(raw, AD_ACCOUNT_HEADER)
    if data is None:
        return None
    return AdAccountUsage(
        acc_id_util_pct=_number(data.get("acc_id_util_pct")) or 0.0,
        reset_time_duration_s=_number(data.get("reset_time_duration")) or 0.0,
        access_tier=_text(data.get("ads_api_access_tier")),
    )


def parse_insights_throttle(raw: Any) -> InsightsThrottle | None:
    """Parse ``X-FB-Ads-Insights-Throttle``; ``None`` when unusable."""
    data = _object(raw, INSIGHTS_HEADER)
    if data is None:
        return None
    return InsightsThrottle(
        app_id_util_pct=_number(data.get("app_id_util_pct")) or 0.0,
        acc_id_util_pct=_number(data.get("acc_id_util_pct")) or 0.0,
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
        logger.warning("ignoring usage headers: not a mapping or pairs")
        return UsageSnapshot(account_id=account_id)
    found: dict[str, Any] = {}
    for item in items:
        try:
            name, value = item
        except (TypeError, ValueError):
            continue
        if isinstance(name, str):
            found[name.strip().lower()] = value
    return UsageSnapshot(
        buc=parse_buc_usage(found[BUC_HEADER]) if BUC_HEADER in found else (),
        app=parse_app_usage(found[APP_HEADER]) if APP_HEADER in found else None,
        ad_account=parse_ad_account_usage(found[AD_ACCOUNT_HEADER]) if AD_ACCOUNT_HEADER in found else None,
        insights=parse_insights_throttle(found[INSIGHTS_HEADER]) if INSIGHTS_HEADER in found else None,
        account_id=account_id,
    )
