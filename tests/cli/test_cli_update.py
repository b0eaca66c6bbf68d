"""``bulk-engine run`` of an update job as a subprocess: the diff in the JSON, CSV and HTML reports, the server
dry run (reads, validate_only writes, the diff, nothing changed)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from cli_support import Sim, run_cli, tree_task, write_job


def _adsets(sim: Sim, tmp_path: Path, job_id: str) -> list[str]:
    """Create two campaigns of two ad sets (daily budget 1500 each); their ad-set ids."""
    job = write_job(tmp_path / "create.yaml", job_id, sim.act, tree_task(repeat=2, key="launch"))
    report = tmp_path / "create.json"
    proc = run_cli("run", str(job), "--graph-url", sim.url, "--report", str(report), token=sim.token)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ops = json.loads(report.read_text())["operations"]
    return [op["graph_id"] for op in ops if op["kind"] == "create_adset"]


def _update_job(tmp_path: Path, sim: Sim, job_id: str, ids: list[str]) -> Path:
    rows = "".join(f"{i},+10%\n" for i in ids[:3]) + f"{ids[3]},1500\n"  # the last is unchanged
    (tmp_path / "raise.csv").write_text("id,daily_budget\n" + rows, encoding="utf-8")
    task: dict[str, Any] = {"type": "update", "key": "raise", "level": "adset", "csv": "raise.csv"}
    return write_job(tmp_path / "raise.yaml", job_id, sim.act, task)


def _budget(sim: Sim, object_id: str) -> str:
    return str(sim.get(f"/v25.0/{object_id}?fields=daily_budget&access_token={sim.token}")["daily_budget"])


def test_update_reports_carry_the_per_object_diff(shared_sim: Sim, tmp_path: Path) -> None:
    ids = _adsets(shared_sim, tmp_path, "update-cli-create")
    job = _update_job(tmp_path, shared_sim, "update-cli", ids)
    report, table, page = tmp_path / "u.json", tmp_path / "u.csv", tmp_path / "u.html"
    proc = run_cli(
        "run",
        str(job),
        "--graph-url",
        shared_sim.url,
        "--report",
        str(report),
        "--report-csv",
        str(table),
        "--report-html",
        str(page),
        token=shared_sim.token,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr  # one object unchanged: skipped
    assert [_budget(shared_sim, i) for i in ids] == ["1650", "1650", "1650", "1500"]
    data = json.loads(report.read_text())
    (task,) = data["tasks"]
    assert task["details"]["diff_counts"] == {"changed": 3, "unchanged": 1, "skipped": 0, "failed": 0}
    assert task["details"]["diff"][0]["fields"] == {"daily_budget": {"old": 1500, "new": 1650}}
    rows = {r["op_id"]: r for r in csv.DictReader(io.StringIO(table.read_text()))}
    changed = [r for r in rows.values() if r["type"] == "update" and r["state"] == "succeeded"]
    assert len(changed) == 3 and {r["changes"] for r in changed} == {"daily_budget: 1500 → 1650"}
    (same,) = [r for r in rows.values() if r["state"] == "skipped"]
    assert same["reason"].startswith("unchanged: daily_budget already 1500") and same["changes"] == ""
    html = page.read_text()
    assert 'id="changes"' in html and "daily_budget: 1500 → 1650" in html and "<b>unchanged</b>" in html


def test_server_dry_run_shows_the_diff_and_changes_nothing(shared_sim: Sim, tmp_path: Path) -> None:
    ids = _adsets(shared_sim, tmp_path, "update-dry-create")
    job = _update_job(tmp_path, shared_sim, "update-dry", ids)
    report = tmp_path / "dry.json"
    proc = run_cli(
        "run",
        str(job),
        "--graph-url",
        shared_sim.url,
        "--dry-run=server",
        "--report",
        str(report),
        token=shared_sim.token,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr  # the unchanged one is skipped
    assert [_budget(shared_sim, i) for i in ids] == ["1500"] * 4
    data = json.loads(report.read_text())
    diff = data["tasks"][0]["details"]["diff"]
    assert [e["state"] for e in diff] == ["changed", "changed", "changed", "unchanged"]
    assert diff[0]["fields"]["daily_budget"] == {"old": 1500, "new": 1650}


def _post(sim: Sim, object_id: str, **params: Any) -> None:
    import urllib.parse

    from cli_support import OPENER

    body = urllib.parse.urlencode({**params, "access_token": sim.token}).encode()
    with OPENER.open(f"{sim.url}/v25.0/{object_id}", data=body, timeout=30) as answer:
        assert json.loads(answer.read()) == {"success": True}


def test_undo_restores_and_lists_an_object_changed_since(shared_sim: Sim, tmp_path: Path) -> None:
    ids = _adsets(shared_sim, tmp_path, "undo-cli-create")
    job = _update_job(tmp_path, shared_sim, "undo-cli", ids)
    report, journal = tmp_path / "u.json", tmp_path / "jobs.sqlite"
    proc = run_cli(
        "run",
        str(job),
        "--graph-url",
        shared_sim.url,
        "--report",
        str(report),
        "--journal",
        str(journal),
        token=shared_sim.token,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    undo_file = tmp_path / "u.undo.json"
    assert f"Undo file: {undo_file}" in proc.stdout
    assert len(json.loads(undo_file.read_text())["tasks"][0]["objects"]) == 3
    _post(shared_sim, ids[1], daily_budget="1999")  # someone else, in between

    dry = run_cli(
        "undo",
        str(journal),
        "--job",
        "undo-cli",
        "--dry-run",
        "--graph-url",
        shared_sim.url,
        "--report",
        str(tmp_path / "dry.json"),
        token=shared_sim.token,
    )
    assert dry.returncode == 1, dry.stdout + dry.stderr  # the object changed since is skipped
    assert [_budget(shared_sim, i) for i in ids] == ["1650", "1999", "1650", "1500"]  # nothing written
    diff = json.loads((tmp_path / "dry.json").read_text())["tasks"][0]["details"]["diff"]
    assert [e["state"] for e in diff] == ["changed", "skipped", "changed"]

    undone = run_cli(
        "undo",
        str(undo_file),
        "--graph-url",
        shared_sim.url,
        "--report",
        str(tmp_path / "undo.json"),
        token=shared_sim.token,
    )
    assert undone.returncode == 1, undone.stdout + undone.stderr
    assert [_budget(shared_sim, i) for i in ids] == ["1500", "1999", "1500", "1500"]
    skipped = [
        op
        for op in json.loads((tmp_path / "undo.json").read_text())["operations"]
        if op["state"] == "skipped"
    ]
    assert len(skipped) == 1 and "changed since: daily_budget is 1999, not 1650" in skipped[0]["reason"]
    assert (tmp_path / "undo.undo.json").exists()  # the undo is undoable in turn


def _status(sim: Sim, object_id: str) -> str:
    return str(sim.get(f"/v25.0/{object_id}?fields=status&access_token={sim.token}")["status"])


def test_undo_of_a_create_deletes_what_it_made_and_skips_an_object_changed_since(
    shared_sim: Sim, tmp_path: Path
) -> None:
    """``run --report`` writes the undo file with the created tops (statuses from the job file); ``undo
    --created delete`` deletes them, skips the campaign someone re-activated and lists the creative."""
    job = write_job(
        tmp_path / "create.yaml", "undo-create-cli", shared_sim.act, tree_task(repeat=3, key="launch")
    )
    report = tmp_path / "create.json"
    proc = run_cli(
        "run", str(job), "--graph-url", shared_sim.url, "--report", str(report), token=shared_sim.token
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ops = json.loads(report.read_text())["operations"]
    campaigns = [op["graph_id"] for op in ops if op["kind"] == "create_campaign"]
    undo_file = tmp_path / "create.undo.json"
    (task,) = json.loads(undo_file.read_text())["tasks"]
    assert [(c["id"], c["status"]) for c in task["created"]] == [(c, "PAUSED") for c in campaigns]
    _post(shared_sim, campaigns[1], status="ACTIVE")  # someone else, in between

    undone = run_cli(
        "undo",
        str(undo_file),
        "--created",
        "delete",
        "--graph-url",
        shared_sim.url,
        "--report",
        str(tmp_path / "undo.json"),
        token=shared_sim.token,
    )
    assert undone.returncode == 1, undone.stdout + undone.stderr  # the re-activated campaign is skipped
    assert [_status(shared_sim, c) for c in campaigns] == ["DELETED", "ACTIVE", "DELETED"]
    assert "not undone (task launch id " in undone.stdout and "creative" in undone.stdout
    (skipped,) = [
        op
        for op in json.loads((tmp_path / "undo.json").read_text())["operations"]
        if op["state"] == "skipped"
    ]
    assert (
        campaigns[1] in skipped["op_id"]
        and "changed since: status is 'ACTIVE', not 'PAUSED'" in skipped["reason"]
    )
