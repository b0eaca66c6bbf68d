"""Streaming CSV input for flat lists: object ids for status changes, subscription tokens for messages.

A CSV either has a header row naming its columns (``id,status,current_status``) or is a bare list with the
value in the first column (no header: the first row is data). Blank lines and lines starting with ``#`` are
ignored. Rows are read one at a time, so a 1,000,000-row file costs constant memory; line numbers are the
physical line of the row in the file, so errors can point at it.

Whatever the file holds, reading it ends in rows or in one :class:`CsvError` naming the line (and the byte
offset for encoding problems) — found by the tasks' pre-flight ``input_issues`` pass, before any call:
UTF-8 only (a byte order mark is fine), no NUL bytes, quotes closed (``csv`` strict mode), and flat memory
even for hostile files: a physical line is read at most ``MAX_LINE_CHARS`` characters at a time, a field may
have ``csv.field_size_limit()`` characters (131,072) and a row ``MAX_COLUMNS`` columns.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final

from bulk_engine.errors import BulkEngineError

from .base import Issue

__all__ = [
    "MAX_COLUMNS",
    "MAX_LINE_CHARS",
    "CsvError",
    "CsvRow",
    "count_rows",
    "csv_issue",
    "file_sha256",
    "is_file",
    "iter_cells",
    "iter_rows",
]

MAX_LINE_CHARS: Final = 1_000_000
"""Longest physical line read (an id or token row is ~20 characters; a wide export a few thousand)."""
MAX_COLUMNS: Final = 1000


class CsvError(BulkEngineError, ValueError):
    """The CSV cannot be read; ``line`` is the physical line (1-based), ``rule`` the issue's rule id."""

    def __init__(self, line: int, message: str, rule: str = "csv.read") -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.message = message
        self.rule = rule


@dataclass(frozen=True, slots=True)
class CsvRow:
    line: int
    values: dict[str, str]


def iter_rows(path: Path, key: str, *, columns: Sequence[str] = ()) -> Iterator[CsvRow]:
    """Rows of ``path`` as ``{column: value}`` (stripped). ``key`` is the column that must exist (or, in a
    headerless file, the name given to the first column); ``columns`` are the other columns recognised in a
    headerless file, in order. Raises :class:`CsvError` when the file cannot be read as a CSV."""
    header: list[str] | None = None
    for line, cells in iter_cells(path):
        if header is None:
            lowered = [c.lower() for c in cells]
            if key in lowered:
                header = lowered
                continue
            header = [key, *columns][: max(len(cells), 1)]
            header += [f"column{i + 1}" for i in range(len(header), len(cells))]
        values = {name: cells[i] for i, name in enumerate(header) if i < len(cells) and name}
        yield CsvRow(line, values)


def iter_cells(path: Path) -> Iterator[tuple[int, list[str]]]:
    """``(physical line, stripped cells)`` of every row that is not blank or a ``#`` comment, the header
    included (for readers that interpret the header themselves). Raises :class:`CsvError` like
    :func:`iter_rows`."""
    with path.open("rb") as handle:
        lines = _text_lines(handle)
        reader = csv.reader(lines, strict=True)
        while True:
            start = reader.line_num + 1
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as err:
                raise _csv_problem(err, start) from None
            line = reader.line_num
            if len(row) > MAX_COLUMNS:
                raise CsvError(line, f"{len(row):,} columns in one row (at most {MAX_COLUMNS:,})", "csv.size")
            cells = [cell.strip() for cell in row]
            if not any(cells) or cells[0].startswith("#"):
                continue
            yield line, cells


def csv_issue(err: CsvError | OSError, path: Path, field: str = "csv") -> Issue:
    """The issue a task reports for a CSV it cannot read (pointing at the CSV's file and line)."""
    if isinstance(err, OSError):
        return Issue(
            (field,), f"cannot read the CSV file: {err.strerror}", str(path), "csv.read", file=str(path)
        )
    return Issue((field,), err.message, None, err.rule, file=str(path), line=err.line, has_value=False)


def _text_lines(handle: BinaryIO) -> Iterator[str]:
    """The file's physical lines as text, each checked: UTF-8, no NUL byte, at most ``MAX_LINE_CHARS``."""
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    offset = 0
    number = 0
    while True:
        raw = handle.readline(MAX_LINE_CHARS * 4 + 1)
        if not raw:
            try:
                decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                raise CsvError(
                    number, "the file ends inside a UTF-8 character: not UTF-8", "csv.encoding"
                ) from None
            return
        number += 1
        if number == 1:
            if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
                raise CsvError(1, "the file is UTF-16 (byte order mark): save it as UTF-8", "csv.encoding")
            if raw.startswith(codecs.BOM_UTF8):
                raw, offset = raw[3:], 3
        nul = raw.find(b"\x00")
        if nul >= 0:
            raise CsvError(
                number,
                f"NUL byte at byte offset {offset + nul}: not a UTF-8 text file (UTF-16 or binary?)",
                "csv.encoding",
            )
        try:
            text = decoder.decode(raw)
        except UnicodeDecodeError as err:
            raise CsvError(
                number,
                f"byte 0x{raw[err.start]:02x} at byte offset {offset + err.start} is not UTF-8: CSV files must be "
                "UTF-8 (was it saved as Latin-1 or Windows-1252?)",
                "csv.encoding",
            ) from None
        if len(text) > MAX_LINE_CHARS or (not raw.endswith(b"\n") and len(raw) > MAX_LINE_CHARS * 4):
            raise CsvError(number, f"a line longer than {MAX_LINE_CHARS:,} characters", "csv.size")
        offset += len(raw)
        yield text


def _csv_problem(err: csv.Error, line: int) -> CsvError:
    """``line``: where the row being read starts."""
    text = str(err)
    if "field larger than field limit" in text:
        limit = csv.field_size_limit()
        return CsvError(
            line,
            f"a field longer than {limit:,} characters in the row starting here (an unclosed quote?)",
            "csv.size",
        )
    if "unexpected end of data" in text:
        return CsvError(line, "a quoted field that starts in this row is never closed (unterminated quote)")
    if "new-line character seen in unquoted field" in text:
        return CsvError(
            line, "a bare carriage return (\\r) inside a line: save the file with \\n line endings"
        )
    return CsvError(line, f"not a valid CSV: {text}")


def count_rows(path: Path, key: str) -> int:
    """Number of data rows (a cheap line scan; used for progress estimates)."""
    return sum(1 for _ in iter_rows(path, key))


def is_file(path: Path) -> bool:
    """``path.is_file()`` that is ``False`` for names no file system accepts (NUL bytes, too long)."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
