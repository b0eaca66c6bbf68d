"""Issue 17: migrating a whole account — plan file, edited plan, switch-over after verification, full id map,
follow-up readiness, rollback, and kill / resume at every phase. All against the simulator, over HTTP."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ops_support import GEO, Sim, adset, campaign, tree_job
from test_ops_migrate import make_asc

from bulk_engine import BulkEngine, Credentials, EngineConfig, MemoryJournal, Operation
from bulk_engine.operations import CompileContext, JobFileError, JobReport, parse_job, run_job
from bulk_engine.operations.migrate_journal import journal_records
from bulk_engine.operations.migrate_plan import PLAN_COLUMNS, write_plan
from bulk_engine.reporting import render_html
from bulk_engine.reporting.migration import migration_map_rows, write_migration_csv

ALL_ON = {
    "advantage_budget_state": "ENABLED",
    "advantage_audience_state": "ENABLED",
    "advantage_placement_state": "ENABLED",
}


async def seed_account(sim: Sim, *, big_ads: int = 151) -> dict[str, str]:
    """An account as issue 17 describes it: ASC (sync copy), ASC over the sync copy limit (chunked), AAC,
    ECBP-blocked ASC, an ASC with more than 150 ads, and an ordinary campaign. Name → campaign id."""
    ids = {
        "asc": await make_asc(sim, "asc"),
        "large": await make_asc(sim, "large", ads=3),  # 5 objects > the simulator's sync limit of 3
        "aac": await make_asc(sim, "aac", kind="SMART_APP_PROMOTION"),
        "ecbp": await make_asc(sim, "ecbp", ecbp=30),
        "big": await make_asc(sim, "big", ads=big_ads),
    }
    report = await sim.run(
        tree_job([campaign("ordinary", objective="OUTCOME_SALES", status="ACTIVE", ad_sets=[adset("s")])])
    )
    ids["ordinary"] = str(report.outcome("t0/c0").graph_id)
    return ids


def by_name(report: JobReport, key: str = "m") -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in report.task(key).details["campaigns"]}


def statuses(sim: Sim) -> dict[str, str]:
    return {n.id: n.status for t in ("campaign", "adset", "ad") for n in sim.nodes(t)}


def posts_to(sim: Sim, object_id: str) -> int:
    return sum(1 for c in sim.server.core.calls if c.method == "POST" and c.path == object_id)


async def preflight_plan(sim: Sim, path: Path) -> list[dict[str, str]]:
    report = await sim.run({"tasks": [{"type": "migrate", "key": "plan", "preflight_only": True}]})
    write_plan(path, report.task("plan").details["campaigns"])
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def edit_plan(path: Path, actions: dict[str, str]) -> None:
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        row["action"] = actions.get(row["campaign_id"], row["action"])
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, PLAN_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


async def test_plan_file_has_one_row_per_campaign_with_the_proposed_action(
    start_sim: Any, tmp_path: Path
) -> None:
    sim = await start_sim()
    ids = await seed_account(sim)
    calls = len(sim.server.core.calls)
    rows = {r["name"]: r for r in await preflight_plan(sim, tmp_path / "plan.csv")}
    assert all(c.method == "GET" for c in sim.server.core.calls[calls:])  # a plan writes nothing
    assert {n: (r["kind"], r["eligibility"], r["action"]) for n, r in rows.items()} == {
        "asc": ("ASC", "eligible", "copy"),
        "large": ("ASC", "eligible", "copy"),
        "aac": ("AAC", "migrate_only", "in_place"),
        "ecbp": ("ASC", "blocked", "manual"),
        "big": ("ASC", "blocked", "manual"),
        "ordinary": ("ordinary", "not_applicable", "skip"),
    }
    assert {n: r["campaign_id"] for n, r in rows.items()} == ids
    assert (
        "existing_customer_budget_percentage" in rows["ecbp"]["reason"]
        and "Ads Manager" in rows["ecbp"]["manual_path"]
    )
    assert "151 ads" in rows["big"]["reason"] and rows["big"]["ads"] == "151"
    assert rows["asc"]["status"] == "ACTIVE" and rows["asc"]["budget"] == "daily 5000 (1 ad set)"
    assert rows["ordinary"]["budget"] == "daily 1000 (1 ad set)"


async def test_an_edited_plan_is_executed_row_by_row(start_sim: Any, tmp_path: Path) -> None:
    sim = await start_sim()
    ids = await seed_account(sim, big_ads=2)
    plan = tmp_path / "plan.csv"
    await preflight_plan(sim, plan)
    edit_plan(plan, {ids["asc"]: "in_place", ids["large"]: "copy", ids["aac"]: "skip"})
    report = await sim.run(
        {"tasks": [{"type": "migrate", "key": "m", "plan": "plan.csv"}]}, base_dir=tmp_path
    )
    found = by_name(report)
    assert found["asc"]["action"] == "migrate_in_place" and found["asc"]["new_id"] == ids["asc"]
    assert found["asc"]["verified"] is True and found["asc"]["plan_line"] is not None
    assert found["large"]["action"] == "copy_and_migrate" and found["large"]["new_id"] != ids["large"]
    assert found["large"]["verified"] is True and "1885194" in found["large"]["fallback"]
    assert found["aac"]["state"] == "skipped"
    assert sim.node(ids["aac"]).data["smart_promotion_type"] == "SMART_APP_PROMOTION"  # skipped as edited
    assert found["ecbp"]["state"] == "manual" and found["ordinary"]["state"] == "skipped"
    assert report.ok, [o.to_dict() for o in report.outcomes if o.state.value != "succeeded"]


async def test_plan_rows_are_checked_before_any_call(start_sim: Any, tmp_path: Path) -> None:
    sim = await start_sim()
    ids = await seed_account(sim, big_ads=2)
    plan = tmp_path / "plan.csv"
    await preflight_plan(sim, plan)
    edit_plan(
        plan, {ids["aac"]: "copy", ids["ecbp"]: "in_place", ids["ordinary"]: "copy", ids["asc"]: "later"}
    )
    with plan.open("a", encoding="utf-8") as handle:
        handle.write("12x,bad,ASC,eligible,,copy,,ACTIVE,,1,\n")
        handle.write("777000111,added by hand,,,,copy,,,,,\n")
    with pytest.raises(JobFileError) as raised:
        parse_job(
            {"account_id": sim.act, "tasks": [{"type": "migrate", "plan": "plan.csv"}]}, base_dir=tmp_path
        )
    issues = {(i.line, i.rule) for i in raised.value.issues}
    assert all(i.file == str(plan) for i in raised.value.issues)
    assert {rule for _, rule in issues} == {
        "migrate.plan.forbidden",
        "migrate.plan.action",
        "migrate.plan.id",
        "migrate.plan.unknown",
    }
    assert len(issues) == 6 and all(line is not None and line > 1 for line, _ in issues)
    assert (9, "migrate.plan.unknown") in issues
    text = str(raised.value)
    assert "can only be migrated, not copied" in text and "only skip or manual" in text and ":8: " in text


async def test_a_plan_the_account_no_longer_allows_writes_nothing(start_sim: Any, tmp_path: Path) -> None:
    sim = await start_sim()
    ids = await seed_account(sim, big_ads=2)
    plan = tmp_path / "plan.csv"
    await preflight_plan(sim, plan)
    with plan.open("a", encoding="utf-8") as handle:
        handle.write("999000111,gone,ASC,eligible,,copy,,ACTIVE,,1,\n")
    sim.node(ids["large"]).data["existing_customer_budget_percentage"] = 20  # changed since the review
    before = len(sim.server.core.calls)
    with pytest.raises(JobFileError) as raised:  # bad input found by the reads: refused before any write
        await sim.run({"tasks": [{"type": "migrate", "key": "m", "plan": str(plan)}]})
    assert all(c.method == "GET" for c in sim.server.core.calls[before:])
    issues = {i.line: i for i in raised.value.issues}
    assert set(issues) == {6, 8} and all(i.file == str(plan) for i in issues.values())
    gone, blocked = issues[8], issues[6]
    assert (gone.field_path, gone.value, gone.rule, gone.code, gone.subcode) == (
        "plan.campaign_id", "999000111", "migrate.plan.unknown", 100, 33
    )  # fmt: skip
    assert "does not exist" in gone.message
    assert (blocked.field_path, blocked.value, blocked.rule) == (
        "plan.action",
        "copy",
        "migrate.plan.forbidden",
    )
    assert ids["large"] in blocked.message and "blocked" in blocked.message
    assert sim.node(ids["asc"]).data["smart_promotion_type"] == "AUTOMATED_SHOPPING_ADS"


class Hooked:
    """The real engine, with a hook before each engine job (e.g. change the server between phases) and an
    optional kill right after the ``kill_after``-th job completed (its answers are journaled)."""

    def __init__(self, engine: BulkEngine, before: Callable[[list[Operation]], None] | None = None) -> None:
        self.engine, self.before, self.jobs, self.kill_after = engine, before, 0, -1

    async def run(self, job: Any, *, job_id: str | None = None, fingerprint: str | None = None) -> Any:
        ops = list(job)
        if self.before is not None:
            self.before(ops)
        result = await self.engine.run(ops, job_id=job_id, fingerprint=fingerprint)
        self.jobs += 1
        if self.jobs - 1 == self.kill_after:
            raise KeyboardInterrupt(f"killed after engine job {job_id}")
        return result


def engine_for(sim: Sim, journal: MemoryJournal | None = None) -> BulkEngine:
    config = EngineConfig(credentials=Credentials(access_token=sim.token), graph_url=sim.server.url, seed=7)
    return BulkEngine(config, journal=journal)


async def run_hooked(
    sim: Sim, job: dict[str, Any], hooked: Callable[[BulkEngine], Hooked], **kw: Any
) -> JobReport:
    spec = parse_job({"account_id": sim.act, "job_id": "migration", **job})
    async with engine_for(sim, kw.pop("journal", None)) as engine:
        return await run_job(hooked(engine), spec)


async def test_sources_are_paused_only_after_their_copy_verified(start_sim: Any) -> None:
    sim = await start_sim()
    ids = await seed_account(sim, big_ads=2)
    order: list[str] = []

    def before(ops: list[Operation]) -> None:
        order.extend(o.op_id for o in ops if "/verify/" in o.op_id or "/switch/" in o.op_id)

    report = await run_hooked(sim, {"tasks": [{"type": "migrate", "key": "m"}]}, lambda e: Hooked(e, before))
    found = by_name(report)
    for name in ("asc", "large"):
        record = found[name]
        assert record["verified"] is True and record["source_paused"] is True
        assert sim.node(ids[name]).status == "PAUSED" and sim.node(record["new_id"]).status == "ACTIVE"
        assert record["switch"].startswith("source paused")
        assert order.index(f"m/verify/{record['new_id']}") < order.index(f"m/switch/{ids[name]}")
    assert sim.node(ids["aac"]).status == "ACTIVE"  # in place: nothing to switch
    assert report.ok


async def test_a_failed_verification_leaves_the_source_active_and_says_why(start_sim: Any) -> None:
    sim = await start_sim()
    ids = await seed_account(sim, big_ads=2)

    def before(ops: list[Operation]) -> None:
        """Just before the verification reads, the copy of "asc" comes out half-migrated and missing an ad."""
        if any(o.op_id.startswith("m/verify/") for o in ops):
            copy = next(n for n in sim.nodes("campaign") if n.data.get("source_campaign_id") == ids["asc"])
            copy.data["smart_promotion_type"] = "AUTOMATED_SHOPPING_ADS"
            for ad in sim.children(copy.id, "ad"):
                ad.data["status"] = "DELETED"

    report = await run_hooked(sim, {"tasks": [{"type": "migrate", "key": "m"}]}, lambda e: Hooked(e, before))
    record = by_name(report)["asc"]
    assert record["verified"] is False and record["source_paused"] is False
    assert sim.node(ids["asc"]).status == "ACTIVE" and posts_to(sim, ids["asc"]) == 0
    problems = " ".join(record["verify_problems"])
    assert (
        "smart_promotion_type reads AUTOMATED_SHOPPING_ADS" in problems
        and "missing from the copy" in problems
    )
    switch = report.outcome(f"m/switch/{ids['asc']}")
    assert switch.state.value == "skipped" and "not verified" in (switch.reason or "")
    assert "source left ACTIVE" in record["switch"] and not report.ok
    assert sim.node(ids["large"]).status == "PAUSED"  # the other copy verified: its source switched


async def test_an_unverified_copy_kept_beside_its_source_is_not_a_success(start_sim: Any) -> None:
    sim = await start_sim()
    asc = await make_asc(sim, "asc")

    def before(ops: list[Operation]) -> None:
        if any(o.op_id.startswith("m/verify/") for o in ops):
            for node in sim.nodes("campaign"):
                if node.data.get("source_campaign_id") == asc:
                    node.data["smart_promotion_type"] = "AUTOMATED_SHOPPING_ADS"

    job = {"tasks": [{"type": "migrate", "key": "m", "after_copy": "keep_source"}]}
    report = await run_hooked(sim, job, lambda e: Hooked(e, before))
    flagged = report.outcome(f"m/unverified/{asc}")
    assert flagged.state.value == "skipped" and "not verified" in (flagged.reason or "") and not report.ok
    assert sim.node(asc).status == "ACTIVE"


async def test_keep_source_leaves_both_running(start_sim: Any) -> None:
    sim = await start_sim()
    asc = await make_asc(sim, "asc")
    report = await sim.run({"tasks": [{"type": "migrate", "key": "m", "after_copy": "keep_source"}]})
    record = by_name(report)["asc"]
    assert record["verified"] is True and "keep_source" in record["switch"]
    assert sim.node(asc).status == "ACTIVE" and sim.node(record["new_id"]).status == "ACTIVE"


async def test_the_full_id_map_matches_the_store_and_reaches_every_report(
    start_sim: Any, tmp_path: Path
) -> None:
    sim = await start_sim()
    await seed_account(sim, big_ads=2)
    report = await sim.run({"tasks": [{"type": "migrate", "key": "m"}]})
    source_key = {"campaign": "source_campaign_id", "adset": "source_adset_id", "ad": "source_ad_id"}
    for name in ("asc", "large", "aac", "big"):  # "big" has 2 ads here: eligible, chunked
        record = by_name(report)[name]
        new_tree = [record["new_id"]] + [
            n.id for t in ("adset", "ad") for n in sim.children(record["new_id"], t)
        ]
        assert sorted(e["copied_id"] for e in record["id_map"]) == sorted(new_tree)
        for entry in record["id_map"]:
            node = sim.node(entry["copied_id"])
            assert node.type == entry["type"]
            if record["action"] == "copy_and_migrate":
                assert node.data[source_key[entry["type"]]] == entry["source_id"]
            else:
                assert entry["copied_id"] == entry["source_id"]  # in place: ids kept
    data = json.loads(json.dumps(report.to_dict()))
    rows = list(migration_map_rows(data))
    assert (
        len(rows) == sum(len(r["id_map"]) for r in data["tasks"][0]["details"]["campaigns"]) == 3 + 5 + 3 + 4
    )
    path = write_migration_csv(data, tmp_path / "job.csv")
    assert path is not None and path.name == "job.migration.csv"
    with path.open(newline="", encoding="utf-8") as handle:
        assert len(list(csv.DictReader(handle))) == len(rows)
    page = render_html(data)
    assert 'id="migration"' in page and by_name(report)["large"]["new_id"] in page


async def test_a_migrated_campaign_still_disabled_gets_its_readiness_applied(start_sim: Any) -> None:
    """Graph migrates the copy but one lever comes out off (here: placement targeting on its ad set, set on the
    server just before the verification reads): the follow-up reports the levers and, with ``apply``, sends
    the documented change and reads the state again."""

    def disable_placements(ops: list[Operation]) -> None:
        if any(o.op_id.startswith("m/verify/") for o in ops):
            for node in sim.nodes("campaign"):
                if node.data.get("source_campaign_id"):
                    for child in sim.children(node.id, "adset"):
                        child.data["targeting"] = {**GEO, "publisher_platforms": ["facebook"]}

    for mode in ("report", "apply"):
        sim = await start_sim()
        await make_asc(sim, "asc")
        job = {"tasks": [{"type": "migrate", "key": "m", "readiness": mode}]}
        report = await run_hooked(sim, job, lambda e: Hooked(e, disable_placements))
        record = by_name(report)["asc"]
        assert record["verified"] is True and record["source_paused"] is True  # migrated all the same
        assert record["readiness"]["levers"]["advantage_placement_state"] == "DISABLED"
        assert any("advantage_state is DISABLED" in w for w in record["warnings"])
        copied_set = sim.children(record["new_id"], "adset")[0]
        if mode == "report":
            assert record["readiness"]["applied"] is False
            assert record["advantage_state_info"]["advantage_state"] == "DISABLED"
            assert "publisher_platforms" in copied_set.data["targeting"]
        else:
            assert record["readiness"]["applied"] is True, record["readiness"]
            assert record["advantage_state_info"] == {"advantage_state": "ADVANTAGE_PLUS_SALES", **ALL_ON}
            assert "publisher_platforms" not in copied_set.data["targeting"]
            assert report.ok


@pytest.mark.parametrize("copies", ["pause", "delete"])
async def test_rollback_restores_statuses_exactly(start_sim: Any, tmp_path: Path, copies: str) -> None:
    sim = await start_sim()
    await seed_account(sim, big_ads=2)
    before = statuses(sim)
    migrated = await sim.run({"tasks": [{"type": "migrate", "key": "m"}]})
    found = by_name(migrated)
    copied = [found[n]["new_id"] for n in ("asc", "large", "big")]
    assert {sim.node(found[n]["source_id"]).status for n in ("asc", "large", "big")} == {"PAUSED"}
    (tmp_path / "migration.json").write_text(json.dumps(migrated.to_dict()), encoding="utf-8")
    job = {"tasks": [{"type": "migrate", "key": "rb", "mode": "rollback", "rollback_report": "migration.json",
                      "rollback_copies": copies}]}  # fmt: skip
    undone = await sim.run(job, base_dir=tmp_path)
    after = statuses(sim)
    assert {k: v for k, v in after.items() if k in before} == before  # every source object as it was
    expected = "PAUSED" if copies == "pause" else "DELETED"
    assert {sim.node(c).status for c in copied} == {expected}
    not_reversible = undone.outcome(f"rb/rollback/in_place/{found['aac']['source_id']}")
    assert not_reversible.state.value == "skipped" and "not reversible" in (not_reversible.reason or "")
    # 6 reads (3 copies, 3 paused sources), 3 copies paused or deleted, 3 sources re-activated
    assert undone.counts == {"succeeded": 6 + 3 + 3, "failed": 0, "skipped": 1}
    again = await sim.run({**job, "job_id": "again"}, base_dir=tmp_path)  # nothing left to undo
    assert again.counts["failed"] == 0 and statuses(sim) == after
    assert not [o for o in again.outcomes if o.kind == "update"]


def _entries(id_map: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return sorted((e["type"], e["source_id"], e["copied_id"]) for e in id_map)


def journal_maps(journal: MemoryJournal, job_id: str = "migration") -> dict[str, list[tuple[str, str, str]]]:
    """Source campaign → its old → new map, as the journal alone holds it."""
    return {r.source_id: _entries(r.id_map) for r in journal_records(journal, job_id)["m"]}


def report_maps(report: JobReport) -> dict[str, list[tuple[str, str, str]]]:
    return {r["source_id"]: _entries(r["id_map"]) for r in by_name(report).values() if r["id_map"]}


async def test_the_journal_holds_the_map_and_the_rollback_reads_it(start_sim: Any) -> None:
    """The id map is journaled (the copy's answer and the map record, the tree read of each result): read
    back from the journal it is the report's; ``mode: rollback`` with ``rollback_job`` (no journal named: the
    one it runs with) restores every status exactly, without the report."""
    sim = await start_sim()
    await seed_account(sim, big_ads=2)
    before = statuses(sim)
    journal = MemoryJournal()
    migrated = await run_hooked(sim, {"tasks": [{"type": "migrate", "key": "m"}]}, Hooked, journal=journal)
    assert journal_maps(journal) == report_maps(migrated) and len(journal_maps(journal)) == 4
    map_ops = [o.op_id for o in migrated.outcomes if o.op_id.startswith("m/map/")]
    new_asc = by_name(migrated)["asc"]["new_id"]
    assert f"m/map/{by_name(migrated)['asc']['source_id']}/{new_asc}/ads/p0" in map_ops
    job = {"job_id": "rollback", "tasks": [{"type": "migrate", "key": "rb", "mode": "rollback",
                                            "rollback_job": "migration"}]}  # fmt: skip
    migrated_statuses = statuses(sim)
    spec = parse_job({"account_id": sim.act, **job, "job_id": "dry"})
    async with engine_for(sim, journal) as engine:  # a dry run of the rollback: Graph checks, nothing changes
        dry = await run_job(engine, spec, CompileContext(validate_only=True))
    assert statuses(sim) == migrated_statuses and dry.counts["failed"] == 0
    assert len([o for o in dry.outcomes if o.kind == "update" and o.state.value == "succeeded"]) == 6
    undone = await run_hooked(sim, job, Hooked, journal=journal)
    assert {k: v for k, v in statuses(sim).items() if k in before} == before
    assert undone.task("rb").details["rollback_from"] == "journal"
    assert undone.counts == {"succeeded": 6 + 3 + 3, "failed": 0, "skipped": 1}  # + aac: not reversible
    wrong = {"job_id": "rb2", "tasks": [{"type": "migrate", "mode": "rollback", "rollback_job": "not-a-job"}]}
    async with engine_for(
        sim, journal
    ) as engine:  # a job the journal never ran: refused, not "nothing to undo"
        with pytest.raises(JobFileError, match="holds no migration of this job"):
            await run_job(engine, parse_job({"account_id": sim.act, **wrong}))
    assert {k: v for k, v in statuses(sim).items() if k in before} == before


@pytest.mark.parametrize(
    ("fields", "rule_path"),
    [
        ({"mode": "rollback"}, "mode"),
        ({"mode": "rollback", "rollback_job": "j", "rollback_report": "r.json"}, "mode"),
        ({"rollback_job": "j"}, "rollback_job"),
        ({"mode": "rollback", "rollback_report": "r.json", "rollback_journal": "j.db"}, "rollback_journal"),
    ],
)
def test_a_rollback_names_one_migration(fields: dict[str, Any], rule_path: str, tmp_path: Path) -> None:
    (tmp_path / "r.json").write_text(json.dumps({"tasks": []}), encoding="utf-8")
    with pytest.raises(JobFileError) as raised:
        parse_job({"account_id": "act_1", "tasks": [{"type": "migrate", **fields}]}, base_dir=tmp_path)
    assert any(i.rule == "migrate.rollback" and i.path[-1] == rule_path for i in raised.value.issues)


def test_a_rollback_journal_is_checked_before_any_call(tmp_path: Path) -> None:
    task = {"type": "migrate", "mode": "rollback", "rollback_job": "j", "rollback_journal": "missing.db"}
    with pytest.raises(JobFileError) as raised:
        parse_job({"account_id": "act_1", "tasks": [task]}, base_dir=tmp_path)
    assert [i.rule for i in raised.value.issues] == ["migrate.rollback.missing"]


async def test_kill_and_resume_at_every_phase_sends_nothing_twice(start_sim: Any) -> None:
    """Killed right after each engine job of the migration (its answers journaled), then run again: the same
    result as an uninterrupted run, one copy per source, one pause per source."""
    job = {"tasks": [{"type": "migrate", "key": "m"}]}
    reference = await start_sim()
    ref_ids = await seed_account(reference, big_ads=2)
    jobs = Hooked(engine_for(reference))  # count the engine jobs of an uninterrupted run

    async with engine_for(reference, MemoryJournal()) as engine:
        jobs.engine = engine
        expected = await run_job(jobs, parse_job({"account_id": reference.act, "job_id": "migration", **job}))
    shape = {
        n: (r["state"], r["verified"], r["source_paused"], len(r["id_map"]))
        for n, r in by_name(expected).items()
    }
    assert jobs.jobs >= 8, jobs.jobs
    for kill_after in range(jobs.jobs):
        sim = await start_sim()
        ids = await seed_account(sim, big_ads=2)
        journal = MemoryJournal()

        def killer(engine: BulkEngine, k: int = kill_after) -> Hooked:
            hooked = Hooked(engine)
            hooked.kill_after = k
            return hooked

        with pytest.raises(KeyboardInterrupt):
            await run_hooked(sim, job, killer, journal=journal)
        resumed = await run_hooked(sim, job, Hooked, journal=journal)
        got = {
            n: (r["state"], r["verified"], r["source_paused"], len(r["id_map"]))
            for n, r in by_name(resumed).items()
        }
        assert got == shape, kill_after
        assert resumed.ok, kill_after
        assert journal_maps(journal) == report_maps(resumed), kill_after  # one map: the journal's
        assert len(sim.nodes("campaign")) == len(reference.nodes("campaign")), kill_after  # no duplicate copy
        for name in ("asc", "large"):
            assert posts_to(sim, ids[name]) == 1, (kill_after, name)  # one pause, never two
            assert sim.node(ids[name]).status == "PAUSED"
    assert ref_ids.keys() == ids.keys()
