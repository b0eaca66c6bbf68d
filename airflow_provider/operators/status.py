"""``MetaStatusOperator``: set the status of many objects, by id list or by selector (read, filter, update)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bulk_engine.operations import JobReport

from .job import MetaTaskOperator, as_list, as_mapping


class MetaStatusOperator(MetaTaskOperator):
    """Pause, activate, archive or delete campaigns / ad sets / ads (a ``type: status`` task).

    :param status: ``ACTIVE``, ``PAUSED``, ``ARCHIVED`` or ``DELETED``. Templated.
    :param ids: object ids (a list, its JSON text, or comma-separated). Templated.
    :param selector: select the objects of the ad account instead: ``{"level": "campaign" | "adset" | "ad",
        "name_prefix" | "name_contains" | "name_regex": …, "effective_status": [...], "campaign_ids": [...],
        "include_archived": false, "limit": N}``. Templated.
    :param csv: a CSV of ids (header ``id[,status][,current_status]``). Templated.
    :param read_current: read each id's status first (skips no-op and forbidden transitions).
    :param level: what the ids are (``campaign`` | ``adset`` | ``ad``), for ``read_current``.

    Transitions the status machine forbids (e.g. out of DELETED) are skipped without a call. The XCom
    summary adds ``selected`` and ``updates`` (selector runs).
    """

    task_type = "status"
    template_fields: Sequence[str] = (
        "meta_conn_id",
        "status",
        "ids",
        "selector",
        "csv",
        "account_id",
        "report_path",
        "journal_path",
    )
    template_fields_renderers = {"selector": "json"}

    def __init__(
        self,
        *,
        status: str,
        ids: Sequence[str] | str | None = None,
        selector: Mapping[str, Any] | str | None = None,
        csv: str | None = None,
        read_current: bool = False,
        level: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if [ids, selector, csv].count(None) != 2:
            raise ValueError("MetaStatusOperator takes exactly one of ids, selector or csv")
        self.status = status
        self.ids = ids
        self.selector = selector
        self.csv = csv
        self.read_current = read_current
        self.level = level

    def task_fields(self) -> dict[str, Any]:
        ids = as_list(self.ids)
        return {
            "status": self.status,
            "ids": [str(i) for i in ids] if ids is not None else None,
            "selector": as_mapping(self.selector),
            "csv": self.csv,
            "read_current": self.read_current or None,
            "level": self.level,
        }

    def summarize(self, report: JobReport) -> dict[str, Any]:
        details = report.tasks[0].details if report.tasks else {}
        return {key: details[key] for key in ("selected", "updates") if key in details}
