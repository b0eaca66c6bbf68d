"""Creative videos in job files (issue 15): files, URLs and Base64 uploaded as ``file_url``, ``source`` or in
chunks, found by their key before any re-send, waited for until processed, referenced by key, and rejected
before any call when bad."""

from __future__ import annotations

import base64
import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import unquote_to_bytes

import pytest
import yaml
from aiohttp import web
from hostile_front import HostileFront, _answer
from killed_cli import ROOT, run_killed
from ops_support import PAGE, adset, campaign, write

from bulk_engine import BulkEngine
from bulk_engine.execution.clock import ScaledClock
from bulk_engine.execution.events import Waiting
from bulk_engine.operations import CompileContext, load_job, run_job
from bulk_engine.persistence.keys import strip_key
from bulk_engine.simulator.videos import forget_upload_sessions, upload_log

MB = 1024 * 1024


def mp4(size: int, seed: int = 0) -> bytes:
    """A valid-looking MP4 (an ``ftyp`` box) padded to ``size`` bytes; ``seed`` makes contents differ."""
    head = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"
    body = bytes([seed % 251]) * 64 + b"\x00\x00\x00\x08free"
    return (head + body + bytes(size))[:size]


def video_creative(name: str, video: str) -> dict[str, Any]:
    return {
        "name": name,
        "object_story_spec": {
            "page_id": PAGE,
            "video_data": {
                "video": video,
                "image_url": f"https://example.com/{name}.jpg",
                "message": name,
                "call_to_action": {"type": "LEARN_MORE", "value": {"link": "https://example.com/"}},
            },
        },
    }


def video_job(folder: Path, account: str, *, big: int = 12 * MB, extra: dict[str, Any] | None = None) -> Path:
    """Three videos — a small file, a URL and a file over the chunk threshold — each used by a creative and
    an ad; ``teaser2`` repeats ``teaser``'s bytes (one upload)."""
    (folder / "vid").mkdir(exist_ok=True)
    (folder / "vid" / "teaser.mp4").write_bytes(mp4(300_000, seed=1))
    (folder / "vid" / "teaser2.mp4").write_bytes(mp4(300_000, seed=1))
    (folder / "vid" / "long.mp4").write_bytes(mp4(big, seed=2))
    videos = {
        "teaser": {"file": "vid/teaser.mp4"},
        "teaser2": {"file": "vid/teaser2.mp4"},
        "hosted": {"url": "https://cdn.example.com/hosted.mp4", "name": "Hosted"},
        "long": {"file": "vid/long.mp4"},
    }
    creatives = {key: video_creative(f"C-{key}", key) for key in videos}
    ads = [{"name": f"Ad {key}", "creative": key} for key in videos]
    task = {
        "type": "create",
        "key": "launch",
        "videos": videos,
        "creatives": creatives,
        "campaigns": [campaign("Videos", ad_sets=[adset("All", ads=ads)])],
        **(extra or {}),
    }
    job = {"version": 1, "job_id": "videos-1", "account_id": account, "tasks": [task]}
    return write(folder / "job.yaml", yaml.safe_dump(job, sort_keys=False))


def advideo_posts(sim: Any) -> list[Any]:
    return [c for c in sim.server.core.calls if c.method == "POST" and c.path.endswith("/advideos")]


def creatives_by_name(sim: Any) -> dict[str, dict[str, Any]]:
    return {strip_key(n.data["name"]): n.data for n in sim.nodes("adcreative")}


async def test_three_videos_uploaded_by_url_source_and_chunks_then_used_by_their_creatives(
    start_sim: Any, tmp_path: Path
) -> None:
    sim = await start_sim(video_chunk_bytes=4 * MB)
    report = await sim.run(load_job(video_job(tmp_path, sim.act)))
    bad = [(o.op_id, o.reason) for o in report.outcomes if o.state.value != "succeeded"]
    assert not bad
    videos = {n.id: n.data for n in sim.nodes("advideo")}
    assert len(videos) == 3  # teaser and teaser2 are one content: one upload
    by_way = {data["uploaded_as"]: vid for vid, data in videos.items()}
    assert set(by_way) == {"source", "url", "chunked"}
    assert videos[by_way["chunked"]]["file_size"] == 12 * MB
    phases = [entry["phase"] for entry in upload_log(sim.server.core)]
    assert sorted(phases) == ["finish", "source", "start", "transfer", "transfer", "transfer", "url"]
    creatives = creatives_by_name(sim)
    used = {name: data["object_story_spec"]["video_data"]["video_id"] for name, data in creatives.items()}
    assert used == {
        "C-teaser": by_way["source"],
        "C-teaser2": by_way["source"],
        "C-hosted": by_way["url"],
        "C-long": by_way["chunked"],
    }
    for data in videos.values():  # every video carries the job's key in its name and title
        assert data["title"] == data["name"] and "[be:" in data["title"]
    assert videos[by_way["url"]]["title"].startswith("Hosted [")
    details = report.tasks[0].details["videos"]
    assert details["uploaded"] == 3 and details["deduplicated"] == 1 and details["chunked"] == 1


class FinishLost(HostileFront):
    """Forwards everything; answers HTTP 500 to the first ``times`` batches that carry ``marker`` — after the
    simulator ran them (the video committed, the answer lost)."""

    def __init__(self, upstream: str, marker: bytes, times: int = 1) -> None:
        super().__init__(upstream, "text500_after")
        self.marker, self.left = marker, times

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        text = unquote_to_bytes(unquote_to_bytes(body.replace(b"+", b" ")).replace(b"+", b" "))
        if self.left > 0 and self.marker in text:
            self.left -= 1
            return await self._mangle(request, body)
        return _answer(await self._forward(request, body))


@pytest.mark.parametrize(
    ("marker", "way"),
    [(b"upload_phase=finish", "chunked"), (b'filename="teaser.mp4"', "source"), (b"file_url=", "url")],
)
async def test_a_5xx_after_the_server_made_the_video_is_reconciled_by_key_not_sent_again(
    start_sim: Any, tmp_path: Path, marker: bytes, way: str
) -> None:
    """The server made the video (a finish, a source upload, a file_url) but the answer is an HTTP 500: the
    outcome is unknown, so the account's videos are searched for the key before anything is sent again."""
    sim = await start_sim(video_chunk_bytes=4 * MB)
    front = await FinishLost(sim.server.url, marker).start()
    try:
        async with sim.engine(graph_url=front.url) as engine:
            report = await run_job(engine, load_job(video_job(tmp_path, sim.act)))
    finally:
        await front.stop()
    assert front.left == 0  # the answer was lost once
    bad = [(o.op_id, o.reason) for o in report.outcomes if o.state.value != "succeeded"]
    # the lost answer's op itself failed as unknown; the lookup that followed found the video
    assert all("not sent again" in (reason or "") or "duplicate" in (reason or "") for _, reason in bad), bad
    videos = {data["uploaded_as"]: vid for vid, data in ((n.id, n.data) for n in sim.nodes("advideo"))}
    assert len(sim.nodes("advideo")) == 3 and set(videos) == {"source", "url", "chunked"}
    phases = [entry["phase"] for entry in upload_log(sim.server.core)]
    assert phases.count({"chunked": "finish", "source": "source", "url": "url"}[way]) == 1
    # reconciled by the video's key, never with an image-style hash lookup (refused with 100 before)
    refused_reads = [c for c in sim.server.core.calls if c.method == "GET" and c.status != 200]
    assert not refused_reads, [(c.path, c.error_code) for c in refused_reads]
    creatives = creatives_by_name(sim)
    assert len(creatives) == 4 and len(sim.nodes("ad")) == 4
    want = {"C-teaser": "source", "C-teaser2": "source", "C-hosted": "url", "C-long": "chunked"}
    for name, how in want.items():
        assert creatives[name]["object_story_spec"]["video_data"]["video_id"] == videos[how]


async def test_creatives_wait_until_their_videos_are_processed_and_the_wait_is_logged(
    start_sim: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Processing takes 10 virtual minutes (at 2,000 virtual seconds per second): no creative is created
    before its video reads ready, and the wait says why and when it looks again."""
    sim = await start_sim(video_chunk_bytes=4 * MB, video_processing_s=600, time_scale=2000)
    caplog.set_level(logging.INFO, logger="bulk_engine.videos")
    events: list[Any] = []
    async with BulkEngine(sim.engine().config, clock=ScaledClock(2000), observer=events.append) as engine:
        report = await run_job(engine, load_job(video_job(tmp_path, sim.act, big=9 * MB)))
    assert report.counts["failed"] == report.counts["skipped"] == 0
    ready = {n.id: n.data["ready_time"] for n in sim.nodes("advideo")}
    assert len(ready) == 3
    for creative in sim.nodes("adcreative"):
        video_id = creative.data["object_story_spec"]["video_data"]["video_id"]
        assert creative.created_at >= ready[video_id]
    waits = [r.getMessage() for r in caplog.records if "still processing" in r.getMessage()]
    assert waits and all("next check in" in w for w in waits)
    shown = [e for e in events if isinstance(e, Waiting) and "still processing" in e.reason]
    assert len(shown) == len(waits) and all(e.seconds > 0 and e.account_id == sim.act for e in shown)
    assert report.tasks[0].details["videos"]["processing_wait_s"] >= 600


async def test_a_video_that_fails_processing_fails_its_creatives_and_skips_their_ads(
    start_sim: Any, tmp_path: Path
) -> None:
    sim = await start_sim(video_chunk_bytes=4 * MB, video_error_titles=("Hosted",))
    report = await sim.run(load_job(video_job(tmp_path, sim.act)))
    states = {o.op_id: (o.state.value, o.reason or "") for o in report.outcomes}
    state, reason = states["launch/cr:hosted"]
    assert state == "failed" and "status.video_status=error" in reason
    ad = next(op for op, (_, why) in states.items() if "its creative was not created" in why)
    assert states[ad][0] == "skipped"
    assert sorted(creatives_by_name(sim)) == ["C-long", "C-teaser", "C-teaser2"]
    assert len(sim.nodes("ad")) == 3


def cli_run(
    info: dict[str, Any], job: Path, journal: Path, kill_at: tuple[str, str] | None
) -> tuple[int | None, list[str]]:
    """``bulk-engine run JOB --journal J --log-format json``, SIGKILLed at the first JSON line of event
    ``kill_at[1]`` once a line's ``op_id`` contained ``kill_at[0]`` (``None``: runs to the end). Returns the
    exit code (``None``: killed) and the op ids of the lines seen."""
    args = ["run", str(job), "--graph-url", info["url"], "--journal", str(journal), "--log-format", "json"]
    args += ["--report", str(journal) + ".report.json"]
    kill = None
    if kill_at is not None:
        part, kind = kill_at
        armed = False

        def kill(event: dict[str, Any]) -> bool:
            nonlocal armed
            armed = armed or part in str(event.get("op_id") or "")
            return armed and event.get("event") == kind

    code, events = run_killed(args, info["access_token"], journal.parent / "cli.stderr", kill)
    return code, [str(event.get("op_id") or "") for event in events]


@pytest.mark.graph_simulator(video_chunk_bytes=4 * MB, faults={"latency_ms": 60})
@pytest.mark.parametrize(
    "kill_at",
    [("/s1/t0@0", "batch_sent"), ("/s1/finish", "operation"), ("/find", "batch_sent"), ("/s1/t0@0", "gone")],
)
def test_killed_mid_upload_the_same_run_again_finishes_without_duplicate_videos(
    graph_simulator: Any, tmp_path: Path, kill_at: tuple[str, str]
) -> None:
    """The CLI is SIGKILLed mid chunked transfer (the next chunk's request on its way), right after the finish
    or while the first uploads (source, file_url, start) are on their way; the same ``run`` again continues from the
    journal: the session and the offset reached survive (no chunk that had answered is sent twice), every
    video is in the library once, and every creative points at its own."""
    info = graph_simulator.info()
    job = video_job(tmp_path, info["ad_account_ids"][0])
    journal = tmp_path / "journal.db"
    gone = kill_at[1] == "gone"  # the server forgets the session meanwhile: the resumed run starts another
    code, _ = cli_run(info, job, journal, (kill_at[0], "batch_sent") if gone else kill_at)
    assert code is None, (tmp_path / "cli.stderr").read_text()[-2000:]
    if gone:
        graph_simulator.run(lambda core: forget_upload_sessions(core))
    before = graph_simulator.run(lambda core: [dict(e) for e in upload_log(core)])
    code, _ = cli_run(info, job, journal, None)
    assert code == 0, (tmp_path / "cli.stderr").read_text()[-3000:]

    def facts(core: Any) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
        videos = {n.id: n.data for n in core.store.nodes("advideo")}
        creatives = {strip_key(n.data["name"]): n.data for n in core.store.nodes("adcreative")}
        return videos, creatives, [dict(e) for e in upload_log(core)]

    videos, creatives, log = graph_simulator.run(facts)
    assert len(videos) == 3 and len({v["title"] for v in videos.values()}) == 3
    by_way = {data["uploaded_as"]: vid for vid, data in videos.items()}
    want = {"C-teaser": "source", "C-teaser2": "source", "C-hosted": "url", "C-long": "chunked"}
    assert {
        name: data["object_story_spec"]["video_data"]["video_id"] for name, data in creatives.items()
    } == {name: by_way[how] for name, how in want.items()}
    after = log[len(before) :]
    sessions = {e["session"] for e in log if e["phase"] == "transfer"}
    if gone:  # 6001 for the forgotten session: a second one carried the whole file
        assert len(sessions) == 2 and sum(1 for e in after if e["phase"] == "start") == 1
        [new] = sessions - {e["session"] for e in before if e["phase"] == "transfer"}
        assert sum(e["bytes"] for e in log if e["phase"] == "transfer" and e["session"] == new) == 12 * MB
    elif kill_at[0].startswith("/s1/t"):  # the resumed run continued the killed run's session
        assert len(sessions) == 1 and not any(e["phase"] == "start" for e in after)
        sent = [e["start_offset"] for e in log if e["phase"] == "transfer"]
        assert (
            sorted(set(sent)) == [0, 4 * MB, 8 * MB] and len(sent) <= 4
        )  # at most the chunk in flight again
    assert sum(1 for e in log if e["phase"] == "finish") <= 2


@pytest.mark.graph_simulator()
def test_bad_video_files_are_refused_before_any_call_with_exit_2(
    graph_simulator: Any, tmp_path: Path
) -> None:
    info = graph_simulator.info()
    (tmp_path / "notes.mp4").write_bytes(b"these are meeting notes, not a video" * 10)
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "ok.mp4").write_bytes(mp4(4096))
    videos = {
        "notes": {"file": "notes.mp4"},
        "empty": {"file": "empty.mp4"},
        "gone": {"file": "missing.mp4"},
        "ftp": {"url": "ftp://cdn.example.com/a.mp4"},
        "both": {"file": "ok.mp4", "url": "https://cdn.example.com/a.mp4"},
        "b64": {"bytes_b64": base64.b64encode(b"GIF89a" + bytes(40)).decode()},
    }
    creatives = {"c": video_creative("C", "unknown"), "ok": video_creative("OK", "notes")}
    job = {
        "account_id": info["ad_account_ids"][0],
        "tasks": [{"type": "create", "videos": videos, "creatives": creatives}],
    }
    path = write(tmp_path / "job.yaml", yaml.safe_dump(job, sort_keys=False))
    env = {k: v for k, v in os.environ.items() if not k.startswith("META_")}
    env["META_ACCESS_TOKEN"] = info["access_token"]
    command = [sys.executable, "-m", "bulk_engine", "run", str(path), "--graph-url", info["url"]]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 2, done.stderr
    rules = {
        "video.not_video": ("videos.notes.file", "352"),
        "video.empty": ("videos.empty.file", "382"),
        "video.missing": ("videos.gone.file", "100"),
        "video.url": ("videos.ftp.url", "389"),
        "video.source": ("videos.both", "100"),
        "create.video_key": ("creatives.c.object_story_spec.video_data.video", ""),
    }
    lines = done.stderr.splitlines()
    for rule, (field, code) in rules.items():
        [line] = [line for line in lines if f"(rule {rule})" in line and f"].{field}" in line]
        assert "job.yaml:" in line and field in line and (not code or f"[Graph code {code}]" in line), line
    assert any("videos.b64.bytes_b64" in line and "video.not_video" in line for line in lines)
    assert graph_simulator.run(lambda core: len(core.calls)) == 0


async def test_a_dry_run_uploads_no_video_and_says_why(start_sim: Any, tmp_path: Path) -> None:
    sim = await start_sim()
    report = await sim.run(
        load_job(video_job(tmp_path, sim.act, big=9 * MB)), CompileContext(validate_only=True)
    )
    assert upload_log(sim.server.core) == [] and sim.nodes("advideo") == []
    reasons = {o.op_id: o.reason or "" for o in report.outcomes if o.state.value == "skipped"}
    uploads = [op_id for op_id in reasons if "/vid:" in op_id]
    assert len(uploads) == 3 and all("no validate_only for video uploads" in reasons[u] for u in uploads)
    assert "its video 'teaser' has no id" in reasons["launch/cr:teaser"]
    assert report.counts["failed"] == 0


async def test_job_level_videos_serve_every_create_task_once_per_account(
    start_sim: Any, tmp_path: Path
) -> None:
    """Two tasks use the job's ``teaser``: it is uploaded by the first and found by its key by the second
    (one video in the account); a task's own key of the same name wins."""
    sim = await start_sim()
    (tmp_path / "teaser.mp4").write_bytes(mp4(50_000, seed=3))
    (tmp_path / "own.mp4").write_bytes(mp4(50_000, seed=4))
    tasks = [
        {"type": "create", "key": "a", "creatives": {"c": video_creative("A", "teaser")}},
        {"type": "create", "key": "b", "creatives": {"c": video_creative("B", "teaser")}},
        {
            "type": "create",
            "key": "c",
            "videos": {"teaser": {"file": "own.mp4"}},
            "creatives": {"c": video_creative("C", "teaser")},
        },
    ]
    job = {"account_id": sim.act, "videos": {"teaser": {"file": "teaser.mp4"}}, "tasks": tasks}
    report = await sim.run(load_job(write(tmp_path / "job.json", json.dumps(job))))
    assert report.counts["failed"] == report.counts["skipped"] == 0
    assert len(sim.nodes("advideo")) == 2
    used = {
        name: data["object_story_spec"]["video_data"]["video_id"]
        for name, data in creatives_by_name(sim).items()
    }
    assert used["A"] == used["B"] != used["C"]
    assert (
        report.task("b").details["videos"]["reused"] == 1
        and report.task("a").details["videos"]["uploaded"] == 1
    )


async def test_a_base64_video_is_uploaded_as_a_source_part(start_sim: Any, tmp_path: Path) -> None:
    sim = await start_sim()
    data = mp4(20_000, seed=9)
    task = {
        "type": "create",
        "videos": {"clip": {"bytes_b64": base64.b64encode(data).decode(), "name": "Clip"}},
        "creatives": {"c": video_creative("C", "clip")},
    }
    report = await sim.run({"tasks": [task]})
    assert report.counts["failed"] == 0
    [video] = sim.nodes("advideo")
    assert video.data["uploaded_as"] == "source" and video.data["file_size"] == len(data)
    assert video.data["title"].startswith("Clip [be:")
