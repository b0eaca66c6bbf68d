"""The live view on a pseudo-terminal, throttles said in a person's terms, and interruption (exit 3)."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest
from cli_support import (
    ROOT,
    TIMEOUT_S,
    Sim,
    cli_env,
    finish,
    json_lines,
    read_line,
    run_cli,
    simulator,
    start_cli,
    tree_ops,
    tree_task,
    write_job,
)

from bulk_engine.cli import common as cli_common

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


def _run_in_pty(args: list[str], token: str, timeout: float = 60.0) -> tuple[int, str]:
    """Run ``python -m bulk_engine ARGS`` with a pseudo-terminal as stdin/stdout/stderr; (exit code, output)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 140, 0, 0))
    env = cli_env(token)
    env.pop("COLUMNS", None)
    env["TERM"] = "xterm-256color"
    proc = subprocess.Popen(
        [sys.executable, "-m", "bulk_engine", *args],
        cwd=ROOT,
        env=env,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        close_fds=True,
    )
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break
        code = proc.wait(timeout=TIMEOUT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    return code, b"".join(chunks).decode("utf-8", "replace")


def test_the_live_view_runs_on_a_terminal(shared_sim: Sim, tmp_path: Path) -> None:
    job = write_job(tmp_path / "live.yaml", "live-view", shared_sim.act, tree_task(repeat=6))
    report = tmp_path / "r.json"
    code, raw = _run_in_pty(
        ["run", str(job), "--graph-url", shared_sim.url, "--report", str(report)], shared_sim.token
    )
    screen = ANSI.sub("", raw)
    assert code == 0, screen
    assert "\x1b[" in raw  # drawn with terminal control sequences, not plain lines
    assert "all operations" in screen and "create_ad" in screen and "ETA" in screen  # progress per type
    assert "ad account" in screen and "BUC type" in screen and "ads_management" in screen  # rate limits
    assert re.search(r"\d+ %", screen)  # usage percentage
    assert "Traceback" not in screen
    assert f"Job live-view: {tree_ops(6)} succeeded, 0 failed, 0 skipped" in screen
    assert json.loads(report.read_text())["counts"]["succeeded"] == tree_ops(6)


def test_a_throttled_run_says_which_account_which_buc_and_when_it_resumes(tmp_path: Path) -> None:
    # Throttle bursts (seeded): the account × use case is blocked for 60 virtual seconds = 0.1 s here.
    faults = "throttle=0.1,throttle_s=60"
    with simulator(
        "--tier", "standard_access", "--time-scale", "600", "--faults", faults, "--seed", "2"
    ) as sim:
        job = write_job(tmp_path / "t.yaml", "throttled", sim.act, tree_task(repeat=5))
        report_path, html_path = tmp_path / "r.json", tmp_path / "r.html"
        flags = ["--time-scale", "600", "--log-format", "json", "--report", str(report_path)]
        proc = run_cli(
            "run", str(job), "--graph-url", sim.url, *flags, "--report-html", str(html_path), token=sim.token
        )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    events = json_lines(proc.stdout)
    throttled = [e for e in events if e["event"] == "throttled"]
    assert throttled, "the seeded faults throttle this run"
    first = throttled[0]
    assert (first["account_id"], first["buc_type"], first["code"]) == (sim.act, "ads_management", 80004)
    assert first["resumes_at"].endswith("Z") and first["parked_s"] > 0
    # the same event, in a person's words: which account, which BUC type, when it resumes
    assert f"ad account {sim.act} (ads_management) throttled [Graph code 80004/2446079]" in first["message"]
    assert re.search(
        r"paused until \d\d:\d\d:\d\d \(in [\d.]+ s\); other accounts keep going", first["message"]
    )
    summary = next(e for e in events if e["event"] == "throttle_summary")
    assert f"×: ad account {sim.act} (ads_management)" in summary["message"]

    report = json.loads(report_path.read_text())
    assert report["throttle_events"] >= 1 and len(report["throttles"]) == len(throttled)
    assert report["throttles"][0]["account_id"] == sim.act and report["throttles"][0]["resumes_at"].endswith(
        "Z"
    )
    assert report["accounts"][0]["throttle_events"] == len(throttled)
    assert 'class="throttle"' in html_path.read_text()


def test_sigint_stops_writes_the_report_and_exits_3(tmp_path: Path) -> None:
    with simulator("--tier", "standard_access", "--latency-ms", "250") as sim:
        job = write_job(tmp_path / "long.yaml", "long-job", sim.act, tree_task(repeat=300))
        report_path, csv_path = tmp_path / "r.json", tmp_path / "r.csv"
        proc = start_cli(
            "run",
            str(job),
            "--graph-url",
            sim.url,
            "--log-format",
            "json",
            "--report",
            str(report_path),
            "--report-csv",
            str(csv_path),
            token=sim.token,
        )
        try:
            assert proc.stdout is not None
            while True:  # wait (bounded) until the first operation came back
                line = read_line(proc.stdout)
                assert line, "the run ended before it was interrupted"
                if json.loads(line)["event"] == "operation":
                    break
            proc.send_signal(signal.SIGINT)
            rest, err = finish(proc)
        finally:
            if proc.poll() is None:
                proc.kill()
        requests_served = sim.request_count()
    assert proc.returncode == 3, err
    events = {e["event"]: e for e in json_lines(rest)}
    assert events["interrupted"]["signal"] == "SIGINT"
    assert events["job_finished"]["exit_code"] == 3
    assert (
        "cannot be resumed" in events["resume_hint"]["message"]
        and "--journal" in events["resume_hint"]["message"]
    )

    report = json.loads(report_path.read_text())
    assert (
        report["status"] == "interrupted"
        and report["interrupted_by"] == "SIGINT"
        and report["exit_code"] == 3
    )
    done = sum(report["counts"].values())
    assert 0 < done < tree_ops(300)
    assert len(report["operations"]) == done
    assert report["unfinished"]["not_sent_estimate"] > 0
    assert report["unfinished"]["sent_without_outcome"] == []  # the batches in flight were answered
    assert report["http_requests"] == requests_served
    assert len(csv_path.read_text().splitlines()) == done + 1


@pytest.mark.skipif(cli_common.journal_class(resume=True) is None, reason="this version has no journal")
def test_an_interrupted_journaled_run_resumes_without_duplicates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with simulator("--tier", "standard_access", "--latency-ms", "150") as sim:
        job = write_job(tmp_path / "long.yaml", "journaled", sim.act, tree_task(repeat=30))
        journal, report_path = tmp_path / "jobs.db", tmp_path / "interrupted.json"
        proc = start_cli(
            "run",
            str(job),
            "--graph-url",
            sim.url,
            "--journal",
            str(journal),
            "--log-format",
            "json",
            "--report",
            str(report_path),
            token=sim.token,
        )
        try:
            assert proc.stdout is not None
            while json.loads(read_line(proc.stdout) or '{"event": "eof"}')["event"] not in (
                "operation",
                "eof",
            ):
                pass
            proc.send_signal(signal.SIGTERM)
            out, err = finish(proc)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 3, err
        hint = next(e for e in json_lines(out) if e["event"] == "resume_hint")
        assert hint["command"].startswith(f"bulk-engine run {job} --journal {journal}")
        # graceful: the batches in flight finished and were journaled; nothing was cancelled mid-request
        interrupted = json.loads(report_path.read_text())
        assert interrupted["unfinished"]["sent_without_outcome"] == []
        created = interrupted["kinds"].get("create_campaign", {}).get("succeeded", 0)
        assert 0 < sum(interrupted["counts"].values()) < tree_ops(30)
        assert len(sim.get("/__sim__/store?type=campaign")) == created

        resumed = run_cli(
            "resume", "journaled", "--journal", str(journal), "--graph-url", sim.url, token=sim.token
        )
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        assert f"Job journaled: {tree_ops(30)} succeeded, 0 failed, 0 skipped" in resumed.stdout
        assert "; 2 runs: " in resumed.stdout  # the interrupted run and this one, in all
        assert len(sim.get("/__sim__/store?type=campaign")) == 30  # exactly once
        assert len(sim.get("/__sim__/store?type=ad")) == 60

        before = sim.request_count()
        again = run_cli("run", str(job), "--graph-url", sim.url, "--journal", str(journal), token=sim.token)
        assert again.returncode == 0, again.stdout + again.stderr
        assert sim.request_count() == before  # everything answered from the journal
        assert "; 3 runs: " in again.stdout

        unknown = run_cli(
            "resume", "nope", "--journal", str(journal), "--graph-url", sim.url, token=sim.token
        )
        assert (
            unknown.returncode == 2
            and "has no job 'nope'" in unknown.stderr
            and "journaled" in unknown.stderr
        )


def test_a_refused_connection_fails_fast_naming_the_url(tmp_path: Path) -> None:
    """Nothing listening: a clear message within a couple of seconds, nothing sent, exit 1, reports written."""
    with socket.socket() as sock:  # a loopback port nothing listens on
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    job = write_job(tmp_path / "job.yaml", "nowhere", "act_1000000001", tree_task(repeat=2))
    report_path = tmp_path / "r.json"
    started = time.monotonic()
    text = run_cli("run", str(job), "--graph-url", url, "--report", str(report_path), token="t")
    as_json = run_cli("run", str(job), "--graph-url", url, "--log-format", "json", token="t")
    assert time.monotonic() - started < 20  # two runs; each used to retry for ~10 s
    assert text.returncode == 1 and as_json.returncode == 1, text.stdout + text.stderr
    assert f"cannot connect to {url} (connection refused) — is the simulator running?" in text.stdout
    assert "connection lost after sending" not in text.stdout + text.stderr
    event = next(e for e in json_lines(as_json.stdout) if e["event"] == "unreachable")
    assert event["url"] == url and event["reason"] == "connection refused"
    report = json.loads(report_path.read_text())
    assert report["status"] == "failed" and report["http_requests"] == 0
    assert report["unfinished"]["not_sent_estimate"] == tree_ops(2)


def test_a_second_signal_cancels_the_batches_in_flight(tmp_path: Path) -> None:
    """The first SIGINT waits for the batches on the wire; the second does not (their outcome is unknown)."""
    with simulator("--tier", "standard_access", "--latency-ms", "3000") as sim:
        job = write_job(tmp_path / "slow.yaml", "slow", sim.act, tree_task(repeat=20))
        report_path = tmp_path / "r.json"
        proc = start_cli(
            "run",
            str(job),
            "--graph-url",
            sim.url,
            "--log-format",
            "json",
            "--report",
            str(report_path),
            token=sim.token,
        )
        try:
            stdout = proc.stdout
            assert stdout is not None

            def wait_for(event: str, min_calls: int = 0) -> None:
                while True:
                    line = read_line(stdout)
                    assert line, f"the run ended before {event!r}"
                    data = json.loads(line)
                    if data["event"] == event and data.get("calls", 0) >= min_calls:
                        return

            wait_for("batch_sent", min_calls=2)  # a batch of operations (not a 1-call probe) is on the wire
            proc.send_signal(signal.SIGINT)
            wait_for("interrupted")
            proc.send_signal(signal.SIGINT)
            rest, err = finish(proc)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 3, err
    events = {e["event"]: e for e in json_lines(rest)}
    assert events["interrupted_hard"]["signal"] == "SIGINT"
    report = json.loads(report_path.read_text())
    assert report["status"] == "interrupted" and report["unfinished"]["sent_without_outcome"]
