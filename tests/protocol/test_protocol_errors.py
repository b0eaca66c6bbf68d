"""Error parsing and classification (S003 §Handling Errors, §Rate Limits, §Troubleshooting)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bulk_engine.protocol.errors import (
    ErrorClass,
    GraphError,
    classify,
    classify_body,
    parse_graph_error,
    throttle_scope,
)
from bulk_engine.protocol.usage import BucType

T, TH, A, P, OK = (
    ErrorClass.TRANSIENT,
    ErrorClass.THROTTLED,
    ErrorClass.AUTH,
    ErrorClass.PERMANENT,
    ErrorClass.OK,
)


def err(code: int | None, subcode: int | None = None, **extra: Any) -> GraphError:
    return GraphError(code=code, error_subcode=subcode, **extra)


@pytest.mark.parametrize(
    ("http", "error", "expected"),
    [
        # throttling (S003 §Platform Rate Limits / §BUC Rate Limits → Error Codes)
        (400, err(4), TH),
        (400, err(4, 1504022), TH),
        (400, err(17), TH),
        (400, err(17, 2446079), TH),
        (400, err(32), TH),
        (400, err(613), TH),
        (400, err(613, 1996), TH),
        (400, err(341), TH),
        (400, err(80000, 2446079), TH),
        (400, err(80001), TH),
        (400, err(80002), TH),
        (400, err(80003, 2446079), TH),
        (400, err(80004, 2446079), TH),
        (400, err(80005), TH),
        (400, err(80006), TH),
        (400, err(80007), TH),
        (400, err(80008), TH),
        (400, err(80009), TH),
        (400, err(80014), TH),
        (400, err(None, 2446079), TH),
        (400, err(12345, 2446079), TH),
        # auth
        (400, err(190), A),
        (400, err(190, 460), A),
        (400, err(102), A),
        (400, err(102, 459), A),
        (400, err(104), A),
        (400, err(415), A),
        (400, err(457), A),
        (400, err(None, type="OAuthException"), A),
        # transient
        (500, err(1), T),
        (400, err(1), T),
        (500, err(2), T),
        (400, err(368), T),
        (400, err(1404078), T),
        (400, err(2859015), T),
        (400, err(368, 1404078), T),
        (400, err(3902), T),
        (400, err(3910001), T),
        (400, err(1487901, is_transient=True), T),
        (400, err(-3, 2), T),  # negative code → look at the subcode
        (400, err(-1), T),
        (503, err(99999), T),  # unknown code + 5xx
        # permanent
        (400, err(1, 99), P),
        (400, err(3), P),
        (400, err(10), P),
        (400, err(100), P),
        (400, err(100, 1487694), P),
        (400, err(100, 33), P),
        (500, err(100), P),  # documented validation code wins over the HTTP status
        (400, err(105), P),
        (400, err(194), P),
        (400, err(200), P),
        (400, err(200, 1870034), P),
        (400, err(294), P),
        (400, err(299), P),
        (400, err(506), P),
        (400, err(2500), P),
        (400, err(1487901, is_transient=False), P),
        (400, err(1885621), P),
        (500, err(1885088), P),
        (400, err(2446509), P),
        (400, err(99999), P),  # unknown code, 4xx: don't loop
        (400, err(-5, 100), P),
        (200, err(None), P),  # an error object in a 200 is still an error
        (None, err(None), T),
        (400, err(None), P),
        (502, err(None), T),
        (400, err(1, is_transient=False), T),  # is_transient: false never overrides the table
        # no error object: HTTP status decides
        (200, None, OK),
        (204, None, OK),
        (None, None, T),  # null batch entry
        (500, None, T),
        (503, None, T),
        (408, None, T),
        (429, None, TH),
        (401, None, A),
        (400, None, P),
        (404, None, P),
        (302, None, T),
        (0, None, T),
    ],
)
def test_classify_table(http: int | None, error: GraphError | None, expected: ErrorClass) -> None:
    assert classify(http, error) is expected


@pytest.mark.parametrize(
    ("code", "subcode", "scope"),
    [
        (80004, 2446079, BucType.ADS_MANAGEMENT),
        (80000, 2446079, BucType.ADS_INSIGHTS),
        (80003, 2446079, BucType.CUSTOM_AUDIENCE),
        (80002, None, BucType.INSTAGRAM),
        (80005, None, BucType.LEADGEN),
        (80006, None, BucType.MESSENGER),
        (80001, None, BucType.PAGES),
        (80008, None, BucType.WHATSAPP_BUSINESS_MANAGEMENT),
        (80009, None, BucType.CATALOG_MANAGEMENT),
        (80014, None, BucType.CATALOG_BATCH),
        (80010, None, BucType.UNKNOWN),
        (17, 2446079, BucType.ADS_MANAGEMENT),
        (17, None, BucType.PLATFORM),
        (4, None, BucType.PLATFORM),
        (4, 1504022, BucType.PLATFORM),
        (32, None, BucType.PLATFORM),
        (613, 1996, BucType.PLATFORM),
        (341, None, BucType.PLATFORM),
        (None, 2446079, BucType.UNKNOWN),
        (100, 2446079, BucType.UNKNOWN),
        (100, None, None),
        (190, None, None),
        (None, None, None),
    ],
)
def test_throttle_scope(code: int | None, subcode: int | None, scope: BucType | None) -> None:
    assert throttle_scope(code, subcode) == scope


def test_parse_documented_error_response() -> None:
    body = {
        "error": {
            "message": "Message describing the error",
            "type": "OAuthException",
            "code": 190,
            "error_subcode": 460,
            "error_user_title": "A title",
            "error_user_msg": "A message",
            "fbtrace_id": "EJplcsCHuLu",
        }
    }
    error = parse_graph_error(body, 400)
    assert error == GraphError(
        code=190,
        error_subcode=460,
        message="Message describing the error",
        type="OAuthException",
        error_user_title="A title",
        error_user_msg="A message",
        fbtrace_id="EJplcsCHuLu",
        http_status=400,
    )
    assert error is not None and error.error_class is ErrorClass.AUTH
    assert error.raw["fbtrace_id"] == "EJplcsCHuLu"


def test_parse_blame_field_specs_seed_example() -> None:
    text = (
        '{"error":{"type":"Exception","message":"The budget for your Ad-Set is too low.","code":1487901,'
        '"is_transient":false,"error_data":{"blame_field_specs":[["daily_budget"]]}}}'
    )
    error = parse_graph_error(text)
    assert error is not None
    assert error.blame_field_specs == (("daily_budget",),)
    assert error.is_transient is False
    assert error.to_dict()["blame_field_specs"] == [["daily_budget"]]


@pytest.mark.parametrize(
    ("error_data", "expected"),
    [
        (
            {"blame_field_specs": [["targeting_spec", "interested_in"], ["bid_info", "impressions"]]},
            (("targeting_spec", "interested_in"), ("bid_info", "impressions")),
        ),
        (json.dumps({"blame_field_specs": [["daily_budget"]]}), (("daily_budget",),)),  # JSON string form
        ({"blame_field_specs": ["name"]}, (("name",),)),
        ({"blame_field_specs": [["a", 0, None, True]]}, (("a", "0"),)),
        ({"blame_field_specs": "junk"}, ()),
        ("{not json", ()),
        (5, ()),
        ({"blame_field_specs": [[], {}]}, ()),
    ],
)
def test_blame_field_specs_tolerant(error_data: Any, expected: tuple[tuple[str, ...], ...]) -> None:
    error = parse_graph_error({"error": {"code": 100, "error_data": error_data}})
    assert error is not None and error.blame_field_specs == expected


@pytest.mark.parametrize(
    ("body", "expected_code"),
    [
        ({"error": {"code": "80004", "error_subcode": "2446079"}}, 80004),
        ({"error": {"code": 100.0}}, 100),
        ({"error": {"code": 100.5}}, None),
        ({"error": {"code": True}}, None),
        ({"error": {"code": [1]}}, None),
        ({"error": {"code": "12345678901234567890123"}}, None),
    ],
)
def test_code_coercion(body: Any, expected_code: int | None) -> None:
    error = parse_graph_error(body)
    assert error is not None and error.code == expected_code


@pytest.mark.parametrize(
    "body",
    [None, {}, {"id": "1"}, [], "not json", b"\xff", 5, {"data": []}, '{"success": true}'],
)
def test_no_error_member_gives_none(body: Any) -> None:
    assert parse_graph_error(body) is None


@pytest.mark.parametrize(
    "body",
    [{"error": "boom"}, {"error": 5}, {"error": None}, {"error": {"message": {"nested": 1}, "type": 7}}],
)
def test_junk_error_objects_degrade(body: Any) -> None:
    error = parse_graph_error(body, 500)
    assert error is not None
    assert error.http_status == 500
    assert isinstance(error.message, str)
    assert classify(500, error) is ErrorClass.TRANSIENT


def test_is_transient_string_and_int_forms() -> None:
    assert parse_graph_error({"error": {"is_transient": "true"}}).is_transient is True  # type: ignore[union-attr]
    assert parse_graph_error({"error": {"is_transient": 0}}).is_transient is False  # type: ignore[union-attr]
    assert parse_graph_error({"error": {"is_transient": "maybe"}}).is_transient is None  # type: ignore[union-attr]


def test_classify_body_and_throttle_scope_property() -> None:
    body = json.dumps(
        {
            "error": {
                "message": "(#80004) ...",
                "type": "OAuthException",
                "code": 80004,
                "error_subcode": 2446079,
                "fbtrace_id": "x",
            }
        }
    )
    cls, error = classify_body(400, body)
    assert cls is ErrorClass.THROTTLED
    assert error is not None and error.throttle_scope is BucType.ADS_MANAGEMENT
    assert classify_body(200, '{"id": "1"}') == (ErrorClass.OK, None)
    negative = GraphError(code=-1, error_subcode=80004)
    assert negative.throttle_scope is BucType.ADS_MANAGEMENT
