"""Turn an operator's inputs (job file, inline job, operation list) into engine operations.

Three sources, exactly one per task:

- ``job_file``: a YAML/JSON job file, compiled by the operations layer
  (``bulk_engine.operations.jobfile.load_job(path) -> JobSpec``; ``JobSpec.compile(ctx)``);
- ``job``: the same job document inline (a dict), compiled by the same layer;
- ``operations``: a list of :class:`~bulk_engine.Operation` or of dicts with the same fields, where a
  reference to another operation's result is written ``{"$ref": "<op_id>"}`` (its ``id``) or
  ``{"$ref": "<op_id>", "path": "$.some.jsonpath"}``; ``account_id`` defaults to the connection's
  default ad account and ``{account_id}`` in ``path`` is replaced by it.

Compiling is deterministic (same inputs → same op ids), which is what resuming after a deferral or on a
retry relies on.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bulk_engine import JobValidationError, Operation, OpKind, Outcome, Ref

REF_KEY = "$ref"


@dataclass
class CompiledJob:
    """The operations to send, plus the ones the compiler refused locally (already terminal)."""

    operations: list[Operation]
    local_outcomes: list[Outcome] = field(default_factory=list)


def compile_job(
    *,
    operations: Sequence[Operation | Mapping[str, Any]] | None = None,
    job_file: str | Path | None = None,
    job: Mapping[str, Any] | None = None,
    default_account_id: str | None = None,
    validate_only: bool = False,
) -> CompiledJob:
    """Compile exactly one of ``operations``, ``job_file`` or ``job``."""
    sources = (("operations", operations), ("job_file", job_file), ("job", job))
    given = [name for name, value in sources if value is not None]
    if len(given) != 1:
        raise JobValidationError(
            "give exactly one of operations, job_file or job"
            + (f" (got {', '.join(given)})" if given else "")
        )
    if operations is not None:
        ops = [
            op
            if isinstance(op, Operation)
            else operation_from_dict(op, default_account_id=default_account_id)
            for op in operations
        ]
        return CompiledJob(ops)
    return _compile_spec(
        job_file=job_file, job=job, default_account_id=default_account_id, validate_only=validate_only
    )


def _compile_spec(
    *,
    job_file: str | Path | None,
    job: Mapping[str, Any] | None,
    default_account_id: str | None,
    validate_only: bool,
) -> CompiledJob:
    """Job documents go through the operations layer (``bulk_engine.operations``)."""
    try:
        jobfile = importlib.import_module("bulk_engine.operations.jobfile")
        base = importlib.import_module("bulk_engine.operations.base")
    except ImportError as err:
        raise JobValidationError(
            "job files need bulk_engine.operations.jobfile, which this version of bulk_engine lacks; "
            "pass operations=[...] instead"
        ) from err
    if job_file is not None:
        spec = jobfile.load_job(Path(job_file))
    else:
        parse = getattr(jobfile, "parse_job", None)
        if parse is None:
            raise JobValidationError("inline jobs need bulk_engine.operations.jobfile.parse_job(data)")
        spec = parse(dict(job or {}))
    ctx = base.CompileContext(default_account_id=default_account_id, validate_only=validate_only)
    ops = list(spec.compile(ctx))
    return CompiledJob(ops, list(ctx.skipped))


def operation_from_dict(data: Mapping[str, Any], *, default_account_id: str | None = None) -> Operation:
    """One :class:`Operation` from its JSON form (see the module docstring for ``$ref``)."""
    unknown = set(data) - {"op_id", "method", "path", "params", "account_id", "kind", "campaign_key"}
    op_id = data.get("op_id")
    if unknown:
        raise JobValidationError(f"operation {op_id!r}: unknown fields {sorted(unknown)}")
    account = data.get("account_id") or default_account_id
    if not account:
        raise JobValidationError(f"operation {op_id!r}: no account_id and the connection names no ad account")
    path = data.get("path")
    if isinstance(path, str):
        path = path.replace("{account_id}", str(account))
    elif isinstance(path, Mapping):
        path = _decode(path)
    elif isinstance(path, list | tuple):
        path = tuple(_decode(p) if isinstance(p, Mapping) else str(p) for p in path)
    else:
        raise JobValidationError(f"operation {op_id!r}: path must be a string, a $ref or a list of parts")
    try:
        return Operation(
            op_id=str(op_id or ""),
            method=str(data.get("method", "POST")).upper(),  # type: ignore[arg-type]
            path=path,
            params=_decode(dict(data.get("params") or {})),
            account_id=str(account),
            kind=OpKind(str(data.get("kind", OpKind.CREATE_OTHER.value))),
            campaign_key=data.get("campaign_key"),
        )
    except (TypeError, ValueError) as err:
        raise JobValidationError(f"operation {op_id!r}: {err}") from None


def _decode(value: Any) -> Any:
    """``{"$ref": op_id[, "path": p]}`` → :class:`Ref`, recursively."""
    if isinstance(value, Mapping):
        if REF_KEY in value:
            extra = set(value) - {REF_KEY, "path"}
            if extra:
                raise JobValidationError(
                    f"a {REF_KEY} object takes only 'path' besides the op id, got {sorted(extra)}"
                )
            return Ref(str(value[REF_KEY]), str(value.get("path", "$.id")))
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_decode(v) for v in value]
    return value


def operation_to_dict(op: Operation) -> dict[str, Any]:
    """The JSON form of ``op`` (inverse of :func:`operation_from_dict`), e.g. for templated DAGs."""

    def encode(value: Any) -> Any:
        if isinstance(value, Ref):
            return {REF_KEY: value.op_id, "path": value.path}
        if isinstance(value, Mapping):
            return {k: encode(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [encode(v) for v in value]
        return value

    path: Any = [encode(p) for p in op.path] if isinstance(op.path, tuple) else encode(op.path)
    return {
        "op_id": op.op_id,
        "method": op.method,
        "path": path,
        "params": encode(dict(op.params)),
        "account_id": op.account_id,
        "kind": op.kind.value,
        **({"campaign_key": op.campaign_key} if op.campaign_key else {}),
    }


def all_accounts(ops: Iterable[Operation]) -> list[str]:
    return list(dict.fromkeys(op.account_id for op in ops))
