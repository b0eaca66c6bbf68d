"""Crash/resume through the real CLI: SIGKILL ``bulk-engine run`` at random points of a 2,001-op job.

The simulator runs in another process (``python -m bulk_engine simulator --port 0 …``); the job is a YAML job
file (400 campaigns × 2 audiences: 400 campaigns, 800 ad sets, 800 ads, 1 shared creative) run with
``python -m bulk_engine run JOB --journal PATH --log-format json``. Kill points are drawn from a seeded RNG as
"right after the k-th ``batch_sent`` / ``operation`` JSON line this process printed"; k = 0 kills it before
anything is sent. After each kill the job is finished the ways docs/cli.md documents — the same ``run``
command again, or ``bulk-engine resume JOB_ID`` once the journal holds the job — and at the end the
simulator's store must hold exactly one object per create (by idempotency key). Then again for a run whose
journal is deleted between kills (what was created is rebuilt from the keys on the server).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from persist_support import check_exact, expected_per_type
from pg_server import new_schema_url

from bulk_engine.operations import CompileContext, load_job
from bulk_engine.persistence import is_journal_url, open_journal
from bulk_engine.reporting.journaled import engine_job_ids

ROOT = Path(__file__).resolve().parents[2]
REPEAT = 400  # campaigns; × (1 campaign + 2 ad sets + 2 ads) + 1 shared creative = 2,001 operations
TOTAL = 1 + REPEAT * 5
PER_TYPE = {"campaign": REPEAT, "adset": 2 * REPEAT, "adcreative": 1, "ad": 2 * REPEAT}
SCALE = "600"
DEADLINE_S = 60.0  # any one process is killed after this, so the test is bounded
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never a proxy
SIM_ARGS = (
    "--time-scale",
    SCALE,
    "--tier",
    "standard_access",
    "--latency-ms",
    "2",
    "--faults",
    "transient=0.03,null=0.02,drop=0.02",
    "--seed",
    "17",
)


@contextmanager
def simulator() -> Iterator[dict[str, Any]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "bulk_engine", "simulator", "--port", "0", *SIM_ARGS],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    watchdog = threading.Timer(10 * DEADLINE_S, proc.kill)
    watchdog.start()
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError("the simulator did not start")
        info = json.loads(line)
        assert info["url"].startswith("http://127.0.0.1:")
        yield info
    finally:
        watchdog.cancel()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def write_job(path: Path, job_id: str, account: str, page_id: str) -> Path:
    audiences = [{"name": c, "targeting": {"geo_locations": {"countries": [c]}}} for c in ("US", "CA")]
    task = {
        "type": "create",
        "key": "launch",
        "creatives": {
            "hero": {
                "object_story_spec": {
                    "page_id": page_id,
                    "link_data": {"link": "https://example.com", "message": "Spring is here"},
                }
            }
        },
        "campaigns": [
            {
                "name": "Spring {n}",
                "objective": "OUTCOME_TRAFFIC",
                "special_ad_categories": [],
                "repeat": REPEAT,
                "ad_set_matrix": {
                    "template": {
                        "billing_event": "IMPRESSIONS",
                        "optimization_goal": "LINK_CLICKS",
                        "daily_budget": 1500,
                    },
                    "audiences": audiences,
                    "creatives": ["hero"],
                    "ad_name": "{audience} - {creative}",
                },
            }
        ],
    }
    path.write_text(yaml.safe_dump({"version": 1, "job_id": job_id, "account_id": account, "tasks": [task]}))
    return path


@dataclass
class Cycle:
    """One CLI process. ``kill_after=(event, k)``: SIGKILLed right after its k-th ``event`` JSON line
    (k = 0: at ``job_started``, before anything is sent); ``None`` lets it finish."""

    mode: str  # "run" (the same command again) or "resume" (bulk-engine resume JOB_ID)
    kill_after: tuple[str, int] | None
    seen: dict[str, int] = field(default_factory=dict)
    killed: bool = False
    returncode: int | None = None
    finished: dict[str, Any] = field(default_factory=dict)


@dataclass
class Journal:
    """What ``--journal`` names (an SQLite file, a PostgreSQL URL) and where the CLI's stderr goes."""

    target: str
    folder: Path
    secret: str = ""  # the URL's password: never printed by the CLI


@pytest.fixture(params=["sqlite", "postgres"])
def journal_of(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """``journal_of(name)`` → a Journal of the backend under test (a file, or a schema of its own)."""

    def make(name: str) -> Journal:
        if request.param == "sqlite":
            return Journal(str(tmp_path / f"{name}.db"), tmp_path)
        server = request.getfixturevalue("postgres_server")
        return Journal(new_schema_url(server), tmp_path, server.password)

    return make


def run_cli(info: dict[str, Any], job: Path, job_id: str, journal: Journal, cycle: Cycle) -> Cycle:
    common = [
        "--journal",
        journal.target,
        "--graph-url",
        info["url"],
        "--time-scale",
        SCALE,
        "--log-format",
        "json",
    ]
    args = ["run", str(job)] if cycle.mode == "run" else ["resume", job_id]
    env = {k: v for k, v in os.environ.items() if not k.startswith("META_")}
    env.update(META_ACCESS_TOKEN=info["access_token"], PYTHONUNBUFFERED="1")
    errors = journal.folder / "cli.stderr"
    with errors.open("w") as stderr_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bulk_engine", *args, *common],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=stderr_file,
            text=True,
            env=env,
        )
        watchdog = threading.Timer(DEADLINE_S, proc.kill)  # bounds the blocking reads below
        watchdog.start()
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                if not line.startswith("{"):
                    continue
                event = json.loads(line)
                name = event["event"]
                cycle.seen[name] = cycle.seen.get(name, 0) + 1
                if name == "job_finished":
                    cycle.finished = event
                if cycle.kill_after is None:
                    continue
                target, k = cycle.kill_after
                if (name == "job_started" and k == 0) or (name == target and cycle.seen[name] >= k):
                    if proc.poll() is None:
                        proc.send_signal(signal.SIGKILL)
                        cycle.killed = True
                    break
            cycle.returncode = proc.wait(timeout=DEADLINE_S)
        finally:
            watchdog.cancel()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
    if not cycle.killed:
        assert cycle.returncode == 0, errors.read_text()[-3000:]
    if journal.secret:
        assert journal.secret not in errors.read_text() and journal.secret not in json.dumps(cycle.finished)
    return cycle


def store(info: dict[str, Any]) -> list[dict[str, Any]]:
    url = f"{info['url']}/__sim__/store?type=campaign,adset,adcreative,ad"
    with OPENER.open(url, timeout=30) as resp:  # the 127.0.0.1 simulator
        nodes: list[dict[str, Any]] = json.loads(resp.read())
    return nodes


def _journal_has(journal: Journal, job_id: str) -> bool:
    if not is_journal_url(journal.target) and not Path(journal.target).exists():
        return False
    with closing(open_journal(journal.target)) as opened:
        return any(j == job_id or j.startswith(job_id + "/") for j in opened.job_ids())


def _delete_journal(journal: Journal) -> Journal:
    """The journal lost: the file deleted, or (PostgreSQL) a new empty schema from now on."""
    if is_journal_url(journal.target):
        return Journal(
            journal.target.rsplit("=", 1)[0] + "=" + f"lost_{uuid.uuid4().hex[:12]}",
            journal.folder,
            journal.secret,
        )
    for suffix in ("", "-wal", "-shm"):
        Path(journal.target + suffix).unlink(missing_ok=True)
    return journal


def _assert_exact(info: dict[str, Any], job: Path, job_id: str, journal: Journal) -> dict[str, int]:
    ops = list(load_job(job).compile(CompileContext()))
    assert len(ops) == TOTAL
    engine_job = f"{job_id}/{ops[0].op_id.split('/', 1)[0]}/0"  # run_job: <job id>/<task key>/<n>
    with closing(open_journal(journal.target)) as opened:
        assert engine_job_ids(opened, job_id) == [engine_job]
    nodes = store(info)
    exact = check_exact(nodes, ops, engine_job)  # keys derive from the engine job id
    assert not exact.duplicates, exact.duplicates
    assert not exact.missing, exact.missing[:10]
    assert not exact.unexpected
    assert exact.per_type == expected_per_type(ops) == PER_TYPE
    campaigns = [n["name"] for n in nodes if n["type"] == "campaign"]
    assert len(set(campaigns)) == len(campaigns) == REPEAT  # names carry the key: no duplicate names either
    return {"ops": len(ops), "duplicates": sum(exact.duplicates.values()), "lost": len(exact.missing)}


def _kill_point(rng: random.Random) -> tuple[str, int]:
    if rng.random() < 0.5:
        return "batch_sent", rng.randint(1, 12)
    return "operation", rng.randint(1, 400)


def test_sigkill_the_cli_at_random_points_then_resume_ends_exact(tmp_path: Path, journal_of: Any) -> None:
    rng = random.Random(20240611)
    journal = journal_of("crash")
    with simulator() as info:
        job = write_job(tmp_path / "crash.yaml", "crash-a", info["ad_account_ids"][0], info["page_ids"][0])
        points = [("job_started", 0), *(_kill_point(rng) for _ in range(11))]
        cycles: list[Cycle] = []
        for point in points:
            # once the journal holds the job, finish it either way the CLI documents
            mode = rng.choice(("run", "resume")) if _journal_has(journal, "crash-a") else "run"
            cycles.append(run_cli(info, job, "crash-a", journal, Cycle(mode, point)))
            created = len(store(info))
            assert created < TOTAL or cycles[-1].killed
        assert _journal_has(journal, "crash-a")
        final = run_cli(info, job, "crash-a", journal, Cycle("resume", None))
        assert final.finished["counts"]["succeeded"] == TOTAL, final.finished
        assert final.finished["exit_code"] == 0
        killed = sum(c.killed for c in cycles)
        assert killed >= 10
        figures = _assert_exact(info, job, "crash-a", journal)
        rerun = run_cli(info, job, "crash-a", journal, Cycle("run", None))  # all answered from the journal
        assert rerun.finished["counts"]["succeeded"] == TOTAL and rerun.seen.get("batch_sent", 0) == 0
        assert _assert_exact(info, job, "crash-a", journal) == figures
    print(
        "\ncrash figures:",
        json.dumps({**figures, "sigkills": killed, "kill_points": points, "modes": [c.mode for c in cycles]}),
        "final resume:",
        json.dumps({k: final.finished.get(k) for k in ("counts", "http_requests", "retries")}),
    )


def test_rerun_with_the_journal_deleted_ends_exact(tmp_path: Path) -> None:
    rng = random.Random(99)
    journal = Journal(
        str(tmp_path / "lost.db"), tmp_path
    )  # the rebuild from keys is the same on every backend
    with simulator() as info:
        job = write_job(tmp_path / "lost.yaml", "crash-b", info["ad_account_ids"][0], info["page_ids"][0])
        cycles = [run_cli(info, job, "crash-b", journal, Cycle("run", ("operation", rng.randint(300, 600))))]
        journal = _delete_journal(journal)  # lost: the next run rebuilds from the keys on the server…
        cycles.append(
            run_cli(info, job, "crash-b", journal, Cycle("run", ("batch_sent", 1)))
        )  # …and dies early
        cycles.append(
            # the early death came at its first probe, with the first 1,000 plans journaled: die within them
            run_cli(info, job, "crash-b", journal, Cycle("resume", ("operation", rng.randint(600, 900))))
        )
        journal = _delete_journal(journal)
        created = len(store(info))
        assert 0 < created < TOTAL
        final = run_cli(info, job, "crash-b", journal, Cycle("run", None))
        killed = sum(c.killed for c in cycles)
        assert killed == 3
        assert final.finished["counts"]["succeeded"] == TOTAL, final.finished
        figures = _assert_exact(info, job, "crash-b", journal)
    print(
        "\njournal-deleted figures:",
        json.dumps({**figures, "sigkills": killed, "journals_deleted": 2, "created_before": created}),
        "final run:",
        json.dumps({k: final.finished.get(k) for k in ("counts", "http_requests", "retries")}),
    )
