"""``validate``, ``report`` and ``resume``: no simulator needed (``report`` re-renders a saved run)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from cli_support import json_lines, run_cli, tree_task, write_job

from bulk_engine import cli
from bulk_engine.cli import common as cli_common

BROKEN = """\
version: 1
account_id: act_1000000001
tasks:
  - type: create
    campaigns:
      - name: Spring
        objective: OUTCOME_TRAFIC
        special_ad_categories: []
        ad_sets:
          - name: US
            billing_event: IMPRESSIONS
            optimization_goal: LINK_CLICKS
            daily_budget: 1000
            targeting: {geo_locations: {countries: [US]}}
            colour: blue
"""


def test_validate_accepts_a_good_job_and_prints_its_plan(tmp_path: Path) -> None:
    job = write_job(tmp_path / "good.yaml", "good", "act_1000000001", tree_task(repeat=4))
    proc = run_cli("validate", str(job))
    assert proc.returncode == 0, proc.stderr
    assert f"{job}: valid" in proc.stdout
    assert "21 operation(s)" in proc.stdout and "create_campaign" in proc.stdout


def test_a_broken_job_file_is_rejected_pointing_at_file_line_field_and_rule(tmp_path: Path) -> None:
    job = tmp_path / "broken.yaml"
    job.write_text(BROKEN)
    for command in (["validate", str(job)], ["run", str(job), "--graph-url", "http://127.0.0.1:9"]):
        proc = run_cli(*command, token="SOME-TOKEN-VALUE")
        assert proc.returncode == 2, command
        err = proc.stderr
        assert "2 problems" in err
        # the typo: file:line:column, the field path, the value and the rule
        assert f'{job}:7:9: tasks[0].campaigns[0].objective = "OUTCOME_TRAFIC"' in err
        assert "OUTCOME_TRAFFIC" in err and "(rule schema.literal_error)" in err
        # the unknown field, on its own line
        assert f"{job}:15:13: tasks[0].campaigns[0].ad_sets[0].colour" in err and "unknown field" in err


def test_a_broken_job_in_json_mode_lists_the_issues_as_json(tmp_path: Path) -> None:
    job = tmp_path / "broken.yaml"
    job.write_text(BROKEN)
    proc = run_cli("validate", str(job), "--log-format", "json")
    assert proc.returncode == 2
    (event,) = json_lines(proc.stdout)
    assert event["event"] == "invalid_job"
    first = event["issues"][0]
    assert (first["file"], first["line"], first["column"], first["field"]) == (
        str(job),
        7,
        9,
        "tasks[0].campaigns[0].objective",
    )


def test_a_job_without_an_ad_account_needs_account(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job = tmp_path / "noacct.yaml"
    job.write_text(json.dumps({"version": 1, "tasks": [tree_task(repeat=1)]}))
    assert cli.main(["validate", str(job)]) == 2
    err = capsys.readouterr().err
    assert "no ad account" in err and "tasks[0].account_id" in err
    assert cli.main(["validate", str(job), "--account", "act_1000000002"]) == 0
    capsys.readouterr()
    assert cli.main(["validate", str(job), "--account", "1000000002"]) == 2
    assert "act_1234567890" in capsys.readouterr().err


def _saved_report(tmp_path: Path) -> Path:
    report = {
        "job_id": "saved",
        "status": "completed",
        "counts": {"succeeded": 1, "failed": 2, "skipped": 1},
        "http_requests": 2,
        "graph_calls": 4,
        "throttle_events": 1,
        "retries": 0,
        "elapsed_s": 3.5,
        "operations": [
            {
                "op_id": "a",
                "kind": "create_campaign",
                "state": "succeeded",
                "graph_id": "1201",
                "error": None,
            },
            {
                "op_id": "b",
                "kind": "create_adset",
                "state": "failed",
                "error": {"code": 100, "error_subcode": 1885621, "message": "=budget <b>clash</b>"},
            },
            {
                "op_id": "c",
                "kind": "create_adset",
                "state": "failed",
                "error": {"code": 100, "error_subcode": 1885621, "message": "=budget <b>clash</b>"},
            },
            {"op_id": "d", "kind": "create_ad", "state": "skipped", "reason": "dependency 'b' failed"},
        ],
        "timeseries": {
            "interval_s": 0.25,
            "samples": [
                {"t": 0.0, "ops_done": 0, "calls_done": 0, "usage": {}, "parked": []},
                {
                    "t": 1.0,
                    "ops_done": 2,
                    "calls_done": 3,
                    "usage": {"act_1/ads_management": 60.0},
                    "parked": [],
                },
                {
                    "t": 2.0,
                    "ops_done": 4,
                    "calls_done": 4,
                    "usage": {"act_1/ads_management": 100.0},
                    "parked": ["act_1/ads_management"],
                },
            ],
        },
        "throttles": [{"t": 1.5, "account_id": "act_1", "buc_type": "ads_management", "code": 80004}],
    }
    path = tmp_path / "saved.json"
    path.write_text(json.dumps(report))
    return path


def test_report_re_renders_a_saved_report(tmp_path: Path) -> None:
    saved = _saved_report(tmp_path)
    html, table = tmp_path / "again.html", tmp_path / "again.csv"
    proc = run_cli("report", str(saved), "--html", str(html), "--csv", str(table))
    assert proc.returncode == 0, proc.stderr
    assert "Job saved (completed): 1 succeeded, 2 failed, 1 skipped" in proc.stdout
    assert "failed × 2 with Graph error 100/1885621" in proc.stdout
    rows = list(csv.DictReader(io.StringIO(table.read_text())))
    assert [r["op_id"] for r in rows] == ["a", "b", "c", "d"]
    assert rows[1]["error_message"] == "'=budget <b>clash</b>"  # never a spreadsheet formula
    page = html.read_text()
    assert "&lt;b&gt;clash&lt;/b&gt;" in page and "<b>clash</b>" not in page  # escaped
    assert 'class="throttle"' in page and 'class="parked"' in page  # throttle marker, parked band
    assert "<script" not in page and "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_report_refuses_what_is_not_a_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    junk = tmp_path / "junk.json"
    junk.write_text('{"hello": 1}')
    assert cli.main(["report", str(junk), "--html", str(tmp_path / "x.html")]) == 2
    assert "not a run report: missing job_id" in capsys.readouterr().err
    assert not (tmp_path / "x.html").exists()
    assert cli.main(["report", str(tmp_path / "nope.json")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_resume_and_journal_say_when_this_version_has_no_journal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """In-process: an installation without ``bulk_engine.persistence`` refuses clearly (exit 2)."""
    monkeypatch.setattr(cli_common, "journal_class", lambda *, resume: None)
    monkeypatch.setenv("META_ACCESS_TOKEN", "SOME-TOKEN-VALUE")
    assert cli.main(["resume", "some-job", "--journal", str(tmp_path / "j.db")]) == 2
    assert "not available yet" in capsys.readouterr().err
    job = write_job(tmp_path / "j.yaml", "journal", "act_1000000001", tree_task(repeat=1))
    code = cli.main(
        ["run", str(job), "--graph-url", "http://127.0.0.1:9", "--journal", str(tmp_path / "j.db")]
    )
    assert code == 2 and "no journal yet" in capsys.readouterr().err
