"""Pacing from what the server reports, per real scope: the app, an ad account, an (account, use case) pair.

One governor per engine, shared by every task and run of it; its state is written to the journal so the next
run, Airflow try or process starts from it (``export``/``restore``), and the journal's parks are read again
while it runs (``refresh``), so a park another worker met on a shared account holds this one too.
``docs/scale.md`` explains it for users.

**Scopes** (S003 §Rate Limits). Business Use Case limits apply "to the ad account across the same Business
Use Case", so each (account, BUC type) pair has its own rolling window; Platform limits (``X-App-Usage``,
codes 4/17) count every call of the app, so the app is a window every send also passes; a throttle whose
scope Graph does not document holds the whole account. A throttle parks its scope: a parked app holds every
account, a parked account every use case of it, a parked pair only itself ("Switch to other ad accounts
and come back to this account later"), until the documented regain time, capped by ``max_park_s``.

**Estimates, grants, sharing and probes** are the estimator's (``pacing_estimate.py``); the state it
works on is in ``pacing_window.py``, its journal form in ``pacing_memory.py``.

**No silent waits**: a wait longer than ``announce_after_s`` wall seconds goes to ``announce`` (the engine
emits a :class:`~bulk_engine.execution.events.Waiting` event and a log line) once per scope and episode.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable

import anyio

from bulk_engine.config import GovernorConfig
from bulk_engine.persistence.journal import PacingRecord
from bulk_engine.protocol.usage import BucType, UsageSnapshot, app_reading, normalize_account_id, reading_for

from .clock import Clock
from .events import Waiting
from .pacing_estimate import Estimator
from .pacing_memory import adopt_parks, export_records, restore_readings
from .pacing_window import (
    ADS_MANAGEMENT,
    APP,
    ParkState,
    ScopeKey,
    SendLog,
    Ticket,
    Window,
    account_scope,
    pair_scope,
    scope_label,
    scope_name,
)

__all__ = ["ADS_MANAGEMENT", "APP", "Governor", "ScopeKey", "Ticket", "Window", "scope_label", "scope_name"]

logger = logging.getLogger(__name__)


class Governor:
    """Admission control for batches: ``await acquire(account, ops, buc)`` … ``release(...)`` … ``observe(...)``."""

    def __init__(self, config: GovernorConfig, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self._pairs: dict[ScopeKey, Window] = {}
        self._app: Window | None = None
        self._parks: dict[ScopeKey, ParkState] = {}
        self._total: anyio.CapacityLimiter | None = None
        self.throttle_events = 0
        self._park_capped: set[ScopeKey] = set()  # scopes already warned about a capped park
        self._announced: dict[ScopeKey, float] = {}  # scope → end of the wait last announced
        self.announce: Callable[[Waiting], None] | None = None  # set by the engine: event + log line
        self.persist: Callable[[list[PacingRecord]], None] | None = None  # set by the engine: the journal
        self.refresh: Callable[[], Iterable[PacingRecord]] | None = None  # set by the engine: the journal
        self._persisted_at = -math.inf
        self._refreshed_at = -math.inf
        self._persist_failed = False
        self._refresh_failed = False
        self._estimate = Estimator(config)
        # parks lifted here (clear_parks), to be cleared in the journal by the next save
        self._lifted: set[ScopeKey] = set()

    # --- windows ---------------------------------------------------------------------------------
    def pair(self, account_id: str, buc_type: str = ADS_MANAGEMENT) -> Window:
        key = pair_scope(account_id, buc_type)
        state = self._pairs.get(key)
        if state is None:
            state = Window(key, limit=self.config.initial_concurrency)
            self._pairs[key] = state
        return state

    def app(self) -> Window:
        if self._app is None:
            self._app = Window(APP, limit=self.config.max_total_concurrency)
        return self._app

    # --- parks -----------------------------------------------------------------------------------
    def _scopes(self, account_id: str, buc_type: str) -> tuple[ScopeKey, ScopeKey, ScopeKey]:
        return APP, account_scope(account_id), pair_scope(account_id, buc_type)

    def park_of(self, account_id: str, buc_type: str = ADS_MANAGEMENT) -> tuple[ScopeKey, ParkState] | None:
        """The park holding (account, buc) the longest, if any is running."""
        now = self.clock.monotonic()
        best: tuple[ScopeKey, ParkState] | None = None
        for key in self._scopes(account_id, buc_type):
            park = self._parks.get(key)
            if park is not None and park.until > now and (best is None or park.until > best[1].until):
                best = (key, park)
        return best

    def parked_for(self, account_id: str, buc_type: str = ADS_MANAGEMENT) -> float:
        """Seconds until (account, buc) may send, by the parks of the app, the account and the pair."""
        held = self.park_of(account_id, buc_type)
        return 0.0 if held is None else held[1].until - self.clock.monotonic()

    def _park(self, key: ScopeKey, until: float, reason: str, pct: float | None) -> None:
        """Park ``key`` until ``until`` unless a longer park holds it already (every throttled entry of an
        answer repeats the regain time: only a park that changed wakes the waiters and goes to the journal)."""
        park = self._parks.get(key)
        if park is not None and until <= park.until:
            return
        self._parks[key] = ParkState(until, reason, pct)
        self._notify_scope(key)
        self._save(force=True)

    def clear_parks(self, account_id: str, why: str) -> None:
        """Forget the parks of the account and its pairs (not the app's): fresher news says it is usable,
        e.g. a read just now, against a park an earlier run wrote to the journal."""
        now = self.clock.monotonic()
        lifted = [
            k for k, park in self._parks.items() if k != APP and k[1] == account_id and park.until > now
        ]
        for key in lifted:
            logger.info("%s: park lifted (%s)", scope_label(key), why)
            del self._parks[key]
            self._lifted.add(key)
            self._notify_scope(key)
        if lifted:
            self._save(force=True)

    def _notify_scope(self, key: ScopeKey) -> None:
        if key == APP:
            for window in self._pairs.values():
                window.notify()
        elif key[0] == "account":
            for window in self._pairs.values():
                if window.account_id == key[1]:
                    window.notify()
        elif key in self._pairs:
            self._pairs[key].notify()

    # --- admission -------------------------------------------------------------------------------
    async def acquire(self, account_id: str, ops: int, buc_type: str = ADS_MANAGEMENT) -> Ticket:
        """Wait until (account, buc) may send a batch of ``ops`` calls; book it as in flight."""
        ticket = await self._acquire(account_id, ops, buc_type, shrinkable=False)
        assert ticket is not None  # only a shrinkable batch is handed back
        return ticket

    async def acquire_or_shrink(
        self, account_id: str, ops: int, buc_type: str = ADS_MANAGEMENT
    ) -> Ticket | None:
        """:meth:`acquire`, but ``None`` when the batch must wait for room while a smaller one fits now and
        no answer of ours is on its way: the caller plans it again within :meth:`headroom`. Batches planned
        when the room was large must not wait an hour for our calls to leave the window after a reading
        shrank the grant (nothing in flight brings the reading that would grow it again)."""
        return await self._acquire(account_id, ops, buc_type, shrinkable=True)

    async def _acquire(self, account_id: str, ops: int, buc_type: str, *, shrinkable: bool) -> Ticket | None:
        state = self.pair(account_id, buc_type)
        app = self.app()
        while True:
            self._refresh_if_due()
            now = self.clock.monotonic()
            if self.park_of(account_id, buc_type) is not None:
                await self.wait_out_park(account_id, buc_type)
                continue
            wait = self._pacing_wait(state, ops, now)
            if wait > 0:
                if (
                    shrinkable
                    and state.in_flight == 0
                    and 1 <= (self.headroom(account_id, buc_type) or 0) < ops
                ):
                    return None
                await self._sleep_unless_changed(state, wait)
                continue
            if state.in_flight >= self._limit(state):
                await self._sleep_unless_changed(state, math.inf)
                continue
            break
        # Book the send before any await, so concurrent acquirers see it in their checks.
        for window in (state, app):
            room = self._estimate.room(window, now, probe=False)
            if room is not None and room < self._estimate.need(window, ops):  # it goes as a probe
                window.probe_at = now + (window.probe_interval or self._estimate.base_probe_interval())
                window.probing = True
            window.in_flight += 1
            window.in_flight_ops += ops
        ticket = Ticket(state.log.add(now, ops, state.answers), app.log.add(now, ops, app.answers))
        self._estimate.expire(state, now)
        self._estimate.expire(app, now)
        if self._total is None:
            self._total = anyio.CapacityLimiter(self.config.max_total_concurrency)
        try:
            await self._total.acquire()
        except BaseException:  # cancelled before sending: free the slot; the calls age out as if answered
            for window, record in ((state, ticket.pair), (app, ticket.app)):
                window.in_flight -= 1
                window.in_flight_ops -= ops
                SendLog.answered(record, now)
            raise
        return ticket

    async def wait_out_park(self, account_id: str, buc_type: str = ADS_MANAGEMENT) -> None:
        """Return once no park of the app, the account or the pair holds (account, buc); a long wait is
        announced like any other. With a journal, the wait is cut in slices between which its parks are read
        again: another worker lifting or lengthening the park is heard before the deadline."""
        state = self.pair(account_id, buc_type)
        while True:
            self._refresh_if_due()
            held = self.park_of(account_id, buc_type)
            if held is None:
                return
            key, park = held
            wait = park.until - self.clock.monotonic()
            self._announce_wait(key, wait, park.reason, park.usage_pct)
            await self._sleep_unless_changed(state, min(wait, self._refresh_slice()))

    def _refresh_slice(self) -> float:
        """The longest sleep between two reads of the journal's parks (engine seconds)."""
        if self.refresh is None:
            return math.inf
        return max(self.config.persist_every_s, 1.0) * self.clock.scale

    async def _sleep_unless_changed(self, state: Window, seconds: float) -> None:
        """Sleep ``seconds`` but wake early when the pair or the app changes (a new reading, a release, a
        park); the caller re-checks. A wait computed from an early reading must not outlive a better one."""
        events = (state.changed, self.app().changed)
        async with anyio.create_task_group() as tg:

            async def timer() -> None:
                await self.clock.sleep(seconds)
                tg.cancel_scope.cancel()

            async def wake_on(event: anyio.Event) -> None:
                await event.wait()
                tg.cancel_scope.cancel()

            tg.start_soon(timer)
            for event in events:
                tg.start_soon(wake_on, event)

    def _limit(self, state: Window) -> int:
        """One batch at a time until a batch of ours was answered with a reading (a probe's reading before
        any batch says nothing of a batch's share), then the pair's concurrency limit."""
        return 1 if state.last_pct is None or state.answers == 0 else state.limit

    def expected_wait(self, account_id: str, ops: int = 1, buc_type: str = ADS_MANAGEMENT) -> float:
        """Seconds until ``ops`` calls are expected to fit in the pair and the app if nothing new is learnt.

        Not the runner's next wake-up (:meth:`headroom_wait`), which may be a probe's look a few seconds
        ahead; this is how long the account is held, what a scheduler deciding whether to free its worker
        needs — an hour-long full window must not look like a series of 12-second waits."""
        now = self.clock.monotonic()
        return max(self._estimate.hold(w, ops, now) for w in (self.pair(account_id, buc_type), self.app()))

    def headroom(self, account_id: str, buc_type: str = ADS_MANAGEMENT) -> int | None:
        """Calls that fit under the ceilings of the pair and the app right now (None while unknown)."""
        now = self.clock.monotonic()
        rooms = [
            r
            for r in (
                self._estimate.room(self.pair(account_id, buc_type), now),
                self._estimate.room(self.app(), now),
            )
            if r is not None
        ]
        return int(min(rooms)) if rooms else None

    def headroom_wait(self, account_id: str, ops: int, buc_type: str = ADS_MANAGEMENT) -> float:
        """Seconds until ``ops`` more calls fit under the ceilings of the pair and the app (the runner's
        next wake-up when nothing fits)."""
        return self._pacing_wait(self.pair(account_id, buc_type), ops, self.clock.monotonic())

    def _pacing_wait(self, state: Window, ops: int, now: float) -> float:
        """The longer of the pair's and the app's waits for ``ops`` calls; a long one is announced."""
        wait, window = 0.0, state
        for candidate in (state, self.app()):
            candidate_wait = self._estimate.room_wait(candidate, ops, now)
            if candidate_wait > wait:
                wait, window = candidate_wait, candidate
        if wait > 0:  # announced as the hold it is, not the next look (a probe's, a few seconds ahead)
            held = max(wait, self._estimate.hold(window, ops, now))
            self._announce_wait(window.key, held, self._pacing_reason(window), window.last_pct)
        return wait

    def release(
        self, account_id: str, ops: int, buc_type: str = ADS_MANAGEMENT, ticket: Ticket | None = None
    ) -> None:
        """The batch of ``ticket`` was answered (or failed): free its slot, age its calls from now."""
        state = self.pair(account_id, buc_type)
        app = self.app()
        now = self.clock.monotonic()
        for window, record in (
            (state, ticket.pair if ticket else None),
            (app, ticket.app if ticket else None),
        ):
            window.answers += 1
            if record is not None:
                SendLog.answered(record, now)
            window.in_flight = max(0, window.in_flight - 1)
            window.in_flight_ops = max(0, window.in_flight_ops - ops)
        if self._total is not None:
            self._total.release()
        self._adjust_limit(state)
        state.notify()
        app.notify()  # batches of other accounts may wait for the app's room

    def _adjust_limit(self, state: Window) -> None:
        """Additive increase while usage is low, decrease near the ceiling; once per answered batch."""
        pct = state.last_pct
        if pct is None:
            return
        if pct >= self._estimate.ceiling(state):
            state.limit = max(1, state.limit // 2)
        elif pct >= self.config.slow_pct:
            state.limit = max(1, state.limit - 1)
        elif state.limit < self.config.max_concurrency:
            # Slow start: double while usage is far from the slow threshold, then add one at a time.
            grown = state.limit * 2 if pct < self.config.slow_pct / 2 else state.limit + 1
            state.limit = min(self.config.max_concurrency, grown)

    # --- readings --------------------------------------------------------------------------------
    def observe(
        self,
        account_id: str,
        usage: UsageSnapshot,
        buc_type: str = ADS_MANAGEMENT,
        ticket: Ticket | None = None,
    ) -> None:
        """Feed the usage headers of an answer (after ``release``): the pair the batch was charged to, every
        other use case the headers report for the account, and the app. ``ticket`` is the batch's (``None``
        for a read of the engine's own or a reading that only carries a regain time)."""
        now = self.clock.monotonic()
        charged = self.pair(account_id, buc_type)
        types = {entry.type for entry in usage.buc if entry.object_id == normalize_account_id(account_id)}
        types.add(buc_type)
        for buc in sorted(types):
            reading = reading_for(usage, account_id, buc)
            if reading is None:
                continue
            window = charged if buc == buc_type else self.pair(account_id, buc)
            if reading.regain_after_s > 0:
                seconds = self._cap_park(window.key, reading.regain_after_s)
                minutes = math.ceil(reading.regain_after_s / 60)
                self._park(
                    window.key, now + seconds, f"usage headers: regain in {minutes} min", reading.max_pct
                )
            self._estimate.read(window, reading, ticket.pair if ticket and window is charged else None, now)
        app = app_reading(usage)
        if app is not None:
            self._estimate.read(self.app(), app, ticket.app if ticket else None, now)
        self._save()

    # --- throttles -------------------------------------------------------------------------------
    def throttled(
        self,
        account_id: str,
        buc_type: str,
        usage: UsageSnapshot | None,
        scope: BucType | str | None = None,
        code: int | None = None,
    ) -> float:
        """A throttle error: park its scope until the documented regain time; returns the park seconds.

        ``scope`` is :attr:`GraphError.throttle_scope`: ``platform`` parks the app (every account),
        ``unknown`` the account (every use case), a BUC type that pair of the account.
        """
        if scope == BucType.PLATFORM:
            key = APP
        elif scope == BucType.UNKNOWN:
            key = account_scope(account_id)
        else:
            key = pair_scope(account_id, str(scope) if scope else buc_type)
        window = self.app() if key == APP else self.pair(account_id, key[2] if key[0] == "pair" else buc_type)
        now = self.clock.monotonic()
        regain = 0.0
        if usage is not None and key[0] == "pair":
            regain = usage.regain_after_s(account_id, key[2])
        if regain > 0:
            regain = self._cap_park(key, regain)
        else:
            # No estimate: back off harder each time it happens.
            regain = min(
                self.config.default_park_s * (2 ** min(window.throttle_events, 5)), self.config.max_park_s
            )
        window.throttle_events += 1
        self.throttle_events += 1
        window.limit = 1
        window.shared_until = now + 2 * self.config.window_s  # someone else took room we counted on
        window.quiet_since = now
        for metric, bound in list(window.bound.items()):  # the quota shrank (fewer active ads) or is shared
            window.bound[metric] = bound * 0.9
        label = f"throttled (code {code})" if code is not None else "throttled"
        self._park(key, now + regain, label, window.last_pct)
        return regain

    def _cap_park(self, key: ScopeKey, seconds: float) -> float:
        """``seconds`` the headers asked for, at most ``max_park_s``: a broken or hostile header must not
        park a scope for ever (the parser already bounds it to a finite value). Warns once per scope."""
        cap = self.config.max_park_s
        if seconds <= cap:
            return seconds
        if key not in self._park_capped:
            self._park_capped.add(key)
            logger.warning(
                "%s: the server reported %.0f s to regain access; parking for the cap, max_park_s=%.0f s",
                scope_label(key),
                seconds,
                cap,
            )
        return cap

    def usage_pct(self, account_id: str, buc_type: str = ADS_MANAGEMENT) -> float | None:
        return self.pair(account_id, buc_type).last_pct

    # --- waits users see -------------------------------------------------------------------------
    def _pacing_reason(self, window: Window) -> str:
        pct = window.last_pct
        ceiling = self._estimate.ceiling(window)
        usage = "unknown" if pct is None else f"{pct:.0f} %"
        return f"pacing: usage {usage} at the {ceiling:.0f} % ceiling; waiting for calls to leave the window"

    def _announce_wait(self, key: ScopeKey, seconds: float, reason: str, pct: float | None) -> None:
        """Hand a wait longer than ``announce_after_s`` to ``announce``, once per scope and episode."""
        if seconds / self.clock.scale <= self.config.announce_after_s or self.announce is None:
            return  # short in wall time (a sped-up clock's minutes can be milliseconds)
        if math.isinf(seconds):
            return  # an infinite wait is for the answer in flight: it ends with that answer
        now = self.clock.monotonic()
        until = now + seconds
        last = self._announced.get(key)
        if last is not None and last > now and abs(until - last) <= max(1.0, 0.1 * seconds):
            return
        self._announced[key] = until
        account = key[1] if len(key) > 1 else None
        buc = key[2] if len(key) > 2 else None
        try:
            self.announce(Waiting(key[0], account, buc, reason, pct, seconds))
        except Exception:  # an observer must never break a job
            logger.exception("announcing a wait failed")

    # --- memory across runs ----------------------------------------------------------------------
    def export(self) -> list[PacingRecord]:
        """Every scope's park and last reading, in wall-clock time, for the journal."""
        now, wall = self.clock.monotonic(), self.clock.wall()
        return export_records(
            self._pairs, self._app, self._parks, self._lifted, now, wall, self.config.window_s
        )

    def restore(self, records: Iterable[PacingRecord]) -> None:
        """Start from what an earlier run (or another process) wrote: parks still running hold their scope,
        readings younger than a window count as others' usage (none of their calls is ours)."""
        records = list(records)
        self._adopt_parks(records, running=False)
        now, wall = self.clock.monotonic(), self.clock.wall()
        self._refreshed_at = now
        for window in restore_readings(records, self._window_of, now, wall, self.config.window_s):
            self._estimate.grant(window, fresh=True, now=now)

    def _window_of(self, key: ScopeKey) -> Window:
        return self.app() if key == APP else self.pair(key[1], key[2])

    def _adopt_parks(self, records: Iterable[PacingRecord], *, running: bool) -> None:
        """Take the journal's parks (see :func:`adopt_parks`); while ``running``, a change is logged and wakes
        the scope's waiters, who look again."""
        now = self.clock.monotonic()
        changed = adopt_parks(self._parks, records, now, self.clock.wall(), running=running)
        if not running:
            return
        for key in changed:
            now_held = self._parks.get(key)
            if now_held is None:
                logger.info("%s: park lifted in the journal by another worker", scope_label(key))
            else:
                logger.info(
                    "%s: parked for %.0f s by the journal (%s)",
                    scope_label(key),
                    now_held.until - now,
                    now_held.reason,
                )
            self._notify_scope(key)

    def _refresh_if_due(self) -> None:
        """Read the journal's parks again, at most every ``persist_every_s`` of wall time (see ``restore``)."""
        if self.refresh is None:
            return
        now = self.clock.monotonic()
        if (now - self._refreshed_at) / self.clock.scale < self.config.persist_every_s:
            return
        self._refreshed_at = now
        try:
            records = list(self.refresh())
        except Exception as err:  # pacing memory is advice: a journal that cannot give it must not stop a job
            if not self._refresh_failed:
                self._refresh_failed = True
                logger.warning("could not read the pacing state from the journal: %s", err)
            return
        self._adopt_parks(records, running=True)

    def _save(self, *, force: bool = False) -> None:
        """Write the state to the journal: at once after a park, else at most every ``persist_every_s`` of
        wall time (a sped-up clock's ten seconds would be a write per batch)."""
        if self.persist is None:
            return
        now = self.clock.monotonic()
        if not force and (now - self._persisted_at) / self.clock.scale < self.config.persist_every_s:
            return
        self._persisted_at = now
        lifted = set(self._lifted)
        try:
            self.persist(self.export())
            self._lifted -= lifted
        except Exception as err:  # pacing memory is advice: a journal that cannot take it must not stop a job
            if not self._persist_failed:
                self._persist_failed = True
                logger.warning("could not save the pacing state to the journal: %s", err)

    def flush(self) -> None:
        """Write the state now (end of a run)."""
        self._save(force=True)
