"""The Graph API core: one call in, one answer out, shared by plain HTTP requests and batch operations.

A :class:`GraphRequest` is what one Graph call means after the wire format is peeled off (method, path
without version, merged parameters, token). :meth:`GraphCore.call` authenticates it, checks the version,
charges the rate limit of its ad account and business use case, may inject a fault, runs the handler, and
returns a :class:`GraphResponse` with the usage headers — exactly what a batch op needs too, so the batch
endpoint (``batch.py``) reuses it per operation. It never raises: errors become the JSON error envelope.

Choices where the seeds are silent or contradict each other (SPEC-DIGEST §8, §9.3):

- **Versions (§9.3 #7).** S003 says "The latest Graph API version is v24.0" while S001/S002 examples call
  v25.0 (and S003 documents v25.0 behaviour changes), S000 v21.0, one S002 example v19.0. We accept
  ``v{min_version}.0`` … ``v{max_version}.0`` (v19–v26 by default), answer unversioned calls as
  ``default_version`` (v24.0, S003's "latest" — an app dashboard's pinned version), and refuse versions
  outside the range or listed in ``deprecated_versions`` with the Marketing API's ``2635`` "You are
  calling a deprecated version of the Ads API" (S003 §Handling Errors). The Graph-wide rule "calls made
  to [an expired version] will be defaulted to the next oldest, usable version" is not simulated: the
  Marketing API refuses instead, and a client must learn that. The ``facebook-api-version`` response
  header names the version that answered.
- **Tokens.** Accepted from ``access_token`` (query, form, multipart, JSON body) or ``Authorization:
  Bearer``/``OAuth``. Missing → ``190`` "An access token is required to request this resource."
  (S003 lists only 190 for token problems on the Marketing API endpoints); unknown → ``190``
  "Invalid OAuth access token - Cannot parse access token"; listed in ``expired_tokens`` → ``190`` /
  subcode ``463`` (session expired). Token errors carry ``WWW-Authenticate`` like Meta's.
- **appsecret_proof** (S003 §Verify Graph API Calls with appsecret_proof): when ``app_secret`` is set,
  every call — and the top level of a batch — must carry ``HMAC-SHA256(key=app_secret, msg=token)`` as
  lowercase hex (upper case is tolerated). The seeds give no error code; Meta answers code 100 of type
  ``GraphMethodException``: "API calls from the server require an appsecret_proof argument" when missing
  and "Invalid appsecret_proof provided in the API argument" when wrong. We do the same.
- **Multi-id reads** ``GET /?ids=a,b&fields=…`` (and ``GET /<edge>?ids=…``) answer ``{id: node}``; each id
  is one call for rate limiting (S003 §Rate Limits → FAQ) and one entry in the call log. An id that does
  not exist fails the whole request with ``803`` "Some of the aliases you requested do not exist"
  (Meta's behaviour; not in the seeds); more than ``max_ids_per_request`` ids → code 100.
- **Unknown objects** → ``100`` / subcode ``33`` (S003 §Handling Errors: "Unsupported post request").
"""

from __future__ import annotations

import hashlib
import hmac
import random
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .clock import VirtualClock
from .config import FaultConfig, SimulatorConfig
from .context import VERSION_RE, CallContext, GraphRequest, GraphResponse
from .errors import GraphAPIError, invalid_param, invalid_token, unknown_object
from .faults import FaultInjector
from .params import Params
from .ratelimit import RateLimiter
from .routing import Route, RouteTable, registered_tables
from .store import AD_ACCOUNT, PAGE, Node, Store


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

    def __init__(self, config: SimulatorConfig, route_tables: Iterable[RouteTable] | None = None) -> None:
        self.config = config
        self.clock = VirtualClock(config.start_time, config.time_scale)
        self.store = Store()
        self.rng = random.Random(config.seed)
        self.faults = FaultInjector(config.faults, config.seed)
        self.rate_limiter = RateLimiter(config, self.clock)
        self._tokens = config.token_values()
        self._expired_tokens = config.expired_token_values()
        self._app_secret = config.app_secret.get_secret_value().encode() if config.app_secret else None
        self.calls: list[CallRecord] = []
        self.active_ad_counts: dict[str, int] = {}
        self.archived_counts: dict[tuple[str, str], int] = {}  # (account, type) → archived (status.py)
        self.message_sent_at: dict[str, float] = {}  # subscription token → last send (messages.py)
        self.http_requests: list[dict[str, Any]] = []
        self._routes: dict[tuple[str, str, str | None], Route] = {}
        for table in route_tables if route_tables is not None else registered_tables():
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
        self.seeded_campaigns: dict[str, tuple[str, int]] = {}  # account → (first id, count)
        if self.config.seed_campaigns:
            from .status import iso_time

            for act in self.config.ad_account_ids:
                self.seeded_campaigns[act] = self.store.seed_campaigns(
                    act, self.config.seed_campaigns, now=now, created_time=iso_time(now)
                )

    def set_faults(self, faults: FaultConfig) -> None:
        """Replace the fault configuration at runtime; the random streams restart from the run's seed."""
        self.faults = FaultInjector(faults, self.config.seed)

    # --- authentication ----------------------------------------------------------------------------
    def authenticate(self, token: str | None, proof: str | None) -> None:
        """Code 190 for a missing/unknown/expired token; appsecret_proof when an app secret is set.

        See the module docstring for the messages and the choices behind them.
        """
        if not token:
            raise GraphAPIError(
                code=190,
                message="(#190) An access token is required to request this resource.",
                type="OAuthException",
                http_status=400,
                extra_headers={
                    "WWW-Authenticate": 'OAuth "Facebook Platform" "invalid_request" '
                    '"An access token is required to request this resource."'
                },
            )
        if token in self._expired_tokens:
            raise invalid_token("Error validating access token: Session has expired.", subcode=463)
        if token not in self._tokens:
            raise invalid_token("Invalid OAuth access token - Cannot parse access token")
        if self._app_secret is not None:
            if not proof:
                raise GraphAPIError(
                    code=100,
                    message="(#100) API calls from the server require an appsecret_proof argument",
                    type="GraphMethodException",
                )
            if not hmac.compare_digest(appsecret_proof(self._app_secret, token), str(proof).lower()):
                raise GraphAPIError(
                    code=100,
                    message="(#100) Invalid appsecret_proof provided in the API argument",
                    type="GraphMethodException",
                )

    def resolve_version(self, version: str | None) -> str:
        """S003 §Platform Versioning: unversioned → default; deprecated or out of range → 2635."""
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
                    "(#2635) You are calling a deprecated version of the Ads API. Please update to the "
                    f"latest version: {self.config.default_version}."
                ),
            )
        if major > self.config.max_version:
            raise GraphAPIError(
                code=2635,
                message=f"(#2635) Unknown API version {version}. Please use version {self.config.default_version}.",
            )
        return version

    def version_header(self, version: str | None) -> str:
        """The ``facebook-api-version`` a response carries: the version that answered."""
        try:
            return self.resolve_version(version)
        except GraphAPIError:
            return self.config.default_version

    # --- routing -----------------------------------------------------------------------------------
    def locate(self, path: str, method: str = "GET") -> tuple[Node | None, str | None, str]:
        """Split ``path`` into (node, edge, node type); the root has no node. ``method`` words the refusal
        of an unknown node."""
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
            raise unknown_object(node_id, method)
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
        buc_type: str | None = None
        try:
            self.authenticate(request.token, request.appsecret_proof)
            version = self.resolve_version(request.version)
            method = request.method.upper()
            if method == "PUT":
                method = "POST"
            params = Params(request.params)
            if method == "GET" and "ids" in request.params:
                multi = self._multi_read_edge(request.path)
                if multi is not None:
                    return self._multi_read(request, params, version, multi[0], http_request, name)
            node, edge, node_type = self.locate(request.path, method)
            account_id = node.account_id if node is not None else None
            route = self._routes.get((method, node_type, edge))
            buc_type = route.buc_type if route is not None else "ads_management"
            now = self.clock.now()
            if account_id is not None and self.faults.throttle_burst():
                self.rate_limiter.force_block(account_id, buc_type, self.faults.config.throttle_burst_s, now)
            self.rate_limiter.charge(account_id, buc_type, 1, now)  # "All calls count", unsupported ones too
            route = self.route_for(method, node_type, edge)
            fault = self.faults.transient_error()
            if fault is not None:
                raise fault
            ctx = CallContext(self, request, params, now, version, route)
            body = route.handler(ctx, node)
            response = GraphResponse(200, body)
        except GraphAPIError as err:
            response = GraphResponse(err.http_status, err.body(), dict(err.extra_headers))
            if _is_user_error(err):
                self.rate_limiter.record_user_error(account_id)
        response.headers.update(self.usage_headers(account_id, buc_type))
        response.headers["facebook-api-version"] = self.version_header(request.version)
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

    def _multi_read_edge(self, path: str) -> tuple[str | None] | None:
        """``(edge,)`` when ``path`` + ``ids=`` is a multi-id read: the root, or ``/<edge>?ids=…``."""
        parts = [p for p in path.strip("/").split("/") if p]
        if not parts:
            return (None,)
        if len(parts) == 1 and parts[0] not in self.store and parts[0] != "me":
            return (parts[0],)
        return None

    def _multi_read(
        self,
        request: GraphRequest,
        params: Params,
        version: str,
        edge: str | None,
        http_request: int,
        name: str | None,
    ) -> GraphResponse:
        """``GET /?ids=a,b&fields=…`` → ``{a: {...}, b: {...}}``; each id is one call (S003 §Rate Limits).

        The whole request fails on the first failing id (unknown id, throttled account, bad field).
        """
        accounts: list[str] = []
        first_buc: str | None = None
        recorded = len(self.calls)
        try:
            ids = [str(i) for i in params.list("ids") or []]
            if not ids:
                raise invalid_param("Param ids must be a non-empty list of object ids", "ids")
            if len(ids) > self.config.max_ids_per_request:
                raise invalid_param(f"Too many IDs. Maximum: {self.config.max_ids_per_request}", "ids")
            missing = [i for i in ids if i not in self.store]
            if missing:
                raise GraphAPIError(
                    code=803,
                    message="(#803) Some of the aliases you requested do not exist: " + ",".join(missing),
                )
            sub_params = {k: v for k, v in request.params.items() if k != "ids"}
            out: dict[str, Any] = {}
            for node_id in ids:
                node = self.store.get(node_id)
                assert node is not None
                path = f"{node_id}/{edge}" if edge else node_id
                try:
                    route = self.route_for("GET", node.type, edge)
                    first_buc = first_buc or route.buc_type
                    if node.account_id is not None:
                        accounts.append(node.account_id)
                    now = self.clock.now()
                    self.rate_limiter.charge(node.account_id, route.buc_type, 1, now)
                    sub = GraphRequest(
                        method="GET",
                        path=path,
                        params=sub_params,
                        token=request.token,
                        version=request.version,
                        appsecret_proof=request.appsecret_proof,
                        in_batch=request.in_batch,
                        base_url=request.base_url,
                    )
                    out[node_id] = route.handler(
                        CallContext(self, sub, Params(sub_params), now, version, route), node
                    )
                except GraphAPIError as err:
                    self.calls.append(
                        CallRecord(
                            http_request, "GET", path, err.http_status, node.account_id, err.code, name
                        )
                    )
                    raise
                self.calls.append(CallRecord(http_request, "GET", path, 200, node.account_id, None, name))
            response = GraphResponse(200, out)
        except GraphAPIError as err:
            response = GraphResponse(err.http_status, err.body(), dict(err.extra_headers))
            if len(self.calls) == recorded:  # failed before any id ran: log the request as one call
                self.calls.append(
                    CallRecord(http_request, "GET", request.path, err.http_status, None, err.code, name)
                )
        response.headers.update(self.usage_headers(accounts or None, first_buc))
        response.headers["facebook-api-version"] = version
        return response

    def usage_headers(
        self, account_id: str | list[str] | None, buc_type: str | None = None
    ) -> dict[str, str]:
        """The rate-limit headers for a call on ``account_id`` (or several accounts, first primary)."""
        return self.rate_limiter.headers(account_id, self.clock.now(), buc_type)


def appsecret_proof(app_secret: bytes | str, token: str) -> str:
    """S003: ``hash_hmac('sha256', $access_token, $app_secret)`` — lowercase hex HMAC-SHA256."""
    key = app_secret.encode() if isinstance(app_secret, str) else app_secret
    return hmac.new(key, token.encode(), hashlib.sha256).hexdigest()


def _is_user_error(err: GraphAPIError) -> bool:
    """A caller mistake (4xx, not a throttle, not transient): these shrink the insights quota."""
    return 400 <= err.http_status < 500 and not err.is_transient and err.code not in (190, 102)


def _error_code(body: Any) -> int | None:
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        code = body["error"].get("code")
        return code if isinstance(code, int) else None
    return None
