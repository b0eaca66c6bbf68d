"""Async request sets over real HTTP (S003 §Asynchronous and Batch Requests, §Ad Account Async Batch Requests,
§Ad Account Asyncadrequestsets, §Ad Account Asyncadcreatives; SPEC-DIGEST §2, §9.1 item 7).

The simulator processes requests over *virtual* time (``async_requests_per_s``, 1 per second here) and only
when something reads them; the wall clock is slowed to a crawl so only ``core.clock.advance`` moves time.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest
from helpers import TARGETING, Answer, Graph, call, make_adset, make_campaign, make_creative

from bulk_engine.simulator import SimulatorConfig, SimulatorThread

CONFIG = {"time_scale": 1e-9, "async_requests_per_s": 1.0}
SET_DEFAULT_KEYS = {"id", "owner_id", "name", "is_completed"}
COUNTS = "total_count,initial_count,in_progress_count,success_count,error_count,canceled_count,is_completed"


@pytest.fixture
def graph_simulator_config() -> SimulatorConfig:
    return SimulatorConfig(**CONFIG)


@pytest.fixture
def sim_factory() -> Iterator[Any]:
    started: list[SimulatorThread] = []

    def start(**config: Any) -> tuple[SimulatorThread, Graph, str]:
        sim = SimulatorThread(SimulatorConfig(**{**CONFIG, **config})).start()
        started.append(sim)
        info = sim.info()
        return sim, Graph(sim.url, info["access_token"]), str(info["ad_account_ids"][0])

    yield start
    for sim in started:
        sim.stop()


def advance(sim: SimulatorThread, seconds: float) -> None:
    sim.run(lambda core: core.clock.advance(seconds))


def campaign_item(act: str, label: str, name: str | None = None, **params: Any) -> dict[str, Any]:
    body = urllib.parse.urlencode(
        {
            "name": label,
            "objective": "OUTCOME_TRAFFIC",
            "special_ad_categories": "[]",
            "status": "PAUSED",
            **params,
        }
    )
    item = {"relative_url": f"{act}/campaigns", "body": body}
    if name is not None:
        item["name"] = name
    return item


def adset_item(act: str, campaign_ref: str, label: str = "Ad set", name: str | None = None) -> dict[str, Any]:
    body = urllib.parse.urlencode(
        {
            "name": label,
            "campaign_id": campaign_ref,
            "billing_event": "IMPRESSIONS",
            "optimization_goal": "LINK_CLICKS",
            "daily_budget": "1000",
            "targeting": json.dumps(TARGETING),
            "status": "PAUSED",
        }
    )
    item = {"relative_url": f"{act}/adsets", "body": body}
    if name is not None:
        item["name"] = name
    return item


def create_set(graph: Graph, act: str, items: list[dict[str, Any]], name: str = "set", **params: Any) -> str:
    answer = graph.post(f"{act}/async_batch_requests", name=name, adbatch=items, **params)
    assert answer.status == 200, answer.body
    assert set(answer.body) == {"id"}
    return str(answer.body["id"])


def counts(graph: Graph, set_id: str) -> dict[str, Any]:
    answer = graph.get(set_id, fields=COUNTS)
    assert answer.status == 200, answer.body
    return {k: v for k, v in answer.body.items() if k != "id"}


def requests_of(graph: Graph, set_id: str, **params: Any) -> list[dict[str, Any]]:
    answer = graph.get(f"{set_id}/requests", **params)
    assert answer.status == 200, answer.body
    return list(answer.body["data"])


def stored_names(sim: SimulatorThread, type_: str) -> set[str]:
    return {str(n.get("name")) for n in sim.run(lambda core: core.store.snapshot([type_]))}


def async_calls(sim: SimulatorThread) -> list[Any]:
    """Calls the simulated backend made for async requests (no HTTP request carried them)."""
    return sim.run(lambda core: [c for c in core.calls if c.http_request == 0])


# --- creating a set: §Ad Account Async Batch Requests ---------------------------------------------------
def test_create_returns_an_id_and_the_set_reads_with_its_default_fields(graph: Graph, act: str) -> None:
    """S003 §Asynchronous and Batch Requests: ``id``, ``owner_id``, ``name``, ``is_completed`` are shown by
    default; ``owner_id`` is the ad account id (a number in the seed sample)."""
    set_id = create_set(graph, act, [campaign_item(act, "C")], name="testasyncset")
    answer = graph.get(set_id)
    assert answer.body == {
        "id": set_id,
        "owner_id": int(act[4:]),
        "name": "testasyncset",
        "is_completed": False,
    }
    everything = graph.get(set_id, fields=COUNTS + ",notification_mode,notification_status")
    assert everything.body["total_count"] == 1
    assert everything.body["notification_mode"] == "OFF"
    assert everything.body["notification_status"] == "not_sent"


@pytest.mark.parametrize("missing", ["name", "adbatch"])
def test_missing_required_parameter_is_194(
    graph_simulator: SimulatorThread, graph: Graph, act: str, missing: str
) -> None:
    """S003 §Ad Account Async Batch Requests → Error Codes: 194 "Missing at least one required parameter"."""
    params: dict[str, Any] = {"name": "set", "adbatch": [campaign_item(act, "C")]}
    del params[missing]
    answer = graph.post(f"{act}/async_batch_requests", **params)
    assert answer.status == 400
    assert answer.error["code"] == 194
    assert answer.error["error_data"]["blame_field_specs"] == [[missing]]
    assert graph_simulator.run(lambda core: core.store.snapshot(["async_request_set"])) == []


@pytest.mark.parametrize(
    ("adbatch", "fragment"),
    [
        ("not json", "adbatch"),
        ({"relative_url": "act_1/campaigns"}, "array"),
        ("[]", "empty"),
        ([{"body": "name=x"}], "relative_url"),
        (["act_1/campaigns"], "object"),
        ([{"name": "a", "relative_url": "x"}, {"name": "a", "relative_url": "y"}], "two requests named"),
        ([{"relative_url": "x", "body": "campaign_id={result=ghost:$.id}"}], "ghost"),
        (
            [
                {"name": "a", "relative_url": "x", "body": "p={result=b:$.id}"},
                {"name": "b", "relative_url": "y", "body": "p={result=a:$.id}"},
            ],
            "cycle",
        ),
    ],
    ids=[
        "not-json",
        "object",
        "empty",
        "no-relative-url",
        "not-an-object",
        "duplicate",
        "unknown-ref",
        "cycle",
    ],
)
def test_invalid_adbatch_is_100(graph: Graph, act: str, adbatch: Any, fragment: str) -> None:
    """S003 §Ad Account Async Batch Requests → Error Codes: 100 "Invalid parameter"."""
    answer = graph.post(f"{act}/async_batch_requests", name="bad", adbatch=adbatch)
    assert answer.status == 400
    assert answer.error["code"] == 100 and fragment in answer.error["message"]


def test_at_most_1000_requests_per_set(graph: Graph, act: str) -> None:
    """S003 §Asynchronous and Batch Requests → Batch API: "Each API call can have a maximum of 1000 requests"."""
    items = [campaign_item(act, f"C{i}") for i in range(1001)]
    too_many = graph.post(f"{act}/async_batch_requests", name="big", adbatch=items)
    assert too_many.status == 400 and too_many.error["code"] == 100 and "1000" in too_many.error["message"]
    set_id = create_set(graph, act, items[:1000], name="big")
    assert counts(graph, set_id)["total_count"] == 1000


def test_async_batch_requests_is_an_ad_account_edge(graph: Graph, act: str) -> None:
    campaign = make_campaign(graph, act)
    answer = graph.post(f"{campaign}/async_batch_requests", name="x", adbatch=[campaign_item(act, "C")])
    assert answer.status == 400 and answer.error["code"] == 100


# --- processing over virtual time ----------------------------------------------------------------------
def test_requests_move_initial_in_progress_success_as_virtual_time_passes(
    graph_simulator: SimulatorThread, graph: Graph, act: str
) -> None:
    """S003 §Asynchronous and Batch Requests: ``initial`` → ``in_progress`` → ``success``; counters and
    ``is_completed`` follow (here one request per virtual second)."""
    set_id = create_set(graph, act, [campaign_item(act, f"C{i}") for i in range(3)])
    assert counts(graph, set_id) == {
        "total_count": 3,
        "initial_count": 2,
        "in_progress_count": 1,
        "success_count": 0,
        "error_count": 0,
        "canceled_count": 0,
        "is_completed": False,
    }
    advance(graph_simulator, 1.0)
    assert counts(graph, set_id) | {} == {
        "total_count": 3,
        "initial_count": 1,
        "in_progress_count": 1,
        "success_count": 1,
        "error_count": 0,
        "canceled_count": 0,
        "is_completed": False,
    }
    advance(graph_simulator, 2.0)
    after = counts(graph, set_id)
    assert after["success_count"] == 3 and after["is_completed"] is True
    assert after["initial_count"] == after["in_progress_count"] == 0
    assert stored_names(graph_simulator, "campaign") == {"C0", "C1", "C2"}


def test_processing_is_lazy_and_each_request_is_one_charged_call(sim_factory: Any) -> None:
    """No background tasks: time passing alone changes nothing; the next read runs what is due, each request
    through the core (one call charged to the ad account, like a batch op)."""
    sim, graph, act = sim_factory(quota_override=100)
    set_id = create_set(graph, act, [campaign_item(act, f"C{i}") for i in range(3)])
    advance(sim, 10.0)
    assert async_calls(sim) == []
    assert stored_names(sim, "campaign") == set()
    assert graph.get(set_id).body["is_completed"] is True
    calls = async_calls(sim)
    assert [(c.method, c.path, c.status, c.account_id) for c in calls] == [
        ("POST", f"{act}/campaigns", 200, act)
    ] * 3
    usage = json.loads(graph.get(act).headers["X-Business-Use-Case-Usage"])
    (buc,) = [u for u in usage[act[4:]] if u["type"] == "ads_management"]
    assert buc["call_count"] == 6  # create + read + 3 requests + this read, at 1 % per call


def test_items_reference_each_other_with_jsonpath(
    graph_simulator: SimulatorThread, graph: Graph, act: str
) -> None:
    """S003 §Batch API: "specify dependencies between related operations" with JSONPath references —
    plain, and URL-encoded inside a URL-encoded body."""
    items = [
        campaign_item(act, "Parent", name="create-campaign"),
        adset_item(act, "{result=create-campaign:$.id}", label="Plain ref", name="plain"),
    ]
    encoded = adset_item(act, "PLACEHOLDER", label="Encoded ref")
    encoded["body"] = encoded["body"].replace("PLACEHOLDER", "%7Bresult%3Dcreate-campaign%3A%24.id%7D")
    set_id = create_set(graph, act, [*items, encoded])
    advance(graph_simulator, 3.0)
    requests = requests_of(graph, set_id, fields="id,scope_object_id,status,result,input")
    by_label = {urllib.parse.parse_qs(r["input"]["body"])["name"][0]: r for r in requests}
    campaign_id = by_label["Parent"]["result"]["id"]
    assert {r["status"] for r in requests} == {"SUCCESS"}
    adsets = graph_simulator.run(lambda core: core.store.snapshot(["adset"]))
    assert {a["campaign_id"] for a in adsets} == {campaign_id}
    assert by_label["Plain ref"]["scope_object_id"] == int(campaign_id)  # parent of the created object
    assert by_label["Parent"]["scope_object_id"] == int(act[4:])


def test_dependencies_run_first_whatever_their_position(
    graph_simulator: SimulatorThread, graph: Graph, act: str
) -> None:
    """Independent operations in parallel, dependent ones sequentially: a request listed before the one
    it references still runs after it."""
    items = [adset_item(act, "{result=camp:$.id}", label="Child"), campaign_item(act, "Parent", name="camp")]
    set_id = create_set(graph, act, items)
    advance(graph_simulator, 2.0)
    assert counts(graph, set_id)["success_count"] == 2


def test_seed_example_with_single_quotes_and_encoded_bodies_is_accepted(
    graph_simulator: SimulatorThread, graph: Graph, act: str
) -> None:
    """S003 §Asynchronous and Batch Requests → Batch API example, verbatim but for the account id (single
    quotes, trailing commas, whole-body percent-encoding, ``objective=LINK_CLICKS``)."""
    adbatch = f"""[
  {{
    'name': 'create-campaign',
    'relative_url': '{act}/campaigns',
    'body': 'name%3DTest+Campaign%26objective%3DLINK_CLICKS%26status%3DPAUSED%26buying_type%3DAUCTION',
  }},
  {{
    'name': 'create-adset',
    'relative_url': '{act}/adsets',
    'body': 'targeting%3D%7B%22geo_locations%22%3A%7B%22countries%22%3A%5B%22US%22%5D%7D%7D%26daily_budget%3D5000%26campaign_id%3D%7Bresult%3Dcreate-campaign%3A%24.id%7D%26bid_amount%3D2%26name%3DFirst%2BAd%2BSet%20Test%26billing_event%3DLINK_CLICKS',
  }},
]"""
    answer = call(
        graph.base_url,
        "POST",
        f"/v24.0/{act}/async_batch_requests",
        {"access_token": graph.token, "name": "batchapiexample", "adbatch": adbatch},
    )
    assert answer.status == 200, answer.body
    set_id = answer.body["id"]
    advance(graph_simulator, 2.0)
    requests = requests_of(graph, set_id, fields="status,result,input")
    assert [r["input"]["name"] for r in requests] == ["create-adset", "create-campaign"]  # newest first
    assert counts(graph, set_id)["is_completed"] is True
    adset_req, campaign_req = requests
    # The seed omits special_ad_categories (required today), so the campaign fails and the ad set follows.
    assert campaign_req["status"] == "ERROR" and campaign_req["result"][0]["error_code"] == 100
    assert adset_req["status"] == "ERROR"
    assert "create-campaign" in adset_req["result"][0]["error_message"]
    assert campaign_req["input"]["body"].startswith("name%3DTest+Campaign")  # input kept as sent


def test_failed_request_has_an_error_array_and_its_dependents_fail(
    graph_simulator: SimulatorThread, graph: Graph, act: str
) -> None:
    """S003 §Asynchronous and Batch Requests: for errors ``result`` is an array of ``error_code``,
    ``error_message``; a request whose parent failed fails; independent requests succeed."""
    items = [
        {"name": "bad", "relative_url": f"{act}/campaigns", "body": "name=No+objective"},
        adset_item(act, "{result=bad:$.id}", label="Orphan"),
        {**campaign_item(act, "After bad"), "depends_on": "bad"},
        campaign_item(act, "Independent"),
    ]
    set_id = create_set(graph, act, items)
    advance(graph_simulator, 4.0)
    c = counts(graph, set_id)
    assert (c["success_count"], c["error_count"], c["is_completed"]) == (1, 3, True)
    results = {
        urllib.parse.parse_qs(r["input"]["body"])["name"][0]: r
        for r in requests_of(graph, set_id, fields="status,result,input")
    }
    bad = results["No objective"]
    assert bad["status"] == "ERROR"
    assert [set(e) for e in bad["result"]] == [{"error_code", "error_message"}]
    assert bad["result"][0]["error_code"] == 100
    for label in ("Orphan", "After bad"):
        assert results[label]["status"] == "ERROR"
        assert "'bad'" in results[label]["result"][0]["error_message"]
    assert results["Independent"]["status"] == "SUCCESS" and set(results["Independent"]["result"]) == {"id"}
    assert stored_names(graph_simulator, "campaign") == {"Independent"}


def test_throttled_requests_wait_for_regained_access_instead_of_failing(sim_factory: Any) -> None:
    """A request answered with a throttling code stays ``in_progress`` and the set resumes once the ad
    account regains access (documented choice in async_batch.py)."""
    sim, graph, act = sim_factory(quota_override=4)
    set_id = create_set(graph, act, [campaign_item(act, f"C{i}") for i in range(5)])
    advance(sim, 10.0)
    first = counts(graph, set_id)
    assert first["error_count"] == 0
    assert first["in_progress_count"] == 1 and first["success_count"] < 5
    advance(sim, 7200.0)
    done = counts(graph, set_id)
    assert (done["success_count"], done["error_count"], done["is_completed"]) == (5, 0, True)


# --- reading requests -------------------------------------------------------------------------------------
def test_request_fields_defaults_and_expansion(
    graph_simulator: SimulatorThread, graph: Graph, act: str
) -> None:
    """S003 §Asynchronous and Batch Requests: request fields ``id``, ``scope_object_id``, ``status`` by default (``id`` always, as in the "Get results of requests" sample);
    ``result``, ``input``, ``async_request_set`` on demand; one request readable by its id."""
    item = campaign_item(act, "Only", name="only")
    set_id = create_set(graph, act, [item])
    [pending] = requests_of(graph, set_id)
    assert set(pending) == {"id", "scope_object_id", "status"}
    assert pending["status"] == "IN_PROGRESS"
    advance(graph_simulator, 1.0)
    full = graph.get(pending["id"], fields="id,scope_object_id,status,result,input,async_request_set").body
    assert full["status"] == "SUCCESS"
    assert full["input"] == item
    assert full["async_request_set"] == {"id": set_id}
    assert set(full["result"]) == {"id"}
    # "Get results of requests" sample: fields=result answers result and id
    assert [set(r) for r in requests_of(graph, set_id, fields="result")] == [{"result", "id"}]
    expanded = graph.get(pending["id"], fields="async_request_set{name,is_completed}").body
    assert expanded["async_request_set"] == {"id": set_id, "name": "set", "is_completed": True}
    unknown = graph.get(set_id, fields="id,bogus")
    assert unknown.status == 400 and unknown.error["code"] == 100


def test_status_filter_is_case_insensitive_and_validated(
    graph_simulator: SimulatorThread, graph: Graph, act: str
) -> None:
    """S003 §Asynchronous and Batch Requests: ``status`` takes any combination of ``initial``, ``in_progress``,
    ``success``, ``error``, ``canceled``; the examples use ``status=SUCCESS,ERROR``."""
    set_id = create_set(graph, act, [campaign_item(act, f"C{i}") for i in range(3)])
    advance(graph_simulator, 1.0)  # one success, one in progress, one initial

    def statuses(value: Any) -> list[str]:
        return sorted(r["status"] for r in requests_of(graph, set_id, status=value))

    assert statuses("SUCCESS,ERROR") == ["SUCCESS"]
    assert statuses("success,INITIAL") == ["INITIAL", "SUCCESS"]
    assert statuses(["in_progress"]) == ["IN_PROGRESS"]
    assert statuses("canceled") == []
    bad = graph.get(f"{set_id}/requests", status="done")
    assert bad.status == 400 and bad.error["code"] == 100


def test_requests_are_cursor_paged(graph: Graph, act: str) -> None:
    """S003 §Paginated Results, as in the async examples' ``paging.cursors``."""
    set_id = create_set(graph, act, [campaign_item(act, f"C{i}") for i in range(5)])
    seen: list[str] = []
    answer: Answer = graph.get(f"{set_id}/requests", limit=2)
    pages = 0
    while True:
        pages += 1
        seen += [r["id"] for r in answer.body["data"]]
        assert set(answer.body["paging"]["cursors"]) == {"before", "after"}
        if "next" not in answer.body["paging"]:
            break
        answer = graph.get(f"{set_id}/requests", limit=2, after=answer.body["paging"]["cursors"]["after"])
    assert pages == 3
    assert len(set(seen)) == 5
    assert seen == sorted(seen, key=int, reverse=True)  # newest first, like the seed sample
    bad = graph.get(f"{set_id}/requests", after="bm90LWEtY3Vyc29y")
    assert bad.status == 400 and bad.error["code"] == 100


def test_account_lists_its_sets_filtered_by_is_completed(
    graph_simulator: SimulatorThread, graph: Graph, act: str
) -> None:
    """S003 §Batch API → List Batch API Requests for Ad Account: ``GET act_<id>/async_requests``, filter
    ``is_completed``."""
    done = create_set(graph, act, [campaign_item(act, "Quick")], name="done")
    advance(graph_simulator, 1.0)
    busy = create_set(graph, act, [campaign_item(act, f"Slow{i}") for i in range(3)], name="busy")
    listed = graph.get(f"{act}/async_requests").body["data"]
    assert [s["id"] for s in listed] == [busy, done]
    assert all(set(s) == SET_DEFAULT_KEYS for s in listed)
    assert [s["id"] for s in graph.get(f"{act}/async_requests", is_completed="true").body["data"]] == [done]
    assert [s["id"] for s in graph.get(f"{act}/async_requests", is_completed=1).body["data"]] == [done]
    assert [s["id"] for s in graph.get(f"{act}/async_requests", is_completed="false").body["data"]] == [busy]
    assert graph.get(f"{act}/asyncadrequestsets").body["data"] == []  # ad-spec sets are listed separately


# --- update and cancel --------------------------------------------------------------------------------------
def test_update_name_and_notification_fields_until_the_notification_is_sent(
    graph_simulator: SimulatorThread, graph: Graph, act: str
) -> None:
    """S003 §Asynchronous and Batch Requests → Update Request Sets: ``name``, ``notification_uri``,
    ``notification_mode`` → true; "only change notification_uri and notification_mode before the
    notification is sent"."""
    set_id = create_set(graph, act, [campaign_item(act, "C0"), campaign_item(act, "C1")])
    updated = graph.post(
        set_id, name="New Name", notification_mode="ON_COMPLETE", notification_uri="https://example.com/hook"
    )
    assert updated.status == 200 and updated.body is True
    fields = "name,notification_mode,notification_uri,notification_status"
    assert graph.get(set_id, fields=fields).body == {
        "id": set_id,
        "name": "New Name",
        "notification_mode": "ON_COMPLETE",
        "notification_uri": "https://example.com/hook",
        "notification_status": "not_sent",
    }
    assert graph.post(set_id, notification_mode="0").body is True  # "Specify 0 for no notifications"
    assert graph.get(set_id, fields="notification_mode").body["notification_mode"] == "OFF"
    assert graph.post(set_id, notification_mode=1).body is True
    bad = graph.post(set_id, notification_mode="SOMETIMES")
    assert bad.status == 400 and bad.error["code"] == 100
    advance(graph_simulator, 2.0)
    sent = graph.get(set_id, fields="is_completed,notification_status,notification_result").body
    assert sent["is_completed"] is True and sent["notification_status"] == "sent"
    assert "simulated" in sent["notification_result"]
    late = graph.post(set_id, notification_mode="OFF")
    assert late.status == 400 and late.error["code"] == 100
    assert graph.post(set_id, name="Renamed later").body is True
    assert graph.get(set_id).body["name"] == "Renamed later"


def test_notification_uri_at_creation_defaults_to_on_complete(graph: Graph, act: str) -> None:
    set_id = create_set(graph, act, [campaign_item(act, "C")], notification_uri="https://example.com/n")
    assert graph.get(set_id, fields="notification_mode").body["notification_mode"] == "ON_COMPLETE"


def test_delete_set_cancels_unprocessed_requests(
    graph_simulator: SimulatorThread, graph: Graph, act: str
) -> None:
    """S003 §Asynchronous and Batch Requests → Cancel Request: ``DELETE /<REQUEST_SET_ID>`` cancels the
    unprocessed requests → true; the one in progress still finishes."""
    set_id = create_set(graph, act, [campaign_item(act, f"C{i}") for i in range(4)])
    answer = graph.delete(set_id)
    assert answer.status == 200 and answer.body is True
    c = counts(graph, set_id)
    assert (c["canceled_count"], c["in_progress_count"], c["initial_count"]) == (3, 1, 0)
    advance(graph_simulator, 10.0)
    c = counts(graph, set_id)
    assert (c["success_count"], c["canceled_count"], c["is_completed"]) == (1, 3, True)
    assert len(requests_of(graph, set_id, status="canceled")) == 3
    assert stored_names(graph_simulator, "campaign") == {"C0"}
    assert graph.delete(set_id).body is True  # nothing left to cancel


def test_delete_request_cancels_it_only_while_initial(
    graph_simulator: SimulatorThread, graph: Graph, act: str
) -> None:
    """S003 §Asynchronous and Batch Requests → Cancel Request: "can only be cancelled if it is not processed
    yet"; later → code 100 (documented choice). A canceled request takes no processing slot."""
    set_id = create_set(graph, act, [campaign_item(act, f"C{i}") for i in range(3)])
    newest, middle, oldest = (r["id"] for r in requests_of(graph, set_id))
    assert graph.delete(middle).body is True
    assert graph.get(middle).body["status"] == "CANCELED"
    in_progress = graph.delete(oldest)
    assert in_progress.status == 400 and in_progress.error["code"] == 100
    again = graph.delete(middle)
    assert again.status == 400 and again.error["code"] == 100
    advance(graph_simulator, 2.0)
    c = counts(graph, set_id)
    assert (c["success_count"], c["canceled_count"], c["is_completed"]) == (2, 1, True)
    finished = graph.delete(newest)
    assert finished.status == 400 and finished.error["code"] == 100
    assert stored_names(graph_simulator, "campaign") == {"C0", "C2"}


def test_request_whose_parent_was_canceled_fails(
    graph_simulator: SimulatorThread, graph: Graph, act: str
) -> None:
    items = [
        campaign_item(act, "First"),
        campaign_item(act, "Parent", name="parent"),
        adset_item(act, "{result=parent:$.id}", label="Child"),
    ]
    set_id = create_set(graph, act, items)
    parent = next(
        r for r in requests_of(graph, set_id, fields="id,input") if r["input"].get("name") == "parent"
    )
    assert graph.delete(parent["id"]).body is True
    advance(graph_simulator, 5.0)
    c = counts(graph, set_id)
    assert (c["success_count"], c["canceled_count"], c["error_count"]) == (1, 1, 1)
    [child] = requests_of(graph, set_id, status="error", fields="result")
    assert "'parent'" in child["result"][0]["error_message"]


# --- asyncadrequestsets / asyncadcreatives ----------------------------------------------------------------
def test_asyncadrequestsets_creates_one_ad_per_spec(
    graph_simulator: SimulatorThread, graph: Graph, act: str, page_id: str
) -> None:
    """S003 §Ad Account Asyncadrequestsets (``ad_specs``, ``name``) and §Asynchronous and Batch Requests:
    one request per ad, ``scope_object_id`` = the ad set, ``input`` = the adgroup spec; listed by
    ``act/asyncadrequestsets`` and by ``<ad set or campaign>/asyncadrequests``."""
    campaign = make_campaign(graph, act)
    adset = make_adset(graph, act, campaign)
    creative = make_creative(graph, act, page_id)
    specs = [
        {
            "name": f"Ad {i}",
            "adset_id": adset,
            "creative": json.dumps({"creative_id": creative}),
            "status": "PAUSED",
        }
        for i in range(2)
    ]
    answer = graph.post(f"{act}/asyncadrequestsets", name="ads", ad_specs=specs, notification_mode="OFF")
    assert answer.status == 200, answer.body
    set_id = answer.body["id"]
    assert graph.get(f"{adset}/asyncadrequests", status="SUCCESS").body["data"] == []
    advance(graph_simulator, 2.0)
    requests = graph.get(
        f"{adset}/asyncadrequests", status="SUCCESS,ERROR", fields="scope_object_id,status,input,result"
    )
    data = requests.body["data"]
    assert len(data) == 2
    assert {r["scope_object_id"] for r in data} == {int(adset)}
    assert {r["status"] for r in data} == {"SUCCESS"}
    assert sorted(r["input"]["name"] for r in data) == ["Ad 0", "Ad 1"]
    assert stored_names(graph_simulator, "ad") == {"Ad 0", "Ad 1"}
    assert len(graph.get(f"{campaign}/asyncadrequests").body["data"]) == 2
    other = make_adset(graph, act, make_campaign(graph, act))
    assert graph.get(f"{other}/asyncadrequests").body["data"] == []
    listed = graph.get(f"{act}/asyncadrequestsets", is_completed=1).body["data"]
    assert listed == [{"id": set_id, "owner_id": int(act[4:]), "name": "ads", "is_completed": True}]
    assert graph.get(f"{act}/async_requests").body["data"] == []


@pytest.mark.parametrize("missing", ["name", "ad_specs"])
def test_asyncadrequestsets_required_parameters(graph: Graph, act: str, missing: str) -> None:
    """S003 §Ad Account Asyncadrequestsets → Error Codes: 100."""
    params: dict[str, Any] = {"name": "x", "ad_specs": [{"name": "Ad"}]}
    del params[missing]
    answer = graph.post(f"{act}/asyncadrequestsets", **params)
    assert answer.status == 400 and answer.error["code"] == 100


def test_asyncadcreatives_creates_one_creative(
    graph_simulator: SimulatorThread, graph: Graph, act: str, page_id: str
) -> None:
    """S003 §Ad Account Asyncadcreatives: ``creative_spec`` + ``name`` → a request set of one creative."""
    spec = {
        "name": "Async creative",
        "object_story_spec": {"page_id": page_id, "link_data": {"link": "https://example.com"}},
    }
    answer = graph.post(f"{act}/asyncadcreatives", name="creative", creative_spec=spec)
    assert answer.status == 200, answer.body
    advance(graph_simulator, 1.0)
    [request] = requests_of(graph, answer.body["id"], fields="status,result")
    assert request["status"] == "SUCCESS"
    assert stored_names(graph_simulator, "adcreative") == {"Async creative"}
