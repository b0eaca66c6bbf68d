"""Symbolic references between operations: ``{result=NAME:$.jsonpath}`` and local resolution.

Why: a child (ad set, ad) needs the id its parent gets only when the parent is created. Inside one
batch the Graph server resolves ``{result=NAME:$.path}`` itself ("The batched request process uses
the JSONPath expression format to reference the previous requests" -- S003 §Asynchronous and Batch
Requests → Create Ads; ``?ids={result=create-ad:$.data.*.id}`` -- S003 §Batch Requests → Complex
Batch Requests). When the parent ran in an *earlier* batch the engine must substitute the real
value itself, evaluating the same JSONPath locally (SPEC-DIGEST §9.2 "re-plan the dependent op in
a later batch using the real id"). One :class:`Ref` type serves both cases, so the planner can
decide per batch which rendering to use.

Decisions:

* JSONPath is evaluated with ``jsonpath-ng`` (no hand parser); parsed expressions are cached.
* Paths must start with ``$`` and must not contain ``{`` or ``}`` so the rendered placeholder
  stays unambiguous for the server.
* A multi-valued match (``$.data.*.id``, ``$.images.*.hash``) renders comma-joined, the usual
  Graph convention for id lists (SPEC-DIGEST §1.2 "[not in seeds] ... comma-joined"). A single
  match keeps its JSON type. No match is an error (:class:`UnresolvedReferenceError`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from jsonpath_ng.jsonpath import JSONPath
from jsonpath_ng.parser import parse as jsonpath_parse

from bulk_engine.errors import BulkEngineError, JobValidationError

__all__ = [
    "InvalidRefPathError",
    "Ref",
    "UnresolvedReferenceError",
    "iter_refs",
    "render_ref",
    "resolve_path",
    "resolve_value",
    "substitute",
]


class InvalidRefPathError(JobValidationError, ValueError):
    """A reference path is not a usable JSONPath (raised when the :class:`Ref` is built)."""


class UnresolvedReferenceError(BulkEngineError, LookupError):
    """A reference could not be resolved against its target's result."""

    def __init__(self, op_id: str, path: str, detail: str) -> None:
        super().__init__(f"reference {op_id}:{path} could not be resolved: {detail}")
        self.op_id = op_id
        self.path = path
        self.detail = detail


@functools.lru_cache(maxsize=1024)
def _compile(path: str) -> JSONPath:
    """Parse and cache a JSONPath (jsonpath-ng parsing costs ~0.4 ms; jobs reuse a few paths)."""
    if not isinstance(path, str) or not path.startswith("$"):
        raise InvalidRefPathError(f"reference path must be a JSONPath starting with '$': {path!r}")
    if "{" in path or "}" in path:
        raise InvalidRefPathError(f"reference path must not contain braces: {path!r}")
    try:
        compiled: JSONPath = jsonpath_parse(path)
    except Exception as exc:  # jsonpath-ng raises several unrelated types on bad input
        raise InvalidRefPathError(f"invalid JSONPath {path!r}: {exc}") from exc
    return compiled


@dataclass(frozen=True, slots=True)
class Ref:
    """A symbolic reference to a value in another operation's result (default: its ``id``).

    The path is validated eagerly so a bad path fails while the job is being planned, before
    anything is sent.
    """

    op_id: str
    path: str = "$.id"

    def __post_init__(self) -> None:
        if not isinstance(self.op_id, str) or not self.op_id:
            raise ValueError(f"Ref.op_id must be a non-empty string, got {self.op_id!r}")
        _compile(self.path)


def render_ref(batch_name: str, path: str = "$.id") -> str:
    """Render the in-batch placeholder ``{result=NAME:$.path}`` (S003 §Batch Requests)."""
    _compile(path)
    return f"{{result={batch_name}:{path}}}"


def resolve_path(result_json: Any, path: str) -> list[Any]:
    """All values the JSONPath ``path`` selects in ``result_json`` (empty list when none).

    Never raises for odd result shapes (``true``, ``null``, a list): they simply match nothing.
    """
    compiled = _compile(path)
    try:
        return [match.value for match in compiled.find(result_json)]
    except Exception:  # defensive: jsonpath-ng on exotic objects
        return []


def resolve_value(result_json: Any, ref: Ref) -> Any:
    """The value a cross-batch ``ref`` stands for, as it will be sent to the server.

    One match keeps its type; several are comma-joined strings; none raises
    :class:`UnresolvedReferenceError`.
    """
    values = resolve_path(result_json, ref.path)
    if not values:
        raise UnresolvedReferenceError(ref.op_id, ref.path, "no value at this path in the result")
    if len(values) == 1:
        value = values[0]
        if value is None:
            raise UnresolvedReferenceError(ref.op_id, ref.path, "value at this path is null")
        return value
    return ",".join(_scalar_text(v) for v in values)


def _scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def substitute(value: Any, resolver: Callable[[Ref], Any]) -> Any:
    """Return ``value`` with every :class:`Ref` replaced by ``resolver(ref)``.

    Walks dicts (values only), lists and tuples (tuples become lists, as JSON would). The resolver
    decides between the ``{result=...}`` placeholder (same batch) and the real value (earlier
    batch). Inputs are never mutated.
    """
    if isinstance(value, Ref):
        return resolver(value)
    if isinstance(value, Mapping):
        return {key: substitute(item, resolver) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [substitute(item, resolver) for item in value]
    return value


def iter_refs(value: Any) -> Iterator[Ref]:
    """Yield every :class:`Ref` nested in ``value`` (same traversal as :func:`substitute`)."""
    if isinstance(value, Ref):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from iter_refs(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from iter_refs(item)
