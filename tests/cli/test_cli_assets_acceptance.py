"""Issue 15's acceptance test, end to end through the CLI against the simulator (its "Tests and benchmark").

One job built from a CSV (``ads_csv:``): 203 ads over 200 generated PNGs (some identical) and 3 videos — a
small file (``source``), a URL (``file_url``) and a 12 MB file (chunked in 4 MB transfers). ``bulk-engine
run`` is SIGKILLed twice at points seeded by ``ASSETS_ACCEPTANCE_SEED`` (default 15) — mid chunked transfer
(the next chunk on its way), then while image batches are in flight — and the same command with the same
journal finishes the job: each content is in the library once (counted in the simulator's store), every
creative points at its own row's asset (the file's MD5 / the video made from it), every operation ended
succeeded. Bad files of a sheet (missing, empty, not an image / not a video) are refused before any call, with
exit 2 at the CSV's ``file:line``.

Bounded: 60 ms of simulated latency per request (so batches are in flight when the kill comes), video
processing of 40 virtual seconds at 400 virtual seconds per wall second (``--time-scale``), no sleeps; the
subprocesses have watchdogs.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cli_support import ROOT, cli_env, sheet_job
from killed_cli import run_killed
from pngs import png

from bulk_engine.cli.resume import complete_recovered_videos, unfinished_video_tasks
from bulk_engine.persistence.keys import strip_key
from bulk_engine.results import JobResult, Outcome, OutcomeState
from bulk_engine.simulator.videos import upload_log

MB = 1024 * 1024
SEED = int(os.environ.get("ASSETS_ACCEPTANCE_SEED", "15"))
IMAGES, DISTINCT = 200, 170  # 30 rows repeat another row's bytes
SCALE = 400.0
HEADER = [
    "Campaign Name",
    "Ad Set Name",
    "Ad Name",
    "Body",
    "Title",
    "Website URL",
    "Call to Action",
    "Image File",
    "Video File",
    "Video URL",
]
HOSTED = "https://cdn.example.com/hosted.mp4"


def mp4(size: int, seed: int) -> bytes:
    """Bytes a sniffer takes for an MP4 (an ``ftyp`` box), padded to ``size``; ``seed`` makes contents differ."""
    head = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"
    return (head + bytes([seed % 251]) * 64 + b"\x00\x00\x00\x08free" + bytes(size))[:size]


def image_row(i: int, file: str) -> list[str]:
    return [
        f"Launch C{i % 2}",
        f"S{i % 4}",
        f"Ad {i}",
        f"Text {i}",
        f"Head {i}",
        f"https://e.com/{i}",
        "",
        file,
        "",
        "",
    ]


def video_row(name: str, file: str = "", url: str = "") -> list[str]:
    return ["Launch V", "Videos", name, "Watch", name, "https://e.com/v", "WATCH_MORE", "", file, url]


def launch(folder: Path, account: str) -> tuple[Path, dict[str, str]]:
    """The job of the module docstring; returns it and, per video ad, how its video must have been uploaded."""
    (folder / "img").mkdir()
    (folder / "vid").mkdir()
    rows = []
    for i in range(IMAGES):
        (folder / "img" / f"p{i}.png").write_bytes(png(3, 2, seed=i % DISTINCT))
        rows.append(image_row(i, f"img/p{i}.png"))
    (folder / "vid" / "teaser.mp4").write_bytes(mp4(300_000, seed=1))
    (folder / "vid" / "long.mp4").write_bytes(mp4(12 * MB, seed=2))
    rows += [video_row("V teaser", file="vid/teaser.mp4"), video_row("V long", file="vid/long.mp4")]
    rows.append(video_row("V hosted", url=HOSTED))
    ways = {"V teaser": "source", "V long": "chunked", "V hosted": "url"}
    return sheet_job(folder, account, HEADER, rows, "assets-acceptance"), ways


def cli_run(
    info: dict[str, Any], job: Path, journal: Path, kill: tuple[str, str, int] | None
) -> tuple[int | None, list[dict[str, Any]]]:
    """``bulk-engine run JOB --journal J --log-format json --time-scale`` as a subprocess.

    ``kill = (op_id_part, event, n)``: once an ``operation`` line's op id contained ``op_id_part`` (the first
    transfer, an image lookup), SIGKILL at the n-th following line of ``event`` (``"batch_sent"``, or
    ``"create_image"`` for an image upload's outcome). Returns the exit code (``None``: killed) and the JSON lines seen.
    """
    args = ["run", str(job), "--graph-url", info["url"], "--journal", str(journal), "--log-format", "json"]
    args += ["--time-scale", f"{SCALE:g}", "--report", str(journal) + ".report.json"]
    kill_when = None
    if kill is not None:
        part, kind, n = kill
        armed, count = False, 0

        def kill_when(event: dict[str, Any]) -> bool:
            nonlocal armed, count
            is_upload = event.get("event") == "operation" and event.get("kind") == "create_image"
            armed = armed or (event.get("event") == "operation" and part in str(event.get("op_id")))
            if armed and (event.get("event") == kind or (kind == "create_image" and is_upload)):
                count += 1
            return count >= n

    return run_killed(args, info["access_token"], journal.parent / "cli.stderr", kill_when, timeout_s=90)


def store_facts(core: Any) -> dict[str, Any]:
    """What the simulator holds and was asked: images, videos, creatives by name (a sheet's creative is named
    after its ad), upload calls."""
    return {
        "images": [str(n.data["hash"]) for n in core.store.nodes("adimage")],
        "videos": {n.id: dict(n.data) for n in core.store.nodes("advideo")},
        "creatives": {strip_key(n.data["name"]): n.data for n in core.store.nodes("adcreative")},
        "image_posts": sum(
            1 for c in core.calls if c.method == "POST" and c.path.endswith("/adimages") and c.status == 200
        ),
        "ads": len(list(core.store.nodes("ad"))),
        "uploads": [dict(e) for e in upload_log(core)],
    }


def md5_of(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.mark.graph_simulator(
    quota_override=100_000,
    video_chunk_bytes=4 * MB,
    video_processing_s=40,
    time_scale=SCALE,
    faults={"latency_ms": 60},
)
def test_a_csv_of_200_images_and_3_videos_killed_twice_mid_upload_finishes_exactly_once(
    graph_simulator: Any, tmp_path: Path
) -> None:
    info = graph_simulator.info()
    act = info["ad_account_ids"][0]

    # --- bad files: refused before any call, exit 2, at the sheet's file:line ----------------------------
    bad = tmp_path / "bad"
    (bad / "media").mkdir(parents=True)
    (bad / "media" / "empty.png").write_bytes(b"")
    (bad / "media" / "notes.png").write_text("meeting notes, not an image\n" * 20)
    (bad / "media" / "notes.mp4").write_text("meeting notes, not a video\n" * 60)
    (bad / "media" / "empty.mp4").write_bytes(b"")
    (bad / "media" / "ok.png").write_bytes(png(seed=1))
    rows = [
        image_row(0, "media/ok.png"),
        image_row(1, "media/missing.png"),  # line 3
        image_row(2, "media/empty.png"),  # line 4
        image_row(3, "media/notes.png"),  # line 5
        video_row("V missing", file="media/missing.mp4"),  # line 6
        video_row("V empty", file="media/empty.mp4"),  # line 7
        video_row("V notes", file="media/notes.mp4"),  # line 8
    ]
    job = sheet_job(bad, act, HEADER, rows, "assets-bad")
    command = [sys.executable, "-m", "bulk_engine", "run", str(job), "--graph-url", info["url"]]
    done = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, env=cli_env(info["access_token"]), timeout=60
    )
    assert done.returncode == 2, done.stdout + done.stderr
    sheet = bad / "ads.csv"
    for line, column, rule in [
        (3, "Image File", "image.missing"),
        (4, "Image File", "image.empty"),
        (5, "Image File", "image.not_image"),
        (6, "Video File", "video.missing"),
        (7, "Video File", "video.empty"),
        (8, "Video File", "video.not_video"),
    ]:
        found = [e for e in done.stderr.splitlines() if e.strip().startswith(f"{sheet}:{line}: ")]
        assert any(f"ads_csv.{column}" in e and f"(rule {rule})" in e for e in found), (
            f"line {line}:\n{done.stderr}"
        )
    assert graph_simulator.run(lambda core: len(core.calls)) == 0  # nothing was sent

    # --- the launch, killed mid chunked transfer, then while images upload, then run to its end -----------
    folder = tmp_path / "launch"
    folder.mkdir()
    job, ways = launch(folder, act)
    journal = folder / "journal.db"
    rng = random.Random(SEED)
    chunk = rng.randrange(2)  # killed as the chunk after transfer t<chunk> goes out
    # image batches go out together: killed as the n-th leaves, or once n uploads answered (all landed)
    image_kill = rng.choice([("batch_sent", rng.randint(1, 3)), ("create_image", rng.randint(1, 40))])
    code, _ = cli_run(info, job, journal, (f"/s1/t{chunk}@", "batch_sent", 1))
    assert code is None, (folder / "cli.stderr").read_text()[-3000:]
    first = graph_simulator.run(store_facts)
    phases = [e["phase"] for e in first["uploads"]]
    assert first["images"] == [] and "finish" not in phases  # killed mid transfer, before any image
    assert phases.count("start") == 1 and 1 <= phases.count("transfer") <= 3, phases

    last_lookup = f"img-lookup/{(DISTINCT - 1) // 50}"  # hashes looked up 50 a call: armed once all answered
    code, events = cli_run(info, job, journal, (last_lookup, *image_kill))
    assert code is None, (folder / "cli.stderr").read_text()[-3000:]
    uploads = sum(1 for e in events if e["event"] == "operation" and e.get("kind") == "create_image")
    second = graph_simulator.run(store_facts)
    assert uploads < DISTINCT and second["ads"] < IMAGES + 3, (image_kill, uploads)  # killed mid-upload
    assert image_kill[0] == "create_image" or len(second["images"]) < DISTINCT

    code, _ = cli_run(info, job, journal, None)
    assert code == 0, (folder / "cli.stderr").read_text()[-3000:]

    facts = graph_simulator.run(store_facts)
    # no duplicates: each content once in the library, and each was executed once (none re-sent)
    assert len(facts["images"]) == len(set(facts["images"])) == DISTINCT
    assert facts["image_posts"] == DISTINCT
    videos = facts["videos"]
    transfers = [e for e in facts["uploads"] if e["phase"] == "transfer"]
    assert len({e["session"] for e in transfers}) == 1  # the killed run's session was continued
    assert sorted({e["start_offset"] for e in transfers}) == [0, 4 * MB, 8 * MB] and len(transfers) <= 4
    assert len(videos) == 3 and len({v["title"] for v in videos.values()}) == 3
    by_way = {data["uploaded_as"]: vid for vid, data in videos.items()}
    assert set(by_way) == {"source", "chunked", "url"}
    assert videos[by_way["chunked"]]["file_size"] == 12 * MB
    # every creative points at its own row's asset
    creatives = facts["creatives"]
    assert len(creatives) == IMAGES + 3 and facts["ads"] == IMAGES + 3
    for i in range(IMAGES):
        link = creatives[f"Ad {i}"]["object_story_spec"]["link_data"]
        assert link["image_hash"] == md5_of(folder / "img" / f"p{i}.png"), i
    for ad, way in ways.items():
        assert creatives[ad]["object_story_spec"]["video_data"]["video_id"] == by_way[way], ad
    # every operation ended succeeded (the last run's report covers the whole job, from the journal)
    report = json.loads((folder / "journal.db.report.json").read_text())
    assert report["counts"]["failed"] == report["counts"]["skipped"] == 0, report["counts"]
    states = {op["op_id"]: op["state"] for op in report["operations"]}
    assert set(states.values()) == {"succeeded"}
    assert sum(1 for op in report["operations"] if op["kind"] == "create_ad") == IMAGES + 3
    details = report["tasks"][0]["details"]
    assert details["images"]["deduplicated"] == IMAGES - DISTINCT
    assert details["videos"]["chunked"] == 1 and details["videos"]["failed"] == 0


@pytest.mark.graph_simulator(video_chunk_bytes=4 * MB, faults={"latency_ms": 60})
def test_resume_refuses_a_job_stopped_mid_video_upload_and_names_run_which_finishes_it(
    graph_simulator: Any, tmp_path: Path
) -> None:
    """``bulk-engine resume JOB_ID`` cannot plan the video flow's next rounds nor the creatives that wait for
    them (the journal holds neither the job file nor the videos): exit 2 naming ``bulk-engine run``, nothing
    sent. The same ``run`` finishes the job; once it has, ``resume`` replays it all from the journal."""
    info = graph_simulator.info()
    (tmp_path / "vid").mkdir()
    (tmp_path / "vid" / "teaser.mp4").write_bytes(mp4(300_000, seed=5))
    (tmp_path / "vid" / "long.mp4").write_bytes(mp4(12 * MB, seed=6))
    rows = [video_row("V teaser", file="vid/teaser.mp4"), video_row("V long", file="vid/long.mp4")]
    job = sheet_job(tmp_path, info["ad_account_ids"][0], HEADER, rows, "resume-videos")
    journal = tmp_path / "journal.db"
    code, _ = cli_run(info, job, journal, ("/s1/t0@", "batch_sent", 1))
    assert code is None, (tmp_path / "cli.stderr").read_text()[-3000:]
    calls = graph_simulator.run(lambda core: len(core.calls))
    flags = ["--journal", str(journal), "--graph-url", info["url"]]
    refused = subprocess.run(
        [sys.executable, "-m", "bulk_engine", "resume", "resume-videos", *flags],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=cli_env(info["access_token"]),
        timeout=60,
    )
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "task(s) 'sheet' uploaded videos" in refused.stderr
    assert f"`bulk-engine run JOB_FILE --journal {journal}`" in refused.stderr
    assert graph_simulator.run(lambda core: len(core.calls)) == calls  # nothing sent

    assert cli_run(info, job, journal, None)[0] == 0, (tmp_path / "cli.stderr").read_text()[-3000:]
    facts = graph_simulator.run(store_facts)
    assert len(facts["videos"]) == 2 and len(facts["creatives"]) == 2 and facts["ads"] == 2
    calls = graph_simulator.run(lambda core: len(core.calls))
    again = subprocess.run(
        [sys.executable, "-m", "bulk_engine", "resume", "resume-videos", *flags],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=cli_env(info["access_token"]),
        timeout=60,
    )
    assert again.returncode == 0, again.stdout + again.stderr
    assert graph_simulator.run(lambda core: len(core.calls)) == calls  # all of it answered from the journal


def test_a_video_flow_counts_as_finished_once_a_later_engine_job_of_its_task_started() -> None:
    """Start order decides: a create task's rounds come before its other engine jobs, a clone's after the
    reads of the source and before its creates."""
    create = ["j/t/videos/0", "j/t/videos/1", "j/t/0", "j/t/1"]
    clone = ["j/c/0", "j/c/1", "j/c/videos/0", "j/c/videos/1"]
    assert unfinished_video_tasks("j", create) == []
    assert unfinished_video_tasks("j", create[:2]) == ["t"]
    assert unfinished_video_tasks("j", clone) == ["c"]
    assert unfinished_video_tasks("j", [*clone, "j/c/2", "j/other/videos/0"]) == ["other"]
    assert unfinished_video_tasks("j", ["j"]) == []


@pytest.mark.graph_simulator(video_chunk_bytes=4 * MB)
def test_progress_expects_the_video_uploads_and_status_polls_it_then_does(
    graph_simulator: Any, tmp_path: Path
) -> None:
    """``job_started`` announces the video flow's operations (a lookup by key and a poll per video: ``read``,
    with the image library lookup; one ``source`` upload, start + 3 transfers + finish for 12 MB:
    ``create_other``) and the last progress line shows every kind done as expected — none ``null``."""
    info = graph_simulator.info()
    (tmp_path / "vid").mkdir()
    (tmp_path / "img").mkdir()
    (tmp_path / "vid" / "teaser.mp4").write_bytes(mp4(300_000, seed=7))
    (tmp_path / "vid" / "long.mp4").write_bytes(mp4(12 * MB, seed=8))
    (tmp_path / "img" / "p.png").write_bytes(png(seed=8))
    rows = [video_row("V teaser", file="vid/teaser.mp4"), video_row("V long", file="vid/long.mp4")]
    job = sheet_job(
        tmp_path, info["ad_account_ids"][0], HEADER, [*rows, image_row(0, "img/p.png")], "progress-videos"
    )
    code, events = cli_run(info, job, tmp_path / "journal.db", None)
    assert code == 0, (tmp_path / "cli.stderr").read_text()[-3000:]
    [started] = [e for e in events if e["event"] == "job_started"]
    expected = started["expected"]
    assert (expected["read"], expected["create_other"], expected["create_image"]) == (1 + 4, 1 + 5, 1)
    last = [e for e in events if e["event"] == "progress"][-1]
    assert last["kinds"] == {kind: {"done": n, "expected": n} for kind, n in expected.items()}
    assert last["done"] == last["expected"] == sum(expected.values())


def test_resume_reports_a_video_op_the_flow_recovered_as_the_run_did() -> None:
    """The journal keeps the failure of a chunk whose outcome was unknown (sent again as the next op); the
    video's poll read ``ready``, so resume reports it succeeded like the run's report — a video that never
    got there keeps its failure."""
    ok, failed = OutcomeState.SUCCEEDED, OutcomeState.FAILED
    made, lost = "t/vid:" + "a" * 32, "t/vid:u" + "b" * 32

    def outcome(op_id: str, state: OutcomeState, result: Any = None) -> Outcome:
        return Outcome(op_id, state, "act_1", "read" if "status" in op_id else "create_other", result=result)

    outcomes = (
        outcome(f"{made}/s1/t1@4194304", failed),
        outcome(f"{made}/s1/t2@4194304", ok, {"start_offset": 8, "end_offset": 8}),
        outcome(f"{made}/v42/status.0", ok, {"id": "42", "status": {"video_status": "ready"}}),
        outcome(f"{lost}/url.1", failed),
        outcome(f"{lost}/v43/status.0", ok, {"id": "43", "status": {"video_status": "processing"}}),
    )
    counts = {"succeeded": 3, "failed": 2, "skipped": 0}
    result = complete_recovered_videos(JobResult("j", outcomes, 0, 0, 0, 0, 0.0, counts=counts))
    states = {o.op_id: (o.state, o.result) for o in result.outcomes}
    assert states[f"{made}/s1/t1@4194304"] == (ok, {"video_id": "42"})
    assert states[f"{lost}/url.1"][0] is failed
    assert result.counts == {"succeeded": 4, "failed": 1, "skipped": 0}
