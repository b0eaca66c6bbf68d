"""Stopping and draining a run: parks and pacing waits offered to ``on_park`` (which may stop an account:
nothing more is sent to it, its waiting sends go back to the queue), and :meth:`~StopHandling.halt`
(``BulkEngine.request_stop``: send nothing new, let the batches in flight finish).
"""

from __future__ import annotations

import math

from bulk_engine.planning.graph import OpState

from .events import Park
from .run_state import RunState

__all__ = ["StopHandling"]


class StopHandling(RunState):
    """Accounts stopped while parked, and the halt of a whole run."""

    async def _offer_parks(self) -> None:
        """Tell ``on_park`` about each new park of an account with work; stop the account if it says so."""
        if self.on_park is None:
            return
        accounts = set(self.graph.ready_accounts()) | {a for a, n in self._sends.items() if n > 0}
        for account in sorted(accounts - self._stopped_accounts):
            buc = self._next_buc(account)
            in_flight = self._sends.get(account, 0) - len(self._waiting_sends.get(account, ()))
            if not await self.offer_park(account, buc) and in_flight <= 0:  # batches waiting in the
                await self._offer_pacing(account, buc)  # governor wait like the queue; answers bring news

    async def offer_park(self, account: str, buc: str) -> bool:
        """If a park holds (account, buc) and ``on_park`` was not told of it yet, tell it; True when the
        account is stopped (nothing more is sent to it; its waiting sends go back to the queue)."""
        if account in self._stopped_accounts:
            return True
        held = self.governor.park_of(account, buc)
        if self.on_park is None or held is None:
            return False
        key, state = held
        return await self._offer(
            Park(account, buc, state.until - self.clock.monotonic(), state.reason, key[0])
        )

    async def _offer_pacing(self, account: str, buc: str) -> bool:
        """A pacing wait is a hold like a park for whoever decides on them (``on_park``): an account that
        may send nothing for the next hour because its window is full waits as long as a throttled one."""
        if self.governor.headroom_wait(account, 1, buc) <= 0:
            return False  # room now
        wait = self.governor.expected_wait(account, 1, buc)
        if not 0 < wait < math.inf:
            return False
        reason = "pacing: the usage window is full up to the ceiling"
        return await self._offer(Park(account, buc, wait, reason, "pair"))

    async def _offer(self, park: Park) -> bool:
        """Tell ``on_park`` of a hold it was not told of yet (same end within 1 s); stop the account if it
        says so."""
        account = park.account_id
        until = self.clock.monotonic() + park.seconds
        if self.on_park is None or park.seconds <= 0 or until <= self._park_notified.get(account, 0.0) + 1.0:
            return False
        self._park_notified[account] = until
        if not await self.on_park(park):
            return False
        self._stopped_accounts.add(account)
        self.stopped.append(park)
        for scope in self._waiting_sends.pop(account, set()):
            scope.cancel()
        return True

    def halt(self) -> None:
        """Stop sending: batches waiting for the governor go back to the queue unsent, batches in flight finish
        (their outcomes are emitted and journaled), then :meth:`run` returns with the rest unfinished."""
        self.halted = True
        for scopes in self._waiting_sends.values():
            for scope in scopes:
                scope.cancel()
        if not any(self._sends.values()):
            self.drained.set()
        self._wake_up()

    def _only_stopped_left(self) -> bool:
        """Nothing can progress any more except in stopped accounts (their ops stay unfinished)."""
        return bool(self._stopped_accounts) and all(
            account in self._stopped_accounts for account in self.graph.ready_accounts()
        )

    def unfinished_ids(self) -> tuple[str, ...]:
        """Operations that never reached a terminal state (after accounts were stopped or the run halted)."""
        return tuple(
            op.op_id
            for op in self.graph.operations()
            if self.graph.state(op.op_id) in (OpState.PENDING, OpState.IN_FLIGHT)
        )
