"""One run of a job inside an Airflow task: stop for long holds, stop when Airflow kills the task, log progress.

Why this is not the CLI's :class:`~bulk_engine.reporting.session.RunSession`: a task has no terminal and no
signals of its own to handle — Airflow's task runner owns SIGTERM and calls the operator's ``on_kill`` from
its handler — and a long wait must end the run (so the task can defer) instead of being waited out.

- **Holds**: :class:`HoldGuard` is the engine as ``run_job`` sees it. Every hold the engine offers through
  ``on_park`` — a park, or a pacing wait on a full usage window — that lasts at least ``defer_after_s`` stops
  that account; once the other accounts are done the job breaks off with :class:`LongHold`, whose
  ``resume_at`` (account → wall time) the operator defers on.
- **Stopping**: :meth:`TaskRun.stop` may be called from a signal handler or another thread (``on_kill``):
  it asks the engine's loop to stop gracefully (``request_stop``: nothing new is sent, the batches in flight
  answer and are journaled), and the job's later steps are cancelled once nothing is in flight, as the CLI
  does on Ctrl-C. The run then raises :class:`Stopped`; the next try resumes from the journal.
- **Progress**: a line every ``progress_every_s`` seconds in the task log (operations done of expected, rates,
  requests, usage per account and any wait with its remaining time), from the CLI's
  :class:`~bulk_engine.reporting.live.LineView`; the waits, throttles and retries themselves are logged by
  the engine.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, TypeVar

import anyio

from bulk_engine import BulkEngine, EngineConfig
from bulk_engine.execution.events import EngineEvent, Park
from bulk_engine.persistence import MemoryJournal
from bulk_engine.persistence.ephemeral import EphemeralJournal
from bulk_engine.protocol.usage import UsageSnapshot
from bulk_engine.reporting.live import LineView
from bulk_engine.reporting.recorder import RunRecorder
from bulk_engine.scrub import Scrubber

__all__ = ["HoldGuard", "LongHold", "Stopped", "TaskRun"]

T = TypeVar("T")

TICK_S = 0.5


class LongHold(Exception):
    """Accounts the engine would have waited on for long were stopped: the job breaks off so the task defers."""

    def __init__(
        self,
        resume_at: Mapping[str, float],
        reasons: Mapping[str, str],
        sets: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"held: {sorted(resume_at) or sorted(sets or {})}")
        self.resume_at = dict(resume_at)  # account → wall-clock time it may send again
        self.reasons = dict(reasons)  # account → why it waits ("throttled (code 80004) …", "pacing: …")
        # account → an async request set Meta is processing (the async backend left it to defer on it)
        self.sets = dict(sets or {})


class Stopped(Exception):
    """The run was stopped from outside (Airflow killed the task): what was in flight is journaled."""


class HoldGuard:
    """The engine as ``run_job`` sees it, stopping accounts held for at least ``threshold_s``.

    Each engine job ends normally (the other accounts finish); if it stopped an account, :class:`LongHold` is
    raised after it, which breaks off ``run_job``. ``threshold_s=None``: never stop (wait on the worker).
    """

    def __init__(self, engine: BulkEngine, threshold_s: float | None) -> None:
        self.engine = engine
        self.threshold_s = threshold_s
        self.resume_at: dict[str, float] = {}
        self.reasons: dict[str, str] = {}

    async def _on_park(self, park: Park) -> bool:
        if self.threshold_s is None or park.seconds < self.threshold_s:
            return False
        account = park.account_id
        self.resume_at[account] = (
            time.time() + park.seconds / self.engine.clock.scale
        )  # engine → wall seconds
        self.reasons[account] = park.reason
        return True

    def _check(self, result: Any) -> None:
        if result.stopped:
            sets = {p.account_id: p.set_id for p in result.stopped if getattr(p, "set_id", None)}
            raise LongHold(self.resume_at, self.reasons, sets)

    async def run(
        self, job: Any, *, job_id: str | None = None, fingerprint: str | None = None, backend: Any = None
    ) -> Any:
        result = await self.engine.run(
            job,
            job_id=job_id,
            fingerprint=fingerprint,
            on_park=self._on_park,
            backend=backend,
            detach_sets=self.threshold_s is not None and _persistent(self.engine),
        )
        self._check(result)
        return result

    async def stream(
        self, job: Any, *, job_id: str | None = None, fingerprint: str | None = None
    ) -> AsyncIterator[Any]:
        run = self.engine.stream(job, job_id=job_id, fingerprint=fingerprint, on_park=self._on_park)
        async for outcome in run:
            yield outcome
        self._check(run.result)


def _persistent(engine: BulkEngine) -> bool:
    """Whether the next try of the task reads this one's journal: deferrable tasks leave their request sets
    to a trigger (``detach_sets``) only then. Without one (``journal_path=None``: a ``MemoryJournal`` per
    try) the resumed try could not know the set and would submit its ops again, so the set is polled in
    this try instead (a worker slot held while Meta works, never a duplicate)."""
    return engine.journal is not None and not isinstance(engine.journal, MemoryJournal | EphemeralJournal)


class _LogStream:
    """A text stream whose lines go to a logger (what :class:`LineView` writes to)."""

    def __init__(self, log: Any) -> None:
        self.log = log

    def write(self, text: str) -> int:
        for line in text.splitlines():
            if line.strip():
                self.log.info("%s", line)
        return len(text)

    def flush(self) -> None:
        pass


class _ProgressLines(LineView):
    """Only the periodic progress line: the engine's own log lines already tell each wait and throttle."""

    def start(self) -> None:
        pass

    def on_event(self, event: EngineEvent) -> None:
        pass


class TaskRun:
    """One engine for one run of a job in a task (see the module docstring)."""

    def __init__(
        self,
        config: EngineConfig,
        *,
        journal: Any,
        log: Any,
        scrubber: Scrubber,
        title: str,
        expected: Mapping[str, int],
        progress_every_s: float,
        threshold_s: float | None,
    ) -> None:
        self.config = config
        self.journal = journal
        self.threshold_s = threshold_s
        self.recorder = RunRecorder()
        self.recorder.expect(dict(expected))
        stream: Any = _LogStream(log)
        self.view = _ProgressLines(
            self.recorder, title, stream=stream, progress_every_s=progress_every_s, scrubber=scrubber
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._engine: BulkEngine | None = None
        self._stop_why: str | None = None
        self._stopping: anyio.Event | None = None  # made on the run's loop

    @property
    def stop_reason(self) -> str | None:
        return self._stop_why

    def stop(self, why: str) -> None:
        """Stop the run gracefully; safe from a signal handler or another thread."""
        self._stop_why = self._stop_why or why
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._stop_on_loop)

    def _stop_on_loop(self) -> None:
        if self._engine is not None:
            self._engine.request_stop()
        if self._stopping is not None:
            self._stopping.set()

    async def run(
        self,
        work: Callable[[HoldGuard], Awaitable[T]],
        *,
        usable: frozenset[str] = frozenset(),
        readings: Mapping[str, UsageSnapshot] | None = None,
    ) -> T:
        """``work(guard)`` (``run_job`` with the guard as its engine); raises :class:`LongHold` or :class:`Stopped`.

        ``usable`` (accounts a read just found unblocked) and ``readings`` (that read's usage headers per
        account) are fresher news than the parks and readings the journal remembers."""
        self._loop = asyncio.get_running_loop()
        self._stopping = anyio.Event()
        result: list[T] = []
        failure: list[Exception] = []
        async with BulkEngine(self.config, journal=self.journal, observer=self.recorder.observe) as engine:
            self._engine = engine
            if self._stop_why is not None:  # stopped before the engine existed
                engine.request_stop()
            for account in usable:
                engine.governor.clear_parks(account, "a fresh read found it usable")
            for account, usage in (readings or {}).items():
                engine.governor.observe(account, usage)
            work_scope = anyio.CancelScope()
            try:
                async with anyio.create_task_group() as tg:

                    async def main() -> None:
                        try:
                            with work_scope:
                                result.append(await work(HoldGuard(engine, self.threshold_s)))
                        except Exception as err:  # raised below, outside the task group's ExceptionGroup
                            failure.append(err)
                        tg.cancel_scope.cancel()

                    async def ticker() -> None:
                        while True:
                            await anyio.sleep(TICK_S)
                            self.recorder.tick()
                            self.view.tick()

                    async def drain() -> None:
                        assert self._stopping is not None
                        await self._stopping.wait()
                        await engine.wait_drained()  # every answer in flight recorded and journaled
                        work_scope.cancel()  # the job's later steps would only find the engine stopped

                    tg.start_soon(ticker)
                    tg.start_soon(drain)
                    tg.start_soon(main)
            finally:
                self._engine = None
                self.view.stop()
        if self._stop_why is not None and not isinstance(failure[0] if failure else None, LongHold):
            raise Stopped(self._stop_why)
        if failure:
            raise failure[0]
        return result[0]
