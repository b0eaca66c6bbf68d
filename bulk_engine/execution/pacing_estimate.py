"""From the server's readings to what a window may hold: quotas, others' usage, sharing, grants, probes.

**Estimate from the server's numbers.** A reading gives each metric's usage (call count, CPU time, total
time) as a percentage of a quota that is not reported. The call quota is the higher of two lower bounds:
the documented floor of the reported ``ads_api_access_tier`` ("300 + 40 × Number of Active ads" calls an
hour for ads management at the development tier, S003 §Business Use Case Rate Limits) and our counted
calls over the reported percentage; CPU and time are converted at the rate they moved with the call count.
Whatever the reading shows beyond our own calls is *others'* usage (other runs, workers, tools), taken as
standing until a later reading says otherwise — so a window someone else filled to 90 % leaves exactly
the room under the ceiling, not the hour-long wait that estimating the quota from our few calls gave.

**Grants.** The first call to a window goes alone (the window may already be full). Each *fresh* reading —
of a batch sent after the previous grant, so it shows what others did since — grants our calls of then
plus half the free room under the ceiling (our share of it while the account is shared); other readings
only shrink the grant. Room our own calls leave as they age (our send log says when) is ours again at once.
No reading for a whole window: look again with a probe, as at first contact.

**Shared accounts.** Others' usage that grows between readings, or others' calls still there a window
after we first saw them, means other workers send: for two windows
the account is shared — each worker takes its share (its calls ÷ all calls of the reading) of half the
room, at most twice what the server counted of its own, ``shared_margin_pct`` further below the ceiling —
so workers reading the same server-side usage converge without a coordinator. A first reading that shows
others starts a probation, shared meanwhile, that fresh readings without growth over a twelfth of the window
end (the calls were left by someone gone, not by workers still setting up).

**Probes.** While only others' calls block, a probe of a few calls goes at an interval that doubles while
readings show no room coming back; probes together fill at most half the margin above the ceiling.
"""

from __future__ import annotations

import logging
import math

from bulk_engine.config import GovernorConfig
from bulk_engine.protocol.usage import Reading

from .pacing_window import ADS_MANAGEMENT, APP, METRICS, TIER_FLOORS, Window, scope_label

__all__ = ["Estimator"]

logger = logging.getLogger(__name__)

_MIN_SHARE = 1 / 8
_GREED = 0.5  # the part of the free room taken before the next reading


class Estimator:
    """The governor's reading of the server: takes readings into windows, grants them their room, and says
    what room a window has now (:meth:`room`), when a batch fits (:meth:`room_wait`) and how long the window
    holds it (:meth:`hold`). Stateless beyond the configuration; every decision reads and writes the
    :class:`Window` it is given (parks and admission stay the governor's)."""

    def __init__(self, config: GovernorConfig) -> None:
        self.config = config

    def ceiling(self, window: Window) -> float:
        name = "app" if window.key == APP else (window.buc_type or ADS_MANAGEMENT)
        return self.config.ceilings.get(name, self.config.ceiling_pct)

    def base_probe_interval(self) -> float:
        return self.config.window_s / 60.0

    def stale(self, window: Window, now: float) -> bool:
        return window.reading_at is not None and now - window.reading_at > self.config.window_s

    def blocked_by_others(self, window: Window, now: float) -> bool:
        quota = window.quota("calls")
        return quota is not None and window.others("calls", quota, now, self.config.window_s) >= 1

    def probe_due(self, window: Window, now: float) -> bool:
        """A probe may go: only others' calls block, it is time, and — when other workers are sending —
        the last reading was under the ceiling (a probe then would only add to their load)."""
        if now < window.probe_at or not self.blocked_by_others(window, now):
            return False
        shared_ceiling = self.ceiling(window) - self.config.shared_margin_pct
        return now >= window.shared_until or (window.last_pct or 0.0) < shared_ceiling

    def probe_calls(self, window: Window, now: float) -> int:
        """A probe's size: half the margin between the ceiling and 100 %, one call while other workers
        send, never more than fit before the server refuses by our count (others' calls never fewer than
        the last reading showed while nobody sends, so a probe cannot reach the throttle); 0: no probe."""
        quota = window.quota("calls") or 0.0
        calls = (
            1 if now < window.shared_until else max(1, int(quota * (100.0 - self.ceiling(window)) / 200.0))
        )
        fits = window.room_for_probes(now, self.config.window_s, self.ceiling(window))
        return calls if fits >= calls else max(0, int(fits))

    def need(self, window: Window, ops: int) -> float:
        """Room a batch of ``ops`` needs: a batch larger than the whole allowance (a quota estimate made
        while others filled the window) needs the whole allowance, or it would never go."""
        quota = window.quota("calls")
        if quota is None:
            return float(ops)
        return float(min(ops, max(1, int(quota * self.ceiling(window) / 100.0))))

    def expire(self, window: Window, now: float) -> None:
        window.log.expire(now, self.config.window_s, self.config.aging_margin_s)

    def read(self, window: Window, reading: Reading, record: list[float] | None, now: float) -> None:
        """Take one reading into ``window``: percentages, quota bounds, others' usage, sharing, probes."""
        self.expire(window, now)
        first = window.last_pct is None
        window.last_pct = reading.max_pct
        if reading.tier is not None and window.buc_type is not None:
            floor = TIER_FLOORS.get((window.buc_type, reading.tier))
            if floor is not None and self.config.trust_tier_floors:
                window.floor = floor
        # Our answered calls, two ways. The send view ages them first, so its count is never above the
        # server's: the base of a quota bound. The answer view ages them last: counted as ours in the
        # reading, a call the server already dropped is also still in our count of now, and the two cancel
        # in the room — while calls sent an hour ago and still counted are not mistaken for others' (at
        # 3600x a round trip is a tenth of the window: bench/README.md, scenario P).
        counted = float(max(0, window.log.send_view - window.in_flight_ops))
        acked = float(max(0, window.log.answer_view - window.in_flight_ops))
        # A clean reading (no other batch of the window answered meanwhile) bounds the call quota. Graph's
        # call_count is a whole percentage rounded down, so under 1 % says the quota is over 100 × our calls:
        # that raises a tier floor (40 calls per active ad make millions for a big account) — else 97,000
        # calls read as 0 % of the standard tier's floor of 100,000 waited an hour. Without a floor such a
        # bound from a few calls would only hold the first sends back, so it waits for a reading of 1 %.
        clean = record is not None and window.answers - 1 == int(record[3])
        values = {"calls": reading.calls, "cputime": reading.cputime, "time": reading.time}
        below_one = reading.calls < 1.0 and window.floor is not None
        if clean and counted > 0 and (reading.calls >= 1.0 or below_one):
            bound = counted * 100.0 / max(reading.calls, 1.0)
            if bound > window.bound.get("calls", 0.0):
                window.bound["calls"] = bound
        fresh = record is not None and record[0] >= window.granted_at
        quota = window.quota("calls")
        if quota is not None:
            # Judged by the fewest calls of others the reading allows (ours counted by the answer view,
            # the most the server can hold of them): calls of ours the server counts a little after our
            # send view dropped them must not look like another worker starting.
            taken_from = record[0] if record is not None else now  # the server read it after our send
            margin = self.config.window_s + self.config.aging_margin_s
            own_most = window.log.answer_view + window.log.dropped_since(taken_from - margin)
            others_now = max(0.0, reading.calls * quota / 100.0 - own_most)
            self._judge_sharing(window, others_now, quota, reading.precise, fresh, now)
            window.prev_others = others_now
        window.own_at_reading = float(window.log.answer_view)
        if quota is not None:
            others_now = max(0.0, reading.calls * quota / 100.0 - acked)
            window.share = min(1.0, max(_MIN_SHARE, acked / max(1.0, acked + others_now)))
        window.pct = values
        window.acked_at_reading = acked
        window.reading_at = now
        self.grant(window, fresh=fresh, now=now)
        window.reset_at = now + reading.reset_after_s if reading.reset_after_s > 0 else None
        if first and record is not None and reading.max_pct < self.config.slow_pct / 2:
            # Slow start from the first reading of a batch of ours: as many batches like it as fit below
            # half the slow threshold may go at once (the headroom check still paces).
            fit = int(self.config.slow_pct / 2 / max(reading.max_pct, 0.01))
            window.limit = max(window.limit, min(self.config.max_concurrency, fit))
        window.notify()

    def _judge_sharing(
        self, window: Window, others: float, quota: float, precise: bool, fresh: bool, now: float
    ) -> None:
        """Is someone else sending on this window? Others' usage that grows between readings says so
        (remembered for two windows: their calls age out meanwhile, and they come back). The first
        reading showing others starts a probation (shared meanwhile): alone only once the others' usage
        stood still over two more fresh readings and a twelfth of the window, timed from the first reading
        of a batch of ours — the calls were left by someone who stopped (an earlier run, another tool) —
        so workers starting together do not each take the room as their own. One quiet reading is not
        enough: workers started together each make a first call (the idempotency probe), then set up
        before their first batch, and a reading taken in that gap shows their calls standing still (seen
        with three processes at 3600x: the one that left probation took half the room and the account
        refused 11 calls, issue 19). Probes adapt to what their readings show."""
        # One step of the reported percentage, in calls: whole percentages hide up to 1 % of the quota, and
        # two decimals (acc_id_util_pct) still 0.01 % — 10 calls of the standard tier's 100,000, so five
        # calls of our own lookups read as 0.01 % must not look like another worker's five.
        step = quota * (0.01 if precise else 1.0) / 100.0
        tolerance = max(1.0, step)
        sensitive = max(0.5, step) if precise else 0.5  # on probation any growth the reading can show tells
        previous = window.prev_others
        if previous is None:
            window.quiet_since = now
            if others >= tolerance:
                window.shared_until, window.probation = math.inf, True
                window.probation_since = now if fresh else math.inf  # counted from a batch of ours
                window.quiet_readings = 0
            return
        grew = others - previous
        # Others' calls still there a window after we first saw them are new ones: someone is sending,
        # though their usage may hold steady (workers at the ceiling replace their own calls).
        if others < tolerance:
            window.others_since = math.inf
        elif window.others_since == math.inf:
            window.others_since = now
        lasting = now - window.others_since > self.config.window_s
        if grew > tolerance or lasting or (window.probation and grew >= sensitive):
            window.shared_until, window.probation = now + 2 * self.config.window_s, False
            window.quiet_since = now
        elif window.probation and fresh:
            if window.probation_since == math.inf:  # the first look of a batch of ours: time from here
                window.probation_since = now
            else:
                window.quiet_readings += 1
            if window.quiet_readings >= 2 and now - window.probation_since >= self.config.window_s / 12:
                window.shared_until, window.probation = -math.inf, False
        if window.probing and fresh:  # the reading a probe brought
            window.probing = False
            if grew < -1.0:
                window.probe_interval = 0.0  # room came back: probe at the base interval again
            else:  # nothing left yet: probe half as often (the server's reset time bounds it)
                base = self.base_probe_interval()
                window.probe_interval = min(self.config.window_s / 4, max(base, window.probe_interval * 2))

    def grant(self, window: Window, *, fresh: bool, now: float) -> None:
        """From the reading just taken: how many calls of ours the window may hold until the next grant.

        Per metric, the free room is ceiling × quota − others' calls − ours. A *fresh* reading (of a batch
        sent after the last grant, so it shows what others did since) grants our calls of now plus half of
        that room — our share of it when the account is shared: workers reading the same room before any
        sees the others' answers then take it together at most once. On probation (others' calls seen, not
        yet seen growing) half the room, but at most twice our calls the server counted: a slow start that
        workers starting together each run while their growth shows, and that fills a window an earlier
        run left full in a few round trips. Any other reading only shrinks the grant when it shows less
        room (several answers of one round trip are one look at the server).
        """
        shared = now < window.shared_until and not window.probation
        # Shared: a margin more below the ceiling, for the others' answers still on their way to us.
        ceiling = self.ceiling(window) - (self.config.shared_margin_pct if shared else 0.0)
        grants: dict[str, float] = {}
        for metric in METRICS:
            quota = window.quota(metric)
            if quota is None:
                continue
            others = window.others(metric, quota, now, self.config.window_s)
            free = quota * ceiling / 100.0 - others - window.own_at_reading
            if free <= 0:
                grant = window.own_at_reading + free
            elif shared:  # our share of half the room, and at most twice what the server counted of ours
                grant = window.own_at_reading + free * _GREED * window.share
                grant = min(grant, max(float(self.probe_calls(window, now)), 2 * window.acked_at_reading))
            else:  # alone: half the room, all of it once a whole window showed nobody else sending
                settled = now - window.quiet_since >= self.config.window_s
                grant = window.own_at_reading + free * (1.0 if settled else _GREED)
                if window.probation:
                    grant = min(grant, max(float(self.probe_calls(window, now)), 2 * window.acked_at_reading))
            previous = window.allowance.get(metric)
            grants[metric] = (
                grant if fresh or previous is None else min(previous, window.own_at_reading + free)
            )
        window.allowance = grants
        if fresh:
            window.granted_at = now
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "%s: reading %.2f %%, ours %.0f, share %.2f, %s%s, allowance %s",
                scope_label(window.key),
                window.pct.get("calls", 0.0),
                window.own_at_reading,
                window.share,
                "shared" if shared else "alone",
                " (probation)" if window.probation else "",
                {m: round(v) for m, v in grants.items()} if fresh else "kept/shrunk",
            )

    def room(self, window: Window, now: float, *, probe: bool = True) -> float | None:
        """Calls that fit under the window's ceiling now (``None``: no reading yet, nothing to pace by).

        Per metric, from the last reading: the free room is ceiling × quota − others' calls − ours; until
        the next reading we may hold our calls of then plus half of that room (our share of it when the
        account is shared) — several workers reading the same free room before any sees the others'
        answers then take it together at most once. Room that our own calls leave as they age is ours
        again at once. With ``probe``, a probe's few calls while only others' calls block and a probe is
        due (it brings the reading that shows their calls leaving).
        """
        if window.reading_at is None:
            if window.key == APP or window.answers > 0:
                return None  # no reading (yet: Meta sends the headers "once enough calls have been made")
            # First contact: one call alone, so the first reading is taken before the window is used —
            # it may already be full (others' calls, an earlier run) and the quota is not known yet.
            return 1.0 if window.in_flight == 0 else 0.0
        self.expire(window, now)
        if window.key == APP and (self.stale(window, now) or not window.allowance):
            return None  # the app's quota is not documented: it paces only while its readings bound it
        if self.stale(window, now):
            # No reading for a whole window: what it said has aged out and nothing says what came since
            # (other workers?): look again with a probe's few calls, as at first contact.
            return float(max(1, self.probe_calls(window, now))) if window.in_flight == 0 else 0.0
        allowed = min(window.allowance.values()) if window.allowance else None
        if allowed is None:
            return None
        room = allowed - window.log.answer_view
        if probe and room < 1 and self.probe_due(window, now):
            return float(self.probe_calls(window, now)) or room
        return room

    def room_wait(self, window: Window, ops: int, now: float) -> float:
        """Seconds until ``ops`` more calls fit: our calls leaving the window (our log says when), or the
        next probe while others' calls block — never beyond the server's reset time of the last reading."""
        room = self.room(window, now)
        need = self.need(window, ops)
        if room is None or room >= need:
            return 0.0
        first_contact = window.reading_at is None and window.answers == 0
        if window.key != APP and (first_contact or self.stale(window, now)):  # first contact, or
            # looking again after a window without readings:
            return 0.0 if window.in_flight == 0 else math.inf  # the batch that goes, or the reading it brings
        waits: list[float] = []
        free_at = window.log.free_at(need - max(0.0, room), self.config.window_s, self.config.aging_margin_s)
        if free_at is not None:
            waits.append(free_at - now)
        if self.blocked_by_others(window, now) and window.probe_at > now:
            waits.append(window.probe_at - now)  # a due probe that is too small for this batch: not a wait
        if not waits:  # nothing we know of frees room: pace at the quota rate until a reading says more
            quota = window.quota("calls") or 1.0
            waits.append(need * self.config.window_s / quota)
        wait = min(waits)
        if window.reset_at is not None and window.reset_at > now:  # "usage back to 0" by then
            wait = min(wait, window.reset_at + self.config.aging_margin_s - now)
        return max(1e-3, wait)

    def hold(self, window: Window, ops: int, now: float) -> float:
        """The hold of one window: our calls leaving it, others' calls of the last reading leaving it (a
        window after that reading at most), or the server's reset time, whichever the reading allows."""
        room = self.room(window, now, probe=False)
        need = self.need(window, ops)
        if room is None or room >= need:
            return 0.0
        if window.in_flight > 0:
            return 0.0  # answers on their way bring the next reading: nothing to expect beyond it yet
        if window.key != APP and (window.reading_at is None or self.stale(window, now)):
            return 0.0  # first contact or a stale reading: a batch goes to look
        waits: list[float] = []
        free_at = window.log.free_at(need - max(0.0, room), self.config.window_s, self.config.aging_margin_s)
        if free_at is not None:
            waits.append(free_at - now)
        others = self.blocked_by_others(window, now) and window.reading_at is not None
        if others and window.reading_at is not None:
            waits.append(window.reading_at + self.config.window_s + self.config.aging_margin_s - now)
        if not waits:
            waits.append(need * self.config.window_s / (window.quota("calls") or 1.0))
        wait = min(waits)  # whichever frees room first: then it is looked at again
        if window.reset_at is not None and window.reset_at > now:
            wait = min(wait, window.reset_at + self.config.aging_margin_s - now)
        return max(0.0, wait)
