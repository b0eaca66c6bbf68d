"""Creative images in job files (issue 15): files, URLs and Base64 uploaded in multipart batches, deduplicated
by content and against the account's library, referenced by key, and rejected before any call when bad."""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from killed_cli import run_killed
from ops_support import PAGE, adset, campaign, write
from pngs import png

from bulk_engine import Operation, OpKind
from bulk_engine.config import RetryConfig
from bulk_engine.operations import CompileContext, JobFileError, load_job, parse_job, run_job
from bulk_engine.persistence.codec import decode_plan, plan_text
from bulk_engine.persistence.keys import strip_key

DISTINCT = 160  # 200 image keys over 160 contents: 40 keys repeat another key's bytes
KEYS = 200
LOOKUPS = 4  # adimages?hashes=[...] reads of 50 hashes for the 160 distinct contents
IN_LIBRARY = 10  # contents uploaded to the account before the job runs: found by hash, not re-sent


def link_creative(name: str, image: str, **link: Any) -> dict[str, Any]:
    return {
        "name": name,
        "object_story_spec": {
            "page_id": PAGE,
            "link_data": {"link": f"https://example.com/{name}", "message": name, "image": image, **link},
        },
    }


def image_job(folder: Path, account: str, keys: int = KEYS, distinct: int = DISTINCT) -> Path:
    """``keys`` images in ``folder/img`` (file i holds content i % distinct), a creative and an ad for each."""
    (folder / "img").mkdir(exist_ok=True)
    images = {}
    for i in range(keys):
        (folder / "img" / f"p{i}.png").write_bytes(png(3, 2, seed=i % distinct))
        images[f"p{i}"] = {"file": f"img/p{i}.png"}
    creatives = {f"c{i}": link_creative(f"C{i}", f"p{i}") for i in range(keys)}
    ads = [{"name": f"Ad {i}", "creative": f"c{i}"} for i in range(keys)]
    task = {
        "type": "create",
        "key": "launch",
        "images": images,
        "creatives": creatives,
        "campaigns": [campaign("Images", ad_sets=[adset("All", ads=ads)])],
    }
    job = {"version": 1, "job_id": "images-1", "account_id": account, "tasks": [task]}
    return write(folder / "job.yaml", yaml.safe_dump(job, sort_keys=False))


def md5_of(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def adimage_posts(sim: Any) -> list[Any]:
    return [c for c in sim.server.core.calls if c.method == "POST" and c.path.endswith("/adimages")]


async def test_200_images_are_uploaded_once_per_content_and_every_creative_uses_its_own(
    start_sim: Any, tmp_path: Path
) -> None:
    sim = await start_sim(quota_override=100_000)  # ~560 calls: more than the development quota
    async with sim.engine() as engine:  # already in the library: the lookup by MD5 finds them
        await engine.run(
            [
                Operation(
                    op_id=f"pre{seed}",
                    method="POST",
                    path=f"{sim.act}/adimages",
                    params={"bytes": base64.b64encode(png(3, 2, seed=seed)).decode()},
                    account_id=sim.act,
                    kind=OpKind.CREATE_IMAGE,
                )
                for seed in range(IN_LIBRARY)
            ]
        )
    before = len(adimage_posts(sim))
    path = image_job(tmp_path, sim.act)
    report = await sim.run(load_job(path))
    assert report.counts == {
        "succeeded": LOOKUPS + (DISTINCT - IN_LIBRARY) + 2 * KEYS + 2,
        "failed": 0,
        "skipped": 0,
    }
    details = report.task("launch").details["images"]
    assert details == {
        "keys": KEYS,
        "uploaded": DISTINCT - IN_LIBRARY,
        "reused": IN_LIBRARY,
        "deduplicated": KEYS - DISTINCT,
        "by_url": 0,
        "upload_failures": 0,
    }
    assert len(adimage_posts(sim)) - before == DISTINCT - IN_LIBRARY  # each missing content sent once
    assert len(sim.nodes("adimage")) == DISTINCT
    creatives = {strip_key(n.data["name"]): n for n in sim.nodes("adcreative")}
    for i in range(KEYS):
        link = creatives[f"C{i}"].data["object_story_spec"]["link_data"]
        assert link["image_hash"] == md5_of(tmp_path / "img" / f"p{i}.png")
        assert "image" not in link
    assert len(sim.nodes("ad")) == KEYS
    # several images per multipart batch: far fewer HTTP requests than uploads
    upload_requests = {c.http_request for c in adimage_posts(sim)[before:]}
    assert len(upload_requests) <= (DISTINCT - IN_LIBRARY) // 10


async def test_a_second_run_reuses_every_image_and_sends_none(start_sim: Any, tmp_path: Path) -> None:
    sim = await start_sim()
    path = image_job(tmp_path, sim.act, keys=12, distinct=8)
    first = await sim.run(load_job(path))
    assert first.task("launch").details["images"]["uploaded"] == 8
    sent = len(adimage_posts(sim))
    again = await sim.run(load_job(path))  # no journal: the library lookup finds all 8 contents
    images = again.task("launch").details["images"]
    assert (images["uploaded"], images["reused"]) == (0, 8)
    assert len(adimage_posts(sim)) == sent
    assert len(sim.nodes("adimage")) == 8
    assert len(sim.nodes("ad")) == 12  # the creates themselves are found by their keys: nothing twice


async def test_urls_bytes_carousels_and_asset_feeds_resolve_to_the_documented_fields(
    start_sim: Any, tmp_path: Path
) -> None:
    sim = await start_sim()
    write_png = tmp_path / "a.png"
    write_png.write_bytes(png(seed=1))
    inline = png(seed=2)
    carousel = {
        "name": "Carousel",
        "object_story_spec": {
            "page_id": PAGE,
            "link_data": {
                "link": "https://example.com",
                "child_attachments": [
                    {"link": "https://example.com/1", "image": "a"},
                    {"link": "https://example.com/2", "image": "web"},
                ],
            },
        },
    }
    feed = {
        "name": "Feed",
        "asset_feed_spec": {
            "images": [{"image": "a"}, {"image": "inline"}],
            "bodies": [{"text": "Hi"}],
            "titles": [{"text": "T"}],
            "link_urls": [{"website_url": "https://example.com"}],
            "call_to_action_types": ["LEARN_MORE"],
            "ad_formats": ["SINGLE_IMAGE"],
        },
        "object_story_spec": {"page_id": PAGE},
    }
    task = {
        "type": "create",
        "images": {
            "a": {"file": "a.png", "name": "hero.png"},
            "web": {"url": "https://cdn.example.com/web.jpg"},
            "inline": {"bytes_b64": base64.b64encode(inline).decode(), "name": "inline"},
        },
        "creatives": {"carousel": carousel, "feed": feed, "plain": link_creative("Plain", "web")},
    }
    path = write(tmp_path / "job.json", json.dumps({"account_id": sim.act, "tasks": [task]}))
    report = await sim.run(load_job(path))
    assert report.counts["failed"] == 0 and report.counts["skipped"] == 0, report.outcomes
    by_name = {strip_key(n.data["name"]): n.data for n in sim.nodes("adcreative")}
    children = by_name["Carousel"]["object_story_spec"]["link_data"]["child_attachments"]
    assert children[0]["image_hash"] == hashlib.md5(write_png.read_bytes()).hexdigest()
    assert children[1]["picture"] == "https://cdn.example.com/web.jpg"
    assert [i.get("hash") for i in by_name["Feed"]["asset_feed_spec"]["images"]] == [
        hashlib.md5(write_png.read_bytes()).hexdigest(),
        hashlib.md5(inline).hexdigest(),
    ]
    assert by_name["Plain"]["object_story_spec"]["link_data"]["picture"] == "https://cdn.example.com/web.jpg"
    names = {n.data["hash"]: n.data["name"] for n in sim.nodes("adimage")}
    assert names[hashlib.md5(write_png.read_bytes()).hexdigest()] == "hero.png"
    assert report.task("t0").details["images"]["by_url"] == 1


BAD_FILES: dict[str, tuple[bytes | None, str]] = {
    "missing": (None, "image.missing"),
    "empty": (b"", "image.empty"),
    "text": (b"hello, not an image", "image.not_image"),
    "huge": (b"\x89PNG\r\n\x1a\n" + b"\x00" * (8 * 1024 * 1024), "image.too_large"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
async def test_bad_image_files_are_rejected_before_any_call(
    start_sim: Any, tmp_path: Path, case: str
) -> None:
    sim = await start_sim()
    content, rule = BAD_FILES[case]
    if content is not None:
        (tmp_path / "bad.png").write_bytes(content)
    (tmp_path / "good.png").write_bytes(png())
    text = (
        "version: 1\n"
        f"account_id: {sim.act}\n"
        "tasks:\n"
        "  - type: create\n"
        "    images:\n"
        "      good: {file: good.png}\n"
        "      bad:\n"
        "        file: bad.png\n"
        "    creatives:\n"
        f"      c: {json.dumps(link_creative('C', 'bad'))}\n"
    )
    path = write(tmp_path / "job.yaml", text)
    with pytest.raises(JobFileError) as caught:
        load_job(path)
    [issue] = caught.value.issues
    assert (issue.rule, issue.code, issue.field_path, issue.value) == (
        rule,
        100,
        "tasks[0].images.bad.file",
        "bad.png",
    )
    assert issue.file == str(path) and issue.line == 8
    assert str(issue).startswith(f"{path}:8:")
    assert sim.server.core.calls == []


@pytest.mark.parametrize(
    ("image", "rule", "field"),
    [
        ({"url": "ftp://example.com/a.png"}, "image.url", "tasks[0].images.x.url"),
        ({"bytes_b64": "**not base64**"}, "image.bytes_b64", "tasks[0].images.x.bytes_b64"),
        (
            {"bytes_b64": base64.b64encode(b"GIF? no").decode()},
            "image.not_image",
            "tasks[0].images.x.bytes_b64",
        ),
        ({"url": "https://a.example/x.png", "file": "x.png"}, "image.source", "tasks[0].images.x"),
    ],
)
def test_bad_image_sources_are_rules_with_graph_code_100(
    image: dict[str, str], rule: str, field: str
) -> None:
    job = {
        "account_id": "act_1",
        "tasks": [{"type": "create", "images": {"x": image}, "creatives": {"c": link_creative("C", "x")}}],
    }
    with pytest.raises(JobFileError) as caught:
        parse_job(job)
    [issue] = caught.value.issues
    assert (issue.rule, issue.code, issue.field_path) == (rule, 100, field)


def test_an_unknown_image_key_names_the_creative_field() -> None:
    job = {
        "account_id": "act_1",
        "tasks": [{"type": "create", "creatives": {"c": link_creative("C", "nope")}}],
    }
    with pytest.raises(JobFileError) as caught:
        parse_job(job)
    [issue] = caught.value.issues
    assert issue.rule == "create.image_key"
    assert issue.field_path == "tasks[0].creatives.c.object_story_spec.link_data.image"


def test_plans_and_reports_hold_hashes_and_paths_never_bytes(tmp_path: Path) -> None:
    path = image_job(tmp_path, "act_1", keys=3, distinct=3)
    spec = load_job(path)
    ops = list(spec.tasks[0].compile(spec.task_env(0, CompileContext())))
    uploads = [op for op in ops if op.kind.value == "create_image"]
    assert len(uploads) == 3
    for op in uploads:
        text, _ = plan_text(op)
        assert "PNG" not in text and len(text) < 600
        assert decode_plan(json.loads(text)) == op
        assert op.upload is not None and Path(op.upload.path or "").is_file()
    creative = next(op for op in ops if op.op_id == "launch/cr:c0")
    ref = creative.params["object_story_spec"]["link_data"]["image_hash"]
    assert (ref.op_id, ref.path) == (f"launch/img:{md5_of(tmp_path / 'img' / 'p0.png')}", "$.images.*.hash")


@pytest.mark.parametrize(("fault", "rate"), [("drop_after_commit_rate", 0.45), ("null_rate", 0.3)])
async def test_uploads_with_unknown_outcomes_are_looked_up_by_hash_not_sent_twice(
    start_sim: Any, tmp_path: Path, fault: str, rate: float
) -> None:
    """A dropped connection after the commit, or a ``null`` batch entry, leaves an upload's outcome unknown:
    the engine asks the library for its MD5 before anything is sent again (S003 §Batch Requests → Timeouts)."""
    sim = await start_sim(seed=5, faults={fault: rate}, quota_override=100_000)
    path = image_job(tmp_path, sim.act, keys=40, distinct=40)
    # which ops a fault hits depends on how answers interleave: retries enough that none runs out of them
    retry = RetryConfig(max_attempts=40, base_delay_s=0.0, max_delay_s=0.01)
    async with sim.engine(retry=retry) as engine:
        report = await run_job(engine, load_job(path))
    bad = [(o.op_id, o.reason) for o in report.outcomes if o.state.value != "succeeded"]
    assert not bad
    totals = report.to_result()
    assert totals.unknown_outcomes > 0 and totals.recovered > 0  # the faults hit, lookups found objects
    requests = {c.http_request for c in adimage_posts(sim)}
    assert len(requests) >= 2  # uploads went out in several batches, some of them answered with a fault
    assert len(sim.nodes("adimage")) == 40
    assert len(adimage_posts(sim)) == 40  # each content ran once: found by its hash, never uploaded again
    creatives = {strip_key(n.data["name"]): n for n in sim.nodes("adcreative")}
    assert len(creatives) == 40
    for i in range(40):
        link = creatives[f"C{i}"].data["object_story_spec"]["link_data"]
        assert link["image_hash"] == md5_of(tmp_path / "img" / f"p{i}.png")


def _matches(event: dict[str, Any], kind: str) -> bool:
    if kind == "upload_done":  # an upload's outcome: its batch was answered, others may be in flight
        return event.get("event") == "operation" and event.get("kind") == "create_image"
    return event.get("event") == kind


def cli_run(
    info: dict[str, Any],
    job: Path,
    journal: Path,
    kill_after: tuple[str, int] | None,
    resume: str | None = None,
) -> int | None:
    """``bulk-engine run JOB --journal J --log-format json`` (or ``resume JOB_ID``); SIGKILLed right after its
    n-th line of ``kill_after = (event, n)`` (``None``: runs to the end). Returns the exit code (``None``:
    killed)."""
    verb = ["resume", resume] if resume is not None else ["run", str(job)]
    args = [*verb, "--graph-url", info["url"], "--journal", str(journal), "--log-format", "json"]
    args += ["--report", str(journal) + ".report.json"]
    kill = None
    if kill_after is not None:
        kind, n = kill_after
        seen = itertools.count(1)

        def kill(event: dict[str, Any]) -> bool:
            return _matches(event, kind) and next(seen) >= n

    code, _ = run_killed(args, info["access_token"], journal.parent / "cli.stderr", kill)
    return code


@pytest.mark.graph_simulator(quota_override=100_000, faults={"latency_ms": 150})
@pytest.mark.parametrize(
    ("kill_after", "then"),
    [
        (("batch_sent", 2), "run"),
        (("upload_done", 1), "run"),
        (("upload_done", 30), "run"),
        (("upload_done", 1), "resume"),
    ],
)
def test_killed_mid_upload_the_job_finishes_without_duplicates(
    graph_simulator: Any, tmp_path: Path, kill_after: tuple[str, int], then: str
) -> None:
    """The CLI is killed while image batches are in flight (150 ms per request); the same ``run`` command
    again, or ``bulk-engine resume JOB_ID`` (the journal alone), finishes the job: every content is in the
    library once, it was executed once (a batch that landed is found by hash, not re-sent), and every
    creative points at its own image."""
    info = graph_simulator.info()
    act = info["ad_account_ids"][0]
    job = image_job(tmp_path, act, keys=60, distinct=50)
    journal = tmp_path / "journal.db"
    assert cli_run(info, job, journal, kill_after) is None, (tmp_path / "cli.stderr").read_text()[-2000:]
    print(
        "AFTER KILL",
        graph_simulator.run(
            lambda core: (len(list(core.store.nodes("adimage"))), len(list(core.store.nodes("adcreative"))))
        ),
    )
    assert cli_run(info, job, journal, None, resume="images-1" if then == "resume" else None) == 0

    def facts(core: Any) -> tuple[list[str], int, dict[str, Any], int]:
        images = [str(n.data["hash"]) for n in core.store.nodes("adimage")]
        posts = sum(
            1 for c in core.calls if c.method == "POST" and c.path.endswith("/adimages") and c.status == 200
        )
        creatives = {strip_key(n.data["name"]): n.data for n in core.store.nodes("adcreative")}
        return images, posts, creatives, len(list(core.store.nodes("ad")))

    images, posts, creatives, ads = graph_simulator.run(facts)
    report = json.loads((tmp_path / "journal.db.report.json").read_text())
    assert report["counts"]["failed"] == report["counts"]["skipped"] == 0
    # (seen in runs killed after an upload's outcome: 74-91 lookups by key or hash, most of them recovered)
    assert len(images) == len(set(images)) == 50
    assert posts == 50
    assert len(creatives) == 60 and ads == 60
    for i in range(60):
        link = creatives[f"C{i}"]["object_story_spec"]["link_data"]
        assert link["image_hash"] == md5_of(tmp_path / "img" / f"p{i}.png")


async def test_a_file_changed_after_validation_is_refused_not_uploaded_under_the_old_hash(
    start_sim: Any, tmp_path: Path
) -> None:
    sim = await start_sim()
    path = image_job(tmp_path, sim.act, keys=3, distinct=3)
    spec = load_job(path)  # MD5s computed here
    (tmp_path / "img" / "p1.png").write_bytes(png(3, 2, seed=99))  # edited before the upload is sent
    report = await sim.run(spec)
    [failed] = [o for o in report.outcomes if o.state.value == "failed"]
    assert failed.op_id.startswith("launch/img:") and "changed since the job was validated" in (
        failed.reason or ""
    )
    skipped = {o.op_id for o in report.outcomes if o.state.value == "skipped"}
    assert {"launch/cr:c1", "launch/c0/s0/a1"} <= skipped  # its creative and ad: skipped with the reason
    hashes = {n.data["hash"] for n in sim.nodes("adimage")}
    assert hashlib.md5(png(3, 2, seed=99)).hexdigest() not in hashes and len(hashes) == 2


async def test_a_dry_run_uploads_nothing_and_says_why(start_sim: Any, tmp_path: Path) -> None:
    sim = await start_sim()
    path = image_job(tmp_path, sim.act, keys=3, distinct=2)
    report = await sim.run(load_job(path), CompileContext(validate_only=True))
    assert adimage_posts(sim) == []
    reasons = {o.op_id: o.reason or "" for o in report.outcomes if o.state.value == "skipped"}
    uploads = [op_id for op_id in reasons if "/img:" in op_id]
    assert len(uploads) == 2 and all("no validate_only for image uploads" in reasons[u] for u in uploads)
    assert "its image is uploaded by this job" in reasons["launch/cr:c0"]
    assert report.counts["failed"] == 0


async def test_job_level_images_serve_every_create_task_and_are_checked_once(
    start_sim: Any, tmp_path: Path
) -> None:
    sim = await start_sim()
    (tmp_path / "hero.png").write_bytes(png(seed=7))
    (tmp_path / "own.png").write_bytes(png(seed=8))
    tasks = [
        {"type": "create", "key": "a", "creatives": {"c": link_creative("A", "hero")}},
        {
            "type": "create",
            "key": "b",
            "images": {"hero": {"file": "own.png"}},  # the task's own key wins
            "creatives": {"c": link_creative("B", "hero")},
        },
    ]
    job = {"account_id": sim.act, "images": {"hero": {"file": "hero.png"}}, "tasks": tasks}
    report = await sim.run(load_job(write(tmp_path / "job.json", json.dumps(job))))
    assert report.counts == {"succeeded": 6, "failed": 0, "skipped": 0}  # 2 lookups, 2 uploads, 2 creatives
    by_name = {strip_key(n.data["name"]): n.data for n in sim.nodes("adcreative")}
    assert by_name["A"]["object_story_spec"]["link_data"]["image_hash"] == md5_of(tmp_path / "hero.png")
    assert by_name["B"]["object_story_spec"]["link_data"]["image_hash"] == md5_of(tmp_path / "own.png")

    job["images"] = {"hero": {"file": "gone.png"}}
    with pytest.raises(JobFileError) as caught:
        load_job(write(tmp_path / "bad.json", json.dumps(job, indent=1)))
    [issue] = caught.value.issues
    assert (issue.rule, issue.field_path) == ("image.missing", "images.hero.file") and issue.line is not None
