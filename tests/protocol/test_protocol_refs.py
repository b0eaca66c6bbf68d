"""{result=NAME:$.path} references: rendering, JSONPath resolution, substitution (S003 §Batch Requests)."""

from __future__ import annotations

from typing import Any

import pytest

from bulk_engine.protocol.refs import (
    InvalidRefPathError,
    Ref,
    UnresolvedReferenceError,
    iter_refs,
    render_ref,
    resolve_path,
    resolve_value,
    substitute,
)

ADIMAGES_RESULT = {"images": {"cat.jpg": {"hash": "abc123", "url": "https://x/cat.jpg"}}}
TWO_IMAGES = {"images": {"a.jpg": {"hash": "h1"}, "b.jpg": {"hash": "h2"}}}
ADS_RESULT = {"data": [{"id": "11"}, {"id": "12"}, {"id": "13"}]}


def test_ref_defaults_to_id() -> None:
    assert Ref("camp-1") == Ref("camp-1", "$.id")
    assert hash(Ref("a")) == hash(Ref("a", "$.id"))


@pytest.mark.parametrize(
    ("name", "path", "expected"),
    [
        ("create-campaign", "$.id", "{result=create-campaign:$.id}"),
        ("create_adimage", "$.images.*.hash", "{result=create_adimage:$.images.*.hash}"),
        ("create-ad", "$.data.*.id", "{result=create-ad:$.data.*.id}"),
    ],
)
def test_render_ref_matches_seed_syntax(name: str, path: str, expected: str) -> None:
    assert render_ref(name, path) == expected


@pytest.mark.parametrize("path", ["id", "", "$.[", "$.a{b}", "}", "$..("])
def test_invalid_paths_are_rejected_when_the_ref_is_built(path: str) -> None:
    with pytest.raises(InvalidRefPathError):
        Ref("x", path)


def test_empty_op_id_rejected() -> None:
    with pytest.raises(ValueError):
        Ref("")


@pytest.mark.parametrize(
    ("result", "path", "expected"),
    [
        ({"id": "123"}, "$.id", ["123"]),
        (ADS_RESULT, "$.data.*.id", ["11", "12", "13"]),
        (ADS_RESULT, "$.data[*].id", ["11", "12", "13"]),
        (ADIMAGES_RESULT, "$.images.*.hash", ["abc123"]),
        (TWO_IMAGES, "$.images.*.hash", ["h1", "h2"]),
        ({"success": True}, "$.id", []),
        (True, "$.id", []),
        (None, "$.id", []),
        ([1, 2], "$.id", []),
        ("text", "$.id", []),
    ],
)
def test_resolve_path(result: Any, path: str, expected: list[Any]) -> None:
    assert resolve_path(result, path) == expected


@pytest.mark.parametrize(
    ("result", "ref", "expected"),
    [
        ({"id": "123"}, Ref("c"), "123"),
        ({"id": 123}, Ref("c"), 123),  # single match keeps its JSON type
        (ADS_RESULT, Ref("ads", "$.data.*.id"), "11,12,13"),  # multi-valued: comma-joined
        (TWO_IMAGES, Ref("img", "$.images.*.hash"), "h1,h2"),
        (ADIMAGES_RESULT, Ref("img", "$.images.*.hash"), "abc123"),
        ({"data": [{"ok": True}, {"ok": False}]}, Ref("x", "$.data.*.ok"), "true,false"),
    ],
)
def test_resolve_value(result: Any, ref: Ref, expected: Any) -> None:
    assert resolve_value(result, ref) == expected


@pytest.mark.parametrize("result", [{"success": True}, {"id": None}, None, {"data": []}])
def test_resolve_value_without_match_raises_naming_the_ref(result: Any) -> None:
    with pytest.raises(UnresolvedReferenceError) as info:
        resolve_value(
            result, Ref("camp-7", "$.id") if "data" not in (result or {}) else Ref("x", "$.data.*.id")
        )
    assert info.value.op_id in str(info.value)


def test_substitute_walks_nested_params_without_mutating() -> None:
    params: dict[str, Any] = {
        "name": "ad 1",
        "adset_id": Ref("adset-1"),
        "creative": {"creative_id": Ref("cr-1")},
        "list": [Ref("a"), {"deep": (Ref("b", "$.images.*.hash"),)}],
        "n": 5,
    }
    out = substitute(params, lambda ref: f"<{ref.op_id}|{ref.path}>")
    assert out == {
        "name": "ad 1",
        "adset_id": "<adset-1|$.id>",
        "creative": {"creative_id": "<cr-1|$.id>"},
        "list": ["<a|$.id>", {"deep": ["<b|$.images.*.hash>"]}],
        "n": 5,
    }
    assert params["adset_id"] == Ref("adset-1")


def test_substitute_same_batch_renders_placeholders() -> None:
    names = {"create_creative": "create_creative"}

    def resolver(ref: Ref) -> Any:
        return render_ref(names[ref.op_id], ref.path)

    out = substitute({"creative": {"creative_id": Ref("create_creative")}}, resolver)
    assert out == {"creative": {"creative_id": "{result=create_creative:$.id}"}}


def test_iter_refs_finds_all() -> None:
    value = {"a": Ref("x"), "b": [Ref("y"), {"c": Ref("x", "$.data.*.id")}], "d": "Ref"}
    assert list(iter_refs(value)) == [Ref("x"), Ref("y"), Ref("x", "$.data.*.id")]
