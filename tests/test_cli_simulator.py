"""``bulk-engine simulator``: the start line contract, real traffic, clean shutdown, argument errors.

The server runs as a real subprocess (``python -m bulk_engine simulator``); waits are bounded and poll the
process instead of sleeping.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest
from pydantic import SecretStr

from bulk_engine.cli import COMMANDS, build_parser, main
from bulk_engine.cli.simulator import simulator_config
from bulk_engine.simulator import FaultConfig

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT_S = 20.0
# Never through a proxy: the simulator is on loopback.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class Served:
    proc: subprocess.Popen[str]
    first_line: str
    info: dict[str, Any]


def _first_line(stream: IO[str]) -> str:
    """Read one line with a deadline (a reader thread: ``readline`` itself cannot time out)."""
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: lines.put(stream.readline()), daemon=True).start()
    try:
        return lines.get(timeout=TIMEOUT_S)
    except queue.Empty:
        raise AssertionError(f"no start line within {TIMEOUT_S} s") from None


def _start(*args: str, env: dict[str, str] | None = None) -> Served:
    proc = subprocess.Popen(
        [sys.executable, "-m", "bulk_engine", "simulator", *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = _first_line(proc.stdout)
    if not line:
        _, err = proc.communicate(timeout=TIMEOUT_S)
        raise AssertionError(f"simulator exited {proc.returncode} before its start line: {err}")
    return Served(proc, line, json.loads(line))


@pytest.fixture
def started() -> Iterator[list[Served]]:
    """Processes the test started; any still running at teardown are killed (by pid, never by name)."""
    procs: list[Served] = []
    yield procs
    for served in procs:
        if served.proc.poll() is None:
            served.proc.kill()
            served.proc.communicate(timeout=TIMEOUT_S)


def _stop(served: Served, sig: signal.Signals) -> tuple[int, str, str]:
    served.proc.send_signal(sig)
    out, err = served.proc.communicate(timeout=TIMEOUT_S)
    return served.proc.returncode, out, err


def _request(url: str, method: str = "GET", params: dict[str, Any] | None = None) -> tuple[int, Any]:
    form = {k: json.dumps(v) if isinstance(v, (list, dict)) else str(v) for k, v in (params or {}).items()}
    data = None
    if method == "POST":
        data = urllib.parse.urlencode(form).encode()
    elif form:
        url += "?" + urllib.parse.urlencode(form)
    try:
        with OPENER.open(urllib.request.Request(url, data=data, method=method), timeout=TIMEOUT_S) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


CAMPAIGN = {
    "name": "From the CLI",
    "objective": "OUTCOME_TRAFFIC",
    "special_ad_categories": [],
    "status": "PAUSED",
}


def test_start_line_real_traffic_and_clean_sigterm(started: list[Served]) -> None:
    served = _start("--port", "0", "--seed", "1")
    started.append(served)

    assert served.first_line.endswith("\n") and served.first_line.count("\n") == 1
    info = served.info
    assert set(info) >= {"url", "access_token", "ad_account_ids", "page_ids"}
    url = urllib.parse.urlsplit(info["url"])
    assert (url.scheme, url.hostname, url.path) == ("http", "127.0.0.1", "")
    assert url.port is not None and url.port > 0  # --port 0 resolved to the bound port
    assert info["access_token"] and info["ad_account_ids"][0].startswith("act_") and info["page_ids"]

    act = info["ad_account_ids"][0]
    status, body = _request(
        f"{info['url']}/v24.0/{act}/campaigns", "POST", {"access_token": info["access_token"], **CAMPAIGN}
    )
    assert status == 200, body
    status, read = _request(
        f"{info['url']}/v24.0/{body['id']}", params={"access_token": info["access_token"], "fields": "name"}
    )
    assert (status, read["name"]) == (200, "From the CLI")
    assert served.proc.poll() is None

    code, out, err = _stop(served, signal.SIGTERM)
    assert code == 0, err
    assert out == ""  # nothing after the start line on stdout
    assert "Traceback" not in err


def test_app_secret_from_environment_and_sigint(started: list[Served]) -> None:
    served = _start(
        "--port", "0", "--app-secret-env", "SIM_TEST_APP_SECRET", env={"SIM_TEST_APP_SECRET": "s3cr3t"}
    )
    started.append(served)
    info = served.info
    token = info["access_token"]
    account = f"{info['url']}/v24.0/{info['ad_account_ids'][0]}"
    assert "s3cr3t" not in served.first_line

    status, body = _request(account, params={"access_token": token})
    assert (status, body["error"]["code"]) == (400, 100)
    proof = hmac.new(b"s3cr3t", token.encode(), hashlib.sha256).hexdigest()
    status, body = _request(account, params={"access_token": token, "appsecret_proof": proof})
    assert status == 200, body

    code, _, err = _stop(served, signal.SIGINT)
    assert code == 0, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err


def test_bad_fault_spec_exits_2_naming_the_item() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bulk_engine", "simulator", "--port", "0", "--faults", "nonsense"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "--faults" in proc.stderr and "'nonsense'" in proc.stderr


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["simulator", "--port", "0", "--faults", "transient=0.1,bogus=1"], "bogus"),
        (["simulator", "--port", "0", "--faults", "transient=2"], "transient"),
        (["simulator", "--port", "70000"], "--port"),
        (["simulator", "--port", "0", "--time-scale", "0"], "--time-scale"),
        (["simulator", "--port", "0", "--tier", "gold"], "--tier"),
        (["simulator"], "--port"),
        (["no-such-command"], "no-such-command"),
        ([], "COMMAND"),
    ],
)
def test_bad_arguments_exit_2(argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert needle in captured.err


def test_missing_app_secret_variable_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("SIM_TEST_UNSET_SECRET", raising=False)
    assert main(["simulator", "--port", "0", "--app-secret-env", "SIM_TEST_UNSET_SECRET"]) == 2
    assert "SIM_TEST_UNSET_SECRET" in capsys.readouterr().err


def test_options_shape_the_simulator_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIM_TEST_APP_SECRET", "from-env")
    args = build_parser().parse_args(
        [
            "simulator",
            "--port",
            "0",
            "--faults",
            "transient=0.1,null=0.05,latency_ms=1",
            "--latency-ms",
            "7",
            "--jitter-ms",
            "2",
            "--time-scale",
            "60",
            "--seed",
            "42",
            "--quota",
            "500",
            "--tier",
            "standard_access",
            "--app-secret-env",
            "SIM_TEST_APP_SECRET",
        ]
    )
    config = simulator_config(args)
    assert config.faults == FaultConfig(transient_rate=0.1, null_rate=0.05, latency_ms=7, latency_jitter_ms=2)
    assert (config.time_scale, config.seed, config.quota_override, config.access_tier) == (
        60,
        42,
        500,
        "standard_access",
    )
    assert config.app_secret == SecretStr("from-env")

    defaults = simulator_config(build_parser().parse_args(["simulator", "--port", "0"]))
    assert defaults.faults == FaultConfig() and defaults.app_secret is None


def test_every_command_has_a_configure_and_a_handler() -> None:
    assert "simulator" in COMMANDS
    help_text = build_parser().format_help()
    for name, command in COMMANDS.items():
        assert name in help_text
        assert callable(command.configure) and callable(command.handler)
