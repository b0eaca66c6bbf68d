"""Business Use Case rate limits per (ad account, BUC type), with the headers Meta sends.

The model, checked against S003 §Rate Limits and §Business Use Case Rate Limits:

- **What counts.** Every Graph call counts once in a *rolling* window (``window_s``, default one hour) of
  its ad account × business use case: "all endpoints with the Ads Management business use case will share
  the total quota within the same ad account". Each op of a batch is a call ("a batch of 10 API calls will
  count as 10 calls") and each id of ``?ids=`` is a call (FAQ: ``?ids=4,5,6`` = 3 calls). Two ad accounts
  never share a window. Calls that fail still count ("All calls count towards the rate limits").
- **Quota per window** (the tier names follow ``ads_api_access_tier``; Meta's page calls the two tiers
  "Standard Access" and "Advanced Access" of the Ads Management Standard Access feature):

  ================  =====================================  ============================================
  BUC type          ``development_access`` (default)      ``standard_access``
  ================  =====================================  ============================================
  ads_management    ``300 + 40 × active ads``              ``100000 + 40 × active ads``
  ads_insights      ``600 + 400 × active ads − 0.001 ×     ``190000 + 400 × active ads − 0.001 ×
                    user errors``                          user errors``
  custom_audience   ``5000 + 40 × active audiences``       ``190000 + 40 × active audiences``, ≤ 700000
  ================  =====================================  ============================================

  "Active ads" is kept current by the status machine (:meth:`RateLimiter.set_active_ads`); the simulator
  has no custom audiences, so that term is 0. ``quota_override`` replaces every formula (tests, benches).
- **Throttling.** When the window already holds ``quota`` calls the account × use case is blocked: the
  call answers ``80004`` / subcode ``2446079`` for ads management (``80000`` insights, ``80003`` custom
  audiences, … — S003 §Business Use Case Rate Limits → Error Codes) with HTTP 400 and the reference
  message. A refused call *still counts* ("Continuing to make calls will continue to increase your call
  count, which will increase the time before calls will be successful again"), so hammering a blocked
  account pushes the regain time out; stopping lets it lapse once enough old calls have left the window
  to bring usage under 100 % ("until enough time has passed for the call count to drop below the limit").
- **Headers** on every response (S003 says they come "once enough calls have been made to an endpoint";
  sending them from the first call is the superset a client must handle anyway):

  * ``X-Business-Use-Case-Usage``: ``{"<ad account id without act_>": [{"type", "call_count",
    "total_cputime", "total_time", "estimated_time_to_regain_access", "ads_api_access_tier"}]}`` — one
    entry per use case the account has used (``ads_api_access_tier`` only for ``ads_management`` and
    ``ads_insights``), several accounts for ``?ids=`` reads and batches (at most 32, as documented).
    ``call_count`` is a whole percentage, floored and capped at 100 (over-quota blocks therefore read
    100, as in the seed sample ``call_count: 100`` / ``estimated_time_to_regain_access: 19``);
    ``estimated_time_to_regain_access`` is in **minutes**, rounded up, and is what signals a block —
    a throttle burst blocks an account whose counters stay low, and the counters keep saying so.
  * ``X-Ad-Account-Usage``: ``{"acc_id_util_pct", "reset_time_duration", "ads_api_access_tier"}`` for the
    call's (first) ad account and the ads-management window: the percentage as a float with two
    decimals, ``reset_time_duration`` in **seconds**.
  * ``X-App-Usage``: ``{"call_count", "total_cputime", "total_time"}`` whole percentages of the app's
    Platform quota ``200 × app_users`` per window, counting every call the app made.
  * ``X-FB-Ads-Insights-Throttle`` on ``ads_insights`` calls: ``{"app_id_util_pct", "acc_id_util_pct",
    "ads_api_access_tier"}`` (S003 §Limits and Best Practices).

Choices where the seeds are thin (documented, configurable where it matters):

- ``total_cputime`` / ``total_time`` are fixed fractions (25 % / 30 %) of ``call_count``: the seeds give no
  CPU model, so call count is always the binding dimension.
- ``reset_time_duration`` ("Time duration (in seconds) it takes to reset the current rate limit to 0"):
  while blocked it is the time until access is regained (what a client must wait); otherwise the time
  until the newest counted call leaves the window (usage back to 0); ``0`` for an unused account.
- SPEC-DIGEST §9.3 #8: both BUC headers are labelled "for v3.3 and older Ads API calls" in S003 although
  the same pages describe them as current (and the insights guide reads ``x-ad-account-usage``). v3.3 is
  long gone, so the label is a documentation artefact: we send both headers on every call of every
  supported version, and throttle with the BUC codes (``80004``…), never the v3.3-era ``17``/``2446079``.
- Platform (app-level) throttling — code ``4`` "Application request limit reached" — applies only to
  calls outside any ad account ("If both Platform and Business Use Case rate limits can be applied to a
  request, BUC rate limits will be applied").
- A throttle burst (fault injection) blocks an account × use case for a fixed time whatever its usage.

Performance: counting is O(1) amortised (per-second buckets with cumulative counts, expired from the
front); the regain time is a binary search over the buckets; headers look only at the windows of the
accounts they describe (windows are indexed by account).
"""

from __future__ import annotations

import json
import math
from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

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
_DOCS = "https://developers.facebook.com/docs/graph-api/overview/rate-limiting"
# The reference tables give the 80004 and 80002 texts; the 80001 sample gives the Page one.
THROTTLE_MESSAGES: dict[str, str] = {
    "ads_management": (
        "There have been too many calls to this ad-account. Wait a bit and try again. For more info, "
        f"please refer to {_DOCS}#ads-management."
    ),
    "ads_insights": (
        "There have been too many calls to this ad-account. Wait a bit and try again. For more info, "
        f"please refer to {_DOCS}#ads-insights."
    ),
    "custom_audience": (
        "There have been too many calls to this ad-account. Wait a bit and try again. For more info, "
        f"please refer to {_DOCS}#custom-audience."
    ),
    "instagram": (
        "There have been too many calls to this Instagram account. Wait a bit and try again. For more "
        f"info, please refer to {_DOCS}."
    ),
    "pages": (
        "There have been too many calls to this Page account. Wait a bit and try again. For more info, "
        f"please refer to {_DOCS}."
    ),
}
TIERED_TYPES = ("ads_management", "ads_insights")
MAX_BUC_OBJECTS = 32  # "This header can return up to 32 objects in one call."
BUCKET_S = 1.0
CPU_FRACTION = 0.25
TIME_FRACTION = 0.30


class _Window:
    """Calls of one account × use case in per-second buckets, oldest first.

    ``_cums[i]`` is the number of calls ever added up to and including bucket ``i``; ``_expired`` is the
    cumulative count of the buckets that left the window. Buckets before ``_head`` are dead and are
    compacted away in bulk, so add/expire are O(1) amortised and the regain time is a bisect.
    """

    __slots__ = ("_added", "_cums", "_expired", "_head", "_starts", "blocked_until")

    def __init__(self) -> None:
        self._starts: list[float] = []
        self._cums: list[int] = []
        self._head = 0
        self._added = 0
        self._expired = 0
        self.blocked_until = 0.0

    @property
    def total(self) -> int:
        return self._added - self._expired

    def add(self, now: float, calls: int) -> None:
        start = math.floor(now / BUCKET_S) * BUCKET_S
        self._added += calls
        if len(self._starts) > self._head and self._starts[-1] >= start:
            self._cums[-1] = self._added  # same bucket (or a clock read a hair behind the last one)
        else:
            self._starts.append(start)
            self._cums.append(self._added)

    def expire(self, now: float, window_s: float) -> None:
        cutoff = now - window_s
        starts, head = self._starts, self._head
        while head < len(starts) and starts[head] + BUCKET_S <= cutoff:
            self._expired = self._cums[head]
            head += 1
        if head > 1024 and head * 2 > len(starts):
            del self._starts[:head]
            del self._cums[:head]
            head = 0
        self._head = head

    def regain_at(self, quota: int, window_s: float) -> float:
        """When enough calls will have aged out for usage to fall under 100 % (0.0: not over quota)."""
        excess = self.total - quota + 1
        if excess <= 0:
            return 0.0
        i = bisect_left(self._cums, self._expired + excess, lo=self._head)
        i = min(i, len(self._starts) - 1)
        return self._starts[i] + BUCKET_S + window_s

    def empty_at(self, window_s: float) -> float:
        """When the newest counted call leaves the window (0.0 if the window is empty)."""
        if self.total <= 0:
            return 0.0
        return self._starts[-1] + BUCKET_S + window_s


@dataclass(frozen=True)
class Usage:
    """One account × use case at one instant, as the headers describe it."""

    calls: int
    quota: int
    pct: float
    blocked: bool
    regain_s: float
    reset_s: float


class RateLimiter:
    """Counts calls, blocks over-quota account × use case pairs, and renders the usage headers."""

    def __init__(self, config: SimulatorConfig, clock: VirtualClock) -> None:
        self.config = config
        self.clock = clock
        self._accounts: dict[str, dict[str, _Window]] = {}
        self._app = _Window()
        self._active_ads: dict[str, int] = {}
        self._user_errors: dict[str, int] = {}
        self.throttle_events = 0

    # --- quota -------------------------------------------------------------------------------------
    def set_active_ads(self, account_id: str, count: int) -> None:
        """The "Number of Active ads" term of the quota formulas (kept current by the status machine)."""
        self._active_ads[account_id] = max(0, count)

    def active_ads(self, account_id: str) -> int:
        return self._active_ads.get(account_id, 0)

    def record_user_error(self, account_id: str | None) -> None:
        """A caller error in ``account_id``: the insights quota shrinks by 0.001 per user error."""
        if account_id is not None:
            self._user_errors[account_id] = self._user_errors.get(account_id, 0) + 1

    def quota(self, account_id: str, buc_type: str) -> int:
        if self.config.quota_override is not None:
            return self.config.quota_override
        ads = self._active_ads.get(account_id, 0)
        advanced = self.config.access_tier == "standard_access"
        if buc_type == "ads_insights":
            base = (190_000 if advanced else 600) + 400 * ads
            return max(1, math.floor(base - 0.001 * self._user_errors.get(account_id, 0)))
        if buc_type == "custom_audience":
            return min(700_000, 190_000 if advanced else 5_000)
        return (100_000 if advanced else 300) + 40 * ads

    def app_quota(self) -> int:
        """Platform Rate Limits: ``200 × Number of Users`` calls per rolling hour for the app."""
        return max(1, 200 * self.config.app_users)

    def _window(self, account_id: str, buc_type: str) -> _Window:
        by_type = self._accounts.get(account_id)
        if by_type is None:
            by_type = self._accounts[account_id] = {}
        window = by_type.get(buc_type)
        if window is None:
            window = by_type[buc_type] = _Window()
        return window

    # --- charging ----------------------------------------------------------------------------------
    def charge(self, account_id: str | None, buc_type: str, calls: int, now: float) -> None:
        """Count ``calls`` against the pair; raise the documented throttle error when over quota."""
        window_s = self.config.window_s
        app = self._app
        app.expire(now, window_s)
        app_over = app.total >= self.app_quota()
        app.add(now, calls)
        if not self.config.rate_limits_enabled:
            return
        if account_id is None:
            if app_over:
                self.throttle_events += 1
                raise GraphAPIError(
                    code=4,
                    message="(#4) Application request limit reached",
                    type="OAuthException",
                    http_status=400,
                    is_transient=True,
                )
            return
        window = self._window(account_id, buc_type)
        window.expire(now, window_s)
        quota = self.quota(account_id, buc_type)
        blocked = now < window.blocked_until or window.total >= quota
        window.add(now, calls)  # calls while blocked count too, and so extend the block
        if blocked:
            regain = window.regain_at(quota, window_s)
            if now < window.blocked_until:
                regain = max(regain, window.blocked_until)
            window.blocked_until = max(regain, now + BUCKET_S)
            self.throttle_events += 1
            raise self.throttle_error(buc_type)

    def force_block(self, account_id: str, buc_type: str, seconds: float, now: float) -> None:
        """A throttle burst: block the pair for ``seconds`` whatever its usage (fault injection)."""
        window = self._window(account_id, buc_type)
        window.blocked_until = max(window.blocked_until, now + seconds)

    def is_blocked(self, account_id: str, buc_type: str = "ads_management") -> bool:
        window = self._accounts.get(account_id, {}).get(buc_type)
        if window is None:
            return False
        now = self.clock.now()
        window.expire(now, self.config.window_s)
        return now < window.blocked_until or window.total >= self.quota(account_id, buc_type)

    @staticmethod
    def throttle_error(buc_type: str) -> GraphAPIError:
        code, subcode = THROTTLE_CODES.get(buc_type, THROTTLE_CODES["ads_management"])
        message = THROTTLE_MESSAGES.get(
            buc_type, f"There have been too many calls from this account. Wait a bit and try again. {_DOCS}"
        )
        return GraphAPIError(
            code=code,
            subcode=subcode,
            message=f"(#{code}) {message}",
            type="OAuthException",
            http_status=400,
            is_transient=True,
        )

    # --- usage -------------------------------------------------------------------------------------
    def usage(self, account_id: str, buc_type: str, now: float) -> Usage:
        """The pair's usage at ``now`` (what the headers render)."""
        window = self._accounts.get(account_id, {}).get(buc_type)
        quota = self.quota(account_id, buc_type)
        if window is None:
            return Usage(0, quota, 0.0, False, 0.0, 0.0)
        window_s = self.config.window_s
        window.expire(now, window_s)
        total = window.total
        if now < window.blocked_until:
            regain = window.blocked_until - now
        elif total >= quota:  # at exactly 100 %: the next call will be refused
            regain = max(0.0, window.regain_at(quota, window_s) - now)
        else:
            regain = 0.0
        blocked = regain > 0
        reset = regain if blocked else max(0.0, window.empty_at(window_s) - now)
        pct = 100.0 * total / quota if quota else 100.0
        return Usage(total, quota, pct, blocked, regain, reset)

    def snapshot(self, account_id: str | None = None) -> dict[str, dict[str, Any]]:
        """Inspection (``/__sim__/ratelimit``): per account and use case, calls, quota and block state."""
        now = self.clock.now()
        accounts = [account_id] if account_id is not None else sorted(self._accounts)
        out: dict[str, dict[str, Any]] = {}
        for act in accounts:
            out[act] = {}
            for buc_type in sorted(self._accounts.get(act, {})):
                u = self.usage(act, buc_type, now)
                out[act][buc_type] = {
                    "call_count": u.calls,
                    "quota": u.quota,
                    "pct": round(u.pct, 2),
                    "blocked": u.blocked,
                    "regain_s": round(u.regain_s, 3),
                    "reset_s": round(u.reset_s, 3),
                    "active_ads": self.active_ads(act),
                }
        return out

    # --- headers -----------------------------------------------------------------------------------
    def app_usage_pct(self, now: float) -> int:
        self._app.expire(now, self.config.window_s)
        return min(100, math.floor(100 * self._app.total / self.app_quota()))

    def _buc_entry(self, buc_type: str, usage: Usage) -> str:
        """One ``X-Business-Use-Case-Usage`` entry as JSON text (hand-rendered: this runs on every call)."""
        pct = min(100, math.floor(usage.pct))
        cpu = min(100, math.floor(usage.pct * CPU_FRACTION))
        total_time = min(100, math.floor(usage.pct * TIME_FRACTION))
        regain = math.ceil(usage.regain_s / 60)
        tier = f', "ads_api_access_tier": "{self.config.access_tier}"' if buc_type in TIERED_TYPES else ""
        return (
            f'{{"type": "{buc_type}", "call_count": {pct}, "total_cputime": {cpu}, "total_time": {total_time}, '
            f'"estimated_time_to_regain_access": {regain}{tier}}}'
        )

    def headers(
        self, account_ids: str | Iterable[str] | None, now: float, buc_type: str | None = None
    ) -> dict[str, str]:
        """``X-App-Usage`` always; the BUC and ad-account headers when the call touched ad accounts.

        ``account_ids`` is the call's account (or the accounts of a multi-id read / batch, first one
        primary); ``buc_type`` adds ``X-FB-Ads-Insights-Throttle`` for insights calls. The JSON is the
        shape ``json.dumps`` would give, rendered by hand because it is built for every single call.
        """
        app_pct = self.app_usage_pct(now)
        out = {
            "X-App-Usage": (
                f'{{"call_count": {app_pct}, "total_cputime": {math.floor(app_pct * CPU_FRACTION)}, '
                f'"total_time": {math.floor(app_pct * TIME_FRACTION)}}}'
            )
        }
        if not self.config.rate_limits_enabled or account_ids is None:
            return out
        accounts = [account_ids] if isinstance(account_ids, str) else list(dict.fromkeys(account_ids))
        if not accounts:
            return out
        tier = self.config.access_tier
        objects: list[str] = []
        primary: Usage | None = None
        for act in accounts[:MAX_BUC_OBJECTS]:
            entries: list[str] = []
            for t in sorted(self._accounts.get(act, ())) or ["ads_management"]:
                usage = self.usage(act, t, now)
                if primary is None and act == accounts[0] and t == "ads_management":
                    primary = usage
                entries.append(self._buc_entry(t, usage))
            objects.append(f"{json.dumps(act.removeprefix('act_'))}: [{', '.join(entries)}]")
        out["X-Business-Use-Case-Usage"] = "{" + ", ".join(objects) + "}"
        if primary is None:
            primary = self.usage(accounts[0], "ads_management", now)
        out["X-Ad-Account-Usage"] = (
            f'{{"acc_id_util_pct": {round(min(primary.pct, 100.0), 2)!r}, '
            f'"reset_time_duration": {math.ceil(primary.reset_s)}, "ads_api_access_tier": "{tier}"}}'
        )
        if buc_type == "ads_insights":
            insights = self.usage(accounts[0], "ads_insights", now)
            out["X-FB-Ads-Insights-Throttle"] = json.dumps(
                {
                    "app_id_util_pct": app_pct,
                    "acc_id_util_pct": round(min(insights.pct, 100.0), 2),
                    "ads_api_access_tier": tier,
                }
            )
        return out
