"""DAGs of the real-deployment test (``tests/airflow/deployment``): run by a scheduler, a LocalExecutor worker
and a triggerer against the simulator, never by ``dag.test()``. Not examples for users.

The first two send small batches one at a time (``max_batch_ops``, concurrency 1) so a run lasts long enough
against a slowed simulator for the test to act while it is under way: fill the account's quota
(``meta_deploy_defer``) or kill the task process (``meta_deploy_kill``). The third hands its tree to Meta's
async batch endpoint (``backend="async"``) and defers while the server processes the request set
(``meta_deploy_async``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import DAG

from airflow_provider.operators import MetaBulkCreateOperator
from bulk_engine import GovernorConfig
from bulk_engine.simulator import SimulatorConfig

START = pendulum.datetime(2026, 1, 1, tz="UTC")
ACCOUNTS = SimulatorConfig().ad_account_ids
REPORT = "{{ params.report_dir }}/{{ dag.dag_id }}-try{{ ti.try_number }}.json"
# One batch of a few calls at a time: each HTTP request is a step the test can act between.
SLOW_ENGINE: dict[str, Any] = {
    "max_batch_ops": 2,
    "governor": GovernorConfig(initial_concurrency=1, max_concurrency=1, max_total_concurrency=1),
}
DEFER_CAMPAIGNS, DEFER_ADSETS = 4, 1
KILL_CAMPAIGNS, KILL_ADSETS = 20, 2
ASYNC_CAMPAIGNS, ASYNC_ADSETS = 12, 2


def campaigns(prefix: str, count: int, adsets: int) -> list[dict[str, Any]]:
    """``count`` PAUSED traffic campaigns named ``<prefix><n>`` with ``adsets`` ad sets ``<prefix><n>/as<j>``."""
    return [
        {
            "name": f"{prefix}{n}",
            "objective": "OUTCOME_TRAFFIC",
            "special_ad_categories": [],
            "ad_sets": [
                {
                    "name": f"{prefix}{n}/as{j}",
                    "billing_event": "IMPRESSIONS",
                    "optimization_goal": "LINK_CLICKS",
                    "daily_budget": 1000 + j,
                    "targeting": {"geo_locations": {"countries": ["US"]}},
                }
                for j in range(adsets)
            ],
        }
        for n in range(count)
    ]


with DAG(
    "meta_deploy_defer",
    schedule=None,
    start_date=START,
    catchup=False,
    params={"report_dir": "/tmp"},
    tags=["test"],
):
    MetaBulkCreateOperator(  # the account's quota runs out mid-run: park → defer → cool-down → resume
        task_id="create",
        account_id=ACCOUNTS[0],
        campaigns=campaigns("defer-", DEFER_CAMPAIGNS, DEFER_ADSETS),
        report_path=REPORT,
        deferrable=True,  # stock Airflow's [operators] default_deferrable is False
        defer_after_s=2,
        cooldown_poll_s=1,
        engine_overrides=SLOW_ENGINE,
        retries=1,
        retry_delay=timedelta(seconds=1),
    )

with DAG(
    "meta_deploy_kill",
    schedule=None,
    start_date=START,
    catchup=False,
    params={"report_dir": "/tmp"},
    tags=["test"],
):
    MetaBulkCreateOperator(  # the task process is SIGKILLed mid-run: the retry resumes from the journal
        task_id="create",
        account_id=ACCOUNTS[1],
        campaigns=campaigns("kill-", KILL_CAMPAIGNS, KILL_ADSETS),
        report_path=REPORT,
        deferrable=True,  # stock Airflow's [operators] default_deferrable is False
        defer_after_s=2,
        cooldown_poll_s=1,
        engine_overrides=SLOW_ENGINE,
        retries=1,
        retry_delay=timedelta(seconds=1),
    )

with DAG(
    "meta_deploy_async",
    schedule=None,
    start_date=START,
    catchup=False,
    params={"report_dir": "/tmp"},
    tags=["test"],
):
    MetaBulkCreateOperator(  # submits one request set, defers on it, collects it after the triggerer's event
        task_id="create",
        account_id=ACCOUNTS[2],
        campaigns=campaigns("async-", ASYNC_CAMPAIGNS, ASYNC_ADSETS),
        report_path=REPORT,
        backend="async",
        deferrable=True,
        set_poll_s=1,
    )
