"""The synchronous batch endpoint (S003 §Batch Requests, §Asynchronous and Batch Requests).

``POST /`` (or ``/vX.Y/`` or a node path) with ``batch=[{method, relative_url, body, name, …}]``:
- at most ``max_batch_ops`` (50) operations, else the whole request fails with code 100;
- each op runs through the same core as a plain call and is charged as one call;
- ``{result=NAME:$.jsonpath}`` in ``relative_url`` and ``body`` (plain, percent-encoded, or inside JSON
  text) is replaced by the JSONPath value of the named op's answer (several values comma-joined);
- an op whose referenced op failed, was not run, or yields nothing gets an error and is not run;
- answers ``[{code, headers:[{name,value}], body:"<JSON string>"}]`` in request order; ``null`` entries on
  an (injected) partial timeout — the op may or may not have been committed;
- per-op ``access_token`` (query or body) with the top-level token as fallback; ``include_headers=false``
  drops the per-op headers; ``attached_files`` names multipart parts.

Choices where the seeds are silent (SPEC-DIGEST §1.1, §1.4), each configurable in ``SimulatorConfig``:
- ``omit_response_on_success``: a named op whose result another op references is answered ``null`` unless
  it sets ``omit_response_on_success: false`` — the long-standing Graph behaviour. Clients that need the
  parent's id (every bulk engine) must send ``false``.
- ``depends_on: NAME``: the op runs only if NAME succeeded; otherwise it gets an error.
- Two ad-set creates under the same campaign in one batch ("Batch requests cannot include multiple Adsets
  under the same Campaign"): the second and later ones get code 100 and are not run; siblings proceed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlsplit

from jsonpath_ng.ext import parse as jsonpath_parse

from .errors import GraphAPIError, invalid_param
from .graph import VERSION_RE, GraphRequest, GraphResponse

if TYPE_CHECKING:
    from .graph import GraphCore

REF_RE = re.compile(r"\{result=([^:{}]+):([^{}]+)\}")


@dataclass
class _OpState:
    name: str | None
    response: GraphResponse | None  # None: not run (null or skipped)
    ok: bool


def parse_batch(raw: Any, max_ops: int) -> list[dict[str, Any]]:
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            raise invalid_param("The batch parameter must be a JSON array", "batch") from None
    if not isinstance(raw, list) or not raw:
        raise invalid_param("The batch parameter must be a non-empty JSON array", "batch")
    if len(raw) > max_ops:
        raise GraphAPIError(
            code=100,
            message=f"(#100) Too many requests in batch message. Maximum batch size is {max_ops}",
            type="GraphBatchException",
        )
    for i, op in enumerate(raw):
        if not isinstance(op, dict) or not op.get("method") or "relative_url" not in op:
            raise GraphAPIError(
                code=100,
                type="GraphBatchException",
                message=f"(#100) batch[{i}]: each request must be an object with method and relative_url",
            )
    return raw


def run_batch(
    core: GraphCore,
    ops: list[dict[str, Any]],
    *,
    token: str | None,
    proof: str | None,
    version: str | None,
    include_headers: bool,
    http_request: int,
    files: dict[str, bytes],
    base_url: str = "https://graph.facebook.com",
) -> list[Any]:
    """Run the ops in order (dependent ops after their parents) and render the answer array."""
    states: dict[str, _OpState] = {}
    referenced = {m.group(1) for op in ops for m in REF_RE.finditer(_op_text(op))}
    referenced |= {str(op["depends_on"]) for op in ops if op.get("depends_on")}
    campaigns_with_adset: set[str] = set()
    out: list[Any] = []
    for op in ops:
        name = str(op["name"]) if op.get("name") else None
        response, ok = _run_op(
            core, op, states, token, proof, version, http_request, files, campaigns_with_adset, base_url
        )
        if name:
            states[name] = _OpState(name, response, ok)
        if response is None:
            out.append(None)
            continue
        omit_default = name in referenced
        omit = op.get("omit_response_on_success", omit_default)
        if ok and _truthy(omit):
            out.append(None)
            continue
        entry: dict[str, Any] = {"code": response.status}
        if include_headers:
            headers = {"Content-Type": "text/javascript; charset=UTF-8", **response.headers}
            entry["headers"] = [{"name": k, "value": v} for k, v in headers.items()]
        entry["body"] = json.dumps(response.body, separators=(",", ":"))
        out.append(entry)
    return out


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() in ("true", "1")


def _op_text(op: dict[str, Any]) -> str:
    return unquote(str(op.get("relative_url", ""))) + " " + unquote(str(op.get("body", "") or ""))


def _run_op(
    core: GraphCore,
    op: dict[str, Any],
    states: dict[str, _OpState],
    token: str | None,
    proof: str | None,
    version: str | None,
    http_request: int,
    files: dict[str, bytes],
    campaigns_with_adset: set[str],
    base_url: str,
) -> tuple[GraphResponse | None, bool]:
    name = str(op["name"]) if op.get("name") else None
    fault = core.faults.null_entry()
    if fault == "before":
        return None, False
    # A partial timeout cascades: an op whose parent's entry is null is not run and is null too.
    parents = {m.group(1) for m in REF_RE.finditer(_op_text(op))} | (
        {str(op["depends_on"])} if op.get("depends_on") else set()
    )
    if any(p in states and states[p].response is None for p in parents):
        return None, False
    try:
        depends = op.get("depends_on")
        if depends and core.config.honour_depends_on:
            parent = states.get(str(depends))
            if parent is None or not parent.ok:
                raise _dependency_error(str(depends))
        method = str(op["method"]).upper()
        rel = _substitute(str(op.get("relative_url", "")), states, url=True)
        split = urlsplit(rel if rel.startswith("/") else "/" + rel)
        params: dict[str, Any] = dict(parse_qsl(split.query, keep_blank_values=True))
        body = op.get("body")
        if body:
            body_text = str(body)
            if "=" not in body_text and "%3D" in body_text.upper():
                body_text = unquote(body_text)  # body percent-encoded as a whole (async examples)
            for key, value in parse_qsl(body_text, keep_blank_values=True):
                params[key] = _substitute(value, states, url=False)
        path = split.path.strip("/")
        op_version = version
        first, _, rest = path.partition("/")
        if VERSION_RE.match(first):
            op_version, path = first, rest
        op_token = params.pop("access_token", None) or token
        op_proof = params.pop("appsecret_proof", None) or proof
        op_files = {
            f.strip(): files[f.strip()]
            for f in str(op.get("attached_files", "")).split(",")
            if f.strip() in files
        }
        if method == "POST" and path.endswith("/adsets") and core.config.reject_sibling_adsets_in_batch:
            campaign = str(params.get("campaign_id", ""))
            if campaign and campaign in campaigns_with_adset:
                raise GraphAPIError(
                    code=100,
                    type="GraphBatchException",
                    message="(#100) Batch requests cannot include multiple Adsets under the same Campaign",
                )
            if campaign:
                campaigns_with_adset.add(campaign)
    except GraphAPIError as err:
        return GraphResponse(err.http_status, err.body()), False
    request = GraphRequest(
        method=method,
        path=path,
        params=params,
        token=op_token,
        version=op_version,
        appsecret_proof=op_proof,
        files=op_files,
        in_batch=True,
        base_url=base_url,
    )
    response = core.call(request, http_request=http_request, name=name)
    ok = 200 <= response.status < 300
    if fault == "after":
        return None, ok
    return response, ok


def _dependency_error(name: str) -> GraphAPIError:
    return GraphAPIError(
        code=100,
        type="GraphBatchException",
        message=f"(#100) The request depends on '{name}', which failed or returned no result",
    )


def _substitute(text: str, states: dict[str, _OpState], *, url: bool) -> str:
    """Replace ``{result=NAME:$.path}`` (also in its percent-encoded form) with the referenced value."""
    if "result" not in text:
        return text
    if url and "%7B" in text.upper():
        text = unquote(text)

    def replace(match: re.Match[str]) -> str:
        name, path = match.group(1), match.group(2)
        state = states.get(name)
        if state is None or not state.ok or state.response is None:
            raise _dependency_error(name)
        try:
            found = [m.value for m in jsonpath_parse(path).find(state.response.body)]
        except Exception:
            raise invalid_param(f"Invalid JSONPath expression {path!r} in batch reference", "batch") from None
        values = [str(v) for v in found if not isinstance(v, (dict, list))]
        if not values:
            raise _dependency_error(name)
        return ",".join(values)

    return REF_RE.sub(replace, text)
