"""What a running engine reports to an observer: batches, retries, throttles, outcomes.

``BulkEngine(config, observer=callback)`` calls ``callback(event)`` synchronously from the event loop for
each event below. The callback must be quick and must not block (the CLI's live view only records them); an
exception it raises is logged and ignored, so a broken observer never breaks a job. Times (``delay_s``,
``parked_s``) are in the engine clock's seconds (wall seconds unless the engine runs on a scaled clock).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bulk_engine.results import Outcome

__all__ = [
    "BatchDone",
    "BatchSent",
    "EngineEvent",
    "Observer",
    "OperationFinished",
    "Park",
    "RetryScheduled",
    "Throttled",
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


EngineEvent = BatchSent | BatchDone | Throttled | RetryScheduled | OperationFinished
Observer = Callable[[EngineEvent], None]


@dataclass(frozen=True)
class Park:
    """The governor parked an (ad account, BUC type) for ``seconds`` (engine clock): what ``on_park`` gets.

    ``BulkEngine.stream(job, on_park=callback)`` awaits ``callback(park)`` once per park episode; when it
    returns True the engine stops that account — nothing more is sent to it, its waiting batches go back
    to the queue unsent, in-flight answers are handled as usual — and the job ends without outcomes for the
    account's remaining operations (``JobResult.unfinished``), so a scheduler can free its worker and come
    back after the regain time (the Airflow operator defers).
    """

    account_id: str
    buc_type: str
    seconds: float
    reason: str
