"""Cursor pagination on edges (S003 §Paginated Results) and the ``effective_status`` filter wiring
(S003 §Manage Your Ad Object's Status: ARCHIVED only when asked for, DELETED never listed)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from helpers import Answer, Graph, call, make_adset, make_campaign

from bulk_engine.simulator import SimulatorThread


def follow(url: str, token: str) -> Answer:
    """GET a ``paging.next``/``previous`` link as given, adding only the token (as a Bearer header)."""
    assert url.startswith("http://127.0.0.1:"), url
    split = urlsplit(url)
    path = split.path + (f"?{split.query}" if split.query else "")
    return call(f"{split.scheme}://{split.netloc}", "GET", path, headers={"Authorization": f"Bearer {token}"})


def ids(answer: Answer) -> list[str]:
    return [item["id"] for item in answer.body["data"]]


@pytest.fixture
def seven(graph: Graph, act: str) -> list[str]:
    """Seven campaigns, newest first (the order edges list them in)."""
    return [make_campaign(graph, act, name=f"C{i}") for i in range(7)][::-1]


def test_follow_next_links_to_the_end(
    graph_simulator: SimulatorThread, graph: Graph, act: str, seven: list[str]
) -> None:
    page = graph.get(f"{act}/campaigns", limit=3, fields="name")
    pages = [page]
    while "next" in page.body["paging"]:
        next_url = page.body["paging"]["next"]
        assert next_url.startswith(f"{graph_simulator.url}/v24.0/{act}/campaigns?")  # the simulator's own URL
        query = parse_qs(urlsplit(next_url).query)
        assert query["limit"] == ["3"] and query["fields"] == ["name"]
        assert query["after"] == [page.body["paging"]["cursors"]["after"]]
        page = follow(next_url, graph.token)
        assert page.status == 200, page.body
        pages.append(page)
    assert [len(p.body["data"]) for p in pages] == [3, 3, 1]
    assert [i for p in pages for i in ids(p)] == seven
    assert all(set(item) == {"id", "name"} for p in pages for item in p.body["data"])
    assert "next" not in pages[-1].body["paging"]


def test_cursors_and_previous(graph: Graph, act: str, seven: list[str]) -> None:
    first = graph.get(f"{act}/campaigns", limit=3)
    cursors = first.body["paging"]["cursors"]
    assert set(cursors) == {"before", "after"}
    assert "previous" not in first.body["paging"]  # first page
    second = graph.get(f"{act}/campaigns", limit=3, after=cursors["after"])
    assert ids(second) == seven[3:6]
    assert "previous" in second.body["paging"]
    back = follow(second.body["paging"]["previous"], graph.token)
    assert ids(back) == seven[:3]
    before = graph.get(f"{act}/campaigns", limit=3, before=second.body["paging"]["cursors"]["before"])
    assert ids(before) == seven[:3]


def test_limit_and_default_page_size(graph: Graph, act: str, seven: list[str]) -> None:
    assert len(graph.get(f"{act}/campaigns").body["data"]) == 7  # default page size 25
    one = graph.get(f"{act}/campaigns", limit=1)
    assert ids(one) == seven[:1] and "next" in one.body["paging"]
    assert "next" not in graph.get(f"{act}/campaigns", limit=7).body["paging"]


def test_summary_total_count(graph: Graph, act: str, seven: list[str]) -> None:
    answer = graph.get(f"{act}/campaigns", limit=2, summary="total_count")
    assert answer.body["summary"] == {"total_count": 7}
    assert len(answer.body["data"]) == 2
    assert "summary" not in graph.get(f"{act}/campaigns", limit=2).body


def test_empty_edge_has_no_next(graph: Graph, act: str) -> None:
    answer = graph.get(f"{act}/campaigns")
    assert answer.body["data"] == []
    assert "next" not in answer.body["paging"]


@pytest.mark.parametrize("param", ["after", "before"])
@pytest.mark.parametrize("cursor", ["!!not-base64!!", "bm9wZQ"])  # garbage; base64 of "nope"
def test_invalid_cursor_is_100(graph: Graph, act: str, seven: list[str], param: str, cursor: str) -> None:
    answer = graph.get(f"{act}/campaigns", **{param: cursor})
    assert answer.status == 400
    assert answer.error["code"] == 100
    assert "Cursor" in answer.error["message"]


def test_negative_limit_is_100(graph: Graph, act: str) -> None:
    assert graph.get(f"{act}/campaigns", limit=-1).error["code"] == 100


# --- effective_status filter ------------------------------------------------------------------------
@pytest.fixture
def statuses(graph: Graph, act: str) -> dict[str, str]:
    out = {
        "PAUSED": make_campaign(graph, act, status="PAUSED"),
        "ACTIVE": make_campaign(graph, act, status="ACTIVE"),
        "ARCHIVED": make_campaign(graph, act),
        "DELETED": make_campaign(graph, act),
    }
    assert graph.post(out["ARCHIVED"], status="ARCHIVED").body == {"success": True}
    assert graph.delete(out["DELETED"]).body == {"success": True}
    return out


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (None, {"ACTIVE", "PAUSED"}),
        (["ARCHIVED"], {"ARCHIVED"}),
        (["ACTIVE", "PAUSED", "ARCHIVED"], {"ACTIVE", "PAUSED", "ARCHIVED"}),
        (["PAUSED"], {"PAUSED"}),
    ],
)
def test_effective_status_filter(
    graph: Graph, act: str, statuses: dict[str, str], query: list[str] | None, expected: set[str]
) -> None:
    params: dict[str, Any] = {"fields": "effective_status"}
    if query is not None:
        params["effective_status"] = json.dumps(query)
    answer = graph.get(f"{act}/campaigns", **params)
    assert answer.status == 200, answer.body
    assert {statuses[s] for s in expected} == set(ids(answer))
    assert statuses["DELETED"] not in ids(answer)  # DELETED is never listed through an edge


def test_filter_survives_paging(graph: Graph, act: str, statuses: dict[str, str]) -> None:
    first = graph.get(
        f"{act}/campaigns", limit=1, effective_status=json.dumps(["ACTIVE", "PAUSED", "ARCHIVED"])
    )
    seen = ids(first)
    page = first
    while "next" in page.body["paging"]:
        assert "effective_status" in parse_qs(urlsplit(page.body["paging"]["next"]).query)
        page = follow(page.body["paging"]["next"], graph.token)
        seen += ids(page)
    assert set(seen) == {statuses["ACTIVE"], statuses["PAUSED"], statuses["ARCHIVED"]}


def test_archived_and_deleted_stay_readable_by_id(graph: Graph, statuses: dict[str, str]) -> None:
    for status in ("ARCHIVED", "DELETED"):
        answer = graph.get(statuses[status], fields="status")
        assert answer.body["status"] == status


@pytest.mark.parametrize("statuses_filter", [["SLEEPING"], ["ACTIVE", "DELETED"]])
def test_unknown_or_deleted_status_in_filter_is_100(
    graph: Graph, act: str, statuses_filter: list[str]
) -> None:
    """S003: DELETED objects are not returned through edges — "error if [the filter] does" contain it."""
    answer = graph.get(f"{act}/campaigns", effective_status=json.dumps(statuses_filter))
    assert answer.status == 400
    assert answer.error["code"] == 100
    assert answer.error["error_data"] == {"blame_field_specs": [["effective_status"]]}


def test_child_edges_paginate_too(graph: Graph, act: str) -> None:
    campaign = make_campaign(graph, act)
    adsets = [make_adset(graph, act, campaign, name=f"S{i}") for i in range(3)][::-1]
    page = graph.get(f"{campaign}/adsets", limit=2)
    assert ids(page) == adsets[:2]
    rest = follow(page.body["paging"]["next"], graph.token)
    assert ids(rest) == adsets[2:]
    assert "next" not in rest.body["paging"]


def test_next_links_carry_the_token_so_they_can_be_followed_as_given(graph: Graph, act: str) -> None:
    """Graph's paging links include ``access_token``: a client that follows ``next`` verbatim works."""
    for i in range(3):
        make_campaign(graph, act, name=f"C{i}")
    first = graph.get(f"{act}/campaigns", limit=2)
    next_url = first.body["paging"]["next"]
    assert parse_qs(urlsplit(next_url).query)["access_token"] == [graph.token]
    split = urlsplit(next_url)
    page = call(f"{split.scheme}://{split.netloc}", "GET", f"{split.path}?{split.query}")
    assert page.status == 200 and len(page.body["data"]) == 1
