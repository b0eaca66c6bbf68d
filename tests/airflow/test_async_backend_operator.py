"""Issue 18 item 4: an operator with ``backend="async"`` submits its request set, defers on the wait-only
``AsyncRequestSetTrigger`` while Meta works (no worker slot held), then collects the results — without a
DAG run: ``execute``, the trigger's ``run`` and ``execute_complete`` called as Airflow would, against the
simulator thread; its virtual clock moves forward instead of anyone sleeping."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from af_helpers import CONN_ENV, conn_json
from airflow.sdk.exceptions import TaskDeferred

from airflow_provider.operators import MetaBulkCreateOperator
from airflow_provider.triggers import AsyncRequestSetTrigger
from bulk_engine.simulator.server import SimulatorThread


class _TaskInstance:
    dag_id, run_id, task_id, map_index, try_number = "d", "r", "create", -1, 1

    def xcom_push(self, key: str, value: Any) -> None:
        pass


async def _first_event(trigger: AsyncRequestSetTrigger) -> dict[str, Any]:
    async for event in trigger.run():
        return dict(event.payload)
    raise AssertionError("the trigger ended without an event")


@pytest.mark.graph_simulator(access_tier="standard_access")
def test_the_async_backend_defers_on_the_request_set_and_collects_it(
    graph_simulator: SimulatorThread, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import anyio

    info = graph_simulator.info()
    act = info["ad_account_ids"][0]
    monkeypatch.setenv(CONN_ENV, conn_json(info["url"], info["access_token"], act))
    campaigns = [
        {"name": f"Launch {i}", "objective": "OUTCOME_TRAFFIC", "special_ad_categories": []}
        for i in range(30)
    ]
    op = MetaBulkCreateOperator(
        task_id="create",
        campaigns=campaigns,
        backend="async",
        deferrable=True,
        set_poll_s=0.05,
        journal_path=str(tmp_path / "j.db"),
    )
    context: Any = {"ti": _TaskInstance()}
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context)
    trigger = deferred.value.trigger
    assert isinstance(trigger, AsyncRequestSetTrigger) and trigger.account_id == act
    assert deferred.value.method_name == "execute_complete"
    campaigns_now = graph_simulator.run(lambda core: len(list(core.store.nodes("campaign"))))
    assert campaigns_now == 0  # Meta has not run the set yet
    graph_simulator.run(lambda core: core.clock.advance(60.0))  # 30 requests at 10 a second
    event = anyio.run(_first_event, trigger)
    assert event["status"] == "completed" and event["set"]["total_count"] == 30
    summary = op.execute_complete(context, event)
    assert summary["counts"] == {"succeeded": 30, "failed": 0, "skipped": 0}
    assert summary["deferrals"] == 1
    sets = graph_simulator.run(lambda core: len(list(core.store.nodes("async_request_set"))))
    assert sets == 1  # one submit, collected after the deferral
    assert graph_simulator.run(lambda core: len(list(core.store.nodes("campaign")))) == 30


@pytest.mark.graph_simulator(access_tier="standard_access")
def test_without_a_journal_a_deferrable_async_task_polls_its_set_instead_of_deferring(
    graph_simulator: SimulatorThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``journal_path=None``: each try has its own in-memory journal, so a try resumed after a deferral
    could not know the set and would submit it again; the task polls the set itself instead (one submit)."""
    info = graph_simulator.info()
    act = info["ad_account_ids"][0]
    monkeypatch.setenv(CONN_ENV, conn_json(info["url"], info["access_token"], act))
    campaigns = [
        {"name": f"Launch {i}", "objective": "OUTCOME_TRAFFIC", "special_ad_categories": []}
        for i in range(30)
    ]
    op = MetaBulkCreateOperator(
        task_id="create",
        campaigns=campaigns,
        backend="async",
        deferrable=True,
        set_poll_s=0.05,
        journal_path=None,
    )
    summary = op.execute({"ti": _TaskInstance()})  # no TaskDeferred
    assert summary["counts"] == {"succeeded": 30, "failed": 0, "skipped": 0}
    sets = graph_simulator.run(lambda core: len(list(core.store.nodes("async_request_set"))))
    assert sets == 1
    assert graph_simulator.run(lambda core: len(list(core.store.nodes("campaign")))) == 30
