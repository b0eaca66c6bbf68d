"""The fast percent-encoders of ``protocol/batch.py`` produce exactly what ``urllib.parse`` produces."""

from __future__ import annotations

from types import MappingProxyType
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bulk_engine.protocol import batch
from bulk_engine.protocol.batch import BatchOp, batch_op_to_dict, encode_form, encode_value
from bulk_engine.protocol.refs import Ref

# Text with plenty of the characters that matter: separators, escapes, placeholders, non-ASCII.
texts = st.text(
    alphabet=st.one_of(
        st.sampled_from(list(" &=+%?#/{}[]\":,$.-_~'!*()@;\\\n\tAz09éü€😀")),
        st.characters(blacklist_categories=("Cs",)),
    ),
    max_size=80,
)


@given(texts)
def test_form_quoting_matches_quote_plus(text: str) -> None:
    assert batch._quote_plus_text(text) == quote_plus(text, safe="")


@given(texts)
def test_path_quoting_matches_quote(text: str) -> None:
    assert batch._quote_path_text(text) == quote(text, safe=batch._PATH_SAFE_ALL)


def _reference_quote_form(text: str) -> str:
    """The original implementation: stdlib ``quote_plus`` between verbatim placeholders."""
    out: list[str] = []
    last = 0
    for match in batch._PLACEHOLDER.finditer(text):
        out.append(quote_plus(text[last : match.start()], safe=""))
        out.append(match.group(0))
        last = match.end()
    out.append(quote_plus(text[last:], safe=""))
    return "".join(out)


@given(texts, texts, st.sampled_from(["{result=c-1:$.id}", "{result=cr_2:$.data.*.id}", "{result=x:$}"]))
def test_placeholders_kept_and_the_rest_quoted_like_the_stdlib(
    before: str, after: str, placeholder: str
) -> None:
    text = f"{before}{placeholder}{after}"
    assert batch._quote_form(text) == _reference_quote_form(text)
    assert batch._quote_form(placeholder) == placeholder


@pytest.mark.parametrize("text", ["", "PAUSED", "Ad set 1", "a b+c", "x" * 5000, "é" * 3000])
def test_long_and_cached_values(text: str) -> None:
    assert batch._quote_form(text) == quote_plus(text, safe="")
    assert batch._quote_form(text) == quote_plus(text, safe="")  # second call: from the cache


def test_read_only_mappings_encode_like_dicts() -> None:
    value = MappingProxyType({"geo_locations": MappingProxyType({"countries": ("US",)})})
    assert encode_value(value) == '{"geo_locations":{"countries":["US"]}}'
    assert encode_form({"targeting": value}) == encode_form(
        {"targeting": {"geo_locations": {"countries": ["US"]}}}
    )
    with pytest.raises(TypeError):
        encode_value(MappingProxyType({"x": Ref("a")}))


def test_relative_url_placeholders_and_spaces() -> None:
    entry = batch_op_to_dict(BatchOp("GET", "{result=c:$.id}/some edge?fields=a,b"))
    assert entry["relative_url"] == "{result=c:$.id}/some%20edge?fields=a,b"


long_texts = st.text(
    alphabet=st.one_of(
        st.sampled_from(list(" &=+%?#/{}[]\":,$.-_~'!*()@;\\\nAz09")), st.characters(max_codepoint=127)
    ),
    min_size=60,
    max_size=400,
)


@given(long_texts)
def test_long_ascii_quoting_matches_quote_plus(text: str) -> None:
    assert batch._quote_plus_text(text) == quote_plus(text, safe="")


@given(st.dictionaries(texts, st.one_of(texts, long_texts), max_size=4))
def test_form_urlencode_matches_urlencode(fields: dict[str, str]) -> None:
    from urllib.parse import urlencode

    assert batch.form_urlencode(fields) == urlencode(fields)


@pytest.mark.parametrize(
    "text",
    [
        '{"id":"1"}',
        " {} ",
        "true",
        "[1, 2]\n",
        '"x"',
        "1e5",
        "NaN",
        "{} x",
        "",
        " ",
        "{",
        '{"a":1}}',
        "[" * 50,
    ],
)
def test_entry_body_json_decoding_matches_json_loads(text: str) -> None:
    import json

    try:
        expected: object = json.loads(text)
    except ValueError as err:
        with pytest.raises(ValueError) as caught:
            batch._loads(text)
        assert type(caught.value) is type(err)
    else:
        assert repr(batch._loads(text)) == repr(expected)  # repr: NaN != NaN


def test_decoded_entries_equal_normally_built_results() -> None:
    """``_decode_entry`` fills the dataclass without ``__init__``: same fields, same values, frozen."""
    import dataclasses
    import json

    from bulk_engine.protocol.batch import BatchItemResult, Headers, decode_batch_response

    wire = [{"name": "ETag", "value": "x"}]
    (item,) = decode_batch_response([{"code": 200, "headers": wire, "body": '{"id":"1"}'}], 1)
    expected = BatchItemResult(
        index=0, status=200, headers=Headers([("ETag", "x")]), body={"id": "1"}, raw='{"id":"1"}'
    )
    assert item == expected and item.ok and item.headers["etag"] == "x"
    assert set(vars(item)) == {f.name for f in dataclasses.fields(BatchItemResult)}
    with pytest.raises(dataclasses.FrozenInstanceError):
        item.status = 500  # type: ignore[misc]
    assert json.loads(item.raw or "") == item.body
