"""``MetaJobOperator``: run a bulk job file (any task types) through ``run_job`` as a deferrable task.

The per-verb operators (create, copy, Advantage+ migration, status, marketing messages) are
:class:`MetaTaskOperator` s: a one-task job built from their arguments. Everything else — journal, deferral,
stopping, figures — is the one core of :class:`~airflow_provider.operators.base.MetaOperatorBase`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from airflow.sdk import XComArg

from bulk_engine import JobValidationError
from bulk_engine.operations import JobSpec, load_job, parse_job

from .base import DEFAULT_JOURNAL, MetaOperatorBase

__all__ = ["DEFAULT_JOURNAL", "MetaJobOperator", "MetaTaskOperator", "as_list", "as_mapping"]


class MetaJobOperator(MetaOperatorBase):
    """Run a job file (or the same document inline) through the bulk engine's operations layer.

    :param job_file: path of a YAML/JSON job file (relative CSV inputs resolve next to it). Templated.
    :param job: the job document inline (a dict, or its JSON text). Templated.

    Other arguments: see :class:`~airflow_provider.operators.base.MetaOperatorBase`.
    """

    template_fields: Sequence[str] = ("meta_conn_id", "job_file", "job", "report_path", "journal_path")
    template_fields_renderers = {"job": "json"}

    def __init__(
        self,
        *,
        job_file: str | XComArg | None = None,
        job: Mapping[str, Any] | str | XComArg | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if type(self).build_job is MetaJobOperator.build_job and (job_file is None) == (job is None):
            raise ValueError(f"{type(self).__name__} takes exactly one of job_file or job")
        self.job_file = job_file
        self.job = job

    def build_job(self) -> JobSpec:
        """The job file or inline job; the per-verb operators build a one-task job from their arguments."""
        job_file, job = self.job_file, self.job
        if isinstance(job_file, XComArg) or isinstance(job, XComArg):
            raise JobValidationError("an upstream XCom was not resolved before execute()")
        if job_file is not None:
            return load_job(Path(job_file))
        data = json.loads(job) if isinstance(job, str) else job
        return parse_job(dict(data or {}), source=f"<{self.task_id}>")


class MetaTaskOperator(MetaJobOperator):
    """A one-task job built from the operator's own arguments (the per-verb operators).

    :param account_id: the task's ad account (default: the connection's). Templated in subclasses.
    :param task_key: prefix of the task's operation ids (default ``t0``); keep it stable across DAG edits,
        the idempotency keys derive from it.
    """

    task_type = ""

    def __init__(self, *, account_id: str | None = None, task_key: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.account_id = account_id
        self.task_key = task_key

    def task_fields(self) -> dict[str, Any]:
        """The task's fields (``None`` values are left out so the task's defaults apply)."""
        raise NotImplementedError

    def build_job(self) -> JobSpec:
        task = {key: value for key, value in self.task_fields().items() if value is not None}
        if self.task_key:
            task["key"] = self.task_key
        data = {"account_id": self.account_id or None, "tasks": [{"type": self.task_type, **task}]}
        return parse_job({k: v for k, v in data.items() if v is not None}, source=f"<{self.task_id}>")


def as_list(value: Any) -> list[Any] | None:
    """A templated list field: a list, JSON text of one (a rendered template), or a comma-separated string."""
    if value is None or isinstance(value, list | tuple):
        return None if value is None else list(value)
    text = str(value).strip()
    if text.startswith("["):
        loaded = json.loads(text)
        return list(loaded) if isinstance(loaded, list) else [loaded]
    return [part.strip() for part in text.split(",") if part.strip()]


def as_mapping(value: Any) -> dict[str, Any] | None:
    """A templated object field: a mapping or its JSON text."""
    if value is None:
        return None
    if isinstance(value, str):
        value = json.loads(value)
    if hasattr(value, "model_dump"):
        value = value.model_dump(exclude_none=True)
    return dict(value)
