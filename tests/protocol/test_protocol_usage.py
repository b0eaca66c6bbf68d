"""Usage headers → UsageSnapshot (S003 §Rate Limits → Headers), including the seeds' junk."""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bulk_engine.protocol import usage as usage_module
from bulk_engine.protocol.usage import (
    AdAccountUsage,
    AppUsage,
    BucType,
    BucUsage,
    UsageSnapshot,
    normalize_account_id,
    parse_ad_account_usage,
    parse_app_usage,
    parse_buc_usage,
    parse_insights_throttle,
    parse_usage_headers,
)

# Verbatim value of the seed sample (duplicate key, comments, "..." removed): S003 §BUC → Headers.
SEED_BUC = """{
    "66782684": [
        {
            "type": "ads_management",
            "call_count": 95,
            "total_cputime": 20,
            "total_time": 20,
            "estimated_time_to_regain_access": 0,
            "ads_api_access_tier": "development_access"
        }
    ],
    "10153848260347724": [
        {
            "type": "ads_insights",
            "call_count": 97,
            "total_cputime": 23,
            "total_time": 23,
            "estimated_time_to_regain_access": 0,
            "ads_api_access_tier": "development_access"
        }
    ],
    "10153848260347724": [
        {
            "type": "pages",
            "call_count": 97,
            "total_cputime": 23,
            "total_time": 23,
            "estimated_time_to_regain_access": 0
        }
    ]
}"""

SEED_AD_ACCOUNT = """{
    "acc_id_util_pct": 9.67,   //Percentage of calls made for this ad account.
    "reset_time_duration": 100,   //Time duration (in seconds) it takes to reset the current rate limit score.
    "ads_api_access_tier": 'standard_access'   //Tiers allows your app to access the Marketing API.
}"""

SEED_APP = """{
    "call_count": 28,         //Percentage of calls made
    "total_time": 25,         //Percentage of total time
    "total_cputime": 25       //Percentage of total CPU time
}"""


def test_seed_buc_sample_keeps_duplicate_keys() -> None:
    entries = parse_buc_usage(SEED_BUC)
    assert {(e.object_id, e.type) for e in entries} == {
        ("66782684", "ads_management"),
        ("10153848260347724", "ads_insights"),
        ("10153848260347724", "pages"),
    }
    mgmt = next(e for e in entries if e.type == "ads_management")
    assert mgmt == BucUsage("66782684", "ads_management", 95, 20, 20, 0, "development_access")


def test_seed_ad_account_sample_with_single_quotes_and_comments() -> None:
    assert parse_ad_account_usage(SEED_AD_ACCOUNT) == AdAccountUsage(9.67, 100.0, "standard_access")


def test_seed_app_usage_sample() -> None:
    usage = parse_app_usage(SEED_APP)
    assert usage == AppUsage(28, 25, 25)
    assert usage is not None and usage.max_pct == 28


def test_regain_minutes_become_seconds_and_pct_is_max_of_metrics() -> None:
    value = json.dumps(
        {
            "act_1": [
                {
                    "type": "ads_management",
                    "call_count": 100,
                    "total_cputime": 25,
                    "total_time": 25,
                    "estimated_time_to_regain_access": 19,
                }
            ]
        }
    )
    snap = parse_usage_headers({"X-Business-Use-Case-Usage": value})
    assert snap.max_pct_for("act_1", BucType.ADS_MANAGEMENT) == 100
    assert snap.max_pct_for("1", "ads_management") == 100  # either spelling of the account
    assert snap.regain_after_s("act_1", BucType.ADS_MANAGEMENT) == 19 * 60
    assert snap.max_pct_for("act_1", BucType.ADS_INSIGHTS) is None
    assert snap.regain_after_s("act_2", BucType.ADS_MANAGEMENT) == 0


def test_cpu_time_can_dominate() -> None:
    value = json.dumps(
        {"1": [{"type": "ads_management", "call_count": "5", "total_cputime": "99.5", "total_time": 10.25}]}
    )
    snap = parse_usage_headers([("x-business-use-case-usage", value)])
    assert snap.max_pct_for("act_1", "ads_management") == 99.5


def test_all_headers_combined_case_insensitive() -> None:
    headers = {
        "X-BUSINESS-USE-CASE-USAGE": json.dumps({"1": [{"type": "ads_management", "call_count": 40}]}),
        "x-ad-account-usage": json.dumps({"acc_id_util_pct": 120, "reset_time_duration": 300}),
        "X-App-Usage": json.dumps({"call_count": 70, "total_time": 5, "total_cputime": 1}),
        "X-FB-Ads-Insights-Throttle": json.dumps({"app_id_util_pct": 100, "acc_id_util_pct": 10}),
        "Content-Type": "application/json",
    }
    snap = parse_usage_headers(headers, account_id="act_1")
    assert snap.account_id == "1"
    assert snap.max_pct_for("act_1", BucType.ADS_MANAGEMENT) == 120  # ad-account header is higher
    assert snap.regain_after_s("act_1", BucType.ADS_MANAGEMENT) == 300  # >= 100 % → reset time applies
    assert snap.max_pct_for("act_1", BucType.ADS_INSIGHTS) == 100
    assert snap.max_pct_for("act_1", BucType.PLATFORM) == 70
    # the ad-account header belongs to act_1 only
    assert snap.max_pct_for("act_2", BucType.ADS_MANAGEMENT) is None


def test_reset_time_is_not_a_wait_below_100_percent() -> None:
    headers = {"x-ad-account-usage": json.dumps({"acc_id_util_pct": 9.67, "reset_time_duration": 100})}
    snap = parse_usage_headers(headers, account_id="act_1")
    assert snap.max_pct_for("act_1", BucType.ADS_MANAGEMENT) == 9.67
    assert snap.regain_after_s("act_1", BucType.ADS_MANAGEMENT) == 0


def test_duplicate_object_and_type_entries_merge_conservatively() -> None:
    value = (
        '{"1": [{"type": "ads_management", "call_count": 10, "estimated_time_to_regain_access": 5}],'
        ' "1": [{"type": "ads_management", "call_count": 90, "total_time": 3}]}'
    )
    (entry,) = parse_buc_usage(value)
    assert entry.call_count == 90 and entry.total_time == 3 and entry.regain_after_s == 300


def test_single_object_instead_of_array_is_accepted() -> None:
    (entry,) = parse_buc_usage('{"1": {"type": "ads_management", "call_count": 3}}')
    assert entry.call_count == 3


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        "not json",
        "[1, 2]",
        "null",
        '{"1": 5}',
        '{"1": [5, "x", null]}',
        '{"1": [{"call_count": 5}]}',  # no type
        "{'1': [{'type': }]}",
        b"\xff\xfe",
        "[" * 5000,
    ],
)
def test_malformed_buc_header_is_ignored(value: str | bytes, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="bulk_engine.protocol.usage"):
        assert parse_buc_usage(value) == ()


def test_malformed_header_logs_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="bulk_engine.protocol.usage"):
        snap = parse_usage_headers({"X-App-Usage": "{broken", "X-Ad-Account-Usage": "[]"})
    assert snap.app is None and snap.ad_account is None and snap.is_empty
    assert any("x-app-usage" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('{"call_count": "28", "total_time": 25.5, "total_cputime": -3}', AppUsage(28, 25.5, 0)),
        ('{"call_count": "NaN", "total_time": "inf", "total_cputime": true}', AppUsage(0, 0, 0)),
        ('{"call_count": "28%"}', AppUsage(28, 0, 0)),
        ('{"call_count": [1]}', AppUsage(0, 0, 0)),
        ('{"call_count": 28,}', AppUsage(28, 0, 0)),  # trailing comma
        ("{}", AppUsage()),
    ],
)
def test_number_coercion(raw: str, expected: AppUsage) -> None:
    assert parse_app_usage(raw) == expected


def test_insights_throttle() -> None:
    throttle = parse_insights_throttle(
        '{"app_id_util_pct": 100, "acc_id_util_pct": 10, "ads_api_access_tier": "standard_access"}'
    )
    assert (
        throttle is not None and throttle.app_id_util_pct == 100 and throttle.access_tier == "standard_access"
    )


def test_non_string_values_and_bad_containers_never_raise() -> None:
    snap = parse_usage_headers({"x-app-usage": 5, "x-business-use-case-usage": None})
    assert snap.is_empty
    assert parse_usage_headers(5).is_empty  # type: ignore[arg-type]
    assert parse_usage_headers([("a",), 7, ("x-app-usage", '{"call_count": 1}')]).app == AppUsage(1, 0, 0)  # type: ignore[list-item]


def test_snapshot_is_frozen_and_empty_by_default() -> None:
    snap = UsageSnapshot()
    assert snap.is_empty
    with pytest.raises(AttributeError):
        snap.app = AppUsage()  # type: ignore[misc]


@pytest.mark.parametrize(("raw", "expected"), [("act_123", "123"), ("123", "123"), (" act_9 ", "9")])
def test_normalize_account_id(raw: str, expected: str) -> None:
    assert normalize_account_id(raw) == expected


# --------------------------------------------------------------------------- hostile values
# Issue "Exactly-once under any answer": any header value parses without raising; every number in a
# snapshot is finite and >= 0; percentages clamp to [0, 1000], durations to [0, 10 years].

HUGE = "1" + "0" * 400  # a JSON int: float() of it raises OverflowError
TEN_YEARS_S = 10 * 365 * 86400.0


@pytest.fixture(autouse=True)
def _fresh_warnings() -> Iterator[None]:
    """Warnings are once per header per process: let each test see its own."""
    usage_module._forget_warnings()
    yield
    usage_module._forget_warnings()


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        (HUGE, 1000.0),  # absurd: clamped
        ("-" + HUGE, 0.0),  # negative: 0
        (f'"{HUGE}"', 1000.0),  # as a string
        ("1e400", 1000.0),  # a float literal that overflows to inf
        ('"1e400"', 1000.0),
        ("1e308", 1000.0),
        ("1001", 1000.0),
        ("1000", 1000.0),
        ("NaN", 0.0),  # non-finite literals: ignored
        ("Infinity", 0.0),
        ("-Infinity", 0.0),
        ('"Infinity"', 0.0),
        ('"-inf"', 0.0),
        ("-1", 0.0),
        ("-0.0", 0.0),
        ("[1, 2]", 0.0),  # nesting where a number belongs
        ('{"value": 5}', 0.0),
        ("[[[[[[[[1]]]]]]]]", 0.0),
        ("true", 0.0),
        ("false", 0.0),
        ("null", 0.0),
        ('"' + "9" * 100_000 + '"', 1000.0),  # a huge numeric string
        ('"' + "x" * 100_000 + '"', 0.0),  # a huge junk string
        ('"12abc"', 0.0),
        ('"1_000"', 1000.0),  # Python's float() accepts underscores; harmless
        ("99.5", 99.5),
    ],
)
def test_hostile_percentages(field: str, expected: float) -> None:
    raw = f'{{"call_count": {field}, "total_time": 1, "total_cputime": 2}}'
    assert parse_app_usage(raw) == AppUsage(expected, 1, 2)
    snap = parse_usage_headers({"x-ad-account-usage": f'{{"acc_id_util_pct": {field}}}'}, account_id="act_1")
    assert snap.ad_account is not None and snap.ad_account.acc_id_util_pct == expected
    snap = parse_usage_headers({"x-fb-ads-insights-throttle": f'{{"app_id_util_pct": {field}}}'})
    assert snap.insights is not None and snap.insights.app_id_util_pct == expected


@pytest.mark.parametrize(
    ("minutes", "expected_s"),
    [
        (HUGE, TEN_YEARS_S),  # 10^400 minutes: clamped, still a (long) wait for the governor to cap
        ("1e400", TEN_YEARS_S),
        ("1e300", TEN_YEARS_S),
        ("1e10", TEN_YEARS_S),
        ("19", 19 * 60.0),
        ("Infinity", 0.0),
        ("NaN", 0.0),
        ("-5", 0.0),
        ('["19"]', 0.0),
        ("true", 0.0),
    ],
)
def test_hostile_regain_minutes(minutes: str, expected_s: float) -> None:
    raw = f'{{"1": [{{"type": "ads_management", "call_count": 100, "estimated_time_to_regain_access": {minutes}}}]}}'
    snap = parse_usage_headers({"X-Business-Use-Case-Usage": raw})
    assert snap.regain_after_s("act_1", BucType.ADS_MANAGEMENT) == expected_s


@pytest.mark.parametrize(("seconds", "expected_s"), [(HUGE, TEN_YEARS_S), ("300", 300.0), ("NaN", 0.0)])
def test_hostile_reset_time_duration(seconds: str, expected_s: float) -> None:
    raw = f'{{"acc_id_util_pct": 100, "reset_time_duration": {seconds}}}'
    snap = parse_usage_headers({"x-ad-account-usage": raw}, account_id="act_1")
    assert snap.regain_after_s("act_1", BucType.ADS_MANAGEMENT) == expected_s


def test_junk_is_warned_once_per_header_and_briefly(caplog: pytest.LogCaptureFixture) -> None:
    """One WARNING per header name per process, however many responses carry junk; the value is cut."""
    buc = f'{{"1": [{{"type": "ads_management", "call_count": {HUGE}}}]}}'
    headers = {
        "X-Business-Use-Case-Usage": buc,
        "X-App-Usage": f'{{"call_count": NaN, "total_time": "{"x" * 5000}"}}',
        "X-Ad-Account-Usage": '{"acc_id_util_pct": -1}',
    }
    with caplog.at_level(logging.DEBUG, logger="bulk_engine.protocol.usage"):
        for _ in range(50):
            parse_usage_headers(headers, account_id="act_1")
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 3
    assert {next(h for h in headers if h.lower() in r.getMessage()) for r in warnings} == set(headers)
    for record in caplog.records:
        assert "0" * 100 not in record.getMessage() and "x" * 100 not in record.getMessage()
        assert len(record.getMessage()) < 300
    assert any(r.levelno == logging.DEBUG for r in caplog.records)  # later problems are not lost


def test_huge_value_is_ignored_and_not_echoed(caplog: pytest.LogCaptureFixture) -> None:
    raw = '{"call_count": 5, "pad": "' + "y" * 300_000 + '"}'
    with caplog.at_level(logging.WARNING, logger="bulk_engine.protocol.usage"):
        assert parse_app_usage(raw) is None
    assert caplog.records and all(len(r.getMessage()) < 300 for r in caplog.records)


@pytest.mark.parametrize(
    "value",
    [
        "'\\" * 100_000,  # every quote restarted a quadratic scan: ~20 s for 64 KiB before the fix
        '"\\' * 100_000,
        "'" * 200_001,
        "{'a': '" + "\\'" * 100_000,
        "," * 200_000,
        "//" * 100_000,
    ],
)
def test_pseudo_json_repair_is_linear(value: str) -> None:
    started = time.perf_counter()
    assert parse_buc_usage(value) == ()
    assert time.perf_counter() - started < 1.0


def test_parser_bug_is_contained(monkeypatch: pytest.MonkeyPatch) -> None:
    """A parser that raises (a bug, not junk) costs one header, never the response."""

    def boom(raw: object) -> None:
        raise ZeroDivisionError

    monkeypatch.setattr(usage_module, "parse_app_usage", boom)
    snap = parse_usage_headers({"x-app-usage": "{}", "x-ad-account-usage": '{"acc_id_util_pct": 5}'})
    assert snap.app is None and snap.ad_account == AdAccountUsage(5, 0, None)


def _numbers(snap: UsageSnapshot) -> list[float]:
    values: list[float] = []
    for entry in snap.buc:
        values += [
            entry.call_count,
            entry.total_cputime,
            entry.total_time,
            entry.regain_after_s,
            entry.max_pct,
        ]
    if snap.app is not None:
        values += [snap.app.call_count, snap.app.total_time, snap.app.total_cputime, snap.app.max_pct]
    if snap.ad_account is not None:
        values += [snap.ad_account.acc_id_util_pct, snap.ad_account.reset_time_duration_s]
    if snap.insights is not None:
        values += [snap.insights.app_id_util_pct, snap.insights.acc_id_util_pct]
    for account in ["act_1", *(e.object_id for e in snap.buc)]:
        for buc_type in (*BucType, *(e.type for e in snap.buc)):
            pct = snap.max_pct_for(account, buc_type)
            values += [snap.regain_after_s(account, buc_type), *([] if pct is None else [pct])]
    return values


hostile_numbers = (
    st.integers()
    | st.integers(min_value=-(10**400), max_value=10**400)
    | st.builds(lambda n: 10**n, st.integers(300, 600))
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.booleans()
    | st.none()
    | st.text(max_size=12)
    | st.sampled_from(["NaN", "Infinity", "-1", "1e400", "9.67%", HUGE, "", " 95 "])
)
hostile_json = st.recursive(
    hostile_numbers,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=12,
)
NUMERIC_FIELDS = [
    "call_count",
    "total_cputime",
    "total_time",
    "estimated_time_to_regain_access",
    "acc_id_util_pct",
    "app_id_util_pct",
    "reset_time_duration",
]
numeric_field = hostile_numbers | hostile_json
usage_like = st.fixed_dictionaries(
    {},
    optional={
        **dict.fromkeys(NUMERIC_FIELDS, numeric_field),
        "type": st.sampled_from(["ads_management", "ads_insights"]) | hostile_json,
        "ads_api_access_tier": st.text(max_size=12) | hostile_json,
    },
)
buc_entry = st.fixed_dictionaries(
    {"type": st.sampled_from([t.value for t in BucType]) | hostile_json},
    optional=dict.fromkeys(NUMERIC_FIELDS, numeric_field),
)
buc_like = st.dictionaries(
    st.sampled_from(["1", "act_1", "2"]) | st.text(max_size=6),
    st.lists(buc_entry | hostile_json, max_size=3) | buc_entry | hostile_json,
    max_size=3,
)
any_value = st.text(max_size=300) | st.binary(max_size=60) | hostile_json  # the last: not even a string


def header_values(shape: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Values of one header: its shape as JSON or as seed-style single-quoted pseudo-JSON, or anything."""
    return (
        st.builds(lambda v: json.dumps(v, allow_nan=True), shape)
        | st.builds(lambda v: json.dumps(v, allow_nan=True).replace('"', "'"), shape)
        | st.builds(lambda v: json.dumps(v, allow_nan=True), hostile_json)
        | any_value
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    header_values(buc_like), header_values(usage_like), header_values(usage_like), header_values(usage_like)
)
def test_any_value_of_the_four_headers_gives_finite_non_negative_numbers(
    buc: Any, app: Any, ad_account: Any, insights: Any
) -> None:
    headers = {
        "X-Business-Use-Case-Usage": buc,
        "X-App-Usage": app,
        "X-Ad-Account-Usage": ad_account,
        "X-FB-Ads-Insights-Throttle": insights,
    }
    snap = parse_usage_headers(headers, account_id="act_1")
    for value in _numbers(snap):
        assert isinstance(value, float | int) and math.isfinite(value) and 0 <= value <= TEN_YEARS_S
    pcts = [e.max_pct for e in snap.buc] + ([snap.app.max_pct] if snap.app else [])
    assert all(p <= 1000 for p in pcts)
