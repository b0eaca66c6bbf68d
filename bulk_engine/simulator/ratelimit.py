"""Business Use Case rate limits per (ad account, BUC type), with the headers Meta sends.

Model (S003 §Rate Limits, §Business Use Case Rate Limits):
- Each Graph call counts once in a rolling window (default 1 h) of its ad account × use case; each op of a
  batch is a call and each id of ``?ids=`` is a call ("a batch of 10 API calls will count as 10 calls").
- Quota per hour, Ads Management: ``300 + 40 × active ads`` (development_access, Meta's "Standard Access"
  tier of the ads-management feature) or ``100000 + 40 × active ads`` (standard_access, "Advanced").
  ``quota_override`` replaces the formula (tests, benchmarks).
- At or over 100 % the account × use case is blocked: calls answer ``80004`` / subcode ``2446079`` (ads
  management) — and still count, so "continuing to make calls will … increase the time before calls
  will be successful again". The block lasts until enough old calls leave the window to bring usage
  under 100 %; ``estimated_time_to_regain_access`` reports it in minutes (rounded up), and
  ``X-Ad-Account-Usage.reset_time_duration`` in seconds.
- ``total_cputime`` / ``total_time`` are modelled as fixed fractions of ``call_count`` so call count is
  the binding dimension (the seeds give no CPU model).
- A throttle burst (fault injection) blocks an account × use case for a fixed time regardless of usage.
"""

from __future__ import annotations

import json
import math
from collections import deque
from dataclasses import dataclass, field

from .clock import VirtualClock
from .config import SimulatorConfig
from .errors import GraphAPIError

# S003 §Business Use Case Rate Limits → Error Codes.
THROTTLE_CODES: dict[str, tuple[int, int | None]] = {
    "ads_management": (80004, 2446079),
    "ads_insights": (80000, 2446079),
    "custom_audience": (80003, 2446079),
    "instagram": (80002, None),
    "leadgen": (80005, None),
    "messenger": (80006, None),
    "pages": (80001, None),
}
THROTTLE_MESSAGES = {
    "ads_management": (
        "There have been too many calls to this ad-account. Wait a bit and try again. For more info, "
        "please refer to https://developers.facebook.com/docs/graph-api/overview/rate-limiting#ads-management."
    ),
}
APP_QUOTA_PER_HOUR = 200 * 10_000  # Platform: 200 × users; a 10,000-user app.
BUCKET_S = 1.0


@dataclass
class _Window:
    """Calls of one account × use case in time buckets, oldest first."""

    buckets: deque[list[float]] = field(default_factory=deque)  # [bucket_start, count]
    total: int = 0
    blocked_until: float = 0.0

    def add(self, now: float, calls: int) -> None:
        start = math.floor(now / BUCKET_S) * BUCKET_S
        if self.buckets and self.buckets[-1][0] == start:
            self.buckets[-1][1] += calls
        else:
            self.buckets.append([start, float(calls)])
        self.total += calls

    def expire(self, now: float, window_s: float) -> None:
        while self.buckets and self.buckets[0][0] + BUCKET_S <= now - window_s:
            self.total -= int(self.buckets.popleft()[1])

    def regain_at(self, quota: int, window_s: float) -> float:
        """When enough calls have aged out for usage to fall under 100 %."""
        excess = self.total - quota + 1
        if excess <= 0:
            return 0.0
        seen = 0
        for start, count in self.buckets:
            seen += int(count)
            if seen >= excess:
                return start + BUCKET_S + window_s
        return self.buckets[-1][0] + BUCKET_S + window_s if self.buckets else 0.0


class RateLimiter:
    """Counts calls, blocks over-quota account × use case pairs, and renders the usage headers."""

    def __init__(self, config: SimulatorConfig, clock: VirtualClock) -> None:
        self.config = config
        self.clock = clock
        self._windows: dict[tuple[str, str], _Window] = {}
        self._app = _Window()
        self._active_ads: dict[str, int] = {}
        self.throttle_events = 0

    # --- quota -------------------------------------------------------------------------------------
    def set_active_ads(self, account_id: str, count: int) -> None:
        self._active_ads[account_id] = count

    def quota(self, account_id: str, buc_type: str) -> int:
        if self.config.quota_override is not None:
            return self.config.quota_override
        ads = self._active_ads.get(account_id, 0)
        advanced = self.config.access_tier == "standard_access"
        if buc_type == "ads_insights":
            return (190_000 if advanced else 600) + 400 * ads
        if buc_type == "custom_audience":
            return min(700_000, 190_000 if advanced else 5_000)
        return (100_000 if advanced else 300) + 40 * ads

    def _window(self, account_id: str, buc_type: str) -> _Window:
        return self._windows.setdefault((account_id, buc_type), _Window())

    # --- charging ----------------------------------------------------------------------------------
    def charge(self, account_id: str | None, buc_type: str, calls: int, now: float) -> None:
        """Count ``calls`` against the pair; raise the documented throttle error when over quota."""
        self._app.expire(now, self.config.window_s)
        self._app.add(now, calls)
        if account_id is None or not self.config.rate_limits_enabled:
            return
        window = self._window(account_id, buc_type)
        window.expire(now, self.config.window_s)
        quota = self.quota(account_id, buc_type)
        blocked = now < window.blocked_until or window.total >= quota
        window.add(now, calls)  # calls while blocked count too, and so extend the block
        if blocked:
            window.blocked_until = max(
                window.blocked_until if now < window.blocked_until else 0.0,
                window.regain_at(quota, self.config.window_s),
            )
            if window.blocked_until <= now:
                window.blocked_until = now + BUCKET_S
            self.throttle_events += 1
            raise self.throttle_error(buc_type)

    def force_block(self, account_id: str, buc_type: str, seconds: float, now: float) -> None:
        """A throttle burst: block the pair for ``seconds`` whatever its usage (fault injection)."""
        window = self._window(account_id, buc_type)
        window.blocked_until = max(window.blocked_until, now + seconds)

    def is_blocked(self, account_id: str, buc_type: str = "ads_management") -> bool:
        window = self._windows.get((account_id, buc_type))
        return bool(window and self.clock.now() < window.blocked_until)

    @staticmethod
    def throttle_error(buc_type: str) -> GraphAPIError:
        code, subcode = THROTTLE_CODES.get(buc_type, (80004, 2446079))
        message = THROTTLE_MESSAGES.get(
            buc_type, "There have been too many calls from this account. Wait a bit and try again."
        )
        return GraphAPIError(
            code=code,
            subcode=subcode,
            message=f"(#{code}) {message}",
            type="OAuthException",
            http_status=400,
            is_transient=True,
        )

    # --- headers -----------------------------------------------------------------------------------
    def usage(self, account_id: str, buc_type: str, now: float) -> tuple[float, float]:
        """(call_count %, seconds until access is regained) for the pair."""
        window = self._window(account_id, buc_type)
        window.expire(now, self.config.window_s)
        quota = self.quota(account_id, buc_type)
        pct = 100.0 * window.total / quota if quota else 100.0
        regain = max(0.0, window.blocked_until - now)
        return pct, regain

    def headers(self, account_id: str | None, now: float) -> dict[str, str]:
        """``X-App-Usage`` always; ``X-Business-Use-Case-Usage`` and ``X-Ad-Account-Usage`` for accounts."""
        self._app.expire(now, self.config.window_s)
        app_pct = min(100, round(100 * self._app.total / APP_QUOTA_PER_HOUR))
        out = {
            "X-App-Usage": json.dumps(
                {"call_count": app_pct, "total_cputime": app_pct // 2, "total_time": app_pct // 2}
            )
        }
        if account_id is None or not self.config.rate_limits_enabled:
            return out
        tier = self.config.access_tier
        entries = []
        account_pct, account_regain = 0.0, 0.0
        for (act, buc_type), _ in sorted(self._windows.items()):
            if act != account_id:
                continue
            pct, regain = self.usage(act, buc_type, now)
            entry: dict[str, object] = {
                "type": buc_type,
                "call_count": min(100, math.ceil(pct)) if pct < 100 else 100,
                "total_cputime": min(100, int(pct * 0.25)),
                "total_time": min(100, int(pct * 0.3)),
                "estimated_time_to_regain_access": math.ceil(regain / 60),
            }
            if buc_type in ("ads_management", "ads_insights"):
                entry["ads_api_access_tier"] = tier
            entries.append(entry)
            if buc_type == "ads_management":
                account_pct, account_regain = pct, regain
        if not entries:
            entries.append(
                {
                    "type": "ads_management",
                    "call_count": 0,
                    "total_cputime": 0,
                    "total_time": 0,
                    "estimated_time_to_regain_access": 0,
                    "ads_api_access_tier": tier,
                }
            )
        business_id = account_id.removeprefix("act_")
        out["X-Business-Use-Case-Usage"] = json.dumps({business_id: entries})
        window = self._windows.get((account_id, "ads_management"))
        if account_regain > 0:
            reset = account_regain
        elif window and window.buckets:
            reset = max(0.0, window.buckets[-1][0] + BUCKET_S + self.config.window_s - now)
        else:
            reset = 0.0
        out["X-Ad-Account-Usage"] = json.dumps(
            {
                "acc_id_util_pct": round(min(account_pct, 100.0), 2),
                "reset_time_duration": math.ceil(reset),
                "ads_api_access_tier": tier,
            }
        )
        return out
