"""The limits every job-file reader enforces, and the issues a reader raises (shared by :mod:`.reading`,
:mod:`.yaml_input` and :mod:`.json_input`). The table of limits and why is in :mod:`.reading`."""

from __future__ import annotations

from typing import Final

from bulk_engine.errors import BulkEngineError

from .base import Issue, JobFileError, PathPart

__all__ = [
    "MAX_ALIAS_VALUES",
    "MAX_DEPTH",
    "MAX_FILE_BYTES",
    "MAX_NUMBER_DIGITS",
    "MAX_READ_ISSUES",
    "NOT_FINITE",
    "BadNumber",
    "DocPath",
    "Position",
    "byte_position",
    "fail",
    "problem",
    "too_long",
]

MAX_DEPTH: Final = 64
MAX_ALIAS_VALUES: Final = 1_000_000
MAX_NUMBER_DIGITS: Final = 4300
MAX_FILE_BYTES: Final = 256 * 1024 * 1024
MAX_READ_ISSUES: Final = 50


Position = tuple[int, int]
"""(line, column), both 1-based."""
DocPath = tuple[PathPart, ...]


def problem(
    source: str, rule: str, message: str, where: Position | None = None, *, path: DocPath = ()
) -> Issue:
    line, column = where if where is not None else (None, None)
    return Issue(path, message, None, rule, file=source, line=line, column=column, has_value=False)


def fail(
    source: str, rule: str, message: str, where: Position | None = None, *, path: DocPath = ()
) -> JobFileError:
    return JobFileError([problem(source, rule, message, where, path=path)], source)


def byte_position(raw: bytes, offset: int) -> Position:
    """(line, column) of byte ``offset``; the column counts characters (bad bytes count one each)."""
    start = raw.rfind(b"\n", 0, offset) + 1
    column = len(raw[start:offset].decode("utf-8", "replace")) + 1
    return raw.count(b"\n", 0, offset) + 1, column


class BadNumber(BulkEngineError, ValueError):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def too_long(text: str) -> BadNumber:
    return BadNumber(
        f"a number may have at most {MAX_NUMBER_DIGITS:,} characters (this one has {len(text):,})"
    )


NOT_FINITE = "NaN and Infinity are not numbers Graph accepts (and JSON cannot carry them)"
