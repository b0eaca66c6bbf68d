"""The CLI's reports come from its spill file: the same reports as the in-memory path, none of the outcomes kept.

In-process, against an in-process simulator: one job (a create tree, status changes of seeded campaigns, of
missing ids and of rows the CSV says are already paused) run twice — by ``run_job`` on the engine itself (the
in-memory path: every outcome in the ``JobReport``) and by a :class:`RunSession` with :class:`LeanEngine`, as
``bulk-engine run`` does — and the two reports compared.
"""

from __future__ import annotations

import csv
import gc
import io
import json
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from bulk_engine import BulkEngine, Credentials, EngineConfig
from bulk_engine import cli as cli_module
from bulk_engine.execution.events import OperationFinished
from bulk_engine.operations import CompileContext, load_job, run_job
from bulk_engine.reporting import ReportPaths, RunRecorder, RunSession, load_report, plan_job
from bulk_engine.reporting.lean import LeanEngine, stays_on_disk
from bulk_engine.results import Outcome, OutcomeState
from bulk_engine.simulator import SimulatorConfig, SimulatorServer

SEEDED = 40
TREE = 7  # one creative, two campaigns with one ad set and one ad each
MISSING = ["120219999999999991", "120219999999999992", "120219999999999993"]


def _job(tmp_path: Path, act: str, first: int) -> Path:
    rows = ["id,status,current_status"]
    rows += [f"{first + i},PAUSED," for i in range(SEEDED - 4)]
    rows += [f"{first + i},PAUSED,PAUSED" for i in range(SEEDED - 4, SEEDED)]  # skipped locally: already
    (tmp_path / "ids.csv").write_text("\n".join(rows) + "\n")
    tree = {
        "type": "create",
        "key": "launch",
        "creatives": {
            "hero": {
                "object_story_spec": {
                    "page_id": "2000000001",
                    "link_data": {"link": "https://example.com", "message": "Hi"},
                }
            }
        },
        "campaigns": [
            {
                "name": "Streamed {n}",
                "objective": "OUTCOME_TRAFFIC",
                "special_ad_categories": [],
                "repeat": 2,
                "ad_set_matrix": {
                    "template": {
                        "billing_event": "IMPRESSIONS",
                        "optimization_goal": "LINK_CLICKS",
                        "daily_budget": 1500,
                    },
                    "audiences": [{"name": "US", "targeting": {"geo_locations": {"countries": ["US"]}}}],
                    "creatives": ["hero"],
                    "ad_name": "{audience}",
                },
            }
        ],
    }
    job = {
        "version": 1,
        "job_id": "streamed",
        "account_id": act,
        "tasks": [
            tree,
            {"type": "status", "key": "pause", "status": "PAUSED", "csv": "ids.csv"},
            {"type": "status", "key": "missing", "status": "PAUSED", "ids": MISSING},
        ],
    }
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(job))
    return path


def _reachable(root: object) -> Iterator[object]:
    """Every object reachable from ``root``: functions through their closures and defaults only (not their
    module's globals); classes, modules, frames and code not entered."""
    seen = {id(root)}
    todo = [root]
    while todo:
        obj = todo.pop()
        yield obj
        if isinstance(obj, types.FunctionType):
            refs: list[object] = list(obj.__defaults__ or ())
            for cell in obj.__closure__ or ():
                try:
                    refs.append(cell.cell_contents)
                except ValueError:  # an empty cell
                    pass
        elif isinstance(obj, type | types.ModuleType | types.FrameType | types.CodeType):
            continue
        else:
            refs = gc.get_referents(obj)
        for ref in refs:
            if id(ref) not in seen:
                seen.add(id(ref))
                todo.append(ref)


def _spill_files(folder: Path) -> list[Path]:
    return list(folder.glob(".bulk-engine-outcomes-*"))


def _per_op(ops: list[dict[str, Any]]) -> dict[str, tuple[Any, ...]]:
    return {
        op["op_id"]: (op["state"], op["kind"], (op.get("error") or {}).get("code"), op.get("reason"))
        for op in ops
    }


async def test_reports_from_the_spill_equal_the_in_memory_reports_and_hold_no_outcome(tmp_path: Path) -> None:
    sim_config = SimulatorConfig(access_tier="standard_access", seed_campaigns=SEEDED)
    async with SimulatorServer(sim_config) as sim:
        info = sim.info()
        act = info["ad_account_ids"][0]
        first, _count = info["seeded_campaigns"][act]
        spec = load_job(_job(tmp_path, act, int(first)))
        ctx = CompileContext()
        config = EngineConfig(
            credentials=Credentials(access_token=info["access_token"]), graph_url=sim.url, seed=1
        )

        # the in-memory path: every outcome in the JobReport
        async with BulkEngine(config) as engine:
            in_memory = (await run_job(engine, spec, ctx, job_id="streamed-in-memory")).to_dict()
        # the CLI's path: the lean engine, the spill file, reports written from it
        paths = ReportPaths(tmp_path / "r.json", tmp_path / "r.csv", tmp_path / "r.html")
        plan = plan_job(spec, ctx, "streamed")
        out = io.StringIO()
        session = RunSession(
            config=config,
            job_id="streamed",
            title="streamed",
            log_format="json",
            stream=out,
            expected=dict(plan.kinds),
            reports=paths,
        )
        lean: list[Any] = []

        async def work(engine: BulkEngine) -> Any:
            report = await run_job(LeanEngine(engine), spec, ctx, job_id="streamed")
            lean.append(report)
            return report

        code = await session.run(work)

    assert code == 1  # the missing ids failed, the already-paused rows were skipped
    expected = _per_op(in_memory["operations"])
    total = TREE + SEEDED + len(MISSING)
    assert len(expected) == total

    report = load_report(paths.json)
    assert (
        report["counts"] == in_memory["counts"] == {"succeeded": TREE + SEEDED - 4, "failed": 3, "skipped": 4}
    )
    assert _per_op(report["operations"]) == expected
    assert [t["counts"] for t in report["tasks"]] == [t["counts"] for t in in_memory["tasks"]]
    assert report["failures_by_code"][0]["code"] == 100 and report["failures_by_code"][0]["count"] == 3
    assert report["skipped_by_reason"][0]["count"] == 4
    assert report["kinds"]["update"] == {"succeeded": SEEDED - 4, "failed": 3, "skipped": 4}

    with paths.csv.open() as table:
        rows = list(csv.DictReader(table))
    assert {r["op_id"]: r["state"] for r in rows} == {op: v[0] for op, v in expected.items()}

    html = paths.html.read_text()
    assert 'id="failures"' in html and "<td>100</td>" in html
    problems = html[html.index('id="problems"') :]
    for op_id, (state, *_rest) in expected.items():  # the page lists the problems, not the successes
        assert (f"<code>{op_id}</code>" in problems) == (state != "succeeded"), op_id

    # what the operations layer held: every outcome but the succeeded status changes
    held = [o for task in lean[0].tasks for o in task.outcomes]
    assert len(held) == total - (SEEDED - 4)
    assert not any(stays_on_disk(o) for o in held)
    # and the session, after the run, holds no outcome at all (the spill file is gone with them)
    outcomes = [o for o in _reachable(session) if isinstance(o, Outcome)]
    per_op_dicts = [o for o in _reachable(session) if isinstance(o, dict) and "op_id" in o]
    assert outcomes == [] and per_op_dicts == []
    assert session.spill is None and _spill_files(tmp_path) == []
    assert session.report["counts"] == in_memory["counts"] and "operations" not in session.report
    assert json.loads(out.getvalue().splitlines()[-1])["event"] == "reports"

    # `bulk-engine report` re-renders the saved report by streaming it: the same CSV
    again = tmp_path / "again.csv"
    assert (
        cli_module.main(["report", str(paths.json), "--csv", str(again), "--html", str(tmp_path / "a.html")])
        == 0
    )
    assert again.read_text() == paths.csv.read_text()
    page = (tmp_path / "a.html").read_text()
    assert page[page.index('id="problems"') :].count("<code>missing/") == len(MISSING)


def test_the_recorder_counts_outcomes_without_keeping_them() -> None:
    rec = RunRecorder()
    spilled: list[str] = []
    rec.sink = lambda outcome: spilled.append(outcome.op_id)
    for i in range(2_000):
        state = OutcomeState.SUCCEEDED if i % 4 else OutcomeState.FAILED
        rec.observe(OperationFinished(Outcome(f"t/{i}", state, "act_1", "update")))
    assert rec.ops_done == 2_000 and rec.counts() == {"succeeded": 1_500, "failed": 500, "skipped": 0}
    assert len(spilled) == 2_000
    rec.sink = None
    assert [o for o in _reachable(rec) if isinstance(o, Outcome)] == []


def test_the_html_report_lists_the_first_problems_of_each_group_and_counts_the_rest(tmp_path: Path) -> None:
    from bulk_engine.reporting import write_reports
    from bulk_engine.reporting.summary import PROBLEMS_PER_GROUP

    failed = [
        {
            "op_id": f"pause/{i}",
            "kind": "update",
            "state": "failed",
            "error": {"code": 100, "error_subcode": 33, "message": "Object does not exist"},
        }
        for i in range(1_000)
    ]
    skipped = [
        {
            "op_id": f"kids/{i}",
            "kind": "update",
            "state": "skipped",
            "reason": f"hierarchy: its parent {10**9 + i} is set",
        }
        for i in range(300)
    ]
    report = {
        "job_id": "big",
        "counts": {"succeeded": 0, "failed": 1_000, "skipped": 300},
        "http_requests": 1,
        "graph_calls": 1,
        "throttle_events": 0,
        "retries": 0,
        "elapsed_s": 1.0,
        "operations": failed + skipped,
    }
    paths = ReportPaths(tmp_path / "r.json", tmp_path / "r.csv", tmp_path / "r.html")
    write_reports(report, paths)
    page = paths.html.read_text()
    problems = page[page.index('id="problems"') :]  # (the failures table shows 5 examples per group too)
    assert problems.count("<code>pause/") == PROBLEMS_PER_GROUP
    assert problems.count("<code>kids/") == PROBLEMS_PER_GROUP
    assert f"… and {1_000 - PROBLEMS_PER_GROUP:,} more of this group" in problems
    assert f"… and {300 - PROBLEMS_PER_GROUP:,} more of this group" in problems  # one group: ids folded out
    saved = load_report(paths.json)
    assert saved["skipped_by_reason"][0]["count"] == 300 and len(saved["operations"]) == 1_300
    with paths.csv.open() as table:
        assert len(list(csv.DictReader(table))) == 1_300


def test_the_spill_file_never_holds_a_secret_and_goes_away(tmp_path: Path) -> None:
    from bulk_engine.reporting.spill import OutcomeSpill
    from bulk_engine.scrub import REDACTED, Scrubber

    token = "EAAB" + "s3cr3t" * 10
    spill = OutcomeSpill(tmp_path, Scrubber([token]))
    echoed = {"paging": {"next": f"https://graph.example/next?access_token={token}"}}
    spill.append(Outcome("t/1", OutcomeState.SUCCEEDED, "act_1", "read", result=echoed))
    spill.append(Outcome("t/2", OutcomeState.FAILED, "act_1", "update", reason=f"echo {token}"))
    spill_ops = list(spill)  # (flushes the file)
    text = spill.path.read_text()
    assert token not in text + json.dumps(spill_ops) and REDACTED in json.dumps(spill_ops)
    assert [op["op_id"] for op in spill_ops] == ["t/1", "t/2"] and spill.path.stat().st_mode & 0o077 == 0
    spill.close()
    assert _spill_files(tmp_path) == [] and list(spill) == []


def test_the_throughput_chart_folds_the_last_sliver_of_a_run_into_the_span_before() -> None:
    from bulk_engine.reporting.charts import _rate_spans

    samples = [{"t": 0.0, "ops_done": 0}, {"t": 0.25, "ops_done": 10}, {"t": 0.5, "ops_done": 20}]
    samples.append({"t": 0.503, "ops_done": 50})  # forced at the end, 3 ms later: 10,000/s over the sliver
    spans = _rate_spans(samples, 0.125)
    rates = [(b["ops_done"] - a["ops_done"]) / (b["t"] - a["t"]) for a, b in spans]
    assert [round(r) for r in rates] == [40, 158] and spans[-1][1] is samples[-1]
