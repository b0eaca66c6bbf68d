"""The simulator answers the basic create → read cycle over real HTTP."""

from __future__ import annotations

from helpers import Graph, make_ad, make_adset, make_campaign, make_creative


def test_create_tree_and_read_back(graph: Graph, act: str, page_id: str) -> None:
    campaign = make_campaign(graph, act)
    adset = make_adset(graph, act, campaign)
    creative = make_creative(graph, act, page_id)
    ad = make_ad(graph, act, adset, creative)
    read = graph.get(ad, fields="name,adset_id,campaign_id,effective_status,creative")
    assert read.status == 200
    assert read.body == {
        "name": "Ad",
        "adset_id": adset,
        "campaign_id": campaign,
        "effective_status": "PAUSED",
        "creative": {"id": creative},
        "id": ad,  # Graph always answers the node's id
    }
    assert read.body.keys() >= {"name"}
    assert graph.get(campaign).body == {"id": campaign}  # reads return only id without fields
