"""Seeded fault injection over HTTP: latency with jitter, injected error codes, HTTP 5xx before the
request runs, connections dropped after the write was committed, throttle bursts, ``null`` batch
entries; the CLI spec parser; runtime changes through ``/__sim__/faults``; reproducibility."""

from __future__ import annotations

import json
import logging
from typing import Any

import aiohttp
import pytest
from helpers import Graph, call, make_campaign

from bulk_engine.simulator import FaultConfig, SimulatorConfig, SimulatorThread
from bulk_engine.simulator.config import INJECTABLE_CODES
from bulk_engine.simulator.faults import FaultInjector, injected_error

CAMPAIGN = {"name": "C", "objective": "OUTCOME_TRAFFIC", "special_ad_categories": "[]", "status": "PAUSED"}


@pytest.fixture
def graph_simulator_config(request: pytest.FixtureRequest) -> SimulatorConfig:
    """Frozen wall time (only clock.advance moves it); ``indirect=True`` parametrisation sets faults."""
    return SimulatorConfig(**{"time_scale": 1e-9, **getattr(request, "param", {})})


def faults(**values: Any) -> Any:
    return pytest.mark.parametrize(
        "graph_simulator_config", [{"faults": FaultConfig(**values)}], indirect=True
    )


def set_faults(sim: SimulatorThread, body: dict[str, Any]) -> Any:
    answer = call(sim.url, "POST", "/__sim__/faults", json_body=body)
    assert answer.status == 200, answer.body
    return answer.body


def stored_campaigns(sim: SimulatorThread) -> int:
    return sim.run(lambda core: len(core.store.snapshot(["campaign"])))


# --- the CLI spec ---------------------------------------------------------------------------------
def test_parse_spec_documented_example() -> None:
    parsed = FaultConfig.parse_spec(
        "transient=0.05,null=0.02,drop=0.02,http5xx=0.01,latency_ms=100,jitter_ms=20"
    )
    assert parsed == FaultConfig(
        transient_rate=0.05,
        null_rate=0.02,
        drop_after_commit_rate=0.02,
        http_5xx_rate=0.01,
        latency_ms=100,
        latency_jitter_ms=20,
    )


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("", FaultConfig()),
        (" transient = 0.5 , ", FaultConfig(transient_rate=0.5)),
        ("throttle=0.1,throttle_s=30", FaultConfig(throttle_burst_rate=0.1, throttle_burst_s=30)),
        ("transient=1,codes=613", FaultConfig(transient_rate=1, transient_codes=(613,))),
        ("codes=1/2/17/190", FaultConfig(transient_codes=(1, 2, 17, 190))),
        ("drop_after_commit_rate=0.3", FaultConfig(drop_after_commit_rate=0.3)),  # field names work too
    ],
)
def test_parse_spec_accepts(spec: str, expected: FaultConfig) -> None:
    assert FaultConfig.parse_spec(spec) == expected


@pytest.mark.parametrize(
    "spec",
    [
        "transient",  # no value
        "bogus=1",  # unknown key
        "transient=lots",  # not a number
        "transient=1.5",  # a probability above 1
        "null=-0.1",
        "latency_ms=-5",
        "transient=0.1,transient=0.2",  # repeated
        "codes=999",  # not injectable
        "codes=",
    ],
)
def test_parse_spec_rejects(spec: str) -> None:
    with pytest.raises(ValueError):
        FaultConfig.parse_spec(spec)


# --- reproducibility ------------------------------------------------------------------------------
def _draw(injector: FaultInjector, n: int = 200) -> list[Any]:
    return [
        (injector.latency_s(), injector.http_5xx(), injector.null_entry(), injector.drop_after_commit())
        for _ in range(n)
    ]


def test_same_seed_same_sequence_other_seed_other_sequence() -> None:
    config = FaultConfig(
        latency_ms=50, latency_jitter_ms=20, http_5xx_rate=0.3, null_rate=0.3, drop_after_commit_rate=0.3
    )
    first, again, other = FaultInjector(config, 7), FaultInjector(config, 7), FaultInjector(config, 8)
    assert _draw(first) == _draw(again)
    assert _draw(FaultInjector(config, 7)) != _draw(other)
    assert first.injected == again.injected and first.injected["http_5xx"] > 0


def test_fault_kinds_draw_from_independent_streams() -> None:
    """Turning latency on does not shift the 5xx sequence (one random stream per kind of fault)."""
    quiet = FaultInjector(FaultConfig(http_5xx_rate=0.5), 3)
    noisy = FaultInjector(FaultConfig(http_5xx_rate=0.5, latency_ms=10, latency_jitter_ms=10), 3)
    assert [quiet.http_5xx() for _ in range(100)] == [
        (noisy.latency_s(), noisy.http_5xx())[1] for _ in range(100)
    ]


@pytest.mark.parametrize("code", INJECTABLE_CODES)
def test_injectable_error_templates(code: int) -> None:
    err = injected_error(code)
    assert err.code == code
    assert err.body()["error"]["message"].startswith(f"(#{code}) ")
    assert err.is_transient == (code in (1, 2, 4, 17, 341, 613))
    if code == 190:
        assert (err.subcode, err.http_status) == (460, 401)


# --- latency --------------------------------------------------------------------------------------
@faults(latency_ms=20, latency_jitter_ms=10)
def test_latency_with_jitter_is_drawn_per_request_and_recorded(
    graph_simulator: SimulatorThread, graph: Graph, act: str
) -> None:
    for _ in range(5):
        assert graph.get(act).status == 200
    records = call(graph_simulator.url, "GET", "/__sim__/requests").body
    drawn = [r["latency_ms"] for r in records]
    assert all(10 <= ms <= 30 for ms in drawn)
    assert len(set(drawn)) == 5  # jitter: each request draws its own
    assert drawn == pytest.approx(list(graph_simulator.run(lambda core: core.faults.latencies_ms)))
    replay = FaultInjector(FaultConfig(latency_ms=20, latency_jitter_ms=10), 0)  # the run's seed is 0
    assert drawn == pytest.approx([replay.latency_s() * 1000 for _ in range(5)])


@faults(latency_ms=300)
async def test_latency_really_delays_the_answer(graph_simulator: SimulatorThread, act: str) -> None:
    import time

    token = graph_simulator.info()["access_token"]
    started = time.perf_counter()
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{graph_simulator.url}/v24.0/{act}", params={"access_token": token}) as resp:
            assert resp.status == 200
    assert time.perf_counter() - started >= 0.25  # a lower bound only: never flaky on a slow machine


# --- injected errors ------------------------------------------------------------------------------
@faults(transient_rate=1.0)
def test_transient_codes_1_and_2_are_marked_transient_and_not_executed(
    graph_simulator: SimulatorThread, graph: Graph, act: str
) -> None:
    seen = set()
    for _ in range(12):
        answer = graph.post(f"{act}/campaigns", **CAMPAIGN)
        assert answer.status == 500
        assert answer.error["is_transient"] is True
        assert answer.error["message"].startswith(f"(#{answer.error['code']}) ")
        seen.add(answer.error["code"])
    assert seen == {1, 2}
    assert stored_campaigns(graph_simulator) == 0  # the handler never ran
    assert graph_simulator.run(lambda core: core.faults.injected["transient"]) == 12


@pytest.mark.parametrize(
    ("code", "status", "transient"), [(613, 400, True), (368, 400, False), (190, 401, False)]
)
def test_runtime_fault_change_injects_chosen_codes(
    graph_simulator: SimulatorThread, graph: Graph, act: str, code: int, status: int, transient: bool
) -> None:
    body = set_faults(graph_simulator, {"spec": f"transient=1,codes={code}"})
    assert body["faults"]["transient_rate"] == 1.0 and body["faults"]["transient_codes"] == [code]
    answer = graph.get(act)
    assert (answer.status, answer.error["code"], answer.error["is_transient"]) == (status, code, transient)
    assert "X-Business-Use-Case-Usage" in answer.headers  # the call was charged before it failed
    set_faults(graph_simulator, {})  # back to no faults
    assert graph.get(act).status == 200


def test_faults_endpoint_reads_and_rejects(graph_simulator: SimulatorThread) -> None:
    url = graph_simulator.url
    current = call(url, "GET", "/__sim__/faults").body
    assert current["faults"] == FaultConfig().model_dump(mode="json")
    assert set(current["injected"]) >= {"transient", "null", "drop", "http_5xx", "throttle_burst"}
    updated = set_faults(graph_simulator, {"transient_rate": 0.25, "latency_ms": 5})
    assert (updated["faults"]["transient_rate"], updated["faults"]["latency_ms"]) == (0.25, 5.0)
    for bad in ({"transient_rate": 2}, {"nope": 1}, {"spec": "bogus=1"}):
        answer = call(url, "POST", "/__sim__/faults", json_body=bad)
        assert answer.status == 400, bad
    assert call(url, "GET", "/__sim__/faults").body["faults"]["transient_rate"] == 0.25  # unchanged


# --- HTTP 5xx -------------------------------------------------------------------------------------
@faults(http_5xx_rate=1.0)
def test_http_5xx_is_answered_before_the_request_runs(
    graph_simulator: SimulatorThread, graph: Graph, act: str
) -> None:
    statuses = set()
    for _ in range(10):
        answer = _raw_status(
            graph_simulator.url + f"/v24.0/{act}/campaigns", {**CAMPAIGN, "access_token": graph.token}
        )
        statuses.add(answer[0])
        assert answer[1].startswith("<html>")
    assert statuses == {500, 503}
    assert stored_campaigns(graph_simulator) == 0
    assert graph_simulator.run(lambda core: len(core.calls)) == 0  # no Graph call ran
    records = call(graph_simulator.url, "GET", "/__sim__/requests").body
    assert {r["fault"] for r in records} == {"http_5xx"}


def _raw_status(url: str, form: dict[str, str]) -> tuple[int, str]:
    import urllib.error
    import urllib.parse
    import urllib.request

    req = urllib.request.Request(url, data=urllib.parse.urlencode(form).encode(), method="POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


# --- dropped connections --------------------------------------------------------------------------
@faults(drop_after_commit_rate=1.0)
async def test_drop_after_commit_disconnects_but_keeps_the_object(
    graph_simulator: SimulatorThread, act: str, caplog: pytest.LogCaptureFixture
) -> None:
    token = graph_simulator.info()["access_token"]
    caplog.set_level(logging.DEBUG, logger="aiohttp")
    async with aiohttp.ClientSession() as session:
        with pytest.raises((aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)):
            async with session.post(
                f"{graph_simulator.url}/v24.0/{act}/campaigns", data={**CAMPAIGN, "access_token": token}
            ) as resp:
                await resp.read()
        # reads are never dropped: the client can reconcile
        async with session.get(
            f"{graph_simulator.url}/v24.0/{act}/campaigns", params={"access_token": token, "fields": "name"}
        ) as resp:
            listing = await resp.json()
    assert [c["name"] for c in listing["data"]] == ["C"]  # the write was committed
    assert stored_campaigns(graph_simulator) == 1
    records = call(graph_simulator.url, "GET", "/__sim__/requests").body
    assert records[0]["fault"] == "drop" and records[0]["status"] == 200
    noisy = [r for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith("aiohttp")]
    assert noisy == [], [r.getMessage() for r in noisy]


# --- throttle bursts ------------------------------------------------------------------------------
@faults(throttle_burst_rate=1.0, throttle_burst_s=120)
def test_throttle_burst_blocks_the_account_for_n_virtual_seconds(
    graph_simulator: SimulatorThread, graph: Graph, act: str
) -> None:
    answer = graph.get(act)
    assert (answer.error["code"], answer.error["error_subcode"]) == (80004, 2446079)
    usage = json.loads(answer.headers["X-Business-Use-Case-Usage"])[act.removeprefix("act_")][0]
    assert usage["estimated_time_to_regain_access"] == 2  # 120 s, in minutes
    assert usage["call_count"] == 0  # the counters keep telling the truth: 1 call of 300
    set_faults(graph_simulator, {})
    graph_simulator.run(lambda core: core.clock.advance(60))
    assert graph.get(act).error["code"] == 80004  # still inside the burst
    graph_simulator.run(lambda core: core.clock.advance(61))
    assert graph.get(act).status == 200
    other = graph_simulator.info()["ad_account_ids"][1]
    assert graph.get(other).status == 200


# --- null batch entries ---------------------------------------------------------------------------
@faults(null_rate=1.0)
def test_null_rate_turns_batch_entries_into_null(
    graph_simulator: SimulatorThread, graph: Graph, act: str
) -> None:
    ops = [{"method": "GET", "relative_url": act} for _ in range(6)]
    answer = graph.batch(ops)
    assert answer.status == 200
    assert answer.body == [None] * 6
    assert graph_simulator.run(lambda core: core.faults.injected["null"]) == 6


def test_same_seed_replays_the_same_faults_over_http(act: str) -> None:
    config = SimulatorConfig(seed=11, time_scale=1e-9, faults=FaultConfig(transient_rate=0.4))

    def run() -> list[int]:
        with SimulatorThread(config) as sim:
            g = Graph(sim.url, sim.info()["access_token"])
            return [g.get(act).status for _ in range(25)]

    first = run()
    assert first == run()
    assert 200 in first and any(s >= 500 for s in first)


def test_campaign_create_works_with_no_faults(graph: Graph, act: str) -> None:
    assert make_campaign(graph, act)
