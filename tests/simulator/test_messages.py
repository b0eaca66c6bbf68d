"""Marketing messages on Messenger over HTTP (S004; choices documented in ``bulk_engine/simulator/messages.py``).

The S004 examples post JSON bodies with ``Authorization: Bearer <SYSTEM_USER_ACCESS_TOKEN>``; the tests do
the same (and once with a form body and ``access_token``).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from helpers import Answer, Graph, call, make_campaign

from bulk_engine.simulator import SimulatorThread
from bulk_engine.simulator.config import SimulatorConfig

HOURS_12 = 12 * 3600
ATTACHMENT = {
    "attachment": {
        "type": "template",
        "payload": {
            "template_type": "generic",
            "elements": [{"title": "Spring sale", "buttons": [{"type": "web_url", "url": "https://e.com"}]}],
        },
    }
}


class Bearer:
    """S004-style client: JSON bodies, token in the Authorization header."""

    def __init__(self, sim: SimulatorThread) -> None:
        self.url = sim.url
        self.headers = {"Authorization": f"Bearer {sim.info()['access_token']}"}

    def post(self, path: str, body: dict[str, Any]) -> Answer:
        return call(self.url, "POST", f"/v24.0/{path}", headers=self.headers, json_body=body)

    def get(self, path: str, **params: Any) -> Answer:
        return call(self.url, "GET", f"/v24.0/{path}", params, headers=self.headers)

    def delete(self, path: str) -> Answer:
        return call(self.url, "DELETE", f"/v24.0/{path}", headers=self.headers)


@pytest.fixture
def api(graph_simulator: SimulatorThread) -> Bearer:
    return Bearer(graph_simulator)


def advance(sim: SimulatorThread, seconds: float) -> None:
    sim.run(lambda core: core.clock.advance(seconds))


def make_message_campaign(api: Bearer, act: str, page_id: str, **overrides: Any) -> str:
    body = {"name": "Spring messages", "page_id": page_id, "lifetime_budget": 5000, **overrides}
    answer = api.post(f"{act}/message_campaign", body)
    assert answer.status == 200, answer.body
    assert set(answer.body) == {"id"}
    return str(answer.body["id"])


def send(api: Bearer, act: str, campaign: str, token: str = "12348141984909088", **overrides: Any) -> Answer:
    body = {
        "message_id": campaign,
        "messenger_delivery_data": {"subscription_token": token},
        "message": ATTACHMENT,
        **overrides,
    }
    return api.post(f"{act}/messages", body)


def assert_error(answer: Answer, code: int, blame: list[str], subcode: int | None = None) -> None:
    assert answer.status == 400, answer.body
    assert answer.error["code"] == code
    assert answer.error.get("error_subcode") == subcode
    assert answer.error["error_data"]["blame_field_specs"] == [blame]


# --- message campaigns -----------------------------------------------------------------------------------
def test_create_and_read_a_message_campaign(api: Bearer, act: str, page_id: str) -> None:
    """S004 step 1 and "Get campaign information": the seed's field shape."""
    campaign = make_message_campaign(api, act, page_id)
    answer = api.get(
        campaign,
        fields="id,campaign{name},creative{actor_id},adset{name,lifetime_budget,daily_budget,start_time,end_time}",
    )
    assert answer.status == 200, answer.body
    body = answer.body
    assert body["id"] == campaign
    assert body["campaign"] == {"name": "Spring messages", "id": campaign}
    assert body["creative"] == {"actor_id": page_id}
    assert body["adset"]["lifetime_budget"] == "5000"  # budgets read back as strings, in cents
    assert "daily_budget" not in body["adset"]
    assert body["adset"]["start_time"].endswith("+0000")
    flags = api.get(campaign, fields="is_message_campaign,is_direct_send_campaign,effective_status,page_id")
    assert flags.body == {
        "id": campaign,
        "is_message_campaign": True,
        "is_direct_send_campaign": True,
        "effective_status": "ACTIVE",
        "page_id": page_id,
    }
    assert api.get(campaign).body == {"id": campaign}
    assert api.get(campaign, fields="objective").error["code"] == 100


@pytest.mark.parametrize(
    ("body", "blame", "subcode"),
    [
        ({"daily_budget": 99}, "daily_budget", 1885272),
        ({"lifetime_budget": 2999}, "lifetime_budget", 1885272),  # min_daily_budget_imp 100 × 30
        ({}, "daily_budget", None),
        ({"daily_budget": 100, "lifetime_budget": 3000}, "lifetime_budget", None),
        ({"daily_budget": -5}, "daily_budget", None),
        ({"daily_budget": "lots"}, "daily_budget", None),
        ({"daily_budget": 100, "name": None}, "name", None),
        ({"daily_budget": 100, "page_id": None}, "page_id", None),
        ({"daily_budget": 100, "page_id": "999"}, "page_id", None),
    ],
)
def test_message_campaign_refusals(
    api: Bearer, act: str, page_id: str, body: dict[str, Any], blame: str, subcode: int | None
) -> None:
    request = {"name": "M", "page_id": page_id, **body}
    request = {k: v for k, v in request.items() if v is not None}
    assert_error(api.post(f"{act}/message_campaign", request), 100, [blame], subcode)


@pytest.mark.parametrize("budget", [{"daily_budget": 100}, {"lifetime_budget": 3000}])
def test_minimum_budgets_are_accepted(api: Bearer, act: str, page_id: str, budget: dict[str, int]) -> None:
    make_message_campaign(api, act, page_id, **{"lifetime_budget": None, **budget})


def test_form_body_with_access_token_works_too(graph: Graph, act: str, page_id: str) -> None:
    created = graph.post(f"{act}/message_campaign", name="Form", page_id=page_id, daily_budget=500)
    assert created.status == 200, created.body
    sent = graph.post(
        f"{act}/messages",
        message_id=created.body["id"],
        messenger_delivery_data={"subscription_token": "777"},
        message=ATTACHMENT,
    )
    assert sent.status == 200, sent.body
    assert sent.body["success"] is True


# --- sending ---------------------------------------------------------------------------------------------------
def test_send_a_message(api: Bearer, act: str, page_id: str) -> None:
    """S004 step 3: ``{"success": true, "marketing_message_tracking_id": "<uuid>"}``."""
    campaign = make_message_campaign(api, act, page_id)
    answer = send(api, act, campaign)
    assert answer.status == 200, answer.body
    assert set(answer.body) == {"success", "marketing_message_tracking_id"}
    assert answer.body["success"] is True
    tracking = uuid.UUID(answer.body["marketing_message_tracking_id"])
    assert tracking.version == 4


def test_sent_messages_are_listed_on_the_ads_edge(api: Bearer, act: str, page_id: str) -> None:
    """S004 "Get all campaigns": ``/act/ads?fields=id,adset{…},campaign{…is_message_campaign…}``."""
    campaign = make_message_campaign(api, act, page_id, name="Promo", daily_budget=700, lifetime_budget=None)
    first = send(api, act, campaign, token="A").body["marketing_message_tracking_id"]
    send(api, act, campaign, token="B")
    listed = api.get(
        f"{act}/ads",
        fields="id,adset{name,daily_budget,lifetime_budget,start_time,end_time},"
        "campaign{name,is_direct_send_campaign,is_message_campaign},marketing_message_tracking_id",
    )
    assert listed.status == 200, listed.body
    assert len(listed.body["data"]) == 2
    oldest = listed.body["data"][-1]
    assert oldest["marketing_message_tracking_id"] == first
    assert oldest["campaign"] == {
        "name": "Promo",
        "is_direct_send_campaign": True,
        "is_message_campaign": True,
        "id": campaign,
    }
    assert oldest["adset"]["daily_budget"] == "700" and oldest["adset"]["id"] == campaign


def test_twelve_hours_between_messages_per_subscription_token(
    api: Bearer, act: str, page_id: str, graph_simulator: SimulatorThread
) -> None:
    """S004: "ensure you delay subsequent messages by at least 12 hours to avoid errors" (code 10/2018278)."""
    campaign = make_message_campaign(api, act, page_id)
    other_campaign = make_message_campaign(api, act, page_id, name="Other")
    assert send(api, act, campaign, token="T1").status == 200
    too_soon = send(api, act, campaign, token="T1")
    assert_error(too_soon, 10, ["messenger_delivery_data", "subscription_token"], 2018278)
    assert too_soon.error["is_transient"] is False
    assert "12 hours" in too_soon.error["error_user_msg"]
    assert send(api, act, other_campaign, token="T1").status == 400  # per token, across campaigns
    assert send(api, act, campaign, token="T2").status == 200  # other subscribers are unaffected
    advance(graph_simulator, HOURS_12 - 60)
    assert send(api, act, campaign, token="T1").status == 400  # refusals do not restart the interval
    advance(graph_simulator, 60)
    assert send(api, act, campaign, token="T1").status == 200
    assert send(api, act, campaign, token="T1").status == 400


@pytest.mark.parametrize(
    ("overrides", "blame"),
    [
        ({"message_id": None}, ["message_id"]),
        ({"message_id": "424242"}, ["message_id"]),
        ({"messenger_delivery_data": None}, ["messenger_delivery_data"]),
        ({"messenger_delivery_data": {}}, ["messenger_delivery_data", "subscription_token"]),
        (
            {"messenger_delivery_data": {"subscription_token": ""}},
            ["messenger_delivery_data", "subscription_token"],
        ),
        ({"message": None}, ["message"]),
    ],
)
def test_send_refusals(
    api: Bearer, act: str, page_id: str, overrides: dict[str, Any], blame: list[str]
) -> None:
    campaign = make_message_campaign(api, act, page_id)
    body = {
        "message_id": campaign,
        "messenger_delivery_data": {"subscription_token": "S"},
        "message": ATTACHMENT,
        **overrides,
    }
    assert_error(api.post(f"{act}/messages", {k: v for k, v in body.items() if v is not None}), 100, blame)


def test_message_id_must_be_a_message_campaign(api: Bearer, graph: Graph, act: str, page_id: str) -> None:
    ad_campaign = make_campaign(graph, act)
    assert_error(send(api, act, ad_campaign), 100, ["message_id"])
    other_account = make_message_campaign(api, "act_1000000002", page_id)
    assert_error(send(api, act, other_account), 100, ["message_id"])


# --- delete ----------------------------------------------------------------------------------------------------
def test_delete_a_message_campaign(api: Bearer, act: str, page_id: str) -> None:
    """S004 "Delete a campaign": ``{"success": true}``; it cannot send any more and leaves the edges."""
    campaign = make_message_campaign(api, act, page_id)
    assert send(api, act, campaign, token="D").status == 200
    assert api.delete(campaign).body == {"success": True}
    assert api.delete(campaign).body == {"success": True}  # idempotent: a retried delete succeeds
    assert api.get(campaign, fields="effective_status").body["effective_status"] == "DELETED"
    assert_error(send(api, act, campaign, token="E"), 100, ["message_id"])
    assert api.get(f"{act}/ads").body["data"] == []


# --- previews and reproducibility ------------------------------------------------------------------------------
def test_generate_previews(api: Bearer, act: str, page_id: str) -> None:
    """S004 step 2: ``generatepreviews?ad_format=MESSENGER_MARKETING_MESSAGES_MEDIA`` → an iframe body."""
    creative = {
        "marketing_message_structured_spec": {},
        "object_story_spec": {"page_id": page_id, "link_data": {}},
    }
    params = {
        "ad_format": "MESSENGER_MARKETING_MESSAGES_MEDIA",
        "creative": json.dumps(creative),
        "message": json.dumps({"attachment": {}}),
    }
    answer = api.get(f"{act}/generatepreviews", **params)
    assert answer.status == 200, answer.body
    [preview] = answer.body["data"]
    assert preview["body"].startswith("<iframe src=") and preview["body"].endswith("</iframe>")
    assert api.get(f"{act}/generatepreviews", **params).body == answer.body  # deterministic
    assert_error(
        api.get(f"{act}/generatepreviews", **{**params, "ad_format": "BILLBOARD"}), 100, ["ad_format"]
    )
    assert_error(api.get(f"{act}/generatepreviews", ad_format="MOBILE_FEED_STANDARD"), 100, ["creative"])


def test_tracking_ids_reproduce_with_the_seed() -> None:
    """Tracking ids come from the run's seeded RNG, so a rerun with the same seed answers the same ids."""

    def first_tracking_id(seed: int) -> str:
        config = SimulatorConfig(seed=seed)
        act, page_id = config.ad_account_ids[0], config.page_ids[0]
        with SimulatorThread(config) as sim:
            api = Bearer(sim)
            answer = send(api, act, make_message_campaign(api, act, page_id))
            return str(answer.body["marketing_message_tracking_id"])

    assert first_tracking_id(7) == first_tracking_id(7)
    assert first_tracking_id(7) != first_tracking_id(8)
