"""Job files: YAML or JSON documents validated into a frozen :class:`JobSpec` before any call is sent.

Contract (the CLI, the journal and the Airflow provider build on it)::

    spec = load_job("spring.yaml")             # or parse_job(dict, source="…")  → JobSpec, or JobValidationError
    spec.job_id                                # str | None
    spec.fingerprint()                         # stable hash of the normalised job + the CSVs it references
    for op in spec.compile(CompileContext()):  # lazy; deterministic op ids "<task key>/…"
        ...
    spec.summarize_kinds(ctx)                  # expected operations per kind (progress bars)
    report = await run_job(engine, spec, ctx)  # bulk_engine.operations.run: every task end to end

Format (``docs/job-schema.json`` is the JSON Schema; ``docs/job-files.md`` the guide)::

    version: 1
    job_id: spring-launch          # optional; the journal's key
    account_id: act_1000000001     # default ad account of every task
    tasks:
      - type: create               # create | status | copy | migrate | messages | operations | update | export
        ...

Errors: every problem is reported at once as a :class:`~bulk_engine.operations.base.JobFileError` (a
:class:`~bulk_engine.errors.JobValidationError`), one line per problem naming the file, the line and column
(found by :class:`~bulk_engine.operations.reading.Locator` only for the paths that have an issue), the field
path, the offending value, the rule and, when the local rule mirrors a documented Graph error, its
code/subcode. Reading itself is bounded (encoding, depth, aliases, numbers, tags: :mod:`.reading`).
"""

from __future__ import annotations

import gc
import hashlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, PrivateAttr, ValidationError

from bulk_engine.planning.graph import Operation

from .assets import ImageSpec, image_source_issues, inspect_image, inspect_local
from .base import CompileContext, Issue, JobFileError, TaskEnv
from .canonical import canonical_chunks
from .copy import CopyTask
from .create import CreateTask
from .csvinput import file_sha256, is_file
from .export import ExportTask
from .messages import MessagesTask
from .migrate import MigrateTask
from .raw import OperationsTask
from .reading import NO_LOCATOR, Locator, read_document
from .schema_words import schema_message
from .specs import job_model_config
from .status import StatusTask
from .task import ACCOUNT_PATTERN
from .update import UpdateTask
from .videos import VideoSpec, inspect_video, video_source_issues

__all__ = ["TASK_TYPES", "JobSpec", "Task", "job_schema", "load_job", "parse_job"]

Task = Annotated[
    CreateTask
    | StatusTask
    | CopyTask
    | MigrateTask
    | MessagesTask
    | OperationsTask
    | UpdateTask
    | ExportTask,
    Field(discriminator="type"),
]
TASK_TYPES = ("create", "status", "copy", "migrate", "messages", "operations", "update", "export")
MAX_LISTED_ISSUES = 100
"""Problems listed one by one in a :class:`JobFileError`; the rest are counted in one last line."""


class JobSpec(BaseModel):
    """A validated bulk job: a list of tasks run in order (see the module docstring)."""

    model_config = job_model_config("BulkEngineJob")

    version: Literal[1] = 1
    job_id: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
    description: str | None = None
    account_id: str | None = Field(
        None, pattern=ACCOUNT_PATTERN, description="Default ad account of every task"
    )
    images: dict[str, ImageSpec] = Field(
        default_factory=dict,
        description="Images every create task may use by key (`image: <key>`); a task's own `images` win",
    )
    videos: dict[str, VideoSpec] = Field(
        default_factory=dict,
        description="Videos every create task may use by key (`video: <key>`); a task's own `videos` win",
    )
    tasks: list[Task] = Field(min_length=1)

    _source: str = PrivateAttr("<inline>")
    _base_dir: Path = PrivateAttr(default_factory=Path.cwd)
    _locator: Locator = PrivateAttr(default=NO_LOCATOR)
    _checked: bool = PrivateAttr(False)
    _job_digest: Any = PrivateAttr(None)

    # --- identity ---------------------------------------------------------------------------------------------
    @property
    def source(self) -> str:
        return self._source

    @property
    def base_dir(self) -> Path:
        return self._base_dir

    def task_key(self, index: int) -> str:
        task = self.tasks[index]
        return task.key or f"t{index}"

    def fingerprint(self) -> str:
        """SHA-256 of the normalised job (canonical JSON) and of every CSV file it references.

        Formatting, comments, key order and defaults written out or omitted do not change it; any change of
        content (including a CSV row) does. Journals compare it to refuse resuming with a different job.
        """
        if self._job_digest is None:  # the models are frozen: the job part is computed once
            job_digest = hashlib.sha256(b"bulk-engine-job/v1\n")
            for chunk in canonical_chunks(self):
                job_digest.update(chunk.encode())
            self._job_digest = job_digest
        digest = self._job_digest.copy()
        shared = [spec.file for spec in self.images.values() if spec.file is not None]
        shared += [spec.file for spec in self.videos.values() if spec.file is not None]
        for names in (shared, *(task.input_files() for task in self.tasks)):
            for name in names:
                path = Path(name) if Path(name).is_absolute() else self._base_dir / name
                digest.update(f"\n{name}:".encode())
                digest.update(file_sha256(path).encode() if is_file(path) else b"missing")
        return str(digest.hexdigest())

    @property
    def needs_reads(self) -> bool:
        """True when some task must read Graph first (status selectors, copy, migrate): use ``run_job``."""
        return any(task.needs_reads for task in self.tasks)

    # --- validation -------------------------------------------------------------------------------------------
    def issues(self, *, inputs: bool = True) -> list[Issue]:
        """Every rule violation (and, with ``inputs``, every CSV problem), located in the job file."""
        found: list[Issue] = []
        keys: dict[str, int] = {}
        found.extend(self._image_issues(inputs))
        found.extend(self._video_issues(inputs))
        for i, task in enumerate(self.tasks):
            key = self.task_key(i)
            if key in keys:
                found.append(
                    Issue(("tasks", i, "key"), f"duplicate task key (also task {keys[key]})", key, "job.key")
                )
            keys[key] = i
            found.extend(issue.prefixed(("tasks", i)) for issue in task.rule_issues())
            if inputs:
                found.extend(issue.prefixed(("tasks", i)) for issue in task.input_issues(self._base_dir))
        more = len(found) - MAX_LISTED_ISSUES
        found = found[:MAX_LISTED_ISSUES]
        self._locator.locate(issue.path for issue in found if issue.file is None)
        return [self._locate(issue) for issue in found] + _more(more, self._source)

    def _image_issues(self, inputs: bool) -> Iterator[Issue]:
        """The top-level images: their sources, and (``inputs``) their files; shared with the create tasks."""
        inspect = inspect_image if inputs else None
        found, local = inspect_local(self.images, inspect, self._base_dir, image_source_issues)
        yield from found
        for task in self.tasks:
            if isinstance(task, CreateTask):
                task.share_images(self.images, local if inputs else None)

    def _video_issues(self, inputs: bool) -> Iterator[Issue]:
        """The top-level videos, like the images (operations/videos.py)."""
        inspect = inspect_video if inputs else None
        found, local = inspect_local(self.videos, inspect, self._base_dir, video_source_issues)
        yield from found
        for task in self.tasks:
            if isinstance(task, CreateTask):
                task.share_videos(self.videos, local if inputs else None)

    def check(self, *, inputs: bool = True) -> None:
        """Raise :class:`JobFileError` listing every issue (nothing is sent before this passes)."""
        problems = self.issues(inputs=inputs)
        if problems:
            raise JobFileError(problems, self._source)
        if inputs:
            self._checked = True

    def ensure_checked(self) -> None:
        """:meth:`check` unless this spec already passed it (``load_job``/``parse_job`` check every job)."""
        if not self._checked:
            self.check()

    def _locate(self, issue: Issue) -> Issue:
        if issue.file is not None:
            return issue
        return _located(issue, self._source, self._locator)

    # --- compile ----------------------------------------------------------------------------------------------
    def task_env(self, index: int, ctx: CompileContext) -> TaskEnv:
        task = self.tasks[index]
        account = task.account_id or self.account_id or ctx.default_account_id
        if account is None:
            raise JobFileError(
                [
                    self._locate(
                        Issue(
                            ("tasks", index, "account_id"),
                            "no ad account: set account_id on the task or the job, or a default account",
                            None,
                            "job.account",
                            has_value=False,
                        )
                    )
                ],
                self._source,
            )
        return TaskEnv(self.task_key(index), account, self._base_dir, ctx)

    def compile(self, ctx: CompileContext | None = None) -> Iterator[Operation]:
        """Stream the operations of every task that needs no reads, in task order (lazy, bounded memory).

        Tasks that must read Graph first (``needs_reads``: status selectors or ``read_current``, copy with its
        fallback, migrate) are planned by :func:`~bulk_engine.operations.run.run_job` and yield nothing here.
        Local refusals are appended to ``ctx.skipped``. Raises :class:`JobFileError` before the first operation
        when the job breaks a rule.
        """
        context = ctx if ctx is not None else CompileContext()
        self.ensure_checked()
        envs = [self.task_env(i, context) for i in range(len(self.tasks))]
        for task, env in zip(self.tasks, envs, strict=True):
            if not task.needs_reads:
                yield from task.compile(env)

    def summarize_kinds(self, ctx: CompileContext | None = None) -> dict[str, int]:
        """Expected number of operations per kind (``create_ad``…) for progress; reads are not counted."""
        context = ctx if ctx is not None else CompileContext()
        counts: dict[str, int] = {}
        for i, task in enumerate(self.tasks):
            for kind, n in task.estimate(self.task_env(i, context)).items():
                counts[kind] = counts.get(kind, 0) + n
        return counts


# --- loading ------------------------------------------------------------------------------------------------
def load_job(path: str | Path) -> JobSpec:
    """Read a YAML (``.yaml``/``.yml``) or JSON (``.json``) job file and validate it (rules and CSV inputs).

    CSV paths in the job are relative to the job file's folder. Raises :class:`JobFileError` (a
    ``JobValidationError``) naming file, line, column, field path, value and rule for every problem — also
    for files that are not UTF-8, too deep, alias bombs or otherwise hostile (see :mod:`.reading`).
    """
    file = Path(path)
    source = str(path)
    with gc_paused():
        data, locator = read_document(file, source)
        return parse_job(data, source, base_dir=file.resolve().parent, locator=locator)


def parse_job(
    data: Any,
    source: str = "<inline>",
    *,
    base_dir: str | Path | None = None,
    locator: Locator | None = None,
) -> JobSpec:
    """Validate a job given as data (a dict from YAML/JSON or built in Python). See :func:`load_job`."""
    where = locator or NO_LOCATOR
    if not isinstance(data, Mapping):
        kind = "a list" if isinstance(data, list) else "a single value"
        raise JobFileError(
            [
                _located(
                    Issue((), f"a job must be a mapping (version, tasks…), not {kind}", data, "job.type"),
                    source,
                    where,
                )
            ],
            source,
        )
    with gc_paused():
        try:
            spec = JobSpec.model_validate(data)
        except ValidationError as err:
            raise JobFileError(_pydantic_issues(err, data, source, where), source) from None
        except RecursionError:  # data built in Python, nested beyond what any reader lets through
            raise JobFileError(
                [Issue((), "the job is nested too deeply", None, "file.depth", file=source, has_value=False)],
                source,
            ) from None
        spec._source = source
        spec._base_dir = Path(base_dir) if base_dir is not None else Path.cwd()
        spec._locator = where
        spec.check()
    return spec


def job_schema() -> dict[str, Any]:
    """The JSON Schema of job files (published as ``docs/job-schema.json``)."""
    schema = JobSpec.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://github.com/meta-bulk-engine/meta-bulk-engine/docs/job-schema.json"
    return schema


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a job is read and validated.

    Reading builds millions of small acyclic objects (dicts, lists, models); every one of them would trigger
    full collections that find nothing to free — 2-3x the validation time of a 50 MB job. Reference
    counting still frees everything; the collector is restored (not run) afterwards.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _located(issue: Issue, source: str, locator: Locator) -> Issue:
    line, column = locator.position(issue.path) or (None, None)
    return issue.located(source, line, column)


# --- pydantic errors → issues ----------------------------------------------------------------------------------
_MISSING = object()


def _clean_loc(loc: tuple[str | int, ...], data: Any) -> tuple[tuple[str | int, ...], Any]:
    """Map a pydantic ``loc`` onto the document: drop union tags and member names; return (path, value)."""
    path: list[str | int] = []
    current: Any = data
    parts = list(loc)
    i = 0
    while i < len(parts):
        part = parts[i]
        if i == 2 and parts[0] == "tasks" and isinstance(parts[1], int) and part in TASK_TYPES:
            i += 1  # the discriminator tag pydantic puts after tasks[i]
            continue
        if isinstance(current, Mapping) and isinstance(part, str) and part in current:
            path.append(part)
            current = current[part]
        elif isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current):
            path.append(part)
            current = current[part]
        elif isinstance(current, Mapping) and isinstance(part, str) and i == len(parts) - 1:
            path.append(part)  # a missing or unknown key: name it
            current = _MISSING
        # else: a union member label ("str", "dict[str,any]", "function-after[…]"): not part of the document
        i += 1
    return tuple(path), current


def _pydantic_issues(err: ValidationError, data: Any, source: str, locator: Locator) -> list[Issue]:
    grouped: dict[tuple[tuple[str | int, ...], str], list[dict[str, Any]]] = {}
    order: list[tuple[tuple[str | int, ...], str]] = []
    for error in err.errors(include_url=False, include_input=False):
        path, value = _clean_loc(tuple(error["loc"]), data)
        kind = "missing" if error["type"] == "missing" else "value"
        key = (path, kind)
        if key not in grouped:
            grouped[key] = []
            order.append(key)
        grouped[key].append({**error, "_value": value})
    more = len(order) - MAX_LISTED_ISSUES
    order = order[:MAX_LISTED_ISSUES]
    locator.locate(path for path, _ in order)
    issues: list[Issue] = []
    for key in order:
        errors = grouped[key]
        path = key[0]
        first = errors[0]
        value = first["_value"]
        has_value = value is not _MISSING and first["type"] != "missing"
        rule = first["type"] if len({e["type"] for e in errors}) == 1 else "union"
        issue = Issue(
            path,
            _joined(list(dict.fromkeys(schema_message(e) for e in errors))),
            value if has_value else None,
            f"schema.{rule}",
            has_value=has_value,
        )
        issues.append(_located(issue, source, locator))
    return issues + _more(more, source)


def _more(count: int, source: str) -> list[Issue]:
    """The line that stands for the problems not listed (a 100,000-row mistake is said 100 times, not all)."""
    if count <= 0:
        return []
    message = f"… and {count:,} more problem{'s' if count != 1 else ''} (only the first {MAX_LISTED_ISSUES} are listed)"
    return [Issue((), message, None, "job.more", file=source, has_value=False)]


def _joined(messages: list[str]) -> str:
    """One message for the alternatives of a union: "must be text or a whole number"."""
    if len(messages) == 1:
        return messages[0]
    if all(m.startswith("must be ") for m in messages):
        return "must be " + " or ".join(m.removeprefix("must be ") for m in messages)
    return "must match one of: " + " | ".join(messages)
