"""The canonical JSON of a job model, streamed: the same text as ``json.dumps(model.model_dump(mode="json"),
sort_keys=True, separators=(",", ":"))`` without ever holding the whole dump.

The fingerprint of a job (:meth:`~bulk_engine.operations.jobfile.JobSpec.fingerprint`) is the SHA-256 of this
text, and journals compare fingerprints across versions, so the bytes must not change. Dumping a 50 MB job at
once costs twice its size again; here the job and its tasks are written field by field and the items of
their collections (campaigns, creatives, raw operations…) are dumped one at a time.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel
from pydantic_core import to_jsonable_python

__all__ = ["canonical_chunks"]

_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"))


def _holds_models(value: Any) -> bool:
    if isinstance(value, list):
        return any(isinstance(item, BaseModel) for item in value)
    if isinstance(value, dict):
        return any(isinstance(item, BaseModel) for item in value.values())
    return False


def canonical_chunks(model: BaseModel, depth: int = 2) -> Iterator[str]:
    """Pieces of the canonical JSON of ``model``; collections of models are streamed ``depth`` levels down."""
    fields = sorted(type(model).model_fields)
    streamed = {name for name in fields if _holds_models(getattr(model, name))}
    rest = model.model_dump(mode="json", exclude=streamed) if len(streamed) < len(fields) else {}
    yield "{"
    for i, name in enumerate(fields):
        yield ("," if i else "") + _ENCODER.encode(name) + ":"
        if name not in streamed:
            yield _ENCODER.encode(rest[name])
            continue
        value = getattr(model, name)
        if isinstance(value, list):
            yield "["
            for j, item in enumerate(value):
                yield "," if j else ""
                yield from _item(item, depth)
            yield "]"
        else:
            yield "{"
            for j, key in enumerate(sorted(value)):
                yield ("," if j else "") + _ENCODER.encode(key) + ":"
                yield from _item(value[key], depth)
            yield "}"
    yield "}"


def _item(item: Any, depth: int) -> Iterator[str]:
    if isinstance(item, BaseModel):
        if depth > 1:
            yield from canonical_chunks(item, depth - 1)
        else:
            yield _ENCODER.encode(item.model_dump(mode="json"))
    else:
        yield _ENCODER.encode(to_jsonable_python(item))
