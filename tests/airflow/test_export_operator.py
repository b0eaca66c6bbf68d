"""``MetaExportOperator`` in a real DAG run (``dag.test()``) against the simulator: a templated output path,
every object once though Graph asked for less data, and an XCom that stays small."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
from af_helpers import RunDag, xcom

from bulk_engine.simulator import FaultConfig


@pytest.mark.graph_simulator(
    seed_campaigns=2_000,
    access_tier="standard_access",
    faults=FaultConfig(reduce_data_above=250, reduce_data_times=2),
)
def test_export_operator_writes_the_templated_path_and_a_small_xcom(
    meta_conn: Any, run_dag: RunDag, tmp_path: Path
) -> None:
    run = run_dag("meta_test_export", report_dir=str(tmp_path))

    assert str(run.state) == "success"
    summary = xcom(run, "export")
    export = summary["export"]
    (written,) = list(tmp_path.glob("campaigns-*.csv"))
    assert export["path"] == str(written) and export["written"] is True
    assert export["rows"] == 2_000 and export["format"] == "csv"
    assert export["page_size"]["smallest"] == 200 and export["page_size"]["shrinks"] == 1
    with written.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    act = meta_conn.info()["ad_account_ids"][0]
    first, count = meta_conn.info()["seeded_campaigns"][act]
    assert sorted(int(r["id"]) for r in rows) == list(range(int(first), int(first) + count))
    assert summary["counts"]["failed"] == 0
    assert len(json.dumps(summary)) < 2_000  # counts and the path, never the rows
    token = meta_conn.info()["access_token"]
    assert token not in written.read_text(encoding="utf-8") + json.dumps(summary)
