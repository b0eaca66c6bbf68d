"""Acceptance of issue 5: one YAML job file with every operation, run end to end against the simulator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ops_support import PAGE, Sim, simple_tree, tree_job, write

from bulk_engine import Operation, OpKind, Ref
from bulk_engine.operations import load_job

PIXEL = {"pixel_id": "1234567890", "custom_event_type": "PURCHASE"}


async def make_asc(sim: Sim) -> str:
    """An Advantage+ shopping campaign the v24.0 way (jobs cannot create one: removed from v25.0)."""
    act = sim.act
    ops = [
        Operation(
            op_id="c",
            method="POST",
            path=f"{act}/campaigns",
            account_id=act,
            kind=OpKind.CREATE_CAMPAIGN,
            params={
                "name": "ASC",
                "objective": "OUTCOME_SALES",
                "special_ad_categories": [],
                "smart_promotion_type": "AUTOMATED_SHOPPING_ADS",
            },
        ),
        Operation(
            op_id="s",
            method="POST",
            path=f"{act}/adsets",
            account_id=act,
            kind=OpKind.CREATE_ADSET,
            params={
                "name": "ASC set",
                "campaign_id": Ref("c"),
                "billing_event": "IMPRESSIONS",
                "optimization_goal": "OFFSITE_CONVERSIONS",
                "promoted_object": PIXEL,
                "daily_budget": 5000,
                "targeting": {"geo_locations": {"countries": ["US"]}},
            },
        ),
    ]
    async with sim.engine() as engine:
        result = await engine.run(ops)
    assert result.ok
    return str(result.outcome("c").graph_id)


async def test_one_job_file_runs_every_operation_end_to_end(start_sim: Any, tmp_path: Path) -> None:
    sim = await start_sim()
    source = await sim.run(tree_job([simple_tree("Source", ads=1)]))
    source_id = str(source.outcome("t0/c0").graph_id)
    asc = await make_asc(sim)
    write(tmp_path / "ids.csv", f"id\n{source.outcome('t0/c0/s0/a0').graph_id}\n")
    write(tmp_path / "subscribers.csv", "subscription_token\ntok-1\ntok-2\n")
    job = write(
        tmp_path / "everything.yaml",
        f"""\
account_id: {sim.act}
tasks:
  - type: create
    key: create
    creatives:
      hero: {{object_story_spec: {{page_id: "{PAGE}", link_data: {{link: "https://example.com"}}}}}}
    campaigns:
      - name: New
        objective: OUTCOME_TRAFFIC
        special_ad_categories: []
        ad_sets:
          - name: US
            billing_event: IMPRESSIONS
            daily_budget: 1000
            targeting: {{geo_locations: {{countries: [US]}}}}
            ads: [{{name: Hero, creative: hero}}]
  - type: status
    key: status
    status: PAUSED
    csv: ids.csv
  - type: copy
    key: copy
    source_ids: ["{source_id}"]
  - type: copy
    key: clone
    source_ids: ["{source_id}"]
    target_account_id: {sim.accounts[1]}
  - type: migrate
    key: migrate
    campaign_ids: ["{asc}"]
  - type: messages
    key: messages
    campaign: {{name: Spring, page_id: "{PAGE}", daily_budget: 500}}
    message: {{text: Hello}}
    csv: subscribers.csv
""",
    )
    report = await sim.run(load_job(job))
    assert report.counts["failed"] == 0, [o.to_dict() for o in report.outcomes if o.state.value == "failed"]
    tasks = {t.key: t for t in report.tasks}
    assert set(tasks) == {"create", "status", "copy", "clone", "migrate", "messages"}
    assert all(t.to_dict()["counts"]["succeeded"] > 0 for t in tasks.values())  # per-operation reports
    assert tasks["create"].counts == {"succeeded": 4, "failed": 0, "skipped": 0}
    assert sim.node(str(source.outcome("t0/c0/s0/a0").graph_id)).status == "PAUSED"
    assert tasks["copy"].details["copies"][source_id]["new_id"]
    clone = tasks["clone"].details["copies"][source_id]
    assert sim.node(clone["new_id"]).account_id == sim.accounts[1] and not clone["failed"]
    [migrated] = tasks["migrate"].details["campaigns"]
    assert migrated["state"] == "migrated" and migrated["verified"] is True
    assert tasks["messages"].details["sent"] == 2
    as_dict = report.to_dict()
    assert len(as_dict["tasks"]) == 6
