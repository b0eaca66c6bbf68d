"""``MetaBulkOperator``: Graph calls written out one by one (a ``type: operations`` task), or any job file.

The operations are :class:`~bulk_engine.Operation` objects or their JSON form — the journal's
(:mod:`bulk_engine.persistence.codec`; ``{"$ref": "<op_id>", "$path": "$.id"}`` for another operation's
result, ``{account_id}`` in a path for the task's ad account; see :mod:`bulk_engine.operations.raw`). They run
as a one-task job through the same core as every other operator
(:class:`~airflow_provider.operators.base.MetaOperatorBase`): journal, deferral, stopping and figures alike.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from airflow.sdk import XComArg

from bulk_engine import JobValidationError, Operation
from bulk_engine.operations import JobSpec
from bulk_engine.persistence.codec import encode_plan

from .job import MetaJobOperator, MetaTaskOperator

__all__ = ["MetaBulkOperator"]


class MetaBulkOperator(MetaTaskOperator):
    """Run a list of Graph API operations (creates, updates, copies…), or a job file, through the bulk engine.

    Exactly one source, all templated: ``operations`` (a list of :class:`~bulk_engine.Operation` or of dicts
    in their JSON form, or that list's JSON text), ``job_file`` or ``job`` (as
    :class:`~airflow_provider.operators.job.MetaJobOperator`). Op ids are kept as given: keep them stable
    across DAG edits, the idempotency keys derive from them.

    Other arguments: see :class:`~airflow_provider.operators.base.MetaOperatorBase`.
    """

    task_type = "operations"
    template_fields: Sequence[str] = (
        "meta_conn_id",
        "operations",
        "job_file",
        "job",
        "account_id",
        "report_path",
        "journal_path",
    )
    template_fields_renderers = {"operations": "json", "job": "json"}

    def __init__(
        self,
        *,
        operations: Sequence[Operation | Mapping[str, Any]] | str | XComArg | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        given = [v for v in (operations, self.job_file, self.job) if v is not None]
        if len(given) != 1:
            raise ValueError("MetaBulkOperator takes exactly one of operations, job_file or job")
        self.operations = operations

    def build_job(self) -> JobSpec:
        if self.operations is None:
            return MetaJobOperator.build_job(self)
        return super().build_job()

    def task_fields(self) -> dict[str, Any]:
        operations = self.operations
        if isinstance(operations, XComArg):
            raise JobValidationError("an upstream XCom was not resolved before execute()")
        if isinstance(operations, str):
            operations = json.loads(operations)
        listed = list(operations or [])  # an upstream task that produced nothing: a task with nothing to do
        return {"operations": [encode_plan(op) if isinstance(op, Operation) else dict(op) for op in listed]}
