"""Issue 17 through the command line: ``migrate-plan`` writes the plan, ``run`` executes an edited one (reports
with the migration map), a bad plan exits 2 naming file:line, and a deep copy completed by the chunked
fallback exits 0."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import anyio
import pytest
import yaml
from cli_support import run_cli

from bulk_engine import BulkEngine, Credentials, EngineConfig, Operation, OpKind, Ref
from bulk_engine.simulator import SimulatorServer

PAGE = "2000000001"


async def _cli(*args: str, token: str) -> Any:
    """The CLI in a worker thread, so the in-process simulator keeps serving on this loop."""
    return await anyio.to_thread.run_sync(lambda: run_cli(*args, token=token, timeout=120.0))


async def seed(sim: SimulatorServer, specs: dict[str, tuple[str, int]]) -> dict[str, str]:
    """name → (smart_promotion_type, ads): one campaign → ad set → creative → ads tree each; name → id."""
    info = sim.info()
    act = info["ad_account_ids"][0]
    ops: list[Operation] = []

    def add(op_id: str, edge: str, kind: OpKind, params: dict[str, Any]) -> None:
        ops.append(
            Operation(
                op_id=op_id, method="POST", path=f"{act}/{edge}", params=params, account_id=act, kind=kind
            )
        )

    for name, (kind, ads) in specs.items():
        objective = "OUTCOME_APP_PROMOTION" if kind == "SMART_APP_PROMOTION" else "OUTCOME_SALES"
        campaign: dict[str, Any] = {
            "name": name,
            "objective": objective,
            "special_ad_categories": [],
            "status": "ACTIVE",
        }
        if kind:
            campaign["smart_promotion_type"] = kind
        add(f"{name}-c", "campaigns", OpKind.CREATE_CAMPAIGN, campaign)
        add(f"{name}-s", "adsets", OpKind.CREATE_ADSET, {
            "name": f"{name} set", "campaign_id": Ref(f"{name}-c"), "billing_event": "IMPRESSIONS",
            "optimization_goal": "OFFSITE_CONVERSIONS", "daily_budget": 5000,
            "promoted_object": {"pixel_id": "1234567890", "custom_event_type": "PURCHASE"},
            "targeting": {"geo_locations": {"countries": ["US"]}},
        })  # fmt: skip
        add(f"{name}-cr", "adcreatives", OpKind.CREATE_CREATIVE, {
            "name": name, "object_story_spec": {"page_id": PAGE, "link_data": {"link": "https://example.com"}},
        })  # fmt: skip
        for i in range(ads):
            add(f"{name}-a{i}", "ads", OpKind.CREATE_AD, {
                "name": f"{name} ad {i}", "adset_id": Ref(f"{name}-s"), "creative": {"creative_id": Ref(f"{name}-cr")},
            })  # fmt: skip
    config = EngineConfig(credentials=Credentials(access_token=info["access_token"]), graph_url=sim.url)
    async with BulkEngine(config) as engine:
        result = await engine.run(ops)
    assert result.ok, [o.to_dict() for o in result.outcomes if o.state.value != "succeeded"]
    return {name: str(result.outcome(f"{name}-c").graph_id) for name in specs}


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


async def test_migrate_plan_then_run_the_edited_plan(tmp_path: Path) -> None:
    async with SimulatorServer() as sim:
        info = sim.info()
        act, token = info["ad_account_ids"][0], info["access_token"]
        ids = await seed(sim, {"asc": ("AUTOMATED_SHOPPING_ADS", 1), "big": ("AUTOMATED_SHOPPING_ADS", 3),
                               "app": ("SMART_APP_PROMOTION", 1), "plain": ("", 1)})  # fmt: skip
        plan = tmp_path / "plan.csv"
        done = await _cli(
            "migrate-plan", "--account", act, "-o", str(plan), "--graph-url", sim.url, token=token
        )
        assert done.returncode == 0, done.stderr
        assert "wrote 4 campaign(s)" in done.stdout
        rows = {r["name"]: r for r in read_rows(plan)}
        assert {n: r["action"] for n, r in rows.items()} == {
            "asc": "copy", "big": "copy", "app": "in_place", "plain": "skip"
        }  # fmt: skip
        assert token not in plan.read_text(encoding="utf-8")

        edited = [{**r, "action": "in_place" if r["name"] == "asc" else r["action"]} for r in rows.values()]
        with plan.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, list(edited[0]), lineterminator="\n")
            writer.writeheader()
            writer.writerows(edited)
        job = tmp_path / "migrate.yaml"
        job.write_text(
            yaml.safe_dump(
                {"account_id": act, "tasks": [{"type": "migrate", "key": "m", "plan": "plan.csv"}]}
            )
        )
        out = tmp_path / "out"
        done = await _cli(
            "run", str(job), "--graph-url", sim.url, "--report", str(out / "job.json"),
            "--report-csv", str(out / "job.csv"), "--report-html", str(out / "job.html"), "--log-format", "json",
            token=token,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr + done.stdout
        report = json.loads((out / "job.json").read_text(encoding="utf-8"))
        found = {r["name"]: r for r in report["tasks"][0]["details"]["campaigns"]}
        assert found["asc"]["action"] == "migrate_in_place" and found["asc"]["new_id"] == ids["asc"]
        assert found["big"]["action"] == "copy_and_migrate" and found["big"]["verified"] is True
        assert sim.core.store.get(ids["big"]).status == "PAUSED"  # switched over after verification
        mapped = read_rows(out / "job.migration.csv")
        big = [m for m in mapped if m["source_campaign_id"] == ids["big"]]
        assert sorted(m["type"] for m in big) == ["ad", "ad", "ad", "adset", "campaign"]
        assert all(m["new_id"] and m["new_id"] != m["source_id"] for m in big)
        assert 'id="migration"' in (out / "job.html").read_text(encoding="utf-8")


async def test_a_plan_with_a_forbidden_action_exits_2_naming_the_line(tmp_path: Path) -> None:
    async with SimulatorServer() as sim:
        info = sim.info()
        act, token = info["ad_account_ids"][0], info["access_token"]
        plan = tmp_path / "plan.csv"
        plan.write_text(
            "campaign_id,name,kind,eligibility,reason,action,manual_path,status,budget,ads,warnings\n"
            "120210000000000001,app,AAC,migrate_only,,copy,,ACTIVE,,1,\n",
            encoding="utf-8",
        )
        job = tmp_path / "migrate.yaml"
        job.write_text(
            yaml.safe_dump({"account_id": act, "tasks": [{"type": "migrate", "plan": "plan.csv"}]})
        )
        before = len(sim.core.calls)
        done = await _cli("run", str(job), "--graph-url", sim.url, token=token)
        assert done.returncode == 2, done.stdout + done.stderr
        assert f"{plan}:2:" in done.stderr and "can only be migrated, not copied" in done.stderr
        assert len(sim.core.calls) == before


async def test_a_deep_copy_completed_by_the_chunked_fallback_exits_0(tmp_path: Path) -> None:
    async with SimulatorServer() as sim:
        info = sim.info()
        act, token = info["ad_account_ids"][0], info["access_token"]
        ids = await seed(sim, {"plain": ("", 4)})  # 6 objects > the synchronous limit of 3
        job = tmp_path / "copy.yaml"
        job.write_text(
            yaml.safe_dump(
                {"account_id": act, "tasks": [{"type": "copy", "key": "cp", "source_ids": [ids["plain"]]}]}
            )
        )
        done = await _cli(
            "run", str(job), "--graph-url", sim.url, "--report", str(tmp_path / "r.json"), token=token
        )
        assert done.returncode == 0, done.stdout + done.stderr
        report = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
        assert report["counts"] == {"succeeded": report["counts"]["succeeded"], "failed": 0, "skipped": 0}
        [replaced] = [op for op in report["operations"] if op["op_id"] == f"cp/copy/{ids['plain']}"]
        assert replaced["state"] == "succeeded" and replaced["result"]["completed_by"] == "chunked copy"
        assert len(replaced["result"]["ad_object_ids"]) == 6 and replaced["graph_id"]


def _plan_job(tmp_path: Path, act: str) -> Path:
    job = tmp_path / "migrate.yaml"
    job.write_text(
        yaml.safe_dump({"account_id": act, "tasks": [{"type": "migrate", "key": "m", "plan": "plan.csv"}]})
    )
    return job


async def test_a_plan_row_whose_campaign_is_gone_exits_2_before_any_write(tmp_path: Path) -> None:
    """Since the review one row's campaign vanished (its id is unknown to the account: the preflight's read
    gets Graph's 100/33) and another's was deleted (its edited in_place no longer allowed): the run stops as bad input — file:line, column, value,
    rule, the Graph code — before any write, even for the row that is fine."""
    async with SimulatorServer() as sim:
        info = sim.info()
        act, token = info["ad_account_ids"][0], info["access_token"]
        ids = await seed(sim, {n: ("AUTOMATED_SHOPPING_ADS", 1) for n in ("asc", "gone", "deleted")})
        plan = tmp_path / "plan.csv"
        done = await _cli(
            "migrate-plan", "--account", act, "-o", str(plan), "--graph-url", sim.url, token=token
        )
        assert done.returncode == 0, done.stderr
        text = plan.read_text(encoding="utf-8")
        lines = {row.split(",")[1]: n for n, row in enumerate(text.splitlines(), 1)}
        rows = [
            row.replace(",copy,", ",in_place,") if row.startswith(ids["deleted"]) else row
            for row in text.replace(ids["gone"], "999000111").splitlines()  # an id the account lacks
        ]
        plan.write_text("\n".join(rows) + "\n", encoding="utf-8")
        sim.core.store.get(ids["deleted"]).data["status"] = "DELETED"  # since the review
        before = len(sim.core.calls)
        done = await _cli("run", str(_plan_job(tmp_path, act)), "--graph-url", sim.url, token=token)
        assert done.returncode == 2, done.stdout + done.stderr
        output = done.stdout + done.stderr
        assert f'{plan}:{lines["gone"]}: plan.campaign_id = "999000111"' in output
        assert "does not exist" in output and "rule migrate.plan.unknown" in output
        assert "[Graph code 100/33]" in output
        assert f'{plan}:{lines["deleted"]}: plan.action = "in_place"' in output
        assert "is DELETED" in output and "rule migrate.plan.forbidden" in output
        assert all(c.method == "GET" for c in sim.core.calls[before:])
        assert sim.core.store.get(ids["asc"]).data["smart_promotion_type"] == "AUTOMATED_SHOPPING_ADS"


class KilledAfter:
    """The real engine, killed (as by SIGKILL: no report) right after the first engine job whose operation
    ids contain ``marker`` completed — its answers are journaled."""

    def __init__(self, engine: BulkEngine, marker: str) -> None:
        self.engine, self.marker = engine, marker

    async def run(self, job: Any, *, job_id: str | None = None, fingerprint: str | None = None) -> Any:
        ops = list(job)
        result = await self.engine.run(ops, job_id=job_id, fingerprint=fingerprint)
        if any(self.marker in o.op_id for o in ops):
            raise KeyboardInterrupt(f"killed after {job_id}")
        return result


@pytest.mark.parametrize("killed_after", ["/switch/", "/migrate-copy/", "/chunk/"])
async def test_undo_rolls_back_a_migration_killed_before_its_report(
    tmp_path: Path, killed_after: str
) -> None:
    """Killed after the switch-over (sources paused), or before the verification — right after the chunked
    copy was migrated, or right after its pieces were copied (a copy made, not migrated): no report exists, and ``bulk-engine undo JOURNAL --job`` rolls the migration back from the journal alone — copies
    paused, paused sources active again — with the map the journal holds (the store's, exactly)."""
    from bulk_engine.operations import parse_job, run_job
    from bulk_engine.operations.migrate_journal import journal_records
    from bulk_engine.persistence import SqliteJournal

    async with SimulatorServer() as sim:
        info = sim.info()
        act, token = info["ad_account_ids"][0], info["access_token"]
        ids = await seed(sim, {"asc": ("AUTOMATED_SHOPPING_ADS", 1), "large": ("AUTOMATED_SHOPPING_ADS", 3)})
        store = sim.core.store
        spec = parse_job({"account_id": act, "job_id": "move", "tasks": [{"type": "migrate", "key": "m"}]})
        config = EngineConfig(credentials=Credentials(access_token=token), graph_url=sim.url)
        journal_path = tmp_path / "jobs.db"
        with SqliteJournal(journal_path) as journal:
            async with BulkEngine(config, journal=journal) as engine:
                with pytest.raises(KeyboardInterrupt):
                    await run_job(KilledAfter(engine, killed_after), spec)
            records = {r.source_id: r for r in journal_records(journal, "move")["m"]}
        copies = {s: str(r.new_id) for s, r in records.items()}
        assert set(copies) == set(ids.values()) and all(copies.values())
        source_key = {"campaign": "source_campaign_id", "adset": "source_adset_id", "ad": "source_ad_id"}
        for source, record in records.items():  # the journal's map is the store's
            tree = [
                copies[source],
                *(n.id for t in ("adset", "ad") for n in store.children(copies[source], t)),
            ]
            assert sorted(e["copied_id"] for e in record.id_map) == sorted(tree)
            for entry in record.id_map:
                assert store.get(entry["copied_id"]).data[source_key[entry["type"]]] == entry["source_id"]
        paused = killed_after == "/switch/"
        assert {store.get(s).status for s in ids.values()} == {"PAUSED" if paused else "ACTIVE"}
        before = len(sim.core.calls)
        done = await _cli(
            "undo", str(journal_path), "--job", "move", "--graph-url", sim.url,
            "--report", str(tmp_path / "undo.json"), token=token,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        assert {store.get(s).status for s in ids.values()} == {"ACTIVE"}
        assert {store.get(c).status for c in copies.values()} == {"PAUSED"}
        writes = [c for c in sim.core.calls[before:] if c.method == "POST"]
        assert len(writes) == 2 + (2 if paused else 0)  # each copy paused, each paused source re-activated
        undo = json.loads((tmp_path / "undo.json").read_text(encoding="utf-8"))
        [task] = undo["tasks"]
        assert task["details"]["rollback_from"] == "journal" and task["details"]["rollback_of"] == "move"


async def test_undo_of_a_migration_report_rolls_it_back(tmp_path: Path) -> None:
    """``bulk-engine undo REPORT`` of a finished migration (and the undo file written next to it) adds the
    migration's rollback to the inverse job: from the journal the report names."""
    async with SimulatorServer() as sim:
        info = sim.info()
        act, token = info["ad_account_ids"][0], info["access_token"]
        ids = await seed(sim, {"asc": ("AUTOMATED_SHOPPING_ADS", 1)})
        job = tmp_path / "migrate.yaml"
        job.write_text(yaml.safe_dump({"account_id": act, "tasks": [{"type": "migrate", "key": "m"}]}))
        report = tmp_path / "out" / "job.json"
        done = await _cli(
            "run", str(job), "--graph-url", sim.url, "--report", str(report),
            "--journal", str(tmp_path / "jobs.db"), token=token,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        store = sim.core.store
        [copy] = [
            n for n in store.children(act, "campaign") if n.data.get("source_campaign_id") == ids["asc"]
        ]
        assert store.get(ids["asc"]).status == "PAUSED" and copy.status == "ACTIVE"
        undo_file = report.with_name("job.undo.json")
        assert json.loads(undo_file.read_text(encoding="utf-8"))["migrations"][0]["key"] == "m"
        done = await _cli("undo", str(undo_file), "--graph-url", sim.url, token=token)
        assert done.returncode == 0, done.stdout + done.stderr
        assert store.get(ids["asc"]).status == "ACTIVE" and store.get(copy.id).status == "PAUSED"
        inverse = json.loads((tmp_path / "out" / "job.undo-job" / "undo.json").read_text(encoding="utf-8"))
        [task] = inverse["tasks"]
        assert task["mode"] == "rollback" and task["rollback_job"] and task["rollback_journal"]
