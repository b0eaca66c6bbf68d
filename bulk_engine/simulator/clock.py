"""The simulator's virtual clock: scaled wall time plus explicit jumps, so quota windows pass in seconds.

``now()`` = ``start`` + (monotonic time elapsed since the clock was made × ``time_scale``) + the sum of
:meth:`VirtualClock.advance` jumps, in epoch seconds. With ``time_scale=3600`` one wall second is a virtual
hour, so a full rate-limit window passes in a second; with ``advance`` a test jumps straight past a block.
Tests never sleep for timing: they call ``advance`` (or inject ``monotonic``), and the rate-limit windows,
blocks, review delays and async request sets all read this clock. It never goes backwards.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class VirtualClock:
    """Virtual epoch time: scaled ``monotonic`` elapsed time plus manual jumps; monotone non-decreasing."""

    def __init__(
        self, start: float, time_scale: float = 1.0, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be > 0")
        self._start = start
        self._scale = time_scale
        self._monotonic = monotonic
        self._origin = monotonic()
        self._offset = 0.0
        self._last = start

    @property
    def time_scale(self) -> float:
        return self._scale

    def now(self) -> float:
        value = self._start + (self._monotonic() - self._origin) * self._scale + self._offset
        if value < self._last:  # a monotonic source never goes back; guard against float noise anyway
            return self._last
        self._last = value
        return value

    def advance(self, seconds: float) -> float:
        """Jump forward by ``seconds`` of virtual time; returns the new now()."""
        if seconds < 0:
            raise ValueError("the virtual clock never goes backwards")
        self._offset += seconds
        return self.now()

    def set_time_scale(self, time_scale: float) -> None:
        """Change the scale from now on, without a jump in virtual time."""
        if time_scale <= 0:
            raise ValueError("time_scale must be > 0")
        now = self.now()
        self._start, self._origin, self._offset, self._scale = now, self._monotonic(), 0.0, time_scale

    def real_seconds(self, virtual_seconds: float) -> float:
        """How long in wall time a span of virtual time lasts at this scale."""
        return virtual_seconds / self._scale

    def virtual_seconds(self, real_seconds: float) -> float:
        """How much virtual time passes in ``real_seconds`` of wall time at this scale."""
        return real_seconds * self._scale
