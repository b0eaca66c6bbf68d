"""What a running engine reports to an observer: batches, retries, throttles, long waits, outcomes.

``BulkEngine(config, observer=callback)`` calls ``callback(event)`` synchronously from the event loop for
each event below. The callback must be quick and must not block (the CLI's live view only records them); an
exception it raises is logged and ignored, so a broken observer never breaks a job. Times (``delay_s``,
``parked_s``, ``seconds``) are in the engine clock's seconds (wall seconds unless the engine runs on a scaled
clock).

No silent waits: whenever the governor holds sends to a scope — the app, an ad account, or one (ad account,
business use case) pair — for more than 5 s, the engine reports :class:`Waiting` with the reason and how long,
so every view can say who waits, why, and until when.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bulk_engine.results import Outcome

__all__ = [
    "AsyncSetProgress",
    "BatchDone",
    "BatchSent",
    "EngineEvent",
    "Observer",
    "OperationFinished",
    "Park",
    "RetryScheduled",
    "Throttled",
    "Waiting",
]


@dataclass(frozen=True)
class BatchSent:
    """A batch of ``calls`` Graph calls (operations ``op_ids``) for one (ad account, BUC type) is about to
    be POSTed."""

    account_id: str
    buc_type: str
    calls: int
    op_ids: tuple[str, ...]


@dataclass(frozen=True)
class BatchDone:
    """A batch is over (answered, failed in transport, or cancelled), with the governor's view after it.

    ``http_status`` is ``None`` when no answer came back. ``usage_pct`` is the latest usage percentage of the
    pair, ``parked_s`` how long it may not send (0 when it may), ``concurrency`` its current batch limit.
    """

    account_id: str
    buc_type: str
    calls: int
    op_ids: tuple[str, ...]
    http_status: int | None
    usage_pct: float | None
    parked_s: float
    concurrency: int


@dataclass(frozen=True)
class Throttled:
    """A batch came back throttled: the pair is parked for ``parked_s`` (the documented regain time)."""

    account_id: str
    buc_type: str
    parked_s: float
    code: int | None
    subcode: int | None
    usage_pct: float | None


@dataclass(frozen=True)
class RetryScheduled:
    """An operation will be sent again after ``delay_s`` (a transient error, a null entry, a transport error)."""

    op_id: str
    account_id: str
    kind: str
    attempt: int
    delay_s: float
    reason: str


@dataclass(frozen=True)
class OperationFinished:
    """An operation reached its terminal state."""

    outcome: Outcome


@dataclass(frozen=True)
class Waiting:
    """Sends to a scope will wait ``seconds`` (engine clock) — more than 5 s — before the next batch goes.

    ``scope`` is ``"app"`` (every account of the app waits: X-App-Usage or an app-level throttle), ``"account"``
    (every use case of the account) or ``"pair"`` (one ad account × business use case). ``reason`` says why in
    words (``"throttled (code 80004): regain in 19 min"``, ``"pacing: usage 97 % at the 97 % ceiling"``,
    ``"parked at start (restored from the journal)"``); ``usage_pct`` is the reading behind it.
    """

    scope: str
    account_id: str | None  # None for the app scope
    buc_type: str | None  # set for "pair"
    reason: str
    usage_pct: float | None
    seconds: float


@dataclass(frozen=True)
class AsyncSetProgress:
    """An async request set of the run (``execution/async_backend.py``): ``state`` is ``submitted`` (its id
    is journaled), ``in_progress`` (a poll read ``finished`` of ``total`` requests) or ``done`` (collected)."""

    account_id: str
    set_id: str
    state: str
    total: int
    finished: int


EngineEvent = (
    BatchSent | BatchDone | Throttled | Waiting | RetryScheduled | OperationFinished | AsyncSetProgress
)
Observer = Callable[[EngineEvent], None]


@dataclass(frozen=True)
class Park:
    """An (ad account, BUC type) may not send for ``seconds`` (engine clock): what ``on_park`` gets.

    A hold is a park (throttled, or parked at start from the journal's memory) or a pacing wait (its usage
    window is full up to the ceiling: ``reason`` starts with ``"pacing"``); to whoever decides whether to wait
    on a worker, an hour is an hour either way.

    ``BulkEngine.stream(job, on_park=callback)`` awaits ``callback(park)`` once per hold episode; when it
    returns True the engine stops that account — nothing more is sent to it, its waiting batches go back
    to the queue unsent, in-flight answers are handled as usual — and the job ends without outcomes for the
    account's remaining operations (``JobResult.unfinished``), so a scheduler can free its worker and come
    back after the regain time (the Airflow operator defers). ``scope`` is the park's scope, as in
    :class:`Waiting`: ``"pair"`` (this account × BUC type), ``"account"`` or ``"app"`` (a wider park holds it).
    """

    account_id: str
    buc_type: str
    seconds: float
    reason: str
    scope: str = "pair"
    # the async backend detached from a request set Meta is processing (``scope`` "async_set"): the set
    # to wait for (e.g. with the Airflow AsyncRequestSetTrigger) before the job runs again
    set_id: str | None = None
