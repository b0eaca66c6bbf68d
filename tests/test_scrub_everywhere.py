"""Every output is scrubbed by one scrubber (issue "Exactly-once under any answer", item 8).

Against :class:`scrub_echo.EchoGraph`, a server whose every error message echoes the request's
``access_token`` and ``appsecret_proof`` (raw and percent-encoded): (a) ``bulk-engine run`` with JSON and
text logs, the three reports and a journal; (b) the library with a DEBUG log capture and the CLI's own
event serialisation; (c) ``repr`` of the configuration and of the scrubber. Plus the scrubber's contract.
"""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import traceback
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import pytest
import yaml
from engine_support import status_op
from rich.console import Console
from scrub_echo import APP_SECRET, TOKEN, EchoGraph, assert_no_leak

from bulk_engine import BulkEngine, Credentials, EngineConfig, Operation, RetryConfig, cli
from bulk_engine.persistence import codec
from bulk_engine.reporting import LiveView, RunRecorder, RunSession, make_view, render_csv, render_html
from bulk_engine.reporting.report import redact
from bulk_engine.scrub import REDACTED, Scrubber, ScrubFilter, scrub, scrubbing_logs

ROOT = Path(__file__).resolve().parents[1]
ACT = "act_1000000001"
IDS = ["120210000000000001", "120210000000000002", "120210000000000003"]
CREDS = Credentials(access_token=TOKEN, app_secret=APP_SECRET)
PROOF = str(CREDS.appsecret_proof())
SECRETS = (TOKEN, APP_SECRET, PROOF)


# --- the scrubber ----------------------------------------------------------------------------------------
def test_secrets_are_the_token_the_app_secret_and_the_proof() -> None:
    assert set(CREDS.secrets()) == set(SECRETS) and len(PROOF) == 64
    assert Credentials(access_token="t").secrets() == ("t",)


def test_every_spelling_is_replaced_in_one_pass() -> None:
    s = Scrubber(["EAAB/se+cret==", None, ""])
    text = (
        "a EAAB/se+cret== b EAAB%2Fse%2Bcret%3D%3D c EAAB%2fse%2bcret%3d%3d d EAAB/se%2Bcret%3D%3D "
        'e "EAAB\\/se+cret==" f'
    )
    assert s(text) == f'a {REDACTED} b {REDACTED} c {REDACTED} d {REDACTED} e "{REDACTED}" f'
    # "[redacted]" is never rescanned, even for a secret it contains: scrubbing twice changes nothing
    odd = Scrubber(["dacted", "redact"])
    assert odd.text("redacted") == REDACTED and odd.text(odd.text("redacted")) == REDACTED
    assert s.text("") == "" and Scrubber([]).text("EAAB/se+cret==") == "EAAB/se+cret=="


def test_json_like_values_keys_included() -> None:
    s = Scrubber([TOKEN])
    value = {TOKEN: [f"x{TOKEN}y", (TOKEN, 3, None)], "n": 1.5, "ok": True}
    assert s.scrub_value(value) == {REDACTED: [f"x{REDACTED}y", (REDACTED, 3, None)], "n": 1.5, "ok": True}
    assert json.loads(s.dumps({"obj": ValueError(TOKEN)})) == {"obj": REDACTED}
    assert redact(value, [TOKEN]) == s.scrub_value(value)  # the report's old name, same scrubber


def test_cut_copies_of_a_secret_are_scrubbed() -> None:
    """Messages get truncated on the way out (the engine keeps 500 characters of a Graph message)."""
    s = Scrubber([TOKEN])
    assert s(f"reason: token={TOKEN[:40]}") == f"reason: token={REDACTED}"
    assert s(f"{quote_plus(TOKEN)[:30]}… (148 chars)") == f"{REDACTED}… (148 chars)"
    assert s(f"x {TOKEN[:7]} y") == f"x {TOKEN[:7]} y"  # below MIN_PARTIAL: not recognised as the token
    assert s(TOKEN[:20] + TOKEN) == REDACTED * 2  # a cut copy, then the whole token
    overlapping = Scrubber(["abcdefghijkl", "ghijklmnopqr"])
    assert overlapping("<abcdefghijklmnopqr>") == f"<{REDACTED}>"  # overlapping hits merge


def test_secrets_shorter_than_six_characters_are_no_credential() -> None:
    """Not scrubbed: a token "t" would shred every output, report keys included (see bulk_engine.scrub)."""
    assert scrub("http://x started", ["t", "ttp", "x st"]) == "http://x started"
    assert scrub("id=abcdef-42", ["abcdef"]) == f"id={REDACTED}-42"
    assert len(Credentials(access_token="t", app_secret="s").secrets()) == 3  # the proof: 64 characters
    assert Scrubber(Credentials(access_token="t", app_secret="s").secrets())


def test_the_journal_codec_uses_the_same_scrubber() -> None:
    assert codec.Scrubber is Scrubber and codec.REDACTED == REDACTED and codec.scrub is scrub


def test_log_filter_scrubs_message_arguments_and_traceback() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.addFilter(ScrubFilter(Scrubber(SECRETS)))
    log = logging.getLogger("bulk_engine.test_scrub_filter")
    log.addHandler(handler)
    log.propagate = False
    try:
        log.warning("answer: %s", {"next": f"https://g/?access_token={TOKEN}"})
        try:
            raise RuntimeError(f"Graph said {PROOF}")
        except RuntimeError:
            log.exception("while sending %s", APP_SECRET, stack_info=True)
    finally:
        log.removeHandler(handler)
        log.propagate = True
    text = stream.getvalue()
    assert_no_leak("log text", text, *SECRETS)
    assert "RuntimeError: Graph said [redacted]" in text and "Traceback" in text and "Stack (most" in text


def test_scrubbing_logs_reaches_the_handlers_of_ancestors(caplog: pytest.LogCaptureFixture) -> None:
    class Raw(logging.Handler):
        """A formatter of its own that renders ``exc_info`` itself (as a JSON log handler would)."""

        def __init__(self) -> None:
            super().__init__(logging.DEBUG)
            self.lines: list[str] = []

        def emit(self, record: logging.LogRecord) -> None:
            tb = "".join(traceback.format_exception(*record.exc_info)) if record.exc_info else ""
            self.lines.append(json.dumps({"msg": record.getMessage(), "exc": record.exc_text or tb}))

    raw = Raw()
    root = logging.getLogger()
    root.addHandler(raw)
    caplog.set_level(logging.DEBUG)
    try:
        with scrubbing_logs(Scrubber(SECRETS)):
            try:
                raise ValueError(TOKEN)
            except ValueError:
                logging.getLogger("bulk_engine.runner").exception("failed with %s", PROOF)
        logging.getLogger("bulk_engine.runner").debug("after: %s", "plain")
    finally:
        root.removeHandler(raw)
    assert len(raw.lines) == 2 and "[redacted]" in raw.lines[0]
    assert_no_leak("handler output", "\n".join(raw.lines) + caplog.text, *SECRETS)
    assert all(not any(isinstance(f, ScrubFilter) for f in h.filters) for h in root.handlers)


def test_live_view_lines_are_scrubbed_before_markup() -> None:
    out = io.StringIO()
    view = LiveView(RunRecorder(), f"run → {TOKEN}", Console(file=out, width=300), scrubber=Scrubber(SECRETS))
    view.message(f"the run failed: {TOKEN} / {PROOF}", level="error")
    assert "[redacted] / [redacted]" in out.getvalue() and view.title == f"run → {REDACTED}"
    assert_no_leak("live view", out.getvalue(), *SECRETS)


# --- (c) reprs -----------------------------------------------------------------------------------------------
def test_reprs_leak_nothing() -> None:
    config = EngineConfig(credentials=CREDS, graph_url="http://127.0.0.1:1")
    scrubber = Scrubber(config.credentials.secrets())
    texts = [repr(config), str(config), repr(CREDS), str(CREDS), config.model_dump_json(), repr(scrubber)]
    texts.append(repr(ScrubFilter(scrubber)))
    for text in texts:
        assert_no_leak("repr", text, *SECRETS)
    assert repr(scrubber) == "Scrubber(3 secrets)"


# --- (a) the command line -------------------------------------------------------------------------------------
def _cli(*args: str, timeout: float = 90.0) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("META_")}
    env.update(PYTHONUNBUFFERED="1", COLUMNS="120", META_ACCESS_TOKEN=TOKEN, META_APP_SECRET=APP_SECRET)
    return subprocess.run(
        [sys.executable, "-m", "bulk_engine", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_cli_run_against_an_echoing_server_leaks_nothing(tmp_path: Path, log_format: str) -> None:
    job = tmp_path / "job.yaml"
    job.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "job_id": f"echo-{log_format}",
                "account_id": ACT,
                "tasks": [{"type": "status", "key": "pause", "status": "PAUSED", "ids": IDS}],
            }
        )
    )
    reports = {ext: tmp_path / f"r.{ext}" for ext in ("json", "csv", "html")}
    journal = tmp_path / "journal.db"
    with EchoGraph() as graph:
        proc = _cli(
            "run",
            str(job),
            "--graph-url",
            graph.url,
            "--log-format",
            log_format,
            "--journal",
            str(journal),
            "--report",
            str(reports["json"]),
            "--report-csv",
            str(reports["csv"]),
            "--report-html",
            str(reports["html"]),
        )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert graph.seen and all(seen == (TOKEN, PROOF) for seen in graph.seen)  # the proof was sent

    outputs = {"stdout": proc.stdout, "stderr": proc.stderr}
    outputs |= {path.name: path.read_text(encoding="utf-8") for path in reports.values()}
    journal_files = sorted(tmp_path.glob("journal.db*"))
    assert journal_files
    outputs |= {path.name: path.read_bytes().decode("latin-1") for path in journal_files}
    for where, text in outputs.items():
        assert_no_leak(where, text, *SECRETS)

    report = json.loads(outputs["r.json"])
    assert report["counts"]["failed"] == len(IDS)
    errors = [op["error"] for op in report["operations"]]
    assert all(REDACTED in e["message"] and REDACTED in e["error_user_msg"] for e in errors)
    assert report["retries"] >= 1  # the first answers were transient: retry lines carried the echo too
    if log_format == "json":
        events = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
        failed = [e for e in events if e["event"] == "operation" and e["state"] == "failed"]
        assert len(failed) == len(IDS) and all(REDACTED in e["error_message"] for e in failed)
        logged = [e for e in events if e["event"] == "log"]
        assert any(REDACTED in e["message"] for e in logged)  # the malformed usage header, quoted
    else:
        assert "retry " in proc.stdout and REDACTED in proc.stdout


def test_cli_scrubs_an_unexpected_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    def boom(args: Any) -> int:
        raise RuntimeError(f"server said access_token={TOKEN}")

    monkeypatch.setenv("META_ACCESS_TOKEN", TOKEN)
    monkeypatch.setenv("META_APP_SECRET", APP_SECRET)
    monkeypatch.setitem(cli.COMMANDS, "validate", cli.Command("x", cli.COMMANDS["validate"].configure, boom))
    assert cli.main(["validate", str(tmp_path / "job.yaml")]) == 1
    err = capsys.readouterr().err
    assert "RuntimeError: server said access_token=[redacted]" in err and "Traceback" in err
    assert_no_leak("stderr", err, *SECRETS)


# --- (b) the library -------------------------------------------------------------------------------------------
class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def _ops() -> list[Operation]:
    return [status_op(f"pause{i}", ACT, object_id) for i, object_id in enumerate(IDS)]


async def _run_library(graph: EchoGraph, capture: _Capture) -> tuple[RunSession, io.StringIO, Any]:
    config = EngineConfig(
        credentials=CREDS,
        graph_url=graph.url,
        seed=3,
        retry=RetryConfig(max_attempts=3, base_delay_s=0.0, max_delay_s=0.0),
    )
    stream = io.StringIO()
    # the CLI's own serialisation: a run session's recorder and JSON view, its report
    session = RunSession(config=config, job_id="echo-lib", title="lib", log_format="json", stream=stream)
    lines = io.StringIO()
    make_view(session.recorder, "lines", log_format="text", stream=lines, scrubber=session.scrubber)
    root = logging.getLogger()
    previous = root.level
    root.addHandler(capture)
    root.setLevel(logging.DEBUG)
    try:
        with scrubbing_logs(Scrubber(config.credentials.secrets())):
            async with BulkEngine(config, observer=session.recorder.observe) as engine:
                result = await engine.run(_ops())
    finally:
        root.removeHandler(capture)
        root.setLevel(previous)
    stream.write(lines.getvalue())
    return session, stream, result


async def test_library_logs_events_and_reports_leak_nothing() -> None:
    capture = _Capture()
    with EchoGraph() as graph:
        session, stream, result = await _run_library(graph, capture)
    assert result.counts["failed"] == len(IDS) and graph.seen[0] == (TOKEN, PROOF)
    report = session.build_report(result)
    outputs = {
        "logs": "\n".join(capture.lines),
        "events": stream.getvalue(),
        "report": json.dumps(report),
        "csv": render_csv(report),
        "html": render_html(report),
    }
    for where, text in outputs.items():
        assert_no_leak(where, text, *SECRETS)
    assert REDACTED in outputs["events"] and REDACTED in outputs["csv"]
    # (whether the engine logged the echoed usage header depends on test order: that warning is once per
    # process; test_scrub_filter_* check the log path itself)


async def test_the_engine_itself_logs_no_echoed_error_text() -> None:
    """Without any filter: the engine's own records never quote a per-entry Graph error."""
    capture = _Capture()
    root = logging.getLogger()
    previous = root.level
    with EchoGraph(echo_header=False) as graph:
        config = EngineConfig(
            credentials=CREDS,
            graph_url=graph.url,
            retry=RetryConfig(max_attempts=2, base_delay_s=0.0, max_delay_s=0.0),
        )
        root.addHandler(capture)
        root.setLevel(logging.DEBUG)
        try:
            async with BulkEngine(config) as engine:
                result = await engine.run(_ops())
        finally:
            root.removeHandler(capture)
            root.setLevel(previous)
    assert result.counts["failed"] == len(IDS)
    assert_no_leak("raw engine logs", "\n".join(capture.lines), *SECRETS)
