"""Wire compatibility: Meta's official ``facebook-business`` SDK, unchanged, works against the simulator.

How the SDK is pointed at the simulator (no SDK code is patched): ``FacebookAdsApi`` takes a
``FacebookSession`` whose ``GRAPH`` attribute is the Graph base URL (documented on both classes). We build
the session ourselves, set ``session.GRAPH`` on that instance to the simulator's URL (the class default
``https://graph.facebook.com`` is untouched), and install the api as the default, which is what
``FacebookAdsApi.init(..., crash_log=False)`` does; :func:`test_init_with_crash_log_off_can_be_repointed`
shows the ``init`` route too. Every session also gets a transport adapter that refuses any host but
127.0.0.1 and ignores proxy environment variables, so no test can reach the real network.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from facebook_business.adobjects.ad import Ad
from facebook_business.adobjects.adaccount import AdAccount
from facebook_business.adobjects.adcreative import AdCreative
from facebook_business.adobjects.adset import AdSet
from facebook_business.adobjects.campaign import Campaign
from facebook_business.api import FacebookAdsApi, FacebookResponse
from facebook_business.exceptions import FacebookRequestError
from facebook_business.session import FacebookSession
from helpers import TARGETING
from pydantic import SecretStr
from requests.adapters import HTTPAdapter

from bulk_engine.simulator import FaultConfig, SimulatorConfig, SimulatorThread

API_VERSION = "v24.0"
REAL_GRAPH = "https://graph.facebook.com"
APP_SECRET = "simulated-app-secret"


class LoopbackOnlyAdapter(HTTPAdapter):
    """A requests transport that refuses every host but 127.0.0.1 before any DNS lookup or connect."""

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        host = urlsplit(str(request.url)).hostname
        if host != "127.0.0.1":
            raise AssertionError(f"the SDK tried to leave the loopback interface: {request.url}")
        return super().send(request, *args, **kwargs)


def guard(session: FacebookSession) -> FacebookSession:
    session.requests.trust_env = False  # no HTTP(S)_PROXY detours
    for prefix in ("http://", "https://"):
        session.requests.mount(prefix, LoopbackOnlyAdapter())
    return session


def sdk_api(url: str, token: str, app_secret: str | None = None) -> FacebookAdsApi:
    """``FacebookAdsApi.init`` without the crash reporter, with its session aimed at ``url``."""
    assert urlsplit(url).hostname == "127.0.0.1", url
    session = guard(FacebookSession(access_token=token, app_secret=app_secret))
    session.GRAPH = url  # instance attribute: the class default stays https://graph.facebook.com
    api = FacebookAdsApi(session, api_version=API_VERSION)
    FacebookAdsApi.set_default_api(api)
    return api


@dataclass
class Sdk:
    sim: SimulatorThread
    api: FacebookAdsApi
    account: AdAccount
    page_id: str

    def requests(self) -> list[dict[str, Any]]:
        return self.sim.run(lambda core: [dict(r) for r in core.http_requests])


@pytest.fixture(autouse=True)
def _restore_sdk_globals() -> Iterator[None]:
    previous = FacebookAdsApi.get_default_api()
    hook = sys.excepthook
    yield
    FacebookAdsApi.set_default_api(previous)
    assert FacebookSession.GRAPH == REAL_GRAPH, "a test changed the SDK's class-level Graph URL"
    assert sys.excepthook is hook, "the SDK crash reporter was enabled"


@pytest.fixture
def sdk(graph_simulator: SimulatorThread) -> Sdk:
    info = graph_simulator.info()
    api = sdk_api(graph_simulator.url, info["access_token"])
    return Sdk(graph_simulator, api, AdAccount(info["ad_account_ids"][0]), str(info["page_ids"][0]))


def campaign_params(name: str, **overrides: Any) -> dict[str, Any]:
    return {
        "name": name,
        "objective": Campaign.Objective.outcome_traffic,
        "special_ad_categories": [],
        "status": Campaign.Status.paused,
        **overrides,
    }


def adset_params(campaign_id: str, **overrides: Any) -> dict[str, Any]:
    return {
        "name": "Ad set",
        "campaign_id": campaign_id,
        "billing_event": AdSet.BillingEvent.impressions,
        "optimization_goal": AdSet.OptimizationGoal.link_clicks,
        "daily_budget": 1000,
        "targeting": TARGETING,
        "status": AdSet.Status.paused,
        **overrides,
    }


# --- the SDK reaches the simulator and only the simulator -----------------------------------------------
def test_sdk_base_url_is_the_loopback_simulator(sdk: Sdk) -> None:
    session = sdk.api._session
    assert urlsplit(session.GRAPH).hostname == "127.0.0.1"
    assert session.GRAPH == sdk.sim.url
    assert FacebookSession.GRAPH == REAL_GRAPH
    sdk.account.api_get(fields=["name"])
    # The SDK addresses a node as "<GRAPH>/v24.0/<id>/" (its path tuple ends in an empty edge).
    assert [r["path"] for r in sdk.requests()] == [f"/{API_VERSION}/{sdk.account['id']}/"]


def test_guard_refuses_the_real_graph_without_touching_the_network() -> None:
    session = guard(FacebookSession(access_token="not-a-real-token"))  # GRAPH left at the real URL
    api = FacebookAdsApi(session, api_version=API_VERSION)
    with pytest.raises(AssertionError, match=r"https://graph\.facebook\.com/"):
        AdAccount("act_1", api=api).api_get(fields=["name"])


def test_init_with_crash_log_off_can_be_repointed(graph_simulator: SimulatorThread) -> None:
    info = graph_simulator.info()
    api = FacebookAdsApi.init(access_token=info["access_token"], crash_log=False, api_version=API_VERSION)
    session: FacebookSession = api._session  # the session init() built; GRAPH is its base URL
    guard(session).GRAPH = graph_simulator.url
    account = AdAccount(info["ad_account_ids"][0]).api_get(fields=["name", "currency"])
    assert account["currency"] == "USD"
    assert FacebookAdsApi.get_default_api() is api


# --- objects ----------------------------------------------------------------------------------------
def test_create_campaign_adset_creative_ad_and_read_back(sdk: Sdk) -> None:
    campaign = sdk.account.create_campaign(params=campaign_params("SDK campaign"))
    assert isinstance(campaign, Campaign)
    adset = sdk.account.create_ad_set(params=adset_params(campaign["id"]))
    creative = sdk.account.create_ad_creative(
        params={
            "name": "SDK creative",
            "object_story_spec": {
                "page_id": sdk.page_id,
                "link_data": {"link": "https://example.com", "message": "Hello"},
            },
        }
    )
    assert isinstance(creative, AdCreative)
    ad = sdk.account.create_ad(
        params={
            "name": "SDK ad",
            "adset_id": adset["id"],
            "creative": {"creative_id": creative["id"]},
            "status": Ad.Status.paused,
        }
    )
    assert isinstance(ad, Ad)
    assert len({campaign["id"], adset["id"], creative["id"], ad["id"]}) == 4

    read = Campaign(campaign["id"]).api_get(fields=["name", "objective", "status", "effective_status"])
    assert read.export_all_data() == {
        "id": campaign["id"],
        "name": "SDK campaign",
        "objective": "OUTCOME_TRAFFIC",
        "status": "PAUSED",
        "effective_status": "PAUSED",
    }
    read_adset = AdSet(adset["id"]).api_get(fields=["campaign_id", "daily_budget", "targeting"])
    assert read_adset["campaign_id"] == campaign["id"]
    assert str(read_adset["daily_budget"]) == "1000"
    assert read_adset["targeting"].export_all_data() == TARGETING  # parsed into the SDK's Targeting
    read_creative = AdCreative(creative["id"]).api_get(fields=["name", "object_story_spec"])
    assert read_creative["object_story_spec"]["page_id"] == sdk.page_id
    read_ad = Ad(ad["id"]).api_get(fields=["name", "adset_id", "campaign_id", "creative", "effective_status"])
    assert read_ad.export_all_data() == {
        "id": ad["id"],
        "name": "SDK ad",
        "adset_id": adset["id"],
        "campaign_id": campaign["id"],
        "creative": {"id": creative["id"]},
        "effective_status": "PAUSED",
    }
    # Edges from a parent object, parsed into the right SDK classes.
    ads = list(AdSet(adset["id"]).get_ads(fields=["name"]))
    assert [(type(a), a["id"], a["name"]) for a in ads] == [(Ad, ad["id"], "SDK ad")]
    # Update and delete through the SDK's own verbs.
    Campaign(campaign["id"]).api_update(params={"name": "Renamed"})
    assert Campaign(campaign["id"]).api_get(fields=["name"])["name"] == "Renamed"
    Ad(ad["id"]).api_delete()
    assert list(AdSet(adset["id"]).get_ads(fields=["name"])) == []


def test_cursor_iterates_across_pages(sdk: Sdk) -> None:
    names = {f"Campaign {i:02d}" for i in range(30)}
    for name in sorted(names):
        sdk.account.create_campaign(params=campaign_params(name))
    sdk.account.create_campaign(params=campaign_params("Running", status=Campaign.Status.active))
    edge = f"/{API_VERSION}/{sdk.account['id']}/campaigns"

    def pages_fetched(since: int) -> int:
        return sum(1 for r in sdk.requests()[since:] if r["method"] == "GET" and r["path"] == edge)

    before = len(sdk.requests())
    default_page = list(sdk.account.get_campaigns(fields=["name"]))  # default page size 25
    assert {c["name"] for c in default_page} == names | {"Running"}
    assert len(default_page) == 31 and all(isinstance(c, Campaign) for c in default_page)
    assert len({c.get_id() for c in default_page} - {None}) == 31  # every listed object carries its id
    assert pages_fetched(before) == 2

    before = len(sdk.requests())
    cursor = sdk.account.get_campaigns(
        fields=["name", "status"], params={"limit": 7, "summary": "total_count"}
    )
    small_pages = list(cursor)
    assert [c["id"] for c in small_pages] == [c["id"] for c in default_page]  # same order, no repeats
    assert pages_fetched(before) == 5  # ceil(31 / 7)
    assert cursor.total() == 31

    active = list(sdk.account.get_campaigns(fields=["name"], params={"effective_status": ["ACTIVE"]}))
    assert [c["name"] for c in active] == ["Running"]
    active[0].api_update(params={"status": Campaign.Status.paused})  # listed objects are usable as-is
    assert list(sdk.account.get_campaigns(params={"effective_status": ["ACTIVE"]})) == []


# --- batches ----------------------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore:value of objective might not be compatible:UserWarning")
def test_batch_runs_callbacks_with_graph_errors(sdk: Sdk) -> None:
    existing = sdk.account.create_campaign(params=campaign_params("Existing"))
    batch = sdk.api.new_batch()
    succeeded: list[FacebookResponse] = []
    failed: list[FacebookResponse] = []
    for i in range(3):
        sdk.account.create_campaign(
            params=campaign_params(f"Batch {i}"), batch=batch, success=succeeded.append, failure=failed.append
        )
    sdk.account.create_campaign(
        params=campaign_params("Bad", objective="NOT_AN_OBJECTIVE"),
        batch=batch,
        success=succeeded.append,
        failure=failed.append,
    )
    Campaign(existing["id"]).api_get(fields=["name"], batch=batch, success=succeeded.append)
    before = len(sdk.requests())

    assert batch.execute() is None  # no null entries: nothing to retry

    sent = sdk.requests()[before:]
    assert [(r["method"], r["path"], r["batch"], r["ops"]) for r in sent] == [
        ("POST", f"/{API_VERSION}/", True, 5)
    ]
    bodies = [r.json() for r in succeeded]
    created = [b["id"] for b in bodies[:3]]
    assert bodies[3] == {"id": existing["id"], "name": "Existing"}
    stored = {c["id"]: c["name"] for c in sdk.account.get_campaigns(fields=["name"])}
    assert [stored[i] for i in created] == ["Batch 0", "Batch 1", "Batch 2"]
    assert "Bad" not in stored.values()

    assert len(failed) == 1
    error = failed[0].error()
    assert isinstance(error, FacebookRequestError)
    assert error.http_status() == 400
    assert error.api_error_code() == 100
    assert error.api_blame_field_specs() == [["objective"]]
    assert "NOT_AN_OBJECTIVE" in error.api_error_message()
    assert error.body()["error"]["fbtrace_id"]


def test_batch_null_entries_come_back_as_a_retry_batch(sdk: Sdk) -> None:
    sdk.sim.run(lambda core: core.set_faults(FaultConfig(null_rate=1.0)))
    batch = sdk.api.new_batch()
    succeeded: list[FacebookResponse] = []
    for i in range(4):
        sdk.account.create_campaign(
            params=campaign_params(f"Null {i}"), batch=batch, success=succeeded.append
        )

    retry = batch.execute()

    assert retry is not None and len(retry) == 4  # every entry was null: the SDK hands all four back
    assert succeeded == []
    sdk.sim.run(lambda core: core.set_faults(FaultConfig()))
    assert retry.execute() is None
    assert len(succeeded) == 4


def test_batch_over_the_limit_raises_the_graph_error(sdk: Sdk) -> None:
    batch = sdk.api.new_batch()
    for i in range(51):
        sdk.account.create_campaign(params=campaign_params(f"Too many {i}"), batch=batch)
    with pytest.raises(FacebookRequestError) as raised:
        batch.execute()
    assert raised.value.api_error_code() == 100
    assert "Maximum batch size is 50" in raised.value.api_error_message()
    assert list(sdk.account.get_campaigns()) == []


# --- errors -----------------------------------------------------------------------------------------
def test_graph_errors_raise_facebook_request_error(sdk: Sdk) -> None:
    with pytest.raises(FacebookRequestError) as missing:
        Campaign("999999").api_get(fields=["name"])
    assert (missing.value.http_status(), missing.value.api_error_code()) == (400, 100)
    assert missing.value.api_error_subcode() == 33
    assert missing.value.api_error_type() == "GraphMethodException"

    with pytest.raises(FacebookRequestError) as bad_field:
        sdk.account.create_ad_set(params=adset_params("1", name="Orphan"))
    assert bad_field.value.api_error_code() == 100

    stranger = sdk_api(sdk.sim.url, "NOT-A-SIMULATOR-TOKEN")
    with pytest.raises(FacebookRequestError) as bad_token:
        AdAccount(sdk.account["id"], api=stranger).api_get(fields=["name"])
    assert (bad_token.value.http_status(), bad_token.value.api_error_code()) == (401, 190)
    assert bad_token.value.api_error_type() == "OAuthException"


# --- copies -----------------------------------------------------------------------------------------
def test_shallow_copy_of_a_campaign(sdk: Sdk) -> None:
    source = sdk.account.create_campaign(params=campaign_params("Original"))
    sdk.account.create_ad_set(params=adset_params(source["id"]))

    copied = Campaign(source["id"]).create_copy(params={"deep_copy": False, "status_option": "PAUSED"})

    assert isinstance(copied, Campaign)
    copy_id = copied["copied_campaign_id"]
    assert copy_id and copy_id != source["id"]
    read = Campaign(copy_id).api_get(fields=["name", "status", "objective", "source_campaign_id"])
    assert read["status"] == "PAUSED"
    assert read["objective"] == "OUTCOME_TRAFFIC"
    assert read["source_campaign_id"] == source["id"]
    assert list(Campaign(copy_id).get_ad_sets()) == []  # deep_copy=false copies the campaign only
    assert len(list(Campaign(source["id"]).get_ad_sets())) == 1


# --- appsecret_proof --------------------------------------------------------------------------------
class TestAppSecretProof:
    @pytest.fixture
    def graph_simulator_config(self) -> SimulatorConfig:
        return SimulatorConfig(app_secret=SecretStr(APP_SECRET))

    def test_right_secret_signs_every_call(self, graph_simulator: SimulatorThread) -> None:
        info = graph_simulator.info()
        api = sdk_api(graph_simulator.url, info["access_token"], app_secret=APP_SECRET)
        account = AdAccount(info["ad_account_ids"][0])
        assert account.api_get(fields=["name"])["name"].startswith("Simulated account")
        created = account.create_campaign(params=campaign_params("Signed"))
        batch = api.new_batch()
        names: list[str] = []
        Campaign(created["id"]).api_get(
            fields=["name"], batch=batch, success=lambda r: names.append(r.json()["name"])
        )
        assert batch.execute() is None
        assert names == ["Signed"]

    def test_wrong_secret_is_refused(self, graph_simulator: SimulatorThread) -> None:
        info = graph_simulator.info()
        sdk_api(graph_simulator.url, info["access_token"], app_secret="not-the-app-secret")
        with pytest.raises(FacebookRequestError) as raised:
            AdAccount(info["ad_account_ids"][0]).api_get(fields=["name"])
        error = raised.value
        assert (error.http_status(), error.api_error_code()) == (400, 100)
        assert error.api_error_type() == "GraphMethodException"
        assert "appsecret_proof" in error.api_error_message()

    def test_missing_proof_is_refused(self, graph_simulator: SimulatorThread) -> None:
        info = graph_simulator.info()
        sdk_api(graph_simulator.url, info["access_token"])
        with pytest.raises(FacebookRequestError) as raised:
            AdAccount(info["ad_account_ids"][0]).create_campaign(params=campaign_params("Unsigned"))
        assert raised.value.api_error_code() == 100
        assert "appsecret_proof" in raised.value.api_error_message()
        assert graph_simulator.run(lambda core: core.store.snapshot(["campaign"])) == []
