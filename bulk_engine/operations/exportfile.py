"""The output of an export: rows appended one page at a time to a CSV or JSON Lines file, written atomically.

Why streamed: an export of a million ads must not hold a million rows; each page's rows go to the file as they
arrive and are dropped. Why atomic (:class:`~bulk_engine.reporting.files.AtomicFile`): a failed or interrupted
export leaves the previous file in place, never a truncated one that looks complete; the file is ``0600``
like every report (it lists an ad account's objects).

CSV: one column per requested field (``id`` first), a nested value (``targeting``, ``campaign{name}``) as its
compact JSON, a missing one empty; text that a spreadsheet would evaluate as a formula gets a leading ``'``
(:mod:`bulk_engine.spreadsheet`, the CSV report's rule). JSON Lines: each row as Graph answered it, one JSON
object per line.

Secrets: every row is scrubbed of the engine's token, app secret and proof before it is written
(:class:`~bulk_engine.scrub.Scrubber`, as the reports are). The export refuses the fields that would bring
one (an expanded edge's ``paging.next`` link carries the access token on Graph: ``export.nested``), so this
is defence in depth against an answer that carries one anyway.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol

from bulk_engine.scrub import Scrubber
from bulk_engine.spreadsheet import safe_cell

__all__ = ["FORMATS", "ExportFormat", "RowWriter", "format_for", "open_rows"]

ExportFormat = Literal["csv", "jsonl"]
FORMATS: dict[str, ExportFormat] = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


def format_for(path: str) -> ExportFormat | None:
    """The format a file name implies (``None``: its extension names none)."""
    return FORMATS.get(Path(path).suffix.lower())


class RowWriter(Protocol):
    rows: int

    def write(self, row: Mapping[str, Any]) -> None: ...

    def finish(self, ok: bool) -> None: ...


class _Rows:
    def __init__(self, path: Path, scrubber: Scrubber) -> None:
        from bulk_engine.reporting.files import AtomicFile  # reporting imports operations: late

        self.file = AtomicFile(path, newline="")
        self.scrub = scrubber
        self.rows = 0

    def finish(self, ok: bool) -> None:
        """Rename over the target when ``ok``; otherwise drop the partial file."""
        self.file.finish(ok)


class _CsvRows(_Rows):
    def __init__(self, path: Path, columns: Sequence[str], scrubber: Scrubber) -> None:
        super().__init__(path, scrubber)
        self.columns = list(columns)
        self._csv = csv.writer(self.file.out)
        self._csv.writerow(self.columns)

    def write(self, row: Mapping[str, Any]) -> None:
        clean = self.scrub.scrub_value(row)
        self._csv.writerow([safe_cell(_flat(clean.get(column))) for column in self.columns])
        self.rows += 1


class _JsonlRows(_Rows):
    def write(self, row: Mapping[str, Any]) -> None:
        clean = self.scrub.scrub_value(row)
        self.file.out.write(json.dumps(clean, ensure_ascii=False, separators=(",", ":")) + "\n")
        self.rows += 1


def _flat(value: Any) -> Any:
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def open_rows(
    path: Path, fmt: ExportFormat, columns: Sequence[str], *, scrubber: Scrubber | None = None
) -> RowWriter:
    """A writer of ``fmt`` rows beside ``path`` (renamed over it by ``finish(True)``); every row is scrubbed
    of ``scrubber``'s secrets before it is written."""
    scrub = scrubber if scrubber is not None else Scrubber(())
    if fmt == "csv":
        return _CsvRows(path, columns, scrub)
    return _JsonlRows(path, scrub)
