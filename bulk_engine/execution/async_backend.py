"""The async backend: hand Meta request sets of up to 1,000 calls and collect their results (issue 18).

S003 §Asynchronous and Batch Requests → Batch API: ``POST act_<id>/async_batch_requests`` (``name``,
``adbatch``) answers a request set id at once; "Facebook processes each independent operation in parallel
processes and your dependent operations sequentially"; ``GET /<set id>`` tells its progress and
``GET /<set id>/requests`` each request's result. :class:`AsyncRunner` is the sync :class:`~.runner.Runner`
with one more way to send: before it packs sync batches for an account, it claims the account's ready
creates, copies and updates as request sets (``planning/request_sets.py``: ≤ 1,000, POST only, chains kept
in one set with ``{result=NAME:$.id}``, real ids across sets) and runs one task per set:

1. **Submit.** The governor books the set's calls (the server charges them to the account as it works;
   the wait is cut short by a stop like a batch's), the set's unique name is journaled as a "submitting"
   ``AsyncSetRecord`` (no id yet), then the ops' intents (as before a sync batch), then the set is POSTed.
   The answer is judged by :func:`~.decide.decide`, the set as one keyed create: a refusal fails, parks or
   retries the ops as it would a batch's; an unknown answer (a connection dropped after sending) is
   reconciled by finding the set by its name in ``GET act_<id>/async_requests`` (:meth:`_resolve`) —
   found: followed; absent on two reads a little apart: nothing ran, the ops are sent again; the listing
   unreadable after a few reads with backoff: the ops end "still running" (unknown) and the record stays,
   so the next run resolves the set by its name first. Never a lookup by each op's key while the set may
   exist: its requests may still be waiting on the server, so a key lookup proves nothing.
2. **Journal the set id** on the record before the first poll. A run killed from the submit on finds the
   record when the job runs again (:meth:`_adopt_journaled`): with an id it polls the set, without one it
   resolves the set by its name first; either way it never submits the ops a second time.
3. **Poll** ``GET /<set id>`` with a backoff (``AsyncBatchConfig.poll_initial_s`` doubling up to
   ``poll_max_s``); each poll is a call the governor paces and whose usage headers it reads.
4. **Collect** every request's result (cursor-paged) and judge each as the sync batch entry it stands for
   (:func:`~bulk_engine.protocol.async_batch.request_item`, then ``decide`` in the set's dependency order):
   the same ``Outcome`` and Graph error shapes as the sync path; a request whose parent failed is skipped
   with its parent's reason (the dependency cascade), one whose parent is retried waits for it. A status
   that cannot be read does not end the polling (it goes on until the deadline); a request missing from the
   results of a set not completed is still running, never looked up.

Limits and failures: a set still incomplete ``deadline_s`` after it was submitted (or when the run is
stopped: ``request_stop``) is canceled (``DELETE /<set id>``, which cancels the requests "not processed
yet"); whatever the DELETE answers, the set gets ``_GRACE_POLLS`` more reads ``poll_initial_s`` apart and is
then given up; canceled requests are skipped with the reason (on a stop: left unfinished, so a resume sends
them); one still running when the set is given up is failed as "may still run on the server" with its
unknown flag journaled, and the set stays journaled so the next run reads its result from it. Ops a set cannot
carry (reads, deletes, image uploads), ops sent again after a retry or a lookup, and a remainder too small
for a set (``min_set_ops``) or too big for the account's headroom go out as sync batches.

The reads of a set (find by name, poll, cancel, results) are in ``execution/async_reads.py``.

Run options: ``auto`` (:attr:`AsyncRunner.choose`) decides at the first dispatch on the operations admitted
by then; ``detach`` (``BulkEngine.run(..., detach_sets=True)``, the Airflow operators when deferrable) leaves
each set once submitted — its account stops and ``JobResult.stopped`` names the set — and the next run
collects it. A run whose backend is sync still collects the sets an earlier run left in the journal.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import anyio
from anyio.abc import TaskGroup

from bulk_engine.config import EngineConfig
from bulk_engine.errors import JournalError, TransportError
from bulk_engine.persistence.journal import AsyncSetRecord
from bulk_engine.persistence.keys import Safety
from bulk_engine.planning.batcher import PlannedBatch
from bulk_engine.planning.graph import Operation, OpState
from bulk_engine.planning.request_sets import ASYNC_KINDS, BackendChoice, next_request_set
from bulk_engine.protocol.async_batch import (
    FINISHED,
    SetProgress,
    answer_item,
    encode_adbatch,
    request_item,
    request_status,
)
from bulk_engine.protocol.batch import BatchItemResult
from bulk_engine.results import Outcome, OutcomeState

from .async_reads import SetReads, SetTally
from .clock import Clock
from .decide import (
    Answer,
    Attempts,
    Fail,
    HandlingFailure,
    Reconcile,
    StillRunning,
    Subject,
    Succeed,
    TransportFailure,
    decide,
)
from .decide import Park as ParkAction
from .events import AsyncSetProgress, BatchSent, Observer, Park
from .governor import Governor
from .retry import RetryPolicy
from .runner import Runner, RunSession
from .transport import GraphTransport

__all__ = ["AsyncRunner", "SetSession", "SetTally"]

logger = logging.getLogger("bulk_engine.async_backend")

_SET = Subject(Safety.KEYED, expects_id=True)
"""The submit judged as one create: the set, keyed by its unique name (found by it after an unknown answer)."""


class SetSession(RunSession, Protocol):
    """The journal hooks the async backend needs beyond a sync run's (``JournalSession`` has them)."""

    job_id: str

    def pending_sets(self) -> list[AsyncSetRecord]: ...

    def set_submitted(self, record: AsyncSetRecord) -> None: ...

    def set_collected(self, record: AsyncSetRecord) -> None: ...

    def adopt(self, op_ids: Sequence[str]) -> None: ...


class AsyncRunner(Runner, SetReads):
    """A :class:`Runner` that sends what it can as async request sets (see the module docstring)."""

    session: SetSession

    def __init__(
        self,
        config: EngineConfig,
        transport: GraphTransport,
        governor: Governor,
        clock: Clock,
        retry: RetryPolicy,
        session: SetSession,
        observer: Observer | None = None,
        *,
        submit_sets: bool = True,
        choose: Callable[[Sequence[Operation]], BackendChoice] | None = None,
        detach: bool = False,
    ) -> None:
        super().__init__(config, transport, governor, clock, retry, session, observer)
        self.sets = SetTally()
        self._adopted = False
        self._pending: list[AsyncSetRecord] | None = None  # the journal's uncollected sets (read once)
        self._adopted_ops: set[str] = set()  # ops of those sets this run follows already
        self._resolved: dict[str, AsyncSetRecord] = {}  # journaled "submitting" sets found by name, by name
        self._kept: set[str] = set()  # names of sets given up in this run: left journaled for the next
        self._submitting: dict[int, AsyncSetRecord] = {}  # id(planned) -> its journaled "submitting" record
        self._naps: set[anyio.CancelScope] = set()  # waits between polls: a stop cuts them short
        self.submit_sets = submit_sets  # False: only collect the sets an earlier run submitted (a sync run)
        # backend auto: decides at the first dispatch, on the operations admitted by then (the whole job, or
        # a streamed job's first window); its choice is the run's (JobResult.backend / backend_reason)
        self.choose = choose
        self.choice: BackendChoice | None = None
        # detach (BulkEngine.run(..., detach_sets=True)): leave a set Meta is still processing instead of
        # polling it; its account stops (its ops stay unfinished) and ``stopped`` names the set to wait for
        self.detach = detach

    # --- dispatch --------------------------------------------------------------------------------
    def _dispatch(self, tg: TaskGroup) -> None:
        if not self._adopted:
            self._adopted = True
            if self.choose is not None:
                self.choice = self.choose(self.graph.operations())
                self.submit_sets = self.choice.backend == "async"
        if self._pending is None or self._pending:
            self._adopt_journaled(tg)
        if self.submit_sets and not self.halted:
            for account in self.graph.ready_accounts():
                self._dispatch_sets(account, tg)
        super()._dispatch(tg)

    def _dispatch_sets(self, account: str, tg: TaskGroup) -> None:
        if account in self._stopped_accounts:
            return
        cfg = self.config.async_batch
        while True:
            buc = self._next_buc(account)
            if self.governor.parked_for(account, buc) > 0:
                return  # the sync dispatch schedules the wake-up
            fit = self.governor.headroom(account, buc)
            limit = cfg.max_requests if fit is None else min(cfg.max_requests, fit)
            if limit < cfg.min_set_ops:
                return
            planned = next_request_set(
                self.graph, account, max_requests=limit, min_requests=cfg.min_set_ops, eligible=self._eligible
            )
            if planned is None:
                return
            self._start(planned, None, tg)

    def _eligible(self, op: Operation) -> bool:
        """A first send of a POST a set can carry; retries and lookups go the sync way."""
        return (
            op.method == "POST"
            and op.kind in ASYNC_KINDS
            and op.op_id not in self._attempts
            and op.op_id not in self._failures
            and not self.session.needs_lookup(op.op_id)
        )

    def _start(self, planned: PlannedBatch, record: AsyncSetRecord | None, tg: TaskGroup) -> None:
        account = planned.account_id
        self._sends[account] = self._sends.get(account, 0) + 1
        self._tasks += 1
        tg.start_soon(self._run_set, planned, record, tg)

    def _adopt_journaled(self, tg: TaskGroup) -> None:
        """Sets an earlier run submitted and did not collect: poll them, never submit their ops again.

        Checked at every dispatch, so the ops of a streamed job (a resume streams an ordered plan) are
        adopted as their window is admitted — before the sync dispatch could look them up by key while
        Meta may still be running them. A set whose ops are all settled is marked collected."""
        if self._pending is None:
            self._pending = self.session.pending_sets()
        for journaled in list(self._pending):
            record = self._resolved.get(journaled.name, journaled)
            ops: list[Operation] = []
            names: dict[str, str] = {}
            settled = True
            for name, op_id in record.names:
                if op_id not in self.graph:
                    settled = False  # not admitted yet (a later window), or forgotten
                    continue
                state = self.graph.state(op_id)
                if state is OpState.PENDING and op_id not in self._adopted_ops:
                    ops.append(self.graph.operation(op_id))
                    names[op_id] = name
                elif state in (OpState.PENDING, OpState.IN_FLIGHT):
                    settled = False
            if not ops:
                if settled and record.name not in self._kept:  # every op settled (results journaled first)
                    self.session.set_collected(record)
                    self._pending.remove(journaled)
                continue
            self._adopted_ops.update(names)
            self.graph.mark_in_flight(op.op_id for op in ops)
            self.session.adopt([op.op_id for op in ops])
            logger.info(
                "job %s: following request set %s (%r) submitted by an earlier run",
                record.job_id,
                record.set_id or "without a journaled id",
                record.name,
            )
            self._start(PlannedBatch(record.account_id, tuple(ops), names), record, tg)

    # --- one set ---------------------------------------------------------------------------------
    async def _run_set(self, planned: PlannedBatch, record: AsyncSetRecord | None, tg: TaskGroup) -> None:
        account = planned.account_id
        following = False
        try:
            if record is None:
                record = await self._submit(planned, tg)
            elif record.set_id is None:  # journaled "submitting": found by its name before anything else
                record = await self._adopt_submitting(planned, record, tg)
            if record is not None:
                following = True
                self.sets.in_progress += 1
                await self._collect(planned, record, tg)
        except Exception as err:  # nothing in an answer may crash the engine or strand an op
            if isinstance(err, JournalError):
                raise
            submitting = self._submitting.get(id(planned))
            if record is None and submitting is not None:  # journaled and maybe POSTed: the set may exist
                await self._abandon(planned, submitting, err, tg)
            elif record is None:  # before anything was sent: judged like any unexpected error
                await self._unexpected(planned.ops, err, tg)
            else:  # the set is journaled and Meta may still run it: never re-sent in this run
                await self._abandon(planned, record, err, tg)
        finally:
            self._submitting.pop(id(planned), None)
            if following:
                self.sets.in_progress -= 1
            self._sends[account] -= 1
            self._tasks -= 1
            self.session.flush()
            self.stats.peak_tracked_ops = max(self.stats.peak_tracked_ops, len(self.graph))
            self.graph.forget_settled(self.config.reference_horizon)
            if self.halted and not any(self._sends.values()):
                self.drained.set()
            self._wake_up()

    async def _submit(self, planned: PlannedBatch, tg: TaskGroup) -> AsyncSetRecord | None:
        """POST the set; its journaled record once Graph gave it an id (``None``: the ops were judged).

        The set's unique ``name`` is journaled before the POST (a "submitting" record, no id yet), so a run
        killed before the answer was journaled finds the set by that name. The answer is judged once for the
        set as a keyed create (its key: the name): an unknown answer (a connection lost after sending, a 5xx
        without proof) is reconciled by finding the set by its name (:meth:`_resolve`) before any op is sent
        again — its requests may still be waiting on the server, so a lookup of the ops' own keys could not
        prove them absent yet.
        """
        account = planned.account_id
        ops = planned.ops
        buc = self.charges.of_batch(ops)
        wire = planned.to_batch_ops(self.graph.resolve_ref)
        adbatch = encode_adbatch(wire)  # the documented limits, checked before anything is sent
        name = f"bulk-engine {self.session.job_id[:120]} {uuid.uuid4().hex[:16]}"
        if self.halted:
            self._requeue_unsent(ops)
            return None
        with anyio.CancelScope() as waiting:  # a stop (or the account's) cuts the wait short, as a batch's
            self._waiting_sends.setdefault(account, set()).add(waiting)
            ticket = await self.governor.acquire(account, len(ops), buc)
        self._waiting_sends.get(account, set()).discard(waiting)
        if waiting.cancelled_caught:  # stopped while the set waited for the governor: not sent
            self._requeue_unsent(ops)
            return None
        status: int | None = None
        ids = tuple(op.op_id for op in ops)
        names = tuple((planned.names[op.op_id], op.op_id) for op in ops)
        record = AsyncSetRecord(self.session.job_id, name, account, names, self.clock.wall())
        answer: Answer
        try:
            for op in ops:
                self._sends_inc(op.op_id)
            self.stats.http_requests += 1
            self.stats.graph_calls += len(ops)
            self._notify(BatchSent(account, buc, len(ops), ids))
            self.session.set_submitted(record)  # "submitting": its name, before the intents and the POST
            self._submitting[id(planned)] = record
            self.session.before_send(ops)  # the intents, committed before the set leaves
            try:
                http = await self.transport.post(
                    f"{account}/async_batch_requests", {"name": name, "adbatch": adbatch}
                )
            except TransportError as err:
                answer = TransportFailure(str(err), err.sent)
            else:
                status = http.status
                answer = answer_item(http.status, http.headers, http.body, http.text)
                self._observe(account, buc, http, [answer], ticket)
        finally:
            self.governor.release(account, len(ops), buc, ticket)
            self._batch_done(account, buc, ids, status)
        verdict = decide(_SET, answer, Attempts(), self.policy)
        set_id: str | None = None
        if isinstance(verdict, Succeed) and isinstance(verdict.result, dict) and verdict.result.get("id"):
            set_id = str(verdict.result["id"])
        elif isinstance(verdict, Succeed | Reconcile) or (
            isinstance(verdict, Fail) and verdict.unknown
        ):  # no set id we can follow: find the set by its name before anything is sent again
            found = await self._resolve(account, name)
            if found == "":  # the set does not exist (two reads agree): nothing of it ran
                self._absent(planned, record, "async submit answer lost; no set was created", tg)
                return None
            if found is None:  # the set may exist: its ops may still run, so none is looked up or re-sent
                self._kept.add(name)
                await self._give_up(
                    planned,
                    f"the answer to submitting request set {name!r} was lost and the account's sets could "
                    "not be read",
                    tg,
                )
                return None
            set_id = found
        if set_id is None:  # refused with proof: no set was created
            self.session.set_collected(record)
            await self._judge_all(planned, buc, answer, tg)
            return None
        record = dataclasses.replace(record, set_id=set_id)
        self.session.set_submitted(record)  # journaled before the first poll
        self.sets.submitted += 1
        self.sets.set_ids.append(set_id)
        self._notify(AsyncSetProgress(account, set_id, "submitted", len(ops), 0))
        return record

    async def _adopt_submitting(
        self, planned: PlannedBatch, record: AsyncSetRecord, tg: TaskGroup
    ) -> AsyncSetRecord | None:
        """An earlier run journaled this set as submitting and never its id (killed around the POST): find
        it by its name before anything else; absent: its ops were never carried out and go out again;
        unreadable: they stay unknown, the record stays for the next run."""
        found = await self._resolve(planned.account_id, record.name)
        if found == "":
            self._absent(planned, record, "an earlier run's request set was never created", tg)
            return None
        if found is None:
            self._kept.add(record.name)
            await self._give_up(
                planned, f"request set {record.name!r} of an earlier run could not be found or ruled out", tg
            )
            return None
        record = dataclasses.replace(record, set_id=found)
        self.session.set_submitted(record)
        self._resolved[record.name] = record
        return record

    def _absent(self, planned: PlannedBatch, record: AsyncSetRecord, reason: str, tg: TaskGroup) -> None:
        """The set was proved never created: its ops did not run and are sent again (no key lookup)."""
        self.stats.lookups += 1
        self.session.set_collected(record)
        for op in planned.ops:
            if self.graph.state(op.op_id) is OpState.IN_FLIGHT:
                self.session.not_sent(op.op_id)
                self._requeue_later(op, self.retry.delay(1), reason, tg)

    async def _judge_all(self, planned: PlannedBatch, buc: str, answer: Answer, tg: TaskGroup) -> None:
        """A submit refused (or unknown and its set not findable): each op judged as a batch entry
        carrying that answer, in dependency order (a parent's failure skips its children)."""
        parked = False
        for op in planned.ops:
            if self.graph.state(op.op_id) is not OpState.IN_FLIGHT:
                continue
            action = decide(self._subject(op, planned), answer, self._tries(op), self.policy)
            if isinstance(action, ParkAction) and not parked and isinstance(answer, BatchItemResult):
                parked = True
                self._park(planned.account_id, buc, answer, action)
            await self._apply_sent(op, action, tg)

    async def _collect(self, planned: PlannedBatch, record: AsyncSetRecord, tg: TaskGroup) -> None:
        """Poll until the set completes (or is given up), then settle each of its ops from its result."""
        account = planned.account_id
        assert record.set_id is not None
        set_id = record.set_id
        progress: SetProgress | None = None
        if self.detach and not self.halted:  # leave it to Meta unless it is done already
            fresh = set_id in self.sets.set_ids  # submitted by this run: Meta has not started
            progress = None if fresh else await self._progress(account, record)
            if fresh or (progress is not None and not progress.is_completed):
                self._detach(planned, record)
                return
        if progress is None or not progress.is_completed:  # (an unreadable set is polled as usual)
            progress = await self._poll(account, record)
        results = await self._results(account, record)
        completed = progress is not None and progress.is_completed
        complete = await self._settle(planned, record, results, completed, tg)
        self.session.flush()
        if complete and progress is not None and progress.is_completed:
            self.session.set_collected(record)
            self.sets.done += 1
            self._notify(AsyncSetProgress(account, set_id, "done", progress.total, progress.total))
        else:
            self._kept.add(record.name)  # what did not finish is read from it by the next run

    async def _abandon(
        self, planned: PlannedBatch, record: AsyncSetRecord, err: Exception, tg: TaskGroup
    ) -> None:
        """An unexpected error while following a submitted set: its unsettled ops may still run on the
        server, so each is judged "still running" (failed, flagged unknown); the set stays journaled and the
        next run reads their results from it."""
        failure = HandlingFailure.of(err)
        logger.warning("request set %s: unexpected %s: %s", record.set_id, failure.kind, failure.message)
        self._kept.add(record.name)
        await self._give_up(
            planned,
            f"request set {record.set_id or record.name} was left after an unexpected {failure.kind}",
            tg,
        )

    async def _give_up(self, planned: PlannedBatch, message: str, tg: TaskGroup) -> None:
        """The set may exist and its requests may still run: each unsettled op is judged "still running"
        (failed, flagged unknown, never re-sent in this run); the next run resolves the set first."""
        running = StillRunning(message)
        for op in planned.ops:
            if self.graph.state(op.op_id) is OpState.IN_FLIGHT and op.op_id not in self._held:
                await self._apply(op, decide(self._subject(op), running, self._tries(op), self.policy), tg)

    def _detach(self, planned: PlannedBatch, record: AsyncSetRecord) -> None:
        """Stop waiting for ``record`` in this run: its ops go back unsent-in-this-run (its account is stopped,
        so nothing sends them) and the run ends with a hold naming the set; the next run adopts it."""
        account = planned.account_id
        for op in planned.ops:
            if self.graph.state(op.op_id) is OpState.IN_FLIGHT:
                self.graph.requeue(op.op_id)
        if account not in self._stopped_accounts:
            self._stopped_accounts.add(account)
        self._kept.add(record.name)
        reason = f"async request set {record.set_id}: Meta is processing it"
        self.stopped.append(
            Park(
                account,
                self.charges.of_batch(planned.ops),
                self.config.async_batch.poll_initial_s,
                reason,
                "async_set",
                record.set_id,
            )
        )

    def halt(self) -> None:
        super().halt()
        for scope in list(self._naps):
            scope.cancel()

    async def _settle(
        self,
        planned: PlannedBatch,
        record: AsyncSetRecord,
        results: dict[str, dict[str, Any]],
        completed: bool,
        tg: TaskGroup,
    ) -> bool:
        """Judge each op's request in dependency order; True when every op got a definite answer. A request
        without a result in a set not known to be completed is still running (it may yet run): never a
        lookup by key; missing from a completed set, it is unknown and reconciled by key."""
        names = dict((op_id, name) for name, op_id in record.names)
        complete = True
        parked = False
        account = planned.account_id
        buc = self.charges.of_batch(planned.ops)
        for index, op in enumerate(planned.ops):
            if self.graph.state(op.op_id) is not OpState.IN_FLIGHT:
                continue  # settled by a parent's failure earlier in this set
            request = results.get(names.get(op.op_id, ""))
            status = request_status(request) if request is not None else "missing"
            try:
                if status == "canceled":
                    await self._canceled(op, record)
                    continue
                if status in FINISHED:
                    assert request is not None
                    item = request_item(index, request)
                    action = decide(self._subject(op, planned), item, self._tries(op), self.policy)
                    if isinstance(action, ParkAction) and not parked:
                        parked = True
                        self._park(account, buc, item, action)
                elif request is None and completed:
                    complete = False
                    missing = HandlingFailure(
                        "AsyncRequestMissing", f"request set {record.set_id} has no result for it"
                    )
                    action = decide(self._subject(op), missing, self._tries(op), self.policy)
                elif self.halted:  # the set stays journaled: the resume reads this result from it
                    complete = False
                    self.graph.requeue(op.op_id)
                    continue
                else:
                    complete = False
                    shows = "no result" if request is None else status
                    running = StillRunning(f"request set {record.set_id} still shows {shows} for it")
                    action = decide(self._subject(op), running, self._tries(op), self.policy)
                await self._apply_sent(op, action, tg)
            except JournalError:
                raise
            except Exception as err:  # one odd request must not decide its siblings' fate
                await self._unexpected([op], err, tg)
        return complete

    async def _canceled(self, op: Operation, record: AsyncSetRecord) -> None:
        """Canceled before it ran (a stop or the deadline): definitely not carried out. Past the set's
        deadline it is skipped with the reason; canceled by a stop it is left to be sent again (unfinished
        in this run; a resume sends it)."""
        self.session.not_sent(op.op_id)
        if self.halted or self.clock.wall() < record.submitted_at + self.config.async_batch.deadline_s:
            self.graph.requeue(op.op_id)
            return
        reason = (
            f"request set {record.set_id} did not complete within {self.config.async_batch.deadline_s:g} s: "
            "canceled before it ran"
        )
        cascades = self.graph.mark_skipped(op.op_id, reason)
        await self._emit(Outcome(op.op_id, OutcomeState.SKIPPED, op.account_id, op.kind.value, reason=reason))
        await self._emit_cascades(cascades)
