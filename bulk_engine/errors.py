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
