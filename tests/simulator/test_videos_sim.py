"""The simulator's ``advideos`` beyond chunks (issue 15): ``source`` and ``file_url`` with the documented codes
for bad files (352, 382, 389), a batch entry's one attached file as its ``source``, the processing delay on the
virtual clock (``status.video_status``), a failing video, and the ``source`` field another account copies."""

from __future__ import annotations

import json
import urllib.error
from typing import Any

import pytest
from helpers import Graph
from test_batch import multipart_post

from bulk_engine.simulator import SimulatorThread

MP4 = b"\x00\x00\x00\x18ftypmp42" + bytes(4000)


def post_source(sim: SimulatorThread, graph: Graph, act: str, content: bytes, **fields: str) -> Any:
    try:
        return multipart_post(
            f"{sim.url}/v24.0/{act}/advideos",
            {"access_token": graph.token, **fields},
            {"source": ("teaser.mp4", content)},
        ).body
    except urllib.error.HTTPError as err:
        return json.loads(err.read())


@pytest.mark.graph_simulator(video_processing_s=120)
def test_source_and_file_url_make_videos_that_process_on_the_virtual_clock(
    graph_simulator: SimulatorThread, graph: Graph, act: str
) -> None:
    made = post_source(graph_simulator, graph, act, MP4, title="Teaser [k1]")
    hosted = graph.post(f"{act}/advideos", file_url="https://cdn.example.com/a.mp4", name="Hosted").body
    for answer in (made, hosted):
        assert set(answer) == {"id"}
        status = graph.get(answer["id"], fields="status").body["status"]
        assert status["video_status"] == "processing"
    graph_simulator.run(lambda core: core.clock.advance(120))
    assert graph.get(made["id"], fields="status").body["status"]["video_status"] == "ready"
    read = graph.get(made["id"], fields="source,title").body
    assert read["title"] == "Teaser [k1]" and read["source"].startswith("https://")
    found = graph.get(
        f"{act}/advideos",
        fields="id,name",
        filtering=json.dumps([{"field": "name", "operator": "CONTAIN", "value": "[k1]"}]),
    ).body
    assert [v["id"] for v in found["data"]] == [made["id"]]


@pytest.mark.graph_simulator()
def test_bad_video_uploads_answer_the_documented_codes(
    graph_simulator: SimulatorThread, graph: Graph, act: str
) -> None:
    assert post_source(graph_simulator, graph, act, b"not a video at all" * 100)["error"]["code"] == 352
    assert post_source(graph_simulator, graph, act, MP4[:100])["error"]["code"] == 382
    refused = graph.post(f"{act}/advideos", file_url="ftp://cdn.example.com/a.mp4").body
    assert refused["error"]["code"] == 389
    assert graph_simulator.run(lambda core: len(list(core.store.nodes("advideo")))) == 0


@pytest.mark.graph_simulator(video_error_titles=("broken",))
def test_a_batch_entrys_attached_file_is_its_source_and_a_failing_video_reads_error(
    graph_simulator: SimulatorThread, graph: Graph, act: str
) -> None:
    batch = json.dumps(
        [
            {
                "method": "POST",
                "relative_url": f"{act}/advideos",
                "body": "title=broken",
                "attached_files": "f1",
            }
        ]
    )
    answer = multipart_post(
        f"{graph_simulator.url}/v24.0/",
        {"access_token": graph.token, "batch": batch},
        {"f1": ("clip.mp4", MP4)},
    ).body
    video = json.loads(answer[0]["body"])["id"]
    assert graph.get(video, fields="status").body["status"]["video_status"] == "error"
