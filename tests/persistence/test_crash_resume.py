"""Crash/resume: SIGKILL the process running a 2,000-op job at random points, resume, end exact.

The simulator runs in another process (``python -m bulk_engine simulator --port 0 …``); the job runs in
``_crash_runner.py`` (a stand-in for ``bulk-engine run`` / ``bulk-engine resume``) with a SQLite journal.
Kill points are drawn from a seeded RNG as "right after this process committed the intent of its k-th
batch" (the runner prints a line there; other batches are in flight too, so kills land between an intent
and its answer, with answers half-recorded, during lookups…); k = 0 kills it before anything is sent.
After the last resume the simulator's store must hold exactly one object per create — then again for a
run whose journal is deleted after each kill (what was created is rebuilt from the keys on the server).
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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from persist_support import check_exact, expected_per_type, trees

from bulk_engine.persistence import SqliteJournal

HERE = Path(__file__).parent
RUNNER = HERE / "_crash_runner.py"
TREES = 500  # 2,000 operations
DEADLINE_S = 120.0  # any one process is killed after this, so the test is bounded
SIM_ARGS = (
    "--time-scale",
    "600",
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


@dataclass
class Cycle:
    """One process. It is SIGKILLed once the journal holds ``kill_at`` succeeded operations: right after
    that outcome commit (``trigger="recorded"``) or after the next batch intent (``"sent"``); ``kill_at=0``
    kills it at start, before anything is sent; ``None`` lets it finish."""

    mode: str
    kill_at: int | None
    trigger: str = "recorded"
    already: int = 0  # succeeded in the journal when the process started
    progress: int = 0  # succeeded in the journal, as this process reported it
    killed: bool = False
    done: dict[str, Any] = field(default_factory=dict)


def run_runner(info: dict[str, Any], journal: Path, job_id: str, cycle: Cycle) -> Cycle:
    args = [sys.executable, str(RUNNER), cycle.mode, "--graph-url", info["url"], "--journal", str(journal)]
    args += ["--job-id", job_id]
    if cycle.mode == "run":
        args += ["--trees", str(TREES), "--accounts", ",".join(info["ad_account_ids"])]
        args += ["--page", info["page_ids"][0]]
    env = {**os.environ, "META_ACCESS_TOKEN": info["access_token"], "PYTHONUNBUFFERED": "1"}
    errors = journal.with_name(journal.name + ".stderr")
    with errors.open("w") as stderr_file:
        proc = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=stderr_file, text=True, env=env, cwd=HERE
        )
        watchdog = threading.Timer(DEADLINE_S, proc.kill)
        watchdog.start()
        try:
            assert proc.stdout is not None
            armed = False
            for line in proc.stdout:
                word, _, rest = line.strip().partition(" ")
                if word == "start":
                    cycle.already = cycle.progress = int(rest)
                    if cycle.kill_at == 0:
                        break
                elif word == "recorded":
                    cycle.progress += int(rest)
                    if cycle.kill_at is not None and cycle.progress >= cycle.kill_at:
                        if cycle.trigger == "recorded":
                            break  # right after an outcome commit, other batches in flight
                        armed = True
                elif word == "sent" and armed:
                    break  # right after an intent commit: this batch is leaving
                elif word == "done":
                    cycle.done = json.loads(rest)
            if cycle.kill_at is not None and proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                cycle.killed = True
            proc.wait(timeout=DEADLINE_S)
        finally:
            watchdog.cancel()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    if not cycle.killed:
        assert proc.returncode == 0, errors.read_text()[-3000:]
    return cycle


def store(info: dict[str, Any]) -> list[dict[str, Any]]:
    url = f"{info['url']}/__sim__/store?type=campaign,adset,adcreative,ad"
    with urllib.request.urlopen(url, timeout=30) as resp:  # the 127.0.0.1 simulator
        nodes: list[dict[str, Any]] = json.loads(resp.read())
    return nodes


def _mode(journal: Path, job_id: str) -> str:
    if not journal.exists():
        return "run"
    with SqliteJournal(journal) as opened:
        return "resume" if opened.get_job(job_id) is not None else "run"


def _delete_journal(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)


def _assert_exact(info: dict[str, Any], job_id: str) -> dict[str, int]:
    ops = trees(TREES, info["ad_account_ids"], info["page_ids"][0])
    exact = check_exact(store(info), ops, job_id)
    assert not exact.duplicates, exact.duplicates
    assert not exact.missing, exact.missing[:10]
    assert not exact.unexpected
    assert (
        exact.per_type
        == expected_per_type(ops)
        == {"campaign": 500, "adset": 500, "adcreative": 500, "ad": 500}
    )
    return {"ops": len(ops), "duplicates": sum(exact.duplicates.values()), "lost": len(exact.missing)}


def test_sigkill_at_random_points_then_resume_ends_exact(tmp_path: Path) -> None:
    rng = random.Random(20240611)
    journal = tmp_path / "crash.db"
    points = [0, *sorted(rng.sample(range(20, 1_950), 11))]  # succeeded ops in the journal at each kill
    with simulator() as info:
        cycles: list[Cycle] = []
        for point in points:  # `resume` once the journal holds the job (before that: `run` it again)
            cycle = Cycle(_mode(journal, "crash-a"), point, rng.choice(("recorded", "sent")))
            cycles.append(run_runner(info, journal, "crash-a", cycle))
        assert _mode(journal, "crash-a") == "resume"
        final = run_runner(info, journal, "crash-a", Cycle("resume", None))
        assert final.done["counts"] == {"succeeded": 2_000}, final.done
        killed = sum(c.killed for c in cycles)
        assert killed >= 10
        assert 0 < final.already < 2_000 and final.done["from_journal"] == final.already
        figures = _assert_exact(info, "crash-a")
    starts = [c.already for c in cycles]
    assert starts == sorted(starts)  # progress is never lost
    print(
        "\ncrash figures:",
        json.dumps({**figures, "sigkills": killed, "kill_points": points, "succeeded_at_each_start": starts}),
        "final resume:",
        json.dumps(final.done),
    )


def test_resume_with_the_journal_deleted_ends_exact(tmp_path: Path) -> None:
    rng = random.Random(99)
    journal = tmp_path / "lost.db"
    with simulator() as info:
        cycles = [
            run_runner(info, journal, "crash-b", Cycle("run", rng.randint(300, 600), "sent")),
        ]
        _delete_journal(journal)  # lost: the next run rebuilds from the keys on the server…
        cycles.append(run_runner(info, journal, "crash-b", Cycle("run", 1, "sent")))  # …and dies early
        cycles.append(run_runner(info, journal, "crash-b", Cycle("resume", rng.randint(900, 1_200), "sent")))
        _delete_journal(journal)
        created = len(store(info))
        assert 0 < created < 2_000
        final = run_runner(info, journal, "crash-b", Cycle("run", None))
        killed = sum(c.killed for c in cycles)
        assert killed == 3
        assert final.already == 0 and final.done["counts"] == {"succeeded": 2_000}, final.done
        assert final.done["recovered"] >= created  # found by key on the server, not created again
        figures = _assert_exact(info, "crash-b")
    print(
        "\njournal-deleted figures:",
        json.dumps({**figures, "sigkills": killed, "journals_deleted": 2, "created_before": created}),
        "final run:",
        json.dumps(final.done),
    )
