"""Configuration of one simulator instance: seeded accounts, tokens, limits, faults and time."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

AccessTier = Literal["development_access", "standard_access"]


class FaultConfig(BaseModel):
    """Seeded fault injection; every probability is per Graph call (per batch op for batches).

    ``transient_rate`` answers code 1 or 2 with ``is_transient: true`` (S003 §Handling Errors);
    ``null_rate`` turns a batch entry into ``null`` after committing it or before running it
    (S003 §Batch Requests → Timeouts: "Responses for requests that are not successful will be null");
    ``drop_after_commit_rate`` closes the connection after the request's writes were committed;
    ``http_5xx_rate`` answers HTTP 500/503 without running the request.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0
    transient_rate: float = Field(0.0, ge=0, le=1)
    null_rate: float = Field(0.0, ge=0, le=1)
    drop_after_commit_rate: float = Field(0.0, ge=0, le=1)
    http_5xx_rate: float = Field(0.0, ge=0, le=1)
    throttle_burst_rate: float = Field(0.0, ge=0, le=1)
    throttle_burst_s: float = Field(60.0, ge=0)

    @classmethod
    def parse_spec(cls, spec: str) -> FaultConfig:
        """Parse the CLI form ``transient=0.05,null=0.02,drop=0.02,http5xx=0.01,latency_ms=100``."""
        aliases = {
            "transient": "transient_rate",
            "null": "null_rate",
            "drop": "drop_after_commit_rate",
            "http5xx": "http_5xx_rate",
            "throttle": "throttle_burst_rate",
            "jitter_ms": "latency_jitter_ms",
        }
        values: dict[str, float] = {}
        for part in filter(None, (p.strip() for p in spec.split(","))):
            key, sep, raw = part.partition("=")
            if not sep:
                raise ValueError(f"fault spec item {part!r} is not KEY=VALUE")
            name = aliases.get(key.strip(), key.strip())
            if name not in cls.model_fields:
                raise ValueError(
                    f"unknown fault {key!r}; known: {sorted(set(aliases) | set(cls.model_fields))}"
                )
            values[name] = float(raw)
        return cls.model_validate(values)


class SimulatorConfig(BaseModel):
    """Everything that shapes one simulator run. Frozen: a run is reproducible from its config + seed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    access_tokens: tuple[SecretStr, ...] = (SecretStr("SIMULATOR-TOKEN-0001"),)
    expired_tokens: tuple[SecretStr, ...] = ()
    app_secret: SecretStr | None = None
    app_id: str = "100000000000001"
    ad_account_ids: tuple[str, ...] = ("act_1000000001", "act_1000000002", "act_1000000003")
    page_ids: tuple[str, ...] = ("2000000001", "2000000002")
    instagram_actor_ids: tuple[str, ...] = ("3000000001", "3000000002")
    currency: str = "USD"
    # Versions: S003 says v24.0 is the latest while S001/S002 show v25.0 (SPEC-DIGEST §9.3 #7):
    # accept v19.0 … v26.0, answer unversioned calls as the default version.
    min_version: int = 19
    max_version: int = 26
    default_version: str = "v24.0"
    deprecated_versions: tuple[str, ...] = ()
    # Rate limits (S003 §Business Use Case Rate Limits).
    access_tier: AccessTier = "development_access"
    rate_limits_enabled: bool = True
    quota_override: int | None = None
    window_s: float = 3600.0
    # Limits.
    max_batch_ops: int = 50
    max_async_batch_ops: int = 1000
    archived_limit: int = 100_000
    sync_copy_limit: int = 3
    max_ads_for_migration: int = 150
    ad_review_s: float = 0.0
    page_size_default: int = 25
    page_size_max: int = 5000
    # Batch semantics the seeds leave open (SPEC-DIGEST §1.1): honour depends_on / omit_response_on_success.
    honour_depends_on: bool = True
    reject_sibling_adsets_in_batch: bool = True
    # Time and faults.
    time_scale: float = 1.0
    start_time: float = 1_790_000_000.0
    seed: int = 0
    faults: FaultConfig = FaultConfig()

    def token_values(self) -> set[str]:
        return {t.get_secret_value() for t in self.access_tokens}

    def expired_token_values(self) -> set[str]:
        return {t.get_secret_value() for t in self.expired_tokens}
