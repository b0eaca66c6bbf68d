"""Explicit, frozen engine configuration. Secrets are ``SecretStr`` and never printed."""

from __future__ import annotations

import hashlib
import hmac
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator


def graph_url_problem(value: str) -> str | None:
    """Why ``value`` cannot be a Graph base URL, in words that follow its name (``None``: it can).

    Why here: ``urlsplit`` accepts ``http://host:99999`` and only ``.port`` raises, later, wherever it is read
    first (the CLI's reachability probe crashed on it); one check at the door serves the library and the CLI.
    """
    if not value or value != value.strip() or any(ord(c) < 33 or c == "\x7f" for c in value):
        return "must be a URL without spaces or control characters, like https://graph.facebook.com"
    try:
        parts = urlsplit(value)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return "is not a valid URL (is an IPv6 address missing its closing bracket?)"
    if parts.scheme not in ("http", "https"):
        return f"must start with http:// or https:// (e.g. http://127.0.0.1:8765), got {value!r}"
    if not parts.hostname:
        return "has no host, e.g. https://graph.facebook.com or http://127.0.0.1:8765"
    if parts.username is not None or parts.password is not None:
        return "must not carry a user name or password (they would be printed in logs and reports)"
    if parts.query or parts.fragment or value.endswith(("?", "#")):
        return "must not have a query (?…) or fragment (#…): it is the base the API paths are added to"
    try:
        port = parts.port
    except ValueError:
        port_text = parts.netloc.rpartition(":")[2]
        return f"has an invalid port {port_text!r}: a number from 1 to 65535"
    if port == 0:
        return "has port 0: a number from 1 to 65535"
    return None


class Credentials(BaseModel):
    """The access token and optional app secret. ``repr``/``str`` show ``**********``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    access_token: SecretStr
    app_secret: SecretStr | None = None

    def appsecret_proof(self, token: str | None = None) -> str | None:
        """HMAC-SHA256(app_secret, token) as hex (S003 §Verify Graph API Calls with appsecret_proof)."""
        if self.app_secret is None:
            return None
        message = (token if token is not None else self.access_token.get_secret_value()).encode()
        return hmac.new(self.app_secret.get_secret_value().encode(), message, hashlib.sha256).hexdigest()

    def secrets(self) -> tuple[str, ...]:
        """The raw values :class:`~bulk_engine.scrub.Scrubber` removes from every output: the access token,
        the app secret and the ``appsecret_proof`` sent with each call (the proof is as good as the token
        for replaying calls, and a server echoing the request hands it back too). Empty values left out."""
        out = [self.access_token.get_secret_value()]
        if self.app_secret is not None:
            out.append(self.app_secret.get_secret_value())
            out.append(self.appsecret_proof() or "")
        return tuple(dict.fromkeys(s for s in out if s))


class GovernorConfig(BaseModel):
    """Pacing per scope (the app, an ad account, an (account, business use case) pair) from the usage
    headers (``execution/governor.py``; ``docs/scale.md``).

    ``ceiling_pct``: the usage a window is filled to and kept at (sends are paced so usage plateaus there
    instead of tripping the throttle at 100 %); ``ceilings`` overrides it per BUC type (``"ads_management"``,
    ``"ads_insights"``, …) or for the app's Platform window (``"app"``). 97 % is what the measurements
    justify (``bench/README.md``, scenarios Q and D).

    ``trust_tier_floors``: take the documented quota of the reported ``ads_api_access_tier`` (300 calls an
    hour at the development tier, 100,000 at standard, plus 40 per active ad) as a lower bound of the
    quota. Turn it off only for a server that reports a tier but enforces less.

    ``max_park_s``: the longest a scope is parked. An ``estimated_time_to_regain_access`` or
    ``reset_time_duration`` beyond it (a hostile or broken header can say 10^400 minutes) parks for
    the cap and says so in a warning; the next answer after the park tells the truth again.

    ``shared_margin_pct``: how much further below the ceiling a window is kept while other workers send
    on it (their answers are on their way to us; ``docs/scale.md``, scenario D).

    ``announce_after_s``: waits longer than this (wall seconds) emit a ``Waiting`` event and a log line (no silent waits).
    ``persist_every_s``: how often (wall seconds) readings are written to the journal (parks at once), the
    journal's parks read again (other workers' news on a shared account), and a run's figures (its
    ``RunRecord``; a run killed without its last write loses at most this much).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    ceiling_pct: float = Field(97.0, gt=0, le=100)
    ceilings: dict[str, float] = Field(default_factory=dict)
    slow_pct: float = Field(75.0, gt=0, le=100)
    initial_concurrency: int = Field(4, ge=1)
    max_concurrency: int = Field(64, ge=1)  # slow start reaches it in a few answers while usage is low
    max_total_concurrency: int = Field(64, ge=1)
    default_park_s: float = Field(60.0, gt=0)
    window_s: float = Field(3600.0, gt=0)
    aging_margin_s: float = Field(5.0, ge=0)
    max_park_s: float = Field(86400.0, gt=0)
    trust_tier_floors: bool = True
    shared_margin_pct: float = Field(3.0, ge=0, lt=100)
    announce_after_s: float = Field(5.0, ge=0)
    persist_every_s: float = Field(10.0, ge=0)

    @field_validator("ceilings")
    @classmethod
    def _ceilings_are_percentages(cls, value: dict[str, float]) -> dict[str, float]:
        for scope, pct in value.items():
            if not 0 < pct <= 100:
                raise ValueError(f"ceilings[{scope!r}] = {pct}: must be in (0, 100]")
        return value


class RetryConfig(BaseModel):
    """Bounded exponential backoff with full jitter (transient errors, null entries, 5xx)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_attempts: int = Field(6, ge=1)
    base_delay_s: float = Field(0.5, ge=0)
    max_delay_s: float = Field(30.0, ge=0)
    max_throttle_waits: int = Field(50, ge=0)


class IdempotencyConfig(BaseModel):
    """Exactly-once creates when the engine runs with a journal (``docs/exactly-once.md``).

    ``keys``: where created objects carry their idempotency key — ``"name"`` (a ``" [be:…]"`` name suffix,
    the default), ``"adlabels"`` (two ad labels; names untouched) or ``"off"`` (no key: a create whose
    outcome is unknown then fails instead of being re-sent, and a resume without the journal cannot
    recognise earlier creates). ``key_prefix`` starts every key. ``rebuild``: when a job id the journal
    does not know is run, look on the server for objects an earlier run of it created (``"auto"``: one
    probe per ad account and edge, then lookups only where something was found; ``"always"``: a lookup
    before every create; ``"never"``: trust the empty journal).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    keys: Literal["name", "adlabels", "off"] = "name"
    key_prefix: str = Field("be", pattern=r"^[a-z][a-z0-9]{0,7}$")
    rebuild: Literal["auto", "always", "never"] = "auto"


Backend = Literal["sync", "async", "auto"]
"""How creates are sent (``docs/scale.md``, "sync or async backend"): ``sync`` — Graph batch requests of at
most 50 calls, answered in the same HTTP request; ``async`` — Meta's server-side request sets
(``act_X/async_batch_requests``, up to 1,000 requests each, polled until complete); ``auto`` — async for a
large create/copy job where it saves HTTP requests, sync otherwise (the result says which and why)."""


class AsyncBatchConfig(BaseModel):
    """The async backend (``execution/async_backend.py``; S003 §Asynchronous and Batch Requests → Batch API).

    ``max_requests``: requests per set (the documented maximum, 1,000; lower it, never raise it).
    ``poll_initial_s`` / ``poll_max_s``: the first wait before a set's status is read, doubled after every
    read that finds it incomplete, up to the maximum (engine-clock seconds; every poll is paced by the
    governor like any call). ``deadline_s``: a set still incomplete this long after it was submitted has its
    unprocessed requests canceled; what finished is reported, what did not is skipped (canceled before it
    ran) or failed as "still running on the server" (looked up by its key, after the set is read again,
    when the job runs again). ``auto_min_ops``: the fewest eligible creates/copies for which ``auto``
    chooses async. ``min_set_ops``: fewer ready eligible operations than this go out as sync batches (a
    set costs a submit, polls and a results read: three requests at least).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_requests: int = Field(1000, ge=1, le=1000)
    poll_initial_s: float = Field(5.0, gt=0)
    poll_max_s: float = Field(60.0, gt=0)
    deadline_s: float = Field(6 * 3600.0, gt=0)
    auto_min_ops: int = Field(1000, ge=1)
    min_set_ops: int = Field(20, ge=1)
    results_page_size: int = Field(1000, ge=1, le=5000)


class EngineConfig(BaseModel):
    """Everything a :class:`~bulk_engine.BulkEngine` needs. Passed in explicitly; no module globals."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    credentials: Credentials
    graph_url: str = "https://graph.facebook.com"
    api_version: str = "v24.0"
    governor: GovernorConfig = GovernorConfig()
    retry: RetryConfig = RetryConfig()
    idempotency: IdempotencyConfig = IdempotencyConfig()
    request_timeout_s: float = Field(120.0, gt=0)
    max_batch_ops: int = Field(50, ge=1, le=50)
    max_ads_per_batch: int = Field(10, ge=1, le=50)
    # Image bytes one batch request may carry (multipart parts / Base64 ``bytes``): several images share a
    # batch up to this budget; a single larger image goes alone (planning/batcher.py).
    max_upload_bytes: int = Field(32 * 1024 * 1024, ge=1)
    window_ops: int = Field(5000, ge=1)
    # Finished operations whose records (state, result) are kept so later windows of a streamed job
    # can reference them; older ones are forgotten so memory does not grow with the job.
    reference_horizon: int = Field(50_000, ge=0)
    seed: int | None = None
    backend: Backend = "sync"  # per run: BulkEngine.run(job, backend=...) or a job-file task's ``backend``
    async_batch: AsyncBatchConfig = AsyncBatchConfig()

    @field_validator("graph_url")
    @classmethod
    def _url(cls, value: str) -> str:
        problem = graph_url_problem(value)
        if problem is not None:
            raise ValueError(f"graph_url {problem}")
        return value.rstrip("/")

    @field_validator("api_version")
    @classmethod
    def _version(cls, value: str) -> str:
        if not value.startswith("v") or "." not in value:
            raise ValueError("api_version must look like v24.0")
        return value
