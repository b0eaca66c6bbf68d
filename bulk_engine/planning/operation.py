"""What one Graph call of a job is: :class:`Operation`, and the :class:`OpKind` the batcher's rules key off.

Why a module of its own: the operations layer builds these, the graph orders them, the batcher packs them;
none of that needs the state machine in :mod:`bulk_engine.planning.graph` to read what an operation is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final, Literal

from bulk_engine.protocol.images import Upload
from bulk_engine.protocol.refs import Ref, iter_refs

__all__ = ["ADSET_CREATING_KINDS", "AD_CREATING_KINDS", "Method", "OpKind", "Operation", "PathPart"]

Method = Literal["GET", "POST", "DELETE"]
PathPart = str | Ref


class OpKind(StrEnum):
    """What an operation does; the batcher's per-batch rules key off it (S003 §Batch Requests →
    Limitations; §Asynchronous and Batch Requests)."""

    CREATE_CAMPAIGN = "create_campaign"
    CREATE_ADSET = "create_adset"
    CREATE_CREATIVE = "create_creative"
    CREATE_AD = "create_ad"
    CREATE_IMAGE = "create_image"
    CREATE_OTHER = "create_other"
    UPDATE = "update"
    DELETE = "delete"
    READ = "read"
    COPY = "copy"  # /copies of a campaign or creative-level object
    COPY_ADSET = "copy_adset"  # creates an ad set: subject to the one-ad-set-per-campaign rule
    COPY_AD = "copy_ad"  # creates an ad: counts toward the 10-ads-per-batch rule
    MIGRATE = "migrate"


AD_CREATING_KINDS: Final = frozenset({OpKind.CREATE_AD, OpKind.COPY_AD})
"""Kinds counted by "For ad creation you should only have 10 or less ads per batch"."""

ADSET_CREATING_KINDS: Final = frozenset({OpKind.CREATE_ADSET, OpKind.COPY_ADSET})
"""Kinds checked by "Batch requests cannot include multiple Adsets under the same Campaign"."""

_METHODS: Final = frozenset({"GET", "POST", "DELETE"})


@dataclass(frozen=True, kw_only=True)
class Operation:
    """One Graph call of a job, with symbolic references to other operations' results.

    ``path`` is a string (``"act_1/campaigns"``), a :class:`Ref` (update the object another op
    created) or a tuple of parts joined with ``/`` (``(Ref("camp-1"), "copies")``). ``params``
    values may contain :class:`Ref` anywhere (nested dicts/lists). ``account_id`` (``act_<id>``)
    partitions batches and pacing. ``campaign_key`` overrides the campaign identity the batcher
    derives from ``params["campaign_id"]`` for ad-set-creating kinds. ``upload`` names the content an image
    upload sends (by MD5 and path; the bytes are read when the batch is sent, never held in the plan).

    Not hashable by ``params``; key collections by ``op_id``.
    """

    op_id: str
    method: Method
    path: str | Ref | tuple[PathPart, ...]
    params: Mapping[str, Any] = field(default_factory=dict, hash=False)
    account_id: str
    kind: OpKind
    campaign_key: str | None = None
    upload: Upload | None = None
    refs: tuple[Ref, ...] = field(init=False, repr=False, compare=False, hash=False)
    dependencies: frozenset[str] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        if not isinstance(self.op_id, str) or not self.op_id:
            raise ValueError(f"op_id must be a non-empty string, got {self.op_id!r}")
        if self.method not in _METHODS:
            raise ValueError(f"{self.op_id}: method must be one of {sorted(_METHODS)}, got {self.method!r}")
        if not isinstance(self.account_id, str) or not self.account_id:
            raise ValueError(f"{self.op_id}: account_id must be a non-empty string")
        if not isinstance(self.kind, OpKind):
            object.__setattr__(self, "kind", OpKind(self.kind))
        if isinstance(self.path, list):
            object.__setattr__(self, "path", tuple(self.path))
        for part in self.path_parts:
            if not isinstance(part, str | Ref):
                raise TypeError(f"{self.op_id}: path parts must be str or Ref, got {type(part).__name__}")
        if not isinstance(self.params, Mapping):
            raise TypeError(f"{self.op_id}: params must be a mapping")
        refs: dict[Ref, None] = {}
        for part in self.path_parts:
            if isinstance(part, Ref):
                refs[part] = None
        for ref in iter_refs(self.params):
            refs[ref] = None
        object.__setattr__(self, "refs", tuple(refs))
        object.__setattr__(self, "dependencies", frozenset(ref.op_id for ref in refs))

    @property
    def path_parts(self) -> tuple[PathPart, ...]:
        if isinstance(self.path, tuple):
            return self.path
        return (self.path,)
