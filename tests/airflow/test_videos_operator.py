"""Issue 15: a task whose creatives wait for a video Graph is still processing defers (no worker slot held
while Meta transcodes), then finishes from its journal — without a DAG run: ``execute``, the deferral and
``execute_complete`` called as Airflow would, against the simulator thread, whose virtual clock is moved
forward instead of anyone sleeping."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from af_helpers import CONN_ENV, conn_json
from airflow.sdk.exceptions import TaskDeferred

from airflow_provider.operators import MetaJobOperator
from airflow_provider.triggers import ThrottleCooldownTrigger
from bulk_engine.simulator.server import SimulatorThread
from bulk_engine.simulator.videos import upload_log

MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + bytes(200_000)


class _TaskInstance:
    dag_id, run_id, task_id, map_index, try_number = "d", "r", "launch", -1, 1

    def xcom_push(self, key: str, value: Any) -> None:
        pass


def _job(folder: Path, account: str) -> Path:
    (folder / "teaser.mp4").write_bytes(MP4)
    creative = {
        "name": "Teaser",
        "object_story_spec": {
            "page_id": "2000000001",
            "video_data": {"video": "teaser", "image_url": "https://example.com/t.jpg", "message": "Hi"},
        },
    }
    task = {
        "type": "create",
        "key": "launch",
        "videos": {"teaser": {"file": "teaser.mp4"}},
        "creatives": {"c": creative},
    }
    path = folder / "job.yaml"
    path.write_text(yaml.safe_dump({"account_id": account, "tasks": [task]}))
    return path


@pytest.mark.graph_simulator(video_processing_s=900)
def test_a_task_defers_while_its_video_processes_then_creates_the_creative(
    graph_simulator: SimulatorThread, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    info = graph_simulator.info()
    act = info["ad_account_ids"][0]
    monkeypatch.setenv(CONN_ENV, conn_json(info["url"], info["access_token"], act))
    op = MetaJobOperator(
        task_id="launch",
        job_file=str(_job(tmp_path, act)),
        deferrable=True,
        defer_after_s=1.0,
        preflight=False,
        journal_path=str(tmp_path / "j.db"),
    )
    context: Any = {"ti": _TaskInstance()}
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context)
    trigger = deferred.value.trigger
    assert isinstance(trigger, ThrottleCooldownTrigger) and trigger.account_id == act
    assert trigger.resume_at_epoch > time.time()  # until the next status check
    assert graph_simulator.run(lambda core: len(list(core.store.nodes("advideo")))) == 1
    assert (
        graph_simulator.run(lambda core: len(list(core.store.nodes("adcreative")))) == 0
    )  # not before ready
    graph_simulator.run(lambda core: core.clock.advance(900.0))  # Meta finished processing meanwhile
    event = {"status": "cooled_down", "account_id": act, "polls": 0, "task_state": trigger.task_state}
    summary = op.execute_complete(context, event)
    assert summary["counts"]["failed"] == summary["counts"]["skipped"] == 0
    assert summary["deferrals"] == 1
    uploads = graph_simulator.run(lambda core: [e["phase"] for e in upload_log(core)])
    assert uploads == ["source"]  # the resumed run found the upload in its journal: not sent again
    [creative] = graph_simulator.run(lambda core: [n.data for n in core.store.nodes("adcreative")])
    [video] = graph_simulator.run(lambda core: [n.id for n in core.store.nodes("advideo")])
    assert creative["object_story_spec"]["video_data"]["video_id"] == video
