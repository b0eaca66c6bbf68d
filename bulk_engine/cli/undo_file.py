"""The undo file a run leaves next to its JSON report (``out/job.json`` → ``out/job.undo.json``).

Why its own module: ``run`` writes it after every run that changed or made something, and ``undo`` reads it
back; neither command needs the other to do so.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["undo_file_path", "write_undo_file"]


def undo_file_path(report: Path) -> Path:
    """``out/job.json`` → ``out/job.undo.json`` (:func:`~bulk_engine.operations.undo.undo_file_name`)."""
    from bulk_engine.operations.undo import undo_file_name

    return Path(undo_file_name(str(report)))


def write_undo_file(report: Any, path: Path | None) -> Path | None:
    """Write the undo file of a finished run next to its JSON report (nothing when the run changed or made
    nothing undoable, or was a dry run); the path written. The report's operations (the objects created or
    copied) are read back from the JSON report, streamed; the statuses they were made with come from the job
    file, which is the run's right now."""
    from bulk_engine.operations.undo import undo_document
    from bulk_engine.reporting.files import AtomicFile
    from bulk_engine.reporting.report import ReportFormatError, read_report

    if path is None or not isinstance(report, dict):
        return None
    operations: Any = ()
    if any(t.get("type") in ("create", "copy", "operations") for t in report.get("tasks") or ()):
        try:
            operations = read_report(path).operations()
        except ReportFormatError:
            operations = ()  # no JSON report to read: the objects made are not known
    doc = undo_document(report, operations=operations, report_path=str(path))
    if not doc["migrations"] and not any(task.get("objects") or task.get("created") for task in doc["tasks"]):
        return None
    target = undo_file_path(path)
    with AtomicFile(target) as out:
        out.write(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
    return target
