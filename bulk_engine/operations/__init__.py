"""Domain verbs on top of the engine: job files, create, status, copy, migrate to Advantage+, messages, and
raw operations.

Entry points (the CLI and the Airflow operators use these)::

    from bulk_engine.operations import CompileContext, load_job, run_job

    spec = load_job("job.yaml")                       # JobSpec, or JobValidationError naming file:line
    async with BulkEngine(config) as engine:
        report = await run_job(engine, spec, CompileContext(default_account_id="act_…"))
    report.to_dict()                                  # counts, counters, per-operation outcomes, task details

``spec.compile(ctx)`` streams the operations of tasks that need no reads (deterministic op ids);
``spec.fingerprint()`` identifies the job's content for journals.
"""

from .base import CompileContext, EngineLike, Issue, JobFileError, TaskEnv
from .copy import CopyTask, RenameOptions
from .create import CreateTask
from .export import ExportFilter, ExportTask
from .jobfile import TASK_TYPES, JobSpec, Task, job_schema, load_job, parse_job
from .messages import MessageCampaignSpec, MessagesTask
from .migrate import MigrateTask, MigrationRecord
from .migrate_eligibility import (
    CampaignFacts,
    Classification,
    Eligibility,
    Readiness,
    ReadinessChange,
    classify,
    readiness,
)
from .raw import OperationsTask, RawOperation
from .run import (
    JobReport,
    copy_objects,
    create_objects,
    migrate_campaigns,
    run_job,
    run_task,
    send_messages,
    set_status,
)
from .specs import AdCreativeSpec, AdSetMatrix, AdSetSpec, AdSetTemplate, AdSpec, AudienceSpec, CampaignSpec
from .status import Selector, StatusTask, check_transition
from .task import TaskBase, TaskReport
from .update import UpdateTask

__all__ = [
    "TASK_TYPES",
    "AdCreativeSpec",
    "AdSetMatrix",
    "AdSetSpec",
    "AdSetTemplate",
    "AdSpec",
    "AudienceSpec",
    "CampaignFacts",
    "CampaignSpec",
    "Classification",
    "CompileContext",
    "CopyTask",
    "CreateTask",
    "Eligibility",
    "EngineLike",
    "ExportFilter",
    "ExportTask",
    "Issue",
    "JobFileError",
    "JobReport",
    "JobSpec",
    "MessageCampaignSpec",
    "MessagesTask",
    "MigrateTask",
    "MigrationRecord",
    "OperationsTask",
    "RawOperation",
    "Readiness",
    "ReadinessChange",
    "RenameOptions",
    "Selector",
    "StatusTask",
    "Task",
    "TaskBase",
    "TaskEnv",
    "TaskReport",
    "UpdateTask",
    "check_transition",
    "classify",
    "copy_objects",
    "create_objects",
    "job_schema",
    "load_job",
    "migrate_campaigns",
    "parse_job",
    "readiness",
    "run_job",
    "run_task",
    "send_messages",
    "set_status",
]
