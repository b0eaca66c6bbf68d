"""Plans and outcomes as JSON text: lossless for :class:`~bulk_engine.planning.graph.Operation`, with
:class:`~bulk_engine.protocol.refs.Ref` serialised explicitly, and secrets scrubbed before anything is stored.

Why a codec of our own: a journal must rebuild the exact operation on resume (``engine.resume(job_id)``
works from the journal alone), and a :class:`Ref` inside ``params`` or ``path`` is not JSON. Encoding:

* ``Ref("camp", "$.id")`` → ``{"$ref": "camp", "$path": "$.id"}``;
* a mapping with a key starting with ``$`` (user data that could be mistaken for a tag) →
  ``{"$map": [[key, value], …]}``; tuples in ``params`` become lists (the wire sends both alike);
* ``path``: a string, a ``Ref`` or ``{"$parts": [...]}`` for a tuple of parts;
* any other non-JSON scalar → ``str(value)``, which is exactly what
  :func:`~bulk_engine.protocol.batch.encode_value` sends on the wire, so a resumed op sends the same bytes.

:func:`plan_text` gives the canonical JSON (sorted keys) and its SHA-256 (sorted keys): a journal compares it to refuse
resuming an operation whose plan changed. Secrets (access token, app secret, ``appsecret_proof``) are
removed from text we are about to store — Graph answers can carry the token, e.g. edge ``paging.next``
links — so the journal never holds one; :class:`Scrubber`, :func:`scrub` and :data:`REDACTED` are the
package-wide ones of :mod:`bulk_engine.scrub`, re-exported here for the journal code that imports them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from bulk_engine.planning.graph import Operation, OpKind
from bulk_engine.protocol.images import Upload
from bulk_engine.protocol.refs import Ref
from bulk_engine.scrub import REDACTED, Scrubber, scrub

__all__ = [
    "REDACTED",
    "Scrubber",
    "canonical",
    "decode_plan",
    "dumps",
    "encode_plan",
    "job_fingerprint",
    "plan_text",
    "scrub",
]

_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=str)


def _encode_value(value: Any) -> Any:
    if isinstance(value, Ref):
        return {"$ref": value.op_id, "$path": value.path}
    if isinstance(value, str) or value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, Mapping):
        items = [(str(k), _encode_value(v)) for k, v in value.items()]
        if any(k.startswith("$") for k, _ in items):
            return {"$map": [[k, v] for k, v in items]}
        return dict(items)
    if isinstance(value, list | tuple):
        return [_encode_value(v) for v in value]
    return str(value)  # what encode_value() puts on the wire for any other type


def _decode_value(value: Any) -> Any:
    if isinstance(value, dict):
        if "$ref" in value:
            return Ref(str(value["$ref"]), str(value.get("$path", "$.id")))
        if "$map" in value:
            return {str(k): _decode_value(v) for k, v in value["$map"]}
        return {k: _decode_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode_value(v) for v in value]
    return value


def encode_plan(op: Operation) -> dict[str, Any]:
    """The JSON-able plan of ``op`` (everything needed to rebuild it)."""
    path: Any
    if isinstance(op.path, tuple):
        path = {"$parts": [_encode_value(part) for part in op.path]}
    else:
        path = _encode_value(op.path)
    plan: dict[str, Any] = {
        "op_id": op.op_id,
        "method": op.method,
        "path": path,
        "params": _encode_value(op.params),
        "account_id": op.account_id,
        "kind": op.kind.value,
    }
    if op.campaign_key is not None:
        plan["campaign_key"] = op.campaign_key
    if op.upload is not None:  # the content by identity (MD5, size, path): never the bytes
        plan["upload"] = dataclasses.asdict(op.upload)
    return plan


def decode_plan(plan: Mapping[str, Any]) -> Operation:
    """Rebuild the :class:`Operation` of :func:`encode_plan` (raises ``ValueError``/``KeyError`` on junk)."""
    raw_path = plan["path"]
    path: Any
    if isinstance(raw_path, dict) and "$parts" in raw_path:
        path = tuple(_decode_value(part) for part in raw_path["$parts"])
    else:
        path = _decode_value(raw_path)
    params = _decode_value(plan.get("params") or {})
    if not isinstance(params, dict):
        raise ValueError("plan params must be an object")
    return Operation(
        op_id=str(plan["op_id"]),
        method=plan["method"],
        path=path,
        params=params,
        account_id=str(plan["account_id"]),
        kind=OpKind(plan["kind"]),
        campaign_key=plan.get("campaign_key"),
        upload=Upload(**plan["upload"]) if plan.get("upload") else None,
    )


def canonical(value: Any) -> str:
    return _CANONICAL.encode(value)


def plan_text(op: Operation, scrub: Scrubber | None = None) -> tuple[str, str]:
    """The stored form of ``op``'s plan (canonical JSON, secrets scrubbed) and its SHA-256 digest."""
    text = canonical(encode_plan(op))
    if scrub is not None:
        text = scrub(text)
    return text, hashlib.sha256(text.encode()).hexdigest()


def job_fingerprint(digests: Iterable[str]) -> str:
    """Fingerprint of an in-memory job: SHA-256 over its operations' plan digests, in order."""
    h = hashlib.sha256(b"bulk-engine-plan/v1\n")
    for digest in digests:
        h.update(digest.encode())
        h.update(b"\n")
    return h.hexdigest()


def dumps(value: Any) -> str:
    """Compact JSON for stored results and errors (non-JSON scalars as text)."""
    return _COMPACT.encode(value)
