"""The :class:`BulkEngine` facade: ``async with BulkEngine(config) as engine: await engine.run(job)``.

A job is an iterable or async iterable of :class:`~bulk_engine.planning.graph.Operation`; operations
reference each other with :class:`~bulk_engine.protocol.refs.Ref` (never hand-written
``{result=…}`` strings). A list or tuple is validated whole before anything is sent (unknown references,
cycles, duplicates → :class:`~bulk_engine.errors.JobValidationError`); an iterator is read in windows of
``EngineConfig.window_ops`` so memory is bounded by the window, not the job.
"""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Sequence
from typing import Any

import anyio

from .config import EngineConfig
from .errors import JobValidationError
from .execution.clock import Clock, SystemClock
from .execution.governor import Governor
from .execution.retry import RetryPolicy
from .execution.runner import Runner
from .execution.transport import GraphTransport
from .planning.graph import Operation, PlanningError
from .results import JobResult, JobStats, Outcome, OutcomeState

Job = Iterable[Operation] | AsyncIterable[Operation]


class BulkEngine:
    """Runs bulk jobs against the Graph API (or any Graph-compatible URL such as the simulator)."""

    def __init__(self, config: EngineConfig, *, clock: Clock | None = None) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        self._transport: GraphTransport | None = None
        self.last_stats = JobStats()

    def __repr__(self) -> str:
        return f"BulkEngine(graph_url={self.config.graph_url!r}, api_version={self.config.api_version!r})"

    async def __aenter__(self) -> BulkEngine:
        self._transport = await GraphTransport(self.config).__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._transport is not None:
            await self._transport.__aexit__(*exc)
            self._transport = None

    def _new_runner(self) -> Runner:
        if self._transport is None:
            raise RuntimeError("use 'async with BulkEngine(config) as engine'")
        rng = random.Random(self.config.seed)
        return Runner(
            self.config,
            self._transport,
            Governor(self.config.governor, self.clock),
            self.clock,
            RetryPolicy(self.config.retry, rng),
        )

    async def stream(self, job: Job) -> AsyncIterator[Outcome]:
        """Yield each operation's terminal outcome as soon as it is known."""
        runner = self._new_runner()
        first, source = _split(job)
        send, receive = anyio.create_memory_object_stream[Outcome](max_buffer_size=math.inf)
        try:
            runner.graph.add(first)  # validate a whole in-memory job before anything is sent
        except PlanningError as err:
            raise JobValidationError(str(err)) from err
        preloaded: list[Operation] = []
        failure: list[JobValidationError] = []

        async def drive() -> None:
            async with send:
                try:
                    await runner.run(source, send, first=preloaded)
                except PlanningError as err:  # a bad window of a streamed job, after the good ones ran
                    failure.append(JobValidationError(str(err)))

        async with anyio.create_task_group() as tg:
            tg.start_soon(drive)
            async with receive:
                async for outcome in receive:
                    yield outcome
        self.last_stats = runner.stats
        if failure:
            raise failure[0]

    async def run(self, job: Job, *, job_id: str | None = None) -> JobResult:
        """Run ``job`` to completion and return every operation's outcome with the job's counters."""
        started = self.clock.monotonic()
        outcomes: list[Outcome] = []
        async for outcome in self.stream(job):
            outcomes.append(outcome)
        stats = self.last_stats
        counts = {state.value: 0 for state in OutcomeState}
        for outcome in outcomes:
            counts[outcome.state.value] += 1
        return JobResult(
            job_id=job_id or uuid.uuid4().hex,
            outcomes=tuple(outcomes),
            http_requests=stats.http_requests,
            graph_calls=stats.graph_calls,
            retries=stats.retries,
            throttle_events=stats.throttle_events,
            elapsed_s=self.clock.monotonic() - started,
            counts=counts,
        )


def _split(job: Job) -> tuple[list[Operation], AsyncIterator[Operation]]:
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
