"""Bulk engine for the Meta Marketing API: dependency-aware Graph batches paced by rate-limit headers.

The public API is listed in ``__all__`` (kept sorted; a test guards it).
"""

from .config import Credentials, EngineConfig, GovernorConfig, IdempotencyConfig, RetryConfig
from .engine import BulkEngine, Job
from .errors import AuthError, BulkEngineError, ConfigError, JobValidationError, JournalError, TransportError
from .execution.clock import Clock, ScaledClock, SystemClock
from .execution.events import Park
from .persistence import Journal, MemoryJournal, SqliteJournal
from .planning.graph import Operation, OpKind
from .protocol.errors import ErrorClass, GraphError
from .protocol.refs import Ref
from .results import JobResult, Outcome, OutcomeState, RunTotals

__all__ = [
    "AuthError",
    "BulkEngine",
    "BulkEngineError",
    "Clock",
    "ConfigError",
    "Credentials",
    "EngineConfig",
    "ErrorClass",
    "GovernorConfig",
    "GraphError",
    "IdempotencyConfig",
    "Job",
    "JobResult",
    "JobValidationError",
    "Journal",
    "JournalError",
    "MemoryJournal",
    "OpKind",
    "Operation",
    "Outcome",
    "OutcomeState",
    "Park",
    "Ref",
    "RetryConfig",
    "RunTotals",
    "ScaledClock",
    "SqliteJournal",
    "SystemClock",
    "TransportError",
]
