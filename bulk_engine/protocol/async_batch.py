"""The wire format of Meta's async batch requests, sans I/O (S003 §Asynchronous and Batch Requests → Batch
API; §Ad Account Async Batch Requests).

* Submit: ``POST act_<id>/async_batch_requests`` with ``name`` and ``adbatch``, "an array of HTTP POST
  requests as JSON arrays. Each request has: ``name``, ``relative_url`` […], ``body``"; "Each API call can
  have a maximum of 1000 requests"; references between them in JSONPath format (``{result=NAME:$.id}``).
  The answer is ``{"id": <request set id>}``. :func:`encode_adbatch` enforces the documented limits locally
  (at most 1,000, each a POST, names unique) so a set Graph would refuse is never sent.
* Status: ``GET /<set id>?fields=…`` → ``total_count``, ``initial_count``, ``in_progress_count``,
  ``success_count``, ``error_count``, ``canceled_count``, ``is_completed`` (:func:`set_progress`).
* Results: ``GET /<set id>/requests?fields=id,status,result,input`` (cursor-paged): ``status`` is one of
  ``Initial``, ``In_progress``, ``Success``, ``Error``, ``Canceled``; ``result`` is "same as non-async API"
  on success and ``[{error_code, error_message}]`` on error. :func:`request_item` turns a finished request
  into the :class:`~bulk_engine.protocol.batch.BatchItemResult` a sync batch entry would have been, so the
  engine judges it with the same decision function (``execution/decide.py``) and reports the same Graph
  error shape (code and message: all the async API returns).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .batch import BatchItemResult, BatchOp, Headers, batch_op_to_dict

__all__ = [
    "MAX_ASYNC_REQUESTS",
    "SET_STATUS_FIELDS",
    "SetProgress",
    "answer_item",
    "encode_adbatch",
    "request_item",
    "request_name",
    "request_status",
    "set_progress",
]

MAX_ASYNC_REQUESTS = 1000  # "Each API call can have a maximum of 1000 requests"
SET_STATUS_FIELDS = (
    "id,is_completed,total_count,initial_count,in_progress_count,success_count,error_count,canceled_count"
)
REQUEST_FIELDS = "id,status,result,input"
FINISHED = ("success", "error")


def encode_adbatch(ops: Sequence[BatchOp]) -> str:
    """The ``adbatch`` field: a JSON array of ``{name, relative_url, body}``. ``ValueError`` (nothing sent)
    for an empty set, more than 1,000 requests, a method other than POST, or a missing/duplicate name."""
    if not ops:
        raise ValueError("an async request set needs at least one request")
    if len(ops) > MAX_ASYNC_REQUESTS:
        raise ValueError(f"{len(ops)} requests exceed the async batch limit of {MAX_ASYNC_REQUESTS}")
    names: set[str] = set()
    items: list[dict[str, Any]] = []
    for op in ops:
        if op.method != "POST":
            raise ValueError(f"async batch requests are POSTs only (S003), got {op.method} {op.relative_url}")
        if op.name is None or op.name in names:
            raise ValueError(f"every request of a set needs a unique name, got {op.name!r}")
        names.add(op.name)
        entry = batch_op_to_dict(op)
        items.append({k: entry[k] for k in ("name", "relative_url", "body") if k in entry})
    return json.dumps(items, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class SetProgress:
    """A request set's status (``GET /<set id>``)."""

    total: int
    initial: int
    in_progress: int
    success: int
    error: int
    canceled: int
    is_completed: bool


def set_progress(body: Any) -> SetProgress:
    """The status fields of a set; ``ValueError`` when the answer is not a set's status."""
    if not isinstance(body, Mapping) or not isinstance(body.get("is_completed"), bool):
        raise ValueError("not an async request set status (no boolean is_completed)")

    def count(name: str) -> int:
        value = body.get(f"{name}_count", 0)
        return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0

    return SetProgress(
        count("total"),
        count("initial"),
        count("in_progress"),
        count("success"),
        count("error"),
        count("canceled"),
        body["is_completed"],
    )


def request_status(request: Mapping[str, Any]) -> str:
    """``initial`` / ``in_progress`` / ``success`` / ``error`` / ``canceled`` (Graph prints them capitalised)."""
    return str(request.get("status", "")).strip().lower()


def request_name(request: Mapping[str, Any]) -> str | None:
    """The ``name`` the request was submitted with (from its ``input``), which names its operation."""
    raw = request.get("input")
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return None
    name = raw.get("name") if isinstance(raw, Mapping) else None
    return name if isinstance(name, str) else None


def request_item(index: int, request: Mapping[str, Any]) -> BatchItemResult:
    """A finished request as the batch entry the sync API would have answered.

    ``Success`` → HTTP 200 with ``result`` as the body; ``Error`` → HTTP 400 with
    ``{"error": {"code", "message"}}`` built from ``result[0]``; anything else (not finished, no result,
    an odd shape) → a malformed entry, which the decision function treats as an unknown outcome.
    """
    status = request_status(request)
    result = request.get("result")
    if status == "success":
        if result is None:
            return BatchItemResult(index, 200, malformed="a successful async request without its result")
        return BatchItemResult(index, 200, body=result)
    if status == "error":
        first = result[0] if isinstance(result, list) and result else result
        if not isinstance(first, Mapping):
            return BatchItemResult(index, None, malformed="a failed async request without its error")
        error: dict[str, Any] = {"message": str(first.get("error_message") or "async request failed")}
        code = first.get("error_code")
        if isinstance(code, int) and not isinstance(code, bool):
            error["code"] = code
        elif isinstance(code, str) and code.strip().lstrip("-").isdigit():
            error["code"] = int(code)
        return BatchItemResult(index, 400, body={"error": error})
    return BatchItemResult(
        index, None, malformed=f"async request not finished (status {status or 'missing'})"
    )


def answer_item(status: int, headers: Mapping[str, str], body: Any, text: str) -> BatchItemResult:
    """A direct (non-batch) Graph answer as one batch entry, so the same decision function judges it."""
    wire = Headers(headers.items())
    if body is None:
        return BatchItemResult(0, status, wire, raw=text[:500], malformed=f"HTTP {status}: body is not JSON")
    return BatchItemResult(0, status, wire, body=body, raw=text[:500])
