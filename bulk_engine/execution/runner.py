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
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Any, Protocol

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectSendStream

from bulk_engine.config import EngineConfig
from bulk_engine.errors import JournalError, TransportError
from bulk_engine.persistence.keys import Safety
from bulk_engine.planning.batcher import Batcher, BatchLimits, PlannedBatch
from bulk_engine.planning.graph import Cascade, DependencyGraph, Operation, OpKind, OpState, PlanningError
from bulk_engine.protocol.batch import BatchItemResult, BatchOp, decode_batch_response, encode_batch
from bulk_engine.protocol.errors import GraphError
from bulk_engine.protocol.refs import Ref
from bulk_engine.protocol.usage import (
    AD_ACCOUNT_HEADER,
    APP_HEADER,
    BUC_HEADER,
    INSIGHTS_HEADER,
    UsageSnapshot,
    parse_usage_headers,
)
from bulk_engine.results import JobStats, Outcome, OutcomeState

from .charging import READS_OF_AD_OBJECTS, Charges
from .clock import Clock
from .decide import (
    LOOKUP,
    Action,
    Attempts,
    Fail,
    HandlingFailure,
    Hold,
    Policy,
    Reconcile,
    Retry,
    StopJob,
    Subject,
    Succeed,
    TransportFailure,
    Wait,
    decide,
    not_run,
)
from .decide import Park as ParkAction
from .events import (
    BatchDone,
    BatchSent,
    EngineEvent,
    Observer,
    OperationFinished,
    Park,
    RetryScheduled,
    Throttled,
)
from .governor import Governor, Ticket
from .retry import RetryPolicy
from .transport import GraphTransport, HttpAnswer
from .uploads import read_parts

logger = logging.getLogger("bulk_engine.runner")

_TERMINAL = (OpState.SUCCEEDED, OpState.FAILED, OpState.SKIPPED)


class RunSession(Protocol):
    """The journal's hooks into a run (implemented by ``bulk_engine.persistence.JournalSession``).

    Intents are written before a batch is sent, outcomes once per batch; operations whose earlier attempt
    had an unknown outcome are looked up by their idempotency key before they are sent again.
    """

    def needs_lookup(self, op_id: str) -> bool: ...

    def unknown(self, op: Operation) -> None: ...

    def lookup_request(self, op: Operation, resolve: Callable[[Ref], Any]) -> BatchOp | str: ...

    def lookup_answer(self, op: Operation, body: Any) -> str | dict[str, Any] | None: ...

    def safety(self, op: Operation) -> Safety: ...

    def before_send(self, ops: Sequence[Operation]) -> None: ...

    def not_sent(self, op_id: str) -> None: ...

    def record(self, outcome: Outcome) -> None: ...

    def flush(self) -> None: ...


class Runner:
    def __init__(
        self,
        config: EngineConfig,
        transport: GraphTransport,
        governor: Governor,
        clock: Clock,
        retry: RetryPolicy,
        session: RunSession,
        observer: Observer | None = None,
    ) -> None:
        self.config = config
        self.session = session  # the journal (an ephemeral one when the engine has none)
        self.observer = observer
        self.transport = transport
        self.governor = governor  # the engine's, shared by its runs
        self.charges = Charges()  # which BUC each op is charged to
        self.clock = clock
        self.retry = retry
        self.policy = Policy(retry, config.retry.max_throttle_waits)
        self.graph = DependencyGraph()
        self.batcher = Batcher(
            self.graph,
            BatchLimits(
                max_ops=config.max_batch_ops,
                max_ad_creates=config.max_ads_per_batch,
                max_upload_bytes=config.max_upload_bytes,
            ),
        )
        self.stats = JobStats()
        self._sends: dict[str, int] = {}  # batches in progress per account
        self._attempts: dict[str, int] = {}  # sends per op
        self._maybe_ran: set[str] = set()  # ops an attempt of which had an unknown outcome (Outcome.unknown)
        self._failures: dict[str, int] = {}  # failed sends per op (the retry budget)
        # failed idempotency lookups per op: a budget of their own
        self._lookup_failures: dict[str, int] = {}
        self._throttle_waits: dict[str, int] = {}
        self._held: dict[str, Any] = {}  # successes whose parent in the same batch is not settled yet
        self._tasks = 0
        self._wake = anyio.Event()
        self._wake_at = math.inf
        self._stop_reason: str | None = None
        # on_park (set by the engine): accounts the caller chose to stop while parked, and their waiting sends
        self.on_park: Callable[[Park], Awaitable[bool]] | None = None
        self.stopped: list[Park] = []
        self._stopped_accounts: set[str] = set()
        self._park_notified: dict[str, float] = {}
        self._waiting_sends: dict[str, set[anyio.CancelScope]] = {}
        self._out: MemoryObjectSendStream[Outcome] | None = None
        # Backpressure: outcomes the consumer has not taken yet, beyond which producers wait (see _emit).
        self.max_backlog = max(1000, config.window_ops)
        self._caught_up: anyio.Event | None = None
        # halt() (BulkEngine.request_stop): send nothing new; ``drained`` is set once no batch is in flight
        self.halted = False
        self.drained = anyio.Event()

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

    def _next_buc(self, account: str) -> str:
        """The BUC the account's next batch is charged to (that of its first ready op)."""
        ready = self.graph.first_ready(account)
        return self.charges.of(ready) if ready is not None else READS_OF_AD_OBJECTS

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

    def _wake_up(self) -> None:
        self._wake.set()

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
                ticket = await self.governor.acquire(account, len(batch), buc)
            self._waiting_sends.get(account, set()).discard(waiting)
            if waiting.cancelled_caught:  # the account was stopped while this batch waited: not sent
                self._requeue_unsent(batch.ops)
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

    def _batch_done(self, account: str, buc: str, op_ids: tuple[str, ...], status: int | None) -> None:
        """Every HTTP request is reported (batches, lookups, probes), so the observer's counts add up."""
        pair = self.governor.pair(account, buc)
        parked = self.governor.parked_for(account, buc)
        self._notify(BatchDone(account, buc, len(op_ids), op_ids, status, pair.last_pct, parked, pair.limit))

    def _requeue_unsent(self, ops: Sequence[Operation]) -> None:
        for op in ops:
            if self.graph.state(op.op_id) is OpState.IN_FLIGHT:
                self.graph.requeue(op.op_id)

    async def _unexpected(self, ops: Sequence[Operation], err: Exception, tg: TaskGroup) -> None:
        """An exception while sending or handling: every op still open has an unknown outcome (never
        "failed" by a catch-all). Logged with its type and message; the traceback at DEBUG."""
        failure = HandlingFailure.of(err)
        logger.warning(
            "unexpected %s while handling a batch of %d ops: %s (outcomes treated as unknown)",
            failure.kind,
            len(ops),
            failure.message,
        )
        logger.debug("traceback of the unexpected error", exc_info=err)
        for op in ops:
            if self.graph.state(op.op_id) is OpState.IN_FLIGHT and op.op_id not in self._held:
                try:
                    await self._apply(
                        op, decide(self._subject(op), failure, self._tries(op), self.policy), tg
                    )
                except JournalError:
                    raise
                except Exception:  # last resort: fail it, flagged unknown, never strand it
                    logger.debug("could not apply a decision to %s", op.op_id, exc_info=True)
                    if self.graph.state(op.op_id) is OpState.IN_FLIGHT:
                        await self._fail(op, None, f"unexpected {failure.kind}: {failure.message}")

    def _sends_inc(self, op_id: str) -> None:
        self._attempts[op_id] = self._attempts.get(op_id, 0) + 1

    def _subject(self, op: Operation, batch: PlannedBatch | None = None) -> Subject:
        """What :func:`decide` needs to know about ``op``."""
        safety = self.session.safety(op)
        pending = batch is not None and any(
            dep in batch.names and self.graph.state(dep) in (OpState.PENDING, OpState.IN_FLIGHT)
            for dep in op.dependencies
        )
        return Subject(safety, expects_id=_expects_id(op), parent_pending=pending)

    def _tries(self, op: Operation, *, lookup: bool = False) -> Attempts:
        failures = self._lookup_failures if lookup else self._failures
        return Attempts(failures.get(op.op_id, 0), self._throttle_waits.get(op.op_id, 0))

    async def _reconcile(self, batch: PlannedBatch, tg: TaskGroup) -> None:
        """Before re-sending creates whose earlier outcome is unknown, ask the server whether they exist.

        Each flagged op is looked up by its idempotency key (one GET per op, all in one batch): found →
        succeeded with that id, never sent again; not found → back to the queue, safe to send; the lookup
        failed → judged like any read by :func:`decide` (retried, parked, or the op fails: never re-sent
        blind). The batch's other ops go back to the queue and are re-planned with the results.
        """
        session = self.session
        lookups: list[tuple[Operation, BatchOp]] = []
        for op in batch.ops:
            if self.graph.state(op.op_id) in _TERMINAL:
                continue  # skipped: a parent earlier in this batch failed
            if not session.needs_lookup(op.op_id):
                self.graph.requeue(op.op_id)
                continue
            request = session.lookup_request(op, self.graph.resolve_ref)
            if isinstance(request, str):
                await self._fail(op, None, request)
            else:
                lookups.append((op, request))
        if self.halted:  # the lookups are not sent either; the ops stay flagged for the next run
            self._requeue_unsent([op for op, _ in lookups])
            return
        if not lookups:
            return
        account = batch.account_id
        buc = READS_OF_AD_OBJECTS
        ticket = await self.governor.acquire(account, len(lookups), buc)
        ids = tuple(op.op_id for op, _ in lookups)
        status: int | None = None
        try:
            self.stats.http_requests += 1
            self.stats.graph_calls += len(lookups)
            self.stats.lookups += len(lookups)
            self._notify(BatchSent(account, buc, len(lookups), ids))
            answer = await self.transport.post_batch(encode_batch([request for _, request in lookups]))
            status = answer.status
        except TransportError as err:
            failure = TransportFailure(str(err), err.sent)
            for op, _ in lookups:
                await self._apply_lookup(
                    op, decide(LOOKUP, failure, self._tries(op, lookup=True), self.policy), tg
                )
            return
        finally:
            self.governor.release(account, len(lookups), buc, ticket)
            self._batch_done(account, buc, ids, status)
        items = self._items(answer, len(lookups))
        self._observe(account, buc, answer, items, ticket)
        parked = False
        for (op, _), item in zip(lookups, items, strict=True):
            if self.graph.state(op.op_id) in _TERMINAL:
                continue
            action = decide(LOOKUP, item, self._tries(op, lookup=True), self.policy)
            if isinstance(action, ParkAction) and not parked:
                parked = True
                self._park(account, buc, item, action)
            await self._apply_lookup(op, action, tg)

    async def _apply_lookup(self, op: Operation, action: Action, tg: TaskGroup) -> None:
        """Apply the judgement of ``op``'s idempotency lookup (the op stays flagged until it is settled)."""
        session = self.session
        if isinstance(action, Succeed):
            try:
                found = session.lookup_answer(op, action.result)
            except ValueError as err:
                bad = HandlingFailure("ValueError", f"idempotency lookup answer: {err}")
                await self._apply_lookup(
                    op, decide(LOOKUP, bad, self._tries(op, lookup=True), self.policy), tg
                )
                return
            if found is None:
                self.graph.requeue(op.op_id)  # it was never created: safe to send
            elif any(self.graph.state(dep) is not OpState.SUCCEEDED for dep in op.dependencies):
                self.graph.requeue(op.op_id)  # found, but its parent is unresolved: look again later
            else:
                self.stats.recovered += 1
                await self._succeed(op, found if isinstance(found, dict) else {"id": found})
        elif isinstance(action, Fail):
            await self._fail(
                op,
                action.error,
                "cannot tell whether an earlier attempt created it (idempotency lookup failed: "
                f"{action.reason}); not sent again so as not to create a duplicate",
            )
        elif isinstance(action, Retry):
            self._requeue_later(op, action.delay, action.reason, tg, self._lookup_failures)
        else:
            await self._apply(op, action, tg)

    async def _handle(
        self, batch: PlannedBatch, buc: str, answer: HttpAnswer, tg: TaskGroup, ticket: Ticket
    ) -> None:
        account = batch.account_id
        items = self._items(answer, len(batch.ops))
        usage = self._observe(account, buc, answer, items, ticket)
        if usage is not None:
            self.charges.learn(batch.ops, account, usage, buc)
        parked = False
        for op, item in zip(batch.ops, items, strict=True):
            if self.graph.state(op.op_id) in _TERMINAL:
                continue  # skipped by a parent's failure earlier in this batch
            try:
                action = decide(self._subject(op, batch), item, self._tries(op), self.policy)
                if isinstance(action, ParkAction) and not parked:
                    parked = True
                    self._park(account, buc, item, action)
                await self._apply_sent(op, action, tg)
            except JournalError:
                raise
            except Exception as err:  # one odd entry must not decide its siblings' fate
                await self._unexpected([op], err, tg)

    def _items(self, answer: HttpAnswer, expected: int) -> list[BatchItemResult]:
        payload: Any = answer.body if answer.body is not None else answer.text
        return decode_batch_response(payload, expected, http_status=answer.status)

    def _observe(
        self,
        account: str,
        buc: str,
        answer: HttpAnswer,
        items: Sequence[BatchItemResult],
        ticket: Ticket | None,
    ) -> UsageSnapshot | None:
        """Feed the governor every usage reading of an answer: its own headers and each entry's; returns
        the reading that counted (the busiest), if any.

        Entries usually repeat one reading, so each distinct set of header values is parsed once; of the
        entries' readings the busiest one counts (conservative) and every reported regain time parks.
        """
        envelope = parse_usage_headers(answer.headers, account_id=account)
        if not envelope.is_empty:
            self.governor.observe(account, envelope, buc, ticket)
        seen: set[tuple[str, ...]] = set()
        busiest: tuple[float, UsageSnapshot] | None = None
        for item in items:
            headers = item.headers
            if not headers:
                continue
            values = tuple(headers.get(name, "") for name in _USAGE_HEADERS)
            if values in seen:
                continue
            seen.add(values)
            usage = parse_usage_headers(headers, account_id=account)
            if usage.is_empty:
                continue
            if any(entry.regain_after_s > 0 for entry in usage.buc) or usage.regain_after_s(account, buc) > 0:
                self.governor.observe(account, usage, buc, None)
            pct = usage.max_pct_for(account, buc)
            if pct is not None and (busiest is None or pct >= busiest[0]):
                busiest = (pct, usage)
        if busiest is not None:
            self.governor.observe(account, busiest[1], buc, ticket)
            return busiest[1]
        return None if envelope.is_empty else envelope

    def _park(self, account: str, buc: str, item: BatchItemResult, action: ParkAction) -> float:
        """One park per answer: the first throttled entry's headers say how long (returned, seconds); the
        error's scope says what is parked (the app, the account or the pair)."""
        usage = parse_usage_headers(item.headers, account_id=account)
        error = action.error
        code, subcode = (error.code, error.error_subcode) if error else (None, None)
        seconds = self.governor.throttled(account, buc, usage, action.scope, code)
        logger.warning(
            "account %s throttled (%s, scope %s): parked for %.0f s",
            account,
            action.reason,
            action.scope,
            seconds,
        )
        self._notify(Throttled(account, buc, seconds, code, subcode, self.governor.usage_pct(account, buc)))
        return seconds

    async def probe(self, account: str, request: BatchOp) -> Any:
        """One read (a rebuild probe) judged like any answer; its body, or ``None`` when in doubt."""
        payload = encode_batch([request])
        buc = READS_OF_AD_OBJECTS
        tries = Attempts()
        while True:
            self.stats.http_requests += 1
            self.stats.graph_calls += 1
            self._notify(BatchSent(account, buc, 1, ()))  # no op ids: a read of the engine's own
            try:
                answer = await self.transport.post_batch(payload)
            except TransportError as err:
                self._batch_done(account, buc, (), None)
                action = decide(LOOKUP, TransportFailure(str(err), err.sent), tries, self.policy)
            else:
                self._batch_done(account, buc, (), answer.status)
                items = self._items(answer, 1)
                self._observe(account, buc, answer, items, None)
                action = decide(LOOKUP, items[0], tries, self.policy)
                if isinstance(action, ParkAction):  # wait out a park already running, else start one
                    if self.governor.parked_for(account, buc) <= 0:
                        self._park(account, buc, items[0], action)
                    await self.governor.wait_out_park(account, buc)
                    tries = Attempts(tries.failures, tries.throttle_waits + 1)
                    continue
            if isinstance(action, Succeed):
                return action.result
            if not isinstance(action, Retry):
                return None
            await self.clock.sleep(action.delay)
            tries = Attempts(tries.failures + 1, tries.throttle_waits)

    async def _apply_sent(self, op: Operation, action: Action, tg: TaskGroup) -> None:
        """Carry out the judgement of the answer to a send of ``op``. An answer proving the op did not run
        (throttled, held back by its batch parent, refused as documented) clears the intent journaled before
        the send: otherwise a later run (a resumed deferral) would spend a lookup on every refused create
        and fail every refused ``/copies`` as "outcome unknown"."""
        if not_run(action):
            self.session.not_sent(op.op_id)
        await self._apply(op, action, tg)

    async def _apply(self, op: Operation, action: Action, tg: TaskGroup) -> None:
        """Carry out the judgement of one answer for ``op``."""
        if isinstance(action, Succeed):
            await self._succeed(op, action.result)
        elif isinstance(action, Hold):
            self._held[op.op_id] = action.result  # settled when its parent is (see _succeed)
        elif isinstance(action, ParkAction):
            self.stats.throttle_events += 1
            self._throttle_waits[op.op_id] = self._throttle_waits.get(op.op_id, 0) + 1
            self.graph.requeue(op.op_id)
        elif isinstance(action, Wait):
            self.graph.requeue(op.op_id)
        elif isinstance(action, Reconcile):
            self.stats.unknown_outcomes += 1
            self._maybe_ran.add(op.op_id)
            self.session.unknown(op)  # looked up by its key before it is sent again
            self._requeue_later(op, action.delay, action.reason, tg)
        elif isinstance(action, Retry):
            if action.unknown:
                self.stats.unknown_outcomes += 1
                self._maybe_ran.add(op.op_id)
            self._requeue_later(op, action.delay, action.reason, tg)
        elif isinstance(action, StopJob):
            await self._fail(op, action.error, action.reason)
            self._stop_reason = "stopped: the access token was rejected; get a new token and resume"
        else:
            if action.unknown:
                self.session.unknown(op)  # journaled as unknown: the next run looks it up first
            if action.unknown or action.maybe_ran:
                self._maybe_ran.add(op.op_id)
            await self._fail(op, action.error, action.reason)

    # --- transitions ----------------------------------------------------------------------------
    async def _succeed(self, op: Operation, result: Any) -> None:
        cascades = self.graph.mark_succeeded(op.op_id, result)
        self._maybe_ran.discard(op.op_id)
        await self._emit(
            Outcome(
                op.op_id,
                OutcomeState.SUCCEEDED,
                op.account_id,
                op.kind.value,
                result=result,
                attempts=self._attempts.get(op.op_id, 0),
            )
        )
        await self._emit_cascades(cascades)
        if self._held:  # children whose success arrived before this parent was confirmed
            for child in self.graph.dependents(op.op_id):
                if child in self._held and self.graph.state(child) is OpState.IN_FLIGHT:
                    child_op = self.graph.operation(child)
                    if all(self.graph.state(d) is OpState.SUCCEEDED for d in child_op.dependencies):
                        await self._succeed(child_op, self._held.pop(child))

    async def _fail(self, op: Operation, error: GraphError | None, reason: str) -> None:
        cascades = self.graph.mark_failed(op.op_id, reason)
        maybe_ran = op.op_id in self._maybe_ran
        self._maybe_ran.discard(op.op_id)
        await self._emit(
            Outcome(
                op.op_id,
                OutcomeState.FAILED,
                op.account_id,
                op.kind.value,
                error=error,
                reason=reason,
                attempts=self._attempts.get(op.op_id, 0),
                unknown=maybe_ran,
            )
        )
        await self._emit_cascades(cascades)

    def _requeue_later(
        self, op: Operation, delay: float, reason: str, tg: TaskGroup, budget: dict[str, int] | None = None
    ) -> None:
        """Back off, then send again (a flagged create is looked up first): uses one attempt of ``budget``
        (the op's sends by default; its lookups for a failed lookup)."""
        table = self._failures if budget is None else budget
        failures = table.get(op.op_id, 0) + 1
        table[op.op_id] = failures
        self.stats.retries += 1
        self._notify(RetryScheduled(op.op_id, op.account_id, op.kind.value, failures, delay, reason))
        self._tasks += 1

        async def requeue_later() -> None:
            try:
                await self.clock.sleep(delay)
                if self.graph.state(op.op_id) is OpState.IN_FLIGHT:
                    self.graph.requeue(op.op_id)
            finally:
                self._tasks -= 1
                self._wake_up()

        tg.start_soon(requeue_later)

    async def _skip_ready(self) -> None:
        reason = self._stop_reason or "stopped"
        for op in self.graph.ready_ops():
            if self.graph.state(op.op_id) is OpState.PENDING:
                cascades = self.graph.mark_skipped(op.op_id, reason)
                await self._emit(
                    Outcome(op.op_id, OutcomeState.SKIPPED, op.account_id, op.kind.value, reason=reason)
                )
                await self._emit_cascades(cascades)

    async def _emit_cascades(self, cascades: list[Cascade]) -> None:
        for c in cascades:
            op = self.graph.operation(c.op_id)
            state = OutcomeState.FAILED if c.state is OpState.FAILED else OutcomeState.SKIPPED
            reason = c.reason
            held = self._held.pop(c.op_id, None)
            if held is not None:  # the server said it created this, but its parent was never confirmed
                self.session.unknown(op)  # journaled as unknown: a later run looks it up first
                reason += f"; the server had answered it created {json.dumps(held, default=str)[:200]}"
            await self._emit(Outcome(c.op_id, state, op.account_id, op.kind.value, reason=reason))

    def _notify(self, event: EngineEvent) -> None:
        if self.observer is not None:
            try:
                self.observer(event)
            except Exception:  # an observer must never break a job
                logger.exception("engine observer failed on %s", type(event).__name__)

    async def _emit(self, outcome: Outcome) -> None:
        assert self._out is not None
        self._notify(OperationFinished(outcome))
        for table in (self._attempts, self._failures, self._lookup_failures, self._throttle_waits):
            table.pop(outcome.op_id, None)
        self.session.record(outcome)
        try:  # no event-loop round trip per outcome while the buffer has room (the engine's is unbounded)
            self._out.send_nowait(outcome)
        except anyio.WouldBlock:
            await self._out.send(outcome)
        if self._out.statistics().current_buffer_used > self.max_backlog:
            await self._wait_for_consumer()

    async def _wait_for_consumer(self) -> None:
        """Hold producers while the consumer lags, so memory stays bounded by the window, not the job.

        Why: a batch answer brings up to 50 outcomes in one event-loop turn while a consumer takes one per
        turn, so an unbounded buffer grew to ~90,000 outcomes in a 1,000,000-op job (bench/memory.py).
        The engine's stream stays unbounded (journal admission hands it outcomes without waiting); one
        waiter watches the buffer drain to half the limit, the other producers wait on its event.
        """
        assert self._out is not None
        if self._caught_up is not None:
            await self._caught_up.wait()
            return
        self._caught_up = caught_up = anyio.Event()
        try:
            # polled: an unbounded memory stream wakes no one when the consumer takes an outcome
            while self._out.statistics().current_buffer_used > self.max_backlog // 2:  # noqa: ASYNC110
                await anyio.sleep(0.001)
        finally:
            self._caught_up = None
            caught_up.set()


_USAGE_HEADERS = (BUC_HEADER, APP_HEADER, AD_ACCOUNT_HEADER, INSIGHTS_HEADER)
_CREATES_WITH_ID = frozenset(
    {
        OpKind.CREATE_CAMPAIGN,
        OpKind.CREATE_ADSET,
        OpKind.CREATE_CREATIVE,
        OpKind.CREATE_AD,
        OpKind.COPY,
        OpKind.COPY_ADSET,
        OpKind.COPY_AD,
    }
)


def _expects_id(op: Operation) -> bool:
    """Creates answer with the new object's id, except dry runs (``validate_only``: nothing is created)."""
    if op.kind not in _CREATES_WITH_ID:
        return False
    return "validate_only" not in str(op.params.get("execution_options", ""))
