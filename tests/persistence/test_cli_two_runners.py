"""Two ``bulk-engine run`` processes on one job and one journal: the second is refused at once, naming the
holder, and sends nothing; the first finishes exactly (issue 19: "two CLI processes on one job refused").

The first process is stopped (SIGSTOP) right after its first ``batch_sent`` line, so it holds the job's lock
— the SQLite lock row, or the PostgreSQL advisory lock on its connection — for as long as the second needs,
whatever the machine's speed; it is continued (SIGCONT) once the second was refused.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from test_crash_resume import (  # journal_of: the sqlite / postgres fixture of the crash tests
    DEADLINE_S,
    ROOT,
    SCALE,
    TOTAL,
    _assert_exact,
    journal_of,  # noqa: F401
    simulator,
    store,
    write_job,
)


def _cli(info: dict[str, Any], job: Path, journal: str) -> tuple[list[str], dict[str, str]]:
    args = [sys.executable, "-m", "bulk_engine", "run", str(job), "--journal", journal]
    args += ["--graph-url", info["url"], "--time-scale", SCALE, "--log-format", "json"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("META_")}
    env.update(META_ACCESS_TOKEN=info["access_token"], PYTHONUNBUFFERED="1")
    return args, env


def test_a_second_cli_run_of_a_running_job_is_refused_naming_the_holder(
    tmp_path: Path,
    journal_of: Any,  # noqa: F811  (the fixture imported above)
) -> None:
    journal = journal_of("two")
    with simulator() as info:
        job = write_job(tmp_path / "two.yaml", "two-a", info["ad_account_ids"][0], info["page_ids"][0])
        args, env = _cli(info, job, journal.target)
        first = subprocess.Popen(
            args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        watchdog = threading.Timer(DEADLINE_S, first.kill)
        watchdog.start()
        try:
            assert first.stdout is not None
            for line in first.stdout:
                if line.startswith("{") and json.loads(line)["event"] == "batch_sent":
                    first.send_signal(signal.SIGSTOP)  # holds the lock, sends nothing more
                    break
            stored_before = len(store(info))
            second = subprocess.run(
                args, cwd=ROOT, capture_output=True, text=True, env=env, timeout=DEADLINE_S
            )
            assert second.returncode == 2, second.stderr[-2000:]
            assert f"pid {first.pid}" in second.stdout + second.stderr
            assert "batch_sent" not in second.stdout  # refused before anything was sent
            assert len(store(info)) == stored_before
            if journal.secret:
                assert journal.secret not in second.stdout + second.stderr
            first.send_signal(signal.SIGCONT)
            finished: dict[str, Any] = {}
            for line in first.stdout:
                if line.startswith("{") and (event := json.loads(line))["event"] == "job_finished":
                    finished = event
            assert first.wait(timeout=DEADLINE_S) == 0
        finally:
            watchdog.cancel()
            if first.poll() is None:
                first.send_signal(signal.SIGCONT)
                first.kill()
                first.wait()
            for pipe in (first.stdout, first.stderr):
                if pipe is not None:
                    pipe.close()
        assert finished["counts"]["succeeded"] == TOTAL
        _assert_exact(info, job, "two-a", journal)
