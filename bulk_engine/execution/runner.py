"""The async shell: feed batches through the governor, retry, resolve references, emit outcomes.

One :class:`Runner` runs one job. Its loop (single task, so the pure planning graph is never touched
concurrently) pulls operations from the job in windows, asks the :class:`~bulk_engine.planning.batcher.
Batcher` for batches of accounts that may send, starts one task per batch, and sleeps until a batch
returns, a retry comes due or a parked account may send again. Batch tasks wait in the governor,
POST the batch, and sort every entry into succeeded / retry / throttled / failed:

- ``null`` entries and malformed entries (S003 §Batch Requests → Timeouts) are retried alone — their
  successful siblings are never re-sent;
- throttled entries park their (account, BUC) in the governor and go back to the queue without using a
  retry attempt;
- transient errors retry with bounded exponential backoff and full jitter;
- auth errors (190/102…) fail the op and stop the job: every op not yet sent is skipped with the reason;
- permanent errors fail the op with the full Graph error, and its dependents are skipped.
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Any, Protocol

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectSendStream

from bulk_engine.config import EngineConfig
from bulk_engine.errors import TransportError
from bulk_engine.planning.batcher import Batcher, BatchLimits, PlannedBatch
from bulk_engine.planning.graph import Cascade, DependencyGraph, Operation, OpState, PlanningError
from bulk_engine.protocol.batch import BatchItemResult, BatchOp, decode_batch_response, encode_batch
from bulk_engine.protocol.errors import ErrorClass, GraphError
from bulk_engine.protocol.refs import Ref
from bulk_engine.protocol.usage import parse_usage_headers
from bulk_engine.results import JobStats, Outcome, OutcomeState

from .clock import Clock
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

logger = logging.getLogger("bulk_engine.runner")

BUC = "ads_management"
_TERMINAL = (OpState.SUCCEEDED, OpState.FAILED, OpState.SKIPPED)


class RunSession(Protocol):
    """The journal's hooks into a run (implemented by ``bulk_engine.persistence.JournalSession``).

    Intents are written before a batch is sent, outcomes once per batch; operations whose earlier attempt
    had an unknown outcome are looked up by their idempotency key before they are sent again.
    """

    def needs_lookup(self, op_id: str) -> bool: ...

    def unknown(self, op: Operation) -> None: ...

    def lookup_request(self, op: Operation, resolve: Callable[[Ref], Any]) -> BatchOp | str: ...

    def lookup_answer(self, op: Operation, body: Any) -> str | None: ...

    def before_send(self, ops: Sequence[Operation]) -> None: ...

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
        observer: Observer | None = None,
        session: RunSession | None = None,
    ) -> None:
        self.config = config
        self.session = session  # the journal (None: no intents, no reconciliation)
        self.observer = observer
        self.transport = transport
        self.governor = governor
        self.clock = clock
        self.retry = retry
        self.graph = DependencyGraph()
        self.batcher = Batcher(
            self.graph, BatchLimits(max_ops=config.max_batch_ops, max_ad_creates=config.max_ads_per_batch)
        )
        self.stats = JobStats()
        self._sends: dict[str, int] = {}  # batches in progress per account
        self._attempts: dict[str, int] = {}  # sends per op
        self._failures: dict[str, int] = {}
        self._throttle_waits: dict[str, int] = {}
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
            if self._stopped_accounts or self.halted:
                tg.cancel_scope.cancel()  # pending wake-ups and retry timers would wait out their delays
        if self.session is not None:
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
            parked = self.governor.parked_for(account, BUC)
            if parked > 0:
                self._schedule_wake(tg, parked)
                continue
            room = self.governor.pair(account, BUC).limit - self._sends.get(account, 0)
            if room <= 0:
                continue
            for batch in self._plan_batches(account, room, tg):
                self._sends[account] = self._sends.get(account, 0) + 1
                self._tasks += 1
                tg.start_soon(self._send, batch, tg)

    async def _offer_parks(self) -> None:
        """Tell ``on_park`` about each new park of an account with work; stop the account if it says so."""
        if self.on_park is None:
            return
        accounts = set(self.graph.ready_accounts()) | {a for a, n in self._sends.items() if n > 0}
        for account in sorted(accounts - self._stopped_accounts):
            state = self.governor.pair(account, BUC)
            seconds = state.parked_until - self.clock.monotonic()
            if seconds <= 0 or state.parked_until <= self._park_notified.get(account, 0.0) + 1.0:
                continue
            self._park_notified[account] = state.parked_until
            park = Park(account, BUC, seconds, "throttled" if state.throttle_events else "usage headers")
            if await self.on_park(park):
                self._stopped_accounts.add(account)
                self.stopped.append(park)
                for scope in self._waiting_sends.pop(account, set()):
                    scope.cancel()

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

    def _plan_batches(self, account: str, room: int, tg: TaskGroup) -> list[PlannedBatch]:
        """Up to ``room`` batches for ``account``, no more calls than fit under its ceiling right now.

        Near the ceiling a full batch would wait for 50 calls to age out while fewer fit at once; planning
        only what fits (the last batch smaller) keeps usage at the ceiling instead of a batch below it.
        """
        fit = self.governor.headroom(account, BUC)
        limits = self.batcher.limits
        if fit is None or fit >= room * limits.max_ops:
            return self.batcher.next_batches(accounts=[account], flush=True, max_per_account=room)
        if fit < 1:
            self._schedule_wake(tg, self.governor.headroom_wait(account, 1, BUC))
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
        status: int | None = None
        sent: tuple[str, ...] = ()  # op ids, once the batch is on its way (for the observer)
        session = self.session
        try:
            if session is not None and any(session.needs_lookup(op.op_id) for op in batch.ops):
                await self._reconcile(batch, tg)  # look flagged creates up first; the rest is re-planned
                return
            if self.halted:  # started just before a halt: not sent
                for op in batch.ops:
                    if self.graph.state(op.op_id) is OpState.IN_FLIGHT:
                        self.graph.requeue(op.op_id)
                return
            with anyio.CancelScope() as waiting:
                self._waiting_sends.setdefault(account, set()).add(waiting)
                ticket = await self.governor.acquire(account, len(batch), BUC)
            self._waiting_sends.get(account, set()).discard(waiting)
            if waiting.cancelled_caught:  # the account was stopped while this batch waited: not sent
                for op in batch.ops:
                    if self.graph.state(op.op_id) is OpState.IN_FLIGHT:
                        self.graph.requeue(op.op_id)
                return
            try:
                wire = self.batcher.render(batch)
                payload = encode_batch(wire)
                for op in batch.ops:
                    self._sends_inc(op.op_id)
                self.stats.http_requests += 1
                self.stats.graph_calls += len(wire)
                sent = tuple(op.op_id for op in batch.ops)
                self._notify(BatchSent(account, BUC, len(wire), sent))
                if session is not None:
                    session.before_send(batch.ops)  # the intent, committed before the request leaves
                answer = await self.transport.post_batch(payload)
                status = answer.status
            finally:
                self.governor.release(account, len(batch), BUC, ticket)
            await self._handle(batch, answer, tg, ticket)
        except TransportError as err:
            # The request may or may not have run: retry each op alone (creates get reconciled by the
            # journal layer before they are re-sent).
            self.stats.unknown_outcomes += len(batch.ops) if err.sent else 0
            for op in batch.ops:
                if err.sent and session is not None:
                    session.unknown(op)
                await self._retry_or_fail(op, tg, None, f"transport: {err}")
        except Exception:  # a bug must not strand ops in flight: fail them loudly
            logger.exception("internal error while sending a batch of %d ops", len(batch.ops))
            for op in batch.ops:
                if self.graph.state(op.op_id) not in _TERMINAL:
                    await self._fail(op, None, "internal error while sending (see logs)")
        finally:
            self._sends[account] -= 1
            self._tasks -= 1
            if sent:
                pair = self.governor.pair(account, BUC)
                parked = self.governor.parked_for(account, BUC)
                self._notify(
                    BatchDone(account, BUC, len(sent), sent, status, pair.last_pct, parked, pair.limit)
                )
            if session is not None:
                session.flush()  # this batch's outcomes: one transaction
            self.stats.peak_tracked_ops = max(self.stats.peak_tracked_ops, len(self.graph))
            self.graph.forget_settled(self.config.reference_horizon)  # memory bounded by the window
            if self.halted and not any(self._sends.values()):
                self.drained.set()
            self._wake_up()

    def _sends_inc(self, op_id: str) -> None:
        self._attempts[op_id] = self._attempts.get(op_id, 0) + 1

    async def _reconcile(self, batch: PlannedBatch, tg: TaskGroup) -> None:
        """Before re-sending creates whose earlier outcome is unknown, ask the server whether they exist.

        Each flagged op is looked up by its idempotency key (one GET per op, all in one batch): found →
        succeeded with that id, never sent again; not found → back to the queue, safe to send; the lookup
        failed → retried like a send (or the op fails: it is never re-sent blind). The batch's other ops go
        back to the queue and are re-planned with the results.
        """
        session = self.session
        assert session is not None
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
            for op, _ in lookups:
                self.graph.requeue(op.op_id)
            return
        if not lookups:
            return
        account = batch.account_id
        ticket = await self.governor.acquire(account, len(lookups), BUC)
        try:
            self.stats.http_requests += 1
            self.stats.graph_calls += len(lookups)
            self.stats.lookups += len(lookups)
            answer = await self.transport.post_batch(encode_batch([request for _, request in lookups]))
        except TransportError as err:
            for op, _ in lookups:
                await self._retry_or_fail(op, tg, None, f"idempotency lookup: transport: {err}")
            return
        finally:
            self.governor.release(account, len(lookups), BUC, ticket)
        envelope = parse_usage_headers(answer.headers, account_id=account)
        if not envelope.is_empty:
            self.governor.observe(account, envelope, BUC, ticket)
        payload: Any = answer.body if answer.body is not None else answer.text
        items = decode_batch_response(payload, len(lookups), http_status=answer.status)
        throttled = False
        for (op, _), item in zip(lookups, items, strict=True):
            if self.graph.state(op.op_id) in _TERMINAL:
                continue
            verdict = item.error_class
            if verdict is ErrorClass.OK:
                try:
                    found = session.lookup_answer(op, item.body)
                except ValueError as err:
                    await self._retry_or_fail(op, tg, None, f"idempotency lookup: {err}")
                    continue
                if found is None:
                    self.graph.requeue(op.op_id)  # it was never created: safe to send
                elif any(self.graph.state(dep) is not OpState.SUCCEEDED for dep in op.dependencies):
                    self.graph.requeue(op.op_id)  # found, but its parent is unresolved: look again later
                else:
                    self.stats.recovered += 1
                    await self._succeed(op, {"id": found})
            elif verdict is ErrorClass.THROTTLED:
                if not throttled:
                    usage = parse_usage_headers(item.headers, account_id=account)
                    parked = self.governor.throttled(account, BUC, usage)
                    throttled = True
                    error = item.error
                    code, subcode = (error.code, error.error_subcode) if error else (None, None)
                    pct = self.governor.usage_pct(account, BUC)
                    self._notify(Throttled(account, BUC, parked, code, subcode, pct))
                self.stats.throttle_events += 1
                await self._requeue_throttled(op, item.error)
            elif verdict is ErrorClass.TRANSIENT:
                await self._retry_or_fail(op, tg, item.error, "idempotency lookup: " + _describe(item))
            elif verdict is ErrorClass.AUTH:
                await self._fail(op, item.error, "access token rejected: " + _describe(item))
                self._stop_reason = "stopped: the access token was rejected; get a new token and resume"
            else:
                await self._fail(
                    op,
                    item.error,
                    "cannot tell whether an earlier attempt created it (idempotency lookup failed: "
                    f"{_describe(item)}); not sent again so as not to create a duplicate",
                )

    async def _handle(self, batch: PlannedBatch, answer: HttpAnswer, tg: TaskGroup, ticket: Ticket) -> None:
        account = batch.account_id
        envelope = parse_usage_headers(answer.headers, account_id=account)
        if not envelope.is_empty:
            self.governor.observe(account, envelope, BUC, ticket)
        payload: Any = answer.body if answer.body is not None else answer.text
        items = decode_batch_response(payload, len(batch.ops), http_status=answer.status)
        throttled = False
        # The last entry with usage headers reflects the whole batch: one reading per batch, parsed once.
        latest = next((item for item in reversed(items) if item.headers), None)
        for op, item in zip(batch.ops, items, strict=True):
            if self.graph.state(op.op_id) in _TERMINAL:
                continue  # skipped by a parent's failure earlier in this batch
            if item.outcome_unknown and self.session is not None:
                self.session.unknown(op)  # reconcile before it is sent again
            verdict = item.error_class
            if verdict is ErrorClass.OK:
                await self._succeed(op, item.body)
            elif verdict is ErrorClass.THROTTLED:
                if not throttled:
                    usage = parse_usage_headers(item.headers, account_id=account)
                    parked = self.governor.throttled(account, BUC, usage)
                    logger.warning("account %s throttled: parked for %.0f s", account, parked)
                    throttled = True
                    code, subcode = (
                        (item.error.code, item.error.error_subcode) if item.error else (None, None)
                    )
                    self._notify(
                        Throttled(account, BUC, parked, code, subcode, self.governor.usage_pct(account, BUC))
                    )
                self.stats.throttle_events += 1
                await self._requeue_throttled(op, item.error)
            elif self._waits_for_batch_parent(op, batch):
                self.graph.requeue(op.op_id)  # its parent in this batch will be retried; so will it
            elif verdict is ErrorClass.TRANSIENT:
                if item.outcome_unknown:
                    self.stats.unknown_outcomes += 1
                await self._retry_or_fail(op, tg, item.error, _describe(item))
            elif verdict is ErrorClass.AUTH:
                await self._fail(op, item.error, "access token rejected: " + _describe(item))
                self._stop_reason = (
                    f"stopped: the access token was rejected (code {item.error.code if item.error else '?'}); "
                    "get a new token and resume"
                )
            else:
                await self._fail(op, item.error, _describe(item))
        if latest is not None:
            self.governor.observe(
                account, parse_usage_headers(latest.headers, account_id=account), BUC, ticket
            )

    def _waits_for_batch_parent(self, op: Operation, batch: PlannedBatch) -> bool:
        """True when ``op`` referenced an op of the same batch that did not succeed (and is not over)."""
        for dep in op.dependencies:
            if dep in batch.names and self.graph.state(dep) in (OpState.PENDING, OpState.IN_FLIGHT):
                return True
        return False

    # --- transitions ----------------------------------------------------------------------------
    async def _succeed(self, op: Operation, result: Any) -> None:
        cascades = self.graph.mark_succeeded(op.op_id, result)
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

    async def _fail(self, op: Operation, error: GraphError | None, reason: str) -> None:
        cascades = self.graph.mark_failed(op.op_id, reason)
        await self._emit(
            Outcome(
                op.op_id,
                OutcomeState.FAILED,
                op.account_id,
                op.kind.value,
                error=error,
                reason=reason,
                attempts=self._attempts.get(op.op_id, 0),
            )
        )
        await self._emit_cascades(cascades)

    async def _retry_or_fail(
        self, op: Operation, tg: TaskGroup, error: GraphError | None, reason: str
    ) -> None:
        failures = self._failures.get(op.op_id, 0) + 1
        self._failures[op.op_id] = failures
        if not self.retry.should_retry(failures):
            await self._fail(op, error, f"gave up after {failures} attempts: {reason}")
            return
        self.stats.retries += 1
        delay = self.retry.delay(failures)
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

    async def _requeue_throttled(self, op: Operation, error: GraphError | None) -> None:
        waits = self._throttle_waits.get(op.op_id, 0) + 1
        self._throttle_waits[op.op_id] = waits
        if waits > self.config.retry.max_throttle_waits:
            await self._fail(op, error, f"still throttled after {waits - 1} waits")
            return
        self.graph.requeue(op.op_id)

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
            await self._emit(Outcome(c.op_id, state, op.account_id, op.kind.value, reason=c.reason))

    def _notify(self, event: EngineEvent) -> None:
        if self.observer is not None:
            try:
                self.observer(event)
            except Exception:  # an observer must never break a job
                logger.exception("engine observer failed on %s", type(event).__name__)

    async def _emit(self, outcome: Outcome) -> None:
        assert self._out is not None
        self._notify(OperationFinished(outcome))
        for table in (self._attempts, self._failures, self._throttle_waits):
            table.pop(outcome.op_id, None)
        if self.session is not None:
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


def _describe(item: BatchItemResult) -> str:
    if item.is_null:
        return "batch entry was null (partial timeout)"
    if item.malformed:
        return f"malformed batch entry: {item.malformed}"
    err = item.error
    if err is None:
        return f"HTTP {item.status}"
    sub = f"/{err.error_subcode}" if err.error_subcode else ""
    return f"Graph error {err.code}{sub}: {err.message}"
