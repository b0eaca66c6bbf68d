"""Deterministic idempotency keys carried by created objects, and the lookups that find them again.

The Graph API has no idempotency keys (SPEC-DIGEST §9.2): a create retried after an unknown outcome (a
client timeout, a connection dropped after the request was sent, a ``null`` or malformed batch entry) can
make a duplicate that spends real money. So every create the engine can key carries a key derived only
from ``(job_id, op_id)``:

* job tag ``T`` = the first 8 characters of base32(SHA-256(``"job\\0" + job_id``)), lower case;
* op key ``K`` = ``<prefix>:T.O`` with ``O`` the first 12 characters of base32(SHA-256(``job_id + "\\0" +
  op_id``)) — e.g. ``be:k3q9zt2a.m4x7c2d9pq0r`` (60 bits per op: collisions within a job are negligible).

Carriers (``IdempotencyConfig.keys``):

* ``"name"`` (default): the object's ``name`` gets the suffix ``" [K]"``. Looked up with
  ``GET <the create's edge>?filtering=[{"field":"name","operator":"CONTAIN","value":"K"}]``; the probe for a
  whole job uses the value ``"[<prefix>:T."``. Works on campaigns, ad sets, ads and creatives. A creative
  without a name is named ``"[K]"``.
* ``"adlabels"``: two ad labels are added, ``{"name": "<prefix>:T"}`` (the job) and ``{"name": "K"}`` (the
  op); names stay as written. Looked up with ``filtering=[{"field":"adlabels","operator":"ANY","value":[…]}]``.
  Meta caps an ad account at 100,000 non-deleted ad labels: one label per created object adds up.
* ``"off"``: nothing is added. Creates whose outcome is unknown then fail (they are never re-sent blind),
  and a resume without the journal cannot recognise what an earlier run created.

Kinds: campaign / ad set / creative / ad creates on ``act_<id>/{campaigns,adsets,adcreatives,ads}`` are
keyed. An image upload that carries its content's identity (``Operation.upload``) is keyed by that content:
its key is the MD5, which is the image's hash (S003 §Ad Account Ad Images), looked up with ``GET
act_<id>/adimages?hashes=["<md5>"]`` before it is sent again — so bytes that landed are not uploaded twice,
and the lookup answers in the upload's own shape (``{"images": {name: {"hash": …}}}``) for the creatives
that reference it. A video upload carries its file too (``create_other``), but is not keyed here: the
video flow names each video after its key and looks it up by that before any re-send
(:mod:`bulk_engine.operations.video_flow`) — an ``adimages``-style hash lookup would only be refused. Updates,
deletes, reads, other image creates (the server dedupes images by hash) and
migrations are idempotent and simply retried. Every other create (``/copies``, ``create_other``…) is "unkeyed": after an
unknown outcome it fails with a reason instead of risking a duplicate.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Any, Literal

from bulk_engine.planning.graph import Operation, OpKind
from bulk_engine.protocol.batch import BatchOp
from bulk_engine.protocol.refs import Ref

__all__ = [
    "IDEMPOTENT_KINDS",
    "KEYED_EDGES",
    "KeyCarrier",
    "KeyScheme",
    "Safety",
    "hash_text",
    "key_in_name",
    "keyed_by_content",
    "strip_key",
]

KeyCarrier = Literal["name", "adlabels", "off"]

KEYED_EDGES: Mapping[OpKind, str] = {
    OpKind.CREATE_CAMPAIGN: "campaigns",
    OpKind.CREATE_ADSET: "adsets",
    OpKind.CREATE_CREATIVE: "adcreatives",
    OpKind.CREATE_AD: "ads",
}
"""Kinds that carry a key, and the ad-account edge they are created on (and looked up on)."""

IDEMPOTENT_KINDS = frozenset({OpKind.UPDATE, OpKind.DELETE, OpKind.READ, OpKind.CREATE_IMAGE, OpKind.MIGRATE})
"""Kinds that are safe to send again after an unknown outcome."""

LOOKUP_LIMIT = 25


class Safety(StrEnum):
    """What the engine may do with an operation whose previous attempt had an unknown outcome."""

    KEYED = "keyed"  # look it up by its key before sending it again
    IDEMPOTENT = "idempotent"  # send it again
    UNKEYED = "unkeyed"  # neither: fail it rather than risk a duplicate


_B32 = "abcdefghijklmnopqrstuvwxyz234567"
_KEY_IN_NAME = re.compile(r" ?\[([A-Za-z0-9_-]+:[a-z2-7]{8}\.[a-z2-7]{12})\]")
"""The `` [K]`` the ``name`` carrier appends (see :meth:`KeyScheme.key` for ``K``)."""


def strip_key(name: str) -> str:
    """``name`` as the user wrote it: without the idempotency key the ``name`` carrier appended.

    Selectors match on this (a ``name_regex: "US$"`` must still match ``"Spring US [be:…]"``).
    """
    return _KEY_IN_NAME.sub("", name)


def key_in_name(name: str) -> str | None:
    """The idempotency key a name carries (``None``: none), e.g. to count objects per key."""
    found = _KEY_IN_NAME.search(name)
    return found.group(1) if found else None


def hash_text(text: str, length: int) -> str:
    """The first ``length`` characters of base32(SHA-256(text)), lower case (``base64.b32encode`` is pure
    Python and slow; this is the same string, from the leading ``5 × length`` bits)."""
    bits = 5 * length
    nbytes = -(-bits // 8)
    value = int.from_bytes(hashlib.sha256(text.encode()).digest()[:nbytes], "big") >> (8 * nbytes - bits)
    return "".join(_B32[(value >> (5 * (length - 1 - i))) & 31] for i in range(length))


def keyed_by_content(op: Operation) -> bool:
    """An image upload: keyed by its content's MD5, which is the image's hash in the library."""
    return op.upload is not None and op.kind is OpKind.CREATE_IMAGE


class KeyScheme:
    """Keys of one job. Pure: builds keyed operations, lookup requests, and reads lookup answers."""

    def __init__(self, job_id: str, carrier: KeyCarrier = "name", prefix: str = "be") -> None:
        self.job_id = job_id
        self.carrier = carrier
        self.prefix = prefix
        self.job_tag = hash_text("job\0" + job_id, 8)
        self.job_label = f"{prefix}:{self.job_tag}"

    def __repr__(self) -> str:
        return f"KeyScheme(carrier={self.carrier!r}, job_tag={self.job_tag!r})"

    def key(self, op_id: str) -> str:
        return f"{self.job_label}.{hash_text(self.job_id + chr(0) + op_id, 12)}"

    # --- classification -------------------------------------------------------------------------
    def safety(self, op: Operation) -> Safety:
        if keyed_by_content(op):
            return Safety.KEYED  # by its content's MD5 (see the module docstring)
        if op.kind in IDEMPOTENT_KINDS:
            return Safety.IDEMPOTENT
        if self.carrier != "off" and self.edge(op) is not None and self._keyable_params(op):
            return Safety.KEYED
        return Safety.UNKEYED

    def edge(self, op: Operation) -> str | None:
        """The edge a keyed create posts to (``campaigns``…), or ``None`` if ``op`` cannot be keyed."""
        edge = KEYED_EDGES.get(op.kind)
        if edge is None or op.method != "POST":
            return None
        parts = op.path_parts
        last = parts[-1]
        if not isinstance(last, str) or last.strip("/").rsplit("/", 1)[-1] != edge:
            return None
        return edge

    def _keyable_params(self, op: Operation) -> bool:
        if self.carrier == "name":
            name = op.params.get("name")
            return isinstance(name, str) or (name is None and op.kind is OpKind.CREATE_CREATIVE)
        labels = op.params.get("adlabels")
        return labels is None or isinstance(labels, list | tuple) or _json_list(labels) is not None

    # --- keyed operations -----------------------------------------------------------------------
    def apply(self, op: Operation) -> Operation:
        """``op`` carrying its key (unchanged when it cannot be keyed, or carries it already: an upload)."""
        if self.safety(op) is not Safety.KEYED or keyed_by_content(op):
            return op
        key = self.key(op.op_id)
        params = dict(op.params)
        if self.carrier == "name":
            name = params.get("name")
            params["name"] = f"{name} [{key}]" if isinstance(name, str) and name else f"[{key}]"
            # Only a string changed: references and dependencies stay as they are, so skip re-validation.
            keyed = copy.copy(op)
            object.__setattr__(keyed, "params", params)
            return keyed
        raw = params.get("adlabels")
        labels = list(raw) if isinstance(raw, list | tuple) else (_json_list(raw) or [])
        names = {label.get("name") for label in labels if isinstance(label, Mapping)}
        for label in (self.job_label, key):
            if label not in names:
                labels.append({"name": label})
        params["adlabels"] = labels
        return dataclasses.replace(op, params=params)

    # --- lookups --------------------------------------------------------------------------------
    def lookup(self, op: Operation, path: str) -> BatchOp:
        """A GET on the edge the create posted to, filtered down to the object carrying ``op``'s key."""
        if keyed_by_content(op) and op.upload is not None:
            params: dict[str, Any] = {"hashes": [op.upload.md5], "fields": "hash,name,url"}
            return BatchOp(method="GET", relative_url=path, params=params)
        key = self.key(op.op_id)
        if self.carrier == "name":
            flt: dict[str, Any] = {"field": "name", "operator": "CONTAIN", "value": key}
            fields = "id,name"
        else:
            flt = {"field": "adlabels", "operator": "ANY", "value": [key]}
            fields = "id,adlabels"
        return BatchOp(
            method="GET",
            relative_url=path,
            params={"fields": fields, "filtering": [flt], "limit": LOOKUP_LIMIT},
        )

    def probe(self, path: str) -> BatchOp:
        """A GET answering whether any object of this job exists on an edge (one object at most)."""
        if self.carrier == "name":
            flt: dict[str, Any] = {"field": "name", "operator": "CONTAIN", "value": f"[{self.job_label}."}
        else:
            flt = {"field": "adlabels", "operator": "ANY", "value": [self.job_label]}
        return BatchOp(
            method="GET", relative_url=path, params={"fields": "id", "filtering": [flt], "limit": 1}
        )

    def found_ids(self, op: Operation, body: Any) -> list[str]:
        """Ids of the objects in a lookup answer that carry ``op``'s key, oldest first (for an upload: its
        hash, when the library has it).

        Raises ``ValueError`` if the answer is not an edge page (``{"data": [...]}``) or has more pages.
        """
        data = _edge_data(body)
        if keyed_by_content(op) and op.upload is not None:
            md5 = op.upload.md5
            return [md5] if any(isinstance(i, Mapping) and i.get("hash") == md5 for i in data) else []
        key = self.key(op.op_id)
        ids: list[str] = []
        for item in data:
            if not isinstance(item, Mapping) or item.get("id") is None:
                raise ValueError("lookup answer has an entry without an id")
            if self._carries(item, key):
                ids.append(str(item["id"]))
        return sorted(ids, key=_id_order)

    def probe_hit(self, body: Any) -> bool:
        """True when a probe answer lists at least one object."""
        return bool(_edge_data(body))

    def _carries(self, item: Mapping[str, Any], key: str) -> bool:
        if self.carrier == "name":
            name = item.get("name")
            return isinstance(name, str) and f"[{key}]" in name
        labels = item.get("adlabels")
        if isinstance(labels, Mapping):  # Graph may wrap edges as {"data": [...]}
            labels = labels.get("data")
        return isinstance(labels, list) and any(
            isinstance(label, Mapping) and label.get("name") == key for label in labels
        )


def _edge_data(body: Any) -> list[Any]:
    if not isinstance(body, Mapping) or not isinstance(body.get("data"), list):
        raise ValueError("lookup answer is not an edge page")
    paging = body.get("paging")
    if isinstance(paging, Mapping) and paging.get("next"):
        raise ValueError("lookup answer has more pages than expected")
    return list(body["data"])


def _id_order(object_id: str) -> tuple[int, str]:
    return (len(object_id), object_id)


def _json_list(value: Any) -> list[Any] | None:
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            return None
        return parsed if isinstance(parsed, list) else None
    return None


def path_text(op: Operation, resolve: Any) -> str | None:
    """The relative path of ``op`` with references resolved by ``resolve(ref)`` (``None`` if one fails)."""
    parts: list[str] = []
    for part in op.path_parts:
        if isinstance(part, Ref):
            try:
                parts.append(str(resolve(part)).strip("/"))
            except LookupError:
                return None
        else:
            parts.append(part.strip("/"))
    return "/".join(parts)
