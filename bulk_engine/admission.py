"""Journal admission: every window of a job goes through the journal before the runner may send it.

Why a module of its own: :class:`~bulk_engine.engine.BulkEngine` wires a run together (session, runner,
outcome stream, figures); what happens to each window of operations on its way in — answer what succeeded
in an earlier run, key the creates, flag what to reconcile, and, for a job id the journal does not know,
probe the edges it writes to — changes with the exactly-once design (``docs/exactly-once.md``), not with the
facade. One :class:`Admission` serves one run.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from anyio.streams.memory import MemoryObjectSendStream

from .errors import JobValidationError
from .execution.charging import READS_OF_AD_OBJECTS
from .execution.events import Observer, OperationFinished
from .execution.runner import Runner
from .persistence.session import JournalSession
from .planning.graph import Cascade, Operation, OpState, PlanningError
from .results import Outcome, OutcomeState

__all__ = ["Admission"]

logger = logging.getLogger("bulk_engine.engine")  # the engine's log: admission is part of its run


class Admission:
    """Admits one run's operations into its journal session, window by window, before the runner sends them.

    Outcomes the admission settles itself (answered from the journal, cascades of a refused operation) go
    to ``send`` and to the observer. ``stopping()`` says whether the engine was asked to stop: then the
    edge probes send nothing.
    """

    def __init__(
        self,
        session: JournalSession,
        runner: Runner,
        send: MemoryObjectSendStream[Outcome],
        *,
        window_ops: int,
        observer: Observer | None,
        stopping: Callable[[], bool],
    ) -> None:
        self.session = session
        self.runner = runner
        self.send = send
        self.window_ops = window_ops
        self.observer = observer
        self.stopping = stopping

    async def admit(
        self,
        ops: list[Operation],
        *,
        validate: bool,
        texts: dict[int, tuple[str, str]] | None = None,
    ) -> list[Operation]:
        """Journal a window: answer what succeeded earlier, key creates, flag what to reconcile."""
        if not ops:
            return []
        session, graph = self.session, self.runner.graph
        run, done = session.admit(ops, known=graph.__contains__, add_resolved=graph.add_resolved, texts=texts)
        for outcome in done:
            self.send.send_nowait(outcome)
            self._observe(outcome)
        if validate:  # a whole in-memory job: validate before anything is journaled or sent
            try:
                cascades = graph.add(run)
            except PlanningError as err:
                session.discard_plans()
                raise JobValidationError(str(err)) from err
            session.commit_plans()
            await self._probe_all()
            for outcome in _cascade_outcomes(graph, cascades):
                session.record(outcome)
                self.send.send_nowait(outcome)
                self._observe(outcome)
            session.flush()
            return []
        session.commit_plans()
        await self._probe_all()
        return run

    async def admitted(self, source: AsyncIterator[Operation]) -> AsyncIterator[Operation]:
        """``source`` read in chunks, each journaled (plans in one transaction) before it is yielded."""
        chunk_size = max(1, min(self.window_ops, 1000))
        exhausted = False
        while not exhausted:
            chunk: list[Operation] = []
            while len(chunk) < chunk_size:
                try:
                    chunk.append(await anext(source))
                except StopAsyncIteration:
                    exhausted = True
                    break
            for op in await self.admit(chunk, validate=False):
                yield op

    def _observe(self, outcome: Outcome) -> None:
        """Outcomes the engine settles itself (answered from the journal) reach the observer too."""
        if self.observer is not None:
            try:
                self.observer(OperationFinished(outcome))
            except Exception:  # an observer must never break a job
                logger.exception("engine observer failed on OperationFinished")

    async def _probe_all(self) -> None:
        for path in self.session.probe_paths():  # rebuild mode: before anything of the window is sent
            self.session.probe_result(path, await self._probe(path))

    async def _probe(self, path: str) -> bool:
        """Does any object of this job exist on ``path`` (an edge such as ``act_1/campaigns``)?

        Used when a job id the journal does not know is run (lost journal, a retry on another worker).
        Any doubt answers True: the edge's creates are then looked up one by one before they are sent.
        """
        account = path.split("/", 1)[0]
        if self.stopping() or await self.runner.offer_park(account, READS_OF_AD_OBJECTS):
            return True  # send nothing (stopped, or the account is parked and on_park stopped it): in doubt
        body = await self.runner.probe(account, self.session.probe_request(path))
        if body is None:
            return True
        try:
            return self.session.keys.probe_hit(body)
        except ValueError:
            return True


def _cascade_outcomes(graph: Any, cascades: list[Cascade]) -> list[Outcome]:
    out: list[Outcome] = []
    for c in cascades:
        op = graph.operation(c.op_id)
        state = OutcomeState.FAILED if c.state is OpState.FAILED else OutcomeState.SKIPPED
        out.append(Outcome(c.op_id, state, op.account_id, op.kind.value, reason=c.reason))
    return out
