"""Judging a batch's answer and carrying the judgement out: every entry goes to
:func:`~bulk_engine.execution.decide.decide` (the one place an answer is judged — its table is there), whose
action this part applies; every usage reading the answer carries goes to the governor, and a throttled
entry parks the (account, BUC).

An answer proving a sent op did not run (``decide.not_run``: parked, waiting for its parent, a definite
``Retry``) also clears the op's journaled intent, so a later run sends it again without a lookup. An
exception while handling an answer gives its ops an unknown outcome, never a silent "failed".
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from anyio.abc import TaskGroup

from bulk_engine.errors import JournalError
from bulk_engine.planning.batcher import PlannedBatch
from bulk_engine.planning.graph import Operation, OpKind, OpState
from bulk_engine.protocol.batch import BatchItemResult, decode_batch_response
from bulk_engine.protocol.usage import (
    AD_ACCOUNT_HEADER,
    APP_HEADER,
    BUC_HEADER,
    INSIGHTS_HEADER,
    UsageSnapshot,
    parse_usage_headers,
)

from .decide import (
    Action,
    Attempts,
    HandlingFailure,
    Hold,
    Reconcile,
    Retry,
    StopJob,
    Subject,
    Succeed,
    Wait,
    decide,
    not_run,
)
from .decide import Park as ParkAction
from .events import Throttled
from .governor import Ticket
from .run_state import TERMINAL
from .transitions import RunTransitions
from .transport import HttpAnswer

__all__ = ["AnswerHandling"]

logger = logging.getLogger("bulk_engine.runner")


class AnswerHandling(RunTransitions):
    """Judge the answers of a run's batches and carry the judgements out."""

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
            if self.graph.state(op.op_id) in TERMINAL:
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
