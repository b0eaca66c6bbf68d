"""Per-object field diffs of update tasks, as the CSV and HTML reports show them.

The ``update`` task (``operations/update.py``) records one entry per object in its task details
(``tasks[i].details.diff``: ``{op_id, id, level, state, fields: {name: {old, new}}, unchanged, reason}``,
``state`` one of changed / unchanged / skipped / failed). This module turns those entries into the text of the
CSV report's ``changes`` column (``daily_budget: 1000 → 1100; name: "A" → "B"``) and groups them for the
HTML section, so both writers read the diff the same way.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

__all__ = ["DIFF_STATES", "change_text", "changes_by_op", "diff_entries"]

DIFF_STATES = ("changed", "unchanged", "skipped", "failed")


def diff_entries(report: Mapping[str, Any]) -> Iterator[tuple[Mapping[str, Any], Mapping[str, Any]]]:
    """``(task, entry)`` for every diff entry of every task of ``report``."""
    for task in report.get("tasks") or ():
        if not isinstance(task, Mapping):
            continue
        details = task.get("details")
        diff = details.get("diff") if isinstance(details, Mapping) else None
        for entry in diff if isinstance(diff, list) else ():
            if isinstance(entry, Mapping):
                yield task, entry


def _value(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= 120 else text[:119] + "…"


def change_text(entry: Mapping[str, Any]) -> str:
    """``field: old → new; …`` (sorted by field), or ``""`` when nothing changes."""
    fields = entry.get("fields")
    if not isinstance(fields, Mapping):
        return ""
    parts = []
    for name in sorted(fields):
        change = fields[name]
        if isinstance(change, Mapping):
            parts.append(f"{name}: {_value(change.get('old'))} → {_value(change.get('new'))}")
    return "; ".join(parts)


def changes_by_op(report: Mapping[str, Any]) -> dict[str, str]:
    """``op_id → change_text`` for the CSV report (objects with a change only)."""
    out: dict[str, str] = {}
    for _, entry in diff_entries(report):
        text = change_text(entry)
        if text:
            out[str(entry.get("op_id"))] = text
    return out
