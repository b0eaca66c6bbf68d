"""``MetaAdvantagePlusMigrationOperator``: migrate Advantage+ shopping / app campaigns to Advantage+
campaigns, with a preflight report and a gate that stops before migrating when campaigns are blocked, and roll
a migration back from its journal (S003 §Migrate … into Advantage+ Campaigns, FAQ included: the engine's
``migrate`` task, bulk_engine/operations/migrate_rollback.py)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from bulk_engine import ConfigError, JournalError
from bulk_engine.operations import Issue, JobFileError, JobReport, JobSpec
from bulk_engine.operations.migrate_journal import migration_accounts
from bulk_engine.operations.migrate_plan import write_plan
from bulk_engine.persistence import is_journal_url

from ..hooks.journal import journal_url
from .job import MetaTaskOperator, as_list, as_mapping

if TYPE_CHECKING:
    from bulk_engine import Journal

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
        "verified": {r["source_id"]: r.get("verified") for r in records if r.get("state") == "migrated"},
        "unverified": {
            r["source_id"]: r.get("verify_problems") for r in records if r.get("verified") is False
        },
        "switch": {r["source_id"]: r.get("switch") for r in records if r.get("switch")},
        "to_pause": [
            r["source_id"]
            for r in records
            if r.get("action") == "copy_and_migrate"
            and r.get("verified")
            and r.get("source_status") == "ACTIVE"
            and not r.get("source_paused")
        ],
        "mapped_objects": sum(len(r.get("id_map") or ()) for r in records),
    }


class MetaAdvantagePlusMigrationOperator(MetaTaskOperator):
    """Migrate ASC / AAC campaigns to Advantage+ (a ``type: migrate`` task).

    :param campaign_ids: the campaigns (default: every campaign of the ad account). Templated.
    :param preflight_only: only read and classify (eligible, migrate_only, blocked with the documented
        reason and manual path, already_migrated, not_applicable) and push that report; nothing is written.
    :param on_blocked: what a migration does when the preflight finds blocked campaigns, *before*
        migrating anything: ``fail`` (default; the task fails, no retry), ``skip`` (the task is skipped) or
        ``continue`` (migrate the others; the blocked ones are reported).
    :param mode: ``copy`` (copy and migrate, source kept; default), ``in_place``, or ``rollback``: undo one
        migration — copies paused or deleted per ``rollback_copies``, the sources its switch-over paused
        re-activated, in-place migrations reported as not reversible. Name it by exactly one of
        ``rollback_job`` or ``rollback_report``.
    :param rollback_job: the migration's engine job id (its task's XCom ``job_id``), read from its journal —
        no report needed, a crashed run included. With ``journal_conn_id`` (one shared PostgreSQL journal) that
        is all; with a journal file per task (``journal_path`` with ``{job_id}``, the default) also set
        ``rollback_journal``. Templated.
    :param rollback_journal: with ``rollback_job``: the migration's journal (its task's XCom ``journal``: a
        SQLite path, or the shared journal's location, which then means the journal this task runs with).
        Default: the journal this task runs with. Templated.
    :param rollback_report: the migration's JSON report (its ``report_path``) instead of its journal. Templated.
    :param plan: a reviewed plan CSV (``bulk-engine migrate-plan``): each row's action is executed; the gate
        is the review, so ``on_blocked`` does not apply. Templated.
    :param plan_output: with ``preflight_only``: write the plan CSV to review here. Templated.
    :param after_copy: ``pause_source`` (default: each ACTIVE source is paused once its copy verified, in the
        same journaled job) or ``keep_source``.
    :param app_campaigns, deep_copy, status_option, rename_options, verify, readiness, max_ads: as the
        migrate task of job files (docs/job-files.md).

    The XCom summary adds ``classes``, ``blocked``, ``migrated`` (source id → new id), ``verified``,
    ``unverified`` (source id → why), ``switch`` (what the switch-over did per source), ``to_pause`` (verified copies whose ACTIVE source is
    not paused yet: ``after_copy="keep_source"`` leaves that to a later step), ``mapped_objects``,
    ``plan_path`` when a plan was written and, when the gate stopped the task, ``gate: "stopped"``; with the
    base's ``job_id`` and ``journal`` it is what a rollback task needs (docs/airflow.md, "Rolling back"). A
    rollback's summary has ``rollback_of``, ``rollback_from`` (``journal`` or ``report``) and ``rollback``
    (per campaign what became of the copy and the source).
    """

    task_type = "migrate"
    template_fields: Sequence[str] = (
        "meta_conn_id",
        "campaign_ids",
        "rename_options",
        "plan",
        "plan_output",
        "rollback_report",
        "rollback_job",
        "rollback_journal",
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
        plan: str | None = None,
        plan_output: str | None = None,
        after_copy: str = "pause_source",
        rollback_report: str | None = None,
        rollback_job: str | None = None,
        rollback_journal: str | None = None,
        rollback_copies: str = "pause",
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
        self.plan = plan
        self.plan_output = plan_output
        self.after_copy = after_copy
        self.rollback_report = rollback_report
        self.rollback_job = rollback_job
        self.rollback_journal = rollback_journal
        self.rollback_copies = rollback_copies
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
            "plan": self.plan or None,
            "after_copy": self.after_copy,
            "rollback_report": self.rollback_report or None,
            "rollback_job": self.rollback_job or None,
            "rollback_journal": self._rollback_journal(),
            "rollback_copies": self.rollback_copies,
        }

    def _rollback_journal(self) -> str | None:
        """``rollback_journal``, or ``None`` when it is the location of the shared journal this task runs with
        (``journal_conn_id``): a location names no password, the connection does."""
        target = self.rollback_journal or None
        if target is None or not self.journal_conn_id or not is_journal_url(target):
            return target
        from bulk_engine.persistence.postgres_connections import PostgresTarget

        try:
            own = PostgresTarget.parse(journal_url(self.journal_conn_id, schema=self.journal_schema))
        except (ConfigError, JournalError):  # the task's journal fails to open next, saying why
            return target
        return None if target == own.location else target

    def check_journal(self, spec: JobSpec, journal: Journal) -> None:
        """A rollback from the journal it runs with (``rollback_job`` alone) needs the migration in it: the
        engine checks a named ``rollback_journal`` when the job is parsed, this one only exists now."""
        task = spec.tasks[0]
        job = getattr(task, "rollback_job", None)
        if (
            getattr(task, "mode", None) != "rollback"
            or job is None
            or getattr(task, "rollback_journal", None)
        ):
            return
        if migration_accounts(journal, job):
            return
        why = (
            f"the journal this task runs with ({journal.location}) holds no migration sent by job {job!r}: "
            "with a journal file per task, set rollback_journal to the migration's (its XCom 'journal')"
        )
        issue = Issue(("tasks", 0, "rollback_job"), why, job, "migrate.rollback.empty")
        raise JobFileError([issue], spec.source)

    def execute_job(self, spec: JobSpec, run: Callable[[JobSpec, str], JobReport]) -> JobReport:
        """With the gate on, a read-only preflight runs first; blocked campaigns stop the task there."""
        self._gate_blocked = []
        if self.preflight_only or self.on_blocked == "continue" or self.plan or self.mode == "rollback":
            report = run(spec, "")
            if self.plan_output and report.tasks:
                records = [
                    r if isinstance(r, dict) else r.to_dict()
                    for r in report.tasks[0].details.get("campaigns") or []
                ]
                write_plan(Path(self.plan_output), records)
            return report
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
        if self.mode == "rollback":
            details = report.tasks[0].details if report.tasks else {}
            return {k: details.get(k) for k in ("rollback_of", "rollback_from", "rollback")}
        summary = preflight_summary(report)
        if self.plan_output:
            summary["plan_path"] = self.plan_output
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
