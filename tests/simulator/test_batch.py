"""The sync batch endpoint over real HTTP (S003 §Batch Requests; §Asynchronous and Batch Requests → Create Ads;
SPEC-DIGEST §1, §9.1 item 1). Every behaviour listed in ``bulk_engine/simulator/batch.py``'s docstring."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from helpers import TARGETING, Answer, Graph, call, make_adset, make_campaign
from pngs import png

from bulk_engine.simulator import FaultConfig, GraphCore, SimulatorConfig, SimulatorThread
from bulk_engine.simulator.batch import compile_jsonpath

CAMPAIGN_BODY = "objective=OUTCOME_TRAFFIC&special_ad_categories=[]&status=PAUSED"
ADSET_BODY = (
    "billing_event=IMPRESSIONS&optimization_goal=LINK_CLICKS&daily_budget=1000&status=PAUSED&targeting="
    + json.dumps(TARGETING)
)


def create_campaign_op(act: str, label: str, **extra: Any) -> dict[str, Any]:
    """A campaign create named ``label``; ``extra`` adds op fields (``name`` is the op's name)."""
    return {
        "method": "POST",
        "relative_url": f"{act}/campaigns",
        "body": f"name={label}&{CAMPAIGN_BODY}",
        **extra,
    }


def create_adset_op(act: str, campaign_ref: str, label: str = "Ad set", **extra: Any) -> dict[str, Any]:
    body = f"name={label}&campaign_id={campaign_ref}&{ADSET_BODY}"
    return {"method": "POST", "relative_url": f"{act}/adsets", "body": body, **extra}


def bodies(answer: Answer) -> list[Any]:
    """The decoded ``body`` of each entry (``None`` for null entries)."""
    assert answer.status == 200, answer.body
    return [None if entry is None else json.loads(entry["body"]) for entry in answer.body]


def header(entry: dict[str, Any], name: str) -> str | None:
    return next((h["value"] for h in entry.get("headers", []) if h["name"].lower() == name.lower()), None)


def stored(sim: SimulatorThread, type_: str) -> list[dict[str, Any]]:
    return sim.run(lambda core: core.store.snapshot([type_]))


def names_of(sim: SimulatorThread, type_: str) -> set[str]:
    return {str(n.get("name")) for n in stored(sim, type_)}


@pytest.fixture
def sim_factory() -> Iterator[Any]:
    """Start extra simulators with a custom config (stopped at teardown)."""
    started: list[SimulatorThread] = []

    def start(**config: Any) -> tuple[SimulatorThread, Graph, str]:
        sim = SimulatorThread(SimulatorConfig(**config)).start()
        started.append(sim)
        info = sim.info()
        return sim, Graph(sim.url, info["access_token"]), str(info["ad_account_ids"][0])

    yield start
    for sim in started:
        sim.stop()


def multipart_post(url: str, fields: dict[str, str], files: dict[str, tuple[str, bytes]]) -> Answer:
    """A ``multipart/form-data`` POST like ``curl -F 'test1=@./test1.jpg'`` (S003 §Upload Binary Data)."""
    boundary = uuid.uuid4().hex
    chunks: list[bytes] = []
    for key, value in fields.items():
        chunks.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'.encode()
        )
    for key, (filename, data) in files.items():
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"; filename="{filename}"\r\n'
            "Content-Type: image/jpeg\r\n\r\n"
        )
        chunks.append(head.encode() + data + b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode())
    request = urllib.request.Request(
        url,
        data=b"".join(chunks),
        method="POST",
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    with urllib.request.urlopen(request, timeout=30) as resp:
        return Answer(resp.status, dict(resp.headers), json.loads(resp.read()))


# --- §Batch Request: where and how a batch is posted ------------------------------------------------
@pytest.mark.parametrize("path", ["/", "/v24.0/", "/v24.0/me", "/v24.0/act_1000000001", "/2000000001"])
def test_batch_request_accepted_on_root_versioned_root_and_node_paths(
    graph_simulator: SimulatorThread, graph: Graph, page_id: str, path: str
) -> None:
    """S003 §Batch Request: ``POST /ENDPOINT?batch=`` on graph.facebook.com, /v12.0, /me, /PAGE-ID."""
    ops = [
        {"method": "GET", "relative_url": page_id},
        {"method": "GET", "relative_url": f"{page_id}?fields=name"},
    ]
    answer = call(graph_simulator.url, "POST", path, {"access_token": graph.token, "batch": ops})
    assert bodies(answer) == [{"id": page_id}, {"id": page_id, "name": f"Simulated Page {page_id}"}]
    record = graph_simulator.run(lambda core: core.http_requests[-1])
    assert record["batch"] is True and record["ops"] == 2


def test_batch_parameter_in_the_query_string(
    graph_simulator: SimulatorThread, graph: Graph, act: str
) -> None:
    """S003 §Batch Request: ``POST /ENDPOINT?batch=[JSON-OBJECT]`` — batch as a query parameter."""
    ops = [create_campaign_op(act, "From query")]
    query = urllib.parse.urlencode({"batch": json.dumps(ops), "include_headers": "false"})
    answer = call(graph_simulator.url, "POST", f"/v24.0/?{query}", {"access_token": graph.token})
    assert answer.body[0]["code"] == 200 and "headers" not in answer.body[0]
    assert names_of(graph_simulator, "campaign") == {"From query"}


def test_more_than_50_ops_fail_the_whole_request_with_code_100(
    graph_simulator: SimulatorThread, graph: Graph, act: str
) -> None:
    """S003 §Batch Requests → Limitations: "limited to 50 requests per batch" — 51 → code 100, nothing runs."""
    answer = graph.batch([create_campaign_op(act, f"C{i}") for i in range(51)])
    assert answer.status == 400
    assert answer.error["code"] == 100 and "50" in answer.error["message"]
    assert stored(graph_simulator, "campaign") == []
    assert graph_simulator.run(lambda core: len(core.calls)) == 0


def test_exactly_50_ops_are_accepted(graph_simulator: SimulatorThread, graph: Graph, act: str) -> None:
    answer = graph.batch([create_campaign_op(act, f"C{i}") for i in range(50)])
    assert [entry["code"] for entry in answer.body] == [200] * 50
    assert len(stored(graph_simulator, "campaign")) == 50


@pytest.mark.parametrize(
    ("batch", "fragment"),
    [
        ("not json at all", "batch"),
        (json.dumps({"method": "GET", "relative_url": "me"}), "array"),
        ("[]", "array"),
        (json.dumps([{"method": "GET"}]), "relative_url"),
        (json.dumps([{"method": "PATCH", "relative_url": "x"}]), "PATCH"),
        (json.dumps(["GET x"]), "object"),
    ],
)
def test_malformed_batch_parameter_is_code_100(graph: Graph, batch: str, fragment: str) -> None:
    answer = call(graph.base_url, "POST", "/", {"access_token": graph.token, "batch": batch})
    assert answer.status == 400
    assert answer.error["code"] == 100 and fragment in answer.error["message"]


def test_relaxed_json_as_printed_in_the_seeds_is_accepted(graph: Graph, page_id: str) -> None:
    """S003 §Upload Binary Data / §Complex Batch Requests print ``[{…},]`` and single quotes."""
    text = f"[{{'method':'GET','relative_url':'{page_id}'}},{{'relative_url':'{page_id}'}},]"
    answer = call(graph.base_url, "POST", "/", {"access_token": graph.token, "batch": text})
    assert bodies(answer) == [{"id": page_id}, {"id": page_id}]  # method defaults to GET


# --- §Batch Request / §Complex Batch Requests: the answer ---------------------------------------------
def test_answer_is_ordered_code_headers_and_body_as_a_json_string(
    graph: Graph, act: str, page_id: str
) -> None:
    """S003 §Batch Request: array of ``{code, headers:[{name,value}], body:"<JSON string>"}`` in request order."""
    answer = graph.batch(
        [
            {"method": "GET", "relative_url": f"{page_id}?fields=name"},
            create_campaign_op(act, "Ordered"),
            {"method": "GET", "relative_url": f"{act}/campaigns?fields=name"},
            {"method": "GET", "relative_url": "999999999999"},
        ]
    )
    assert answer.status == 200
    entries = answer.body
    assert [e["code"] for e in entries] == [200, 200, 200, 400]
    for entry in entries:
        assert set(entry) == {"code", "headers", "body"}
        assert isinstance(entry["body"], str)
        assert all(set(h) == {"name", "value"} for h in entry["headers"])
        assert header(entry, "Content-Type") == "text/javascript; charset=UTF-8"
    decoded = bodies(answer)
    assert decoded[0]["name"] == f"Simulated Page {page_id}"
    assert decoded[2]["data"][0] == {"id": decoded[1]["id"], "name": "Ordered"}
    assert decoded[3]["error"]["code"] == 100
    assert header(entries[0], "ETag")  # the §Complex Batch Requests sample shows an ETag on a GET


def test_include_headers_false_drops_per_op_headers(graph: Graph, page_id: str) -> None:
    """S003 §Batch Request: ``include_headers=false`` "Included to remove header information"."""
    ops = [{"method": "GET", "relative_url": page_id}]
    without = graph.batch(ops, include_headers="false")
    assert without.body == [{"code": 200, "body": json.dumps({"id": page_id}, separators=(",", ":"))}]
    with_headers = graph.batch(ops, include_headers="true")
    assert "headers" in with_headers.body[0]


def test_put_and_delete_operations(graph_simulator: SimulatorThread, graph: Graph, act: str) -> None:
    """S003 §Complex Batch Requests: operations of different HTTP methods in one batch (PUT acts as POST)."""
    campaign = make_campaign(graph, act)
    answer = graph.batch(
        [
            {"method": "PUT", "relative_url": f"v24.0/{campaign}", "body": "name=Renamed"},
            {"method": "GET", "relative_url": f"{campaign}?fields=name"},
            {"method": "DELETE", "relative_url": campaign},
        ]
    )
    assert bodies(answer) == [{"success": True}, {"id": campaign, "name": "Renamed"}, {"success": True}]
    assert stored(graph_simulator, "campaign")[0]["status"] == "DELETED"


# --- rate limits: every op is one call -------------------------------------------------------------------
def test_each_op_is_charged_as_one_call_and_carries_its_usage_headers(sim_factory: Any) -> None:
    """S003 §Batch Requests → Limitations: "a batch of 10 API calls will count as 10 calls"."""
    sim, graph, act = sim_factory(quota_override=100)
    answer = graph.batch([{"method": "GET", "relative_url": f"{act}/campaigns"} for _ in range(5)])
    counts = []
    for entry in answer.body:
        usage = json.loads(header(entry, "X-Business-Use-Case-Usage") or "{}")
        (buc,) = [u for u in usage[act.removeprefix("act_")] if u["type"] == "ads_management"]
        counts.append(buc["call_count"])
    assert counts == [1, 2, 3, 4, 5]  # quota 100 → one call = 1 %
    seq = sim.run(lambda core: core.http_requests[-1]["seq"])
    calls = sim.run(lambda core: [c for c in core.calls if c.http_request == seq])
    assert len(calls) == 5 and {c.account_id for c in calls} == {act}


def test_throttled_op_gets_its_own_error_entry(sim_factory: Any) -> None:
    _sim, graph, act = sim_factory(quota_override=3)
    answer = graph.batch([{"method": "GET", "relative_url": f"{act}/campaigns"} for _ in range(5)])
    codes = [json.loads(e["body"]).get("error", {}).get("code") for e in answer.body]
    assert codes[:3] == [None, None, None]
    assert codes[3:] == [80004, 80004]


# --- tokens ------------------------------------------------------------------------------------------------
def test_op_token_overrides_the_top_level_fallback_token(sim_factory: Any) -> None:
    """S003 §Using Multiple Access Tokens: per-op ``access_token`` in the query or the body; the top-level
    token is the fallback."""
    sim, graph, act = sim_factory(access_tokens=("TOKEN-A", "TOKEN-B"))
    answer = graph.batch(
        [
            {"method": "GET", "relative_url": f"{act}?fields=name&access_token=TOKEN-B"},
            {
                **create_campaign_op(act, "Own token"),
                "body": f"name=Own token&{CAMPAIGN_BODY}&access_token=TOKEN-B",
            },
            {"method": "GET", "relative_url": f"{act}?fields=name"},  # fallback
            {"method": "GET", "relative_url": f"{act}?access_token=NOT-A-TOKEN"},
        ]
    )
    assert [e["code"] for e in answer.body] == [200, 200, 200, 403]
    assert names_of(sim, "campaign") == {"Own token"}


def test_top_level_token_is_required_even_when_every_op_has_one(
    graph_simulator: SimulatorThread, graph: Graph, act: str
) -> None:
    """S003 §Using Multiple Access Tokens: "You must include an access token as a top level parameter"."""
    ops = [
        {
            **create_campaign_op(act, "Never"),
            "body": f"name=Never&{CAMPAIGN_BODY}&access_token={graph.token}",
        },
        {"method": "GET", "relative_url": f"{act}?access_token={graph.token}"},
    ]
    answer = call(graph_simulator.url, "POST", "/", {"batch": ops})
    assert answer.status >= 400 and answer.error["code"] == 190
    assert stored(graph_simulator, "campaign") == []


def test_oauth_error_in_one_op_is_403_with_www_authenticate_while_siblings_are_200(sim_factory: Any) -> None:
    """S003 §Batch Requests → Errors: ``{"code": 403, "headers": [{"name":"WWW-Authenticate", …}]}`` and
    "Other requests within the batch should still complete successfully … with a 200 status code"."""
    sim, graph, act = sim_factory(expired_tokens=("EXPIRED",))
    answer = graph.batch(
        [
            {"method": "GET", "relative_url": f"{act}?fields=name"},
            {"method": "GET", "relative_url": f"{act}?access_token=EXPIRED"},
            {"method": "GET", "relative_url": f"{act}?access_token=GARBAGE"},
            create_campaign_op(act, "Sibling"),
        ]
    )
    entries = answer.body
    assert [e["code"] for e in entries] == [200, 403, 403, 200]
    for entry in entries[1:3]:
        assert (header(entry, "WWW-Authenticate") or "").startswith("OAuth")
        assert entry["headers"][0]["name"] == "WWW-Authenticate"  # first, as in the seed sample
        error = json.loads(entry["body"])["error"]
        assert error["type"] == "OAuthException" and error["code"] == 190
    assert json.loads(entries[1]["body"])["error"]["error_subcode"] == 463
    assert header(entries[0], "WWW-Authenticate") is None
    assert names_of(sim, "campaign") == {"Sibling"}


# --- {result=NAME:$.jsonpath} ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "reference",
    [
        "{result=camp:$.id}",
        "%7Bresult%3Dcamp%3A%24.id%7D",  # URL-encoded (SPEC-DIGEST §1.2 example 4)
        "%7Bresult=camp:$.id%7D",  # partly encoded
    ],
    ids=["plain", "url-encoded", "partly-encoded"],
)
def test_reference_in_body_is_substituted(
    graph_simulator: SimulatorThread, graph: Graph, act: str, reference: str
) -> None:
    """S003 §Asynchronous and Batch Requests: JSONPath references to previous requests, plain or encoded."""
    answer = graph.batch(
        [
            create_campaign_op(act, "Parent", name="camp", omit_response_on_success=False),
            create_adset_op(act, reference),
        ]
    )
    campaign, adset = bodies(answer)
    [stored_adset] = stored(graph_simulator, "adset")
    assert stored_adset["id"] == adset["id"]
    assert stored_adset["campaign_id"] == campaign["id"]


@pytest.mark.parametrize(
    "relative_url",
    ["{result=camp:$.id}?fields=name", "v24.0/%7Bresult%3Dcamp%3A%24.id%7D?fields=name"],
    ids=["plain", "url-encoded"],
)
def test_reference_in_relative_url_is_substituted(graph: Graph, act: str, relative_url: str) -> None:
    answer = graph.batch(
        [
            create_campaign_op(act, "Read me", name="camp", omit_response_on_success=False),
            {"method": "GET", "relative_url": relative_url},
        ]
    )
    campaign, read = bodies(answer)
    assert read == {"id": campaign["id"], "name": "Read me"}


def test_wildcard_data_ids_feed_a_multi_id_read(graph: Graph, act: str) -> None:
    """S003 §Complex Batch Requests: ``"relative_url":"?ids={result=create-ad:$.data.*.id}"`` — the
    wildcard yields several ids, comma-joined (SPEC-DIGEST §1.2)."""
    ids = {make_campaign(graph, act, name=f"Listed {i}") for i in range(3)}
    answer = graph.batch(
        [
            {"method": "GET", "name": "list", "relative_url": f"{act}/campaigns"},
            {"method": "GET", "relative_url": "?ids={result=list:$.data.*.id}&fields=name"},
        ]
    )
    listed, multi = bodies(answer)
    assert listed is None  # referenced → omitted by default (see omit_response_on_success tests)
    assert set(multi) == ids
    assert {v["name"] for v in multi.values()} == {"Listed 0", "Listed 1", "Listed 2"}


def test_reference_inside_embedded_json_is_substituted(
    graph_simulator: SimulatorThread, graph: Graph, act: str, page_id: str
) -> None:
    """S003 §Create Ads: ``creative={"creative_id":"{result=create_creative:$.id}"}`` inside a body."""
    campaign = make_campaign(graph, act)
    adset = make_adset(graph, act, campaign)
    spec = json.dumps({"page_id": page_id, "link_data": {"link": "https://example.com", "message": "Hi"}})
    answer = graph.batch(
        [
            {
                "method": "POST",
                "name": "create_creative",
                "relative_url": f"{act}/adcreatives",
                "body": f"name=Creative&object_story_spec={spec}",
            },
            {
                "method": "POST",
                "relative_url": f"{act}/ads",
                "body": f'name=Ad&adset_id={adset}&status=PAUSED&creative={{"creative_id":"{{result=create_creative:$.id}}"}}',
            },
        ]
    )
    assert [e and e["code"] for e in answer.body] == [None, 200]
    [creative] = stored(graph_simulator, "adcreative")
    [ad] = stored(graph_simulator, "ad")
    assert ad["creative"]["id"] == creative["id"]


def test_seed_create_ads_example_image_creative_and_three_ads(
    graph_simulator: SimulatorThread, graph: Graph, act: str, page_id: str
) -> None:
    """S003 §Asynchronous and Batch Requests → Create Ads, verbatim but for ids: an image uploaded with
    ``attached_files``, a creative that uses ``{result=create_adimage:$.images.*.hash}`` and three ads
    that use ``{result=create_creative:$.id}``."""
    adset = make_adset(graph, act, make_campaign(graph, act))
    creative_body = (
        'name=sample creative&object_story_spec={"link_data": {"image_hash": '
        '"{result=create_adimage:$.images.*.hash}", "link": "https://www.test12345.com", "message": '
        f'"this is a sample message"}}, "page_id":"{page_id}"}}&degrees_of_freedom_spec='
        '{"creative_features_spec": {"standard_enhancements": {"enroll_status": "OPT_OUT"}}}'
    )
    ads = [
        {
            "method": "POST",
            "relative_url": f"v24.0/{act}/ads",
            "body": f"adset_id={adset}&redownload=1&status=PAUSED&optimization_goal=REACH&billing_event="
            'IMPRESSIONS&&creative={"creative_id":"{result=create_creative:$.id}"}&targeting='
            f'{{"countries":["US"]}}&name=test{i}',
        }
        for i in (1, 2, 3)
    ]
    batch = [
        {
            "method": "POST",
            "name": "create_adimage",
            "relative_url": f"v24.0/{act}/adimages",
            "attached_files": "test1",
        },
        {
            "method": "POST",
            "name": "create_creative",
            "relative_url": f"v24.0/{act}/adcreatives",
            "attached_files": "test1",
            "body": creative_body,
        },
        *ads,
    ]
    image = png()  # a real image: the library refuses content that is not one
    answer = multipart_post(
        graph_simulator.url + "/",
        {"access_token": graph.token, "batch": json.dumps(batch)},
        {"test1": ("test1.jpg", image)},
    )
    assert answer.body[:2] == [None, None]  # referenced ops are omitted on success (the default)
    assert [e["code"] for e in answer.body[2:]] == [200, 200, 200]
    [stored_image] = stored(graph_simulator, "adimage")
    [creative] = stored(graph_simulator, "adcreative")
    assert creative["object_story_spec"]["link_data"]["image_hash"] == stored_image["hash"]
    ads_stored = stored(graph_simulator, "ad")
    assert sorted(a["name"] for a in ads_stored) == ["test1", "test2", "test3"]
    assert {a["creative"]["id"] for a in ads_stored} == {creative["id"]}


def test_attached_files_reach_the_op_and_images_hash_path(
    graph_simulator: SimulatorThread, graph: Graph, act: str
) -> None:
    """S003 §Upload Binary Data: ``attached_files`` names multipart parts; two files, two ops."""
    batch = [
        {
            "method": "POST",
            "name": "img1",
            "relative_url": f"{act}/adimages",
            "attached_files": "file1",
            "omit_response_on_success": False,
        },
        {"method": "POST", "relative_url": f"{act}/adimages", "attached_files": "file2"},
        {"method": "GET", "relative_url": f'{act}/adimages?hashes=["{{result=img1:$.images.*.hash}}"]'},
        {"method": "POST", "relative_url": f"{act}/adimages", "attached_files": "missing"},
    ]
    answer = multipart_post(
        graph_simulator.url + "/",
        {"access_token": graph.token, "batch": json.dumps(batch)},
        {"file1": ("cat.png", png(seed=1)), "file2": ("dog.png", png(seed=2))},
    )
    first, second, listed, missing = answer.body
    img1 = json.loads(first["body"])["images"]
    img2 = json.loads(second["body"])["images"]
    assert set(img1) == {"file1"} and set(img2) == {"file2"}
    assert img1["file1"]["hash"] != img2["file2"]["hash"]
    assert [d["id"] for d in json.loads(listed["body"])["data"]] == [f"{act[4:]}:{img1['file1']['hash']}"]
    assert missing["code"] == 400 and "missing" in json.loads(missing["body"])["error"]["message"]


# --- failed / unknown references, depends_on ----------------------------------------------------------
def test_op_whose_reference_failed_gets_an_error_while_independent_siblings_succeed(
    graph_simulator: SimulatorThread, graph: Graph, act: str
) -> None:
    """SPEC-DIGEST §9.2: dependent op whose parent failed; siblings unaffected (per-op 4xx, body a string)."""
    answer = graph.batch(
        [
            {
                "method": "POST",
                "name": "bad",
                "relative_url": f"{act}/campaigns",
                "body": "name=No objective",
            },
            create_adset_op(act, "{result=bad:$.id}", label="Orphan"),
            create_campaign_op(act, "Independent"),
            create_adset_op(act, "{result=nobody:$.id}", label="Unknown ref"),
            create_adset_op(act, "{result=later:$.id}", label="Forward ref"),
            create_campaign_op(act, "Later", name="later"),
        ]
    )
    entries = answer.body
    assert [e and e["code"] for e in entries] == [400, 400, 200, 400, 400, None]
    assert isinstance(entries[1]["body"], str)
    for index, name in ((1, "bad"), (3, "nobody"), (4, "later")):
        error = json.loads(entries[index]["body"])["error"]
        assert error["code"] == 100 and f"'{name}'" in error["message"]
    assert names_of(graph_simulator, "campaign") == {"Independent", "Later"}
    assert stored(graph_simulator, "adset") == []
    # the refused dependents were neither run nor charged: only bad, Independent and later reached the core
    seq = graph_simulator.run(lambda core: core.http_requests[-1]["seq"])
    assert graph_simulator.run(lambda core: sum(c.http_request == seq for c in core.calls)) == 3


def test_reference_that_selects_nothing_is_a_dependency_error(graph: Graph, act: str) -> None:
    answer = graph.batch(
        [
            create_campaign_op(act, "Parent", name="camp"),
            {"method": "GET", "relative_url": "{result=camp:$.no_such_field}"},
        ]
    )
    assert json.loads(answer.body[1]["body"])["error"]["code"] == 100


@pytest.mark.parametrize("honour", [True, False])
def test_depends_on(sim_factory: Any, honour: bool) -> None:
    """``depends_on`` (SPEC-DIGEST §1.1, configurable): the op runs only if its parent succeeded."""
    sim, graph, act = sim_factory(honour_depends_on=honour)
    answer = graph.batch(
        [
            {"method": "POST", "name": "bad", "relative_url": f"{act}/campaigns", "body": "name=Broken"},
            create_campaign_op(act, "After bad", depends_on="bad"),
            create_campaign_op(act, "Good", name="good"),
            create_campaign_op(act, "After good", depends_on="good"),
        ]
    )
    codes = [e and e["code"] for e in answer.body]
    assert codes[0] == 400 and codes[3] == 200
    assert codes[2] is None  # depended upon → omitted on success
    if honour:
        assert codes[1] == 400
        assert names_of(sim, "campaign") == {"Good", "After good"}
    else:
        assert codes[1] == 200
        assert names_of(sim, "campaign") == {"After bad", "Good", "After good"}


# --- omit_response_on_success ---------------------------------------------------------------------------
def test_omit_response_on_success_default_omits_referenced_ops_only(graph: Graph, act: str) -> None:
    """Documented default (batch.py): a referenced op answers null on success; an unreferenced one does not."""
    answer = graph.batch(
        [
            create_campaign_op(act, "Referenced", name="ref"),
            create_campaign_op(act, "Named, unreferenced", name="alone"),
            create_adset_op(act, "{result=ref:$.id}"),
        ]
    )
    entries = answer.body
    assert entries[0] is None
    assert entries[1]["code"] == 200 and entries[2]["code"] == 200


def test_omit_response_on_success_false_returns_the_referenced_answer(graph: Graph, act: str) -> None:
    answer = graph.batch(
        [
            create_campaign_op(act, "Referenced", name="ref", omit_response_on_success=False),
            create_adset_op(act, "{result=ref:$.id}"),
        ]
    )
    campaign, adset = bodies(answer)
    assert campaign["id"] and adset["id"]


def test_omit_response_on_success_true_omits_even_unreferenced_ops_but_never_errors(
    graph: Graph, act: str
) -> None:
    answer = graph.batch(
        [
            create_campaign_op(act, "Quiet", omit_response_on_success=True),
            {
                "method": "POST",
                "relative_url": f"{act}/campaigns",
                "body": "name=x",
                "omit_response_on_success": "true",
            },
            {**create_campaign_op(act, "Failing ref", name="f"), "body": "name=broken"},
            {"method": "GET", "relative_url": "{result=f:$.id}"},
        ]
    )
    entries = answer.body
    assert entries[0] is None
    assert entries[1]["code"] == 400  # an error is always answered
    assert entries[2]["code"] == 400  # a failed referenced op is answered too
    assert entries[3]["code"] == 400


def test_omit_default_can_be_switched_off(sim_factory: Any) -> None:
    _sim, graph, act = sim_factory(omit_referenced_batch_responses=False)
    answer = graph.batch(
        [create_campaign_op(act, "Referenced", name="ref"), create_adset_op(act, "{result=ref:$.id}")]
    )
    assert [e["code"] for e in answer.body] == [200, 200]


# --- null entries on partial timeout --------------------------------------------------------------------
def _null_pattern(sim: SimulatorThread, graph: Graph, act: str, n: int) -> tuple[list[bool], set[str]]:
    answer = graph.batch([create_campaign_op(act, f"C{i}") for i in range(n)])
    return [e is None for e in answer.body], names_of(sim, "campaign")


def test_null_entries_are_seeded_and_cover_lost_answers_of_committed_ops(sim_factory: Any) -> None:
    """S003 §Batch Requests → Timeouts: "Responses for requests that are not successful will be null";
    with ``null_rate`` some nulls were committed ("after") and some never ran ("before")."""
    faults = FaultConfig(null_rate=0.5)
    sim1, graph1, act1 = sim_factory(faults=faults, seed=7)
    sim2, graph2, act2 = sim_factory(faults=faults, seed=7)
    nulls1, committed1 = _null_pattern(sim1, graph1, act1, 40)
    nulls2, committed2 = _null_pattern(sim2, graph2, act2, 40)
    assert nulls1 == nulls2 and committed1 == committed2  # reproducible from the seed
    null_names = {f"C{i}" for i, is_null in enumerate(nulls1) if is_null}
    answered = {f"C{i}" for i, is_null in enumerate(nulls1) if not is_null}
    assert answered <= committed1  # answered 200 → stored
    after = null_names & committed1
    before = null_names - committed1
    assert after, "some null entries hide a committed create"
    assert before, "some null entries were never run"
    assert sim1.run(lambda core: core.faults.injected["null"]) == len(null_names)


def _script_nulls(sim: SimulatorThread, script: list[str | None]) -> None:
    def install(core: GraphCore) -> None:
        outcomes = iter(script)
        core.faults.null_entry = lambda: next(outcomes, None)  # type: ignore[method-assign]

    sim.run(install)


def test_null_after_commit_cascades_to_dependents(
    graph_simulator: SimulatorThread, graph: Graph, act: str
) -> None:
    """A parent whose answer was lost (committed) makes every op that references it null, transitively;
    an independent sibling still answers."""
    _script_nulls(graph_simulator, ["after"])
    answer = graph.batch(
        [
            create_campaign_op(act, "Committed", name="camp", omit_response_on_success=False),
            create_adset_op(act, "{result=camp:$.id}", label="Child", name="child"),
            {"method": "GET", "relative_url": "{result=child:$.id}"},
            create_campaign_op(act, "Sibling"),
        ]
    )
    entries = answer.body
    assert entries[:3] == [None, None, None]
    assert entries[3]["code"] == 200
    assert names_of(graph_simulator, "campaign") == {"Committed", "Sibling"}  # the null parent WAS created
    assert stored(graph_simulator, "adset") == []  # its dependents were not run


def test_null_before_run_commits_nothing(graph_simulator: SimulatorThread, graph: Graph, act: str) -> None:
    _script_nulls(graph_simulator, [None, "before"])
    answer = graph.batch([create_campaign_op(act, "First"), create_campaign_op(act, "Lost")])
    assert answer.body[0]["code"] == 200 and answer.body[1] is None
    assert names_of(graph_simulator, "campaign") == {"First"}


# --- two ad sets under one campaign -----------------------------------------------------------------------
def test_second_adset_of_the_same_campaign_is_refused(
    graph_simulator: SimulatorThread, graph: Graph, act: str
) -> None:
    """S003 §Batch Requests → Limitations: "Batch requests cannot include multiple Adsets under the same
    Campaign" — the second gets code 100, an ad set of another campaign still succeeds."""
    first, other = make_campaign(graph, act), make_campaign(graph, act)
    answer = graph.batch(
        [
            create_adset_op(act, first, label="One"),
            create_adset_op(act, first, label="Two"),
            create_adset_op(act, other, label="Other"),
        ]
    )
    entries = answer.body
    assert [e["code"] for e in entries] == [200, 400, 200]
    error = json.loads(entries[1]["body"])["error"]
    assert error["code"] == 100 and "multiple Adsets under the same Campaign" in error["message"]
    assert names_of(graph_simulator, "adset") == {"One", "Other"}


def test_second_adset_via_the_same_reference_is_refused(
    graph_simulator: SimulatorThread, graph: Graph, act: str
) -> None:
    answer = graph.batch(
        [
            create_campaign_op(act, "Parent", name="camp"),
            create_adset_op(act, "{result=camp:$.id}", label="One"),
            create_adset_op(act, "%7Bresult%3Dcamp%3A%24.id%7D", label="Two"),
        ]
    )
    assert [e and e["code"] for e in answer.body] == [None, 200, 400]
    assert names_of(graph_simulator, "adset") == {"One"}


def test_sibling_adset_rule_can_be_switched_off(sim_factory: Any) -> None:
    _sim, graph, act = sim_factory(reject_sibling_adsets_in_batch=False)
    campaign = make_campaign(graph, act)
    answer = graph.batch(
        [create_adset_op(act, campaign, label="One"), create_adset_op(act, campaign, label="Two")]
    )
    assert [e["code"] for e in answer.body] == [200, 200]


# --- JSONPath compilation (hot path) ----------------------------------------------------------------------
SAMPLE = {
    "id": "1",
    "data": [{"id": "a"}, {"id": "b", "x": {"y": 3}}],
    "images": {"cat.gif": {"hash": "h1"}, "dog.jpg": {"hash": "h2"}},
    "flag": True,
}


@pytest.mark.parametrize(
    "expr",
    [
        "$.id",
        "$.data.*.id",
        "$.images.*.hash",
        "$.data[1].x.y",
        "$.data[*].id",
        "$.missing",
        "$.data[5].id",
        "$.flag",
    ],
)
def test_fast_jsonpath_matches_jsonpath_ng(expr: str) -> None:
    from jsonpath_ng.ext import parse

    assert compile_jsonpath(expr)(SAMPLE) == [m.value for m in parse(expr).find(SAMPLE)]


def test_complex_jsonpath_falls_back_to_jsonpath_ng() -> None:
    assert compile_jsonpath("$.data[?(@.id=='b')].x.y")(SAMPLE) == [3]


def test_jsonpath_expressions_are_compiled_once(graph: Graph, act: str) -> None:
    compile_jsonpath.cache_clear()
    ops = [create_campaign_op(act, "Parent", name="camp")]
    ops += [{"method": "GET", "relative_url": "{result=camp:$.id}"} for _ in range(10)]
    assert [e and e["code"] for e in graph.batch(ops).body] == [None] + [200] * 10
    info = compile_jsonpath.cache_info()
    assert info.misses == 1 and info.hits == 9
