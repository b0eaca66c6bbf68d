"""The one exception tree of the engine, rooted at :class:`BulkEngineError`.

``except BulkEngineError`` catches everything the engine raises on purpose; a mixin keeps the built-in type
callers of a standard API expect (a bad value is still a ``ValueError``)::

    BulkEngineError
    ├── ConfigError                       the engine configuration is unusable
    ├── JobValidationError                refused before any call was sent
    │   ├── operations.base.JobFileError      a job file's issues, with file:line:column     (+ builder.BuildError)
    │   ├── planning.graph.PlanningError      (ValueError) duplicate ids, unknown references, cycles
    │   └── protocol.refs.InvalidRefPathError (ValueError) a reference path that is no JSONPath
    ├── TransportError                    no Graph answer (connection, timeout, non-JSON page)
    ├── JournalError                      the journal is corrupt, foreign, or holds another job
    │   └── JobLockedError                    another run holds the job
    ├── planning.graph.InvalidTransitionError   (RuntimeError) an operation's state broke its machine: a bug
    ├── protocol.batch.BatchTooLargeError       (ValueError) more calls than a Graph batch takes
    ├── protocol.refs.UnresolvedReferenceError  (LookupError) a reference with nothing at its path
    ├── operations.csvinput.CsvError            (ValueError) a CSV that cannot be read (also mid-run)
    ├── reporting.report.ReportFormatError      (ValueError) not a run report
    └── internal: protocol.spec_fields.BadTime, operations.input_limits.BadNumber (ValueError, turned into
        issues), cli.UsageError, demo.DemoSetupError

Graph's own refusals are not exceptions: an operation Graph refuses ends ``failed`` with the full
:class:`~bulk_engine.protocol.errors.GraphError`. A rejected access token (190, 102, …) fails its operation
with ``ErrorClass.AUTH`` and stops the job (every other operation ``skipped``, saying why) — the result, not
an exception, is how a run reports it. The simulator's ``GraphAPIError`` is the simulator's model of such an
answer, never raised to the engine's callers.

Exceptions never carry access tokens or app secrets: messages are built from ids, codes and field
names only, so ``str()`` and ``repr()`` are safe to log.
"""

from __future__ import annotations


class BulkEngineError(Exception):
    """Base of every error the engine raises on purpose."""


class ConfigError(BulkEngineError):
    """The engine configuration is unusable (bad URL, missing token…)."""


class JobValidationError(BulkEngineError):
    """A job was rejected before any call was sent: bad reference, cycle, invalid spec."""


class TransportError(BulkEngineError):
    """The request did not produce a Graph answer (connection reset, timeout, non-JSON 5xx page)."""

    def __init__(self, message: str, *, sent: bool) -> None:
        super().__init__(message)
        self.sent = sent  # True when the request may have reached the server (outcome unknown)


class JournalError(BulkEngineError):
    """The journal is corrupt or belongs to a different job."""


class JobLockedError(JournalError):
    """Another run holds the job's lock in this journal (one job, one runner).

    Raised when a run starts (it changed nothing and sent nothing) or, by a run whose lock was taken over
    while it was idle, instead of its next write (it stops before sending anything more).

    ``pid``, ``host`` and ``acquired_at`` (``time.time()``) name the holder, so a caller can report or wait
    (``None`` when a lost lock has no holder any more).
    """

    def __init__(
        self, message: str, *, job_id: str, pid: int | None, host: str | None, acquired_at: float | None
    ) -> None:
        super().__init__(message)
        self.job_id = job_id
        self.pid = pid
        self.host = host
        self.acquired_at = acquired_at
