"""The simulator's virtual clock: scaled wall time plus explicit jumps, so quota windows pass in seconds.

Tests never sleep for timing: they call :meth:`VirtualClock.advance` (or run with ``time_scale`` > 1)
and the rate-limit windows, blocks and review delays all read this clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class VirtualClock:
    """``now()`` = start + (monotonic elapsed × time_scale) + manual offset, in epoch seconds."""

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

    @property
    def time_scale(self) -> float:
        return self._scale

    def now(self) -> float:
        return self._start + (self._monotonic() - self._origin) * self._scale + self._offset

    def advance(self, seconds: float) -> float:
        """Jump forward by ``seconds`` of virtual time; returns the new now()."""
        if seconds < 0:
            raise ValueError("the virtual clock never goes backwards")
        self._offset += seconds
        return self.now()

    def real_seconds(self, virtual_seconds: float) -> float:
        """How long in wall time a span of virtual time lasts at this scale."""
        return virtual_seconds / self._scale
