"""What the usage headers say, as frozen values: the snapshot of one response and its per-quota readings.

Why a module of its own: the governor, the charging and the pacing estimates work on these values, never on
header text; :mod:`bulk_engine.protocol.usage` turns the headers (junk included) into them. The names are
re-exported there, which stays the place to import them from.

Units are already converted here: percentages are 0..100+ (clamped to a ceiling by the parser), durations are
seconds (``estimated_time_to_regain_access`` arrives in minutes, ``reset_time_duration`` in seconds; S003
§Rate Limits → Business Use Case Rate Limits → Headers). Object ids are the bare ad account id: ``act_123``
and ``123`` name the same account (:func:`normalize_account_id`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

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
    "reading_for",
]


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


@dataclass(frozen=True, slots=True)
class Reading:
    """What one response says about one quota: the three metrics the throttle watches (percent of their
    own limits), the access tier, and the server's waits. ``calls`` is the call-count metric (the BUC
    ``call_count`` and, for the account's own quotas, the finer ``acc_id_util_pct``); throttling starts
    when any metric reaches 100 (S003 §BUC → Headers)."""

    calls: float
    cputime: float = 0.0
    time: float = 0.0
    tier: str | None = None
    regain_after_s: float = 0.0  # estimated_time_to_regain_access, as seconds
    reset_after_s: float = 0.0  # reset_time_duration: until the window's usage is back to 0
    precise: bool = False  # ``calls`` has two decimals (acc_id_util_pct), not a whole percentage

    @property
    def max_pct(self) -> float:
        return max(self.calls, self.cputime, self.time)


def reading_for(usage: UsageSnapshot, account_id: str, buc_type: str) -> Reading | None:
    """The reading of (``account_id``, ``buc_type``) in ``usage``, or ``None`` when it says nothing of it.

    ``X-Ad-Account-Usage`` describes the account's ads-management quota and ``X-FB-Ads-Insights-Throttle``
    its insights quota (both carry no id: they belong to the request's account).
    """
    entry = usage.buc_entry(account_id, buc_type)
    calls = cputime = total_time = regain = reset = 0.0
    tier: str | None = None
    precise = False
    found = entry is not None
    if entry is not None:
        calls, cputime, total_time = entry.call_count, entry.total_cputime, entry.total_time
        regain, tier = entry.regain_after_s, entry.access_tier
    own = usage._is_own_account(account_id)
    if buc_type == BucType.ADS_MANAGEMENT and own and usage.ad_account is not None:
        found = precise = True
        calls = max(calls, usage.ad_account.acc_id_util_pct)
        reset = usage.ad_account.reset_time_duration_s
        tier = tier or usage.ad_account.access_tier
        if usage.ad_account.acc_id_util_pct >= 100:
            regain = max(regain, reset)
    if buc_type == BucType.ADS_INSIGHTS and own and usage.insights is not None:
        found = precise = True
        calls = max(calls, usage.insights.acc_id_util_pct)
        tier = tier or usage.insights.access_tier
    if not found:
        return None
    return Reading(calls, cputime, total_time, tier, regain, reset, precise)


def app_reading(usage: UsageSnapshot) -> Reading | None:
    """``X-App-Usage`` as a reading of the app's Platform quota (S003 §Platform Rate Limits)."""
    app = usage.app
    if app is None:
        return None
    return Reading(app.call_count, app.total_cputime, app.total_time)
