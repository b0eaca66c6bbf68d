"""The CSV report: one row per operation, for spreadsheets and ``grep``.

Columns: ``op_id, type, state, account_id, graph_id, error_code, error_subcode, error_message,
error_user_title, error_user_msg, fbtrace_id, reason, attempts, changes`` (``type`` is the operation kind,
e.g. ``create_ad``; ``changes`` an update's per-field diff, ``daily_budget: 1000 → 1100``: :mod:`.diffs`).
Empty cells for what does not apply. Cells starting with ``= + - @`` get a leading ``'`` so a spreadsheet
never evaluates a Graph message as a formula.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from bulk_engine.spreadsheet import safe_cell as _cell  # the one formula-escaping rule of every CSV

from .diffs import changes_by_op
from .files import AtomicFile

__all__ = ["CSV_COLUMNS", "CsvReportWriter", "render_csv", "write_csv"]

CSV_COLUMNS = (
    "op_id",
    "type",
    "state",
    "account_id",
    "graph_id",
    "error_code",
    "error_subcode",
    "error_message",
    "error_user_title",
    "error_user_msg",
    "fbtrace_id",
    "reason",
    "attempts",
    "changes",
)


def _row(op: Mapping[str, Any], changes: Mapping[str, str] | None = None) -> list[str]:
    error = op.get("error") if isinstance(op.get("error"), Mapping) else {}
    assert isinstance(error, Mapping)
    values = {
        "op_id": op.get("op_id"),
        "type": op.get("kind"),
        "state": op.get("state"),
        "account_id": op.get("account_id"),
        "graph_id": op.get("graph_id"),
        "error_code": error.get("code"),
        "error_subcode": error.get("error_subcode"),
        "error_message": error.get("message"),
        "error_user_title": error.get("error_user_title"),
        "error_user_msg": error.get("error_user_msg"),
        "fbtrace_id": error.get("fbtrace_id"),
        "reason": op.get("reason"),
        "attempts": op.get("attempts"),
        "changes": (changes or {}).get(str(op.get("op_id"))),
    }
    return [_cell(values[c]) for c in CSV_COLUMNS]


def render_csv(report: Mapping[str, Any]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    changes = changes_by_op(report)
    for op in report.get("operations", []):
        if isinstance(op, Mapping):
            writer.writerow(_row(op, changes))
    return out.getvalue()


class CsvReportWriter:
    """The CSV report as a stream: ``with CsvReportWriter(path) as out: out.add(op)…``.

    Atomic like the JSON report: a temporary file beside ``path``, renamed over it when the block ends
    without an exception (removed otherwise).
    """

    def __init__(self, path: str | Path, changes: Mapping[str, str] | None = None) -> None:
        self.path = Path(path)
        self.changes = changes  # op_id → diff text (:func:`.diffs.changes_by_op` of the report's head)
        self._file: AtomicFile | None = None
        self._out: IO[str] | None = None
        self._writer: Any = None

    def __enter__(self) -> CsvReportWriter:
        self._file = AtomicFile(self.path, newline="")
        self._out = self._file.out
        self._writer = csv.writer(self._out, lineterminator="\n")
        self._writer.writerow(CSV_COLUMNS)
        return self

    def add(self, op: Mapping[str, Any]) -> None:
        if isinstance(op, Mapping):
            self._writer.writerow(_row(op, self.changes))

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._file is not None
        self._file.finish(kind is None)


def write_csv(report: Mapping[str, Any], path: str | Path) -> Path:
    with CsvReportWriter(path, changes_by_op(report)) as out:
        for op in report.get("operations", []):
            out.add(op)
    return Path(path)
