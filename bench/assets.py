"""Issue 15: 500 images uploaded as multipart parts inside batches vs one upload per HTTP request.

Both ways send the same 500 distinct PNG files (generated with zlib/struct) to ``act_X/adimages`` of a
simulator in another process (``--latency-ms`` per HTTP request, a quota large enough never to throttle):

* ``batched``: the engine — image-upload operations (``Operation.upload``), packed several per batch within
  ``EngineConfig.max_upload_bytes`` and sent as ``multipart/form-data`` with ``attached_files`` (S003 §Batch
  Requests → Upload Binary Data);
* ``one-per-request``: what the SDKs do (``AdImage(...).remote_create()``): one multipart ``POST
  act_X/adimages`` per image, ``--concurrency`` at a time.

Printed per way (medians of ``--repeat``, each repeat against a fresh simulator): HTTP requests, wall, bytes
of request bodies sent, and the ratios. Every repeat checks the account's library holds the 500 hashes.

Videos (``--videos``, the same simulator and ``--latency-ms``), through the job-file flow a create task's
``videos:`` runs (``bulk_engine/operations/video_flow.py``: lookup by key, upload, status poll):

* ``chunked``: one 100 MiB file, ``upload_phase=start`` → 25 ``transfer`` requests of the 4 MiB the server
  asks for (one after the other: each answer names the next offset) → ``finish`` (S003 §Ad Videos);
* ``source in batches``: 20 files of 4 MiB (80 MiB), each a ``source`` multipart part inside ordinary batches
  (``attached_files``), as many per request as ``max_upload_bytes`` (32 MiB) holds.

Every repeat checks the library holds one video per file. MiB/s puts the two payloads on one scale.

    .venv/bin/python bench/assets.py --images 500 --repeat 3 --latency-ms 50
    .venv/bin/python bench/assets.py --videos --repeat 3 --latency-ms 50
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import statistics
import struct
import sys
import tempfile
import time
import urllib.request
import zlib
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from common import simulator_process

from bulk_engine import BulkEngine, Credentials, EngineConfig, Operation, OpKind
from bulk_engine.operations import load_job, run_job
from bulk_engine.protocol.images import Upload

MIB = 1024 * 1024

OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def png(seed: int, side: int = 48) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(
        b"\x00" + bytes((seed * 7919 + x * 31 + y * 17 + (x * y) % 13) % 256 for x in range(side * 3))
        for y in range(side)
    )
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    tag = chunk(b"tEXt", b"Comment\x00bench %d" % seed)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + tag
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def write_images(folder: Path, count: int) -> list[Path]:
    paths = []
    for i in range(count):
        path = folder / f"img{i:04d}.png"
        path.write_bytes(png(i))
        paths.append(path)
    return paths


async def batched(info: dict[str, Any], paths: list[Path]) -> dict[str, float]:
    act = info["ad_account_ids"][0]
    ops = []
    for path in paths:
        data = path.read_bytes()
        upload = Upload(hashlib.md5(data).hexdigest(), len(data), path.name, str(path))
        ops.append(
            Operation(
                op_id=f"img:{upload.md5}",
                method="POST",
                path=f"{act}/adimages",
                account_id=act,
                kind=OpKind.CREATE_IMAGE,
                upload=upload,
            )
        )
    config = EngineConfig(credentials=Credentials(access_token=info["access_token"]), graph_url=info["url"])
    started = time.perf_counter()
    async with BulkEngine(config) as engine:
        result = await engine.run(ops)
        sent = engine._transport.bytes_sent if engine._transport is not None else 0
    wall = time.perf_counter() - started
    assert result.counts["succeeded"] == len(paths), result.counts
    return {"http_requests": result.http_requests, "wall_s": wall, "bytes_sent": sent}


async def one_per_request(info: dict[str, Any], paths: list[Path], concurrency: int) -> dict[str, float]:
    act = info["ad_account_ids"][0]
    url = f"{info['url']}/v24.0/{act}/adimages"
    gate = asyncio.Semaphore(concurrency)
    sent = 0

    contents = {
        path: path.read_bytes() for path in paths
    }  # read before the clock starts, like the engine's plan

    async def upload(session: aiohttp.ClientSession, path: Path) -> None:
        nonlocal sent
        form = aiohttp.FormData()
        form.add_field("access_token", info["access_token"])
        form.add_field("filename", contents[path], filename=path.name, content_type="image/png")
        body = form()
        sent += body.size or 0
        async with gate, session.post(url, data=body) as resp:
            answer = await resp.json()
            assert resp.status == 200, answer

    started = time.perf_counter()
    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(upload(session, p) for p in paths))
    return {"http_requests": len(paths), "wall_s": time.perf_counter() - started, "bytes_sent": sent}


def library_size(info: dict[str, Any]) -> int:
    with OPENER.open(f"{info['url']}/__sim__/store?type=adimage", timeout=30) as resp:
        store = json.loads(resp.read())
    return len(store["objects"]) if isinstance(store, dict) and "objects" in store else len(store)


def mp4(size: int, seed: int) -> bytes:
    """Bytes the engine's sniffer (and the simulator's) take for an MP4: an ``ftyp`` box, then padding."""
    head = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + bytes([seed % 251]) * 64
    return head + bytes(size - len(head))


def write_videos(folder: Path) -> dict[str, Path]:
    """The two ways' folders: one 100 MiB file (chunked), and twenty 4 MiB files (``source``)."""
    folders = {}
    for way, count, size in (("chunked", 1, 100 * MIB), ("source in batches", 20, 4 * MIB)):
        here = folders[way] = folder / way.split()[0]
        here.mkdir()
        for i in range(count):
            (here / f"v{i:02d}.mp4").write_bytes(mp4(size, seed=i))
    return folders


def video_job(info: dict[str, Any], folder: Path) -> tuple[Any, int]:
    """A create task uploading the folder's videos (one creative uses the first), and their bytes in all."""
    files = sorted(folder.glob("*.mp4"))
    videos = {p.stem: {"file": p.name} for p in files}
    story = {
        "page_id": info["page_ids"][0],
        "video_data": {"video": files[0].stem, "image_url": "https://e.com/t.jpg"},
    }
    creative = {"name": "bench", "object_story_spec": story}  # a create task needs one; +1 request both ways
    task = {"type": "create", "videos": videos, "creatives": {"c": creative}}
    job = {"version": 1, "account_id": info["ad_account_ids"][0], "tasks": [task]}
    (folder / "job.yaml").write_text(yaml.safe_dump(job))
    return load_job(folder / "job.yaml"), sum(p.stat().st_size for p in files)


async def upload_videos(info: dict[str, Any], spec: Any, payload: int) -> dict[str, float]:
    """The job's videos through a create task's video flow; its HTTP requests, wall and request bytes."""
    config = EngineConfig(credentials=Credentials(access_token=info["access_token"]), graph_url=info["url"])
    started = time.perf_counter()
    async with BulkEngine(config) as engine:
        report = await run_job(engine, spec)
        sent = engine._transport.bytes_sent if engine._transport is not None else 0
    wall = time.perf_counter() - started
    assert report.ok, [(o.op_id, o.reason) for o in report.outcomes if o.state.value != "succeeded"]
    figures = report.task(report.tasks[0].key).details["videos"]
    assert figures["uploaded"] == figures["keys"], figures
    result = report.to_result()
    return {
        "http_requests": result.http_requests,
        "wall_s": wall,
        "bytes_sent": sent,
        "mib_per_s": payload / MIB / wall,
        "payload": payload,
    }


def video_library(info: dict[str, Any]) -> int:
    with OPENER.open(f"{info['url']}/__sim__/store?type=advideo", timeout=30) as resp:
        store = json.loads(resp.read())
    return len(store["objects"]) if isinstance(store, dict) and "objects" in store else len(store)


def bench_videos(args: argparse.Namespace, config: dict[str, Any]) -> None:
    runs: dict[str, list[dict[str, float]]] = {"chunked": [], "source in batches": []}
    with tempfile.TemporaryDirectory() as tmp:
        folders = write_videos(Path(tmp))
        print(
            f"videos: 1 × 100 MiB chunked (4 MiB transfers) vs 20 × 4 MiB as source parts in batches; "
            f"latency {args.latency_ms:g} ms per HTTP request"
        )
        for _ in range(args.repeat):
            for way, folder in folders.items():
                with simulator_process(config=config) as info:
                    runs[way].append(asyncio.run(upload_videos(info, *video_job(info, folder))))
                    want = 1 if way == "chunked" else 20
                    assert video_library(info) == want, "the library must hold every video once"
    a_way, b_way = runs
    print(f"\n{f'figure (median of {args.repeat})':<28}{a_way:>16}{b_way:>20}{'ratio':>10}")
    for key, label in (
        ("payload", "video bytes"),
        ("http_requests", "HTTP requests"),
        ("wall_s", "wall (s)"),
        ("bytes_sent", "bytes sent"),
        ("mib_per_s", "MiB/s (payload / wall)"),
    ):
        a = statistics.median(r[key] for r in runs[a_way])
        b = statistics.median(r[key] for r in runs[b_way])
        fmt = "{:>16.2f}{:>20.2f}" if key in ("wall_s", "mib_per_s") else "{:>16,.0f}{:>20,.0f}"
        print(f"{label:<28}" + fmt.format(a, b) + f"{b / a if a else float('nan'):>9.2f}×")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--videos", action="store_true", help="bench the video uploads instead of images")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--concurrency", type=int, default=8, help="uploads in flight, one-per-request way")
    args = parser.parse_args()
    config = {"quota_override": 10_000_000, "faults": {"latency_ms": args.latency_ms}}
    if args.videos:
        bench_videos(args, config)
        return 0
    runs: dict[str, list[dict[str, float]]] = {"batched": [], "one-per-request": []}
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_images(Path(tmp), args.images)
        total = sum(p.stat().st_size for p in paths)
        print(
            f"{args.images} PNGs, {total / 1024:.0f} KiB in all; latency {args.latency_ms:g} ms per HTTP request"
        )
        for _ in range(args.repeat):
            for way in runs:
                with simulator_process(config=config) as info:
                    if way == "batched":
                        figures = asyncio.run(batched(info, paths))
                    else:
                        figures = asyncio.run(one_per_request(info, paths, args.concurrency))
                    assert library_size(info) == args.images, "the library must hold every image once"
                runs[way].append(figures)
    print(f"\n{f'figure (median of {args.repeat})':<28}{'batched':>16}{'one-per-request':>18}{'ratio':>10}")
    for key, label in (
        ("http_requests", "HTTP requests"),
        ("wall_s", "wall (s)"),
        ("bytes_sent", "bytes sent"),
    ):
        a = statistics.median(r[key] for r in runs["batched"])
        b = statistics.median(r[key] for r in runs["one-per-request"])
        fmt = "{:>16.2f}{:>18.2f}" if key == "wall_s" else "{:>16,.0f}{:>18,.0f}"
        print(f"{label:<28}" + fmt.format(a, b) + f"{b / a if a else float('nan'):>9.1f}×")
    return 0


if __name__ == "__main__":
    sys.exit(main())
