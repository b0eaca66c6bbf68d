"""The simulator's HTTP surface over real HTTP: paths and versions, parameter and token sources,
appsecret_proof, reads with ``fields``, multi-id reads, updates and deletes, the error envelope, the
inspection API and the pytest plugin (S003 §Platform Versioning, §Handling Errors, §Verify Graph API
Calls with appsecret_proof, §Rate Limits → FAQ; S004 Bearer tokens)."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
from helpers import Graph, call, make_adset, make_campaign
from pydantic import SecretStr

from bulk_engine.simulator import SimulatorConfig, SimulatorThread
from bulk_engine.simulator.errors import GraphAPIError
from bulk_engine.simulator.graph import appsecret_proof
from bulk_engine.simulator.params import Params, split_fields

APP_SECRET = "s3cr3t-app-secret"
CAMPAIGN = {"name": "C", "objective": "OUTCOME_TRAFFIC", "special_ad_categories": [], "status": "PAUSED"}


@pytest.fixture
def graph_simulator_config(request: pytest.FixtureRequest) -> SimulatorConfig:
    """Default config, or ``SimulatorConfig(**param)`` for tests parametrised with ``indirect=True``."""
    return SimulatorConfig(**getattr(request, "param", {}))


def token_of(sim: SimulatorThread) -> str:
    return str(sim.info()["access_token"])


def campaigns(sim: SimulatorThread) -> list[dict[str, Any]]:
    return sim.run(lambda core: core.store.snapshot(["campaign"]))


# --- versions -------------------------------------------------------------------------------------
@pytest.mark.parametrize("version", [f"v{n}.0" for n in range(19, 27)])
def test_every_supported_version_answers_and_names_itself(graph: Graph, act: str, version: str) -> None:
    answer = call(graph.base_url, "GET", f"/{version}/{act}", {"access_token": graph.token, "fields": "name"})
    assert answer.status == 200, answer.body
    assert answer.headers["facebook-api-version"] == version
    assert answer.body["id"] == act


def test_unversioned_call_uses_the_default_version(graph_simulator: SimulatorThread, act: str) -> None:
    answer = call(graph_simulator.url, "GET", f"/{act}", {"access_token": token_of(graph_simulator)})
    assert answer.status == 200
    assert answer.body == {"id": act}
    assert answer.headers["facebook-api-version"] == "v24.0"


@pytest.mark.parametrize("version", ["v18.0", "v2.3", "v27.0", "v99.0"])
def test_versions_out_of_range_answer_2635(graph: Graph, act: str, version: str) -> None:
    answer = call(graph.base_url, "GET", f"/{version}/{act}", {"access_token": graph.token})
    assert answer.status == 400
    assert answer.error["code"] == 2635
    assert answer.error["message"].startswith("(#2635) ")


@pytest.mark.parametrize("graph_simulator_config", [{"deprecated_versions": ("v20.0",)}], indirect=True)
def test_configured_deprecated_version_answers_2635(graph: Graph, act: str) -> None:
    old = call(graph.base_url, "GET", f"/v20.0/{act}", {"access_token": graph.token})
    assert old.error["code"] == 2635
    assert "deprecated version of the Ads API" in old.error["message"]
    assert call(graph.base_url, "GET", f"/v21.0/{act}", {"access_token": graph.token}).status == 200


# --- parameter sources ----------------------------------------------------------------------------
async def _post_multipart(url: str, fields: dict[str, str]) -> tuple[int, Any]:
    form = aiohttp.FormData()
    for key, value in fields.items():
        form.add_field(key, value)
    form.add_field("unused_file", b"\x89PNG", filename="x.png", content_type="image/png")  # forces multipart
    async with aiohttp.ClientSession() as session, session.post(url, data=form) as resp:
        return resp.status, await resp.json()


@pytest.mark.parametrize("source", ["query", "form", "multipart", "json"])
async def test_parameters_from_every_source(graph_simulator: SimulatorThread, act: str, source: str) -> None:
    token = token_of(graph_simulator)
    name = f"from-{source}"
    params = {**CAMPAIGN, "name": name}
    encoded = {k: json.dumps(v) if isinstance(v, list) else v for k, v in params.items()}
    url, path = graph_simulator.url, f"/v24.0/{act}/campaigns"
    if source == "query":
        answer = call(url, "POST", path + "?" + urlencode({**encoded, "access_token": token}))
        status, body = answer.status, answer.body
    elif source == "form":
        answer = call(url, "POST", path, {**encoded, "access_token": token})
        status, body = answer.status, answer.body
    elif source == "multipart":
        status, body = await _post_multipart(url + path, {**encoded, "access_token": token})
    else:  # JSON body: structured values stay native, the token is a body key (S001 style)
        answer = call(url, "POST", path, json_body={**params, "access_token": token})
        status, body = answer.status, answer.body
    assert status == 200, body
    stored = {c["id"]: c for c in campaigns(graph_simulator)}
    assert stored[body["id"]]["name"] == name
    assert stored[body["id"]]["special_ad_categories"] == []


def test_json_body_must_be_an_object(graph: Graph, act: str) -> None:
    req_url = f"/v24.0/{act}/campaigns?access_token={graph.token}"
    answer = _raw(graph.base_url + req_url, b"[1, 2]", "application/json")
    assert answer[0] == 400 and answer[1]["error"]["code"] == 100
    answer = _raw(graph.base_url + req_url, b"{not json", "application/json")
    assert answer[0] == 400 and "not valid JSON" in answer[1]["error"]["message"]


def _raw(url: str, data: bytes, ctype: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    req = urllib.request.Request(
        url, data=data, method="POST", headers={"Content-Type": ctype, **(headers or {})}
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


# --- tokens ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("how", "header"),
    [("query", None), ("form", None), ("json", None), ("bearer", "Bearer"), ("oauth", "OAuth")],
)
def test_token_sources(graph_simulator: SimulatorThread, act: str, how: str, header: str | None) -> None:
    token = token_of(graph_simulator)
    url, path = graph_simulator.url, f"/v24.0/{act}"
    if how == "query":
        answer = call(url, "GET", path, {"access_token": token})
    elif how == "form":
        answer = call(url, "POST", path + "/campaigns", {**CAMPAIGN, "access_token": token})
    elif how == "json":
        answer = call(url, "POST", path + "/campaigns", json_body={**CAMPAIGN, "access_token": token})
    else:
        answer = call(url, "GET", path, headers={"Authorization": f"{header} {token}"})
    assert answer.status == 200, answer.body


def test_missing_token_is_190_oauth(graph_simulator: SimulatorThread, act: str) -> None:
    answer = call(graph_simulator.url, "GET", f"/v24.0/{act}")
    assert answer.status == 400
    err = answer.error
    assert (err["code"], err["type"]) == (190, "OAuthException")
    assert err["message"] == "(#190) An access token is required to request this resource."
    assert "error_subcode" not in err
    assert "X-App-Usage" in answer.headers


def test_unknown_token_is_190_with_www_authenticate(graph_simulator: SimulatorThread, act: str) -> None:
    answer = call(graph_simulator.url, "GET", f"/v24.0/{act}", {"access_token": "EAAnope"})
    assert answer.status == 401
    assert (answer.error["code"], answer.error["type"]) == (190, "OAuthException")
    assert "Invalid OAuth access token" in answer.error["message"]
    assert answer.headers["WWW-Authenticate"].startswith('OAuth "Facebook Platform" "invalid_token"')


@pytest.mark.parametrize(
    "graph_simulator_config", [{"expired_tokens": (SecretStr("OLD-TOKEN"),)}], indirect=True
)
def test_expired_token_is_190_463(graph_simulator: SimulatorThread, act: str) -> None:
    answer = call(graph_simulator.url, "GET", f"/v24.0/{act}", {"access_token": "OLD-TOKEN"})
    assert (answer.error["code"], answer.error["error_subcode"]) == (190, 463)
    assert "expired" in answer.error["message"]


# --- appsecret_proof ------------------------------------------------------------------------------
def test_appsecret_proof_is_the_documented_hmac() -> None:
    expected = hmac.new(APP_SECRET.encode(), b"TOKEN", hashlib.sha256).hexdigest()
    assert appsecret_proof(APP_SECRET, "TOKEN") == expected
    assert len(expected) == 64 and expected == expected.lower()


def _proof_cases(token: str) -> list[tuple[str, dict[str, str], int, str | None]]:
    right = appsecret_proof(APP_SECRET, token)
    return [
        ("missing", {}, 400, "require an appsecret_proof argument"),
        (
            "wrong",
            {"appsecret_proof": appsecret_proof("other-secret", token)},
            400,
            "Invalid appsecret_proof",
        ),
        ("garbage", {"appsecret_proof": "abc"}, 400, "Invalid appsecret_proof"),
        ("right", {"appsecret_proof": right}, 200, None),
        ("right, upper-case hex", {"appsecret_proof": right.upper()}, 200, None),
    ]


@pytest.mark.parametrize("graph_simulator_config", [{"app_secret": SecretStr(APP_SECRET)}], indirect=True)
def test_appsecret_proof_required_when_app_secret_is_set(graph_simulator: SimulatorThread, act: str) -> None:
    token = token_of(graph_simulator)
    for label, extra, status, message in _proof_cases(token):
        answer = call(graph_simulator.url, "GET", f"/v24.0/{act}", {"access_token": token, **extra})
        assert answer.status == status, (label, answer.body)
        if message:
            assert answer.error["code"] == 100, label
            assert answer.error["type"] == "GraphMethodException", label
            assert message in answer.error["message"], label


@pytest.mark.parametrize("graph_simulator_config", [{"app_secret": SecretStr(APP_SECRET)}], indirect=True)
def test_appsecret_proof_checked_at_batch_top_level(graph_simulator: SimulatorThread, act: str) -> None:
    token = token_of(graph_simulator)
    ops = [{"method": "GET", "relative_url": f"v24.0/{act}?fields=name"}]
    for label, extra, status, message in _proof_cases(token):
        answer = call(graph_simulator.url, "POST", "/", {"access_token": token, "batch": ops, **extra})
        assert answer.status == status, (label, answer.body)
        if message:
            assert message in answer.error["message"], label
        else:
            assert answer.body[0]["code"] == 200, label
            assert json.loads(answer.body[0]["body"])["id"] == act


def test_without_app_secret_no_proof_is_needed(graph: Graph, act: str) -> None:
    assert graph.get(act).status == 200
    assert graph.get(act, appsecret_proof="anything").status == 200


# --- reads ----------------------------------------------------------------------------------------
def test_reads_return_requested_fields_including_nested(graph: Graph, act: str) -> None:
    campaign = make_campaign(graph, act, name="Parent")
    adset = make_adset(graph, act, campaign, name="Child")
    read = graph.get(adset, fields="name,campaign{name,objective},campaign_id")
    assert read.status == 200
    assert read.body == {
        "id": adset,
        "name": "Child",
        "campaign_id": campaign,
        "campaign": {"id": campaign, "name": "Parent", "objective": "OUTCOME_TRAFFIC"},
    }
    assert graph.get(adset).body == {"id": adset}


def test_unknown_field_is_100(graph: Graph, act: str) -> None:
    campaign = make_campaign(graph, act)
    answer = graph.get(campaign, fields="name,not_a_field")
    assert answer.status == 400
    assert answer.error["code"] == 100
    assert "not_a_field" in answer.error["message"]


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
def test_unknown_object_is_100_33(graph: Graph, method: str) -> None:
    answer = call(graph.base_url, method, "/v24.0/999999999999", {"access_token": graph.token})
    assert answer.status == 400
    assert (answer.error["code"], answer.error["error_subcode"]) == (100, 33)
    assert answer.error["type"] == "GraphMethodException"
    assert "999999999999" in answer.error["message"]
    # S003 §Handling Errors: "100, subcode 33 | Unsupported post request." — Graph names the method
    assert answer.error["message"].startswith(f"(#100) Unsupported {method.lower()} request.")


# --- multi-id reads -------------------------------------------------------------------------------
def test_ids_multi_read_answers_each_id_and_counts_each(
    graph_simulator: SimulatorThread, graph: Graph, act: str
) -> None:
    a, b = make_campaign(graph, act, name="A"), make_campaign(graph, act, name="B")
    before = graph_simulator.run(
        lambda core: core.rate_limiter.usage(act, "ads_management", core.clock.now()).calls
    )
    seq_before = graph_simulator.run(lambda core: len(core.http_requests))
    answer = graph.get("", ids=f"{a},{b}", fields="name")
    assert answer.status == 200, answer.body
    assert answer.body == {a: {"id": a, "name": "A"}, b: {"id": b, "name": "B"}}
    after = graph_simulator.run(
        lambda core: core.rate_limiter.usage(act, "ads_management", core.clock.now()).calls
    )
    assert after - before == 2  # "each ID counts as one API call"
    calls = graph_simulator.run(lambda core: [c for c in core.calls if c.http_request == seq_before + 1])
    assert [c.path for c in calls] == [a, b]


def test_ids_accepts_a_json_array_and_edge_reads(graph: Graph, act: str) -> None:
    a, b = make_campaign(graph, act), make_campaign(graph, act)
    adset = make_adset(graph, act, a)
    answer = graph.get("", ids=json.dumps([a, b]))
    assert answer.body == {a: {"id": a}, b: {"id": b}}
    edge = graph.get("adsets", ids=f"{a},{b}")
    assert edge.status == 200, edge.body
    assert [x["id"] for x in edge.body[a]["data"]] == [adset]
    assert edge.body[b]["data"] == []


def test_ids_accepts_the_unquoted_bracket_form(graph: Graph, act: str) -> None:
    a, b = make_campaign(graph, act), make_campaign(graph, act)
    assert graph.get("", ids=f"[{a},{b}]").body == {a: {"id": a}, b: {"id": b}}  # S003's ``?ids=[id1,id2]``


@pytest.mark.parametrize(
    ("method", "raw", "expected"),
    [
        ("list", "a,b , c", ["a", "b", "c"]),
        ("list", '["a", "b"]', ["a", "b"]),
        ("list", "[a, 'b']", ["a", "b"]),
        ("list", ["x"], ["x"]),
        ("json", '{"k": [1]}', {"k": [1]}),
        ("json", {"k": 1}, {"k": 1}),
        ("bool", "true", True),
        ("bool", "0", False),
        ("int", " 42 ", 42),
        ("str", 7, "7"),
    ],
)
def test_params_coercions(method: str, raw: Any, expected: Any) -> None:
    assert getattr(Params({"p": raw}), method)("p") == expected


@pytest.mark.parametrize(
    ("method", "raw"),
    [
        ("list", '["a"'),
        ("json", "{nope"),
        ("bool", "maybe"),
        ("int", "4.5"),
        ("str", [1]),
    ],
)
def test_params_bad_values_are_100_blaming_the_field(method: str, raw: Any) -> None:
    with pytest.raises(GraphAPIError) as err:
        getattr(Params({"p": raw}), method)("p")
    assert err.value.code == 100
    assert err.value.blame_field_specs == [["p"]]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("name,status", ["name", "status"]),
        ("name,campaign{name,objective},id", ["name", "campaign{name,objective}", "id"]),
        ("a{b{c,d},e},f", ["a{b{c,d},e}", "f"]),
        ("", []),
    ],
)
def test_split_fields_respects_nesting(spec: str, expected: list[str]) -> None:
    assert split_fields(spec) == expected


def test_ids_with_unknown_id_is_803(graph: Graph, act: str) -> None:
    a = make_campaign(graph, act)
    answer = graph.get("", ids=f"{a},424242")
    assert answer.status == 400
    assert answer.error["code"] == 803
    assert "424242" in answer.error["message"]


@pytest.mark.parametrize("graph_simulator_config", [{"max_ids_per_request": 2}], indirect=True)
def test_too_many_ids_is_100(graph: Graph, act: str) -> None:
    ids = [make_campaign(graph, act) for _ in range(3)]
    answer = graph.get("", ids=",".join(ids))
    assert answer.error["code"] == 100
    assert "Too many IDs" in answer.error["message"]


# --- updates and deletes --------------------------------------------------------------------------
def test_update_via_post_and_delete_via_http_delete(graph: Graph, act: str) -> None:
    campaign = make_campaign(graph, act, name="Before")
    assert graph.post(campaign, name="After").body == {"success": True}
    assert graph.get(campaign, fields="name").body["name"] == "After"
    assert graph.delete(campaign).body == {"success": True}
    assert graph.get(campaign, fields="status").body["status"] == "DELETED"


def test_post_with_method_delete_overrides_the_verb(graph: Graph, act: str) -> None:
    campaign = make_campaign(graph, act)
    assert graph.post(campaign, method="delete").body == {"success": True}
    assert graph.get(campaign, fields="status").body["status"] == "DELETED"


# --- the error envelope ---------------------------------------------------------------------------
def test_error_envelope_carries_every_documented_field(graph: Graph, act: str) -> None:
    campaign = make_campaign(graph, act, daily_budget=5000, bid_strategy="LOWEST_COST_WITHOUT_CAP")
    answer = graph.post(
        f"{act}/adsets",
        name="Both budgets",
        campaign_id=campaign,
        billing_event="IMPRESSIONS",
        optimization_goal="LINK_CLICKS",
        daily_budget=1000,
        targeting={"geo_locations": {"countries": ["US"]}},
    )
    assert answer.status == 400
    err = answer.error
    assert set(err) == {
        "message",
        "type",
        "code",
        "error_subcode",
        "error_user_title",
        "error_user_msg",
        "fbtrace_id",
        "is_transient",
        "error_data",
    }
    assert err["message"].startswith(f"(#{err['code']}) ")
    assert (err["code"], err["error_subcode"]) == (100, 1885621)
    assert err["is_transient"] is False
    assert err["error_data"] == {"blame_field_specs": [["daily_budget"]]}
    assert isinstance(err["fbtrace_id"], str) and err["fbtrace_id"]
    again = graph.post(f"{act}/adsets", name="x", campaign_id=campaign, daily_budget=1000)
    assert again.error["fbtrace_id"] != err["fbtrace_id"]  # fresh per response
    assert {"X-App-Usage", "X-Business-Use-Case-Usage", "X-Ad-Account-Usage"} <= set(answer.headers)


def test_suppress_http_code_answers_200_with_the_error(graph: Graph, act: str) -> None:
    answer = call(
        graph.base_url, "GET", "/v24.0/424242", {"access_token": graph.token, "suppress_http_code": 1}
    )
    assert answer.status == 200
    assert answer.error["code"] == 100


# --- inspection API -------------------------------------------------------------------------------
def test_inspection_info_matches_the_start_line(graph_simulator: SimulatorThread) -> None:
    answer = call(graph_simulator.url, "GET", "/__sim__/info")
    assert answer.status == 200
    assert answer.body == graph_simulator.info()
    assert {"url", "access_token", "ad_account_ids", "page_ids"} <= set(answer.body)
    assert answer.body["url"] == graph_simulator.url
    assert all(a.startswith("act_") for a in answer.body["ad_account_ids"])


def test_inspection_store_calls_and_requests(
    graph_simulator: SimulatorThread, graph: Graph, act: str
) -> None:
    campaign = make_campaign(graph, act)
    make_adset(graph, act, campaign)
    ops = [{"method": "GET", "relative_url": campaign}, {"method": "GET", "relative_url": act}]
    assert graph.batch(ops).status == 200
    url = graph_simulator.url
    stored = call(url, "GET", "/__sim__/store", {"type": "campaign"}).body
    assert [(o["id"], o["type"], o["account_id"]) for o in stored] == [
        (campaign, "campaign", act.removeprefix("act_"))  # the Graph field: the bare account number
    ]
    both = call(url, "GET", "/__sim__/store", {"type": "campaign,adset"}).body
    assert sorted(o["type"] for o in both) == ["adset", "campaign"]
    requests = call(url, "GET", "/__sim__/requests").body
    assert [(r["method"], r["ops"], r["batch"], r["status"]) for r in requests] == [
        ("POST", 1, False, 200),
        ("POST", 1, False, 200),
        ("POST", 2, True, 200),
    ]
    calls = call(url, "GET", "/__sim__/calls").body
    assert len(calls) == 4
    assert [c["http_request"] for c in calls] == [1, 2, 3, 3]
    assert calls[0]["path"] == f"{act}/campaigns" and calls[0]["account_id"] == act
    assert call(url, "GET", "/__sim__/calls", {"http_request": 3}).body == calls[2:]
    assert call(url, "GET", "/__sim__/calls", {"since": 3}).body == calls[3:]
    assert call(url, "GET", "/__sim__/requests", {"since": 2}).body == requests[2:]
    assert call(url, "GET", "/__sim__/calls", {"since": "x"}).status == 400


def test_inspection_clock_and_ratelimit(graph_simulator: SimulatorThread, graph: Graph, act: str) -> None:
    url = graph_simulator.url
    before = call(url, "GET", "/__sim__/clock").body
    assert before["time_scale"] == 1.0
    advanced = call(url, "POST", "/__sim__/clock/advance", json_body={"seconds": 3600})
    assert advanced.body["now"] >= before["now"] + 3600
    assert call(url, "POST", "/__sim__/clock/advance", json_body={"seconds": -1}).status == 400
    graph.get(act)
    usage = call(url, "GET", "/__sim__/ratelimit", {"account": act}).body
    assert usage[act]["ads_management"]["call_count"] == 1
    assert usage[act]["ads_management"]["quota"] == 300
    assert usage[act]["ads_management"]["blocked"] is False


# --- the pytest plugin ----------------------------------------------------------------------------
def test_pytest_plugin_serves_a_users_suite(tmp_path: Path) -> None:
    """The ``pytest11`` entry point gives an unrelated project the ``graph_simulator`` fixture."""
    (tmp_path / "test_user.py").write_text(
        textwrap.dedent(
            """
            import json, urllib.request
            import pytest
            from bulk_engine.simulator import SimulatorConfig

            @pytest.fixture
            def graph_simulator_config():
                return SimulatorConfig(ad_account_ids=("act_42",))

            def test_uses_the_fixture(graph_simulator):
                info = graph_simulator.info()
                assert info["ad_account_ids"] == ["act_42"]
                url = f"{info['url']}/v24.0/act_42?access_token={info['access_token']}"
                with urllib.request.urlopen(url) as resp:
                    assert json.loads(resp.read()) == {"id": "act_42"}

            @pytest.mark.graph_simulator(quota_override=1, page_ids=("77",))
            def test_marker_overrides(graph_simulator):
                info = graph_simulator.info()
                assert (info["ad_account_ids"], info["page_ids"]) == (["act_42"], ["77"])
                assert graph_simulator.run(lambda core: core.rate_limiter.quota("act_42", "ads_management")) == 1
            """
        )
    )
    (plugin,) = [ep for ep in entry_points(group="pytest11") if ep.name == "bulk_engine_simulator"]
    assert plugin.value == "bulk_engine.simulator.pytest_plugin"
    # Load the plugin by its entry-point name only (other plugins' autoload is off to keep this fast);
    # ``-p <entry point name>`` fails unless the package registers it.
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", plugin.name, str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout
