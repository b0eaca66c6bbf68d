"""Business Use Case rate limits (S003 §Rate Limits, §Business Use Case Rate Limits), driven by the
virtual clock: quotas, the exact usage headers, throttling with 80004, blocks extended by calls made
while blocked, independence of ad accounts, and the cost of the limiter itself."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from helpers import Answer, Graph, call, make_ad, make_adset, make_campaign, make_creative

from bulk_engine.simulator import SimulatorConfig, SimulatorThread
from bulk_engine.simulator.clock import VirtualClock
from bulk_engine.simulator.errors import GraphAPIError
from bulk_engine.simulator.ratelimit import RateLimiter

FROZEN = 1e-9  # time_scale that freezes wall time: only clock.advance moves the virtual clock
THROTTLE_MESSAGE = (
    "(#80004) There have been too many calls to this ad-account. Wait a bit and try again. For more info, "
    "please refer to https://developers.facebook.com/docs/graph-api/overview/rate-limiting#ads-management."
)


@pytest.fixture
def graph_simulator_config(request: pytest.FixtureRequest) -> SimulatorConfig:
    """Frozen wall time by default; ``indirect=True`` parametrisation adds overrides."""
    return SimulatorConfig(**{"time_scale": FROZEN, **getattr(request, "param", {})})


def quota(n: int, **extra: Any) -> Any:
    return pytest.mark.parametrize("graph_simulator_config", [{"quota_override": n, **extra}], indirect=True)


def buc(answer: Answer) -> dict[str, list[dict[str, Any]]]:
    return dict(json.loads(answer.headers["X-Business-Use-Case-Usage"]))


def buc_entry(answer: Answer, act: str, buc_type: str = "ads_management") -> dict[str, Any]:
    entries = buc(answer)[act.removeprefix("act_")]
    return next(e for e in entries if e["type"] == buc_type)


def entry_headers(entry: dict[str, Any]) -> dict[str, str]:
    return {h["name"]: h["value"] for h in entry["headers"]}


def account_usage(answer: Answer) -> dict[str, Any]:
    return dict(json.loads(answer.headers["X-Ad-Account-Usage"]))


def advance(sim: SimulatorThread, seconds: float) -> None:
    sim.run(lambda core: core.clock.advance(seconds))


def blocked(sim: SimulatorThread, act: str) -> bool:
    return sim.run(lambda core: core.rate_limiter.is_blocked(act))


def limiter(fake_now: list[float], scale: float = 1.0, **config: Any) -> RateLimiter:
    clock = VirtualClock(1_000_000.0, scale, monotonic=lambda: fake_now[0])
    return RateLimiter(SimulatorConfig(**config), clock)


# --- quota formulas -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("tier", "buc_type", "active_ads", "expected"),
    [
        ("development_access", "ads_management", 0, 300),
        ("development_access", "ads_management", 10, 300 + 40 * 10),
        ("standard_access", "ads_management", 0, 100_000),
        ("standard_access", "ads_management", 25, 100_000 + 40 * 25),
        ("development_access", "ads_insights", 0, 600),
        ("development_access", "ads_insights", 3, 600 + 400 * 3),
        ("standard_access", "ads_insights", 3, 190_000 + 400 * 3),
        ("development_access", "custom_audience", 0, 5_000),
        ("standard_access", "custom_audience", 0, 190_000),
    ],
)
def test_quota_formulas(tier: str, buc_type: str, active_ads: int, expected: int) -> None:
    rl = limiter([0.0], access_tier=tier)
    rl.set_active_ads("act_1", active_ads)
    assert rl.quota("act_1", buc_type) == expected
    assert rl.quota("act_2", "ads_management") == (300 if tier == "development_access" else 100_000)


def test_quota_override_and_user_errors() -> None:
    assert limiter([0.0], quota_override=7).quota("act_1", "ads_management") == 7
    rl = limiter([0.0])
    for _ in range(2000):
        rl.record_user_error("act_1")
    assert rl.quota("act_1", "ads_insights") == 600 - 2  # − 0.001 × user errors
    assert rl.quota("act_1", "ads_management") == 300


def test_active_ads_raise_the_quota(
    graph_simulator: SimulatorThread, graph: Graph, act: str, page_id: str
) -> None:
    campaign = make_campaign(graph, act, status="ACTIVE")
    adset = make_adset(graph, act, campaign, status="ACTIVE")
    creative = make_creative(graph, act, page_id)
    ads = [make_ad(graph, act, adset, creative, status="ACTIVE") for _ in range(3)]
    make_ad(graph, act, adset, creative, status="PAUSED")

    def current_quota() -> int:
        return graph_simulator.run(lambda core: core.rate_limiter.quota(act, "ads_management"))

    assert current_quota() == 300 + 40 * 3
    assert graph.post(ads[0], status="PAUSED").status == 200
    assert current_quota() == 300 + 40 * 2


# --- headers --------------------------------------------------------------------------------------
@quota(10)
def test_usage_headers_exact_shape(graph: Graph, act: str) -> None:
    for _ in range(2):
        graph.get(act)
    answer = graph.get(act)
    assert buc(answer) == {
        act.removeprefix("act_"): [
            {
                "type": "ads_management",
                "call_count": 30,
                "total_cputime": 7,
                "total_time": 9,
                "estimated_time_to_regain_access": 0,
                "ads_api_access_tier": "development_access",
            }
        ]
    }
    assert account_usage(answer) == {
        "acc_id_util_pct": 30.0,
        "reset_time_duration": 3601,  # seconds until the newest call leaves the rolling hour
        "ads_api_access_tier": "development_access",
    }
    assert json.loads(answer.headers["X-App-Usage"]) == {"call_count": 0, "total_cputime": 0, "total_time": 0}


@pytest.mark.parametrize("graph_simulator_config", [{"access_tier": "standard_access"}], indirect=True)
def test_standard_access_tier_in_headers(graph: Graph, act: str) -> None:
    answer = graph.get(act)
    assert buc_entry(answer, act)["ads_api_access_tier"] == "standard_access"
    assert buc_entry(answer, act)["call_count"] == 0  # 1 / 100000
    assert account_usage(answer)["acc_id_util_pct"] == 0.0
    assert account_usage(answer)["ads_api_access_tier"] == "standard_access"


def test_x_app_usage_on_every_response_and_batch_entry(graph: Graph, act: str) -> None:
    campaign = make_campaign(graph, act)
    answers = [
        graph.get(act),
        graph.get("424242"),  # unknown object
        call(graph.base_url, "GET", f"/v24.0/{act}"),  # no token
        graph.post(campaign, name="renamed"),
        graph.delete(campaign),
    ]
    for answer in answers:
        assert set(json.loads(answer.headers["X-App-Usage"])) == {"call_count", "total_cputime", "total_time"}
    batch = graph.batch([{"method": "GET", "relative_url": act}, {"method": "GET", "relative_url": "424242"}])
    assert "X-App-Usage" in batch.headers
    assert buc(batch).keys() == {act.removeprefix("act_")}
    for entry in batch.body:
        assert "X-App-Usage" in entry_headers(entry)
    first = entry_headers(batch.body[0])
    assert act.removeprefix("act_") in json.loads(first["X-Business-Use-Case-Usage"])
    assert "X-Ad-Account-Usage" in first


@quota(100)
def test_batch_ops_and_ids_each_count_once(graph_simulator: SimulatorThread, graph: Graph, act: str) -> None:
    def calls() -> int:
        return graph_simulator.run(
            lambda core: core.rate_limiter.usage(act, "ads_management", core.clock.now()).calls
        )

    a, b, c = (make_campaign(graph, act) for _ in range(3))
    start = calls()
    batch = graph.batch([{"method": "GET", "relative_url": x} for x in (a, b, c, a, b)])
    assert calls() - start == 5
    key = act.removeprefix("act_")
    percentages = [
        json.loads(entry_headers(e)["X-Business-Use-Case-Usage"])[key][0]["call_count"] for e in batch.body
    ]
    assert percentages == [start + 1, start + 2, start + 3, start + 4, start + 5]  # quota 100: calls = %
    assert buc_entry(batch, act)["call_count"] == start + 5
    graph.get("", ids=f"{a},{b},{c}")
    assert calls() - start == 8


@quota(100)
def test_failed_calls_count_too(graph: Graph, act: str) -> None:
    """ "All calls count towards the rate limits": a refused create is charged like a good one."""
    bad = graph.post(f"{act}/campaigns", name="no objective")
    assert bad.status == 400 and bad.error["code"] == 100
    assert buc_entry(bad, act)["call_count"] == 1
    assert buc_entry(graph.get(act), act)["call_count"] == 2
    unsupported = graph.get(f"{act}/no_such_edge")
    assert unsupported.error["code"] == 100
    assert buc_entry(unsupported, act)["call_count"] == 3


def test_ids_read_across_accounts_reports_each_account(
    graph_simulator: SimulatorThread, graph: Graph
) -> None:
    act1, act2 = graph_simulator.info()["ad_account_ids"][:2]
    a, b = make_campaign(graph, act1), make_campaign(graph, act2)
    answer = graph.get("", ids=f"{a},{b}")
    assert answer.status == 200
    assert set(buc(answer)) == {act1.removeprefix("act_"), act2.removeprefix("act_")}


# --- throttling -----------------------------------------------------------------------------------
@quota(3)
def test_over_quota_answers_80004_with_the_reference_message(graph: Graph, act: str) -> None:
    for _ in range(3):
        assert graph.get(act).status == 200
    answer = graph.get(act)
    assert answer.status == 400
    err = answer.error
    assert (err["code"], err["error_subcode"], err["type"]) == (80004, 2446079, "OAuthException")
    assert err["message"] == THROTTLE_MESSAGE
    assert err["is_transient"] is True
    entry = buc_entry(answer, act)
    assert entry["call_count"] == 100
    assert entry["estimated_time_to_regain_access"] == 61  # minutes: the oldest calls leave after 3601 s
    assert account_usage(answer)["reset_time_duration"] == 3601  # the same wait, in seconds
    assert account_usage(answer)["acc_id_util_pct"] == 100.0


@quota(3)
def test_throttle_hits_every_endpoint_of_the_use_case(graph: Graph, act: str) -> None:
    campaign = make_campaign(graph, act)
    graph.get(act)
    graph.get(campaign)
    for answer in (graph.get(campaign), graph.post(f"{act}/campaigns", name="x"), graph.delete(campaign)):
        assert answer.error["code"] == 80004


@quota(5)
def test_calls_while_blocked_extend_the_block(graph_simulator: SimulatorThread, graph: Graph) -> None:
    hammered, patient = graph_simulator.info()["ad_account_ids"][:2]
    for act in (hammered, patient):
        for _ in range(5):
            assert graph.get(act).status == 200
        first_refusal = graph.get(act)
        assert first_refusal.error["code"] == 80004
        assert buc_entry(first_refusal, act)["estimated_time_to_regain_access"] == 61

    advance(graph_simulator, 600)  # 10 minutes later the hammered account keeps calling
    regains = []
    for _ in range(12):
        answer = graph.get(hammered)
        assert answer.error["code"] == 80004
        regains.append(buc_entry(answer, hammered)["estimated_time_to_regain_access"])
    assert regains[0] == 51  # still the original block, 10 minutes closer
    assert regains[-1] == 61  # the refused calls themselves now have to age out
    assert regains == sorted(regains) and regains[-1] > regains[0]

    advance(graph_simulator, 3002)  # just past the patient account's original regain time
    assert graph.get(patient).status == 200
    assert blocked(graph_simulator, hammered)  # the hammered one is still out
    advance(graph_simulator, 600)  # stop calling; let the extended block lapse
    assert not blocked(graph_simulator, hammered)
    assert graph.get(hammered).status == 200


@quota(2)
def test_two_accounts_are_independent(graph_simulator: SimulatorThread, graph: Graph) -> None:
    act1, act2 = graph_simulator.info()["ad_account_ids"][:2]
    for _ in range(2):
        graph.get(act1)
    assert graph.get(act1).error["code"] == 80004
    other = graph.get(act2)
    assert other.status == 200
    assert buc(other) == {act2.removeprefix("act_"): [buc_entry(other, act2)]}
    assert buc_entry(other, act2)["call_count"] == 50
    assert buc_entry(other, act2)["estimated_time_to_regain_access"] == 0


@quota(2, window_s=60.0)
def test_rolling_window_lets_old_calls_age_out(
    graph_simulator: SimulatorThread, graph: Graph, act: str
) -> None:
    graph.get(act)
    advance(graph_simulator, 30)
    graph.get(act)
    assert graph.get(act).error["code"] == 80004  # refused (and counted) at t=30
    advance(graph_simulator, 31)  # t=61: the call made at t=0 has left the window, two remain
    assert graph.get(act).error["code"] == 80004
    advance(graph_simulator, 30)  # t=91: t=30's calls left the window; only t=61's refusal remains
    answer = graph.get(act)
    assert answer.status == 200
    assert buc_entry(answer, act)["call_count"] == 100  # two calls in the window again


def test_rate_limits_can_be_disabled() -> None:
    fake = [0.0]
    rl = limiter(fake, quota_override=1, rate_limits_enabled=False)
    for _ in range(10):
        rl.charge("act_1", "ads_management", 1, rl.clock.now())
    assert set(rl.headers("act_1", rl.clock.now())) == {"X-App-Usage"}


def test_app_level_limit_applies_only_outside_ad_accounts() -> None:
    rl = limiter([0.0], app_users=1, quota_override=10_000)  # app quota: 200 × 1 user
    now = rl.clock.now()
    for _ in range(200):
        rl.charge(None, "ads_management", 1, now)
    with pytest.raises(GraphAPIError) as refused:
        rl.charge(None, "ads_management", 1, now)
    assert (refused.value.code, refused.value.is_transient) == (4, True)
    rl.charge("act_1", "ads_management", 1, now)  # BUC applies instead of the platform limit
    assert json.loads(rl.headers(None, now)["X-App-Usage"])["call_count"] == 100


def test_insights_calls_get_the_insights_throttle_header() -> None:
    rl = limiter([0.0])
    now = rl.clock.now()
    rl.charge("act_1", "ads_insights", 6, now)
    headers = rl.headers("act_1", now, "ads_insights")
    assert json.loads(headers["X-FB-Ads-Insights-Throttle"]) == {
        "app_id_util_pct": 0,
        "acc_id_util_pct": 1.0,
        "ads_api_access_tier": "development_access",
    }
    entry = json.loads(headers["X-Business-Use-Case-Usage"])["act_1".removeprefix("act_")][0]
    assert (entry["type"], entry["call_count"]) == ("ads_insights", 1)
    assert "X-FB-Ads-Insights-Throttle" not in rl.headers("act_1", now)


def test_throttle_codes_per_use_case() -> None:
    cases = {"ads_insights": (80000, 2446079), "custom_audience": (80003, 2446079), "pages": (80001, None)}
    for buc_type, (code, subcode) in cases.items():
        err = RateLimiter.throttle_error(buc_type)
        assert (err.code, err.subcode, err.http_status) == (code, subcode, 400)
        assert err.message.startswith(f"(#{code}) ")


# --- time scale -----------------------------------------------------------------------------------
def test_time_scale_makes_an_hour_pass_in_a_second() -> None:
    fake = [0.0]
    rl = limiter(fake, scale=3600.0, quota_override=2)
    for _ in range(2):
        rl.charge("act_1", "ads_management", 1, rl.clock.now())
    with pytest.raises(GraphAPIError):
        rl.charge("act_1", "ads_management", 1, rl.clock.now())
    assert rl.is_blocked("act_1")
    fake[0] += 0.5  # half a wall second = 30 virtual minutes
    assert rl.is_blocked("act_1")
    fake[0] += 0.51
    assert not rl.is_blocked("act_1")
    rl.charge("act_1", "ads_management", 1, rl.clock.now())


# --- cost -----------------------------------------------------------------------------------------
def test_limiter_is_cheap_per_call_and_bounded_in_memory() -> None:
    """20,000 calls with headers on three accounts: O(1) amortised work, bounded bucket lists."""
    fake = [0.0]
    rl = limiter(fake, quota_override=1_000_000)
    accounts = [f"act_{i}" for i in range(3)]
    started = time.perf_counter()
    for i in range(20_000):
        fake[0] = i * 0.5  # a virtual hour passes every 7,200 calls
        now = rl.clock.now()
        act = accounts[i % 3]
        rl.charge(act, "ads_management", 1, now)
        rl.headers(act, now)
    elapsed = time.perf_counter() - started
    assert elapsed < 5.0  # ~0.3 s on a laptop; a generous bound that only an O(n) path would break
    window = rl._accounts["act_0"]["ads_management"]
    assert 2_400 <= window.total <= 2_401  # one hour (+ the current 1-s bucket) at 2 calls/s over 3 accounts
    assert len(window._starts) - window._head <= 3_601
    assert len(window._starts) <= 3_601 + 2 * 1_024 + 3_601
