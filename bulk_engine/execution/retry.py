"""Bounded exponential backoff with full jitter (AWS "full jitter"): delay ~ U(0, min(cap, base·2^n)).

Throttling is not retried here: throttled ops go back to the governor, which parks the account until
``estimated_time_to_regain_access`` has passed (S003 §Rate Limits: "stop making API calls").
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from bulk_engine.config import RetryConfig


@dataclass
class RetryPolicy:
    config: RetryConfig
    rng: random.Random

    def should_retry(self, attempts: int) -> bool:
        """``attempts`` = sends so far for this op; the config bounds the total."""
        return attempts < self.config.max_attempts

    def delay(self, attempts: int) -> float:
        cap = min(self.config.max_delay_s, self.config.base_delay_s * (2 ** max(0, attempts - 1)))
        return self.rng.uniform(0.0, cap)
