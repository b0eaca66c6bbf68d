"""Issue 17 through the command line: ``migrate-plan`` writes the plan, ``run`` executes an edited one (reports
with the migration map), a bad plan exits 2 naming file:line, and a deep copy completed by the chunked
fallback exits 0."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import anyio
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
