"""Engine workers as OS processes, driven from a test: each prints ``ready``, waits for ``go`` on stdin, runs,
and prints its result as its last JSON line. Used where several processes must share one account (the
governor across processes, a shared journal), started together or one after another."""

from __future__ import annotations

import asyncio
import json
from typing import Any

__all__ = ["run_workers"]


async def _expect(proc: asyncio.subprocess.Process, wanted: bytes) -> None:
    assert proc.stdout is not None
    line = await proc.stdout.readline()
    if line.strip() != wanted:
        _, err = await proc.communicate()
        raise AssertionError(f"worker said {line!r}, not {wanted!r}: {err.decode()[-3000:]}")


async def _go(proc: asyncio.subprocess.Process) -> None:
    assert proc.stdin is not None
    proc.stdin.write(b"go\n")
    await proc.stdin.drain()


async def run_workers(
    procs: list[asyncio.subprocess.Process], *, deadline_s: float, one_by_one_after: bytes | None = None
) -> list[dict[str, Any]]:
    """Wait until every worker is ready, then start them together — or, with ``one_by_one_after``, each once
    the previous printed that line — and return their result lines. Every worker is killed on the way out
    if it has not ended; a worker that exits non-zero fails the test with its stderr."""
    try:
        async with asyncio.timeout(deadline_s):
            for proc in procs:
                await _expect(proc, b"ready")
            if one_by_one_after is not None:
                for proc in procs:
                    await _go(proc)
                    await _expect(proc, one_by_one_after)
            else:
                await asyncio.gather(*(_go(proc) for proc in procs))
            outputs = await asyncio.gather(*(proc.communicate() for proc in procs))
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    skip = {b"", one_by_one_after}
    results = []
    for index, (proc, (out, err)) in enumerate(zip(procs, outputs, strict=True)):
        assert proc.returncode == 0, f"worker {index} exited {proc.returncode}: {err.decode()[-3000:]}"
        lines = [line for line in out.splitlines() if line.strip() not in skip]
        results.append(json.loads(lines[-1]))
    return results
