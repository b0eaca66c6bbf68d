"""In-process: ``Waiting`` events (no silent waits) in the recorder, the three views and the run summary.

Synthetic events on injected clocks (``now`` for the recorder's monotonic time, ``wall`` for clock times):
nothing sleeps, time passes by moving the fake clocks.
"""

from __future__ import annotations

import io
import json
import time
from typing import Any

from rich.console import Console

from bulk_engine import Credentials, EngineConfig
from bulk_engine.execution.events import BatchDone, BatchSent, Waiting
from bulk_engine.reporting import JsonView, LineView, LiveView, RunRecorder, RunSession, render_html
from bulk_engine.scrub import Scrubber

WALL0 = 1_700_000_000.0
PACING = "pacing: usage 97 % at the 97 % ceiling"
RESTORED = "parked at start (restored from the journal)"
THROTTLED = "throttled (code 4): regain in 19 min"


class FakeTime:
    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


class Clocks:
    """The recorder's two clocks, moved together."""

    def __init__(self) -> None:
        self.mono = FakeTime(100.0)
        self.wall = FakeTime(WALL0)

    def advance(self, seconds: float) -> None:
        self.mono.now += seconds
        self.wall.now += seconds


def _recorder(clocks: Clocks, time_scale: float = 1.0) -> RunRecorder:
    return RunRecorder(now=clocks.mono, wall=clocks.wall, time_scale=time_scale)


def _hhmmss(epoch: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(epoch))


def _three_waits(rec: RunRecorder) -> None:
    """One wait per scope: a pair paces 130 s, an account is parked 45 s, the app waits 19 min."""
    rec.observe(BatchSent("act_1", "ads_management", 3, ("a", "b", "c")))
    rec.observe(BatchDone("act_1", "ads_management", 3, ("a", "b", "c"), 200, 97.0, 0.0, 2))
    rec.observe(Waiting("pair", "act_1", "ads_management", PACING, 97.0, 130.0))
    rec.observe(Waiting("account", "act_2", None, RESTORED, None, 45.0))
    rec.observe(Waiting("app", None, None, THROTTLED, 100.0, 1140.0))


def _live_screen(rec: RunRecorder, scrubber: Scrubber | None = None) -> str:
    """What a live view leaves on screen (a non-terminal console prints the final state when it stops)."""
    out = io.StringIO()
    view = LiveView(rec, "job", Console(file=out, width=200), scrubber=scrubber)
    view.start()
    view.tick()
    view.stop()
    return out.getvalue()


# --- the recorder -----------------------------------------------------------------------------------------
def test_the_recorder_keeps_the_latest_wait_per_scope_until_it_ends() -> None:
    clocks = Clocks()
    rec = _recorder(clocks)
    _three_waits(rec)
    assert set(rec.waits) == {
        ("pair", "act_1", "ads_management"),
        ("account", "act_2", None),
        ("app", None, None),
    }
    # widest scope first
    assert [(w.scope, w.account_id, w.buc_type) for w in rec.waiting()] == [
        ("app", None, None),
        ("account", "act_2", None),
        ("pair", "act_1", "ads_management"),
    ]
    pair = rec.waits[("pair", "act_1", "ads_management")]
    assert (pair.reason, pair.usage_pct, pair.remaining(clocks.mono.now)) == (PACING, 97.0, 130.0)
    assert pair.resumes_at_epoch == WALL0 + 130.0
    assert rec.pairs[("act_1", "ads_management")].wait is pair  # the pair's own view carries its waits
    # the longest wait holding a pair: its own, its account's or the app's
    assert rec.wait_for("act_1", "ads_management") is rec.waits[("app", None, None)]

    clocks.advance(50)  # the account's 45 s are over
    assert [w.scope for w in rec.waiting()] == ["app", "pair"]
    clocks.advance(100)  # so are the pair's 130 s
    assert [w.scope for w in rec.waiting()] == ["app"]
    clocks.advance(1000)
    assert rec.waiting() == [] and rec.wait_for("act_1", "ads_management") is None


def test_waits_are_counted_per_scope_without_counting_an_overlap_twice() -> None:
    clocks = Clocks()
    rec = _recorder(clocks, time_scale=10.0)  # engine seconds ÷ 10 = wall seconds
    rec.observe(Waiting("pair", "act_1", "ads_management", PACING, 97.0, 300.0))  # 30 wall s
    assert rec.waiting()[0].remaining(clocks.mono.now) == 30.0
    clocks.advance(10)
    # a new estimate for the same wait: it replaces the old one (same episode), now 20 s from here
    rec.observe(
        Waiting("pair", "act_1", "ads_management", "pacing: usage 99 % at the 97 % ceiling", 99.0, 200.0)
    )
    clocks.advance(40)  # that wait is over (10 + 20 s waited)
    rec.observe(Waiting("pair", "act_1", "ads_management", PACING, 97.0, 100.0))  # a second episode: 10 s
    clocks.advance(5)  # the report is written mid-wait: 5 s of it count
    (summary,) = rec.waits_summary()
    assert summary == {
        "scope": "pair",
        "account_id": "act_1",
        "buc_type": "ads_management",
        "waits": 2,
        "waited_s_total": 35.0,
        "last_reason": PACING,
        "last_usage_pct": 97.0,
    }
    account = rec.pairs[("act_1", "ads_management")].to_dict(clocks.mono.now)
    assert account["waits"] == 2 and account["waited_s_total"] == 35.0
    # a wait announced as over (0 s) ends the current one and counts no new episode
    rec.observe(Waiting("pair", "act_1", "ads_management", "room again", 50.0, 0.0))
    assert rec.waiting() == [] and rec.waits_summary()[0]["waits"] == 2


# --- the views ------------------------------------------------------------------------------------------
def test_the_line_view_prints_one_line_per_wait_with_scope_reason_usage_and_eta() -> None:
    clocks = Clocks()
    rec = _recorder(clocks)
    out = io.StringIO()
    LineView(rec, "job", out)
    _three_waits(rec)
    lines = [line for line in out.getvalue().splitlines() if "WAITING" in line]
    assert len(lines) == 3
    pair, account, app = lines
    assert (
        "WAITING [pair] ad account act_1 (ads_management) waits 2 min 10 s, until "
        f"{_hhmmss(WALL0 + 130)}: {PACING}"
    ) in pair
    assert (
        f"WAITING [account] ad account act_2 (every use case) waits 45 s, until {_hhmmss(WALL0 + 45)}: "
        f"{RESTORED}"
    ) in account
    # the usage is said when the reason does not give it
    assert (
        f"WAITING [app] all accounts (app) waits 19 min 00 s, until {_hhmmss(WALL0 + 1140)}: {THROTTLED} "
        "(usage 100 %)"
    ) in app

    view = LineView(rec, "job", out2 := io.StringIO(), progress_every_s=1.0)
    clocks.advance(10)
    view.tick()  # the progress line says which pair is waiting, and for how long
    assert "act_1 ads_management 97% (waiting 1130 s)" in out2.getvalue()


def test_the_json_view_emits_a_waiting_record_and_current_waits_in_progress() -> None:
    clocks = Clocks()
    rec = _recorder(clocks)
    out = io.StringIO()
    view = JsonView(rec, "job", out, progress_every_s=1.0)
    _three_waits(rec)
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    waiting = [r for r in records if r["event"] == "waiting"]
    assert [(r["scope"], r["account_id"], r["buc_type"]) for r in waiting] == [
        ("pair", "act_1", "ads_management"),
        ("account", "act_2", None),
        ("app", None, None),
    ]
    pair = waiting[0]
    assert pair["reason"] == PACING and pair["usage_pct"] == 97.0 and pair["wait_s"] == 130.0
    assert pair["resumes_at"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(WALL0 + 130))
    assert pair["message"].startswith("ad account act_1 (ads_management) waits 2 min 10 s, until ")
    assert waiting[1]["usage_pct"] is None and waiting[1]["wait_s"] == 45.0
    assert waiting[2]["message"].startswith("all accounts (app) waits 19 min 00 s")
    assert all(r["ts"].endswith("Z") and r["t"] == 0.0 for r in waiting)

    def progress() -> list[dict[str, Any]]:
        view.tick()
        last = json.loads(out.getvalue().splitlines()[-1])
        assert last["event"] == "progress"
        return list(last["waiting"])

    clocks.advance(60)
    current = progress()
    assert [(w["scope"], w["remaining_s"]) for w in current] == [("app", 1080.0), ("pair", 70.0)]
    clocks.advance(1100)
    assert progress() == []  # every wait is over


def test_the_live_view_shows_a_line_per_current_wait_and_drops_ended_ones() -> None:
    clocks = Clocks()
    rec = _recorder(clocks)
    _three_waits(rec)
    screen = _live_screen(rec)
    assert "waiting  all accounts (app)" in screen and THROTTLED in screen
    assert f"· resumes in 19 min 00 s ({_hhmmss(WALL0 + 1140)})" in screen
    assert "waiting  act_2 · every use case" in screen and RESTORED in screen
    assert "resumes in 45 s" in screen
    assert "waiting  act_1 · ads_management" in screen and PACING in screen
    assert f"· resumes in 2 min 10 s ({_hhmmss(WALL0 + 130)})" in screen
    # the pairs table says the pair is held, by the longest wait that holds it (the app's)
    assert f"waiting 19 min 00 s, until {_hhmmss(WALL0 + 1140)}" in screen

    clocks.advance(60)  # the account's wait is over; the others count down
    screen = _live_screen(rec)
    assert "act_2" not in screen and RESTORED not in screen
    assert "resumes in 70 s" in screen and "resumes in 18 min 00 s" in screen
    clocks.advance(1100)
    screen = _live_screen(rec)
    assert not any(line.startswith("waiting") for line in screen.splitlines()) and "resumes in" not in screen
    assert "pacing: waiting for quota" in screen  # the table's own guess for an idle pair near its ceiling


def test_wait_lines_go_through_the_scrubber() -> None:
    """Waits carry no secrets; if a reason ever quoted one, every view would still redact it."""
    secret = "EAAB-not-a-real-token-0123456789"
    scrubber = Scrubber((secret,))
    clocks = Clocks()
    rec = _recorder(clocks)
    lines, records = io.StringIO(), io.StringIO()
    LineView(rec, "job", lines, scrubber=scrubber)
    JsonView(rec, "job", records, scrubber=scrubber)
    rec.observe(Waiting("pair", "act_1", "ads_management", f"odd reason {secret}", 90.0, 30.0))
    screen = _live_screen(rec, scrubber)
    for text in (lines.getvalue(), records.getvalue(), screen):
        assert "odd reason [redacted]" in text and secret not in text


# --- the summary and the reports --------------------------------------------------------------------------
def test_the_run_summary_and_the_reports_say_how_long_each_scope_waited() -> None:
    clocks = Clocks()
    rec = _recorder(clocks)
    out = io.StringIO()
    config = EngineConfig(credentials=Credentials(access_token="t0ken"), graph_url="http://127.0.0.1:1")
    session = RunSession(config=config, job_id="waits", title="waits", log_format="json", stream=out)
    session.recorder, session.view = rec, JsonView(rec, "waits", out, scrubber=session.scrubber)
    _three_waits(rec)
    clocks.advance(200)  # the pair's and the account's waits are over, the app's runs on
    session.report = session.build_report(None)
    session.finish()

    report = session.report
    assert [(w["scope"], w["waits"], w["waited_s_total"]) for w in report["waits"]] == [
        ("app", 1, 200.0),
        ("account", 1, 45.0),
        ("pair", 1, 130.0),
    ]
    (account,) = report["accounts"]
    assert (account["account_id"], account["waits"], account["waited_s_total"]) == ("act_1", 1, 130.0)

    summaries = [json.loads(line) for line in out.getvalue().splitlines()]
    messages = [s["message"] for s in summaries if s["event"] == "wait_summary"]
    assert messages == [
        f"  waited 1×: all accounts (app), 3 min 20 s in all; last: {THROTTLED}",
        f"  waited 1×: ad account act_2 (every use case), 45 s in all; last: {RESTORED}",
        f"  waited 1×: ad account act_1 (ads_management), 2 min 10 s in all; last: {PACING}",
    ]

    page = render_html(report)
    assert "<th>waited s</th>" in page and '<td class="n">130.0</td>' in page
