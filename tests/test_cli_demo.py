"""The README's demo command runs the shipped demo job end to end against the embedded simulator."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

from bulk_engine.demo import DEMO_JOB
from bulk_engine.operations import load_job


def test_the_demo_job_is_an_ordinary_valid_job_file() -> None:
    spec = load_job(DEMO_JOB)
    assert [task.type for task in spec.tasks] == ["create", "copy", "migrate", "status"]


def test_demo_runs_the_job_with_the_run_view_and_writes_the_three_reports(tmp_path: Path) -> None:
    report = tmp_path / "demo.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bulk_engine", "demo", "--report", str(report)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "\x1b[" not in proc.stdout  # not a terminal: plain lines, no live view escapes
    assert "progress" in proc.stdout and "usage: act_1000000001 ads_management" in proc.stdout
    csv_path, html_path = report.with_suffix(".csv"), report.with_suffix(".html")
    assert f"Reports: {report}, {csv_path}, {html_path}" in proc.stdout

    data = json.loads(report.read_text())
    assert data["status"] == "completed" and data["exit_code"] == 0 and data["source"] == str(DEMO_JOB)
    kinds = data["kinds"]
    assert kinds["create_campaign"]["succeeded"] == 40 and kinds["create_ad"]["succeeded"] == 80
    assert kinds["copy"]["succeeded"] == 1 and kinds["migrate"]["succeeded"] == 1
    assert kinds["update"]["succeeded"] == 40  # the Canadian ad sets paused
    assert data["counts"]["failed"] == data["counts"]["skipped"] == 0
    # the small quota is nearly spent by the pause: the governor paces instead of tripping the throttle
    assert data["throttle_events"] == 0
    assert data["retries"] > 0 and "retry " in proc.stdout  # the injected transient errors, retried
    assert max(p["peak_usage_pct"] for p in data["accounts"]) >= 75
    assert "ADVANTAGE_PLUS_SALES" in proc.stdout

    with csv_path.open() as table:
        rows = list(csv.DictReader(table))
    assert len(rows) == sum(data["counts"].values())
    assert "<svg" in html_path.read_text()  # the throughput / usage chart
