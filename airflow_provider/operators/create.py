"""``MetaBulkCreateOperator``: create campaign trees from a job file, an inline job, or inline campaigns."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel

from bulk_engine import JobValidationError, OutcomeState
from bulk_engine.operations import JobReport, JobSpec

from .job import MetaJobOperator, MetaTaskOperator, as_list, as_mapping


class MetaBulkCreateOperator(MetaTaskOperator):
    """Create campaigns, ad sets, creatives and ads (``type: create`` tasks) in one deferrable task.

    Exactly one source, all templated: ``job_file`` (YAML/JSON, e.g. kept next to the DAG in
    ``dags/jobs/``; every task must be a ``create`` task), ``job`` (the same document inline), or
    ``campaigns`` (+ ``creatives``, a mapping of creative name → spec) — the fields of one create task, as
    mappings or as the typed specs (:class:`~bulk_engine.CampaignSpec`, :class:`~bulk_engine.AdCreativeSpec`).
    The XCom summary adds ``created``: succeeded operations per kind.
    """

    task_type = "create"
    template_fields: Sequence[str] = (
        "meta_conn_id",
        "job_file",
        "job",
        "campaigns",
        "creatives",
        "account_id",
        "report_path",
        "journal_path",
    )
    template_fields_renderers = {"job": "json", "campaigns": "json", "creatives": "json"}

    def __init__(
        self,
        *,
        campaigns: Sequence[Mapping[str, Any]] | str | None = None,
        creatives: Mapping[str, Any] | str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        given = [v for v in (self.job_file, self.job, campaigns) if v is not None]
        if len(given) != 1:
            raise ValueError("MetaBulkCreateOperator takes exactly one of job_file, job or campaigns")
        self.campaigns = _spec_data(campaigns)
        self.creatives = _spec_data(creatives)

    def build_job(self) -> JobSpec:
        if self.campaigns is not None:
            return super().build_job()
        spec = MetaJobOperator.build_job(self)
        others = sorted({task.task_type for task in spec.tasks} - {"create"})
        if others:
            raise JobValidationError(
                f"{spec.source}: MetaBulkCreateOperator runs create tasks only, found {others} "
                "(use MetaJobOperator for mixed jobs)"
            )
        return spec

    def task_fields(self) -> dict[str, Any]:
        return {"campaigns": as_list(self.campaigns), "creatives": as_mapping(self.creatives)}

    def summarize(self, report: JobReport) -> dict[str, Any]:
        created: dict[str, int] = {}
        for outcome in report.outcomes:
            if outcome.state is OutcomeState.SUCCEEDED:
                created[outcome.kind] = created.get(outcome.kind, 0) + 1
        return {"created": created}


def _spec_data(value: Any) -> Any:
    """Specs given as models, as the JSON a job file holds: Airflow templates and serializes an operator's
    fields, which pydantic models are not; the task validates them again when it runs."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_defaults=True)
    if isinstance(value, list | tuple):
        return [_spec_data(item) for item in value]
    if isinstance(value, Mapping):
        return {key: _spec_data(item) for key, item in value.items()}
    return value
