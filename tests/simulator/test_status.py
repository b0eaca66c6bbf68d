"""The status machine over HTTP (S003 §Manage Your Ad Object's Status, §Object Archive and Delete Status).

Every test drives the simulator through real HTTP; choices where the seeds contradict each other are
SPEC-DIGEST §9.3 #1 (archived cap), #2 (ARCHIVED → ACTIVE) and #9 (DELETED in an edge filter), documented in
``bulk_engine/simulator/status.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from helpers import Graph, make_ad, make_adset, make_campaign, make_creative

from bulk_engine.simulator import SimulatorThread
from bulk_engine.simulator.config import SimulatorConfig
from bulk_engine.simulator.graph import GraphCore


@dataclass
class Tree:
    campaign: str
    adset: str
    creative: str
    ad: str

    def of(self, kind: str) -> str:
        return str(getattr(self, kind))


def make_tree(graph: Graph, act: str, page_id: str, status: str = "ACTIVE") -> Tree:
    campaign = make_campaign(graph, act, status=status)
    adset = make_adset(graph, act, campaign, status=status)
    creative = make_creative(graph, act, page_id)
    ad = make_ad(graph, act, adset, creative, status=status)
    return Tree(campaign, adset, creative, ad)


@pytest.fixture
def tree(graph: Graph, act: str, page_id: str) -> Tree:
    return make_tree(graph, act, page_id)


def read(graph: Graph, object_id: str, fields: str = "status,effective_status") -> dict[str, Any]:
    answer = graph.get(object_id, fields=fields)
    assert answer.status == 200, answer.body
    return dict(answer.body)


def set_status(graph: Graph, object_id: str, status: str) -> None:
    answer = graph.post(object_id, status=status)
    assert answer.status == 200 and answer.body == {"success": True}, answer.body


def ids(answer: Any) -> set[str]:
    assert answer.status == 200, answer.body
    return {item["id"] for item in answer.body["data"]}


# --- §Comparisons of Different Statuses → "Status can be changed to" ------------------------------------
DELETED_SUBCODE = {"campaign": 1487566, "adset": 1487056, "ad": 1885088}
TRANSITIONS = [
    (kind, start, target)
    for kind in ("campaign", "adset", "ad")
    for start in ("ACTIVE", "PAUSED", "ARCHIVED", "DELETED")
    for target in ("ACTIVE", "PAUSED", "ARCHIVED", "DELETED")
]


def expected_subcode(kind: str, start: str, target: str) -> int | None:
    """The transition table: live → any; ARCHIVED → DELETED (§9.3 #2: not back to live); DELETED final."""
    if start in ("ACTIVE", "PAUSED"):
        return None
    if start == "ARCHIVED":
        return None if target in ("ARCHIVED", "DELETED") else 1885088
    return None if target == "DELETED" else DELETED_SUBCODE[kind]


@pytest.mark.parametrize(("kind", "start", "target"), TRANSITIONS)
def test_status_transition_table(
    graph: Graph, act: str, page_id: str, kind: str, start: str, target: str
) -> None:
    """S003 §Comparisons of Different Statuses: live → any valid status; ARCHIVED → DELETED; DELETED → none."""
    tree = make_tree(graph, act, page_id)
    object_id = tree.of(kind)
    if start != "ACTIVE":
        set_status(graph, object_id, start)
    answer = graph.post(object_id, status=target)
    subcode = expected_subcode(kind, start, target)
    if subcode is None:
        assert answer.status == 200 and answer.body == {"success": True}, answer.body
        assert read(graph, object_id, "status")["status"] == target
    else:
        assert answer.status == 400
        assert answer.error["code"] == 100
        assert answer.error["error_subcode"] == subcode
        assert answer.error["error_data"]["blame_field_specs"] == [["status"]]
        assert read(graph, object_id, "status")["status"] == start


NON_NAME_EDITS = {"campaign": {"spend_cap": 20000}, "adset": {"daily_budget": 2000}, "ad": {"adlabels": []}}


@pytest.mark.parametrize(
    ("kind", "state", "subcode"),
    [
        ("ad", "ARCHIVED", 1885088),
        ("adset", "ARCHIVED", 1885088),
        ("campaign", "ARCHIVED", 1885088),
        ("ad", "DELETED", 1885088),
        ("adset", "DELETED", 1487056),
        ("campaign", "DELETED", 1487566),
    ],
)
def test_archived_and_deleted_objects_only_take_a_new_name(
    graph: Graph, tree: Tree, kind: str, state: str, subcode: int
) -> None:
    """S003 §Archived: "only 2 fields you can change: name and status"; §Deleted: "except name"."""
    object_id = tree.of(kind)
    set_status(graph, object_id, state)
    refused = graph.post(object_id, **NON_NAME_EDITS[kind])
    assert refused.status == 400, refused.body
    assert (refused.error["code"], refused.error["error_subcode"]) == (100, subcode)
    assert refused.error["error_user_title"]
    renamed = graph.post(object_id, name="Renamed")
    assert renamed.body == {"success": True}
    assert read(graph, object_id, "name,status") == {"id": object_id, "name": "Renamed", "status": state}


class TestArchivedReactivationConfigured:
    """§9.3 #2: the guide's "restore by changing its status back to ACTIVE", when configured."""

    @pytest.fixture
    def graph_simulator_config(self) -> SimulatorConfig:
        return SimulatorConfig(archived_reactivation=True)

    def test_archived_campaign_can_be_restored(self, graph: Graph, tree: Tree) -> None:
        set_status(graph, tree.campaign, "ARCHIVED")
        set_status(graph, tree.campaign, "ACTIVE")
        assert read(graph, tree.campaign)["effective_status"] == "ACTIVE"
        assert graph.post(tree.campaign, spend_cap=20000).body == {"success": True}  # live again: editable
        set_status(graph, tree.campaign, "DELETED")
        assert graph.post(tree.campaign, status="ACTIVE").error["error_subcode"] == 1487566


# --- inheritance ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("campaign", "adset", "ad", "expected"),
    [
        ("ACTIVE", "ACTIVE", "ACTIVE", ("ACTIVE", "ACTIVE", "ACTIVE")),
        ("PAUSED", "ACTIVE", "ACTIVE", ("PAUSED", "CAMPAIGN_PAUSED", "CAMPAIGN_PAUSED")),
        ("ACTIVE", "PAUSED", "ACTIVE", ("ACTIVE", "PAUSED", "ADSET_PAUSED")),
        ("PAUSED", "PAUSED", "ACTIVE", ("PAUSED", "PAUSED", "CAMPAIGN_PAUSED")),
        ("PAUSED", "ACTIVE", "PAUSED", ("PAUSED", "CAMPAIGN_PAUSED", "PAUSED")),
        ("ARCHIVED", "ACTIVE", "PAUSED", ("ARCHIVED", "ARCHIVED", "ARCHIVED")),
        ("ACTIVE", "ARCHIVED", "ACTIVE", ("ACTIVE", "ARCHIVED", "ARCHIVED")),
        ("DELETED", "ARCHIVED", "ACTIVE", ("DELETED", "DELETED", "DELETED")),
        ("ACTIVE", "ACTIVE", "ARCHIVED", ("ACTIVE", "ACTIVE", "ARCHIVED")),
        ("ACTIVE", "ACTIVE", "DELETED", ("ACTIVE", "ACTIVE", "DELETED")),
    ],
)
def test_effective_status_is_inherited_downwards(
    graph: Graph, tree: Tree, campaign: str, adset: str, ad: str, expected: tuple[str, str, str]
) -> None:
    """S003 §Manage Status: campaign paused/archived/deleted → children inherit; children never change parents."""
    for object_id, wanted in ((tree.ad, ad), (tree.adset, adset), (tree.campaign, campaign)):
        if wanted != "ACTIVE":
            set_status(graph, object_id, wanted)
    got = tuple(read(graph, i)["effective_status"] for i in (tree.campaign, tree.adset, tree.ad))
    assert got == expected
    own = tuple(read(graph, i)["status"] for i in (tree.campaign, tree.adset, tree.ad))
    assert own == (campaign, adset, ad)  # configured statuses are never rewritten by inheritance


def test_children_of_a_deleted_campaign_are_deleted_for_edits(graph: Graph, tree: Tree) -> None:
    """§Manage Status: a deleted campaign's children inherit DELETED, so only their name can change."""
    set_status(graph, tree.campaign, "DELETED")
    refused = graph.post(tree.adset, status="PAUSED")
    assert refused.error["error_subcode"] == 1487056
    assert graph.post(tree.ad, adlabels=[]).error["error_subcode"] == 1885088
    assert graph.post(tree.adset, name="Still renamable").body == {"success": True}


# --- review --------------------------------------------------------------------------------------------
class TestPendingReview:
    """S003 §Ad Account Ads (status): an ACTIVE ad is PENDING_REVIEW before it finishes review."""

    REVIEW_S = 600.0

    @pytest.fixture
    def graph_simulator_config(self) -> SimulatorConfig:
        return SimulatorConfig(ad_review_s=self.REVIEW_S)

    @staticmethod
    def advance(sim: SimulatorThread, seconds: float) -> None:
        sim.run(lambda core: core.clock.advance(seconds))

    def test_new_active_ad_is_in_review_then_active(
        self, graph: Graph, tree: Tree, graph_simulator: SimulatorThread
    ) -> None:
        assert read(graph, tree.ad) == {
            "id": tree.ad,
            "status": "ACTIVE",
            "effective_status": "PENDING_REVIEW",
        }
        self.advance(graph_simulator, self.REVIEW_S + 1)
        assert read(graph, tree.ad)["effective_status"] == "ACTIVE"

    def test_activation_and_creative_change_restart_review(
        self, graph: Graph, tree: Tree, act: str, page_id: str, graph_simulator: SimulatorThread
    ) -> None:
        self.advance(graph_simulator, self.REVIEW_S + 1)
        set_status(graph, tree.ad, "PAUSED")
        assert read(graph, tree.ad)["effective_status"] == "PAUSED"
        set_status(graph, tree.ad, "ACTIVE")
        assert read(graph, tree.ad)["effective_status"] == "PENDING_REVIEW"
        self.advance(graph_simulator, self.REVIEW_S + 1)
        other = make_creative(graph, act, page_id, name="Other creative")
        assert graph.post(tree.ad, creative={"creative_id": other}).body == {"success": True}
        assert read(graph, tree.ad)["effective_status"] == "PENDING_REVIEW"
        self.advance(graph_simulator, self.REVIEW_S + 1)
        assert graph.post(tree.ad, name="Renamed").body == {"success": True}  # a name is not reviewed
        assert read(graph, tree.ad)["effective_status"] == "ACTIVE"

    def test_adset_targeting_change_sends_its_ads_to_review(
        self, graph: Graph, tree: Tree, graph_simulator: SimulatorThread
    ) -> None:
        self.advance(graph_simulator, self.REVIEW_S + 1)
        assert graph.post(tree.adset, daily_budget=2000).body == {"success": True}  # budget: no review
        assert read(graph, tree.ad)["effective_status"] == "ACTIVE"
        targeting = {"geo_locations": {"countries": ["CA"]}}
        assert graph.post(tree.adset, targeting=targeting).body == {"success": True}
        assert read(graph, tree.ad)["effective_status"] == "PENDING_REVIEW"

    def test_paused_ad_in_review_stays_paused(self, graph: Graph, act: str, page_id: str) -> None:
        tree = make_tree(graph, act, page_id)
        paused = make_ad(graph, act, tree.adset, tree.creative, status="PAUSED")
        assert read(graph, paused)["effective_status"] == "PAUSED"


# --- archived cap (§9.3 #1) ------------------------------------------------------------------------------
class TestArchivedLimit:
    """S003 §Manage Status: a per-account cap on ARCHIVED objects → 1487990 (cap configurable, §9.3 #1)."""

    @pytest.fixture
    def graph_simulator_config(self) -> SimulatorConfig:
        return SimulatorConfig(archived_limit=2)

    def test_cap_refuses_then_deleting_frees_a_slot(self, graph: Graph, tree: Tree, act: str) -> None:
        ads = [tree.ad] + [make_ad(graph, act, tree.adset, tree.creative, name=f"Ad {i}") for i in range(2)]
        set_status(graph, ads[0], "ARCHIVED")
        set_status(graph, ads[1], "ARCHIVED")
        refused = graph.post(ads[2], status="ARCHIVED")
        assert refused.status == 400
        assert (refused.error["code"], refused.error["error_subcode"]) == (100, 1487990)
        assert "too many archived adgroups" in refused.error["error_user_msg"]
        assert read(graph, ads[2], "status")["status"] == "PAUSED"
        set_status(graph, ads[0], "DELETED")  # "change status to DELETED when you no longer need an object"
        set_status(graph, ads[2], "ARCHIVED")

    def test_cap_is_per_object_type(self, graph: Graph, tree: Tree, act: str) -> None:
        set_status(graph, tree.ad, "ARCHIVED")
        set_status(graph, make_ad(graph, act, tree.adset, tree.creative), "ARCHIVED")
        set_status(graph, tree.campaign, "ARCHIVED")  # campaigns have their own 100,000 (here 2)

    def test_deleting_a_parent_frees_its_archived_childrens_slots(
        self, graph: Graph, tree: Tree, act: str, page_id: str, graph_simulator: SimulatorThread
    ) -> None:
        set_status(graph, tree.ad, "ARCHIVED")
        set_status(graph, make_ad(graph, act, tree.adset, tree.creative), "ARCHIVED")
        other = make_tree(graph, act, page_id)
        assert graph.post(other.ad, status="ARCHIVED").error["error_subcode"] == 1487990
        set_status(graph, tree.campaign, "DELETED")
        set_status(graph, other.ad, "ARCHIVED")
        counts = graph_simulator.run(lambda core: dict(core.archived_counts))
        assert counts[(act, "ad")] == 1

    def test_retried_archive_and_delete_do_not_double_count(
        self, graph: Graph, tree: Tree, act: str, graph_simulator: SimulatorThread
    ) -> None:
        for _ in range(3):
            set_status(graph, tree.ad, "ARCHIVED")
        assert graph_simulator.run(lambda core: core.archived_counts[(act, "ad")]) == 1
        for _ in range(2):
            assert graph.delete(tree.ad).body == {"success": True}
        assert graph_simulator.run(lambda core: core.archived_counts[(act, "ad")]) == 0


def test_archived_count_is_a_counter_not_a_scan(graph: Graph, tree: Tree, act: str) -> None:
    """Status changes stay O(1): the cap reads a counter kept by apply_update (benchmarks do 20k+ changes)."""
    ads = [make_ad(graph, act, tree.adset, tree.creative, name=f"Ad {i}") for i in range(30)]
    for ad in ads:
        set_status(graph, ad, "ARCHIVED")
    for ad in ads[:10]:
        set_status(graph, ad, "DELETED")
    answer = graph.get(f"{tree.adset}/ads", effective_status=["ARCHIVED"], summary="total_count", limit=100)
    assert answer.body["summary"]["total_count"] == 20


# --- edges -----------------------------------------------------------------------------------------------
def test_edges_hide_archived_unless_filtered_and_never_list_deleted(
    graph: Graph, act: str, page_id: str
) -> None:
    """S003 §Comparisons: ARCHIVED only "if status filter contains ARCHIVED"; DELETED "No"."""
    tree = make_tree(graph, act, page_id)
    archived = make_ad(graph, act, tree.adset, tree.creative, name="archived")
    deleted = make_ad(graph, act, tree.adset, tree.creative, name="deleted")
    set_status(graph, archived, "ARCHIVED")
    assert graph.delete(deleted).body == {"success": True}
    for edge in (f"{act}/ads", f"{tree.campaign}/ads", f"{tree.adset}/ads"):
        assert ids(graph.get(edge)) == {tree.ad}
        assert ids(graph.get(edge, effective_status=["ARCHIVED"])) == {archived}
        assert ids(graph.get(edge, effective_status=["ACTIVE", "ARCHIVED"])) == {tree.ad, archived}
    assert read(graph, deleted) == {"id": deleted, "status": "DELETED", "effective_status": "DELETED"}
    assert read(graph, archived)["effective_status"] == "ARCHIVED"  # "Query by its own ID: Yes"


def test_children_of_archived_and_deleted_campaigns_leave_the_account_edges(
    graph: Graph, act: str, page_id: str
) -> None:
    """§Manage Status: children of a deleted campaign are not retrievable "without explicitly specifying the IDs"."""
    archived = make_tree(graph, act, page_id)
    deleted = make_tree(graph, act, page_id)
    live = make_tree(graph, act, page_id)
    set_status(graph, archived.campaign, "ARCHIVED")
    assert graph.delete(deleted.campaign).body == {"success": True}
    assert ids(graph.get(f"{act}/adsets")) == {live.adset}
    assert ids(graph.get(f"{act}/ads")) == {live.ad}
    assert ids(graph.get(f"{act}/adsets", effective_status=["ARCHIVED"])) == {archived.adset}
    assert ids(graph.get(f"{deleted.campaign}/adsets")) == set()
    assert ids(graph.get(f"{act}/campaigns", effective_status=["ACTIVE", "ARCHIVED", "PAUSED"])) == {
        archived.campaign,
        live.campaign,
    }
    assert read(graph, deleted.ad)["effective_status"] == "DELETED"


@pytest.mark.parametrize(
    "query",
    [
        {"effective_status": ["DELETED"]},
        {"effective_status": ["ACTIVE", "DELETED"]},
        {"filtering": [{"field": "effective_status", "operator": "IN", "value": ["DELETED"]}]},
    ],
)
def test_deleted_in_the_status_filter_is_an_error(graph: Graph, tree: Tree, act: str, query: Any) -> None:
    """§9.3 #9: the status doc says "error if it does" contain DELETED — edges follow it (insights do not)."""
    for edge in (f"{act}/campaigns", f"{act}/ads"):
        answer = graph.get(edge, **query)
        assert answer.status == 400
        assert answer.error["code"] == 100
        assert answer.error["error_data"]["blame_field_specs"] == [["effective_status"]]


class TestDeletedFilterConfiguredEmpty:
    @pytest.fixture
    def graph_simulator_config(self) -> SimulatorConfig:
        return SimulatorConfig(deleted_filter_error=False)

    def test_deleted_filter_matches_nothing(self, graph: Graph, tree: Tree, act: str) -> None:
        assert graph.delete(tree.ad).body == {"success": True}
        assert ids(graph.get(f"{act}/ads", effective_status=["DELETED"])) == set()


# --- DELETE ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["campaign", "adset", "ad"])
def test_http_delete_sets_deleted_and_is_idempotent(graph: Graph, tree: Tree, kind: str) -> None:
    """§Deleted: "by either setting status field to DELETED or sending an HTTP DELETE"; a retry succeeds."""
    object_id = tree.of(kind)
    assert graph.delete(object_id).body == {"success": True}
    assert read(graph, object_id)["status"] == "DELETED"
    assert graph.delete(object_id).body == {"success": True}
    assert graph.post(object_id, status="ARCHIVED").error["error_subcode"] == DELETED_SUBCODE[kind]


def test_dynamic_creative_ads_cannot_be_deleted(
    graph: Graph, act: str, page_id: str, graph_simulator: SimulatorThread
) -> None:
    """S003 §Troubleshooting → 1340029: "deletion of Dynamic Creative Ad is not allowed"."""
    tree = make_tree(graph, act, page_id)

    def make_dynamic(core: GraphCore) -> None:
        node = core.store.get(tree.adset)
        assert node is not None
        node.data["is_dynamic_creative"] = True

    graph_simulator.run(make_dynamic)
    for answer in (graph.delete(tree.ad), graph.post(tree.ad, status="DELETED")):
        assert (answer.error["code"], answer.error["error_subcode"]) == (100, 1340029)
    set_status(graph, tree.ad, "PAUSED")  # other changes are fine
    assert graph.delete(tree.adset).body == {"success": True}  # "proceed by deleting parent Ad Set"


# --- DELETE /act_<id>/campaigns ----------------------------------------------------------------------------
@pytest.fixture
def aged_campaigns(graph: Graph, act: str, graph_simulator: SimulatorThread) -> dict[str, Any]:
    """Five campaigns created 1 h apart; the 2nd and 4th archived 1 h after the last was created."""
    created: list[str] = []
    times: list[float] = []
    for i in range(5):
        times.append(graph_simulator.run(lambda core: core.clock.now()))
        created.append(make_campaign(graph, act, name=f"C{i}"))
        graph_simulator.run(lambda core: core.clock.advance(3600))
    set_status(graph, created[1], "ARCHIVED")
    archived_at = graph_simulator.run(lambda core: core.clock.now())
    graph_simulator.run(lambda core: core.clock.advance(3600))
    set_status(graph, created[3], "ARCHIVED")
    return {"ids": created, "times": times, "archived_at": archived_at}


@pytest.mark.parametrize(
    ("params", "deleted", "left"),
    [
        ({"delete_strategy": "DELETE_ANY", "object_count": 2}, [4, 3], 3),
        ({"delete_strategy": "DELETE_OLDEST", "object_count": 2}, [0, 1], 3),
        ({"delete_strategy": "DELETE_OLDEST"}, [0, 1, 2, 3, 4], 0),
        ({"delete_strategy": "DELETE_OLDEST", "before": 2}, [0, 1], 0),
        ({"delete_strategy": "DELETE_ARCHIVED_BEFORE", "before": "archive+1"}, [1], 0),
        ({"delete_strategy": "DELETE_ARCHIVED_BEFORE", "before": "later", "object_count": 1}, [1], 1),
    ],
)
def test_bulk_delete_campaigns_strategies(
    graph: Graph,
    act: str,
    aged_campaigns: dict[str, Any],
    params: dict[str, Any],
    deleted: list[int],
    left: int,
) -> None:
    """S003 §Ad Account Campaigns → Deleting: ``{objects_left_to_delete_count, deleted_object_ids}``."""
    created, times = aged_campaigns["ids"], aged_campaigns["times"]
    query = {k: v for k, v in params.items() if k != "before"}
    before = params.get("before")
    if before == "archive+1":
        query["before_date"] = int(aged_campaigns["archived_at"] + 1)
    elif before == "later":
        query["before_date"] = int(times[-1] + 10 * 3600)
    elif isinstance(before, int):
        query["before_date"] = int(times[before])
    answer = graph.delete(f"{act}/campaigns", **query)
    assert answer.status == 200, answer.body
    assert answer.body == {
        "objects_left_to_delete_count": left,
        "deleted_object_ids": [created[i] for i in deleted],
    }
    for i, campaign in enumerate(created):
        expected = "DELETED" if i in deleted else ("ARCHIVED" if i in (1, 3) else "PAUSED")
        assert read(graph, campaign, "status")["status"] == expected


@pytest.mark.parametrize(
    ("params", "blame"),
    [
        ({}, "delete_strategy"),
        ({"delete_strategy": "DELETE_NEWEST"}, "delete_strategy"),
        ({"delete_strategy": "DELETE_ARCHIVED_BEFORE"}, "before_date"),
        ({"delete_strategy": "DELETE_ANY", "before_date": "yesterday-ish"}, "before_date"),
        ({"delete_strategy": "DELETE_ANY", "object_count": 0}, "object_count"),
    ],
)
def test_bulk_delete_campaigns_refusals(graph: Graph, act: str, params: dict[str, Any], blame: str) -> None:
    """``delete_strategy`` is **Required** and an enum; error code 100 (the edge's only documented code)."""
    campaign = make_campaign(graph, act)
    answer = graph.delete(f"{act}/campaigns", **params)
    assert answer.status == 400
    assert answer.error["code"] == 100
    assert answer.error["error_data"]["blame_field_specs"] == [[blame]]
    assert read(graph, campaign, "status")["status"] == "PAUSED"


def test_bulk_delete_in_a_batch_frees_archived_slots(graph: Graph, act: str) -> None:
    """The bulk delete works as a batch op too, and deleted campaigns leave the edges."""
    campaigns = [make_campaign(graph, act, name=f"C{i}") for i in range(3)]
    set_status(graph, campaigns[0], "ARCHIVED")
    answer = graph.batch(
        [
            {
                "method": "DELETE",
                "relative_url": f"{act}/campaigns?delete_strategy=DELETE_OLDEST&object_count=2",
            }
        ]
    )
    assert answer.status == 200
    assert answer.body[0]["code"] == 200
    assert ids(graph.get(f"{act}/campaigns", effective_status=["ARCHIVED", "PAUSED"])) == {campaigns[2]}
