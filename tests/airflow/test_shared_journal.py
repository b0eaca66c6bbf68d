"""``journal_conn_id``: a task's tries on different workers share one PostgreSQL journal and nothing else.

The first try runs in one process (its own ``AIRFLOW_HOME``) and is SIGKILLed mid-run, as a lost Celery
worker or an evicted pod; the retry runs in another process with another ``AIRFLOW_HOME``. Only the
PostgreSQL journal (the session's real server) is shared. The retry answers what the first try did from the
journal — no rebuild probe, a lookup at most for the batch that was in flight — and every campaign exists
exactly once. No journal file is written on either "worker".
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import pytest
from af_helpers import CONN_ENV, store
from pg_server import PostgresServer

from airflow_provider.hooks.journal import journal_url
from bulk_engine import ConfigError
from bulk_engine.persistence.keys import strip_key
from bulk_engine.simulator import FaultConfig

ROOT = Path(__file__).resolve().parents[2]
CAMPAIGNS = 24
JOURNAL_ENV = "AIRFLOW_CONN_META_JOURNAL"
DEADLINE_S = 120.0

CHILD = """
import json, sys
from airflow_provider.operators import MetaBulkOperator
from bulk_engine import GovernorConfig

class TI:
    dag_id, run_id, task_id, map_index = "shared", "manual__1", "create", -1
    start_date = None
    def __init__(self, try_number):
        self.try_number = try_number
    def xcom_push(self, key, value):
        pass

operations = [
    {"op_id": f"c{n}", "path": "{account_id}/campaigns",
     "params": {"name": f"c{n}", "objective": "OUTCOME_TRAFFIC", "special_ad_categories": [], "status": "PAUSED"}}
    for n in range(int(sys.argv[2]))
]
operator = MetaBulkOperator(
    task_id="create",
    operations=operations,
    journal_conn_id="meta_journal",
    deferrable=False,
    engine_overrides={"max_batch_ops": 2, "governor": GovernorConfig(initial_concurrency=1, max_concurrency=1)},
)
print(json.dumps(operator.execute({"ti": TI(int(sys.argv[1]))})), flush=True)
"""


def _postgres_conn(server: PostgresServer, schema: str) -> str:
    return json.dumps(
        {
            "conn_type": "postgres",
            "host": "127.0.0.1",
            "port": server.port,
            "login": "bulk",
            "password": server.password,
            "schema": "journals",
            "extra": {"journal_schema": schema},
        }
    )


def _worker(try_number: int, env: dict[str, str]) -> tuple[subprocess.Popen[str], Path]:
    """A try of the task in a process of its own, with an AIRFLOW_HOME of its own (another machine)."""
    home = Path(tempfile.mkdtemp(prefix="meta-worker-"))
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(try_number), str(CAMPAIGNS)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**env, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags")},
    )
    return proc, home


def _files(home: Path) -> list[str]:
    return sorted(str(p.relative_to(home)) for p in home.rglob("*") if p.suffix in (".sqlite", ".db"))


@pytest.mark.graph_simulator(faults=FaultConfig(latency_ms=150))
def test_a_retry_on_another_worker_resumes_from_the_shared_journal(
    meta_conn: Any, postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    schema = f"af_{os.getpid()}"
    env = {**os.environ, JOURNAL_ENV: _postgres_conn(postgres_server, schema), "PYTHONUNBUFFERED": "1"}
    env.pop("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", None)
    first, first_home = _worker(1, env)
    killer = threading.Timer(DEADLINE_S, first.kill)
    killer.start()
    try:
        pause = threading.Event()
        while len(store(meta_conn, "campaign")) < 6 and first.poll() is None:
            pause.wait(0.05)  # poll the store (bounded by the run itself and the timer)
        first.send_signal(signal.SIGKILL)  # a lost worker: no on_kill, no release
        first.communicate(timeout=DEADLINE_S)
    finally:
        killer.cancel()
    created_by_first = len(store(meta_conn, "campaign"))
    assert 6 <= created_by_first < CAMPAIGNS, "killed mid-run"
    calls_before = meta_conn.run(lambda core: len(core.calls))

    second, second_home = _worker(2, env)
    out, err = second.communicate(timeout=DEADLINE_S)
    assert second.returncode == 0, err[-3000:]
    summary = json.loads(out.strip().splitlines()[-1])

    names = [strip_key(c["name"]) for c in store(meta_conn, "campaign")]
    assert sorted(names) == sorted(f"c{n}" for n in range(CAMPAIGNS))  # each exactly once
    assert summary["counts"] == {"succeeded": CAMPAIGNS, "failed": 0, "skipped": 0}
    assert summary["from_journal"] >= created_by_first - 2  # at most the batch in flight was unknown
    assert summary["all_runs"]["runs"] == 2  # the killed try's run record is in the shared journal
    reads = meta_conn.run(lambda core: [c for c in core.calls[calls_before:] if c.method == "GET"])
    assert len(reads) == summary["lookups"] <= 2, reads  # lookups of the batch in flight only: no probe
    assert _files(first_home) == [] and _files(second_home) == []  # no journal file on either worker
    assert postgres_server.password not in out + err


def test_journal_url_from_a_postgres_connection_or_a_uri(
    postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(JOURNAL_ENV, _postgres_conn(postgres_server, "team_a"))
    url = journal_url("meta_journal")
    assert url == postgres_server.url("journals", schema="team_a")
    assert journal_url("meta_journal", schema="other").endswith("?schema=other")
    monkeypatch.setenv(JOURNAL_ENV, postgres_server.url("journals") + "?sslmode=disable")
    assert journal_url("meta_journal") == (
        postgres_server.url("journals").replace("/journals", "/journals?sslmode=disable&schema=meta_bulk")
    )
    monkeypatch.setenv(JOURNAL_ENV, json.dumps({"conn_type": "http", "host": "example.invalid"}))
    with pytest.raises(ConfigError, match="is not a PostgreSQL connection"):
        journal_url("meta_journal")
    monkeypatch.delenv(CONN_ENV, raising=False)
