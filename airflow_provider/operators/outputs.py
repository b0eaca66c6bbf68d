"""What a Meta task keeps and leaves behind: the journal it runs with, its report file and its XCom summary.

Why apart from :mod:`~airflow_provider.operators.base`: the base is the task's lifecycle (run, defer, stop);
these are its inputs and outputs on disk and in XCom — where the journal lives (``journal_conn_id``, or
``journal_path`` with ``{job_id}`` and ``{airflow_home}`` replaced, or none), what the full report holds, and
the small summary every verb extends. Everything that leaves the task goes through the task's one
:class:`~bulk_engine.scrub.Scrubber` (:func:`output_scrubber`): token, app secret, ``appsecret_proof``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException

from bulk_engine import ConfigError, EngineConfig, JournalError, MemoryJournal, SqliteJournal
from bulk_engine.operations import JobReport
from bulk_engine.persistence import open_journal
from bulk_engine.scrub import Scrubber

from ..hooks.journal import journal_url

if TYPE_CHECKING:
    from airflow.sdk import Context

    from bulk_engine import Journal

__all__ = [
    "COUNTERS",
    "DEFAULT_JOURNAL",
    "airflow_keys",
    "output_scrubber",
    "task_journal",
    "task_report",
    "task_summary",
]

DEFAULT_JOURNAL = "{airflow_home}/meta_bulk/journals/{job_id}.sqlite"
COUNTERS = (
    "http_requests",
    "graph_calls",
    "retries",
    "throttle_events",
    "lookups",
    "recovered",
    "from_journal",
)


def output_scrubber(config: EngineConfig) -> Scrubber:
    """The scrubber of a task's outputs (XComs, report, log records, messages).

    The secrets also go to Airflow's own masker, for the task log lines the operator does not write (a
    failure's traceback…): Airflow masks the connection's password and secret extras by itself but has never
    seen the ``appsecret_proof``.
    """
    secrets = config.credentials.secrets()
    try:
        from airflow.sdk.log import mask_secret
    except ImportError:  # pragma: no cover - an Airflow without it: our own outputs are scrubbed anyway
        pass
    else:
        for secret in secrets:
            mask_secret(secret)
    return Scrubber(secrets)


@contextlib.contextmanager
def task_journal(
    *,
    job_id: str,
    journal_path: str | None,
    journal_conn_id: str | None,
    journal_schema: str | None,
    scrubber: Scrubber,
) -> Iterator[tuple[Journal, str | None]]:
    """The open journal of a task instance and its location (``None``: an in-memory one), closed after.

    ``journal_conn_id`` (a shared PostgreSQL schema) wins over ``journal_path``; its location names no
    password. A path's ``{job_id}`` and ``{airflow_home}`` are replaced and its folder is created.
    """
    if journal_conn_id:
        try:
            shared = open_journal(journal_url(journal_conn_id, schema=journal_schema))
        except (ConfigError, JournalError) as err:
            raise AirflowFailException(scrubber.text(str(err))) from None
        try:
            yield shared, shared.location
        finally:
            shared.close()
        return
    if journal_path is None:
        yield MemoryJournal(), None
        return
    home = os.environ.get("AIRFLOW_HOME") or str(Path.home() / "airflow")
    path = Path(str(journal_path).replace("{airflow_home}", home).replace("{job_id}", job_id))
    path.parent.mkdir(parents=True, exist_ok=True)
    journal = SqliteJournal(path)
    try:
        yield journal, str(path)
    finally:
        journal.close()


def airflow_keys(context: Context) -> dict[str, Any]:
    """Which task instance and try a report belongs to."""
    ti = context["ti"]
    return {
        "dag_id": ti.dag_id,
        "run_id": ti.run_id,
        "task_id": ti.task_id,
        "map_index": getattr(ti, "map_index", -1),
        "try_number": getattr(ti, "try_number", None),
    }


def task_report(
    job_report: JobReport,
    context: Context,
    *,
    deferrals: int,
    waited_s: float,
    journal: str | None,
    scrubber: Scrubber,
) -> dict[str, Any]:
    """The full report of a task (``JobReport.to_dict()`` plus the task's own figures), scrubbed."""
    report = job_report.to_dict()
    report.update(
        deferrals=deferrals,
        waited_s=round(waited_s, 3),
        journal=journal,
        airflow=airflow_keys(context),
    )
    return scrubber.scrub_value(report)


def task_summary(
    job_id: str,
    job_report: JobReport,
    report: Mapping[str, Any],
    *,
    location: str | None,
    extra: Mapping[str, Any],
    scrubber: Scrubber,
) -> dict[str, Any]:
    """The XCom ``return_value``: counts and counters (``all_runs`` over every run of the job), where the
    report and the journal are (a later task — a rollback — reads the journal), then what the verb adds."""
    summary = {
        "job_id": job_id,
        "counts": report["counts"],
        "ok": job_report.ok,
        "report_path": location,
        "journal": report.get("journal"),
        **{key: report.get(key, 0) for key in (*COUNTERS, "elapsed_s")},
        "all_runs": report.get("all_runs") or {},
        "deferrals": report.get("deferrals", 0),
        "waited_s": report.get("waited_s", 0.0),
        "tasks": [{"key": t.key, "type": t.type, "counts": t.counts} for t in job_report.tasks],
        **extra,
    }
    return scrubber.scrub_value(summary)  # every XCom value: pushed or returned
