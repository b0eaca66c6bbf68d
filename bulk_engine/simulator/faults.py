"""Seeded fault injection: latency, transient codes, 5xx, null batch entries, drops after commit.

Every decision draws from one ``random.Random`` seeded by the run's seed, so a failing run reproduces.
Codes follow S003 §Handling Errors: 1 "API Unknown" and 2 "API Service" are the documented
temporary errors ("Wait and retry the operation"); we mark them ``is_transient: true``.
"""

from __future__ import annotations

import random

from .config import FaultConfig
from .errors import GraphAPIError


class FaultInjector:
    def __init__(self, config: FaultConfig, rng: random.Random) -> None:
        self.config = config
        self.rng = rng
        self.injected: dict[str, int] = {
            "transient": 0,
            "null": 0,
            "drop": 0,
            "http_5xx": 0,
            "throttle_burst": 0,
        }

    def latency_s(self) -> float:
        base = self.config.latency_ms
        jitter = self.config.latency_jitter_ms
        if base <= 0 and jitter <= 0:
            return 0.0
        return max(0.0, base + (self.rng.uniform(-jitter, jitter) if jitter else 0.0)) / 1000.0

    def _hit(self, rate: float) -> bool:
        return rate > 0 and self.rng.random() < rate

    def transient_error(self) -> GraphAPIError | None:
        if not self._hit(self.config.transient_rate):
            return None
        self.injected["transient"] += 1
        if self.rng.random() < 0.5:
            return GraphAPIError(
                code=1,
                message="(#1) An unknown error occurred",
                type="OAuthException",
                http_status=500,
                is_transient=True,
            )
        return GraphAPIError(
            code=2,
            message="(#2) Service temporarily unavailable",
            type="OAuthException",
            http_status=503,
            is_transient=True,
        )

    def http_5xx(self) -> int | None:
        """An HTTP 500/503 answered by the front end before the request is run."""
        if not self._hit(self.config.http_5xx_rate):
            return None
        self.injected["http_5xx"] += 1
        return self.rng.choice((500, 503))

    def null_entry(self) -> str | None:
        """For one batch op: ``"before"`` (not run) or ``"after"`` (run, answer lost), or None."""
        if not self._hit(self.config.null_rate):
            return None
        self.injected["null"] += 1
        return "after" if self.rng.random() < 0.5 else "before"

    def drop_after_commit(self) -> bool:
        if not self._hit(self.config.drop_after_commit_rate):
            return False
        self.injected["drop"] += 1
        return True

    def throttle_burst(self) -> bool:
        if not self._hit(self.config.throttle_burst_rate):
            return False
        self.injected["throttle_burst"] += 1
        return True
