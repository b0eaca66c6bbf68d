"""Property tests: hostile headers, batch responses and error bodies never raise (SPEC-DIGEST §9.2)."""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import parse_qsl

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bulk_engine.protocol.batch import BatchOp, batch_op_to_dict, decode_batch_response, encode_form
from bulk_engine.protocol.errors import ErrorClass, classify, parse_graph_error
from bulk_engine.protocol.refs import Ref, render_ref, resolve_path, substitute
from bulk_engine.protocol.usage import (
    BucType,
    parse_ad_account_usage,
    parse_app_usage,
    parse_buc_usage,
    parse_usage_headers,
)

logging.getLogger("bulk_engine.protocol.usage").setLevel(logging.ERROR)

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
numberish = st.integers(-10, 10_000) | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=6)

buc_entry = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from([t.value for t in BucType]) | st.text(max_size=8) | st.integers(),
        "call_count": numberish,
        "total_cputime": numberish,
        "total_time": numberish,
        "estimated_time_to_regain_access": numberish,
        "ads_api_access_tier": st.text(max_size=12) | st.none(),
    },
)
buc_header = st.dictionaries(
    st.text(max_size=12), st.lists(buc_entry | json_values, max_size=3) | json_values, max_size=4
)
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _mangle(text: str, cut: int, quote: bool) -> str:
    out = text[: max(cut, 0)] if cut < len(text) else text
    return out.replace('"', "'") if quote else out


@SETTINGS
@given(buc_header, st.integers(0, 400), st.booleans())
def test_buc_header_never_raises(value: dict[str, Any], cut: int, quote: bool) -> None:
    text = _mangle(json.dumps(value, allow_nan=True), cut, quote)
    entries = parse_buc_usage(text)
    for entry in entries:
        assert entry.max_pct >= 0 and entry.regain_after_s >= 0
        assert entry.max_pct == entry.max_pct  # not NaN


@SETTINGS
@given(st.text(max_size=200) | st.binary(max_size=50) | json_values)
def test_any_header_value_never_raises(value: Any) -> None:
    raw = value if isinstance(value, str | bytes) else json.dumps(value, allow_nan=True)
    parse_buc_usage(raw)
    parse_app_usage(raw)
    parse_ad_account_usage(raw)
    snap = parse_usage_headers(
        {
            "x-business-use-case-usage": raw,
            "x-app-usage": raw,
            "x-ad-account-usage": raw,
            "x-fb-ads-insights-throttle": raw,
        },
        account_id="act_1",
    )
    for buc in BucType:
        pct = snap.max_pct_for("act_1", buc)
        assert pct is None or pct >= 0
        assert snap.regain_after_s("act_1", buc) >= 0


batch_entry = (
    st.none()
    | st.fixed_dictionaries(
        {},
        optional={
            "code": st.integers(-5, 1000) | st.text(max_size=4) | st.none() | st.booleans(),
            "headers": st.lists(
                st.fixed_dictionaries(
                    {}, optional={"name": st.text(max_size=8) | st.integers(), "value": json_values}
                ),
                max_size=3,
            )
            | json_values,
            "body": st.text(max_size=40)
            | json_values.map(lambda v: json.dumps(v, allow_nan=True))
            | json_values,
        },
    )
    | json_values
)


@SETTINGS
@given(
    st.lists(batch_entry, max_size=8) | json_values, st.integers(-2, 10), st.integers(100, 599), st.booleans()
)
def test_batch_response_never_raises(payload: Any, expected: int, http_status: int, as_text: bool) -> None:
    data = json.dumps(payload, allow_nan=True) if as_text else payload
    results = decode_batch_response(data, expected, http_status=http_status)
    assert len(results) == max(expected, 0)
    assert [r.index for r in results] == list(range(max(expected, 0)))
    for r in results:
        assert isinstance(r.error_class, ErrorClass)
        if r.outcome_unknown:
            assert r.error_class is ErrorClass.TRANSIENT
        _ = r.ok, r.error, dict(r.headers)


@SETTINGS
@given(st.text(max_size=300) | st.binary(max_size=100), st.integers(0, 20))
def test_batch_response_raw_text_never_raises(payload: str | bytes, expected: int) -> None:
    assert len(decode_batch_response(payload, expected)) == expected


error_object = st.fixed_dictionaries(
    {},
    optional={
        "code": st.integers() | st.text(max_size=6) | json_values,
        "error_subcode": st.integers() | st.text(max_size=6) | json_values,
        "message": json_values,
        "type": st.sampled_from(["OAuthException", "Exception"]) | json_values,
        "is_transient": json_values,
        "error_data": json_values | st.text(max_size=30),
        "fbtrace_id": json_values,
        "error_user_title": json_values,
        "error_user_msg": json_values,
    },
)


@SETTINGS
@given(
    st.dictionaries(st.just("error"), error_object | json_values) | json_values,
    st.none() | st.integers(0, 999),
)
def test_error_body_never_raises(body: Any, http_status: int | None) -> None:
    for form in (body, json.dumps(body, allow_nan=True)):
        error = parse_graph_error(form, http_status)
        assert isinstance(classify(http_status, error), ErrorClass)
        if error is not None:
            json.dumps(error.to_dict())
            _ = error.throttle_scope


plain_text = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=30)


@SETTINGS
@given(st.dictionaries(plain_text.filter(bool), plain_text | st.integers() | st.booleans(), max_size=5))
def test_form_encoding_round_trips(params: dict[str, Any]) -> None:
    decoded = parse_qsl(encode_form(params), keep_blank_values=True)
    expected = [(k, "true" if v is True else "false" if v is False else str(v)) for k, v in params.items()]
    assert decoded == expected


@SETTINGS
@given(
    st.dictionaries(
        st.sampled_from(["a", "b", "c"]), st.sampled_from(["x", "y-1", "z_2", "op.3"]), max_size=3
    ),
    st.sampled_from(["$.id", "$.data.*.id", "$.images.*.hash"]),
    plain_text,
)
def test_placeholders_stay_literal_in_body_and_url(names: dict[str, str], path: str, text: str) -> None:
    params = {key: {"ref": render_ref(name, path), "text": text} for key, name in names.items()}
    for method in ("POST", "GET"):
        entry = batch_op_to_dict(BatchOp(method, "act_1/x", params))
        wire = entry.get("body", entry["relative_url"])
        for name in names.values():
            assert f"{{result={name}:{path}}}" in wire


@SETTINGS
@given(json_values, st.sampled_from(["$.id", "$.data.*.id", "$.images.*.hash", "$.a.b[0]"]))
def test_resolve_path_never_raises(result: Any, path: str) -> None:
    assert isinstance(resolve_path(result, path), list)


@SETTINGS
@given(json_values)
def test_substitute_without_refs_is_identity(value: Any) -> None:
    assert json.dumps(substitute(value, lambda ref: 1 / 0)) == json.dumps(value)
    assert substitute({"r": Ref("a")}, lambda ref: ref.op_id) == {"r": "a"}
