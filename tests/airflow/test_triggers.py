"""Wait-only triggers: serialize() to an importable class path with JSON kwargs; run() fires; no writes."""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from airflow.sdk.module_loading import import_string
from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider.triggers import AsyncRequestSetTrigger, ThrottleCooldownTrigger

TRIGGERS = [
    ThrottleCooldownTrigger("act_1", 1_790_000_000.5),
    ThrottleCooldownTrigger(
        "act_1", 1_790_000_000.0, conn_id="meta_default", poll_s=30, buc_type="ads_insights"
    ),
    AsyncRequestSetTrigger("meta_default", "123", poll_s=5, account_id="act_1"),
]


@pytest.mark.parametrize("trigger", TRIGGERS, ids=lambda t: type(t).__name__)
def test_serialize_round_trip(trigger: BaseTrigger) -> None:
    classpath, kwargs = trigger.serialize()

    assert classpath.startswith("airflow_provider.triggers.")
    assert json.loads(json.dumps(kwargs)) == kwargs  # small and JSON-safe
    rebuilt = import_string(classpath)(**kwargs)
    assert type(rebuilt) is type(trigger)
    assert rebuilt.serialize() == (classpath, kwargs)


async def _first(events: AsyncIterator[TriggerEvent]) -> dict[str, Any]:
    async for event in events:
        payload = event.payload
        assert isinstance(payload, dict)
        return payload
    raise AssertionError("the trigger ended without an event")


def _writes(sim: Any) -> int:
    return int(sim.run(lambda core: len(core.store.snapshot(["campaign", "adset", "ad", "adcreative"]))))


async def test_cooldown_fires_once_the_regain_time_has_passed() -> None:
    event = await _first(ThrottleCooldownTrigger("act_1", time.time() - 1).run())

    assert event == {"status": "cooled_down", "account_id": "act_1", "resume_at_epoch": pytest.approx(time.time(), abs=5),
                     "polls": 0, "task_state": {}}  # fmt: skip


async def test_cooldown_polls_usage_and_fires_when_the_block_lifts(meta_conn: Any) -> None:
    act = meta_conn.info()["ad_account_ids"][0]
    meta_conn.run(lambda core: core.rate_limiter.force_block(act, "ads_management", 600.0, core.clock.now()))

    def trigger() -> ThrottleCooldownTrigger:
        return ThrottleCooldownTrigger(act, time.time() + 3600, conn_id="meta_default", poll_s=0.02)

    with anyio.move_on_after(0.5) as scope:
        await _first(trigger().run())
    assert scope.cancelled_caught, "fired while the account was still blocked"

    meta_conn.run(lambda core: core.clock.advance(601))
    event = await _first(trigger().run())

    assert event["status"] == "regained"
    assert event["polls"] == 1
    assert _writes(meta_conn) == 0


def _create_async_set(sim: Any, act: str, names: list[str]) -> str:
    """Submit an async batch request set over plain HTTP (what a user's task would have done)."""
    info = sim.info()
    batch = [
        {
            "name": name,
            "relative_url": f"{act}/campaigns",
            "body": urllib.parse.urlencode(
                {
                    "name": name,
                    "objective": "OUTCOME_TRAFFIC",
                    "special_ad_categories": "[]",
                    "status": "PAUSED",
                }
            ),
        }
        for name in names
    ]
    data = urllib.parse.urlencode(
        {"name": "set", "adbatch": json.dumps(batch), "access_token": info["access_token"]}
    ).encode()
    with urllib.request.urlopen(f"{info['url']}/v24.0/{act}/async_batch_requests", data=data) as resp:
        return str(json.loads(resp.read())["id"])


async def test_async_request_set_trigger_waits_for_completion(meta_conn: Any) -> None:
    act = meta_conn.info()["ad_account_ids"][0]
    set_id = _create_async_set(meta_conn, act, ["a", "b", "c"])
    meta_conn.run(lambda core: core.clock.advance(60))  # 10 requests per virtual second: all done

    event = await _first(AsyncRequestSetTrigger("meta_default", set_id, poll_s=0.05, account_id=act).run())

    assert event["status"] == "completed"
    assert event["set_id"] == set_id
    assert event["set"]["is_completed"] is True
    assert event["set"]["success_count"] == 3
    assert sorted(c["name"] for c in meta_conn.run(lambda core: core.store.snapshot(["campaign"]))) == [
        "a",
        "b",
        "c",
    ]


async def test_async_request_set_trigger_reports_an_unknown_set(meta_conn: Any) -> None:
    event = await _first(AsyncRequestSetTrigger("meta_default", "999999", poll_s=0.05).run())

    assert event["status"] == "error"
    assert event["error"]["code"] == 100
    assert _writes(meta_conn) == 0
