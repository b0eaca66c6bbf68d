"""Seeded fault injection: latency, transient codes, 5xx, null batch entries, drops after commit, bursts.

Every decision draws from a ``random.Random`` seeded by the run's seed — one stream per kind of fault
(``"<seed>:latency"``, ``"<seed>:transient"``, …), so the same seed and the same request sequence give
the same faults, and switching one fault on does not shift another's sequence. ``injected`` counts what
was injected and ``latencies_ms`` keeps every drawn latency (tests assert those instead of wall time).

Error templates (S003 §Handling Errors → Error Codes, §Rate Limits → Error Codes):

====  ========================================================================  ====  ============
code  message                                                                   HTTP  is_transient
====  ========================================================================  ====  ============
1     ``(#1) An unknown error occurred``                                        500   true
2     ``(#2) An unexpected error has occurred. Please retry your request later.`` 500   true
4     ``(#4) Application request limit reached``                                400   true
17    ``(#17) User request limit reached``                                      400   true
341   ``(#341) Application limit reached``                                      400   true
613   ``(#613) Calls to this api have exceeded the rate limit.``                400   true
368   ``(#368) The action attempted has been deemed abusive or is otherwise…``  400   false
190   ``(#190) Error validating access token: The session has been invalidated…`` 401 false (subcode 460)
102   ``(#102) Session key invalid or no longer valid``                         400   false
====  ========================================================================  ====  ============

Codes 1 and 2 are the documented temporary errors ("Wait and retry the operation") and the default;
the others let a client's classification (retry / back off / re-auth / give up) be exercised.

"Reduce the amount of data" (``reduce_data_above``/``reduce_data_times``): an edge read whose ``limit``
exceeds the threshold answers code 1, HTTP 500, ``Please reduce the amount of data you're asking for, then
retry your request`` — Graph's answer to a page too heavy to compute, not in the seeds (Meta's support
pages and SDK issues show it). It is a deterministic function of the request (not drawn), as the real
answer is for a given load; ``reduce_data_times`` ends it after that many refusals (a load that passes).
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable

from .config import FaultConfig
from .errors import GraphAPIError, invalid_token

_TEMPLATES: dict[int, Callable[[], GraphAPIError]] = {
    1: lambda: GraphAPIError(
        code=1, message="(#1) An unknown error occurred", http_status=500, is_transient=True
    ),
    2: lambda: GraphAPIError(
        code=2,
        message="(#2) An unexpected error has occurred. Please retry your request later.",
        http_status=500,
        is_transient=True,
    ),
    4: lambda: GraphAPIError(code=4, message="(#4) Application request limit reached", is_transient=True),
    17: lambda: GraphAPIError(code=17, message="(#17) User request limit reached", is_transient=True),
    341: lambda: GraphAPIError(code=341, message="(#341) Application limit reached", is_transient=True),
    613: lambda: GraphAPIError(
        code=613, message="(#613) Calls to this api have exceeded the rate limit.", is_transient=True
    ),
    368: lambda: GraphAPIError(
        code=368,
        message="(#368) The action attempted has been deemed abusive or is otherwise disallowed",
    ),
    190: lambda: invalid_token(
        "Error validating access token: The session has been invalidated because the user changed their "
        "password or Facebook has changed the session for security reasons.",
        subcode=460,
    ),
    102: lambda: GraphAPIError(code=102, message="(#102) Session key invalid or no longer valid"),
}


def injected_error(code: int) -> GraphAPIError:
    """A fresh error for an injectable ``code`` (see the table above)."""
    return _TEMPLATES[code]()


class FaultInjector:
    """Draws the faults of one run. Not thread-safe: the simulator calls it from its event loop only."""

    def __init__(self, config: FaultConfig, seed: int) -> None:
        self.config = config
        self.seed = seed
        self._rngs: dict[str, random.Random] = {}
        self.injected: dict[str, int] = {
            "transient": 0,
            "null": 0,
            "drop": 0,
            "http_5xx": 0,
            "throttle_burst": 0,
            "latency": 0,
            "reduce_data": 0,
        }
        self.latencies_ms: deque[float] = deque(maxlen=100_000)  # the most recent draws

    def _rng(self, kind: str) -> random.Random:
        rng = self._rngs.get(kind)
        if rng is None:
            rng = self._rngs[kind] = random.Random(f"{self.seed}:{kind}")
        return rng

    def _hit(self, kind: str, rate: float) -> bool:
        return rate > 0 and self._rng(kind).random() < rate

    def latency_s(self) -> float:
        """Latency for one HTTP request: ``latency_ms`` ± uniform ``latency_jitter_ms``, never negative."""
        base = self.config.latency_ms
        jitter = self.config.latency_jitter_ms
        if base <= 0 and jitter <= 0:
            return 0.0
        drawn = base + (self._rng("latency").uniform(-jitter, jitter) if jitter else 0.0)
        drawn = max(0.0, drawn)
        self.injected["latency"] += 1
        self.latencies_ms.append(drawn)
        return drawn / 1000.0

    def transient_error(self) -> GraphAPIError | None:
        """An injected error for one Graph call (``transient_rate``), drawn from ``transient_codes``."""
        if not self._hit("transient", self.config.transient_rate):
            return None
        self.injected["transient"] += 1
        codes = self.config.transient_codes
        code = codes[0] if len(codes) == 1 else self._rng("transient").choice(codes)
        return injected_error(code)

    def http_5xx(self) -> int | None:
        """An HTTP 500/503 answered by the front end before the request is run."""
        if not self._hit("http_5xx", self.config.http_5xx_rate):
            return None
        self.injected["http_5xx"] += 1
        return self._rng("http_5xx").choice((500, 503))

    def null_entry(self) -> str | None:
        """For one batch op: ``"before"`` (not run) or ``"after"`` (run, answer lost), or None."""
        if not self._hit("null", self.config.null_rate):
            return None
        self.injected["null"] += 1
        return "after" if self._rng("null").random() < 0.5 else "before"

    def drop_after_commit(self) -> bool:
        """Close the connection after a write was committed, before the answer is sent."""
        if not self._hit("drop", self.config.drop_after_commit_rate):
            return False
        self.injected["drop"] += 1
        return True

    def throttle_burst(self) -> bool:
        """Block the call's ad account × use case for ``throttle_burst_s`` virtual seconds."""
        if not self._hit("throttle_burst", self.config.throttle_burst_rate):
            return False
        self.injected["throttle_burst"] += 1
        return True

    def reduce_data(self, limit: int) -> GraphAPIError | None:
        """Code 1 / HTTP 500 "reduce the amount of data" for an edge read of ``limit`` objects, or None."""
        above, times = self.config.reduce_data_above, self.config.reduce_data_times
        if above <= 0 or limit <= above or (times and self.injected["reduce_data"] >= times):
            return None
        self.injected["reduce_data"] += 1
        return GraphAPIError(
            code=1,
            message="Please reduce the amount of data you're asking for, then retry your request",
            http_status=500,
            is_transient=True,
        )
