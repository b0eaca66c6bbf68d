"""Streaming CSV input for flat lists: object ids for status changes, subscription tokens for messages.

A CSV either has a header row naming its columns (``id,status,current_status``) or is a bare list with the
value in the first column (no header: the first row is data). Blank lines and lines starting with ``#`` are
ignored. Rows are read one at a time, so a 1,000,000-row file costs constant memory; line numbers are the
physical line of the row in the file, so errors can point at it.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CsvRow", "count_rows", "file_sha256", "iter_rows"]


@dataclass(frozen=True, slots=True)
class CsvRow:
    line: int
    values: dict[str, str]


def iter_rows(path: Path, key: str, *, columns: Sequence[str] = ()) -> Iterator[CsvRow]:
    """Rows of ``path`` as ``{column: value}`` (stripped). ``key`` is the column that must exist (or, in a
    headerless file, the name given to the first column); ``columns`` are the other columns recognised in a
    headerless file, in order."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header: list[str] | None = None
        for row in reader:
            line = reader.line_num
            cells = [cell.strip() for cell in row]
            if not any(cells) or cells[0].startswith("#"):
                continue
            if header is None:
                lowered = [c.lower() for c in cells]
                if key in lowered:
                    header = lowered
                    continue
                header = [key, *columns][: max(len(cells), 1)]
                header += [f"column{i + 1}" for i in range(len(header), len(cells))]
            values = {name: cells[i] for i, name in enumerate(header) if i < len(cells) and name}
            yield CsvRow(line, values)


def count_rows(path: Path, key: str) -> int:
    """Number of data rows (a cheap line scan; used for progress estimates)."""
    return sum(1 for _ in iter_rows(path, key))


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
