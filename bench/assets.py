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

    .venv/bin/python bench/assets.py --images 500 --repeat 3 --latency-ms 50
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
from common import simulator_process

from bulk_engine import BulkEngine, Credentials, EngineConfig, Operation, OpKind
from bulk_engine.protocol.images import Upload

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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--concurrency", type=int, default=8, help="uploads in flight, one-per-request way")
    args = parser.parse_args()
    config = {"quota_override": 10_000_000, "faults": {"latency_ms": args.latency_ms}}
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
