"""How async request sets are processed over virtual time (async_batch.py creates, lists and cancels them).

Processing model (virtual time, no background tasks): requests are processed one after another in
submission order (dependencies first: a stable topological order) at ``async_requests_per_s`` requests per
virtual second. Request *k* of a set created at *t0* is ``in_progress`` from its slot start and finishes at
the end of its slot (``t0 + (k + 1) / rate`` when nothing was canceled); canceled requests take no slot.
The state is brought up to date lazily whenever the set, its requests or a listing that contains them is
read, updated or deleted — so advancing the clock (``core.clock.advance``) is all a test needs. A finished
request ran through :meth:`GraphCore.call` with the token, ``appsecret_proof`` and API version of the POST
that created the set, so it is validated and charged to the ad account's rate limit exactly like a batch
op (its call-log record has ``http_request = 0``: no HTTP request carried it).

Choices where the seeds are silent:

- A request whose referenced (or ``depends_on``) request did not succeed fails with code 100.
- A request answered with a throttling code (4, 17, 32, 613, 80000–80014) is not failed: it stays
  ``in_progress`` and the set pauses until the answer's ``estimated_time_to_regain_access`` has passed (at
  least ``THROTTLE_BACKOFF_S`` virtual seconds), as Meta's backend paces its own work. Other errors,
  including injected transient codes 1/2, finish the request with ``error``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

from .batch import BatchOp, build_request, dependency_error
from .errors import GraphAPIError
from .store import Node

if TYPE_CHECKING:
    from .graph import GraphCore

__all__ = ["THROTTLE_BACKOFF_S", "SetRuntime", "advance", "complete", "numeric_id", "scope_from", "track"]

THROTTLE_BACKOFF_S = 60.0


def _is_throttle(code: Any) -> bool:
    return isinstance(code, int) and (code in (4, 17, 32, 613) or 80000 <= code <= 80014)


# --- runtime state (kept off the store so tokens never show in /__sim__/store) ---------------------
@dataclass
class SetRuntime:
    """What processing a set needs that the store does not show: the creating call's credentials and version,
    the operations and their order, and where processing stands."""

    token: str | None
    proof: str | None
    version: str
    base_url: str
    ops: dict[str, BatchOp]  # request id -> its operation
    order: list[str]  # request ids in processing order
    by_name: dict[str, str]  # item name -> request id
    cursor: float  # virtual time the current slot started (or the set resumes after a throttle)
    next_index: int = 0


@dataclass
class _AsyncState:
    sets: dict[str, SetRuntime] = field(default_factory=dict)


_STATE: WeakKeyDictionary[GraphCore, _AsyncState] = WeakKeyDictionary()


def _state(core: GraphCore) -> _AsyncState:
    state = _STATE.get(core)
    if state is None:
        state = _STATE[core] = _AsyncState()
    return state


def track(core: GraphCore, set_id: str, runtime: SetRuntime) -> None:
    """Process the set ``set_id`` from now on (its requests are in the store, ``initial``)."""
    _state(core).sets[set_id] = runtime


# --- processing over virtual time ------------------------------------------------------------------
def advance(core: GraphCore, set_node: Node, now: float) -> None:
    """Bring ``set_node`` and its requests up to virtual time ``now`` (lazy processing)."""
    runtime = _state(core).sets.get(set_node.id)
    if runtime is None:
        return
    slot = 1.0 / core.config.async_requests_per_s
    while runtime.next_index < len(runtime.order):
        request = core.store.get(runtime.order[runtime.next_index])
        if request is None or request.data["status"] == "canceled":
            runtime.next_index += 1
            continue
        if runtime.cursor > now:
            break
        request.data["status"] = "in_progress"
        finish = runtime.cursor + slot
        if finish > now:
            break
        wait = _execute(core, runtime, request)
        if wait is not None:  # throttled: stay in progress, retry when access is regained
            runtime.cursor = max(finish, now) + wait
            break
        runtime.cursor = finish
        runtime.next_index += 1
    if runtime.next_index >= len(runtime.order):
        complete(set_node)


def _regain_seconds(headers: Mapping[str, str]) -> float:
    """How long a throttled set pauses: the longest ``estimated_time_to_regain_access`` (minutes) of the
    answer's ``X-Business-Use-Case-Usage`` header, at least ``THROTTLE_BACKOFF_S``."""
    wait = THROTTLE_BACKOFF_S
    try:
        usage = json.loads(headers.get("X-Business-Use-Case-Usage", "{}"))
        for entries in usage.values():
            for entry in entries:
                wait = max(wait, 60.0 * float(entry.get("estimated_time_to_regain_access", 0)))
    except (ValueError, TypeError, AttributeError):
        pass
    return wait


def _execute(core: GraphCore, runtime: SetRuntime, request: Node) -> float | None:
    """Run one request through the core; when it was throttled, the seconds to wait before retrying."""
    op = runtime.ops[request.id]

    def lookup(name: str) -> Any:
        parent = core.store.get(runtime.by_name.get(name, ""))
        if parent is None or parent.data["status"] != "success":
            raise dependency_error(name)
        return parent.data["result"]

    try:
        if op.depends_on:
            lookup(op.depends_on)
        call = build_request(
            op.method,
            op.relative_url,
            op.body,
            lookup,
            token=runtime.token,
            proof=runtime.proof,
            version=runtime.version,
            base_url=runtime.base_url,
        )
    except GraphAPIError as err:
        _finish(request, False, err.body())
        return None
    response = core.call(call, http_request=0, name=op.name)
    error = response.body.get("error") if isinstance(response.body, dict) else None
    if isinstance(error, dict) and _is_throttle(error.get("code")):
        return _regain_seconds(response.headers)
    ok = 200 <= response.status < 300
    if ok:
        scope = scope_from(call.path, call.params)
        if scope is not None:
            request.data["scope_object_id"] = scope
    _finish(request, ok, response.body)
    return None


def _finish(request: Node, ok: bool, body: Any) -> None:
    request.data["status"] = "success" if ok else "error"
    if ok:
        request.data["result"] = body
    else:
        err = body.get("error", {}) if isinstance(body, dict) else {}
        request.data["result"] = [{"error_code": err.get("code"), "error_message": err.get("message")}]


def complete(set_node: Node) -> None:
    if (
        set_node.data["notification_mode"] == "ON_COMPLETE"
        and set_node.data["notification_status"] == "not_sent"
    ):
        set_node.data["notification_status"] = "sent"
        set_node.data["notification_result"] = (
            f"simulated: completion notice for {set_node.id} to {set_node.data.get('notification_uri') or '-'} "
            "not delivered (the simulator makes no outbound requests)"
        )


def numeric_id(node_id: Any) -> Any:
    text = str(node_id).removeprefix("act_")
    return int(text) if text.isdigit() else text


def scope_from(path: str, params: Mapping[str, Any]) -> Any:
    """The parent of the object a request creates: the ad set of an ad, the campaign of an ad set."""
    node, _, edge = path.partition("/")
    key = {"ads": "adset_id", "adsets": "campaign_id"}.get(edge)
    value = params.get(key) if key else None
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return numeric_id(node) if node else None
