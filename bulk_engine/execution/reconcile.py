"""Reconciling unknown outcomes: before re-sending a create whose earlier outcome is unknown, look it up by its
idempotency key (found → succeeded with that id, never sent again; not found → safe to send); and
:meth:`~Reconciliation.probe`, one read judged like any answer (the engine's rebuild probes).

A failed lookup is judged like any read by :func:`~bulk_engine.execution.decide.decide`, with a retry budget
of its own: retried, parked, or the op fails — never re-sent blind.
"""

from __future__ import annotations

from typing import Any

from anyio.abc import TaskGroup

from bulk_engine.errors import TransportError
from bulk_engine.planning.batcher import PlannedBatch
from bulk_engine.planning.graph import Operation, OpState
from bulk_engine.protocol.batch import BatchOp, encode_batch

from .answers import AnswerHandling
from .charging import READS_OF_AD_OBJECTS
from .decide import LOOKUP, Action, Attempts, Fail, HandlingFailure, Retry, Succeed, TransportFailure, decide
from .decide import Park as ParkAction
from .events import BatchSent
from .run_state import TERMINAL

__all__ = ["Reconciliation"]


class Reconciliation(AnswerHandling):
    """Idempotency lookups of a run's flagged creates, and single reads judged like any answer."""

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
            if self.graph.state(op.op_id) in TERMINAL:
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
            if self.graph.state(op.op_id) in TERMINAL:
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
