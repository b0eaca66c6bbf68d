"""Configuration of one simulator instance: seeded accounts, tokens, limits, faults and time."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

AccessTier = Literal["development_access", "standard_access"]

# Error codes the ``transient`` fault can inject (templates in ``faults.py``): the documented temporary
# errors 1 and 2 (the default), throttling 4/17/341/613, policy block 368, token errors 190/102.
INJECTABLE_CODES = (1, 2, 4, 17, 102, 190, 341, 368, 613)


class FaultConfig(BaseModel):
    """Seeded fault injection; every probability is per Graph call (per batch op for batches).

    ``transient_rate`` answers code 1 or 2 with ``is_transient: true`` (S003 §Handling Errors);
    ``null_rate`` turns a batch entry into ``null`` after committing it or before running it
    (S003 §Batch Requests → Timeouts: "Responses for requests that are not successful will be null");
    ``drop_after_commit_rate`` closes the connection after the request's writes were committed;
    ``http_5xx_rate`` answers HTTP 500/503 without running the request; ``throttle_burst_rate`` blocks the
    call's ad account × use case for ``throttle_burst_s`` virtual seconds (answers 80004 meanwhile).
    ``transient_codes`` picks which error codes ``transient_rate`` draws from (default: 1 and 2).
    ``reduce_data_above`` / ``reduce_data_times`` (``--faults reduce_above=250,reduce_times=4``): edge reads
    asking for more objects than that answer code 1 "Please reduce the amount of data" (faults.py).
    Latency is ``latency_ms`` ± a uniform ``latency_jitter_ms`` per HTTP request (never below 0).
    Each kind of fault draws from its own random stream seeded by the run's seed, so a run reproduces and
    turning one fault on does not change another's sequence.
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
    transient_codes: tuple[int, ...] = (1, 2)
    # An edge read asking for more than ``reduce_data_above`` objects (``limit``) answers code 1, HTTP 500
    # "Please reduce the amount of data you're asking for" (0: never); the first ``reduce_data_times`` such
    # reads only (0: every one), so a load that passes can be modelled (faults.py).
    reduce_data_above: int = Field(0, ge=0)
    reduce_data_times: int = Field(0, ge=0)

    @field_validator("latency_ms", "latency_jitter_ms")
    @classmethod
    def _non_negative(cls, value: float) -> float:
        if value < 0:
            raise ValueError("must be >= 0")
        return value

    @field_validator("transient_codes")
    @classmethod
    def _known_codes(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value:
            raise ValueError("needs at least one code")
        unknown = sorted(set(value) - set(INJECTABLE_CODES))
        if unknown:
            raise ValueError(f"cannot inject codes {unknown}; injectable: {list(INJECTABLE_CODES)}")
        return value

    SPEC_ALIASES: ClassVar[dict[str, str]] = {
        "transient": "transient_rate",
        "null": "null_rate",
        "drop": "drop_after_commit_rate",
        "http5xx": "http_5xx_rate",
        "throttle": "throttle_burst_rate",
        "throttle_s": "throttle_burst_s",
        "jitter_ms": "latency_jitter_ms",
        "codes": "transient_codes",
        "reduce_above": "reduce_data_above",
        "reduce_times": "reduce_data_times",
    }

    @classmethod
    def parse_spec(cls, spec: str) -> FaultConfig:
        """Parse the CLI form ``transient=0.05,null=0.02,drop=0.02,http5xx=0.01,latency_ms=100,jitter_ms=20``.

        Keys are the aliases above or the field names; ``codes`` takes ``/``-separated error codes
        (``transient=0.1,codes=1/2/613``). Unknown keys, repeated keys and bad values raise ValueError.
        """
        values: dict[str, object] = {}
        for part in filter(None, (p.strip() for p in spec.split(","))):
            key, sep, raw = part.partition("=")
            key, raw = key.strip(), raw.strip()
            if not sep or not key or not raw:
                raise ValueError(f"fault spec item {part!r} is not KEY=VALUE")
            name = cls.SPEC_ALIASES.get(key, key)
            if name not in cls.model_fields:
                known = sorted(set(cls.SPEC_ALIASES) | set(cls.model_fields))
                raise ValueError(f"unknown fault {key!r}; known: {known}")
            if name in values:
                raise ValueError(f"fault {key!r} given twice")
            try:
                if name == "transient_codes":
                    values[name] = tuple(int(c) for c in raw.split("/") if c.strip())
                elif name in ("reduce_data_above", "reduce_data_times"):
                    values[name] = int(raw)
                else:
                    values[name] = float(raw)
            except ValueError:
                raise ValueError(f"fault {key!r} has a non-numeric value {raw!r}") from None
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
    # Every ad account starts with this many ACTIVE campaigns (no ad sets): benchmarks of jobs that edit
    # existing objects (a million status changes) without a million creates first. Their ids are
    # contiguous per account (``Store.seed_campaigns``; the start line's ``seeded_campaigns``).
    seed_campaigns: int = Field(0, ge=0)
    # Versions: S003 says v24.0 is the latest while S001/S002 show v25.0 (SPEC-DIGEST §9.3 #7):
    # accept v19.0 … v26.0, answer unversioned calls as ``default_version`` (S003's "latest", what an app
    # dashboard would pin); versions outside the range or listed in ``deprecated_versions`` → code 2635.
    min_version: int = Field(19, ge=1)
    max_version: int = Field(26, ge=1)
    default_version: str = Field("v24.0", pattern=r"^v\d+\.\d+$")
    deprecated_versions: tuple[str, ...] = ()
    # Rate limits (S003 §Rate Limits, §Business Use Case Rate Limits; model in ratelimit.py).
    access_tier: AccessTier = "development_access"
    rate_limits_enabled: bool = True
    quota_override: int | None = Field(None, ge=1)
    window_s: float = Field(3600.0, gt=0)
    app_users: int = Field(10_000, ge=1)  # Platform quota = 200 × users per window (X-App-Usage)
    max_ids_per_request: int = Field(50, ge=1)  # ``?ids=a,b,…`` larger than this → code 100
    # Limits.
    max_batch_ops: int = 50
    max_async_batch_ops: int = 1000
    archived_limit: int = 100_000
    # SPEC-DIGEST §9.3 #2 / #9 (status.py): ARCHIVED → ACTIVE/PAUSED refused unless this is set; an edge
    # ``effective_status`` filter containing DELETED is an error unless ``deleted_filter_error`` is off.
    archived_reactivation: bool = False
    deleted_filter_error: bool = True
    # A campaign update that sets a budget while its ad sets have budgets: "convert" switches the campaign
    # to a campaign budget and clears the ad sets' (validation.budget_switch), "refuse" answers 1885621.
    campaign_budget_switch: Literal["convert", "refuse"] = "convert"
    # Creatives may only use the account's own images and videos (validation._check_media); off for tests of
    # users' payloads that name made-up hashes.
    check_creative_media: bool = True
    # adimages refuses content whose header is not an image's (assets.py); off for clients uploading placeholders.
    check_image_content: bool = True
    # Chunked video uploads (videos.py): the chunk the server asks for, the smallest file it takes (382), and how
    # long (virtual seconds) a finished upload reads status.video_status "processing" before "ready".
    video_chunk_bytes: int = Field(4 * 1024 * 1024, ge=1)
    min_video_bytes: int = Field(1024, ge=1)
    video_processing_s: float = Field(0.0, ge=0)
    # Videos whose title contains one of these end processing in status.video_status "error" (videos.py).
    video_error_titles: tuple[str, ...] = ()
    sync_copy_limit: int = 3
    max_ads_for_migration: int = 150
    ad_review_s: float = 0.0
    page_size_default: int = 25
    page_size_max: int = 5000
    # Batch semantics the seeds leave open (SPEC-DIGEST §1.1): honour depends_on / omit_response_on_success.
    honour_depends_on: bool = True
    reject_sibling_adsets_in_batch: bool = True
    omit_referenced_batch_responses: bool = True  # referenced ops answer null on success (batch.py)
    # Async request sets (async_batch.py): requests finished per virtual second, in submission order.
    async_requests_per_s: float = Field(10.0, gt=0)
    # Time and faults.
    time_scale: float = Field(1.0, gt=0)  # virtual seconds per wall second (3600: an hour a second)
    start_time: float = 1_790_000_000.0
    seed: int = 0
    faults: FaultConfig = FaultConfig()

    def token_values(self) -> set[str]:
        return {t.get_secret_value() for t in self.access_tokens}

    def expired_token_values(self) -> set[str]:
        return {t.get_secret_value() for t in self.expired_tokens}
