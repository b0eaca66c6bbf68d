"""The README's demo command runs a real bulk job end to end against the embedded simulator."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_demo_runs_end_to_end_and_writes_the_report(tmp_path: Path) -> None:
    report = tmp_path / "demo.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bulk_engine", "demo", "--report", str(report)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Demo summary" in proc.stdout
    phases = {p["job_id"]: p for p in json.loads(report.read_text())["phases"]}
    assert phases["create"]["counts"] == {"succeeded": 242, "failed": 0, "skipped": 0}
    assert phases["copy+migrate"]["counts"]["succeeded"] == 2
    assert phases["pause"]["counts"]["succeeded"] == 60
    # the quota is nearly spent by then: the governor paces instead of tripping the throttle
    assert all(p["throttle_events"] == 0 for p in phases.values())
    migrated = next(o for o in phases["copy+migrate"]["operations"] if o["op_id"] == "migrate-asc")
    assert migrated["result"]["copied_campaign_id"]
    assert "ADVANTAGE_PLUS_SALES" in proc.stdout
