"""``MetaCopyOperator``: copy campaigns, ad sets or ads with ``/copies``, or clone campaigns into another
ad account."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bulk_engine.operations import JobReport

from .job import MetaTaskOperator, as_list, as_mapping


class MetaCopyOperator(MetaTaskOperator):
    """Copy objects (a ``type: copy`` task).

    :param source_ids: the objects to copy (list, JSON text or comma-separated). Templated.
    :param level: ``campaign`` (default), ``adset`` or ``ad``.
    :param deep_copy: copy the children too (default ``True``); a deep copy over Graph's synchronous limit
        falls back to a chunked copy (``fallback="chunked"``).
    :param status_option: ``PAUSED`` (default), ``ACTIVE`` or ``INHERITED_FROM_SOURCE``.
    :param rename_options: ``{"rename_strategy": …, "rename_prefix": …, "rename_suffix": …}``. Templated.
    :param target_campaign_id: ad-set copies: the campaign to copy into. Templated.
    :param target_adset_id: ad copies: the ad set to copy into. Templated.
    :param target_account_id: clone the campaign trees into this ad account (``/copies`` stays within one
        account: the tree is read and re-created, ids remapped). Templated.

    ``/copies`` carries no idempotency key: keep the journal (``journal_path``) where retries run, or a
    retry whose earlier outcome is unknown fails rather than copy twice. The XCom summary adds
    ``copies``: source id → new id.
    """

    task_type = "copy"
    template_fields: Sequence[str] = (
        "meta_conn_id",
        "source_ids",
        "rename_options",
        "target_campaign_id",
        "target_adset_id",
        "target_account_id",
        "account_id",
        "report_path",
        "journal_path",
    )

    def __init__(
        self,
        *,
        source_ids: Sequence[str] | str,
        level: str = "campaign",
        deep_copy: bool = True,
        status_option: str = "PAUSED",
        rename_options: Mapping[str, Any] | str | None = None,
        target_campaign_id: str | None = None,
        target_adset_id: str | None = None,
        target_account_id: str | None = None,
        start_time: str | None = None,
        end_time: str | None = None,
        fallback: str = "chunked",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.source_ids = source_ids
        self.level = level
        self.deep_copy = deep_copy
        self.status_option = status_option
        self.rename_options = rename_options
        self.target_campaign_id = target_campaign_id
        self.target_adset_id = target_adset_id
        self.target_account_id = target_account_id
        self.start_time = start_time
        self.end_time = end_time
        self.fallback = fallback

    def task_fields(self) -> dict[str, Any]:
        return {
            "source_ids": [str(i) for i in as_list(self.source_ids) or []],
            "level": self.level,
            "deep_copy": self.deep_copy,
            "status_option": self.status_option,
            "rename_options": as_mapping(self.rename_options),
            "target_campaign_id": self.target_campaign_id or None,
            "target_adset_id": self.target_adset_id or None,
            "target_account_id": self.target_account_id or None,
            "start_time": self.start_time,
            "end_time": self.end_time,
            "fallback": self.fallback,
        }

    def summarize(self, report: JobReport) -> dict[str, Any]:
        copies = report.tasks[0].details.get("copies", {}) if report.tasks else {}
        return {"copies": {str(source): (info or {}).get("new_id") for source, info in copies.items()}}
