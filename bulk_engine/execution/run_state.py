"""What every part of a run shares: the journal hooks (:class:`RunSession`) and :class:`RunState`, the state of
one job's run created in one place, with the few helpers each part uses (the observer, the loop's wake-up,
the BUC an account's next batch is charged to).

:class:`~bulk_engine.execution.runner.Runner` is assembled from the parts built on it, one responsibility
each (listed in :mod:`.runner`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

import anyio
from anyio.streams.memory import MemoryObjectSendStream

from bulk_engine.config import EngineConfig
from bulk_engine.persistence.keys import Safety
from bulk_engine.planning.batcher import Batcher, BatchLimits
from bulk_engine.planning.graph import DependencyGraph, Operation, OpState
from bulk_engine.protocol.batch import BatchOp
from bulk_engine.protocol.refs import Ref
from bulk_engine.results import JobStats, Outcome

from .charging import READS_OF_AD_OBJECTS, Charges
from .clock import Clock
from .decide import Policy
from .events import BatchDone, EngineEvent, Observer, Park
from .governor import Governor
from .retry import RetryPolicy
from .transport import GraphTransport

__all__ = ["TERMINAL", "RunSession", "RunState"]

logger = logging.getLogger("bulk_engine.runner")

TERMINAL = (OpState.SUCCEEDED, OpState.FAILED, OpState.SKIPPED)


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


class RunState:
    """The state of one job's run, shared by the parts :class:`~bulk_engine.execution.runner.Runner` is made of."""

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

    def _notify(self, event: EngineEvent) -> None:
        if self.observer is not None:
            try:
                self.observer(event)
            except Exception:  # an observer must never break a job
                logger.exception("engine observer failed on %s", type(event).__name__)

    def _batch_done(self, account: str, buc: str, op_ids: tuple[str, ...], status: int | None) -> None:
        """Every HTTP request is reported (batches, lookups, probes), so the observer's counts add up."""
        pair = self.governor.pair(account, buc)
        parked = self.governor.parked_for(account, buc)
        self._notify(BatchDone(account, buc, len(op_ids), op_ids, status, pair.last_pct, parked, pair.limit))

    def _wake_up(self) -> None:
        self._wake.set()

    def _next_buc(self, account: str) -> str:
        """The BUC the account's next batch is charged to (that of its first ready op)."""
        ready = self.graph.first_ready(account)
        return self.charges.of(ready) if ready is not None else READS_OF_AD_OBJECTS
