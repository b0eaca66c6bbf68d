"""``MetaExportOperator``: read an ad-account edge into a CSV or JSON Lines file (a ``type: export`` task)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bulk_engine.operations import JobReport

from .job import MetaTaskOperator, as_list


class MetaExportOperator(MetaTaskOperator):
    """Export campaigns / ad sets / ads / creatives / images / videos of an ad account, page by page.

    :param edge: ``campaigns``, ``adsets``, ``ads``, ``adcreatives``, ``adimages`` or ``advideos``.
    :param fields: fields to read (a list, its JSON text, or comma-separated). Templated.
    :param output_path: the file to write, ``.csv`` or ``.jsonl`` (a path on the worker). Templated, e.g.
        ``/data/meta/ads-{{ ds }}.csv``. Written atomically: a failed try leaves the previous file.
    :param filtering: Graph ``filtering`` entries ``[{"field", "operator", "value"}]``. Templated.
    :param effective_status: e.g. ``["ACTIVE", "PAUSED"]`` (campaigns, adsets, ads). Templated.
    :param output_format: ``csv`` or ``jsonl`` (default: from the extension).
    :param page_size: the largest page asked for (default 500); halves when Graph asks for less data.
    :param max_rows: stop after this many rows.

    The XCom summary stays small whatever the export's size: the counts, and ``export`` = ``{"path", "rows",
    "pages", "format", "written", "page_size"}`` — the rows are in the file only. Deferral, journal and
    figures are the base operator's: a try resumed after a throttle cool-down answers the pages it already
    read from the journal and goes on from the last cursor.
    """

    task_type = "export"
    template_fields: Sequence[str] = (
        "meta_conn_id",
        "fields",
        "output_path",
        "filtering",
        "effective_status",
        "account_id",
        "report_path",
        "journal_path",
    )
    template_fields_renderers = {"filtering": "json"}

    def __init__(
        self,
        *,
        edge: str,
        fields: Sequence[str] | str,
        output_path: str,
        filtering: Sequence[Mapping[str, Any]] | str | None = None,
        effective_status: Sequence[str] | str | None = None,
        output_format: str | None = None,
        page_size: int | None = None,
        max_rows: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.edge = edge
        self.fields = fields
        self.output_path = output_path
        self.filtering = filtering
        self.effective_status = effective_status
        self.output_format = output_format
        self.page_size = page_size
        self.max_rows = max_rows

    def task_fields(self) -> dict[str, Any]:
        return {
            "edge": self.edge,
            "fields": as_list(self.fields),
            "output": str(self.output_path),
            "filtering": [dict(f) for f in as_list(self.filtering) or []] or None,
            "effective_status": as_list(self.effective_status),
            "format": self.output_format,
            "page_size": self.page_size,
            "max_rows": self.max_rows,
        }

    def summarize(self, report: JobReport) -> dict[str, Any]:
        details = report.tasks[0].details if report.tasks else {}
        keys = ("rows", "pages", "format", "written", "page_size")
        return {"export": {"path": details.get("output"), **{k: details.get(k) for k in keys}}}
