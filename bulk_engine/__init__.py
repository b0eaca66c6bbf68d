"""Bulk engine for the Meta Marketing API: dependency-aware Graph batches paced by rate-limit headers.

The public API is listed in ``__all__`` (kept sorted; a test guards it).
"""

from .builder import BuildError, Handle, Job
from .config import (
    AsyncBatchConfig,
    Credentials,
    EngineConfig,
    GovernorConfig,
    IdempotencyConfig,
    RetryConfig,
)
from .engine import BulkEngine, OperationSource
from .errors import BulkEngineError, ConfigError, JobValidationError, JournalError, TransportError
from .execution.clock import Clock, ScaledClock, SystemClock
from .execution.events import (
    AsyncSetProgress,
    BatchDone,
    BatchSent,
    EngineEvent,
    Observer,
    OperationFinished,
    Park,
    RetryScheduled,
    Throttled,
    Waiting,
)
from .operations.specs import (
    AdCreativeSpec,
    AdSetMatrix,
    AdSetSpec,
    AdSetTemplate,
    AdSpec,
    AudienceSpec,
    CampaignSpec,
)
from .persistence import Journal, MemoryJournal, SqliteJournal
from .planning.graph import Operation, OpKind
from .protocol.errors import ErrorClass, GraphError
from .protocol.refs import Ref
from .results import JobResult, Outcome, OutcomeState, RunTotals

__all__ = [
    "AdCreativeSpec",
    "AdSetMatrix",
    "AdSetSpec",
    "AdSetTemplate",
    "AdSpec",
    "AsyncBatchConfig",
    "AsyncSetProgress",
    "AudienceSpec",
    "BatchDone",
    "BatchSent",
    "BuildError",
    "BulkEngine",
    "BulkEngineError",
    "CampaignSpec",
    "Clock",
    "ConfigError",
    "Credentials",
    "EngineConfig",
    "EngineEvent",
    "ErrorClass",
    "GovernorConfig",
    "GraphError",
    "Handle",
    "IdempotencyConfig",
    "Job",
    "JobResult",
    "JobValidationError",
    "Journal",
    "JournalError",
    "MemoryJournal",
    "Observer",
    "OpKind",
    "Operation",
    "OperationFinished",
    "OperationSource",
    "Outcome",
    "OutcomeState",
    "Park",
    "Ref",
    "RetryConfig",
    "RetryScheduled",
    "RunTotals",
    "ScaledClock",
    "SqliteJournal",
    "SystemClock",
    "Throttled",
    "TransportError",
    "Waiting",
]
