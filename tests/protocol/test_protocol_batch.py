"""Batch wire format: encoding the ``batch`` field and decoding ``[{code, headers, body}|null]``."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from bulk_engine.protocol.batch import (
    MAX_BATCH_OPS,
    BatchItemResult,
    BatchOp,
    BatchTooLargeError,
    Headers,
    batch_op_to_dict,
    decode_batch_response,
    encode_batch,
    encode_form,
    encode_value,
)
from bulk_engine.protocol.errors import ErrorClass
from bulk_engine.protocol.refs import Ref, render_ref

# ----------------------------------------------------------------------------- encoding


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("PAUSED", "PAUSED"),
        (True, "true"),
        (False, "false"),
        (5000, "5000"),
        (1.5, "1.5"),
        (None, None),
        ({"countries": ["US"]}, '{"countries":["US"]}'),
        (["LINK_CLICKS"], '["LINK_CLICKS"]'),
        (("a", 1), '["a",1]'),
        ({"name": "café"}, '{"name":"café"}'),
    ],
)
def test_encode_value(value: Any, expected: str | None) -> None:
    assert encode_value(value) == expected


def test_encode_value_rejects_unresolved_refs() -> None:
    with pytest.raises(TypeError):
        encode_value(Ref("x"))
    with pytest.raises(TypeError):
        encode_value({"creative_id": Ref("x")})


def test_encode_form_round_trips_through_a_standard_parser() -> None:
    params: dict[str, Any] = {
        "name": "Test Campaign & more = 100%",
        "objective": "OUTCOME_TRAFFIC",
        "special_ad_categories": [],
        "targeting": {"geo_locations": {"countries": ["US", "CA"]}},
        "skip": None,
        "daily_budget": 5000,
    }
    body = encode_form(params)
    decoded = dict(parse_qsl(body, keep_blank_values=True))
    assert decoded == {
        "name": "Test Campaign & more = 100%",
        "objective": "OUTCOME_TRAFFIC",
        "special_ad_categories": "[]",
        "targeting": '{"geo_locations":{"countries":["US","CA"]}}',
        "daily_budget": "5000",
    }


def test_placeholders_survive_literally_and_after_url_decoding() -> None:
    placeholder = render_ref("create_creative")
    body = encode_form({"creative": {"creative_id": placeholder}, "adset_id": render_ref("s-1")})
    assert placeholder in body  # server substituting before URL-decoding finds it
    assert "adset_id={result=s-1:$.id}" in body
    decoded = dict(parse_qsl(body))  # ... and so does one substituting after decoding
    assert decoded["creative"] == '{"creative_id":"{result=create_creative:$.id}"}'
    assert decoded["adset_id"] == "{result=s-1:$.id}"


def test_post_puts_params_in_body() -> None:
    op = BatchOp("POST", "act_123/campaigns", {"name": "C", "status": "PAUSED"}, name="create-campaign")
    assert batch_op_to_dict(op) == {
        "method": "POST",
        "relative_url": "act_123/campaigns",
        "body": "name=C&status=PAUSED",
        "name": "create-campaign",
    }


@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_get_and_delete_carry_params_in_the_query_string(method: str) -> None:
    op = BatchOp(method, "123", {"fields": "id,name", "limit": 5})
    entry = batch_op_to_dict(op)
    assert set(entry) == {"method", "relative_url"}  # "GET and DELETE ... only relative_url and method"
    url = urlsplit(entry["relative_url"])
    assert url.path == "123"
    assert dict(parse_qsl(url.query)) == {"fields": "id,name", "limit": "5"}


def test_get_with_existing_query_and_ids_placeholder() -> None:
    op = BatchOp("GET", "?ids=" + render_ref("create-ad", "$.data.*.id"), {"fields": "id"})
    assert batch_op_to_dict(op)["relative_url"] == "?ids={result=create-ad:$.data.*.id}&fields=id"


def test_post_without_params_has_no_body() -> None:
    assert "body" not in batch_op_to_dict(BatchOp("POST", "act_1/adimages", attached_files=("file1",)))
    assert batch_op_to_dict(BatchOp("POST", "x", attached_files=("a", "b")))["attached_files"] == "a,b"


@pytest.mark.parametrize(
    ("version", "url", "expected"),
    [
        (None, "act_1/ads", "act_1/ads"),
        ("v21.0", "act_1/ads", "v21.0/act_1/ads"),
        ("v21.0/", "/act_1/ads", "v21.0/act_1/ads"),
        ("v21.0", "v19.0/act_1/ads", "v19.0/act_1/ads"),
        ("v21.0", "{result=c:$.id}/copies", "v21.0/{result=c:$.id}/copies"),
    ],
)
def test_api_version_prefix(version: str | None, url: str, expected: str) -> None:
    assert batch_op_to_dict(BatchOp("POST", url), api_version=version)["relative_url"] == expected


def test_path_characters_are_quoted_but_placeholders_kept() -> None:
    entry = batch_op_to_dict(BatchOp("GET", "act_1/some edge"))
    assert entry["relative_url"] == "act_1/some%20edge"


def test_omit_response_on_success_emitted_only_when_set() -> None:
    assert "omit_response_on_success" not in batch_op_to_dict(BatchOp("POST", "x"))
    entry = batch_op_to_dict(BatchOp("POST", "x", name="p", omit_response_on_success=False))
    assert entry["omit_response_on_success"] is False


def test_encode_batch_is_a_json_array_in_order() -> None:
    ops = [BatchOp("POST", "act_1/campaigns", {"name": f"c{i}"}) for i in range(3)]
    decoded = json.loads(encode_batch(ops))
    assert [e["body"] for e in decoded] == ["name=c0", "name=c1", "name=c2"]


def test_encode_batch_limits() -> None:
    ops = [BatchOp("GET", str(i)) for i in range(MAX_BATCH_OPS)]
    assert len(json.loads(encode_batch(ops))) == 50
    with pytest.raises(BatchTooLargeError):
        encode_batch([*ops, BatchOp("GET", "51")])
    with pytest.raises(ValueError):
        encode_batch([])
    with pytest.raises(ValueError, match="duplicate"):
        encode_batch([BatchOp("GET", "1", name="a"), BatchOp("GET", "2", name="a")])


def test_invalid_method_rejected() -> None:
    with pytest.raises(ValueError):
        BatchOp("PATCH", "x")


def test_seed_create_ads_example_shape() -> None:
    """S003 §Asynchronous and Batch Requests → Create Ads, rebuilt from params."""
    ops = [
        BatchOp("POST", "act_187687683/adimages", name="create_adimage", attached_files=("test1",)),
        BatchOp(
            "POST",
            "act_187687683/adcreatives",
            {
                "name": "sample creative",
                "object_story_spec": {
                    "link_data": {"image_hash": render_ref("create_adimage", "$.images.*.hash")},
                    "page_id": "12345678",
                },
            },
            name="create_creative",
        ),
        BatchOp(
            "POST",
            "act_187687683/ads",
            {"adset_id": "6004163746239", "creative": {"creative_id": render_ref("create_creative")}},
        ),
    ]
    decoded = json.loads(encode_batch(ops, api_version="v21.0"))
    creative_body = dict(parse_qsl(decoded[1]["body"]))
    spec = json.loads(creative_body["object_story_spec"])
    assert spec["link_data"]["image_hash"] == "{result=create_adimage:$.images.*.hash}"
    ad_body = dict(parse_qsl(decoded[2]["body"]))
    assert json.loads(ad_body["creative"]) == {"creative_id": "{result=create_creative:$.id}"}


# ----------------------------------------------------------------------------- decoding


def _entry(code: int, body: Any, headers: list[dict[str, str]] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"code": code, "body": json.dumps(body)}
    if headers is not None:
        out["headers"] = headers
    return out


def test_decode_mixed_results_in_order() -> None:
    error = {"error": {"type": "OAuthException", "code": 10, "message": "(#10) denied"}}
    payload = json.dumps(
        [
            _entry(200, {"id": "1"}, [{"name": "Content-Type", "value": "text/javascript; charset=UTF-8"}]),
            _entry(403, error, [{"name": "WWW-Authenticate", "value": "OAuth..."}]),
            None,
        ]
    )
    results = decode_batch_response(payload, 3)
    assert [r.index for r in results] == [0, 1, 2]
    ok, denied, timed_out = results
    assert ok.ok and ok.body == {"id": "1"} and ok.status == 200
    assert ok.headers["content-type"].startswith("text/javascript")
    assert ok.headers["CONTENT-TYPE"] == ok.headers["Content-Type"]
    assert denied.status == 403 and not denied.ok
    assert denied.error is not None and denied.error.code == 10
    assert denied.error_class is ErrorClass.PERMANENT
    assert "www-authenticate" in denied.headers
    assert timed_out.is_null and timed_out.outcome_unknown
    assert timed_out.error_class is ErrorClass.TRANSIENT


def test_decode_accepts_bytes_and_parsed_lists() -> None:
    body = [_entry(200, {"id": "1"})]
    assert decode_batch_response(json.dumps(body).encode(), 1)[0].body == {"id": "1"}
    assert decode_batch_response(body, 1)[0].body == {"id": "1"}


def test_body_absent_is_not_malformed() -> None:
    (item,) = decode_batch_response([{"code": 200}], 1)
    assert item.ok and item.body is None and item.raw is None and not item.outcome_unknown


def test_body_true_is_ok() -> None:
    (item,) = decode_batch_response([{"code": 200, "body": "true"}], 1)
    assert item.ok and item.body is True


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ("not json", "response is not JSON"),
        ("{}", "response is not a JSON array"),
        ('"str"', "response is not a JSON array"),
        ("42", "response is not a JSON array"),
        (b"\xff\xfe", "response is not JSON"),
        ("[" * 100000, "response is not JSON"),
    ],
)
def test_hostile_top_level_gives_malformed_results(payload: Any, reason: str) -> None:
    results = decode_batch_response(payload, 2)
    assert [r.malformed for r in results] == [reason, reason]
    assert all(r.error_class is ErrorClass.TRANSIENT and r.outcome_unknown for r in results)


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        (5, "entry is not an object"),
        ([], "entry is not an object"),
        ({"body": "{}"}, "missing or invalid code"),
        ({"code": "abc", "body": "{}"}, "missing or invalid code"),
        ({"code": True}, "missing or invalid code"),
        ({"code": 200, "body": "{not json"}, "body is not valid JSON"),
        ({"code": 200, "body": 12}, "body is neither a string nor JSON"),
    ],
)
def test_hostile_entries(entry: Any, reason: str) -> None:
    (item,) = decode_batch_response([entry], 1)
    assert item.malformed == reason
    assert item.error_class is ErrorClass.TRANSIENT
    assert not item.ok


def test_string_code_and_dict_headers_tolerated() -> None:
    (item,) = decode_batch_response([{"code": "200", "headers": {"ETag": "x"}, "body": '{"id":"5"}'}], 1)
    assert item.status == 200 and item.headers["etag"] == "x" and item.ok


def test_junk_headers_are_ignored() -> None:
    headers: Any = [{"name": "A", "value": "1"}, {"name": 5, "value": "x"}, "junk", {"name": "B"}, None]
    (item,) = decode_batch_response([{"code": 200, "headers": headers, "body": "{}"}], 1)
    assert dict(item.headers) == {"a": "1"}


def test_length_mismatch() -> None:
    short = decode_batch_response([_entry(200, {"id": "1"})], 3)
    assert [r.malformed for r in short] == [
        None,
        "entry missing from response",
        "entry missing from response",
    ]
    long = decode_batch_response([_entry(200, {"id": str(i)}) for i in range(5)], 2)
    assert [r.body for r in long] == [{"id": "0"}, {"id": "1"}]
    assert decode_batch_response("[]", 0) == []
    assert decode_batch_response("[]", -3) == []


def test_envelope_error_applies_to_every_op() -> None:
    envelope = {"error": {"message": "(#80004) too many calls", "type": "OAuthException", "code": 80004}}
    results = decode_batch_response(json.dumps(envelope), 3, http_status=400)
    assert len(results) == 3
    assert all(r.from_envelope and r.status == 400 for r in results)
    assert all(r.error_class is ErrorClass.THROTTLED for r in results)


def test_already_decoded_body_object() -> None:
    (item,) = decode_batch_response([{"code": 200, "body": {"id": "9"}}], 1)
    assert item.body == {"id": "9"} and item.raw == '{"id": "9"}'


def test_headers_mapping_behaviour() -> None:
    headers = Headers([("X-App-Usage", "1"), ("x-app-usage", "2")])
    assert headers["X-APP-USAGE"] == "2" and len(headers) == 1
    assert 5 not in headers
    assert "Headers(" in repr(headers)
    assert Headers.from_wire(None) == Headers()


def test_item_error_for_success_is_none() -> None:
    item = BatchItemResult(index=0, status=200, body={"id": "1"})
    assert item.error is None and item.ok
