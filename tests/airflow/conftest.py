"""Airflow tests run real Airflow 3.3 in-process against the Graph API simulator on 127.0.0.1.

Airflow reads its configuration when first imported, so this module points ``AIRFLOW_HOME`` at a
temporary folder (SQLite metadata DB, no example DAGs) *before* anything imports ``airflow``. The DAGs
folder is a temporary copy of the repository's ``dags/`` plus ``tests/airflow/dags/``: ``dag.test()``
only runs DAGs it can find in a bundle. The session fixture ``airflow_db`` migrates the database once.

``dag.test()`` is synchronous (it runs triggers on its own event loop), so these tests are plain
functions and the simulator runs in its own thread (``graph_simulator`` fixture of the bulk_engine
pytest plugin). Connections come from ``AIRFLOW_CONN_*`` variables in JSON form.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from af_helpers import CONN_ENV, RunDag, conn_json

# Without the [airflow] extra (EXTRAS=airflow ./scripts/bootstrap) there is nothing to test here.
collect_ignore_glob = [] if importlib.util.find_spec("airflow") else ["test_*.py"]

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_DAGS = ROOT / "dags"
TEST_DAGS = Path(__file__).resolve().parent / "dags"

_HOME = Path(tempfile.mkdtemp(prefix="meta-airflow-home-"))
atexit.register(shutil.rmtree, _HOME, True)
DAGS_FOLDER = _HOME / "dags"
os.environ.update(
    {
        "AIRFLOW_HOME": str(_HOME),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_HOME / 'airflow.db'}",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        # Stock Airflow sets default_deferrable = False; the operators follow it, these tests defer
        "AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE": "True",
    }
)


def _fill_dags_folder() -> None:
    DAGS_FOLDER.mkdir(parents=True, exist_ok=True)
    for source in (EXAMPLE_DAGS, TEST_DAGS):
        if source.is_dir():
            shutil.copytree(
                source, DAGS_FOLDER, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__")
            )


_fill_dags_folder()


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A migrated SQLite metadata database in the temporary AIRFLOW_HOME."""
    from airflow.utils import db

    db.resetdb()
    return _HOME


@pytest.fixture
def meta_conn(graph_simulator: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The ``meta_default`` connection pointing at this test's simulator; returns the simulator."""
    info = graph_simulator.info()
    monkeypatch.setenv(CONN_ENV, conn_json(info["url"], info["access_token"], info["ad_account_ids"][0]))
    return graph_simulator


@pytest.fixture
def dagbag(airflow_db: Path) -> Any:
    """Freshly parsed DAGs: ``dag.test(run_conf=…)`` leaves the conf in the DAG object's params."""
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS_FOLDER))


@pytest.fixture
def run_dag(dagbag: Any, tmp_path: Path) -> RunDag:
    """``run_dag(dag_id, **run_conf)`` → the finished DagRun; ``report_dir`` defaults to ``tmp_path``."""

    def run(dag_id: str, **conf: Any) -> Any:
        dag = dagbag.get_dag(dag_id)
        assert dag is not None, f"{dag_id} not found; import errors: {dagbag.import_errors}"
        conf.setdefault("report_dir", str(tmp_path))
        return dag.test(run_conf=conf)

    return run


@pytest.fixture(autouse=True)
def _no_leaked_conn(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv(CONN_ENV, raising=False)
    yield


def pytest_configure(config: pytest.Config) -> None:
    # Airflow's in-process execution API imports FastAPI's test client, which warns about httpx.
    config.addinivalue_line("filterwarnings", "ignore:Using `httpx` with `starlette.testclient`")
