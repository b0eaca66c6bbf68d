"""What an export reads from the simulator: the "reduce the amount of data" fault, the id / parent id /
time filters (protocol/edges.py), and cursor paging of the six ad-account edges."""

from __future__ import annotations

import pytest
from helpers import Graph, make_adset, make_campaign

from bulk_engine.simulator import FaultConfig, SimulatorThread


@pytest.mark.graph_simulator(faults=FaultConfig(reduce_data_above=10, reduce_data_times=2))
def test_reduce_the_amount_of_data_answers_code_1_http_500_then_passes(
    graph_simulator: SimulatorThread, graph: Graph, act: str
) -> None:
    for n in range(3):
        make_campaign(graph, act, name=f"C{n}")
    assert graph.get(f"{act}/campaigns", limit=10).status == 200  # at the threshold: served
    for _ in range(2):
        refused = graph.get(f"{act}/campaigns", limit=11, fields="name")
        assert refused.status == 500
        assert refused.error["code"] == 1 and "reduce the amount of data" in refused.error["message"]
        assert refused.error["is_transient"] is True
    assert graph.get(f"{act}/campaigns", limit=11).status == 200  # reduce_data_times spent: the load passed
    assert graph_simulator.run(lambda core: core.faults.injected["reduce_data"]) == 2


def test_filters_by_id_parent_id_and_time(graph: Graph, act: str) -> None:
    first, second = make_campaign(graph, act, name="A"), make_campaign(graph, act, name="B")
    sets = {make_adset(graph, act, first, name="A1"), make_adset(graph, act, first, name="A2")}
    other = make_adset(graph, act, second, name="B1")

    def names(edge: str, *filters: dict[str, object]) -> set[str]:
        answer = graph.get(f"{act}/{edge}", fields="name", filtering=list(filters))
        assert answer.status == 200, answer.body
        return {item["id"] for item in answer.body["data"]}

    assert names("campaigns", {"field": "id", "operator": "IN", "value": [first]}) == {first}
    assert names("campaigns", {"field": "id", "operator": "NOT_EQUAL", "value": first}) == {second}
    assert names("adsets", {"field": "campaign.id", "operator": "IN", "value": [first]}) == sets
    assert names("adsets", {"field": "campaign.id", "operator": "NOT_IN", "value": [first]}) == {other}
    assert names("campaigns", {"field": "updated_time", "operator": "GREATER_THAN", "value": 0}) == {
        first,
        second,
    }
    assert names("campaigns", {"field": "created_time", "operator": "LESS_THAN", "value": 1}) == set()
    bad = graph.get(
        f"{act}/campaigns", filtering=[{"field": "updated_time", "operator": "EQUAL", "value": 0}]
    )
    assert bad.status == 400 and bad.error["code"] == 100


@pytest.mark.parametrize("edge", ["campaigns", "adsets", "ads", "adcreatives", "adimages", "advideos"])
def test_every_export_edge_pages_by_cursor(graph: Graph, act: str, edge: str) -> None:
    answer = graph.get(f"{act}/{edge}", limit=2, fields="id")
    assert answer.status == 200, answer.body
    assert isinstance(answer.body["data"], list) and isinstance(answer.body["paging"], dict)
