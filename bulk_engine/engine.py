"""The :class:`BulkEngine` facade: ``async with BulkEngine(config) as engine: await engine.run(job)``.

A job is an iterable or async iterable of :class:`~bulk_engine.planning.graph.Operation`; operations
reference each other with :class:`~bulk_engine.protocol.refs.Ref` (never hand-written
``{result=…}`` strings). A list or tuple is validated whole before anything is sent (unknown references,
cycles, duplicates → :class:`~bulk_engine.errors.JobValidationError`); an iterator is read in windows of
``EngineConfig.window_ops`` so memory is bounded by the window, not the job.

With a journal (``BulkEngine(config, journal=SqliteJournal("jobs.db"))``) a run is durable and creates are
exactly-once: every operation's plan, intent (before the request leaves) and outcome are journaled;
``engine.run(job, job_id=...)`` again, or ``engine.resume(job_id)`` from the journal alone, finishes an
interrupted job without re-sending what succeeded; creates carry idempotency keys and are reconciled
with the server after an unknown outcome (``docs/exactly-once.md``); each window of operations passes that
journal admission (:mod:`bulk_engine.admission`) before the runner sends it. Each run also records its
figures in the journal (a ``RunRecord``: at its start, every ``GovernorConfig.persist_every_s`` of wall
time, at its end), so ``JobResult.all_runs`` can count every run of the job, not just the last.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import random
import uuid
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Sequence,
)
from contextlib import aclosing
from typing import Any

import anyio

from .admission import Admission
from .config import Backend, EngineConfig
from .errors import BulkEngineError, ConfigError, JobValidationError, JournalError
from .execution.async_backend import AsyncRunner
from .execution.clock import Clock, SystemClock
from .execution.events import Observer, Park, Waiting
from .execution.governor import Governor
from .execution.retry import RetryPolicy
from .execution.runner import Runner
from .execution.transport import GraphTransport
from .persistence.codec import job_fingerprint, plan_text
from .persistence.ephemeral import EphemeralJournal
from .persistence.journal import Journal, RunState
from .persistence.session import JournalSession, load_operations
from .planning.graph import Operation, PlanningError
from .planning.request_sets import BackendChoice, choose_backend
from .results import JobResult, JobStats, Outcome, OutcomeState, RunTotals
from .scrub import Scrubber
from .wording import duration, wait_subject

OperationSource = Iterable[Operation] | AsyncIterable[Operation]
logger = logging.getLogger("bulk_engine.engine")


OnPark = Callable[[Park], Awaitable[bool]]
"""``on_park(park) -> stop?``: see :class:`~bulk_engine.execution.events.Park`."""

_REFRESH_FLOOR_S = 0.05  # persist_every_s=0 ("write at every chance") must not spin the run-record timer


class BulkEngine:
    """Runs bulk jobs against the Graph API (or any Graph-compatible URL such as the simulator)."""

    def __init__(
        self,
        config: EngineConfig,
        *,
        clock: Clock | None = None,
        observer: Observer | None = None,
        journal: Journal | None = None,
    ) -> None:
        self.config = config
        self.journal = journal  # durable runs, resume and exactly-once creates (None: none of these)
        self.clock = clock or SystemClock()
        self.observer = observer  # receives execution.events (batches, retries, throttles, outcomes)
        self._transport: GraphTransport | None = None
        self._runners: set[Runner] = set()  # the runs in progress (request_stop halts them)
        self._stop_requested = False
        self._governor: Governor | None = None  # one per engine: every task and run of it paces together

    def __repr__(self) -> str:
        return f"BulkEngine(graph_url={self.config.graph_url!r}, api_version={self.config.api_version!r})"

    async def __aenter__(self) -> BulkEngine:
        self._transport = await GraphTransport(self.config).__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._transport is not None:
            await self._transport.__aexit__(*exc)
            self._transport = None

    # --- graceful stop -------------------------------------------------------------------------------
    def request_stop(self) -> None:
        """Stop sending, gracefully (SIGINT / SIGTERM): nothing new is sent from now on, by any run of this engine.

        Batches already in flight finish: their answers are emitted as outcomes and journaled, so nothing is
        left with an unknown outcome. Each run then returns with the operations it did not finish in
        ``JobResult.unfinished`` (neither failed nor skipped: a journaled job resumes them). Later runs send
        nothing. Await :meth:`wait_drained` to know when the last in-flight batch has answered.
        """
        self._stop_requested = True
        for runner in list(self._runners):
            runner.halt()

    @property
    def stop_requested(self) -> bool:
        return self._stop_requested

    async def wait_drained(self) -> None:
        """After :meth:`request_stop`: return once no batch of any run of this engine is in flight."""
        while True:
            busy = [runner for runner in self._runners if not runner.drained.is_set()]
            if not busy:
                return
            await busy[0].drained.wait()

    @property
    def governor(self) -> Governor:
        """The engine's pacing, shared by all its runs; started from the journal's memory of earlier runs
        (parks still running, recent readings) and written back to it (``docs/scale.md``)."""
        if self._governor is None:
            governor = Governor(self.config.governor, self.clock)
            governor.announce = self._announce
            if self.journal is not None:
                governor.restore(self.journal.load_pacing())
                governor.persist = self.journal.save_pacing
                governor.refresh = self.journal.load_pacing
            self._governor = governor
        return self._governor

    def _announce(self, waiting: Waiting) -> None:
        """A wait longer than a few seconds: a log line and an event, never silence."""
        usage = "unknown" if waiting.usage_pct is None else f"{waiting.usage_pct:.0f} %"
        logger.info(
            "%s waits %s: %s (usage %s)",
            wait_subject(waiting.scope, waiting.account_id, waiting.buc_type),
            duration(waiting.seconds / self.clock.scale),
            waiting.reason,
            usage,
        )
        if self.observer is not None:
            try:
                self.observer(waiting)
            except Exception:  # an observer must never break a job
                logger.exception("engine observer failed on Waiting")

    def _new_runner(
        self,
        session: JournalSession,
        backend: str = "sync",
        *,
        submit_sets: bool = True,
        choose: Callable[[Sequence[Operation]], BackendChoice] | None = None,
        detach: bool = False,
    ) -> Runner:
        if self._transport is None:
            raise RuntimeError("use 'async with BulkEngine(config) as engine'")
        rng = random.Random(self.config.seed)
        retry = RetryPolicy(self.config.retry, rng)
        args = (self.config, self._transport, self.governor, self.clock, retry, session, self.observer)
        if backend == "async":  # request sets first
            return AsyncRunner(*args, submit_sets=submit_sets, choose=choose, detach=detach)
        return Runner(*args)

    def stream(
        self,
        job: OperationSource,
        *,
        job_id: str | None = None,
        fingerprint: str | None = None,
        on_park: OnPark | None = None,
        backend: Backend | None = None,
        detach_sets: bool = False,
    ) -> JobRun:
        """Yield each operation's terminal outcome as soon as it is known; the run's figures are in
        ``.result`` once the stream is exhausted (``async for o in (run := engine.stream(job)): …;
        run.result``).

        With a journal, ``job_id`` names the job in it (default: a new id) and ``fingerprint`` identifies
        its content (default for a list: a hash of its plan; pass ``JobSpec.fingerprint()`` for job files).
        Options are per call: concurrent runs on one engine never share figures. ``backend`` overrides
        ``EngineConfig.backend`` for this run (``sync``, ``async`` or ``auto``; the result says which ran, why).
        ``detach_sets``: leave each async request set once submitted (or found still processing) instead of
        polling it: its account stops, and ``result.stopped`` names the set (``Park.set_id``) to wait for
        before running the job again (the Airflow operators defer on it).
        """
        the_id = job_id or uuid.uuid4().hex
        run = JobRun(the_id, self.clock.monotonic())
        run._inner = self._stream(
            job,
            the_id,
            fingerprint,
            job_id is not None,
            on_park,
            run,
            backend or self.config.backend,
            detach_sets,
        )
        return run

    async def _stream(
        self,
        job: OperationSource,
        job_id: str,
        fingerprint: str | None,
        explicit_id: bool,
        on_park: OnPark | None,
        run: JobRun,
        backend: str = "sync",
        detach_sets: bool = False,
    ) -> AsyncGenerator[Outcome, None]:
        first, source = _split(job)
        cfg = self.config
        auto = functools.partial(
            choose_backend,
            max_requests=cfg.async_batch.max_requests,
            auto_min_ops=cfg.async_batch.auto_min_ops,
            max_batch_ops=cfg.max_batch_ops,
            max_ads_per_batch=cfg.max_ads_per_batch,
        )
        run.backend = auto("sync" if backend == "auto" else backend, None)  # auto: decided by the runner
        texts: dict[int, tuple[str, str]] = {}
        if self.journal is not None:
            if fingerprint is None and isinstance(job, Sequence):  # a hash of the plan, computed once
                scrub = Scrubber(self.config.credentials.secrets())
                texts = {id(op): plan_text(op, scrub) for op in first}
                fingerprint = job_fingerprint(texts[id(op)][1] for op in first)
        # Without a journal the run still keys its creates and reconciles unknown outcomes (ephemeral.py).
        session = JournalSession(
            self.journal if self.journal is not None else EphemeralJournal(),
            job_id,
            fingerprint=fingerprint,
            idempotency=self.config.idempotency,
            secrets=self.config.credentials.secrets(),
            explicit_job_id=explicit_id,
        )
        try:  # sets an earlier run submitted: polled whatever the backend
            pending = len(session.pending_sets())
        except BaseException:
            session.close()  # the job's lock, taken by the session, goes back
            raise
        chosen = "auto" if backend == "auto" else run.backend.backend
        if pending and chosen == "sync":
            run.backend = BackendChoice(
                "async", f"{run.backend.reason}; collecting {pending} request set(s) an earlier run submitted"
            )
        runner = self._new_runner(
            session,
            "sync" if chosen == "sync" and not pending else "async",
            submit_sets=chosen == "async",  # sync: only collect an earlier run's sets; auto: until it decides
            choose=functools.partial(auto, "auto", streamed=not isinstance(job, Sequence))
            if chosen == "auto"
            else None,
            detach=detach_sets,
        )
        runner.on_park = on_park
        if self._stop_requested:
            runner.halt()
        self._runners.add(runner)
        ended_as: tuple[RunState, str | None] = (RunState.STOPPED, None)  # the consumer closed the stream
        try:
            session.start_run()
            send, receive = anyio.create_memory_object_stream[Outcome](max_buffer_size=math.inf)
            admission = Admission(
                session,
                runner,
                send,
                window_ops=self.config.window_ops,
                observer=self.observer,
                stopping=lambda: self._stop_requested,
            )
            try:
                await admission.admit(first, validate=True, texts=texts)
            except BaseException:  # refused before anything was sent: the streams were never handed on
                send.close()
                receive.close()
                raise
            texts.clear()
            source = admission.admitted(source)
            preloaded: list[Operation] = []
            failure: list[BulkEngineError] = []
            refreshing = anyio.CancelScope()

            async def drive() -> None:
                async with send:
                    try:
                        await runner.run(source, send, first=preloaded)
                    except PlanningError as err:  # a bad window of a streamed job, after the good ones ran
                        failure.append(JobValidationError(str(err)))
                    except BaseExceptionGroup as group:  # a journal refusal while admitting a later window
                        journal_error = _find(group, JournalError)
                        if journal_error is None:
                            raise
                        failure.append(journal_error)
                    finally:
                        refreshing.cancel()

            async def refresh() -> None:
                """This run's figures to the journal every few wall seconds: a SIGKILL loses at most that."""
                every = max(self.config.governor.persist_every_s, _REFRESH_FLOOR_S)
                with refreshing:
                    while True:
                        await anyio.sleep(every)  # wall time, whatever the engine clock's scale
                        session.save_run(runner.stats, self.clock.monotonic() - run.started)

            closed = False
            async with anyio.create_task_group() as tg:
                tg.start_soon(drive)
                if session.run is not None:
                    tg.start_soon(refresh)
                try:
                    async with receive:
                        async for outcome in receive:
                            yield outcome
                            # take what is buffered without an event-loop turn per outcome: a batch
                            # answer brings 50 at once, and a lagging consumer holds the producers
                            while True:
                                try:
                                    outcome = receive.receive_nowait()
                                except (anyio.WouldBlock, anyio.EndOfStream):
                                    break
                                yield outcome
                except GeneratorExit:  # the consumer stopped early (break, aclose): stop the run with it
                    closed = True
                    tg.cancel_scope.cancel()
            if closed:
                return
            runner.stats.from_journal = session.stats.from_journal
            cut_short = bool(runner.stopped) or runner.halted
            unfinished = runner.unfinished_ids() if cut_short else ()
            if failure:
                ended_as = (RunState.RAISED, type(failure[0]).__name__)
            else:
                ended_as = (RunState.STOPPED if cut_short else RunState.FINISHED, None)
            now = self.clock.monotonic()
            all_runs = session.save_run(runner.stats, now - run.started, *ended_as)
            if isinstance(runner, AsyncRunner):
                run.async_sets = runner.sets.submitted
                if runner.choice is not None:  # auto: what it chose when the run began sending
                    run.backend = runner.choice
            run.finish(runner.stats, tuple(runner.stopped), unfinished, now, all_runs)
            if failure:
                raise failure[0]
        except BaseException as err:
            ended_as = _ended_by(err)
            raise
        finally:
            self._runners.discard(runner)
            runner.drained.set()
            self.governor.flush()  # what the next run starts from
            # how the run ended, unless written above (the first ending stands)
            session.save_run(runner.stats, self.clock.monotonic() - run.started, *ended_as)
            session.close()  # one job, one runner: release the job's lock

    async def run(
        self,
        job: OperationSource,
        *,
        job_id: str | None = None,
        fingerprint: str | None = None,
        on_park: OnPark | None = None,
        backend: Backend | None = None,
        detach_sets: bool = False,
    ) -> JobResult:
        """Run ``job`` to completion and return every operation's outcome with the job's counters.

        With a journal, running a ``job_id`` again resumes it: operations that succeeded are answered from
        the journal, the rest run (creates reconciled with the server first where an outcome is unknown).
        """
        outcomes: list[Outcome] = []
        run = self.stream(
            job,
            job_id=job_id,
            fingerprint=fingerprint,
            on_park=on_park,
            backend=backend,
            detach_sets=detach_sets,
        )
        async with aclosing(run):
            async for outcome in run:
                outcomes.append(outcome)
        return dataclasses.replace(run.result, outcomes=tuple(outcomes))

    async def resume(self, job_id: str) -> JobResult:
        """Finish an interrupted job from the journal alone (its plans are journaled).

        Operations that succeeded are not sent again; failed and skipped ones run again; creates whose
        outcome was unknown are looked up by their idempotency key first. Raises
        :class:`~bulk_engine.errors.JournalError` if the journal does not hold ``job_id``.
        """
        if self.journal is None:
            raise ConfigError("resume needs a journal: BulkEngine(config, journal=SqliteJournal(path))")
        record = self.journal.get_job(job_id)
        if record is None:
            known = ", ".join(repr(j) for j in self.journal.job_ids()[:10]) or "none"
            raise JournalError(f"journal {self.journal.location} has no job {job_id!r} (jobs in it: {known})")
        ops = load_operations(self.journal, job_id)
        # Plans whose references all point backwards are streamed (memory bounded); others are loaded whole.
        job: OperationSource = ops if record.ordered else list(ops)
        return await self.run(job, job_id=job_id, fingerprint=record.fingerprint)


class JobRun:
    """One run of :meth:`BulkEngine.stream`: an async iterator of outcomes, then ``result`` (its figures).

    The result's ``outcomes`` is empty (the stream handed them over one by one: a million-operation stream
    keeps none of them); ``counts`` and every counter are complete.
    """

    def __init__(self, job_id: str, started: float) -> None:
        self.job_id = job_id
        self.started = started  # the engine clock's monotonic time when the run began
        self._inner: AsyncGenerator[Outcome, None] | None = None
        self._counts = {state.value: 0 for state in OutcomeState}
        self._result: JobResult | None = None
        self.backend = BackendChoice("sync", "")  # chosen when the run starts
        self.async_sets = 0

    def __repr__(self) -> str:
        return f"JobRun(job_id={self.job_id!r}, finished={self._result is not None})"

    def __aiter__(self) -> JobRun:
        return self

    async def __anext__(self) -> Outcome:
        assert self._inner is not None
        outcome = await self._inner.__anext__()
        self._counts[outcome.state.value] += 1
        return outcome

    async def aclose(self) -> None:
        if self._inner is not None:
            await self._inner.aclose()

    def finish(
        self,
        stats: JobStats,
        stopped: tuple[Park, ...],
        unfinished: tuple[str, ...],
        now: float,
        all_runs: RunTotals | None = None,
    ) -> None:
        """Called by the engine once every outcome has been yielded (so the counts are complete)."""
        self._result = JobResult(
            job_id=self.job_id,
            outcomes=(),
            http_requests=stats.http_requests,
            graph_calls=stats.graph_calls,
            retries=stats.retries,
            throttle_events=stats.throttle_events,
            elapsed_s=now - self.started,
            counts=dict(self._counts),
            unknown_outcomes=stats.unknown_outcomes,
            lookups=stats.lookups,
            recovered=stats.recovered,
            from_journal=stats.from_journal,
            unfinished=unfinished,
            stopped=stopped,
            peak_tracked_ops=stats.peak_tracked_ops,
            all_runs=all_runs,
            backend=self.backend.backend,
            backend_reason=self.backend.reason,
            async_sets=self.async_sets,
        )

    @property
    def result(self) -> JobResult:
        """The run's figures; raises ``RuntimeError`` before the stream is exhausted."""
        if self._result is None:
            raise RuntimeError(f"job {self.job_id!r}: the stream has not been read to its end yet")
        return self._result


def _ended_by(err: BaseException) -> tuple[RunState, str | None]:
    """How a run that ``err`` ended is recorded: cut short from outside (cancelled, the stream closed) is a
    stop; anything else raised (its type only: a message may quote a secret; task groups' wrapping left out)."""
    while isinstance(err, BaseExceptionGroup) and len(err.exceptions) == 1:
        err = err.exceptions[0]
    if isinstance(err, (anyio.get_cancelled_exc_class(), GeneratorExit)):
        return RunState.STOPPED, None
    return RunState.RAISED, type(err).__name__


def _find(group: BaseExceptionGroup[Any], kind: type[BulkEngineError]) -> BulkEngineError | None:
    for exc in group.exceptions:
        if isinstance(exc, kind):
            return exc
        if isinstance(exc, BaseExceptionGroup):
            found = _find(exc, kind)
            if found is not None:
                return found
    return None


def _split(job: OperationSource) -> tuple[list[Operation], AsyncIterator[Operation]]:
    """In-memory jobs are validated whole up front; iterators are streamed in windows."""
    if isinstance(job, Sequence):
        return list(job), _empty()
    if isinstance(job, AsyncIterable):
        return [], aiter(job)
    return [], _from_sync(job)


async def _empty() -> AsyncIterator[Operation]:
    return
    yield  # pragma: no cover


async def _from_sync(items: Iterable[Any]) -> AsyncIterator[Operation]:
    for item in items:
        yield item
