"""Create trees end to end against the simulator: the seed messaging ads, matrices, Advantage+, dry runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ops_support import GEO, PAGE, adset, campaign, creative, ids_by_op, simple_tree, tree_job, write

from bulk_engine import Operation, OpKind
from bulk_engine.operations import CompileContext, CreateTask, create_objects, load_job
from bulk_engine.persistence.keys import strip_key

IG_ACCOUNT = "3000000001"  # the simulator's Instagram account connected to PAGE

WELCOME = {  # S000 Step 3 example
    "type": "VISUAL_EDITOR",
    "version": 2,
    "landing_screen_type": "welcome_message",
    "media_type": "text",
    "text_format": {
        "customer_action_type": "ice_breakers",
        "message": {
            "ice_breakers": [
                {"title": "Can I make a purchase?", "response": "This is a response 1"},
                {"title": "Can I see a menu?", "response": "This is a response 2"},
            ],
            "quick_replies": [],
            "text": "Hi {{user_first_name}}! Please let us know how we can help you.",
        },
    },
    "user_edit": False,
    "surface": "visual_editor_new",
}


def messaging_adset(name: str, destination: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "destination_type": destination,
        "billing_event": "IMPRESSIONS",
        "optimization_goal": "CONVERSATIONS",
        "promoted_object": {"page_id": PAGE},
        "bid_strategy": "LOWEST_COST_WITHOUT_CAP",
        "daily_budget": 2000,
        "targeting": GEO,
        "status": "PAUSED",
        **extra,
    }


SEED_JOB: dict[str, Any] = {
    "tasks": [
        {
            "type": "create",
            "creatives": {
                # S000: click to multidestination (asset feed with the three destinations + ice breakers)
                "multi": {
                    "name": "Multidestination",
                    "object_story_spec": {
                        "page_id": PAGE,
                        "link_data": {
                            "name": "Headline",
                            "message": "Primary text",
                            "link": "https://fb.com/messenger_doc/",
                            "page_welcome_message": WELCOME,
                            "call_to_action": {
                                "type": "MESSAGE_PAGE",
                                "value": {"app_destination": "MESSENGER"},
                            },
                        },
                    },
                    "asset_feed_spec": {
                        "optimization_type": "DOF_MESSAGING_DESTINATION",
                        "call_to_actions": [
                            {
                                "type": "MESSAGE_PAGE",
                                "value": {
                                    "app_destination": "MESSENGER",
                                    "link": "https://fb.com/messenger_doc/",
                                },
                            },
                            {
                                "type": "WHATSAPP_MESSAGE",
                                "value": {
                                    "app_destination": "WHATSAPP",
                                    "link": "https://api.whatsapp.com/send",
                                },
                            },
                            {
                                "type": "INSTAGRAM_MESSAGE",
                                "value": {
                                    "app_destination": "INSTAGRAM_DIRECT",
                                    "link": "https://www.instagram.com",
                                },
                            },
                        ],
                    },
                    "degrees_of_freedom_spec": {
                        "creative_features_spec": {"standard_enhancements": {"enroll_status": "OPT_IN"}}
                    },
                },
                # S001: click to Messenger, greeting as a JSON string
                "messenger": {
                    "name": "Messenger",
                    "object_story_spec": {
                        "page_id": PAGE,
                        "link_data": {
                            "link": "https://fb.com/messenger_doc/",
                            "message": "Chat with us",
                            "page_welcome_message": json.dumps(WELCOME),
                            "call_to_action": {
                                "type": "MESSAGE_PAGE",
                                "value": {"app_destination": "MESSENGER"},
                            },
                        },
                    },
                },
                # S002: click to Instagram
                "instagram": {
                    "name": "Instagram",
                    "object_story_spec": {
                        "page_id": PAGE,
                        "instagram_user_id": IG_ACCOUNT,
                        "link_data": {
                            "link": "https://www.instagram.com",
                            "message": "DM us",
                            "call_to_action": {
                                "type": "INSTAGRAM_MESSAGE",
                                "value": {"app_destination": "INSTAGRAM_DIRECT"},
                            },
                        },
                    },
                },
                "whatsapp": {
                    "name": "WhatsApp",
                    "object_story_spec": {
                        "page_id": PAGE,
                        "link_data": {
                            "link": "https://api.whatsapp.com/send",
                            "message": "Message us on WhatsApp",
                            "call_to_action": {
                                "type": "WHATSAPP_MESSAGE",
                                "value": {"app_destination": "WHATSAPP"},
                            },
                        },
                    },
                },
            },
            "campaigns": [
                campaign(
                    "S000 multidestination",
                    objective="OUTCOME_ENGAGEMENT",
                    ad_sets=[
                        messaging_adset(
                            "All three",
                            "MESSAGING_INSTAGRAM_DIRECT_MESSENGER_WHATSAPP",
                            ads=[{"name": "Multi ad", "creative": "multi", "status": "ACTIVE"}],
                        )
                    ],
                ),
                campaign(
                    "S001 click to Messenger",
                    objective="OUTCOME_TRAFFIC",
                    special_ad_categories=["NONE"],
                    buying_type="AUCTION",
                    ad_sets=[
                        messaging_adset(
                            "Messenger",
                            "MESSENGER",
                            bid_strategy="LOWEST_COST_WITH_BID_CAP",
                            bid_amount=200,
                            ads=[{"name": "Messenger ad", "creative": "messenger"}],
                        )
                    ],
                ),
                campaign(
                    "S001 Messenger leads",
                    objective="OUTCOME_LEADS",
                    special_ad_categories=["NONE"],
                    ad_sets=[
                        messaging_adset(
                            "Leads",
                            "MESSENGER",
                            optimization_goal="LEAD_GENERATION",
                            ads=[{"name": "Leads ad", "creative": "messenger"}],
                        )
                    ],
                ),
                campaign(
                    "S002 click to Instagram",
                    objective="OUTCOME_SALES",
                    ad_sets=[
                        messaging_adset(
                            "Instagram", "INSTAGRAM_DIRECT", ads=[{"name": "IG ad", "creative": "instagram"}]
                        )
                    ],
                ),
                campaign(
                    "Click to WhatsApp",
                    objective="OUTCOME_ENGAGEMENT",
                    ad_sets=[
                        messaging_adset(
                            "WhatsApp", "WHATSAPP", ads=[{"name": "WA ad", "creative": "whatsapp"}]
                        )
                    ],
                ),
            ],
        }
    ]
}


async def test_messaging_trees_of_each_seed_are_created(start_sim: Any) -> None:
    sim = await start_sim()
    report = await sim.run(SEED_JOB)
    assert report.counts == {"succeeded": 19, "failed": 0, "skipped": 0}, [
        o.to_dict() for o in report.outcomes if o.state.value != "succeeded"
    ]
    ids = ids_by_op(report)
    expected = {
        "t0/c0/s0": "MESSAGING_INSTAGRAM_DIRECT_MESSENGER_WHATSAPP",
        "t0/c1/s0": "MESSENGER",
        "t0/c2/s0": "MESSENGER",
        "t0/c3/s0": "INSTAGRAM_DIRECT",
        "t0/c4/s0": "WHATSAPP",
    }
    for op_id, destination in expected.items():
        node = sim.node(str(ids[op_id]))
        assert node.data["destination_type"] == destination
        assert node.data["campaign_id"] == ids[op_id.rsplit("/", 1)[0]]
        [ad] = sim.children(node.id, "ad")
        assert ad.data["adset_id"] == node.id
    multi_ad = sim.children(str(ids["t0/c0/s0"]), "ad")[0]
    assert multi_ad.data["creative"] == {"id": ids["t0/cr:multi"]}
    assert multi_ad.status == "ACTIVE"


async def test_a_messaging_mistake_is_caught_before_any_call(start_sim: Any) -> None:
    sim = await start_sim()
    job = json.loads(json.dumps(SEED_JOB))
    job["tasks"][0]["campaigns"][4]["ad_sets"][0]["ads"][0]["creative"] = (
        "instagram"  # WhatsApp ad set, IG creative
    )
    job["tasks"][0]["campaigns"][3]["ad_sets"][0]["destination_type"] = (
        "MESSENGER"  # IG creative, Messenger set
    )
    from bulk_engine.operations import JobFileError, parse_job

    try:
        parse_job({"account_id": sim.act, **job})
    except JobFileError as err:
        rules = {(i.rule, i.field_path) for i in err.issues}
    assert (
        "msg.creative_destination",
        "tasks[0].campaigns[3].ad_sets[0].ads[0].creative.call_to_action",
    ) in rules
    assert len(sim.server.core.calls) == 0


async def test_matrix_job_file_creates_audiences_times_creatives(start_sim: Any, tmp_path: Path) -> None:
    sim = await start_sim()
    creatives = {f"k{i}": creative(f"Creative {i}") for i in range(4)}
    job = tree_job(
        [
            campaign(
                "Launch {n}",
                repeat=2,
                ad_set_matrix={
                    "template": {
                        "billing_event": "IMPRESSIONS",
                        "optimization_goal": "LINK_CLICKS",
                        "daily_budget": 1500,
                    },
                    "audiences": [
                        {"name": c, "targeting": {"geo_locations": {"countries": [c]}}}
                        for c in ("US", "CA", "MX")
                    ],
                    "creatives": list(creatives),
                },
            )
        ],
        creatives,
    )
    path = write(tmp_path / "matrix.json", json.dumps({"account_id": sim.act, **job}))
    report = await sim.run(load_job(path))
    assert report.counts == {"succeeded": 4 + 2 + 6 + 24, "failed": 0, "skipped": 0}
    campaigns = {strip_key(n.data["name"]): n for n in sim.nodes("campaign")}
    assert set(campaigns) == {"Launch 1", "Launch 2"}
    for node in campaigns.values():
        adsets = sim.children(node.id, "adset")
        assert sorted(strip_key(a.data["name"]) for a in adsets) == [
            f"{strip_key(node.data['name'])} - {c}" for c in ("CA", "MX", "US")
        ]
        for one in adsets:
            ads = sim.children(one.id, "ad")
            assert len(ads) == 4
            assert {a.data["creative"]["id"] for a in ads} == {
                str(ids_by_op(report)[f"t0/cr:k{i}"]) for i in range(4)
            }
    # 36 objects, ≤ 10 ads per batch, ≤ 50 per batch: a handful of HTTP requests
    # 5 batches, plus one rebuild probe per keyed edge: run_job runs the job under its own id, so it first
    # asks the server what an earlier run of that id created (a re-run without a journal creates nothing twice)
    assert report.to_result().http_requests <= 5 + 4


async def test_advantage_plus_campaign_is_created_in_the_advantage_state(start_sim: Any) -> None:
    sim = await start_sim()
    task = CreateTask.model_validate(
        {
            "type": "create",
            "creatives": {"c": creative()},
            "campaigns": [
                campaign(
                    "A+ sales",
                    objective="OUTCOME_SALES",
                    advantage_plus=True,
                    daily_budget=10000,
                    ad_sets=[
                        adset(
                            "Broad",
                            daily_budget=None,
                            optimization_goal="OFFSITE_CONVERSIONS",
                            promoted_object={"pixel_id": "1234567890", "custom_event_type": "PURCHASE"},
                            targeting={**GEO, "age_min": 25},
                            ads=[{"name": "Ad", "creative": "c"}],
                        )
                    ],
                )
            ],
        }
    )
    async with sim.engine() as engine:
        report = await create_objects(engine, task, account_id=sim.act)
        assert report.counts["succeeded"] == 4
        campaign_id = next(o.graph_id for o in report.outcomes if o.op_id == "t0/c0")
        adset_id = next(o.graph_id for o in report.outcomes if o.op_id == "t0/c0/s0")
        read = await engine.run(
            [
                Operation(
                    op_id="read",
                    method="GET",
                    path=str(campaign_id),
                    params={"fields": "smart_promotion_type,advantage_state_info"},
                    account_id=sim.act,
                    kind=OpKind.READ,
                )
            ]
        )
    body = read.outcomes[0].result
    assert body["smart_promotion_type"] == "GUIDED_CREATION"
    assert body["advantage_state_info"]["advantage_state"] == "ADVANTAGE_PLUS_SALES"
    assert sim.node(str(adset_id)).data["targeting"]["targeting_automation"] == {"advantage_audience": 1}


async def test_validate_only_dry_run_changes_nothing(start_sim: Any) -> None:
    sim = await start_sim()
    report = await sim.run(tree_job([simple_tree("Dry", ads=2)]), CompileContext(validate_only=True))
    states = {o.op_id: o.state.value for o in report.outcomes}
    assert states["t0/c0"] == "succeeded" and states["t0/cr:c"] == "succeeded"  # validated by Graph
    assert states["t0/c0/s0"] == "skipped" and states["t0/c0/s0/a1"] == "skipped"
    assert "validate_only" in (report.outcome("t0/c0/s0").reason or "")
    assert sim.nodes("campaign") == [] and sim.nodes("adcreative") == []
    calls = [c for c in sim.server.core.calls if c.method == "POST"]  # the rest: rebuild probes (reads)
    assert sorted(c.path.rsplit("/", 1)[-1] for c in calls) == ["adcreatives", "campaigns"]
    assert all(c.status == 200 for c in calls)


async def test_server_refusals_are_reported_per_operation(start_sim: Any) -> None:
    """Rules that need server state (here: a creative id of another account) come back as failed outcomes."""
    sim = await start_sim()
    job = tree_job([campaign("C", ad_sets=[adset("S", ads=[{"name": "Ad", "creative_id": "999"}])])])
    report = await sim.run(job)
    failed = report.outcome("t0/c0/s0/a0")
    assert failed.state.value == "failed"
    assert failed.error is not None and failed.error.blame_field_specs == (("creative", "creative_id"),)
    assert report.counts == {"succeeded": 3, "failed": 1, "skipped": 0}
