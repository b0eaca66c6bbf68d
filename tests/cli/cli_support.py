"""Helpers for the CLI tests (a uniquely named module: test folders share one import namespace).

Everything runs as real processes: the simulator (``python -m bulk_engine simulator --port 0``) and the
CLI under test. Waits are bounded and poll the processes; nothing sleeps for timing.
"""

from __future__ import annotations

import csv
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 30.0
PAGE = "2000000001"
# Never through a proxy: the simulator is on loopback.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class Sim:
    proc: subprocess.Popen[str]
    info: dict[str, Any]

    @property
    def url(self) -> str:
        return str(self.info["url"])

    @property
    def token(self) -> str:
        return str(self.info["access_token"])

    @property
    def act(self) -> str:
        return str(self.info["ad_account_ids"][0])

    def get(self, path: str) -> Any:
        with OPENER.open(self.url + path, timeout=TIMEOUT_S) as answer:
            return json.loads(answer.read())

    def request_count(self) -> int:
        """HTTP requests the simulator served so far (its inspection API)."""
        return len(self.get("/__sim__/requests"))


def read_line(stream: IO[str], timeout: float = TIMEOUT_S) -> str:
    """One line with a deadline (a reader thread: ``readline`` itself cannot time out)."""
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: lines.put(stream.readline()), daemon=True).start()
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        raise AssertionError(f"no line within {timeout} s") from None


@contextmanager
def simulator(*args: str) -> Iterator[Sim]:
    """``bulk-engine simulator --port 0 ARGS`` in its own process; stopped (by pid) afterwards."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "bulk_engine", "simulator", "--port", "0", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        line = read_line(proc.stdout)
        assert line, f"the simulator exited with {proc.poll()} before its start line"
        yield Sim(proc, json.loads(line))
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=TIMEOUT_S)
        if proc.stdout is not None:
            proc.stdout.close()


def finish(proc: subprocess.Popen[str], timeout: float = TIMEOUT_S) -> tuple[str, str]:
    """Wait (bounded) for ``proc`` and return the rest of its stdout and its stderr.

    Not ``communicate()``: it reads the pipes' file descriptors directly and would lose what an earlier
    ``readline`` left in the text wrapper's buffer.
    """
    out, err = proc.stdout, proc.stderr
    assert out is not None and err is not None
    results: dict[str, str] = {}
    readers = [
        threading.Thread(target=lambda: results.__setitem__("out", out.read()), daemon=True),
        threading.Thread(target=lambda: results.__setitem__("err", err.read()), daemon=True),
    ]
    for reader in readers:
        reader.start()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)
        raise AssertionError(f"the process did not exit within {timeout} s") from None
    for reader in readers:
        reader.join(timeout=timeout)
    out.close()
    err.close()
    return results.get("out", ""), results.get("err", "")


def cli_env(token: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("META_")}
    env["PYTHONUNBUFFERED"] = "1"
    env["COLUMNS"] = "120"
    if token is not None:
        env["META_ACCESS_TOKEN"] = token
    return env


def run_cli(*args: str, token: str | None = None, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """``python -m bulk_engine ARGS`` with stdout/stderr captured (not a terminal)."""
    return subprocess.run(
        [sys.executable, "-m", "bulk_engine", *args],
        cwd=ROOT,
        env=cli_env(token),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def start_cli(*args: str, token: str | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "bulk_engine", *args],
        cwd=ROOT,
        env=cli_env(token),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


# --- job files -------------------------------------------------------------------------------------------
def tree_task(repeat: int = 2, key: str = "launch", audiences: int = 2) -> dict[str, Any]:
    """``repeat`` campaigns, each with ``audiences`` ad sets and one ad per ad set, sharing one creative."""
    countries = ["US", "CA", "GB", "DE", "FR"][:audiences]
    return {
        "type": "create",
        "key": key,
        "creatives": {
            "hero": {
                "object_story_spec": {
                    "page_id": PAGE,
                    "link_data": {"link": "https://example.com", "message": "Spring is here"},
                }
            }
        },
        "campaigns": [
            {
                "name": "Spring {n}",
                "objective": "OUTCOME_TRAFFIC",
                "special_ad_categories": [],
                "repeat": repeat,
                "ad_set_matrix": {
                    "template": {
                        "billing_event": "IMPRESSIONS",
                        "optimization_goal": "LINK_CLICKS",
                        "daily_budget": 1500,
                    },
                    "audiences": [
                        {"name": c, "targeting": {"geo_locations": {"countries": [c]}}} for c in countries
                    ],
                    "creatives": ["hero"],
                    "ad_name": "{audience} - {creative}",
                },
            }
        ],
    }


def tree_ops(repeat: int, audiences: int = 2) -> int:
    return 1 + repeat * (1 + 2 * audiences)


def missing_status_task(ids: list[str], key: str = "pause-missing") -> dict[str, Any]:
    """Pause objects that do not exist: Graph answers 100/33 for each."""
    return {"type": "status", "key": key, "status": "PAUSED", "ids": ids}


def write_job(path: Path, job_id: str, account: str, *tasks: dict[str, Any]) -> Path:
    path.write_text(
        yaml.safe_dump({"version": 1, "job_id": job_id, "account_id": account, "tasks": list(tasks)})
    )
    return path


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every non-empty line parsed as JSON (fails the test if one is not)."""
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise AssertionError(f"stdout line {number} is not JSON: {line!r}") from err
    return out


def sheet_job(folder: Path, account: str, header: list[str], rows: list[list[str]], job_id: str) -> Path:
    """``rows`` under ``header`` in ``folder/ads.csv``, and ``folder/job.yaml``: one create task reading that
    sheet (``ads_csv``) with a traffic campaign and a link-click ad set as its templates."""
    with (folder / "ads.csv").open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(header)
        writer.writerows(rows)
    task = {
        "type": "create",
        "key": "sheet",
        "ads_csv": {
            "file": "ads.csv",
            "page_id": PAGE,
            "campaign": {"objective": "OUTCOME_TRAFFIC", "special_ad_categories": []},
            "ad_set": {
                "billing_event": "IMPRESSIONS",
                "optimization_goal": "LINK_CLICKS",
                "daily_budget": 1500,
                "targeting": {"geo_locations": {"countries": ["US"]}},
            },
        },
    }
    job = folder / "job.yaml"
    job.write_text(yaml.safe_dump({"version": 1, "job_id": job_id, "account_id": account, "tasks": [task]}))
    return job
