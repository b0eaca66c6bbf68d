"""Usage headers → UsageSnapshot (S003 §Rate Limits → Headers), including the seeds' junk."""

from __future__ import annotations

import json
import logging

import pytest

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
