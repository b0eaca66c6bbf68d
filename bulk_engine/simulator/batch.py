"""The synchronous batch endpoint (S003 §Batch Requests, §Asynchronous and Batch Requests → Batch Requests).

``POST /``, ``POST /vX.Y/`` or ``POST /<any node path>`` with ``batch=[{method, relative_url, body, name, …}]``
as a form field or a query parameter (S003 §Batch Requests → Batch Request: ``POST /ENDPOINT?batch=``):

- the top-level ``access_token`` is required even when every op carries its own ("You must include an
  access token as a top level parameter, even when all individual requests contain their own tokens");
  an op's ``access_token`` (in its ``relative_url`` query or its ``body``) overrides it, the top-level token
  being the fallback (§Using Multiple Access Tokens);
- at most ``max_batch_ops`` (50) operations (§Limitations); more → code 100 for the whole request, no op run;
- op fields: ``method`` (GET/POST/PUT/DELETE; PUT is POST), ``relative_url`` (the part after the host,
  optionally version-prefixed, possibly only a query string like ``?ids=…``), ``body`` (a raw form string,
  also accepted percent-encoded as a whole and as a JSON object), ``name``, ``depends_on``,
  ``omit_response_on_success``, ``attached_files`` (comma-separated names of multipart parts,
  §Upload Binary Data; naming a part that was not sent is a per-op code 100);
- each op runs through the same :meth:`GraphCore.call` as a plain call, so it is authenticated, versioned,
  charged as one call to its ad account's rate limit ("a batch of 10 API calls will count as 10 calls")
  and answered with its own usage headers;
- ``{result=NAME:$.jsonpath}`` in ``relative_url`` and in ``body`` values — plain, percent-encoded
  (``%7Bresult%3DNAME%3A%24.id%7D``) or inside JSON text (``creative={"creative_id":"{result=c:$.id}"}``) —
  is replaced by the JSONPath value of the named op's answer; several values (``$.data.*.id``,
  ``$.images.*.hash``) are comma-joined. JSONPath expressions are compiled once and cached (simple dotted
  paths with ``*`` and ``[n]`` by a fast walker, anything else through ``jsonpath_ng``);
- an op whose referenced op failed, is unknown, comes later in the array, or yields no value gets a per-op
  code 100 error and is not run (nor charged); independent siblings still run;
- the answer is ``[{code, headers:[{name,value}], body:"<JSON string>"}]`` in request order (§Batch
  Request); ``include_headers=false`` drops ``headers``; GET answers carry an ``ETag``;
- token and permission errors (codes 10, 102, 190, 200–299) inside an op are answered with code **403**
  and a ``WWW-Authenticate`` header, exactly like the §Errors sample; other errors keep their HTTP status
  (400 for code 100, the throttle codes, …) and their body is the error JSON as a string;
- ``null`` entries on an (injected, seeded) partial timeout (§Timeouts: "Responses for requests that are
  not successful will be null"): ``FaultConfig.null_rate`` makes an op's entry ``null`` either *before* it
  ran (nothing committed) or *after* it ran (committed, answer lost — the case a client must reconcile);
  ops that reference a ``null`` op are ``null`` too (cascade) and are not run.

Choices where the seeds are silent (SPEC-DIGEST §1.1, §1.4, §9.1 item 1), configurable in ``SimulatorConfig``:

- ``omit_response_on_success`` (``omit_referenced_batch_responses``, default ``True``): a named op that
  another op references (``{result=…}`` or ``depends_on``) is answered ``null`` on success unless it sets
  ``omit_response_on_success: false`` — the long-standing Graph behaviour. An op that sets
  ``omit_response_on_success: true`` is answered ``null`` on success whether referenced or not. Errors are
  always answered. Clients that need a parent's id (every bulk engine) send ``false``. With the option
  off, only an explicit ``true`` omits.
- ``depends_on: NAME`` (``honour_depends_on``): the op runs only if NAME ran and succeeded, else code 100.
- Ops run in request order; a reference must name an earlier op.
- Two ad-set creates under the same campaign in one batch ("Batch requests cannot include multiple Adsets
  under the same Campaign", ``reject_sibling_adsets_in_batch``): the second and later ones get code 100
  type ``GraphBatchException`` and are not run, whatever happened to the first; the campaign is compared
  after ``{result=…}`` substitution, so two references to the same campaign-create op collide too.
- Malformed ``batch`` JSON (not an array, empty, an op without ``relative_url``, an unknown method) fails the
  whole request with code 100. Python-style relaxed JSON as printed in the seeds (single quotes, trailing
  commas) is accepted. ``method`` defaults to ``GET``.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from jsonpath_ng.ext.parser import parse as jsonpath_parse

from .context import VERSION_RE, GraphRequest, GraphResponse
from .errors import GraphAPIError, invalid_param

if TYPE_CHECKING:
    from .graph import GraphCore

# ``{result=NAME:PATH}`` plain or percent-encoded (``%7Bresult%3DNAME%3APATH%7D``), in any mix.
REF_RE = re.compile(
    r"(?:\{|%7B)result(?:=|%3D)((?:(?!:|%3A|\}|%7D|\{|%7B).)+)(?::|%3A)((?:(?!\}|%7D|\{|%7B).)+)(?:\}|%7D)",
    re.IGNORECASE,
)
METHODS = frozenset({"GET", "POST", "PUT", "DELETE"})
AUTH_ERROR_CODES = frozenset({10, 102, 190, *range(200, 300)})
CONTENT_TYPE = "text/javascript; charset=UTF-8"

Lookup = Callable[[str], Any]
"""Maps an op name to its successful answer body, or raises the dependency error."""


# --- JSON (relaxed like Graph's parser) -----------------------------------------------------------
def loads_relaxed(text: str, field_name: str) -> Any:
    """``json.loads``, falling back to Python-literal syntax for the seeds' single-quoted examples."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return ast.literal_eval(text.strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        raise invalid_param(f"Param {field_name} must be a valid JSON array", field_name) from None


# --- JSONPath -------------------------------------------------------------------------------------
_SIMPLE_PATH = re.compile(r"^\$(?:\.(?:\*|[^.\[\]*]+)|\[(?:\*|\d+)\])*$")
_STEP = re.compile(r"\.(\*|[^.\[\]*]+)|\[(\*|\d+)\]")
_WILDCARD = object()
Step = str | int | object


def _walk(steps: tuple[Step, ...], body: Any) -> list[Any]:
    values = [body]
    for step in steps:
        nxt: list[Any] = []
        for value in values:
            if step is _WILDCARD:
                if isinstance(value, dict):
                    nxt.extend(value.values())
                elif isinstance(value, list):
                    nxt.extend(value)
            elif isinstance(step, int):
                if isinstance(value, list) and -len(value) <= step < len(value):
                    nxt.append(value[step])
            elif isinstance(value, dict) and step in value:
                nxt.append(value[step])
        values = nxt
        if not values:
            break
    return values


@functools.lru_cache(maxsize=4096)
def compile_jsonpath(expr: str) -> Callable[[Any], list[Any]]:
    """Compile ``expr`` once: a fast walker for ``$.a.*.b[0]`` paths, ``jsonpath_ng`` for the rest."""
    expr = expr.strip()
    if _SIMPLE_PATH.match(expr):
        steps: list[Step] = []
        for key, index in _STEP.findall(expr[1:]):
            token = key or index
            if token == "*":
                steps.append(_WILDCARD)
            elif index:
                steps.append(int(index))
            else:
                steps.append(key)
        return functools.partial(_walk, tuple(steps))
    try:
        parsed = jsonpath_parse(expr)
    except Exception:
        raise invalid_param(f"Invalid JSONPath expression {expr!r} in a batch reference", "batch") from None
    return lambda body: [match.value for match in parsed.find(body)]


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def dependency_error(name: str) -> GraphAPIError:
    return GraphAPIError(
        code=100,
        type="GraphBatchException",
        message=f"(#100) The request depends on '{name}', which failed, was not run, or returned no result",
    )


def references(text: str) -> set[str]:
    """Names referenced by ``{result=NAME:…}`` in ``text`` (plain or percent-encoded)."""
    if "esult" not in text and "ESULT" not in text:
        return set()
    return {unquote(m.group(1)).strip() for m in REF_RE.finditer(text)}


def substitute(text: str, lookup: Lookup, *, url: bool) -> str:
    """Replace every ``{result=NAME:$.path}`` in ``text`` with the value(s) it selects (comma-joined)."""
    if "esult" not in text and "ESULT" not in text:
        return text

    def replace(match: re.Match[str]) -> str:
        name = unquote(match.group(1)).strip()
        path = unquote(match.group(2)).strip()
        body = lookup(name)
        values = [_scalar(v) for v in compile_jsonpath(path)(body) if not isinstance(v, (dict, list))]
        if not values:
            raise dependency_error(name)
        joined = ",".join(values)
        return quote(joined, safe=",:") if url else joined

    return REF_RE.sub(replace, text)


# --- one operation -> one GraphRequest ------------------------------------------------------------
def decode_body(body: str | Mapping[str, Any] | None) -> list[tuple[str, Any]]:
    """Body pairs from a form string (also percent-encoded as a whole, as in the async examples)."""
    if not body:
        return []
    if isinstance(body, Mapping):
        return [(str(k), v) for k, v in body.items()]
    text = str(body)
    if "=" not in text and "%3D" in text.upper():
        text = unquote(text)
    return parse_qsl(text, keep_blank_values=True)


def build_request(
    method: str,
    relative_url: str,
    body: str | Mapping[str, Any] | None,
    lookup: Lookup,
    *,
    token: str | None,
    proof: str | None,
    version: str | None,
    base_url: str,
    files: dict[str, bytes] | None = None,
) -> GraphRequest:
    """Turn one batch (or async batch) item into the Graph call it stands for, references resolved."""
    rel = substitute(relative_url.strip(), lookup, url=True)
    if rel.startswith(("http://", "https://")):
        rel = urlsplit(rel)._replace(scheme="", netloc="").geturl()
    split = urlsplit(rel if rel.startswith("/") else "/" + rel)
    params: dict[str, Any] = dict(parse_qsl(split.query, keep_blank_values=True))
    for key, value in decode_body(body):
        params[key] = substitute(value, lookup, url=False) if isinstance(value, str) else value
    path = split.path.strip("/")
    first, _, rest = path.partition("/")
    if VERSION_RE.match(first):
        version, path = first, rest
    op_token = params.pop("access_token", None) or token
    op_proof = params.pop("appsecret_proof", None) or proof
    return GraphRequest(
        method=method,
        path=path,
        params=params,
        token=str(op_token) if op_token else None,
        version=version,
        appsecret_proof=str(op_proof) if op_proof else None,
        files=files or {},
        in_batch=True,
        base_url=base_url,
    )


# --- parsing the batch parameter ------------------------------------------------------------------
@dataclass(frozen=True)
class BatchOp:
    """One validated operation of a ``batch`` parameter."""

    index: int
    method: str
    relative_url: str
    body: str | Mapping[str, Any] | None
    name: str | None
    depends_on: str | None
    omit_response_on_success: bool | None  # None: not given, the configured default applies
    attached_files: tuple[str, ...]
    parents: frozenset[str]  # names referenced through {result=…} or depends_on


def _batch_error(message: str) -> GraphAPIError:
    return GraphAPIError(code=100, type="GraphBatchException", message=f"(#100) {message}")


def _flag(value: Any) -> bool | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("true", "1")


def parse_op(index: int, raw: Any, *, label: str = "batch", default_method: str = "GET") -> BatchOp:
    """Validate one op (``label`` names the parameter in errors: ``batch`` or ``adbatch``)."""
    if not isinstance(raw, dict):
        raise _batch_error(f"{label}[{index}] must be a JSON object")
    if not isinstance(raw.get("relative_url"), str):
        raise _batch_error(f"{label}[{index}]: relative_url is required and must be a string")
    method = str(raw.get("method") or default_method).upper()
    if method not in METHODS:
        raise _batch_error(f"{label}[{index}]: unsupported method {method}")
    body = raw.get("body")
    if body is not None and not isinstance(body, (str, dict)):
        raise _batch_error(f"{label}[{index}]: body must be a string")
    attached = raw.get("attached_files") or ()
    names = attached.split(",") if isinstance(attached, str) else [str(a) for a in attached]
    name = str(raw["name"]) if raw.get("name") not in (None, "") else None
    depends = str(raw["depends_on"]) if raw.get("depends_on") not in (None, "") else None
    texts = [raw["relative_url"]]
    if isinstance(body, str):
        texts.append(body)
    elif isinstance(body, dict):
        texts.extend(v for v in body.values() if isinstance(v, str))
    parents = set().union(*(references(t) for t in texts))
    if depends:
        parents.add(depends)
    return BatchOp(
        index=index,
        method="POST" if method == "PUT" else method,
        relative_url=raw["relative_url"],
        body=body,
        name=name,
        depends_on=depends,
        omit_response_on_success=_flag(raw.get("omit_response_on_success")),
        attached_files=tuple(n.strip() for n in names if n.strip()),
        parents=frozenset(parents),
    )


def parse_batch(raw: Any, max_ops: int) -> list[BatchOp]:
    """Validate the ``batch`` parameter (JSON text or an already decoded list)."""
    if isinstance(raw, str):
        raw = loads_relaxed(raw, "batch")
    if not isinstance(raw, list) or not raw:
        raise invalid_param("The batch parameter must be a non-empty JSON array", "batch")
    if len(raw) > max_ops:
        raise _batch_error(f"Too many requests in batch message. Maximum batch size is {max_ops}")
    return [parse_op(i, op) for i, op in enumerate(raw)]


# --- running a batch ------------------------------------------------------------------------------
@dataclass
class _OpState:
    response: GraphResponse | None  # None: the entry is null (not run, or its answer was lost)
    ok: bool


def run_batch(
    core: GraphCore,
    ops: Sequence[BatchOp],
    *,
    token: str | None,
    proof: str | None,
    version: str | None,
    include_headers: bool,
    http_request: int,
    files: dict[str, bytes],
    base_url: str = "https://graph.facebook.com",
) -> list[Any]:
    """Run the ops in request order and render the answer array (one entry or ``null`` per op)."""
    states: dict[str, _OpState] = {}
    referenced: set[str] = set().union(*(op.parents for op in ops))
    omit_referenced = core.config.omit_referenced_batch_responses
    campaigns_with_adset: set[str] = set()

    def lookup(name: str) -> Any:
        state = states.get(name)
        if state is None or not state.ok or state.response is None:
            raise dependency_error(name)
        return state.response.body

    out: list[Any] = []
    for op in ops:
        state = _run_op(
            core,
            op,
            states,
            lookup,
            token,
            proof,
            version,
            http_request,
            files,
            base_url,
            campaigns_with_adset,
        )
        if op.name:
            states[op.name] = state
        response = state.response
        if response is None:
            out.append(None)
            continue
        omit = op.omit_response_on_success
        if omit is None:
            omit = omit_referenced and op.name is not None and op.name in referenced
        if state.ok and omit:
            out.append(None)
            continue
        out.append(render_entry(response, include_headers=include_headers, method=op.method))
    return out


def _run_op(
    core: GraphCore,
    op: BatchOp,
    states: dict[str, _OpState],
    lookup: Lookup,
    token: str | None,
    proof: str | None,
    version: str | None,
    http_request: int,
    files: dict[str, bytes],
    base_url: str,
    campaigns_with_adset: set[str],
) -> _OpState:
    fault = core.faults.null_entry()
    if fault == "before":
        return _OpState(None, False)
    # A partial timeout cascades: an op that needs a null op's answer is not run and is null too.
    for parent in op.parents:
        state = states.get(parent)
        if state is not None and state.response is None:
            return _OpState(None, False)
    try:
        if op.depends_on and core.config.honour_depends_on:
            parent_state = states.get(op.depends_on)
            if parent_state is None or not parent_state.ok:
                raise dependency_error(op.depends_on)
        missing = [f for f in op.attached_files if f not in files]
        if missing:
            raise invalid_param(f"File {missing[0]} has not been attached", "attached_files")
        request = build_request(
            op.method,
            op.relative_url,
            op.body,
            lookup,
            token=token,
            proof=proof,
            version=version,
            base_url=base_url,
            files={f: files[f] for f in op.attached_files},
        )
        if core.config.reject_sibling_adsets_in_batch and op.method == "POST":
            _check_sibling_adset(request, campaigns_with_adset)
    except GraphAPIError as err:
        return _OpState(GraphResponse(err.http_status, err.body(), dict(err.extra_headers)), False)
    response = core.call(request, http_request=http_request, name=op.name)
    ok = 200 <= response.status < 300
    if fault == "after":
        return _OpState(None, ok)
    return _OpState(response, ok)


def _check_sibling_adset(request: GraphRequest, campaigns_with_adset: set[str]) -> None:
    """S003 §Batch Requests → Limitations: "cannot include multiple Adsets under the same Campaign"."""
    node, _, edge = request.path.partition("/")
    if edge != "adsets" or not node.startswith("act_"):
        return
    campaign = request.params.get("campaign_id")
    if campaign in (None, ""):
        return
    key = str(campaign).strip()
    if key in campaigns_with_adset:
        raise GraphAPIError(
            code=100,
            type="GraphBatchException",
            message="(#100) Batch requests cannot include multiple Adsets under the same Campaign",
            user_title="Multiple ad sets under one campaign",
            user_msg=f"Campaign {key} already has an ad set create in this batch; send this one in another batch.",
            blame_field_specs=[["campaign_id"]],
        )
    campaigns_with_adset.add(key)


def _is_auth_error(body: Any) -> bool:
    if not isinstance(body, dict) or not isinstance(body.get("error"), dict):
        return False
    return body["error"].get("code") in AUTH_ERROR_CODES


def render_entry(response: GraphResponse, *, include_headers: bool, method: str = "GET") -> dict[str, Any]:
    """One batch answer ``{code, headers, body}`` with the body as a JSON string (S003 §Batch Requests)."""
    status = response.status
    body_text = json.dumps(response.body, separators=(",", ":"))
    entry: dict[str, Any] = {"code": status}
    auth_error = status >= 400 and _is_auth_error(response.body)
    if auth_error:
        entry["code"] = 403  # S003 §Batch Requests → Errors
    if include_headers:
        headers: list[dict[str, str]] = []
        if auth_error:
            challenge = response.headers.get("WWW-Authenticate") or (
                'OAuth "Facebook Platform" "invalid_token" "'
                + str(response.body["error"].get("message", "")).replace('"', "'")
                + '"'
            )
            headers.append({"name": "WWW-Authenticate", "value": challenge})
        headers.append({"name": "Content-Type", "value": CONTENT_TYPE})
        if method == "GET" and status == 200:
            headers.append(
                {"name": "ETag", "value": '"' + hashlib.sha1(body_text.encode()).hexdigest() + '"'}
            )
        headers.extend(
            {"name": k, "value": v} for k, v in response.headers.items() if k != "WWW-Authenticate"
        )
        entry["headers"] = headers
    entry["body"] = body_text
    return entry
