"""The ``export`` task against the simulator: paging by cursor, the adaptive page size, formats, filters, pacing."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from ops_support import GEO, Sim, simple_tree, tree_job

from bulk_engine import BulkEngine, Credentials, EngineConfig, RetryConfig, ScaledClock
from bulk_engine.operations import CompileContext, JobFileError, parse_job, run_job
from bulk_engine.operations.pages import BadPage, CursorTrail, parse_page
from bulk_engine.operations.pagesize import AdaptivePageSize, PageSizeFloor
from bulk_engine.persistence import SqliteJournal
from bulk_engine.protocol.edges import EDGE_FIELDS
from bulk_engine.simulator import FaultConfig
from bulk_engine.simulator.objects import KNOWN_FIELDS
from bulk_engine.simulator.store import AD, ADSET, CAMPAIGN, CREATIVE, IMAGE, VIDEO

FAST_RETRY = RetryConfig(max_attempts=2, base_delay_s=0.0, max_delay_s=0.0)


def _export(act: str, out: Path, **task: Any) -> Any:
    return parse_job(
        {"account_id": act, "tasks": [{"type": "export", "output": str(out), **task}]}, base_dir=out.parent
    )


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


async def test_20000_objects_every_one_once_with_a_forced_reduce_data_answer(
    start_sim: Any, tmp_path: Path
) -> None:
    # pages over 200 objects are refused 4 times (the load passes), then served
    faults = FaultConfig(reduce_data_above=200, reduce_data_times=4)
    sim: Sim = await start_sim(seed_campaigns=20_000, faults=faults, quota_override=10_000)
    out = tmp_path / "campaigns.jsonl"
    spec = _export(sim.act, out, edge="campaigns", fields=["name", "status"], page_size=500)
    async with sim.engine(retry=FAST_RETRY) as engine:
        report = await run_job(engine, spec)
    task = report.tasks[0]
    assert report.ok, report.counts
    rows = _jsonl(out)
    assert len(rows) == 20_000
    assert len({row["id"] for row in rows}) == 20_000
    assert {row["id"] for row in rows} == {n.id for n in sim.nodes(CAMPAIGN) if n.account_id == sim.act}
    assert all(set(row) == {"id", "name", "status"} for row in rows)
    sizes = task.details["page_size"]
    # 500 refused (twice: the engine retries code 1), then 250 (twice), 125 served; grown back to 500
    assert sizes["smallest"] == 125 and sizes["shrinks"] == 2
    assert sizes["final"] == 500 and sizes["grows"] == 2
    assert [r["limit"] for r in task.details["refusals"]] == [500, 250]
    assert sim.server.core.faults.injected["reduce_data"] == 4
    assert task.details["rows"] == 20_000 and task.details["written"] is True
    # the report keeps one small outcome per page, never the rows; refused pages are not failures
    assert report.counts == {"succeeded": task.details["pages"], "failed": 0, "skipped": 0}
    assert all(o.result == {"rows": o.result["rows"]} for o in task.outcomes)
    assert "SIMULATOR-TOKEN" not in json.dumps(report.to_dict())


async def test_a_size_refused_for_good_is_not_retried_for_ever(start_sim: Any, tmp_path: Path) -> None:
    sim: Sim = await start_sim(seed_campaigns=1_000, faults=FaultConfig(reduce_data_above=100))
    out = tmp_path / "c.csv"
    spec = _export(sim.act, out, edge="campaigns", fields=["name"], page_size=400)
    async with sim.engine(retry=FAST_RETRY) as engine:
        report = await run_job(engine, spec)
    assert report.ok
    with out.open(newline="", encoding="utf-8") as f:
        assert len(list(csv.DictReader(f))) == 1_000
    sizes = report.tasks[0].details["page_size"]
    assert sizes["smallest"] == 100
    # 200 was refused once: trying it again needs 8 good pages, and 1,000 objects at 100 take 10
    assert len(report.tasks[0].details["refusals"]) <= 3


async def test_csv_columns_nested_values_and_filters(start_sim: Any, tmp_path: Path) -> None:
    sim: Sim = await start_sim()
    trees = [simple_tree("=Spring", ads=1), simple_tree("Summer", ads=1, status="PAUSED")]
    trees.append(simple_tree("Spring two", ads=1, status="PAUSED"))
    created = await sim.run(tree_job(trees))
    assert created.ok, created.counts
    out = tmp_path / "adsets.csv"
    spec = _export(
        sim.act,
        out,
        edge="adsets",
        fields=["name", "targeting", "campaign{name}"],
        filtering=[{"field": "name", "operator": "CONTAIN", "value": "spring"}],
        effective_status=["PAUSED", "CAMPAIGN_PAUSED", "ACTIVE"],
    )
    async with sim.engine() as engine:
        report = await run_job(engine, spec)
    assert report.ok
    with out.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["id", "name", "targeting", "campaign"]
    names = sorted(r["name"] for r in rows)
    assert [n.split(" [be:")[0] for n in names] == ["'=Spring set 0", "Spring two set 0"]  # formula-safe
    assert json.loads(rows[0]["targeting"])["geo_locations"] == GEO["geo_locations"]
    assert "name" in json.loads(rows[0]["campaign"])
    # effective_status on the server: only the PAUSED campaign's ad set
    spec = _export(sim.act, out, edge="campaigns", fields=["name"], effective_status=["PAUSED"])
    async with sim.engine() as engine:
        report = await run_job(engine, spec)
    with out.open(newline="", encoding="utf-8") as f:
        paused = sorted(r["name"].split(" [be:")[0] for r in csv.DictReader(f))
    assert paused == ["Spring two", "Summer"]


async def test_filter_by_id_and_max_rows(start_sim: Any, tmp_path: Path) -> None:
    sim: Sim = await start_sim(seed_campaigns=50)
    ids = sorted(n.id for n in sim.nodes(CAMPAIGN) if n.account_id == sim.act)
    out = tmp_path / "some.jsonl"
    spec = _export(
        sim.act,
        out,
        edge="campaigns",
        fields=["id"],
        filtering=[{"field": "id", "operator": "IN", "value": ids[:7]}],
        page_size=3,
    )
    async with sim.engine() as engine:
        report = await run_job(engine, spec)
    assert sorted(r["id"] for r in _jsonl(out)) == ids[:7]
    assert report.tasks[0].details["pages"] == 3
    spec = _export(sim.act, out, edge="campaigns", fields=["name"], max_rows=12, page_size=5)
    async with sim.engine() as engine:
        await run_job(engine, spec)
    assert len(_jsonl(out)) == 12


async def test_paced_by_the_governor_under_a_tiny_quota(start_sim: Any, tmp_path: Path) -> None:
    sim: Sim = await start_sim(seed_campaigns=600, quota_override=12, time_scale=3600)
    out = tmp_path / "paced.jsonl"
    spec = _export(sim.act, out, edge="campaigns", fields=["name"], page_size=20)
    started = sim.server.core.clock.now()
    async with BulkEngine(_config(sim), clock=ScaledClock(3600)) as engine:
        report = await run_job(engine, spec)
    assert report.ok, report.counts
    assert len({r["id"] for r in _jsonl(out)}) == 600
    # 30 pages through a 12-call hourly window: the governor spread them over more than two windows of
    # (virtual) time and the simulator refused none (no 80004)
    assert report.to_result().graph_calls == 30
    assert not [c for c in sim.server.core.calls if c.error_code == 80004]
    assert sim.server.core.clock.now() - started > 2 * 3600
    assert engine.governor.pair(sim.act, "ads_management").last_pct is not None


async def test_a_failed_export_leaves_the_previous_file(start_sim: Any, tmp_path: Path) -> None:
    sim: Sim = await start_sim(
        seed_campaigns=30, faults=FaultConfig(transient_rate=1.0, transient_codes=(2,))
    )
    out = tmp_path / "keep.jsonl"
    out.write_text('{"id": "old"}\n', encoding="utf-8")
    spec = _export(sim.act, out, edge="campaigns", fields=["name"], page_size=4)
    async with sim.engine(retry=FAST_RETRY) as engine:
        report = await run_job(engine, spec)
    assert not report.ok and report.counts["failed"] == 1
    assert report.outcomes[0].error is not None and report.outcomes[0].error.code == 2
    assert out.read_text(encoding="utf-8") == '{"id": "old"}\n'
    assert _names(tmp_path) == ["keep.jsonl"]  # no temporary file left


def test_bad_input_is_refused_before_any_call(tmp_path: Path) -> None:
    bad = [
        ({"edge": "insights", "fields": ["name"]}, "tasks[0].edge"),
        ({"edge": "ads", "fields": ["name", "budget"]}, "tasks[0].fields[1]"),
        ({"edge": "adcreatives", "fields": ["name"], "effective_status": ["ACTIVE"]}, "effective_status"),
        (
            {
                "edge": "ads",
                "fields": ["name"],
                "filtering": [{"field": "spend", "operator": "IN", "value": [1]}],
            },
            "filtering[0].field",
        ),
        (
            {
                "edge": "ads",
                "fields": ["name"],
                "filtering": [{"field": "name", "operator": "ANY", "value": "x"}],
            },
            "filtering[0].operator",
        ),
        (
            {
                "edge": "ads",
                "fields": ["name"],
                "filtering": [{"field": "id", "operator": "IN", "value": "1"}],
            },
            "filtering[0].value",
        ),
        ({"edge": "ads", "fields": ["name"], "effective_status": ["DELETED"]}, "effective_status"),
    ]
    for task, where in bad:
        with pytest.raises(JobFileError) as err:
            _export("act_1", tmp_path / "x.csv", **task)
        assert where in str(err.value), (task, str(err.value))
    with pytest.raises(JobFileError, match=r"export\.format"):
        _export("act_1", tmp_path / "x.txt", edge="ads", fields=["name"])
    with pytest.raises(JobFileError, match=r"Graph code 100"):
        _export("act_1", tmp_path / "x.csv", edge="ads", fields=["name,nope"])


def test_the_field_catalogue_is_what_the_simulator_renders() -> None:
    types = {"campaigns": CAMPAIGN, "adsets": ADSET, "ads": AD, "adcreatives": CREATIVE}
    types |= {"adimages": IMAGE, "advideos": VIDEO}
    for edge, fields in EDGE_FIELDS.items():
        assert fields <= KNOWN_FIELDS[types[edge]], (edge, sorted(fields - KNOWN_FIELDS[types[edge]]))


def test_hostile_pages_stop_with_a_clear_error() -> None:
    good = {"data": [{"id": "1"}], "paging": {"cursors": {"after": "MQ"}, "next": "https://x/?after=MQ"}}
    assert parse_page(good).after == "MQ"
    assert parse_page({"data": [], "paging": {}}).after is None
    assert parse_page({"data": [], "paging": {"cursors": {"after": "Mg"}, "next": "n"}}).after == "Mg"
    hostile = {
        "not a JSON object": [1, 2],
        "no 'data'": {"paging": {}},
        "data[1] is not an object": {"data": [{"id": "1"}, "junk"], "paging": {}},
        "data[0] is not an object with an id": {"data": [{"name": "x"}], "paging": {}},
        "no 'paging'": {"data": [{"id": "1"}]},
        "cursors.after is missing": {"data": [], "paging": {"next": "https://evil.example/?access_token=T"}},
    }
    for why, body in hostile.items():
        with pytest.raises(BadPage, match=re.escape(why)):
            parse_page(body)
    trail = CursorTrail()
    trail.follow("a")
    trail.follow("b")
    with pytest.raises(BadPage, match="came back a second time"):
        trail.follow("a")


def test_page_size_halves_then_grows_back() -> None:
    sizes = AdaptivePageSize(500, grow_after=2)
    assert sizes.refused() == 250
    assert sizes.succeeded() == 250
    assert sizes.succeeded() == 250  # 500 was refused once: 2 × 2 good pages before trying it again
    assert [sizes.succeeded(), sizes.succeeded()] == [250, 500]
    floor = AdaptivePageSize(2, grow_after=1)
    assert floor.refused() == 1
    with pytest.raises(PageSizeFloor):
        floor.refused()


async def test_a_journaled_rerun_of_the_same_job_answers_its_pages_from_the_journal(
    start_sim: Any, tmp_path: Path
) -> None:
    sim: Sim = await start_sim(seed_campaigns=300)
    out = tmp_path / "snap.jsonl"
    spec = parse_job(
        {
            "job_id": "snapshot-1",
            "account_id": sim.act,
            "tasks": [{"type": "export", "edge": "campaigns", "fields": ["name"], "output": str(out)}],
        },
        base_dir=tmp_path,
    )
    with SqliteJournal(tmp_path / "jobs.db") as journal:
        async with BulkEngine(_config(sim), journal=journal) as engine:
            first = await run_job(engine, spec)
        snapshot = out.read_bytes()
        sim.node(next(n.id for n in sim.nodes(CAMPAIGN) if n.account_id == sim.act)).data["name"] = "renamed"
        async with BulkEngine(_config(sim), journal=journal) as engine:
            again = await run_job(engine, spec)
    assert first.ok and again.ok
    assert again.to_result().http_requests == 0  # the same job: its pages are answered from the journal
    assert out.read_bytes() == snapshot and len(_jsonl(out)) == 300
    assert b"SIMULATOR-TOKEN" not in (tmp_path / "jobs.db").read_bytes()


def _config(sim: Sim) -> EngineConfig:
    return EngineConfig(credentials=Credentials(access_token=sim.token), graph_url=sim.server.url, seed=7)


class MangledPages:
    """A front end on 127.0.0.1 that forwards to the simulator and mangles every edge page it answers."""

    def __init__(self, upstream: str, mangle: Any) -> None:
        self.upstream, self.mangle = upstream, mangle
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def __aenter__(self) -> MangledPages:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = {"Content-Type": request.headers.get("Content-Type", "")}
        async with aiohttp.ClientSession() as session:
            async with session.request(
                request.method, self.upstream + request.path_qs, data=body, headers=headers
            ) as up:
                data = await up.json(content_type=None)
        if isinstance(data, list):
            for entry in data:
                if isinstance(entry, dict) and entry.get("code") == 200:
                    page = json.loads(entry["body"])
                    if isinstance(page, dict) and "data" in page:
                        entry["body"] = json.dumps(self.mangle(page))
        return web.json_response(data)


Mangle = Callable[[dict[str, Any]], dict[str, Any]]


def _repeat_cursor() -> Mangle:
    """Every page ends with the first page's cursor (a valid one): paging would go round for ever. A new
    mangler per test: the first cursor is its own state, never carried from one run to the next."""
    first: dict[str, str] = {}

    def mangle(page: dict[str, Any]) -> dict[str, Any]:
        if page.get("paging", {}).get("next"):
            cursors = page["paging"]["cursors"]
            cursors["after"] = first.setdefault("after", cursors["after"])
        return page

    return mangle


def _other_host(page: dict[str, Any]) -> dict[str, Any]:
    page["paging"] = {"next": "https://evil.example/v24.0/act_1/campaigns?after=x"}
    return page


@pytest.mark.parametrize(
    ("make_mangle", "reason"),
    [
        (lambda: lambda p: {"data": p["data"]}, "no 'paging'"),
        (lambda: lambda p: {**p, "data": [*p["data"], ["junk"]]}, "is not an object with an id"),
        (_repeat_cursor, "came back a second time"),
        (lambda: _other_host, "cursors.after is missing"),
    ],
)
async def test_hostile_pages_end_the_export_with_a_reason(
    start_sim: Any, tmp_path: Path, make_mangle: Callable[[], Mangle], reason: str
) -> None:
    sim: Sim = await start_sim(seed_campaigns=40)
    out = tmp_path / "h.jsonl"
    spec = _export(sim.act, out, edge="campaigns", fields=["name"], page_size=10)
    async with MangledPages(sim.server.url, make_mangle()) as front:
        config = EngineConfig(credentials=Credentials(access_token=sim.token), graph_url=front.url)
        async with BulkEngine(config) as engine:
            report = await run_job(engine, spec)
    assert report.counts["failed"] == 1, report.counts
    failed = next(o for o in report.outcomes if o.state.value == "failed")
    assert reason in (failed.reason or "") and failed.result is None
    assert not out.exists() and report.tasks[0].details["written"] is False
    assert sim.token not in json.dumps(report.to_dict())


async def test_validate_only_reads_the_first_page_and_writes_nothing(start_sim: Any, tmp_path: Path) -> None:
    sim: Sim = await start_sim(seed_campaigns=100)
    out = tmp_path / "dry.csv"
    spec = _export(sim.act, out, edge="campaigns", fields=["name"], page_size=10)
    before = len(sim.server.core.calls)
    async with sim.engine() as engine:
        report = await run_job(engine, spec, CompileContext(validate_only=True))
    assert report.ok and len(sim.server.core.calls) - before == 1
    details = report.tasks[0].details
    assert details["rows"] == 10 and details["written"] is False and "validate_only" in details
    assert _names(tmp_path) == []


@pytest.mark.parametrize(
    ("edge", "fields"),
    [
        ("ads", ["name", "campaign{ads{id}}"]),  # a nested expansion
        ("adsets", ["name", "campaign{name,ads}"]),  # an edge of the expanded campaign
        ("ads", ["name", "creative{id},adset{adcreatives{id}}"]),
        ("adsets", ["name", "targeting{geo_locations{countries}}"]),
        ("ads", ["name", "campaign{}"]),
    ],
)
def test_nested_edges_in_fields_are_refused_before_any_call(
    tmp_path: Path, edge: str, fields: list[str]
) -> None:
    """An expanded edge answers its own ``paging.next`` inside each row, and on Graph that link carries the
    access token: one level of plain fields only (``campaign{name}``)."""
    with pytest.raises(JobFileError) as err:
        _export("act_1", tmp_path / "x.jsonl", edge=edge, fields=fields)
    assert "tasks[0].fields[1]" in str(err.value) and "(rule export.nested)" in str(err.value)
    assert "access token" in str(err.value)


def test_one_level_of_plain_fields_may_be_expanded(tmp_path: Path) -> None:
    spec = _export("act_1", tmp_path / "x.jsonl", edge="ads", fields=["campaign{id,name}", "creative{name}"])
    assert spec.tasks[0].columns() == ["id", "campaign", "creative"]


@pytest.mark.parametrize("name", ["c.csv", "c.jsonl"])
async def test_a_token_in_an_answer_never_reaches_the_file(start_sim: Any, tmp_path: Path, name: str) -> None:
    """A hostile (or careless) answer carrying the access token in a row: every row is scrubbed before it is
    written, as the reports are."""
    sim: Sim = await start_sim(seed_campaigns=30)
    link = f"https://graph.facebook.com/v24.0/1/ads?access_token={sim.token}&after=x"

    def leak(page: dict[str, Any]) -> dict[str, Any]:
        for row in page["data"]:
            row["name"] = f"{row['name']} {link}"
            row["campaign"] = {"ads": {"data": [], "paging": {"next": link}}}
        return page

    out = tmp_path / name
    spec = _export(sim.act, out, edge="campaigns", fields=["name"], page_size=10)
    async with MangledPages(sim.server.url, leak) as front:
        config = EngineConfig(credentials=Credentials(access_token=sim.token), graph_url=front.url)
        async with BulkEngine(config) as engine:
            report = await run_job(engine, spec)
    assert report.ok, report.counts
    text = out.read_text(encoding="utf-8")
    assert sim.token not in text and text.count("[redacted]") >= 30
    assert report.tasks[0].details["rows"] == 30
