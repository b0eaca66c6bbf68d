"""What a person (or a machine) sees of a run: the live view, log lines, and the JSON / CSV / HTML reports.

- :class:`RunRecorder` observes the engine (``BulkEngine(config, observer=recorder.observe)``) and keeps the
  live state and a time series;
- :func:`make_view` picks the rich live view (a terminal), plain lines (a pipe) or JSON lines;
- :func:`write_json`, :func:`write_csv`, :func:`write_html` write the reports (``report.py`` documents the
  JSON fields); :func:`read_report` reads one back incrementally for ``bulk-engine report``
  (:func:`load_report`: into memory); a :class:`StreamedReport` is a report whose operations are read in
  passes (from a run's spill file, :mod:`.spill`, or a saved report), so no report has to fit in memory;
- :class:`RunSession` ties them together for ``bulk-engine run`` / ``resume``.
"""

from .csvreport import CSV_COLUMNS, render_csv, write_csv
from .html import render_html, write_html
from .live import JsonView, LineView, LiveView, View, make_view
from .plan import JobPlan, plan_job
from .recorder import RunRecorder
from .report import (
    REQUIRED_FIELDS,
    ReportFormatError,
    StreamedReport,
    load_report,
    read_report,
    redact,
    write_json,
)
from .session import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, ReportPaths, RunSession, write_reports

__all__ = [
    "CSV_COLUMNS",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "REQUIRED_FIELDS",
    "JobPlan",
    "JsonView",
    "LineView",
    "LiveView",
    "ReportFormatError",
    "ReportPaths",
    "RunRecorder",
    "RunSession",
    "StreamedReport",
    "View",
    "load_report",
    "make_view",
    "plan_job",
    "read_report",
    "redact",
    "render_csv",
    "render_html",
    "write_csv",
    "write_html",
    "write_json",
    "write_reports",
]
