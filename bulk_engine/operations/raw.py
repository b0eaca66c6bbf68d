"""``type: operations``: Graph calls written out one by one, for what no other task type expresses.

The escape hatch of job files and of the Airflow ``MetaBulkOperator``: each entry is one
:class:`~bulk_engine.planning.graph.Operation` in the journal's JSON form (:mod:`bulk_engine.persistence.codec`),
so there is one spelling of an operation everywhere it is stored or written::

    - type: operations
      operations:
        - op_id: spring                       # unique in the task; the report keys outcomes by it
          path: "{account_id}/campaigns"      # {account_id}: the task's ad account
          params: {name: Spring, objective: OUTCOME_TRAFFIC, special_ad_categories: [], status: PAUSED}
        - op_id: spring/adset
          path: "{account_id}/adsets"
          params: {name: Spring 18-24, campaign_id: {$ref: spring}, ...}   # {$ref: op, $path: "$.id"}
        - op_id: rename
          path: {$ref: spring}                # POST to the object another operation created
          params: {name: Spring (renamed)}

``method`` defaults to ``POST``; ``kind`` (the batcher's packing rules key off it) is inferred from method and
path when left out — ``…/campaigns`` → ``create_campaign``, a bare id or ``$ref`` → ``update``, ``DELETE`` →
``delete`` — and must be given for ``/copies`` of ad sets and ads (``copy_adset`` / ``copy_ad``), which the
path alone cannot tell apart. A path may also be a list of parts (``[{$ref: spring}, copies]``).

Exactly-once: creates carry idempotency keys like every create (docs/exactly-once.md); op ids are kept as
written (not prefixed with the task key), so keep them stable across edits of a scheduled job.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from typing import Any, Literal

from pydantic import BaseModel, Field

from bulk_engine.persistence.codec import decode_plan
from bulk_engine.planning.graph import Operation, OpKind
from bulk_engine.protocol.refs import Ref

from .base import Issue, TaskEnv
from .create import VALIDATE_ONLY
from .specs import job_model_config
from .task import ACCOUNT_PATTERN, TaskBase

__all__ = ["OperationsTask", "RawOperation", "infer_kind"]

REF, REF_PATH, PARTS = "$ref", "$path", "$parts"
MAX_REF_PATH = 1000

CREATE_EDGES: Mapping[str, OpKind] = {
    "campaigns": OpKind.CREATE_CAMPAIGN,
    "adsets": OpKind.CREATE_ADSET,
    "ads": OpKind.CREATE_AD,
    "adcreatives": OpKind.CREATE_CREATIVE,
    "adimages": OpKind.CREATE_IMAGE,
    "copies": OpKind.COPY,
}

RawPath = str | dict[str, Any] | list[str | dict[str, Any]]


class RawOperation(BaseModel):
    """One Graph call, as the journal stores it (see the module docstring)."""

    model_config = job_model_config("RawOperation")

    op_id: str = Field(min_length=1, max_length=400)
    method: Literal["GET", "POST", "DELETE"] = "POST"
    path: RawPath = Field(
        description='"act_1/campaigns", "{account_id}/adsets", {$ref: op} or a list of parts'
    )
    params: dict[str, Any] = Field(default_factory=dict, description="References: {$ref: op, $path: $.id}")
    account_id: str | None = Field(None, pattern=ACCOUNT_PATTERN, description="Default: the task's")
    kind: OpKind | None = Field(None, description="Default: inferred from method and path")
    campaign_key: str | None = None

    def parts(self) -> list[str | dict[str, Any]]:
        if isinstance(self.path, list):
            return list(self.path)
        if isinstance(self.path, dict) and PARTS in self.path:
            return list(self.path[PARTS])
        return [self.path]

    def to_operation(self, account_id: str) -> Operation:
        """The operation, with ``{account_id}`` filled in and the kind inferred when left out."""
        account = self.account_id or account_id
        parts = [p.replace("{account_id}", account) if isinstance(p, str) else p for p in self.parts()]
        plan = {
            "op_id": self.op_id,
            "method": self.method,
            "path": parts[0] if len(parts) == 1 else {PARTS: parts},
            "params": self.params,
            "account_id": account,
            "kind": (self.kind or infer_kind(self.method, parts)).value,
            "campaign_key": self.campaign_key,
        }
        return decode_plan(plan)


def infer_kind(method: str, parts: list[str | dict[str, Any]]) -> OpKind:
    """The kind a call's method and path imply (``/copies`` of an ad set or ad must be said explicitly)."""
    if method == "DELETE":
        return OpKind.DELETE
    if method == "GET":
        return OpKind.READ
    last = parts[-1]
    edge = last.rstrip("/").rsplit("/", 1)[-1] if isinstance(last, str) else ""
    if edge in CREATE_EDGES and (len(parts) > 1 or "/" in str(last)):
        return CREATE_EDGES[edge]
    if isinstance(last, str) and "/" in last.strip("/"):
        return OpKind.CREATE_OTHER  # another edge of an object: act_1/customaudiences, …
    return OpKind.UPDATE  # POST to an object: act_1 itself, an id, or another op's result


class OperationsTask(TaskBase):
    """Graph calls written out one by one (see the module docstring)."""

    model_config = job_model_config("OperationsTask")

    type: Literal["operations"]
    operations: list[RawOperation] = Field(
        default_factory=list, description="The calls; an empty list is a task with nothing to do"
    )

    def rule_issues(self) -> Iterator[Issue]:
        seen: dict[str, int] = {}
        for i, op in enumerate(self.operations):
            if op.op_id in seen:
                yield Issue(
                    ("operations", i, "op_id"),
                    f"duplicate op_id (also operations[{seen[op.op_id]}])",
                    op.op_id,
                    rule="unique_op_id",
                )
            seen.setdefault(op.op_id, i)
        for i, op in enumerate(self.operations):
            yield from (found.prefixed(("operations", i)) for found in _shape_issues(op))
            for where, value in (("path", op.path), ("params", op.params)):
                for path, ref in _refs(value, ("operations", i, where)):
                    yield from _ref_issues(path, ref, seen)
            if op.kind is None and _is_copy(op) and op.method == "POST":
                yield Issue(
                    ("operations", i, "kind"),
                    "a /copies call needs kind: copy (campaign, creative), copy_adset or copy_ad",
                    None,
                    rule="copy_kind",
                )

    def compile(self, env: TaskEnv) -> Iterator[Operation]:
        for op in self.operations:
            built = op.to_operation(env.account_id)
            if env.ctx.validate_only and built.method == "POST" and built.kind is not OpKind.COPY:
                built = dataclasses.replace(
                    built, params={**built.params, "execution_options": VALIDATE_ONLY}
                )
            yield built


def _is_copy(op: RawOperation) -> bool:
    last = op.parts()[-1]
    return isinstance(last, str) and last.rstrip("/").endswith("copies")


def _refs(value: Any, path: tuple[str | int, ...]) -> Iterator[tuple[tuple[str | int, ...], dict[str, Any]]]:
    if isinstance(value, dict):
        if REF in value:
            yield path, value
            return
        for key, item in value.items():
            yield from _refs(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _refs(item, (*path, i))


def _ref_issues(path: tuple[str | int, ...], ref: dict[str, Any], ops: Mapping[str, int]) -> Iterator[Issue]:
    extra = sorted(set(ref) - {REF, REF_PATH})
    if extra:
        yield Issue(
            path, f"a {REF} object takes only {REF_PATH} besides the op id, got {extra}", ref, rule="ref"
        )
    target = ref.get(REF)
    if not isinstance(target, str) or target not in ops:
        yield Issue(path, "references no operation of this task", target, rule="ref_target")
    where = ref.get(REF_PATH, "$.id")
    if not isinstance(where, str) or not where.startswith("$"):
        yield Issue(path, f"{REF_PATH} must be a JSONPath starting with $", where, rule="ref")
    elif len(where) > MAX_REF_PATH:
        yield Issue(path, f"{REF_PATH} must be at most {MAX_REF_PATH} characters", where, rule="ref")
    else:
        try:
            Ref("check", where)
        except ValueError as err:
            yield Issue(path, f"{REF_PATH} is not a usable JSONPath: {err}", where, rule="ref")


def _shape_issues(op: RawOperation) -> Iterator[Issue]:
    """What :meth:`RawOperation.to_operation` needs: path parts that are text or ``{$ref: op}`` objects, and
    ``$map`` objects (the journal's escape for keys starting with ``$``) that hold ``[key, value]`` pairs."""
    if isinstance(op.path, dict) and REF not in op.path:
        parts = op.path.get(PARTS)
        if not isinstance(parts, list) or not parts:
            yield Issue(
                ("path",),
                f"a path object is {{{REF}: op}} or {{{PARTS}: [parts…]}} with at least one part",
                op.path,
                rule="raw.path",
            )
            return
    elif isinstance(op.path, list) and not op.path:
        yield Issue(("path",), "a path needs at least one part", op.path, rule="raw.path")
        return
    where: tuple[str | int, ...] = ("path", PARTS) if isinstance(op.path, dict) else ("path",)
    for i, part in enumerate(op.parts()):
        if not isinstance(part, str) and not (isinstance(part, dict) and REF in part):
            yield Issue((*where, i), f"a path part is text or a {{{REF}: op}} object", part, rule="raw.path")
    for place, found in _keyed(op.params, ("params",), "$map"):
        pairs = found["$map"]
        if not isinstance(pairs, list) or not all(
            isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], str) for pair in pairs
        ):
            yield Issue(place, "a $map object holds a list of [key, value] pairs", found, rule="raw.params")


def _keyed(value: Any, path: tuple[str | int, ...], key: str) -> Iterator[tuple[tuple[str | int, ...], Any]]:
    if isinstance(value, dict):
        if key in value:
            yield path, value
        for name, item in value.items():
            yield from _keyed(item, (*path, name), key)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _keyed(item, (*path, i), key)
