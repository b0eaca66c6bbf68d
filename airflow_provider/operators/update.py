"""``MetaUpdateOperator``: set fields on many campaigns / ad sets / ads (a ``type: update`` task), keeping an undo file."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bulk_engine.operations import JobReport
from bulk_engine.operations.undo import undo_document, undo_file_name

from ..reports import write_report
from .job import MetaTaskOperator, as_list, as_mapping


class MetaUpdateOperator(MetaTaskOperator):
    """Update fields read-before-write, with relative amounts, no-op skips and the documented rules checked
    locally (``docs/job-files.md`` → Update).

    :param level: ``campaign`` | ``adset`` | ``ad`` (required with ``ids`` or ``csv``). Templated.
    :param ids: object ids (a list, its JSON text, or comma-separated). Templated.
    :param csv: a CSV with header ``id`` plus one column per field (e.g. ``id,daily_budget``; ``+10%`` cells
        are relative). Templated — e.g. the path an upstream task wrote.
    :param selector: the status task's selector (``{"level": "adset", "name_prefix": …}``). Templated.
    :param values: field → value for every object (the task's ``set``): ``{"daily_budget": "+10%"}``. Templated.
    :param clamp: field → ``{"min": …, "max": …}`` bounds of new amounts. Templated.
    :param batch_size: objects read, then written, per round.
    :param undo_path: where to write the undo file (``bulk-engine undo UNDO_FILE``): a local path or an
        object-storage URL. Default: next to ``report_path`` (``<report>.undo.json``), else none. Templated.

    The XCom summary adds ``diff_counts`` (changed / unchanged / skipped / failed objects) and ``undo_path``.
    Exactly once across retries and deferrals: the journal answers the reads, so a ``+10%`` is applied once.
    """

    task_type = "update"
    template_fields: Sequence[str] = (
        "meta_conn_id",
        "level",
        "ids",
        "csv",
        "selector",
        "values",
        "clamp",
        "account_id",
        "report_path",
        "journal_path",
        "undo_path",
    )
    template_fields_renderers = {"selector": "json", "values": "json", "clamp": "json"}

    def __init__(
        self,
        *,
        level: str | None = None,
        ids: Sequence[str] | str | None = None,
        csv: str | None = None,
        selector: Mapping[str, Any] | str | None = None,
        values: Mapping[str, Any] | str | None = None,
        clamp: Mapping[str, Any] | str | None = None,
        batch_size: int | None = None,
        undo_path: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if [ids, selector, csv].count(None) != 2:
            raise ValueError("MetaUpdateOperator takes exactly one of ids, selector or csv")
        self.level = level
        self.ids = ids
        self.csv = csv
        self.selector = selector
        self.values = values
        self.clamp = clamp
        self.batch_size = batch_size
        self.undo_path = undo_path

    def task_fields(self) -> dict[str, Any]:
        ids = as_list(self.ids)
        return {
            "level": self.level,
            "ids": [str(i) for i in ids] if ids is not None else None,
            "csv": self.csv,
            "selector": as_mapping(self.selector),
            "set": as_mapping(self.values),
            "clamp": as_mapping(self.clamp),
            "batch_size": self.batch_size,
        }

    def summarize(self, report: JobReport) -> dict[str, Any]:
        details = report.tasks[0].details if report.tasks else {}
        summary: dict[str, Any] = {"diff_counts": details.get("diff_counts"), "undo_path": None}
        target = self.undo_path or (undo_file_name(self.report_path) if self.report_path else None)
        doc = undo_document(report.to_dict())
        if target and any(task.get("objects") for task in doc["tasks"]):
            summary["undo_path"] = write_report(target, self.scrubber.scrub_value(doc), self.report_conn_id)
        return summary
