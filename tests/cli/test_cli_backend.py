"""``bulk-engine run --backend``: the async backend from the command line (issue 18), its report and live
counts. The simulator and the engine run on one time scale, so a set's processing takes no real time."""

from __future__ import annotations

import json
from pathlib import Path

from cli_support import run_cli, simulator, tree_task, write_job


def test_run_with_the_async_backend_reports_its_sets(tmp_path: Path) -> None:
    with simulator("--tier", "standard_access", "--time-scale", "100") as sim:
        job = write_job(tmp_path / "j.yaml", "cli-async", sim.act, tree_task(repeat=10))
        report = tmp_path / "out.json"
        done = run_cli(
            "run",
            str(job),
            "--graph-url",
            sim.url,
            "--time-scale",
            "100",
            "--backend",
            "async",
            "--report",
            str(report),
            token=sim.token,
        )
        assert done.returncode == 0, done.stderr
        data = json.loads(report.read_text())
        assert data["counts"] == {"succeeded": 51, "failed": 0, "skipped": 0}
        assert (data["backend"], data["async_sets"]) == ("async", 1)
        assert data["tasks"][0]["backend_reason"] == "async: as configured"
        query = f"fields=id,total_count,is_completed&access_token={sim.token}"
        sets = sim.get(f"/v24.0/{sim.act}/async_requests?{query}")["data"]
        assert [(s["total_count"], s["is_completed"]) for s in sets] == [(51, True)]


def test_auto_says_why_it_stayed_sync(tmp_path: Path) -> None:
    with simulator("--tier", "standard_access") as sim:
        job = write_job(tmp_path / "j.yaml", "cli-auto", sim.act, tree_task(repeat=2))
        report = tmp_path / "out.json"
        done = run_cli(
            "run",
            str(job),
            "--graph-url",
            sim.url,
            "--backend",
            "auto",
            "--report",
            str(report),
            token=sim.token,
        )
        assert done.returncode == 0, done.stderr
        data = json.loads(report.read_text())
        assert data["backend"] == "sync" and data["async_sets"] == 0
        assert "fewer than 1000" in data["tasks"][0]["backend_reason"]
