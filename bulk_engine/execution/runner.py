"""The async shell: feed batches through the governor, retry, resolve references, emit outcomes.

One :class:`Runner` runs one job. Its loop (single task, so the pure planning graph is never touched
concurrently) pulls operations from the job in windows, asks the :class:`~bulk_engine.planning.batcher.
Batcher` for batches of accounts that may send, starts one task per batch, and sleeps until a batch
returns, a retry comes due or a parked account may send again. Batch tasks wait in the governor,
POST the batch, and hand every entry to :func:`~bulk_engine.execution.decide.decide` (the one place an
answer is judged — its table is there); the runner only carries the action out:

- ``Succeed`` / ``Hold`` (a child whose batch parent is still being reconciled) record results;
- ``Reconcile`` flags a keyed create for a lookup by its idempotency key before any re-send; ``Retry``
  backs off with jitter; both use an attempt (lookups have a budget of their own);
- ``Park`` holds the (account, BUC) in the governor and requeues without using an attempt; ``Wait``
  requeues a child with its parent;
- ``Fail`` ends the op with the Graph error (its dependents are skipped); ``StopJob`` also skips every op
  not yet sent.

An answer proving a sent op did not run (``decide.not_run``: parked, waiting for its parent, a definite
``Retry``) also clears the op's journaled intent, so a later run sends it again without a lookup.

This module holds the loop and the sending of one batch; the rest of a run is one part per module, each a
class :class:`Runner` inherits: the shared state (:mod:`.run_state`), settling operations into outcomes
(:mod:`.transitions`), judging answers and carrying the actions out (:mod:`.answers`), idempotency lookups
of unknown outcomes (:mod:`.reconcile`), accounts stopped while parked and the halt (:mod:`.stopping`).
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from dataclasses import replace

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectSendStream

from bulk_engine.errors import JournalError, TransportError
from bulk_engine.planning.batcher import Batcher, PlannedBatch
from bulk_engine.planning.graph import Operation, OpState, PlanningError
from bulk_engine.protocol.batch import encode_batch
from bulk_engine.results import Outcome

from .decide import TransportFailure, decide
from .events import BatchSent
from .reconcile import Reconciliation
from .run_state import RunSession
from .stopping import StopHandling
from .uploads import read_parts

__all__ = ["RunSession", "Runner"]


class Runner(Reconciliation, StopHandling):
    """One job's run (its state: :class:`~.run_state.RunState`); the loop and the sending of one batch."""

    # --- the loop --------------------------------------------------------------------------------
    async def run(
        self,
        source: AsyncIterator[Operation],
        out: MemoryObjectSendStream[Outcome],
        *,
        first: list[Operation],
    ) -> None:
        """Run every operation of ``first`` and ``source`` to a terminal state, sending outcomes to ``out``."""
        self._out = out
        try:
            await self._loop(source, first)
        finally:
            self.drained.set()

    async def _loop(self, source: AsyncIterator[Operation], first: list[Operation]) -> None:
        await self._add(first)
        exhausted = False
        planning_error: PlanningError | None = None
        async with anyio.create_task_group() as tg:
            while True:
                if self.halted:  # request_stop: wait for the batches in flight, start nothing new
                    if not any(self._sends.values()):
                        break
                    await self._wait(tg)
                    continue
                if not exhausted and self.graph.unfinished < self.config.window_ops:
                    try:
                        exhausted = await self._refill(source)
                    except PlanningError as err:
                        # A bad window of a streamed job: read no further, let the work already
                        # accepted finish (nothing is left in flight with an unknown outcome), then raise.
                        planning_error, exhausted = err, True
                if self._stop_reason is not None:
                    await self._skip_ready()
                else:
                    await self._offer_parks()
                    self._dispatch(tg)
                if exhausted and self._tasks == 0 and (self.graph.is_finished or self._only_stopped_left()):
                    break
                await self._wait(tg)
            # Whatever is left are wake-ups and retry timers: they would wait out their delays (a pacing
            # wake scheduled for an hour kept a finished job open that long once the window had room again).
            tg.cancel_scope.cancel()
        self.session.flush()
        if planning_error is not None:
            raise planning_error

    async def _add(self, ops: list[Operation]) -> None:
        if ops:
            await self._emit_cascades(self.graph.add(ops))

    async def _refill(self, source: AsyncIterator[Operation]) -> bool:
        window: list[Operation] = []
        room = self.config.window_ops - self.graph.unfinished
        exhausted = False
        while len(window) < room:
            try:
                window.append(await anext(source))
            except StopAsyncIteration:
                exhausted = True
                break
        await self._add(window)
        return exhausted

    def _dispatch(self, tg: TaskGroup) -> None:
        for account in self.graph.ready_accounts():
            if account in self._stopped_accounts:
                continue
            buc = self._next_buc(account)
            parked = self.governor.parked_for(account, buc)
            if parked > 0:
                self._schedule_wake(tg, parked)
                continue
            room = self.governor.pair(account, buc).limit - self._sends.get(account, 0)
            if room <= 0:
                continue
            for batch in self._plan_batches(account, buc, room, tg):
                self._sends[account] = self._sends.get(account, 0) + 1
                self._tasks += 1
                tg.start_soon(self._send, batch, tg)

    def _plan_batches(self, account: str, buc: str, room: int, tg: TaskGroup) -> list[PlannedBatch]:
        """Up to ``room`` batches for ``account``, no more calls than fit under its ceiling right now.

        Near the ceiling a full batch would wait for 50 calls to age out while fewer fit at once; planning
        only what fits (the last batch smaller) keeps usage at the ceiling instead of a batch below it.
        """
        fit = self.governor.headroom(account, buc)
        limits = self.batcher.limits
        if fit is None or fit >= room * limits.max_ops:
            return self.batcher.next_batches(accounts=[account], flush=True, max_per_account=room)
        if fit < 1:
            wait = self.governor.headroom_wait(account, 1, buc)
            if wait < math.inf:  # else the answer in flight brings the reading (and wakes the loop)
                self._schedule_wake(tg, wait)
            return []
        full, rest = divmod(fit, limits.max_ops)
        batches = (
            self.batcher.next_batches(accounts=[account], flush=True, max_per_account=full) if full else []
        )
        if rest and len(batches) < room:
            small = Batcher(
                self.graph, replace(limits, max_ops=rest, max_ad_creates=min(limits.max_ad_creates, rest))
            )
            batches += small.next_batches(accounts=[account], flush=True, max_per_account=1)
        return batches

    async def _wait(self, tg: TaskGroup) -> None:
        await self._wake.wait()
        self._wake = anyio.Event()

    def _schedule_wake(self, tg: TaskGroup, delay: float) -> None:
        at = self.clock.monotonic() + delay
        if at >= self._wake_at - 1e-6 and self._wake_at > self.clock.monotonic():
            return
        self._wake_at = at

        async def wake_later() -> None:
            await self.clock.sleep(delay)
            self._wake_at = math.inf
            self._wake_up()

        tg.start_soon(wake_later)

    # --- one batch ------------------------------------------------------------------------------
    async def _send(self, batch: PlannedBatch, tg: TaskGroup) -> None:
        account = batch.account_id
        buc = self.charges.of_batch(batch.ops)
        status: int | None = None
        sent: tuple[str, ...] = ()  # op ids, once the batch is on its way (for the observer)
        session = self.session
        try:
            if any(session.needs_lookup(op.op_id) for op in batch.ops):
                await self._reconcile(batch, tg)  # look flagged creates up first; the rest is re-planned
                return
            if self.halted:  # started just before a halt: not sent
                self._requeue_unsent(batch.ops)
                return
            files, unreadable = await read_parts(batch.ops)  # image uploads: read now, never planned as bytes
            if unreadable:  # refused before anything is sent; the rest of the batch is planned again
                for op in batch.ops:
                    if op.op_id in unreadable and self.graph.state(op.op_id) is OpState.IN_FLIGHT:
                        await self._fail(op, None, unreadable[op.op_id])
                self._requeue_unsent(batch.ops)
                return
            with anyio.CancelScope() as waiting:
                self._waiting_sends.setdefault(account, set()).add(waiting)
                ticket = await self.governor.acquire_or_shrink(account, len(batch), buc)
            self._waiting_sends.get(account, set()).discard(waiting)
            if waiting.cancelled_caught:  # the account was stopped while this batch waited: not sent
                self._requeue_unsent(batch.ops)
                return
            if ticket is None:  # the grant shrank since it was planned: planned again within the room
                self._requeue_unsent(batch.ops)
                self._wake_up()
                return
            try:
                wire = self.batcher.render(batch)
                payload = encode_batch(wire)
                for op in batch.ops:
                    self._sends_inc(op.op_id)
                self.stats.http_requests += 1
                self.stats.graph_calls += len(wire)
                sent = tuple(op.op_id for op in batch.ops)
                self._notify(BatchSent(account, buc, len(wire), sent))
                session.before_send(batch.ops)  # the intent, committed before the request leaves
                try:
                    answer = await self.transport.post_batch(payload, files)
                except TransportError as err:
                    failure = TransportFailure(str(err), err.sent)
                    for op in batch.ops:
                        await self._apply_sent(
                            op, decide(self._subject(op), failure, self._tries(op), self.policy), tg
                        )
                    return
                status = answer.status
            finally:
                self.governor.release(account, len(batch), buc, ticket)
            await self._handle(batch, buc, answer, tg, ticket)
        except Exception as err:  # nothing in an answer may crash the engine or strand an op
            if isinstance(err, JournalError):
                raise  # the journal cannot be trusted any more: stop the job loudly
            await self._unexpected(batch.ops, err, tg)
        finally:
            self._sends[account] -= 1
            self._tasks -= 1
            if sent:
                self._batch_done(account, buc, sent, status)
            session.flush()  # this batch's outcomes: one transaction
            self.stats.peak_tracked_ops = max(self.stats.peak_tracked_ops, len(self.graph))
            self.graph.forget_settled(self.config.reference_horizon)  # memory bounded by the window
            if self.halted and not any(self._sends.values()):
                self.drained.set()
            self._wake_up()

    def _sends_inc(self, op_id: str) -> None:
        self._attempts[op_id] = self._attempts.get(op_id, 0) + 1
