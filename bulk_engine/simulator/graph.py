"""The Graph API core: one call in, one answer out, shared by plain HTTP requests and batch operations.

A :class:`GraphRequest` is what one Graph call means after the wire format is peeled off (method, path
without version, merged parameters, token). :meth:`GraphCore.call` authenticates it, checks the version,
charges the rate limit of its ad account and business use case, may inject a fault, runs the handler, and
returns a :class:`GraphResponse` with the usage headers — exactly what a batch op needs too, so the batch
endpoint (``batch.py``) reuses it per operation.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from .clock import VirtualClock
from .config import FaultConfig, SimulatorConfig
from .errors import GraphAPIError, invalid_param, invalid_token, unknown_object
from .faults import FaultInjector
from .params import Params
from .ratelimit import RateLimiter
from .routing import Route, RouteTable
from .store import AD_ACCOUNT, PAGE, Node, Store

VERSION_RE = re.compile(r"^v(\d+)\.(\d+)$")


@dataclass
class GraphRequest:
    method: str
    path: str  # without leading slash and without version: "", "act_1/campaigns", "1202…", "1202…/copies"
    params: dict[str, Any]
    token: str | None = None
    version: str | None = None
    appsecret_proof: str | None = None
    files: dict[str, bytes] = field(default_factory=dict)
    in_batch: bool = False
    base_url: str = "https://graph.facebook.com"  # where paging.next links point (the simulator's own URL)


@dataclass
class GraphResponse:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class CallContext:
    """What a handler sees: the core, the request, typed params, the virtual time and the version."""

    core: GraphCore
    request: GraphRequest
    params: Params
    now: float
    version: str
    route: Route

    @property
    def store(self) -> Store:
        return self.core.store

    @property
    def config(self) -> SimulatorConfig:
        return self.core.config

    @property
    def version_number(self) -> int:
        match = VERSION_RE.match(self.version)
        return int(match.group(1)) if match else 0


@dataclass
class CallRecord:
    """One Graph call as the call log keeps it (a batch op is one call; the HTTP request groups them)."""

    http_request: int
    method: str
    path: str
    status: int
    account_id: str | None
    error_code: int | None = None
    name: str | None = None


class GraphCore:
    """The simulated Graph API: store + clock + rate limiter + faults + route tables."""

    def __init__(self, config: SimulatorConfig, route_modules: Iterable[ModuleType] | None = None) -> None:
        self.config = config
        self.clock = VirtualClock(config.start_time, config.time_scale)
        self.store = Store()
        self.rng = random.Random(config.seed)
        self.faults = FaultInjector(config.faults, random.Random(config.seed + 1))
        self.rate_limiter = RateLimiter(config, self.clock)
        self.calls: list[CallRecord] = []
        self.active_ad_counts: dict[str, int] = {}
        self.http_requests: list[dict[str, Any]] = []
        self._routes: dict[tuple[str, str, str | None], Route] = {}
        for module in route_modules if route_modules is not None else _default_route_modules():
            table: RouteTable = module.routes
            for route in table.routes:
                self._routes[(route.method, route.node_type, route.edge)] = route
        self._seed_store()

    # --- seeding -----------------------------------------------------------------------------------
    def _seed_store(self) -> None:
        now = self.clock.now()
        for act in self.config.ad_account_ids:
            if not act.startswith("act_") or not act[4:].isdigit():
                raise ValueError(f"ad account id {act!r} must look like act_<digits>")
            self.store.add(
                AD_ACCOUNT,
                {
                    "account_id": act[4:],
                    "name": f"Simulated account {act[4:]}",
                    "account_status": 1,
                    "currency": self.config.currency,
                    "timezone_name": "America/Los_Angeles",
                },
                now=now,
                account_id=act,
                node_id=act,
            )
        for i, page_id in enumerate(self.config.page_ids):
            ig = self.config.instagram_actor_ids[i] if i < len(self.config.instagram_actor_ids) else None
            self.store.add(
                PAGE,
                {
                    "name": f"Simulated Page {page_id}",
                    "instagram_business_account": ig,
                    "whatsapp_number": f"+1555000{i:04d}",
                },
                now=now,
                node_id=page_id,
            )

    def set_faults(self, faults: FaultConfig) -> None:
        self.faults = FaultInjector(faults, random.Random(self.config.seed + 1))

    # --- authentication ----------------------------------------------------------------------------
    def authenticate(self, token: str | None, proof: str | None) -> None:
        """Code 190 for a missing/unknown/expired token; appsecret_proof when an app secret is set.

        S003 §Verify Graph API Calls with appsecret_proof: proof = HMAC-SHA256(app_secret, token) hex.
        The seeds do not give the code for a bad proof; Meta answers 100 "Invalid appsecret_proof provided
        in the API argument" (and "appsecret_proof argument must be passed" when missing), type
        GraphMethodException — we do the same.
        """
        if not token:
            raise GraphAPIError(
                code=190,
                message="(#190) An active access token must be used to query information about the current user.",
                type="OAuthException",
                http_status=400,
            )
        if token in self.config.expired_token_values():
            raise invalid_token("Error validating access token: Session has expired.", subcode=463)
        if token not in self.config.token_values():
            raise invalid_token("Invalid OAuth access token - Cannot parse access token")
        if self.config.app_secret is not None:
            if not proof:
                raise GraphAPIError(
                    code=100,
                    message="(#100) appsecret_proof argument must be passed as a parameter",
                    type="GraphMethodException",
                )
            expected = hmac.new(
                self.config.app_secret.get_secret_value().encode(), token.encode(), hashlib.sha256
            ).hexdigest()
            if not hmac.compare_digest(expected, proof.lower()):
                raise GraphAPIError(
                    code=100,
                    message="(#100) Invalid appsecret_proof provided in the API argument",
                    type="GraphMethodException",
                )

    def resolve_version(self, version: str | None) -> str:
        """S003 §Platform Versioning: unversioned → default; unknown → 2635-style refusal."""
        if version is None:
            return self.config.default_version
        match = VERSION_RE.match(version)
        if not match:
            raise GraphAPIError(code=2635, message=f"(#2635) Unknown API version {version}")
        major = int(match.group(1))
        if version in self.config.deprecated_versions or major < self.config.min_version:
            raise GraphAPIError(
                code=2635,
                message=(
                    f"(#2635) You are calling a deprecated version of the Ads API. Please update to the "
                    f"latest version: {self.config.default_version}."
                ),
            )
        if major > self.config.max_version:
            raise GraphAPIError(code=2635, message=f"(#2635) Unknown API version {version}")
        return version

    # --- routing -----------------------------------------------------------------------------------
    def locate(self, path: str) -> tuple[Node | None, str | None, str]:
        """Split ``path`` into (node, edge, node type); the root has no node."""
        parts = [p for p in path.strip("/").split("/") if p]
        if not parts:
            return None, None, "root"
        if len(parts) > 2:
            raise GraphAPIError(
                code=100,
                subcode=33,
                message="(#100) Unknown path components: " + "/".join(parts[2:]),
                type="GraphMethodException",
            )
        node_id = parts[0]
        if node_id == "me":
            raise GraphAPIError(
                code=100,
                subcode=33,
                type="GraphMethodException",
                message="(#100) The simulator has no user node; address ad accounts directly",
            )
        node = self.store.get(node_id)
        if node is None:
            raise unknown_object(node_id)
        return node, (parts[1] if len(parts) > 1 else None), node.type

    def route_for(self, method: str, node_type: str, edge: str | None) -> Route:
        route = self._routes.get((method, node_type, edge))
        if route is None:
            what = f"{edge} edge" if edge else "node"
            raise GraphAPIError(
                code=100,
                subcode=33 if edge is None else None,
                type="GraphMethodException",
                message=f"(#100) Unsupported {method.lower()} request on the {what} of a {node_type}",
            )
        return route

    # --- the call ----------------------------------------------------------------------------------
    def call(self, request: GraphRequest, http_request: int = 0, name: str | None = None) -> GraphResponse:
        """Run one Graph call; never raises: errors become error responses with usage headers."""
        account_id: str | None = None
        try:
            self.authenticate(request.token, request.appsecret_proof)
            version = self.resolve_version(request.version)
            method = request.method.upper()
            if method == "PUT":
                method = "POST"
            node, edge, node_type = self.locate(request.path)
            params = Params(request.params)
            if node_type == "root" and method == "GET" and params.has("ids"):
                return self._multi_read(request, params, version, http_request, name)
            route = self.route_for(method, node_type, edge)
            account_id = node.account_id if node is not None else None
            now = self.clock.now()
            if account_id is not None and self.faults.throttle_burst():
                self.rate_limiter.force_block(
                    account_id, route.buc_type, self.faults.config.throttle_burst_s, now
                )
            self.rate_limiter.charge(account_id, route.buc_type, 1, now)
            fault = self.faults.transient_error()
            if fault is not None:
                raise fault
            ctx = CallContext(self, request, params, now, version, route)
            body = route.handler(ctx, node)
            response = GraphResponse(200, body)
        except GraphAPIError as err:
            response = GraphResponse(err.http_status, err.body(), dict(err.extra_headers))
        response.headers.update(self.usage_headers(account_id))
        self.calls.append(
            CallRecord(
                http_request=http_request,
                method=request.method.upper(),
                path=request.path,
                status=response.status,
                account_id=account_id,
                error_code=_error_code(response.body),
                name=name,
            )
        )
        return response

    def _multi_read(
        self, request: GraphRequest, params: Params, version: str, http_request: int, name: str | None
    ) -> GraphResponse:
        """``GET /?ids=a,b&fields=…`` — each id counts as one call (S003 §Rate Limits → FAQ)."""
        ids = params.list("ids") or []
        out: dict[str, Any] = {}
        accounts: set[str] = set()
        for node_id in ids:
            node = self.store.get(str(node_id))
            if node is None:
                raise unknown_object(str(node_id))
            route = self.route_for("GET", node.type, None)
            now = self.clock.now()
            self.rate_limiter.charge(node.account_id, route.buc_type, 1, now)
            if node.account_id:
                accounts.add(node.account_id)
            ctx = CallContext(self, request, params, now, version, route)
            out[str(node_id)] = route.handler(ctx, node)
        response = GraphResponse(200, out)
        for act in sorted(accounts):
            response.headers.update(self.usage_headers(act))
        self.calls.append(
            CallRecord(http_request, "GET", "?ids=" + ",".join(map(str, ids)), 200, None, None, name)
        )
        return response

    def usage_headers(self, account_id: str | None) -> dict[str, str]:
        return self.rate_limiter.headers(account_id, self.clock.now())


def _error_code(body: Any) -> int | None:
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        code = body["error"].get("code")
        return code if isinstance(code, int) else None
    return None


def _default_route_modules() -> list[ModuleType]:
    from . import async_batch, copies, messages, objects

    return [objects, copies, messages, async_batch]


def check_account_access(node: Node | None) -> None:
    """Guard for handlers that require an ad-account node."""
    if node is None or node.type != AD_ACCOUNT:
        raise invalid_param("This edge is only available on ad accounts")
