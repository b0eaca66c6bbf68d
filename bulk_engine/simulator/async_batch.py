"""Async request sets: the Batch API and async ad creation (S003 §Asynchronous and Batch Requests,
§Ad Account Async Batch Requests, §Ad Account Asyncadrequestsets, §Ad Account Asyncadcreatives;
SPEC-DIGEST §2, §9.1 item 7).

Endpoints:

- ``POST act_<id>/async_batch_requests`` with ``name`` (required) and ``adbatch`` (required, a JSON array of
  at most ``max_async_batch_ops`` = 1000 items ``{name, relative_url, body}``; ``body`` URL-encoded, also
  percent-encoded as a whole as in the seed example; ``method`` optional, default POST; ``depends_on``
  optional) → ``{"id": <set id>}``. ``{result=NAME:$.jsonpath}`` references between items work as in the
  sync batch (``batch.py``). A missing ``name``/``adbatch`` → code **194** "Missing at least one required
  parameter"; anything malformed (not an array, empty, > 1000 items, an item without ``relative_url``,
  duplicate item names, a reference to an unknown item, a dependency cycle) → code **100**.
- ``POST act_<id>/asyncadrequestsets`` with ``name`` and ``ad_specs`` (one ad create per spec, run as
  ``POST act_<id>/ads``; ``scope_object_id`` = the spec's ``adset_id``) and ``POST act_<id>/asyncadcreatives``
  with ``name`` and ``creative_spec`` (one creative create) → ``{"id": <set id>}``; missing → code 100 (their
  reference lists only 100). Both take ``notification_mode`` (``OFF``/``ON_COMPLETE``, also ``0``/``1``) and
  ``notification_uri``; so does ``async_batch_requests`` here.
- ``GET /<set id>`` — fields ``id``, ``owner_id``, ``name``, ``is_completed`` (the defaults), ``total_count``,
  ``initial_count``, ``in_progress_count``, ``success_count``, ``error_count``, ``canceled_count``,
  ``notification_uri``, ``notification_mode``, ``notification_result``, ``notification_status``.
- ``GET /<set id>/requests`` (cursor-paged, newest first like the seed sample; ``status`` filter with any
  combination of ``initial, in_progress, success, error, canceled``, case-insensitive, comma list or JSON
  array) and ``GET /<request id>`` — fields ``id``, ``scope_object_id``, ``status`` (defaults), ``result``,
  ``input``, ``async_request_set`` (``{id}``, expandable: ``async_request_set{name,is_completed}``).
  ``status`` is printed upper-case (``SUCCESS``) as in the seed's example answers. ``result`` is the call's
  answer on success (``{"id": …}``) and ``[{"error_code", "error_message"}]`` on error; absent before.
- ``GET act_<id>/async_requests`` lists Batch API sets, ``GET act_<id>/asyncadrequestsets`` ad-spec sets
  (both filter ``is_completed``); ``GET /<ad set or campaign id>/asyncadrequests`` lists the ad-spec requests
  whose ad set is (under) that node, with the same ``status`` filter.
- ``POST /<set id>`` updates ``name``, ``notification_uri``, ``notification_mode`` → ``true``; the notification
  fields only while ``notification_status`` is ``not_sent`` (else code 100).
- ``DELETE /<set id>`` cancels every request still ``initial`` → ``true``; ``DELETE /<request id>`` cancels
  one request if it is still ``initial`` → ``true``, and answers code **100** (``GraphMethodException``)
  once it is ``in_progress`` or finished ("can only be cancelled if it is not processed yet").

Processing over virtual time (the order, the slots, lazy catching up, throttled requests) is
:mod:`~bulk_engine.simulator.async_processing`'s.

Choices where the seeds are silent (see also the processing module's):

- ``notification_mode`` defaults to ``ON_COMPLETE`` when a ``notification_uri`` is given, else ``OFF``. The
  simulator never makes outbound requests: when an ``ON_COMPLETE`` set completes, ``notification_status``
  becomes ``sent`` and ``notification_result`` says the delivery was simulated (``sending`` never shows).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

from .async_processing import SetRuntime, advance, complete, numeric_id, scope_from, track
from .batch import BatchOp, decode_body, loads_relaxed, parse_op
from .context import CallContext, check_account_access
from .errors import GraphAPIError, invalid_param, missing_param
from .params import split_fields
from .routing import RouteTable
from .store import (
    AD_ACCOUNT,
    ADSET,
    ASYNC_REQUEST,
    ASYNC_REQUEST_SET,
    CAMPAIGN,
    Node,
    decode_cursor,
    encode_cursor,
)

routes = RouteTable()

__all__ = ["advance", "render_request", "render_set", "routes"]

SET_FIELDS = (
    "id",
    "owner_id",
    "name",
    "is_completed",
    "total_count",
    "initial_count",
    "in_progress_count",
    "success_count",
    "error_count",
    "canceled_count",
    "notification_uri",
    "notification_mode",
    "notification_result",
    "notification_status",
)
SET_DEFAULT_FIELDS = "id,owner_id,name,is_completed"
REQUEST_FIELDS = ("id", "scope_object_id", "status", "result", "input", "async_request_set")
REQUEST_DEFAULT_FIELDS = "id,scope_object_id,status"
STATUSES = ("initial", "in_progress", "success", "error", "canceled")
NOTIFICATION_MODES = {"OFF": "OFF", "ON_COMPLETE": "ON_COMPLETE", "0": "OFF", "1": "ON_COMPLETE"}
KIND_BATCH = "batch"  # async_batch_requests
KIND_AD_SPECS = "ad_specs"  # asyncadrequestsets
KIND_CREATIVE = "creative_spec"  # asyncadcreatives


# --- creating sets ----------------------------------------------------------------------------------
def _required(ctx: CallContext, key: str, code: int) -> Any:
    value = ctx.params.get(key)
    if value is None or value == "" or value == []:
        if code == 194:
            raise GraphAPIError(
                code=194,
                message="(#194) Missing at least one required parameter",
                user_msg=f"The parameter {key} is required",
                blame_field_specs=[[key]],
            )
        raise missing_param(key)
    return value


def _list_param(ctx: CallContext, key: str, raw: Any) -> list[Any]:
    value = loads_relaxed(raw, key) if isinstance(raw, str) else raw
    if not isinstance(value, list):
        raise invalid_param(f"Param {key} must be a JSON array", key)
    if not value:
        raise invalid_param(f"Param {key} must not be empty", key)
    limit = ctx.config.max_async_batch_ops
    if len(value) > limit:
        raise invalid_param(f"Param {key} can contain at most {limit} requests, got {len(value)}", key)
    return value


def _notification(ctx: CallContext) -> tuple[str | None, str | None]:
    uri = ctx.params.str("notification_uri")
    if uri is not None:
        parts = urlsplit(uri)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise invalid_param("Param notification_uri must be a valid URL", "notification_uri")
    mode = ctx.params.str("notification_mode")
    if mode is not None:
        if mode.upper() not in NOTIFICATION_MODES:
            raise invalid_param(
                f"Param notification_mode must be one of {{OFF, ON_COMPLETE}} - got {mode}",
                "notification_mode",
            )
        mode = NOTIFICATION_MODES[mode.upper()]
    return uri, mode


def _processing_order(ops: list[BatchOp]) -> list[int]:
    """A stable topological order of the items (dependencies first); code 100 on unknown names or cycles."""
    by_name: dict[str, int] = {}
    for op in ops:
        if op.name is not None:
            if op.name in by_name:
                raise invalid_param(f"adbatch contains two requests named {op.name!r}", "adbatch")
            by_name[op.name] = op.index
    deps: dict[int, set[int]] = {}
    for op in ops:
        for parent in op.parents:
            if parent not in by_name:
                raise invalid_param(
                    f"adbatch[{op.index}] references {parent!r}, which is not a request of this batch",
                    "adbatch",
                )
        deps[op.index] = {by_name[p] for p in op.parents} - {op.index}
        if op.name in op.parents:
            raise invalid_param(f"adbatch[{op.index}] references itself", "adbatch")
    order: list[int] = []
    done: set[int] = set()
    pending = [op.index for op in ops]
    while pending:
        ready = [i for i in pending if deps[i] <= done]
        if not ready:
            raise invalid_param("adbatch has a dependency cycle", "adbatch")
        ready_set = set(ready)
        order.extend(ready)
        done |= ready_set
        pending = [i for i in pending if i not in ready_set]
    return order


def _create_set(
    ctx: CallContext,
    account: Node,
    kind: str,
    name: str,
    ops: list[BatchOp],
    inputs: list[Any],
    scopes: list[Any],
) -> dict[str, Any]:
    uri, mode = _notification(ctx)
    order = _processing_order(ops) if kind == KIND_BATCH else [op.index for op in ops]
    store = ctx.store
    set_node = store.add(
        ASYNC_REQUEST_SET,
        {
            "owner_id": numeric_id(account.id),
            "name": name,
            "kind": kind,
            "notification_uri": uri,
            "notification_mode": mode or ("ON_COMPLETE" if uri else "OFF"),
            "notification_status": "not_sent",
            "notification_result": None,
        },
        now=ctx.now,
        account_id=account.id,
    )
    request_ids: list[str] = []
    for item_input, scope in zip(inputs, scopes, strict=True):
        node = store.add(
            ASYNC_REQUEST,
            {
                "scope_object_id": scope,
                "status": "initial",
                "input": item_input,
                "async_request_set": set_node.id,
            },
            now=ctx.now,
            account_id=account.id,
            parent_id=set_node.id,
        )
        request_ids.append(node.id)
    set_node.data["request_ids"] = request_ids
    request = ctx.request
    track(
        ctx.core,
        set_node.id,
        SetRuntime(
            token=request.token,
            proof=request.appsecret_proof,
            version=ctx.version,
            base_url=request.base_url,
            ops={request_ids[op.index]: op for op in ops},
            order=[request_ids[i] for i in order],
            by_name={op.name: request_ids[op.index] for op in ops if op.name is not None},
            cursor=ctx.now,
        ),
    )
    advance(ctx.core, set_node, ctx.now)
    return {"id": set_node.id}


@routes.add("POST", AD_ACCOUNT, "async_batch_requests")
def create_async_batch(ctx: CallContext, node: Node | None) -> Any:
    """S003 §Ad Account Async Batch Requests: ``name`` + ``adbatch`` (≤ 1000) → ``{"id"}``; 194 / 100."""
    check_account_access(node)
    assert node is not None
    name = _required(ctx, "name", 194)
    raw = _required(ctx, "adbatch", 194)
    if not isinstance(name, str):
        raise invalid_param("Param name must be a string", "name")
    items = _list_param(ctx, "adbatch", raw)
    ops = [parse_op(i, item, label="adbatch", default_method="POST") for i, item in enumerate(items)]
    inputs = [
        {k: item[k] for k in ("name", "relative_url", "body", "method", "depends_on") if k in item}
        for item in items
    ]
    scopes = [_initial_scope(op) for op in ops]
    return _create_set(ctx, node, KIND_BATCH, name, ops, inputs, scopes)


def _initial_scope(op: BatchOp) -> Any:
    path = urlsplit(op.relative_url.strip().lstrip("/")).path
    first, _, rest = path.partition("/")
    if first.startswith("v") and first[1:].replace(".", "").isdigit():
        path = rest
    return scope_from(path.strip("/"), dict(decode_body(op.body)))


def _spec_op(index: int, relative_url: str, spec: Mapping[str, Any]) -> BatchOp:
    body = {str(k): v for k, v in spec.items()}
    return BatchOp(
        index=index,
        method="POST",
        relative_url=relative_url,
        body=body,
        name=None,
        depends_on=None,
        omit_response_on_success=None,
        attached_files=(),
        parents=frozenset(),
    )


def _spec(value: Any, key: str) -> dict[str, Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise invalid_param(f"Param {key} must be a JSON object", key) from None
    if not isinstance(value, dict) or not value:
        raise invalid_param(f"Param {key} must be a non-empty JSON object", key)
    return value


@routes.add("POST", AD_ACCOUNT, "asyncadrequestsets")
def create_ad_request_set(ctx: CallContext, node: Node | None) -> Any:
    """S003 §Ad Account Asyncadrequestsets: ``name`` + ``ad_specs`` → one ad create per spec."""
    check_account_access(node)
    assert node is not None
    name = str(_required(ctx, "name", 100))
    specs = [_spec(s, "ad_specs") for s in _list_param(ctx, "ad_specs", _required(ctx, "ad_specs", 100))]
    ops = [_spec_op(i, f"{node.id}/ads", spec) for i, spec in enumerate(specs)]
    scopes = [numeric_id(s["adset_id"]) if s.get("adset_id") else numeric_id(node.id) for s in specs]
    return _create_set(ctx, node, KIND_AD_SPECS, name, ops, specs, scopes)


@routes.add("POST", AD_ACCOUNT, "asyncadcreatives")
def create_creative_request_set(ctx: CallContext, node: Node | None) -> Any:
    """S003 §Ad Account Asyncadcreatives: ``name`` + ``creative_spec`` → one creative create."""
    check_account_access(node)
    assert node is not None
    name = str(_required(ctx, "name", 100))
    spec = _spec(_required(ctx, "creative_spec", 100), "creative_spec")
    op = _spec_op(0, f"{node.id}/adcreatives", spec)
    return _create_set(ctx, node, KIND_CREATIVE, name, [op], [spec], [numeric_id(node.id)])


# --- rendering ---------------------------------------------------------------------------------------
def _fields(spec: str | None, default: str, known: tuple[str, ...], label: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for item in split_fields(spec or default):
        name, _, sub = item.partition("{")
        name = name.strip()
        if name not in known:
            raise GraphAPIError(
                code=100, message=f"(#100) Tried accessing nonexisting field ({name}) on node type ({label})"
            )
        out.append((name, sub.rstrip("}")))
    return out


def _requests_of(ctx: CallContext, set_node: Node) -> list[Node]:
    return [n for n in (ctx.store.get(i) for i in set_node.data["request_ids"]) if n is not None]


def render_set(ctx: CallContext, set_node: Node, fields_spec: str | None) -> dict[str, Any]:
    fields = _fields(fields_spec, SET_DEFAULT_FIELDS, SET_FIELDS, "AdAsyncRequestSet")
    counts = dict.fromkeys(STATUSES, 0)
    for request in _requests_of(ctx, set_node):
        counts[request.data["status"]] += 1
    out: dict[str, Any] = {"id": set_node.id}  # Graph always answers the id (seed: fields=result → id too)
    for name, _ in fields:
        if name == "id":
            continue
        if name == "is_completed":
            out[name] = counts["initial"] == 0 and counts["in_progress"] == 0
        elif name == "total_count":
            out[name] = sum(counts.values())
        elif name.endswith("_count"):
            out[name] = counts[name.removesuffix("_count")]
        elif set_node.data.get(name) is not None:
            out[name] = set_node.data[name]
    return out


def render_request(ctx: CallContext, request: Node, fields_spec: str | None) -> dict[str, Any]:
    fields = _fields(fields_spec, REQUEST_DEFAULT_FIELDS, REQUEST_FIELDS, "AdAsyncRequest")
    out: dict[str, Any] = {"id": request.id}
    for name, sub in fields:
        if name == "id":
            continue
        if name == "status":
            out[name] = str(request.data["status"]).upper()
        elif name == "async_request_set":
            set_node = ctx.store.get(request.data["async_request_set"])
            if set_node is not None:
                out[name] = render_set(ctx, set_node, sub or "id")
        elif request.data.get(name) is not None:
            out[name] = request.data[name]
    return out


def _page(ctx: CallContext, items: list[Node], render: Callable[[Node], dict[str, Any]]) -> dict[str, Any]:
    """Cursor pagination like every edge (S003 §Paginated Results), newest first."""
    items = sorted(items, key=lambda n: n.seq, reverse=True)
    default = ctx.config.page_size_default
    limit = ctx.params.int("limit", default) or default
    if limit < 1:
        raise invalid_param("Param limit must be a positive integer", "limit")
    limit = min(limit, ctx.config.page_size_max)
    start = 0
    after, before = ctx.params.str("after"), ctx.params.str("before")
    if after or before:
        cursor_id = decode_cursor(after or before or "")
        positions = {n.id: i for i, n in enumerate(items)}
        if cursor_id is None or cursor_id not in positions:
            which = "After" if after else "Before"
            raise invalid_param(f"The {which} Cursor specified is invalid", "after" if after else "before")
        start = positions[cursor_id] + 1 if after else max(0, positions[cursor_id] - limit)
    page = items[start : start + limit]
    paging: dict[str, Any] = {}
    if page:
        paging["cursors"] = {"before": encode_cursor(page[0].id), "after": encode_cursor(page[-1].id)}
        base = f"{ctx.request.base_url}/{ctx.version}/{ctx.request.path}"
        query = {k: v for k, v in ctx.params.raw().items() if k not in ("after", "before")}
        query = {k: (json.dumps(v) if isinstance(v, (list, dict)) else v) for k, v in query.items()}
        if start + limit < len(items):
            paging["next"] = (
                f"{base}?{urlencode({**query, 'limit': limit, 'after': paging['cursors']['after']})}"
            )
        if start > 0:
            paging["previous"] = (
                f"{base}?{urlencode({**query, 'limit': limit, 'before': paging['cursors']['before']})}"
            )
    return {"data": [render(n) for n in page], "paging": paging}


def _status_filter(ctx: CallContext) -> set[str] | None:
    raw = ctx.params.list("status")
    if raw is None:
        return None
    wanted = {str(v).strip().lower() for v in raw}
    bad = sorted(wanted - set(STATUSES))
    if bad:
        raise invalid_param(
            f"Param status[0] must be one of {{{', '.join(STATUSES)}}} - got {bad[0]}", "status"
        )
    return wanted


# --- reads ------------------------------------------------------------------------------------------
def _set_of(ctx: CallContext, request: Node) -> Node:
    set_node = ctx.store.get(str(request.parent_id))
    assert set_node is not None
    return set_node


@routes.add("GET", ASYNC_REQUEST_SET)
def read_set(ctx: CallContext, node: Node | None) -> Any:
    assert node is not None
    advance(ctx.core, node, ctx.now)
    return render_set(ctx, node, ctx.params.str("fields"))


@routes.add("GET", ASYNC_REQUEST_SET, "requests")
def list_requests(ctx: CallContext, node: Node | None) -> Any:
    assert node is not None
    advance(ctx.core, node, ctx.now)
    wanted = _status_filter(ctx)
    fields = ctx.params.str("fields")
    requests = [r for r in _requests_of(ctx, node) if wanted is None or r.data["status"] in wanted]
    return _page(ctx, requests, lambda r: render_request(ctx, r, fields))


@routes.add("GET", ASYNC_REQUEST)
def read_request(ctx: CallContext, node: Node | None) -> Any:
    assert node is not None
    advance(ctx.core, _set_of(ctx, node), ctx.now)
    return render_request(ctx, node, ctx.params.str("fields"))


def _list_sets(ctx: CallContext, account: Node, kind: str) -> Any:
    is_completed = ctx.params.bool("is_completed") if ctx.params.has("is_completed") else None
    fields = ctx.params.str("fields")
    sets = [s for s in ctx.store.children(account.id, ASYNC_REQUEST_SET) if s.data["kind"] == kind]
    for set_node in sets:
        advance(ctx.core, set_node, ctx.now)
    if is_completed is not None:
        sets = [s for s in sets if render_set(ctx, s, "is_completed")["is_completed"] == is_completed]
    return _page(ctx, sets, lambda s: render_set(ctx, s, fields))


@routes.add("GET", AD_ACCOUNT, "async_requests")
def list_batch_sets(ctx: CallContext, node: Node | None) -> Any:
    """S003 §Asynchronous and Batch Requests → List Batch API Requests for Ad Account."""
    check_account_access(node)
    assert node is not None
    return _list_sets(ctx, node, KIND_BATCH)


@routes.add("GET", AD_ACCOUNT, "asyncadrequestsets")
def list_ad_request_sets(ctx: CallContext, node: Node | None) -> Any:
    """S003 §Asynchronous and Batch Requests → List Request Sets for an Account."""
    check_account_access(node)
    assert node is not None
    return _list_sets(ctx, node, KIND_AD_SPECS)


def _ad_requests(ctx: CallContext, node: Node | None) -> Any:
    """S003 §Asynchronous and Batch Requests → List Requests for an Ad Set (also on a campaign)."""
    assert node is not None and node.account_id is not None
    adsets = {node.id} if node.type == ADSET else {a.id for a in ctx.store.children(node.id, ADSET)}
    sets = [
        s for s in ctx.store.children(node.account_id, ASYNC_REQUEST_SET) if s.data["kind"] == KIND_AD_SPECS
    ]
    for set_node in sets:
        advance(ctx.core, set_node, ctx.now)
    wanted = _status_filter(ctx)
    fields = ctx.params.str("fields")
    requests = [
        r
        for s in sets
        for r in _requests_of(ctx, s)
        if str(r.data["scope_object_id"]) in adsets and (wanted is None or r.data["status"] in wanted)
    ]
    return _page(ctx, requests, lambda r: render_request(ctx, r, fields))


routes.add("GET", ADSET, "asyncadrequests")(_ad_requests)
routes.add("GET", CAMPAIGN, "asyncadrequests")(_ad_requests)


# --- update and cancel ------------------------------------------------------------------------------
@routes.add("POST", ASYNC_REQUEST_SET)
def update_set(ctx: CallContext, node: Node | None) -> Any:
    """Update ``name`` / notification fields (the latter only before the notification is sent) → true."""
    assert node is not None
    advance(ctx.core, node, ctx.now)
    uri, mode = _notification(ctx)
    name = ctx.params.str("name")
    if (uri is not None or mode is not None) and node.data["notification_status"] != "not_sent":
        raise invalid_param(
            "notification_uri and notification_mode cannot be changed after the notification was sent",
            "notification_mode" if mode is not None else "notification_uri",
        )
    if name is not None:
        node.data["name"] = name
    if uri is not None:
        node.data["notification_uri"] = uri
    if mode is not None:
        node.data["notification_mode"] = mode
    if (
        node.data["notification_mode"] == "ON_COMPLETE"
        and render_set(ctx, node, "is_completed")["is_completed"]
    ):
        complete(node)
    return True


@routes.add("DELETE", ASYNC_REQUEST_SET)
def cancel_set(ctx: CallContext, node: Node | None) -> Any:
    """Cancel every request of the set that is not processed yet → true."""
    assert node is not None
    advance(ctx.core, node, ctx.now)
    for request in _requests_of(ctx, node):
        if request.data["status"] == "initial":
            request.data["status"] = "canceled"
    advance(ctx.core, node, ctx.now)
    return True


@routes.add("DELETE", ASYNC_REQUEST)
def cancel_request(ctx: CallContext, node: Node | None) -> Any:
    """Cancel one request if it is not processed yet → true; code 100 once it is in progress or done."""
    assert node is not None
    set_node = _set_of(ctx, node)
    advance(ctx.core, set_node, ctx.now)
    status = node.data["status"]
    if status != "initial":
        raise GraphAPIError(
            code=100,
            type="GraphMethodException",
            message=f"(#100) The async request {node.id} cannot be canceled: it is already {status.upper()}",
        )
    node.data["status"] = "canceled"
    advance(ctx.core, set_node, ctx.now)
    return True
