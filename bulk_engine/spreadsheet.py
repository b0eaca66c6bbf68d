"""CSV cells a spreadsheet opens safely, shared by every CSV the engine writes (no dependencies).

The rule (OWASP "CSV Injection"): a cell starting with ``=``, ``+``, ``-`` or ``@`` is a formula to Excel,
LibreOffice and Google Sheets, so a Graph message or an object's name could run one. Such a cell gets a
leading ``'`` unless it is a number (``-50``, ``+10``). Used by the CSV report (:mod:`.reporting.csvreport`),
the migration map and plan, and an export's CSV (:mod:`.operations.exportfile`).
"""

from __future__ import annotations

from typing import Any

__all__ = ["safe_cell"]

_FORMULA_STARTS = ("=", "+", "-", "@")


def safe_cell(value: Any) -> str:
    """``value`` as CSV cell text: empty for ``None``; a formula-looking text escaped with a leading ``'``."""
    if value is None:
        return ""
    text = str(value)
    if text[:1] in _FORMULA_STARTS and not _is_number(text):
        return "'" + text
    return text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
