"""Shared bench helpers: a simulator in its own process, job builders, result printing."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bulk_engine import Job, Operation

TARGETING = {"geo_locations": {"countries": ["US"]}}


def _simulator_env() -> dict[str, str]:
    """The simulator's environment. ``BENCH_SIMULATOR_PYTHONPATH`` runs the simulator from another
    tree than the client: to measure an older engine (``PYTHONPATH=old-tree``) against today's
    simulator, so a before/after comparison differs in the engine only."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    sim_path = os.environ.get("BENCH_SIMULATOR_PYTHONPATH")
    if sim_path:
        env["PYTHONPATH"] = sim_path
    return env


@contextmanager
def simulator_process(*args: str, config: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
    """``bulk-engine simulator --port 0 ARGS`` in another process; yields its start-line JSON (+ ``pid``).

    ``config`` instead serves a ``SimulatorConfig`` given as JSON fields (``bench/sim_server.py``), for
    options the CLI does not expose (``seed_campaigns``, several ad accounts, ``app_users``).
    """
    if config is not None:
        command = [sys.executable, str(Path(__file__).with_name("sim_server.py")), json.dumps(config)]
    else:
        command = [sys.executable, "-m", "bulk_engine", "simulator", "--port", "0", *args]
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=_simulator_env(),
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError("the simulator did not start")
        info = json.loads(line)
        info["pid"] = proc.pid
        yield info
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds used so far by process ``pid`` (Linux ``/proc``; NaN elsewhere)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return math.nan
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_memory_mb(pid: int | str = "self") -> tuple[float, float]:
    """(current RSS, peak RSS) of process ``pid`` in MB, from ``/proc/<pid>/status`` (NaN elsewhere)."""
    values = {"VmRSS": math.nan, "VmHWM": math.nan}
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                key = line.split(":", 1)[0]
                if key in values:
                    values[key] = int(line.split()[1]) / 1024
    except OSError:
        pass
    return values["VmRSS"], values["VmHWM"]


def tree_ops(i: int, act: str, page_id: str) -> list[Operation]:
    """One campaign → ad set → creative → ad tree (op ids ``c<i>``, ``as<i>``, ``cr<i>``, ``ad<i>``), linked by
    the builder; the params are the ones ``scenario_t`` gives the official SDK."""
    job = Job(act)
    campaign = job.campaign(key=f"c{i}", **campaign_params(i))
    adset = job.adset(campaign=campaign, key=f"as{i}", **adset_params(i))
    creative = job.creative(key=f"cr{i}", **creative_params(i, page_id))
    job.ad(adset=adset, creative=creative, key=f"ad{i}", name=f"Ad {i}")
    return job.operations()


def campaign_params(i: int) -> dict[str, Any]:
    return {
        "name": f"Campaign {i}",
        "objective": "OUTCOME_TRAFFIC",
        "special_ad_categories": [],
        "status": "PAUSED",
    }


def adset_params(i: int) -> dict[str, Any]:
    return {
        "name": f"Ad set {i}",
        "billing_event": "IMPRESSIONS",
        "optimization_goal": "LINK_CLICKS",
        "daily_budget": 1000,
        "targeting": TARGETING,
        "status": "PAUSED",
    }


def creative_params(i: int, page_id: str) -> dict[str, Any]:
    return {
        "name": f"Creative {i}",
        "object_story_spec": {
            "page_id": page_id,
            "link_data": {"link": "https://example.com", "message": f"Hello {i}"},
        },
    }


def table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)) for r in rows)
