"""The image library (S003 §Ad Account Ad Images; §Batch Requests → Upload Binary Data): Base64 ``bytes``,
multipart files in a batch (``attached_files``), ``copy_from``, real MD5 hashes, ``hashes=[...]`` lookups
and the code-100 answers for bad files."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest
from helpers import Graph
from pngs import png
from test_batch import multipart_post, stored

from bulk_engine.simulator import SimulatorThread

DOCUMENTED_KEYS = {"hash", "url", "url_128", "url_256", "url_256_height", "url_256_width", "height", "width"}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_bytes_upload_answers_the_documented_shape_with_the_md5_of_the_decoded_bytes(
    graph: Graph, act: str
) -> None:
    image = png(4, 3, seed=1)
    answer = graph.post(f"{act}/adimages", bytes=b64(image))
    assert answer.status == 200, answer.body
    [(key, entry)] = answer.body["images"].items()
    assert key == "bytes"  # no name given: Graph's key for a bytes upload
    assert DOCUMENTED_KEYS <= set(entry)
    assert entry["hash"] == hashlib.md5(image).hexdigest()
    assert (entry["width"], entry["height"]) == (4, 3)


def test_same_bytes_twice_is_one_library_image_with_one_hash(
    graph_simulator: SimulatorThread, graph: Graph, act: str
) -> None:
    image = b64(png(seed=2))
    first = graph.post(f"{act}/adimages", bytes=image, name="a").body["images"]["a"]["hash"]
    second = graph.post(f"{act}/adimages", bytes=image, name="b").body["images"]["b"]["hash"]
    assert first == second
    assert [i["hash"] for i in stored(graph_simulator, "adimage")] == [first]


def test_multipart_batch_uploads_several_images_and_hashes_lookup_finds_them(
    graph_simulator: SimulatorThread, graph: Graph, act: str
) -> None:
    images = {f"f{i}": (f"hero-{i}.png", png(seed=10 + i)) for i in range(3)}
    batch: list[dict[str, Any]] = [
        {"method": "POST", "relative_url": f"v24.0/{act}/adimages", "attached_files": part} for part in images
    ]
    answer = multipart_post(
        graph_simulator.url + "/", {"access_token": graph.token, "batch": json.dumps(batch)}, images
    )
    hashes = []
    for entry, (part, (_filename, data)) in zip(answer.body, images.items(), strict=True):
        assert entry["code"] == 200
        image = json.loads(entry["body"])["images"][part]
        assert image["hash"] == hashlib.md5(data).hexdigest()
        hashes.append(image["hash"])
    names = {i["hash"]: i["name"] for i in stored(graph_simulator, "adimage")}
    assert [names[h] for h in hashes] == ["hero-0.png", "hero-1.png", "hero-2.png"]  # the part's filename
    unknown = hashlib.md5(b"never uploaded").hexdigest()
    listed = graph.get(
        f"{act}/adimages", hashes=json.dumps([hashes[0], hashes[2], unknown]), fields="hash,name"
    )
    assert sorted(i["hash"] for i in listed.body["data"]) == sorted([hashes[0], hashes[2]])


def test_copy_from_keeps_the_hash_and_the_size(
    graph: Graph, act: str, graph_simulator: SimulatorThread
) -> None:
    other = str(graph_simulator.info()["ad_account_ids"][1])
    image_hash = graph.post(f"{act}/adimages", bytes=b64(png(5, 2, seed=3)), name="wide").body["images"][
        "wide"
    ]["hash"]
    copied = graph.post(f"{other}/adimages", copy_from={"source_account_id": act[4:], "hash": image_hash})
    [entry] = copied.body["images"].values()
    assert (entry["hash"], entry["width"], entry["height"]) == (image_hash, 5, 2)


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"", "empty"),
        (b"%PDF-1.4 not an image", "not an image"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * (8 * 1024 * 1024), "8 MB"),
    ],
    ids=["empty", "not-an-image", "over-8MB"],
)
def test_bad_files_are_refused_with_code_100_blaming_their_part(
    graph_simulator: SimulatorThread, graph: Graph, act: str, content: bytes, words: str
) -> None:
    batch = [
        {"method": "POST", "relative_url": f"{act}/adimages", "attached_files": "bad"},
        {"method": "POST", "relative_url": f"{act}/adimages", "attached_files": "good"},
    ]
    answer = multipart_post(
        graph_simulator.url + "/",
        {"access_token": graph.token, "batch": json.dumps(batch)},
        {"bad": ("bad.png", content), "good": ("good.png", png(seed=4))},
    )
    bad, good = answer.body
    error = json.loads(bad["body"])["error"]
    assert bad["code"] == 400 and error["code"] == 100 and words in error["message"]
    assert error["error_data"]["blame_field_specs"] == [["bad"]]
    assert good["code"] == 200  # a bad sibling does not fail the batch
    assert len(stored(graph_simulator, "adimage")) == 1


def test_bytes_that_are_not_base64_are_refused(graph: Graph, act: str) -> None:
    answer = graph.post(f"{act}/adimages", bytes="not base64 at all!")
    assert answer.status == 400 and answer.error["code"] == 100
    assert answer.error["error_data"]["blame_field_specs"] == [["bytes"]]


@pytest.mark.graph_simulator(check_image_content=False)
def test_placeholder_content_is_accepted_when_content_checks_are_off(graph: Graph, act: str) -> None:
    answer = graph.post(f"{act}/adimages", bytes=b64(b"hello"), name="hero")
    assert answer.status == 200 and answer.body["images"]["hero"]["hash"] == hashlib.md5(b"hello").hexdigest()
