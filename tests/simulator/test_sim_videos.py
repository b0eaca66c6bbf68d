"""Chunked, resumable video uploads (S003 §Ad Account Ad Videos → Creating: ``upload_phase``, ``start_offset``
/ ``end_offset``, ``video_file_chunk``) and their error codes 382, 352 and 6001; processing on the virtual
clock."""

from __future__ import annotations

import json
import urllib.error
from typing import Any

import pytest
from helpers import Graph
from test_batch import multipart_post

from bulk_engine.simulator import SimulatorThread

CHUNK = 1000
MP4 = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 12  # 3,084 bytes with an MP4 header


def transfer(sim: SimulatorThread, graph: Graph, act: str, session: str, start: int, chunk: bytes) -> Any:
    """One ``transfer`` phase request (a multipart chunk); an error answer's body is returned too."""
    try:
        return _transfer(sim, graph, act, session, start, chunk)
    except urllib.error.HTTPError as err:
        return json.loads(err.read())


def _transfer(sim: SimulatorThread, graph: Graph, act: str, session: str, start: int, chunk: bytes) -> Any:
    return multipart_post(
        f"{sim.url}/v24.0/{act}/advideos",
        {
            "access_token": graph.token,
            "upload_phase": "transfer",
            "upload_session_id": session,
            "start_offset": str(start),
        },
        {"video_file_chunk": ("chunk", chunk)},
    ).body


def upload(
    sim: SimulatorThread, graph: Graph, act: str, content: bytes, *, resend_first: bool = False
) -> Any:
    started = graph.post(f"{act}/advideos", upload_phase="start", file_size=len(content), title="teaser").body
    session, video_id = started["upload_session_id"], started["video_id"]
    start, end = int(started["start_offset"]), int(started["end_offset"])
    sent = 0
    while start < end:
        answer = transfer(sim, graph, act, session, start, content[start:end])
        if resend_first and sent == 0:  # the answer was "lost": the same chunk again
            answer = transfer(sim, graph, act, session, start, content[start:end])
        sent += 1
        start, end = int(answer["start_offset"]), int(answer["end_offset"])
    finished = graph.post(f"{act}/advideos", upload_phase="finish", upload_session_id=session)
    return video_id, sent, finished


@pytest.mark.graph_simulator(video_chunk_bytes=CHUNK)
def test_a_chunked_upload_follows_the_servers_offsets_and_a_resent_chunk_is_not_stored_twice(
    graph_simulator: SimulatorThread, graph: Graph, act: str
) -> None:
    video_id, chunks, finished = upload(graph_simulator, graph, act, MP4, resend_first=True)
    assert chunks == 4 and finished.status == 200 and finished.body == {"success": True}
    video = graph.get(video_id, fields="title,status").body
    assert video["title"] == "teaser" and video["status"]["video_status"] == "ready"
    listed = graph.get(f"{act}/advideos", fields="id").body["data"]
    assert [v["id"] for v in listed] == [video_id]


@pytest.mark.graph_simulator(video_chunk_bytes=CHUNK, video_processing_s=120)
def test_a_video_is_processing_until_its_time_has_passed_on_the_virtual_clock(
    graph_simulator: SimulatorThread, graph: Graph, act: str
) -> None:
    video_id, _, _ = upload(graph_simulator, graph, act, MP4)
    assert graph.get(video_id, fields="status").body["status"]["video_status"] == "processing"
    graph_simulator.run(lambda core: core.clock.advance(121))
    assert graph.get(video_id, fields="status").body["status"]["video_status"] == "ready"


@pytest.mark.graph_simulator(video_chunk_bytes=CHUNK)
def test_documented_video_errors(graph_simulator: SimulatorThread, graph: Graph, act: str) -> None:
    small = graph.post(f"{act}/advideos", upload_phase="start", file_size=10)
    assert small.status == 400 and small.error["code"] == 382
    _, _, not_video = upload(graph_simulator, graph, act, b"%PDF" + b"x" * 2000)
    assert not_video.status == 400 and not_video.error["code"] == 352
    started = graph.post(f"{act}/advideos", upload_phase="start", file_size=len(MP4)).body
    wrong = transfer(graph_simulator, graph, act, started["upload_session_id"], 0, MP4[:10])
    assert wrong["error"]["code"] == 6001
    early = graph.post(
        f"{act}/advideos", upload_phase="finish", upload_session_id=started["upload_session_id"]
    )
    assert early.error["code"] == 6001
    unknown = graph.post(f"{act}/advideos", upload_phase="finish", upload_session_id="123")
    assert unknown.error["code"] == 6001
    assert json.loads(json.dumps(small.error))["message"].startswith("(#382)")
