"""DAGs the Airflow tests run with ``dag.test()`` against the simulator: a migration, then its rollback from
the migration's journal (no report file anywhere). Not examples for users."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, task

from airflow_provider.demo import seed_demo
from airflow_provider.operators import MetaAdvantagePlusMigrationOperator

START = pendulum.datetime(2026, 1, 1, tz="UTC")
REPORT = "{{ params.report_dir }}/{{ ti.task_id }}.json"


@task
def asc_campaigns() -> list[str]:
    return seed_demo("meta_default", ["asc", "asc"], prefix="rb")


def migrate_then_roll_back(dag_id: str, journal_conn_id: str | None = None) -> None:
    """``migrate`` (copy + pause_source, no report file) then ``rollback`` from its journal, named by the
    migrate task's XCom ``job_id`` and ``journal``."""
    with DAG(dag_id, schedule=None, start_date=START, catchup=False, params={"report_dir": "/tmp"}):
        migrate = MetaAdvantagePlusMigrationOperator(
            task_id="migrate",
            campaign_ids=asc_campaigns(),
            after_copy="pause_source",
            journal_conn_id=journal_conn_id,
        )
        rollback = MetaAdvantagePlusMigrationOperator(
            task_id="rollback",
            mode="rollback",
            rollback_job="{{ ti.xcom_pull(task_ids='migrate')['job_id'] }}",
            rollback_journal="{{ ti.xcom_pull(task_ids='migrate')['journal'] }}",
            journal_conn_id=journal_conn_id,
            report_path=REPORT,
        )
        migrate >> rollback


migrate_then_roll_back("meta_test_migrate_rollback")
migrate_then_roll_back("meta_test_migrate_rollback_shared", journal_conn_id="meta_journal")
