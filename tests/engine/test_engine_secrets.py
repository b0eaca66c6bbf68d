"""Secrets never leak (logs, outcomes, reports, exceptions) and appsecret_proof is sent."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from engine_support import campaign_op

from bulk_engine import BulkEngine, Credentials, EngineConfig, OutcomeState
from bulk_engine.simulator import FaultConfig

SENTINEL_TOKEN = "SENTINEL-TOKEN-7f3a9c"
SENTINEL_SECRET = "SENTINEL-SECRET-b81d2e"


async def test_sentinels_appear_nowhere(start_sim: Any, caplog: pytest.LogCaptureFixture) -> None:
    sim = await start_sim(
        access_tokens=[SENTINEL_TOKEN],
        app_secret=SENTINEL_SECRET,
        faults=FaultConfig(transient_rate=0.3, null_rate=0.1),
        seed=5,
    )
    act = sim.accounts[0]
    config = EngineConfig(
        credentials=Credentials(access_token=SENTINEL_TOKEN, app_secret=SENTINEL_SECRET),
        graph_url=sim.url,
        seed=1,
    )
    caplog.set_level(logging.DEBUG)
    ops = [campaign_op(f"c{i}", act) for i in range(30)] + [campaign_op("bad", act, objective="NOPE")]
    async with BulkEngine(config) as engine:
        result = await engine.run(ops)
    # appsecret_proof was sent and accepted: the simulator requires it when an app secret is set
    assert result.counts["succeeded"] == 30
    assert result.outcome("bad").state is OutcomeState.FAILED
    texts = [
        caplog.text,
        json.dumps(result.to_dict(), default=str),
        repr(result),
        repr(config),
        str(config),
        repr(engine),
        repr(config.credentials),
    ]
    for text in texts:
        assert SENTINEL_TOKEN not in text
        assert SENTINEL_SECRET not in text


async def test_wrong_app_secret_is_an_auth_failure_not_a_retry_loop(start_sim: Any) -> None:
    sim = await start_sim(app_secret="right-secret")
    act = sim.accounts[0]
    config = EngineConfig(
        credentials=Credentials(access_token=sim.token, app_secret="wrong-secret"), graph_url=sim.url
    )
    async with BulkEngine(config) as engine:
        result = await engine.run([campaign_op(f"c{i}", act) for i in range(5)])
    assert result.counts["succeeded"] == 0
    assert result.http_requests <= 2


async def test_invalid_token_stops_the_job(start_sim: Any) -> None:
    sim = await start_sim()
    act = sim.accounts[0]
    config = EngineConfig(credentials=Credentials(access_token="not-a-valid-token"), graph_url=sim.url)
    ops = [campaign_op(f"c{i}", act) for i in range(120)]
    async with BulkEngine(config) as engine:
        result = await engine.run(ops)
    assert result.counts["succeeded"] == 0
    assert result.counts["failed"] + result.counts["skipped"] == 120
    failed = [o for o in result.outcomes if o.state is OutcomeState.FAILED]
    assert failed and all(o.error is not None and o.error.code == 190 for o in failed)
    assert result.retries == 0
    assert result.http_requests <= 4
