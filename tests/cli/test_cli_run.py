"""``bulk-engine run`` as a subprocess against the simulator: exit codes, reports, JSON logs, token errors."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from cli_support import (
    Sim,
    json_lines,
    missing_status_task,
    run_cli,
    tree_ops,
    tree_task,
    write_job,
)

REQUIRED = ("job_id", "counts", "http_requests", "graph_calls", "throttle_events", "retries", "elapsed_s")


def _reports(tmp_path: Path) -> tuple[Path, Path, Path, list[str]]:
    report, table, page = tmp_path / "r.json", tmp_path / "r.csv", tmp_path / "r.html"
    flags = ["--report", str(report), "--report-csv", str(table), "--report-html", str(page)]
    return report, table, page, flags


def test_a_clean_run_exits_0_and_writes_every_report(shared_sim: Sim, tmp_path: Path) -> None:
    job = write_job(tmp_path / "ok.yaml", "clean-run", shared_sim.act, tree_task(repeat=3))
    report_path, csv_path, html_path, flags = _reports(tmp_path)
    proc = run_cli("run", str(job), "--graph-url", shared_sim.url, *flags, token=shared_sim.token)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Job clean-run: 16 succeeded, 0 failed, 0 skipped" in proc.stdout

    report = json.loads(report_path.read_text())
    for name in REQUIRED:
        assert name in report, name
    assert report["job_id"] == "clean-run"
    assert report["status"] == "completed" and report["exit_code"] == 0
    assert report["counts"] == {"succeeded": 16, "failed": 0, "skipped": 0}
    assert report["http_requests"] >= 1 and report["graph_calls"] >= 16
    assert len(report["operations"]) == tree_ops(3) == 16
    assert {op["state"] for op in report["operations"]} == {"succeeded"}
    assert all(op["graph_id"] for op in report["operations"])
    samples = report["timeseries"]["samples"]
    assert samples[-1]["ops_done"] == 16 and samples[-1]["calls_done"] >= 16
    assert report["accounts"][0]["account_id"] == shared_sim.act
    assert report["accounts"][0]["last_usage_pct"] is not None
    for path in (report_path, csv_path, html_path):  # the token never lands in a report
        assert shared_sim.token not in path.read_text()

    rows = list(csv.DictReader(io.StringIO(csv_path.read_text())))
    assert len(rows) == 16
    assert {r["op_id"] for r in rows} == {op["op_id"] for op in report["operations"]}
    assert {"op_id", "type", "state", "graph_id", "error_code", "error_subcode", "error_message"} <= set(
        rows[0]
    )
    html = html_path.read_text()
    assert 'id="throughput-chart"' in html and 'id="usage-chart"' in html and "<polyline" in html
    assert 'id="failures"' in html and "No operation failed." in html


def test_failed_operations_exit_1_with_graph_errors_in_every_report(shared_sim: Sim, tmp_path: Path) -> None:
    job = write_job(
        tmp_path / "partly.yaml",
        "partly-failed",
        shared_sim.act,
        tree_task(repeat=1),
        missing_status_task(["120219999999999991", "120219999999999992"]),
    )
    report_path, csv_path, html_path, flags = _reports(tmp_path)
    proc = run_cli("run", str(job), "--graph-url", shared_sim.url, *flags, token=shared_sim.token)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "failed × 2 with Graph error 100/33" in proc.stdout

    report = json.loads(report_path.read_text())
    assert report["counts"] == {"succeeded": 6, "failed": 2, "skipped": 0}
    failed = [op for op in report["operations"] if op["state"] == "failed"]
    assert {op["error"]["code"] for op in failed} == {100}
    assert report["failures_by_code"][0]["code"] == 100 and report["failures_by_code"][0]["count"] == 2

    rows = {r["op_id"]: r for r in csv.DictReader(io.StringIO(csv_path.read_text()))}
    bad = rows["pause-missing/0:120219999999999991"]
    assert (bad["state"], bad["type"], bad["error_code"], bad["error_subcode"]) == (
        "failed",
        "update",
        "100",
        "33",
    )
    assert "does not exist" in bad["error_message"]
    ok = next(r for r in rows.values() if r["type"] == "create_campaign")
    assert ok["state"] == "succeeded" and ok["graph_id"] and ok["error_code"] == ""

    html = html_path.read_text()
    failures = html[html.index('id="failures"') :]
    failures = failures[: failures.index("</table>")]
    assert "<td>100</td>" in failures and "<td>33</td>" in failures and "pause-missing/0:" in failures


def test_log_format_json_prints_one_parseable_object_per_line(shared_sim: Sim, tmp_path: Path) -> None:
    job = write_job(
        tmp_path / "j.yaml",
        "json-logs",
        shared_sim.act,
        tree_task(repeat=2),
        missing_status_task(["1202199"]),
    )
    proc = run_cli(
        "run", str(job), "--graph-url", shared_sim.url, "--log-format", "json", token=shared_sim.token
    )
    assert proc.returncode == 1, proc.stderr
    events = json_lines(proc.stdout)
    kinds = [e["event"] for e in events]
    assert kinds[0] == "job_started" and "job_finished" in kinds
    assert {"batch_sent", "batch_done", "operation", "progress"} <= set(kinds)
    assert all("ts" in e and "t" in e for e in events)
    operations = [e for e in events if e["event"] == "operation"]
    assert len(operations) == tree_ops(2) + 1
    failed = next(e for e in operations if e["state"] == "failed")
    assert failed["error_code"] == 100 and failed["op_id"].startswith("pause-missing/")
    finished = next(e for e in events if e["event"] == "job_finished")
    assert finished["exit_code"] == 1 and finished["counts"] == {"succeeded": 11, "failed": 1, "skipped": 0}
    done = [e for e in events if e["event"] == "batch_done"]
    assert all(e["account_id"] == shared_sim.act and e["buc_type"] == "ads_management" for e in done)
    assert any(e["usage_pct"] is not None for e in done)


def test_an_invalid_token_says_190_and_how_to_get_a_new_one(shared_sim: Sim, tmp_path: Path) -> None:
    job = write_job(tmp_path / "t.yaml", "bad-token", shared_sim.act, tree_task(repeat=1))
    report_path = tmp_path / "r.json"
    proc = run_cli(
        "run",
        str(job),
        "--graph-url",
        shared_sim.url,
        "--report",
        str(report_path),
        token="EAAB-NOT-A-REAL-TOKEN",
    )
    assert proc.returncode == 1
    out = proc.stdout
    assert "access token was rejected (Graph error 190" in out
    assert "invalid or has expired" in out
    assert "System User token" in out and "Graph API Explorer" in out and "META_ACCESS_TOKEN" in out
    report = json.loads(report_path.read_text())
    assert report["counts"]["succeeded"] == 0
    assert "EAAB-NOT-A-REAL-TOKEN" not in report_path.read_text()


def test_a_missing_token_is_bad_input_and_nothing_is_sent(shared_sim: Sim, tmp_path: Path) -> None:
    job = write_job(tmp_path / "t.yaml", "no-token", shared_sim.act, tree_task(repeat=1))
    before = shared_sim.request_count()
    proc = run_cli("run", str(job), "--graph-url", shared_sim.url, token=None)
    assert proc.returncode == 2
    assert "META_ACCESS_TOKEN is not set" in proc.stderr and "System User" in proc.stderr
    assert shared_sim.request_count() == before


def test_dry_run_prints_the_plan_and_sends_nothing(shared_sim: Sim, tmp_path: Path) -> None:
    job = write_job(
        tmp_path / "d.yaml",
        "dry",
        shared_sim.act,
        tree_task(repeat=20),
        missing_status_task(["120210000000000001"]),
    )
    before = shared_sim.request_count()
    report_path = tmp_path / "plan.json"
    proc = run_cli(
        "run", str(job), "--graph-url", shared_sim.url, "--dry-run", "--report", str(report_path), token=None
    )
    assert proc.returncode == 0, proc.stderr
    assert "dry run, nothing is sent" in proc.stdout
    assert "create_ad" in proc.stdout and "batch" in proc.stdout
    assert shared_sim.request_count() == before
    plan = json.loads(report_path.read_text())["plan"]
    assert plan["operations"] == tree_ops(20) + 1
    assert plan["kinds"]["create_ad"] == 40
    assert plan["batches_estimate"] >= 4  # 40 ad creates, at most 10 per batch
