"""Advantage+ migration: classification (pure), preflight classes, copy-and-migrate / in place with verification,
the deep-copy fallback, and the readiness check for ordinary campaigns."""

from __future__ import annotations

import json
from typing import Any

import pytest
from ops_support import GEO, PAGE, Sim, adset, campaign, ids_by_op, tree_job

from bulk_engine import Operation, OpKind, Ref
from bulk_engine.operations import (
    CampaignFacts,
    CompileContext,
    Eligibility,
    MigrateTask,
    classify,
    migrate_campaigns,
    readiness,
)

PIXEL = {"pixel_id": "1234567890", "custom_event_type": "PURCHASE"}
ALL_ON = {
    "advantage_budget_state": "ENABLED",
    "advantage_audience_state": "ENABLED",
    "advantage_placement_state": "ENABLED",
}


@pytest.mark.parametrize(
    ("facts", "mode", "eligibility", "action", "reason"),
    [
        (
            CampaignFacts("1", smart_promotion_type="AUTOMATED_SHOPPING_ADS", ads=3),
            "copy",
            Eligibility.ELIGIBLE,
            "copy_and_migrate",
            "",
        ),
        (
            CampaignFacts("1", smart_promotion_type="AUTOMATED_SHOPPING_ADS"),
            "in_place",
            Eligibility.ELIGIBLE,
            "migrate_in_place",
            "",
        ),
        (
            CampaignFacts("1", smart_promotion_type="SMART_APP_PROMOTION"),
            "copy",
            Eligibility.MIGRATE_ONLY,
            "migrate_in_place",
            "not copied",
        ),
        (
            CampaignFacts("1", smart_promotion_type="AUTOMATED_SHOPPING_ADS", ecbp=True),
            "copy",
            Eligibility.BLOCKED,
            None,
            "existing_customer_budget_percentage",
        ),
        (
            CampaignFacts("1", smart_promotion_type="AUTOMATED_SHOPPING_ADS", ads=151),
            "copy",
            Eligibility.BLOCKED,
            None,
            "more than 150 ads",
        ),
        (
            CampaignFacts("1", smart_promotion_type="AUTOMATED_SHOPPING_ADS", ads=150),
            "copy",
            Eligibility.ELIGIBLE,
            "copy_and_migrate",
            "",
        ),
        (
            CampaignFacts("1", smart_promotion_type="AUTOMATED_SHOPPING_ADS", status="ARCHIVED"),
            "in_place",
            Eligibility.BLOCKED,
            None,
            "in place",
        ),
        (
            CampaignFacts("1", smart_promotion_type="AUTOMATED_SHOPPING_ADS", status="ARCHIVED"),
            "copy",
            Eligibility.ELIGIBLE,
            "copy_and_migrate",
            "",
        ),
        (
            CampaignFacts("1", smart_promotion_type="GUIDED_CREATION"),
            "copy",
            Eligibility.ALREADY_MIGRATED,
            None,
            "already",
        ),
        (
            CampaignFacts("1", objective="OUTCOME_TRAFFIC"),
            "copy",
            Eligibility.NOT_APPLICABLE,
            None,
            "only those",
        ),
    ],
)
def test_classify(
    facts: CampaignFacts, mode: Any, eligibility: Eligibility, action: str | None, reason: str
) -> None:
    found = classify(facts, mode=mode)
    assert found.eligibility is eligibility
    assert found.action == action
    assert reason in found.reason
    if eligibility is Eligibility.BLOCKED:
        assert found.manual_path


def test_special_ad_categories_are_flagged_not_blocked() -> None:
    found = classify(
        CampaignFacts("1", smart_promotion_type="AUTOMATED_SHOPPING_ADS", special_ad_categories=("CREDIT",))
    )
    assert found.eligibility is Eligibility.ELIGIBLE and "FAQ" in found.warnings[0]


def test_readiness_names_the_disabled_levers_and_the_fix() -> None:
    camp = {"id": "9", "objective": "OUTCOME_SALES"}
    adsets = [
        {
            "id": "1",
            "status": "ACTIVE",
            "daily_budget": "1000",
            "targeting": {**GEO, "age_min": 30, "publisher_platforms": ["facebook"]},
        },
        {"id": "2", "status": "ACTIVE", "daily_budget": "500", "targeting": GEO},
    ]
    ready = readiness(camp, adsets)
    assert ready.levers == {
        "advantage_budget_state": "DISABLED",
        "advantage_audience_state": "ENABLED",  # ad set 2 targets nothing but geography
        "advantage_placement_state": "DISABLED",
    }
    by_target = {(c.object_id, c.phase): c for c in ready.changes}
    assert by_target[("1", 1)].params == {"targeting": {**GEO, "age_min": 30}}
    # one campaign update moves the budget: the campaign budget replaces the ad sets' (no daily_budget=0)
    assert by_target[("9", 2)].params == {"daily_budget": 1500, "bid_strategy": "LOWEST_COST_WITHOUT_CAP"}
    assert ("2", 1) not in by_target
    assert readiness({"id": "9", "objective": "OUTCOME_TRAFFIC"}, adsets).manual


async def make_asc(
    sim: Sim,
    key: str,
    *,
    kind: str = "AUTOMATED_SHOPPING_ADS",
    ads: int = 1,
    ecbp: int | None = None,
    special: list[str] | None = None,
) -> str:
    """An ASC / AAC the v24.0 way (smart_promotion_type on the campaign, budget on its one ad set)."""
    act = sim.act
    objective = "OUTCOME_SALES" if kind == "AUTOMATED_SHOPPING_ADS" else "OUTCOME_APP_PROMOTION"
    adset_params: dict[str, Any] = {
        "name": f"{key} set",
        "campaign_id": Ref(f"{key}-c"),
        "billing_event": "IMPRESSIONS",
        "optimization_goal": "OFFSITE_CONVERSIONS",
        "promoted_object": PIXEL,
        "daily_budget": 5000,
        "targeting": GEO,
    }
    if ecbp is not None:
        adset_params["existing_customer_budget_percentage"] = ecbp
    ops = [
        Operation(
            op_id=f"{key}-c",
            method="POST",
            path=f"{act}/campaigns",
            account_id=act,
            kind=OpKind.CREATE_CAMPAIGN,
            params={
                "name": key,
                "objective": objective,
                "special_ad_categories": special or [],
                "smart_promotion_type": kind,
            },
        ),
        Operation(
            op_id=f"{key}-s",
            method="POST",
            path=f"{act}/adsets",
            account_id=act,
            kind=OpKind.CREATE_ADSET,
            params=adset_params,
        ),
        Operation(
            op_id=f"{key}-cr",
            method="POST",
            path=f"{act}/adcreatives",
            account_id=act,
            kind=OpKind.CREATE_CREATIVE,
            params={
                "name": key,
                "object_story_spec": {"page_id": PAGE, "link_data": {"link": "https://example.com"}},
            },
        ),
        *(
            Operation(
                op_id=f"{key}-a{i}",
                method="POST",
                path=f"{act}/ads",
                account_id=act,
                kind=OpKind.CREATE_AD,
                params={
                    "name": f"{key} ad {i}",
                    "adset_id": Ref(f"{key}-s"),
                    "creative": {"creative_id": Ref(f"{key}-cr")},
                },
            )
            for i in range(ads)
        ),
    ]
    async with sim.engine() as engine:
        result = await engine.run(ops)
    assert result.ok, [o.to_dict() for o in result.outcomes if o.state.value != "succeeded"]
    return str(result.outcome(f"{key}-c").graph_id)


def records(report: Any) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in report.details["campaigns"]}


async def test_preflight_classifies_every_campaign_of_the_account(start_sim: Any) -> None:
    sim = await start_sim(max_ads_for_migration=2)
    await make_asc(sim, "asc")
    await make_asc(sim, "aac", kind="SMART_APP_PROMOTION")
    await make_asc(sim, "ecbp", ecbp=30)
    await make_asc(sim, "big", ads=3)
    await make_asc(sim, "credit", special=["CREDIT"])
    await sim.run(tree_job([campaign("ordinary", objective="OUTCOME_SALES", ad_sets=[adset("s")])]))
    task = MigrateTask(type="migrate", preflight_only=True, max_ads=2)
    async with sim.engine() as engine:
        report = await migrate_campaigns(engine, task, account_id=sim.act)
    found = records(report)
    assert {n: r["eligibility"] for n, r in found.items()} == {
        "asc": "eligible",
        "aac": "migrate_only",
        "ecbp": "blocked",
        "big": "blocked",
        "credit": "eligible",
        "ordinary": "not_applicable",
    }
    assert (
        "existing_customer_budget_percentage" in found["ecbp"]["reason"]
        and "Ads Manager" in found["ecbp"]["manual_path"]
    )
    assert "3 ads" in found["big"]["reason"]
    assert found["credit"]["warnings"]
    assert found["ordinary"]["readiness"]["levers"]["advantage_budget_state"] == "DISABLED"
    assert report.details["classes"] == {"eligible": 2, "migrate_only": 1, "blocked": 2, "not_applicable": 1}
    assert all(r["state"] == "not_run" for r in found.values())
    assert report.counts["failed"] == 0
    assert all(o.kind == "read" for o in report.outcomes)  # a preflight writes nothing


async def test_copy_and_migrate_verifies_the_advantage_state(start_sim: Any) -> None:
    sim = await start_sim()
    small = await make_asc(sim, "small")  # 3 objects: one synchronous copy
    large = await make_asc(sim, "large", ads=3)  # 5 objects: 100/1885194, chunked copy then migrate in place
    app = await make_asc(sim, "app", kind="SMART_APP_PROMOTION")
    blocked = await make_asc(sim, "ecbp", ecbp=20)
    report = await sim.run(
        {"tasks": [{"type": "migrate", "key": "m", "campaign_ids": [small, large, app, blocked]}]}
    )
    found = records(report.task("m"))
    for name in ("small", "large"):
        record = found[name]
        assert record["state"] == "migrated" and record["verified"] is True
        assert record["smart_promotion_type"] == "GUIDED_CREATION"
        assert record["advantage_state_info"] == {"advantage_state": "ADVANTAGE_PLUS_SALES", **ALL_ON}
        assert record["new_id"] != record["source_id"]
        assert (
            sim.node(record["source_id"]).data["smart_promotion_type"] == "AUTOMATED_SHOPPING_ADS"
        )  # source kept
    assert found["small"]["fallback"] is None
    assert "1885194" in found["large"]["fallback"]
    new_large = found["large"]["new_id"]
    assert len(sim.children(new_large, "ad")) == 3
    assert sim.node(new_large).data["daily_budget"] == "5000"  # the ad set budget moved to the campaign
    assert found["app"]["eligibility"] == "migrate_only" and found["app"]["new_id"] == app
    assert found["app"]["smart_promotion_type"] == "GUIDED_CREATION"
    assert found["ecbp"]["state"] == "skipped" and found["ecbp"]["new_id"] is None
    assert sim.node(blocked).data["smart_promotion_type"] == "AUTOMATED_SHOPPING_ADS"
    data = json.loads(json.dumps(report.to_dict()))  # the CLI's --report
    # the refused synchronous copy of "large" was completed by the chunked copy: it counts as succeeded
    assert data["counts"]["failed"] == 0 and data["counts"]["skipped"] == 0
    replaced = report.outcome(f"m/migrate/{large}")
    assert replaced.state.value == "succeeded" and "completed by chunked copy" in (replaced.reason or "")
    assert "1885194" in (replaced.reason or "") and replaced.result["completed_by"] == "chunked copy"
    assert replaced.graph_id == new_large and len(replaced.result["ad_object_ids"]) == 5
    assert data["tasks"][0]["details"]["classes"] == {"eligible": 2, "migrate_only": 1, "blocked": 1}


async def test_in_place_keeps_ids(start_sim: Any) -> None:
    sim = await start_sim()
    asc = await make_asc(sim, "asc", ads=5)
    report = await sim.run({"tasks": [{"type": "migrate", "campaign_ids": [asc], "mode": "in_place"}]})
    [record] = report.task("t0").details["campaigns"]
    assert record["new_id"] == asc and record["verified"] is True
    assert len(sim.nodes("campaign")) == 1


async def test_graph_refusal_is_reported_with_its_error(start_sim: Any) -> None:
    """The preflight saw ≤ 150 ads; Graph's own limit is lower here: its refusal lands in the record."""
    sim = await start_sim(max_ads_for_migration=1)
    asc = await make_asc(sim, "asc", ads=2)
    report = await sim.run({"tasks": [{"type": "migrate", "campaign_ids": [asc], "mode": "in_place"}]})
    [record] = report.task("t0").details["campaigns"]
    assert record["state"] == "failed" and record["error"]["error_subcode"] == 4990003


async def test_readiness_apply_turns_the_levers_on(start_sim: Any) -> None:
    sim = await start_sim()
    job = tree_job(
        [
            campaign(
                "ordinary",
                objective="OUTCOME_SALES",
                ad_sets=[
                    adset(
                        "placed",
                        optimization_goal="OFFSITE_CONVERSIONS",
                        promoted_object=PIXEL,
                        targeting={**GEO, "age_min": 30, "publisher_platforms": ["facebook"]},
                    ),
                    adset(
                        "narrow",
                        optimization_goal="OFFSITE_CONVERSIONS",
                        promoted_object=PIXEL,
                        daily_budget=700,
                        targeting={**GEO, "age_min": 40},
                    ),
                ],
            )
        ]
    )
    created = ids_by_op(await sim.run(job))
    cid = str(created["t0/c0"])
    report = await sim.run({"tasks": [{"type": "migrate", "campaign_ids": [cid], "readiness": "apply"}]})
    [record] = report.task("t0").details["campaigns"]
    ready = record["readiness"]
    assert ready["levers"] == {key: "DISABLED" for key in ALL_ON}
    assert ready["applied"] is True and not ready.get("errors")
    assert ready["after"] == {"advantage_state": "ADVANTAGE_PLUS_SALES", **ALL_ON}
    assert ready["smart_promotion_type_after"] == "GUIDED_CREATION"
    assert sim.node(cid).data["daily_budget"] == "1700"
    # the campaign budget replaced the ad sets' (S003 "campaign level or adset level, not both"): no ad-set
    # write touched a budget, the one campaign update moved it
    assert all("daily_budget" not in s.data for s in sim.children(cid, "adset"))
    writes = [o for o in report.outcomes if o.op_id.startswith("t0/ready/")]
    assert sorted(o.op_id.rsplit(".", 1)[1] for o in writes) == ["1", "1", "2"]


async def test_readiness_apply_reports_a_server_that_refuses_the_budget_switch(start_sim: Any) -> None:
    sim = await start_sim(campaign_budget_switch="refuse")
    job = tree_job(
        [
            campaign(
                "ordinary",
                objective="OUTCOME_SALES",
                ad_sets=[adset("a", optimization_goal="OFFSITE_CONVERSIONS", promoted_object=PIXEL)],
            )
        ]
    )
    cid = str(ids_by_op(await sim.run(job))["t0/c0"])
    report = await sim.run({"tasks": [{"type": "migrate", "campaign_ids": [cid], "readiness": "apply"}]})
    [record] = report.task("t0").details["campaigns"]
    assert record["readiness"]["applied"] is False
    assert any("1885621" in str(e) for e in record["readiness"]["errors"])
    assert sim.children(cid, "adset")[0].data["daily_budget"] == "1000"  # nothing half-moved


async def test_migrate_dry_run_preflights_and_lets_graph_validate_without_changes(start_sim: Any) -> None:
    """validate_only: the preflight reads, then ``migrate_to_advantage_plus`` + ``validate_only`` per campaign
    (the server's own rules: here its 2-ad limit, stricter than the task's) and the readiness updates with
    ``validate_only``; no write changes anything."""
    sim = await start_sim(max_ads_for_migration=2)
    await make_asc(sim, "asc")
    await make_asc(sim, "big", ads=3)
    await sim.run(
        tree_job(
            [
                campaign(
                    "ordinary",
                    objective="OUTCOME_SALES",
                    ad_sets=[adset("s", optimization_goal="OFFSITE_CONVERSIONS", promoted_object=PIXEL)],
                )
            ]
        )
    )
    snapshot = json.dumps(sim.store.snapshot(), sort_keys=True, default=str)
    calls = len(sim.server.core.calls)
    report = await sim.run(
        {"tasks": [{"type": "migrate", "readiness": "apply"}]}, CompileContext(validate_only=True)
    )
    found = records(report.task("t0"))
    assert found["asc"]["state"] == "validated" and "dry run" in found["asc"]["warnings"][-1]
    assert found["big"]["state"] == "failed" and found["big"]["error"]["code"] == 100  # the server's limit
    assert found["ordinary"]["readiness"]["validated"] is True
    assert found["ordinary"]["readiness"]["applied"] is False
    sent = sim.server.core.calls[calls:]
    posts = [c for c in sent if c.method != "GET"]
    assert posts and all(c.path.split("/")[-1].isdigit() for c in posts)  # only validate_only updates
    assert json.dumps(sim.store.snapshot(), sort_keys=True, default=str) == snapshot  # nothing changed


@pytest.mark.parametrize(
    ("action", "kind", "eligibility", "status", "refused"),
    [
        ("copy", "ASC", "eligible", "ACTIVE", None),
        ("in_place", "ASC", "eligible", "ACTIVE", None),
        ("in_place", "ASC", "eligible", "ARCHIVED", "cannot be migrated in place"),
        ("copy", "ASC", "eligible", "ARCHIVED", None),  # archived campaigns can be copied
        ("copy", "AAC", "migrate_only", "ACTIVE", "only be migrated, not copied"),
        ("in_place", "AAC", "migrate_only", "ACTIVE", None),
        ("copy", "ASC", "blocked", "ACTIVE", "only skip or manual"),
        ("manual", "ASC", "blocked", "ACTIVE", None),
        ("copy", "ordinary", "not_applicable", "ACTIVE", "only ASC and AAC"),
        ("in_place", "Advantage+", "already_migrated", "ACTIVE", "nothing to migrate"),
        ("skip", "ordinary", "not_applicable", None, None),
        ("later", "ASC", "eligible", "ACTIVE", "unknown action"),
    ],
)
def test_forbidden_plan_actions(
    action: str, kind: str, eligibility: str, status: str | None, refused: str | None
) -> None:
    from bulk_engine.operations.migrate_eligibility import forbidden_action

    why = forbidden_action(action, kind, eligibility, status)
    assert (why is None) == (refused is None) and (refused is None or refused in str(why))


def test_full_map_completes_ad_object_ids_from_the_copy_tree() -> None:
    """The seed's example answer lists only the campaign: the ad sets and ads come from the tree read."""
    from bulk_engine.operations.migrate_record import MigrationRecord, full_map, verify_problems

    record = MigrationRecord("1", "asc", "eligible", "", action="copy_and_migrate", new_id="9")
    record.id_map = [{"type": "campaign", "source_id": "1", "copied_id": "9"}]
    adsets = [{"id": "91", "source_adset_id": "11"}]
    ads = [{"id": "92", "source_ad_id": "12"}, {"id": "93", "source_ad_id": "13"}]
    record.id_map = full_map(record, adsets, ads)
    assert [(e["type"], e["source_id"], e["copied_id"]) for e in record.id_map] == [
        ("campaign", "1", "9"),
        ("adset", "11", "91"),
        ("ad", "12", "92"),
        ("ad", "13", "93"),
    ]
    node = {"id": "9", "smart_promotion_type": "GUIDED_CREATION", "advantage_state_info": {}}
    assert verify_problems(record, node, adsets, ads, ["11"], None) == []
    assert "ad set(s) not copied: 14" in verify_problems(record, node, adsets, ads, ["11", "14"], None)[0]
    missing = verify_problems(
        record, {**node, "smart_promotion_type": "AUTOMATED_SHOPPING_ADS"}, adsets, ads[:1], ["11"], None
    )
    assert "reads AUTOMATED_SHOPPING_ADS" in missing[0] and "ad 13 → 93" in missing[1]
