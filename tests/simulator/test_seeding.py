"""``seed_campaigns``: accounts start with campaigns a job can edit, ids contiguous and announced."""

from __future__ import annotations

from helpers import Graph, make_campaign

from bulk_engine.simulator import SimulatorConfig, SimulatorThread


def test_seeded_campaigns_exist_are_editable_and_listed() -> None:
    config = SimulatorConfig(ad_account_ids=("act_11", "act_12"), seed_campaigns=3)
    sim = SimulatorThread(config).start()
    try:
        info = sim.info()
        spans = info["seeded_campaigns"]
        assert set(spans) == {"act_11", "act_12"}
        ids = {act: [str(int(first) + k) for k in range(count)] for act, (first, count) in spans.items()}
        assert all(len(v) == 3 for v in ids.values())
        assert not set(ids["act_11"]) & set(ids["act_12"])
        graph = Graph(sim.url, info["access_token"])

        listed = graph.get("act_12/campaigns", fields="id,status,account_id")
        assert sorted(c["id"] for c in listed.body["data"]) == ids["act_12"]
        assert {c["status"] for c in listed.body["data"]} == {"ACTIVE"}
        assert {c["account_id"] for c in listed.body["data"]} == {"12"}

        target = ids["act_11"][1]
        assert graph.post(target, status="PAUSED").body == {"success": True}
        assert graph.get(target, fields="status").body == {"status": "PAUSED", "id": target}

        created = make_campaign(graph, "act_11")  # later ids never collide with the seeded ones
        assert created not in ids["act_11"] + ids["act_12"]
    finally:
        sim.stop()


def test_no_seeding_by_default() -> None:
    sim = SimulatorThread(SimulatorConfig()).start()
    try:
        info = sim.info()
        assert "seeded_campaigns" not in info
        graph = Graph(sim.url, info["access_token"])
        assert graph.get(f"{info['ad_account_ids'][0]}/campaigns").body["data"] == []
    finally:
        sim.stop()
