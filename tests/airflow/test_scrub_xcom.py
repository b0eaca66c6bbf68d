"""The operators' outputs are scrubbed: XComs (pushed and returned), the report file, the journal and the
engine's log records, against a server that echoes the token and ``appsecret_proof`` in every error.

The operators run their ``execute`` with a minimal task-instance stand-in, not deferrable, which is all these
output paths need.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from af_helpers import CONN_ENV, conn_json
from airflow.sdk.exceptions import AirflowException
from engine_support import status_op
from scrub_echo import APP_SECRET, TOKEN, EchoGraph, assert_no_leak

from airflow_provider.operators import MetaBulkOperator, MetaStatusOperator
from bulk_engine import Credentials, RetryConfig
from bulk_engine.operations import JobReport
from bulk_engine.protocol import usage as usage_module
from bulk_engine.scrub import REDACTED

ACT = "act_1000000001"
IDS = ["120210000000000001", "120210000000000002"]
PROOF = str(Credentials(access_token=TOKEN, app_secret=APP_SECRET).appsecret_proof())
SECRETS = (TOKEN, APP_SECRET, PROOF)
FAST = {"retry": RetryConfig(max_attempts=2, base_delay_s=0.0, max_delay_s=0.0)}


class _TaskInstance:
    dag_id, run_id, task_id, map_index, try_number = "scrub", "manual__1", "t", -1, 1

    def __init__(self) -> None:
        self.pushed: list[tuple[str, Any]] = []

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed.append((key, value))


class _EchoingStatus(MetaStatusOperator):
    """A verb whose XCom summary quotes Graph (as the migration's blocked reasons do)."""

    def summarize(self, report: JobReport) -> dict[str, Any]:
        failed = [o for o in report.outcomes if o.error is not None]
        return {"first_error": failed[0].error.to_dict() if failed and failed[0].error else None}


@pytest.fixture
def echo_conn(monkeypatch: pytest.MonkeyPatch) -> Any:
    with EchoGraph() as graph:
        monkeypatch.setenv(CONN_ENV, conn_json(graph.url, TOKEN, ACT, app_secret=APP_SECRET))
        yield graph


def _outputs(
    ti: _TaskInstance, returned: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> dict[str, str]:
    found = {"xcom": json.dumps([value for _, value in ti.pushed] + [returned], default=str)}
    found["logs"] = caplog.text
    for path in sorted(tmp_path.iterdir()):
        found[path.name] = path.read_bytes().decode("latin-1")
    return found


def test_job_operator_xcom_report_and_logs_are_scrubbed(
    echo_conn: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    usage_module._forget_warnings()  # usage warnings are once per process: let this test see its own
    op = _EchoingStatus(
        task_id="t",
        status="PAUSED",
        ids=IDS,
        report_path=str(tmp_path / "report.json"),
        journal_path=str(tmp_path / "journal.sqlite"),
        engine_overrides=FAST,
        deferrable=False,  # no pre-flight read: the echo server checks the batches' own credentials
    )
    ti = _TaskInstance()
    with pytest.raises(AirflowException, match="2 failed"):
        op.execute({"ti": ti})  # type: ignore[arg-type]
    assert echo_conn.seen and all(seen == (TOKEN, PROOF) for seen in echo_conn.seen)
    ((key, summary),) = ti.pushed
    assert key == "return_value" and summary["counts"]["failed"] == len(IDS)
    assert (
        REDACTED in summary["first_error"]["message"] and REDACTED in summary["first_error"]["error_user_msg"]
    )
    for where, text in _outputs(ti, None, tmp_path, caplog).items():
        assert_no_leak(where, text, *SECRETS)
    # the engine's log of the echoed usage header is once per process (order-dependent): not asserted here


def test_bulk_operator_return_value_and_report_are_scrubbed(
    echo_conn: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    usage_module._forget_warnings()  # usage warnings are once per process: let this test see its own
    ops = [status_op(f"p{i}", ACT, i) for i in IDS]
    op = MetaBulkOperator(
        task_id="t",
        operations=ops,
        report_path=str(tmp_path / "report.json"),
        fail_on_errors=False,
        engine_overrides=FAST,
        deferrable=False,  # no pre-flight read: the echo server checks the batches' own credentials
    )
    ti = _TaskInstance()
    summary = op.execute({"ti": ti})  # type: ignore[arg-type]
    assert summary["counts"]["failed"] == len(IDS) and not ti.pushed
    report = json.loads((tmp_path / "report.json").read_text())
    assert all(REDACTED in o["error"]["message"] for o in report["operations"])
    for where, text in _outputs(ti, summary, tmp_path, caplog).items():
        assert_no_leak(where, text, *SECRETS)
