"""The CSV report: one row per operation, for spreadsheets and ``grep``.

Columns: ``op_id, type, state, account_id, graph_id, error_code, error_subcode, error_message,
error_user_title, error_user_msg, fbtrace_id, reason, attempts`` (``type`` is the operation kind, e.g.
``create_ad``). Empty cells for what does not apply. Cells starting with ``= + - @`` get a leading ``'`` so a
spreadsheet never evaluates a Graph message as a formula.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["CSV_COLUMNS", "render_csv", "write_csv"]

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
)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    text = str(value)
    if text[:1] in ("=", "+", "-", "@") and not _is_number(text):
        return "'" + text
    return text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _row(op: Mapping[str, Any]) -> list[str]:
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
    }
    return [_cell(values[c]) for c in CSV_COLUMNS]


def render_csv(report: Mapping[str, Any]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for op in report.get("operations", []):
        if isinstance(op, Mapping):
            writer.writerow(_row(op))
    return out.getvalue()


def write_csv(report: Mapping[str, Any], path: str | Path) -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render_csv(report), encoding="utf-8", newline="")
    return target
