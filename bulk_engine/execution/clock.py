"""Injected time for the async shell: the governor and retries are tested with a scaled or fake clock.

``monotonic()`` measures waits inside one process; ``wall()`` is what is written down for another process
or a later run (a park deadline in the journal) — epoch seconds on the same scale as ``monotonic()``.
"""

from __future__ import annotations

import time
from typing import Protocol

import anyio


class Clock(Protocol):
    scale: float  # engine seconds per wall second (1.0 unless the clock is sped up for tests and demos)

    def monotonic(self) -> float: ...

    def wall(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """Wall time."""

    scale = 1.0

    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(max(0.0, seconds))


class ScaledClock:
    """Time that runs ``scale`` times faster than the wall: pairs with a simulator's ``time_scale``.

    A throttle block of 5 virtual minutes then costs 300/scale real seconds, so tests and benchmarks
    exercise the real parking logic without waiting for it. ``wall()`` is the epoch times ``scale``, so
    every scaled clock of one scale agrees on it, in any process (a park another run wrote down).
    """

    def __init__(self, scale: float) -> None:
        if scale <= 0:
            raise ValueError("scale must be > 0")
        self.scale = scale
        self._origin = time.monotonic()

    def monotonic(self) -> float:
        return (time.monotonic() - self._origin) * self.scale

    def wall(self) -> float:
        return time.time() * self.scale

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(max(0.0, seconds) / self.scale)
