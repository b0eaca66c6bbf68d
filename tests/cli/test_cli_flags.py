"""``bulk-engine run`` flags: --graph-url checks, --request-timeout, --dry-run=local|server, --idempotency-key,
and what a run says when no request got a Graph answer (HTML 502 pages vs nothing at all)."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from aiohttp import web
from cli_support import (
    Sim,
    json_lines,
    missing_status_task,
    run_cli,
    simulator,
    tree_ops,
    tree_task,
    write_job,
)

from bulk_engine import cli


# --- --graph-url and the other values, checked before anything else -------------------------------------
@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://127.0.0.1:99999", "invalid port '99999'"),
        ("http://127.0.0.1:abc", "invalid port 'abc'"),
        ("http://127.0.0.1:0", "port 0"),
        ("ftp://127.0.0.1:21", "must start with http:// or https://"),
        ("127.0.0.1:8765", "must start with http:// or https://"),
        ("http://", "has no host"),
        ("http://:8765", "has no host"),
        ("http://user:secret@127.0.0.1:8765", "must not carry a user name or password"),
        ("http://127.0.0.1:8765/?x=1", "must not have a query"),
        ("http://[::1", "not a valid URL"),
        ("http://127.0.0.1:8765 ", "without spaces"),
    ],
)
def test_a_bad_graph_url_exits_2_with_a_clear_message(
    url: str, says: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("META_ACCESS_TOKEN", "SOME-TOKEN-VALUE")
    job = write_job(tmp_path / "j.yaml", "url", "act_1000000001", missing_status_task(["1"]))
    assert cli.main(["run", str(job), "--graph-url", url, "--report", str(tmp_path / "r.json")]) == 2
    err = capsys.readouterr().err
    assert "argument --graph-url" in err and says in err and "Traceback" not in err
    assert not (tmp_path / "r.json").exists()  # refused before anything ran


def test_a_bad_graph_url_from_the_environment_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("META_GRAPH_URL", "http://127.0.0.1:70000")
    job = write_job(tmp_path / "j.yaml", "url", "act_1000000001", missing_status_task(["1"]))
    assert cli.main(["resume", "job", "--journal", str(tmp_path / "j.db")]) == 2
    assert cli.main(["run", str(job)]) == 2
    err = capsys.readouterr().err
    assert "(the value of $META_GRAPH_URL)" in err and "invalid port '70000'" in err


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (["--request-timeout", "0"], "argument --request-timeout: must be a finite number > 0"),
        (["--request-timeout", "-1"], "argument --request-timeout: must be >= 0"),
        (["--request-timeout", "nan"], "argument --request-timeout: must be >= 0"),
        (["--request-timeout", "inf"], "argument --request-timeout: must be a finite number > 0"),
        (["--request-timeout", "soon"], "argument --request-timeout: expected a number"),
        (["--dry-run=remote"], "argument --dry-run: expected local or server, got 'remote'"),
        (["--idempotency-key", "suffix"], "argument --idempotency-key: invalid choice: 'suffix'"),
    ],
)
def test_bad_flag_values_exit_2(
    flags: list[str], says: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job = write_job(tmp_path / "j.yaml", "flags", "act_1000000001", missing_status_task(["1"]))
    assert cli.main(["run", str(job), "--graph-url", "http://127.0.0.1:9", *flags]) == 2
    assert says in capsys.readouterr().err


def test_dry_run_before_the_job_file_says_how_to_write_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["run", "--dry-run", "job.yaml"]) == 2
    assert "put JOB_FILE before --dry-run" in capsys.readouterr().err


def test_dry_run_server_refuses_a_journal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    job = write_job(tmp_path / "j.yaml", "dry", "act_1000000001", missing_status_task(["1"]))
    code = cli.main(
        [
            "run",
            str(job),
            "--dry-run=server",
            "--journal",
            str(tmp_path / "j.db"),
            "--graph-url",
            "http://127.0.0.1:9",
        ]
    )
    assert code == 2 and "--dry-run=server cannot use --journal" in capsys.readouterr().err
    assert not (tmp_path / "j.db").exists()


# --- --dry-run=server against the simulator ----------------------------------------------------------------
def test_dry_run_server_asks_graph_with_validate_only_and_creates_nothing(tmp_path: Path) -> None:
    with simulator("--tier", "standard_access") as sim:
        existing = sim.get("/__sim__/store?type=campaign,adset,adcreative,ad")
        job = write_job(
            tmp_path / "d.yaml",
            "dry-server",
            sim.act,
            tree_task(repeat=2),
            missing_status_task(["120219999999999991"]),
        )
        report_path = tmp_path / "r.json"
        proc = run_cli(
            "run",
            str(job),
            "--graph-url",
            sim.url,
            "--dry-run=server",
            "--report",
            str(report_path),
            "--report-html",
            str(tmp_path / "r.html"),
            token=sim.token,
        )
        assert proc.returncode == 1, proc.stdout + proc.stderr  # Graph would refuse the missing id
        assert sim.request_count() > 0  # Graph was asked…
        assert sim.get("/__sim__/store?type=campaign,adset,adcreative,ad") == existing  # …and nothing stored
    report = json.loads(report_path.read_text())
    assert report["dry_run"] == "server" and report["status"] == "completed"
    states = {op["op_id"]: op["state"] for op in report["operations"]}
    assert len(states) == tree_ops(2) + 1
    accepted = [op for op in report["operations"] if op["state"] == "succeeded"]
    assert accepted and all(op["result"] == {"success": True} and op["graph_id"] is None for op in accepted)
    failed = [op for op in report["operations"] if op["state"] == "failed"]
    assert [op["error"]["code"] for op in failed] == [100]  # what Graph would refuse, with its error
    assert "dry run on the server" in proc.stdout
    assert "dry run on the server: Graph would refuse some" in (tmp_path / "r.html").read_text()


def test_a_bare_dry_run_is_local_and_so_is_dry_run_local(shared_sim: Sim, tmp_path: Path) -> None:
    job = write_job(tmp_path / "d.yaml", "dry-local", shared_sim.act, tree_task(repeat=1))
    before = shared_sim.request_count()
    for flag in ("--dry-run", "--dry-run=local"):
        proc = run_cli("run", str(job), "--graph-url", shared_sim.url, flag, token=None)
        assert proc.returncode == 0 and "dry run, nothing is sent" in proc.stdout, proc.stderr
    assert shared_sim.request_count() == before


# --- --idempotency-key -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("keys", "suffix", "labels"), [("name", True, False), ("adlabels", False, True), ("off", False, False)]
)
def test_idempotency_key_says_where_created_objects_carry_their_key(
    keys: str, suffix: bool, labels: bool, shared_sim: Sim, tmp_path: Path
) -> None:
    job = write_job(
        tmp_path / "k.yaml", f"keys-{keys}", shared_sim.act, tree_task(repeat=1, key=f"keys{keys}")
    )
    proc = run_cli(
        "run", str(job), "--graph-url", shared_sim.url, "--idempotency-key", keys, token=shared_sim.token
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    campaigns = [
        c
        for c in shared_sim.get("/__sim__/store?type=campaign")
        if str(c.get("name", "")).startswith("Spring")
    ]
    mine = [c for c in campaigns if ("[be:" in c["name"]) == suffix and bool(c.get("adlabels")) == labels]
    assert mine, campaigns[-3:]


# --- no Graph answer: HTML 502 pages are answers, a silent server is not ---------------------------------
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@contextmanager
def hostile_server(handler: Handler) -> Iterator[str]:
    """An aiohttp server on 127.0.0.1 answering every request with ``handler``, in its own thread."""
    loop = asyncio.new_event_loop()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    started = threading.Event()
    stop = asyncio.Event()

    async def serve() -> None:
        await runner.setup()
        await web.SockSite(runner, sock).start()
        started.set()
        await stop.wait()
        await runner.cleanup()

    thread = threading.Thread(target=lambda: loop.run_until_complete(serve()), daemon=True)
    thread.start()
    assert started.wait(10)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()


async def _html_502(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(
        status=502, text="<html><body><h1>502 Bad Gateway</h1></body></html>", content_type="text/html"
    )


async def _never_answers(request: web.Request) -> web.Response:
    await request.read()
    await asyncio.Event().wait()  # holds the request until the client gives up (or the server stops)
    raise AssertionError("unreachable")


def _run_against(url: str, tmp_path: Path) -> tuple[int, list[dict[str, object]]]:
    job = write_job(tmp_path / "h.yaml", "hostile", "act_1000000001", missing_status_task(["1202", "1203"]))
    proc = run_cli(
        "run",
        str(job),
        "--graph-url",
        url,
        "--request-timeout",
        "0.3",
        "--time-scale",
        "1000",  # the retries' backoff passes 1000 times as fast
        "--log-format",
        "json",
        token="SOME-TOKEN-VALUE",
        timeout=60,
    )
    return proc.returncode, json_lines(proc.stdout)


def test_html_502_pages_are_answers_not_a_transport_failure(tmp_path: Path) -> None:
    with hostile_server(_html_502) as url:
        code, events = _run_against(url, tmp_path)
    assert code == 1
    messages = " ".join(str(e.get("message")) for e in events)
    assert "failed in transport" not in messages
    (said,) = [e for e in events if e["event"] == "no_graph_answer"]
    assert "answered" in str(said["message"]) and "HTTP 502" in str(said["message"])
    assert said["http_statuses"] == {"502": said["http_statuses"]["502"]} and said["unanswered"] == 0
    assert not [e for e in events if e["event"] == "unreachable"]


def test_a_server_that_never_answers_failed_in_transport(tmp_path: Path) -> None:
    with hostile_server(_never_answers) as url:
        code, events = _run_against(url, tmp_path)
    assert code == 1
    (said,) = [e for e in events if e["event"] == "unreachable"]
    assert "every request failed in transport" in str(said["message"])
    operations = [e for e in events if e["event"] == "operation"]
    assert len(operations) == 2 and all(e["state"] == "failed" for e in operations)
    assert not [e for e in events if e["event"] == "no_graph_answer"]
