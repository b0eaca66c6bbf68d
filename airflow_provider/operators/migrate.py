"""``MetaAdvantagePlusMigrationOperator``: migrate Advantage+ shopping / app campaigns to Advantage+
campaigns, with a preflight report and a gate that stops before migrating when campaigns are blocked."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from bulk_engine.operations import JobReport, JobSpec

from .job import MetaTaskOperator, as_list, as_mapping

ON_BLOCKED = ("fail", "skip", "continue")


def preflight_summary(report: JobReport) -> dict[str, Any]:
    """``classes`` (campaigns per eligibility), ``blocked`` (id, name, reason, manual path) and
    ``migrated`` (source id → new id, or the same id in place) from a migrate task's report."""
    details = report.tasks[0].details if report.tasks else {}
    records = [r if isinstance(r, dict) else r.to_dict() for r in details.get("campaigns") or []]
    return {
        "classes": dict(details.get("classes") or {}),
        "blocked": [
            {k: r.get(k) for k in ("source_id", "name", "reason", "manual_path")}
            for r in records
            if r.get("eligibility") == "blocked"
        ],
        "migrated": {r["source_id"]: r.get("new_id") for r in records if r.get("state") == "migrated"},
    }


class MetaAdvantagePlusMigrationOperator(MetaTaskOperator):
    """Migrate ASC / AAC campaigns to Advantage+ (a ``type: migrate`` task).

    :param campaign_ids: the campaigns (default: every campaign of the ad account). Templated.
    :param preflight_only: only read and classify (eligible, migrate_only, blocked with the documented
        reason and manual path, already_migrated, not_applicable) and push that report; nothing is written.
    :param on_blocked: what a migration does when the preflight finds blocked campaigns, *before*
        migrating anything: ``fail`` (default; the task fails, no retry), ``skip`` (the task is skipped) or
        ``continue`` (migrate the others; the blocked ones are reported).
    :param mode: ``copy`` (copy and migrate, source kept; default) or ``in_place``.
    :param app_campaigns, deep_copy, status_option, rename_options, verify, readiness, max_ads: as the
        migrate task of job files (docs/job-files.md).

    The XCom summary adds ``classes``, ``blocked`` and ``migrated`` (source id → new id) and, when the gate
    stopped the task, ``gate: "stopped"``.
    """

    task_type = "migrate"
    template_fields: Sequence[str] = (
        "meta_conn_id",
        "campaign_ids",
        "rename_options",
        "account_id",
        "report_path",
        "journal_path",
    )

    def __init__(
        self,
        *,
        campaign_ids: Sequence[str] | str | None = None,
        preflight_only: bool = False,
        on_blocked: str = "fail",
        mode: str = "copy",
        app_campaigns: str = "in_place",
        include_archived: bool = False,
        deep_copy: bool = True,
        status_option: str = "INHERITED_FROM_SOURCE",
        rename_options: Mapping[str, Any] | str | None = None,
        verify: bool = True,
        readiness: str = "report",
        max_ads: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if on_blocked not in ON_BLOCKED:
            raise ValueError(f"on_blocked must be one of {ON_BLOCKED}, got {on_blocked!r}")
        self.campaign_ids = campaign_ids
        self.preflight_only = preflight_only
        self.on_blocked = on_blocked
        self.mode = mode
        self.app_campaigns = app_campaigns
        self.include_archived = include_archived
        self.deep_copy = deep_copy
        self.status_option = status_option
        self.rename_options = rename_options
        self.verify = verify
        self.readiness = readiness
        self.max_ads = max_ads
        self._gate_blocked: list[dict[str, Any]] = []
        self._gate_building = False  # build_job() makes the gate's read-only preflight job

    def task_fields(self) -> dict[str, Any]:
        ids = as_list(self.campaign_ids)
        return {
            "campaign_ids": [str(i) for i in ids] if ids is not None else None,
            "preflight_only": self.preflight_only or self._gate_building,
            "mode": self.mode,
            "app_campaigns": self.app_campaigns,
            "include_archived": self.include_archived,
            "deep_copy": self.deep_copy,
            "status_option": self.status_option,
            "rename_options": as_mapping(self.rename_options),
            "verify": self.verify,
            "readiness": self.readiness,
            "max_ads": self.max_ads,
        }

    def execute_job(self, spec: JobSpec, run: Callable[[JobSpec, str], JobReport]) -> JobReport:
        """With the gate on, a read-only preflight runs first; blocked campaigns stop the task there."""
        self._gate_blocked = []
        if self.preflight_only or self.on_blocked == "continue":
            return run(spec, "")
        self._gate_building = True
        try:
            gate = self.build_job()
        finally:
            self._gate_building = False
        preflight = run(gate, "/gate")
        blocked = preflight_summary(preflight)["blocked"]
        if blocked:
            self._gate_blocked = blocked
            return preflight
        return run(spec, "")

    def summarize(self, report: JobReport) -> dict[str, Any]:
        summary = preflight_summary(report)
        if self._gate_blocked:
            summary["gate"] = "stopped"
        return summary

    def stop_after(self, report: JobReport) -> BaseException | None:
        if not self._gate_blocked:
            return None
        names = ", ".join(f"{b['source_id']} ({b['reason']})" for b in self._gate_blocked)
        message = f"{len(self._gate_blocked)} blocked campaign(s), nothing migrated: {names}"
        message = self.scrubber.text(message)  # the reasons quote Graph answers; this ends in the task log
        if self.on_blocked == "skip":
            return AirflowSkipException(message)
        return AirflowFailException(message)
