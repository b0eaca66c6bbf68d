"""Settling a run's operations: success, failure, skips and cascades become :class:`~bulk_engine.results.Outcome`
values on the run's stream (journaled, reported to the observer, with backpressure on a lagging consumer);
retries go back to the queue after their delay.

A success whose batch parent is not confirmed yet is held (``_held``) and settled with its parent; an op
that fails or is skipped while held is journaled as unknown (the server said it created it), so a later run
looks it up before sending it again.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import anyio
from anyio.abc import TaskGroup

from bulk_engine.planning.graph import Cascade, Operation, OpState
from bulk_engine.protocol.errors import GraphError
from bulk_engine.results import Outcome, OutcomeState

from .events import OperationFinished, RetryScheduled
from .run_state import RunState

__all__ = ["RunTransitions"]


class RunTransitions(RunState):
    """How an operation of the run is settled, or sent back to the queue."""

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

    def _requeue_unsent(self, ops: Sequence[Operation]) -> None:
        for op in ops:
            if self.graph.state(op.op_id) is OpState.IN_FLIGHT:
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
            reason = c.reason
            held = self._held.pop(c.op_id, None)
            if held is not None:  # the server said it created this, but its parent was never confirmed
                self.session.unknown(op)  # journaled as unknown: a later run looks it up first
                reason += f"; the server had answered it created {json.dumps(held, default=str)[:200]}"
            await self._emit(Outcome(c.op_id, state, op.account_id, op.kind.value, reason=reason))

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
