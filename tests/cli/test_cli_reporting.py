"""In-process: the engine observer hook, the recorder's time series, and the report writers."""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path
from typing import Any

from bulk_engine import BulkEngine, Credentials, EngineConfig, Operation, OpKind, ScaledClock
from bulk_engine.execution.events import (
    BatchDone,
    BatchSent,
    EngineEvent,
    OperationFinished,
    RetryScheduled,
    Throttled,
)
from bulk_engine.reporting import LineView, RunRecorder, redact, render_csv, render_html
from bulk_engine.reporting.advice import auth_advice, unreachable
from bulk_engine.reporting.recorder import MAX_SAMPLES
from bulk_engine.reporting.report import failures_by_code
from bulk_engine.results import Outcome, OutcomeState
from bulk_engine.simulator import FaultConfig, SimulatorConfig, SimulatorServer


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _campaigns(act: str, n: int) -> list[Operation]:
    return [
        Operation(
            op_id=f"c{i}",
            method="POST",
            path=f"{act}/campaigns",
            account_id=act,
            kind=OpKind.CREATE_CAMPAIGN,
            params={
                "name": f"C{i}",
                "objective": "OUTCOME_TRAFFIC",
                "special_ad_categories": [],
                "status": "PAUSED",
            },
        )
        for i in range(n)
    ]


async def test_the_engine_reports_batches_throttles_retries_and_outcomes_to_its_observer() -> None:
    # Regain times come in minutes: a scaled clock on both sides makes a 1-minute park last 0.1 s.
    faults = FaultConfig(transient_rate=0.2, throttle_burst_rate=0.1, throttle_burst_s=60.0)
    config = SimulatorConfig(access_tier="standard_access", faults=faults, seed=3, time_scale=600)
    events: list[EngineEvent] = []
    async with SimulatorServer(config) as sim:
        info = sim.info()
        act = info["ad_account_ids"][0]
        engine_config = EngineConfig(
            credentials=Credentials(access_token=info["access_token"]), graph_url=sim.url, seed=1
        )

        def observer(event: EngineEvent) -> None:
            events.append(event)
            raise RuntimeError("a broken observer must not break the job")

        async with BulkEngine(engine_config, clock=ScaledClock(600), observer=observer) as engine:
            result = await engine.run(_campaigns(act, 60))
    assert result.counts["succeeded"] + result.counts["failed"] == 60
    finished = [e for e in events if isinstance(e, OperationFinished)]
    assert sorted(e.outcome.op_id for e in finished) == sorted(o.op_id for o in result.outcomes)
    sent = [e for e in events if isinstance(e, BatchSent)]
    done = [e for e in events if isinstance(e, BatchDone)]
    assert len(sent) == len(done) == result.http_requests
    assert sum(e.calls for e in sent) == result.graph_calls
    assert all(e.account_id == act and e.buc_type == "ads_management" for e in sent + done)
    assert any(e.usage_pct is not None for e in done) and all(e.http_status == 200 for e in done)
    throttles = [e for e in events if isinstance(e, Throttled)]
    assert throttles and throttles[0].code == 80004 and throttles[0].parked_s > 0
    retries = [e for e in events if isinstance(e, RetryScheduled)]
    assert len(retries) == result.retries > 0
    assert retries[0].attempt >= 1 and retries[0].reason


def _outcome(op_id: str, state: OutcomeState = OutcomeState.SUCCEEDED, kind: str = "create_ad") -> Outcome:
    return Outcome(
        op_id, state, "act_1", kind, result={"id": "1"} if state is OutcomeState.SUCCEEDED else None
    )


def test_the_recorder_folds_events_and_keeps_a_bounded_time_series() -> None:
    clock = FakeTime()
    wall = FakeTime()
    rec = RunRecorder(now=clock, wall=wall, time_scale=10.0)
    rec.expect({"create_ad": 3})
    rec.observe(BatchSent("act_1", "ads_management", 3, ("a", "b", "c")))
    clock.now += 1
    rec.observe(Throttled("act_1", "ads_management", 600.0, 80004, 2446079, 97.0))  # 600 engine s = 60 wall s
    rec.observe(BatchDone("act_1", "ads_management", 3, ("a", "b", "c"), 200, 97.0, 600.0, 1))
    rec.observe(OperationFinished(_outcome("a")))
    rec.tick(force=True)
    pair = rec.pairs[("act_1", "ads_management")]
    assert pair.usage_pct == pair.peak_pct == 97.0 and pair.throttles == 1
    assert [p.key for p in rec.parked()] == ["act_1/ads_management"]
    assert rec.throttles[0].parked_s == 60.0 and rec.throttles[0].to_dict()["resumes_at"].endswith("Z")
    assert rec.unsettled == {"b": "act_1", "c": "act_1"}  # sent, no outcome yet
    assert rec.samples[-1].parked == ("act_1/ads_management",) and rec.samples[-1].ops_done == 1
    clock.now += 61
    assert rec.parked() == []
    for _ in range(3 * MAX_SAMPLES):
        clock.now += rec.interval_s
        rec.tick()
    assert len(rec.samples) <= MAX_SAMPLES + 1
    assert rec.samples[0].t == 0.0 and rec.samples[-1].t == clock.now - rec.started


def test_the_line_view_says_who_is_throttled_and_until_when() -> None:
    out = io.StringIO()
    rec = RunRecorder()
    LineView(rec, "test", out)
    rec.observe(Throttled("act_7", "ads_management", 90.0, 80004, 2446079, 100.0))
    rec.observe(RetryScheduled("op1", "act_7", "create_ad", 1, 0.5, "Graph error 2: try later"))
    text = out.getvalue()
    assert (
        "THROTTLED ad account act_7 (ads_management) throttled [Graph code 80004/2446079] at 100 % usage"
        in text
    )
    assert "paused until" in text and "(in 90 s)" in text
    assert "retry op1 (create_ad, attempt 2) in 0.5 s: Graph error 2: try later" in text


def _failed(op_id: str, code: int | None, subcode: int | None = None, message: str = "bad") -> dict[str, Any]:
    error = None if code is None else {"code": code, "error_subcode": subcode, "message": message}
    return {
        "op_id": op_id,
        "kind": "create_adset",
        "state": "failed",
        "error": error,
        "reason": "transport: reset",
    }


def test_failures_are_grouped_by_code_and_subcode() -> None:
    ops = [
        _failed("a", 100, 1885621),
        _failed("b", 100, 1885621),
        _failed("c", 100, 33),
        _failed("d", None),
        {"op_id": "e", "kind": "create_ad", "state": "succeeded"},
    ]
    groups = failures_by_code(ops)
    assert [(g["code"], g["subcode"], g["count"]) for g in groups] == [
        (100, 1885621, 2),
        (100, 33, 1),
        (None, None, 1),
    ]
    assert groups[0]["examples"] == ["a", "b"] and groups[0]["kinds"] == {"create_adset": 2}
    assert unreachable([_failed("x", None)]) and not unreachable(ops)


def test_csv_has_one_row_per_operation_and_never_a_formula() -> None:
    report = {"operations": [_failed("a", 100, 33, message='=HYPERLINK("x")'), _failed("b", None)]}
    rows = list(csv.DictReader(io.StringIO(render_csv(report))))
    assert [r["op_id"] for r in rows] == ["a", "b"]
    assert rows[0]["error_message"].startswith("'=") and rows[0]["error_code"] == "100"
    assert rows[1]["error_code"] == "" and rows[1]["reason"] == "transport: reset"


def test_the_html_report_is_self_contained_and_escaped() -> None:
    report = {
        "job_id": "<job>",
        "counts": {"succeeded": 0, "failed": 1, "skipped": 0},
        "operations": [_failed("<op>", 100, 33, message="<script>alert(1)</script>")],
        "timeseries": {
            "samples": [{"t": 0, "ops_done": 0, "calls_done": 0}, {"t": 2, "ops_done": 1, "calls_done": 1}]
        },
    }
    page = render_html(report)
    assert "<script>" not in page and "&lt;script&gt;" in page and "&lt;op&gt;" in page
    assert page.count("<svg") == 2 and 'id="failures"' in page
    assert "src=" not in page and "<link" not in page and "@import" not in page


def test_redact_is_the_scrubber_keys_included() -> None:
    token = "EAAB" + "x" * 40
    data = {"paging": {"next": f"https://graph/next?access_token={token}&after=1"}, token: 0, "exit_code": 0}
    clean = redact(data, [token])
    assert token not in json.dumps(clean) and "[redacted]" in clean["paging"]["next"]
    assert clean["exit_code"] == 0 and clean["[redacted]"] == 0


def test_auth_advice_explains_the_subcode() -> None:
    text = auth_advice({"code": 190, "error_subcode": 463, "message": "Session has expired"})
    assert "Graph error 190/463" in text and "expired" in text and "System User" in text


def test_a_saved_report_round_trips_through_the_report_command(tmp_path: Path) -> None:
    from bulk_engine.reporting import load_report, write_json

    path = write_json(
        {
            "job_id": "j",
            "counts": {"succeeded": 1, "failed": 0, "skipped": 0},
            "http_requests": 1,
            "graph_calls": 1,
            "throttle_events": 0,
            "retries": 0,
            "elapsed_s": 0.1,
            "operations": [{"op_id": "a", "kind": "read", "state": "succeeded"}],
        },
        tmp_path / "deep" / "r.json",
    )
    loaded = load_report(path)
    assert loaded["kinds"] == {"read": {"succeeded": 1, "failed": 0, "skipped": 0}}
    assert loaded["failures_by_code"] == [] and list(tmp_path.joinpath("deep").iterdir()) == [path]


def test_the_html_report_says_a_graph_error_once_per_operation() -> None:
    failed = _failed("a", 100, 33, message="Object with ID 42 does not exist")
    failed["reason"] = "Graph error 100/33: Object with ID 42 does not exist"
    other = _failed("b", None)  # a reason of its own (transport) stays
    page = render_html({"counts": {"succeeded": 0, "failed": 2, "skipped": 0}, "operations": [failed, other]})
    problems = page[page.index('id="problems"') :]
    assert problems.count("Object with ID 42 does not exist") == 1
    assert "transport: reset" in problems


def test_every_report_file_is_written_whole_and_for_its_owner_only(tmp_path: Path) -> None:
    from bulk_engine.reporting import write_csv, write_html, write_json

    report = {"counts": {"succeeded": 0, "failed": 1, "skipped": 0}, "operations": [_failed("a", 100, 33)]}
    paths = [write_json(report, tmp_path / "r.json"), write_csv(report, tmp_path / "r.csv")]
    paths.append(write_html(report, tmp_path / "r.html"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.csv", "r.html", "r.json"]  # no temporary left
    assert {p.stat().st_mode & 0o777 for p in paths} == {0o600}


class _JobDone:
    """What the operations layer hands the session when a job completes (``JobReport``): its ``to_dict()``."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def to_dict(self) -> dict[str, Any]:
        return self.data


async def test_a_task_is_timed_in_wall_seconds_like_the_header_on_a_scaled_clock() -> None:
    """At 600x (the demo) an engine job's ``elapsed_s`` is engine-clock seconds — 849 s for a 7 s run. A
    task's ``elapsed_s`` (the HTML report's Tasks table) is the wall time it took, like the header's; before,
    it summed the engine seconds and showed 849 s beside a 7.4 s header."""
    from bulk_engine.operations.task import TaskReport
    from bulk_engine.results import JobResult

    class EngineAt600x:
        async def run(
            self, job: Any, *, job_id: str | None = None, fingerprint: str | None = None
        ) -> JobResult:
            list(job)
            return JobResult(job_id or "j", (), 1, 2, 0, 0, elapsed_s=1200.0)

    task = TaskReport("ctm", "create")
    started = time.monotonic()
    await task.run(EngineAt600x(), [])
    await task.run(EngineAt600x(), [])
    assert 0.0 <= task.elapsed_s <= time.monotonic() - started
    page = render_html({"tasks": [task.to_dict()]})
    table = page[page.index('<table id="tasks">') :]
    table = table[: table.index("</table>")]
    assert "<th>wall s</th>" in table and "1,200" not in table and "2,400" not in table
