"""The one exception tree of the engine, rooted at :class:`BulkEngineError`.

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


class AuthError(BulkEngineError):
    """The Graph API refused the token (190/102…): retrying cannot help; get a new token."""

    def __init__(self, message: str, code: int | None = None, subcode: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.subcode = subcode


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
