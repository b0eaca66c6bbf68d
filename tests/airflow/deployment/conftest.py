"""Fixtures of the real-deployment test: the simulator in a thread of this process, Airflow as processes.

The simulator runs here (not in a process of its own) so the test can fill an account's rate-limit window,
slow the server down and move its virtual clock directly; the Airflow components reach it over HTTP on
127.0.0.1 like any Graph client. The deployment is module-scoped and stopped in a ``finally``, so every
process it started is gone after the module, whatever failed.
"""

from __future__ import annotations

import importlib.util
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from af_helpers import CONN_ENV, conn_json

from bulk_engine.simulator import SimulatorConfig
from bulk_engine.simulator.server import SimulatorThread

from .harness import Deployment, processes_in

# Without the [airflow] extra (EXTRAS=airflow ./scripts/bootstrap) there is nothing to test here.
collect_ignore_glob = [] if importlib.util.find_spec("airflow") else ["test_*.py"]

DAGS = Path(__file__).resolve().parent / "dags"


@pytest.fixture(scope="module")
def simulator() -> Iterator[SimulatorThread]:
    """A Graph API simulator with the default accounts and quotas (300 calls an hour per account)."""
    with SimulatorThread(SimulatorConfig()) as sim:
        yield sim


@pytest.fixture(scope="module")
def deployment(simulator: SimulatorThread, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """api-server, scheduler, dag-processor and triggerer on a fresh SQLite database, the ``meta_default``
    connection pointing at ``simulator``; every process is killed after the module."""
    home = tmp_path_factory.mktemp("airflow-deployment")
    dags = home / "dags"  # a copy: the components never write next to the repository's files
    shutil.copytree(DAGS, dags, ignore=shutil.ignore_patterns("__pycache__"))
    info = simulator.info()
    conn = conn_json(info["url"], info["access_token"], info["ad_account_ids"][0])
    deployment = Deployment(home, dags, {CONN_ENV: conn})
    started = time.monotonic()
    try:
        deployment.start()
        print(f"\n[deployment] {home}: started in {time.monotonic() - started:.1f} s")
        yield deployment
    finally:
        stopping = time.monotonic()
        running = deployment.stop()
        left = processes_in(deployment.sessions())
        print(f"[deployment] stopped {len(running)} processes in {time.monotonic() - stopping:.1f} s")
        assert not left, f"processes outlived the deployment: {left}"
